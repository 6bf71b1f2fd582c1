"""tracenn.distributions: densities, entropies, moments, KL and errors against PyTorch (and known
values), sample statistics, reparameterized gradients, eager and compiled."""
import math

import numpy as np
import pytest

import tracenn
from tracenn.distributions import Bernoulli, Categorical, Independent, Normal, Uniform, kl_divergence
from helpers import to_np

T = tracenn.tensor


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(to_np(a) if not isinstance(a, np.ndarray) else a, b, rtol=tol, atol=tol)


def test_normal_known_values_and_shapes():
    n = Normal(T([0.0, 1.0]), T([1.0, 2.0]))
    assert n.batch_shape == (2,) and n.event_shape == () and n.has_rsample
    _close(n.log_prob(T([0.0, 0.0])), [-0.5 * math.log(2 * math.pi), -math.log(2) - 0.5 * math.log(2 * math.pi) - 1 / 8])
    _close(n.entropy(), [0.5 + 0.5 * math.log(2 * math.pi), 0.5 + 0.5 * math.log(2 * math.pi) + math.log(2)])
    _close(n.cdf(T([0.0, 1.0])), [0.5, 0.5])
    _close(n.icdf(T([0.5, 0.5])), [0.0, 1.0])
    assert n.sample((3, 4)).shape == (3, 4, 2)
    assert Normal(0.0, 1.0).batch_shape == ()
    assert repr(n) == "Normal(loc: tracenn.Size([2]), scale: tracenn.Size([2]))"


def test_sample_statistics():
    tracenn.manual_seed(0)
    s = to_np(Normal(T(2.0), T(3.0)).sample((20000,)))
    assert abs(s.mean() - 2.0) < 0.1 and abs(s.std() - 3.0) < 0.1
    s = to_np(Uniform(T(-1.0), T(3.0)).sample((20000,)))
    assert s.min() >= -1 and s.max() < 3 and abs(s.mean() - 1.0) < 0.05
    s = to_np(Bernoulli(probs=T(0.3)).sample((20000,)))
    assert set(np.unique(s)) <= {0.0, 1.0} and abs(s.mean() - 0.3) < 0.02
    s = to_np(Categorical(probs=T([0.2, 0.5, 0.3])).sample((20000,)))
    assert abs((s == 1).mean() - 0.5) < 0.02 and s.dtype == np.int64


def test_rsample_is_differentiable():
    loc, scale = T([0.5], requires_grad=True), T([2.0], requires_grad=True)
    tracenn.manual_seed(1)
    x = Normal(loc, scale).rsample((1000,))
    x.mean().backward()
    _close(loc.grad, [1.0])  # d mean(loc + eps * scale) / d loc = 1
    tracenn.manual_seed(1)
    eps = to_np(tracenn.randn(1000, 1))
    _close(scale.grad, [eps.mean()], tol=1e-4)
    assert not Normal(loc, scale).sample().requires_grad


def test_errors_match_torchs():
    with pytest.raises(ValueError, match=r"Expected parameter scale \(Tensor of shape \(2,\)\) of distribution "
                                         r"Normal\(loc: tracenn.Size\(\[2\]\), scale: tracenn.Size\(\[2\]\)\) to satisfy "
                                         r"the constraint GreaterThan\(lower_bound=0.0\), but found invalid values"):
        Normal(T([0.0, 1.0]), T([1.0, -1.0]))
    with pytest.raises(ValueError, match=r"to be within the support \(IntegerInterval\(lower_bound=0, upper_bound=2\)\)"):
        Categorical(logits=T([0.0, 1.0, 2.0])).log_prob(T([3]))
    with pytest.raises(ValueError, match="Either `probs` or `logits` must be specified, but not both."):
        Bernoulli(probs=T(0.5), logits=T(0.0))
    with pytest.raises(ValueError, match="Uniform is not defined when low>= high"):
        Uniform(T(1.0), T(0.0))
    with pytest.raises(ValueError, match=r"Value is not broadcastable with batch_shape\+event_shape: "
                                         r"tracenn.Size\(\[3\]\) vs tracenn.Size\(\[2\]\)."):
        Normal(T([0.0, 1.0]), T([1.0, 1.0])).log_prob(T([0.0, 1.0, 2.0]))
    with pytest.raises(NotImplementedError, match="No KL\\(p \\|\\| q\\) is implemented for p type Normal and q type Categorical"):
        kl_divergence(Normal(0.0, 1.0), Categorical(logits=T([0.0, 1.0])))
    with pytest.raises(ValueError, match="Expected reinterpreted_batch_ndims <= len\\(base_distribution.batch_shape\\)"):
        Independent(Normal(0.0, 1.0), 1)
    Normal(T([0.0]), T([-1.0]), validate_args=False)  # no check when asked


def _pairs(torch):
    """(tracenn distribution, torch distribution) built from the same numbers."""
    rng = np.random.default_rng(0)
    loc, scale = rng.standard_normal(3).astype(np.float32), rng.uniform(0.5, 2, 3).astype(np.float32)
    logits = rng.standard_normal((2, 4)).astype(np.float32)
    p = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    lo, hi = np.float32([0.0, -1.0]), np.float32([1.0, 2.0])
    td = torch.distributions
    return [
        (Normal(T(loc), T(scale)), td.Normal(torch.tensor(loc), torch.tensor(scale)), rng.standard_normal(3).astype(np.float32)),
        (Categorical(logits=T(logits)), td.Categorical(logits=torch.tensor(logits)), np.array([1, 3])),
        (Categorical(probs=T(np.abs(logits))), td.Categorical(probs=torch.tensor(np.abs(logits))), np.array([0, 2])),
        (Bernoulli(probs=T(p)), td.Bernoulli(probs=torch.tensor(p)), np.float32([1, 0, 1])),
        (Bernoulli(logits=T(loc)), td.Bernoulli(logits=torch.tensor(loc)), np.float32([0, 0, 1])),
        (Uniform(T(lo), T(hi)), td.Uniform(torch.tensor(lo), torch.tensor(hi)), np.float32([0.5, 1.5])),
        (Independent(Normal(T(loc), T(scale)), 1), td.Independent(td.Normal(torch.tensor(loc), torch.tensor(scale)), 1),
         rng.standard_normal(3).astype(np.float32)),
    ]


def test_against_torch():
    torch = pytest.importorskip("torch")
    for ours, theirs, value in _pairs(torch):
        name = type(ours).__name__
        assert ours.batch_shape == tuple(theirs.batch_shape) and ours.event_shape == tuple(theirs.event_shape), name
        _close(ours.log_prob(T(value)), theirs.log_prob(torch.tensor(value)).numpy())
        _close(ours.entropy(), theirs.entropy().numpy())
        for attr in ("mean", "variance", "stddev", "mode"):
            _close(getattr(ours, attr), getattr(theirs, attr).numpy())
        assert repr(ours).replace("tracenn.Size", "torch.Size") == repr(theirs), name
        assert ours.sample((5,)).shape == tuple(theirs.sample((5,)).shape), name
    for (p, tp, _), (q, tq, _) in [(a, b) for a in _pairs(torch) for b in _pairs(torch)
                                   if type(a[0]) is type(b[0]) and a[0].batch_shape == b[0].batch_shape]:
        _close(kl_divergence(p, q), torch.distributions.kl_divergence(tp, tq).numpy())


def test_kl_edge_values():
    _close(kl_divergence(Bernoulli(probs=T([0.0, 1.0, 0.5])), Bernoulli(probs=T([0.5, 0.5, 0.0]))),
           [math.log(2), math.log(2), np.inf])
    _close(kl_divergence(Uniform(T(0.0), T(2.0)), Uniform(T(0.5), T(3.0))), np.inf)
    _close(kl_divergence(Uniform(T(0.5), T(1.0)), Uniform(T(0.0), T(2.0))), math.log(4))


def test_a_vae_loss_compiled_equals_eager():
    """The reparameterization trick and a Gaussian KL inside tracenn.compile draw the eager noise."""
    def make():
        tracenn.manual_seed(0)
        return tracenn.nn.Linear(4, 4), tracenn.nn.Linear(2, 4)

    def loss_fn(enc, dec, x):
        h = enc(x)
        mu, log_sigma = h[:, :2], h[:, 2:]
        q = Normal(mu, log_sigma.exp())
        z = q.rsample()
        recon = Independent(Normal(dec(z), 1.0), 1).log_prob(x)
        kl = kl_divergence(q, Normal(tracenn.zeros_like(mu), tracenn.ones_like(mu))).sum(-1)
        return (kl - recon).mean()

    (ee, de), (ec, dc) = make(), make()
    x = tracenn.randn(8, 4)
    compiled = tracenn.compile(lambda x: loss_fn(ec, dc, x))
    for seed in range(3):
        tracenn.manual_seed(10 + seed)
        le = loss_fn(ee, de, x)
        le.backward()
        tracenn.manual_seed(10 + seed)
        lc = compiled(x)
        lc.backward()
        _close(lc, to_np(le), tol=1e-5)
    for a, b in zip(list(ee.parameters()) + list(de.parameters()), list(ec.parameters()) + list(dc.parameters())):
        _close(b.grad, to_np(a.grad), tol=1e-5)
    assert not compiled._last.eager


def test_policy_gradient_step_compiled():
    def make():
        tracenn.manual_seed(0)
        m = tracenn.nn.Linear(3, 4)
        return m, tracenn.optim.SGD(m.parameters(), lr=0.1)

    (me, oe), (mc, oc) = make(), make()
    obs, actions, returns = tracenn.randn(6, 3), T([0, 3, 1, 2, 2, 0]), tracenn.randn(6)

    def step(m, o):
        o.zero_grad()
        loss = -(Categorical(logits=m(obs)).log_prob(actions) * returns).mean()
        loss.backward()
        o.step()
        return loss

    compiled = tracenn.compile(lambda: step(mc, oc))
    for _ in range(3):
        _close(compiled(), to_np(step(me, oe)))
    _close(mc.weight, to_np(me.weight))


def test_expand_broadcasts_the_batch():
    """Distribution.expand (shared by every family): new batch dims on the left, same numbers."""
    value = T([0.0, 1.0])
    for d in (Normal(T([0.0, 1.0]), T([1.0, 2.0])), Uniform(T([-1.0, 0.5]), T([1.0, 2.0])),
              Bernoulli(logits=T([0.3, -1.0])), Categorical(probs=T([[0.2, 0.8], [0.5, 0.5]])),
              Independent(Normal(T([0.0, 1.0]), T([1.0, 2.0])), 1)):
        e = d.expand((3,) + tuple(d.batch_shape))
        assert e.batch_shape == (3,) + tuple(d.batch_shape) and e.event_shape == d.event_shape
        assert e.sample((2,)).shape == (2, 3) + tuple(d.batch_shape) + tuple(d.event_shape)
        lp = to_np(d.log_prob(value))
        _close(e.log_prob(value), np.broadcast_to(lp, (3,) + lp.shape))
        _close(e.entropy(), np.broadcast_to(to_np(d.entropy()), (3,) + tuple(d.batch_shape)))
