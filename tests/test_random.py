"""The generator: seeding reproduces streams, draws differ call to call, distributions are right."""
import math

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


def _moments_match(samples, mean, var):
    """Sample mean within 5 standard errors of ``mean``, sample variance within 10% of ``var``."""
    s = np.asarray(samples, dtype=np.float64)
    mean, var = np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    assert np.all(np.abs(s.mean(0) - mean) <= 5 * np.sqrt(var / len(s)) + 1e-9), (s.mean(0), mean)
    np.testing.assert_allclose(s.var(0), var, rtol=0.1, atol=1e-9)


def _frequencies_match(samples, pmf):
    """The share of each value k = 0, 1, ... within 5 standard errors of ``pmf[k]``."""
    s = np.asarray(samples).ravel()
    freq = np.array([(s == k).mean() for k in range(len(pmf))])
    assert np.all(np.abs(freq - pmf) <= 5 * np.sqrt(pmf * (1 - pmf) / len(s)) + 1e-9), (freq, pmf)


def test_poisson_moments_frequencies_and_dtypes():
    """One Poisson(rate) count per element, as floats of the rate's dtype: mean and variance are the
    rate (small rates: Knuth's method, large: rejection), and small counts come at the pmf's rates."""
    rate = tracenn.tensor([0.0, 0.3, 4.0, 25.0, 1e4])
    s = tracenn.poisson(rate.expand(20000, 5))
    assert s.shape == (20000, 5) and s.dtype is tracenn.float32
    s = s.numpy()
    assert (s >= 0).all() and (s == np.round(s)).all() and (s[:, 0] == 0).all()
    _moments_match(s, rate.numpy(), rate.numpy())
    pmf = np.array([math.exp(-1.5) * 1.5 ** k / math.factorial(k) for k in range(6)])
    _frequencies_match(tracenn.poisson(tracenn.full((20000,), 1.5)).numpy(), pmf)
    for dtype in (tracenn.float64, tracenn.float16, tracenn.bfloat16):
        x = tracenn.poisson(tracenn.tensor([2.0, 40.0], dtype=dtype).expand(4000, 2))
        assert x.dtype is dtype
        _moments_match(x.double().numpy(), [2.0, 40.0], [2.0, 40.0])
    assert tracenn.poisson(tracenn.tensor(3.0)).shape == ()
    assert tracenn.poisson(tracenn.tensor([math.inf])).tolist() == [math.inf]


def test_poisson_seed_generator_and_fresh_draws():
    rate = tracenn.tensor([0.5, 3.0, 50.0] * 4)
    tracenn.manual_seed(4)
    first = tracenn.poisson(rate).tolist()
    tracenn.manual_seed(4)
    assert tracenn.poisson(rate).tolist() == first
    assert tracenn.poisson(rate).tolist() != first
    g1, g2 = tracenn.Generator().manual_seed(7), tracenn.Generator().manual_seed(7)
    assert tracenn.poisson(rate, generator=g1).tolist() == tracenn.poisson(rate, g2).tolist()


def test_poisson_errors():
    with pytest.raises(RuntimeError, match="invalid Poisson rate, expected rate to be non-negative, got -1.0"):
        tracenn.poisson(tracenn.tensor([2.0, -1.0]))
    with pytest.raises(RuntimeError, match="non-negative, got nan"):
        tracenn.poisson(tracenn.tensor([math.nan]))
    with pytest.raises(NotImplementedError, match="not implemented for 'Long'.*rate.float()"):
        tracenn.poisson(tracenn.tensor([1, 2]))
    with pytest.raises(TypeError, match=r"poisson\(\): argument 'input' \(position 1\) must be Tensor, not float"):
        tracenn.poisson(2.0)


@pytest.mark.parametrize("make", [
    lambda M: M.poisson(M.tensor([-1.0, 2.0])),
    lambda M: M.poisson(M.tensor([math.nan])),
    lambda M: M.poisson(M.tensor([1, 2])),
    lambda M: M.poisson(M.tensor([True])),
    lambda M: M.poisson(2.0),
    lambda M: M.binomial(M.tensor([5, 10]), M.tensor([0.5, 0.3])),
    lambda M: M.binomial(M.tensor([5.0, 10.0]), M.tensor([0.5, 0.3], dtype=M.float64)),
    lambda M: M.binomial(M.tensor([5.0, 10.0]), 0.5),
    lambda M: M.binomial(M.tensor([5.0, 10.0, 3.0]), M.tensor([0.5, 0.3])),  # (message: numpy's words)
])
def test_poisson_binomial_errors_match_torch(torch, make):
    """torch's exception type (or a subclass of it), and its message as the start of ours."""
    with pytest.raises(Exception) as ours:
        make(tracenn)
    with pytest.raises(Exception) as theirs:
        make(torch)
    assert isinstance(ours.value, type(theirs.value)), (ours.value, theirs.value)
    if "size of tensor a" not in str(theirs.value):
        assert str(ours.value).startswith(str(theirs.value).split("\n")[0]), (ours.value, theirs.value)


def test_binomial_moments_frequencies_and_broadcasting():
    """Successes in ``count`` trials: mean ``n p``, variance ``n p (1 - p)``, over counts that take
    the inversion sampler (n p <= 10) and BTRS (above), with p above 1/2 (drawn as failures)."""
    n = tracenn.tensor([0.0, 5.0, 20.0, 100.0, 1e6, 40.0])
    p = tracenn.tensor([0.3, 0.3, 0.9, 0.5, 0.01, 0.75])
    s = tracenn.binomial(n.expand(20000, 6), p.expand(20000, 6))
    assert s.shape == (20000, 6) and s.dtype is tracenn.float32
    s = s.numpy()
    assert (s >= 0).all() and (s <= n.numpy()).all() and (s == np.round(s)).all()
    _moments_match(s, (n * p).numpy(), (n * p * (1 - p)).numpy())
    pmf = np.array([math.comb(6, k) * 0.3 ** k * 0.7 ** (6 - k) for k in range(7)])
    _frequencies_match(tracenn.binomial(tracenn.full((20000,), 6.0), tracenn.full((20000,), 0.3)).numpy(), pmf)
    assert tracenn.binomial(tracenn.tensor([[5.0], [10.0]]), tracenn.tensor([0.5, 0.3])).shape == (2, 2)
    assert tracenn.binomial(tracenn.tensor(5.0), tracenn.tensor(0.5)).shape == ()
    for dtype in (tracenn.float64, tracenn.float16, tracenn.bfloat16):
        x = tracenn.binomial(tracenn.full((4000,), 30.0, dtype=dtype), tracenn.full((4000,), 0.25, dtype=dtype))
        assert x.dtype is dtype
        _moments_match(x.double().numpy(), 7.5, 30 * 0.25 * 0.75)


def test_binomial_edge_values_as_torch():
    """torch's sampler: probabilities outside [0, 1] act as clamped, a negative count draws 0, an
    infinite count or a NaN probability draws NaN, a fractional count at most its floor."""
    count = tracenn.tensor([5.0, 10.0, 5.0, 10.0, -5.0, math.inf, 5.0, 5.5])
    prob = tracenn.tensor([1.0, 0.0, 1.5, -0.5, 0.5, 0.5, math.nan, 1.0])
    out = tracenn.binomial(count, prob).tolist()
    assert out[:5] == [5.0, 0.0, 5.0, 0.0, 0.0] and math.isnan(out[5]) and math.isnan(out[6]) and out[7] == 5.0


def test_binomial_seed_generator_and_fresh_draws():
    n, p = tracenn.tensor([3.0, 30.0, 300.0] * 4), tracenn.tensor([0.2, 0.5, 0.7] * 4)
    tracenn.manual_seed(4)
    first = tracenn.binomial(n, p).tolist()
    tracenn.manual_seed(4)
    assert tracenn.binomial(n, p).tolist() == first
    assert tracenn.binomial(n, p).tolist() != first
    g1, g2 = tracenn.Generator().manual_seed(7), tracenn.Generator().manual_seed(7)
    assert tracenn.binomial(n, p, generator=g1).tolist() == tracenn.binomial(n, p, g2).tolist()


def test_binomial_errors():
    with pytest.raises(ValueError, match="binomial only supports floating-point dtypes for count, got: Long"):
        tracenn.binomial(tracenn.tensor([5, 10]), tracenn.tensor([0.5, 0.3]))
    with pytest.raises(RuntimeError, match="Found dtype Double but expected Float.*prob.to"):
        tracenn.binomial(tracenn.tensor([5.0]), tracenn.tensor([0.5], dtype=tracenn.float64))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        tracenn.binomial(tracenn.tensor([5.0, 10.0, 3.0]), tracenn.tensor([0.5, 0.3]))
    with pytest.raises(TypeError, match=r"binomial\(\): argument 'prob' \(position 2\) must be Tensor, not float"):
        tracenn.binomial(tracenn.tensor([5.0]), 0.5)


def test_poisson_binomial_compiled_draw_what_eager_draws():
    """Inside tracenn.compile each draw is one node; under one seed it equals the eager draw, each
    call draws afresh, and a negative rate (not readable there) draws NaN instead of raising."""
    rate, n, p = tracenn.tensor([0.5, 4.0, 60.0]), tracenn.tensor([3.0, 20.0, 500.0]), tracenn.tensor([0.2, 0.5, 0.8])
    f = tracenn.compile(lambda r, n, p: tracenn.poisson(r) + 1000 * tracenn.binomial(n, p))
    tracenn.manual_seed(1)
    eager = (tracenn.poisson(rate) + 1000 * tracenn.binomial(n, p)).tolist()
    tracenn.manual_seed(1)
    assert f(rate, n, p).tolist() == eager
    assert f(rate, n, p).tolist() != eager
    assert "poisson" in str(f.graph) and "binomial" in str(f.graph)
    nan = tracenn.compile(lambda r: tracenn.poisson(r))(tracenn.tensor([-1.0, 2.0])).tolist()
    assert math.isnan(nan[0]) and nan[1] >= 0


@pytest.mark.parametrize("weights, message", [
    ([-1.0, 2.0], r"probability entry < 0"),
    ([0.0, 0.0], r"sum of probabilities <= 0"),
    ([[1.0, 1.0], [0.0, 0.0]], r"sum of probabilities <= 0"),
    ([float("inf"), 1.0], r"infinity or NaN"),
    ([float("nan"), 1.0], r"infinity or NaN"),
])
def test_multinomial_rejects_weights_that_are_not_a_distribution(weights, message):
    with pytest.raises(RuntimeError, match=r"invalid multinomial distribution \(.*" + message):
        tracenn.multinomial(tracenn.tensor(weights), 1, replacement=True)


def test_multinomial_samples_only_categories_with_weight():
    tracenn.manual_seed(0)
    got = tracenn.multinomial(tracenn.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 0.0]]), 5, replacement=True)
    assert got.tolist() == [[1] * 5, [0] * 5]


def test_seeds_take_all_64_bits_as_torch():
    """torch keeps a seed's 64 bits (manual_seed(-1) is 2**64 - 1); seeds of 2**63 and above used
    to raise OverflowError, and tracenn.seed() draws such seeds half the time."""
    for s, kept in [(2**63, 2**63), (2**64 - 1, 2**64 - 1), (-1, 2**64 - 1), (5, 5)]:
        tracenn.manual_seed(s)
        assert tracenn.initial_seed() == kept
    tracenn.manual_seed(-1)
    a = tracenn.rand(3)
    tracenn.manual_seed(2**64 - 1)
    assert tracenn.equal(a, tracenn.rand(3))
    tracenn.manual_seed(2**63)
    assert not tracenn.equal(a, tracenn.rand(3))
    for _ in range(16):
        assert 0 <= tracenn.seed() < 2**64
    g = tracenn.Generator().manual_seed(2**64 - 1)
    assert tracenn.Generator().set_state(g.get_state()).initial_seed() == 2**64 - 1


@pytest.mark.parametrize("dtype", [tracenn.bfloat16, tracenn.float16, tracenn.float32])
@pytest.mark.parametrize("low, high", [(-9.0, 9.0), (0.0, 1.0)])
def test_uniform_stays_below_high_in_every_precision(dtype, low, high):
    """torch draws from [low, high): rounding to bfloat16 reached ``high`` (9.0) before."""
    tracenn.manual_seed(0)
    x = tracenn.empty(200_000, dtype=dtype).uniform_(low, high)
    assert x.max().item() < high and x.min().item() >= low
    assert tracenn.rand(200_000, dtype=dtype).max().item() < 1.0
