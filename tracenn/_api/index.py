"""Indexing: ``x[...]`` (basic indexing is a view, advanced indexing a gather), ``x[...] = v``,
gather/scatter, index_select, masked ops, sort/topk, nonzero.

torch raises IndexError for an out-of-range index where JAX would silently clamp, so index
arrays are bounds-checked here, eagerly (one small host read, as torch does on CPU).
"""
from __future__ import annotations

import builtins
import numbers
import warnings
from collections.abc import Sequence

import numpy as np

from .. import _dispatch, dtypes as _dt
from .._dispatch import TRACE as _TRACE, apply, scalar_operand
from ..autograd.grad_mode import GRAD
from ..autograd.graph import SEQ as _NODE_SEQ
from ..errors import ShapeError
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import as_operand, shape_values, value_of
from .reduce import values_indices
from .shape import _view, _view_of, contiguous_strides

# How to stay shape-static where an op's output size is the number of True (or nonzero) elements
# (what a compiled program's DataDependentError suggests: shape_values).
_MASK_FIX = ("keep the shape with masks: tracenn.where(mask, x, 0) (tracenn.where(mask, x, 0).sum() for "
             "x[mask].sum(), mask.sum() for the count), and write with x[mask] = value or x.masked_fill(mask, value)")
UNIQUE_FIX = ("there is no fixed-size form; compute it before the compiled call and pass it in, or compare "
              "against a known set of values with masks (tracenn.where, one_hot)")

_INDEX, _INDEX_PUT, _SLICE = OPS["index"], OPS["index_put"], OPS["slice"]
_DYNAMIC_SLICE, _DYNAMIC_UPDATE = OPS["dynamic_slice"], OPS["dynamic_update_slice"]


def _is_int(x):
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


_SEQUENCE_AS_TUPLE = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be changed in pytorch "
    "2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will be interpreted as tensor index, "
    "x[torch.tensor(seq)], which will result either in an error or a different result")


def _sequence_as_tuple(index: list) -> bool:
    """torch's (and old NumPy's) rule for ``x[[...]]``: a list shorter than 32 holding a tensor, a
    sequence, a slice, ``...`` or None is read as a tuple of indices (``x[[[0, 1]]]`` is ``x[[0, 1]]``)."""
    if len(index) >= 32:
        return False
    for e in index:
        if e is None or e is Ellipsis or isinstance(e, (Tensor, Sequence, slice, np.ndarray)):
            return True
    return False


def _normalize(index):
    if type(index) is list and _sequence_as_tuple(index):
        # stacklevel: _normalize <- _parse <- getitem/setitem (Tensor.__getitem__) <- the user's line
        warnings.warn(_SEQUENCE_AS_TUPLE, UserWarning, stacklevel=4)
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    for e in index:
        if isinstance(e, range):  # x[range(n), target]: the integers of the range
            from .creation import tensor
            e = tensor(list(e), dtype=_dt.int64)
        elif isinstance(e, (list, np.ndarray)) or (isinstance(e, np.generic) and not _is_int(e)):
            from .creation import tensor
            e = tensor(e)
        elif isinstance(e, np.integer):
            e = int(e)
        out.append(e)
    # A 0-d int tensor indexes like an int, so its value is read. While compiling it has none and
    # stays an operand, a "d" entry: in an advanced index (a copy anyway), and in what eager makes
    # a view (``x[i]``), which compiled is a copy that may not be written through (getitem). In a
    # tracenn.func transform a view needs the int itself: .item() raises there.
    dynamic = _TRACE[0] is not None or builtins.any(
        isinstance(e, bool) or isinstance(e, Tensor) and not _is_int_scalar(e) for e in out)
    return [int(e.item()) if _is_int_scalar(e) and not (dynamic and _dispatch.abstract(value_of(e))) else e
            for e in out]


def _is_int_scalar(e) -> bool:
    return isinstance(e, Tensor) and e.ndim == 0 and e._value.dtype.kind in "iu" and e._value.dtype != np.uint8


def _is_mask(e) -> bool:
    """A bool tensor, or a uint8 one: torch still reads uint8 index tensors as masks (deprecated)."""
    return isinstance(e, Tensor) and e._value.dtype.char in "?B"


def _consumes(e):
    """How many dims of the indexed tensor an index entry uses."""
    if e is None or isinstance(e, bool) or e is Ellipsis:
        return 0
    if _is_mask(e):
        return e.ndim
    return 1


def _expand_ellipsis(entries, ndim):
    used = builtins.sum(_consumes(e) for e in entries)
    n_ell = builtins.sum(1 for e in entries if e is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    out = []
    for e in entries:
        if e is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(e)
    if not n_ell:
        out.extend([slice(None)] * (ndim - used))
    return out


def _slice_entry(s: slice, size: int):
    if s.step is None:
        start, stop, _ = s.indices(size)
        step = 1
    else:
        step = int(s.step)
        if step <= 0:
            raise ValueError("step must be greater than zero")
        start, stop, _ = slice(s.start, s.stop, step).indices(size)
    if stop < start:
        stop = start
    return ("s", start, stop, step), len(range(start, stop, step))


# The entry types of a basic index that need no conversion (bool is not int here: type() is exact).
_PLAIN = frozenset((int, slice, type(None), type(Ellipsis)))


class _Basic:
    """A basic index (ints, slices, None, ...) resolved against one tensor: a view of it.

    ``spec``: the ``slice`` op's static spec; ``strides``: torch's strides of the view;
    ``ints``: the integer entries (already in range), which eager dispatch passes as operands of
    ``dynamic_slice`` so that one kernel serves every index value.
    """
    __slots__ = ("spec", "strides", "ints")

    def __init__(self, x: Tensor, entries: tuple):
        shape = x._value.shape
        ndim = len(shape)
        ellipses = entries.count(Ellipsis)
        used = len(entries) - ellipses - entries.count(None)
        if ellipses > 1:
            raise IndexError("an index can only have a single ellipsis ('...')")
        if used > ndim:
            raise IndexError(f"too many indices for tensor of dimension {ndim}")
        old_st = x._strides if x._strides is not None else contiguous_strides(shape)
        spec, st, ints = [], [], []
        d = 0
        for e in entries if ellipses else entries + (Ellipsis,):  # no "...": one at the end
            t = type(e)
            if t is slice:
                ent = _slice_entry(e, shape[d])[0]
                spec.append(ent)
                st.append(old_st[d] * ent[3])
                d += 1
            elif t is int:
                size = shape[d]
                if not -size <= e < size:
                    raise IndexError(f"index {e} is out of bounds for dimension {d} with size {size}")
                e %= size
                spec.append(("i", e))
                ints.append(e)
                d += 1
            elif e is None:
                spec.append(("n",))
                st.append(1 if d >= ndim else shape[d] * old_st[d])
            else:  # the ellipsis: full slices of the dims no entry names
                for k in range(d, d + ndim - used):
                    spec.append(("s", 0, shape[k], 1))
                    st.append(old_st[k])
                d += ndim - used
        self.spec, self.strides, self.ints = tuple(spec), tuple(st), ints

    @property
    def shape(self) -> tuple:
        """The view's shape."""
        return tuple(1 if e[0] == "n" else len(range(e[1], e[2], e[3])) for e in self.spec if e[0] != "i")

    def operands(self, x: Tensor) -> list:
        """The integers as kernel operands (cached arrays: see ``scalar_operand``)."""
        v = x._value
        return [scalar_operand(i, v) for i in self.ints]

    def dynamic_spec(self) -> tuple:
        """``spec`` with the integers taken out (``dynamic_slice``'s static parameter)."""
        return tuple(("i",) if e[0] == "i" else e for e in self.spec)

    def view(self, x: Tensor) -> Tensor:
        """``x[index]``, a view of ``x``."""
        if self.ints and _TRACE[0] is None:
            r = apply(_DYNAMIC_SLICE, (x, *self.operands(x)), (self.dynamic_spec(),))
            return _view_of(x, r, ("slice", (self.spec,)), self.strides)
        return _view(x, _SLICE, (self.spec,), self.strides)


def _parse(x: Tensor, index):
    """A :class:`_Basic` if the index is basic, else (advanced spec, index tensors).

    The spec of the ``index``/``index_put`` ops: ("i", n) an int, ("s", start, stop, step) a slice,
    ("n",) None, ("t", k) the k-th index tensor over one dim (a k-dim mask gives k of them, its
    nonzero coordinates), ("d", k) a 0-d int tensor with no value yet (compiling), an int taken from
    the k-th tensor, ("b", k) a 0-d bool: a new dim indexed by the k-th tensor, [0] for True and []
    for False. As in torch, ints (and 0-d bools) apply before the index tensors, so an int does not
    count as an advanced index when placing the tensors' dims."""
    entries = index if type(index) is tuple else (index,)
    for e in entries:
        if type(e) not in _PLAIN:
            break
    else:
        return _Basic(x, entries)
    entries = _expand_ellipsis(_normalize(index), x.ndim)
    if builtins.all(not isinstance(e, Tensor) and not isinstance(e, bool) for e in entries):
        for e in entries:
            if not (e is None or _is_int(e) or isinstance(e, slice)):
                raise IndexError(
                    "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables "
                    f"are valid indices (got {type(e).__name__})")
        return _Basic(x, tuple(int(e) if _is_int(e) else e for e in entries))
    shape = x._value.shape
    spec, arrays, d = [], [], 0
    for e in entries:
        if isinstance(e, bool) or _is_mask(e) and e.ndim == 0:
            flag = e if isinstance(e, bool) else bool(np.asarray(value_of(e)))  # a shape: read on the host
            spec.append(("b", len(arrays)))
            arrays.append(Tensor._wrap(_to_jnp(np.zeros(int(flag), np.int64))))
        elif e is None:
            spec.append(("n",))
        elif _is_int(e):
            size = shape[d]
            if not -size <= e < size:
                raise IndexError(f"index {e} is out of bounds for dimension {d} with size {size}")
            spec.append(("i", e % size))
            d += 1
        elif isinstance(e, slice):
            spec.append(_slice_entry(e, shape[d])[0])
            d += 1
        elif isinstance(e, Tensor):
            kind = e._value.dtype.kind
            if _is_mask(e):
                if kind != "b":  # stacklevel: _parse <- getitem/setitem <- the user's line
                    warnings.warn("indexing with dtype torch.uint8 is now deprecated, please use a dtype "
                                  "torch.bool instead.", UserWarning, stacklevel=3)
                m = shape_values(e, "indexing with a boolean mask (x[mask], masked_select: one element for each "
                                    "True)", _MASK_FIX).astype(bool)
                for k in range(m.ndim):
                    if m.shape[k] != shape[d + k]:
                        raise IndexError(
                            f"The shape of the mask {list(m.shape)} at index {k} does not match the "
                            f"shape of the indexed tensor {list(shape)} at index {d + k}")
                for coords in np.nonzero(m):
                    spec.append(("t", len(arrays)))
                    arrays.append(Tensor._wrap(_to_jnp(coords.astype(np.int64))))
                d += m.ndim
            elif kind in "iu":
                _check_bounds(e, shape[d], d)
                spec.append(("d" if e.ndim == 0 else "t", len(arrays)))
                arrays.append(e)
                d += 1
            else:
                raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        else:
            raise IndexError(f"invalid index entry of type {type(e).__name__}")
    return tuple(spec), arrays


def _to_jnp(a):
    import jax.numpy as jnp
    return jnp.asarray(a)


def _check_bounds(idx: Tensor, size: int, dim: int, what="index", error=IndexError):
    if idx._value.size == 0:
        return
    v = value_of(idx)
    if _dispatch.abstract(v):  # compiling or transformed: indices have no values yet (XLA clamps them)
        return
    a = np.asarray(v)
    lo, hi = int(a.min()), int(a.max())
    if hi >= size or lo < -size:
        bad = hi if hi >= size else lo
        raise error(f"{what} {bad} is out of bounds for dimension {dim} with size {size}")


def getitem(self, index):
    """``x[index]``: ints, slices, None and ``...`` give a view; tensors/lists/masks a gathered copy."""
    plan = _parse(self, index)
    if type(plan) is _Basic:
        return plan.view(self)
    spec, arrays = plan
    out = apply(_INDEX, (self, *arrays), (spec,))
    if _TRACE[0] is not None and not builtins.any(e[0] in "tb" for e in spec):
        # x[i] with i a 0-d int tensor while compiling: a view in eager, a copy here (a view's
        # steps are static). An in-place change of the copy (Tensor._set_ marks it) must be written
        # back by ``x[index] = copy`` with the same x and index object (what ``x[i] += v`` does),
        # or the trace fails and the call runs eagerly: [source, index, changed and not written].
        out.__dict__["_copied_view"] = [self, index, False]
    return out


def setitem(self, index, value):
    """``x[index] = value``: writes through views into the base, as torch does.

    ``x[i] = v`` with Python ints writes with ``dynamic_update_slice``, the integers as operands:
    one kernel for every ``i`` (into a view: the view's new values then go to its base, one
    kernel for the view). Other writes go through the view ``x[index]``.
    """
    since = _NODE_SEQ[0]  # nodes made from here on belong to this write (see Tensor._set_)
    if _TRACE[0] is not None and isinstance(value, Tensor):
        copied = value.__dict__.get("_copied_view")  # x[i] += v: the copy x[i] written back where it came from
        if copied is not None and copied[0] is self and copied[1] is index:
            copied[2] = False
    value = as_operand(value)
    if _masked_fill(self, index, value, since):
        return
    plan = _parse(self, index)
    if type(plan) is _Basic:
        # Not for a leaf that requires grad while grad is on (that raises: the view path gives
        # torch's message), nor for a view with an expand (one element would be written twice).
        if plan.ints and _TRACE[0] is None and not (GRAD.enabled and self._requires_grad and self._node is None) \
                and (self._base is None or not builtins.any(n == "expand" for n, _ in self._chain)):
            if isinstance(value, Tensor):
                value = _broadcast_value(value, plan.shape, self._value.dtype)
            new = apply(_DYNAMIC_UPDATE, (self, value, *plan.operands(self)), (plan.dynamic_spec(),))
            self._set_(new, "x[...] = v", since)
            return
        target = plan.view(self)
        target._set_(_broadcast_value(value, target._value.shape, target._value.dtype), "x[...] = v", since)
        return
    spec, arrays = plan
    _check_put_dtype(self, value)
    self._set_(apply(_INDEX_PUT, (self, value, *arrays), (spec, False)), "x[...] = v", since)


def _masked_fill(self, index, value, since) -> bool:
    """``x[mask] = v`` for a boolean mask over ``x``'s leading dims and a value that is the same for
    every selected element (a number, or a tensor of ``x``'s dtype that broadcasts to one selected
    row, as ``x[rows] = bias``), as ``where(mask, v, x)``: no data-dependent shapes, so it also
    compiles (``grad[x < 0] = 0`` in a custom backward). False where it does not apply."""
    if not (isinstance(index, Tensor) and index._value.dtype == np.bool_ and 0 < index.dim() <= self.dim()
            and tuple(index.shape) == tuple(self.shape[:index.dim()])):
        return False
    if isinstance(value, Tensor):
        row = tuple(self.shape[index.dim():])  # one selected element's shape
        vshape = tuple(value.shape)
        while len(vshape) > len(row) and vshape[0] == 1:
            vshape = vshape[1:]
        if value._value.dtype != self._value.dtype or len(vshape) > len(row) or not builtins.all(
                v in (1, r) for v, r in zip(vshape[::-1], row[::-1])):
            return False
        value = value.reshape(vshape)
    elif isinstance(value, complex) and self._value.dtype.kind != "c":
        return False
    from .math import _cast, where
    mask = index if index.dim() == self.dim() else index.reshape(tuple(index.shape) + (1,) * (self.dim() - index.dim()))
    self._set_(_cast(where(mask, value, self), self._value.dtype), "x[...] = v", since)
    return True


def _check_put_dtype(dest, value):
    """torch's index_put refuses a tensor value of another dtype (basic indexing casts)."""
    if isinstance(value, Tensor) and value._value.dtype != dest._value.dtype:
        from ..tensor import _TORCH_NAMES
        raise RuntimeError(
            f"Index put requires the source and destination dtypes match, got "
            f"{_TORCH_NAMES[dest.dtype]} for the destination and {_TORCH_NAMES[value.dtype]} for the "
            f"source. Cast the value first, e.g. v.to(x.dtype).")


def _broadcast_value(value, shape: tuple, dtype) -> Tensor:
    """``value`` (a tensor or a number) as a tensor of ``shape`` and ``dtype``, broadcast as torch's
    copy_ and ``x[...] = v`` do (leading size-1 dims of a tensor are dropped first)."""
    from .math import _cast
    from .shape import expand
    if not isinstance(value, Tensor):
        return apply(OPS["full"], (value,), (shape, dtype))
    v = _cast(value, dtype)
    if v._value.shape != shape:
        while v.ndim > len(shape) and v._value.shape[0] == 1:
            v = v[0]
        try:
            v = expand(v, shape)
        except RuntimeError:
            raise ShapeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be "
                             f"broadcast to indexing result of shape {list(shape)}") from None
    return v


def index_put(input, indices, values, accumulate=False):
    spec = []
    arrays = []
    for i, ix in enumerate(indices):
        spec.append(("t", len(arrays)) if ix is not None else ("s", None, None, None))
        if ix is not None:
            _check_bounds(ix, input.shape[i], i)
            arrays.append(ix)
    values = as_operand(values)
    _check_put_dtype(input, values)
    return apply(_INDEX_PUT, (input, values, *arrays), (tuple(spec), bool(accumulate)))


# ---- gather / scatter ------------------------------------------------------------------------

def _check_gs(input, dim, index, name):
    if index._value.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")
    if index.ndim != input.ndim and not (index.ndim <= 1 and input.ndim <= 1):
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    d = _wrap_dim(dim, input.ndim)
    for i, (a, b) in enumerate(zip(index.shape, input.shape)):
        if i != d and a > b:
            raise RuntimeError(f"Size does not match at dimension {i} expected index {list(index.shape)} "
                               f"to be no larger than self {list(input.shape)} apart from dimension {d}")
    _check_bounds(index, input.shape[d] if input.ndim else 1, d, f"{name}(): index", RuntimeError)
    return d


def gather(input, dim, index, *, sparse_grad=False):
    """``out[i][j] = input[i][index[i][j]]`` (for dim=1): torch.gather."""
    d = _check_gs(input, dim, index, "gather")
    return apply(OPS["gather"], (input, index), (d,))


def _crop(src, shape):
    if tuple(src.shape) == tuple(shape):
        return src
    return getitem(src, tuple(slice(0, s) for s in shape))


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """A copy of ``input`` with values from ``src`` (or the scalar ``value``) written at ``index``."""
    if src is None and value is None:
        raise TypeError("scatter() needs src or value")
    d = _check_gs(input, dim, index, "scatter")
    if isinstance(src, Tensor):
        s = _crop(src, index.shape)
    else:
        s = src if src is not None else value
    red = {None: None, "add": "add", "multiply": "multiply"}[reduce]
    return apply(OPS["scatter"], (input, index, s), (d, red, True))


def scatter_add(input, dim, index, src):
    d = _check_gs(input, dim, index, "scatter_add")
    return apply(OPS["scatter"], (input, index, _crop(src, index.shape)), (d, "add", True))


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    d = _check_gs(input, dim, index, "scatter_reduce")
    s = _crop(src, index.shape)
    if reduce == "mean":
        total = scatter_reduce(input, dim, index, s, "sum", include_self=include_self)
        from .creation import ones_like
        cnt = scatter_add(ones_like(input) if include_self else ones_like(input) * 0, d, index,
                          ones_like(s))
        from .math import clamp, div
        r = div(total, clamp(cnt, min=1))
        return r if input.is_floating_point() else div(total, clamp(cnt, min=1), rounding_mode="floor")
    if reduce not in ("sum", "prod", "amax", "amin"):
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    return apply(OPS["scatter"], (input, index, s), (d, reduce, bool(include_self)))


def index_select(input, dim, index):
    d = _wrap_dim(dim, input.ndim)
    if index.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    _check_bounds(index, input.shape[d] if input.ndim else 1, d, "index_select(): index")
    return apply(OPS["index_select"], (input, index), (d,))


def index_add(input, dim, index, source, *, alpha=1):
    d = _wrap_dim(dim, input.ndim)
    _check_bounds(index, input.shape[d], d)
    return apply(OPS["index_add"], (input, index, source, alpha), (d,))


def index_fill(input, dim, index, value):
    d = _wrap_dim(dim, input.ndim)
    _check_bounds(index, input.shape[d], d)
    spec = tuple(("s", None, None, None) for _ in range(d)) + (("t", 0),)
    return apply(_INDEX_PUT, (input, as_operand(value), index), (spec, False))


def take(input, index):
    from .shape import reshape
    flat = reshape(input, (-1,))
    _check_bounds(index, flat.shape[0], 0)
    return apply(OPS["index"], (flat, index), ((("t", 0),),))


def take_along_dim(input, indices, dim=None):
    if dim is None:
        from .shape import reshape
        return take(input, reshape(indices, (-1,)))
    from .shape import broadcast_shapes, expand
    d = _wrap_dim(dim, input.ndim)
    shp = list(broadcast_shapes(*[tuple(s for i, s in enumerate(t.shape) if i != d) for t in (input, indices)]))
    ishape = shp[:d] + [input.shape[d]] + shp[d:]
    xshape = shp[:d] + [indices.shape[d]] + shp[d:]
    return gather(expand(input, ishape), d, expand(indices, xshape))


# ---- masks -----------------------------------------------------------------------------------

def masked_fill(input, mask, value):
    """``input`` with ``value`` where ``mask`` is True (mask broadcasts to input's shape)."""
    if mask._value.dtype != np.bool_:
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype {mask.dtype}")
    value = as_operand(value)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError("masked_fill_ only supports a 0-dimensional value tensor, but got tensor "
                           f"with {value.ndim} dimension(s).")
    return apply(OPS["where"], (mask, value, input), (input._value.dtype,))


def masked_select(input, mask):
    from .shape import broadcast_tensors
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def masked_scatter(input, mask, source):
    """``input`` with ``source``'s elements, in order, written where ``mask`` is True.

    The k-th True position takes ``source.flatten()[k]``, picked through a cumulative count of the
    mask: no data-dependent shape, so it also compiles. (Inside ``tracenn.compile`` the mask's
    count is unknown, so a ``source`` with fewer elements than ``mask`` cannot be checked there.)

    >>> import tracenn
    >>> m = tracenn.tensor([[True, False, True], [False, True, True]])
    >>> tracenn.zeros(2, 3).masked_scatter(m, tracenn.arange(6.))
    tensor([[0., 0., 1.],
            [0., 2., 3.]])
    """
    from .math import where
    from .reduce import cumsum
    from .shape import broadcast_to, reshape
    from ..tensor import _TORCH_NAMES
    from ._common import host_values
    if mask._value.dtype != np.bool_:
        raise RuntimeError("masked_scatter_ only supports boolean masks, but got mask with dtype "
                           f"{_TORCH_NAMES[mask.dtype]}")
    if source._value.dtype != input._value.dtype:
        raise RuntimeError(f"masked_scatter: expected self and source to have same dtypes but got "
                           f"{_TORCH_NAMES[input.dtype]} and {_TORCH_NAMES[source.dtype]}")
    m = broadcast_to(mask, tuple(input.shape))
    n, known = source.numel(), host_values(m)
    if known is not None and int(known.sum()) > n:
        raise RuntimeError("Number of elements of source < number of ones in mask")
    if n == 0:
        return input.clone()
    pos = cumsum(reshape(m, (-1,)), 0) - 1  # the source element of each True position
    picked = getitem(reshape(source, (-1,)), pos.clamp(0, n - 1))
    return where(m, reshape(picked, tuple(input.shape)), input)


def nonzero(input, *, as_tuple=False):
    """Indices of non-zero elements (a data-dependent shape: computed on the host)."""
    a = shape_values(input, "torch.nonzero/argwhere (one row for each nonzero element)",
                     "tracenn.nonzero_static(x, size=n) pads the indices to a fixed count; " + _MASK_FIX)
    idx = np.nonzero(a) if a.ndim else np.nonzero(a.reshape(1))
    if as_tuple:
        return tuple(Tensor._wrap(_to_jnp(i.astype(np.int64))) for i in idx)
    return Tensor._wrap(_to_jnp(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64)))


def argwhere(input):
    return nonzero(input)


# ---- sort / topk -----------------------------------------------------------------------------

def sort(input, dim=-1, descending=False, stable=False):
    """(values, indices) sorted along ``dim``; ties keep their order (tracenn is always stable)."""
    if input.ndim == 0:
        from .creation import zeros
        return values_indices["sort"](input.clone(), zeros((), dtype=_dt.int64))
    d = _wrap_dim(dim, input.ndim)
    v, i = apply(OPS["sort"], (input,), (d, bool(descending), True))
    return values_indices["sort"](v, i)


def argsort(input, dim=-1, descending=False, stable=False):
    return sort(input, dim, descending, stable).indices


def msort(input):
    return sort(input, 0).values


def topk(input, k, dim=-1, largest=True, sorted=True):
    """The ``k`` largest (or smallest) values along ``dim`` and their indices."""
    d = _wrap_dim(dim, input.ndim)
    size = input.shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(f"selected index k out of range (k={k}, size {size} at dim {d})")
    v, i = apply(OPS["topk"], (input,), (int(k), d, bool(largest), bool(sorted)))
    return values_indices["topk"](v, i)


def kthvalue(input, k, dim=-1, keepdim=False):
    d = _wrap_dim(dim, input.ndim)
    s = sort(input, d)
    from .shape import narrow, squeeze
    v, i = narrow(s.values, d, k - 1, 1), narrow(s.indices, d, k - 1, 1)
    if not keepdim:
        v, i = squeeze(v, d), squeeze(i, d)
    return values_indices["kthvalue"](v, i)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):
    """Unique values (computed on the host: the output size depends on the data)."""
    a = shape_values(input, "torch.unique (one entry for each distinct value)", UNIQUE_FIX)
    res = np.unique(a, return_inverse=return_inverse, return_counts=return_counts, axis=dim)
    if not isinstance(res, tuple):
        return Tensor._wrap(_to_jnp(res))
    out = [Tensor._wrap(_to_jnp(res[0]))]
    k = 1
    if return_inverse:
        out.append(Tensor._wrap(_to_jnp(res[k].reshape(a.shape if dim is None else -1).astype(np.int64))))
        k += 1
    if return_counts:
        out.append(Tensor._wrap(_to_jnp(res[k].astype(np.int64))))
    return tuple(out)


def bincount(input, weights=None, minlength=0):
    """Counts of each value in a 1-d tensor of non-negative ints, or the sums of their ``weights``.

    Returns:
        A tensor of ``max(max(input) + 1, minlength)`` entries: int64 without weights (or for an
        empty input), float32 for float32 weights, float64 for any other weights (as torch).

    >>> import tracenn
    >>> tracenn.bincount(tracenn.tensor([0, 1, 1]), weights=tracenn.tensor([0.5, 1.0, 1.0]))
    tensor([0.5000, 2.0000])
    """
    a = shape_values(input, "torch.bincount (max(input) + 1 counts)",
                     "count into a tensor of known length, tracenn.zeros(n, dtype=tracenn.long).index_add_(0, x, "
                     "tracenn.ones_like(x)) (or .index_add_(0, x, weights) for sums)")
    w = None if weights is None else np.asarray(value_of(weights))
    r = np.bincount(a, w, minlength)
    dtype = np.int64 if w is None or a.size == 0 else np.float32 if w.dtype == np.float32 else np.float64
    return Tensor._wrap(_to_jnp(r.astype(dtype)))
