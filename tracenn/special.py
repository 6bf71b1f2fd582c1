"""``tracenn.special``: torch.special's functions.

Those tracenn already has (``expit`` is ``sigmoid``, ``gammaln`` is ``lgamma``, ...) are the same
ops; the differentiable others are one op (``special``, keyed by the function's name), and the
Bessel, Airy and orthogonal-polynomial functions, which torch does not differentiate (their results
never require grad), are another (``special_nograd``). Integer inputs are computed in the default
float dtype, and two inputs promote as torch's binary ops do.

torch-level spellings live here too: ``tracenn.polygamma``, ``tracenn.mvlgamma``, ``tracenn.igamma``
and ``tracenn.igammac`` (and the Tensor methods of those names, with in-place ``_`` forms).

>>> import tracenn
>>> tracenn.special.ndtr(tracenn.tensor([0.0, 1.0]))
tensor([0.5000, 0.8413])
>>> tracenn.special.chebyshev_polynomial_t(tracenn.tensor([0.5, 2.0]), 3)
tensor([-1., 26.])
"""
from __future__ import annotations

import jax.numpy as jnp

from ._dispatch import apply
from .ops import OPS
from .tensor import Tensor

__all__ = ["expit", "logit", "erf", "erfc", "erfcx", "erfinv", "exp2", "expm1", "log1p", "gammaln",
           "digamma", "psi", "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr", "ndtri",
           "log_ndtr", "sinc", "round", "xlogy", "xlog1py", "zeta", "entr", "logsumexp", "softmax",
           "log_softmax", "gammainc", "gammaincc", "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1",
           "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0", "modified_bessel_k1",
           "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "spherical_bessel_j0",
           "chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
           "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p"]


def _floating(x):
    from ._api._common import float_np_dtype
    from ._api.math import _cast
    if not isinstance(x, Tensor):
        from ._api.creation import tensor
        x = tensor(x)
    return _cast(x, float_np_dtype(x._value.dtype))


def _operands(xs):
    """One input in its floating dtype, or two promoted as torch's binary ops (dims, then
    categories; integers to the default float dtype) and broadcast."""
    if len(xs) == 1:
        return (_floating(xs[0]),)
    from ._api.math import _promoted
    from ._api.shape import broadcast_tensors
    return tuple(broadcast_tensors(*_promoted(xs[0], xs[1], floating=True)))


def _call(fn, *xs, arg=None):
    return apply(OPS["special"], _operands(xs), (fn, arg))


def _call_nograd(fn, *xs):
    """A function torch computes for float32 and float64 only, without a gradient."""
    xs = _operands(xs)
    dt = xs[0]._value.dtype
    if dt not in (jnp.float32, jnp.float64):
        from ._api.math import _torch_name
        raise NotImplementedError(f"\"{fn}_cpu\" not implemented for '{_torch_name(dt)}'; "
                                  f"special.{fn} takes float32 or float64 tensors, e.g. x.float()")
    return apply(OPS["special_nograd"], xs, (fn,))


def _tensor_arg(name, arg, pos, x):
    from ._api._common import tensor_arg
    tensor_arg(name, arg, pos, x)


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
    """The n-th derivative of the digamma function (``polygamma(0, x)`` is ``digamma(x)``), for
    every real x (the poles at 0, -1, -2, ... give inf, as torch's). Differentiable in ``input``.

    >>> import tracenn
    >>> tracenn.polygamma(1, tracenn.tensor([1.0, 0.5]))  # pi^2/6, pi^2/2
    tensor([1.6449, 4.9348])
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"polygamma(): argument 'n' (position 1) must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return _out(_call("polygamma", input, arg=n), out)


def multigammaln(input, p, *, out=None):
    """log of the multivariate gamma function of dimension ``p``:
    ``p(p-1)/4 log(pi) + sum_{j<p} lgamma(input - j/2)`` (``torch.mvlgamma``)."""
    if isinstance(p, bool) or not isinstance(p, int):
        raise TypeError(f"mvlgamma(): argument 'p' must be int, not {type(p).__name__}")
    if p < 1:
        raise RuntimeError("p has to be greater than or equal to 1")
    return _out(_call("multigammaln", input, arg=p), out)


def xlog1py(input, other, *, out=None):
    return _out(_call("xlog1py", input, other), out)


def zeta(input, other, *, out=None):
    return _out(_call("zeta", input, other), out)


def _incomplete_gamma(fn, kernel, input, other, out):
    _tensor_arg(kernel, "input", 1, input)
    _tensor_arg(kernel, "other", 2, other)
    from ._api._common import result_np_dtype
    dt = result_np_dtype(input, other)
    if dt.kind not in "fV":  # (torch has no integer or complex kernel; it does not promote to float)
        from ._api.math import _torch_name
        raise NotImplementedError(f"\"{kernel}_cpu\" not implemented for '{_torch_name(dt)}'; "
                                  f"{kernel} takes floating-point tensors, e.g. x.float()")
    return _out(apply(OPS["special"], _operands((input, other)), (fn, None)), out)


def gammainc(input, other, *, out=None):
    """The regularized lower incomplete gamma function P(input, other) (``torch.igamma``).
    Differentiable in ``other`` only: torch has no derivative in ``input`` (asking raises).

    >>> import tracenn
    >>> tracenn.special.gammainc(tracenn.tensor([1.0]), tracenn.tensor([1.0]))  # 1 - 1/e
    tensor([0.6321])
    """
    return _incomplete_gamma("gammainc", "igamma", input, other, out)


def gammaincc(input, other, *, out=None):
    """The regularized upper incomplete gamma function Q(input, other) = 1 - P (``torch.igammac``)."""
    return _incomplete_gamma("gammaincc", "igammac", input, other, out)


igamma, igammac, mvlgamma = gammainc, gammaincc, multigammaln  # torch's top-level names


# ---- Bessel and Airy functions (no gradient in torch) ----------------------------------------------

def _unary_nograd(name, arg, doc):
    def run(value, out):
        _tensor_arg(f"special_{name}", arg, 1, value)
        return _out(_call_nograd(name, value), out)

    # (torch names the argument ``input`` for the Bessel functions J, Y, I, K, ``x`` for the rest)
    if arg == "input":
        def f(input, *, out=None):
            return run(input, out)
    else:
        def f(x, *, out=None):
            return run(x, out)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc + "\n\nIts result never requires grad: torch defines no derivative."
    return f


airy_ai = _unary_nograd("airy_ai", "x", "The Airy function Ai(x) (NaN at +-inf).")
bessel_j0 = _unary_nograd("bessel_j0", "input", "The Bessel function of the first kind of order 0.")
bessel_j1 = _unary_nograd("bessel_j1", "input", "The Bessel function of the first kind of order 1.")
bessel_y0 = _unary_nograd("bessel_y0", "input", "The Bessel function of the second kind of order 0 "
                          "(-inf at 0, NaN below).")
bessel_y1 = _unary_nograd("bessel_y1", "input", "The Bessel function of the second kind of order 1 "
                          "(-inf at 0, NaN below).")
modified_bessel_i0 = _unary_nograd("modified_bessel_i0", "input",
                                   "The modified Bessel function of the first kind of order 0.")
modified_bessel_i1 = _unary_nograd("modified_bessel_i1", "input",
                                   "The modified Bessel function of the first kind of order 1.")
modified_bessel_k0 = _unary_nograd("modified_bessel_k0", "input",
                                   "The modified Bessel function of the second kind of order 0 (inf at 0, NaN below).")
modified_bessel_k1 = _unary_nograd("modified_bessel_k1", "input",
                                   "The modified Bessel function of the second kind of order 1 (inf at 0, NaN below).")
scaled_modified_bessel_k0 = _unary_nograd("scaled_modified_bessel_k0", "x", "``exp(x) * modified_bessel_k0(x)``.")
scaled_modified_bessel_k1 = _unary_nograd("scaled_modified_bessel_k1", "x", "``exp(x) * modified_bessel_k1(x)``.")
spherical_bessel_j0 = _unary_nograd("spherical_bessel_j0", "x", "The spherical Bessel function of the first "
                                    "kind of order 0, ``sin(x) / x`` (1 at 0).")


# ---- orthogonal polynomials (no gradient in torch) ------------------------------------------------

def _polynomial(name, doc):
    def f(x, n, *, out=None):
        if not isinstance(x, Tensor) and not isinstance(n, Tensor):
            raise TypeError(f"special_{name}() received an invalid combination of arguments - got "
                            f"({type(x).__name__}, {type(n).__name__}): at least one of x and n must be a "
                            f"Tensor, e.g. special.{name}(tracenn.tensor({x!r}), {n!r})")
        return _out(_call_nograd(name, x, n), out)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (doc + " of degree ``n`` at ``x`` (either may be a number; they broadcast). ``n`` is "
                 "truncated to an integer; a negative one gives 0.\n\nIts result never requires grad: "
                 "torch defines no derivative.")
    return f


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t", "The Chebyshev polynomial of the first kind")
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u", "The Chebyshev polynomial of the second kind")
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v", "The Chebyshev polynomial of the third kind")
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w", "The Chebyshev polynomial of the fourth kind")
shifted_chebyshev_polynomial_t = _polynomial("shifted_chebyshev_polynomial_t",
                                             "The Chebyshev polynomial of the first kind on [0, 1], T(2x - 1),")
shifted_chebyshev_polynomial_u = _polynomial("shifted_chebyshev_polynomial_u",
                                             "The Chebyshev polynomial of the second kind on [0, 1], U(2x - 1),")
shifted_chebyshev_polynomial_v = _polynomial("shifted_chebyshev_polynomial_v",
                                             "The Chebyshev polynomial of the third kind on [0, 1], V(2x - 1),")
shifted_chebyshev_polynomial_w = _polynomial("shifted_chebyshev_polynomial_w",
                                             "The Chebyshev polynomial of the fourth kind on [0, 1], W(2x - 1),")
hermite_polynomial_h = _polynomial("hermite_polynomial_h", "The physicists' Hermite polynomial H (NaN past "
                                   "degree 128 in float32, 512 in float64, as torch)")
hermite_polynomial_he = _polynomial("hermite_polynomial_he", "The probabilists' Hermite polynomial He (NaN past "
                                    "degree 128 in float32, 512 in float64, as torch)")
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", "The Laguerre polynomial L")
legendre_polynomial_p = _polynomial("legendre_polynomial_p", "The Legendre polynomial P")


# Tensor methods (bound by tracenn._api.methods, each with an in-place ``_`` form).
METHODS = {
    "polygamma": lambda self, n: polygamma(n, self),
    "mvlgamma": lambda self, p: multigammaln(self, p),
    "igamma": lambda self, other: gammainc(self, other),
    "igammac": lambda self, other: gammaincc(self, other),
}


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
