"""tracenn.nn.attention.flex_attention: flex_attention, create_block_mask/BlockMask, create_mask,
and_masks/or_masks — NumPy and known-value checks, gradients, compiled vs eager, errors, and parity with
torch (outputs and log-sum-exp against torch's flex_attention; gradients against torch's own math
implementation, since torch's eager CPU flex_attention has no backward)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np
from tracenn.nn.attention.flex_attention import (AuxRequest, BlockMask, and_masks, create_block_mask, create_mask,
                                                 flex_attention, noop_mask, or_masks)

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def np_attention(q, k, v, scores_fn=lambda s: s, allowed=None, scale=None):
    """NumPy reference: masked softmax with zero rows where every key is masked; returns (out, lse)."""
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    s = scores_fn(s)
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    m = s.max(-1, keepdims=True)
    dead = np.isneginf(m)
    e = np.exp(s - np.where(dead, 0, m))
    tot = e.sum(-1, keepdims=True)
    p = np.where(dead, 0, e / np.where(dead, 1, tot))
    lse = np.where(dead[..., 0], -np.inf, (np.log(np.where(dead, 1, tot)) + np.where(dead, 0, m))[..., 0])
    return p @ v, lse


# ---- mask and score mods, written once for either library ----------------------------------------------

def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def window(n):
    def sliding(b, h, q_idx, kv_idx):
        return (q_idx - kv_idx).abs() <= n
    return sliding


def make_case(lib, name, L, S, H):
    """(score_mod, mask_mod, extra learnable tensors) for the named case on ``lib``'s tensors."""
    if name == "plain":
        return None, None, {}
    if name == "causal":
        return None, causal, {}
    if name == "sliding":
        return None, and_masks_for(lib)(causal, window(8)), {}
    if name == "document":
        doc = lib.tensor(np.repeat([0, 1, 2], [L // 3, L // 3, L - 2 * (L // 3)]))
        return None, and_masks_for(lib)(causal, lambda b, h, q, k: doc[q] == doc[k]), {}
    if name == "prefix_lm":
        return None, or_masks_for(lib)(causal, lambda b, h, q, k: k < 10), {}
    if name == "dead_rows":
        return None, lambda b, h, q, k: (q >= 3) & (k <= q), {}
    if name == "rel_bias":
        values = np.random.default_rng(1).standard_normal((H, L + S - 1)).astype(np.float32)  # same for both libs
        bias = lib.tensor(0.1 * values, requires_grad=True)
        return (lambda s, b, h, q, k: s + bias[h, q - k + (S - 1)]), causal, {"bias": bias}
    if name == "alibi":
        slopes = lib.tensor(np.exp2(-np.arange(1, H + 1, dtype=np.float32)))
        return (lambda s, b, h, q, k: s + slopes[h] * (k - q)), causal, {}
    if name == "softcap":
        return (lambda s, b, h, q, k: 2.0 * lib.tanh(s / 2.0)), None, {}
    if name == "score_causal":  # causal written as a score_mod, with an index-dependent where
        return (lambda s, b, h, q, k: lib.where(q >= k, s, -float("inf"))), None, {}
    raise KeyError(name)


def and_masks_for(lib):
    if lib is tracenn:
        return and_masks
    from torch.nn.attention.flex_attention import and_masks as t_and
    return t_and


def or_masks_for(lib):
    if lib is tracenn:
        return or_masks
    from torch.nn.attention.flex_attention import or_masks as t_or
    return t_or


# ---- known values and NumPy references (no torch) ---------------------------------------------------------

def test_docstring_value_and_noop_equals_sdpa():
    q, k, v = arr(2, 3, 20, 8), arr(2, 3, 20, 8), arr(2, 3, 20, 5)
    tq, tk, tv = (tracenn.tensor(x) for x in (q, k, v))
    assert_close(flex_attention(tq, tk, tv), F.scaled_dot_product_attention(tq, tk, tv), atol=1e-6)
    bm = create_block_mask(noop_mask, None, None, 20, 20, device="cpu")
    assert_close(flex_attention(tq, tk, tv, block_mask=bm), np_attention(q, k, v)[0], atol=1e-5)
    assert_close(flex_attention(tq, tk, tv, scale=0.3), np_attention(q, k, v, scale=0.3)[0], atol=1e-5)


@pytest.mark.parametrize("L", [100, 300])
def test_causal_block_mask_equals_sdpa_is_causal(L):
    q, k, v = arr(1, 2, L, 8), arr(1, 2, L, 8), arr(1, 2, L, 8)
    tq, tk, tv = (tracenn.tensor(x) for x in (q, k, v))
    bm = create_block_mask(causal, None, None, L, L, device="cpu")
    out = flex_attention(tq, tk, tv, block_mask=bm)
    assert_close(out, F.scaled_dot_product_attention(tq, tk, tv, is_causal=True), atol=1e-5)
    assert_close(out, np_attention(q, k, v, allowed=np.tril(np.ones((L, L), bool)))[0], atol=1e-5)


def test_gqa_equals_sdpa_enable_gqa():
    q, k, v = arr(2, 4, 12, 8), arr(2, 2, 12, 8), arr(2, 2, 12, 8)
    tq, tk, tv = (tracenn.tensor(x) for x in (q, k, v))
    assert_close(flex_attention(tq, tk, tv, enable_gqa=True),
                 F.scaled_dot_product_attention(tq, tk, tv, enable_gqa=True), atol=1e-6)
    expected = np_attention(q, np.repeat(k, 2, 1), np.repeat(v, 2, 1))[0]
    assert_close(flex_attention(tq, tk, tv, enable_gqa=True), expected, atol=1e-5)


def test_softcap_alibi_and_lse_against_numpy():
    q, k, v = arr(1, 2, 10, 4), arr(1, 2, 14, 4), arr(1, 2, 14, 3)
    tq, tk, tv = (tracenn.tensor(x) for x in (q, k, v))
    out, aux = flex_attention(tq, tk, tv, score_mod=lambda s, b, h, qi, ki: 0.5 * tracenn.tanh(s / 0.5),
                              return_aux=AuxRequest(lse=True))
    lse = aux.lse
    e_out, e_lse = np_attention(q, k, v, scores_fn=lambda s: 0.5 * np.tanh(s / 0.5))
    assert_close(out, e_out, atol=1e-5)
    assert_close(lse, e_lse, atol=1e-5, check_dtype=False)
    assert lse.dtype == tracenn.float32 and tuple(lse.shape) == (1, 2, 10)
    slopes = np.array([0.5, 0.25], np.float32)
    ts = tracenn.tensor(slopes)
    out = flex_attention(tq, tk, tv, score_mod=lambda s, b, h, qi, ki: s + ts[h] * (ki - qi))
    rel = np.arange(14)[None, :] - np.arange(10)[:, None]
    assert_close(out, np_attention(q, k, v, scores_fn=lambda s: s + slopes[:, None, None] * rel)[0], atol=1e-5,
                 check_dtype=False)


def test_fully_masked_rows_give_zeros_and_minus_inf_lse_and_finite_grads():
    q, k, v = (tracenn.tensor(arr(1, 1, 6, 4), requires_grad=True) for _ in range(3))
    bm = create_block_mask(lambda b, h, qi, ki: (qi >= 2) & (ki <= qi), None, None, 6, 6, device="cpu")
    out, aux = flex_attention(q, k, v, block_mask=bm, return_aux=AuxRequest(lse=True, max_scores=True))
    assert np.all(to_np(out)[0, 0, :2] == 0)
    assert np.all(np.isneginf(to_np(aux.lse)[0, 0, :2])) and np.all(np.isfinite(to_np(aux.lse)[0, 0, 2:]))
    assert np.all(np.isneginf(to_np(aux.max_scores)[0, 0, :2]))
    (out.sum() + aux.lse[..., 2:].sum()).backward()
    for t in (q, k, v):
        assert np.all(np.isfinite(to_np(t.grad)))
    assert np.all(to_np(q.grad)[0, 0, :2] == 0)


def test_gradients_against_finite_differences_with_learnable_bias():
    q, k, v = arr(1, 2, 5, 3).astype(np.float64), arr(1, 2, 5, 3).astype(np.float64), arr(1, 2, 5, 2)
    v = v.astype(np.float64)
    bias0 = 0.3 * arr(2, 9).astype(np.float64)

    def loss_np(bias):
        rel = np.arange(5)[:, None] - np.arange(5)[None, :] + 4
        causal_np = np.tril(np.ones((5, 5), bool))
        out = np_attention(q, k, v, scores_fn=lambda s: s + bias[:, rel][None], allowed=causal_np)[0]
        return (out * np.arange(out.size).reshape(out.shape)).sum()

    bias = tracenn.tensor(bias0, requires_grad=True)
    out = flex_attention(tracenn.tensor(q), tracenn.tensor(k), tracenn.tensor(v),
                         score_mod=lambda s, b, h, qi, ki: s + bias[h, qi - ki + 4],
                         block_mask=create_block_mask(causal, None, None, 5, 5, device="cpu"))
    assert out.dtype == tracenn.float64
    (out * tracenn.arange(out.numel(), dtype=tracenn.float64).reshape(out.shape)).sum().backward()
    num = np.zeros_like(bias0)
    for idx in np.ndindex(*bias0.shape):
        d = np.zeros_like(bias0)
        d[idx] = 1e-6
        num[idx] = (loss_np(bias0 + d) - loss_np(bias0 - d)) / 2e-6
    assert_close(bias.grad, num, rtol=1e-5, atol=1e-6)


def test_create_mask_and_mask_combinators():
    m = create_mask(and_masks(causal, window(1)), None, None, 4, 5)
    expected = np.tril(np.ones((4, 5), bool)) & (np.abs(np.arange(4)[:, None] - np.arange(5)) <= 1)
    assert tuple(m.shape) == (1, 1, 4, 5) and m.dtype == tracenn.bool
    assert np.array_equal(to_np(m)[0, 0], expected)
    m = create_mask(or_masks(causal, lambda b, h, q, k: k < 2), 2, 3, 4, 5)
    assert tuple(m.shape) == (2, 3, 4, 5)
    assert np.array_equal(to_np(m)[1, 2], np.tril(np.ones((4, 5), bool)) | (np.arange(5) < 2))
    m = create_mask(lambda s, b, h, q, k: tracenn.where(q >= k, s, -float("inf")), None, 2, 3, 3)
    assert np.array_equal(to_np(m)[0, 1], np.tril(np.ones((3, 3), bool)))
    assert to_np(create_mask(noop_mask, None, None, 2, 2)).all()
    with pytest.raises(RuntimeError, match="callable mask_mods"):
        and_masks(causal, 3)


def test_block_mask_causal_256_known_fields():
    bm = create_block_mask(causal, None, None, 256, 256, device="cpu")
    assert bm.shape == (1, 1, 256, 256) and bm.seq_lengths == (256, 256) and bm.BLOCK_SIZE == (128, 128)
    assert bm.mask_mod is causal
    assert to_np(bm.kv_num_blocks).tolist() == [[[1, 1]]]
    assert to_np(bm.kv_indices).tolist() == [[[[0, 1], [1, 0]]]]
    assert to_np(bm.full_kv_num_blocks).tolist() == [[[0, 1]]]
    assert to_np(bm.full_kv_indices).tolist() == [[[[0, 1], [0, 1]]]]
    assert bm.kv_num_blocks.dtype == tracenn.int32
    assert to_np(bm.to_dense()).tolist() == [[[[1, 0], [1, 1]]]]
    assert bm.sparsity() == 25.0
    assert str(bm) == "BlockMask(shape=(1, 1, 256, 256), sparsity=25.00%, \n(0, 0)\n██  \n████\n)"
    assert "mask_mod=causal" in repr(bm) and "kv_num_blocks=tracenn.Size([1, 1, 2])" in repr(bm)
    small = create_block_mask(causal, 2, None, 256, 256, device="cpu", BLOCK_SIZE=(64, 128))
    assert tuple(small.kv_num_blocks.shape) == (2, 1, 4) and small.BLOCK_SIZE == (64, 128)
    assert small[1].shape == (1, 1, 256, 256)  # an int index keeps the dim, as torch's


def test_mods_with_python_control_flow_on_indices_are_refused():
    def branchy(score, b, h, q_idx, kv_idx):
        if q_idx >= kv_idx:
            return score
        return score - 1

    t = tracenn.tensor(arr(1, 1, 4, 4))
    with pytest.raises(RuntimeError, match="control flow on the index values is not supported"):
        flex_attention(t, t, t, score_mod=branchy)


def test_errors():
    q, k = tracenn.tensor(arr(1, 4, 8, 4)), tracenn.tensor(arr(1, 2, 8, 4))
    with pytest.raises(ValueError, match="Try setting enable_gqa=True"):
        flex_attention(q, k, k)
    with pytest.raises(ValueError, match="multiple of kv heads"):
        flex_attention(q, tracenn.tensor(arr(1, 3, 8, 4)), tracenn.tensor(arr(1, 3, 8, 4)), enable_gqa=True)
    with pytest.raises(ValueError, match="same embedding dimension"):
        flex_attention(q, tracenn.tensor(arr(1, 4, 8, 5)), tracenn.tensor(arr(1, 4, 8, 5)))
    with pytest.raises(NotImplementedError, match="must be 4D"):
        flex_attention(q[0], q[0], q[0])
    bm = create_block_mask(causal, None, None, 16, 16, device="cpu")
    with pytest.raises(ValueError, match="created for a larger length"):
        flex_attention(q, q, q, block_mask=bm)
    with pytest.raises(ValueError, match="created for a smaller length"):
        flex_attention(q, q, q, block_mask=create_block_mask(causal, None, None, 4, 4, device="cpu"))
    with pytest.raises(ValueError, match="same batch size, or non-none block_mask"):
        flex_attention(tracenn.tensor(arr(2, 4, 8, 4)), q, q)
    with pytest.raises(RuntimeError, match="sliced BlockMask"):
        flex_attention(q, q, q, block_mask=create_block_mask(causal, 1, 4, 8, 8, device="cpu")[:, :2])
    with pytest.raises(ValueError, match="Cannot specify both return_lse and return_aux"):
        flex_attention(q, q, q, return_lse=True, return_aux=AuxRequest(lse=True))
    with pytest.raises(ValueError, match="Invalid BACKEND"):
        flex_attention(q, q, q, kernel_options={"BACKEND": "CUDA"})
    with pytest.raises(AssertionError, match="requires a mask_mod"):
        create_block_mask(lambda s, b, h, qi, ki: s, None, None, 4, 4)
    with pytest.raises(AssertionError, match="Expected 4 or 5 positional args"):
        create_mask(lambda q, k: q >= k, None, None, 4, 4)


def test_return_lse_is_deprecated_and_batch_broadcast_with_block_mask():
    q, k, v = arr(2, 2, 8, 4), arr(1, 2, 8, 4), arr(1, 2, 8, 4)
    bm = create_block_mask(causal, 2, None, 8, 8, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        out, lse = flex_attention(*(tracenn.tensor(x) for x in (q, k, v)), block_mask=bm, return_lse=True)
    e_out, e_lse = np_attention(q, np.repeat(k, 2, 0), np.repeat(v, 2, 0), allowed=np.tril(np.ones((8, 8), bool)))
    assert_close(out, e_out, atol=1e-5)
    assert_close(lse, e_lse, atol=1e-5, check_dtype=False)


# ---- compiled vs eager ---------------------------------------------------------------------------------

class RelBiasAttention(nn.Module):
    """Attention with a learnable relative-position bias and a causal block mask made in __init__."""

    def __init__(self, heads, L):
        super().__init__()
        self.L = L
        self.bias = nn.Parameter(0.1 * tracenn.randn(heads, 2 * L - 1))
        self.block_mask = create_block_mask(causal, None, None, L, L, device="cpu")

    def forward(self, q, k, v):
        def rel(score, b, h, q_idx, kv_idx):
            return score + self.bias[h, q_idx - kv_idx + self.L - 1]
        return flex_attention(q, k, v, score_mod=rel, block_mask=self.block_mask)


def test_compiled_equals_eager_including_gradients():
    m = RelBiasAttention(2, 100)
    q, k, v = arr(1, 2, 100, 8), arr(1, 2, 100, 8), arr(1, 2, 100, 8)
    grads = []
    for run in (m, tracenn.compile(m)):
        m.zero_grad()
        tq, tk, tv = (tracenn.tensor(x, requires_grad=True) for x in (q, k, v))
        out = run(tq, tk, tv)
        (out * out).sum().backward()
        grads.append((out, tq.grad, tk.grad, tv.grad, m.bias.grad))
    for eager, compiled in zip(*grads):
        assert_close(compiled, eager, rtol=1e-4, atol=1e-5)


def test_compiled_function_with_block_mask_argument_and_soft_cap():
    q, k, v = arr(1, 2, 40, 4), arr(1, 2, 40, 4), arr(1, 2, 40, 4)
    bm = create_block_mask(and_masks(causal, window(5)), None, None, 40, 40, device="cpu")

    def run(q, k, v, block_mask):
        return flex_attention(q, k, v, score_mod=lambda s, b, h, qi, ki: 3.0 * tracenn.tanh(s / 3.0),
                              block_mask=block_mask, return_lse=False)

    tq, tk, tv = (tracenn.tensor(x) for x in (q, k, v))
    assert_close(tracenn.compile(run)(tq, tk, tv, bm), run(tq, tk, tv, bm), rtol=1e-5, atol=1e-6)



def _alibi_case():
    q, k, v = (tracenn.tensor(arr(1, 2, 20, 4)) for _ in range(3))
    slopes = tracenn.tensor([0.5, 0.25])

    def alibi(score, b, h, q_idx, kv_idx):
        return score + slopes[h] * (kv_idx - q_idx)

    return (q, k, v), slopes, alibi, create_block_mask(causal, None, None, 20, 20, device="cpu")


def test_compiled_flex_attention_itself():
    """torch's idiom ``flex = compile(flex_attention)``, with a score_mod that captures a tensor: the
    call runs eagerly, with a warning that names the tensor (a program would keep it as a constant)."""
    qkv, _, alibi, bm = _alibi_case()
    flex = tracenn.compile(flex_attention, dynamic=False)
    with pytest.warns(UserWarning, match="alibi passed as an argument reads a tensor through 'slopes'"):
        got = flex(*qkv, score_mod=alibi, block_mask=bm)
    assert_close(got, flex_attention(*qkv, score_mod=alibi, block_mask=bm), rtol=1e-5, atol=1e-6)


def test_compiled_flex_attention_sees_in_place_changes_of_captured_tensors():
    qkv, slopes, alibi, bm = _alibi_case()
    flex = tracenn.compile(flex_attention, dynamic=False)
    with pytest.warns(UserWarning, match="runs eagerly"):
        flex(*qkv, score_mod=alibi, block_mask=bm)
    slopes.mul_(4.0)
    assert_close(flex(*qkv, score_mod=alibi, block_mask=bm), flex_attention(*qkv, score_mod=alibi, block_mask=bm),
                 rtol=1e-5, atol=1e-6)


# ---- parity with torch --------------------------------------------------------------------------------

CASES = [  # name, B, Hq, Hkv, L, S, E
    ("plain", 2, 2, 2, 16, 16, 8),
    ("causal", 1, 2, 2, 100, 100, 8),
    ("causal", 1, 1, 1, 300, 300, 4),
    ("sliding", 1, 2, 2, 100, 100, 8),
    ("document", 2, 1, 1, 60, 60, 8),
    ("prefix_lm", 1, 2, 2, 40, 40, 8),
    ("dead_rows", 1, 2, 2, 20, 20, 4),
    ("rel_bias", 2, 2, 2, 30, 30, 8),
    ("rel_bias", 1, 2, 2, 24, 40, 8),
    ("alibi", 1, 4, 4, 30, 30, 8),
    ("softcap", 1, 2, 2, 20, 36, 8),
    ("score_causal", 1, 2, 2, 20, 20, 8),
    ("causal", 2, 4, 2, 32, 32, 8),  # GQA
]


def torch_reference(torch, q, k, v, score_mod, mask_mod, scale=None):
    """torch's eager math implementation of flex_attention (differentiable): (out, natural-log lse)."""
    from torch._higher_order_ops.flex_attention import math_attention
    from torch.nn.attention.flex_attention import noop_mask as t_noop
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    out, lse, _ = math_attention(q, k, v, score_mod or (lambda s, b, h, qi, ki: s), (mask_mod or t_noop,), scale, {})
    return out, lse * math.log(2)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[4]}x{c[5]}-h{c[2]}/{c[3]}" for c in CASES])
def test_values_and_gradients_match_torch(torch, case):
    name, B, Hq, Hkv, L, S, E = case
    arrays = [arr(B, Hq, L, E), arr(B, Hkv, S, E), arr(B, Hkv, S, E)]
    w = arr(B, Hq, L, E)
    results = []
    for lib in (tracenn, torch):
        score_mod, mask_mod, extra = make_case(lib, name, L, S, Hq)
        q, k, v = (lib.tensor(x, requires_grad=True) for x in arrays)
        if lib is tracenn:
            bm = create_block_mask(mask_mod, None, None, L, S, device="cpu") if mask_mod else None
            out, aux = flex_attention(q, k, v, score_mod, bm, enable_gqa=Hq != Hkv, return_aux=AuxRequest(lse=True))
            lse = aux.lse.detach()
        else:
            out, lse = torch_reference(torch, q, k, v, score_mod, mask_mod)
        (out * lib.tensor(w)).sum().backward()
        results.append([out, lse, q.grad, k.grad, v.grad, *(t.grad for t in extra.values())])
    for mine, theirs in zip(*results):
        assert_close(mine, theirs.detach().numpy(), rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("name,L,S", [("causal", 300, 300), ("sliding", 100, 100), ("softcap", 20, 36),
                                      ("dead_rows", 20, 20)])
def test_forward_matches_torch_flex_attention(torch, name, L, S):
    from torch.nn.attention.flex_attention import AuxRequest as TAux
    from torch.nn.attention.flex_attention import create_block_mask as t_cbm
    from torch.nn.attention.flex_attention import flex_attention as t_flex
    arrays = [arr(1, 2, L, 8), arr(1, 2, S, 8), arr(1, 2, S, 8)]
    t_score, t_mask, _ = make_case(torch, name, L, S, 2)
    score, mask, _ = make_case(tracenn, name, L, S, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_bm = t_cbm(t_mask, None, None, L, S, device="cpu") if t_mask else None
        t_out, t_aux = t_flex(*(torch.tensor(x) for x in arrays), t_score, t_bm, return_aux=TAux(lse=True))
    bm = create_block_mask(mask, None, None, L, S, device="cpu") if mask else None
    out, aux = flex_attention(*(tracenn.tensor(x) for x in arrays), score, bm, return_aux=AuxRequest(lse=True))
    assert_close(out, t_out.numpy(), rtol=1e-4, atol=1e-5)
    assert_close(aux.lse, t_aux.lse.numpy(), rtol=1e-4, atol=1e-5)


def _head_window(b, h, q_idx, kv_idx):
    return (q_idx >= kv_idx) & (q_idx - kv_idx <= 60 * (h + 1))


@pytest.mark.parametrize("L,S,B,H,block,mod", [
    (256, 256, None, None, 128, causal), (300, 300, None, None, 128, causal), (300, 200, 2, 3, 128, _head_window),
    (100, 260, None, 2, (32, 64), _head_window)])
def test_block_mask_fields_match_torch(torch, message, L, S, B, H, block, mod):
    from torch.nn.attention.flex_attention import create_block_mask as t_cbm
    mine = create_block_mask(mod, B, H, L, S, device="cpu", BLOCK_SIZE=block)
    theirs = t_cbm(mod, B, H, L, S, device="cpu", BLOCK_SIZE=block)
    for attr in BlockMask._TENSOR_ATTRS:
        assert np.array_equal(to_np(getattr(mine, attr)), getattr(theirs, attr).numpy()), attr
    assert mine.shape == theirs.shape and mine.seq_lengths == theirs.seq_lengths
    assert mine.BLOCK_SIZE == theirs.BLOCK_SIZE
    assert mine.sparsity() == pytest.approx(theirs.sparsity())
    assert np.array_equal(to_np(mine.to_dense()), theirs.to_dense().numpy())
    assert str(mine) == str(theirs)
    assert repr(mine) == message(repr(theirs))
    assert mine.to_string(grid_size=-1, limit=2) == theirs.to_string(grid_size=-1, limit=2)
    sliced, t_sliced = mine[0, -1], theirs[0, -1]
    for attr in BlockMask._TENSOR_ATTRS:
        assert np.array_equal(to_np(getattr(sliced, attr)), getattr(t_sliced, attr).numpy()), attr
    adj, t_adj = mine._adjust(L // 2, S // 2), theirs._adjust(L // 2, S // 2)
    for attr in ("kv_num_blocks", "kv_indices", "full_kv_num_blocks", "q_num_blocks", "q_indices"):
        assert np.array_equal(to_np(getattr(adj, attr)), getattr(t_adj, attr).numpy()), attr
    assert adj.shape == t_adj.shape


def test_public_names_and_signatures_match_torch(torch):
    import inspect

    import torch.nn.attention.flex_attention as tfa

    import tracenn.nn.attention.flex_attention as fa
    assert set(tfa.__all__) <= set(dir(fa)) and set(tfa.__all__) == set(fa.__all__)
    for name in ("flex_attention", "create_mask"):
        mine = inspect.signature(getattr(fa, name))
        theirs = inspect.signature(getattr(tfa, name))
        assert list(mine.parameters) == list(theirs.parameters), name
        assert [p.default for p in mine.parameters.values()] == [p.default for p in theirs.parameters.values()]
    assert list(inspect.signature(fa.create_block_mask).parameters) == list(
        inspect.signature(tfa.create_block_mask).parameters)
    assert fa.AuxRequest._fields == tfa.AuxRequest._fields and fa.AuxOutput._fields == tfa.AuxOutput._fields


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float64"])
def test_low_and_double_precision_match_torch(torch, dtype):
    """Scores in float32 (float64 for double), probabilities cast to the query's dtype before ``@ v``."""
    from torch.nn.attention.flex_attention import create_block_mask as t_cbm
    from torch.nn.attention.flex_attention import flex_attention as t_flex
    arrays = [arr(1, 2, 50, 16) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_out, t_lse = t_flex(*(torch.tensor(x).to(getattr(torch, dtype)) for x in arrays),
                              block_mask=t_cbm(causal, None, None, 50, 50, device="cpu"), return_lse=True)
        out, lse = flex_attention(*(tracenn.tensor(x).to(getattr(tracenn, dtype)) for x in arrays),
                                  block_mask=create_block_mask(causal, None, None, 50, 50, device="cpu"),
                                  return_lse=True)
    assert out.dtype == getattr(tracenn, dtype) and str(lse.dtype) == str(t_lse.dtype).replace("torch", "tracenn")
    tol = {"bfloat16": 1e-2, "float16": 1e-3, "float64": 1e-12}[dtype]  # an ulp of the output's dtype
    assert_close(out.float(), t_out.float().numpy(), rtol=0, atol=tol)
    assert_close(lse, t_lse.numpy(), rtol=1e-6, atol=1e-6)
