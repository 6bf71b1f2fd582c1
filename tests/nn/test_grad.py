"""tracenn.nn.grad: convolution input/weight gradients equal what backward() gives (and torch's)."""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn.nn import grad as G

CASES = [dict(), dict(stride=2, padding=1, dilation=2), dict(groups=2, stride=2, padding=1)]


def _data(nd, kw, size=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4) + (size,) * nd).astype(np.float32)
    w = rng.standard_normal((6, 4 // kw.get("groups", 1)) + (3,) * nd).astype(np.float32)
    return rng, x, w


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", CASES)
def test_matches_backward(nd, kw):
    # stride 2 over 10 leaves the last input row unused: its gradient is zero
    rng, x, w = _data(nd, kw, size=10)
    conv = getattr(F, f"conv{nd}d")
    xt, wt = tracenn.tensor(x, requires_grad=True), tracenn.tensor(w, requires_grad=True)
    out = conv(xt, wt, None, **kw)
    g = tracenn.tensor(rng.standard_normal(tuple(out.shape)).astype(np.float32))
    out.backward(g)
    gi = getattr(G, f"conv{nd}d_input")(x.shape, tracenn.tensor(w), g, **kw)
    gw = getattr(G, f"conv{nd}d_weight")(tracenn.tensor(x), w.shape, g, **kw)
    assert gi.shape == x.shape and gw.shape == w.shape
    np.testing.assert_allclose(gi.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw.numpy(), wt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_known_values():
    # conv1d with a [1, 1] kernel: each input element feeds one or two outputs
    assert G.conv1d_input((1, 1, 3), tracenn.ones(1, 1, 2), tracenn.ones(1, 1, 2)).tolist() == [[[1.0, 2.0, 1.0]]]
    x = tracenn.tensor([[[1.0, 2.0, 3.0]]])
    assert G.conv1d_weight(x, (1, 1, 2), tracenn.ones(1, 1, 2)).tolist() == [[[3.0, 5.0]]]
    assert G.conv1d_weight(x, (1, 1, 2), tracenn.tensor([[[1.0, 0.0]]])).tolist() == [[[1.0, 2.0]]]


def test_functional_alias_and_errors():
    assert F.grad is G and tracenn.nn.grad is G
    with pytest.raises(ValueError, match="weight_size must have 4 entries"):
        G.conv2d_weight(tracenn.ones(1, 1, 3, 3), (1, 1, 2), tracenn.ones(1, 1, 2, 2))


def test_compiles():
    w = tracenn.ones(2, 1, 3, 3)

    def f(g):
        return G.conv2d_input((1, 1, 5, 5), w, g, padding=1)
    g = tracenn.ones(1, 2, 5, 5)
    np.testing.assert_allclose(tracenn.compile(f)(g).numpy(), f(g).numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", CASES)
def test_matches_torch(nd, kw):
    torch = pytest.importorskip("torch")
    rng, x, w = _data(nd, kw, seed=1)
    out = getattr(torch.nn.functional, f"conv{nd}d")(torch.tensor(x), torch.tensor(w), None, **kw)
    g = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    want_i = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, torch.tensor(w), torch.tensor(g), **kw)
    want_w = getattr(torch.nn.grad, f"conv{nd}d_weight")(torch.tensor(x), w.shape, torch.tensor(g), **kw)
    got_i = getattr(G, f"conv{nd}d_input")(x.shape, tracenn.tensor(w), tracenn.tensor(g), **kw)
    got_w = getattr(G, f"conv{nd}d_weight")(tracenn.tensor(x), w.shape, tracenn.tensor(g), **kw)
    np.testing.assert_allclose(got_i.numpy(), want_i.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got_w.numpy(), want_w.numpy(), rtol=1e-4, atol=1e-4)
