"""``backward()`` while tracing: the reverse pass becomes graph nodes.

Each forward node that a cotangent reaches gets one ``vjp_<op>`` node::

    %31: f32[5,3] = vjp_relu[needs=(True,)] %30, %3, %2       # backward of %3 = relu %2

whose lowering is the op's own gradient rule (``OpDef.vjp``, or JAX's vjp of its impl) — the same
rule eager autograd runs, so compiled and eager gradients agree. Cotangents reaching one value from
several uses are summed with ``add`` nodes; gradients of parameters land in ``param.grad`` (a
graph value, written back after the call like a buffer).
"""
from __future__ import annotations

from ..errors import DataDependentError, UnsupportedError
from ..ops import OPS
from ..ops.derived import gradient_op
from .graph import Value

_INEXACT = frozenset("fcV")


def reverse(tracer, outs, seeds) -> dict:
    """Emit the reverse pass of ``tracer.graph`` from ``outs`` (Values) with cotangents ``seeds``
    (Values). Returns {Value: cotangent Value} for every value the cotangents reach."""
    from .._api.math import add
    from ..tensor import Tensor

    def acc(a, b):
        if a is None:
            return b
        return add(Tensor._wrap(a), Tensor._wrap(b))._value

    ct: dict = {}
    for v, g in zip(outs, seeds):
        ct[v] = acc(ct.get(v), g)
    rg = tracer.rg
    nodes = list(tracer.graph.nodes)
    customs = sorted(tracer.customs, key=lambda c: c.position, reverse=True)
    for i in range(len(nodes) - 1, -2, -1):
        while customs and customs[0].position > i:  # a custom Function's forward ended after node i
            _custom_backward(tracer, customs.pop(0), ct, acc)
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
        gs = []
        for o in node.outputs:
            g = ct.get(o)
            if g is None:
                g = tracer.record(OPS["full"], (0.0,), (o.shape, o.dtype))._value \
                    if o.dtype.kind in _INEXACT else None
            gs.append(g)
        nout = len(node.outputs)
        res = tracer.record(gradient_op(node.op), [*gs, *node.outputs, *node.inputs], node.key + (needs, nout))
        res = res if isinstance(res, tuple) else (res,)
        it = iter(res)
        for v, n in zip(node.inputs, needs):
            if n:
                ct[v] = acc(ct.get(v), next(it)._value)
    return ct



def _custom_backward(tracer, call, ct, acc) -> None:
    """A custom ``autograd.Function``'s own ``backward`` (recorded, under no_grad) where the
    cotangents of its outputs are complete; what it returns flows into its arguments."""
    from .._api.creation import zeros
    from ..autograd.grad_mode import no_grad
    from ..tensor import Tensor
    if not any(o is not None and o in ct for o in call.outs):
        return
    call.reached = True
    with no_grad():
        gs = [Tensor._wrap(ct[o]) if o is not None and o in ct
              else (zeros(o.shape, dtype=o.dtype) if o is not None else None) for o in call.outs]
        try:
            res = call.cls.backward(call.ctx, *gs)
        except DataDependentError as e:
            raise UnsupportedError(
                f"the backward() of the custom autograd.Function {call.cls.__name__} reads tensor values, which "
                f"a compiled program cannot; this call runs eagerly instead ({str(e).split(' (.item()')[0]})") from None
    res = res if isinstance(res, tuple) else (res,)
    for v, need, g in zip(call.ins, call.ctx.needs_input_grad, res):
        if need and isinstance(g, Tensor) and isinstance(v, Value) and v in tracer.rg:
            ct[v] = acc(ct.get(v), tracer.value_of(g))
