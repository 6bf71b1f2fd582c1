"""The families in _continuous, _gamma, _discrete and _multivariate, and their KL pairs.

One record per distribution (constructor, parameters, a value to score) drives: eager vs PyTorch
(log_prob, cdf/icdf, entropy, moments, shapes, repr, log_prob gradients; skipped without torch),
sample moments vs the distribution's own mean/variance (fixed seed), shapes of sample/expand, and
compiled vs eager. Known values and identities between families check the numbers without torch.
"""
import math

import numpy as np
import pytest

import tracenn
import tracenn.distributions as D
from tracenn.distributions import kl_divergence
from helpers import to_np

T = tracenn.tensor
_rng = np.random.default_rng(0)
_LOC = _rng.standard_normal(3).astype(np.float32)
_SCALE = _rng.uniform(0.5, 2, 3).astype(np.float32)
_POS = _rng.uniform(0.5, 3, 3).astype(np.float32)
_POS2 = _rng.uniform(0.5, 3, 3).astype(np.float32)
_PROB = _rng.uniform(0.1, 0.9, 3).astype(np.float32)
_CONC = _rng.uniform(0.5, 3, (2, 4)).astype(np.float32)
_A = _rng.standard_normal((2, 3, 3)).astype(np.float32)
_COV = (_A @ _A.transpose(0, 2, 1) + np.eye(3, dtype=np.float32)).astype(np.float32)
_MVLOC = _rng.standard_normal((2, 3)).astype(np.float32)
_LOGITS = _rng.standard_normal((2, 4)).astype(np.float32)
_SIMPLEX = _rng.dirichlet(np.ones(4), 2).astype(np.float32)


def _case(name, params, value, methods=(), **kw):
    return pytest.param(dict(name=name, params=params, value=np.asarray(value), methods=methods, kw=kw),
                        id=f"{name}-{'-'.join(params)}")


# name, float parameters (differentiated), a value, extra methods; kw: non-tensor constructor args
CASES = [
    _case("Exponential", {"rate": _POS}, _POS2, ("cdf", "icdf")),
    _case("Laplace", {"loc": _LOC, "scale": _SCALE}, _POS - 1, ("cdf", "icdf")),
    _case("LogNormal", {"loc": _LOC, "scale": _SCALE}, _POS, ("cdf", "icdf")),
    _case("HalfNormal", {"scale": _SCALE}, _POS, ("cdf", "icdf")),
    _case("Cauchy", {"loc": _LOC, "scale": _SCALE}, _POS - 1, ("cdf", "icdf")),
    _case("Gumbel", {"loc": _LOC, "scale": _SCALE}, _POS - 1, ("cdf", "icdf")),
    _case("Gamma", {"concentration": _POS, "rate": _POS2}, _SCALE, ("cdf",)),
    _case("Chi2", {"df": _POS}, _SCALE, ("cdf",)),
    _case("Beta", {"concentration1": _POS, "concentration0": _POS2}, _PROB),
    _case("Dirichlet", {"concentration": _CONC}, _SIMPLEX),
    _case("StudentT", {"df": _POS + 9, "loc": _LOC, "scale": _SCALE}, _POS - 1),
    _case("MultivariateNormal", {"loc": _MVLOC, "covariance_matrix": _COV}, _MVLOC[::-1].copy()),
    _case("MultivariateNormal", {"loc": _MVLOC, "scale_tril": np.linalg.cholesky(_COV)}, _MVLOC[::-1].copy()),
    _case("MultivariateNormal", {"loc": _MVLOC, "precision_matrix": np.linalg.inv(_COV)}, _MVLOC[::-1].copy()),
    _case("OneHotCategorical", {"logits": _LOGITS}, np.eye(4, dtype=np.float32)[[1, 3]]),
    _case("OneHotCategorical", {"probs": _SIMPLEX}, np.eye(4, dtype=np.float32)[[0, 2]]),
    _case("Multinomial", {"probs": _SIMPLEX}, np.float32([[1, 2, 0, 2], [0, 0, 5, 0]]),
          total_count=5),
    _case("Multinomial", {"logits": _LOGITS}, np.float32([[1, 2, 0, 2], [0, 0, 5, 0]]),
          total_count=5),
    _case("Poisson", {"rate": _POS * 3}, np.float32([0, 2, 7])),
    _case("Binomial", {"probs": _PROB}, np.float32([0, 2, 5]), total_count=5.0),
    _case("Binomial", {"logits": _LOC}, np.float32([1, 4, 5]), total_count=5.0),
    _case("Geometric", {"probs": _PROB}, np.float32([0, 2, 5])),
    _case("Geometric", {"logits": _LOC}, np.float32([1, 0, 3])),
]
_NO_ENTROPY = {"Poisson"}
_NO_MODE = {"Multinomial"}


def _build(mod, tensor, case, requires_grad=False):
    params = {k: tensor(v, requires_grad=requires_grad) for k, v in case["params"].items()}
    return getattr(mod, case["name"])(**case["kw"], **params), params


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(to_np(a) if not isinstance(a, np.ndarray) else a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", CASES)
def test_against_torch(case):
    torch = pytest.importorskip("torch")
    ours, _ = _build(D, T, case)
    theirs, _ = _build(torch.distributions, torch.tensor, case)
    assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape)
    assert ours.has_rsample == theirs.has_rsample
    value = case["value"]
    _close(ours.log_prob(T(value)), theirs.log_prob(torch.tensor(value)).detach().numpy(), tol=1e-4)
    if "cdf" in case["methods"]:
        _close(ours.cdf(T(value)), theirs.cdf(torch.tensor(value)).detach().numpy(), tol=1e-4)
    if "icdf" in case["methods"]:
        _close(ours.icdf(T(_PROB)), theirs.icdf(torch.tensor(_PROB)).detach().numpy(), tol=1e-4)
    if case["name"] not in _NO_ENTROPY:
        _close(ours.entropy(), theirs.entropy().detach().numpy(), tol=1e-4)
    for attr in ("mean", "variance", "stddev") + (() if case["name"] in _NO_MODE else ("mode",)):
        _close(getattr(ours, attr), getattr(theirs, attr).detach().numpy(), tol=1e-4)
    assert repr(ours).replace("tracenn.Size", "torch.Size") == repr(theirs)
    assert ours.support.__class__.__name__ == theirs.support.__class__.__name__


@pytest.mark.parametrize("case", CASES)
def test_log_prob_gradients_against_torch(case):
    torch = pytest.importorskip("torch")
    ours, ours_params = _build(D, T, case, requires_grad=True)
    theirs, their_params = _build(torch.distributions, torch.tensor, case, requires_grad=True)
    ours.log_prob(T(case["value"])).sum().backward()
    theirs.log_prob(torch.tensor(case["value"])).sum().backward()
    for k in ours_params:
        _close(ours_params[k].grad, their_params[k].grad.numpy(), tol=2e-4)


@pytest.mark.parametrize("case", CASES)
def test_sample_shapes_expand_and_seed(case):
    d, _ = _build(D, T, case)
    batch, event = tuple(d.batch_shape), tuple(d.event_shape)
    assert d.sample().shape == batch + event
    assert d.sample((3,)).shape == (3,) + batch + event
    assert d.sample((2, 1)).shape == (2, 1) + batch + event
    e = d.expand((4,) + batch)
    assert e.batch_shape == (4,) + batch and e.event_shape == event
    assert e.sample((2,)).shape == (2, 4) + batch + event
    _close(e.log_prob(T(case["value"])), np.broadcast_to(to_np(d.log_prob(T(case["value"]))), (4,) + batch))
    tracenn.manual_seed(3)
    a = to_np(d.sample((5,)))
    tracenn.manual_seed(3)
    _close(d.sample((5,)), a, tol=0)
    assert np.all(np.isfinite(to_np(d.log_prob(d.sample((5,))))))  # samples lie in the support


_MOMENT_CASES = [c for c in CASES if c.values[0]["name"] not in ("Cauchy",)]  # (no moments)
# heavy right tails make 20000-draw variances unreliable at the table's scales: use smaller ones
_MOMENT_PARAMS = {"LogNormal": {"loc": _LOC, "scale": _SCALE * 0.3}}


@pytest.mark.parametrize("case", _MOMENT_CASES)
def test_sample_moments(case):
    """20000 draws: the sample mean within 5 standard errors of ``mean``, the variance within 10%."""
    case = dict(case, params=_MOMENT_PARAMS.get(case["name"], case["params"]))
    d, _ = _build(D, T, case)
    tracenn.manual_seed(0)
    n = 20000
    s = to_np(d.sample((n,))).astype(np.float64)
    mean, var = to_np(d.mean).astype(np.float64), to_np(d.variance).astype(np.float64)
    assert np.all(np.abs(s.mean(0) - mean) <= 5 * np.sqrt(var / n) + 1e-6), (s.mean(0), mean)
    np.testing.assert_allclose(s.var(0), var, rtol=0.1, atol=1e-4)


@pytest.mark.parametrize("name,params", [
    ("Exponential", {"rate": _POS}), ("Laplace", {"loc": _LOC, "scale": _SCALE}),
    ("LogNormal", {"loc": _LOC, "scale": _SCALE}), ("HalfNormal", {"scale": _SCALE}),
    ("Cauchy", {"loc": _LOC, "scale": _SCALE}), ("Gumbel", {"loc": _LOC, "scale": _SCALE}),
    ("Gamma", {"concentration": _POS * 0.3, "rate": _POS2}), ("Chi2", {"df": _POS}),
    ("Beta", {"concentration1": _POS, "concentration0": _POS2 * 0.3}), ("Dirichlet", {"concentration": _CONC}),
    ("StudentT", {"df": _POS + 2, "loc": _LOC, "scale": _SCALE}),
    ("MultivariateNormal", {"loc": _MVLOC, "covariance_matrix": _COV}),
])
def test_rsample_gradients_are_finite(name, params):
    ts = {k: T(v, requires_grad=True) for k, v in params.items()}
    d = getattr(D, name)(**ts)
    assert d.has_rsample
    tracenn.manual_seed(0)
    x = d.rsample((64,))
    assert x.requires_grad and not d.sample().requires_grad
    x.sum().backward()
    for k, t in ts.items():
        assert t.grad is not None and np.all(np.isfinite(to_np(t.grad))), k


@pytest.mark.parametrize("concentration,rate", [(0.3, 2.0), (1.0, 1.0), (4.0, 0.5)])
def test_gamma_rsample_gradient_is_the_derivative_of_the_mean(concentration, rate):
    """Implicit reparameterization: E[dx/d concentration] = d mean / d concentration = 1 / rate, and
    E[dx/d rate] = -concentration / rate^2 (Monte-Carlo, 20000 draws)."""
    c, r = T([concentration] * 20000, requires_grad=True), T([rate] * 20000, requires_grad=True)
    tracenn.manual_seed(1)
    D.Gamma(c, r).rsample().sum().backward()
    g_c, g_r = to_np(c.grad), to_np(r.grad)
    assert abs(g_c.mean() - 1 / rate) < 5 * g_c.std() / math.sqrt(20000)
    assert abs(g_r.mean() + concentration / rate ** 2) < 5 * g_r.std() / math.sqrt(20000)


def test_beta_rsample_gradient_is_the_derivative_of_the_mean():
    a, b = T([2.0] * 20000, requires_grad=True), T([3.0] * 20000, requires_grad=True)
    tracenn.manual_seed(2)
    D.Beta(a, b).rsample().sum().backward()
    g = to_np(a.grad)  # d/da a/(a+b) = b/(a+b)^2 = 0.12
    assert abs(g.mean() - 0.12) < 5 * g.std() / math.sqrt(20000)


def test_known_values():
    _close(D.Exponential(T(2.0)).log_prob(T(1.5)), math.log(2) - 3)
    _close(D.Exponential(T(2.0)).cdf(T(1.0)), 1 - math.exp(-2))
    _close(D.Laplace(T(1.0), T(2.0)).log_prob(T(0.0)), -math.log(4) - 0.5)
    _close(D.Laplace(T(1.0), T(2.0)).entropy(), 1 + math.log(4))
    _close(D.Cauchy(T(0.0), T(1.0)).cdf(T(1.0)), 0.75)
    _close(D.Cauchy(T(0.0), T(1.0)).log_prob(T(0.0)), -math.log(math.pi))
    _close(D.Gumbel(T(0.0), T(1.0)).cdf(T(0.0)), math.exp(-1))
    _close(D.HalfNormal(T(2.0)).cdf(T(1.0)), math.erf(1 / (2 * math.sqrt(2))))
    _close(D.HalfNormal(T(1.0), validate_args=False).log_prob(T(-1.0)), -np.inf)
    _close(D.LogNormal(T(0.0), T(1.0)).log_prob(T(1.0)), -0.5 * math.log(2 * math.pi))
    _close(D.LogNormal(T(0.0), T(1.0)).mean, math.exp(0.5))
    _close(D.Gamma(T(3.0), T(2.0)).log_prob(T(1.0)), 3 * math.log(2) - 2 - math.log(2))
    _close(D.Beta(T(2.0), T(3.0)).log_prob(T(0.5)), math.log(12 * 0.5 * 0.25))
    _close(D.Beta(T(1.0), T(1.0)).entropy(), 0.0)
    _close(D.Dirichlet(T([1.0, 1.0, 1.0])).log_prob(T([0.2, 0.3, 0.5])), math.log(2))
    _close(D.Poisson(T(3.0)).log_prob(T(2.0)), 2 * math.log(3) - 3 - math.log(2))
    _close(D.Binomial(4, probs=T(0.5)).log_prob(T(2.0)), math.log(6 / 16))
    _close(D.Binomial(4, probs=T(0.5)).entropy(), -sum(c / 16 * math.log(c / 16) for c in (1, 4, 6, 4, 1)))
    _close(D.Geometric(probs=T(0.25)).log_prob(T(2.0)), 2 * math.log(0.75) + math.log(0.25))
    _close(D.Geometric(probs=T(0.25)).mean, 3.0)
    _close(D.StudentT(T(1.0)).log_prob(T(0.7)), to_np(D.Cauchy(T(0.0), T(1.0)).log_prob(T(0.7))))
    _close(D.StudentT(T(1.0)).entropy(), math.log(4 * math.pi))
    _close(D.Chi2(T(2.0)).log_prob(T(3.0)), to_np(D.Exponential(T(0.5)).log_prob(T(3.0))))
    _close(D.Multinomial(3, probs=T([0.2, 0.3, 0.5])).log_prob(T([1.0, 1.0, 1.0])), math.log(6 * 0.03))
    _close(D.MultivariateNormal(T([0.0, 0.0]), covariance_matrix=tracenn.eye(2)).entropy(), 1 + math.log(2 * math.pi))


def test_identities_between_families():
    x = T(_POS)
    _close(D.Gamma(T(1.0), T(_POS2)).log_prob(x), to_np(D.Exponential(T(_POS2)).log_prob(x)))
    _close(D.Gamma(T(1.0), T(_POS2)).entropy(), to_np(D.Exponential(T(_POS2)).entropy()))
    dir2 = D.Dirichlet(T(np.stack([_POS, _POS2], -1)))
    beta = D.Beta(T(_POS), T(_POS2))
    _close(beta.log_prob(T(_PROB)), to_np(dir2.log_prob(T(np.stack([_PROB, 1 - _PROB], -1)))))
    _close(beta.entropy(), to_np(dir2.entropy()))
    diag = np.diag(_SCALE ** 2).astype(np.float32)
    mvn = D.MultivariateNormal(T(_LOC), covariance_matrix=T(diag))
    ind = D.Independent(D.Normal(T(_LOC), T(_SCALE)), 1)
    _close(mvn.log_prob(T(_POS)), to_np(ind.log_prob(T(_POS))))
    _close(mvn.entropy(), to_np(ind.entropy()))
    _close(mvn.precision_matrix, np.diag(1 / _SCALE ** 2), tol=1e-4)
    _close(mvn.scale_tril, np.diag(_SCALE))
    onehot, cat = D.OneHotCategorical(logits=T(_LOGITS)), D.Categorical(logits=T(_LOGITS))
    _close(onehot.log_prob(T(np.eye(4, dtype=np.float32)[[1, 3]])), to_np(cat.log_prob(T([1, 3]))))
    _close(D.Multinomial(1, logits=T(_LOGITS)).log_prob(T(np.eye(4, dtype=np.float32)[[1, 3]])),
           to_np(cat.log_prob(T([1, 3]))))
    _close(D.Binomial(1, probs=T(_PROB)).log_prob(T([0.0, 1.0, 1.0])),
           to_np(D.Bernoulli(probs=T(_PROB)).log_prob(T([0.0, 1.0, 1.0]))))
    for d in (D.Exponential(T(_POS)), D.Laplace(T(_LOC), T(_SCALE)), D.Cauchy(T(_LOC), T(_SCALE)),
              D.Gumbel(T(_LOC), T(_SCALE)), D.LogNormal(T(_LOC), T(_SCALE)), D.HalfNormal(T(_SCALE))):
        _close(d.cdf(d.icdf(T(_PROB))), _PROB, tol=1e-4)


def _kl_pairs():
    p2, q2 = np.stack([_POS, _POS2], -1), np.stack([_POS2, _SCALE], -1)
    chol = np.linalg.cholesky(_COV).astype(np.float32)
    return [
        (lambda M, t: M.Exponential(t(_POS)), lambda M, t: M.Exponential(t(_POS2))),
        (lambda M, t: M.Laplace(t(_LOC), t(_SCALE)), lambda M, t: M.Laplace(t(_POS), t(_POS2))),
        (lambda M, t: M.LogNormal(t(_LOC), t(_SCALE)), lambda M, t: M.LogNormal(t(_POS), t(_POS2))),
        (lambda M, t: M.HalfNormal(t(_SCALE)), lambda M, t: M.HalfNormal(t(_POS2))),
        (lambda M, t: M.Cauchy(t(_LOC), t(_SCALE)), lambda M, t: M.Cauchy(t(_POS), t(_POS2))),
        (lambda M, t: M.Gumbel(t(_LOC), t(_SCALE)), lambda M, t: M.Gumbel(t(_POS), t(_POS2))),
        (lambda M, t: M.Gamma(t(_POS), t(_POS2)), lambda M, t: M.Gamma(t(_POS2), t(_SCALE))),
        (lambda M, t: M.Beta(t(_POS), t(_POS2)), lambda M, t: M.Beta(t(_POS2), t(_SCALE))),
        (lambda M, t: M.Dirichlet(t(p2)), lambda M, t: M.Dirichlet(t(q2))),
        (lambda M, t: M.Poisson(t(_POS)), lambda M, t: M.Poisson(t(_POS2))),
        (lambda M, t: M.Geometric(probs=t(_PROB)), lambda M, t: M.Geometric(logits=t(_LOC))),
        (lambda M, t: M.Binomial(5.0, probs=t(_PROB)), lambda M, t: M.Binomial(5.0, logits=t(_LOC))),
        (lambda M, t: M.OneHotCategorical(logits=t(_LOGITS)), lambda M, t: M.OneHotCategorical(probs=t(_SIMPLEX))),
        (lambda M, t: M.MultivariateNormal(t(_MVLOC), covariance_matrix=t(_COV)),
         lambda M, t: M.MultivariateNormal(t(_MVLOC[::-1].copy()), scale_tril=t(chol[::-1].copy()))),
    ]


@pytest.mark.parametrize("i", range(len(_kl_pairs())))
def test_kl_against_torch(i):
    torch = pytest.importorskip("torch")
    p, q = _kl_pairs()[i]
    ours = kl_divergence(p(D, T), q(D, T))
    theirs = torch.distributions.kl_divergence(p(torch.distributions, torch.tensor), q(torch.distributions, torch.tensor))
    _close(ours, theirs.numpy(), tol=1e-4)


@pytest.mark.parametrize("i", range(len(_kl_pairs())))
def test_kl_is_zero_on_itself_and_matches_monte_carlo(i):
    """KL(p || p) = 0, and KL(p || q) is E_p[log p - log q] (20000 draws, 5 standard errors)."""
    p_fn, q_fn = _kl_pairs()[i]
    p, q = p_fn(D, T), q_fn(D, T)
    _close(kl_divergence(p, p), np.zeros(tuple(p.batch_shape)), tol=1e-4)
    if isinstance(p, (D.Cauchy,)):
        return  # log-ratio draws have finite variance, but a heavy tail: skip the Monte-Carlo check
    tracenn.manual_seed(0)
    x = p.sample((20000,))
    ratio = to_np(p.log_prob(x) - q.log_prob(x)).astype(np.float64)
    kl = to_np(kl_divergence(p, q))
    assert np.all(np.abs(ratio.mean(0) - kl) <= 5 * ratio.std(0) / math.sqrt(20000) + 1e-4), (ratio.mean(0), kl)


def test_kl_closed_forms():
    _close(kl_divergence(D.Exponential(T(1.0)), D.Exponential(T(2.0))), 1 - math.log(2))
    _close(kl_divergence(D.Gamma(T(1.0), T(1.0)), D.Gamma(T(1.0), T(2.0))), 1 - math.log(2))
    diag_p, diag_q = np.diag(_SCALE ** 2).astype(np.float32), np.diag(_POS ** 2).astype(np.float32)
    mvn = kl_divergence(D.MultivariateNormal(T(_LOC), T(diag_p)), D.MultivariateNormal(T(_POS2), T(diag_q)))
    _close(mvn, to_np(kl_divergence(D.Normal(T(_LOC), T(_SCALE)), D.Normal(T(_POS2), T(_POS))).sum()), tol=1e-4)
    beta = kl_divergence(D.Beta(T(_POS), T(_POS2)), D.Beta(T(_POS2), T(_SCALE)))
    dirichlet = kl_divergence(D.Dirichlet(T(np.stack([_POS, _POS2], -1))), D.Dirichlet(T(np.stack([_POS2, _SCALE], -1))))
    _close(beta, to_np(dirichlet), tol=1e-4)
    _close(kl_divergence(D.Binomial(5.0, probs=T(0.5)), D.Binomial(3.0, probs=T(0.5))), np.inf)


def test_log_likelihoods_compiled_equal_eager():
    x_pos, x_simplex, x_vec = T(_SCALE), T(_SIMPLEX), T(_MVLOC[::-1].copy())

    def nll(conc, rate, dir_conc, loc, cov):
        return -(D.Gamma(conc, rate).log_prob(x_pos).sum() + D.Beta(conc, rate).log_prob(T(_PROB)).sum()
                 + D.Dirichlet(dir_conc).log_prob(x_simplex).sum()
                 + D.MultivariateNormal(loc, covariance_matrix=cov).log_prob(x_vec).sum()
                 + D.StudentT(conc, loc[0], rate).log_prob(x_pos).sum())

    args = [T(_POS), T(_POS2), T(_CONC), T(_MVLOC), T(_COV)]
    compiled = tracenn.compile(nll)
    _close(compiled(*args), to_np(nll(*args)), tol=1e-5)
    assert not compiled._last.eager


def test_rsample_compiled_equals_eager():
    """Gamma/Dirichlet draws (normal + uniform streams) and their gradients are the same compiled."""
    def draw(conc):
        return D.Gamma(conc, 2.0).rsample((4,)).sum() + D.Dirichlet(conc.unsqueeze(0).expand(2, 3)).rsample()[..., 0].sum()

    c_eager, c_comp = T([0.4, 1.0, 3.0], requires_grad=True), T([0.4, 1.0, 3.0], requires_grad=True)
    compiled = tracenn.compile(draw)
    tracenn.manual_seed(5)
    e = draw(c_eager)
    e.backward()
    tracenn.manual_seed(5)
    c = compiled(c_comp)
    c.backward()
    _close(c, to_np(e), tol=1e-5)
    _close(c_comp.grad, to_np(c_eager.grad), tol=1e-4)


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Expected parameter rate \(Tensor of shape \(1,\)\) of distribution "
                                         r"Exponential\(rate: tensor\(\[-1.\]\)\) to satisfy the constraint "
                                         r"GreaterThan\(lower_bound=0.0\), but found invalid values"):
        D.Exponential(T([-1.0]))
    with pytest.raises(ValueError, match=r"Expected parameter scale .* of distribution HalfNormal\(\) to satisfy"):
        D.HalfNormal(T([-1.0]))
    with pytest.raises(ValueError, match="to satisfy the constraint GreaterThan"):
        D.Beta(T([1.0]), T([0.0]))
    with pytest.raises(ValueError, match=r"IndependentConstraint\(GreaterThan\(lower_bound=0.0\), 1\)"):
        D.Dirichlet(T([1.0, -1.0]))
    with pytest.raises(ValueError, match="`concentration` parameter must be at least one-dimensional."):
        D.Dirichlet(T(1.0))
    with pytest.raises(ValueError, match=r"to be within the support \(GreaterThanEq\(lower_bound=0.0\)\)"):
        D.Gamma(T(1.0), T(1.0)).log_prob(T(-1.0))
    with pytest.raises(ValueError, match=r"to be within the support \(IntegerGreaterThan\(lower_bound=0\)\)"):
        D.Poisson(T(1.0)).log_prob(T(1.5))
    with pytest.raises(ValueError, match=r"to be within the support \(IntegerInterval\(lower_bound=0, upper_bound="):
        D.Binomial(T(3.0), probs=T(0.5)).log_prob(T(4.0))
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
        D.Geometric()
    with pytest.raises(ValueError, match=r"Expected parameter probs .* to be positive but found invalid values"):
        D.Geometric(probs=T([0.0, 0.5]))
    with pytest.raises(ValueError, match="loc must be at least one-dimensional."):
        D.MultivariateNormal(T(0.0), covariance_matrix=tracenn.eye(1))
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        D.MultivariateNormal(T([0.0]))
    with pytest.raises(ValueError, match="covariance_matrix must be at least two-dimensional"):
        D.MultivariateNormal(T([0.0]), covariance_matrix=T([1.0]))
    with pytest.raises(ValueError, match=r"to satisfy the constraint PositiveDefinite\(\)"):
        D.MultivariateNormal(T([0.0, 0.0]), covariance_matrix=T([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match=r"to satisfy the constraint LowerCholesky\(\)"):
        D.MultivariateNormal(T([0.0, 0.0]), scale_tril=T([[1.0, 1.0], [0.0, 1.0]]))
    with pytest.raises(NotImplementedError, match="inhomogeneous total_count is not supported"):
        D.Multinomial(T(3), probs=T([0.5, 0.5]))
    with pytest.raises(ValueError, match=r"to be within the support \(OneHot\(\)\)"):
        D.OneHotCategorical(probs=T([0.5, 0.5])).log_prob(T([1.0, 1.0]))
    with pytest.raises(NotImplementedError, match="Inhomogeneous total count not supported by `entropy`."):
        D.Binomial(T([2.0, 3.0]), probs=T(0.5)).entropy()
    with pytest.raises(NotImplementedError, match="KL between Binomials where q.total_count > p.total_count"):
        kl_divergence(D.Binomial(2.0, probs=T(0.5)), D.Binomial(3.0, probs=T(0.5)))
    D.Exponential(T([-1.0]), validate_args=False)  # no check when asked


def test_validation_errors_match_torchs():
    torch = pytest.importorskip("torch")
    cases = [
        lambda M, t: M.Exponential(t([-1.0])),
        lambda M, t: M.HalfNormal(t([-1.0])),
        lambda M, t: M.Gamma(t(1.0), t(1.0)).log_prob(t(-1.0)),
        lambda M, t: M.Poisson(t(1.0)).log_prob(t(1.5)),
        lambda M, t: M.Geometric(probs=t([0.0, 0.5])),
        lambda M, t: M.MultivariateNormal(t([0.0, 0.0]), covariance_matrix=t([[1.0, 2.0], [2.0, 1.0]])),
        lambda M, t: M.Dirichlet(t(1.0)),
    ]
    for make in cases:
        with pytest.raises(Exception) as ours:
            make(D, T)
        with pytest.raises(Exception) as theirs:
            make(torch.distributions, torch.tensor)
        assert type(ours.value) is type(theirs.value)
        first = lambda e: str(e.value).split("\n")[0].replace("tracenn.Size", "torch.Size")  # noqa: E731
        assert first(ours).split(" but found")[0] == first(theirs).split(" but found")[0]


def test_discrete_sampling_compiled():
    """Poisson, Binomial (total_count a number or a tensor, probs or logits) and Geometric draw the
    eager numbers compiled, each in one node, and fresh numbers on each call."""
    def draw(p, rate, count):
        return (D.Poisson(rate).sample((3,)), D.Binomial(count, probs=p).sample((3,)),
                D.Binomial(4, logits=p).sample(), D.Geometric(probs=p).sample((3,)))

    p, rate, count = T([0.2, 0.6]), T([1.5, 40.0]), T([5.0, 300.0])
    compiled = tracenn.compile(draw)
    tracenn.manual_seed(4)
    e = draw(p, rate, count)
    tracenn.manual_seed(4)
    c = compiled(p, rate, count)
    for ours, eager in zip(c, e):
        _close(ours, to_np(eager), tol=0)
    assert not compiled._last.eager
    assert str(compiled.graph).count("poisson[") == 1 and str(compiled.graph).count("binomial[") == 2
    assert to_np(compiled(p, rate, count)[0]).tolist() != to_np(c[0]).tolist()
