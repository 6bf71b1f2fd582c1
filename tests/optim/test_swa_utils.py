"""tracenn.optim.swa_utils: AveragedModel (SWA and EMA, per-tensor and list averaging functions,
buffers), update_bn and SWALR, against torch and against averages computed in NumPy."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.optim import swa_utils
from helpers import to_np


def _model(lib):
    """The same small model (weights from NumPy) in tracenn or torch."""
    model = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    _set(lib, model, _weights(9, [tuple(p.shape) for p in model.parameters()]))
    return model


def _weights(k, shapes, seed=0):
    """The k-th set of 'trained' weights: float32 arrays, one per shape."""
    rng = np.random.default_rng(seed + 100 * k)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _set(lib, model, arrays, buffers=False):
    tensors = list(model.parameters()) + (list(model.buffers()) if buffers else [])
    with lib.no_grad():
        for t, a in zip(tensors, arrays):
            t.copy_(lib.tensor(a).to(t.dtype))


def _train_bn(lib, model, k):
    """Some BatchNorm statistics: one training-mode forward on a fixed batch."""
    x = np.random.default_rng(50 + k).standard_normal((6, 3)).astype(np.float32)
    model.train()
    with lib.no_grad():
        model(lib.tensor(x))


def _run(lib, kind, steps=5, use_buffers=False):
    model = _model(lib)
    su = lib.optim.swa_utils
    kwargs = {"swa": {}, "ema_multi": dict(multi_avg_fn=su.get_ema_multi_avg_fn(0.9)),
              "ema_single": dict(avg_fn=su.get_ema_avg_fn(0.8)),
              "swa_multi": dict(multi_avg_fn=su.get_swa_multi_avg_fn()),
              "swa_single": dict(avg_fn=su.get_swa_avg_fn())}[kind]
    avg = su.AveragedModel(model, use_buffers=use_buffers, **kwargs)
    shapes = [tuple(p.shape) for p in model.parameters()]
    for k in range(steps):
        _set(lib, model, _weights(k, shapes))
        _train_bn(lib, model, k)
        avg.update_parameters(model)
    return avg


@pytest.mark.parametrize("use_buffers", [False, True], ids=["params", "buffers"])
@pytest.mark.parametrize("kind", ["swa", "ema_multi", "ema_single", "swa_multi", "swa_single"])
def test_averages_and_state_dict_match_torch(kind, use_buffers, torch):
    if kind == "swa_multi" and use_buffers:  # torch's addcdiv refuses the long num_batches_tracked
        pytest.skip("torch's get_swa_multi_avg_fn raises on integer buffers")
    ours, theirs = _run(tracenn, kind, use_buffers=use_buffers), _run(torch, kind, use_buffers=use_buffers)
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    assert list(a)[:2] == ["n_averaged", "module.0.weight"]
    for key in b:
        assert str(a[key].dtype)[8:] == str(b[key].dtype)[6:], key
        np.testing.assert_allclose(to_np(a[key]), to_np(b[key]), rtol=1e-6, atol=1e-7, err_msg=key)
    assert int(ours.n_averaged) == 5


def test_swa_average_is_the_mean_of_the_weights():
    avg = _run(tracenn, "swa")
    shapes = [tuple(p.shape) for p in avg.module.parameters()]
    for i, p in enumerate(avg.module.parameters()):
        expected = np.mean([_weights(k, shapes)[i] for k in range(5)], axis=0)
        np.testing.assert_allclose(to_np(p), expected, rtol=1e-5, atol=1e-6)


def test_ema_average_by_hand():
    """EMA: the first update copies, then ema = 0.9 ema + 0.1 w."""
    avg = _run(tracenn, "ema_multi")
    shapes = [tuple(p.shape) for p in avg.module.parameters()]
    for i, p in enumerate(avg.module.parameters()):
        expected = _weights(0, shapes)[i].astype(np.float64)
        for k in range(1, 5):
            expected = 0.9 * expected + 0.1 * _weights(k, shapes)[i]
        np.testing.assert_allclose(to_np(p), expected, rtol=1e-5, atol=1e-6)


def test_buffers_follow_the_model_unless_averaged():
    model = _model(tracenn)
    avg = swa_utils.AveragedModel(model)
    _train_bn(tracenn, model, 0)
    avg.update_parameters(model)
    _train_bn(tracenn, model, 1)
    avg.update_parameters(model)
    for b_avg, b in zip(avg.module.buffers(), model.buffers()):
        np.testing.assert_array_equal(to_np(b_avg), to_np(b))
    assert avg.module[1].num_batches_tracked.item() == 2


def test_forward_runs_the_copy_and_the_copy_is_independent():
    model = _model(tracenn).eval()
    avg = swa_utils.AveragedModel(model)
    x = tracenn.randn(5, 3)
    np.testing.assert_array_equal(to_np(avg(x)), to_np(model(x)))
    with tracenn.no_grad():
        model[0].weight.add_(1.0)
    assert not np.allclose(to_np(avg.module[0].weight), to_np(model[0].weight))
    assert avg.n_averaged.dtype == tracenn.long and avg.n_averaged.item() == 0


def test_state_dict_round_trip():
    avg = _run(tracenn, "swa", steps=3)
    other = swa_utils.AveragedModel(_model(tracenn))
    other.load_state_dict(pickle.loads(pickle.dumps(avg.state_dict())))
    assert other.n_averaged.item() == 3
    for p, q in zip(avg.parameters(), other.parameters()):
        np.testing.assert_array_equal(to_np(p), to_np(q))


def test_errors():
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn should be provided"):
        swa_utils.AveragedModel(_model(tracenn), avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    for make in (swa_utils.get_ema_avg_fn, swa_utils.get_ema_multi_avg_fn):
        with pytest.raises(ValueError, match=r"^Invalid decay value 1.5 provided. Please provide a value in \[0,1\] "
                                             r"range.$"):
            make(1.5)


# ---- update_bn ---------------------------------------------------------------------------------------

def _loader(lib, n=4, as_tuple=True):
    rng = np.random.default_rng(7)
    batches = [lib.tensor(rng.standard_normal((5, 3)).astype(np.float32) * 2 + 1) for _ in range(n)]
    return [(x, lib.zeros(5)) for x in batches] if as_tuple else batches


@pytest.mark.parametrize("as_tuple", [True, False], ids=["tuples", "tensors"])
def test_update_bn_matches_torch(as_tuple, torch):
    out = []
    for lib in (tracenn, torch):
        model = _model(lib)
        model[1].momentum = 0.3
        _train_bn(lib, model, 0)
        model.eval()
        lib.optim.swa_utils.update_bn(_loader(lib, as_tuple=as_tuple), model)
        assert model[1].momentum == 0.3 and not model.training
        out.append({k: to_np(v) for k, v in model.state_dict().items()})
    for key in out[1]:
        np.testing.assert_allclose(out[0][key], out[1][key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_update_bn_is_the_cumulative_average_of_batch_statistics():
    model = nn.Sequential(nn.BatchNorm1d(3))
    loader = _loader(tracenn, as_tuple=False)
    swa_utils.update_bn(loader, model)
    xs = [to_np(x).astype(np.float64) for x in loader]
    np.testing.assert_allclose(to_np(model[0].running_mean), np.mean([x.mean(0) for x in xs], 0), rtol=1e-5)
    np.testing.assert_allclose(to_np(model[0].running_var), np.mean([x.var(0, ddof=1) for x in xs], 0), rtol=1e-5)
    assert model[0].momentum == 0.1 and model.training
    assert int(model[0].num_batches_tracked) == 4


def test_update_bn_without_batchnorm_does_nothing():
    model = nn.Linear(3, 2)
    swa_utils.update_bn(iter(()), model)  # the loader is not even read


# ---- SWALR -------------------------------------------------------------------------------------------

def _lrs(lib, steps=8, **kw):
    opt = lib.optim.SGD([{"params": [lib.nn.Parameter(lib.zeros(1))]},
                         {"params": [lib.nn.Parameter(lib.zeros(1))], "lr": 0.3}], lr=1.0)
    sched = lib.optim.swa_utils.SWALR(opt, **kw)
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return out, sched


SWALR_CASES = [dict(swa_lr=0.05), dict(swa_lr=0.05, anneal_epochs=3, anneal_strategy="linear"),
               dict(swa_lr=[0.05, 0.5], anneal_epochs=4), dict(swa_lr=0.2, anneal_epochs=0)]


@pytest.mark.parametrize("kw", SWALR_CASES, ids=[str(i) for i in range(len(SWALR_CASES))])
def test_swalr_matches_torch(kw, torch):
    (ours, sched), (theirs, ref) = _lrs(tracenn, **kw), _lrs(torch, **kw)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert sched.get_last_lr() == pytest.approx(ref.get_last_lr())
    assert {k: v for k, v in sched.state_dict().items() if k != "_is_initial"} == \
        {k: v for k, v in ref.state_dict().items() if k != "_is_initial"}


def test_swalr_cosine_by_hand():
    lrs, _ = _lrs(tracenn, steps=3, swa_lr=0.1, anneal_epochs=2)
    alpha = (1 - math.cos(math.pi * 0.5)) / 2
    assert lrs[1][0] == pytest.approx(0.1 * alpha + 1.0 * (1 - alpha))
    assert [row[0] for row in lrs[2:]] == pytest.approx([0.1, 0.1])


def test_swalr_state_dict_round_trip():
    lrs, sched = _lrs(tracenn, steps=2, swa_lr=0.05, anneal_strategy="linear")
    state = sched.state_dict()
    assert "anneal_func" not in state and "optimizer" not in state and state["_anneal_strategy"] == "linear"
    _, other = _lrs(tracenn, steps=0, swa_lr=0.05)
    other.load_state_dict(state)
    assert other.anneal_func is other._linear_anneal and other.last_epoch == sched.last_epoch


def test_swalr_errors():
    opt = tracenn.optim.SGD([nn.Parameter(tracenn.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy must be one of 'cos' or 'linear', instead got exp"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0, got -1"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=-1)
    with pytest.raises(ValueError, match="swa_lr must have the same length as optimizer.param_groups"):
        swa_utils.SWALR(opt, swa_lr=[0.1, 0.2])


def test_swa_training_loop_with_a_compiled_step():
    """The usual loop: a compiled training step, SWALR and update_parameters between epochs."""
    tracenn.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)
    swa_model = swa_utils.AveragedModel(model)
    sched = swa_utils.SWALR(opt, swa_lr=0.02, anneal_epochs=2)
    x, y = tracenn.randn(16, 3), tracenn.randn(16, 1)

    @tracenn.compile
    def step():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    snapshots = []
    for _ in range(4):
        step()
        swa_model.update_parameters(model)
        sched.step()
        snapshots.append([to_np(p).copy() for p in model.parameters()])
    for i, p in enumerate(swa_model.module.parameters()):
        np.testing.assert_allclose(to_np(p), np.mean([s[i] for s in snapshots], 0), rtol=1e-5, atol=1e-6)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.02)
