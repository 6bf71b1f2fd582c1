"""``tracenn.sparse``: sparse COO tensors, the part of torch.sparse that graph networks and
recommenders use (see ``docs/sparse.md``).

A sparse COO tensor (``layout=tracenn.sparse_coo``) stores ``values[k]`` at ``indices[:, k]``. It
supports: ``to_dense()``, ``coalesce()``, ``indices()``/``values()``, ``sparse_dim()``/``dense_dim()``/
``_nnz()``, ``t()``, scalar ``*`` and ``/``, ``S + S``, sparse @ dense (``tracenn.sparse.mm``,
``tracenn.spmm``, ``tracenn.mm``, ``tracenn.matmul``, ``@``; dense @ sparse too), and
:func:`sum`, :func:`softmax`, :func:`log_softmax`. Anything else raises
:class:`~tracenn.errors.SparseUnsupportedError` (a NotImplementedError) saying to call
``.to_dense()``. Products and reductions are ordinary tensor ops on the indices and values, so they
work eagerly, with autograd (to the dense operand and to the values), and in ``tracenn.compile``.

>>> import tracenn, tracenn.sparse
>>> adj = tracenn.sparse_coo_tensor([[0, 1, 2], [1, 2, 0]], [1., 1., 1.], (3, 3))
>>> x = tracenn.eye(3)
>>> tracenn.sparse.mm(adj, x).sum(1)
tensor([1., 1., 1.])
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import Tensor
from ._coo import sparse_coo, sparse_coo_tensor, to_sparse
from ._ops import addmm, log_softmax, mm, softmax, spmm, sum

__all__ = ["addmm", "log_softmax", "mm", "softmax", "sum", "FloatTensor", "DoubleTensor", "LongTensor",
           "IntTensor", "HalfTensor", "BFloat16Tensor", "ShortTensor", "CharTensor", "ByteTensor"]


def _legacy(name, dtype):
    def new(indices, values=None, size=None):
        """torch.sparse.<T>Tensor(indices, values, size): the legacy sparse constructor (pygcn's)."""
        if values is None:
            raise TypeError(f"tracenn.sparse.{name}(indices, values, size): give the indices and values "
                            f"(use tracenn.sparse_coo_tensor)")
        return sparse_coo_tensor(indices, values, size, dtype=dtype)
    new.__name__ = new.__qualname__ = name
    return new


# (torch.sparse's set; the names are the dense legacy types', _dt.TYPE_NAMES)
_LEGACY = {n.split(".")[-1]: _legacy(n.split(".")[-1], d) for d, n in _dt.TYPE_NAMES.items()
           if d in (_dt.float32, _dt.float64, _dt.float16, _dt.bfloat16, _dt.int64, _dt.int32, _dt.int16,
                    _dt.int8, _dt.uint8)}
globals().update(_LEGACY)

# Dense tensors: is_sparse (False) is Tensor's own; these convert.
Tensor.to_sparse = to_sparse
Tensor.to_sparse_coo = lambda self: to_sparse(self)
Tensor.to_sparse_coo.__doc__ = "A dense tensor as a coalesced sparse COO tensor (``to_sparse()``)."


def toplevel() -> dict:
    """``{name: object}`` for ``tracenn``'s namespace: the layout and the constructor, and spmm."""
    return {"sparse_coo": sparse_coo, "sparse_coo_tensor": sparse_coo_tensor, "spmm": spmm}
