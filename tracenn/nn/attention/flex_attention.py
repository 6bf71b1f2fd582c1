"""``flex_attention``: attention with a score function and a block mask, torch's API.

``flex_attention(q, k, v, score_mod, block_mask)`` computes ``softmax(score_mod(q @ k^T * scale))``
over the keys the mask allows, then ``@ v``, with torch's numbers: the scores are float32 (float64
for double inputs), a query row whose keys are all masked gives zeros (its log-sum-exp is -inf), and
``enable_gqa`` repeats the key/value heads. It is a composite of matmul, where and softmax, so
gradients reach ``q``, ``k``, ``v`` and any tensor the score_mod captures (a learnable bias), eagerly
and under ``tracenn.compile``; the scores are materialised (memory grows as L x S) and XLA fuses what
it can.

**The broadcast rule.** torch vmaps ``score_mod(score, b, h, q_idx, kv_idx)`` over every score;
tracenn calls it ONCE with the whole ``[B, H, L, S]`` score tensor and broadcastable int64 indices
``b: [B,1,1,1]``, ``h: [1,H,1,1]``, ``q_idx: [1,1,L,1]``, ``kv_idx: [1,1,1,S]`` (mask_mods alike).
Score and mask functions written with tensor ops give torch's values: relative-position biases
(``score + bias[h, q_idx - kv_idx]``), ALiBi, tanh soft-capping, ``tracenn.where`` conditions,
document masks (``doc[q_idx] == doc[kv_idx]``). Python control flow on the index values
(``if q_idx >= kv_idx:``) is not supported and raises an error that says so.
"""
from __future__ import annotations

import math
import warnings
from typing import NamedTuple, TypedDict

from ... import dtypes as _dt
from ..._api import linalg as _linalg, math as _math, reduce as _reduce, shape as _shape
from ...errors import ShapeError
from ...tensor import Tensor
from ._block_mask import (BlockMask, _call_mod, _identity, _index_grid, _mask_from_mod, _sliced_mask_mod_error,
                          noop_mask)
from ._block_mask import _mask_mod_signature, _score_mod_signature  # noqa: F401  (torch's type aliases)
from ._block_mask import and_masks, create_block_mask, create_mask, or_masks  # noqa: F401

__all__ = ["BlockMask", "flex_attention", "AuxOutput", "AuxRequest", "FlexKernelOptions", "create_block_mask",
           "create_mask", "or_masks", "and_masks", "noop_mask"]

_LARGE_SPARSE_BLOCK_SIZE = 1 << 30
_BACKENDS = ("AUTO", "TRITON", "FLASH", "TRITON_DECODE")
_WARNINGS_SHOWN: set[str] = set()


class FlexKernelOptions(TypedDict, total=False):
    """Options for torch's Triton kernels (block sizes, stages, ``BACKEND``...). XLA compiles tracenn's
    attention, so they are accepted and ignored; ``BACKEND`` is checked against torch's values."""
    BACKEND: str


class AuxRequest(NamedTuple):
    """Request which auxiliary outputs to compute from flex_attention."""
    lse: bool = False
    max_scores: bool = False


class AuxOutput(NamedTuple):
    """Auxiliary outputs from flex_attention (None where not requested)."""
    lse: Tensor | None = None
    max_scores: Tensor | None = None


def _warn_once(key: str, message: str, category=UserWarning) -> None:
    if key not in _WARNINGS_SHOWN:
        _WARNINGS_SHOWN.add(key)
        warnings.warn(message, category, stacklevel=3)


def _check_kernel_options(kernel_options) -> None:
    if not kernel_options:
        return
    if "BACKEND" in kernel_options and kernel_options.get("FORCE_USE_FLEX_ATTENTION", False):
        raise RuntimeError("BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION. BACKEND supersedes the "
                           "legacy knob; please drop FORCE_USE_FLEX_ATTENTION and only specify the desired BACKEND.")
    if "BACKEND" in kernel_options and kernel_options["BACKEND"] not in _BACKENDS:
        raise ValueError(f"Invalid BACKEND value '{kernel_options['BACKEND']}'. Must be one of {_BACKENDS}")


def _check_inputs(query: Tensor, key: Tensor, value: Tensor, block_mask, enable_gqa: bool) -> None:
    """torch's checks, in torch's order, with its error types."""
    if query.device != key.device or query.device != value.device:
        raise ValueError("Expected query, key, and value to have the same device type, but got query.device: "
                         f"{query.device}, key.device: {key.device}, and value.device: {value.device} instead.")
    if query.dim() < 2 or key.dim() < 2 or value.dim() < 2:
        raise ValueError("Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                         f"{query.dim()}, key.dim: {key.dim()} and value.dim: {value.dim()} instead.")
    if query.size(-1) != key.size(-1):
        raise ValueError("Expect query and key/value to have the same embedding dimension but got "
                         f"E={query.size(-1)} and E={key.size(-1)}.")
    if query.dim() != 4 or key.dim() != 4 or value.dim() != 4:
        raise NotImplementedError("NYI: query, key, and value must be 4D tensors")
    if tuple(key.shape[:3]) != tuple(value.shape[:3]):
        raise ShapeError(f"flex_attention: key {list(key.shape)} and value {list(value.shape)} must have the same "
                         "batch, heads and sequence length (dims 0-2)")
    if not enable_gqa and query.size(-3) != key.size(-3):
        raise ValueError(f"Expect query and key/value to have the same number of heads but got Hq={query.size(-3)} "
                         f"and Hkv={key.size(-3)}. Try setting enable_gqa=True for GQA.")
    if enable_gqa and query.size(1) % key.size(1) != 0:
        raise ValueError("Expect number of query heads to be a multiple of kv heads for GQA but got "
                         f"Hq={query.size(1)} and Hkv={key.size(1)}.")
    if query.size(0) != key.size(0):
        if block_mask is None:
            raise ValueError("Expect query and key/value to have the same batch size, or non-none block_mask, but "
                             f"got block_mask=None, Bq={query.size(0)}, and Bkv={key.size(0)}.")
        if block_mask.kv_num_blocks.size(0) != query.size(0):
            raise ValueError("Expect query and key/value to have the same batch size, or block_mask and query to "
                             f"have the same batch size, but got Bq={query.size(0)}, Bkv={key.size(0)}, "
                             f"B_block_mask={block_mask.kv_num_blocks.size(0)}.")
        if key.size(0) != 1:
            raise RuntimeError(f"Bq and Bkv must broadcast. Got Bq={query.size(0)} and Bkv={key.size(0)}")


def _check_block_mask(block_mask: BlockMask, query: Tensor, key: Tensor) -> None:
    if not isinstance(block_mask, BlockMask):
        raise TypeError(f"flex_attention: block_mask must be a BlockMask (from create_block_mask), got "
                        f"{type(block_mask).__name__}")
    if block_mask.mask_mod is _sliced_mask_mod_error:
        raise RuntimeError("Cannot use mask_mod from a sliced BlockMask")
    if tuple(block_mask.BLOCK_SIZE) == (_LARGE_SPARSE_BLOCK_SIZE,) * 2:
        return
    q_len, kv_len = block_mask.shape[-2], block_mask.shape[-1]
    L, S = query.size(-2), key.size(-2)
    if L > q_len or S > kv_len:
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} and "
                         f"kv_len={S}. As the block mask was created for a smaller length than you're using it for, "
                         "you likely need to create a new block mask.")
    if (L, S) != (q_len, kv_len):
        raise ValueError(f"block_mask was created for block_mask.shape={block_mask.shape} but got q_len={L} and "
                         f"kv_len={S}. As the block mask was created for a larger length than you're using it for, "
                         "you can either 1. create a new block mask with the correct length, or 2. 'adjust' the "
                         "existing block mask to the correct length by calling block_mask._adjust(q_len, kv_len). "
                         "This essentially 'crops' the block mask to the upper left corner, which does not work "
                         "for all mask_mods!")
    if query.device != block_mask.kv_num_blocks.device:
        raise RuntimeError("Expect q/k/v and block_mask to be on the same device but got "
                           f"{query.device} and {block_mask.kv_num_blocks.device}.")


def _fill_dead(x: Tensor, dead: Tensor, fill: float) -> Tensor:
    return _math.where(dead, fill, x)


def flex_attention(query: Tensor, key: Tensor, value: Tensor, score_mod: _score_mod_signature | None = None,
                   block_mask: BlockMask | None = None, scale: float | None = None, enable_gqa: bool = False,
                   return_lse: bool = False, kernel_options: FlexKernelOptions | None = None, *,
                   return_aux: AuxRequest | None = None):
    r"""Attention with a score function and a mask: ``softmax(score_mod(QK^T \cdot scale))`` over the keys
    ``block_mask`` allows, then ``@ V``.

    Args:
        query: :math:`(B, H_q, L, E)`; key: :math:`(B, H_{kv}, S, E)`; value: :math:`(B, H_{kv}, S, E_v)`.
        score_mod: ``score_mod(score, b, h, q_idx, kv_idx) -> score``, called once on the whole score
            tensor with broadcastable index tensors (the module doc states the rule).
        block_mask: from :func:`create_block_mask`; its ``mask_mod`` is applied at full resolution.
        scale: defaults to :math:`1/\sqrt{E}`.
        enable_gqa: the key/value heads are repeated to the query's (:math:`H_q` a multiple of :math:`H_{kv}`).
        return_lse: also return the log-sum-exp of the scores (deprecated in torch: use ``return_aux``).
        kernel_options: torch's Triton options; ignored (XLA compiles the attention).
        return_aux: ``AuxRequest(lse=..., max_scores=...)``: return ``(out, AuxOutput(...))``.

    Returns:
        :math:`(B, H_q, L, E_v)` in the query's dtype; with ``return_lse`` also the float32
        :math:`(B, H_q, L)` natural-log log-sum-exp (-inf for a row with every key masked, whose output is 0).

    >>> import tracenn
    >>> from tracenn.nn.attention.flex_attention import flex_attention
    >>> q = k = tracenn.zeros(1, 1, 2, 2)  # equal scores: each query averages the values it may see
    >>> v = tracenn.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> causal = lambda score, b, h, q_idx, kv_idx: tracenn.where(q_idx >= kv_idx, score, -float("inf"))
    >>> flex_attention(q, k, v, score_mod=causal)
    tensor([[[[1., 2.],
              [2., 3.]]]])
    """
    _check_inputs(query, key, value, block_mask, enable_gqa)
    if block_mask is not None:
        _check_block_mask(block_mask, query, key)
    if return_lse and return_aux is not None:
        raise ValueError("Cannot specify both return_lse and return_aux. return_lse is deprecated, please use "
                         "return_aux=AuxRequest(lse=True) instead.")
    if return_lse:
        _warn_once("deprecated_return_lse", "return_lse is deprecated and will be removed in v2.10. Please use "
                   "return_aux=AuxRequest(lse=True) instead.", FutureWarning)
    _check_kernel_options(kernel_options)
    score_mod = _identity if score_mod is None else score_mod
    mask_mod = noop_mask if block_mask is None else block_mask.mask_mod
    scale = 1.0 / math.sqrt(query.size(-1)) if scale is None else scale

    B, Hq, L = query.shape[:3]
    S = key.size(-2)
    group = Hq // key.size(1)
    if group > 1:
        key = _shape.repeat_interleave(key, group, 1)
        value = _shape.repeat_interleave(value, group, 1)
    if key.size(0) != B:
        key, value = key.expand(B, *key.shape[1:]), value.expand(B, *value.shape[1:])

    # torch's math path: float32 scores (float64 for double), the mods on the scaled scores, -inf where masked
    work = _dt.float64 if query.dtype == _dt.float64 else _dt.float32
    scores = _linalg.matmul(query.to(work), _shape.transpose(key.to(work), -2, -1))
    scores = _math.mul(scores, scale).to(work)
    index = _index_grid(B, Hq, L, S, query.device)
    modded = _call_mod(score_mod, (scores, *index), "score_mod")
    allowed = _mask_from_mod(mask_mod, B, Hq, L, S, query.device)
    post = _math.where(allowed, modded, float("-inf")).to(work).expand(B, Hq, L, S)

    # A row with every score -inf: zeros out and -inf log-sum-exp, computed from a finite row so that
    # no NaN reaches the gradient (torch's _safe_softmax).
    dead = _reduce.all(_math.eq(post, float("-inf")), -1, keepdim=True)
    finite = _fill_dead(post, dead, 0.0)
    attn = _fill_dead(_reduce.softmax(finite, -1), dead, 0.0)
    out = _linalg.matmul(attn.to(query.dtype), value.to(query.dtype))

    want_lse = return_lse or (return_aux is not None and return_aux.lse)
    want_max = return_aux is not None and return_aux.max_scores
    dead_row = dead.squeeze(-1)
    lse = _fill_dead(_reduce.logsumexp(finite, -1), dead_row, float("-inf")) if want_lse else None
    max_scores = _fill_dead(_reduce.amax(finite, -1), dead_row, float("-inf")) if want_max else None
    if return_aux is not None:
        return out, AuxOutput(lse=lse, max_scores=max_scores)
    if return_lse:
        return out, lse
    return out
