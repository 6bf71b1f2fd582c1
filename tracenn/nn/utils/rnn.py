"""Variable-length sequences for the recurrent layers: ``PackedSequence``, ``pack_padded_sequence``,
``pad_packed_sequence``, ``pad_sequence``, ``unpad_sequence``, ``pack_sequence``, ``unpack_sequence``.

A ``PackedSequence`` is torch's: ``data`` holds the valid time steps of a batch sorted by length
(longest first), time-major — step 0 of every sequence, then step 1 of those still running, ... —
and ``batch_sizes[t]`` counts the sequences running at step t (an int64 tensor read on the host,
as torch keeps it on the CPU). Packing and unpacking are each one gather, so gradients flow.

Inside ``tracenn.compile``, ``lengths`` that are a tensor input of the compiled call (a DataLoader's
lengths) have no values, so the packed layout (``sum(lengths)`` rows) is unknown. There
``pack_padded_sequence`` returns a PackedSequence in a private padded form: the padded batch,
time-major and sorted by length in-graph, with the lengths tensor in place of ``batch_sizes``.
The recurrent layers run it as they run any packed input (a padded batch with per-step masks, the
masks built from the lengths in-graph) and return their output in the same form;
``pad_packed_sequence(..., total_length=T)`` unpads it. Its ``data`` and ``batch_sizes`` cannot be
read (DataDependentError) while compiling; returned by the compiled call they read as packed.
The lengths' values cannot be checked there (descending with ``enforce_sorted``, positive, at
most the padded length): an eager call raises torch's errors, a compiled one computes with them
as given (unsorted lengths give the same results as sorted ones).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from ... import dtypes as _dt
from ..._api import creation as _creation, index as _index, shape as _shape
from ..._api._common import host_values, shape_values, value_of
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


_TRACED = "a sequence packed with lengths that are a tensor input of the compiled call"
_TRACED_FIX = ("keep the sequence packed for nn.RNN/LSTM/GRU (they take it and return their output in this form) and "
               "read their output with pad_packed_sequence(output, batch_first=..., total_length=x.size(1)); or pass "
               "the lengths as a Python list (lengths.tolist() before the compiled call, one compile per distinct "
               "list)")


@dataclasses.dataclass
class _TracedLengths:
    """The ``batch_sizes`` slot of a PackedSequence whose lengths are traced: the lengths tensor,
    sorted descending. ``[0]`` is the batch size, as ``batch_sizes[0]`` is (every length is >= 1).
    A dataclass, so a compiled call that returns this form returns the lengths as a tensor."""

    lengths: Tensor

    def __getitem__(self, i):
        if i == 0:
            return self.lengths.shape[0]
        raise TypeError("the lengths of a PackedSequence packed inside tracenn.compile are not batch_sizes")


def _unknown(lengths: Tensor, what: str, fix: str = _TRACED_FIX):
    """Raise the DataDependentError for reading ``what`` of the padded form while compiling: it
    names ``what``, the user's line and the fix (reading the traced lengths raises it)."""
    shape_values(lengths, what, fix)
    raise DataDependentError(f"{what} is not known while tracing. Fix it: {fix}")


class _PaddedPackedSequence(PackedSequence):
    """A PackedSequence made inside tracenn.compile from traced lengths (see the module docstring):
    the slots hold (padded (T, B, *) time-major, sorted by length; _TracedLengths; sorted_indices;
    unsorted_indices)."""

    @classmethod
    def make(cls, padded: Tensor, lengths: _TracedLengths, sorted_indices, unsorted_indices):
        return tuple.__new__(cls, (padded, lengths, sorted_indices, unsorted_indices))

    def packed(self) -> PackedSequence | None:
        """The real PackedSequence, once the lengths have values (this form returned by a compiled
        call); None while compiling."""
        lengths = host_values(self[1].lengths)
        if lengths is None:
            return None
        batch_sizes = batch_sizes_of(lengths.astype(np.int64))
        return PackedSequence(padded_to_packed(self[0], batch_sizes), _creation.tensor(batch_sizes),
                              self.sorted_indices, self.unsorted_indices)

    def _read(self, what: str) -> PackedSequence:
        real = self.packed()
        if real is None:
            _unknown(self[1].lengths, f"PackedSequence.{what} of {_TRACED}")
        return real

    @property
    def data(self):
        return self._read("data (sum(lengths) rows)").data

    @property
    def batch_sizes(self):
        return self._read("batch_sizes (max(lengths) entries)").batch_sizes

    def to(self, *args, **kwargs) -> "PackedSequence":
        padded = self[0].to(*args, **kwargs)
        if padded is self[0]:
            return self
        move = lambda t: t.to(padded.device)  # noqa: E731
        return self.make(padded, _TracedLengths(move(self[1].lengths)), _bind(self.sorted_indices, move),
                         _bind(self.unsorted_indices, move))

    @property
    def is_cuda(self) -> bool:
        return self[0].is_cuda

    def __repr__(self) -> str:
        real = self.packed()
        if real is not None:
            return repr(real)
        return (f"PackedSequence(<padded inside tracenn.compile: {tuple(self[0].shape)} time-major, lengths "
                f"{tuple(self[1].lengths.shape)}>, sorted_indices={self.sorted_indices!r}, "
                f"unsorted_indices={self.unsorted_indices!r})")


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
    if isinstance(lengths, Tensor) and host_values(lengths) is None:  # compiling: lengths is an input
        return _pack_traced(input, lengths, batch_first, enforce_sorted)
    try:
        lens = np.asarray(value_of(lengths) if isinstance(lengths, Tensor) else lengths).astype(np.int64)
    except DataDependentError as e:  # (compiling, with a list of traced lengths)
        raise DataDependentError(
            f"{e} The lengths decide the packed layout, so inside tracenn.compile pass them as one tensor (the "
            "recurrent layers run it padded) or as a Python list (lengths.tolist() before the compiled call, as a "
            "non-tensor argument: one compile per distinct list)") from None
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


def _pack_traced(input: Tensor, lengths: Tensor, batch_first: bool, enforce_sorted: bool) -> PackedSequence:
    """pack_padded_sequence with traced ``lengths``: the private padded form, sorted in-graph."""
    if lengths.dim() != 1:
        raise RuntimeError(f"'lengths' argument should be a 1D CPU int64 tensor, but got {lengths.dim()}D cpu Long "
                           "tensor")
    if lengths.dtype != _dt.int64:
        lengths = lengths.to(_dt.int64)
    x = _shape.transpose(input, 0, 1) if batch_first else input
    if lengths.shape[0] != x.shape[1]:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got {lengths.shape[0]} "
                           f"(batch_size={x.shape[1]})")
    sorted_indices = unsorted_indices = None
    if not enforce_sorted:
        sorted_indices = _index.argsort(lengths, 0, descending=True, stable=True)
        unsorted_indices = _index.argsort(sorted_indices, 0)  # the inverse permutation
        lengths = _index.index_select(lengths, 0, sorted_indices)
        x = _index.index_select(x, 1, sorted_indices)
    return _PaddedPackedSequence.make(x, _TracedLengths(lengths), sorted_indices, unsorted_indices)


def _pad_traced(sequence: _PaddedPackedSequence, batch_first: bool, padding_value, total_length):
    """pad_packed_sequence of the private padded form: steps past each length get ``padding_value``."""
    padded, lengths = sequence[0], sequence[1].lengths
    steps = padded.shape[0]
    if total_length is None or total_length < steps:
        got = "without total_length" if total_length is None else f"with total_length={total_length} < {steps}"
        _unknown(lengths, f"pad_packed_sequence {got} (max(lengths) steps, the padded input's length "
                 f"{steps} at most) of {_TRACED}",
                 f"pass total_length=x.size(1), the padded input's length ({steps} here) or more (steps past each "
                 "length get padding_value); or pass the lengths as a Python list (lengths.tolist() before the "
                 "compiled call, one compile per distinct list)")
    if total_length > steps:
        tail = _creation.full((total_length - steps,) + tuple(padded.shape[1:]), padding_value, dtype=padded.dtype)
        padded = _shape.cat([padded, tail], 0)
    position = _creation.tensor(np.arange(total_length).reshape((total_length, 1)))
    ended = _shape.reshape(position >= lengths, (total_length, lengths.shape[0]) + (1,) * (padded.ndim - 2))
    padded = _index.masked_fill(padded, ended, padding_value)
    if batch_first:
        padded = _shape.transpose(padded, 0, 1)
    if sequence.unsorted_indices is not None:
        padded = _index.index_select(padded, 0 if batch_first else 1, sequence.unsorted_indices)
        lengths = _index.index_select(lengths, 0, sequence.unsorted_indices)
    return padded, lengths


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

    Inside ``tracenn.compile``, for a sequence packed with lengths that are a tensor input of the
    compiled call, ``total_length`` is required (the longest length is not known while compiling).
    """
    if isinstance(sequence, _PaddedPackedSequence):  # (lengths traced; or known, once a compiled call returned it)
        real = sequence.packed()
        if real is None:
            return _pad_traced(sequence, batch_first, padding_value, total_length)
        sequence = real
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
