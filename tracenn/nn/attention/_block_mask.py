"""mask_mods and ``BlockMask`` for :mod:`tracenn.nn.attention.flex_attention`.

A mask_mod ``(b, h, q_idx, kv_idx) -> bool`` says which scores may be attended. torch vmaps it over
every index; tracenn calls it once with broadcastable index tensors (int64 ``b: [B,1,1,1]``,
``h: [1,H,1,1]``, ``q_idx: [1,1,L,1]``, ``kv_idx: [1,1,1,S]``), which gives the same values for any
mask_mod written with tensor operations (comparisons, ``&``/``|``, ``where``, indexing a captured
tensor such as ``document_id[q_idx]``). A mask_mod whose Python control flow reads the index values
(``if q_idx > kv_idx:``) is not supported.

``BlockMask`` holds the mask_mod, the sequence lengths and torch's block structure: for each block
row of ``BLOCK_SIZE`` queries, the partially masked blocks (``kv_num_blocks``/``kv_indices``) and the
full ones (``full_kv_num_blocks``/``full_kv_indices``), and their transposes (``q_*``). They are
computed as torch computes them (so they print and compare alike); ``flex_attention`` itself
evaluates the mask_mod at full resolution, which gives torch's numbers exactly.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import operator
from collections.abc import Callable

from ... import dtypes as _dt
from ..._api import creation as _creation, index as _index, math as _math, misc_math as _misc_math
from ..._api import reduce as _reduce
from ...tensor import Tensor
from ..functional import pad as _pad

_score_mod_signature = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], Tensor]
_mask_mod_signature = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]

_DEFAULT_SPARSE_BLOCK_SIZE = 128


def noop_mask(batch: Tensor, head: Tensor, token_q: Tensor, token_kv: Tensor) -> Tensor:
    """Returns a noop mask_mod"""
    return _creation.ones((), dtype=_dt.bool, device=batch.device)


def _identity(score: Tensor, batch: Tensor, head: Tensor, token_q: Tensor, token_kv: Tensor) -> Tensor:
    return score


def or_masks(*mask_mods: _mask_mod_signature) -> _mask_mod_signature:
    """Returns a mask_mod that's the union of provided mask_mods"""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def or_mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        result = _creation.zeros((), dtype=_dt.bool, device=b.device)
        for mask in mask_mods:
            result = result | mask(b, h, q_idx, kv_idx)
        return result

    return or_mask


def and_masks(*mask_mods: _mask_mod_signature) -> _mask_mod_signature:
    """Returns a mask_mod that's the intersection of provided mask_mods"""
    if not all(callable(arg) for arg in mask_mods):
        raise RuntimeError(f"All inputs should be callable mask_mods: {mask_mods}")

    def and_mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        result = _creation.ones((), dtype=_dt.bool, device=b.device)
        for mask in mask_mods:
            result = result & mask(b, h, q_idx, kv_idx)
        return result

    return and_mask


def _sliced_mask_mod_error(batch: Tensor, head: Tensor, token_q: Tensor, token_kv: Tensor):
    """The mask_mod of a sliced BlockMask: it has to be set from the original one."""
    raise RuntimeError("Cannot use mask_mod from a sliced BlockMask. When you slice a BlockMask using [], the "
                       "mask_mod attribute is reset. You must set it from the original BlockMask's mask_mod "
                       "(sliced_mask.mask_mod = base_mask.mask_mod).")


def _is_score_mod(fn) -> bool:
    """torch's rule: 5 positional parameters make a score_mod, 4 a mask_mod."""
    if hasattr(fn, "__code__"):
        n = fn.__code__.co_argcount - len(getattr(fn, "__defaults__", None) or ())
    else:
        n = sum(1 for p in inspect.signature(fn).parameters.values() if p.default is inspect.Parameter.empty)
    if n not in (4, 5):
        raise AssertionError(f"Expected 4 or 5 positional args, got {n}")
    return n == 5


def _index_grid(B: int, H: int, L: int, S: int, device=None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The broadcastable (b, h, q_idx, kv_idx) index tensors a mod is called with."""
    def ar(n, shape):
        return _creation.arange(n, device=device).reshape(shape)
    return ar(B, (B, 1, 1, 1)), ar(H, (1, H, 1, 1)), ar(L, (1, 1, L, 1)), ar(S, (1, 1, 1, S))


def _call_mod(fn, args: tuple, kind: str):
    """Call a score_mod/mask_mod once on broadcast indices; a data-dependent ``if`` gets the rule."""
    try:
        return fn(*args)
    except RuntimeError as e:
        if "ambiguous" not in str(e) and "data-dependent" not in str(e).lower():
            raise
        raise RuntimeError(f"flex_attention: the {kind} {getattr(fn, '__name__', fn)!r} is called once with "
                           "broadcastable index tensors (b: [B,1,1,1], h: [1,H,1,1], q_idx: [1,1,L,1], kv_idx: "
                           "[1,1,1,S]), so Python control flow on the index values is not supported. Write "
                           "the condition with tensor ops, e.g. `tracenn.where(q_idx >= kv_idx, score, "
                           f"-float('inf'))` instead of `if q_idx >= kv_idx:`. ({e})") from e


def _mask_from_mod(mask_mod, B: int, H: int, L: int, S: int, device=None) -> Tensor:
    """The [B, H, L, S] bool mask of a mask_mod."""
    mask = _call_mod(mask_mod, _index_grid(B, H, L, S, device), "mask_mod")
    if not isinstance(mask, Tensor):
        mask = _creation.tensor(bool(mask), device=device)
    if mask.dtype != _dt.bool:
        mask = mask.to(_dt.bool)
    return mask.expand(B, H, L, S)


def create_mask(mod_fn: _score_mod_signature | _mask_mod_signature, B: int | None, H: int | None, Q_LEN: int,
                KV_LEN: int, device=None) -> Tensor:
    r"""A dense ``(B, H, Q_LEN, KV_LEN)`` bool mask from a mask_mod (True = attend), or from a score_mod
    (True where it does not give -inf). ``B``/``H`` None mean 1.

    >>> import tracenn
    >>> from tracenn.nn.attention.flex_attention import create_mask
    >>> create_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, 2, 2)
    tensor([[[[ True, False],
              [ True,  True]]]])
    """
    B = 1 if B is None else B
    H = 1 if H is None else H
    if _is_score_mod(mod_fn):
        scores = _creation.zeros(B, H, Q_LEN, KV_LEN, device=device)
        out = _call_mod(mod_fn, (scores,) + _index_grid(B, H, Q_LEN, KV_LEN, device), "score_mod")
        return _math.logical_not(_misc_math.isneginf(out)).expand(B, H, Q_LEN, KV_LEN)
    return _mask_from_mod(mod_fn, B, H, Q_LEN, KV_LEN, device)


# ---- torch's ordered (BCSR-like) block format ------------------------------------------------------

def _dense_to_ordered(dense: Tensor) -> tuple[Tensor, Tensor]:
    """Per block row: the number of set blocks, and the block columns with the set ones first."""
    dense = dense.to(_dt.int32)
    num_blocks = _reduce.sum(dense, -1).to(_dt.int32)
    return num_blocks, _index.argsort(dense, -1, descending=True, stable=True).to(_dt.int32)


def _ordered_to_dense(num_blocks: Tensor, indices: Tensor, num_cols: int) -> Tensor:
    """The int32 dense block mask that ``(num_blocks, indices)`` describe."""
    entries = indices.shape[-1]
    valid = _creation.arange(entries, device=indices.device) < num_blocks.unsqueeze(-1)  # [..., R, M]
    hits = indices.unsqueeze(-1) == _creation.arange(num_cols, device=indices.device)  # [..., R, M, C]
    return _reduce.any(hits & valid.unsqueeze(-1), -2).to(_dt.int32)


def _transpose_ordered(num_blocks: Tensor, indices: Tensor) -> tuple[Tensor, Tensor]:
    dense = _ordered_to_dense(num_blocks, indices, indices.shape[-1])
    return _dense_to_ordered(dense.transpose(-2, -1))


def _adjust_num_blocks_and_indices(num_blocks, indices, new_num_rows: int, new_num_cols: int):
    indices = indices[:, :, :new_num_rows, :new_num_cols]
    num_blocks = num_blocks[:, :, :new_num_rows]
    num_blocks = _math.where(num_blocks < new_num_cols, num_blocks, new_num_cols)
    num_blocks = _reduce.sum(indices < num_blocks.unsqueeze(-1), -1).to(_dt.int32)
    return num_blocks, indices


def _convert_mask_to_block_mask(mask: Tensor, Q_BLOCK_SIZE: int, KV_BLOCK_SIZE: int,
                                separate_full_blocks: bool) -> tuple[Tensor, Tensor | None]:
    """Block counts of a [B, H, L, S] mask padded to whole blocks: (partial, full) int8 block masks."""
    L, S = mask.shape[-2:]
    mask = _pad(mask, (0, -S % KV_BLOCK_SIZE, 0, -L % Q_BLOCK_SIZE))
    B, H, Q, KV = mask.shape
    mask = mask.reshape(B, H, Q // Q_BLOCK_SIZE, Q_BLOCK_SIZE, KV // KV_BLOCK_SIZE, KV_BLOCK_SIZE)
    counts = _reduce.sum(mask.permute(0, 1, 2, 4, 3, 5), (-2, -1))
    if not separate_full_blocks:
        return (counts > 0).to(_dt.int8), None
    full = Q_BLOCK_SIZE * KV_BLOCK_SIZE
    return ((counts > 0) & (counts < full)).to(_dt.int8), (counts == full).to(_dt.int8)


def _shape_or_none(x):
    return x.shape if x is not None else None


@dataclasses.dataclass(init=False, repr=False, eq=False)
class BlockMask:
    r"""torch's block-sparse description of an attention mask: the mask_mod, the sequence lengths, and
    per block of ``BLOCK_SIZE`` queries x keys whether it is partly (``kv_num_blocks``/``kv_indices``)
    or fully (``full_kv_num_blocks``/``full_kv_indices``) attended; ``q_*`` are the transposes. Made
    by :func:`create_block_mask`; ``flex_attention`` evaluates ``mask_mod`` at full resolution.

    A dataclass, so ``tracenn.compile`` takes one as an argument (torch registers it as a pytree):
    its tensors become inputs, and its mask_mod, sizes and block sizes are part of the guard.
    """

    seq_lengths: tuple[int, int]
    kv_num_blocks: Tensor
    kv_indices: Tensor
    full_kv_num_blocks: Tensor | None
    full_kv_indices: Tensor | None
    q_num_blocks: Tensor | None
    q_indices: Tensor | None
    full_q_num_blocks: Tensor | None
    full_q_indices: Tensor | None
    BLOCK_SIZE: tuple[int, int]
    mask_mod: _mask_mod_signature

    _TENSOR_ATTRS = ["kv_num_blocks", "kv_indices", "full_kv_num_blocks", "full_kv_indices", "q_num_blocks",
                     "q_indices", "full_q_num_blocks", "full_q_indices"]

    def __init__(self, seq_lengths: tuple[int, int], kv_num_blocks: Tensor, kv_indices: Tensor,
                 full_kv_num_blocks: Tensor | None, full_kv_indices: Tensor | None, q_num_blocks: Tensor | None,
                 q_indices: Tensor | None, full_q_num_blocks: Tensor | None, full_q_indices: Tensor | None,
                 BLOCK_SIZE: tuple[int, int] = (_DEFAULT_SPARSE_BLOCK_SIZE, _DEFAULT_SPARSE_BLOCK_SIZE),
                 mask_mod: _mask_mod_signature = noop_mask) -> None:
        if kv_indices.dim() < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        if (full_q_num_blocks is None) != (full_q_indices is None):
            raise AssertionError("full_q_num_blocks and full_q_indices must be both provided or omitted")
        self.seq_lengths = tuple(seq_lengths)
        self.kv_num_blocks, self.kv_indices = kv_num_blocks, kv_indices
        self.full_kv_num_blocks, self.full_kv_indices = full_kv_num_blocks, full_kv_indices
        self.q_num_blocks, self.q_indices = q_num_blocks, q_indices
        self.full_q_num_blocks, self.full_q_indices = full_q_num_blocks, full_q_indices
        self.BLOCK_SIZE = tuple(BLOCK_SIZE)
        self.mask_mod = mask_mod

    @classmethod
    def from_kv_blocks(cls, kv_num_blocks: Tensor, kv_indices: Tensor, full_kv_num_blocks: Tensor | None = None,
                       full_kv_indices: Tensor | None = None,
                       BLOCK_SIZE: int | tuple[int, int] = _DEFAULT_SPARSE_BLOCK_SIZE,
                       mask_mod: _mask_mod_signature | None = None, seq_lengths: tuple[int, int] | None = None,
                       compute_q_blocks: bool = True) -> BlockMask:
        """A BlockMask from its kv block structure; the q_* transposes are derived (torch's classmethod)."""
        if kv_indices.dim() < 2:
            raise RuntimeError("BlockMask must have at least 2 dimensions")
        if (full_kv_num_blocks is None) != (full_kv_indices is None):
            raise AssertionError("full_kv_num_blocks and full_kv_indices must be both provided or omitted")
        q_num_blocks = q_indices = full_q_num_blocks = full_q_indices = None
        if compute_q_blocks:
            q_num_blocks, q_indices = _transpose_ordered(kv_num_blocks, kv_indices)
            if full_kv_num_blocks is not None:
                full_q_num_blocks, full_q_indices = _transpose_ordered(full_kv_num_blocks, full_kv_indices)
        if isinstance(BLOCK_SIZE, int):
            BLOCK_SIZE = (BLOCK_SIZE, BLOCK_SIZE)
        if seq_lengths is None:
            seq_lengths = (kv_indices.shape[-2] * BLOCK_SIZE[0], kv_indices.shape[-1] * BLOCK_SIZE[1])
        return cls(seq_lengths, kv_num_blocks, kv_indices, full_kv_num_blocks, full_kv_indices, q_num_blocks,
                   q_indices, full_q_num_blocks, full_q_indices, BLOCK_SIZE=BLOCK_SIZE,
                   mask_mod=mask_mod if mask_mod is not None else noop_mask)

    def as_tuple(self, flatten: bool = True) -> tuple:
        """The fields in torch's order (``flatten``: the two sizes and block sizes as separate items)."""
        sizes = (*self.seq_lengths,) if flatten else (self.seq_lengths,)
        blocks = (*self.BLOCK_SIZE,) if flatten else (self.BLOCK_SIZE,)
        return (*sizes, *(getattr(self, a) for a in self._TENSOR_ATTRS), *blocks, self.mask_mod)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(B, H, Q_LEN, KV_LEN)`` (as many leading dims as the block tensors have)."""
        return tuple(self.kv_indices.shape[:-2]) + tuple(self.seq_lengths)

    def numel(self) -> int:
        """Returns the number of elements (not accounting for sparsity) in the mask."""
        return functools.reduce(operator.mul, self.shape, 1)

    def sparsity(self) -> float:
        """Computes the percentage of blocks that are sparse (i.e. not computed); as torch's, it counts
        whole blocks against the unpadded size, so lengths that are not block multiples can go below 0."""
        computed = int(_reduce.sum(self.kv_num_blocks).item())
        if self.full_kv_num_blocks is not None:
            computed += int(_reduce.sum(self.full_kv_num_blocks).item())
        return 100 * (1 - computed * self.BLOCK_SIZE[0] * self.BLOCK_SIZE[1] / self.numel())

    def to_dense(self) -> Tensor:
        """Returns a dense block that is equivalent to the block mask (int32, one entry per block)."""
        dense = _ordered_to_dense(self.kv_num_blocks, self.kv_indices, self.kv_indices.shape[-1])
        if self.full_kv_num_blocks is not None:
            full = _ordered_to_dense(self.full_kv_num_blocks, self.full_kv_indices, self.full_kv_indices.shape[-1])
            dense = dense | full
        return dense

    def to_string(self, grid_size: int | tuple[int, int] = (20, 20), limit: int = 4) -> str:
        """The block structure drawn with ``█`` (attended), ``░`` (partly) and blanks, as torch draws it.
        ``grid_size=-1`` draws every block."""
        dense = self.to_dense().numpy()
        *batch_dims, num_rows, num_cols = dense.shape
        if grid_size == -1:
            max_rows, max_cols = num_rows, num_cols
        elif isinstance(grid_size, int):
            max_rows = max_cols = grid_size
        else:
            max_rows, max_cols = grid_size
        row_step = max(1, -(-num_rows // max_rows))
        col_step = max(1, -(-num_cols // max_cols))

        def draw(batch_idx) -> str:
            vis = f"{batch_idx}\n"
            grid = dense[batch_idx]
            for r in range(0, num_rows, row_step):
                for c in range(0, num_cols, col_step):
                    share = grid[r:r + row_step, c:c + col_step].mean()
                    vis += ("█" if share == 1 else " " if share == 0 else "░") * 2
                vis += "\n"
            return vis

        parts = []
        for i, batch_idx in enumerate(itertools.product(*[range(n) for n in batch_dims])):
            if i == limit:
                parts += ["...", "To print out more, set BlockMask.to_string(limit=N)",
                          "You can also index (BlockMask[batch, head]) to choose a specific batch or head"]
                break
            parts.append(draw(batch_idx))
        return "\n".join(parts)

    def __str__(self) -> str:
        return f"BlockMask(shape={self.shape}, sparsity={self.sparsity():.2f}%, \n{self.to_string().strip()}\n)"

    def __repr__(self) -> str:
        name = getattr(self.mask_mod, "__name__", self.mask_mod)
        return ("BlockMask(\n"
                f"    kv_num_blocks={_shape_or_none(self.kv_num_blocks)},\n"
                f"    kv_indices={_shape_or_none(self.kv_indices)},\n"
                f"    full_kv_num_blocks={_shape_or_none(self.full_kv_num_blocks)},\n"
                f"    full_kv_indices={_shape_or_none(self.full_kv_indices)},\n"
                f"    q_num_blocks={_shape_or_none(self.q_num_blocks)},\n"
                f"    q_indices={_shape_or_none(self.q_indices)},\n"
                f"    full_q_num_blocks={_shape_or_none(self.full_q_num_blocks)},\n"
                f"    full_q_indices={_shape_or_none(self.full_q_indices)},\n"
                f"    BLOCK_SIZE={self.BLOCK_SIZE},\n"
                f"    shape={self.shape},\n"
                f"    sparsity={self.sparsity():.2f}%,\n"
                f"    mask_mod={name}\n"
                ")")

    def __getitem__(self, index) -> BlockMask:
        """The block mask of some batches/heads/block rows; its mask_mod must be set again from the
        original (torch's rule)."""
        index = index if isinstance(index, tuple) else (index,)
        padded = (*index, slice(None), slice(None), slice(None))[:3]
        sizes = self.kv_num_blocks.shape[:3]
        index = tuple((slice(i + n, i + n + 1) if -n <= i < 0 else slice(i, i + 1)) if isinstance(i, int) else i
                      for i, n in zip(padded, sizes))
        full = ((self.full_kv_num_blocks[index], self.full_kv_indices[index])
                if self.full_kv_num_blocks is not None else (None, None))
        return BlockMask.from_kv_blocks(self.kv_num_blocks[index], self.kv_indices[index], *full,
                                        BLOCK_SIZE=self.BLOCK_SIZE, mask_mod=_sliced_mask_mod_error,
                                        seq_lengths=self.seq_lengths, compute_q_blocks=self.q_indices is not None)

    def _adjust(self, new_q_len: int, new_kv_len: int) -> BlockMask:
        """The block mask cropped to the upper-left ``new_q_len x new_kv_len`` (torch's ``_adjust``)."""
        rows = -(-new_q_len // self.BLOCK_SIZE[0])
        cols = -(-new_kv_len // self.BLOCK_SIZE[1])
        kv = _adjust_num_blocks_and_indices(self.kv_num_blocks, self.kv_indices, rows, cols)
        full = (_adjust_num_blocks_and_indices(self.full_kv_num_blocks, self.full_kv_indices, rows, cols)
                if self.full_kv_num_blocks is not None else (None, None))
        return self.from_kv_blocks(*kv, *full, BLOCK_SIZE=self.BLOCK_SIZE, mask_mod=self.mask_mod,
                                   seq_lengths=(new_q_len, new_kv_len), compute_q_blocks=self.q_indices is not None)

    def to(self, device) -> BlockMask:
        """The same block mask with its tensors on ``device``."""
        moved = {a: (getattr(self, a).to(device) if getattr(self, a) is not None else None) for a in self._TENSOR_ATTRS}
        return BlockMask(self.seq_lengths, **moved, BLOCK_SIZE=self.BLOCK_SIZE, mask_mod=self.mask_mod)


def create_block_mask(mask_mod: _mask_mod_signature, B: int | None, H: int | None, Q_LEN: int, KV_LEN: int,
                      device=None, BLOCK_SIZE: int | tuple[int, int] = _DEFAULT_SPARSE_BLOCK_SIZE, _compile=False,
                      separate_full_blocks: bool = True, compute_dq_write_order: bool = False,
                      dq_kv_order: bool = True) -> BlockMask:
    r"""A :class:`BlockMask` from a mask_mod ``(b, h, q_idx, kv_idx) -> bool`` (True = attend).

    Args:
        mask_mod: called once with broadcastable int64 index tensors (see the module doc).
        B, H: batch and head sizes the mask varies over; None means 1 (broadcast).
        Q_LEN, KV_LEN: the query and key lengths (any size; the blocks are padded).
        device: the device of the block tensors (default: the current accelerator, else cpu).
        BLOCK_SIZE: block size, or ``(Q_BLOCK_SIZE, KV_BLOCK_SIZE)``.
        _compile: deprecated in torch (it warns); the mask is made the same way.
        separate_full_blocks: keep fully attended blocks in ``full_kv_*`` (else all are partial).
        compute_dq_write_order, dq_kv_order: metadata for torch's deterministic FLASH backward; not kept.

    >>> from tracenn.nn.attention.flex_attention import create_block_mask
    >>> bm = create_block_mask(lambda b, h, q_idx, kv_idx: q_idx >= kv_idx, None, None, 256, 256, device="cpu")
    >>> bm.shape, bm.kv_num_blocks.tolist(), bm.full_kv_num_blocks.tolist()
    ((1, 1, 256, 256), [[[1, 1]]], [[[0, 1]]])
    """
    import warnings
    if device is None:
        from ...accelerator import current_accelerator
        device = current_accelerator() or "cpu"
    if _is_score_mod(mask_mod):
        raise AssertionError(f"create-block_mask requires a mask_mod function! Got {mask_mod}")
    if not isinstance(dq_kv_order, bool):
        raise ValueError("dq_kv_order must be a bool when using create_block_mask")
    if _compile:
        warnings.warn("_compile flag on create_block_mask was originally added to work around a torch.compile "
                      "limitation. That limitation has since been addressed. So, to compile create_block_mask, we "
                      "suggest doing tracenn.compile(create_block_mask). This still works for now, but will be "
                      "removed in the future.", DeprecationWarning, stacklevel=2)
    B = 1 if B is None else B
    H = 1 if H is None else H
    q_block, kv_block = (BLOCK_SIZE, BLOCK_SIZE) if isinstance(BLOCK_SIZE, int) else BLOCK_SIZE
    mask = create_mask(mask_mod, B, H, Q_LEN, KV_LEN, device)
    partial, full = _convert_mask_to_block_mask(mask, q_block, kv_block, separate_full_blocks)
    full_kv = _dense_to_ordered(full) if full is not None else (None, None)
    return BlockMask.from_kv_blocks(*_dense_to_ordered(partial), *full_kv, BLOCK_SIZE=(q_block, kv_block),
                                    mask_mod=mask_mod, seq_lengths=(Q_LEN, KV_LEN))
