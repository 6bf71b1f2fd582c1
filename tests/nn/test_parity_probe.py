"""Regression tests for differences from torch.nn found by probing tracenn against PyTorch.

Each bug has a test that needs no torch (NumPy references or known values) and, where useful, one
that compares with torch (skipped without it), plus compiled-vs-eager checks for layers.
"""
import copy
import pickle
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from helpers import to_np


def _np_normalize(a):
    return a / max(np.linalg.norm(a), 1e-12)


# ---- nn.utils.spectral_norm: one power iteration per training-mode forward -----------------------

def _spectral_linear(seed=0):
    tracenn.manual_seed(seed)
    return nn.utils.spectral_norm(nn.Linear(4, 5))


def _numpy_spectral_step(w, u, v):
    v = _np_normalize(w.T @ u)
    u = _np_normalize(w @ v)
    return u, v, w / (u @ w @ v)


def test_spectral_norm_linear_iterates_once_per_forward():
    # Linear.forward read self.weight twice (shape check, then F.linear): two power iterations a call
    m = _spectral_linear()
    w = to_np(m.weight_orig).astype(np.float64)
    u, v = to_np(m.weight_u).astype(np.float64), to_np(m.weight_v).astype(np.float64)
    x = np.random.RandomState(0).randn(3, 4).astype(np.float32)
    for _ in range(3):
        u, v, wn = _numpy_spectral_step(w, u, v)
        out = m(tracenn.tensor(x))
        np.testing.assert_allclose(to_np(out), x @ wn.T + to_np(m.bias), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(to_np(m.weight_u), u, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_np(m.weight_v), v, rtol=1e-5, atol=1e-6)


def test_spectral_norm_reading_weight_does_not_iterate():
    m = _spectral_linear()
    m(tracenn.zeros(2, 4))
    u = to_np(m.weight_u).copy()
    w1 = to_np(m.weight)
    w2 = to_np(m.weight)  # training mode: reads between forwards leave the buffers alone, as torch
    np.testing.assert_array_equal(to_np(m.weight_u), u)
    np.testing.assert_array_equal(w1, w2)


def test_spectral_norm_gradient_and_second_forward():
    # the read path saves u and v for backward; the next forward's in-place iteration must not break it
    m = _spectral_linear()
    x = tracenn.randn(2, 4)
    y1 = m(x).sum()
    m(x)
    y1.backward()
    assert m.weight_orig.grad is not None and np.isfinite(to_np(m.weight_orig.grad)).all()


def test_spectral_norm_remove_drops_hook_and_copies_work():
    m = _spectral_linear()
    assert len(m._forward_pre_hooks) == 1
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        u = to_np(clone.weight_u).copy()
        clone(tracenn.zeros(1, 4))
        assert not np.array_equal(to_np(clone.weight_u), u)  # the copy's hook iterates the copy's buffers
    m.eval()
    w = to_np(m.weight)
    nn.utils.remove_spectral_norm(m)
    assert type(m) is nn.Linear and len(m._forward_pre_hooks) == 0
    np.testing.assert_allclose(to_np(m.weight), w, rtol=1e-6)
    u_free = m(tracenn.zeros(1, 4))  # no hook left to look for weight_u
    assert tuple(u_free.shape) == (1, 5)


def test_spectral_norm_compiled_matches_eager():
    eager, traced = _spectral_linear(3), _spectral_linear(3)
    compiled = tracenn.compile(traced)
    x = tracenn.randn(2, 4)
    for _ in range(3):
        np.testing.assert_allclose(to_np(compiled(x)), to_np(eager(x)), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_np(traced.weight_u), to_np(eager.weight_u), rtol=1e-5, atol=1e-6)
    eager.zero_grad(), traced.zero_grad()
    eager(x).square().sum().backward()
    compiled(x).square().sum().backward()
    np.testing.assert_allclose(to_np(traced.weight_orig.grad), to_np(eager.weight_orig.grad), rtol=1e-4, atol=1e-5)
    traced.eval(), eager.eval()
    u = to_np(traced.weight_u).copy()
    np.testing.assert_allclose(to_np(compiled(x)), to_np(eager(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(to_np(traced.weight_u), u)


def test_spectral_norm_linear_matches_torch():
    torch = pytest.importorskip("torch")
    m = _spectral_linear()
    t = torch.nn.utils.spectral_norm(torch.nn.Linear(4, 5))
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    x = np.random.RandomState(1).randn(3, 4).astype(np.float32)
    for _ in range(3):
        np.testing.assert_allclose(to_np(m(tracenn.tensor(x))), t(torch.tensor(x)).detach().numpy(),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(to_np(m.weight), t.weight.detach().numpy(), rtol=1e-5, atol=1e-6)
    for k in ("weight_u", "weight_v"):
        np.testing.assert_allclose(to_np(getattr(m, k)), getattr(t, k).numpy(), rtol=1e-5, atol=1e-6)


# ---- nll_loss / cross_entropy 'mean' with every target ignored ------------------------------------

_ALL_IGNORED = [
    ("nll_loss", {}),
    ("nll_loss", {"weight": [1.0, 2.0, 3.0, 4.0]}),
    ("cross_entropy", {"weight": [1.0, 2.0, 3.0, 4.0]}),
    ("cross_entropy", {"label_smoothing": 0.1}),
    ("cross_entropy", {"label_smoothing": 0.2, "weight": [1.0, 2.0, 3.0, 4.0]}),
]


@pytest.mark.parametrize("fn,kw", _ALL_IGNORED)
def test_all_targets_ignored_mean_is_nan_with_zero_gradient(fn, kw):
    kw = {k: tracenn.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    x = tracenn.randn(3, 4, requires_grad=True)
    loss = getattr(F, fn)(x, tracenn.tensor([2, 2, 2]), ignore_index=2, **kw)
    assert np.isnan(to_np(loss))
    loss.backward()
    np.testing.assert_array_equal(to_np(x.grad), np.zeros((3, 4), np.float32))  # was NaN


@pytest.mark.parametrize("fn,kw", _ALL_IGNORED)
def test_some_targets_ignored_mean_unchanged(fn, kw):
    # NumPy reference: sum_i w[t_i] * (-logp[i, t_i]) / sum_i w[t_i] over the kept targets
    w = np.asarray(kw.get("weight", [1.0] * 4), np.float64)
    eps = kw.get("label_smoothing", 0.0)
    x = np.random.RandomState(2).randn(4, 4)
    t = np.array([0, 2, 3, 2])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True)) if fn == "cross_entropy" else x
    keep = t != 2
    nll = -(logp[np.arange(4), t] * w[t])[keep].sum()
    smooth = -(logp * w).sum(1)[keep].sum()
    expected = ((1 - eps) * nll + eps / 4 * smooth) / w[t][keep].sum()
    kw = {k: tracenn.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    got = getattr(F, fn)(tracenn.tensor(x.astype(np.float32)), tracenn.tensor(t), ignore_index=2, **kw)
    np.testing.assert_allclose(to_np(got), expected, rtol=1e-5)


def test_all_targets_ignored_compiled_matches_eager():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.loss = nn.CrossEntropyLoss(weight=tracenn.tensor([1.0, 2.0, 3.0, 4.0]), ignore_index=1,
                                            label_smoothing=0.1)

        def forward(self, x, y):
            return self.loss(self.fc(x), y)

    net = Net()
    x = tracenn.randn(2, 3)
    y = tracenn.tensor([1, 1])
    eager = net(x, y)
    eager.backward()
    g = to_np(net.fc.weight.grad).copy()
    net.zero_grad()
    compiled = tracenn.compile(net)(x, y)
    assert np.isnan(to_np(eager)) and np.isnan(to_np(compiled))
    compiled.backward()
    np.testing.assert_array_equal(to_np(net.fc.weight.grad), g)
    np.testing.assert_array_equal(g, np.zeros_like(g))
    y2 = tracenn.tensor([0, 1])  # one target kept: the same program, finite values
    np.testing.assert_allclose(to_np(tracenn.compile(net)(x, y2)), to_np(net(x, y2)), rtol=1e-6)


@pytest.mark.parametrize("fn,kw", _ALL_IGNORED)
def test_all_targets_ignored_matches_torch(fn, kw):
    torch = pytest.importorskip("torch")
    x = np.random.RandomState(3).randn(3, 4).astype(np.float32)
    xm = tracenn.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    km = {k: tracenn.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    kt = {k: torch.tensor(v) if isinstance(v, list) else v for k, v in kw.items()}
    lm = getattr(F, fn)(xm, tracenn.tensor([2, 2, 2]), ignore_index=2, **km)
    lt = getattr(torch.nn.functional, fn)(xt, torch.tensor([2, 2, 2]), ignore_index=2, **kt)
    np.testing.assert_array_equal(to_np(lm), lt.detach().numpy())
    lm.backward(), lt.backward()
    np.testing.assert_array_equal(to_np(xm.grad), xt.grad.numpy())


# ---- error messages --------------------------------------------------------------------------------

@pytest.mark.parametrize("fn", ["nll_loss", "cross_entropy"])
def test_class_index_losses_reject_integer_scores(fn):
    with pytest.raises(RuntimeError, match=f"{fn}: expected floating point scores, but got input of dtype Long"):
        getattr(F, fn)(tracenn.zeros(3, 4, dtype=tracenn.long), tracenn.tensor([0, 1, 2]))


@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
def test_elementwise_losses_reject_two_integer_tensors(fn):
    # was: "mean(): could not infer output dtype", from deep inside the reduction
    with pytest.raises(RuntimeError, match=f"{fn}: expected floating point input or target, but both are Long/Long"):
        getattr(F, fn)(tracenn.tensor([1, 2]), tracenn.tensor([1, 3]))
    # one floating side is enough, as torch: (0-1)^2, (0-3)^2 -> mean 5
    if fn == "mse_loss":
        np.testing.assert_allclose(to_np(F.mse_loss(tracenn.zeros(2), tracenn.tensor([1, 3]))), 5.0)


def test_sdpa_head_mismatch_says_enable_gqa():
    q, kv = tracenn.zeros(2, 4, 3, 6), tracenn.zeros(2, 2, 5, 6)
    with pytest.raises(RuntimeError, match=r"dim -3 has sizes \[2, 4\]\. .*need enable_gqa=True"):
        F.scaled_dot_product_attention(q, kv, kv)
    with pytest.raises(RuntimeError, match="must be a multiple of the key's and value's"):
        F.scaled_dot_product_attention(q, tracenn.zeros(2, 3, 5, 6), tracenn.zeros(2, 3, 5, 6), enable_gqa=True)
    with pytest.raises(RuntimeError, match="key and value must have the same sequence length"):
        F.scaled_dot_product_attention(q, tracenn.zeros(2, 4, 5, 6), tracenn.zeros(2, 4, 4, 6))
    with pytest.raises(RuntimeError, match=r"dim -4 has sizes \[2, 3\]"):
        F.scaled_dot_product_attention(q, tracenn.zeros(3, 4, 5, 6), tracenn.zeros(3, 4, 5, 6))
    # broadcasting leading dims still works
    out = F.scaled_dot_product_attention(q, tracenn.zeros(1, 4, 5, 6), tracenn.zeros(4, 5, 7))
    assert tuple(out.shape) == (2, 4, 3, 7)
    assert tuple(F.scaled_dot_product_attention(q, kv, kv, enable_gqa=True).shape) == (2, 4, 3, 6)


def test_sdpa_head_mismatch_raises_like_torch():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError):
        torch.nn.functional.scaled_dot_product_attention(torch.zeros(2, 4, 3, 6), torch.zeros(2, 2, 5, 6),
                                                         torch.zeros(2, 2, 5, 6))


def test_old_weight_norm_linear_reads_once_and_compiles():
    # Linear.forward reads the computed weight once; values and gradients agree compiled and eager
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        m = nn.utils.weight_norm(nn.Linear(4, 3))
    x = tracenn.randn(5, 4)
    eager = m(x)
    eager.square().sum().backward()
    gg, gv = to_np(m.weight_g.grad).copy(), to_np(m.weight_v.grad).copy()
    m.zero_grad()
    compiled = tracenn.compile(m)(x)
    np.testing.assert_allclose(to_np(compiled), to_np(eager), rtol=1e-5, atol=1e-6)
    compiled.square().sum().backward()
    np.testing.assert_allclose(to_np(m.weight_g.grad), gg, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(to_np(m.weight_v.grad), gv, rtol=1e-4, atol=1e-6)
