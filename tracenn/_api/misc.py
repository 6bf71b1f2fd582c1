"""torch's comparison, diagonal, window and scatter-into-a-slice functions: isclose/allclose,
detach, diag/diagflat, ravel, Tensor.unfold, fill_diagonal_, index_copy, select/slice/diagonal_scatter,
hsplit/vsplit/dsplit, is_nonzero/is_same_size/is_signed, fill, sum_to_size.

All are compositions of existing ops (so eager, compiled and differentiable like them). The
writes into a part of a tensor go through ``index_put`` with index tensors made on the host from
the static shape, so they compile to one scatter.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .._dispatch import apply
from ..tensor import Tensor, _TORCH_NAMES, _wrap_dim
from ._common import value_of
from .index import _INDEX_PUT, _check_bounds

__all__ = ["isclose", "allclose", "detach", "diag", "diagflat", "ravel", "unfold", "fill_diagonal_",
           "index_copy", "select_scatter", "slice_scatter", "diagonal_scatter", "hsplit", "vsplit",
           "dsplit", "is_nonzero", "is_same_size", "is_signed", "fill", "sum_to_size"]


def _t():
    import tracenn
    return tracenn


def _const_index(ix) -> Tensor:
    """A host-made int64 index tensor (a constant under ``tracenn.compile``)."""
    return _t().tensor(np.asarray(ix, dtype=np.int64).reshape(-1))


# ---- comparison --------------------------------------------------------------------------------

def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (torch's rule: equal values,
    infinities included, are close; NaNs are close to each other only with ``equal_nan``).

    >>> import tracenn as torch
    >>> torch.isclose(torch.tensor([1.0, 2.0, float("nan")]), torch.tensor([1.0 + 1e-9, 2.1, float("nan")]))
    tensor([ True, False, False])
    """
    T = _t()
    if not isinstance(other, Tensor):
        raise TypeError(f"isclose(): argument 'other' (position 2) must be Tensor, not {type(other).__name__}")
    if input.dtype != other.dtype:
        raise RuntimeError(f"{_TORCH_NAMES[input.dtype]} did not match {_TORCH_NAMES[other.dtype]}")
    if rtol < 0:
        raise RuntimeError(f"rtol must be greater than or equal to zero, but got {rtol}")
    if atol < 0:
        raise RuntimeError(f"atol must be greater than or equal to zero, but got {atol}")
    close = input == other
    floating = input.is_floating_point() or input.is_complex()
    if equal_nan and floating:
        close = close | (T.isnan(input) & T.isnan(other))
    if rtol == 0 and atol == 0:
        return close
    # integers: the error in float64, as torch's (no wrap-around: uint8 3 - 250 is not 9)
    a, b = (input, other) if floating else (input.to(_dt.float64), other.to(_dt.float64))
    allowed = atol + T.abs(rtol * b)
    actual = T.abs(a - b)
    return close | (T.isfinite(actual) & (actual <= allowed))


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """Whether every element of ``input`` is close to ``other``'s (see :func:`isclose`), as a bool.

    >>> import tracenn as torch
    >>> torch.allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    True
    """
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def detach(input):
    """A tensor sharing ``input``'s values, cut from the autograd graph (``input.detach()``)."""
    return input.detach()


# ---- diagonals ---------------------------------------------------------------------------------

def diag(input, diagonal=0):
    """1-d input: the square matrix with ``input`` on its ``diagonal`` (0 main, >0 above, <0 below);
    2-d input: that diagonal of the matrix, as a new 1-d tensor.

    >>> import tracenn as torch
    >>> torch.diag(torch.tensor([1, 2]), 1)
    tensor([[0, 1, 0],
            [0, 0, 2],
            [0, 0, 0]])
    """
    if input.ndim == 1:
        return _t().diag_embed(input, offset=diagonal)
    if input.ndim == 2:
        return input.diagonal(diagonal).clone()
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagflat(input, offset=0):
    """The square matrix with the flattened ``input`` on its ``offset`` diagonal."""
    return _t().diag_embed(input.reshape(-1), offset=offset)


def ravel(input):
    """The elements as a contiguous 1-d tensor (``reshape(-1)``)."""
    return input.reshape(-1)


def fill_diagonal_(self, fill_value, wrap=False):
    """Fill the main diagonal (all dims equal, or a matrix) with ``fill_value``, in place. For a tall
    matrix, ``wrap=True`` starts the diagonal again after each ``N + 1`` rows, as NumPy's."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    shape = tuple(self.shape)
    if self.ndim > 2 and len(set(shape)) != 1:
        raise RuntimeError("all dimensions of input must be of equal length")
    mask = np.zeros(int(np.prod(shape)), dtype=bool)
    if self.ndim == 2:
        h, w = shape
        n = h * w if wrap else min(h, w) * (w + 1) - w
        mask[:n:w + 1] = True
    else:
        step = sum(int(np.prod(shape[k + 1:])) for k in range(len(shape)))
        mask[::step] = True
    T = _t()
    fill = fill_value if isinstance(fill_value, Tensor) else T.tensor(fill_value, dtype=self.dtype)
    return self._set_(T.where(T.tensor(mask.reshape(shape)), fill.to(self.dtype), self), "fill_diagonal_")


# ---- writes into a part of a tensor -------------------------------------------------------------

def _put(input, dim, index, source):
    """``input`` with ``source`` written at ``index`` along ``dim`` (index_put, one scatter)."""
    spec = (("s", None, None, None),) * dim + (("t", 0),)
    return apply(_INDEX_PUT, (input, source, index), (spec, False))


def index_copy(input, dim, index, source):
    """``input`` with the slices ``source.select(dim, i)`` copied to ``index[i]`` along ``dim``.

    >>> import tracenn as torch
    >>> torch.zeros(3, 2).index_copy(0, torch.tensor([2, 0]), torch.tensor([[1., 2.], [3., 4.]]))
    tensor([[3., 4.],
            [0., 0.],
            [1., 2.]])
    """
    d = _wrap_dim(dim, max(input.ndim, 1))
    if index.dtype != _dt.int64:
        raise RuntimeError(f"index_copy_(): Expected a long tensor for index, but got {_TORCH_NAMES[index.dtype]}")
    if index.ndim > 1:
        raise IndexError("index_copy_(): Index should have dimension 1 or 0 (got {})".format(index.ndim))
    if input.dtype != source.dtype:
        raise RuntimeError(f"index_copy_(): self and source expected to have the same dtype, but got (self) "
                           f"{_TORCH_NAMES[input.dtype]} and (source) {_TORCH_NAMES[source.dtype]}")
    if input.ndim == 0:  # torch treats a 0-d tensor as one slice
        return index_copy(input.reshape(1), 0, index.reshape(-1), source.reshape(-1)).reshape(())
    index = index.reshape(-1)
    src = source.unsqueeze(d) if source.ndim == input.ndim - 1 else source
    for k in range(input.ndim):
        if k != d and (src.ndim != input.ndim or src.shape[k] != input.shape[k]):
            got = src.shape[k] if k < src.ndim else 1
            raise RuntimeError(f"index_copy_(): Source/destination tensor must have same slice shapes. Destination "
                               f"slice shape: {input.shape[k]} at dimension {k} and source slice shape: {got} "
                               f"at dimension {k}.")
    if src.shape[d] != index.shape[0]:
        raise IndexError(f"index_copy_(): Number of indices ({index.shape[0]}) should be equal to "
                           f"source.size(dim) ({src.shape[d]})")
    _check_bounds(index, input.shape[d], d, what="index_copy_(): index")
    return _put(input, d, index, src)


def _check_src(src, expected):
    if tuple(src.shape) != tuple(expected):
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = "
                           f"{list(src.shape)}, slice size = {list(expected)}")


def select_scatter(input, src, dim, index):
    """A copy of ``input`` with ``src`` written into ``input.select(dim, index)``."""
    part = input.select(dim, index)  # torch's errors for a bad dim or index
    _check_src(src, part.shape)
    d = _wrap_dim(dim, input.ndim)
    return _put(input, d, _const_index(index % input.shape[d]), src.to(input.dtype).unsqueeze(d))


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """A copy of ``input`` with ``src`` written into the slice ``start:end:step`` of ``dim``."""
    d = _wrap_dim(dim, input.ndim)
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    rows = range(*slice(start, end, step).indices(input.shape[d]))
    _check_src(src, input.shape[:d] + (len(rows),) + input.shape[d + 1:])
    return _put(input, d, _const_index(list(rows)), src.to(input.dtype))


def diagonal_scatter(input, src, offset=0, dim1=0, dim2=1):
    """A copy of ``input`` with ``src`` written into ``input.diagonal(offset, dim1, dim2)``."""
    T = _t()
    part = input.diagonal(offset, dim1, dim2)
    _check_src(src, part.shape)
    d1, d2 = _wrap_dim(dim1, input.ndim), _wrap_dim(dim2, input.ndim)
    n = part.shape[-1]
    rows = np.arange(n) + max(-offset, 0)
    cols = np.arange(n) + max(offset, 0)
    moved = T.movedim(input, (d1, d2), (-2, -1))
    spec = (("s", None, None, None),) * (input.ndim - 2) + (("t", 0), ("t", 1))
    out = apply(_INDEX_PUT, (moved, src.to(input.dtype), _const_index(rows), _const_index(cols)), (spec, False))
    return T.movedim(out, (-2, -1), (d1, d2))


# ---- shape -------------------------------------------------------------------------------------

def unfold(self, dimension, size, step):
    """All length-``size`` windows along ``dimension``, ``step`` apart, in a new last dim.

    (torch returns a view; this is a copy: writes into it do not reach ``self``.)

    >>> import tracenn as torch
    >>> torch.arange(5).unfold(0, 2, 2)
    tensor([[0, 1],
            [2, 3]])
    """
    d = _wrap_dim(dimension, max(self.ndim, 1))
    n = self.shape[d] if self.ndim else 1
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if size < 0:
        raise RuntimeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")
    if self.ndim == 0:  # torch: the one element is one window of size 1 (or none of size 0)
        return self.reshape(1)[:size]
    count = (n - size) // step + 1
    idx = (np.arange(count)[:, None] * step + np.arange(size)[None, :]).reshape(-1)
    taken = self.index_select(d, _const_index(idx))
    windows = taken.reshape(self.shape[:d] + (count, size) + self.shape[d + 1:])
    return windows.movedim(d + 1, -1)


def _split_dims(name, input, indices_or_sections, dim, min_ndim):
    if input.ndim < min_ndim:
        raise RuntimeError(f"torch.{name} requires a tensor with at least {min_ndim} dimension, but got a "
                           f"tensor with {input.ndim} dimensions!")
    if isinstance(indices_or_sections, int) and input.shape[dim] % indices_or_sections:
        raise RuntimeError(f"torch.{name} attempted to split along dimension {dim}, but the size of the dimension "
                           f"{input.shape[dim]} is not divisible by the split_size {indices_or_sections}!")
    return _t().tensor_split(input, indices_or_sections, dim)


def hsplit(input, indices_or_sections):
    """Split along dim 1 (dim 0 for a 1-d tensor) into equal sections or at indices."""
    return _split_dims("hsplit", input, indices_or_sections, 1 if input.ndim > 1 else 0, 1)


def vsplit(input, indices_or_sections):
    """Split along dim 0 into equal sections or at indices."""
    return _split_dims("vsplit", input, indices_or_sections, 0, 2)


def dsplit(input, indices_or_sections):
    """Split along dim 2 into equal sections or at indices."""
    return _split_dims("dsplit", input, indices_or_sections, 2, 3)


def sum_to_size(self, *size):
    """Sum ``self`` down to ``size`` (which it must broadcast to), as a gradient is reduced."""
    from ._common import shape_arg
    size = shape_arg(size)
    shape = tuple(self.shape)
    try:
        ok = _t().broadcast_shapes(size, shape) == shape
    except RuntimeError:
        ok = False
    if not ok or len(size) > len(shape):
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size {{{list(shape)}}}.")
    lead = len(shape) - len(size)
    dims = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(size) if s == 1 and shape[lead + k] != 1)
    out = self.sum(dims, keepdim=True) if dims else self
    return out.reshape(size) if lead else out


# ---- predicates --------------------------------------------------------------------------------

def is_nonzero(input) -> bool:
    """Whether a one-element tensor is not zero (``False``, ``0``, ``0.0``)."""
    n = input.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(np.asarray(value_of(input)).reshape(()) != 0)


def is_same_size(input, other) -> bool:
    """Whether the two tensors have the same shape."""
    return tuple(input.shape) == tuple(other.shape)


def is_signed(input) -> bool:
    """Whether the dtype is signed (floats, complex and signed integers)."""
    return input.dtype.is_signed


def fill(input, value):
    """A tensor like ``input`` with every element ``value`` (a number or a 0-d tensor)."""
    return input.clone().fill_(value)
