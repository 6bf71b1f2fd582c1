"""The backward engine: walk the recorded graph from the roots, run each node's jitted vjp once
all gradients for its outputs have arrived, and accumulate into leaves' ``.grad``."""
from __future__ import annotations

import heapq
import re
import weakref

import jax
import jax.numpy as jnp

from ..errors import BackwardError, SavedTensorModifiedError
from .graph import AccumulateGrad, Node

_add = jax.jit(jnp.add)


def _acc(a, b):
    return b if a is None else _add(a, b)


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


def _check_saved(node: Node):
    for root, version, which in node.saved:
        if isinstance(root, weakref.ref):  # a saved output: if it is gone, nobody changed it
            root = root()
            if root is None:
                continue
        if root._version != version:
            from ..dtypes import TYPE_NAMES
            shape = list(root.shape)
            tname = TYPE_NAMES.get(root.dtype, str(root.dtype)).replace("torch.", "tracenn.")
            # torch names a saved output by the node that saved it, an input by its grad_fn.
            maker, idx = (node, which.split()[-1]) if which.startswith("output") else (root._node, root._out_idx)
            what = "" if maker is None else f", which is output {idx} of {_short(maker.name())},"
            raise SavedTensorModifiedError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [{tname} {shape}]{what} is at version {root._version}; expected "
                f"version {version} instead. Hint: {node.name()} saved it ({which}) for backward and "
                "it was changed in place afterwards (add_, x[i] = v, optimizer.step(), ...); use the "
                "out-of-place form (x = x + 1), or .clone() it before the in-place change.")


def _short(name: str) -> str:
    """ExpBackward0 -> Exp, as torch's saved-tensor message prints node names."""
    return re.sub(r"Backward\d*$", "", name)


def run_backward(roots, grads, *, retain_graph: bool, accumulate: bool, capture=None,
                 only_leaves=None):
    """Backpropagate ``grads`` (raw arrays) from ``roots`` (tensors).

    ``capture``: {edge: slot} — gradients arriving at these edges are returned (autograd.grad)
    instead of being accumulated. ``only_leaves``: accumulate only into these leaf tensors.
    Returns {slot: raw gradient}.
    """
    from ..tensor import Tensor

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
        buf[idx] = _acc(buf.get(idx), g)
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
    captured: dict = {}
    ready = [(-n.seq, id(n), n) for n in dict.fromkeys(start) if deps.get(n, 0) == 0]
    heapq.heapify(ready)
    while ready:
        _, _, node = heapq.heappop(ready)
        buf = buffers.pop(node, {})
        if needed is not None and node not in needed:
            _release(node, ready, deps)
            continue
        if node.pre_hooks:
            _run_pre_hooks(node, buf, Tensor)
        if isinstance(node, AccumulateGrad):
            g = buf.get(0)
            if g is None:
                continue
            slot = capture.get((node, 0)) if capture else None
            if slot is not None:
                captured[slot] = _acc(captured.get(slot), g)
            var = node.variable()
            if accumulate and var is not None and (only_leaves is None or id(var) in only_leaves):
                var._accumulate_grad(g)
            continue
        if node.retains:
            for idx, ref in node.retains.items():
                t = ref()
                if t is not None and idx in buf:
                    t._accumulate_grad(buf[idx])
        if capture:
            for idx, g in buf.items():
                slot = capture.get((node, idx))
                if slot is not None:
                    captured[slot] = _acc(captured.get(slot), g)
        if not buf:  # nothing arrived (e.g. only integer outputs were used): pass the walk on
            _release(node, ready, deps)
            continue
        if needed is not None and not any(e is not None and e[0] in needed for e in node.edges):
            _release(node, ready, deps)  # a captured node: what lies beyond it is not asked for
            continue
        if node.inputs is None:
            raise BackwardError(_FREED)
        _check_saved(node)
        op = node.op
        if op.nout == 1:
            g = buf.get(0)
            if g is None:
                g = jnp.zeros_like(node.out)
        else:
            outs = node.out
            g = tuple(buf.get(i, jnp.zeros_like(o) if jnp.issubdtype(o.dtype, jnp.inexact) else None)
                      for i, o in enumerate(outs))
        cts = op.backward_kernel(node.key, node.needs)(g, node.out, *node.inputs)
        if node.hooks:
            for h in list(node.hooks):
                r = h(tuple(None if c is None else Tensor._wrap(c) for c in cts),
                      (Tensor._wrap(g),) if op.nout == 1 else tuple(Tensor._wrap(x) for x in g if x is not None))
                if r is not None:
                    cts = tuple(None if c is None else c._value for c in r)
        for e, ct in zip(node.edges, cts):
            if e is not None and ct is not None:
                nbuf = buffers.setdefault(e[0], {})
                nbuf[e[1]] = _acc(nbuf.get(e[1]), ct)
        _release(node, ready, deps)
        if not retain_graph and node.saved:
            # Free what torch would have saved. A node that saved nothing (add, sum, views, ...)
            # keeps its inputs -- its vjp reads only their shapes -- so a second backward through
            # it works, as in torch.
            node.inputs = None
            node.out = None
    return captured


def _run_pre_hooks(node, buf, Tensor):
    """Tensor hooks (per output index) and grad_fn pre-hooks (index -1, on all grad_outputs)."""
    for idx, hooks in list(node.pre_hooks.items()):
        if idx == -1 or not hooks:
            continue
        if idx in buf:
            for h in list(hooks):
                r = h(Tensor._wrap(buf[idx]))
                if r is not None:
                    buf[idx] = r._value if isinstance(r, Tensor) else r
    hooks = node.pre_hooks.get(-1)
    if hooks:
        n = node.op.nout if isinstance(node, Node) else 1
        for h in list(hooks):
            got = tuple(Tensor._wrap(buf[i]) if i in buf else None for i in range(n))
            r = h(got)
            if r is not None:
                for i, gi in enumerate(r):
                    if gi is not None:
                        buf[i] = gi._value
                    else:
                        buf.pop(i, None)


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
