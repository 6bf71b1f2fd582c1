"""AdaptiveLogSoftmaxWithLoss: structure and state_dict keys, output/loss/gradients, log_prob and
predict against torch and a NumPy reference; eager and compiled paths agree; torch's errors."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close, to_np

X = np.random.default_rng(0).standard_normal((7, 8)).astype(np.float32)
T = np.array([0, 3, 5, 9, 7, 1, 8])


def _pair(torch, **kw):
    kw = {"in_features": 8, "n_classes": 10, "cutoffs": [4, 8], "div_value": 2.0, **kw}
    m, tm = nn.AdaptiveLogSoftmaxWithLoss(**kw), torch.nn.AdaptiveLogSoftmaxWithLoss(**kw)
    m.load_state_dict(tm.state_dict())
    return m, tm


def _log_prob_reference(m, x):
    """log p(class) from the module's weights, in numpy: head for the shortlist, head's cluster logit
    plus the cluster's own log-softmax for the rest."""
    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    head = x @ to_np(m.head.weight).T + (to_np(m.head.bias) if m.head.bias is not None else 0)
    hl = log_softmax(head)
    parts = [hl[:, :m.shortlist_size]]
    for i, (a, b) in enumerate(m.tail):
        parts.append(log_softmax(x @ to_np(a.weight).T @ to_np(b.weight).T) + hl[:, m.shortlist_size + i:][:, :1])
    return np.concatenate(parts, 1)


def test_structure_and_state_dict_keys(lib):
    m = lib.nn.AdaptiveLogSoftmaxWithLoss(16, 100, cutoffs=[10, 40], div_value=4.0, head_bias=True)
    assert (m.shortlist_size, m.n_clusters, m.head_size, m.cutoffs) == (10, 2, 12, [10, 40, 100])
    assert [(k, tuple(v.shape)) for k, v in m.state_dict().items()] == [
        ("head.weight", (12, 16)), ("head.bias", (12,)), ("tail.0.0.weight", (4, 16)), ("tail.0.1.weight", (30, 4)),
        ("tail.1.0.weight", (1, 16)), ("tail.1.1.weight", (60, 1))]


def test_numpy_reference_of_output_and_log_prob():
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 8], div_value=2.0, head_bias=True)
    ref = _log_prob_reference(m, X.astype(np.float64))
    assert_close(m.log_prob(tracenn.tensor(X)), ref.astype(np.float32), rtol=1e-5, atol=1e-5)
    out, loss = m(tracenn.tensor(X), tracenn.tensor(T))
    picked = ref[np.arange(len(T)), T]
    assert_close(out, picked.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert_close(loss, np.float32(-picked.mean()), rtol=1e-5, atol=1e-5)
    assert np.allclose(np.exp(to_np(m.log_prob(tracenn.tensor(X)))).sum(1), 1, atol=1e-5)


@pytest.mark.parametrize("head_bias", [False, True])
def test_output_loss_and_gradients_match_torch(torch, head_bias):
    m, tm = _pair(torch, head_bias=head_bias)
    x, tx = tracenn.tensor(X, requires_grad=True), torch.tensor(X, requires_grad=True)
    out, loss = m(x, tracenn.tensor(T))
    tout, tloss = tm(tx, torch.tensor(T))
    assert_close(out, tout, rtol=1e-5, atol=1e-6) and assert_close(loss, tloss, rtol=1e-5, atol=1e-6)
    loss.backward()
    tloss.backward()
    assert_close(x.grad, tx.grad, rtol=1e-4, atol=1e-6)
    for (name, p), tp in zip(m.named_parameters(), tm.parameters()):
        assert_close(p.grad, tp.grad, rtol=1e-4, atol=1e-6)


def test_unbatched_shortlist_only_and_single_cluster_batches_match_torch(torch):
    m, tm = _pair(torch)
    for x, t in [(X[0], np.array(9)), (X[:3], np.array([0, 1, 2])), (X[:2], np.array([5, 6]))]:
        out, loss = m(tracenn.tensor(x), tracenn.tensor(t))
        tout, tloss = tm(torch.tensor(x), torch.tensor(t))
        assert out.shape == tuple(tout.shape)
        assert_close(out, tout, rtol=1e-5, atol=1e-6) and assert_close(loss, tloss, rtol=1e-5, atol=1e-6)
    res = m(tracenn.tensor(X), tracenn.tensor(T))
    assert type(res).__name__ == "_ASMoutput" and res._fields == ("output", "loss")


def test_log_prob_and_predict_match_torch(torch):
    m, tm = _pair(torch, head_bias=True)
    assert_close(m.log_prob(tracenn.tensor(X)), tm.log_prob(torch.tensor(X)), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # push some argmaxes out of the shortlist, then all of them
        tm.head.bias.copy_(torch.tensor([0, 0, 0, 0, 3.0, 0]))
    m.load_state_dict(tm.state_dict())
    for scale in (1.0, 0.01):
        p, tp = m.predict(tracenn.tensor(X * scale)), tm.predict(torch.tensor(X * scale))
        assert p.tolist() == tp.tolist()
    assert (to_np(m.predict(tracenn.tensor(X * 0.01))) >= 4).all()
    with torch.no_grad():
        tm.head.bias.copy_(torch.tensor([9.0, 0, 0, 0, 0, 0]))
    m.load_state_dict(tm.state_dict())
    assert m.predict(tracenn.tensor(X)).tolist() == tm.predict(torch.tensor(X)).tolist() == [0] * 7


def test_compiled_forward_matches_eager():
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 8], div_value=2.0)

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.asm = m

        def forward(self, x, t):
            out, loss = self.asm(x, t)
            return out, loss, self.asm.log_prob(x), self.asm.predict(x)

    w = Wrap()
    x, t = tracenn.tensor(X), tracenn.tensor(T)
    for got, want in zip(tracenn.compile(w)(x, t), w(x, t)):
        assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [{"cutoffs": []}, {"cutoffs": [5, 3]}, {"cutoffs": [0, 5]}, {"cutoffs": [5, 10]},
                                {"cutoffs": [3, 3]}, {"cutoffs": [2.5]}])
def test_cutoff_errors_are_torchs(lib, kw):
    with pytest.raises(ValueError) as e:
        lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, **kw)
    assert str(e.value) == ("cutoffs should be a sequence of length larger than 0" if not kw["cutoffs"] else
                            "cutoffs should be a sequence of unique, positive integers sorted in an increasing order, "
                            "where each value is between 1 and n_classes-1")


@pytest.mark.parametrize("x,t,text", [
    ((7, 8), [0, 1], "Input and target should have the same size in the batch dimension."),
    ((2, 2, 8), [0, 1], "1D target tensor expects 2D input tensors, but found inputs with size "),
    ((2, 8), 1, "0D target tensor expects 1D input tensors, but found inputs with size "),
    ((2, 8), [[0, 1]], "0D or 1D target tensor expected, multi-target not supported"),
    ((3, 8), [0, 10, 2], "Target values should be in [0, 9], but values in range [0, 10] were found. "),
    ((3, 8), [-1, 1, 2], "Target values should be in [0, 9], but values in range [-1, 2] were found. "),
])
def test_forward_errors_are_torchs(lib, message, x, t, text):
    m = lib.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 8], div_value=2.0)
    with pytest.raises(RuntimeError) as e:
        m(lib.ones(*x), lib.tensor(t))
    assert message(e).startswith(text)
