"""``scheduler.step()`` inside a compiled training step: every scheduler defers its step to run
after each compiled call (a learning rate is a Python float, an input of the program), so the
learning rates, and the parameters they move, equal the eager steps' (and torch's)."""
import math
import re

import numpy as np
import pytest

import tracenn
from helpers import to_np
from tracenn.errors import DataDependentError

# name -> builder(lib.optim, optimizer) -> scheduler; every scheduler class with its own step()
# and a few that inherit LRScheduler.step
SCHEDULERS = {
    "CosineAnnealingWarmRestarts": lambda o, opt: o.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, eta_min=0.001),
    "CosineAnnealingWarmRestarts-T_mult": lambda o, opt: o.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=1,
                                                                                                   T_mult=2),
    "StepLR": lambda o, opt: o.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5),
    "CyclicLR": lambda o, opt: o.lr_scheduler.CyclicLR(opt, 0.01, 0.1, step_size_up=2),
    "OneCycleLR": lambda o, opt: o.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8),
    "SequentialLR": lambda o, opt: o.lr_scheduler.SequentialLR(
        opt, [o.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=2),
              o.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2)], milestones=[2]),
    "ChainedScheduler": lambda o, opt: o.lr_scheduler.ChainedScheduler(
        [o.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3), o.lr_scheduler.ExponentialLR(opt, gamma=0.9)]),
    "SWALR": lambda o, opt: o.swa_utils.SWALR(opt, swa_lr=0.01, anneal_epochs=3),
}
STEPS = 6


def _run(lib, build, compile=False, metric=None):
    """Learning rates after each of STEPS training steps (each ending in ``scheduler.step()``, or
    ``scheduler.step(metric)``), and the final weight."""
    lib.manual_seed(0)
    model = lib.nn.Linear(2, 1)
    opt = lib.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = build(lib.optim, opt)

    def step(x):
        opt.zero_grad()
        loss = model(x).pow(2).sum()
        loss.backward()
        opt.step()
        sched.step(*(() if metric is None else (metric,)))
        return loss

    if compile:
        step = tracenn.compile(step)
    lrs = []
    for _ in range(STEPS):
        step(lib.ones(3, 2))
        lrs.append(opt.param_groups[0]["lr"])
    return lrs, to_np(model.weight)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_compiled_step_schedule_equals_eager(name):
    lrs, weight = _run(tracenn, SCHEDULERS[name], compile=True)
    want_lrs, want_weight = _run(tracenn, SCHEDULERS[name])
    np.testing.assert_allclose(lrs, want_lrs, rtol=1e-12)
    np.testing.assert_allclose(weight, want_weight, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_compiled_step_schedule_equals_torch(name):
    torch = pytest.importorskip("torch")
    lrs, _ = _run(tracenn, SCHEDULERS[name], compile=True)
    want, _ = _run(torch, SCHEDULERS[name])
    np.testing.assert_allclose(lrs, want, rtol=1e-12)


def test_cosine_annealing_warm_restarts_by_hand():
    """T_0=2: the lr is eta_min + (lr0 - eta_min) (1 + cos(pi T_cur / 2)) / 2 with T_cur = 1, 0, 1, 0, ..."""
    lrs, _ = _run(tracenn, SCHEDULERS["CosineAnnealingWarmRestarts"], compile=True)
    t_cur = np.arange(1, STEPS + 1) % 2
    want = 0.001 + (0.05 - 0.001) * (1 + np.cos(np.pi * t_cur / 2)) / 2
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    assert lrs[:2] == [pytest.approx(0.0255), pytest.approx(0.05)]


def test_cosine_annealing_warm_restarts_t_mult_by_hand():
    """T_0=1, T_mult=2: periods of 1, 2, 4 epochs (epoch 0, then 1-2, then 3-6), so T_cur / T_i after
    steps 1..6 is 0, 1/2, 0, 1/4, 2/4, 3/4."""
    lrs, _ = _run(tracenn, SCHEDULERS["CosineAnnealingWarmRestarts-T_mult"], compile=True)
    want = [0.05 * (1 + math.cos(math.pi * f)) / 2 for f in (0, 1 / 2, 0, 1 / 4, 2 / 4, 3 / 4)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)


def test_reduce_lr_on_plateau_with_a_traced_loss_says_to_step_outside():
    plateau = lambda o, opt: o.lr_scheduler.ReduceLROnPlateau(opt, patience=0)  # noqa: E731
    tracenn.manual_seed(0)
    model = tracenn.nn.Linear(2, 1)
    opt = tracenn.optim.SGD(model.parameters(), lr=0.05)
    sched = plateau(tracenn.optim, opt)

    @tracenn.compile
    def step(x):
        opt.zero_grad()
        loss = model(x).sum()
        loss.backward()
        opt.step()
        sched.step(loss)
        return loss

    with pytest.raises(DataDependentError, match=re.escape("call scheduler.step(loss) outside it")) as info:
        step(tracenn.ones(3, 2))
    assert "ReduceLROnPlateau.step(metrics)" in str(info.value)
    assert __file__ in str(info.value)  # the user's line


def test_reduce_lr_on_plateau_with_a_number_runs_after_each_call():
    """A metric that is a number (not computed in the step) is stepped after every call, as eagerly."""
    plateau = lambda o, opt: o.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)  # noqa: E731
    lrs, weight = _run(tracenn, plateau, compile=True, metric=1.0)
    want_lrs, want_weight = _run(tracenn, plateau, metric=1.0)
    assert lrs == want_lrs == [0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]
    np.testing.assert_allclose(weight, want_weight, rtol=1e-5, atol=1e-6)
