"""More of torch's elementwise math and small linear algebra: copysign, deg2rad/rad2deg, heaviside,
gcd/lcm, logaddexp2, logit/sinc/i0 (torch.special's, as top-level functions), isin, isneginf/isposinf,
isreal, frexp/ldexp, nextafter, trapezoid/trapz/cumulative_trapezoid, vdot, cross, chain_matmul,
addbmm, addr, renorm.

All are compositions of existing ops, so they run eagerly, compile, and differentiate like them.
"""
from __future__ import annotations

import collections
import math as _pymath

import numpy as np

from .. import _dispatch, dtypes as _dt
from ..tensor import Tensor, _TORCH_NAMES, _wrap_dim
from ._common import as_operand, value_of
from .math import _promoted, _refuse, _tensor_args, result_np_dtype

__all__ = ["copysign", "deg2rad", "rad2deg", "heaviside", "gcd", "lcm", "logaddexp2", "logit", "sinc", "i0",
           "isin", "isneginf", "isposinf", "isreal", "frexp", "ldexp", "nextafter", "trapezoid", "trapz",
           "cumulative_trapezoid", "vdot", "cross", "chain_matmul", "addbmm", "addr", "renorm"]

_frexp = collections.namedtuple("frexp", ["mantissa", "exponent"])


def _t():
    import tracenn
    return tracenn


def _floating(x):
    """``x`` as a tensor in its floating dtype (integers and bools in the default float)."""
    T = _t()
    x = as_operand(x)
    if not isinstance(x, Tensor):
        x = T.tensor(x)
    return x if x.is_floating_point() or x.is_complex() else x.to(T.get_default_dtype())


# ---- elementwise -------------------------------------------------------------------------------

def copysign(input, other):
    """``|input|`` with the sign of ``other`` (its sign bit: ``-0.0`` counts as negative); floating
    result, with torch's type promotion.

    >>> import tracenn as torch
    >>> torch.copysign(torch.tensor([1, -2, 3]), -0.0)
    tensor([-1., -2., -3.])
    """
    a, b = _promoted(input, other, floating=True)
    mag = a.abs()
    return _t().where(_t().signbit(b), -mag, mag)


def deg2rad(input):
    """Degrees to radians (integers give the default float dtype)."""
    return _floating(input) * (_pymath.pi / 180.0)


def rad2deg(input):
    """Radians to degrees (integers give the default float dtype)."""
    return _floating(input) * (180.0 / _pymath.pi)


def heaviside(input, values):
    """The Heaviside step: 0 where ``input < 0``, ``values`` where 0, 1 where ``input > 0``."""
    T = _t()
    _tensor_args("heaviside", input, values)
    if input.dtype != values.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    return T.where(input == 0, values, (input > 0).to(input.dtype))


def _check_integral(name, a, b):
    dt = result_np_dtype(a, b)
    _refuse(f"{name}_cpu", dt, "fcVb", f"{name} takes integer tensors; e.g. x.long()")


def gcd(input, other):
    """The greatest common divisor of integers, elementwise (non-negative; ``gcd(0, 0) = 0``).

    >>> import tracenn as torch
    >>> torch.gcd(torch.tensor([12, -9, 0]), torch.tensor([18, 6, 5]))
    tensor([6, 3, 5])
    """
    T = _t()
    _check_integral("gcd", input, other)
    a, b = _promoted(input, other)
    a, b = T.broadcast_tensors(a.abs(), b.abs())
    # Euclid's algorithm: eagerly until every pair is done; traced, for the most steps any pair of
    # this width can need (consecutive Fibonacci numbers: about 1.44 * bits).
    traced = _dispatch.abstract(value_of(a))
    steps = int(1.45 * 8 * a.element_size()) + 2
    for _ in range(steps):
        if not traced and not bool((b != 0).any()):
            break
        nz = b != 0
        safe = T.where(nz, b, T.ones_like(b))
        a, b = T.where(nz, b, a), T.where(nz, a % safe, b)
    return a


def lcm(input, other):
    """The least common multiple of integers, elementwise (non-negative; 0 if either is 0)."""
    T = _t()
    _check_integral("lcm", input, other)
    a, b = _promoted(input, other)
    g = gcd(a, b)
    zero = g == 0
    return T.where(zero, T.zeros_like(g), (a // T.where(zero, T.ones_like(g), g) * b).abs())


def logaddexp2(input, other):
    """``log2(2**input + 2**other)`` without overflow (floating tensors)."""
    _tensor_args("logaddexp2", input, other)
    _refuse("logaddexp2_cpu", result_np_dtype(input, other), "biu",
            "logaddexp2 takes floating-point tensors; e.g. x.float()")
    a, b = _promoted(input, other, floating=True)
    ln2 = _pymath.log(2.0)
    return _t().logaddexp(a * ln2, b * ln2) / ln2


def logit(input, eps=None):
    """``log(p / (1 - p))``; with ``eps``, ``p`` is first clamped to ``[eps, 1 - eps]``."""
    return _t().special.logit(input, eps)


def sinc(input):
    """The normalized sinc, ``sin(pi x) / (pi x)`` (1 at 0)."""
    return _t().special.sinc(input)


def i0(input):
    """The modified Bessel function of the first kind, order 0."""
    return _t().special.i0(input)


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each of ``elements`` is among ``test_elements`` (either may be a number).

    >>> import tracenn as torch
    >>> torch.isin(torch.tensor([[1, 2], [3, 4]]), torch.tensor([2, 3]))
    tensor([[False,  True],
            [ True, False]])
    """
    T = _t()
    if not isinstance(elements, Tensor) and not isinstance(test_elements, Tensor):
        raise TypeError("isin() received an invalid combination of arguments: expected at least one Tensor")
    e = elements if isinstance(elements, Tensor) else T.tensor(elements)
    t = test_elements if isinstance(test_elements, Tensor) else T.tensor(test_elements)
    if _dt.bool in (e.dtype, t.dtype):
        raise RuntimeError("Unsupported input type encountered for isin(): Bool")
    a, b = _promoted(e, t)
    found = (a.unsqueeze(-1) == b.reshape(-1)).any(-1)
    return ~found if invert else found


def isneginf(input):
    """Whether each element is negative infinity."""
    return _t().isinf(input) & _t().signbit(input) if input.is_floating_point() else _t().zeros_like(
        input, dtype=_dt.bool)


def isposinf(input):
    """Whether each element is positive infinity."""
    return _t().isinf(input) & ~_t().signbit(input) if input.is_floating_point() else _t().zeros_like(
        input, dtype=_dt.bool)


def isreal(input):
    """Whether each element is real (a complex element with zero imaginary part counts)."""
    if input.is_complex():
        return input.imag == 0
    return _t().ones_like(input, dtype=_dt.bool)


def frexp(input):
    """Split into ``mantissa`` in ``[0.5, 1)`` (by magnitude) and an int32 ``exponent``:
    ``input = mantissa * 2**exponent``; zeros, infinities and NaNs keep their value, exponent 0.

    >>> import tracenn as torch
    >>> torch.frexp(torch.tensor([8.0, -0.75]))
    frexp(mantissa=tensor([ 0.5000, -0.7500]), exponent=tensor([4, 0], dtype=tracenn.int32))
    """
    T = _t()
    if not input.is_floating_point():
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    # From the bits: exact, and right for subnormals (which XLA on CPU flushes to zero in arithmetic).
    info = np.finfo(np.dtype(input._value.dtype))
    nmant, bias = int(info.nmant), int(info.maxexp) - 1
    width = 8 * input.element_size()
    bits = input.detach().view({2: _dt.int16, 4: _dt.int32, 8: _dt.int64}[input.element_size()])
    field = (bits >> nmant) & ((1 << (width - 1 - nmant)) - 1)  # the biased exponent
    low = bits & ((1 << nmant) - 1)  # a subnormal's value is low * 2**(1 - bias - nmant)
    lowf = low.to(_dt.float64 if width == 64 else _dt.float32)
    top = T.floor(T.log2(T.where(low > 0, lowf, T.ones_like(lowf))))
    top = T.where(2.0 ** top > lowf, top - 1, top)  # log2 may round up just below a power of two
    sub_e = top + (2 - bias - nmant)
    sub_m = (lowf / 2.0 ** (top + 1)).to(input.dtype) * T.where(bits < 0, -1.0, 1.0).to(input.dtype)
    top_field = (1 << (width - 1 - nmant)) - 1
    special = ((field == 0) & (low == 0)) | (field == top_field)  # zeros, infinities, NaNs
    e = T.where(field == 0, sub_e.to(bits.dtype), field - (bias - 1))
    e = T.where(special, T.zeros_like(e), e)
    normal_m = _scale2(input, -e.to(input.dtype))
    mantissa = T.where(special, input, T.where(field == 0, sub_m + 0 * input, normal_m))
    return _frexp(mantissa, e.to(_dt.int32))


def _scale2(x, e):
    """``x * 2**e`` in two halves, so neither power overflows when the result does not."""
    half = _t().floor(e / 2)
    return x * 2.0 ** half * 2.0 ** (e - half)


def ldexp(input, other):
    """``input * 2**other`` (a floating result).

    The gradient is ``2**other``; torch 2.x computes it in ``other``'s integer dtype, so a negative
    integer exponent gives it 0 there (a torch bug this does not copy)."""
    return _t().mul(input, _t().pow(2.0, other))


def nextafter(input, other):
    """The next representable floating value after ``input`` towards ``other``.

    >>> import tracenn as torch
    >>> torch.nextafter(torch.tensor([1.0]), torch.tensor([2.0])) - 1
    tensor([1.1921e-07])
    """
    T = _t()
    _tensor_args("nextafter", input, other)
    dt = result_np_dtype(input, other)
    _refuse("nextafter_cpu", dt, "biu", "nextafter takes floating-point tensors; e.g. x.float()")
    a, b = T.broadcast_tensors(*_promoted(input, other))
    ints = {2: _dt.int16, 4: _dt.int32, 8: _dt.int64}[a.element_size()]
    # In integers: floats ordered by magnitude bits, negatives mirrored (exact for subnormals, which
    # XLA on CPU reads as zero in float arithmetic).
    sign = T.full_like(a.view(ints), -2 ** (8 * a.element_size() - 1))
    ba, bb = a.view(ints), b.view(ints)
    ka = T.where(ba < 0, -(ba & ~sign), ba)
    kb = T.where(bb < 0, -(bb & ~sign), bb)
    k = ka + T.where(kb > ka, T.ones_like(ka), -T.ones_like(ka))
    bits = T.where(k < 0, (-k) | sign, k)
    bits = T.where(k == 0, ba & sign, bits)  # stepping onto zero keeps the sign of the start
    out = T.where(ka == kb, b, bits.view(a.dtype))
    return T.where(T.isnan(a) | T.isnan(b), a + b, out).detach()


# ---- integration -------------------------------------------------------------------------------

def _no_bool(name, y, x):
    if y.dtype == _dt.bool or (x is not None and x.dtype == _dt.bool):
        which = "`y`" if x is None else "`x` or `y`"
        raise RuntimeError(f"{name}: received a bool input for {which}, but bool is not supported")


def _widths(y, x, dx, d):
    """The interval widths along ``d``: from sample points ``x`` (1-d or y's shape), or ``dx``."""
    if x is None:
        return 1.0 if dx is None else dx
    if x.ndim == 1:
        if x.shape[0] != y.shape[d]:
            raise RuntimeError("trapezoid: There must be one `x` value for each sample point")
        w = _t().diff(x)
        return w.reshape((-1,) + (1,) * (y.ndim - 1 - d))
    return _t().diff(x, dim=d)


def trapezoid(y, x=None, *, dx=None, dim=-1):
    """The trapezoid-rule integral of ``y`` along ``dim``: over sample points ``x`` or spacing ``dx``.

    >>> import tracenn as torch
    >>> torch.trapezoid(torch.tensor([1.0, 2.0, 3.0]), dx=2.0)
    tensor(8.)
    """
    if x is not None and dx is not None:
        raise TypeError("trapezoid() received an invalid combination of arguments: pass x or dx, not both")
    _no_bool("trapezoid", y, x)
    d = _wrap_dim(dim, y.ndim)
    n = y.shape[d]
    if n == 0:
        return _floating(y).sum(d) * 0
    # torch's formulas (the same rounding, and integer sums in the integer dtype, as torch's)
    if x is None:
        return (y.sum(d) - (y.select(d, 0) + y.select(d, -1)) * 0.5) * (1.0 if dx is None else dx)
    return (_widths(y, x, None, d) * (y.narrow(d, 1, n - 1) + y.narrow(d, 0, n - 1))).sum(d) / 2.0


def trapz(y, x=None, *, dx=None, dim=-1):
    """:func:`trapezoid` (torch's older name)."""
    return trapezoid(y, x, dx=dx, dim=dim)


def cumulative_trapezoid(y, x=None, *, dx=None, dim=-1):
    """The running trapezoid-rule integral of ``y`` along ``dim`` (one fewer element)."""
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid() received an invalid combination of arguments: pass x or dx, not "
                        "both")
    _no_bool("cumulative_trapezoid", y, x)
    d = _wrap_dim(dim, y.ndim)
    n = y.shape[d]
    pairs = y.narrow(d, 1, max(n - 1, 0)) + y.narrow(d, 0, max(n - 1, 0))
    if x is None:
        return ((1.0 if dx is None else dx) / 2.0 * pairs).cumsum(d)
    return (_widths(y, x, None, d) * pairs / 2.0).cumsum(d)


# ---- linear algebra ----------------------------------------------------------------------------

def vdot(input, other):
    """The dot product of two 1-d tensors, the first conjugated."""
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.dtype != other.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_TORCH_NAMES[input.dtype]} and {_TORCH_NAMES[other.dtype]}")
    if input.shape[0] != other.shape[0]:
        n, m = input.shape[0], other.shape[0]
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to have the same "
                           f"number of elements, but got {n} and {m} elements respectively")
    if input.dtype == _dt.bool:
        raise NotImplementedError("\"dot\" not implemented for 'Bool'")
    return (input.conj() * other).sum(dtype=input.dtype)


def cross(input, other, dim=None):
    """The cross product of 3-vectors along ``dim``; without ``dim``, along the first dim of size 3
    (torch's default, unlike ``linalg.cross``'s ``dim=-1``)."""
    T = _t()
    if input.ndim != other.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    if dim is None:
        shape = T.broadcast_shapes(tuple(input.shape), tuple(other.shape))
        dim = next((k for k, s in enumerate(shape) if s == 3), None)
        if dim is None:
            raise RuntimeError("no dimension of size 3 in input")
    return T.linalg.cross(input, other, dim=dim)


def chain_matmul(*matrices):
    """The product of the matrices, left to right (torch deprecates it for ``linalg.multi_dot``)."""
    if not matrices:
        raise RuntimeError("chain_matmul(): Expected one or more matrices")
    if len(matrices) == 1:
        return matrices[0].clone()
    return _t().linalg.multi_dot(list(matrices))


def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]`` (``beta=0`` ignores ``input``)."""
    if batch1.ndim != 3 or batch2.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if batch1.ndim != 3 else "batch2 must be a 3D tensor")
    if batch1.dtype == _dt.bool:
        raise NotImplementedError("\"addmm_impl_cpu_\" not implemented for 'Bool'")
    return _beta_alpha(input, _t().bmm(batch1, batch2).sum(0, dtype=batch1.dtype), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    """``beta * input + alpha * outer(vec1, vec2)`` (``beta=0`` ignores ``input``)."""
    if vec1.ndim != 1 or vec2.ndim != 1:
        raise RuntimeError(f"addr: Expected 1-D argument vec1, but got {vec1.ndim}-D" if vec1.ndim != 1
                           else f"addr: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    return _beta_alpha(input, _t().outer(vec1, vec2), beta, alpha)


def _beta_alpha(input, prod, beta, alpha):
    from .linalg import scaled_add  # (beta=0: input is not read, its NaNs do not propagate)
    return scaled_add(input, prod, beta, alpha)


def renorm(input, p, dim, maxnorm):
    """Rescale each slice ``input.select(dim, i)`` whose ``p``-norm exceeds ``maxnorm`` to norm
    ``maxnorm`` (the others are unchanged)."""
    T = _t()
    if input.ndim < 2:
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {input.ndim} dimensions")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    if not (input.is_floating_point() or input.is_complex()):
        raise RuntimeError(f"linalg.vector_norm: Expected a floating point or complex tensor as input. Got "
                           f"{_TORCH_NAMES[input.dtype]}")
    d = _wrap_dim(dim, input.ndim)
    others = tuple(k for k in range(input.ndim) if k != d)
    norm = T.linalg.vector_norm(input, p, dim=others, keepdim=True)
    factor = T.where(norm > maxnorm, maxnorm / (norm + 1e-7), T.ones_like(norm))
    return input * factor
