"""Reductions (sum, mean, var, max with indices, ...) and the softmax family built on logsumexp."""
from __future__ import annotations

import collections
import sys
import types

import numpy as np

from .. import dtypes as _dt
from .._dispatch import apply
from ..errors import DtypeError
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import dims_arg, float_np_dtype, numpy_names
from .math import _cast, abs as _abs, pow as _pow, sqrt, sub

_SOFTMAX, _LOG_SOFTMAX = OPS["softmax"], OPS["log_softmax"]


def return_type(name: str, fields: list[str]) -> type:
    """The named tuple that ``name`` returns, as torch's ``torch.return_types.<name>``: fields by
    position or name (``v, i = x.max(1)``, ``x.max(1).indices``), printed as torch prints them,
    one field a line::

        tracenn.return_types.max(
        values=tensor([5., 3.]),
        indices=tensor([1, 0]))
    """
    def __repr__(self):
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"tracenn.return_types.{name}(\n{body})"

    def __reduce__(self):  # pickled by name: the class is no module attribute (``max`` is the function)
        return _rebuild_return_type, (name, tuple(self))
    cls = type(name, (collections.namedtuple(name, fields),),
               {"__slots__": (), "__repr__": __repr__, "__reduce__": __reduce__,
                "__module__": "tracenn.return_types"})
    _RETURN_TYPES[name] = cls
    return cls


_RETURN_TYPES: dict[str, type] = {}


def _rebuild_return_type(name: str, values: tuple):
    return _RETURN_TYPES[name](*values)


class _ReturnTypesModule(types.ModuleType):
    """``tracenn.return_types``: the named tuples ops return, by name (``tracenn.return_types.max``),
    read from the registry above, so types made later are there too."""

    def __getattr__(self, name):
        try:
            return _RETURN_TYPES[name]
        except KeyError:
            raise AttributeError(f"module 'tracenn.return_types' has no attribute '{name}'") from None

    def __dir__(self):
        return sorted(_RETURN_TYPES)


return_types = _ReturnTypesModule("tracenn.return_types", _ReturnTypesModule.__doc__)
sys.modules["tracenn.return_types"] = return_types


# torch returns these named tuples from max/min/sort/topk/... with a dim.
values_indices = {name: return_type(name, ["values", "indices"])
                  for name in ("max", "min", "sort", "topk", "mode", "median", "nanmedian", "kthvalue", "cummax",
                               "cummin")}
_aminmax = return_type("aminmax", ["min", "max"])


def _dims(dim, x):
    """Normalised reduction dims; a 0-d tensor's only "dim" (0 or -1) reduces nothing, as torch."""
    d = dims_arg(dim, x.ndim)
    return None if x.ndim == 0 else d


def _np(dtype):
    return None if dtype is None else _dt.as_dtype(dtype).np


def sum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Sum over ``dim`` (all dims when None); bool/int inputs sum in int64, as torch.

    Like every reduction here, it takes NumPy's ``axis``/``keepdims`` for ``dim``/``keepdim``, as torch.
    """
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("sum", dim, keepdim, axis, keepdims)
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    return apply(OPS["sum"], (input,), (_dims(dim, input), bool(keepdim), d))


def nansum(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("nansum", dim, keepdim, axis, keepdims)
    from .math import isnan, where
    return sum(where(isnan(input), 0, input), dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    """Mean over ``dim``; integer inputs raise, as in torch (pass ``dtype=`` or cast first)."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("mean", dim, keepdim, axis, keepdims)
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {_dt.from_np(input._value.dtype).name.capitalize()}. "
            f"Use x.float().mean() or mean(dtype=tracenn.float32).")
    return apply(OPS["mean"], (input,), (_dims(dim, input), bool(keepdim), d))


def nanmean(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("nanmean", dim, keepdim, axis, keepdims)
    from .math import isnan, logical_not, where
    keep = logical_not(isnan(input))
    return sum(where(keep, input, 0), dim, keepdim) / sum(keep, dim, keepdim)


def _correction(unbiased, correction):
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Variance; ``correction=1`` (default) is the unbiased estimate, as torch."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("var", dim, keepdim, axis, keepdims)
    if isinstance(dim, bool):  # var(x, False): the old positional ``unbiased``
        unbiased, dim = dim, None
    if input._value.dtype.kind not in "fcV":
        raise DtypeError("std and var only support floating point and complex dtypes, got "
                         f"{input.dtype}; convert first, e.g. x.float().var()")
    return apply(OPS["var"], (input,), (_dims(dim, input), _correction(unbiased, correction), bool(keepdim)))


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    """Standard deviation: the square root of :func:`var` (its gradient is 0 where it is 0, as torch)."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("std", dim, keepdim, axis, keepdims)
    return _safe_root(var(input, dim, unbiased, keepdim, correction=correction), sqrt)


def _safe_root(s, root):
    """``root(s)`` whose gradient is 0 where ``s == 0`` (torch's norm/std), not sqrt'(0) * 0 = nan.

    Only a graph that needs gradients pays for the two extra selects.
    """
    from ..autograd import is_grad_enabled
    if not (s.requires_grad and is_grad_enabled()):
        return root(s)
    from .math import eq, where
    zero = eq(s, 0)
    return where(zero, 0.0, root(where(zero, 1.0, s)))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("var_mean", dim, keepdim, axis, keepdims)
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("std_mean", dim, keepdim, axis, keepdims)
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def prod(input, dim=None, keepdim=False, *, dtype=None, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("prod", dim, keepdim, axis, keepdims)
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    if dim is not None:
        dim = (dim,) if not isinstance(dim, (tuple, list)) else dim
    return apply(OPS["prod"], (input,), (_dims(dim, input), bool(keepdim), d))


def _check_nonempty(input, name, dim=None):
    if input._value.size == 0 and dim is None:
        # torch raises IndexError for argmax/argmin and RuntimeError for max/min.
        raise (IndexError if name.startswith("arg") else RuntimeError)(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            "Specify the reduction dim with the 'dim' argument.")


def _check_reducible(input, name, dims):
    """max-like reductions have no identity: an empty reduced dim is an error, as in torch."""
    if dims is None:
        _check_nonempty(input, name)
        return
    for d in dims:
        if input._value.shape[d] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size. Check the "
                             f"shape {list(input.shape)}, or use a sum-like reduction that has an identity.")


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
    _check_reducible(input, name, _dims(dim, input))
    if input._value.ndim == 0:
        from .creation import zeros
        return values_indices[name](input, zeros((), dtype=_dt.int64))
    vals, idx = apply(OPS["max_dim"], (input,), (d, bool(keepdim), largest))
    return values_indices[name](vals, idx)


def max(input, dim=None, keepdim=False, *, other=None, axis=None, keepdims=None):
    """``max(x)`` -> the largest value; ``max(x, dim)`` -> (values, indices); ``max(x, y)`` -> maximum."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("max", dim, keepdim, axis, keepdims)
    return _extreme("max", True, input, dim, keepdim, other)


def min(input, dim=None, keepdim=False, *, other=None, axis=None, keepdims=None):
    """``min(x)``, ``min(x, dim)`` -> (values, indices), ``min(x, y)`` -> minimum."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("min", dim, keepdim, axis, keepdims)
    return _extreme("min", False, input, dim, keepdim, other)


def amax(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """Max over ``dim`` (all when empty); ties share the gradient evenly."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("amax", dim, keepdim, axis, keepdims, ())
    dims = _dims(dim, input)
    _check_reducible(input, "amax", dims)
    return apply(OPS["amax"], (input,), (dims, bool(keepdim)))


def amin(input, dim=(), keepdim=False, *, axis=None, keepdims=None):
    """Min over ``dim`` (all when empty); ties share the gradient evenly."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("amin", dim, keepdim, axis, keepdims, ())
    dims = _dims(dim, input)
    _check_reducible(input, "amin", dims)
    return apply(OPS["amin"], (input,), (dims, bool(keepdim)))


def aminmax(input, *, dim=None, keepdim=False, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("aminmax", dim, keepdim, axis, keepdims)
    return _aminmax(amin(input, () if dim is None else dim, keepdim), amax(input, () if dim is None else dim, keepdim))


def argmax(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """Index of the largest value (first on ties) over ``dim``, or in the flattened tensor."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("argmax", dim, keepdim, axis, keepdims)
    d = None if dim is None or input.ndim == 0 else _wrap_dim(dim, input.ndim)
    _check_reducible(input, "argmax", None if d is None else (d,))
    return apply(OPS["argmax"], (input,), (d, bool(keepdim)))


def argmin(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("argmin", dim, keepdim, axis, keepdims)
    d = None if dim is None or input.ndim == 0 else _wrap_dim(dim, input.ndim)
    _check_reducible(input, "argmin", None if d is None else (d,))
    return apply(OPS["argmin"], (input,), (d, bool(keepdim)))


def all(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("all", dim, keepdim, axis, keepdims)
    return apply(OPS["all"], (input,), (_dims(dim, input), bool(keepdim)))


def any(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("any", dim, keepdim, axis, keepdims)
    return apply(OPS["any"], (input,), (_dims(dim, input), bool(keepdim)))


def count_nonzero(input, dim=None, *, axis=None):
    if axis is not None:
        dim = numpy_names("count_nonzero", dim, False, axis, None)[0]
    from .math import ne
    return sum(ne(input, 0), dim)


def logsumexp(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """``log(sum(exp(x), dim))`` computed stably."""
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("logsumexp", dim, keepdim, axis, keepdims)
    if dim is None:
        raise TypeError("logsumexp() missing required argument 'dim'; pass the dims to reduce, e.g. dim=-1")
    x = input if input._value.dtype.kind in "fcV" else _cast(input, float_np_dtype(input._value.dtype))
    return apply(OPS["logsumexp"], (x,), (_dims(dim, x), bool(keepdim)))


def _softmax_input(input, dim, dtype, name):
    if dim is None:
        raise TypeError(f"{name}() missing required argument 'dim' (torch's implicit-dim choice "
                        "is deprecated; pass dim=-1 for the last dimension)")
    x = input
    if dtype is not None:
        x = _cast(x, _dt.as_dtype(dtype).np)
    elif x._value.dtype.kind not in "fcV":
        x = _cast(x, float_np_dtype(x._value.dtype))
    d = _wrap_dim(dim, x.ndim)
    return x, d if x.ndim else None  # a 0-d tensor: its one element


def log_softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """``x - max - log(sum(exp(x - max)))`` along ``dim``: one primitive (one kernel, torch's
    formula and gradient), though a composite could express it: it is among the most called ops,
    and three kernels cost three dispatches eagerly."""
    if axis is not None:
        dim = numpy_names("log_softmax", dim, False, axis, None)[0]
    x, d = _softmax_input(input, dim, dtype, "log_softmax")
    return apply(_LOG_SOFTMAX, (x,), (d,))


def softmax(input, dim=None, _stacklevel=3, dtype=None, *, axis=None):
    """``exp(x - max) / sum(exp(x - max))`` along ``dim``: one primitive, as :func:`log_softmax`."""
    if axis is not None:
        dim = numpy_names("softmax", dim, False, axis, None)[0]
    x, d = _softmax_input(input, dim, dtype, "softmax")
    return apply(_SOFTMAX, (x,), (d,))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    from .math import neg
    return softmax(neg(input), dim, dtype=dtype)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    """Vector p-norm over ``dim`` (all elements when None); 'fro' is the 2-norm."""
    if dtype is not None:
        input = _cast(input, _dt.as_dtype(dtype).np)
    if p in ("fro", 2, 2.0):
        from .math import square
        return _safe_root(sum(square(_abs(input)) if input.is_complex() else square(input), dim, keepdim), sqrt)
    if p in (float("inf"), "inf"):
        return amax(_abs(input), () if dim is None else dim, keepdim)
    if p in (float("-inf"), "-inf"):
        return amin(_abs(input), () if dim is None else dim, keepdim)
    if p == 1:
        return sum(_abs(input), dim, keepdim)
    from ..autograd import is_grad_enabled
    grad = input.requires_grad and is_grad_enabled()
    if p == 0:
        from .math import isfinite, ne, where
        count = sum(_cast(ne(input, 0), input._value.dtype), dim, keepdim)
        if not grad:
            return count
        # The count is piecewise constant: its gradient is 0 (torch's), so tie it to the input with a
        # zero-gradient term (where() keeps inf and NaN entries out of it).
        a = _abs(input) if input.is_complex() else input
        return count + sum(where(isfinite(a), a, 0.0) * 0.0, dim, keepdim)
    a = _abs(input)
    if grad and p < 1:
        # |x|^p has the gradient p |x|^(p-1) sign(x) = inf * 0 = NaN at x = 0 for p < 1; torch's is 0.
        from .math import eq, where
        zero = eq(a, 0)
        powered = where(zero, 0.0 if p > 0 else float("inf"), _pow(where(zero, 1.0, a), p))
    else:
        powered = _pow(a, p)
    return _safe_root(sum(powered, dim, keepdim), lambda s: _pow(s, 1.0 / p))


def _scan_dim(name, dim, axis):
    """A scan's ``dim`` (required), or NumPy's name for it, ``axis``."""
    if axis is not None:
        dim = numpy_names(name, dim, False, axis, None)[0]
    if dim is None:
        raise TypeError(f"{name}() missing required argument 'dim'; pass the dim to scan along, e.g. dim=-1")
    return dim


def _scan(name, total, input, dim, dtype):
    d = _np(dtype)
    if d is None and input._value.dtype.kind in "biu":
        d = np.dtype(np.int64)
    axis = _wrap_dim(dim, input.ndim)
    if input.ndim == 0:  # the scan of one element is that element (the total does the dtype cast)
        return apply(OPS[total], (input,), (None, False, d))
    return apply(OPS[name], (input,), (axis, d))


def cumsum(input, dim=None, *, dtype=None, axis=None):
    """Running sum along ``dim``; bool/int inputs accumulate in int64, as torch."""
    return _scan("cumsum", "sum", input, _scan_dim("cumsum", dim, axis), dtype)


def cumprod(input, dim=None, *, dtype=None, axis=None):
    """Running product along ``dim``; bool/int inputs accumulate in int64, as torch."""
    return _scan("cumprod", "prod", input, _scan_dim("cumprod", dim, axis), dtype)


def cummax(input, dim=None, *, axis=None):
    dim = _scan_dim("cummax", dim, axis)
    v, i = apply(OPS["cummax"], (input,), (_wrap_dim(dim, input.ndim), True))
    return values_indices["cummax"](v, i)


def cummin(input, dim=None, *, axis=None):
    dim = _scan_dim("cummin", dim, axis)
    v, i = apply(OPS["cummax"], (input,), (_wrap_dim(dim, input.ndim), False))
    return values_indices["cummin"](v, i)


def _lower_median(x, d):
    """(values, indices) of the lower median along ``d``, keeping ``d`` with size 1.

    As torch: a slice holding NaN has median NaN, at the index of its first NaN (a stable sort puts
    NaNs last, in their original order).
    """
    from .index import gather, sort
    from .shape import narrow
    s = sort(x, d, stable=True)
    n = x.shape[d]
    k = (n - 1) // 2
    if not x.is_floating_point():
        return narrow(s.values, d, k, 1), narrow(s.indices, d, k, 1)
    from .math import gt, isnan, rsub, where
    nans = sum(isnan(x), d, keepdim=True)
    pos = where(gt(nans, 0), rsub(nans, n), k)
    return gather(s.values, d, pos), gather(s.indices, d, pos)


def median(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The lower median (torch's choice for even counts); with ``dim`` -> (values, indices).

    ``median(x)`` spreads its gradient evenly over the elements equal to the median, as torch does;
    ``median(x, dim)`` sends it to the one element its index names.
    """
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("median", dim, keepdim, axis, keepdims)
    from .shape import reshape, squeeze
    if dim is None:
        flat = reshape(input, (-1,))
        if flat.numel() == 0:
            from .creation import full
            return full((), float("nan"), dtype=input.dtype)
        v = squeeze(_lower_median(flat, 0)[0], 0)
        from ..autograd import is_grad_enabled
        if not (input.requires_grad and is_grad_enabled()):
            return v
        from .math import eq, isnan, where
        tied = amax(where(eq(input, v.detach()), input, float("-inf")))  # amax shares among ties
        return where(isnan(v), v, tied)
    if input.ndim == 0:
        from .creation import zeros
        _wrap_dim(dim, 0)
        return values_indices["median"](input.clone(), zeros((), dtype=_dt.int64))
    d = _wrap_dim(dim, input.ndim)
    _check_reducible(input, "median", (d,))
    vals, idx = _lower_median(input, d)
    if not keepdim:
        vals, idx = squeeze(vals, d), squeeze(idx, d)
    return values_indices["median"](vals, idx)


def dist(input, other, p=2):
    return norm(sub(input, other), p)
