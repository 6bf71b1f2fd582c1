"""MixtureSameFamily, RelaxedBernoulli and RelaxedOneHotCategorical: closed forms, sample
statistics and PyTorch."""
import math

import numpy as np
import pytest

import tracenn
import tracenn.distributions as D
from helpers import to_np

T = tracenn.tensor
_LOGITS = np.float32([[0.1, 0.5, -0.2], [0.0, 0.3, 1.0]])
_LOC = np.float32([[-1.0, 0.0, 2.0], [1.0, 0.5, 3.0]])
_SCALE = np.float32([[1.0, 0.5, 2.0], [1.0, 1.5, 0.7]])


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(to_np(a) if not isinstance(a, np.ndarray) else a, b, rtol=tol, atol=tol)


def _mixture(M, t):
    return M.MixtureSameFamily(M.Categorical(logits=t(_LOGITS)), M.Normal(t(_LOC), t(_SCALE)))


def _mixture_vec(M, t):
    return M.MixtureSameFamily(M.Categorical(logits=t(_LOGITS[0])),
                               M.Independent(M.Normal(t(_LOC.T.copy()), t(_SCALE.T.copy())), 1))


def test_mixture_closed_forms():
    mix = _mixture(D, T)
    x = np.float32([0.3, -0.7])
    w = np.exp(_LOGITS) / np.exp(_LOGITS).sum(-1, keepdims=True)
    dens = (w / (_SCALE * math.sqrt(2 * math.pi)) * np.exp(-0.5 * ((x[:, None] - _LOC) / _SCALE) ** 2)).sum(-1)
    _close(mix.log_prob(T(x)), np.log(dens))
    _close(mix.mean, (w * _LOC).sum(-1))
    _close(mix.variance, (w * (_SCALE ** 2 + _LOC ** 2)).sum(-1) - (w * _LOC).sum(-1) ** 2, tol=1e-4)
    cdf = (w * 0.5 * (1 + np.vectorize(math.erf)((x[:, None] - _LOC) / (_SCALE * math.sqrt(2))))).sum(-1)
    _close(mix.cdf(T(x)), cdf)
    assert mix.batch_shape == (2,) and mix.event_shape == () and not mix.has_rsample
    assert mix.sample((5,)).shape == (5, 2) and mix.expand((4, 2)).sample().shape == (4, 2)
    vec = _mixture_vec(D, T)
    assert vec.batch_shape == () and vec.event_shape == (2,) and vec.sample((3,)).shape == (3, 2)


def test_mixture_sample_moments():
    mix = _mixture(D, T)
    tracenn.manual_seed(0)
    s = to_np(mix.sample((40000,))).astype(np.float64)
    mean, var = to_np(mix.mean), to_np(mix.variance)
    assert np.all(np.abs(s.mean(0) - mean) < 5 * np.sqrt(var / 40000))
    np.testing.assert_allclose(s.var(0), var, rtol=0.05)


def test_mixture_errors():
    with pytest.raises(ValueError, match="The Mixture distribution needs to be an  instance of"):
        D.MixtureSameFamily(D.Normal(0.0, 1.0), D.Normal(T(_LOC), T(_SCALE)))
    with pytest.raises(ValueError, match=r"`mixture_distribution component` \(2\) does not equal "
                                         r"`component_distribution.batch_shape\[-1\]` \(3\)"):
        D.MixtureSameFamily(D.Categorical(logits=T([0.0, 1.0])), D.Normal(T(_LOC), T(_SCALE)))


@pytest.mark.parametrize("make", [_mixture, _mixture_vec])
def test_mixture_against_torch(make):
    torch = pytest.importorskip("torch")
    ours, theirs = make(D, T), make(torch.distributions, torch.tensor)
    v = theirs.sample()
    _close(ours.log_prob(T(v.numpy())), theirs.log_prob(v).numpy())
    _close(ours.mean, theirs.mean.numpy())
    _close(ours.variance, theirs.variance.numpy(), tol=1e-4)
    assert repr(ours).replace("tracenn.Size", "torch.Size") == repr(theirs)
    logits, loc = T(_LOGITS, requires_grad=True), T(_LOC, requires_grad=True)
    tl, tloc = torch.tensor(_LOGITS, requires_grad=True), torch.tensor(_LOC, requires_grad=True)
    x = np.float32([0.3, -0.7])
    D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(loc, T(_SCALE))).log_prob(T(x)).sum().backward()
    torch.distributions.MixtureSameFamily(torch.distributions.Categorical(logits=tl), torch.distributions.Normal(
        tloc, torch.tensor(_SCALE))).log_prob(torch.tensor(x)).sum().backward()
    _close(logits.grad, tl.grad.numpy())
    _close(loc.grad, tloc.grad.numpy())


def test_relaxed_bernoulli():
    t, p = T(0.5), T([0.2, 0.7])
    rb = D.RelaxedBernoulli(t, probs=p)
    assert rb.has_rsample and rb.batch_shape == (2,) and rb.sample((3,)).shape == (3, 2)
    # density of sigmoid(L) with L = (logit(u) + logit(p)) / t: the logistic density, rescaled
    y = np.float32([0.3, 0.9])
    logit_y, logit_p, temp = np.log(y / (1 - y)), np.log(np.float32([0.2, 0.7]) / np.float32([0.8, 0.3])), 0.5
    z = temp * logit_y - logit_p
    expected = np.log(temp) - z - 2 * np.log1p(np.exp(-z)) - np.log(y * (1 - y))
    _close(rb.log_prob(T(y)), expected, tol=1e-4)
    tracenn.manual_seed(0)
    s = to_np(D.RelaxedBernoulli(T(0.01), probs=T(0.3)).sample((20000,)))
    assert abs((s > 0.5).mean() - 0.3) < 5 * math.sqrt(0.21 / 20000)  # P(sample > 1/2) = probs
    probs = T([0.2, 0.7], requires_grad=True)
    D.RelaxedBernoulli(t, probs=probs).rsample((10,)).sum().backward()
    assert np.all(np.isfinite(to_np(probs.grad)))


def test_relaxed_one_hot_categorical():
    logits = T([[0.2, 0.7, -0.3]], requires_grad=True)
    d = D.RelaxedOneHotCategorical(T(0.7), logits=logits)
    assert d.batch_shape == (1,) and d.event_shape == (3,) and d.has_rsample
    tracenn.manual_seed(0)
    s = d.rsample((20000,))
    _close(s.sum(-1), np.ones((20000, 1)), tol=1e-5)
    s.sum(0)[0, 0].backward()
    assert np.all(np.isfinite(to_np(logits.grad)))
    p = np.exp([0.2, 0.7, -0.3]) / np.exp([0.2, 0.7, -0.3]).sum()
    arg = to_np(s.argmax(-1)).ravel()  # the argmax of a Gumbel-softmax draw is Categorical(probs)
    assert np.all(np.abs(np.bincount(arg, minlength=3) / 20000 - p) < 5 * np.sqrt(p * (1 - p) / 20000))
    # K = 2 is the binary Concrete density of its first coordinate, with the logits' difference
    two = D.RelaxedOneHotCategorical(T(0.5), logits=T([0.4, -0.1]))
    one = D.RelaxedBernoulli(T(0.5), logits=T(0.5))
    y = 0.3
    _close(two.log_prob(T([y, 1 - y])), to_np(one.log_prob(T(y))), tol=1e-4)


def test_relaxed_against_torch():
    torch = pytest.importorskip("torch")
    td = torch.distributions
    for ours, theirs, v in [
        (D.RelaxedBernoulli(T(0.5), logits=T([0.2, -0.7])), td.RelaxedBernoulli(torch.tensor(0.5), logits=torch.tensor([0.2, -0.7])),
         [0.3, 0.9]),
        (D.RelaxedOneHotCategorical(T(0.7), probs=T([[0.2, 0.5, 0.3]])),
         td.RelaxedOneHotCategorical(torch.tensor(0.7), probs=torch.tensor([[0.2, 0.5, 0.3]])), [[0.2, 0.5, 0.3]]),
    ]:
        v = np.float32(v)
        _close(ours.log_prob(T(v)), theirs.log_prob(torch.tensor(v)).numpy(), tol=1e-4)
        assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)
        assert repr(ours) == repr(theirs) and repr(ours.support) == repr(theirs.support)


def test_mixture_log_likelihood_compiled_equals_eager():
    def nll(logits, loc, scale, x):
        return -D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(loc, scale)).log_prob(x).sum()

    args = (T(_LOGITS), T(_LOC), T(_SCALE), T([0.3, -0.7]))
    compiled = tracenn.compile(nll)
    _close(compiled(*args), to_np(nll(*args)))
