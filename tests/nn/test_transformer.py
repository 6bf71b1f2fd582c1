"""Attention and Transformers: F.scaled_dot_product_attention, MultiheadAttention,
TransformerEncoder/Decoder(Layer), Transformer — NumPy references on tiny examples, masks, reprs,
errors, and parity with torch (outputs, attention weights, gradients) when it is installed."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

# The parity tests pass a boolean key_padding_mask with a float attn_mask, which torch (and tracenn, as
# torch does) warns about; torch's nested-tensor path warns that it is a prototype.
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning"),
              pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")]

# Shared sizes (so compiled kernels are reused): model 8, 2 heads, feed-forward 16, sequences 5 (SDPA's
# queries: 4), batch 2. Target and source have one length, so decoder and encoder share kernels.
E, HEADS, FF, S, L, N = 8, 2, 16, 5, 4, 2
RNG = np.random.default_rng(0)
SRC = RNG.standard_normal((S, N, E)).astype(np.float32)
TGT = RNG.standard_normal((S, N, E)).astype(np.float32)
KPM = np.zeros((N, S), bool)
KPM[1, 3:] = True  # the second sequence has 2 padded positions at the end


def near(actual, expected, rtol=1e-5, atol=1e-6):
    assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=False)


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def state_from_torch(tm):
    # .copy(): tracenn.tensor(ndarray) may alias the array (a core bug, see the report).
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


# ---- scaled_dot_product_attention ------------------------------------------------------------------

Q = RNG.standard_normal((N, HEADS, L, 4)).astype(np.float32)
K = RNG.standard_normal((N, HEADS, S, 4)).astype(np.float32)
V = RNG.standard_normal((N, HEADS, S, 3)).astype(np.float32)


def np_sdpa(q, k, v, bias=0.0, scale=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    return np_softmax(q @ k.swapaxes(-1, -2) * scale + bias) @ v


def test_sdpa_tiny_example_by_hand():
    q = tracenn.tensor([[1.0, 0.0]])
    k = tracenn.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = tracenn.tensor([[1.0, 2.0], [3.0, 4.0]])
    w = np.exp([1 / np.sqrt(2), 0])
    w /= w.sum()
    near(F.scaled_dot_product_attention(q, k, v), [w @ [[1, 2], [3, 4]]])


def test_sdpa_matches_numpy_with_masks_and_scale():
    q, k, v = tracenn.tensor(Q), tracenn.tensor(K), tracenn.tensor(V)
    near(F.scaled_dot_product_attention(q, k, v), np_sdpa(Q, K, V), atol=1e-5)
    near(F.scaled_dot_product_attention(q, k, v, scale=0.3), np_sdpa(Q, K, V, scale=0.3), atol=1e-5)
    causal = np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)  # top-left aligned
    near(F.scaled_dot_product_attention(q, k, v, is_causal=True), np_sdpa(Q, K, V, causal), atol=1e-5)
    allowed = RNG.random((L, S)) > 0.3
    allowed[:, 0] = True
    near(F.scaled_dot_product_attention(q, k, v, attn_mask=tracenn.tensor(allowed)),
         np_sdpa(Q, K, V, np.where(allowed, 0.0, -np.inf)), atol=1e-5)  # bool: True = may attend
    bias = RNG.standard_normal((N, 1, L, S)).astype(np.float32)
    near(F.scaled_dot_product_attention(q, k, v, attn_mask=tracenn.tensor(bias)), np_sdpa(Q, K, V, bias), atol=1e-5)


def test_sdpa_fully_masked_rows_give_zeros_and_finite_gradients():
    q = tracenn.tensor(Q, requires_grad=True)
    allowed = np.ones((L, S), bool)
    allowed[1] = False
    out = F.scaled_dot_product_attention(q, tracenn.tensor(K), tracenn.tensor(V), attn_mask=tracenn.tensor(allowed))
    near(out[:, :, 1], np.zeros((N, HEADS, 3)))
    out.sum().backward()
    g = to_np(q.grad)
    assert np.isfinite(g).all() and np.abs(g[:, :, 1]).max() == 0


def test_sdpa_dropout_is_applied_whenever_p_is_positive():
    q, k, v = tracenn.tensor(Q), tracenn.tensor(K), tracenn.tensor(V)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)  # no training flag: p decides
    assert to_np(dropped).tolist() == np.zeros((N, HEADS, L, 3)).tolist()


@pytest.mark.slow
def test_sdpa_grouped_query_attention():
    q = tracenn.tensor(np.concatenate([Q, Q], 1))  # 4 query heads over 2 key/value heads
    out = F.scaled_dot_product_attention(q, tracenn.tensor(K), tracenn.tensor(V), enable_gqa=True)
    near(out, np_sdpa(np.concatenate([Q, Q], 1), np.repeat(K, 2, 1), np.repeat(V, 2, 1)), atol=1e-5)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_sdpa_in_half_precision_rounds_once_as_torch_cpu(dtype):
    # torch's CPU kernels keep scores and softmax in float32 and round the output once; rounding
    # the intermediates to the half type doubled the error (a Llama block in bf16: 3x torch's)
    dt = getattr(tracenn, dtype)
    rng = np.random.default_rng(0)
    q, k, v = (tracenn.tensor(rng.normal(size=(2, 3, 16, 32)).astype(np.float32)).to(dt) for _ in range(3))
    mask = tracenn.tensor(rng.normal(size=(16, 16)).astype(np.float32)).to(dt)
    for kw in ({"is_causal": True}, {"attn_mask": mask}):
        want = F.scaled_dot_product_attention(q.float(), k.float(), v.float(),
                                              **{n: (m.float() if n == "attn_mask" else m) for n, m in kw.items()})
        got = F.scaled_dot_product_attention(q, k, v, **kw)
        assert got.dtype == dt
        np.testing.assert_array_equal(to_np(got.float()), to_np(want.to(dt).float()))
        compiled = tracenn.compile(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, **kw))(q, k, v)
        np.testing.assert_allclose(to_np(compiled.float()), to_np(got.float()), atol=1e-2)
    qg = q.detach().requires_grad_()
    F.scaled_dot_product_attention(qg, k, v, is_causal=True).float().sum().backward()
    assert qg.grad.dtype == dt and bool(tracenn.isfinite(qg.grad.float()).all())


def test_sdpa_errors(lib):
    with pytest.raises(RuntimeError, match="Expected query, key, and value to all be  at least 2 dimensional"):
        lib.nn.functional.scaled_dot_product_attention(lib.ones(4), lib.ones(4), lib.ones(4))


# ---- MultiheadAttention --------------------------------------------------------------------------------

def test_mha_self_attention_by_hand():
    m = nn.MultiheadAttention(E, HEADS)
    p = {k: to_np(v).astype(np.float64) for k, v in m.named_parameters()}
    x = tracenn.tensor(SRC)
    out, weights = m(x, x, x, average_attn_weights=False)
    xs = SRC[:, 0].astype(np.float64)  # the first sequence
    q, k, v = np.split(xs @ p["in_proj_weight"].T + p["in_proj_bias"], 3, axis=-1)
    heads, ws = [], []
    for h in range(HEADS):
        sl = slice(h * 4, (h + 1) * 4)
        w = np_softmax(q[:, sl] @ k[:, sl].T / 2.0)
        ws.append(w)
        heads.append(w @ v[:, sl])
    expected = np.concatenate(heads, -1) @ p["out_proj.weight"].T + p["out_proj.bias"]
    near(out[:, 0], expected, atol=1e-5)
    near(weights[0], np.stack(ws), atol=1e-6)


def test_mha_parameters_and_repr(lib):
    m = lib.nn.MultiheadAttention(E, HEADS)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [
        ("in_proj_weight", (24, 8)), ("in_proj_bias", (24,)), ("out_proj.weight", (8, 8)), ("out_proj.bias", (8,))]
    assert m.in_proj_bias.abs().sum().item() == 0 and m.out_proj.bias.abs().sum().item() == 0
    sep = lib.nn.MultiheadAttention(E, HEADS, kdim=3, vdim=5, add_bias_kv=True, bias=False)
    assert [(n, tuple(p.shape)) for n, p in sep.named_parameters()] == [
        ("q_proj_weight", (8, 8)), ("k_proj_weight", (8, 3)), ("v_proj_weight", (8, 5)), ("bias_k", (1, 1, 8)),
        ("bias_v", (1, 1, 8)), ("out_proj.weight", (8, 8))]
    assert sep.in_proj_weight is None and sep.in_proj_bias is None
    assert repr(m).replace("torch", "tracenn") == ("MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear("
                                                   "in_features=8, out_features=8, bias=True)\n)")


def test_mha_masks_batch_first_and_unbatched():
    m = nn.MultiheadAttention(E, HEADS, batch_first=True)
    x = tracenn.tensor(SRC.transpose(1, 0, 2))
    out, w = m(x, x, x, key_padding_mask=tracenn.tensor(KPM))
    assert out.shape == (N, S, E) and w.shape == (N, S, S)
    near(w[1, :, 3:], np.zeros((S, 2)))  # padded keys get no weight
    bool_mask = np.triu(np.ones((S, S), bool), 1)  # MHA: True = blocked
    float_mask = np.where(bool_mask, -np.inf, 0.0).astype(np.float32)
    out_b, w_b = m(x, x, x, attn_mask=tracenn.tensor(bool_mask))
    out_f, w_f = m(x, x, x, attn_mask=tracenn.tensor(float_mask))
    near(out_b, to_np(out_f))
    near(w_b, np.tril(to_np(w_b)))
    out_nw, none = m(x, x, x, attn_mask=tracenn.tensor(bool_mask), need_weights=False)
    assert none is None
    near(out_nw, to_np(out_b), atol=1e-6)
    single, w1 = m(x[0], x[0], x[0])  # unbatched (S, E)
    near(single, to_np(m(x, x, x)[0])[0], atol=1e-6)
    assert w1.shape == (S, S)


def test_mha_errors(lib):
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        lib.nn.MultiheadAttention(8, 3)
    with pytest.raises(ValueError, match="embed_dim and num_heads must be greater than 0"):
        lib.nn.MultiheadAttention(0, 1)
    m = lib.nn.MultiheadAttention(E, HEADS)
    x = lib.zeros(S, N, E)
    with pytest.raises(RuntimeError, match=r"The shape of the 2D attn_mask is (torch|tracenn).Size\(\[4, 4\]\), but "
                                           r"should be \(5, 5\)."):
        m(x, x, x, attn_mask=lib.zeros(4, 4))
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        m(x, x, x, is_causal=True)
    with pytest.raises(AssertionError, match="For batched \\(3-D\\) `query`, expected `key` and `value` to be 3-D"):
        m(x, x[0], x[0])
    with pytest.raises(AssertionError, match="only bool and floating types of key_padding_mask are supported"):
        m(x, x, x, key_padding_mask=lib.zeros(N, S, dtype=lib.long))


@pytest.mark.parametrize("kw", [dict(), dict(kdim=3, vdim=5, add_bias_kv=True),
                                pytest.param(dict(add_zero_attn=True, bias=False), marks=pytest.mark.slow),
                                pytest.param(dict(batch_first=True), marks=pytest.mark.slow)])
def test_mha_parity_with_torch(torch, kw):
    tm, m = torch.nn.MultiheadAttention(E, HEADS, **kw), nn.MultiheadAttention(E, HEADS, **kw)
    m.load_state_dict(state_from_torch(tm))
    q = SRC
    k = RNG.standard_normal((S, N, kw.get("kdim", E))).astype(np.float32)
    v = RNG.standard_normal((S, N, kw.get("vdim", E))).astype(np.float32)
    if kw.get("batch_first"):
        q, k, v = (a.transpose(1, 0, 2).copy() for a in (q, k, v))
    am = RNG.standard_normal((S, S)).astype(np.float32)
    for need_weights, average in [(True, False), (False, True)]:
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        nq, nk, nv = (tracenn.tensor(a, requires_grad=True) for a in (q, k, v))
        tout, tw = tm(tq, tk, tv, key_padding_mask=torch.tensor(KPM), attn_mask=torch.tensor(am),
                      need_weights=need_weights, average_attn_weights=average)
        out, w = m(nq, nk, nv, key_padding_mask=tracenn.tensor(KPM), attn_mask=tracenn.tensor(am),
                   need_weights=need_weights, average_attn_weights=average)
        assert_close(out, tout, atol=1e-5)
        if need_weights:
            assert_close(w, tw, atol=1e-6)
        tout.pow(2).sum().backward()
        out.pow(2).sum().backward()
        for a, b in ((nq, tq), (nk, tk), (nv, tv)):
            assert_close(a.grad, b.grad, atol=1e-5)
    for (tn, tp), (n, p) in zip(tm.named_parameters(), m.named_parameters()):
        assert tn == n
        assert_close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)


# ---- Transformer layers -----------------------------------------------------------------------------------

def test_square_subsequent_mask(lib):
    mask = lib.nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.dtype == lib.float32
    assert mask.tolist() == [[0.0, -np.inf, -np.inf], [0.0, 0.0, -np.inf], [0.0, 0.0, 0.0]]


def test_encoder_layer_post_and_pre_norm_by_composition():
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, norm_first=norm_first)
        x = tracenn.tensor(SRC)
        sa = lambda y: layer.self_attn(y, y, y, need_weights=False)[0]  # noqa: E731
        ff = lambda y: layer.linear2(F.relu(layer.linear1(y)))  # noqa: E731
        if norm_first:
            y = x + sa(layer.norm1(x))
            expected = y + ff(layer.norm2(y))
        else:
            y = layer.norm1(x + sa(x))
            expected = layer.norm2(y + ff(y))
        near(layer(x), to_np(expected), atol=1e-6)


def test_layer_structure_and_reprs(lib):
    layer = lib.nn.TransformerEncoderLayer(E, HEADS, FF, activation="gelu")
    assert [n for n, _ in layer.named_children()] == ["self_attn", "linear1", "dropout", "linear2", "norm1", "norm2",
                                                      "dropout1", "dropout2"]
    assert layer.activation is lib.nn.functional.gelu
    dec = lib.nn.TransformerDecoderLayer(E, HEADS, FF, activation=lib.nn.GELU())
    assert [n for n, _ in dec.named_children()] == ["self_attn", "multihead_attn", "linear1", "dropout", "linear2",
                                                    "norm1", "norm2", "norm3", "dropout1", "dropout2", "dropout3",
                                                    "activation"]
    assert repr(layer).replace("torch", "tracenn") == """TransformerEncoderLayer(
  (self_attn): MultiheadAttention(
    (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)
  )
  (linear1): Linear(in_features=8, out_features=16, bias=True)
  (dropout): Dropout(p=0.1, inplace=False)
  (linear2): Linear(in_features=16, out_features=8, bias=True)
  (norm1): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)
  (norm2): LayerNorm((8,), eps=1e-05, elementwise_affine=True, bias=True)
  (dropout1): Dropout(p=0.1, inplace=False)
  (dropout2): Dropout(p=0.1, inplace=False)
)"""
    with pytest.warns(UserWarning, match="enable_nested_tensor is True, but self.use_nested_tensor is False because "
                                         "encoder_layer.self_attn.batch_first was not True"):
        enc = lib.nn.TransformerEncoder(layer, 2)
    assert [n for n, _ in enc.named_parameters()][:2] == ["layers.0.self_attn.in_proj_weight",
                                                          "layers.0.self_attn.in_proj_bias"]
    assert enc.layers[0].linear1.weight is not enc.layers[1].linear1.weight  # deep copies


def test_transformer_init_shapes_and_errors(lib):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = lib.nn.Transformer(E, HEADS, 1, 1, FF)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for n, p in model.named_parameters() if n.startswith(("encoder.", "decoder.")))
    assert {n.split(".")[0] for n, _ in model.named_children()} == {"encoder", "decoder"}
    w = model.encoder.layers[0].linear1.weight
    bound = (6 / (E + FF)) ** 0.5  # xavier_uniform_
    assert w.abs().max().item() <= bound
    with pytest.raises(RuntimeError, match="the batch number of src and tgt must be equal"):
        model(lib.zeros(S, N, E), lib.zeros(S, N + 1, E))
    with pytest.raises(RuntimeError, match="the feature number of src and tgt must be equal to d_model"):
        model(lib.zeros(S, N, E + 1), lib.zeros(S, N, E))
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        lib.nn.TransformerEncoderLayer(E, HEADS, activation="tanh")


@pytest.mark.slow
def test_dropout_only_in_training():
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.5)
    x = tracenn.tensor(SRC)
    assert not np.allclose(to_np(layer(x)), to_np(layer(x)))
    layer.eval()
    near(layer(x), to_np(layer(x)))


def _parity(torch, tm, m, args, kwargs=None, train=True, grad=True, backward=True):
    kwargs = kwargs or {}
    m.load_state_dict(state_from_torch(tm))
    tm.train(train)
    m.train(train)
    targs = [torch.tensor(a, requires_grad=grad) for a in args]
    nargs = [tracenn.tensor(a, requires_grad=grad) for a in args]
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    nkw = {k: tracenn.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    if grad:
        tout, out = tm(*targs, **tkw), m(*nargs, **nkw)
    else:
        with torch.no_grad():
            tout = tm(*targs, **tkw)
        with tracenn.no_grad():
            out = m(*nargs, **nkw)
    assert_close(out, tout, atol=1e-5)
    if not (grad and backward):
        return
    tout.pow(2).sum().backward()
    out.pow(2).sum().backward()
    for a, b in zip(nargs, targs):
        assert_close(a.grad, b.grad, atol=1e-5)
    for (tn, tp), (n, p) in zip(tm.named_parameters(), m.named_parameters()):
        assert tn == n
        assert_close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)


CAUSAL = np.triu(np.full((S, S), -np.inf, np.float32), 1)


@pytest.mark.parametrize("kw", [dict(), pytest.param(dict(norm_first=True, activation="gelu"),
                                                    marks=pytest.mark.slow)])
def test_encoder_layer_parity_with_torch(torch, kw):
    tm = torch.nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, **kw)
    m = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, **kw)
    _parity(torch, tm, m, [SRC], dict(src_mask=CAUSAL, src_key_padding_mask=KPM))


@pytest.mark.slow
def test_decoder_layer_parity_with_torch(torch):
    tm = torch.nn.TransformerDecoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
    m = nn.TransformerDecoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
    tgt_mask = np.triu(np.ones((S, S), bool), 1)
    _parity(torch, tm, m, [TGT.transpose(1, 0, 2).copy(), SRC.transpose(1, 0, 2).copy()],
            dict(tgt_mask=tgt_mask, memory_key_padding_mask=KPM), train=False)


def test_transformer_parity_with_torch(torch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tm = torch.nn.Transformer(E, HEADS, 2, 1, FF, dropout=0.0)
        m = nn.Transformer(E, HEADS, 2, 1, FF, dropout=0.0)
    tgt_mask = nn.Transformer.generate_square_subsequent_mask(S).numpy()
    _parity(torch, tm, m, [SRC, TGT], dict(tgt_mask=tgt_mask, src_key_padding_mask=KPM,
                                           memory_key_padding_mask=KPM))


def test_encoder_nested_tensor_path_zeros_padding_like_torch(torch):
    """torch's eval/no-grad fast path returns zeros at padded positions; tracenn matches it."""
    tl = torch.nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
    nl = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True)
    te, ne = torch.nn.TransformerEncoder(tl, 2), nn.TransformerEncoder(nl, 2)
    x = SRC.transpose(1, 0, 2).copy()
    _parity(torch, te, ne, [x], dict(src_key_padding_mask=KPM), train=False, grad=False)
    with tracenn.no_grad():
        out = ne.eval()(tracenn.tensor(x), src_key_padding_mask=tracenn.tensor(KPM))
    assert to_np(out)[1, 3:].tolist() == [[0.0] * E] * 2
    _parity(torch, te, ne, [x], dict(src_key_padding_mask=KPM), train=False, backward=False)  # not with gradients


def test_encoder_compiles_a_mask_made_in_forward():
    """The word_language_model example builds its mask inside forward (``log(tril(ones))``): compiled,
    the mask has no values to detect as causal, so it is applied as given, with the same numbers."""
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0), 2,
                                    enable_nested_tensor=False)
    src = tracenn.tensor(SRC)

    def run(x):
        return encoder(x, tracenn.log(tracenn.tril(tracenn.ones(x.size(0), x.size(0)))))

    assert_close(tracenn.compile(run)(src), run(src), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aligned", [True, False])
def test_encoder_fast_path_padding_decided_inside_a_compiled_call(aligned):
    """Whether the eval fast path zeros padded positions depends on the mask's values (left-aligned
    padding): inside tracenn.compile that choice is made by the program."""
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, batch_first=True), 2).eval()
    src = tracenn.tensor(SRC.transpose(1, 0, 2).copy())
    kpm = np.zeros(src.shape[:2], bool)
    kpm[1, 2:] = True
    if not aligned:
        kpm[0, 1] = True  # padding before a token: no fast path, no zeros
    kpm = tracenn.tensor(kpm)
    with tracenn.no_grad():
        eager = encoder(src, src_key_padding_mask=kpm)
        compiled = tracenn.compile(lambda x, m: encoder(x, src_key_padding_mask=m))(src, kpm)
    assert_close(compiled, eager, rtol=1e-5, atol=1e-6)
    assert (to_np(eager)[1, 2:] == 0).all() == aligned
