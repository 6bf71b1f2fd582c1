"""``backward()`` while tracing: the reverse pass becomes graph nodes.

Each forward node that a cotangent reaches gets one ``vjp_<op>`` node::

    %31: f32[5,3] = vjp_relu[needs=(True,)] %30, %3, %2       # backward of %3 = relu %2

whose lowering is the op's own gradient rule (``OpDef.vjp``, or JAX's vjp of its impl) — the same
rule eager autograd runs, so compiled and eager gradients agree. Cotangents reaching one value from
several uses are summed with ``add`` nodes; gradients of parameters land in ``param.grad`` (a
graph value, written back after the call like a buffer).
"""
from __future__ import annotations

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
    for node in reversed(list(tracer.graph.nodes)):
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

