"""Evaluating a graph: the :class:`Interpreter` base, and the lowering to a pure JAX function.

An Interpreter walks the nodes in order with an environment ``Value -> value``; a subclass says
what running one node means (:meth:`Interpreter.run_node`). The JAX lowering runs each node with
its op's JAX implementation (the same record eager mode jits), so inside ``jax.jit`` the whole
graph becomes one XLA program; ``check=True`` uses the same base to run a graph op by op.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .graph import Graph, Node, Value


class Interpreter:
    """Evaluate a Graph node by node (as torch.fx's Interpreter). Override :meth:`run_node`."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def run_node(self, node: Node, args: list):
        """The node's output(s) for input values ``args`` (Python scalars pass through)."""
        return node.op.call(args, node.key)

    def run(self, env: dict) -> dict:
        """Run every node; ``env`` maps each leaf Value to its value. Returns the full env."""
        for node in self.graph.nodes:
            args = [env[v] if isinstance(v, Value) else v for v in node.inputs]
            out = self.run_node(node, args)
            if len(node.outputs) == 1 and not isinstance(out, (tuple, list)):
                env[node.outputs[0]] = out
            else:
                for o, x in zip(node.outputs, out):
                    env[o] = x
        return env


def differentiable(op, key, inputs):
    """The node's function of its array inputs for use under ``jax.vjp``.

    An op with its own gradient rule gets a ``jax.custom_vjp`` built from that rule, so the
    compiled backward uses the same (fast, torch-exact) gradients as eager mode; Ops without a rule are left to JAX's own differentiation; non-differentiable ops see
    their inputs through ``stop_gradient``. Python scalars in ``inputs`` are closed over.
    """
    params = op.params(key)
    pos = [i for i, v in enumerate(inputs) if isinstance(v, Value)]
    lits = list(inputs)

    def full(arrays):
        args = list(lits)
        for i, a in zip(pos, arrays):
            args[i] = a
        return args

    if not op.differentiable:
        def nodiff(*arrays):
            return op.impl(*full([jax.lax.stop_gradient(a) for a in arrays]), **params)
        return nodiff
    if op.vjp is None:
        def plain(*arrays):
            return op.impl(*full(arrays), **params)
        return plain

    from ..ops.registry import unbroadcast

    # Residuals: the inputs and the output. (``OpDef.saves`` says what the in-place check must
    # watch, which is not always all the vjp reads: reduce_window's reads its output, unwatched.)
    @jax.custom_vjp
    def f(*arrays):
        return op.impl(*full(arrays), **params)

    def fwd(*arrays):
        out = op.impl(*full(arrays), **params)
        return out, (arrays, out)

    def bwd(r, g):
        arrays, out = r
        cts = op.vjp(g, out, *full(arrays), **params)
        result = []
        for i, a in zip(pos, arrays):
            ct = cts[i]
            if ct is None or not jnp.issubdtype(jnp.result_type(a), jnp.inexact):
                result.append(None)
            else:
                result.append(unbroadcast(ct, jnp.shape(a)).astype(jnp.result_type(a)))
        return tuple(result)

    f.defvjp(fwd, bwd)
    return f


def lower(graph: Graph):
    """The graph as a pure function of flat lists::

        run(state, rng, inputs) -> (outputs, writes)

    ``state`` in ``graph.state`` order, ``rng`` as [key, counter, ...] per generator, ``inputs``
    in ``graph.inputs`` order; ``outputs`` are the Value outputs in order and ``writes`` the
    written values in ``graph.writes`` order. Constants are baked in. Not jitted: the runtime
    jits it (alone, or inside ``jax.vjp``).
    """
    state_vals = list(graph.state.values())
    rng_vals = [v for pair in graph.rng for v in pair]
    consts = [(v, graph.consts[name]) for name, v in graph.const_values.items()]
    fns = {id(n): differentiable(n.op, n.key, n.inputs) for n in graph.nodes}

    class _Lowering(Interpreter):
        def run(self, env):
            for node in self.graph.nodes:
                out = fns[id(node)](*[env[v] for v in node.inputs if isinstance(v, Value)])
                if len(node.outputs) == 1 and not isinstance(out, (tuple, list)):
                    env[node.outputs[0]] = out
                else:
                    for o, x in zip(node.outputs, out):
                        env[o] = x
            return env

    interp = _Lowering(graph)
    out_vals = [v for v in graph.outputs if isinstance(v, Value)]
    write_vals = [v for v in graph.writes.values() if v is not None]  # None: "set .grad to None"

    def run(state, rng, inputs):
        env = {}
        for v, x in zip(state_vals, state):
            env[v] = x
        for v, x in zip(rng_vals, rng):
            env[v] = x
        for v, x in zip(graph.inputs, inputs):
            env[v] = x
        for v, c in consts:
            env[v] = jnp.asarray(c)
        interp.run(env)
        return [env[v] for v in out_vals], [env[v] for v in write_vals]

    return run


def pure_function(graph: Graph):
    """The graph as ``f(params, buffers, rng, *inputs) -> (outputs, new_buffers, new_rng)``:
    dicts keyed by ``state_dict`` name, the RNG as a list of (key, counter) pairs, outputs in the
    structure forward returned. This is what ``tracenn.func.to_jax`` hands to JAX users."""
    from .trace import unflatten
    run = lower(graph)
    names = list(graph.state)
    kinds = {n: v.kind for n, v in graph.state.items()}

    def f(params, buffers, rng, *inputs):
        state = [params[n] if kinds[n] == "param" else buffers[n] for n in names]
        flat_rng = [x for pair in rng for x in pair]
        outs, writes = run(state, flat_rng, list(inputs))
        it = iter(outs)
        leaves = [next(it) if isinstance(v, Value) else v for v in graph.outputs]
        new_buffers = dict(buffers)
        for name, w in zip([n for n, v in graph.writes.items() if v is not None], writes):
            if name in new_buffers:
                new_buffers[name] = w
        new_rng = [(k, c + n) for (k, c), n in zip(rng, graph.draws)]
        return unflatten(graph.out_tree, leaves), new_buffers, new_rng

    return f

