"""The sparse COO tensor: a :class:`~tracenn.Tensor` whose numbers live in two dense tensors.

A :class:`SparseTensor` holds ``_sp_indices`` (int64, ``(sparse_dim, nnz)``) and ``_sp_values``
(``(nnz, *dense_shape)``), as torch's ``_indices()``/``_values()``. Every sparse operation is a
composite of ordinary registry ops on those two tensors (gather, ``index_add``, ``index_put``), so
it runs eagerly, records autograd history on ``values`` and traces under ``tracenn.compile``
with no sparse primitive anywhere.

The tensor's own ``_value`` is a :class:`SparseValue`: it answers ``shape``/``dtype``/``ndim`` (so
``x.shape``, ``x.dim()``, ``x.numel()`` work) and refuses to be read as an array. A dense op that is
handed a sparse tensor therefore fails in eager dispatch or in the tracer, which ask the value
(``_sparse_refuse``) for the error that names the op and says to call ``.to_dense()``; public
Tensor methods outside the supported list are refused by name (:meth:`SparseTensor.__getattribute__`).

Coalescing (sorting indices and summing duplicates) gives a size that depends on the index values:
it reads the indices on the host, eagerly; inside a compiled call it raises DataDependentError
unless the tensor is coalesced already.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from .._api._common import value_of
from .._api.query import layout
from .._dispatch import abstract
from ..errors import SparseUnsupportedError
from ..tensor import Tensor
from ..utils._pytree import COMPOSITE

sparse_coo = layout("sparse_coo")

# What a sparse COO tensor supports; every other public Tensor method is refused by name.
SUPPORTED = (
    "shape size dtype device layout ndim dim ndimension numel nelement is_sparse is_cuda is_cpu is_meta "
    "requires_grad requires_grad_ grad grad_fn is_leaf is_floating_point is_complex element_size itemsize "
    "to_dense to_sparse to_sparse_coo coalesce is_coalesced indices values sparse_dim dense_dim t transpose "
    "mm matmul mul div neg add sum softmax log_softmax to cpu cuda detach clone type_as is_inference zero_ "
    "detach_"
).split()
_SUPPORTED = frozenset(SUPPORTED)
HELP = ("sparse COO tensors support only: to_dense(), coalesce(), is_coalesced(), indices()/values(), "
        "sparse_dim()/dense_dim()/_nnz(), t()/transpose(), multiplication or division by a scalar, "
        "sparse @ dense (tracenn.sparse.mm, tracenn.mm, tracenn.matmul, tracenn.spmm, @), sparse + sparse, "
        "tracenn.sparse.sum/softmax/log_softmax, to()/cpu()/cuda()/detach()/clone()")


def refuse(what: str):
    """The error for ``what`` (an op or method name) applied to a sparse COO tensor."""
    return SparseUnsupportedError(
        f"{what}: not supported for a sparse COO tensor (layout=tracenn.sparse_coo). {HELP}. "
        "Call .to_dense() first to compute on the dense tensor.")


class SparseValue:
    """A sparse tensor's ``_value``: its shape and dtype, and no array. Reading it as an array (eager
    dispatch, the tracer, ``numpy()``) raises the sparse error instead of a JAX one."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def _sparse_refuse(self, what):
        raise refuse(what)

    def __array__(self, *args, **kwargs):
        raise refuse("reading the values (numpy(), tolist(), item())")

    def __jax_array__(self):
        raise refuse("reading the values as an array")

    def __repr__(self):
        return f"SparseValue({self.shape}, {self.dtype})"


class SparseTensor(Tensor):
    """A sparse COO tensor (``layout=tracenn.sparse_coo``), as torch's. Make one with
    :func:`tracenn.sparse_coo_tensor` or ``dense.to_sparse()``."""

    is_sparse = True
    layout = sparse_coo

    def __getattribute__(self, name):
        if name[0] != "_" and name not in _SUPPORTED and hasattr(Tensor, name):
            raise refuse(f"Tensor.{name}")
        return object.__getattribute__(self, name)

    # ---- parts ----------------------------------------------------------------------------------

    def sparse_dim(self) -> int:
        """How many leading dims the indices address (rows of ``indices()``)."""
        return self._sp_indices.shape[0]

    def dense_dim(self) -> int:
        """How many trailing dims each stored value has (``values().dim() - 1``)."""
        return self._sp_values.ndim - 1

    def _nnz(self) -> int:
        """The number of stored entries (duplicates counted, until coalesced)."""
        return self._sp_values.shape[0]

    def _indices(self) -> Tensor:
        """The indices, coalesced or not: ``(sparse_dim, nnz)`` int64."""
        return self._sp_indices

    def _values(self) -> Tensor:
        """The stored values, coalesced or not: ``(nnz, *dense_shape)``."""
        return self._sp_values

    def indices(self) -> Tensor:
        """The indices of a coalesced tensor (call ``coalesce()`` first, as torch requires)."""
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return self._sp_indices

    def values(self) -> Tensor:
        """The values of a coalesced tensor (call ``coalesce()`` first, as torch requires). Gradients
        flow through it to whatever the values were made from."""
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        return self._sp_values

    def is_coalesced(self) -> bool:
        """Whether the indices are sorted and unique (set by ``coalesce()``, ``to_sparse()``, or
        ``is_coalesced=True`` when made)."""
        return self._coalesced

    @property
    def device(self):
        return self._sp_values.device

    # ---- autograd -------------------------------------------------------------------------------

    def requires_grad_(self, requires_grad: bool = True) -> "SparseTensor":
        """Make this sparse leaf require grad: ``backward()`` then fills ``.grad`` (see :attr:`grad`)."""
        if self._node is not None:
            return Tensor.requires_grad_(self, requires_grad)
        v = self._sp_values
        if v._requires_grad != bool(requires_grad):
            if v._node is None and "_sp_own" not in self.__dict__:  # (not the caller's tensor: its alias)
                v = self._sp_values = v.detach()
                self._sp_own = True
            v.requires_grad_(requires_grad)
        Tensor.requires_grad_(self, requires_grad)
        return self

    @property
    def grad(self):
        """A sparse leaf's gradient: a sparse tensor with this tensor's indices and the gradient of
        each stored value (torch.sparse.mm gives the same for a coalesced leaf; torch.mm gives a
        dense one). None before ``backward()``."""
        g = self._sp_values.grad if self._node is None else None
        if g is None:
            return None
        return _make(self._sp_indices, g, self._value.shape, self._coalesced)

    @grad.setter
    def grad(self, value):
        if value is not None:
            raise refuse("setting .grad")
        self._sp_values.grad = None

    # ---- conversions ------------------------------------------------------------------------------

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        """The dense tensor: duplicate entries add up. Gradients flow back to ``values``.

        >>> import tracenn, tracenn.sparse
        >>> s = tracenn.sparse_coo_tensor([[0, 1, 1], [2, 0, 0]], [1., 2., 3.], (2, 3))
        >>> s.to_dense()
        tensor([[0., 0., 1.],
                [5., 0., 0.]])
        """
        from .._api.creation import zeros
        from .._api.index import index_add
        v = self._sp_values if dtype is None else self._sp_values.to(dtype)
        shape = self._value.shape
        sd = self.sparse_dim()
        rows = int(np.prod(shape[:sd], dtype=np.int64))
        flat = zeros((rows,) + tuple(shape[sd:]), dtype=v.dtype, device=v.device)
        out = index_add(flat, 0, linear_index(self._sp_indices, shape[:sd]), v)
        return out.reshape(shape)

    def to_sparse(self, *args, **kwargs) -> "SparseTensor":
        """A sparse COO tensor is already sparse: itself (torch's, for ``layout=None``)."""
        _sparse_args(self, args, kwargs)
        return self

    to_sparse_coo = to_sparse

    def coalesce(self) -> "SparseTensor":
        """Sort the indices (row-major) and sum duplicates, as torch's. Reads the indices on the host:
        inside ``tracenn.compile`` only an already coalesced tensor can be coalesced (coalesce before
        the compiled call, or make the tensor with ``is_coalesced=True``).

        >>> import tracenn, tracenn.sparse
        >>> s = tracenn.sparse_coo_tensor([[1, 0, 1], [0, 2, 0]], [1., 2., 3.], (2, 3)).coalesce()
        >>> s.indices(), s.values()
        (tensor([[0, 1],
                [2, 0]]), tensor([2., 4.]))
        """
        if self._coalesced:
            return self
        from .._api._common import shape_values
        from .._api.creation import zeros
        from .._api.index import index_add
        shape = self._value.shape
        sd = self.sparse_dim()
        idx = shape_values(self._sp_indices, "coalesce() (its nnz counts the distinct indices)",
                           "coalesce the sparse tensor before the compiled call (adj = adj.coalesce()), or "
                           "make it with is_coalesced=True when its indices are sorted and unique")
        lin = _np_linear(idx, shape[:sd])
        keys, inverse = np.unique(lin, return_inverse=True)
        new_idx = np.stack(np.unravel_index(keys, shape[:sd])) if sd else np.zeros((0, len(keys)), np.int64)
        v = self._sp_values
        dev = v.device
        inv = _int_tensor(inverse.reshape(-1), dev)
        summed = index_add(zeros((len(keys),) + tuple(v.shape[1:]), dtype=v.dtype, device=dev), 0, inv, v)
        return _make(_int_tensor(new_idx.astype(np.int64).reshape(sd, len(keys)), dev), summed, shape, True)

    def to(self, *args, **kwargs) -> "SparseTensor":
        """Move or cast the indices and values alike (a dtype applies to the values only)."""
        from .._api.convert import to
        values = to(self._sp_values, *args, **kwargs)
        indices = self._sp_indices.to(values.device)
        if values is self._sp_values and indices is self._sp_indices:
            return self
        return _make(indices, values, self._value.shape, self._coalesced)

    def cpu(self) -> "SparseTensor":
        return self.to("cpu")

    def cuda(self, device=None, non_blocking=False) -> "SparseTensor":
        return self.to("cuda" if device is None else device)

    def detach(self) -> "SparseTensor":
        """The same indices and values outside autograd."""
        return _make(self._sp_indices, self._sp_values.detach(), self._value.shape, self._coalesced)

    def clone(self, *, memory_format=None) -> "SparseTensor":
        return _make(self._sp_indices.clone(), self._sp_values.clone(), self._value.shape, self._coalesced)

    def type_as(self, other) -> "SparseTensor":
        return self.to(other.dtype)

    def zero_(self) -> "SparseTensor":
        """Remove every entry, in place (``nnz`` becomes 0), as torch's: what
        ``optimizer.zero_grad(set_to_none=False)`` does to a sparse gradient."""
        from .._api.creation import zeros
        v = self._sp_values
        self._sp_indices = zeros((self.sparse_dim(), 0), dtype=_dt.int64, device=v.device)
        self._sp_values = zeros((0,) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device)
        self._coalesced = True
        return self

    def detach_(self) -> "SparseTensor":
        """Detach in place: the values leave autograd's graph."""
        self._sp_values = self._sp_values.detach()
        self._node, self._requires_grad = None, False
        return self

    # ---- arithmetic (see _ops.py) -------------------------------------------------------------

    def t(self) -> "SparseTensor":
        """The transpose of a 2-D sparse tensor (its index rows swapped)."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self.transpose(0, self.ndim - 1) if self.ndim == 2 else self

    def transpose(self, dim0, dim1) -> "SparseTensor":
        """Swap two sparse dims (their index rows). Dense dims cannot be swapped with sparse ones."""
        from ..tensor import _wrap_dim
        d0, d1 = _wrap_dim(dim0, self.ndim), _wrap_dim(dim1, self.ndim)
        sd = self.sparse_dim()
        if d0 >= sd or d1 >= sd:
            raise refuse("transpose of a dense dim")
        if d0 == d1:
            return self
        order = list(range(sd))
        order[d0], order[d1] = d1, d0
        from .._api.index import index_select
        idx = index_select(self._sp_indices, 0, _int_tensor(np.array(order, np.int64), self._sp_indices.device))
        shape = list(self._value.shape)
        shape[d0], shape[d1] = shape[d1], shape[d0]
        return _make(idx, self._sp_values, tuple(shape), False)

    def __getitem__(self, index):
        raise refuse("indexing (x[...])")

    def __setitem__(self, index, value):
        raise refuse("indexed assignment (x[...] = v)")

    def __iter__(self):
        raise refuse("iteration")

    def __bool__(self):
        raise refuse("bool()")

    def __repr__(self):
        return sparse_repr(self)


# ---- construction ------------------------------------------------------------------------------

# Set once any sparse tensor has been made: until then optimizers skip looking for sparse gradients.
SEEN = [False]


def _make(indices: Tensor, values: Tensor, shape, coalesced: bool) -> SparseTensor:
    """A sparse tensor of these parts (no checks: callers made them consistent)."""
    SEEN[0] = True
    t = object.__new__(SparseTensor)
    t._value = SparseValue(shape, values._value.dtype)
    t._requires_grad = values._requires_grad
    t._node = values._node
    t._out_idx = values._out_idx
    t._sp_indices = indices
    t._sp_values = values
    t._coalesced = bool(coalesced)
    return t


def _int_tensor(a: np.ndarray, device) -> Tensor:
    from .._api.creation import tensor
    return tensor(a, dtype=_dt.int64, device=device)


def _np_linear(idx: np.ndarray, sizes) -> np.ndarray:
    """Row-major linear positions of the index columns ``idx`` ((len(sizes), nnz))."""
    lin = np.zeros(idx.shape[1], np.int64)
    for d, n in enumerate(sizes):
        lin = lin * n + idx[d]
    return lin


def linear_index(indices: Tensor, sizes) -> Tensor:
    """Row-major linear positions of the index columns (a tensor op: traces and runs on the device)."""
    if len(sizes) == 1:
        return indices[0]
    lin = indices[0]
    for d in range(1, len(sizes)):
        lin = lin * sizes[d] + indices[d]
    return lin


def _sparse_args(t, args, kwargs):
    """to_sparse's arguments on a tensor that is already COO: only the COO layout is possible."""
    lay = kwargs.get("layout", args[0] if args and not isinstance(args[0], int) else None)
    if lay not in (None, sparse_coo):
        raise refuse(f"to_sparse(layout={lay!r})")
    sd = kwargs.get("sparse_dim", args[0] if args and isinstance(args[0], int) else None)
    if sd is not None and sd != t.sparse_dim():
        raise RuntimeError(f"to_sparse: conversion from Sparse to Sparse with sparse_dim argument !=self.sparse_dim() "
                           f"is not supported (sparse_dim={sd}, self.sparse_dim()={t.sparse_dim()})")


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, pin_memory=False,
                      requires_grad=False, check_invariants=None, is_coalesced=None) -> SparseTensor:
    r"""A sparse COO tensor with ``values[k]`` at position ``indices[:, k]``, as torch.sparse_coo_tensor.

    Args:
        indices: ``(sparse_dim, nnz)`` integer indices (a tensor, array or nested list); int64 kept.
        values: ``(nnz, *dense_shape)`` values. A tensor that requires grad stays in the graph:
            results computed from the sparse tensor give it gradients.
        size: the full shape; default: each sparse dim one past its largest index, then
            ``values.shape[1:]``.
        dtype, device: of the values (default: the values'); requires_grad: make a sparse leaf whose
            ``.grad`` is sparse after ``backward()``.
        check_invariants: accepted. Indices are always checked against ``size`` when their values
            are known (eagerly), as an out-of-range index would otherwise be dropped silently.
        is_coalesced: declare the indices sorted and unique (not checked, as torch).

    >>> import tracenn, tracenn.sparse
    >>> s = tracenn.sparse_coo_tensor([[0, 1], [2, 0]], [3., 4.], (2, 3))
    >>> s
    tensor(indices=tensor([[0, 1],
                           [2, 0]]),
           values=tensor([3., 4.]),
           size=(2, 3), nnz=2, layout=tracenn.sparse_coo)
    >>> s.to_dense()
    tensor([[0., 0., 3.],
            [4., 0., 0.]])
    """
    from .._api.creation import tensor
    if isinstance(indices, SparseTensor) or isinstance(values, SparseTensor):
        raise refuse("sparse_coo_tensor of a sparse tensor")
    if isinstance(indices, Tensor):
        if indices.is_floating_point() or indices.is_complex() or indices.dtype is _dt.bool:
            raise RuntimeError(f"indices must be an int64 tensor, got {indices.dtype}")
        idx = indices if indices.dtype is _dt.int64 else indices.to(_dt.int64)
    else:
        idx = tensor(indices, dtype=_dt.int64)
    if isinstance(values, Tensor):
        val = values if dtype is None else values.to(dtype)
    else:
        val = tensor(values, dtype=dtype)
    if device is not None:
        val = val.to(device)
    idx = idx.to(val.device)
    if idx.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    if val.ndim == 0:
        raise RuntimeError("values must have at least one dimension (nnz, *dense_shape), got a 0-d tensor")
    sd, nnz = idx.shape
    if val.shape[0] != nnz:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {nnz}, "
                           f"nnz from values: {val.shape[0]}")
    known = None if abstract(value_of(idx)) else np.asarray(value_of(idx))
    if size is None:
        if known is None:
            from ..errors import DataDependentError
            raise DataDependentError("sparse_coo_tensor without size= infers the size from the index values, "
                                     "which a compiled call does not have; pass size=")
        size = tuple(int(m) + 1 for m in known.max(axis=1)) if nnz else (0,) * sd
        size += tuple(val.shape[1:])
    size = tuple(int(s) for s in size)
    if len(size) != sd + val.ndim - 1:
        raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {len(size)}, "
                           f"sparse_dim = {sd}, dense_dim = {val.ndim - 1}")
    if tuple(val.shape[1:]) != size[sd:]:
        raise RuntimeError(f"values has incorrect size, expected {[nnz, *size[sd:]]}, got {list(val.shape)}")
    if known is not None and nnz:
        lo, hi = known.min(axis=1), known.max(axis=1)
        for d in range(sd):
            if lo[d] < 0:
                raise RuntimeError(f"found negative index {int(lo[d])} for dim {d}")
            if hi[d] >= size[d]:
                raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found "
                                   f"index {int(hi[d])}")
    if requires_grad:
        val = val.detach().requires_grad_()
    out = _make(idx, val, size, bool(is_coalesced))
    if requires_grad:
        out._sp_own = True
    return out


def to_sparse(self: Tensor, *args, **kwargs) -> SparseTensor:
    """A dense tensor's nonzero entries as a coalesced sparse COO tensor, as torch's
    ``Tensor.to_sparse(sparse_dim=None)`` (``sparse_dim`` leading dims sparse, the rest dense;
    ``layout`` may only be ``tracenn.sparse_coo``). Which entries are nonzero is read on the host:
    not inside ``tracenn.compile``. Gradients flow back to the dense tensor.

    >>> import tracenn, tracenn.sparse
    >>> tracenn.tensor([[0., 1.], [2., 0.]]).to_sparse()
    tensor(indices=tensor([[0, 1],
                           [1, 0]]),
           values=tensor([1., 2.]),
           size=(2, 2), nnz=2, layout=tracenn.sparse_coo)
    """
    from .._api._common import shape_values
    if isinstance(self, SparseTensor):
        return SparseTensor.to_sparse(self, *args, **kwargs)
    lay = kwargs.pop("layout", None)
    if args and not isinstance(args[0], int):
        lay, args = args[0], args[1:]
    if lay not in (None, sparse_coo):
        raise refuse(f"to_sparse(layout={lay!r}) (only tracenn.sparse_coo exists)")
    if kwargs.pop("blocksize", None) is not None:
        raise refuse("to_sparse(blocksize=...)")
    sd = kwargs.pop("sparse_dim", args[0] if args else None)
    if kwargs:
        raise TypeError(f"to_sparse() got an unexpected keyword argument '{next(iter(kwargs))}'")
    sd = self.ndim if sd is None else int(sd)
    if not 0 <= sd <= self.ndim:
        raise RuntimeError(f"sparse_dim must be in [0, {self.ndim}], got {sd}")
    a = shape_values(self, "to_sparse() (its nnz counts the nonzero entries)",
                     "convert to sparse before the compiled call")
    lead = a.reshape(a.shape[:sd] + (-1,)) if sd < a.ndim else a.reshape(a.shape + (1,))
    nz = np.nonzero(np.any(lead != 0, axis=-1))
    idx = np.stack(nz).astype(np.int64) if sd else np.zeros((0, 1 if a.size and np.any(a) else 0), np.int64)
    dev = self.device
    if sd == 0:
        values = self.unsqueeze(0) if idx.shape[1] else self.unsqueeze(0)[:0]
        return _make(_int_tensor(idx, dev), values, tuple(self.shape), True)
    lin = _np_linear(idx, a.shape[:sd])
    flat = self.reshape((-1,) + tuple(self.shape[sd:]))
    from .._api.index import index_select
    values = index_select(flat, 0, _int_tensor(lin, dev))
    return _make(_int_tensor(idx.reshape(sd, -1), dev), values, tuple(self.shape), True)


# ---- compiled calls ------------------------------------------------------------------------------

def _parts(t: SparseTensor):
    return (("_indices", t._sp_indices), ("_values", t._sp_values))


def _rebuild(t: SparseTensor, parts) -> SparseTensor:
    """``t``'s like with new parts: a sparse tensor of traced (or result) tensors, or — inside a
    flattened structure, where the parts are markers — a shell that only holds them."""
    idx, val = parts
    if isinstance(idx, Tensor) and isinstance(val, Tensor):
        return _make(idx, val, t._value.shape, t._coalesced)
    shell = object.__new__(SparseTensor)
    shell._value, shell._requires_grad, shell._node, shell._out_idx = t._value, False, None, 0
    shell._sp_indices, shell._sp_values, shell._coalesced = idx, val, t._coalesced
    return shell


def _key(t: SparseTensor):
    return (tuple(t._value.shape), t._coalesced)


COMPOSITE[SparseTensor] = (_parts, _rebuild, _key)


# ---- repr ----------------------------------------------------------------------------------------

def sparse_repr(t: SparseTensor, prefix="tensor(") -> str:
    """torch's repr of a sparse COO tensor: indices, values, then size, nnz, dtype and layout."""
    from .._tensor_str import _add_suffixes, _body_str
    indent = len(prefix)
    parts = []
    for name, part in (("indices", t._sp_indices), ("values", t._sp_values)):
        head = f"{name}=tensor("
        v = value_of(part)
        if abstract(v):
            body = f"<symbolic {v!r}>"
        else:
            a = np.asarray(v)
            body = _body_str(a, indent + len(head)) if a.size else "[]"
            if a.size == 0:
                body += f", size={tuple(a.shape)}"
        parts.append(head + body + ")")
    text = prefix + parts[0] + ",\n" + " " * indent + parts[1]
    suffixes = [f"size={tuple(t._value.shape)}", f"nnz={t._nnz()}"]
    d = t.dtype
    if d not in (_dt.get_default_dtype(), _dt.int64, _dt.bool) and not (
            d is _dt.complex64 and _dt.get_default_dtype() is _dt.float32):
        suffixes.append(f"dtype={d!r}")
    if t.device.type != "cpu":
        suffixes.insert(0, f"device='{t.device}'")
    suffixes.append(f"layout={sparse_coo!r}")
    node = t._node
    if node is not None:
        suffixes.append(f"grad_fn=<{node.name()}>")
    elif t._requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(text, suffixes, indent, force_newline=True)

