"""Learning-rate schedulers: schedules against torch (one row per configuration), state dicts,
warnings and errors, and hand-computed schedules."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracenn
from helpers import to_np

# name -> (optimizer, builder(lib.optim.lr_scheduler, opt) -> scheduler, epochs)
CASES = {
    "LambdaLR": ("SGD", lambda s, o: s.LambdaLR(o, lambda e: 0.95 ** e), 6),
    "LambdaLR-per-group": ("SGD", lambda s, o: s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.5 ** e]), 6),
    "MultiplicativeLR": ("SGD", lambda s, o: s.MultiplicativeLR(o, lambda e: 0.9), 6),
    "StepLR": ("SGD", lambda s, o: s.StepLR(o, step_size=3, gamma=0.5), 10),
    "MultiStepLR": ("SGD", lambda s, o: s.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.3), 8),
    "ConstantLR": ("SGD", lambda s, o: s.ConstantLR(o, factor=0.5, total_iters=3), 6),
    "LinearLR": ("SGD", lambda s, o: s.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=4), 7),
    "ExponentialLR": ("SGD", lambda s, o: s.ExponentialLR(o, gamma=0.8), 6),
    "CosineAnnealingLR": ("SGD", lambda s, o: s.CosineAnnealingLR(o, T_max=4, eta_min=0.001), 13),
    "CosineAnnealingWarmRestarts": ("SGD", lambda s, o: s.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2,
                                                                                     eta_min=0.001), 14),
    "CyclicLR-triangular": ("SGD", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=2), 12),
    "CyclicLR-triangular2": ("SGD", lambda s, o: s.CyclicLR(o, [0.01, 0.02], 0.1, step_size_up=2,
                                                             mode="triangular2"), 12),
    "CyclicLR-exp_range-Adam": ("Adam", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=2, mode="exp_range",
                                                                 gamma=0.9), 10),
    "CyclicLR-no-momentum": ("Adagrad", lambda s, o: s.CyclicLR(o, 0.01, 0.1, step_size_up=2,
                                                                 cycle_momentum=False), 6),
    "OneCycleLR-cos": ("SGD", lambda s, o: s.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=10), 10),
    "OneCycleLR-linear-Adam": ("Adam", lambda s, o: s.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=5,
                                                                  anneal_strategy="linear"), 10),
    "OneCycleLR-three-phase": ("SGD", lambda s, o: s.OneCycleLR(o, max_lr=0.1, total_steps=12, three_phase=True,
                                                                 pct_start=0.25), 12),
    "PolynomialLR": ("SGD", lambda s, o: s.PolynomialLR(o, total_iters=4, power=2.0), 7),
    "SequentialLR": ("SGD", lambda s, o: s.SequentialLR(o, [s.LinearLR(o, start_factor=0.1, total_iters=3),
                                                            s.ExponentialLR(o, gamma=0.9)], milestones=[3]), 8),
    "ChainedScheduler": ("SGD", lambda s, o: s.ChainedScheduler([s.ConstantLR(o, factor=0.5, total_iters=3),
                                                                 s.ExponentialLR(o, gamma=0.9)]), 6),
}


def _optimizer(lib, kind):
    a, b = lib.nn.Parameter(lib.ones(2)), lib.nn.Parameter(lib.ones(3))
    extra = {"SGD": dict(momentum=0.9), "Adam": {}, "Adagrad": {}}[kind]
    return getattr(lib.optim, kind)([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1, **extra)


def _schedule(lib, name, epochs=None):
    kind, build, n = CASES[name]
    opt = _optimizer(lib, kind)
    sched = build(lib.optim.lr_scheduler, opt)
    out = []
    for _ in range(epochs or n):
        momentum = [g.get("momentum", g.get("betas")) for g in opt.param_groups]
        out.append((sched.get_last_lr(), [g["lr"] for g in opt.param_groups], momentum))
        opt.step()
        sched.step()
    return out, sched, opt


@pytest.mark.parametrize("name", list(CASES))
def test_schedule_matches_torch(name, torch):
    """Every learning rate (and cycled momentum) equals torch's, as Python floats: same formulas."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and the right call order warns nothing
        ours, sched, _ = _schedule(tracenn, name)
    theirs, ref, _ = _schedule(torch, name)
    assert ours == theirs
    assert sorted(sched.state_dict()) == sorted(ref.state_dict())


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_resume(name):
    """Save the scheduler after 4 epochs, rebuild optimizer and scheduler, load both, continue:
    the schedule goes on as if never interrupted."""
    full, _, _ = _schedule(tracenn, name)
    kind, build, n = CASES[name]
    opt = _optimizer(tracenn, kind)
    sched = build(tracenn.optim.lr_scheduler, opt)
    for _ in range(4):
        opt.step()
        sched.step()
    saved = (sched.state_dict(), opt.state_dict())
    opt2 = _optimizer(tracenn, kind)
    sched2 = build(tracenn.optim.lr_scheduler, opt2)
    sched2.load_state_dict(saved[0])
    opt2.load_state_dict(saved[1])  # after creating the scheduler, as torch's docs say
    rest = []
    for _ in range(n - 4):
        rest.append((sched2.get_last_lr(), [g["lr"] for g in opt2.param_groups]))
        opt2.step()
        sched2.step()
    assert rest == [(a, b) for a, b, _ in full[4:]]


@pytest.mark.parametrize("mode, threshold_mode, cooldown, min_lr", [
    ("min", "rel", 0, 0), ("max", "abs", 1, 0.004), ("min", "abs", 2, [0.0, 0.001])])
def test_reduce_lr_on_plateau_matches_torch(mode, threshold_mode, cooldown, min_lr, torch):
    metrics = [5.0, 4.0, 4.0, 4.0, 3.9999, 4.5, 4.5, 4.5, 4.5, 2.0, 2.0, 2.0, 2.0, 2.0]
    if mode == "max":
        metrics = [-m for m in metrics]
    runs = []
    for lib in (tracenn, torch):
        opt = _optimizer(lib, "SGD")
        sched = lib.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=0.5, patience=1,
                                                         threshold_mode=threshold_mode, cooldown=cooldown,
                                                         min_lr=min_lr)
        run = []
        for m in metrics:
            opt.step()
            sched.step(lib.tensor(m) if lib is tracenn else m)
            run.append((sched.get_last_lr(), sched.num_bad_epochs, sched.cooldown_counter, sched.best))
        runs.append((run, sorted(sched.state_dict())))
    assert runs[0] == runs[1]


def test_schedulers_drive_the_optimizer(torch, problem, traj_close):
    """Adam under OneCycleLR (which also cycles beta1): parameters follow torch step by step."""
    runs = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        opt = lib.optim.Adam(pb.params, lr=0.01)
        sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=8)
        traj = []
        for _ in range(8):
            traj += pb.run(opt, 1)
            sched.step()
        runs.append(traj)
    traj_close(*runs)


def test_tensor_lr_is_updated_in_place(torch):
    for lib in (tracenn, torch):
        lr = lib.tensor(0.1)
        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=lr)
        sched = lib.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        opt.step()
        sched.step()
        assert opt.param_groups[0]["lr"] is lr and lr.item() == pytest.approx(0.05)
        last = sched.get_last_lr()[0]
        assert isinstance(last, lib.Tensor) and last is not lr


# ---- hand-computed schedules (no torch needed) --------------------------------------------------

def test_step_and_cosine_schedules_by_hand():
    p = tracenn.nn.Parameter(tracenn.ones(1))
    opt = tracenn.optim.SGD([p], lr=1.0)
    step = tracenn.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        step.step()
    assert lrs == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])

    opt = tracenn.optim.SGD([p], lr=1.0)
    cos = tracenn.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    lrs = []
    for _ in range(5):
        lrs.append(cos.get_last_lr()[0])
        opt.step()
        cos.step()
    expected = [(1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]  # 1, .854, .5, .146, 0
    assert lrs == pytest.approx(expected, abs=1e-12)


def test_linear_warmup_by_hand():
    opt = tracenn.optim.SGD([tracenn.nn.Parameter(tracenn.ones(1))], lr=0.5)
    sched = tracenn.optim.lr_scheduler.LinearLR(opt, start_factor=0.5, end_factor=1.0, total_iters=2)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(3):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == pytest.approx([0.25, 0.375, 0.5, 0.5])


def test_initial_lr_and_base_lrs():
    opt = _optimizer(tracenn, "SGD")
    sched = tracenn.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.01] == sched.base_lrs
    assert sched.last_epoch == 0 and sched._step_count == 1


# ---- warnings and errors ---------------------------------------------------------------------------

def test_warns_when_the_scheduler_steps_before_the_optimizer(lib):
    opt = _optimizer(lib, "SGD")
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match=r"^Detected call of `lr_scheduler.step\(\)` before `optimizer.step\(\)`. "
                                         r"In PyTorch 1.1.0 and later"):
        sched.step()


def test_warns_when_the_optimizer_step_was_replaced(lib):
    opt = _optimizer(lib, "SGD")
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=1)
    opt.step = lambda closure=None: None
    with pytest.warns(UserWarning, match=r"^Seems like `optimizer.step\(\)` has been overridden after learning "
                                         "rate scheduler initialization"):
        sched.step()


def test_warns_on_get_lr_outside_step_and_on_epoch_argument(lib):
    opt = _optimizer(lib, "SGD")
    sched = lib.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.warns(UserWarning, match=r"^To get the last learning rate computed by the scheduler, please use "
                                         r"`get_last_lr\(\)`.$"):
        sched.get_lr()
    opt.step()
    with pytest.warns(UserWarning, match="^The epoch parameter in `scheduler.step\\(\\)` was not necessary"):
        sched.step(4)  # the closed form: 0.1 * 0.5 ** 2
    assert sched.get_last_lr() == pytest.approx([0.025, 0.0025])


def test_scheduler_errors(lib):
    s = lib.optim.lr_scheduler
    opt = _optimizer(lib, "SGD")
    with pytest.raises(TypeError, match="^int is not an Optimizer$"):
        s.StepLR(3, step_size=1)
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\] when resuming"):
        s.StepLR(opt, step_size=1, last_epoch=3)
    with pytest.raises(ValueError, match="^Constant multiplicative factor expected to be between 0 and 1.$"):
        s.ConstantLR(opt, factor=2.0)
    with pytest.raises(ValueError, match="^Starting multiplicative factor expected to be greater than 0"):
        s.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="^Expected 2 lr_lambdas, but got 1$"):
        s.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match="^Factor should be < 1.0.$"):
        s.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="^mode max2 is unknown!$"):
        s.ReduceLROnPlateau(opt, mode="max2")
    with pytest.raises(ValueError, match="^Expected positive integer T_0, but got 0$"):
        s.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match=r"^You must define either total_steps OR \(epochs AND steps_per_epoch\)$"):
        s.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="^max_lr must have the same length as optimizer.param_groups. max_lr has "
                                         "3 values, param_groups has 2.$"):
        s.OneCycleLR(opt, max_lr=[1.0, 1.0, 1.0], total_steps=3)
    with pytest.raises(ValueError, match="^optimizer must support momentum or beta1 with `cycle_momentum` option "
                                         "enabled$"):
        s.CyclicLR(_optimizer(lib, "Adagrad"), 0.01, 0.1)
    with pytest.raises(ValueError, match="^SequentialLR does not support `ReduceLROnPlateau` scheduler"):
        s.SequentialLR(opt, [s.ReduceLROnPlateau(opt)], milestones=[])
    with pytest.raises(ValueError, match="^Sequential Schedulers expects number of schedulers provided to be one "
                                         "more than the number of milestone points"):
        s.SequentialLR(opt, [s.StepLR(opt, 1)], milestones=[1])


def test_one_cycle_raises_past_the_last_step(lib):
    opt = _optimizer(lib, "SGD")
    sched = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=3)
    for _ in range(2):
        opt.step()
        sched.step()
    opt.step()
    sched.step()  # step 3 of 3
    with pytest.raises(ValueError, match="^Tried to step 4 times. The specified number of total steps is 3$"):
        sched.step()


def test_lambda_state_dict_keeps_callable_objects_state():
    class Decay:
        def __init__(self):
            self.rate = 0.5

        def __call__(self, epoch):
            return self.rate ** epoch

    opt = _optimizer(tracenn, "SGD")
    fn = Decay()
    sched = tracenn.optim.lr_scheduler.LambdaLR(opt, [fn, lambda e: 1.0])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}, None]
    fn.rate = 0.9
    sched.load_state_dict(sd)
    assert fn.rate == 0.5 and "lr_lambdas" in sd


def test_scheduled_lr_reaches_the_update():
    """The learning rate is an operand of the update: a scheduler changing it between steps
    changes the step size (SGD: p -= lr * grad) without any other change."""
    p = tracenn.nn.Parameter(tracenn.zeros(1))
    opt = tracenn.optim.SGD([p], lr=1.0)
    sched = tracenn.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    values = []
    for _ in range(3):
        p.grad = tracenn.ones(1)
        opt.step()
        sched.step()
        values.append(float(to_np(p)[0]))
    np.testing.assert_allclose(values, [-1.0, -1.5, -1.75])
