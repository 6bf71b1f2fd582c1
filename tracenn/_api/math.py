"""Elementwise math: arithmetic with torch's promotion, comparisons, unary functions, where, clamp."""
from __future__ import annotations

import jax
import numpy as np

from .. import dtypes as _dt
from .._dispatch import apply, scalar_operand
from ..errors import DtypeError
from ..ops import OPS
from ..tensor import Tensor
from ._common import as_operand, float_np_dtype, result_np_dtype, tensor_arg, value_of

_BOOL = np.dtype(bool)
_FLOAT8 = frozenset(d.np for d in _dt.FLOAT8)


def _binary(name, a, b, dt=None):
    a, b = as_operand(a), as_operand(b)
    dt = dt or result_np_dtype(a, b)  # (from the numbers' Python types: before scalar_operand)
    if dt in _FLOAT8 and name not in ("eq", "ne"):
        # torch's CPU kernels compare float8 for equality and nothing more
        raise DtypeError(f"\"{name}\" not implemented for '{_torch_name(dt)}'; float8 tensors store values: "
                         "compute in a wider dtype, e.g. x.float()")
    if not isinstance(b, Tensor):
        if not isinstance(a, Tensor):
            raise TypeError(f"{name}(): expected at least one Tensor argument")
        b = scalar_operand(b, a._value)
    elif not isinstance(a, Tensor):
        a = scalar_operand(a, b._value)
    return apply(OPS[name], (a, b), (dt,))


def _torch_name(dt: np.dtype) -> str:
    """torch's C++ name of a dtype in kernel errors: 'Bool', 'Long', 'Float', 'Half', ..."""
    return _dt.TYPE_NAMES[_dt.from_np(dt)].replace("torch.", "").replace("Tensor", "")


def _refuse(kernel, dt: np.dtype, kinds: str, hint: str):
    """torch has no ``kernel`` for this computation dtype: raise its error, and say what to do."""
    if dt.kind in kinds:
        raise DtypeError(f"\"{kernel}\" not implemented for '{_torch_name(dt)}'; {hint}")


def _tensor_args(name, input, other):
    """The ops that take two tensors only (maximum, atan2, ...): a number raises TypeError, as torch."""
    tensor_arg(name, "input", 1, input)
    tensor_arg(name, "end" if name == "lerp" else "other", 2, other)


def _scaled(input, other, alpha):
    """``alpha * other`` for add/sub; a float ``alpha`` cannot scale an integer result (torch)."""
    if alpha == 1:
        return other
    if isinstance(alpha, float) and result_np_dtype(as_operand(input), as_operand(other)).kind in "iub":
        raise DtypeError("For integral input tensors, argument alpha must not be a floating point number. "
                         f"Got alpha={alpha}; pass an int alpha or make the inputs floating (x.float()).")
    return mul(other, alpha) if isinstance(other, Tensor) else other * alpha


def add(input, other, *, alpha=1, out=None):
    """``input + alpha * other`` with torch's type promotion."""
    r = _binary("add", input, other if alpha == 1 else _scaled(input, other, alpha))
    return r if out is None else _out(r, out)


def sub(input, other, *, alpha=1, out=None):
    """``input - alpha * other``."""
    other = _scaled(input, other, alpha)
    a, b = as_operand(input), as_operand(other)
    isbool = [isinstance(x, bool) or (isinstance(x, Tensor) and x._value.dtype == _BOOL) for x in (a, b)]
    if all(isbool):
        raise DtypeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                         "Use the `^` or `logical_xor()` operator instead.")
    if any(isbool):
        raise DtypeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                         "trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    return _out(_binary("sub", a, b), out)


def rsub(input, other, *, alpha=1):
    return sub(other, input, alpha=alpha)


def mul(input, other, *, out=None):
    r = _binary("mul", input, other)
    return r if out is None else _out(r, out)


def div(input, other, *, rounding_mode=None, out=None):
    """True division (ints give floats); ``rounding_mode`` 'trunc' or 'floor' as torch.

    An integer division with a rounding mode raises ``RuntimeError: ZeroDivisionError`` for a zero
    divisor in eager mode, as torch on CPU; compiled code returns XLA's values there instead
    (see :func:`floor_divide`).
    """
    a, b = as_operand(input), as_operand(other)
    dt = result_np_dtype(a, b)
    if rounding_mode is None:
        r = _binary("div", a, b, float_np_dtype(dt))
    elif rounding_mode == "trunc":
        _refuse("div_trunc_cpu", dt, "b", "convert the inputs first, e.g. x.long()")
        _check_divisor("div", b, dt)
        r = _binary("trunc_divide", a, b, dt)
    elif rounding_mode == "floor":
        r = floor_divide(a, b)
    else:
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")
    return _out(r, out)


true_divide = divide = div
multiply = mul
subtract = sub


def _check_divisor(name, divisor, dt: np.dtype) -> None:
    """Integer division by zero raises ``RuntimeError: ZeroDivisionError``, as torch's CPU kernels do.

    Only an integer computation dtype is checked (floats give inf/nan). A Python-number divisor is
    checked without touching the device; a tensor divisor costs one host read of its values, as
    torch's check does, and only for arrays on the CPU (torch's CUDA kernels do not check either).
    Nothing is checked while compiling or under ``jax.jit``: the values do not exist yet, and the
    compiled program returns XLA's values instead of raising (see :func:`floor_divide`).
    """
    if dt.kind not in "iu":
        return
    if not isinstance(divisor, Tensor):
        zero = divisor == 0
    else:
        v = value_of(divisor)
        if not isinstance(v, jax.Array) or isinstance(v, jax.core.Tracer) or v.size == 0 \
                or next(iter(v.devices())).platform != "cpu":
            return
        zero = not np.asarray(v).all()
    if zero:
        raise RuntimeError(
            f"ZeroDivisionError: integer {name} by zero. Make the divisor nonzero (e.g. "
            f"tracenn.where(y == 0, 1, y)), or divide floating-point tensors (x.float()) to get inf/nan.")


_ZERO_DIVISOR_DOC = """

    With an integer dtype, a zero divisor raises ``RuntimeError: ZeroDivisionError`` in eager mode,
    as torch does on CPU. Compiled code (``tracenn.compile``, ``jax.jit``) cannot raise it, because
    the check depends on values: there the result holds XLA's values for those elements (on CPU
    -1 or -2 for a quotient, 0 for a remainder), never an error.
    """


def _no_bool(name, kernel, doc):
    def f(input, other):
        a, b = as_operand(input), as_operand(other)
        dt = result_np_dtype(a, b)
        _refuse(kernel, dt, "b", "convert the inputs first, e.g. x.long()")
        _check_divisor(name, b, dt)
        return _binary(name, a, b, dt)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc + _ZERO_DIVISOR_DOC
    return f


floor_divide = _no_bool("floor_divide", "div_floor_cpu",
                        "``input // other`` rounded toward negative infinity (Python's ``//``).")
remainder = _no_bool("remainder", "remainder_cpu", "Python's ``%``: the result has the sign of ``other``.")
fmod = _no_bool("fmod", "fmod_cpu", "C's ``fmod``: the result has the sign of ``input``.")


def pow(input, exponent):
    """``input ** exponent`` (either may be a scalar)."""
    a, b = as_operand(input), as_operand(exponent)
    if isinstance(b, int) and not isinstance(b, bool) and b < 0 and isinstance(a, Tensor) \
            and a._value.dtype.kind in "iub":
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    dt = result_np_dtype(a, b)
    if isinstance(b, Tensor):  # bool ** bool exists only with a Python-bool exponent
        _refuse("pow", dt, "b", "convert the inputs first, e.g. x.long()")
    return _binary("pow", a, b, dt)


def float_power(input, exponent):
    return pow(_cast(as_operand(input), np.dtype("float64")), exponent)


def maximum(input, other):
    """Elementwise max of two tensors (NaN propagates; a tie splits the gradient, as torch)."""
    _tensor_args("maximum", input, other)
    return _binary("maximum", input, other)


def minimum(input, other):
    """Elementwise min of two tensors (NaN propagates)."""
    _tensor_args("minimum", input, other)
    return _binary("minimum", input, other)


def fmax(input, other):
    """Elementwise max that ignores NaN (NaN only where both are NaN); ties send the gradient to ``input``."""
    return _fminmax("fmax", input, other, ge)  # noqa: F821 (made below)


def fmin(input, other):
    """Elementwise min that ignores NaN (NaN only where both are NaN)."""
    return _fminmax("fmin", input, other, le)  # noqa: F821 (made below)


def _fminmax(name, a, b, keep):
    _tensor_args(name, a, b)
    pick_a = logical_or(keep(a, b), isnan(b))  # noqa: F821 (made below)
    return where(pick_a, a, b)


def atan2(input, other):
    """The angle of the point (other, input): ``atan(input / other)`` in the right quadrant."""
    _tensor_args("atan2", input, other)
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
        kernel = {"bitwise_left_shift": "lshift_cpu", "bitwise_right_shift": "rshift_cpu"}.get(name, name + "_cpu")
        _refuse(kernel, dt, "fcV" + ("b" if "shift" in name else ""),
                f"bitwise {'shifts take integer' if 'shift' in name else 'ops take integer or bool'} tensors; "
                "convert first, e.g. x.long()")
        return _binary(name, a, b, dt)
    f.__name__ = name
    return f


bitwise_and, bitwise_or, bitwise_xor, bitwise_left_shift, bitwise_right_shift = (
    _bitwise(n) for n in ("bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                          "bitwise_right_shift"))


# ---- unary ----------------------------------------------------------------------------------

# dtype kinds torch refuses per unary op ("b" bool, "iu" integer, "f" floating), and what to say.
_REFUSED = {
    "neg": ("b", "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                 "invert a mask, use the `~` or `logical_not()` operator instead."),
    "relu": ("b", "Boolean inputs not supported for relu; convert first, e.g. x.float()."),
    "frac": ("biu", None), "abs": ("b", None), "floor": ("b", None), "ceil": ("b", None),
    "trunc": ("b", None), "round": ("b", None), "bitwise_not": ("fV", None),
}


def _check_unary(name, input):
    refused = _REFUSED.get(name)
    kind = input._value.dtype.kind
    if refused is None or kind not in refused[0]:
        return
    if refused[1] is not None:
        raise DtypeError(refused[1])
    tname = _dt.TYPE_NAMES[input.dtype].replace("torch.", "").replace("Tensor", "")
    what = "integer or bool" if name == "bitwise_not" else "floating-point" if name == "frac" else "numeric (non-bool)"
    hint = "x.long()" if name == "bitwise_not" else "x.float()"
    raise DtypeError(f"\"{name}_cpu\" not implemented for '{tname}': {name} takes {what} tensors; "
                     f"convert first, e.g. {hint}")


def _unary_same(name):
    op = OPS[name]

    def f(input, *, out=None):
        _check_unary(name, input)
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
    _check_unary("round", input)
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
        if not all(b is None or isinstance(b, Tensor) for b in (min, max)):
            raise TypeError("clamp(): min and max must both be tensors or both be numbers, got "
                            f"{type(min).__name__} and {type(max).__name__}; wrap the number, e.g. "
                            "tracenn.tensor(0.5)")
        # where-based, as torch's gradient: x keeps it on a tie, a bound gets it where it wins; NaN in
        # x or in a tensor bound propagates.
        r = input
        for bound, outside in ((min, lt), (max, gt)):  # noqa: F821 (made above)
            if bound is None:
                continue
            pick = outside(r, bound)
            if isinstance(bound, Tensor) and bound.is_floating_point():
                pick = logical_or(pick, isnan(bound))  # noqa: F821
            r = where(pick, bound, r)
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
    """``input + weight * (end - input)``; ``end`` (and a tensor ``weight``) must have input's dtype."""
    _tensor_args("lerp", input, end)
    a, b, w = input, end, as_operand(weight)
    for what, x in (("end", b), ("weight", w)):
        if isinstance(x, Tensor) and x._value.dtype != a._value.dtype:
            raise DtypeError(f"expected dtype {_torch_name(a._value.dtype).lower()} for `{what}` but got dtype "
                             f"{_torch_name(x._value.dtype).lower()}; cast it first, e.g. {what}.to(input.dtype)")
    kernel = "lerp_kernel_tensor" if isinstance(w, Tensor) else "lerp_kernel_scalar"
    _refuse(kernel, a._value.dtype, "biu", "lerp takes floating-point tensors; e.g. x.float()")
    return apply(OPS["lerp"], (a, b, w), (a._value.dtype,))


def nan_to_num(input, nan=0.0, posinf=None, neginf=None):
    return apply(OPS["nan_to_num"], (input,), (nan, posinf, neginf))


def addcmul(input, tensor1, tensor2, *, value=1):
    return add(input, mul(tensor1, tensor2), alpha=value)


def addcdiv(input, tensor1, tensor2, *, value=1):
    return add(input, div(tensor1, tensor2), alpha=value)


def _promoted(a, b, floating=False):
    """Both operands as tensors of their torch result dtype (composites compute in it)."""
    a, b = as_operand(a), as_operand(b)
    dt = result_np_dtype(a, b)
    if floating:
        dt = float_np_dtype(dt)
    return _as_tensor(a, dt), _as_tensor(b, dt)


def _as_tensor(x, dt: np.dtype) -> Tensor:
    if isinstance(x, Tensor):
        return _cast(x, dt)
    return apply(OPS["full"], (x,), ((), dt))


def hypot(input, other):
    """``sqrt(input**2 + other**2)``, computed in the promoted dtype (floating tensors only)."""
    _tensor_args("hypot", input, other)
    _refuse("hypot_cpu", result_np_dtype(input, other), "biu", "hypot takes floating-point tensors; e.g. x.float()")
    a, b = _promoted(input, other)
    return sqrt(add(mul(a, a), mul(b, b)))  # noqa: F821


def logaddexp(input, other):
    """``log(exp(input) + exp(other))`` without overflow (inputs broadcast)."""
    _tensor_args("logaddexp", input, other)
    _refuse("logaddexp_cpu", result_np_dtype(input, other), "biu",
            "logaddexp takes floating-point tensors; e.g. x.float()")
    from .reduce import logsumexp
    from .shape import broadcast_tensors, stack
    return logsumexp(stack(broadcast_tensors(*_promoted(input, other, floating=True))), 0)


def xlogy(input, other):
    """``input * log(other)``, with 0 where ``input`` is 0 (NaN where ``other`` is NaN), as torch."""
    a, b = _promoted(input, other, floating=True)
    at_zero = eq(a, 0)  # noqa: F821
    zero = where(isnan(b), b, 0.0)  # noqa: F821
    # log of a safe operand where x == 0: the masked branch must not send 0 * log(0) = nan back.
    return where(at_zero, zero, mul(a, log(where(at_zero, 1.0, b))))  # noqa: F821


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
