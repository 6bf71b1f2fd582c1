"""Structured control flow inside compiled programs: ``tracenn.cond`` and ``tracenn.while_loop``.

While tracing, a cond whose predicate is a traced tensor cannot pick a branch: both branches are
traced, each into a *block* (a closed sub-graph with its own inputs, nodes and outputs), and one
``cond`` node runs the block the predicate selects (``lax.cond``)::

    %5: f32[4] = cond[blocks=(true,false)] %4, %x, %fc.weight, %fc.bias   # net.py:12
      true(%a: f32[3], %fc.weight: f32[4,3], %fc.bias: f32[4]):
        %6: f32[4] = linear %a, %fc.weight, %fc.bias                     # fc  net.py:8
        return %6
      false(%a: f32[3], %fc.weight: f32[4,3], %fc.bias: f32[4]):
        %7: f32[4] = mul %a, 2.0                                         # net.py:9
        return %7

A block's first inputs are the function's parameters (named after them); the rest are the values
it reads from outside (parameters, constants, earlier results), named as outside, so the node's
operand list says what flows in. A ``while_loop`` node is the same with a ``cond`` block (the
carried values -> a bool) and a ``body`` block (the carried values -> their next values), lowered
to ``lax.while_loop``.

What a block may not do, because one XLA program could not do it as eager mode does: change a
tensor from outside it in place (a BatchNorm's running statistics in train mode), draw random
numbers, call module hooks, or run ``backward()``. Such a call raises
:class:`~tracenn.errors.UnsupportedError`, and the compiled call runs eagerly instead (where the
control flow is plain Python). A ``while_loop`` whose values require grad runs eagerly too: XLA's
while loops have no reverse-mode derivative.
"""
from __future__ import annotations

import jax

from ..autograd.grad_mode import GRAD
from ..errors import CompileError, UnsupportedError
from ..ops.derived import COND, WHILE
from ..tensor import Tensor
from .._api.control import _leaves_and_values, check_carry
from ..utils._pytree import flatten, unflatten
from .graph import Value, user_source
from .lower import lower_block


class Block:
    """A closed sub-graph: ``inputs`` (Values it binds), ``nodes``, ``outputs`` (Values) and the
    structure ``tree`` they were returned in."""

    __slots__ = ("name", "inputs", "nodes", "outputs", "tree")

    def __init__(self, name, inputs, nodes, outputs, tree):
        self.name, self.inputs, self.nodes, self.outputs, self.tree = name, inputs, nodes, outputs, tree

    def __repr__(self):
        return f"<block {self.name}: {len(self.nodes)} nodes>"


class Blocks:
    """The static ``blocks`` attribute of a ``cond`` or ``while_loop`` node: the blocks, their JAX
    functions (``fns``), the node's output types and, for a loop, how many inputs are carried.
    Compared by identity: two control-flow nodes are never merged."""

    def __init__(self, blocks, n_carry=0):
        self.blocks = tuple(blocks)
        self.n_carry = n_carry
        self.out_avals = tuple(jax.ShapeDtypeStruct(v.shape, v.dtype) for v in self.blocks[-1].outputs)
        self.fns = tuple(lower_block(b.inputs, b.nodes, b.outputs) for b in self.blocks)

    def __repr__(self):
        return "(" + ",".join(b.name for b in self.blocks) + ")"


class _Recording:
    """Record a block: while open, the tracer's ops go to a fresh node list, and what the block
    must not do (see the module docstring) raises. ``nodes`` is the list after it closes."""

    def __init__(self, tracer, what):
        self.tracer, self.what = tracer, what

    def __enter__(self):
        t = self.tracer
        self.saved = (t.graph.nodes, t.stopped, len(t.customs))
        t.graph.nodes, t.stopped = [], dict(t.stopped)  # (stop_gradient values made inside stay inside)
        t.blocks.append(self.what)
        return self

    def __exit__(self, *exc):
        t = self.tracer
        self.nodes = t.graph.nodes
        t.graph.nodes, t.stopped, n_customs = self.saved
        t.blocks.pop()
        if exc[0] is None and len(t.customs) > n_customs:
            del t.customs[n_customs:]
            raise refused(self.what, "calls a custom autograd.Function")
        return False


def refused(what: str, did: str) -> UnsupportedError:
    """The error a block raises for what it may not do (the call then runs eagerly)."""
    return UnsupportedError(
        f"{what} {did} (at {user_source() or '?'}), which cannot be part of a compiled program's "
        "control flow; this call runs eagerly instead. A branch or loop body inside tracenn.compile "
        "must be a pure function of its inputs: no in-place changes of tensors from outside it (module "
        "buffers in train mode), no random numbers, no module hooks, no backward()")


def _params(tracer, fn, leaves, tree, rg):
    """Fresh symbolic tensors standing for ``fn``'s tensor arguments (named after its
    parameters), and the arguments rebuilt around them."""
    from .trace import _arg_names, _leaf_name, _unique
    args = unflatten(tree, leaves)
    names = _arg_names(fn, len(args))
    taken, vals, tensors = [], [], []
    for i, t in enumerate(leaves):
        name = _unique(_leaf_name(args, names, i), taken)
        taken.append(name)
        v = Value(name, t._value.shape, t._value.dtype, "input", device=tracer.device)
        g = bool(rg[i])
        if g:
            tracer.rg.add(v)
        vals.append(v)
        tensors.append(Tensor._wrap(v, g))
    return vals, unflatten(tree, tensors)


def _run(tracer, fn, what, leaves, tree, rg):
    """Trace ``fn`` on fresh stand-ins for ``leaves``: (parameter Values, nodes, output Values,
    output tree)."""
    vals, args = _params(tracer, fn, leaves, tree, rg)
    with _Recording(tracer, what) as rec:
        out = fn(*args)
        out_leaves, out_tree = flatten(out)
        outs = [tracer.output_value(t) for t in out_leaves]
    return vals, rec.nodes, outs, out_tree


def _free(nodes, outs, bound) -> list:
    """The Values ``nodes`` and ``outs`` read that neither a node makes nor ``bound`` holds, in
    order of first use."""
    made, seen, free = set(bound), set(), []
    for n in nodes:
        for v in n.inputs:
            if isinstance(v, Value) and v not in made and v not in seen:
                seen.add(v)
                free.append(v)
        made.update(n.outputs)
    for v in outs:
        if v not in made and v not in seen:
            seen.add(v)
            free.append(v)
    return free


def _close(name, params, nodes, outs, tree, free, device) -> Block:
    """A block reading ``free`` (outside Values) through inputs of its own, named as outside."""
    taken = {v.name for v in params}
    inner = {}
    for v in free:
        n = v.name
        while n in taken:
            n += "'"
        taken.add(n)
        inner[v] = Value(n, v.shape, v.dtype, "input", device=device)
    for node in nodes:
        node.inputs = [inner.get(v, v) if isinstance(v, Value) else v for v in node.inputs]
    return Block(name, list(params) + [inner[v] for v in free], nodes, [inner.get(v, v) for v in outs], tree)


def _free_tensors(tracer, free):
    """The free Values as tensors for ``record``: one that carries a gradient requires grad, so
    the node's outputs do (and read through stop_gradient under no_grad)."""
    return [Tensor._wrap(v, v in tracer.rg) for v in free]


def _describe(tree, outs) -> str:
    from .graph import _fmt_tree
    return _fmt_tree(tree, outs, lambda v: v.type)


def trace_cond(tracer, pred, true_fn, false_fn, operands):
    """``tracenn.cond`` with a traced predicate: both branches traced into blocks, one node."""
    leaves, tree = flatten(tuple(operands))
    rg = [t._requires_grad and GRAD.enabled for t in leaves]
    branches = []
    for name, fn in (("true", true_fn), ("false", false_fn)):
        branches.append(_run(tracer, fn, f"tracenn.cond's {name}_fn", leaves, tree, rg))
    (tp, tn, to, tt), (fp, fn_, fo, ft) = branches
    if tt != ft or len(to) != len(fo):
        raise CompileError(
            f"tracenn.cond (at {user_source() or '?'}): the branches return different structures: true_fn "
            f"returns {_describe(tt, to)} and false_fn returns {_describe(ft, fo)}. Both must return the "
            "same structure of tensors, with the same shapes and dtypes")
    for i, (a, b) in enumerate(zip(to, fo)):
        if a.dtype != b.dtype:
            raise CompileError(
                f"tracenn.cond (at {user_source() or '?'}): when merging two branches' output, expected same "
                f"dtype but got {a.type} and {b.type} (output {i}). Cast one branch's result to the other's dtype")
        if a.shape != b.shape:
            raise CompileError(
                f"tracenn.cond (at {user_source() or '?'}): when merging two branches' output, expected same "
                f"shape but got {a.type} and {b.type} (output {i}). A compiled program has static shapes, so "
                "both branches must return the same shapes (pad or slice one branch's result); in eager mode "
                "tracenn.cond runs only the branch taken")
    free = _free(tn, to, tp)
    free += [v for v in _free(fn_, fo, fp) if v not in set(free)]
    blocks = Blocks([_close("true", tp, tn, to, tt, free, tracer.device),
                     _close("false", fp, fn_, fo, ft, free, tracer.device)])
    outs = tracer.record(COND, [pred, *leaves, *_free_tensors(tracer, free)], (blocks,))
    return unflatten(tt, list(outs))


def trace_while(tracer, cond_fn, body_fn, carried):
    """``tracenn.while_loop`` inside a compiled call: a cond block and a body block, one node."""
    leaves, tree = flatten(tuple(carried))
    if any(not isinstance(x, Tensor) for x in _leaves_and_values(tuple(carried))):
        raise UnsupportedError(
            f"tracenn.while_loop (at {user_source() or '?'}) carries a Python number: inside a compiled call "
            "the loop runs in the program, where a Python number cannot change; carry it as a tensor "
            "(tracenn.tensor(0)). This call runs eagerly instead")
    rg = [False] * len(leaves)
    cp, cn, co, ct = _run(tracer, cond_fn, "tracenn.while_loop's cond_fn", leaves, tree, rg)
    if len(co) != 1 or co[0].dtype.kind != "b" or co[0].size != 1:
        raise CompileError(
            f"tracenn.while_loop (at {user_source() or '?'}): cond_fn must return a bool scalar tensor, "
            f"got {_describe(ct, co)}")
    bp, bn, bo, bt = _run(tracer, body_fn, "tracenn.while_loop's body_fn", leaves, tree, rg)
    check_carry([Value("", v.shape, v.dtype) for v in bo], [t._value for t in leaves])
    free = _free(cn, co, cp)
    free += [v for v in _free(bn, bo, bp) if v not in set(free)]
    if tracer.differentiated and GRAD.enabled and (
            any(t._requires_grad for t in leaves) or any(v in tracer.rg for v in free)):
        raise UnsupportedError(
            f"tracenn.while_loop (at {user_source() or '?'}) reads tensors that require grad: XLA's while "
            "loops have no reverse-mode derivative, so its gradient cannot be part of a compiled program; "
            "this call runs eagerly instead (run the loop under tracenn.no_grad() to compile it)")
    blocks = Blocks([_close("cond", cp, cn, co, ct, free, tracer.device),
                     _close("body", bp, bn, bo, bt, free, tracer.device)], n_carry=len(leaves))
    outs = tracer.record(WHILE, [*leaves, *_free_tensors(tracer, free)], (blocks,))
    return unflatten(bt, list(outs))
