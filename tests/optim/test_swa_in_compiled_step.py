"""``AveragedModel.update_parameters(model)`` inside a compiled training step (the EMA update that
timm-style loops make right after ``optimizer.step()``): the step compiles, the first update copies
the model and later ones average, with the same numbers as the eager loop."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.optim import swa_utils

F = nn.functional
X = tracenn.tensor(np.cos(np.arange(48, dtype=np.float32)).reshape(6, 8))
Y = tracenn.tensor([0, 1, 2, 0, 1, 2])


def _setup(kind):
    model = nn.Sequential(nn.Linear(8, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))
    with tracenn.no_grad():
        for k, p in enumerate(model.parameters()):
            p.copy_(tracenn.tensor((np.sin(np.arange(p.numel()) * 0.7 + k) * 0.5).reshape(p.shape).astype(np.float32)))
    if kind == "ema":
        avg = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.9), use_buffers=True)
    elif kind == "ema_avg_fn":
        avg = swa_utils.AveragedModel(model, avg_fn=swa_utils.get_ema_avg_fn(0.8))
    else:
        avg = swa_utils.AveragedModel(model)
    opt = tracenn.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        avg.update_parameters(model)
        return loss.detach()
    return model, avg, step


def _numpy_swa(history):
    """The SWA average of the model states seen, by the formula (equal weights)."""
    return np.mean(np.stack(history), axis=0)


@pytest.mark.parametrize("kind", ["ema", "ema_avg_fn", "swa"])
def test_update_parameters_in_a_compiled_step_matches_eager(kind):
    _, avg_e, step_e = _setup(kind)
    _, avg_c, step_c = _setup(kind)
    step_c = tracenn.compile(step_c)
    for _ in range(4):
        le, lc = step_e(X, Y), step_c(X, Y)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-5, atol=1e-6)
        for (name, a), b in zip(avg_e.state_dict().items(), avg_c.state_dict().values()):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)
    assert int(avg_c.n_averaged) == 4
    assert not any(e.eager for e in step_c._entries.values())  # compiled, not run eagerly


def test_first_compiled_update_copies_then_swa_averages():
    model, avg, step = _setup("swa")
    step = tracenn.compile(step)
    seen = []
    for _ in range(3):
        step(X, Y)
        seen.append(model[0].weight.detach().numpy().copy())
        np.testing.assert_allclose(avg.module[0].weight.detach().numpy(), _numpy_swa(seen), rtol=1e-5, atol=1e-6)
    # the first update is an exact copy, not avg + (p - avg) / 1
    model2, avg2, step2 = _setup("swa")
    tracenn.compile(step2)(X, Y)
    assert tracenn.equal(avg2.module[0].weight, model2[0].weight)
