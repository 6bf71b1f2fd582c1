"""Arithmetic on sparse COO tensors, written with ordinary tensor ops on indices and values.

- ``S @ D``: gather the rows of ``D`` that the column indices name, scale them by the values, and
  ``index_add`` them into the output rows (a segment sum). Autograd reaches ``D`` and the values;
  under ``tracenn.compile`` the same ops are recorded (gather + scatter-add in XLA).
- ``sum`` over dims, ``softmax``/``log_softmax`` over a dim: segment sums / maxima keyed by the
  linear index of the other sparse dims.
- scalar ``*``/``/``, negation, and ``S + S`` change or join the values.

A result whose number of entries depends on the index values (``sum`` over some sparse dims,
``S + S``) is coalesced as torch's is when the indices can be read (eagerly); inside a compiled
call it is left uncoalesced (same numbers; ``to_dense()`` gives the same tensor).
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes as _dt
from .._api._common import value_of
from .._dispatch import abstract
from ..errors import DtypeError, ShapeError
from ..tensor import Tensor, _wrap_dim
from . import _coo
from ._coo import SparseTensor, _make, linear_index, refuse


def _check_mm(s: SparseTensor, d: Tensor, name: str) -> None:
    if isinstance(d, SparseTensor):
        raise refuse(f"{name} of two sparse tensors")
    if not isinstance(d, Tensor):
        raise TypeError(f"{name}(): expected a dense Tensor as the second operand, got {type(d).__name__}")
    if s.ndim != 2 or s.dense_dim() != 0:
        raise refuse(f"{name} of a sparse tensor that is not a 2-D matrix with sparse_dim=2 (got "
                     f"{s.ndim}-D, sparse_dim={s.sparse_dim()})")
    if d.ndim not in (1, 2):
        raise RuntimeError(f"{name}: the dense operand must be 1-D or 2-D, got {d.ndim}-D")
    if s.dtype != d.dtype:
        raise DtypeError(f"{name}: expected the dense operand to have the sparse tensor's dtype {s.dtype}, got "
                         f"{d.dtype}; cast one side, e.g. dense.to({s.dtype})")
    if s.shape[1] != d.shape[0]:
        b = "x".join(map(str, d.shape if d.ndim == 2 else (d.shape[0], 1)))
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({s.shape[0]}x{s.shape[1]} and {b})")


def _spmm(s: SparseTensor, d: Tensor) -> Tensor:
    """(m, n) sparse @ (n,) or (n, k) dense: sum over entries of value * d[col] into row."""
    from .._api.creation import zeros
    from .._api.index import index_add, index_select
    rows, cols = s._sp_indices[0], s._sp_indices[1]
    v = s._sp_values
    picked = index_select(d, 0, cols)
    scaled = picked * (v if d.ndim == 1 else v.unsqueeze(1))
    out = zeros((s.shape[0],) + tuple(d.shape[1:]), dtype=d.dtype, device=d.device)
    return index_add(out, 0, rows, scaled)


def mm(mat1, mat2, reduce="sum") -> Tensor:
    r"""Sparse @ dense (or dense @ sparse) matrix product, as torch.sparse.mm. Gradients reach the
    dense operand and the sparse tensor's values.

    Args:
        mat1, mat2: one sparse COO matrix (2-D, ``sparse_dim=2``) and one dense matrix (or vector
            on the right), same dtype.
        reduce: only ``"sum"`` (torch's CSR-only ``"mean"/"amax"/...`` are not supported).

    >>> import tracenn, tracenn.sparse
    >>> a = tracenn.sparse_coo_tensor([[0, 1, 1], [1, 0, 2]], [2., 3., 4.], (2, 3))
    >>> tracenn.sparse.mm(a, tracenn.ones(3, 2))
    tensor([[2., 2.],
            [7., 7.]])
    """
    if reduce != "sum":
        raise refuse(f"sparse.mm(reduce={reduce!r})")
    if isinstance(mat1, SparseTensor):
        _check_mm(mat1, mat2, "mm")
        return _spmm(mat1, mat2)
    if isinstance(mat2, SparseTensor):  # D @ S = (S^T @ D^T)^T
        if not isinstance(mat1, Tensor) or mat1.ndim != 2:
            raise refuse("dense @ sparse with a dense operand that is not a matrix")
        _check_mm(mat2.t(), mat1.t(), "mm")
        return _spmm(mat2.t(), mat1.t()).t()
    from .._api.linalg import mm as dense_mm
    return dense_mm(mat1, mat2)


def spmm(input, mat2) -> Tensor:
    """torch.spmm: ``tracenn.sparse.mm`` with the sparse matrix on the left (a dense one works too)."""
    return mm(input, mat2)


def matmul(input, other) -> Tensor:
    """``tracenn.matmul``/``mm``/``@`` with a sparse COO operand (called from the dense functions)."""
    if isinstance(input, SparseTensor) and isinstance(other, SparseTensor):
        raise refuse("matmul of two sparse tensors")
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError(f"matmul(): expected Tensors, got {type(input).__name__} and {type(other).__name__}")
    return mm(input, other)


def addmm(input, mat1, mat2, *, beta=1, alpha=1) -> Tensor:
    """torch.sparse.addmm: ``beta * input + alpha * (mat1 @ mat2)`` with ``mat1`` sparse."""
    prod = mm(mat1, mat2)
    if isinstance(input, SparseTensor):
        input = input.to_dense()
    return (input if beta == 1 else input * beta) + (prod if alpha == 1 else prod * alpha)


# ---- scalars and addition ----------------------------------------------------------------------

def _scalar(x, name):
    if isinstance(x, SparseTensor) or isinstance(x, Tensor) and x.ndim != 0:
        raise refuse(f"{name} of a sparse tensor by a tensor that is not 0-d")
    if not isinstance(x, (Tensor, numbers.Number)):
        return None
    return x


def mul(self, other):
    """Multiply the values by a scalar (a Python number or a 0-d tensor)."""
    o = _scalar(other, "mul")
    if o is None:
        return NotImplemented
    return _make(self._sp_indices, self._sp_values * o, self._value.shape, self._coalesced)


def div(self, other, *, rounding_mode=None):
    """Divide the values by a scalar (a Python number or a 0-d tensor)."""
    o = _scalar(other, "div")
    if o is None:
        return NotImplemented
    v = self._sp_values.div(o, rounding_mode=rounding_mode)
    return _make(self._sp_indices, v, self._value.shape, self._coalesced)


def neg(self):
    return _make(self._sp_indices, -self._sp_values, self._value.shape, self._coalesced)


def add(self, other, *, alpha=1):
    """Sparse + sparse of the same shape: the entries of both (coalesced when both were and the
    indices can be read; inside a compiled call left uncoalesced)."""
    from .._api.shape import cat
    if not isinstance(other, SparseTensor):
        raise refuse("add(sparse, dense or scalar)")
    if other.shape != self.shape or other.sparse_dim() != self.sparse_dim():
        raise RuntimeError(f"add: expected sizes {tuple(self.shape)} and {tuple(other.shape)} (and sparse dims) "
                           f"to match")
    ov = other._sp_values if alpha == 1 else other._sp_values * alpha
    out = _make(cat([self._sp_indices, other._sp_indices], 1), cat([self._sp_values, ov], 0),
                self._value.shape, False)
    return _settle(out) if self._coalesced and other._coalesced else out


def _settle(s: SparseTensor) -> SparseTensor:
    """``s`` coalesced when its indices can be read, else as it is (inside a compiled call)."""
    return s if abstract(value_of(s._sp_indices)) else s.coalesce()


# ---- reductions --------------------------------------------------------------------------------

def sum(input, dim=None, dtype=None) -> Tensor:
    r"""Sum of a sparse COO tensor's entries, as torch.sparse.sum: all of them (a 0-d dense tensor),
    or over ``dim`` (an int or a list). A result that keeps sparse dims is sparse (coalesced,
    eagerly), else dense. Gradients flow to the values.

    >>> import tracenn, tracenn.sparse
    >>> a = tracenn.sparse_coo_tensor([[0, 1, 1], [1, 0, 2]], [2., 3., 4.], (2, 3))
    >>> tracenn.sparse.sum(a)
    tensor(9.)
    >>> tracenn.sparse.sum(a, dim=1).to_dense()
    tensor([2., 7.])
    """
    if not isinstance(input, SparseTensor):
        return input.sum(dim, dtype=dtype) if dim is not None else input.sum(dtype=dtype)
    v = input._sp_values if dtype is None else input._sp_values.to(dtype)
    if dim is None:
        return v.sum()
    dims = sorted({_wrap_dim(d, input.ndim) for d in (dim if isinstance(dim, (list, tuple)) else (dim,))})
    sd = input.sparse_dim()
    dense = [d - sd + 1 for d in dims if d >= sd]
    if dense:
        v = v.sum(dense)
    summed = [d for d in dims if d < sd]
    if not summed:
        return _make(input._sp_indices, v, _drop(input.shape, dims), input._coalesced)
    keep = [d for d in range(sd) if d not in summed]
    if not keep:
        return v.sum(0)
    from .._api.index import index_select
    idx = index_select(input._sp_indices, 0, _coo._int_tensor(np.array(keep, np.int64), v.device))
    return _settle(_make(idx, v, _drop(input.shape, dims), False))


def _drop(shape, dims):
    return tuple(n for i, n in enumerate(shape) if i not in dims)


def _groups(s: SparseTensor, dim: int):
    """(key, count): each entry's group over the sparse dims other than ``dim``, and how many groups."""
    sd = s.sparse_dim()
    others = [d for d in range(sd) if d != dim]
    if not others:
        from .._api.creation import zeros
        return zeros(s._nnz(), dtype=_dt.int64, device=s.device), 1
    from .._api.index import index_select
    idx = index_select(s._sp_indices, 0, _coo._int_tensor(np.array(others, np.int64), s.device))
    sizes = [s.shape[d] for d in others]
    return linear_index(idx, sizes), int(np.prod(sizes, dtype=np.int64))


def _softmax(input, dim, dtype, log: bool) -> SparseTensor:
    if not isinstance(input, SparseTensor):
        f = input.log_softmax if log else input.softmax
        return f(dim, dtype=dtype)
    s = input.coalesce()  # (torch's softmax coalesces first)
    v = s._sp_values if dtype is None else s._sp_values.to(dtype)
    d = _wrap_dim(dim, s.ndim)
    sd = s.sparse_dim()
    if d >= sd:  # over a dense dim: each stored value on its own
        w = v.log_softmax(d - sd + 1) if log else v.softmax(d - sd + 1)
        return _make(s._sp_indices, w, s._value.shape, True)
    from .._api.creation import full, zeros
    from .._api.index import index_add, index_select, scatter_reduce
    key, n = _groups(s, d)
    rest = tuple(v.shape[1:])
    with _no_grad():  # (the shift only keeps exp() finite: softmax does not depend on it)
        k = key.reshape((-1,) + (1,) * len(rest)).expand(v.shape)
        top = scatter_reduce(full((n,) + rest, float("-inf"), dtype=v.dtype, device=v.device), 0, k, v, "amax")
        shift = index_select(top, 0, key)
    z = v - shift
    e = z.exp()
    total = index_add(zeros((n,) + rest, dtype=v.dtype, device=v.device), 0, key, e)
    per = index_select(total, 0, key)
    w = z - per.log() if log else e / per
    return _make(s._sp_indices, w, s._value.shape, True)


def _no_grad():
    from ..autograd.grad_mode import no_grad
    return no_grad()


def softmax(input, dim, *, dtype=None) -> SparseTensor:
    r"""torch.sparse.softmax: softmax over ``dim`` of the stored entries only (missing entries count
    as -inf, so they stay missing); the result has the coalesced input's indices.

    >>> import tracenn, tracenn.sparse
    >>> a = tracenn.sparse_coo_tensor([[0, 0, 1], [0, 2, 1]], [1., 1., 5.], (2, 3))
    >>> tracenn.sparse.softmax(a, 1).to_dense()
    tensor([[0.5000, 0.0000, 0.5000],
            [0.0000, 1.0000, 0.0000]])
    """
    return _softmax(input, dim, dtype, False)


def log_softmax(input, dim, *, dtype=None) -> SparseTensor:
    """torch.sparse.log_softmax: :func:`softmax`'s logarithm, computed stably."""
    return _softmax(input, dim, dtype, True)


# ---- methods -------------------------------------------------------------------------------------

def _bind() -> None:
    T = SparseTensor
    T.mul = T.__mul__ = T.__rmul__ = mul
    T.div = T.__truediv__ = div
    T.neg = T.__neg__ = neg
    T.add = T.__add__ = add
    T.mm = T.matmul = T.__matmul__ = mm
    T.__rmatmul__ = lambda self, other: mm(other, self)
    T.sum = lambda self, dim=None, keepdim=False, dtype=None: _method_sum(self, dim, keepdim, dtype)
    T.softmax = lambda self, dim, dtype=None: softmax(self, dim, dtype=dtype)
    T.log_softmax = lambda self, dim, dtype=None: log_softmax(self, dim, dtype=dtype)


def _method_sum(self, dim, keepdim, dtype):
    if keepdim:
        raise refuse("sum(keepdim=True)")
    if dim is None:
        return sum(self, dtype=dtype)
    return sum(self, dim, dtype=dtype)


_bind()
