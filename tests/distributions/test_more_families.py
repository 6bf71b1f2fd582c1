"""The families, transforms, constraint registry, KL pairs and submodule paths added to close the gap
with torch.distributions 2.13 (_positive, _unit, _circular, _matrix, NegativeBinomial,
OneHotCategoricalStraightThrough, _transforms_structured, constraint_registry, _kl_more, _submodules).

One record per distribution drives: eager vs PyTorch (log_prob, cdf/icdf, entropy, moments, repr,
support, shapes, log_prob gradients; skipped without torch), sample moments vs the distribution's own
mean/variance (fixed seed, tolerance from the sample size), sample/expand shapes and compiled vs
eager log_prob. Closed forms written with ``math``/NumPy check the densities without torch.
"""
import importlib
import math

import numpy as np
import pytest

import tracenn
import tracenn.distributions as D
from tracenn.distributions import constraints as C
from tracenn.distributions import kl_divergence
from tracenn.distributions import transforms as Tr
from tracenn.distributions.constraint_registry import biject_to, transform_to
from helpers import to_np

T = tracenn.tensor
_rng = np.random.default_rng(1)
_POS = np.float32([0.7, 1.5, 3.0])
_POS2 = np.float32([2.5, 1.2, 0.8])
_X = np.float32([0.4, 1.3, 2.2])
_U = np.float32([0.2, 0.55, 0.9])
_W = _rng.standard_normal((2, 3, 2)).astype(np.float32)
_DIAG = _rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
_MVLOC = _rng.standard_normal((2, 3)).astype(np.float32)
_A = _rng.standard_normal((2, 3, 3)).astype(np.float32)
_COV = (_A @ _A.transpose(0, 2, 1) + np.eye(3, dtype=np.float32)).astype(np.float32)
_SPD = (np.linalg.inv(_COV) + 0.5 * np.eye(3)).astype(np.float32)
_SPD = ((_SPD + _SPD.transpose(0, 2, 1)) / 2).astype(np.float32)
_CORR_L = np.float32([[[1, 0, 0], [0.6, 0.8, 0], [-0.36, 0.48, 0.8]],
                      [[1, 0, 0], [0.0, 1.0, 0], [0.6, 0.0, 0.8]]])


def _case(name, params, value, methods=(), **kw):
    return pytest.param(dict(name=name, params=params, value=np.asarray(value), methods=methods, kw=kw),
                        id=f"{name}-{'-'.join(params)}")


CASES = [
    _case("Weibull", {"scale": _POS, "concentration": _POS2}, _X, ("cdf", "icdf")),
    _case("Pareto", {"scale": _POS * 0.5, "alpha": _POS2 + 2}, _X + 1.5, ("cdf", "icdf")),
    _case("HalfCauchy", {"scale": _POS}, _X, ("cdf", "icdf")),
    _case("InverseGamma", {"concentration": _POS2 + 2, "rate": _POS}, _X, ("cdf",)),
    _case("FisherSnedecor", {"df1": _POS + 3, "df2": _POS2 + 5}, _X),
    _case("GeneralizedPareto", {"loc": np.float32([0.1, -0.2, 0.0]), "scale": _POS,
                                "concentration": np.float32([0.3, 0.0, -0.1])}, _X, ("cdf", "icdf")),
    _case("Kumaraswamy", {"concentration1": _POS2 + 1, "concentration0": _POS + 1}, _U, ("cdf", "icdf")),
    _case("ContinuousBernoulli", {"probs": np.float32([0.2, 0.5004, 0.9])}, _U, ("cdf", "icdf")),
    _case("ContinuousBernoulli", {"logits": np.float32([-1.0, 0.0005, 2.0])}, _U, ("cdf", "icdf")),
    _case("VonMises", {"loc": np.float32([0.3, -1.0, 2.5]), "concentration": np.float32([0.5, 2.0, 6.0])},
          np.float32([0.1, 3.0, -2.0])),
    _case("NegativeBinomial", {"probs": np.float32([0.3, 0.6, 0.5])}, np.float32([0, 2, 7]), total_count=3.5),
    _case("NegativeBinomial", {"logits": np.float32([-1.0, 0.2, 1.0])}, np.float32([1, 0, 4]), total_count=2.0),
    _case("OneHotCategoricalStraightThrough", {"logits": _rng.standard_normal((2, 4)).astype(np.float32)},
          np.eye(4, dtype=np.float32)[[1, 3]]),
    _case("LowRankMultivariateNormal", {"loc": _MVLOC, "cov_factor": _W, "cov_diag": _DIAG}, _MVLOC[::-1].copy()),
    _case("LogisticNormal", {"loc": np.float32([[0.3, -0.2], [1.0, 0.5]]), "scale": np.float32([[1.0, 0.5]])},
          np.float32([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])),
    _case("Wishart", {"df": np.float32([4.0, 6.0]), "covariance_matrix": _COV}, _SPD),
    _case("Wishart", {"df": np.float32([4.0, 6.0]), "precision_matrix": _COV}, _SPD),
    _case("Wishart", {"df": np.float32([4.0, 6.0]), "scale_tril": np.linalg.cholesky(_COV)}, _SPD),
    _case("LKJCholesky", {"concentration": np.float32([0.5, 2.0])}, _CORR_L, dim=3),
]
_NO_ENTROPY = {"FisherSnedecor", "NegativeBinomial", "VonMises", "LKJCholesky", "LogisticNormal"}
_NO_MOMENTS = {"LKJCholesky", "LogisticNormal"}  # (torch raises NotImplementedError too)
_NO_MODE = {"ContinuousBernoulli", "Kumaraswamy"}  # (torch's Kumaraswamy.mode is NaN everywhere: see below)


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
        _close(ours.icdf(T(_U)), theirs.icdf(torch.tensor(_U)).detach().numpy(), tol=1e-4)
    if case["name"] not in _NO_ENTROPY:
        _close(ours.entropy(), theirs.entropy().detach().numpy(), tol=1e-4)
    attrs = () if case["name"] in _NO_MOMENTS else ("mean", "variance", "stddev")
    for attr in attrs + (() if case["name"] in _NO_MODE | _NO_MOMENTS else ("mode",)):
        np.testing.assert_allclose(to_np(getattr(ours, attr)), getattr(theirs, attr).detach().numpy(), rtol=1e-4,
                                   atol=1e-4, equal_nan=True, err_msg=attr)
    assert repr(ours).replace("tracenn.Size", "torch.Size") == repr(theirs)
    assert ours.support.__class__.__name__ == theirs.support.__class__.__name__
    assert sorted(ours.arg_constraints) == sorted(theirs.arg_constraints)


@pytest.mark.parametrize("case", CASES)
def test_log_prob_gradients_against_torch(case):
    torch = pytest.importorskip("torch")
    ours, ours_params = _build(D, T, case, requires_grad=True)
    theirs, their_params = _build(torch.distributions, torch.tensor, case, requires_grad=True)
    ours.log_prob(T(case["value"])).sum().backward()
    theirs.log_prob(torch.tensor(case["value"])).sum().backward()
    for k in ours_params:
        if their_params[k].grad is not None:
            # (a scale_tril's entries above the diagonal are not read: torch's cholesky_solve gives them a
            # gradient anyway, tracenn's triangular solves give zero; compare the lower triangle)
            mask = np.tril if k == "scale_tril" else (lambda a: a)
            _close(mask(to_np(ours_params[k].grad)), mask(their_params[k].grad.numpy()), tol=2e-4)


@pytest.mark.parametrize("case", CASES)
def test_sample_shapes_and_expand(case):
    d, _ = _build(D, T, case)
    batch, event = tuple(d.batch_shape), tuple(d.event_shape)
    assert d.sample().shape == batch + event
    assert d.sample((3,)).shape == (3,) + batch + event
    e = d.expand((4,) + batch)
    assert e.batch_shape == (4,) + batch and e.event_shape == event
    assert e.sample((2,)).shape == (2, 4) + batch + event
    assert e.log_prob(T(case["value"])).shape == (4,) + batch
    _close(e.log_prob(T(case["value"]))[1], to_np(d.log_prob(T(case["value"]))), tol=1e-5)
    if d.has_rsample:
        assert d.rsample((2,)).shape == (2,) + batch + event
    assert bool(d.support.check(d.sample((5,))).all())


@pytest.mark.parametrize("case", CASES)
def test_log_prob_compiled_equals_eager(case):
    value = T(case["value"])

    def log_prob(*params):
        return getattr(D, case["name"])(**case["kw"], **dict(zip(case["params"], params))).log_prob(value)

    args = [T(v) for v in case["params"].values()]
    compiled = tracenn.compile(log_prob)
    _close(compiled(*args), to_np(log_prob(*args)), tol=1e-5)
    assert not compiled._last.eager


def test_rsample_compiled_equals_eager():
    """Uniform and normal draws through the transforms: the same numbers and gradients compiled."""
    def draw(scale, loc):
        return (D.Weibull(scale, 1.5).rsample((4,)).sum() + D.Kumaraswamy(scale, 2.0).rsample().sum()
                + D.LowRankMultivariateNormal(loc, T(_W), T(_DIAG)).rsample((3,)).sum()
                + D.GeneralizedPareto(loc[0], scale, 0.2).rsample().sum())

    ins = [(T(_POS, requires_grad=True), T(_MVLOC, requires_grad=True)) for _ in range(2)]
    compiled = tracenn.compile(draw)
    tracenn.manual_seed(5)
    e = draw(*ins[0])
    e.backward()
    tracenn.manual_seed(5)
    c = compiled(*ins[1])
    c.backward()
    _close(c, to_np(e), tol=1e-5)
    for a, b in zip(ins[1], ins[0]):
        _close(a.grad, to_np(b.grad), tol=1e-4)


def test_expand_of_a_subclass_with_its_own_init_needs_its_own_expand():
    class Shifted(D.Normal):
        def __init__(self, loc):
            super().__init__(loc + 1, 1.0)

    with pytest.raises(NotImplementedError, match="Subclass Shifted of Normal that defines a custom __init__"):
        Shifted(T([0.0]))._get_checked_instance(D.Normal)
    assert type(D.Normal(T([0.0]), 1.0)._get_checked_instance(D.Normal)) is D.Normal


# ---- moments by Monte Carlo (no torch): tolerance 5 standard errors of the estimate ----------------

_MC = [("Weibull", lambda: D.Weibull(T(_POS), T(_POS2))),
       ("Pareto", lambda: D.Pareto(T(_POS), T(_POS2 + 4))),
       ("InverseGamma", lambda: D.InverseGamma(T(_POS2 + 4), T(_POS))),
       ("FisherSnedecor", lambda: D.FisherSnedecor(T(_POS + 3), T(_POS2 + 9))),
       ("GeneralizedPareto", lambda: D.GeneralizedPareto(T(0.5), T(_POS), T([0.2, 0.0, -0.3]))),
       ("Kumaraswamy", lambda: D.Kumaraswamy(T(_POS2), T(_POS))),
       ("ContinuousBernoulli", lambda: D.ContinuousBernoulli(T([0.1, 0.5002, 0.8]))),
       ("NegativeBinomial", lambda: D.NegativeBinomial(T([1.5, 4.0, 7.0]), probs=T([0.3, 0.6, 0.2]))),
       ("LowRankMultivariateNormal", lambda: D.LowRankMultivariateNormal(T(_MVLOC), T(_W), T(_DIAG))),
       ("Wishart", lambda: D.Wishart(T([4.0, 6.0]), covariance_matrix=T(_COV) / 4))]


@pytest.mark.parametrize("name,make", _MC, ids=[m[0] for m in _MC])
def test_sample_moments_match_mean_and_variance(name, make):
    tracenn.manual_seed(0)
    d = make()
    n = 40000
    s = to_np(d.sample((n,))).astype(np.float64)
    mean, var = to_np(d.mean).astype(np.float64), to_np(d.variance).astype(np.float64)
    np.testing.assert_array_less(np.abs(s.mean(0) - mean), 5 * np.sqrt(var / n) + 1e-6)
    centred = (s - mean) ** 2
    np.testing.assert_array_less(np.abs(centred.mean(0) - var), 5 * centred.std(0) / np.sqrt(n) + 1e-6)


def test_von_mises_samples_have_the_circular_moments():
    """E[cos(x - loc)] = I1(k) / I0(k) = 1 - variance and E[sin(x - loc)] = 0; samples lie in [-pi, pi)."""
    tracenn.manual_seed(0)
    kappa = np.float32([0.05, 0.8, 4.0, 50.0])
    d = D.VonMises(T([0.3, -2.0, 3.0, 1.0]), T(kappa))
    s = to_np(d.sample((40000,))).astype(np.float64)
    assert s.min() >= -math.pi and s.max() < math.pi
    c = np.cos(s - to_np(d.loc))
    ratio = np.array([np.i0(k) for k in kappa.astype(np.float64)])
    i1 = np.array([_bessel_i1(k) for k in kappa.astype(np.float64)])
    np.testing.assert_array_less(np.abs(c.mean(0) - i1 / ratio), 5 * c.std(0) / 200 + 1e-6)
    _close(1 - d.variance, i1 / ratio, tol=1e-5)
    assert np.all(np.abs(np.sin(s - to_np(d.loc)).mean(0)) < 5 / 200)


def _bessel_i1(x, terms=60):
    return sum((x / 2) ** (2 * m + 1) / (math.factorial(m) * math.factorial(m + 1)) for m in range(terms))


def test_von_mises_compiled_sample_is_on_the_circle():
    compiled = tracenn.compile(lambda loc: D.VonMises(loc, T([0.5, 5.0])).sample((1000,)))
    s = to_np(compiled(T([0.0, 1.0])))
    assert s.shape == (1000, 2) and s.min() >= -math.pi and s.max() < math.pi
    assert abs(np.cos(s[:, 1] - 1.0).mean() - 0.8934) < 0.02  # I1(5) / I0(5)


# ---- closed forms (no torch) -----------------------------------------------------------------------

def _lg(x):
    return np.vectorize(math.lgamma)(np.asarray(x, np.float64))


def test_log_probs_against_closed_forms():
    x, s, k = _X.astype(np.float64), _POS.astype(np.float64), _POS2.astype(np.float64)
    _close(D.Weibull(T(_POS), T(_POS2)).log_prob(T(_X)),
           np.log(k / s) + (k - 1) * np.log(x / s) - (x / s) ** k, tol=1e-5)
    _close(D.Weibull(T(_POS), T(_POS2)).cdf(T(_X)), 1 - np.exp(-(x / s) ** k), tol=1e-5)
    _close(D.Weibull(T(_POS), T(_POS2)).mean, s * np.exp(_lg(1 + 1 / k)), tol=1e-5)
    _close(D.Pareto(T(_POS), T(_POS2)).log_prob(T(_X + 3)), np.log(k) + k * np.log(s) - (k + 1) * np.log(x + 3),
           tol=1e-5)
    _close(D.HalfCauchy(T(_POS)).log_prob(T(_X)), np.log(2 / (np.pi * s * (1 + (x / s) ** 2))), tol=1e-5)
    _close(D.InverseGamma(T(_POS2), T(_POS)).log_prob(T(_X)),
           k * np.log(s) - _lg(k) - (k + 1) * np.log(x) - s / x, tol=1e-5)
    d1, d2 = s + 3, k + 5
    ref = (0.5 * d1 * np.log(d1 * x) + 0.5 * d2 * np.log(d2) - 0.5 * (d1 + d2) * np.log(d1 * x + d2) - np.log(x)
           - (_lg(d1 / 2) + _lg(d2 / 2) - _lg((d1 + d2) / 2)))
    _close(D.FisherSnedecor(T(_POS + 3), T(_POS2 + 5)).log_prob(T(_X)), ref, tol=1e-5)
    xi = np.float64([0.3, 0.0, -0.1])
    z = x / s
    ref = np.where(xi == 0, -np.log(s) - z, -np.log(s) - (1 + 1 / np.where(xi == 0, 1, xi)) * np.log1p(xi * z))
    _close(D.GeneralizedPareto(T(0.0), T(_POS), T(xi.astype(np.float32))).log_prob(T(_X)), ref, tol=1e-5)
    a, b, u = k, s, _U.astype(np.float64)
    _close(D.Kumaraswamy(T(_POS2), T(_POS)).log_prob(T(_U)),
           np.log(a * b) + (a - 1) * np.log(u) + (b - 1) * np.log1p(-u ** a), tol=1e-4)
    _close(D.Kumaraswamy(T(_POS2), T(_POS)).cdf(T(_U)), 1 - (1 - u ** a) ** b, tol=1e-5)


def test_kumaraswamy_mode_is_the_density_maximum():
    """torch 2.13's Kumaraswamy.mode swaps the parameters and is NaN for every input; tracenn's is the
    argmax of the density (and NaN where a parameter is below 1)."""
    d = D.Kumaraswamy(T([2.0, 3.0, 0.5]), T([3.0, 1.5, 2.0]))
    grid = np.linspace(1e-4, 1 - 1e-4, 200001, dtype=np.float64)
    for i, (a, b) in enumerate([(2.0, 3.0), (3.0, 1.5)]):
        density = np.log(a * b) + (a - 1) * np.log(grid) + (b - 1) * np.log1p(-grid ** a)
        assert abs(float(d.mode[i]) - grid[density.argmax()]) < 1e-4
    assert math.isnan(float(d.mode[2]))


def _integral(d, lo, hi, n=200001):
    grid = np.linspace(lo, hi, n, dtype=np.float32)
    density = np.exp(to_np(d.log_prob(T(grid).reshape((-1,) + (1,) * len(d.batch_shape)))).astype(np.float64))
    return np.trapezoid(density, grid.astype(np.float64), axis=0), grid, density


def test_densities_on_bounded_supports_integrate_to_one():
    total, grid, density = _integral(D.ContinuousBernoulli(T([0.1, 0.4999, 0.5, 0.7, 0.95])), 0.0, 1.0)
    _close(total, np.ones(5), tol=1e-5)
    d = D.ContinuousBernoulli(T([0.1, 0.4999, 0.5, 0.7, 0.95]))
    mean = np.trapezoid(density * grid[:, None], grid, axis=0)
    _close(d.mean, mean, tol=1e-5)
    _close(d.variance, np.trapezoid(density * (grid[:, None] - mean) ** 2, grid, axis=0), tol=1e-5)
    total, _, _ = _integral(D.VonMises(T([0.3, -2.0]), T([0.7, 9.0])), -math.pi, math.pi)
    _close(total, np.ones(2), tol=1e-5)  # (torch's log I0 approximation is good to about 1e-7)


def test_negative_binomial_pmf_closed_form_and_sum():
    r, p = 3.5, 0.3
    k = np.arange(200, dtype=np.float64)
    ref = _lg(k + r) - _lg(r) - _lg(k + 1) + r * np.log(1 - p) + k * np.log(p)
    d = D.NegativeBinomial(r, probs=T(p))
    _close(d.log_prob(T(k.astype(np.float32))), ref, tol=1e-4)
    assert abs(np.exp(ref).sum() - 1) < 1e-10
    _close(d.mean, r * p / (1 - p), tol=1e-6)
    _close(d.variance, r * p / (1 - p) ** 2, tol=1e-6)


def _mvn_logpdf(x, loc, cov):
    diff = x - loc
    sol = np.linalg.solve(cov, diff[..., None])[..., 0]
    return -0.5 * ((diff * sol).sum(-1) + np.linalg.slogdet(cov)[1] + loc.shape[-1] * np.log(2 * np.pi))


def test_lowrank_normal_is_the_normal_with_its_covariance():
    cov = (_W @ _W.transpose(0, 2, 1) + np.stack([np.diag(d) for d in _DIAG])).astype(np.float64)
    d = D.LowRankMultivariateNormal(T(_MVLOC), T(_W), T(_DIAG))
    x = _MVLOC[::-1].copy()
    _close(d.log_prob(T(x)), _mvn_logpdf(x.astype(np.float64), _MVLOC.astype(np.float64), cov), tol=1e-5)
    _close(d.covariance_matrix, cov, tol=1e-5)
    _close(d.precision_matrix, np.linalg.inv(cov), tol=1e-4)
    _close(d.scale_tril, np.linalg.cholesky(cov), tol=1e-5)
    _close(d.entropy(), 0.5 * (3 * (1 + np.log(2 * np.pi)) + np.linalg.slogdet(cov)[1]), tol=1e-5)
    with pytest.raises(ValueError, match="cov_factor must be a batch of matrices with shape 3 x m"):
        D.LowRankMultivariateNormal(T(_MVLOC), T(_W[:, :2]), T(_DIAG))
    with pytest.raises(ValueError, match=r"cov_diag must be a batch of vectors with shape"):
        D.LowRankMultivariateNormal(T(_MVLOC), T(_W), T(_DIAG[:, :2]))
    with pytest.raises(ValueError, match="Incompatible batch shapes"):
        D.LowRankMultivariateNormal(T(np.zeros((4, 3), np.float32)), T(_W), T(_DIAG))


def test_wishart_log_prob_closed_form():
    nu, p = np.float64([4.0, 6.0]), 3
    cov = _COV.astype(np.float64)
    x = _SPD.astype(np.float64)
    multigammaln = np.array([p * (p - 1) / 4 * np.log(np.pi) + sum(math.lgamma(n / 2 - j / 2) for j in range(p))
                             for n in nu])
    ref = ((nu - p - 1) / 2 * np.linalg.slogdet(x)[1] - np.trace(np.linalg.solve(cov, x), axis1=-2, axis2=-1) / 2
           - nu * p / 2 * np.log(2) - nu / 2 * np.linalg.slogdet(cov)[1] - multigammaln)
    _close(D.Wishart(T(nu.astype(np.float32)), covariance_matrix=T(_COV)).log_prob(T(_SPD)), ref, tol=1e-4)
    with pytest.raises(ValueError, match=r"expected to be greater than ndim - 1 = 2"):
        D.Wishart(T([2.0]), covariance_matrix=T(_COV[0]))
    with pytest.raises(ValueError, match="Exactly one of covariance_matrix or precision_matrix or scale_tril"):
        D.Wishart(T([4.0]))


def test_lkj_cholesky_samples():
    """For dim 2 the correlation is 2 Beta(eta, eta) - 1 (variance 1 / (2 eta + 1)); every sample is a
    valid correlation Cholesky factor, and log_prob integrates to one over the correlation."""
    tracenn.manual_seed(0)
    eta = np.float32([0.5, 1.0, 4.0])
    s = D.LKJCholesky(2, T(eta)).sample((40000,))
    assert bool(C.corr_cholesky.check(s).all())
    r = to_np(s)[..., 1, 0].astype(np.float64)
    var = 1 / (2 * eta + 1)
    np.testing.assert_array_less(np.abs(r.var(0) - var), 5 * r.std(0) ** 2 * np.sqrt(2 / 40000) + 1e-6)
    # density over r: dL/dr of L = [[1, 0], [r, sqrt(1 - r^2)]] has the Jacobian 1 (L is r's chart)
    grid = np.linspace(-1 + 1e-6, 1 - 1e-6, 400001)
    L = np.zeros((grid.size, 1, 2, 2), np.float32)
    L[..., 0, 0], L[..., 1, 0], L[..., 1, 1] = 1, grid[:, None], np.sqrt(1 - grid[:, None] ** 2)
    density = np.exp(to_np(D.LKJCholesky(2, T([1.0, 4.0])).log_prob(T(L).expand(-1, 2, 2, 2))).astype(np.float64))
    _close(np.trapezoid(density, grid, axis=0), np.ones(2), tol=1e-3)
    with pytest.raises(ValueError, match="Expected dim to be an integer greater than or equal to 2. Found dim=1."):
        D.LKJCholesky(1)


def test_rsample_gradients_match_finite_differences():
    """The same seed gives the same draw, so d(sum of draws)/dparam is a finite difference."""
    cases = [("Weibull", (_POS, _POS2)), ("Pareto", (_POS, _POS2)), ("HalfCauchy", (_POS,)),
             ("GeneralizedPareto", (np.float32([0.1, 0.2, 0.3]), _POS, np.float32([0.2, 0.1, -0.2]))),
             ("Kumaraswamy", (_POS2, _POS)), ("LogisticNormal", (np.float32([0.3, -0.2]), np.float32([1.0, 0.5])))]
    for name, params in cases:
        def total(*ps):
            tracenn.manual_seed(3)
            return getattr(D, name)(*ps).rsample((5,)).sum()
        ts = [T(p.astype(np.float64), requires_grad=True) for p in params]
        total(*ts).backward()
        for i, p in enumerate(params):
            h, fd = 1e-6, np.zeros(p.shape)
            for j in range(p.size):
                up, dn = [q.astype(np.float64) for q in params], [q.astype(np.float64) for q in params]
                up[i].flat[j] += h
                dn[i].flat[j] -= h
                fd.flat[j] = (float(total(*map(T, up))) - float(total(*map(T, dn)))) / (2 * h)
            np.testing.assert_allclose(to_np(ts[i].grad), fd, rtol=1e-4, atol=1e-6, err_msg=f"{name}[{i}]")


def test_straight_through_rsample_is_one_hot_with_the_gradient_of_probs():
    probs, ref = T([0.2, 0.6], requires_grad=True), T([0.2, 0.6], requires_grad=True)
    draw = D.OneHotCategoricalStraightThrough(probs).rsample()
    assert sorted(to_np(draw).tolist()) == [0.0, 1.0]
    (draw * T([1.0, 3.0])).sum().backward()
    ((ref / ref.sum()) * T([1.0, 3.0])).sum().backward()  # (the normalized probs' gradient)
    _close(probs.grad, to_np(ref.grad), tol=1e-6)


def test_validation_errors():
    with pytest.raises(ValueError, match=r"Expected parameter scale .* of distribution Weibull\(scale: "
                                         r"tensor\(\[-1.\]\), concentration: tensor\(\[1.\]\)\) to satisfy"):
        D.Weibull(T([-1.0]), T([1.0]))
    with pytest.raises(ValueError, match=r"Expected parameter rate .* of distribution Exponential"):
        D.Pareto(T([1.0]), T([0.0]))  # (the base distribution's check comes first, as torch's)
    with pytest.raises(ValueError, match=r"to be within the support \(GreaterThanEq\(lower_bound=tensor\(\[2.\]\)"):
        D.Pareto(T([2.0]), T([1.0])).log_prob(T([1.0]))
    with pytest.raises(ValueError, match="The parameter probs has invalid values"):
        D.ContinuousBernoulli(T([1.5]), validate_args=True)
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
        D.NegativeBinomial(2.0, probs=T([0.5]), logits=T([0.0]))
    with pytest.raises(ValueError, match=r"HalfOpenInterval\(lower_bound=0.0, upper_bound=1.0\)"):
        D.NegativeBinomial(2.0, probs=T([1.0]))
    with pytest.raises(ValueError, match=r"Expected parameter concentration .* of distribution VonMises"):
        D.VonMises(T([0.0]), T([-1.0]))
    D.Weibull(T([-1.0]), T([1.0]), validate_args=False)  # (no check when asked not to)


def test_exponential_family_members_and_bregman_entropy():
    torch_members = ["Bernoulli", "Beta", "ContinuousBernoulli", "Dirichlet", "Exponential", "Gamma", "Normal",
                     "Poisson", "Wishart", "Chi2"]
    for name in torch_members:
        assert issubclass(getattr(D, name), D.ExponentialFamily), name
    assert not issubclass(D.StudentT, D.ExponentialFamily)
    for d in [D.Normal(T([0.3, 1.0]), T([0.5, 2.0])), D.Gamma(T([0.5, 3.0]), T([2.0, 1.0])),
              D.Exponential(T([0.5, 3.0])), D.Bernoulli(T([0.2, 0.7])), D.ContinuousBernoulli(T([0.2, 0.7])),
              D.Wishart(T([4.0, 6.0]), covariance_matrix=T(_COV))]:
        _close(D.ExponentialFamily.entropy(d), to_np(d.entropy()), tol=1e-4)


# ---- KL ----------------------------------------------------------------------------------------------

_KL_MAKERS = {
    "Pareto": lambda M, t: M.Pareto(t([1.0, 2.0]), t([3.5, 4.0])),
    "Pareto2": lambda M, t: M.Pareto(t([0.5, 1.5]), t([2.0, 3.0])),
    "ContinuousBernoulli": lambda M, t: M.ContinuousBernoulli(t([0.2, 0.8])),
    "ContinuousBernoulli2": lambda M, t: M.ContinuousBernoulli(t([0.6, 0.5001])),
    "Exponential": lambda M, t: M.Exponential(t([0.5, 2.0])),
    "Gamma": lambda M, t: M.Gamma(t([1.5, 2.0]), t([1.0, 0.5])),
    "Normal": lambda M, t: M.Normal(t([0.3, 1.0]), t([1.0, 2.0])),
    "Beta": lambda M, t: M.Beta(t([1.5, 2.0]), t([2.0, 0.8])),
    "Uniform": lambda M, t: M.Uniform(t([0.1, 0.0]), t([0.9, 1.0])),
    "Uniform2": lambda M, t: M.Uniform(t([1.5, 2.0]), t([3.0, 4.0])),
    "LowRank": lambda M, t: M.LowRankMultivariateNormal(t(_MVLOC), t(_W), t(_DIAG)),
    "LowRank2": lambda M, t: M.LowRankMultivariateNormal(t(_MVLOC[::-1].copy()), t(_W * 0.5), t(_DIAG[::-1].copy())),
    "MVN": lambda M, t: M.MultivariateNormal(t(_MVLOC * 0.5), covariance_matrix=t(_COV)),
    "Wishart": lambda M, t: M.Wishart(t([4.0, 6.0]), covariance_matrix=t(_COV)),
    "Wishart2": lambda M, t: M.Wishart(t([5.0, 3.5]), covariance_matrix=t(_COV[::-1].copy())),
    # (unbatched: torch 2.13's ExponentialFamily KL sums a batched Wishart's df term over the batch)
    "Wishart1": lambda M, t: M.Wishart(t(4.0), covariance_matrix=t(_COV[0])),
    "Wishart3": lambda M, t: M.Wishart(t(5.0), covariance_matrix=t(_COV[1])),
}
_KL_PAIRS = [("Pareto", "Pareto2"), ("Pareto2", "Pareto"), ("Pareto", "Exponential"), ("Pareto", "Gamma"),
             ("Pareto", "Normal"), ("Pareto", "Beta"), ("Uniform2", "Pareto"), ("Beta", "Pareto"),
             ("ContinuousBernoulli", "ContinuousBernoulli2"), ("ContinuousBernoulli", "Exponential"),
             ("ContinuousBernoulli", "Normal"), ("ContinuousBernoulli", "Uniform"), ("ContinuousBernoulli", "Pareto"),
             ("Beta", "ContinuousBernoulli"), ("Uniform", "ContinuousBernoulli"), ("Normal", "ContinuousBernoulli"),
             ("Exponential", "Pareto"), ("Gamma", "ContinuousBernoulli"), ("LowRank", "LowRank2"),
             ("LowRank", "MVN"), ("MVN", "LowRank"), ("Wishart1", "Wishart3")]


@pytest.mark.parametrize("p,q", _KL_PAIRS, ids=[f"{p}-{q}" for p, q in _KL_PAIRS])
def test_kl_against_torch(p, q):
    torch = pytest.importorskip("torch")
    ours = kl_divergence(_KL_MAKERS[p](D, T), _KL_MAKERS[q](D, T))
    theirs = torch.distributions.kl_divergence(_KL_MAKERS[p](torch.distributions, torch.tensor),
                                               _KL_MAKERS[q](torch.distributions, torch.tensor))
    np.testing.assert_allclose(to_np(ours.detach()), theirs.detach().numpy(), rtol=2e-4, atol=1e-4)


_KL_MC = [("Pareto", "Pareto2"), ("Pareto", "Exponential"), ("Pareto", "Gamma"), ("ContinuousBernoulli",
          "ContinuousBernoulli2"), ("ContinuousBernoulli", "Normal"), ("Beta", "ContinuousBernoulli"),
          ("LowRank", "LowRank2"), ("LowRank", "MVN"), ("MVN", "LowRank"), ("Wishart", "Wishart2")]


@pytest.mark.parametrize("p,q", _KL_MC, ids=[f"{p}-{q}" for p, q in _KL_MC])
def test_kl_against_monte_carlo(p, q):
    tracenn.manual_seed(1)
    dp, dq = _KL_MAKERS[p](D, T), _KL_MAKERS[q](D, T)
    n = 40000
    x = dp.sample((n,))
    terms = to_np(dp.log_prob(x) - dq.log_prob(x)).astype(np.float64)
    kl = to_np(kl_divergence(dp, dq).detach())
    np.testing.assert_array_less(np.abs(terms.mean(0) - kl), 5 * terms.std(0) / np.sqrt(n))


def test_kl_infinite_and_refused_pairs():
    inf = np.full(2, np.inf)
    _close(kl_divergence(_KL_MAKERS["Pareto2"](D, T), _KL_MAKERS["Pareto"](D, T))[0], np.inf)  # 0.5 < 1: outside
    for p, q in [("Beta", "Pareto"), ("Pareto", "Beta"), ("Exponential", "Pareto"), ("ContinuousBernoulli", "Pareto")]:
        _close(kl_divergence(_KL_MAKERS[p](D, T), _KL_MAKERS[q](D, T)), inf)
    with pytest.raises(NotImplementedError, match="between different exponential families"):
        kl_divergence(D.Poisson(T([1.0])), D.Exponential(T([1.0])))


# ---- transforms and the constraint registry ------------------------------------------------------------

def _jacobian_fd(f, x, h=1e-6):
    """d f(x)[i] / d x[j] of a map of one vector (float64 NumPy), by central differences."""
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, -1)


_VECTOR_BIJECTIONS = [
    ("StickBreaking", lambda M: M.StickBreakingTransform(), np.float64([0.3, -1.2, 0.8]), lambda y: y[:-1]),
    ("CorrCholesky", lambda M: M.CorrCholeskyTransform(), np.float64([0.3, -1.2, 0.8]),
     lambda y: y[np.tril_indices(3, -1)]),
    ("Softplus", lambda M: M.SoftplusTransform(), np.float64([0.3, -1.2, 0.8]), lambda y: y),
    ("Independent", lambda M: M.IndependentTransform(M.ExpTransform(), 1), np.float64([0.3, -1.2]), lambda y: y),
    ("Reshape", lambda M: M.ReshapeTransform((4,), (2, 2)), np.float64([0.3, -1.2, 0.8, 2.0]), lambda y: y.ravel()),
    ("Cat", lambda M: M.CatTransform([M.ExpTransform(), M.SoftplusTransform()], 0, [2, 1]),
     np.float64([0.3, -1.2, 0.8]), lambda y: y),
    ("Stack", lambda M: M.StackTransform([M.ExpTransform(), M.AffineTransform(1.0, 3.0)], 0),
     np.float64([0.3, -1.2]), lambda y: y),
]


@pytest.mark.parametrize("name,make,x,coords", _VECTOR_BIJECTIONS, ids=[b[0] for b in _VECTOR_BIJECTIONS])
def test_structured_transforms_round_trip_and_log_det(name, make, x, coords):
    t = make(Tr)
    y = t(T(x))
    _close(t.inv(y), x, tol=1e-6)
    jac = _jacobian_fd(lambda v: coords(to_np(t(T(v)))), x)
    logdet = np.linalg.slogdet(jac)[1]
    ldj = to_np(t.log_abs_det_jacobian(T(x), y))
    if name in ("Cat", "Stack", "Softplus"):  # (event_dim 0: one term per element; the Jacobian is diagonal)
        ldj = ldj.sum()
    _close(ldj, logdet, tol=1e-5)
    assert bool(t.codomain.check(y).all())
    assert tuple(t.forward_shape(x.shape)) == tuple(y.shape) and tuple(t.inverse_shape(y.shape)) == x.shape


@pytest.mark.parametrize("name,make,x,coords", _VECTOR_BIJECTIONS, ids=[b[0] for b in _VECTOR_BIJECTIONS])
def test_structured_transforms_against_torch(name, make, x, coords):
    torch = pytest.importorskip("torch")
    ours, theirs = make(Tr), make(torch.distributions.transforms)
    xb = np.stack([x, x[::-1]]).astype(np.float32) if name not in ("Cat", "Stack") else x.astype(np.float32)
    y, ty = ours(T(xb)), theirs(torch.tensor(xb))
    _close(y, ty.numpy())
    _close(ours.log_abs_det_jacobian(T(xb), y), theirs.log_abs_det_jacobian(torch.tensor(xb), ty).numpy(), tol=1e-5)
    _close(ours.inv(y), theirs.inv(ty).numpy(), tol=1e-5)
    assert repr(ours.domain) == repr(theirs.domain) and repr(ours.codomain) == repr(theirs.codomain)
    assert ours.bijective == theirs.bijective and repr(ours) == repr(theirs)


def test_matrix_transforms_and_cdf_transform():
    x = np.float32([[0.3, 9.0], [-1.0, 0.2]])
    L = Tr.LowerCholeskyTransform()(T(x))
    _close(L, np.float32([[math.exp(0.3), 0.0], [-1.0, math.exp(0.2)]]))
    _close(Tr.LowerCholeskyTransform().inv(L), np.tril(x))
    P = Tr.PositiveDefiniteTransform()(T(x))
    assert bool(C.positive_definite.check(P))
    _close(Tr.PositiveDefiniteTransform().inv(P), np.tril(x), tol=1e-5)
    d = D.Normal(T(0.5), T(2.0))
    t = Tr.CumulativeDistributionTransform(d)
    v = T([-1.0, 0.5, 3.0])
    _close(t(v), to_np(d.cdf(v)))
    _close(t.inv(t(v)), to_np(v), tol=1e-5)
    _close(t.log_abs_det_jacobian(v, t(v)), to_np(d.log_prob(v)))
    assert t.domain is d.support and t.codomain is C.unit_interval
    with pytest.raises(ValueError, match="in_shape, out_shape have different numbers of elements"):
        Tr.ReshapeTransform((3,), (2, 2))
    cached = Tr.CatTransform([Tr.AffineTransform(1.0, 2.0), Tr.ExpTransform().inv,
                              Tr.ComposeTransform([Tr.PowerTransform(2.0)])], cache_size=1)
    assert [t._cache_size for t in cached.transforms] == [1, 1, 1]
    _close(cached(T([1.0, math.e, 3.0])), [3.0, 1.0, 9.0], tol=1e-6)


_CONSTRAINTS = ["real", "positive", "nonnegative", "unit_interval", "simplex", "real_vector", "lower_cholesky",
                "positive_definite", "corr_cholesky", "greater_than(1.5)", "greater_than_eq(-1.0)",
                "less_than(2.0)", "interval(-1.0, 3.0)", "half_open_interval(0.0, 2.0)",
                "independent(positive, 1)", "cat([positive, real], 0, [2, 1])", "stack([positive, unit_interval], 0)"]


def _constraint(mod, spec):
    return eval(spec, {n: getattr(mod, n) for n in dir(mod) if not n.startswith("__")})


@pytest.mark.parametrize("spec", _CONSTRAINTS)
def test_biject_to_and_transform_to_land_in_the_constraint(spec):
    constraint = _constraint(C, spec)
    matrix = spec in ("lower_cholesky", "positive_definite")
    x = T(_rng.standard_normal((3, 3) if matrix else (2, 3) if spec != "corr_cholesky" else (2, 6)).astype(np.float32))
    if spec.startswith(("stack", "cat")):  # (dim 0 is the one split)
        x = T(_rng.standard_normal((2, 4) if spec.startswith("stack") else (3, 2)).astype(np.float32))
    for registry in (biject_to, transform_to):
        try:
            t = registry(constraint)
        except NotImplementedError:
            assert registry is biject_to and spec in ("lower_cholesky", "positive_definite")
            continue
        y = t(x)
        assert bool(constraint.check(y).all()), (spec, y)
        if registry is biject_to or spec not in ("simplex",):
            _close(t(t.inv(y)), to_np(y), tol=1e-4)


@pytest.mark.parametrize("spec", _CONSTRAINTS)
def test_constraint_registry_against_torch(spec):
    torch = pytest.importorskip("torch")
    from torch.distributions import constraint_registry as R
    for ours, theirs in [(biject_to, R.biject_to), (transform_to, R.transform_to)]:
        outcome = []
        for registry, mod in [(ours, C), (theirs, torch.distributions.constraints)]:
            try:
                outcome.append(repr(registry(_constraint(mod, spec))).replace("tensor", "t"))
            except NotImplementedError as e:
                outcome.append(str(e))
        assert outcome[0] == outcome[1]


def test_constrained_parameters_compile_and_differentiate_like_eager():
    """The usual use of biject_to: unconstrained parameters mapped onto a constraint inside a loss."""
    target = T(_CORR_L[0])

    def loss(v, w, m):
        L = biject_to(C.corr_cholesky)(v)
        probs = biject_to(C.simplex)(w)
        cov = transform_to(C.positive_definite)(m)
        return ((L - target) ** 2).sum() + D.LKJCholesky(3, 2.0).log_prob(L) + (probs * T([1.0, 2.0, 3.0])).sum() \
            + D.Wishart(5.0, covariance_matrix=T(_COV[0])).log_prob(cov)

    values = [_rng.standard_normal(3).astype(np.float32), _rng.standard_normal(2).astype(np.float32),
              _rng.standard_normal((3, 3)).astype(np.float32)]
    eager_in, comp_in = [[T(v, requires_grad=True) for v in values] for _ in range(2)]
    e = loss(*eager_in)
    e.backward()
    compiled = tracenn.compile(loss)
    c = compiled(*comp_in)
    c.backward()
    assert not compiled._last.eager
    _close(c, to_np(e), tol=1e-4)
    for a, b in zip(comp_in, eager_in):
        _close(a.grad, to_np(b.grad), tol=1e-4)


def test_constrained_parameter_gradients_against_torch():
    torch = pytest.importorskip("torch")
    from torch.distributions import constraint_registry as R

    def loss(M, t, Cs, bij, tto, v, w, m):
        L, probs, cov = bij(Cs.corr_cholesky)(v), bij(Cs.simplex)(w), tto(Cs.positive_definite)(m)
        return (M.LKJCholesky(3, 2.0).log_prob(L) + (probs * t([1.0, 2.0, 3.0])).sum()
                + M.Wishart(t(5.0), covariance_matrix=t(_COV[0])).log_prob(cov))

    values = [np.float32([0.3, -0.5, 0.9]), np.float32([0.2, -1.0]), _A[0]]
    ours = [T(v, requires_grad=True) for v in values]
    theirs = [torch.tensor(v, requires_grad=True) for v in values]
    a = loss(D, T, C, biject_to, transform_to, *ours)
    b = loss(torch.distributions, torch.tensor, torch.distributions.constraints, R.biject_to, R.transform_to, *theirs)
    a.backward()
    b.backward()
    _close(a, b.detach().numpy(), tol=1e-4)
    for x, y in zip(ours, theirs):
        _close(x.grad, y.grad.numpy(), tol=1e-3)


def test_new_constraints_check():
    sq = T(np.float32([[2.0, 1.0], [1.0, 2.0]]))
    assert bool(C.symmetric.check(sq)) and bool(C.positive_semidefinite.check(sq)) and bool(C.square.check(sq))
    assert not bool(C.square.check(T(np.zeros((2, 3), np.float32))))
    assert not bool(C.positive_semidefinite.check(T(np.float32([[1.0, 2.0], [2.0, 1.0]]))))
    assert not bool(C.lower_triangular.check(sq)) and bool(C.lower_triangular.check(sq.tril()))
    assert bool(C.corr_cholesky.check(T(_CORR_L)).all()) and not bool(C.corr_cholesky.check(sq.tril()))
    assert C.less_than(1.0).check(T([0.5, 1.0])).tolist() == [True, False]
    assert repr(C.less_than(1.0)) == "LessThan(upper_bound=1.0)" and repr(C.greater_than_eq(0)) == \
        "GreaterThanEq(lower_bound=0)"
    assert C.cat([C.positive, C.real], 0, [1, 2]).check(T([-1.0, -1.0, 5.0])).tolist() == [False, True, True]
    assert C.stack([C.positive, C.real], 1).check(T([[-1.0, -1.0]])).tolist() == [[False, True]]
    m = C.MixtureSameFamilyConstraint(C.greater_than(T([0.0, 1.0])))
    assert m.check(T([0.5, 2.0])).tolist() == [False, True]


# ---- import paths ------------------------------------------------------------------------------------

_SUBMODULES = {"bernoulli": "Bernoulli", "beta": "Beta", "normal": "Normal", "studentT": "StudentT",
               "one_hot_categorical": "OneHotCategoricalStraightThrough", "weibull": "Weibull",
               "von_mises": "VonMises", "lowrank_multivariate_normal": "LowRankMultivariateNormal",
               "relaxed_categorical": "ExpRelaxedCategorical", "exp_family": "ExponentialFamily",
               "transformed_distribution": "TransformedDistribution", "wishart": "Wishart"}


def test_torch_submodule_paths_import():
    for module, name in _SUBMODULES.items():
        m = importlib.import_module(f"tracenn.distributions.{module}")
        assert getattr(m, name) is getattr(D, name)
    from tracenn.distributions.multivariate_normal import _batch_mahalanobis  # noqa: F401
    from tracenn.distributions.utils import broadcast_all, lazy_property, probs_to_logits  # noqa: F401
    from tracenn.distributions.transforms import StickBreakingTransform  # noqa: F401
    from tracenn.distributions.constraint_registry import ConstraintRegistry  # noqa: F401
    assert D.transforms.identity_transform is D.identity_transform


def test_every_torch_name_and_submodule_exists():
    torch = pytest.importorskip("torch")
    import types
    TD = torch.distributions
    assert [n for n in TD.__all__ if not hasattr(D, n)] == []
    for n in dir(TD):
        if isinstance(getattr(TD, n), types.ModuleType):
            m = importlib.import_module(f"tracenn.distributions.{n}")
            assert [a for a in getattr(getattr(TD, n), "__all__", []) if not hasattr(m, a)] == [], n
    ours = {(p.__name__, q.__name__) for p, q in D.kl._KL_REGISTRY}
    assert {(p.__name__, q.__name__) for p, q in TD.kl._KL_REGISTRY} - ours == set()
