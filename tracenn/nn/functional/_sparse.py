"""Lookup tables: ``embedding`` and ``embedding_bag``.

A lookup is one gather (``index_select``) of weight rows, so its gradient is a scatter-add into the
weight. torch's gradient rules that differ from the plain gather are expressed without a custom
op: rows looked up at ``padding_idx`` get no gradient (a select between the rows and their
detached copy), and ``scale_grad_by_freq`` divides each row's gradient by how often its index
occurs in the batch (the rows plus ``(rows - rows.detach()) * (1/count - 1)``, which is the rows in
value). ``max_norm`` renormalises the looked-up rows of ``weight`` in place, as torch does.

With ``sparse=True`` the weight's gradient is sparse, as torch's: the lookup is one node whose
backward gives the weight a sparse COO gradient (the looked-up indices, without ``padding_idx``,
and each looked-up row's gradient; see :mod:`tracenn.autograd._sparse_grad`). Inside
``tracenn.compile`` see :func:`_traced_sparse_rows`.
"""
from __future__ import annotations

import warnings

import numpy as np

from ... import _dispatch, dtypes as _dt
from ..._api import creation as _creation, math as _math, reduce as _reduce, shape as _shape
from ..._api.more import searchsorted
from ..._api._common import value_of
from ..._dispatch import apply
from ...autograd.grad_mode import GRAD
from ...errors import DtypeError
from ...ops import OPS
from ...tensor import Tensor

__all__ = ["embedding", "embedding_bag"]


def _normalize_padding_idx(padding_idx: int | None, num_embeddings: int, name: str = "Padding_idx") -> int | None:
    """A negative ``padding_idx`` counts from the end; out of range is torch's AssertionError."""
    if padding_idx is None:
        return None
    if padding_idx > 0:
        if padding_idx >= num_embeddings:
            raise AssertionError(f"{name} must be within num_embeddings")
    elif padding_idx < 0:
        if padding_idx < -num_embeddings:
            raise AssertionError(f"{name} must be within num_embeddings")
        padding_idx = num_embeddings + padding_idx
    return padding_idx


def _check_indices(indices: Tensor, num_embeddings: int, fn: str, what: str = "indices") -> None:
    """torch's dtype and range checks; JAX would clamp an out-of-range index silently."""
    if indices._value.dtype.kind not in "iu":
        name = _dt.TYPE_NAMES[indices.dtype].replace("torch.", "tracenn.")
        raise DtypeError(f"Expected tensor for argument #1 '{what}' to have one of the following scalar types: "
                         f"Long, Int; but got {name} instead (while checking arguments for {fn})")
    if indices._value.size == 0:
        return
    v = value_of(indices)
    if _dispatch.abstract(v):  # compiling or transformed: no values to check (XLA clamps out-of-range indices)
        return
    a = np.asarray(v)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= num_embeddings:
        bad = lo if lo < 0 else hi
        raise IndexError(f"index out of range in self: {fn}() got index {bad}, but the weight has "
                         f"{num_embeddings} rows (valid indices are 0 to {num_embeddings - 1})")


def _renorm_rows_(weight: Tensor, flat: Tensor, max_norm: float, norm_type: float) -> None:
    """Scale, in place, each row of ``weight`` that ``flat`` looks up and whose ``norm_type``-norm
    exceeds ``max_norm`` to norm ``max_norm`` (torch's ``embedding_renorm_``: no gradient)."""
    w = weight.detach()
    rows = apply(OPS["index_select"], (w, flat), (0,))
    norms = _reduce.norm(rows, norm_type, 1, keepdim=True)
    scale = _math.where(_math.gt(norms, max_norm), _math.div(max_norm, _math.add(norms, 1e-7)), 1.0)
    # Repeated indices write the same row twice, with the same value.
    w.index_put_((flat,), _math.mul(rows, scale))


def _row_grad_scale(rows: Tensor, flat: Tensor, num_embeddings: int, padding_idx: int | None,
                    scale_grad_by_freq: bool) -> Tensor:
    """``rows`` in value, with torch's gradient rules for padding rows and frequency scaling."""
    if not (rows.requires_grad and GRAD.enabled):
        return rows
    if scale_grad_by_freq:
        ones = _creation.ones(flat.shape[0], dtype=rows.dtype)
        counts = apply(OPS["index_add"], (_creation.zeros(num_embeddings, dtype=rows.dtype), flat, ones, 1), (0,))
        factor = _math.sub(_math.reciprocal(apply(OPS["index_select"], (counts, flat), (0,))), 1.0)
        if padding_idx is not None:
            factor = _math.where(_math.eq(flat, padding_idx), -1.0, factor)
        # value: rows + 0; gradient: 1 + (1/count - 1) = 1/count (0 at padding_idx).
        return _math.add(rows, _math.mul(_math.sub(rows, rows.detach()), factor.unsqueeze(1)))
    keep = _math.ne(flat, padding_idx).unsqueeze(1)
    return _math.where(keep, rows, rows.detach())


def _sparse_rows(weight: Tensor, flat: Tensor, padding_idx: int | None, scale_grad_by_freq: bool):
    """``weight[flat]`` whose gradient reaches ``weight`` sparse (``sparse=True``), or None where
    the dense lookup is right: no gradient is recorded, or the indices have no values (a
    ``tracenn.func`` transform). Inside a compiled call see :func:`_traced_sparse_rows`."""
    if not (weight.requires_grad and GRAD.enabled):
        return None
    if _dispatch.TRACE[0] is not None:
        return _traced_sparse_rows(weight, flat, padding_idx, scale_grad_by_freq)
    if _dispatch.abstract(value_of(flat)) or _dispatch.abstract(value_of(weight)):
        return None
    from ...autograd._sparse_grad import rows
    return rows(weight, flat, padding_idx, scale_grad_by_freq)


def _traced_sparse_rows(weight, flat, padding_idx, scale_grad_by_freq):
    """A sparse lookup inside ``tracenn.compile``: the program cannot hand out a sparse gradient,
    so the call runs eagerly, where the gradient is torch's sparse one (warned once per compiled
    function and signature)."""
    from ...errors import UnsupportedError
    raise UnsupportedError(
        "a lookup with sparse=True (nn.Embedding/EmbeddingBag or F.embedding) whose weight requires grad is "
        "inside a compiled call: its sparse gradient cannot come out of a compiled program, so this call runs "
        "eagerly (same numbers). Use sparse=False to compile it with a dense gradient (and an optimizer "
        "other than SparseAdam), or run the call under no_grad (inference) to compile it")


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    r"""Look up rows of ``weight`` at the integer indices ``input``: output shape ``input.shape + (D,)``.

    Args:
        padding_idx: the rows looked up at this index get no gradient.
        max_norm: rows looked up whose ``norm_type``-norm exceeds it are renormalised, in place.
        scale_grad_by_freq: divide each row's gradient by its index's frequency in ``input``.
        sparse: the weight's gradient is a sparse COO tensor (as torch's; see ``docs/sparse.md``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> w = tracenn.tensor([[0.0, 0.0], [1.0, 2.0], [3.0, 4.0]])
    >>> F.embedding(tracenn.tensor([[2, 1], [0, 2]]), w)
    tensor([[[3., 4.],
             [1., 2.]],
    <BLANKLINE>
            [[0., 0.],
             [3., 4.]]])
    """
    num_embeddings = weight.shape[0]
    padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
    _dispatch.same_device("embedding", input=input, weight=weight)
    _check_indices(input, num_embeddings, "embedding")
    flat = _shape.reshape(input, (-1,))
    if max_norm is not None:
        _renorm_rows_(weight, flat, max_norm, norm_type)
    rows = _sparse_rows(weight, flat, padding_idx, scale_grad_by_freq) if sparse else None
    if rows is None:
        rows = apply(OPS["index_select"], (weight, flat), (0,))
        if padding_idx is not None or scale_grad_by_freq:
            rows = _row_grad_scale(rows, flat, num_embeddings, padding_idx, scale_grad_by_freq)
    return _shape.reshape(rows, tuple(input.shape) + tuple(weight.shape[1:]))


def embedding_bag(input: Tensor, weight: Tensor, offsets: Tensor | None = None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Tensor | None = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    r"""Sums, means or maxes of bags of embeddings, without materialising the looked-up rows per bag.

    ``input`` is 2-D :math:`(B, N)` (B bags of N indices) with ``offsets=None``, or 1-D with
    ``offsets`` giving where each bag starts (``include_last_offset``: the last offset ends the
    last bag). Indices equal to ``padding_idx`` are left out of their bag; an empty bag gives
    zeros. ``per_sample_weights`` (mode ``'sum'`` only) scale each looked-up row.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> w = tracenn.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> F.embedding_bag(tracenn.tensor([0, 1, 2, 2]), w, tracenn.tensor([0, 3]), mode="sum")
    tensor([[ 9., 12.],
            [ 5.,  6.]])
    """
    if weight.dtype == _dt.int64 and input.is_floating_point():
        warnings.warn("Argument order of nn.functional.embedding_bag was changed. Usage `embedding_bag(weight, "
                      "input, ...)` is deprecated, and should now be `embedding_bag(input, weight, ...)`.",
                      stacklevel=2)
        weight, input = input, weight
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) is not None, then it "
                         f"must have the same shape as the input ({input.shape})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension {weight.ndim}")
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             f"fixed length sequences. However, found offsets of type {type(offsets)}")
        bags, per_bag = input.shape
        include_last_offset = False
        seg = _creation.tensor(np.repeat(np.arange(bags), per_bag))
        valid = None
        input = _shape.reshape(input, (-1,))
        if per_sample_weights is not None:
            per_sample_weights = _shape.reshape(per_sample_weights, (-1,))
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if offsets.ndim != 1:
            raise ValueError("offsets has to be a 1D Tensor")
        bags, seg, valid = _bag_ids(input.shape[0], offsets, include_last_offset)
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}")
    if mode == "max":
        if scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if sparse:
            raise ValueError("max mode does not support sparse weights")
    elif mode not in ("sum", "mean"):
        raise ValueError("mode has to be one of sum, mean or max")
    num_embeddings = weight.shape[0]
    padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
    _check_indices(input, num_embeddings, "embedding_bag")
    if max_norm is not None:
        _renorm_rows_(weight, input, max_norm, norm_type)
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                                  f"supported for mode='sum' (got mode='{mode}'). Please open a feature request "
                                  "on GitHub.")

    rows = _sparse_rows(weight, input, padding_idx, scale_grad_by_freq) if sparse else None
    if rows is None:
        rows = apply(OPS["index_select"], (weight, input), (0,))  # (n, D)
        if scale_grad_by_freq:
            rows = _row_grad_scale(rows, input, num_embeddings, None, True)
    keep = valid
    if padding_idx is not None:
        not_pad = _math.ne(input, padding_idx)
        keep = not_pad if keep is None else _math.logical_and(keep, not_pad)
    dim = weight.shape[1]
    if mode == "max":
        if keep is not None:
            rows = _math.where(keep.unsqueeze(1), rows, -float("inf"))
        start = _creation.full((bags, dim), -float("inf"), dtype=weight.dtype)
        index = _shape.expand(seg.unsqueeze(1), (seg.shape[0], dim))
        out = apply(OPS["scatter"], (start, index, rows), (0, "amax", True))
        return _math.where(_math.isinf(out) & _math.lt(out, 0), 0.0, out)  # empty bags: zeros
    w = per_sample_weights
    if keep is not None:
        k = keep.to(weight.dtype)
        w = k if w is None else _math.mul(w, k)
    if w is not None:
        rows = _math.mul(rows, w.unsqueeze(1))
    total = apply(OPS["index_add"], (_creation.zeros((bags, dim), dtype=weight.dtype), seg, rows, 1), (0,))
    if mode == "sum":
        return total
    ones = keep.to(weight.dtype) if keep is not None else _creation.ones(seg.shape[0], dtype=weight.dtype)
    counts = apply(OPS["index_add"], (_creation.zeros(bags, dtype=weight.dtype), seg, ones, 1), (0,))
    return _math.div(total, _math.clamp_min(counts, 1.0).unsqueeze(1))


def _bag_ids(n: int, offsets: Tensor, include_last_offset: bool):
    """(number of bags, the bag of each of the n inputs, a mask of the inputs in a bag or None).

    Eagerly, offsets are read and checked on the host. While compiling they have no values: the
    bags are found with tensor ops (no checks; the number of bags is the length of ``offsets``).
    With ``include_last_offset`` the last offset ends the last bag (CSR style; inputs after it are
    in no bag). torch documents that it equals the input length and its kernels disagree with each
    other when it does not.
    """
    if offsets._value.dtype.kind not in "iu":
        raise DtypeError(f"embedding_bag: offsets must be an integer tensor, got {offsets.dtype}")
    if _dispatch.abstract(value_of(offsets)):
        return _traced_bag_ids(n, offsets, include_last_offset)
    offs = np.asarray(value_of(offsets))
    if offs.size and offs[0] != 0:
        raise RuntimeError("offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                           f"position 0. However, got {int(offs[0])}")
    if np.any(np.diff(offs) < 0) or (offs.size and offs[-1] > n):
        raise RuntimeError(f"offsets must be non-decreasing and at most the input length {n}, got {offs.tolist()}")
    bags = max(offs.size - 1, 0) if include_last_offset else offs.size
    # Bag b holds inputs offs[b] .. offs[b+1]-1: count the bag starts at or before each position.
    seg = np.searchsorted(offs[1:bags], np.arange(n), side="right")
    end = int(offs[-1]) if include_last_offset and offs.size else n
    valid = None if end >= n else _creation.tensor(np.arange(n) < end)
    return bags, _creation.tensor(np.minimum(seg, max(bags - 1, 0)).astype(np.int64)), valid


def _traced_bag_ids(n: int, offsets: Tensor, include_last_offset: bool):
    """``_bag_ids`` for offsets without values (compiling): the same bags, from tensor ops."""
    m = offsets.shape[0]
    bags = max(m - 1, 0) if include_last_offset else m
    positions = _creation.arange(n, dtype=offsets.dtype)
    seg = _math.clamp(searchsorted(offsets[1:bags], positions, right=True), max=max(bags - 1, 0))
    valid = _math.lt(positions, offsets[m - 1]) if include_last_offset and m else None
    return bags, seg, valid
