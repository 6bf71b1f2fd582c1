"""A compiled function that draws from Python's ``random`` or ``numpy.random`` (mixup's
``lam = np.random.beta(a, a)``, ``if random.random() < p`` for cutmix) would keep the numbers the
trace drew and reuse them at every call. Such a call runs eagerly instead, with a warning that says
why, and draws exactly what the uncompiled function draws."""
from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import UnsupportedError


def _step_and_model(draw):
    model = nn.Linear(4, 2)
    with tracenn.no_grad():
        model.weight.copy_(tracenn.tensor(np.arange(8, dtype=np.float32).reshape(2, 4) / 8))
        model.bias.zero_()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        lam = draw()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x * lam), y)
        loss.backward()
        opt.step()
        return (lam if isinstance(lam, tracenn.Tensor) else tracenn.tensor(lam)), loss.detach()
    return step, model


X = tracenn.ones(3, 4)
Y = tracenn.tensor([0, 1, 0])


@pytest.mark.parametrize("draw", [lambda: float(np.random.beta(0.4, 0.4)), lambda: random.random()],
                         ids=["numpy", "python"])
def test_host_draws_run_eagerly_with_the_eager_numbers(draw):
    step_e, model_e = _step_and_model(draw)
    step_c, model_c = _step_and_model(draw)
    step_c = tracenn.compile(step_c)
    np.random.seed(0)
    random.seed(0)
    want = [step_e(X, Y) for _ in range(4)]
    np.random.seed(0)
    random.seed(0)
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        got = [step_c(X, Y) for _ in range(4)]
    lams = [float(lam) for lam, _ in got]
    assert lams == [float(lam) for lam, _ in want] and len(set(lams)) == 4  # drawn anew, not baked in
    for (_, a), (_, b) in zip(want, got):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6)
    assert tracenn.equal(model_c.weight, model_e.weight)
    msgs = [str(w.message) for w in ws]
    assert len(msgs) == 1 and "drew numbers from" in msgs[0] and "tracenn.rand" in msgs[0]


def test_fullgraph_raises():
    step, _ = _step_and_model(lambda: float(np.random.rand()))
    with pytest.raises(UnsupportedError, match="numpy.random"):
        tracenn.compile(step, fullgraph=True)(X, Y)


def test_tracenn_randomness_still_compiles():
    step, _ = _step_and_model(lambda: tracenn.distributions.Beta(tracenn.tensor(0.4), tracenn.tensor(0.4)).sample())
    step = tracenn.compile(step)
    tracenn.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lams = [float(step(X, Y)[0]) for _ in range(3)]
    assert len(set(lams)) == 3 and not any(e.eager for e in step._entries.values())
