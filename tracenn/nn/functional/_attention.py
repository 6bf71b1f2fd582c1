"""Attention: ``scaled_dot_product_attention`` and ``multi_head_attention_forward``.

Both are composites of matmul, softmax and elementwise ops, written after torch's reference
implementations. Mask conventions differ between the two, as in torch: in
``scaled_dot_product_attention`` a boolean ``attn_mask`` is True where attention is *allowed*; in
``multi_head_attention_forward`` (and ``nn.MultiheadAttention``) boolean masks are True where
attention is *blocked*. Float masks are added to the scores in both.

A query row whose keys are all masked out gives zeros in ``scaled_dot_product_attention`` (and no
NaN gradient), as torch's kernels do; the ``need_weights=True`` path of multi-head attention uses a
plain softmax there and gives NaN, as torch's does.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ... import dtypes as _dt
from ..._api import creation as _creation, linalg as _linalg, math as _math, reduce as _reduce, shape as _shape
from ..._dispatch import apply
from ...errors import ShapeError
from ...ops import OPS
from ...tensor import Tensor
from ._dropout import dropout
from ._linear import linear

__all__ = ["scaled_dot_product_attention", "multi_head_attention_forward"]

_NEG_INF = float("-inf")


def _pad_last(x: Tensor, n: int = 1) -> Tensor:
    """Append ``n`` zeros along the last dimension (torch's ``F.pad(x, (0, n))``)."""
    widths = ((0, 0),) * (x.ndim - 1) + ((0, n),)
    return apply(OPS["pad"], (x, 0.0 if x.is_floating_point() else False), (widths, "constant"))


def _check_batch_dims(query: Tensor, key: Tensor, value: Tensor, enable_gqa: bool) -> None:
    """The leading (batch, head) dims of query, key and value must broadcast."""
    shapes = [tuple(t.shape[:-2]) for t in (query, key, value)]
    for i in range(1, max(len(sh) for sh in shapes) + 1):
        sizes = {sh[-i] for sh in shapes if len(sh) >= i} - {1}
        if len(sizes) > 1:
            hint = (" Key/value with fewer heads than the query need enable_gqa=True."
                    if i == 1 and not enable_gqa else "")
            raise ShapeError(f"scaled_dot_product_attention: the leading dims of query {list(query.shape)}, key "
                             f"{list(key.shape)} and value {list(value.shape)} must match or be 1, but dim "
                             f"{-i - 2} has sizes {sorted(sizes)}.{hint}")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask: Tensor | None = None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    r"""Attention :math:`\mathrm{softmax}(QK^T \cdot \mathrm{scale} + \mathrm{mask})\,V` over the last two
    dimensions; leading dimensions broadcast.

    Args:
        query: :math:`(*, L, E)`; key: :math:`(*, S, E)`; value: :math:`(*, S, E_v)`.
        attn_mask: boolean (True = may attend) or float (added to the scores), broadcastable to
            :math:`(*, L, S)`.
        dropout_p: dropout on the attention weights — applied whenever > 0 (pass 0 in eval mode).
        is_causal: mask out keys after each query (top-left aligned when :math:`L \ne S`); an error
            together with ``attn_mask``, as torch documents.
        scale: defaults to :math:`1/\sqrt{E}`.
        enable_gqa: grouped-query attention: key/value heads (dim -3) are repeated to the query's.

    Returns:
        :math:`(*, L, E_v)`. Query rows with every key masked out are zeros.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> q = k = tracenn.zeros(1, 2, 2)  # equal scores: each query averages the values it may see
    >>> v = tracenn.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True)
    tensor([[[1., 2.],
             [2., 3.]]])
    """
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError("Expected query, key, and value to all be  at least 2 dimensional, but got query.dim: "
                           f"{query.ndim} key.dim: {key.ndim} and value.dim: {value.ndim} instead.")
    if query.shape[-1] != key.shape[-1]:
        raise ShapeError(f"scaled_dot_product_attention: query and key must have the same embedding size, got "
                         f"query {list(query.shape)} and key {list(key.shape)}")
    if is_causal and attn_mask is not None:
        raise RuntimeError("_scaled_dot_product_attention: Explicit attn_mask should not be set when is_causal=True "
                           "(fold the causal mask into attn_mask, or drop attn_mask)")
    L, S = query.shape[-2], key.shape[-2]
    scale_factor = 1 / math.sqrt(query.shape[-1]) if scale is None else scale
    if key.shape[-2] != value.shape[-2]:
        raise ShapeError(f"scaled_dot_product_attention: key and value must have the same sequence length, got "
                         f"key {list(key.shape)} and value {list(value.shape)}")
    if enable_gqa and query.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        if key.shape[-3] != value.shape[-3] or query.shape[-3] % key.shape[-3]:
            raise ShapeError(f"scaled_dot_product_attention with enable_gqa=True: the query's heads (dim -3) must be "
                             f"a multiple of the key's and value's (equal) heads, got query {list(query.shape)}, key "
                             f"{list(key.shape)} and value {list(value.shape)}")
        key = _shape.repeat_interleave(key, query.shape[-3] // key.shape[-3], -3)
        value = _shape.repeat_interleave(value, query.shape[-3] // value.shape[-3], -3)
    _check_batch_dims(query, key, value, enable_gqa)
    half = query.dtype in (_dt.float16, _dt.bfloat16) and query.device.type == "cpu"
    if half:
        # As torch's CPU kernels: scores, softmax and the weighted sum in float32, rounded once at
        # the end (rounding the scores and probabilities to the half type doubled the error). On an
        # accelerator the matmuls stay in the half type, as torch's fused kernels.
        out_dtype = query.dtype
        query, key, value = query.float(), key.float(), value.float()
        if attn_mask is not None and attn_mask.dtype == out_dtype:
            attn_mask = attn_mask.float()
    scores = _math.mul(_linalg.matmul(query, _shape.transpose(key, -2, -1)), scale_factor)

    allowed = _creation.tensor(np.tril(np.ones((L, S), bool))) if is_causal else None
    bias = None
    if attn_mask is not None:
        if attn_mask.dtype == _dt.bool:
            allowed = attn_mask
        else:
            bias = attn_mask if attn_mask.dtype == query.dtype else attn_mask.to(query.dtype)
    if allowed is not None:
        scores = _math.where(allowed, scores, _NEG_INF)
    if bias is not None:
        scores = _math.add(scores, bias)
    if attn_mask is None:
        attn = _reduce.softmax(scores, -1)
    else:
        # A row with every key masked out: zeros, computed from a finite row so no NaN reaches
        # the gradient (the causal mask alone always leaves key 0).
        dead = _math.logical_not(_reduce.any(allowed, -1, keepdim=True)) if allowed is not None else None
        if bias is not None:
            dead_b = _reduce.all(_math.eq(bias, _NEG_INF), -1, keepdim=True)
            dead = dead_b if dead is None else _math.logical_or(dead, dead_b)
        attn = _math.where(dead, 0.0, _reduce.softmax(_math.where(dead, 0.0, scores), -1))
    if dropout_p > 0.0:
        attn = dropout(attn, dropout_p, training=True)
    out = _linalg.matmul(attn, value)
    return out.to(out_dtype) if half else out


# ---- multi-head attention ------------------------------------------------------------------------

def _canonical_mask(mask: Tensor | None, mask_name: str, other_type, other_name: str, target_type,
                    check_other: bool = True) -> Tensor | None:
    """A boolean mask (True = blocked) as a float mask of ``target_type`` with -inf there."""
    if mask is None:
        return None
    is_float = mask.is_floating_point()
    if mask.dtype != _dt.bool and not is_float:
        raise AssertionError(f"only bool and floating types of {mask_name} are supported")
    if check_other and other_type is not None and mask.dtype != other_type:
        warnings.warn(f"Support for mismatched {mask_name} and {other_name} is deprecated. Use same type for both "
                      "instead.", stacklevel=3)
    if not is_float:
        mask = _math.where(mask, _NEG_INF, 0.0)
        if mask.dtype != target_type:
            mask = mask.to(target_type)
    return mask


def _none_or_dtype(input: Tensor | None):
    if input is None:
        return None
    if isinstance(input, Tensor):
        return input.dtype
    raise RuntimeError("input to _none_or_dtype() must be None or tracenn.Tensor")


def _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """Whether the input is batched (3-D query); torch's AssertionErrors for inconsistent ranks."""
    if query.dim() == 3:
        if key.dim() != 3 or value.dim() != 3:
            raise AssertionError("For batched (3-D) `query`, expected `key` and `value` to be 3-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 2:
            raise AssertionError("For batched (3-D) `query`, expected `key_padding_mask` to be `None` or 2-D but "
                                 f"found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None and attn_mask.dim() not in (2, 3):
            raise AssertionError("For batched (3-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D but "
                                 f"found {attn_mask.dim()}-D tensor instead")
        return True
    if query.dim() == 2:
        if key.dim() != 2 or value.dim() != 2:
            raise AssertionError("For unbatched (2-D) `query`, expected `key` and `value` to be 2-D but found "
                                 f"{key.dim()}-D and {value.dim()}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.dim() != 1:
            raise AssertionError("For unbatched (2-D) `query`, expected `key_padding_mask` to be `None` or 1-D but "
                                 f"found {key_padding_mask.dim()}-D tensor instead")
        if attn_mask is not None:
            if attn_mask.dim() not in (2, 3):
                raise AssertionError("For unbatched (2-D) `query`, expected `attn_mask` to be `None`, 2-D or 3-D "
                                     f"but found {attn_mask.dim()}-D tensor instead")
            if attn_mask.dim() == 3:
                expected = (num_heads, query.shape[0], key.shape[0])
                if tuple(attn_mask.shape) != expected:
                    raise AssertionError(f"Expected `attn_mask` shape to be {expected} but got {attn_mask.shape}")
        return False
    raise AssertionError(f"query should be unbatched 2D or batched 3D tensor but received {query.dim()}-D query "
                         "tensor")


def _in_projection_packed(q: Tensor, k: Tensor, v: Tensor, w: Tensor, b: Tensor | None = None):
    """q, k, v projected by the stacked (3E, E) weight: one matmul for self-attention."""
    E = q.shape[-1]
    if k is v:
        if q is k:
            return _shape.chunk(linear(q, w, b), 3, -1)
        w_q, w_kv = _shape.split(w, [E, 2 * E])
        b_q, b_kv = (None, None) if b is None else _shape.split(b, [E, 2 * E])
        k_out, v_out = _shape.chunk(linear(k, w_kv, b_kv), 2, -1)
        return linear(q, w_q, b_q), k_out, v_out
    w_q, w_k, w_v = _shape.chunk(w, 3)
    b_q, b_k, b_v = (None, None, None) if b is None else _shape.chunk(b, 3)
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


def _in_projection(q, k, v, w_q, w_k, w_v, b_q=None, b_k=None, b_v=None):
    Eq, Ek, Ev = q.shape[-1], k.shape[-1], v.shape[-1]
    for what, w, shape in (("query", w_q, (Eq, Eq)), ("key", w_k, (Eq, Ek)), ("value", w_v, (Eq, Ev))):
        if tuple(w.shape) != shape:
            raise AssertionError(f"expecting {what} weights shape of {shape}, but got {w.shape}")
    for what, b in (("query", b_q), ("key", b_k), ("value", b_v)):
        if b is not None and tuple(b.shape) != (Eq,):
            raise AssertionError(f"expecting {what} bias shape of {(Eq,)}, but got {b.shape}")
    return linear(q, w_q, b_q), linear(k, w_k, b_k), linear(v, w_v, b_v)


def multi_head_attention_forward(query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight: Tensor | None, in_proj_bias: Tensor | None,
                                 bias_k: Tensor | None, bias_v: Tensor | None, add_zero_attn: bool,
                                 dropout_p: float, out_proj_weight: Tensor, out_proj_bias: Tensor | None,
                                 training: bool = True, key_padding_mask: Tensor | None = None,
                                 need_weights: bool = True, attn_mask: Tensor | None = None,
                                 use_separate_proj_weight: bool = False, q_proj_weight: Tensor | None = None,
                                 k_proj_weight: Tensor | None = None, v_proj_weight: Tensor | None = None,
                                 static_k: Tensor | None = None, static_v: Tensor | None = None,
                                 average_attn_weights: bool = True, is_causal: bool = False):
    r"""The computation of :class:`tracenn.nn.MultiheadAttention` on sequence-first inputs.

    ``query`` :math:`(L, N, E)` (or unbatched :math:`(L, E)`), ``key``/``value`` :math:`(S, N, E_k)`.
    Boolean masks are True where attention is blocked. Returns ``(attn_output, attn_weights)``:
    :math:`(L, N, E)` and — with ``need_weights`` — :math:`(N, L, S)` averaged over heads (or
    :math:`(N, H, L, S)` with ``average_attn_weights=False``), else None.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.ones(3, 1, 4)
    >>> w, b = tracenn.eye(4).repeat(3, 1), tracenn.zeros(12)
    >>> out, weights = F.multi_head_attention_forward(x, x, x, 4, 2, w, b, None, None, False, 0.0,
    ...                                               tracenn.eye(4), None)
    >>> out.shape, weights
    (tracenn.Size([3, 1, 4]), tensor([[[0.3333, 0.3333, 0.3333],
             [0.3333, 0.3333, 0.3333],
             [0.3333, 0.3333, 0.3333]]]))
    """
    is_batched = _mha_shape_check(query, key, value, key_padding_mask, attn_mask, num_heads)
    if not is_batched:
        # Keep the identity of q/k/v (self-attention projects once) through the unsqueeze.
        same_kv, same_qk = key is value, query is key
        query = query.unsqueeze(1)
        key = query if same_qk else key.unsqueeze(1)
        value = key if same_kv else value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    src_len = key.shape[0]
    key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", _none_or_dtype(attn_mask), "attn_mask",
                                       query.dtype)
    if is_causal and attn_mask is None:
        raise RuntimeError("Need attn_mask if specifying the is_causal hint. You may use the Transformer module "
                           "method `generate_square_subsequent_mask` to create this mask.")
    if is_causal and key_padding_mask is None and not need_weights:
        # The hint: the causal mask is made from the shapes below instead of read from attn_mask.
        attn_mask = None
    else:
        attn_mask = _canonical_mask(attn_mask, "attn_mask", None, "", query.dtype, check_other=False)
        if key_padding_mask is not None:
            is_causal = False
    if embed_dim != embed_dim_to_check:
        raise AssertionError(f"was expecting embedding dimension of {embed_dim_to_check}, but got {embed_dim}")
    head_dim = embed_dim // num_heads
    if head_dim * num_heads != embed_dim:
        raise AssertionError(f"embed_dim {embed_dim} not divisible by num_heads {num_heads}")
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise AssertionError(f"key's sequence and batch dims {key.shape[:2]} do not match value's "
                                 f"{value.shape[:2]}")
    elif tuple(key.shape) != tuple(value.shape):
        raise AssertionError(f"key shape {key.shape} does not match value shape {value.shape}")

    if not use_separate_proj_weight:
        if in_proj_weight is None:
            raise AssertionError("use_separate_proj_weight is False but in_proj_weight is None")
        q, k, v = _in_projection_packed(query, key, value, in_proj_weight, in_proj_bias)
    else:
        for name, w in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
            if w is None:
                raise AssertionError(f"use_separate_proj_weight is True but {name}_proj_weight is None")
        b_q, b_k, b_v = (None, None, None) if in_proj_bias is None else _shape.chunk(in_proj_bias, 3)
        q, k, v = _in_projection(query, key, value, q_proj_weight, k_proj_weight, v_proj_weight, b_q, b_k, b_v)

    if attn_mask is not None:
        if attn_mask.dim() == 2:
            if tuple(attn_mask.shape) != (tgt_len, src_len):
                raise RuntimeError(f"The shape of the 2D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(tgt_len, src_len)}.")
        elif attn_mask.dim() == 3:
            if tuple(attn_mask.shape) != (bsz * num_heads, tgt_len, src_len):
                raise RuntimeError(f"The shape of the 3D attn_mask is {attn_mask.shape}, but should be "
                                   f"{(bsz * num_heads, tgt_len, src_len)}.")
        else:
            raise RuntimeError(f"attn_mask's dimension {attn_mask.dim()} is not supported")

    if bias_k is not None and bias_v is not None:
        if static_k is not None:
            raise AssertionError("bias cannot be added to static key.")
        if static_v is not None:
            raise AssertionError("bias cannot be added to static value.")
        k = _shape.cat([k, bias_k.repeat(1, bsz, 1)])
        v = _shape.cat([v, bias_v.repeat(1, bsz, 1)])
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)
    elif bias_k is not None:
        raise AssertionError("bias_k is set but bias_v is None")
    elif bias_v is not None:
        raise AssertionError("bias_v is set but bias_k is None")

    # Heads as their own axis: (seq, batch, embed) -> (batch, heads, seq, head_dim). torch's
    # (batch * heads, seq, head_dim) layout is the same memory; 4-D needs fewer reshapes.
    def heads(x: Tensor) -> Tensor:
        return _shape.permute(_shape.reshape(x, (x.shape[0], bsz, num_heads, head_dim)), (1, 2, 0, 3))

    def static(x: Tensor, name: str) -> Tensor:
        if x.size(0) != bsz * num_heads:
            raise AssertionError(f"expecting {name}.size(0) of {bsz * num_heads}, but got {x.size(0)}")
        if x.size(2) != head_dim:
            raise AssertionError(f"expecting {name}.size(2) of {head_dim}, but got {x.size(2)}")
        return _shape.reshape(x, (bsz, num_heads, x.shape[1], head_dim))

    q = heads(q)
    k = heads(k) if static_k is None else static(static_k, "static_k")
    v = heads(v) if static_v is None else static(static_v, "static_v")

    if add_zero_attn:
        zeros = _creation.zeros((bsz, num_heads, 1, head_dim), dtype=k.dtype)
        k = _shape.cat([k, zeros], 2)
        v = _shape.cat([v, zeros.to(v.dtype)], 2)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)
    src_len = k.shape[2]

    if attn_mask is not None and attn_mask.dim() == 3:
        attn_mask = _shape.reshape(attn_mask, (bsz, num_heads, tgt_len, src_len))
    if key_padding_mask is not None:
        if key_padding_mask.shape[0] != bsz:
            raise AssertionError(f"Expected key_padded_mask.shape[0] to be {bsz}, but got {key_padding_mask.shape[0]}")
        if key_padding_mask.shape[1] != src_len:
            raise AssertionError(f"Expected key_padded_mask.shape[1] to be {src_len}, but got "
                                 f"{key_padding_mask.shape[1]}")
        kpm = _shape.reshape(key_padding_mask, (bsz, 1, 1, src_len))
        attn_mask = kpm if attn_mask is None else _math.add(attn_mask, kpm)

    if not training:
        dropout_p = 0.0

    weights = None
    if need_weights:
        q_scaled = _math.mul(q, math.sqrt(1.0 / float(head_dim)))
        scores = _linalg.matmul(q_scaled, _shape.transpose(k, -2, -1))  # (batch, heads, tgt, src)
        if attn_mask is not None:
            scores = _math.add(attn_mask, scores)
        weights = _reduce.softmax(scores, -1)
        if dropout_p > 0.0:
            weights = dropout(weights, p=dropout_p)
        attn_output = _linalg.matmul(weights, v)
        if average_attn_weights:
            weights = _reduce.mean(weights, 1)
        if not is_batched:
            weights = weights.squeeze(0)
    else:
        attn_output = scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal)
    attn_output = _shape.reshape(_shape.permute(attn_output, (2, 0, 1, 3)), (tgt_len * bsz, embed_dim))
    attn_output = linear(attn_output, out_proj_weight, out_proj_bias)
    attn_output = _shape.reshape(attn_output, (tgt_len, bsz, attn_output.shape[1]))
    if not is_batched:
        attn_output = attn_output.squeeze(1)
    return attn_output, weights
