"""Graph passes: plain ``Graph -> Graph`` functions, run in the order of :data:`DEFAULT_PASSES`.

A pass never changes the graph it is given: it works on ``graph.copy()`` and returns the result,
so the graph before and after can both be printed (``cm.captured_graph`` and ``cm.graph``).
``Value`` objects are shared between a graph and its copies, so a pass never renames or retypes
one: it makes new values (:func:`insert_node`, :func:`insert_call`) and points readers at them
(``Graph.replace_uses``).

The default pipeline:

- :func:`dead_code` drops nodes nobody reads.
- :func:`common_subexpressions` merges nodes that compute the same op on the same inputs.
- :func:`fold_constants` evaluates small nodes whose inputs are all constants at compile time.
- :func:`~tracenn.compiler.fold.fold_batchnorm` folds eval-mode batch norm into the conv or
  linear layer before it.

Write your own pass the same way and hand the list to ``tracenn.compile(model, passes=[...])``
(with ``verify_passes=True`` the checker runs after each pass). Helpers for writing one:
:func:`insert_node` (one registry op), :func:`insert_call` (trace a tracenn function into the
graph), :func:`fresh_name`, :func:`is_random` and :func:`calls_back` (nodes a pass must not
merge, fold or drop). This one replaces every ReLU with GELU, building GELU with ``F.gelu`` itself (:func:`insert_call`
traces a tracenn function into the graph, so the pass needs no knowledge of which primitives
GELU is made of); docs/ir.md ("Writing a pass") shows its graph before and after:

>>> import tracenn
>>> import tracenn.nn.functional as F
>>> from tracenn import nn
>>> from tracenn.compiler.passes import DEFAULT_PASSES, insert_call
>>> def relu_to_gelu(graph):
...     g = graph.copy()
...     for node in list(g.nodes):
...         if node.op.name == "relu":
...             y = insert_call(g, node, F.gelu, node.inputs[0])
...             g.replace_uses(node.outputs[0], y)
...             g.nodes.remove(node)
...     return g
>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
>>> cm = tracenn.compile(model, passes=[*DEFAULT_PASSES, relu_to_gelu])
>>> x = tracenn.randn(2, 4)
>>> bool((cm(x) - F.gelu(model[0](x))).abs().max() < 1e-6)
True
>>> [n.op.name for n in cm.captured_graph.nodes]
['permute', 'matmul', 'add', 'relu']
>>> [n.op.name for n in cm.graph.nodes]
['permute', 'matmul', 'add', 'mul', 'mul', 'erf', 'add', 'mul']
"""
from __future__ import annotations

import weakref

import jax
import numpy as np

from ..errors import CompileError
from ..ops import OPS
from .graph import Graph, Node, Value

# ---- helpers for writing passes ------------------------------------------------------------------


_NEXT: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()  # graph -> {prefix: next}


def fresh_name(graph: Graph, prefix: str = "") -> str:
    """A new value name for ``graph``: the number after the largest one (``"17"``) for an op
    result, or ``prefix`` and a number (``"c3"``) for a constant. Each call hands out a new name
    (the graph is scanned once, then a counter kept beside it continues), so name every value a
    pass makes with it, or through :func:`insert_node`/:func:`insert_call`."""
    memo = _NEXT.setdefault(graph, {})
    i = memo.get(prefix)
    if i is None:
        cut = len(prefix)
        i = 1 + max((int(v.name[cut:]) for v in [*graph.leaves(), *(o for n in graph.nodes for o in n.outputs)]
                     if v.name.startswith(prefix) and v.name[cut:].isdigit()), default=-1)
    memo[prefix] = i + 1
    return f"{prefix}{i}"


def _position(graph: Graph, before) -> int:
    if before is None:
        return len(graph.nodes)
    for i, n in enumerate(graph.nodes):
        if n is before:
            return i
    raise ValueError(f"node {before!r} is not in this graph (insert into the graph the pass returns, "
                     "and look nodes up there, not in the graph the pass was given)")


def insert_node(graph: Graph, before, op, inputs, key=(), *, module=None, source=None):
    """Add one op node to ``graph`` just before node ``before`` (None: at the end).

    Args:
        op: an op name from the registry (``"mul"``) or its ``OpDef``.
        inputs: Values of ``graph`` and Python scalars, in the op's argument order.
        key: the op's static parameters in ``OpDef.static`` order, as the tracer records them
            (a binary op's is its computation dtype: ``(np.dtype("float32"),)``).
        module, source: the module path and ``file:line`` the node reports; by default
            those of ``before``.

    Returns:
        the new node's output Value (a tuple of Values for a multi-output op), typed by the op's
        shape rule.
    """
    from .trace import _out_avals, _sig
    op = OPS[op] if isinstance(op, str) else op
    key = tuple(key)
    pos = _position(graph, before)
    try:
        avals = _out_avals(op, key, tuple(_sig(v) for v in inputs))
    except Exception as e:
        args = ", ".join(v.type if isinstance(v, Value) else repr(v) for v in inputs)
        raise CompileError(f"insert_node: {op.name} cannot take inputs {args}: {e}") from e
    node = Node(op, key, inputs, (),
                module if module is not None else (before.module if before is not None else ""),
                source if source is not None else (before.source if before is not None else ""))
    multi = isinstance(avals, (tuple, list))
    device = next((v.device for v in inputs if isinstance(v, Value)), None)
    node.outputs = [Value(fresh_name(graph), a.shape, a.dtype, "op", node, i, device)
                    for i, a in enumerate(avals if multi else (avals,))]
    graph.nodes.insert(pos, node)
    return tuple(node.outputs) if multi else node.outputs[0]


def insert_call(graph: Graph, before, fn, *args, module=None, source=None):
    """Trace ``fn(*args)`` into ``graph`` just before node ``before`` (None: at the end).

    ``fn`` is any tracenn function of tensors (``F.gelu``, a lambda, a module's forward); each
    Value in ``args`` reaches it as a tensor, Python values as they are. Every op it runs becomes
    a node of ``graph``, reporting ``module``/``source`` (by default those of ``before``).

    Returns:
        what ``fn`` returned, with each tensor replaced by its Value in ``graph``.

    Raises:
        CompileError: ``fn`` draws random numbers (a pass cannot add a draw to the program).
    """
    from .. import _dispatch
    from ..tensor import Tensor
    from ..utils._pytree import flatten, unflatten
    from .trace import Tracer
    pos = _position(graph, before)
    device = next((v.device for v in args if isinstance(v, Value)), None)
    scratch = Graph(graph.name, graph.mode)
    tracer = Tracer(scratch, {}, device)
    tracer.generators = []
    tracer.count = int(fresh_name(graph))
    tracer.path = [module if module is not None else (before.module if before is not None else "")]
    targs = [Tensor._wrap(a) if isinstance(a, Value) else a for a in args]
    prev = _dispatch.TRACE[0]
    _dispatch.TRACE[0] = tracer
    try:
        out = fn(*targs)
        leaves, tree = flatten(out)
        vals = [tracer.value_of(t) if isinstance(t, Tensor) else t for t in leaves]
    finally:
        _dispatch.TRACE[0] = prev
        for t, value, ver, writes in tracer.mutated.values():
            t._value, t._ver, t._writes = value, ver, writes
    if tracer.mutated:
        raise CompileError(f"insert_call: {getattr(fn, '__name__', fn)!r} changed a tensor in place that "
                           "is not part of the graph; a graph pass can only add computations.")
    if scratch.rng:
        raise CompileError(f"insert_call: {getattr(fn, '__name__', fn)!r} draws random numbers; a graph "
                           "pass cannot add a random draw to the program (the draw count is fixed when "
                           "tracing). Rewrite the graph around the existing random nodes instead.")
    for name, v in scratch.const_values.items():  # values made here are ours to name
        v.name = fresh_name(graph, "c")
        graph.consts[v.name] = scratch.consts[name]
        graph.const_values[v.name] = v
    src = source if source is not None else (before.source if before is not None else None)
    if src is not None:  # the line of the node being rewritten, not the pass's own line
        for n in scratch.nodes:
            n.source = src
    graph.nodes[pos:pos] = scratch.nodes
    _NEXT[graph][""] = tracer.count  # the tracer numbered its results on from fresh_name's
    return unflatten(tree, vals)


def _freeze(x):
    """A hashable stand-in for a static parameter or literal that tells 1, 1.0 and True apart."""
    if isinstance(x, (tuple, list)):
        return (type(x), tuple(_freeze(e) for e in x))
    if isinstance(x, float):
        return (float, repr(x))  # -0.0 vs 0.0, and nan equal to itself
    try:
        hash(x)
    except TypeError:
        return (type(x), repr(x))
    return (type(x), x)


def is_random(node: Node) -> bool:
    """True for a node that draws random numbers (an op from ``tracenn/ops/random.py``, or any op
    reading the generator's key or counter directly)."""
    return (getattr(node.op.impl, "__module__", "") == "tracenn.ops.random"
            or any(isinstance(v, Value) and v.kind == "rng" for v in node.inputs))


#: Ops whose lowering calls back into Python on every run (``hook``: a module hook, see
#: tracenn/compiler/hooks.py). Such a node is kept even when nobody reads it, never merged with
#: another and never run at compile time: the call is the point.
CALLBACK_OPS = frozenset({"hook", "backward_hook"})


def calls_back(node: Node) -> bool:
    """True for a node that runs Python code when the program runs (see :data:`CALLBACK_OPS`)."""
    return node.op.name in CALLBACK_OPS


def _substitute(graph: Graph, subst: dict) -> None:
    """Point the graph's outputs and writes at ``subst[v]`` where they read a replaced ``v``."""
    graph.outputs = [subst.get(v, v) if isinstance(v, Value) else v for v in graph.outputs]
    graph.writes = {k: subst.get(v, v) for k, v in graph.writes.items()}


# ---- the passes ----------------------------------------------------------------------------------


def dead_code(graph: Graph) -> Graph:
    """Drop nodes whose outputs nobody reads (outputs, writes and other nodes are readers), and
    constants nobody reads. Hook nodes stay (the hook runs on every call, as in eager mode, even
    when forward discards the module's result). Random draws nobody reads are dropped: a draw
    changes nothing but the counter, which the program advances by the traced count regardless."""
    g = graph.copy()
    live = {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
    kept = []
    for n in reversed(g.nodes):
        if calls_back(n) or any(o in live for o in n.outputs):
            kept.append(n)
            live.update(v for v in n.inputs if isinstance(v, Value))
    kept.reverse()
    g.nodes = kept
    for name in [k for k, v in g.const_values.items() if v not in live]:
        del g.const_values[name]
        del g.consts[name]
    return g


def common_subexpressions(graph: Graph) -> Graph:
    """Merge nodes that apply the same op, with the same static parameters, to the same inputs
    (the same Values; literals equal in type and value): later copies are dropped and their
    readers read the first. Random draws (each is its own draw) and hook nodes (each call runs
    the hook) are never merged."""
    g = graph.copy()
    seen: dict = {}
    subst: dict = {}
    kept = []
    for n in g.nodes:
        n.inputs = [subst.get(v, v) if isinstance(v, Value) else v for v in n.inputs]
        if is_random(n) or calls_back(n):
            kept.append(n)
            continue
        try:
            k = (n.op, _freeze(n.key),
                 tuple(v if isinstance(v, Value) else _freeze(v) for v in n.inputs))
            hash(k)
        except TypeError:  # an unhashable static parameter: leave the node alone
            kept.append(n)
            continue
        first = seen.get(k)
        if first is None:
            seen[k] = n
            kept.append(n)
        else:
            subst.update(zip(n.outputs, first.outputs))
    g.nodes = kept
    _substitute(g, subst)
    return g


#: Largest result (in elements, per output) :func:`fold_constants` bakes into the program. Bigger
#: constants (``zeros(4096, 4096)``) stay ops: XLA makes them on the device for free, while a baked
#: array is copied into the executable and slows compiling.
FOLD_MAX_ELEMENTS = 1 << 16


def fold_constants(graph: Graph) -> Graph:
    """Evaluate, at compile time, each node whose inputs are all constants or literals (creation
    ops like ``full``/``arange`` included) and whose outputs have at most
    :data:`FOLD_MAX_ELEMENTS` elements each; the node is replaced by a new constant ``%cN``.
    Nodes that read an input, a parameter, a buffer or the generator are never folded (those
    change from call to call), and neither are random draws, hook nodes (the hook runs on every
    call) or device transfers."""
    import jax.numpy as jnp
    g = graph.copy()
    known = {v: g.consts[name] for name, v in g.const_values.items()}
    folded: list[Value] = []  # outputs of folded nodes, in order: constants if anything reads them
    kept = []
    for n in g.nodes:
        if (is_random(n) or calls_back(n) or n.op.name == "to_device" or not n.outputs
                or any(o.size > FOLD_MAX_ELEMENTS for o in n.outputs)
                or not all(v in known for v in n.inputs if isinstance(v, Value))):
            kept.append(n)
            continue
        args = [jnp.asarray(known[v]) if isinstance(v, Value) else v for v in n.inputs]
        try:
            with jax.ensure_compile_time_eval():
                out = n.op.call(args, n.key)
            out = out if isinstance(out, (tuple, list)) else (out,)
            arrays = [np.asarray(a) for a in out]  # host arrays: no weak types, no device pinned
        except Exception:  # noqa: BLE001 — it fails at run time too, with the user's traceback
            kept.append(n)
            continue
        if len(arrays) != len(n.outputs) or any(
                a.shape != o.shape or a.dtype != o.dtype for a, o in zip(arrays, n.outputs)):
            kept.append(n)
            continue
        known.update(zip(n.outputs, arrays))
        folded += n.outputs
    g.nodes = kept
    read = {v for n in g.nodes for v in n.inputs if isinstance(v, Value)}
    read |= {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
    subst = {}
    for o in folded:
        if o in read:
            name = fresh_name(g, "c")
            c = Value(name, o.shape, o.dtype, "const", device=o.device)
            g.consts[name] = known[o]
            g.const_values[name] = c
            subst[o] = c
    for n in g.nodes:
        n.inputs = [subst.get(v, v) if isinstance(v, Value) else v for v in n.inputs]
    _substitute(g, subst)
    return g


from .fold import fold_batchnorm  # noqa: E402 — fold.py builds on the helpers above

DEFAULT_PASSES = [dead_code, common_subexpressions, fold_constants, fold_batchnorm, dead_code]


def run_passes(graph: Graph, passes=None, *, check: bool = False) -> Graph:
    """Apply ``passes`` (default :data:`DEFAULT_PASSES`) in order; with ``check`` verify the
    graph after each one (the tests run with it on).

    Raises:
        TypeError: a pass returned something other than a Graph.
        ~tracenn.compiler.check.GraphError: with ``check``, a pass left the graph malformed.
    """
    from .check import verify
    for p in DEFAULT_PASSES if passes is None else passes:
        out = p(graph)
        if not isinstance(out, Graph):
            raise TypeError(f"graph pass {getattr(p, '__name__', p)!r} returned "
                            f"{type(out).__name__}, expected a Graph")
        if check:
            verify(out, after=getattr(p, "__name__", repr(p)))
        graph = out
    return graph
