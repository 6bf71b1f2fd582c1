"""Op records derived from the registry, for graphs only (eager mode never dispatches them):

- :func:`gradient_op` — the gradient of a registered op as an op of its own (``vjp_relu``), so a
  traced ``backward()`` is graph nodes that run the op's own gradient rule;
- :data:`CALLBACK` — a call back into Python with real arrays (a module hook inside a compiled
  program), lowered to an ordered host callback.

They live here, beside the registry, so that every OpDef is defined in ``tracenn/ops/``; they are
not in :data:`OPS` (``derived = True``): each gradient op stands for a registered op, and the
callback for Python code, not for a computation of its own.
"""
from __future__ import annotations

import functools

import jax

from .registry import OpDef, _backward


class GradientOp(OpDef):
    """``vjp_<op>``: inputs ``(*cotangents, *outputs, *inputs)``, outputs the cotangents of the
    inputs marked in the static ``needs`` (``nout`` is the forward op's output count)."""

    derived = True

    def __init__(self, fwd: OpDef):
        self.fwd = fwd

        def impl(*args, **params):
            needs = params.pop("needs")
            nout = params.pop("nout")
            key = tuple(params[s] for s in fwd.static)
            gs, outs, ins = args[:nout], args[nout:2 * nout], args[2 * nout:]
            g = gs[0] if nout == 1 else tuple(gs)
            out = outs[0] if nout == 1 else tuple(outs)
            cts = _backward(fwd, key, needs, g, out, *ins)
            got = tuple(c for c, n in zip(cts, needs) if n)
            return got[0] if len(got) == 1 else got

        super().__init__(f"vjp_{fwd.name}", impl, static=fwd.static + ("needs", "nout"),
                         differentiable=False, nout=None)


@functools.lru_cache(maxsize=None)
def gradient_op(op: OpDef) -> GradientOp:
    """The (cached) gradient op of registered op ``op``."""
    return GradientOp(op)


class CallbackOp(OpDef):
    """``hook[fn=...]``: calls ``fn(*arrays)`` on the host with real arrays, in program order; its
    outputs (typed by ``fn.out_avals``) replace the last ``len(fn.out_avals)`` inputs, and for
    gradients it is the identity on them."""

    derived = True

    def shape(self, *avals, fn):
        return tuple(jax.ShapeDtypeStruct(s, d) for s, d in fn.out_avals)


def _callback(*arrays, fn):
    from jax.experimental import io_callback
    shapes = tuple(jax.ShapeDtypeStruct(s, d) for s, d in fn.out_avals)
    return tuple(io_callback(fn, shapes, *arrays, ordered=True))


def _callback_vjp(g, out, *arrays, fn):
    return (None,) * (len(arrays) - len(fn.out_avals)) + tuple(g)


CALLBACK = CallbackOp("hook", _callback, static=("fn",), vjp=_callback_vjp, nout=None)
