"""F.linear_cross_entropy and nn.LinearCrossEntropyLoss: equal to linear + cross_entropy, to
PyTorch's, eager and compiled; torch's errors and repr."""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from helpers import to_np

RNG = np.random.default_rng(0)
X = RNG.standard_normal((5, 4)).astype(np.float32)
W = RNG.standard_normal((3, 4)).astype(np.float32)
B = RNG.standard_normal(3).astype(np.float32)
Y = np.array([0, 2, 1, 2, -100])
W3 = RNG.standard_normal((3, 2, 4)).astype(np.float32)
Y3 = np.array([[0, 1], [2, 2], [1, 0], [0, 0], [2, 1]])
P = np.abs(RNG.standard_normal((5, 3))).astype(np.float32)
P = P / P.sum(1, keepdims=True)

CASES = {
    "plain": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(x, w, y), [X, W, B, Y]),
    "bias_smoothing_sum": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(
        x, w, y, linear_bias=b, label_smoothing=0.1, reduction="sum"), [X, W, B, Y]),
    "class_weight_none": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(
        x, w, y, weight=b.abs(), reduction="none"), [X, W, B, Y]),
    "k_dim": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(x, w, y), [X, W3, B, Y3]),
    "probabilities": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(x, w, y), [X, W, B, P]),
    "unbatched": (lambda T, x, w, b, y: T.nn.functional.linear_cross_entropy(x[0], w, y[0]), [X, W, B, Y]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_equals_linear_then_cross_entropy_and_torch(name):
    fn, inputs = CASES[name]
    ts = [tracenn.tensor(a, requires_grad=a.dtype == np.float32 and i < 2) for i, a in enumerate(inputs)]
    out = fn(tracenn, *ts)
    x, w, b, y = ts
    if name == "plain":  # the reference form
        np.testing.assert_allclose(to_np(out), to_np(F.cross_entropy(F.linear(x, w), y)), rtol=1e-6)
    compiled = tracenn.compile(lambda *a: fn(tracenn, *a))
    np.testing.assert_allclose(to_np(compiled(*ts)), to_np(out), rtol=1e-5, atol=1e-6)
    torch = pytest.importorskip("torch")
    tts = [torch.tensor(a, requires_grad=a.dtype == np.float32 and i < 2) for i, a in enumerate(inputs)]
    tout = fn(torch, *tts)
    np.testing.assert_allclose(to_np(out), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    for t, tt in zip(ts[:2], tts[:2]):
        np.testing.assert_allclose(to_np(t.grad), tt.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_module_matches_torch():
    torch = pytest.importorskip("torch")
    m = nn.LinearCrossEntropyLoss(4, 3, out_features=(2,), bias=True, label_smoothing=0.05)
    t = torch.nn.LinearCrossEntropyLoss(4, 3, out_features=(2,), bias=True, label_smoothing=0.05)
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    assert repr(m) == repr(t) and list(m.state_dict()) == list(t.state_dict())
    np.testing.assert_allclose(to_np(m(tracenn.tensor(X), tracenn.tensor(Y3))),
                               t(torch.tensor(X), torch.tensor(Y3)).detach().numpy(), rtol=1e-5)
    assert nn.LinearCrossEntropyLoss(4, 3, options=nn.LinearCrossEntropyOptions(batch_chunk_size=2)).options.batch_chunk_size == 2


def test_errors():
    x, w = tracenn.tensor(X), tracenn.tensor(W)
    with pytest.raises(RuntimeError, match="expected input with dimensionality 1 or 2, got 3"):
        F.linear_cross_entropy(x.unsqueeze(0), w, tracenn.tensor(Y))
    with pytest.raises(RuntimeError, match="expected equal input and linear_weight last dimensions"):
        F.linear_cross_entropy(x[:, :3], w, tracenn.tensor(Y))
    with pytest.raises(RuntimeError, match=r"expected linear_bias shape \(3,\), got \(2,\)"):
        F.linear_cross_entropy(x, w, tracenn.tensor(Y), linear_bias=tracenn.zeros(2))
    with pytest.raises(RuntimeError, match="ignore_index cannot be specified when target contains probabilities"):
        F.linear_cross_entropy(x, w, tracenn.tensor(P), ignore_index=0)
    with pytest.raises(RuntimeError, match="requires batched input"):
        F.linear_cross_entropy(x[0], tracenn.tensor(W3), tracenn.tensor(Y3[0]))
    with pytest.raises(RuntimeError, match=r"expected weight shape to be \(3,\), got \(2,\)"):
        nn.LinearCrossEntropyLoss(4, 3, weight=tracenn.ones(2))
