"""Checkpointing a training run's state (model, optimizer, LR schedulers, RNG) with tracenn.save /
tracenn.load, and resuming: a resumed run must continue exactly like the uninterrupted one."""
from __future__ import annotations

import collections
import io
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import nn

lrs = tracenn.optim.lr_scheduler


def _roundtrip(obj, fmt):
    buf = io.BytesIO()
    tracenn.save(obj, buf, format=fmt)
    buf.seek(0)
    return tracenn.load(buf)


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_counter_round_trips_as_counter(fmt):
    obj = {"m": collections.Counter({2: 1, 4: 2}), "empty": collections.Counter(), "w": tracenn.ones(2)}
    got = _roundtrip(obj, fmt)
    assert type(got["m"]) is collections.Counter and got["m"] == obj["m"]
    assert type(got["empty"]) is collections.Counter and not got["empty"]
    assert tracenn.equal(got["w"], obj["w"])


def test_counter_in_torch_format_is_the_pickle_of_counter():
    # what torch.load(weights_only=True) reads: Counter rebuilt from the dict of its counts
    buf = io.BytesIO()
    tracenn.save({"m": collections.Counter({3: 2})}, buf, format="torch")
    import zipfile
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        got = pickle.loads(zf.read("archive/data.pkl"))  # no tensors in it: plain pickle reads it
    assert got == {"m": collections.Counter({3: 2})} and type(got["m"]) is collections.Counter


def _make():
    model = nn.Linear(3, 2)
    with tracenn.no_grad():
        model.weight.copy_(tracenn.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) / 10))
        model.bias.zero_()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = lrs.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
    return model, opt, sched


def _train(model, opt, sched, steps):
    x = tracenn.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
    for _ in range(steps):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
        sched.step()


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_multisteplr_checkpoint_resumes_exactly(fmt):
    model, opt, sched = _make()
    _train(model, opt, sched, 6)

    model_b, opt_b, sched_b = _make()
    _train(model_b, opt_b, sched_b, 3)
    ck = _roundtrip({"model": model_b.state_dict(), "opt": opt_b.state_dict(), "sched": sched_b.state_dict()}, fmt)
    assert type(ck["sched"]["milestones"]) is collections.Counter
    model_c, opt_c, sched_c = _make()
    model_c.load_state_dict(ck["model"])
    opt_c.load_state_dict(ck["opt"])
    sched_c.load_state_dict(ck["sched"])
    _train(model_c, opt_c, sched_c, 3)

    assert sched_c.get_last_lr() == sched.get_last_lr() == [0.1 * 0.5 ** 3]
    assert tracenn.equal(model_c.weight, model.weight) and tracenn.equal(model_c.bias, model.bias)


def test_torch_reads_a_multisteplr_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    model, opt, sched = _make()
    _train(model, opt, sched, 3)
    tracenn.save({"sched": sched.state_dict()}, tmp_path / "ck.pt", format="torch")
    got = torch.load(tmp_path / "ck.pt", weights_only=True)["sched"]
    assert got["milestones"] == collections.Counter({2: 1, 4: 2}) and got["last_epoch"] == 3
