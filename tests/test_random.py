"""The generator: seeding reproduces streams, draws differ call to call, distributions are right."""
import numpy as np
import pytest

import tracenn


def test_manual_seed_reproduces():
    tracenn.manual_seed(123)
    a = tracenn.randn(5)
    b = tracenn.rand(3)
    tracenn.manual_seed(123)
    assert a.tolist() == tracenn.randn(5).tolist()
    assert b.tolist() == tracenn.rand(3).tolist()


def test_draws_differ():
    assert tracenn.randn(4).tolist() != tracenn.randn(4).tolist()


def test_generator_objects_are_independent():
    g1 = tracenn.Generator().manual_seed(7)
    g2 = tracenn.Generator().manual_seed(7)
    tracenn.randn(3)  # the global generator does not disturb g1/g2
    assert tracenn.randn(3, generator=g1).tolist() == tracenn.randn(3, generator=g2).tolist()
    assert g1.initial_seed() == 7


def test_state_roundtrip():
    g = tracenn.Generator().manual_seed(5)
    g.randn = None
    tracenn.rand(2, generator=g)
    state = g.get_state()
    a = tracenn.rand(4, generator=g).tolist()
    g.set_state(state)
    assert tracenn.rand(4, generator=g).tolist() == a
    with pytest.raises(RuntimeError, match="16 bytes"):
        g.set_state(tracenn.zeros(3, dtype=tracenn.uint8))


def test_distributions():
    x = np.asarray(tracenn.rand(20000)._value)
    assert x.min() >= 0 and x.max() < 1 and abs(x.mean() - 0.5) < 0.02
    z = np.asarray(tracenn.randn(20000)._value)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    n = np.asarray(tracenn.normal(2.0, 3.0, (20000,))._value)
    assert abs(n.mean() - 2) < 0.1 and abs(n.std() - 3) < 0.1
    r = np.asarray(tracenn.randint(3, 7, (1000,))._value)
    assert r.min() == 3 and r.max() == 6 and r.dtype == np.int64
    p = tracenn.randperm(10)
    assert sorted(p.tolist()) == list(range(10)) and p.dtype is tracenn.int64
    b = tracenn.bernoulli(tracenn.full((10000,), 0.3))
    assert abs(b.mean().item() - 0.3) < 0.03


def test_inplace_fills():
    x = tracenn.zeros(10000)
    x.normal_(1.0, 0.5)
    assert abs(x.mean().item() - 1.0) < 0.05
    x.uniform_(-2, 2)
    assert x.min().item() >= -2 and x.max().item() < 2
    i = tracenn.zeros(5, dtype=tracenn.int64)
    i.random_(0, 3)
    assert set(i.tolist()) <= {0, 1, 2}


def test_random_dtypes_and_errors():
    assert tracenn.randn(2, dtype=tracenn.float64).dtype is tracenn.float64
    assert tracenn.rand(2, dtype=tracenn.bfloat16).dtype is tracenn.bfloat16
    with pytest.raises(RuntimeError, match="from=5 >= to=5"):
        tracenn.randint(5, 5, (2,))
    with pytest.raises(TypeError, match="manual_seed expected an int"):
        tracenn.manual_seed(1.5)


def test_multinomial():
    probs = tracenn.tensor([0.0, 1.0, 0.0])
    assert tracenn.multinomial(probs, 2, replacement=True).tolist() == [1, 1]
    s = tracenn.multinomial(tracenn.tensor([1.0, 1.0, 1.0, 1.0]), 4)
    assert sorted(s.tolist()) == [0, 1, 2, 3]
    with pytest.raises(RuntimeError, match="without replacement"):
        tracenn.multinomial(probs, 5)


def test_standard_gamma_moments_dtypes_and_seed():
    """One Gamma(a, 1) draw per element: mean and variance are both ``a``; small shapes (boosted)
    too. Half-precision shapes give half-precision draws; the seed reproduces them."""
    a = tracenn.tensor([0.3, 1.0, 2.5, 9.0])
    s = tracenn._standard_gamma(a.expand(20000, 4)).double().numpy()
    assert s.shape == (20000, 4) and (s > 0).all()
    np.testing.assert_allclose(s.mean(0), a.numpy(), rtol=0.05)
    np.testing.assert_allclose(s.var(0), a.numpy(), rtol=0.1)
    assert tracenn._standard_gamma(a.to(tracenn.bfloat16)).dtype == tracenn.bfloat16
    tracenn.manual_seed(4)
    first = tracenn._standard_gamma(a).tolist()
    tracenn.manual_seed(4)
    assert tracenn._standard_gamma(a).tolist() == first
    assert tracenn._standard_gamma(a).tolist() != first
    with pytest.raises(RuntimeError, match="floating-point"):
        tracenn._standard_gamma(tracenn.tensor([1, 2]))


def test_standard_gamma_gradient_is_implicit_reparameterization():
    """d x / d a of a draw is -(dF(x; a)/da) / f(x; a): checked with a central difference of the
    regularized incomplete gamma function F and the density f (float64)."""
    a = tracenn.tensor([0.4, 1.0, 3.0, 12.0], dtype=tracenn.float64, requires_grad=True)
    x = tracenn._standard_gamma(a)
    x.sum().backward()
    av, xv, h = a.detach(), x.detach(), 1e-6
    dF_da = (tracenn.special.gammainc(av + h, xv) - tracenn.special.gammainc(av - h, xv)) / (2 * h)
    pdf = ((av - 1) * xv.log() - xv - av.lgamma()).exp()
    np.testing.assert_allclose(a.grad.numpy(), (-dF_da / pdf).numpy(), rtol=1e-6)


def test_standard_gamma_gradient_matches_torch(torch):
    """torch's ``_standard_gamma_grad`` at the same (a, x): it approximates the same derivative
    (series and rational fits, good to about 1e-4), ours differentiates F exactly."""
    a = tracenn.tensor([0.4, 1.0, 3.0, 12.0], dtype=tracenn.float64, requires_grad=True)
    x = tracenn._standard_gamma(a)
    x.sum().backward()
    ta, tx = torch.tensor(a.detach().numpy()), torch.tensor(x.detach().numpy())
    np.testing.assert_allclose(a.grad.numpy(), torch._standard_gamma_grad(ta, tx).numpy(), rtol=2e-4)


def test_standard_gamma_compiled_draws_what_eager_draws():
    """Inside tracenn.compile the draw is one node; under one seed it equals the eager draw, and
    each call draws afresh."""
    a = tracenn.tensor([0.5, 2.0, 5.0])
    f = tracenn.compile(lambda t: tracenn._standard_gamma(t) * 2)
    tracenn.manual_seed(1)
    eager = (tracenn._standard_gamma(a) * 2).tolist()
    tracenn.manual_seed(1)
    assert f(a).tolist() == eager
    assert f(a).tolist() != eager
    assert "standard_gamma" in str(f.graph)
