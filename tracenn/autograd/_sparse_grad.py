"""Sparse gradients of lookups (``nn.Embedding(sparse=True)``, ``EmbeddingBag(sparse=True)``).

A lookup ``weight[flat]`` made with ``sparse=True`` records one :class:`Node` of :class:`RowsOp`
whose backward hands the weight's edge a :class:`SparseGrad` instead of a dense array: the looked-up
row indices and the gradient of each looked-up row (torch's ``embedding_sparse_backward``: indices
equal to ``padding_idx`` are left out; duplicates stay, uncoalesced). The engine keeps it sparse
only where it lands in a leaf's ``.grad`` (:func:`accumulate_leaf` makes a sparse COO tensor, and
later backward calls concatenate into it, as torch's AccumulateGrad); anywhere else (a weight that
is not a leaf, ``autograd.grad``, ``retain_grad``) it becomes the dense gradient, which has the same
numbers.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .graph import Node


@jax.jit
def _scatter(zeros, idx, values):
    return zeros.at[idx].add(values)


class SparseGrad:
    """A raw sparse cotangent: ``values[k]`` is the gradient of row ``indices[k]`` of a tensor of
    ``shape`` (arrays: ``indices`` int64 ``(nnz,)``, ``values`` ``(nnz, *shape[1:])``)."""

    __slots__ = ("indices", "values", "shape")

    def __init__(self, indices, values, shape):
        self.indices, self.values, self.shape = indices, values, tuple(shape)

    @property
    def _value(self):
        """The stored values (what anomaly mode's NaN check reads)."""
        return self.values

    @property
    def dtype(self):
        return self.values.dtype

    def dense(self):
        """The dense gradient: duplicate rows add up."""
        return _scatter(jnp.zeros(self.shape, self.values.dtype), self.indices, self.values)

    def tensor(self):
        """This gradient as an (uncoalesced) sparse COO tensor, as torch's ``.grad``."""
        from ..sparse._coo import _make
        from ..tensor import Tensor
        return _make(Tensor._wrap(self.indices.reshape(1, -1)), Tensor._wrap(self.values), self.shape, False)


def acc(a, b):
    """``a + b`` where one of them is a :class:`SparseGrad`: sparse + sparse concatenates, as
    torch's sparse add of uncoalesced gradients; with a dense array the result is dense."""
    if type(a) is SparseGrad and type(b) is SparseGrad:
        return SparseGrad(jnp.concatenate([a.indices, b.indices]), jnp.concatenate([a.values, b.values]), a.shape)
    da = a.dense() if type(a) is SparseGrad else a
    db = b.dense() if type(b) is SparseGrad else b
    from .engine import _add
    return _add(da, db)


def accumulate_leaf(var, g) -> None:
    """Accumulate raw gradient ``g`` (an array or a :class:`SparseGrad`) into leaf ``var``'s
    ``.grad`` with torch's layout rules: sparse into None or sparse stays sparse (concatenated in
    place); sparse into dense, or dense into sparse, gives a dense gradient."""
    cur = var.grad
    if type(g) is SparseGrad:
        if cur is None:
            var.grad = g.tensor()
        elif cur.is_sparse:
            from ..tensor import Tensor
            cur._sp_indices = Tensor._wrap(jnp.concatenate([cur._sp_indices._value, g.indices.reshape(1, -1)], 1))
            cur._sp_values = Tensor._wrap(jnp.concatenate([cur._sp_values._value, g.values]))
            cur._coalesced = False
        else:
            var._accumulate_grad(g.dense())
        return
    if cur is not None and cur.is_sparse:
        from ..tensor import Tensor
        var.grad = Tensor._wrap(_scatter(g, cur._sp_indices._value.reshape(-1), cur._sp_values._value)
                                if cur.sparse_dim() == 1 else g + cur.to_dense()._value)
        return
    var._accumulate_grad(g)


def wrap(g):
    """A gradient as hooks see it: a sparse COO tensor for a :class:`SparseGrad`."""
    from ..tensor import Tensor
    return g.tensor() if type(g) is SparseGrad else Tensor._wrap(g)


def unwrap(r):
    """What a hook returned, as a raw gradient (a sparse tensor becomes a :class:`SparseGrad`)."""
    from ..tensor import Tensor
    if not isinstance(r, Tensor):
        return r
    if r.is_sparse:
        if r.sparse_dim() != 1:
            return r.to_dense()._value
        return SparseGrad(r._sp_indices._value.reshape(-1), r._sp_values._value, r.shape)
    return r._value


def densify(g):
    return g.dense() if type(g) is SparseGrad else g


class RowsOp:
    """The op of a sparse lookup's node (quacks like an OpDef for the engine). Its inputs are
    ``(weight, flat indices)``; its key ``(weight shape, positions kept or None, the indices
    kept, scale_grad_by_freq)``."""

    name = "embedding"          # grad_fn: EmbeddingBackward0, as torch's
    differentiable = True
    saves_out = False
    nout = 1

    def backward_kernel(self, key, needs):
        return lambda g, out, weight, flat: (rows_grad(key, g), None)

    def recorded_cotangents(self, node, g):
        """create_graph=True: the weight's gradient as recorded tensor ops on ``g`` (dense)."""
        from .._api.creation import zeros
        from .._api.index import index_add
        from ..tensor import Tensor
        shape, keep, kept, scale = node.key
        _refuse_scale(scale)
        g_rows = g if keep is None else g[Tensor._wrap(jnp.asarray(keep))]
        return (index_add(zeros(shape, dtype=g.dtype, device=g.device), 0, Tensor._wrap(jnp.asarray(kept)), g_rows),
                None)


_ROWS = RowsOp()


def _refuse_scale(scale):
    if scale:  # (torch raises it in backward too)
        raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with sparse gradients")


def rows_grad(key, g):
    """The :class:`SparseGrad` of a lookup with ``key`` for the looked-up rows' gradient ``g``."""
    shape, keep, kept, scale = key
    _refuse_scale(scale)
    values = g if keep is None else jnp.take(g, jnp.asarray(keep), axis=0)
    return SparseGrad(jnp.asarray(kept), values, shape)


def rows(weight, flat, padding_idx, scale_grad_by_freq):
    """``weight[flat]`` (``flat``: 1-D integer indices with values) as a tensor whose gradient
    reaches ``weight`` as a :class:`SparseGrad`. For eager mode, with ``weight`` requiring grad
    and grad mode on."""
    from .. import _dispatch
    from .._api._common import value_of
    from ..ops import OPS
    from ..tensor import Tensor
    from .grad_mode import no_grad
    with no_grad():
        out = _dispatch.apply(OPS["index_select"], (weight, flat), (0,))
    kept = np.asarray(value_of(flat)).reshape(-1).astype(np.int64)
    keep = None
    if padding_idx is not None:
        mask = kept != padding_idx
        if not mask.all():
            keep = np.nonzero(mask)[0]
            kept = kept[keep]
    if weight._base is not None:
        weight._sync()  # (a view whose root changed: its current grad_fn)
    edge = (weight._node, weight._out_idx) if weight._node is not None else (weight._grad_accumulator(), 0)
    key = (tuple(weight.shape), keep, kept, bool(scale_grad_by_freq))
    node = Node(_ROWS, key, (weight._value, value_of(flat)), out._value, (edge, None), (True, False), [])
    return Tensor._wrap(out._value, True, node, 0)
