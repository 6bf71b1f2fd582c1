"""``tracenn.compile(functools.partial(fn, model, ...))``: the partial's bound arguments are read
like a function's defaults and closures, so a module bound into it is the call's state (its
parameters are read at every call and train), as ``torch.compile`` of a partial does."""
import functools

import numpy as np

import tracenn
from tracenn import nn


def _lin(seed=0):
    m = nn.Linear(3, 2)
    rng = np.random.RandomState(seed)
    with tracenn.no_grad():
        m.weight.copy_(tracenn.tensor(rng.randn(2, 3).astype(np.float32)))
        m.bias.copy_(tracenn.tensor(rng.randn(2).astype(np.float32)))
    return m


def decode(model, x, scale=1.0):
    return model(x) * scale


def test_a_partial_binding_a_module_reads_its_parameters_at_every_call():
    m = _lin()
    x = tracenn.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    cf = tracenn.compile(functools.partial(decode, m, scale=2.0))
    with tracenn.no_grad():
        np.testing.assert_allclose(cf(x).numpy(), decode(m, x, 2.0).numpy(), rtol=1e-6)
        m.weight.add_(1.0)  # an in-place change reaches the program: the weight is state, not a constant
        np.testing.assert_allclose(cf(x).numpy(), decode(m, x, 2.0).numpy(), rtol=1e-6)
    assert "model.weight" in str(cf.graph) and cf.explain().startswith("tracenn.compile(decode): 1 cached")


def test_a_partial_training_step_matches_eager():
    def step(model, opt, x):
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    x = tracenn.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    losses = []
    for compiled in (False, True):
        m = _lin()
        opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
        fn = functools.partial(step, m, opt)
        fn = tracenn.compile(fn) if compiled else fn
        losses.append([float(fn(x).detach()) for _ in range(4)])
        weights = m.weight.detach().numpy().copy()
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert losses[0][3] < losses[0][0]
    m = _lin()
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(4):
        step(m, opt, x)
    np.testing.assert_allclose(weights, m.weight.detach().numpy(), rtol=1e-5)


def test_a_partial_of_a_module_method():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = _lin()

        def score(self, x, shift):
            return self.lin(x) + shift

    net = Net()
    x = tracenn.ones(1, 3)
    cf = tracenn.compile(functools.partial(net.score, shift=1.0))
    with tracenn.no_grad():
        np.testing.assert_allclose(cf(x).numpy(), net.score(x, 1.0).numpy(), rtol=1e-6)
        net.lin.bias.zero_()
        np.testing.assert_allclose(cf(x).numpy(), net.score(x, 1.0).numpy(), rtol=1e-6)
