"""``backward()`` while tracing: the reverse pass becomes graph nodes.

Each forward node that a cotangent reaches gets one ``vjp_<op>`` node::

    %31: f32[5,3] = vjp_relu[needs=(True,)] %30, %3, %2       # backward of %3 = relu %2

whose lowering is the op's own gradient rule (``OpDef.vjp``, or JAX's vjp of its impl) — the same
rule eager autograd runs, so compiled and eager gradients agree. Cotangents reaching one value from
several uses are summed with ``add`` nodes; gradients of parameters land in ``param.grad`` (a
graph value, written back after the call like a buffer).

With ``create_graph=True`` (a gradient penalty: ``autograd.grad(..., create_graph=True)`` then
``backward()`` through it) each node's gradient is the op's differentiable gradient op instead
(``gradient_op(op, True)``, the one eager ``create_graph`` dispatches), recorded on tensors that
carry the values' gradient status: its results require grad where what the rule reads does, so a
later traced backward differentiates them in turn (``vjp_vjp_<op>`` nodes).
"""
from __future__ import annotations

import weakref
from types import SimpleNamespace

import jax

from .._dispatch import _INPUT_NAMES, _saved_inference
from ..autograd.engine import _FREED, _check_saved
from ..autograd.graph import SEQ, _torch_name
from ..errors import BackwardError, DataDependentError, UnsupportedError
from ..ops import OPS
from ..ops.derived import gradient_op
from .graph import Value

_INEXACT = frozenset("fcV")


def reverse(tracer, outs, seeds, create_graph=False, retain_graph=None, targets=None) -> dict:
    """Emit the reverse pass of ``tracer.graph`` from ``outs`` (Values) with cotangents ``seeds``
    (Values). Returns {Value: cotangent Value} for every value the cotangents reach;
    ``create_graph``: record it so that it can be differentiated again (see the module's doc).

    As eager autograd, it raises where a node it differentiates was freed by an earlier backward
    (``retain_graph``, default ``create_graph``, keeps it) or a tensor the node saved changed in
    place since (see :func:`save`). ``targets``: the Values whose gradients are asked for
    (``inputs=``); only nodes leading to them are checked (and freed), as eager runs only those."""
    from .._api.math import add
    from ..tensor import Tensor

    def acc(a, b):
        if a is None:
            return b
        if create_graph:
            return add(tracer.tensor_of(a), tracer.tensor_of(b))._value
        return add(Tensor._wrap(a), Tensor._wrap(b))._value

    ct: dict = {}
    for v, g in zip(outs, seeds):
        ct[v] = acc(ct.get(v), g)
    rg = tracer.rg
    nodes = list(tracer.graph.nodes)
    retain = create_graph if retain_graph is None else retain_graph
    leads = None if targets is None else _leading(nodes, targets, rg)
    customs = sorted(tracer.customs, key=lambda c: c.position, reverse=True)
    for i in range(len(nodes) - 1, -2, -1):
        while customs and customs[0].position > i:  # a custom Function's forward ended after node i
            _custom_backward(tracer, customs.pop(0), ct, acc, create_graph, retain)
        if i < 0:
            break
        node = nodes[i]
        if not any(o in ct for o in node.outputs):
            continue
        if not node.op.differentiable:
            continue
        needs = tuple(isinstance(v, Value) and v in rg and v.dtype.kind in _INEXACT for v in node.inputs)
        if not any(needs):
            continue
        if node in tracer.saved and (leads is None or any(n and v in leads for v, n in zip(node.inputs, needs))):
            _use_saved(tracer, node, retain)
        gs = []
        for o in node.outputs:
            g = ct.get(o)
            if g is None:
                g = tracer.record(OPS["full"], (0.0,), (o.shape, o.dtype))._value \
                    if o.dtype.kind in _INEXACT else None
            gs.append(g)
        nout = len(node.outputs)
        args, key = [*gs, *node.outputs, *node.inputs], node.key + (needs, nout)
        if create_graph:
            res = _recorded(tracer, node.op, args, key)
        else:
            res = tracer.record(gradient_op(node.op), args, key)
        res = res if isinstance(res, tuple) else (res,)
        it = iter(res)
        for v, n in zip(node.inputs, needs):
            if n:
                ct[v] = acc(ct.get(v), next(it)._value)
    return ct


def _recorded(tracer, op, args, key):
    """``op``'s differentiable gradient op on ``args`` (cotangents, outputs, inputs: Values),
    recorded so that its results carry a gradient. What the rule does not read goes in through a
    ``stop_gradient`` (no gradient path through it: the gradient of a linear function does not
    require grad, and a bias that only shifts the output gets no ``.grad`` from a penalty on the
    gradient), as in eager (``autograd/engine.py::_recorded_cotangents``)."""
    gop = gradient_op(op, True)
    avals = tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) if isinstance(a, Value) else a for a in args)
    reads = gop.reads(key, avals)
    ins = []
    for a, r in zip(args, reads):
        if isinstance(a, Value):
            a = tracer.tensor_of(a) if r else tracer.stop_gradient(a) if a in tracer.rg else a
        ins.append(a)
    return tracer.record(gop, ins, key)


def _custom_backward(tracer, call, ct, acc, create_graph=False, retain=False) -> None:
    """A custom ``autograd.Function``'s own ``backward`` (recorded, under no_grad; in grad mode
    with ``create_graph``, as torch's) where the cotangents of its outputs are complete; what it
    returns flows into its arguments. As eagerly, what it saved is freed unless ``retain``, and
    checked when the backward reads ``ctx.saved_tensors`` (see :func:`save_custom`)."""
    from .._api.creation import zeros
    from ..autograd._function_saved import release
    from ..autograd.grad_mode import set_grad_enabled
    from ..tensor import Tensor
    if not any(o is not None and o in ct for o in call.outs):
        return
    call.reached = True
    wrap = tracer.tensor_of if create_graph else Tensor._wrap
    with set_grad_enabled(create_graph):
        gs = [wrap(ct[o]) if o is not None and o in ct
              else (zeros(o.shape, dtype=o.dtype) if o is not None else None) for o in call.outs]
        try:
            res = call.cls.backward(call.ctx, *gs)
        except DataDependentError as e:
            raise UnsupportedError(
                f"the backward() of the custom autograd.Function {call.cls.__name__} reads tensor values, which "
                f"a compiled program cannot; this call runs eagerly instead ({str(e).split(' (.item()')[0]})") from None
    if not retain:
        release(call.ctx)
    res = res if isinstance(res, tuple) else (res,)
    for v, need, g in zip(call.ins, call.ctx.needs_input_grad, res):
        if need and isinstance(g, Tensor) and isinstance(v, Value) and v in tracer.rg:
            ct[v] = acc(ct.get(v), tracer.value_of(g))


# ---- saved tensors: eager's checks, at trace time ----------------------------------------------
# The tracer keeps eager's saved-tensor records for each graph node that carries a gradient
# (``tracer.saved``: node -> [(root tensor, its version, "input i"), (weakref to output, 0,
# "output i")], as ``_dispatch.apply`` makes them) and the nodes a backward without
# ``retain_graph`` freed (``tracer.freed``). A trace's structure is static, so a backward that
# eager mode would refuse raises while tracing (the first call), with eager's error and message.


def save(tracer, node, args, results) -> None:
    """Note graph node ``node`` (an op on ``args`` giving tensors ``results``, recorded with a
    gradient) as eager notes its autograd node: a sequence number (for :func:`restamp`) and the
    tensors the op's gradient reads, at their versions now."""
    SEQ[0] += 1
    tracer.seqs[node] = SEQ[0]
    op = node.op
    saves = getattr(op, "saves", ())  # (not a registry op, e.g. a hook: no record)
    if type(saves) is dict:  # which inputs are read depends on which need a gradient
        saves = {j for i, a in enumerate(args) if getattr(a, "_requires_grad", False) for j in saves.get(i, ())}
    saved = []
    for i, a in enumerate(args):
        if hasattr(a, "_ver") and (saves is None or i in saves):
            if a._inference and saves is not None:
                _saved_inference()
            root = a if a._base is None else a._base
            saved.append((root, root._ver, _INPUT_NAMES[i] if i < 8 else f"input {i}"))
    if getattr(op, "saves_out", False):
        saved += [(weakref.ref(t), 0, f"output {i}") for i, t in enumerate(results)]
    if saved:
        tracer.saved[node] = saved


def save_custom(tracer, call, args, inner_outs, outs) -> list:
    """Finish a custom Function call as eager ``Function.apply`` does: an input marked dirty is
    returned itself, now holding the call's output (``_set_``, as an in-place op); then note what
    its ctx saved (autograd/_function_saved.py), so that a traced backward reading
    ``ctx.saved_tensors`` raises eager's error (freed, or changed in place) while tracing.
    ``inner_outs``: what its forward returned; ``outs``: the tensors the call returns for them.
    Returns those, dirty inputs in place."""
    from ..autograd._function_saved import check_dirty, record_traced
    ctx = call.ctx
    check_dirty(ctx, inner_outs)
    own = f"{call.cls.__name__}Backward"
    outs = list(outs)
    for o in outs:
        if getattr(o, "_requires_grad", False) and o._node is None:  # made by the call, as eagerly (not a leaf)
            o._node, o._out_idx = o._value.node, 0
            tracer.custom_names[o._node] = own
            SEQ[0] += 1
            tracer.seqs[o._node] = SEQ[0]  # (for restamp, as save() numbers a node)
    for i, o in enumerate(inner_outs):
        if any(o is d for d in ctx._dirty):
            if outs[i] is not o:
                o._set_(outs[i], "mark_dirty")
            outs[i] = o
    diff = [getattr(o, "_requires_grad", False) for o in outs]
    record_traced(call, args, inner_outs, outs, diff, lambda n: own if n is call else _name_in(tracer, n))
    return outs


def restamp(tracer, nodes, since, root, old, made) -> None:
    """``tensor._restamp`` for graph nodes: an in-place op's own nodes (those after ``since``,
    from ``nodes`` back) drop their records of ``root``'s old value; a saved output that
    became ``root`` is re-pointed at it."""
    from ..tensor import restamped
    seqs = tracer.seqs
    if since < 0 and made._node is not None:  # (_set_ read the class-level seq of a graph node)
        since = seqs.get(made._node, 0) - 1
    stack = [n for n in nodes if seqs.get(n, 0) > since]
    seen = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        saved = tracer.saved.get(n)
        if saved:
            tracer.saved[n] = restamped(saved, root, old, made)
        for v in n.inputs:
            if isinstance(v, Value) and v.node is not None and seqs.get(v.node, 0) > since:
                stack.append(v.node)


def _use_saved(tracer, node, retain) -> None:
    """A backward differentiates ``node``: raise as eager's engine would (freed, or a saved tensor
    changed in place), then free it unless ``retain``."""
    saved = tracer.saved[node]
    if not saved:
        return
    if node in tracer.freed:
        raise BackwardError(_FREED)
    _check_saved(node, saved, lambda n: _name_in(tracer, n))
    if not retain:
        tracer.freed.add(node)


def _name_in(tracer, node) -> str:
    """The torch name eager gives the autograd node of graph node ``node`` (a custom Function's
    name for the node that makes its output)."""
    return tracer.custom_names.get(node) or _graph_node_name(node)


def _graph_node_name(node) -> str:
    """The torch name eager gives the autograd node of the op graph node ``node`` records."""
    ins = [jax.ShapeDtypeStruct(v.shape, v.dtype) if isinstance(v, Value) else v for v in node.inputs]
    return _torch_name(SimpleNamespace(op=node.op, key=node.key, inputs=ins))


def _leading(nodes, targets, rg) -> set:
    """The values that carry a gradient to one of ``targets`` (the targets, and what nodes make
    from them along gradient paths)."""
    leads = set(targets)
    for node in nodes:
        if node.op.differentiable and any(isinstance(v, Value) and v in leads and v in rg for v in node.inputs):
            leads.update(node.outputs)
    return leads
