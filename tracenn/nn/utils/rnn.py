"""Variable-length sequences for the recurrent layers: ``PackedSequence``, ``pack_padded_sequence``,
``pad_packed_sequence``, ``pad_sequence``, ``unpad_sequence``, ``pack_sequence``, ``unpack_sequence``.

A ``PackedSequence`` is torch's: ``data`` holds the valid time steps of a batch sorted by length
(longest first), time-major — step 0 of every sequence, then step 1 of those still running, ... —
and ``batch_sizes[t]`` counts the sequences running at step t (an int64 tensor read on the host,
as torch keeps it on the CPU). Packing and unpacking are each one gather, so gradients flow.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ... import dtypes as _dt
from ..._api import creation as _creation, index as _index, shape as _shape
from ..._api._common import value_of
from ..._dispatch import apply
from ...errors import DataDependentError
from ...ops import OPS
from ...tensor import Tensor

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "unpad_sequence", "pack_sequence", "unpack_sequence"]


class PackedSequence_(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


def _bind(optional, fn):
    return None if optional is None else fn(optional)


class PackedSequence(PackedSequence_):
    r"""The packed form of a batch of variable-length sequences (a named tuple: ``data``,
    ``batch_sizes``, ``sorted_indices``, ``unsorted_indices``). Make one with
    :func:`pack_padded_sequence` or :func:`pack_sequence`; the recurrent layers accept it as input
    and return their output in the same form.

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pack_sequence
    >>> p = pack_sequence([tracenn.tensor([1, 2, 3]), tracenn.tensor([4, 5])])
    >>> p.data, p.batch_sizes
    (tensor([1, 4, 2, 5, 3]), tensor([2, 2, 1]))
    """

    def __new__(cls, data: Tensor, batch_sizes: Tensor | None = None, sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> "PackedSequence":
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> "PackedSequence":
        """Move/cast ``data`` (and the index tensors to its device); ``batch_sizes`` stays."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self
        move = lambda t: t.to(data.device)  # noqa: E731
        return type(self)(data, self.batch_sizes, _bind(self.sorted_indices, move),
                          _bind(self.unsorted_indices, move))

    def cuda(self, *args, **kwargs) -> "PackedSequence":
        return self.to(*args, device="cuda", **kwargs)

    def cpu(self, *args, **kwargs) -> "PackedSequence":
        return self.to(*args, device="cpu", **kwargs)

    def pin_memory(self) -> "PackedSequence":
        return self

    def double(self) -> "PackedSequence":
        return self.to(dtype=_dt.float64)

    def float(self) -> "PackedSequence":
        return self.to(dtype=_dt.float32)

    def half(self) -> "PackedSequence":
        return self.to(dtype=_dt.float16)

    def long(self) -> "PackedSequence":
        return self.to(dtype=_dt.int64)

    def int(self) -> "PackedSequence":
        return self.to(dtype=_dt.int32)

    def short(self) -> "PackedSequence":
        return self.to(dtype=_dt.int16)

    def char(self) -> "PackedSequence":
        return self.to(dtype=_dt.int8)

    def byte(self) -> "PackedSequence":
        return self.to(dtype=_dt.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation (``out[permutation[i]] = i``); None stays None."""
    if permutation is None:
        return None
    p = np.asarray(value_of(permutation))
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=p.dtype)
    return _creation.tensor(inv)


# ---- the two gathers every packed/padded conversion is made of -------------------------------------

def batch_sizes_of(lengths: np.ndarray) -> np.ndarray:
    """batch_sizes[t] = how many of the (descending) ``lengths`` exceed t."""
    steps = int(lengths.max()) if lengths.size else 0
    return (lengths[None, :] > np.arange(steps)[:, None]).sum(1).astype(np.int64)


def lengths_of(batch_sizes: np.ndarray) -> np.ndarray:
    """The sorted sequence lengths a ``batch_sizes`` vector describes."""
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    return (batch_sizes[:, None] > np.arange(batch)[None, :]).sum(0).astype(np.int64)


def _packed_rows(batch_sizes: np.ndarray, batch: int) -> np.ndarray:
    """For each packed row (time-major), its row in a (T, batch) time-major padded layout."""
    return np.concatenate([t * batch + np.arange(b) for t, b in enumerate(batch_sizes)]).astype(np.int64) \
        if batch_sizes.size else np.zeros(0, np.int64)


def padded_to_packed(padded: Tensor, batch_sizes: np.ndarray) -> Tensor:
    """(T, B, *) time-major, sorted by length -> packed data (sum(batch_sizes), *): one gather."""
    steps, batch = padded.shape[0], padded.shape[1]
    flat = _shape.reshape(padded, (steps * batch,) + tuple(padded.shape[2:]))
    return apply(OPS["index_select"], (flat, _creation.tensor(_packed_rows(batch_sizes, batch))), (0,))


def packed_to_padded(data: Tensor, batch_sizes: np.ndarray, total_length: int, padding_value=0.0) -> Tensor:
    """Packed data -> (total_length, B, *) time-major, padded with ``padding_value``: one gather from
    the data with one padding row appended."""
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    rows = np.full(total_length * batch, data.shape[0], np.int64)
    rows[_packed_rows(batch_sizes, batch)] = np.arange(data.shape[0])
    pad_row = _creation.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype)
    source = _shape.cat([data, pad_row], 0)
    out = apply(OPS["index_select"], (source, _creation.tensor(rows)), (0,))
    return _shape.reshape(out, (total_length, batch) + tuple(data.shape[1:]))


# ---- public functions ------------------------------------------------------------------------------

def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    r"""Pack a padded batch :math:`(T, B, *)` (or :math:`(B, T, *)` with ``batch_first``) of sequences
    with the given ``lengths`` (a list or a CPU int tensor).

    With ``enforce_sorted`` the lengths must be descending; otherwise the batch is sorted and the
    permutation kept in ``sorted_indices`` (the recurrent layers undo it on their outputs).

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pack_padded_sequence
    >>> x = tracenn.tensor([[1, 2, 3], [4, 5, 0]])
    >>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
    >>> p.data, p.batch_sizes
    (tensor([1, 4, 2, 5, 3]), tensor([2, 2, 1]))
    """
    try:
        lens = np.asarray(value_of(lengths) if isinstance(lengths, Tensor) else lengths).astype(np.int64)
    except DataDependentError as e:  # (compiling, with lengths an input of the compiled call)
        raise DataDependentError(
            f"{e} The lengths decide the packed layout, so inside tracenn.compile they must be known: pass them "
            "as a Python list (lengths.tolist() before the compiled call), as a non-tensor argument") from None
    if lens.ndim != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lens.ndim}D cpu Long tensor")
    sorted_indices = None
    if not enforce_sorted:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
        sorted_indices = _creation.tensor(order.astype(np.int64))
        input = _index.index_select(input, 0 if batch_first else 1, sorted_indices)
    if lens.size and lens.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an element in 'lengths' that "
                           "is <= 0")
    if np.any(np.diff(lens) > 0):
        raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is True. You "
                           "can pass `enforce_sorted=False` to pack_padded_sequence and/or pack_sequence to sidestep "
                           "this requirement if you do not need ONNX exportability.")
    if batch_first:
        input = _shape.transpose(input, 0, 1)
    if lens.size != input.shape[1]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {lens.size} (batch_size="
                           f"{input.shape[1]})")
    if lens.size and lens[0] > input.shape[0]:
        raise RuntimeError(f"the longest length {int(lens[0])} is larger than the padded sequence length "
                           f"{input.shape[0]}")
    batch_sizes = batch_sizes_of(lens)
    data = padded_to_packed(input, batch_sizes)
    return PackedSequence(data, _creation.tensor(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    r"""Unpack a :class:`PackedSequence`: ``(padded, lengths)``, the batch in its original order, padded
    with ``padding_value`` to the longest sequence (or ``total_length``).

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pack_sequence, pad_packed_sequence
    >>> p = pack_sequence([tracenn.tensor([1, 2]), tracenn.tensor([3, 4, 5])], enforce_sorted=False)
    >>> pad_packed_sequence(p, batch_first=True)
    (tensor([[1, 2, 0],
            [3, 4, 5]]), tensor([2, 3]))
    """
    batch_sizes = np.asarray(value_of(sequence.batch_sizes)).astype(np.int64)
    max_seq_length = batch_sizes.size
    if total_length is not None:
        if total_length < max_seq_length:
            raise ValueError("Expected total_length to be at least the length of the longest sequence in input, but "
                             f"got total_length={total_length} and max sequence length being {max_seq_length}")
        max_seq_length = total_length
    padded = packed_to_padded(sequence.data, batch_sizes, max_seq_length, padding_value)
    lengths = lengths_of(batch_sizes)
    if batch_first:
        padded = _shape.transpose(padded, 0, 1)
    if sequence.unsorted_indices is not None:
        unsorted = sequence.unsorted_indices
        padded = _index.index_select(padded, 0 if batch_first else 1, unsorted)
        lengths = lengths[np.asarray(value_of(unsorted))]
    return padded, _creation.tensor(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    r"""Stack sequences of shape :math:`(L_i, *)` into :math:`(L_{max}, B, *)` (or :math:`(B, L_{max}, *)`
    with ``batch_first``), padding each with ``padding_value`` on the ``padding_side``.

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pad_sequence
    >>> pad_sequence([tracenn.tensor([1, 2, 3]), tracenn.tensor([4])], batch_first=True, padding_value=-1)
    tensor([[ 1,  2,  3],
            [ 4, -1, -1]])
    """
    if not isinstance(sequences, Iterable):
        raise RuntimeError(f"pad_sequence: Expected iterable for input sequences, but got arg of type: "
                           f"{type(sequences)}")
    sequences = tuple(sequences) if not isinstance(sequences, Tensor) else tuple(_shape.unbind(sequences, 0))
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    max_len = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = max_len - s.shape[0]
        if extra:
            lo, hi = (extra, 0) if padding_side == "left" else (0, extra)
            widths = ((lo, hi),) + ((0, 0),) * (s.ndim - 1)
            s = apply(OPS["pad"], (s, padding_value), (widths, "constant"))
        padded.append(s)
    return _shape.stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths: Tensor, batch_first: bool = False) -> list[Tensor]:
    r"""Split a padded batch back into its sequences (the inverse of :func:`pad_sequence`).

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import unpad_sequence
    >>> unpad_sequence(tracenn.tensor([[1, 2], [3, 0]]), tracenn.tensor([2, 1]), batch_first=True)
    [tensor([1, 2]), tensor([3])]
    """
    if not batch_first:
        padded_sequences = _shape.transpose(padded_sequences, 0, 1)
    lens = np.asarray(value_of(lengths) if isinstance(lengths, Tensor) else lengths).reshape(-1)
    return [_shape.narrow(padded_sequences[i], 0, 0, int(n)) for i, n in enumerate(lens)]


def pack_sequence(sequences: list[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    r"""Pack a list of sequences of shape :math:`(L_i, *)` (see :func:`pack_padded_sequence`).

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pack_sequence
    >>> pack_sequence([tracenn.tensor([1]), tracenn.tensor([2, 3])], enforce_sorted=False).data
    tensor([2, 1, 3])
    """
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    r"""The list of sequences a :class:`PackedSequence` holds, in their original order.

    >>> import tracenn
    >>> from tracenn.nn.utils.rnn import pack_sequence, unpack_sequence
    >>> unpack_sequence(pack_sequence([tracenn.tensor([1]), tracenn.tensor([2, 3])], enforce_sorted=False))
    [tensor([1]), tensor([2, 3])]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
