"""Checking graphs and compiled results.

- :func:`verify`: a graph is well formed — every value defined before use, names unique, and every
  node's output types equal to what its op's shape rule derives from its inputs.
- :func:`compare_with_eager`: ``tracenn.compile(model, check=True)`` — run the model eagerly and the
  graph on the same state, and when they differ name the first node whose value diverges.
"""
from __future__ import annotations

import numpy as np

from ..errors import CompileError
from .graph import Graph, Value, format_node
from .trace import _out_avals, _sig


class GraphError(CompileError):
    """A graph broke an invariant (a pass bug, usually)."""


def verify(graph: Graph, after: str = "") -> None:
    """Raise :class:`GraphError` if ``graph`` is malformed (see the module docstring)."""
    where = f" after pass {after!r}" if after else ""
    defined = set()
    names = set()
    for v in graph.leaves():
        if v.name in names:
            raise GraphError(f"value name %{v.name} is defined twice{where}")
        names.add(v.name)
        defined.add(v)
    _verify_nodes(graph.nodes, defined, names, where)
    for v in graph.outputs:
        if isinstance(v, Value) and v not in defined:
            raise GraphError(f"output %{v.name} is not defined{where}")
    for k, v in graph.writes.items():
        if v not in defined:
            raise GraphError(f"write {k} <- %{v.name} reads an undefined value{where}")


def _verify_nodes(nodes, defined: set, names: set, where: str) -> None:
    """Check ``nodes`` in order (``defined``: the values in scope; ``names``: names taken), and
    the blocks of control-flow nodes, each in its own scope of its inputs."""
    from .graph import _blocks_of
    for n in nodes:
        for v in n.inputs:
            if isinstance(v, Value) and v not in defined:
                raise GraphError(f"%{v.name} is used before it is defined{where}, in: {format_node(n)}")
        got = _out_avals(n.op, n.key, tuple(_sig(v) for v in n.inputs))  # the op's rule, cached
        got = got if isinstance(got, (tuple, list)) else (got,)
        if len(got) != len(n.outputs):
            raise GraphError(f"{n.op.name} makes {len(got)} outputs but the node has "
                             f"{len(n.outputs)}{where}: {format_node(n)}")
        for o, a in zip(n.outputs, got):
            if tuple(o.shape) != tuple(a.shape) or np.dtype(o.dtype) != np.dtype(a.dtype):
                raise GraphError(f"%{o.name} is typed {o.type} but {n.op.name}'s shape rule gives "
                                 f"{Value('', a.shape, a.dtype).type}{where}: {format_node(n)}")
            if o.name in names:
                raise GraphError(f"value name %{o.name} is defined twice{where}")
            names.add(o.name)
            defined.add(o)
        for b in _blocks_of(n):
            inner = set(b.inputs)
            _verify_nodes(b.nodes, inner, set(names) | {v.name for v in b.inputs}, f"{where} (block {b.name})")
            for v in b.outputs:
                if v not in inner:
                    raise GraphError(f"block {b.name} returns %{v.name}, which it does not define{where}")


def _max_diff(a, b) -> float:
    a = np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind != "b" else np.asarray(a, np.float64)
    b = np.asarray(b, dtype=np.float64) if np.asarray(b).dtype.kind != "b" else np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        d = np.abs(a - b)
        d[np.isnan(a) & np.isnan(b)] = 0.0
    return float(np.nanmax(d)) if d.size else 0.0


def _close(a, b, rtol=1e-4, atol=1e-5) -> bool:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "biu":
        return bool(np.array_equal(a, b))
    return bool(np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=rtol, atol=atol,
                            equal_nan=True))


def compare_with_eager(graph: Graph, run, compiled, entry, leaves, args, kwargs,
                       captured: Graph | None = None, passes=None) -> str | None:
    """Run eager and compiled from the same state; None when they agree, else a report naming the
    first graph node whose value differs between per-op eager kernels and the fused program."""
    import jax

    from ..autograd.grad_mode import no_grad
    from ..utils._pytree import flatten
    from .lower import Interpreter

    state_tensors = entry.state_tensors
    before = [(t, t._value, t._ver) for t in state_tensors]
    counters = [(g, g._counter) for g in entry.gens]
    with no_grad():
        eager_out = compiled._target(*args, **kwargs)
    eager_leaves, _ = flatten(eager_out)
    eager_vals = [np.asarray(t._value if t._base is None else t._sync()) for t in eager_leaves]
    eager_state = {name: np.asarray(t._value) for name, t in zip(graph.state, state_tensors)}
    for t, v, ver in before:
        t._value, t._ver = v, ver
    for g, c in counters:
        g._counter = c

    state = [t._value for t in state_tensors]
    rng = entry.rng_args()
    ins = [t._value if t._base is None else t._sync() for t in leaves]
    env = {}
    for v, x in zip(graph.state.values(), state):
        env[v] = x
    for v, x in zip([v for pair in graph.rng for v in pair], rng):
        env[v] = x
    for v, x in zip(graph.inputs, ins):
        env[v] = x
    for name, v in graph.const_values.items():
        env[v] = jax.numpy.asarray(graph.consts[name])
    leaves_env = dict(env)

    class _Eager(Interpreter):  # one op at a time, each with its own eager kernel
        def run_node(self, node, a):
            return node.op.forward_kernel(node.key)(*a)

    per_op = _Eager(graph).run(dict(leaves_env))

    values = [v for n in graph.nodes for v in n.outputs]

    def every_value(state, rng, ins):
        e = dict(zip(list(graph.state.values()), state))
        e.update(zip([v for pair in graph.rng for v in pair], rng))
        e.update(zip(graph.inputs, ins))
        for name, v in graph.const_values.items():
            e[v] = jax.numpy.asarray(graph.consts[name])
        Interpreter(graph).run(e)
        return [e[v] for v in values]

    fused = jax.jit(every_value)(state, rng, ins)
    outs, writes = jax.jit(run)(state, rng, ins)
    problems = []
    out_vals = [v for v in graph.outputs if isinstance(v, Value)]
    for i, (v, e) in enumerate(zip(out_vals, eager_vals)):
        o = outs[i]
        if not _close(o, e):
            problems.append(f"output {i} (%{v.name}: {v.type}) differs from eager: max abs diff "
                            f"{_max_diff(o, e):.3g}")
    for (name, v), w in zip([(n, v) for n, v in graph.writes.items() if v is not None], writes):
        if name in eager_state and not _close(w, eager_state[name]):
            problems.append(f"{name} after the call differs from eager: max abs diff "
                            f"{_max_diff(w, eager_state[name]):.3g}")
    if not problems:
        return None
    first = None
    for v, f in zip(values, fused):
        if not _close(f, per_op[v]):
            first = v
            break
    msg = "tracenn.compile(check=True): the compiled call does not match eager mode: " + "; ".join(problems)
    if first is not None:
        n = first.node
        msg += (f". The first value that differs between the fused program and op-by-op execution is "
                f"%{first.name} ({n.op.name}, module {n.module or '<top>'!r}, {n.source or 'unknown line'}): "
                f"max abs diff {_max_diff(fused[values.index(first)], per_op[first]):.3g}")
    elif captured is not None and captured is not graph and _matches(captured, leaves_env, eager_vals):
        msg += ". The graph as traced (cm.captured_graph) matches eager mode, so a graph pass changed " \
               "the result" + _culprit_pass(captured, passes, leaves_env, eager_vals) + \
               ": compare print(cm.captured_graph) with print(cm.graph)."
    else:
        msg += (". Every node agrees with op-by-op execution of the graph, so the traced graph itself "
                "differs from what eager mode ran (a value read at trace time, Python state changed by "
                "forward, or a tracenn bug: please report it with this message).")
    return msg


def _culprit_pass(captured: Graph, passes, leaves_env: dict, eager_vals) -> str:
    """Re-run ``passes`` one at a time from the traced graph and name the first after which the
    graph no longer gives eager's outputs, with the nodes it changed (op, module, user's line)."""
    if not passes:
        return ""
    before = captured
    for p in passes:
        after = p(before)
        if not _matches(after, leaves_env, eager_vals):
            old = {v.name: n for n in before.nodes for v in n.outputs}
            changed = []
            for n in after.nodes:
                o = old.get(n.outputs[0].name) if n.outputs else None
                if o is None or o.op is not n.op or o.key != n.key:
                    changed.append(f"%{n.outputs[0].name} ({n.op.name}, module {n.module or '<top>'!r}, "
                                   f"{n.source or 'unknown line'})")
            what = f"; it changed {', '.join(changed[:3])}{' and more' if len(changed) > 3 else ''}" if changed else ""
            return f" (the first pass after which it no longer matches: {getattr(p, '__name__', repr(p))!r}{what})"
        before = after
    return ""


def _matches(graph: Graph, leaves_env: dict, eager_vals) -> bool:
    """Does ``graph``, run op by op from the same leaves, give eager's outputs?"""
    import jax
    from .lower import Interpreter
    env = {v: leaves_env[v] for v in graph.leaves() if v in leaves_env}
    for name, v in graph.const_values.items():
        env[v] = jax.numpy.asarray(graph.consts[name])
    try:
        Interpreter(graph).run(env)
    except Exception:
        return False
    outs = [env[v] for v in graph.outputs if isinstance(v, Value)]
    return all(_close(o, e) for o, e in zip(outs, eager_vals))
