"""tracenn.distributions.transforms and TransformedDistribution: round trips, log-|det J| against
autograd and closed forms, transformed densities against known families and against PyTorch."""
import math

import numpy as np
import pytest

import tracenn
import tracenn.distributions as D
from tracenn.distributions import transforms as Tr
from helpers import to_np

T = tracenn.tensor
_X = np.float32([-1.5, -0.2, 0.3, 1.1])


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(to_np(a) if not isinstance(a, np.ndarray) else a, b, rtol=tol, atol=tol)


# name, tracenn transform (built from a module), input
BIJECTIONS = [
    ("Exp", lambda M: M.ExpTransform(), _X),
    ("Affine", lambda M: M.AffineTransform(0.5, -2.0), _X),
    ("Sigmoid", lambda M: M.SigmoidTransform(), _X),
    ("Tanh", lambda M: M.TanhTransform(), _X),
    ("Power", lambda M: M.PowerTransform(3.0), np.abs(_X) + 0.1),
    ("Compose", lambda M: M.ComposeTransform([M.AffineTransform(1.0, 0.5), M.ExpTransform()]), _X),
    ("InverseExp", lambda M: M.ExpTransform().inv, np.abs(_X) + 0.1),
]


@pytest.mark.parametrize("name,make,x", BIJECTIONS, ids=[b[0] for b in BIJECTIONS])
def test_round_trip_and_log_det_jacobian_by_autograd(name, make, x):
    t = make(Tr)
    xs = T(x, requires_grad=True)
    y = t(xs)
    _close(t.inv(y), x, tol=1e-5)
    (dy,) = tracenn.autograd.grad(y.sum(), xs)  # elementwise: the Jacobian is diagonal
    _close(t.log_abs_det_jacobian(xs, y), np.log(np.abs(to_np(dy))), tol=1e-4)
    assert t.bijective


@pytest.mark.parametrize("name,make,x", BIJECTIONS, ids=[b[0] for b in BIJECTIONS])
def test_transforms_against_torch(name, make, x):
    torch = pytest.importorskip("torch")
    ours, theirs = make(Tr), make(torch.distributions.transforms)
    y, ty = ours(T(x)), theirs(torch.tensor(x))
    _close(y, ty.numpy())
    _close(ours.log_abs_det_jacobian(T(x), y), theirs.log_abs_det_jacobian(torch.tensor(x), ty).numpy(), tol=1e-5)
    assert repr(ours) == repr(theirs)
    assert repr(ours.codomain) == repr(theirs.codomain) and ours.sign == theirs.sign


def test_softmax_abs_and_affine_event_dim():
    x = T([[0.1, 1.0, -2.0]])
    s = Tr.SoftmaxTransform()(x)
    _close(s.sum(-1), [1.0])
    _close(Tr.SoftmaxTransform()(Tr.SoftmaxTransform().inv(s)), to_np(s))
    assert Tr.SoftmaxTransform().codomain.event_dim == 1 and not Tr.SoftmaxTransform().bijective
    _close(Tr.AbsTransform()(T([-2.0, 3.0])), [2.0, 3.0])
    a = Tr.AffineTransform(T([0.0, 1.0]), T([2.0, 3.0]), event_dim=1)
    _close(a.log_abs_det_jacobian(T([[1.0, 1.0]]), a(T([[1.0, 1.0]]))), [math.log(6)])


def test_transformed_distributions_equal_known_families():
    loc, scale, x = T([0.2, -0.5]), T([0.7, 1.3]), T([0.4, 2.0])
    lognormal = D.TransformedDistribution(D.Normal(loc, scale), [Tr.ExpTransform()])
    _close(lognormal.log_prob(x), to_np(D.LogNormal(loc, scale).log_prob(x)))
    _close(lognormal.cdf(x), to_np(D.LogNormal(loc, scale).cdf(x)))
    _close(lognormal.icdf(T([0.3, 0.8])), to_np(D.LogNormal(loc, scale).icdf(T([0.3, 0.8]))))
    # Normal(loc, scale) as an affine map of Normal(0, 1), with a negative scale: cdf flips
    affine = D.TransformedDistribution(D.Normal(0.0, 1.0).expand((2,)), [Tr.AffineTransform(loc, -scale)])
    _close(affine.log_prob(x), to_np(D.Normal(loc, scale).log_prob(x)))
    _close(affine.cdf(x), to_np(D.Normal(loc, scale).cdf(x)))
    # Gumbel(0, 1) is -log(Exponential(1)); a uniform through sigmoid^-1 is the logistic
    gumbel = D.TransformedDistribution(D.Exponential(T([1.0, 1.0])), [Tr.ExpTransform().inv, Tr.AffineTransform(0.0, -1.0)])
    _close(gumbel.log_prob(x), to_np(D.Gumbel(0.0, 1.0).log_prob(x)))
    logistic = D.TransformedDistribution(D.Uniform(T([0.0, 0.0]), T([1.0, 1.0])), [Tr.SigmoidTransform().inv])
    _close(logistic.log_prob(x), to_np(-x - 2 * (-x).exp().log1p()))
    assert lognormal.has_rsample and lognormal.batch_shape == (2,) and lognormal.event_shape == ()
    assert lognormal.sample((3,)).shape == (3, 2) and lognormal.expand((4, 2)).sample().shape == (4, 2)
    loc_r = T([0.2, -0.5], requires_grad=True)
    D.TransformedDistribution(D.Normal(loc_r, scale), [Tr.TanhTransform()]).rsample((5,)).sum().backward()
    assert np.all(np.isfinite(to_np(loc_r.grad)))


def test_transformed_shapes_with_event_dims():
    base = D.Normal(tracenn.zeros(2, 3), tracenn.ones(2, 3))
    d = D.TransformedDistribution(base, [Tr.SoftmaxTransform()])
    assert d.batch_shape == (2,) and d.event_shape == (3,) and d.sample((4,)).shape == (4, 2, 3)
    assert repr(d.support) == "Simplex()"
    a = D.TransformedDistribution(D.Normal(tracenn.zeros(3), tracenn.ones(3)),
                                  [Tr.AffineTransform(tracenn.zeros(3), 2 * tracenn.ones(3), event_dim=1)])
    assert a.batch_shape == () and a.event_shape == (3,)
    _close(a.log_prob(tracenn.zeros(3)), 3 * (-math.log(2) - 0.5 * math.log(2 * math.pi)))
    with pytest.raises(ValueError, match="transforms must be a Transform or list"):
        D.TransformedDistribution(base, Tr.ExpTransform)


def test_transformed_against_torch():
    torch = pytest.importorskip("torch")
    td, tt = torch.distributions, torch.distributions.transforms
    loc, scale = np.float32([0.2, -0.5]), np.float32([0.7, 1.3])
    for make in (lambda M, N, t: N.TransformedDistribution(N.Normal(t(loc), t(scale)), [M.AffineTransform(1.0, 2.0),
                                                                                         M.TanhTransform()]),
                 lambda M, N, t: N.TransformedDistribution(N.Normal(t(loc), t(scale)), [M.SigmoidTransform(),
                                                                                         M.PowerTransform(2.0)])):
        ours, theirs = make(Tr, D, T), make(tt, td, torch.tensor)
        v = theirs.sample()
        _close(ours.log_prob(T(v.numpy())), theirs.log_prob(v).numpy(), tol=1e-4)
        _close(ours.cdf(T(v.numpy())), theirs.cdf(v).numpy(), tol=1e-4)
        assert repr(ours.support) == repr(theirs.support)


def test_transformed_log_prob_compiled_equals_eager():
    def nll(loc, scale, x):
        d = D.TransformedDistribution(D.Normal(loc, scale), [Tr.AffineTransform(0.5, 2.0), Tr.ExpTransform()])
        return -d.log_prob(x).sum()

    args = (T([0.1, 0.4]), T([1.0, 0.5]), T([0.8, 3.0]))
    compiled = tracenn.compile(nll)
    _close(compiled(*args), to_np(nll(*args)))
