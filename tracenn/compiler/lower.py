"""Evaluating a graph: the :class:`Interpreter` base, and the lowering to a pure JAX function.

An Interpreter walks the nodes in order with an environment ``Value -> value``; a subclass says
what running one node means (:meth:`Interpreter.run_node`). The JAX lowering runs each node with
its op's JAX implementation (the same record eager mode jits), so inside ``jax.jit`` the whole
graph becomes one XLA program; ``check=True`` uses the same base to run a graph op by op.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_derivatives import SymbolicZero

from ..ops.registry import jaxpr_reads
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
            _bind(env, node, self.run_node(node, [env[v] if isinstance(v, Value) else v for v in node.inputs]))
        return env


def _bind(env: dict, node: Node, out) -> None:
    """Put a node's result(s) ``out`` in ``env`` under its output Values."""
    if len(node.outputs) == 1 and not isinstance(out, (tuple, list)):
        env[node.outputs[0]] = out
    else:
        for o, x in zip(node.outputs, out):
            env[o] = x


def differentiable(op, key, inputs):
    """The node's function of its array inputs for use under ``jax.vjp``.

    An op with its own gradient rule gets a ``jax.custom_vjp`` built from that rule, so the
    compiled backward uses the same (fast, torch-exact) gradients as eager mode; ops without a
    rule are left to JAX's own differentiation; non-differentiable ops see their inputs through
    ``stop_gradient``. Python scalars in ``inputs`` are closed over.

    The forward keeps only the arguments the rule reads for the inputs that need a gradient
    (:func:`rule_reads`): a grad-enabled program returns its residuals, so every extra one costs
    an output buffer, and a kept ``W.T`` would be materialised instead of folded into the dot.
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

    @jax.custom_vjp
    def f(*arrays):
        return op.impl(*full(arrays), **params)

    def fwd(*primals):
        arrays = [p.value for p in primals]
        out = op.impl(*full(arrays), **params)
        outs, out_tree = jax.tree_util.tree_flatten(out)
        # As in eager autograd, which records no node for it: an op with no float output passes
        # no gradient back (JAX marks an integer output perturbed when any input is), and an
        # integer or bool input takes none.
        flows = any(_inexact(o) for o in outs)
        needs = tuple(flows and bool(p.perturbed) and _inexact(a) for p, a in zip(primals, arrays))
        args = outs + arrays
        reads = rule_reads(op, key, full([_aval(a) for a in arrays]), needs)
        plan = tuple(None if r else _aval(a) for r, a in zip(reads, args))
        return out, _Residuals([a for r, a in zip(reads, args) if r], (out_tree, plan, needs))

    def bwd(res, g):
        out_tree, _, needs = res.aux
        if not any(needs):  # (an integer op, or one whose inputs need no gradient: skip its rule)
            return (None,) * len(needs)
        args = res.arguments()
        out = jax.tree_util.tree_unflatten(out_tree, args[:out_tree.num_leaves])
        arrays = args[out_tree.num_leaves:]
        g = jax.tree_util.tree_map(_instantiate, g, is_leaf=lambda x: isinstance(x, SymbolicZero))
        cts = op.vjp(g, out, *full(arrays), **params)
        result = []
        for i, a, need in zip(pos, arrays, needs):
            ct = cts[i]
            if not need or ct is None:
                result.append(None)
            else:
                result.append(unbroadcast(ct, jnp.shape(a)).astype(jnp.result_type(a)))
        return tuple(result)

    f.defvjp(fwd, bwd, symbolic_zeros=True)

    def either(*arrays):
        # Hand-written rules assume real numbers: a node with a complex input or output is
        # differentiated by JAX, in JAX's convention throughout the program (the runtime
        # conjugates at the program's boundary to give torch's gradients).
        # (A real-input op with a complex result has no hand-written rule, except cast, whose
        # rule takes the real part as JAX's does.)
        if any(jnp.iscomplexobj(a) for a in arrays):
            return op.impl(*full(arrays), **params)
        return f(*arrays)
    return either


@jax.tree_util.register_pytree_node_class
class _Residuals:
    """What one op's forward keeps for its backward: the arrays its rule reads, and as static data
    ``aux = (out_tree, plan, needs)``: the output's structure, per argument of the rule (the
    output's leaves, then the array inputs) None where kept or else its aval, and which inputs
    need a gradient."""

    def __init__(self, kept, aux):
        self.kept, self.aux = list(kept), aux

    def tree_flatten(self):
        return self.kept, self.aux

    @classmethod
    def tree_unflatten(cls, aux, kept):
        return cls(kept, aux)

    def arguments(self) -> list:
        """Every argument of the rule: the kept arrays, and zeros (which XLA removes, since nothing
        reads them) standing in for the others."""
        kept = iter(self.kept)
        return [next(kept) if a is None else jnp.zeros(a.shape, a.dtype) for a in self.aux[1]]


def _aval(x):
    return jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x))


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _instantiate(g):
    """An output's cotangent as eager autograd hands it to a rule: zeros for a symbolic zero, and
    None for an integer or bool output (whose cotangent JAX gives as float0)."""
    if g.dtype == jax.dtypes.float0:
        return None
    if isinstance(g, SymbolicZero):
        return jnp.zeros(g.shape, g.dtype)
    return g


_READS: dict = {}


def rule_reads(op, key, args, needs) -> tuple:
    """Which arguments ``op.vjp`` reads the values of when it computes the gradients of the array
    inputs marked in ``needs``: one bool per output leaf, then per array input.

    ``args`` is the op's argument list with each array given as a ``jax.ShapeDtypeStruct`` (other
    entries are literals). The rule is traced on those avals and its jaxpr cut down to the
    cotangents asked for; an argument is read if a kept equation (or the result itself) uses it.
    Reading only a shape or dtype is not a use: avals are static in the trace. Cached per
    (op, key, args, needs). (``OpDef.saves``, written by hand for the in-place check, is not
    this: it may leave out what a rule reads, e.g. reduce_window's output.)
    """
    try:
        cache_key = (op, key, tuple((type(a), a) for a in args), needs)
        hit = _READS.get(cache_key)
    except TypeError:  # an unhashable literal: work it out every time
        cache_key, hit = None, None
    if hit is not None:
        return hit
    params = op.params(key)
    pos = [i for i, a in enumerate(args) if isinstance(a, jax.ShapeDtypeStruct)]
    out = op.shape(*args, **params)
    n_out = len(jax.tree_util.tree_leaves(out))
    if not any(needs):  # (as for an integer op, whose rule is never called)
        return (False,) * (n_out + len(pos))
    g = jax.tree_util.tree_map(lambda o: o if _inexact(o) else None, out)  # None: as _instantiate

    def grads(g, out, *arrays):
        full = list(args)
        for i, a in zip(pos, arrays):
            full[i] = a
        cts = op.vjp(g, out, *full, **params)
        return [cts[i] for i, need in zip(pos, needs) if need and cts[i] is not None]

    jaxpr = jax.make_jaxpr(grads)(g, out, *[args[i] for i in pos]).jaxpr
    reads = tuple(jaxpr_reads(jaxpr)[len(jax.tree_util.tree_leaves(g)):])  # (the cotangents' reads dropped)
    if cache_key is not None:
        _READS[cache_key] = reads
    return reads


def run_nodes(nodes, fns: dict, env: dict) -> dict:
    """Run ``nodes`` in order with their lowered functions (``fns``: id(node) -> function of the
    node's array inputs), filling ``env`` (Value -> array). Returns ``env``."""
    for node in nodes:
        _bind(env, node, fns[id(node)](*[env[v] for v in node.inputs if isinstance(v, Value)]))
    return env


def lower_block(inputs, nodes, outputs):
    """A block (a closed sub-graph: a ``cond`` branch, a ``while_loop`` body) as a pure JAX
    function ``f(*arrays) -> tuple`` of its inputs, each node lowered as in :func:`lower`."""
    fns = {id(n): differentiable(n.op, n.key, n.inputs) for n in nodes}

    def run(*arrays):
        env = run_nodes(nodes, fns, dict(zip(inputs, arrays)))
        return tuple(env[v] for v in outputs)
    return run


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
            return run_nodes(self.graph.nodes, fns, env)

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

