"""KL divergences between different families (_kl_cross.py): against PyTorch, and without it against
Monte-Carlo estimates E_p[log p - log q] (finite pairs) or inf (p's support not inside q's)."""
import math

import numpy as np
import pytest

import tracenn
import tracenn.distributions as D
from tracenn.distributions import kl_divergence
from helpers import to_np

T = tracenn.tensor
_LOC = np.float32([0.3, -0.4])
_SCALE = np.float32([0.8, 1.5])
_POS = np.float32([1.5, 3.0])
_POS2 = np.float32([0.7, 2.0])

_MAKERS = {
    "Normal": lambda M, t: M.Normal(t(_LOC), t(_SCALE)),
    "Laplace": lambda M, t: M.Laplace(t(_LOC), t(_SCALE)),
    "Gumbel": lambda M, t: M.Gumbel(t(_LOC), t(_SCALE)),
    "Exponential": lambda M, t: M.Exponential(t(_POS)),
    "Gamma": lambda M, t: M.Gamma(t(_POS), t(_POS2)),
    "Beta": lambda M, t: M.Beta(t(_POS), t(_POS2)),
    "Uniform": lambda M, t: M.Uniform(t(np.float32([0.1, 0.2])), t(np.float32([0.6, 0.9]))),
    "Bernoulli": lambda M, t: M.Bernoulli(probs=t(np.float32([0.3, 0.6]))),
    "Poisson": lambda M, t: M.Poisson(t(_POS)),
    "Binomial": lambda M, t: M.Binomial(3.0, probs=t(np.float32([0.3, 0.6]))),
}
FINITE = [("Bernoulli", "Poisson"), ("Beta", "Exponential"), ("Beta", "Gamma"), ("Beta", "Normal"),
          ("Exponential", "Gamma"), ("Exponential", "Gumbel"), ("Exponential", "Normal"),
          ("Gamma", "Exponential"), ("Gamma", "Gumbel"), ("Gamma", "Normal"), ("Gumbel", "Normal"),
          ("Laplace", "Normal"), ("Normal", "Gumbel"), ("Normal", "Laplace"), ("Uniform", "Beta"),
          ("Uniform", "Exponential"), ("Uniform", "Gamma"), ("Uniform", "Gumbel"), ("Uniform", "Normal")]
INFINITE = [("Beta", "Uniform"), ("Exponential", "Beta"), ("Exponential", "Uniform"), ("Gamma", "Beta"), ("Gamma", "Uniform"),
            ("Gumbel", "Exponential"), ("Laplace", "Gamma"), ("Normal", "Beta"), ("Normal", "Uniform"),
            ("Poisson", "Bernoulli"), ("Poisson", "Binomial")]


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(to_np(a) if not isinstance(a, np.ndarray) else a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("pq", FINITE + INFINITE, ids="-".join)
def test_cross_kl_against_torch(pq):
    torch = pytest.importorskip("torch")
    p, q = (_MAKERS[n] for n in pq)
    ours = kl_divergence(p(D, T), q(D, T))
    theirs = torch.distributions.kl_divergence(p(torch.distributions, torch.tensor), q(torch.distributions, torch.tensor))
    _close(ours, theirs.numpy(), tol=1e-4)


@pytest.mark.parametrize("pq", FINITE, ids="-".join)
def test_cross_kl_matches_monte_carlo(pq):
    p, q = (_MAKERS[n](D, T) for n in pq)
    tracenn.manual_seed(0)
    x = p.sample((40000,))
    ratio = to_np(p.log_prob(x) - q.log_prob(x)).astype(np.float64)
    kl = to_np(kl_divergence(p, q))
    assert np.all(np.abs(ratio.mean(0) - kl) <= 5 * ratio.std(0) / math.sqrt(40000) + 1e-4), (ratio.mean(0), kl)


@pytest.mark.parametrize("pq", INFINITE, ids="-".join)
def test_cross_kl_is_infinite_off_support(pq):
    p, q = (_MAKERS[n](D, T) for n in pq)
    assert np.all(np.isinf(to_np(kl_divergence(p, q))))


def test_support_checks_give_inf_per_element():
    beta = D.Beta(T([2.0, 2.0]), T([3.0, 3.0]))
    kl = to_np(kl_divergence(beta, D.Uniform(T([0.0, 0.2]), T([1.0, 1.0]))))
    assert np.isfinite(kl[0]) and np.isinf(kl[1])
    _close(kl[0], -to_np(beta.entropy())[0])
    uni = to_np(kl_divergence(D.Uniform(T([0.5, -0.5]), T([1.0, 1.0])), D.Exponential(T([1.0, 1.0]))))
    _close(uni[0], 0.75 - math.log(0.5))  # E[x] - H = 3/4 - log(1/2)
    assert np.isinf(uni[1])


def test_transformed_pairs_use_the_base_kl():
    ours = kl_divergence(D.TransformedDistribution(D.Normal(T(_LOC), T(_SCALE)), [D.ExpTransform()]),
                         D.TransformedDistribution(D.Normal(T(_POS), T(_POS2)), [D.ExpTransform()]))
    _close(ours, to_np(kl_divergence(D.Normal(T(_LOC), T(_SCALE)), D.Normal(T(_POS), T(_POS2)))))
    with pytest.raises(NotImplementedError):
        kl_divergence(D.TransformedDistribution(D.Normal(T(_LOC), T(_SCALE)), [D.ExpTransform()]),
                      D.TransformedDistribution(D.Normal(T(_LOC), T(_SCALE)), [D.SigmoidTransform()]))


def test_kl_compiled_equals_eager():
    def loss(a, b):
        return (kl_divergence(D.Gamma(a, b), D.Exponential(b)).sum() + kl_divergence(D.Beta(a, b), D.Normal(a, b)).sum()
                + kl_divergence(D.Binomial(3.0, logits=a), D.Binomial(3.0, logits=b)).sum())

    args = (T(_POS), T(_POS2))
    compiled = tracenn.compile(loss)
    _close(compiled(*args), to_np(loss(*args)))
