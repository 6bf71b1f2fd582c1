"""Elementwise primitives: unary math, binary arithmetic, comparisons, select, cast, clamp.

Binary ops take a static ``dtype`` (the promoted computation dtype, decided by torch's rules in the
caller) and cast both inputs to it inside the kernel, so Python scalars stay weakly typed and never
cause a recompile. Unary "floating" ops take a static ``dtype`` too (int inputs are computed in the
default float dtype, as torch does).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy import special as jsp

from .registry import register


def _c(x, dtype):
    if getattr(x, "dtype", None) == jnp.bool_ and jnp.issubdtype(dtype, jnp.inexact):
        # XLA:CPU folds convert(pred) / broadcast(convert(pred)) to 0 where it should give 0/0 = NaN;
        # going through uint8 keeps the division honest (torch: False / False is nan).
        x = lax.convert_element_type(x, jnp.uint8)
    return lax.convert_element_type(x, dtype)


# ---- unary ops that keep the input dtype -------------------------------------------------------

def _unary(name, fn, grad=None, saves_out=False, reads_x=True):
    """grad(x, out, g) -> cotangent; None: not differentiable (or zero almost everywhere).
    ``reads_x=False``: the gradient never reads x, so x is not saved (an in-place change is fine)."""
    vjp = None
    if grad is not None:
        def vjp(g, out, x):
            return (grad(x, out, g),)
    register(name, vjp=vjp, saves=() if saves_out or not reads_x else None, saves_out=saves_out,
             differentiable=grad is not None)(fn)


_zero = lambda x, out, g: jnp.zeros_like(g)  # noqa: E731 — piecewise-constant functions

_unary("neg", lambda x: -x, lambda x, o, g: -g, reads_x=False)
_unary("abs", jnp.abs, lambda x, o, g: g * jnp.sign(x))
_unary("conj", jnp.conj, lambda x, o, g: jnp.conj(g), reads_x=False)
_unary("sign", jnp.sign, _zero, reads_x=False)
def _sgn(x):
    """sign(x); for a complex x, x / |x| (0 at 0), written out so that JAX differentiates it
    (its sign rule has a zero derivative; torch's sgn of a complex number has a true one)."""
    if not jnp.iscomplexobj(x):
        return jnp.sign(x)
    a = jnp.abs(x)
    return jnp.where(a == 0, jnp.zeros_like(x), x / jnp.where(a == 0, jnp.ones_like(a), a))


_unary("sgn", _sgn, _zero, reads_x=False)
_unary("floor", jnp.floor, _zero, reads_x=False)
_unary("ceil", jnp.ceil, _zero, reads_x=False)
_unary("trunc", jnp.trunc, _zero, reads_x=False)
_unary("frac", lambda x: x - jnp.trunc(x), lambda x, o, g: g, reads_x=False)
_unary("relu", lambda x: jnp.maximum(x, jnp.zeros((), x.dtype)), lambda x, o, g: jnp.where(o > 0, g, 0), saves_out=True)
_unary("logical_not", jnp.logical_not)
_unary("bitwise_not", jnp.invert)
_unary("isnan", jnp.isnan)
_unary("isinf", jnp.isinf)
_unary("isfinite", jnp.isfinite)
_unary("signbit", jnp.signbit)
_unary("square", jnp.square, lambda x, o, g: 2 * g * x)


@register("round", static=("decimals",), vjp=lambda g, out, x, decimals: (jnp.zeros_like(g),), saves=())
def _round(x, *, decimals):
    # torch rounds half to even, as jnp.round does.
    if decimals == 0:
        return jnp.round(x)
    return jnp.round(x, decimals)


# ---- unary floating ops: computed in ``dtype`` (ints promote to the default float) -------------

def _ufloat(name, fn, grad, saves_out=False):
    def impl(x, *, dtype):
        return fn(_c(x, dtype))

    def vjp(g, out, x, *, dtype):
        return (grad(_c(x, dtype), out, g),)

    register(name, static=("dtype",), vjp=vjp, saves=() if saves_out else None, saves_out=saves_out)(impl)


@jax.custom_jvp
def _acosh_complex(z):
    return jnp.arccosh(z)


@_acosh_complex.defjvp
def _acosh_complex_jvp(primals, tangents):
    # 1 / (sqrt(z - 1) sqrt(z + 1)), the derivative of the principal branch (as torch's gradient);
    # JAX's own rule, 1 / sqrt(z^2 - 1), has the wrong sign where Re z < 0.
    (z,), (t,) = primals, tangents
    return _acosh_complex(z), t / (jnp.sqrt(z - 1) * jnp.sqrt(z + 1))


_ufloat("exp", jnp.exp, lambda x, o, g: g * o, saves_out=True)
_ufloat("exp2", jnp.exp2, lambda x, o, g: g * o * jnp.log(2.0).astype(o.dtype), saves_out=True)
_ufloat("expm1", jnp.expm1, lambda x, o, g: g * (o + 1), saves_out=True)
_ufloat("log", jnp.log, lambda x, o, g: g / x)
_ufloat("log2", jnp.log2, lambda x, o, g: g / (x * jnp.log(2.0).astype(x.dtype)))
_ufloat("log10", jnp.log10, lambda x, o, g: g / (x * jnp.log(10.0).astype(x.dtype)))
_ufloat("log1p", jnp.log1p, lambda x, o, g: g / (1 + x))
_ufloat("sqrt", jnp.sqrt, lambda x, o, g: g / (2 * o), saves_out=True)
_ufloat("rsqrt", lax.rsqrt, lambda x, o, g: -0.5 * g * o * o * o, saves_out=True)
_ufloat("reciprocal", lambda x: 1 / x, lambda x, o, g: -g * o * o, saves_out=True)
_ufloat("sin", jnp.sin, lambda x, o, g: g * jnp.cos(x))
_ufloat("cos", jnp.cos, lambda x, o, g: -g * jnp.sin(x))
_ufloat("tan", jnp.tan, lambda x, o, g: g * (1 + o * o), saves_out=True)
_ufloat("asin", jnp.arcsin, lambda x, o, g: g * lax.rsqrt(1 - x * x))
_ufloat("acos", jnp.arccos, lambda x, o, g: -g * lax.rsqrt(1 - x * x))
_ufloat("atan", jnp.arctan, lambda x, o, g: g / (1 + x * x))
_ufloat("sinh", jnp.sinh, lambda x, o, g: g * jnp.cosh(x))
_ufloat("cosh", jnp.cosh, lambda x, o, g: g * jnp.sinh(x))
_ufloat("tanh", jnp.tanh, lambda x, o, g: g * (1 - o * o), saves_out=True)
_ufloat("asinh", jnp.arcsinh, lambda x, o, g: g * lax.rsqrt(x * x + 1))
_ufloat("acosh", lambda x: _acosh_complex(x) if jnp.iscomplexobj(x) else jnp.arccosh(x),
        lambda x, o, g: g * lax.rsqrt(x * x - 1))
_ufloat("atanh", jnp.arctanh, lambda x, o, g: g / (1 - x * x))
_ufloat("sigmoid", jax.nn.sigmoid, lambda x, o, g: g * o * (1 - o), saves_out=True)
_ufloat("erf", jsp.erf, lambda x, o, g: g * (2 / jnp.sqrt(jnp.pi)).astype(x.dtype) * jnp.exp(-x * x))
_ufloat("erfc", jsp.erfc, lambda x, o, g: -g * (2 / jnp.sqrt(jnp.pi)).astype(x.dtype) * jnp.exp(-x * x))
_ufloat("erfinv", jsp.erfinv, lambda x, o, g: g * (jnp.sqrt(jnp.pi) / 2).astype(o.dtype) * jnp.exp(o * o), saves_out=True)
_ufloat("lgamma", jsp.gammaln, lambda x, o, g: g * jsp.digamma(x))


def _digamma(x):
    # torch: digamma(+-0) is -+inf (the pole's sign); jax gives nan there.
    return jnp.where(x == 0, jnp.copysign(jnp.inf, -x).astype(x.dtype), jsp.digamma(x))


def _digamma_vjp(x, o, g):
    from .special import _trigamma  # (special.py builds on this module)
    return g * _trigamma(x)  # torch's trigamma: JAX's polygamma(1, x) is wrong for negative x


_ufloat("digamma", _digamma, _digamma_vjp)


# ---- binary ops: inputs cast to the static computation dtype ------------------------------------

# Half-precision mul and div compute in float32 and round once, as torch's CPU kernels do (their
# "opmath" type): a Python scalar keeps float32 precision (bf16 ``x * 0.9`` multiplies by 0.9, not
# by 0.8984375, the bf16 number nearest 0.9). Two tensor operands give the same result either way.
# (torch's add and sub round the scalar to the tensor's dtype first: they stay as they are.)
_OPMATH = frozenset((jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16)))


def _binary(name, fn, vjp=None, saves=None, differentiable=True, opmath=False):
    """``opmath``: float16/bfloat16 computed in float32 and rounded once; ``"one divisor"``: only when
    ``y`` has one element (torch's CPU kernels for a scalar or broadcast divisor; with a divisor per
    element they round the quotient to the half type before flooring or truncating it)."""
    def impl(x, y, *, dtype):
        if opmath and dtype in _OPMATH and (opmath is True or jnp.size(y) == 1):
            return fn(_c(x, jnp.float32), _c(y, jnp.float32)).astype(dtype)
        return fn(_c(x, dtype), _c(y, dtype))

    register(name, static=("dtype",), vjp=vjp, saves=saves, differentiable=differentiable)(impl)


def _vjp_add(g, out, x, y, *, dtype):
    return g, g


def _vjp_sub(g, out, x, y, *, dtype):
    return g, -g


def _vjp_mul(g, out, x, y, *, dtype):
    if dtype in _OPMATH:  # (as the forward: float32, one rounding)
        g32 = g.astype(jnp.float32)
        return (g32 * _c(y, jnp.float32)).astype(dtype), (g32 * _c(x, jnp.float32)).astype(dtype)
    return g * _c(y, dtype), g * _c(x, dtype)


def _exact_division() -> bool:
    """Whether :func:`_divide` keeps a division by a broadcast divisor exact: not on a TPU."""
    return jax.default_backend() != "tpu"


def _divide(x, y):
    """``x / y`` rounded once, as torch divides. XLA turns a division by a broadcast divisor
    (``x / 3.0``, ``x / x.sum(1, keepdim=True)``) into a multiplication by its reciprocal, 1 ulp off
    the rounded quotient in about a third of the elements. So float32 and narrower divide such a
    divisor in float64, whose (reciprocal-multiplied) quotient rounds to the correctly rounded float32
    one: its error, under 2**-51, is smaller than any such quotient's distance from a rounding
    boundary (2 * 24 + 2 bits < 53). A float64 one is materialised first instead (an optimization
    barrier keeps XLA from rewriting), at the cost of one divisor-sized buffer. Complex and integer
    operands, and a divisor of the full shape, divide as they are, and so does everything on a TPU:
    its float64 is emulated (slow), and its float32 division is not correctly rounded anyway."""
    shape = jnp.broadcast_shapes(jnp.shape(x), jnp.shape(y))
    dt = jnp.result_type(x, y)
    if jnp.shape(y) == shape or not jnp.issubdtype(dt, jnp.floating) or not _exact_division():
        return jnp.true_divide(x, y)
    if dt.itemsize < 8:
        return (x.astype(jnp.float64) / y.astype(jnp.float64)).astype(dt)
    return x / lax.optimization_barrier(jnp.broadcast_to(y, shape))


def _vjp_div(g, out, x, y, *, dtype):
    # torch's formulas, rounded where torch's ops round: dx = g / y, dy = -g * ((x / y) / y)
    if dtype in _OPMATH:
        g32, y32 = g.astype(jnp.float32), _c(y, jnp.float32)
        q = _divide(out.astype(jnp.float32), y32).astype(dtype).astype(jnp.float32)
        return _divide(g32, y32).astype(dtype), (-g32 * q).astype(dtype)
    y = _c(y, dtype)
    return _divide(g, y), -g * _divide(out, y)


def _vjp_pow(g, out, x, y, *, dtype):
    x, y = _c(x, dtype), _c(y, dtype)
    gx = g * y * jnp.where(y == 0, jnp.ones_like(x), x ** (y - 1))
    # d/dy x**y = x**y * log(x); torch defines it as 0 where x == 0 and y >= 0.
    gy = g * jnp.where((x == 0) & (y >= 0), jnp.zeros_like(out), out * jnp.log(jnp.where(x == 0, 1, x)))
    return gx, gy


def _vjp_maxmin(pick_x):
    def vjp(g, out, x, y, *, dtype):
        x, y = _c(x, dtype), _c(y, dtype)
        # torch splits the gradient evenly where the two inputs tie.
        tie = x == y
        wx = jnp.where(tie, 0.5, pick_x(x, y).astype(g.dtype))
        return g * wx, g * (1 - wx)
    return vjp


def _vjp_atan2(g, out, x, y, *, dtype):
    x, y = _c(x, dtype), _c(y, dtype)
    d = x * x + y * y
    # torch's gradient at the origin is 0, not 0 / 0.
    r = jnp.where(d == 0, jnp.zeros_like(d), 1 / jnp.where(d == 0, jnp.ones_like(d), d))
    return g * y * r, -g * x * r


def _vjp_remainder(g, out, x, y, *, dtype):
    x, y = _c(x, dtype), _c(y, dtype)
    return g, -g * jnp.floor(x / y)


def _vjp_fmod(g, out, x, y, *, dtype):
    x, y = _c(x, dtype), _c(y, dtype)
    return g, -g * jnp.trunc(x / y)


_binary("add", jnp.add, _vjp_add, saves=())
_binary("sub", jnp.subtract, _vjp_sub, saves=())
_binary("mul", jnp.multiply, _vjp_mul, saves={0: (1,), 1: (0,)}, opmath=True)  # d/dx reads y, d/dy reads x
_binary("div", _divide, _vjp_div, saves=(1,), opmath=True)
_binary("pow", lambda x, y: jnp.power(x, y).astype(x.dtype), _vjp_pow)  # jnp.power(bool, bool) is int32
_binary("maximum", jnp.maximum, _vjp_maxmin(lambda x, y: x > y))
_binary("minimum", jnp.minimum, _vjp_maxmin(lambda x, y: x < y))
_binary("atan2", jnp.arctan2, _vjp_atan2)
_binary("remainder", jnp.remainder, _vjp_remainder)  # sign follows the divisor, like Python's %
_binary("fmod", jnp.fmod, _vjp_fmod)


def _vjp_zero2(g, out, x, y, *, dtype):
    # torch's div(rounding_mode='floor'/'trunc') is piecewise constant: a zero gradient, not an error.
    return jnp.zeros_like(g), jnp.zeros_like(g)


def _trunc_divide(x, y):
    if jnp.issubdtype(x.dtype, jnp.floating):
        # (the quotient rounded once, as _divide keeps it: XLA's reciprocal multiply by a broadcast
        # divisor, x / 0.7, is 1 ulp off in a quarter of the elements, which moves trunc across an integer)
        return jnp.trunc(_divide(x, y))
    return lax.div(*jnp.broadcast_arrays(x, y))  # lax.div rounds toward zero but does not broadcast


# (float16/bfloat16 by one divisor in float32, as torch's CPU kernels: a quotient just under an integer,
# rounded to the half type first, would floor or truncate to that integer)
_binary("floor_divide", jnp.floor_divide, _vjp_zero2, saves=(), opmath="one divisor")
_binary("trunc_divide", _trunc_divide, _vjp_zero2, saves=(), opmath="one divisor")
_binary("eq", jnp.equal, differentiable=False)
_binary("ne", jnp.not_equal, differentiable=False)
_binary("lt", jnp.less, differentiable=False)
_binary("le", jnp.less_equal, differentiable=False)
_binary("gt", jnp.greater, differentiable=False)
_binary("ge", jnp.greater_equal, differentiable=False)
_binary("logical_and", jnp.logical_and, differentiable=False)
_binary("logical_or", jnp.logical_or, differentiable=False)
_binary("logical_xor", jnp.logical_xor, differentiable=False)
_binary("bitwise_and", jnp.bitwise_and, differentiable=False)
_binary("bitwise_or", jnp.bitwise_or, differentiable=False)
_binary("bitwise_xor", jnp.bitwise_xor, differentiable=False)
_binary("bitwise_left_shift", jnp.left_shift, differentiable=False)
_binary("bitwise_right_shift", jnp.right_shift, differentiable=False)


# ---- select, cast, clamp ------------------------------------------------------------------------

def _vjp_where(g, out, cond, x, y, *, dtype):
    z = jnp.zeros_like(g)
    return None, jnp.where(cond, g, z), jnp.where(cond, z, g)


@register("where", static=("dtype",), vjp=_vjp_where, saves=(0,))
def _where(cond, x, y, *, dtype):
    return jnp.where(cond, _c(x, dtype), _c(y, dtype))


def _vjp_cast(g, out, x, *, dtype):
    return (g,)


@register("cast", static=("dtype",), vjp=_vjp_cast, saves=())
def _cast(x, *, dtype):
    """Convert to ``dtype`` (float->int truncates toward zero, as torch).

    As torch's CPU casts: float -> unsigned truncates to int64 first, so negatives wrap (-1.0 -> 255);
    float8_e4m3fn (no infinities) saturates finite overflow and infinities to +-448 where ml_dtypes/XLA
    give NaN."""
    src, dst = jnp.dtype(x.dtype), jnp.dtype(dtype)
    if jnp.issubdtype(src, jnp.floating) and jnp.issubdtype(dst, jnp.unsignedinteger):
        x = lax.convert_element_type(x, jnp.int64)
    elif dst in _FLOAT8 and src != dst and src != jnp.bool_:
        # from float32 (exact for 16-bit floats and small ints): XLA:CPU's older loop emitters (the test
        # suite's) misround float16 subnormals into float8
        if src.itemsize < 4 or not jnp.issubdtype(src, jnp.floating):
            x = lax.convert_element_type(x, jnp.float32)
        if dst == jnp.float8_e4m3fn:
            x = jnp.clip(x, -448.0, 448.0)
        elif dst in _FNUZ_HALF_TINY:
            # fnuz formats have no -0 (its bits are NaN); the older emitters turn a negative value that
            # rounds to zero into NaN: flush those to +0 first, as torch (and XLA's default) do
            x = jnp.where(jnp.abs(x) <= _FNUZ_HALF_TINY[dst], jnp.zeros_like(x), x)
    return _c(x, dtype)


_FLOAT8 = frozenset(jnp.dtype(d) for d in (jnp.float8_e4m3fn, jnp.float8_e5m2, jnp.float8_e4m3fnuz,
                                            jnp.float8_e5m2fnuz))
# half the smallest subnormal: magnitudes at or below it round to zero (ties to even)
_FNUZ_HALF_TINY = {jnp.dtype(jnp.float8_e4m3fnuz): 2.0 ** -11, jnp.dtype(jnp.float8_e5m2fnuz): 2.0 ** -18}


def _vjp_clamp(g, out, x, *, lo, hi):
    keep = jnp.ones(x.shape, bool)
    if lo is not None:
        keep = keep & (x >= lo)
    if hi is not None:
        keep = keep & (x <= hi)
    return (jnp.where(keep, g, jnp.zeros_like(g)),)


@register("clamp", static=("lo", "hi"), vjp=_vjp_clamp)
def _clamp(x, *, lo, hi):
    """Clamp to Python-number bounds (tensor bounds are maximum/minimum composites)."""
    if lo is not None:
        x = jnp.maximum(x, jnp.asarray(lo, x.dtype))
    if hi is not None:
        x = jnp.minimum(x, jnp.asarray(hi, x.dtype))
    return x


def _vjp_lerp(g, out, x, y, w, *, dtype):
    w = _c(w, dtype)
    return g * (1 - w), g * w, g * (_c(y, dtype) - _c(x, dtype))


@register("lerp", static=("dtype",), vjp=_vjp_lerp)
def _lerp(x, y, w, *, dtype):
    """torch's formula, bit for bit: ``x + w * (y - x)`` for |w| < 0.5, else ``y - (y - x) * (1 - w)``
    (exact at w == 1); half types compute in float32 and round once, as torch's CPU kernel does."""
    op = jnp.float32 if dtype in (jnp.float16, jnp.bfloat16) else dtype
    x, y, w = _c(x, op), _c(y, op), _c(w, op)
    d = y - x
    return _c(jnp.where(jnp.abs(w) < 0.5, x + w * d, y - d * (1 - w)), dtype)


@register("nan_to_num", static=("nan", "posinf", "neginf"), vjp=lambda g, o, x, **k: (jnp.where(jnp.isfinite(x), g, 0),))
def _nan_to_num(x, *, nan, posinf, neginf):
    return jnp.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)
