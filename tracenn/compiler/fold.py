"""Folding eval-mode batch norm into the conv or linear layer before it (:func:`fold_batchnorm`).

In eval mode ``BatchNorm(conv(x, W) + b)`` is a per-channel affine map of the conv's output,
``conv(x, W) * s + t``, with ``s = weight * rsqrt(running_var + eps)`` and
``t = (b - running_mean) * s + bias``. Scaling output channel ``o`` of a conv (or column ``o`` of a
linear layer's weight) by ``s[o]`` gives the same result, so the pair becomes one conv with weight
``W * s`` plus one add. The pass works on that algebra, not on batch norm's exact op sequence:
it folds any chain of ``add``/``sub``/``mul`` by per-channel values that depend only on
parameters, buffers and constants.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Node, Value
from .passes import calls_back, insert_node

_STEPS = ("add", "sub", "mul")


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold eval-mode batch norm (and any per-channel scale and shift) into the preceding
    ``conv`` or linear layer (``matmul`` by a 2-D weight).

    The folded weight and bias are computed **inside the graph**, as new nodes reading
    ``%conv.weight``, ``%bn.running_var`` and the rest: parameters and buffers are inputs of the
    program, not constants, so the folded program stays right when they change between calls (an
    optimizer step, ``load_state_dict``) and gradients still reach every parameter. Per call XLA
    spends one small per-channel computation and one weight-sized multiply, and saves the
    activation-sized normalisation after the conv.

    What folds: a ``conv``/``matmul`` node whose output is read only by an ``add``, ``sub`` or
    ``mul`` with a per-channel operand (one value per output channel, broadcast along the
    channel axis, same dtype, computed from parameters, buffers and constants only, or a Python
    number), whose output is read only by the next such step, and so on; the chain must contain a
    ``mul``. Nothing else is touched. In training mode batch norm normalises with statistics of
    the batch, which depend on the input, so nothing there matches: the pass needs no mode check.
    """
    g = graph.copy()
    for found in _find(g):  # the matches share no node, so one scan finds them all
        _rewrite(g, *found)
    return g


def _dynamic(g: Graph) -> set:
    """Values that depend on the program's inputs, its random state or a hook (a hook may return
    anything): everything that is not a function of parameters, buffers and constants alone."""
    dyn = set(g.inputs) | {v for pair in g.rng for v in pair}
    for n in g.nodes:
        if calls_back(n) or any(isinstance(v, Value) and v in dyn for v in n.inputs):
            dyn.update(n.outputs)
    return dyn


def _find(g: Graph) -> list:
    """Every foldable (producer node, channel axis, channel count, steps), in graph order."""
    users = g.users()
    pinned = {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
    dyn = None
    found = []
    for n in g.nodes:
        if n.op.name not in ("conv", "matmul") or len(n.inputs) != 2 or len(n.outputs) != 1:
            continue
        p = n.outputs[0]
        x, w = n.inputs
        if not (isinstance(x, Value) and isinstance(w, Value)) or p.dtype.kind != "f" \
                or w.dtype != p.dtype:
            continue
        if n.op.name == "conv":
            if p.ndim < 3:
                continue
            axis, c = 1, p.shape[1]
        else:
            if w.ndim != 2 or p.ndim < 1:
                continue
            axis, c = p.ndim - 1, w.shape[1]
        if dyn is None:
            dyn = _dynamic(g)
        if w in dyn:
            continue
        steps = []
        cur = p
        while cur not in pinned and len(users.get(cur, ())) == 1:
            s = users[cur][0]
            step = _step(s, cur, p, axis, c, dyn)
            if step is None:
                break
            steps.append(step)
            cur = s.outputs[0]
        if any(kind == "mul" for kind, _, _ in steps):
            found.append((n, axis, c, steps))
    return found


def _step(s: Node, cur: Value, p: Value, axis: int, c: int, dyn: set):
    """(kind, operand, node) when ``s`` is ``cur (+|-|*) operand`` with a per-channel operand."""
    if s.op.name not in _STEPS or len(s.inputs) != 2 or len(s.outputs) != 1:
        return None
    out, dt = s.outputs[0], s.params.get("dtype")
    if out.shape != p.shape or out.dtype != p.dtype or dt is None or np.dtype(dt) != p.dtype:
        return None
    a, b = s.inputs
    if a is cur and b is not cur:
        operand = b
    elif b is cur and a is not cur and s.op.name != "sub":
        operand = a
    else:
        return None
    if isinstance(operand, Value):
        if operand in dyn or operand.dtype != p.dtype or operand.ndim > p.ndim or operand.size != c:
            return None
        padded = (1,) * (p.ndim - operand.ndim) + operand.shape
        if any(d != 1 for i, d in enumerate(padded) if i != axis):
            return None
    elif isinstance(operand, bool) or not isinstance(operand, (int, float)):
        return None
    return s.op.name, operand, s


def _rewrite(g: Graph, prod: Node, axis: int, c: int, steps) -> None:
    last = steps[-1][2]
    out_old = last.outputs[0]
    dtype = (out_old.dtype,)
    producers = {o: n for n in g.nodes for o in n.outputs}

    def node(op, inputs, key=(), at=last):
        return insert_node(g, last, op, inputs, key, module=at.module, source=at.source)

    def vector(v, at):
        """The operand as a (C,) vector (or the Python number it is)."""
        if not isinstance(v, Value) or v.shape == (c,):
            return v
        src = producers.get(v)
        if src is not None and src.op.name == "reshape" and isinstance(src.inputs[0], Value) \
                and src.inputs[0].shape == (c,):
            return src.inputs[0]  # batch norm's reshape of a (C,) buffer: read the buffer
        return node("reshape", [v], ((c,),), at)

    def binary(op, a, b, at):
        if not isinstance(a, Value) and not isinstance(b, Value):
            return {"add": a + b, "sub": a - b, "mul": a * b}[op]
        return node(op, [a, b], dtype, at)

    scale = shift = None
    for kind, operand, at in steps:
        v = vector(operand, at)
        if kind == "add":
            shift = v if shift is None else binary("add", shift, v, at)
        elif kind == "sub":
            shift = (-v if not isinstance(v, Value) else node("neg", [v], (), at)) if shift is None \
                else binary("sub", shift, v, at)
        else:
            scale = v if scale is None else binary("mul", scale, v, at)
            if shift is not None:
                shift = binary("mul", shift, v, at)

    x, w = prod.inputs
    if prod.op.name == "conv":
        w_shape, b_shape = (c,) + (1,) * (w.ndim - 1), tuple(c if i == axis else 1 for i in range(out_old.ndim))
    else:
        w_shape, b_shape = (1, c), (c,)
    if isinstance(scale, Value):
        scale = node("reshape", [scale], (w_shape,))
    w_folded = node("mul", [w, scale], dtype)
    y = node(prod.op, [x, w_folded], prod.key, prod)  # the conv keeps its own module and line
    if shift is not None:
        if isinstance(shift, Value) and shift.shape != b_shape:
            shift = node("reshape", [shift], (b_shape,))
        y = node("add", [y, shift], dtype)
    assert y.shape == out_old.shape and y.dtype == out_old.dtype, (y, out_old)
    g.replace_uses(out_old, y)
    gone = {id(prod)} | {id(s) for _, _, s in steps}
    g.nodes = [n for n in g.nodes if id(n) not in gone]
    _prune(g, [producers[v] for _, v, _ in steps if isinstance(v, Value) and v in producers])


def _prune(g: Graph, candidates: list) -> None:
    """Drop the candidate nodes (and what only they read) that the rewrite left unread."""
    dropped = set()
    while candidates:
        read = {v for n in g.nodes for v in n.inputs if isinstance(v, Value)}
        read |= {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
        now = [n for n in candidates if id(n) not in dropped and not calls_back(n)
               and not any(o in read for o in n.outputs)]
        if not now:
            return
        dropped |= {id(n) for n in now}
        g.nodes = [n for n in g.nodes if id(n) not in dropped]
        producers = {o: n for n in g.nodes for o in n.outputs}
        candidates = [producers[v] for n in now for v in n.inputs if isinstance(v, Value) and v in producers]
