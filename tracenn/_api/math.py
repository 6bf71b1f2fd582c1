"""Elementwise math: arithmetic with torch's promotion, comparisons, unary functions, where, clamp."""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .._dispatch import apply
from ..errors import DtypeError
from ..ops import OPS
from ..tensor import Tensor
from ._common import as_operand, float_np_dtype, result_np_dtype

_BOOL = np.dtype(bool)


def _binary(name, a, b, dt=None):
    a, b = as_operand(a), as_operand(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{name}(): expected at least one Tensor argument")
    return apply(OPS[name], (a, b), (dt or result_np_dtype(a, b),))


def add(input, other, *, alpha=1, out=None):
    """``input + alpha * other`` with torch's type promotion."""
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    return _out(_binary("add", input, other), out)


def sub(input, other, *, alpha=1, out=None):
    """``input - alpha * other``."""
    if alpha != 1:
        other = mul(other, alpha) if isinstance(other, Tensor) else other * alpha
    a, b = as_operand(input), as_operand(other)
    if result_np_dtype(a, b) == _BOOL:
        raise DtypeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                         "Use the `^` or `logical_xor()` operator instead.")
    return _out(_binary("sub", a, b), out)


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def mul(input, other, *, out=None):
    return _out(_binary("mul", input, other), out)


def div(input, other, *, rounding_mode=None, out=None):
    """True division (ints give floats); ``rounding_mode`` 'trunc' or 'floor' as torch."""
    a, b = as_operand(input), as_operand(other)
    dt = result_np_dtype(a, b)
    if rounding_mode is None:
        r = _binary("div", a, b, float_np_dtype(dt))
    elif rounding_mode == "trunc":
        r = _binary("trunc_divide", a, b, dt)
    elif rounding_mode == "floor":
        r = _binary("floor_divide", a, b, dt)
    else:
        raise ValueError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found '{rounding_mode}'")
    return _out(r, out)


true_divide = divide = div
multiply = mul
subtract = sub


def floor_divide(input, other):
    return _binary("floor_divide", input, other)


def remainder(input, other):
    return _binary("remainder", input, other)


def fmod(input, other):
    return _binary("fmod", input, other)


def pow(input, exponent):
    """``input ** exponent`` (either may be a scalar)."""
    a, b = as_operand(input), as_operand(exponent)
    if isinstance(b, int) and not isinstance(b, bool) and b < 0 and isinstance(a, Tensor) \
            and a._value.dtype.kind in "iub":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    return _binary("pow", a, b)


def float_power(input, exponent):
    return pow(_cast(as_operand(input), np.dtype("float64")), exponent)


def maximum(input, other):
    return _binary("maximum", input, other)


def minimum(input, other):
    return _binary("minimum", input, other)


fmax, fmin = maximum, minimum


def atan2(input, other):
    a, b = as_operand(input), as_operand(other)
    return _binary("atan2", a, b, float_np_dtype(result_np_dtype(a, b)))


arctan2 = atan2


def _compare(name):
    def f(input, other, *, out=None):
        return _out(_binary(name, input, other), out)
    f.__name__ = name
    f.__doc__ = f"Elementwise ``{name}`` comparison; returns a bool tensor."
    return f


eq, ne, lt, le, gt, ge = (_compare(n) for n in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def equal(input, other) -> bool:
    """True if both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(eq(input, other).all())


def _logical(name):
    def f(input, other):
        return _binary(name, input, other)
    f.__name__ = name
    return f


logical_and, logical_or, logical_xor = (_logical(n) for n in ("logical_and", "logical_or", "logical_xor"))


def _bitwise(name):
    def f(input, other):
        a, b = as_operand(input), as_operand(other)
        dt = result_np_dtype(a, b)
        if dt.kind not in "iub":
            raise DtypeError(f"\"{name}_cpu\" not implemented for '{_dt.from_np(dt).name.capitalize()}': "
                             f"bitwise ops take integer or bool tensors")
        return _binary(name, a, b, dt)
    f.__name__ = name
    return f


bitwise_and, bitwise_or, bitwise_xor, bitwise_left_shift, bitwise_right_shift = (
    _bitwise(n) for n in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                          "bitwise_right_shift"))


# ---- unary ----------------------------------------------------------------------------------

def _unary_same(name):
    op = OPS[name]

    def f(input, *, out=None):
        return _out(apply(op, (input,)), out)
    f.__name__ = name
    f.__doc__ = op.doc or f"Elementwise ``{name}``."
    return f


def _unary_float(name):
    op = OPS[name]

    def f(input, *, out=None):
        return _out(apply(op, (input,), (float_np_dtype(input._value.dtype),)), out)
    f.__name__ = name
    f.__doc__ = op.doc or f"Elementwise ``{name}`` (integer inputs compute in the default float dtype)."
    return f


for _n in ("neg", "abs", "sign", "sgn", "floor", "ceil", "trunc", "frac", "relu", "square",
           "isnan", "isinf", "isfinite", "signbit", "logical_not", "bitwise_not"):
    globals()[_n] = _unary_same(_n)
for _n in ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "rsqrt", "reciprocal",
           "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh",
           "atanh", "sigmoid", "erf", "erfc", "erfinv", "lgamma", "digamma"):
    globals()[_n] = _unary_float(_n)
del _n

negative, absolute, fix = neg, abs, trunc  # noqa: F821 (made above)
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh  # noqa: F821


def round(input, *, decimals=0):
    """Round half to even (as torch), optionally to ``decimals`` places."""
    return apply(OPS["round"], (input,), (int(decimals),))


def positive(input):
    return input


def where(condition, input=None, other=None):
    """``input`` where ``condition`` else ``other``; scalars allowed. One-argument form: nonzero."""
    if input is None and other is None:
        from .index import nonzero
        return nonzero(condition, as_tuple=True)
    c, a, b = as_operand(condition), as_operand(input), as_operand(other)
    if isinstance(c, Tensor) and c._value.dtype != _BOOL:
        c = _cast(c, _BOOL)
    return apply(OPS["where"], (c, a, b), (result_np_dtype(a, b),))


def clamp(input, min=None, max=None, *, out=None):
    """Limit values to [min, max]; bounds may be numbers or tensors (torch's clamp/clip)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        r = input
        if min is not None:
            r = maximum(r, min)
        if max is not None:
            r = minimum(r, max)
        return _out(r, out)
    dt = input._value.dtype
    if dt.kind in "iu" and (isinstance(min, float) or isinstance(max, float)):
        input = _cast(input, _np_default_float())
    return _out(apply(OPS["clamp"], (input,), (min, max)), out)


clip = clamp


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def lerp(input, end, weight):
    a, b, w = as_operand(input), as_operand(end), as_operand(weight)
    return apply(OPS["lerp"], (a, b, w), (result_np_dtype(a, b),))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    return apply(OPS["nan_to_num"], (input,), (nan, posinf, neginf))


def addcmul(input, tensor1, tensor2, *, value=1):
    return add(input, mul(tensor1, tensor2), alpha=value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    return add(input, div(tensor1, tensor2), alpha=value)


def hypot(input, other):
    return sqrt(add(mul(input, input), mul(other, other)))  # noqa: F821


def logaddexp(input, other):
    from .reduce import logsumexp
    from .shape import stack
    return logsumexp(stack([input, other]), 0)


def xlogy(input, other):
    a, b = as_operand(input), as_operand(other)
    return where(eq(a, 0), 0.0, mul(a, log(b)))  # noqa: F821


def _np_default_float():
    return _dt.get_default_dtype().np


def _cast(t: Tensor, dt: np.dtype) -> Tensor:
    if t._value.dtype == dt:
        return t
    return apply(OPS["cast"], (t,), (dt,))


def _out(result: Tensor, out):
    """torch's ``out=`` argument: write the result into an existing tensor."""
    if out is None:
        return result
    if out.shape != result.shape:
        out._value = result._value.astype(out._value.dtype)  # torch resizes ``out``
        out._version += 1
        return out
    return out._set_(result, "out=")
