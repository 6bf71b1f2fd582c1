"""Reductions (sum, mean, var, max with indices, ...) and the softmax family built on logsumexp."""
from __future__ import annotations

import collections

import numpy as np

from .. import dtypes as _dt
from .._dispatch import apply
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import dims_arg, float_np_dtype
from .math import _cast, abs as _abs, pow as _pow, sqrt, sub

# torch returns these named tuples from max/min/sort/topk with a dim.
values_indices = {name: collections.namedtuple(name, ["values", "indices"])
                  for name in ("max", "min", "sort", "topk", "mode", "median", "kthvalue", "cummax", "cummin")}


def _np(dtype):
    return None if dtype is None else _dt.as_dtype(dtype).np


def sum(input, dim=None, keepdim=False, *, dtype=None):
    """Sum over ``dim`` (all dims when None); bool/int inputs sum in int64, as torch."""
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    return apply(OPS["sum"], (input,), (dims_arg(dim, input.ndim), bool(keepdim), d))


def nansum(input, dim=None, keepdim=False, *, dtype=None):
    from .math import isnan, where
    return sum(where(isnan(input), 0, input), dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    """Mean over ``dim``; integer inputs raise, as in torch (pass ``dtype=`` or cast first)."""
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {_dt.from_np(input._value.dtype).name.capitalize()}. "
            f"Use x.float().mean() or mean(dtype=tracenn.float32).")
    return apply(OPS["mean"], (input,), (dims_arg(dim, input.ndim), bool(keepdim), d))


def nanmean(input, dim=None, keepdim=False):
    from .math import isnan, logical_not, where
    keep = logical_not(isnan(input))
    return sum(where(keep, input, 0), dim, keepdim) / sum(keep, dim, keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance; ``correction=1`` (default) is the unbiased estimate, as torch."""
    if isinstance(dim, bool):  # var(x, False): the old positional ``unbiased``
        unbiased, dim = dim, None
    x = input if input._value.dtype.kind in "fcV" else _cast(input, float_np_dtype(input._value.dtype))
    return apply(OPS["var"], (x,), (dims_arg(dim, x.ndim), _correction(unbiased, correction), bool(keepdim)))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return sqrt(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None):
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    if dim is not None:
        dim = (dim,) if not isinstance(dim, (tuple, list)) else dim
    return apply(OPS["prod"], (input,), (dims_arg(dim, input.ndim), bool(keepdim), d))


def _check_nonempty(input, name, dim=None):
    if input._value.size == 0 and dim is None:
        raise RuntimeError(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            "Specify the reduction dim with the 'dim' argument.")


def _extreme(name, largest, input, dim, keepdim, other):
    if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
        other, dim = dim, None
    if other is not None:
        from .math import maximum, minimum
        return (maximum if largest else minimum)(input, other)
    if dim is None:
        _check_nonempty(input, name)
        return apply(OPS["amax" if largest else "amin"], (input,), (None, False))
    d = _wrap_dim(dim, input.ndim)
    if input._value.ndim == 0:
        from .creation import zeros
        return values_indices[name](input, zeros((), dtype=_dt.int64))
    vals, idx = apply(OPS["max_dim"], (input,), (d, bool(keepdim), largest))
    return values_indices[name](vals, idx)


def max(input, dim=None, keepdim=False, *, other=None):
    """``max(x)`` -> the largest value; ``max(x, dim)`` -> (values, indices); ``max(x, y)`` -> maximum."""
    return _extreme("max", True, input, dim, keepdim, other)


def min(input, dim=None, keepdim=False, *, other=None):
    """``min(x)``, ``min(x, dim)`` -> (values, indices), ``min(x, y)`` -> minimum."""
    return _extreme("min", False, input, dim, keepdim, other)


def amax(input, dim=(), keepdim=False):
    """Max over ``dim`` (all when empty); ties share the gradient evenly."""
    return apply(OPS["amax"], (input,), (dims_arg(dim, input.ndim), bool(keepdim)))


def amin(input, dim=(), keepdim=False):
    return apply(OPS["amin"], (input,), (dims_arg(dim, input.ndim), bool(keepdim)))


def aminmax(input, *, dim=None, keepdim=False):
    r = collections.namedtuple("aminmax", ["min", "max"])
    return r(amin(input, () if dim is None else dim, keepdim), amax(input, () if dim is None else dim, keepdim))


def argmax(input, dim=None, keepdim=False):
    """Index of the largest value (first on ties) over ``dim``, or in the flattened tensor."""
    _check_nonempty(input, "argmax", dim)
    d = None if dim is None else _wrap_dim(dim, input.ndim)
    return apply(OPS["argmax"], (input,), (d, bool(keepdim)))


def argmin(input, dim=None, keepdim=False):
    _check_nonempty(input, "argmin", dim)
    d = None if dim is None else _wrap_dim(dim, input.ndim)
    return apply(OPS["argmin"], (input,), (d, bool(keepdim)))


def all(input, dim=None, keepdim=False):
    return apply(OPS["all"], (input,), (dims_arg(dim, input.ndim), bool(keepdim)))


def any(input, dim=None, keepdim=False):
    return apply(OPS["any"], (input,), (dims_arg(dim, input.ndim), bool(keepdim)))


def count_nonzero(input, dim=None):
    from .math import ne
    return sum(ne(input, 0), dim)


def logsumexp(input, dim, keepdim=False):
    """``log(sum(exp(x), dim))`` computed stably."""
    x = input if input._value.dtype.kind in "fcV" else _cast(input, float_np_dtype(input._value.dtype))
    return apply(OPS["logsumexp"], (x,), (dims_arg(dim, x.ndim), bool(keepdim)))


def _softmax_input(input, dim, dtype, name):
    if dim is None:
        raise TypeError(f"{name}() missing required argument 'dim' (torch's implicit-dim choice "
                        "is deprecated; pass dim=-1 for the last dimension)")
    x = input
    if dtype is not None:
        x = _cast(x, _dt.as_dtype(dtype).np)
    elif x._value.dtype.kind not in "fcV":
        x = _cast(x, float_np_dtype(x._value.dtype))
    return x, _wrap_dim(dim, x.ndim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x, dim)``: a composite of two primitives."""
    x, d = _softmax_input(input, dim, dtype, "log_softmax")
    return sub(x, logsumexp(x, d, keepdim=True))


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x - logsumexp(x, dim))``: a composite of three primitives."""
    from .math import exp
    x, d = _softmax_input(input, dim, dtype, "softmax")
    return exp(sub(x, logsumexp(x, d, keepdim=True)))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    from .math import neg
    return softmax(neg(input), dim, dtype=dtype)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (all elements when None); 'fro' is the 2-norm."""
    if dtype is not None:
        input = _cast(input, _dt.as_dtype(dtype).np)
    if p in ("fro", 2, 2.0):
        from .math import square
        return sqrt(sum(square(_abs(input)) if input.is_complex() else square(input), dim, keepdim))
    if p in (float("inf"), "inf"):
        return amax(_abs(input), () if dim is None else dim, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(_abs(input), () if dim is None else dim, keepdim)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    if p == 0:
        from .math import ne
        return sum(_cast(ne(input, 0), input._value.dtype), dim, keepdim)
    return _pow(sum(_pow(_abs(input), p), dim, keepdim), 1.0 / p)


def cumsum(input, dim, *, dtype=None):
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    return apply(OPS["cumsum"], (input,), (_wrap_dim(dim, input.ndim), d))


def cumprod(input, dim, *, dtype=None):
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    return apply(OPS["cumprod"], (input,), (_wrap_dim(dim, input.ndim), d))


def cummax(input, dim):
    v, i = apply(OPS["cummax"], (input,), (_wrap_dim(dim, input.ndim), True))
    return values_indices["cummax"](v, i)


def cummin(input, dim):
    v, i = apply(OPS["cummax"], (input,), (_wrap_dim(dim, input.ndim), False))
    return values_indices["cummin"](v, i)


def median(input, dim=None, keepdim=False):
    """The lower median (torch's choice for even counts); with ``dim`` -> (values, indices)."""
    from .index import sort
    from .shape import narrow, reshape, squeeze
    if dim is None:
        flat = reshape(input, (-1,))
        v = sort(flat).values
        return v[(flat.numel() - 1) // 2]
    d = _wrap_dim(dim, input.ndim)
    s = sort(input, d)
    k = (input.shape[d] - 1) // 2
    vals, idx = narrow(s.values, d, k, 1), narrow(s.indices, d, k, 1)
    if not keepdim:
        vals, idx = squeeze(vals, d), squeeze(idx, d)
    return values_indices["median"](vals, idx)


def dist(input, other, p=2):
    return norm(sub(input, other), p)
