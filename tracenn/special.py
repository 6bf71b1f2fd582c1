"""``tracenn.special``: torch.special's functions.

Those tracenn already has (``expit`` is ``sigmoid``, ``gammaln`` is ``lgamma``, ...) are the same
ops; the others are one op (``special``, keyed by the function's name) over ``jax.scipy.special``,
differentiated by JAX. Integer inputs are computed in the default float dtype, as torch's.

>>> import tracenn
>>> tracenn.special.ndtr(tracenn.tensor([0.0, 1.0]))
tensor([0.5000, 0.8413])
"""
from __future__ import annotations

import jax.numpy as jnp

from ._dispatch import apply
from .ops import OPS
from .tensor import Tensor

__all__ = ["expit", "logit", "erf", "erfc", "erfcx", "erfinv", "exp2", "expm1", "log1p", "gammaln",
           "digamma", "psi", "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr", "ndtri",
           "log_ndtr", "sinc", "round", "xlogy", "xlog1py", "zeta", "entr", "logsumexp", "softmax",
           "log_softmax", "gammainc", "gammaincc"]


def _floating(x):
    from ._api._common import float_np_dtype
    from ._api.math import _cast
    if not isinstance(x, Tensor):
        from ._api.creation import tensor
        x = tensor(x)
    return _cast(x, float_np_dtype(x._value.dtype))


def _call(fn, *xs, arg=None):
    xs = [_floating(x) for x in xs]
    if len(xs) == 2:
        from ._api.math import _cast
        from ._api.shape import broadcast_tensors
        dt = jnp.result_type(xs[0]._value.dtype, xs[1]._value.dtype)
        xs = [_cast(x, dt) if x._value.dtype != dt else x for x in xs]
        xs = list(broadcast_tensors(*xs))
    return apply(OPS["special"], tuple(xs), (fn, arg))


def _out(result, out):
    from ._api.math import _out as out_
    return out_(result, out)


def i0(input, *, out=None):
    return _out(_call("i0", input), out)


def i0e(input, *, out=None):
    return _out(_call("i0e", input), out)


def i1(input, *, out=None):
    return _out(_call("i1", input), out)


def i1e(input, *, out=None):
    return _out(_call("i1e", input), out)


def ndtr(input, *, out=None):
    return _out(_call("ndtr", input), out)


def ndtri(input, *, out=None):
    return _out(_call("ndtri", input), out)


def log_ndtr(input, *, out=None):
    return _out(_call("log_ndtr", input), out)


def sinc(input, *, out=None):
    return _out(_call("sinc", input), out)


def entr(input, *, out=None):
    """``-x log x`` for x > 0, 0 at 0, -inf below."""
    return _out(_call("entr", input), out)


def erfcx(input, *, out=None):
    return _out(_call("erfcx", input), out)


def logit(input, eps=None, *, out=None):
    return _out(_call("logit", input, arg=None if eps is None else float(eps)), out)


def polygamma(n, input, *, out=None):
    if not isinstance(n, int) or n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return _out(_call("polygamma", input, arg=n), out)


def multigammaln(input, p, *, out=None):
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    return _out(_call("multigammaln", input, arg=int(p)), out)


def xlog1py(input, other, *, out=None):
    return _out(_call("xlog1py", input, other), out)


def zeta(input, other, *, out=None):
    return _out(_call("zeta", input, other), out)


def gammainc(input, other, *, out=None):
    return _out(_call("gammainc", input, other), out)


def gammaincc(input, other, *, out=None):
    return _out(_call("gammaincc", input, other), out)


def _alias(name):
    from ._api import math as m, reduce as r
    return getattr(m, name, None) or getattr(r, name)


def expit(input, *, out=None):
    return _out(_alias("sigmoid")(_floating(input)), out)


def erf(input, *, out=None):
    return _out(_alias("erf")(_floating(input)), out)


def erfc(input, *, out=None):
    return _out(_alias("erfc")(_floating(input)), out)


def erfinv(input, *, out=None):
    return _out(_alias("erfinv")(_floating(input)), out)


def exp2(input, *, out=None):
    return _out(_alias("exp2")(_floating(input)), out)


def expm1(input, *, out=None):
    return _out(_alias("expm1")(_floating(input)), out)


def log1p(input, *, out=None):
    return _out(_alias("log1p")(_floating(input)), out)


def gammaln(input, *, out=None):
    return _out(_alias("lgamma")(_floating(input)), out)


def digamma(input, *, out=None):
    return _out(_alias("digamma")(_floating(input)), out)


psi = digamma


def round(input, *, decimals=0, out=None):  # noqa: A001 (torch's name)
    return _out(_alias("round")(input, decimals=decimals), out)


def xlogy(input, other, *, out=None):
    return _out(_alias("xlogy")(input, other), out)


def logsumexp(input, dim, keepdim=False, *, out=None):
    return _out(_alias("logsumexp")(input, dim, keepdim), out)


def softmax(input, dim, *, dtype=None):
    return _alias("softmax")(input, dim, dtype=dtype)


def log_softmax(input, dim, *, dtype=None):
    return _alias("log_softmax")(input, dim, dtype=dtype)
