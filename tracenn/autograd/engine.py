"""The backward engine: walk the recorded graph from the roots, run each node's jitted vjp once
all gradients for its outputs have arrived, and accumulate into leaves' ``.grad``. With
``create_graph`` the gradients are tensors and each node's gradient is recorded as ops (its
``vjp_<op>`` gradient op dispatched eagerly), so the result can be differentiated again."""
from __future__ import annotations

import heapq
import re
import weakref

import jax
import jax.numpy as jnp

from ..errors import BackwardError, SavedTensorModifiedError, TracennError
from .grad_mode import GRAD
from .anomaly_mode import check_nan
from ._function_saved import release
from .function import _FunctionOp
from ..ops.registry import scale_cotangents
from .graph import ANOMALY, NAME_FROM_INPUTS, PROFILER, AccumulateGrad, Node, is_seed, named
from ._sparse_grad import SparseGrad, accumulate_leaf, densify
from . import _sparse_grad

_add = jax.jit(jnp.add)


def _acc(a, b):
    if a is None:
        return b
    if type(a) is SparseGrad or type(b) is SparseGrad:  # (a sparse lookup's gradient: _sparse_grad.py)
        return _sparse_grad.acc(a, b)
    return _add(a, b)


def _edge_of(t):
    """The graph edge a tensor's gradient flows into, or None if it needs no gradient."""
    if t._base is not None:
        t._sync()  # a view whose root changed takes its grad_fn from the root's new history
    if t._node is not None:
        return (t._node, t._out_idx)
    if t._requires_grad:
        return (t._grad_accumulator(), 0)
    return None


_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through "
    "the graph a second time or if you need to access saved tensors after calling backward.")


def _check_saved(node: Node, saved=None, name=None):
    """Raise if a tensor ``node`` saved for backward changed in place since. The tracer passes its
    records of a graph node (``saved``) and ``name``, the torch name of a graph node."""
    for root, version, which in node.saved if saved is None else saved:
        if isinstance(root, weakref.ref):  # a saved output: if it is gone, nobody changed it
            root = root()
            if root is None:
                continue
        if root._version != version:
            from ..dtypes import TYPE_NAMES
            name = name or _own_name
            shape = list(root.shape)
            tname = TYPE_NAMES.get(root.dtype, str(root.dtype)).replace("torch.", "tracenn.")
            # torch names a saved output by the node that saved it, an input by its grad_fn.
            maker, idx = (node, which.split()[-1]) if which.startswith("output") else (root._node, root._out_idx)
            what = "" if maker is None else f", which is output {idx} of {_short(name(maker))},"
            raise SavedTensorModifiedError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{tname} {shape}]{what} is at version {root._version}; expected "
                f"version {version} instead. Hint: {name(node)} saved it ({which}) for backward and "
                "it was changed in place afterwards (add_, x[i] = v, optimizer.step(), ...); use the "
                "out-of-place form (x = x + 1), or .clone() it before the in-place change.")


def _own_name(node) -> str:
    return node.name()


def _short(name: str) -> str:
    """ExpBackward0 -> Exp, as torch's saved-tensor message prints node names."""
    return re.sub(r"Backward\d*$", "", name)


def run_backward(roots, grads, *, retain_graph: bool, accumulate: bool, capture=None,
                 only_leaves=None, create_graph: bool = False):
    """Backpropagate ``grads`` (raw arrays) from ``roots`` (tensors).

    ``capture``: {edge: slot} — gradients arriving at these edges are returned (autograd.grad)
    instead of being accumulated. ``only_leaves``: accumulate only into these leaf tensors.
    ``create_graph``: ``grads`` and every gradient are Tensors, and computing them is recorded
    (each node's gradient op dispatched on tensors, see :func:`_recorded_cotangents`), so they can
    be differentiated again. Grad mode is ``create_graph`` while the walk runs, as in torch:
    hooks and ``Function.backward`` record ops only then.
    Returns {slot: gradient}.
    """
    from ..tensor import Tensor

    acc = _acc_recorded if create_graph else _acc
    # Seed buffers and count, for every reachable node, how many edges feed it.
    buffers: dict = {}
    deps: dict = {}
    start = []
    for t, g in zip(roots, grads):
        e = _edge_of(t)
        if e is None:
            continue
        node, idx = e
        buf = buffers.setdefault(node, {})
        buf[idx] = acc(buf.get(idx), g)
        start.append(node)
    stack = list(dict.fromkeys(start))
    seen = set(stack)
    parents: dict = {} if (capture or only_leaves is not None) else None
    while stack:
        node = stack.pop()
        if isinstance(node, Node):
            for e in node.edges:
                if e is None:
                    continue
                nxt = e[0]
                deps[nxt] = deps.get(nxt, 0) + 1
                if parents is not None:
                    parents.setdefault(nxt, []).append(node)
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    needed = None
    if parents is not None:
        # Run only the nodes that lead to a requested gradient, as torch does for
        # autograd.grad(...) and backward(inputs=...).
        targets = [n for n, _ in (capture or {})]
        if only_leaves is not None:
            targets += [n for n in seen if isinstance(n, AccumulateGrad) and id(n.variable()) in only_leaves]
        needed = set()
        stack = [n for n in targets if n in seen]
        while stack:
            n = stack.pop()
            if n in needed:
                continue
            needed.add(n)
            stack.extend(parents.get(n, ()))
    if create_graph:
        wrap = _same
        unwrap = lambda r: r if isinstance(r, Tensor) else Tensor._wrap(r)  # noqa: E731
        accumulate_into = _accumulate_recorded
    else:
        wrap = _sparse_grad.wrap
        unwrap = _sparse_grad.unwrap
        accumulate_into = accumulate_leaf
    captured: dict = {}
    ready = [(-n.seq, id(n), n) for n in dict.fromkeys(start) if deps.get(n, 0) == 0]
    heapq.heapify(ready)
    prev_grad, GRAD.enabled = GRAD.enabled, create_graph
    try:
        while ready:
            _, _, node = heapq.heappop(ready)
            buf = buffers.pop(node, {})
            if needed is not None and node not in needed:
                _release(node, ready, deps)
                continue
            if node.pre_hooks:
                _run_pre_hooks(node, buf, wrap, unwrap)
            if isinstance(node, AccumulateGrad):
                g = buf.get(0)
                if g is None:
                    continue
                slot = capture.get((node, 0)) if capture else None
                if slot is not None:
                    captured[slot] = acc(captured.get(slot), g)
                var = node.variable()
                if accumulate and var is not None and (only_leaves is None or id(var) in only_leaves):
                    accumulate_into(var, g)
                    if node.hooks:
                        _run_post_accumulate_hooks(node.hooks, var)
                continue
            if node.retains:
                for idx, ref in node.retains.items():
                    t = ref()
                    if t is not None and idx in buf:
                        accumulate_into(t, densify(buf[idx]))
            if capture:
                for idx, g in buf.items():
                    slot = capture.get((node, idx))
                    if slot is not None:
                        captured[slot] = acc(captured.get(slot), g)
            if not buf:  # nothing arrived (e.g. only integer outputs were used): pass the walk on
                _release(node, ready, deps)
                continue
            if needed is not None and not any(e is not None and e[0] in needed for e in node.edges):
                _release(node, ready, deps)  # a captured node: what lies beyond it is not asked for
                continue
            if node.inputs is None:
                raise BackwardError(_FREED)
            if type(node.op) is not _FunctionOp:  # (a custom Function's are checked as ctx.saved_tensors is read)
                _check_saved(node)
            try:
                if PROFILER[0] is None:
                    cts, gs = (_recorded_cotangents if create_graph else _cotangents)(node, buf)
                else:
                    cts, gs = PROFILER[0].time(f"autograd::engine::evaluate_function: {node.name()}",
                                               _recorded_cotangents if create_graph else _cotangents,
                                               (node, buf), "backward")
            except TracennError:
                raise
            except Exception as e:
                _not_differentiable(node, e)
                raise
            if ANOMALY[0] and ANOMALY[1]:
                check_nan(node, cts)
            if node.hooks:
                for h in list(node.hooks):
                    r = h(tuple(None if c is None else wrap(c) for c in cts),
                          tuple(wrap(x) for x in gs if x is not None))
                    if r is not None:
                        cts = tuple(None if c is None else unwrap(c) for c in r)
            for e, ct in zip(node.edges, cts):
                if e is not None and ct is not None:
                    if type(ct) is SparseGrad and not isinstance(e[0], AccumulateGrad):
                        ct = ct.dense()  # (sparse only into a leaf's .grad, see _sparse_grad.py)
                    nbuf = buffers.setdefault(e[0], {})
                    nbuf[e[1]] = acc(nbuf.get(e[1]), ct)
            _release(node, ready, deps)
            if not retain_graph and node.saved:
                # Free what torch would have saved. A node that saved nothing (add, sum, views, ...)
                # keeps its inputs -- its vjp reads only their shapes -- so a second backward through
                # it works, as in torch.
                if type(node.op) is _FunctionOp:  # (it can run again; reading ctx.saved_tensors raises)
                    release(node.key)
                    continue
                if node.op.name in NAME_FROM_INPUTS:
                    named(node)  # (its name depends on the inputs' ranks: fix it while they are here)
                node.inputs = None
                node.out = None
                node.unit = None
    finally:
        GRAD.enabled = prev_grad
    for slot, g in captured.items():
        if type(g) is SparseGrad:  # (autograd.grad returns a dense gradient: see docs/sparse.md)
            captured[slot] = g.dense()
    return captured


def _not_differentiable(node, e):
    """A gradient op's own gradient failed (JAX cannot differentiate the op's gradient rule, e.g.
    it calls back into Python): raise an error that names the op, not JAX's internals."""
    fwd = getattr(node.op, "fwd", None)
    if fwd is not None:
        raise BackwardError(
            f"{node.name()}: the gradient rule of {fwd.name} cannot be differentiated, so gradients of "
            f"its gradient (create_graph=True, then a second backward) are not supported: "
            f"{type(e).__name__}: {e}") from e


def _same(x):
    return x


def _grad_outputs(node, buf, zeros):
    """The gradient of each of ``node``'s outputs: what arrived, else ``zeros(output)`` for a
    floating output (None for an integer one)."""
    outs = (node.out,) if node.op.nout == 1 else node.out
    return tuple(buf[i] if i in buf else zeros(o) if jnp.issubdtype(o.dtype, jnp.inexact) else None
                 for i, o in enumerate(outs))


def _cotangents(node, buf):
    """``node``'s input cotangents (raw arrays, None where none flows) from its jitted vjp, and
    its grad_outputs."""
    op = node.op
    if node.unit is not None:  # gradients computed in forward for a cotangent of 1 (OpDef.with_grad)
        g = buf[0]
        if is_seed(g):
            return node.unit, (g,)
        return scale_cotangents(node.unit, g), (g,)
    kernel = op.backward_kernel(node.key, node.needs)
    if op.nout == 1:  # the common case, kept short: this runs once per node of every backward
        g = buf.get(0)
        if g is None:
            g = jnp.zeros_like(node.out)
        return kernel(g, node.out, *node.inputs), (g,)
    gs = _grad_outputs(node, buf, jnp.zeros_like)
    return kernel(gs, node.out, *node.inputs), gs


def _recorded_cotangents(node, buf):
    """``node``'s input cotangents as Tensors whose computation is recorded (create_graph).

    A registered op's gradient is its eager gradient op (``vjp_<op>``) dispatched on tensors: the
    incoming gradients, and the op's inputs and outputs rebuilt as tensors whose history is the
    original graph (a tensor over ``node.inputs[i]`` with ``node.edges[i]`` as its grad_fn), so a
    second backward flows through the rule into the original leaves. What the rule does not read
    (add's inputs, mul's x for d/dx) goes in without history: its gradient is zero, and a result
    that depends on nothing requiring grad (the gradient of ``2 * x``) comes out without history,
    as torch's does. A custom Function's backward runs on tensors in grad mode.
    """
    from .. import _dispatch
    from .._api._common import value_of
    from ..ops.derived import gradient_op
    from ..tensor import Tensor

    op = node.op
    gs = _grad_outputs(node, buf, lambda o: Tensor._wrap(jnp.zeros_like(o)))
    if isinstance(op, _FunctionOp):
        return op.call_backward(node.key, node.needs, gs, node.inputs), gs
    if getattr(op, "pullback_only", False):  # a compiled call's grad_fn (runtime/compiled.py)
        raise BackwardError(
            f"create_graph=True cannot differentiate through {node.name()}: its backward is a compiled "
            "program's pullback, which is not recorded as tensor ops. For higher-order gradients run "
            "that part eagerly (call the model without tracenn.compile).")
    if hasattr(op, "recorded_cotangents"):  # a sparse lookup (_sparse_grad.RowsOp)
        return op.recorded_cotangents(node, gs[0]), gs
    gop = gradient_op(op, True)
    outs = (node.out,) if op.nout == 1 else node.out
    n = len(outs)
    key = node.key + (node.needs, n)
    raw = (*(None if g is None else value_of(g) for g in gs), *outs, *node.inputs)
    reads = gop.reads(key, raw)
    args = [g if reads[i] else raw[i] for i, g in enumerate(gs)]
    args += [Tensor._wrap(o, True, node, i) if reads[n + i] and jnp.issubdtype(o.dtype, jnp.inexact) else o
             for i, o in enumerate(outs)]
    args += [_with_history(v, e, Tensor) if e is not None and reads[2 * n + i] else v
             for i, (v, e) in enumerate(zip(node.inputs, node.edges))]
    got = iter(_dispatch.apply(gop, args, key))
    return tuple(next(got) if need else None for need in node.needs), gs


def _with_history(value, edge, Tensor):
    """A tensor over ``value`` whose gradient flows into graph edge ``edge``: a leaf's
    AccumulateGrad (shared, so it lands in the leaf's ``.grad`` and runs its hooks) or a node's
    output."""
    node, idx = edge
    if isinstance(node, AccumulateGrad):
        t = Tensor._wrap(value, True)
        t._acc = node
        return t
    return Tensor._wrap(value, True, node, idx)


def _acc_recorded(a, b):
    return b if a is None else a + b


def _accumulate_recorded(t, g):
    """Accumulate gradient tensor ``g`` into ``t.grad`` keeping its history (create_graph), as
    torch's AccumulateGrad does in grad mode: a clone of the first gradient, then ``grad + g`` as
    a new tensor (not in place, so the earlier ``.grad`` keeps its value and history)."""
    t.grad = g.clone() if t.grad is None else t.grad + g


def _run_pre_hooks(node, buf, wrap, unwrap):
    """Tensor hooks (per output index) and grad_fn pre-hooks (index -1, on all grad_outputs)."""
    for idx, hooks in list(node.pre_hooks.items()):
        if idx == -1 or not hooks:
            continue
        if idx in buf:
            for h in list(hooks):
                r = h(wrap(buf[idx]))
                if r is not None:
                    buf[idx] = unwrap(r)
    hooks = node.pre_hooks.get(-1)
    if hooks:
        n = 1 if not isinstance(node, Node) or node.op.nout == 1 else len(node.out)
        for h in list(hooks):
            got = tuple(wrap(buf[i]) if i in buf else None for i in range(n))
            r = h(got)
            if r is not None:
                for i, gi in enumerate(r):
                    if gi is not None:
                        buf[i] = unwrap(gi)
                    else:
                        buf.pop(i, None)


def _run_post_accumulate_hooks(hooks, var):
    """``Tensor.register_post_accumulate_grad_hook`` hooks: ``fn(var)`` once ``var.grad`` holds the
    accumulated gradient, in registration order."""
    from ..tensor import Tensor
    for h in list(hooks):
        r = h(var)
        if r is not None:
            if isinstance(r, Tensor):
                raise RuntimeError("Tensor post accumulate grad hooks should return None.")
            raise TypeError(f"expected Variable, but hook returned '{type(r).__name__}': a post accumulate grad "
                            "hook should return None (change var.grad in place to alter the gradient)")


def _release(node, ready, deps):
    """Count ``node``'s edges as delivered; queue the nodes that now have all their gradients."""
    if not isinstance(node, Node):
        return
    for e in node.edges:
        if e is None:
            continue
        nxt = e[0]
        deps[nxt] -= 1
        if deps[nxt] == 0:
            heapq.heappush(ready, (-nxt.seq, id(nxt), nxt))
