"""The state a compiled step donates, kept as one flat array between calls (runtime/flatstate.py).

It is on off the CPU only (entry.FLAT_STATE_PLATFORMS); these tests turn it on for the CPU, where
donation works the same."""
import copy
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import nn
import tracenn.nn.functional as F
from tracenn.runtime import entry as entry_mod
from tracenn.runtime import flatstate
from helpers import to_np

OPTIMIZERS = {
    "sgd_momentum": lambda p: tracenn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: tracenn.optim.Adam(p, lr=0.01),
    "adamw_amsgrad": lambda p: tracenn.optim.AdamW(p, lr=0.01, amsgrad=True),
    "rmsprop": lambda p: tracenn.optim.RMSprop(p, lr=0.01, momentum=0.5),
}


def _turn_on(monkeypatch, grads=True):
    cpu = frozenset(("cpu",))
    monkeypatch.setattr(entry_mod, "FLAT_STATE_PLATFORMS", cpu)
    if grads:  # (as off the CPU: the unread grads one flat array too)
        monkeypatch.setattr(entry_mod, "FLAT_GRAD_PLATFORMS", cpu)
        monkeypatch.setattr(entry_mod, "RECYCLE_GRAD_PLATFORMS", cpu)


@pytest.fixture
def flat_state(monkeypatch):
    _turn_on(monkeypatch)


def _net(seed=0):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 3))


def _pair(name):
    out = []
    for _ in range(2):
        m = _net()
        out.append((m, OPTIMIZERS[name](m.parameters())))
    return out


def _step_fn(m, o):
    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss
    return step


def _unflat(fn):
    """``fn`` with the flat state off while it runs (its programs are built without it): the
    reference, a compiled step as on the CPU, itself tested against eager steps elsewhere."""
    def call(*args):
        was = entry_mod.FLAT_STATE_PLATFORMS
        entry_mod.FLAT_STATE_PLATFORMS = frozenset()
        try:
            return fn(*args)
        finally:
            entry_mod.FLAT_STATE_PLATFORMS = was
    return call


def _reference(m, o):
    return _unflat(tracenn.compile(_step_fn(m, o)))


def _running(name, n=6, first=3):
    """A reference step and a flat one, over two copies of one model, after ``first`` of ``n``
    batches: ``(me, oe, ref), (mc, oc, compiled), data``."""
    (me, oe), (mc, oc) = _pair(name)
    ref, compiled = _reference(me, oe), tracenn.compile(_step_fn(mc, oc))
    data = _data(n)
    for x, y in data[:first]:
        ref(x, y), compiled(x, y)
    return (me, oe, ref), (mc, oc, compiled), data


def _stepped(name="adam"):
    """A compiled step alone, after three steps: ``(model, optimizer, step)``."""
    (mc, oc), _ = _pair(name)
    step = tracenn.compile(_step_fn(mc, oc))
    for x, y in _data(3):
        step(x, y)
    return mc, oc, step


def _data(n, seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(8, 6, generator=g), tracenn.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def _state(m, o):
    """Every value a step rewrites (parameters, running statistics, optimizer state), by name."""
    out = {n: to_np(t) for n, t in m.state_dict().items()}
    for i, st in enumerate(o.state_dict()["state"].values()):
        for k, v in st.items():
            out[f"opt.{i}.{k}"] = to_np(v) if isinstance(v, tracenn.Tensor) else np.asarray(v)
    return out


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-4, atol=1e-5, err_msg=k)  # (XLA fuses them apart: RMSprop amplifies it)


def _tensors(m, o):
    return list(m.parameters()) + [m[2].running_mean, m[2].running_var] + \
        [v for st in o.state.values() for k, v in st.items() if k != "step"]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_steps_equal_unflat_steps_and_the_state_stays_one_array_until_read(flat_state, name):
    _steps_equal_and_stay_one_array(name)


def test_the_state_flat_with_the_grads_apart(monkeypatch):
    _turn_on(monkeypatch, grads=False)
    _steps_equal_and_stay_one_array("adam")


def _steps_equal_and_stay_one_array(name):
    (me, oe), (mc, oc) = _pair(name)
    ref, compiled = _reference(me, oe), tracenn.compile(_step_fn(mc, oc))
    where = None
    for k, (x, y) in enumerate(_data(6)):
        np.testing.assert_allclose(to_np(compiled(x, y)), to_np(ref(x, y)), rtol=1e-6, atol=1e-7)
        fs = compiled._last.fstate
        if k == 0:  # (the first step makes the optimizer state: its program writes new tensors)
            continue
        assert fs is not None
        members = {id(t) for t in fs.members}
        assert {id(t) for t in _tensors(mc, oc)} <= members  # parameters, running stats, optimizer buffers
        assert all(flatstate.is_pending(t) for t in fs.members)
        now = fs.flat.unsafe_buffer_pointer()
        if k >= 3:  # the steady state: the new flat array is written where the old one was (donated)
            assert now == where
        where = now
        if k == 3:  # a read makes them plain again, with the reference values; the next step goes on from them
            _assert_same(_state(mc, oc), _state(me, oe))
            assert not any(flatstate.is_pending(t) for t in fs.members)
            buf = next(v for k, v in oc.state[mc[0].weight].items() if k != "step")
            assert type(mc[0].weight) is nn.Parameter and type(buf) is tracenn.Tensor
    _assert_same(_state(mc, oc), _state(me, oe))
    assert len(compiled._entries) <= 2


def test_a_loop_that_only_steps_never_splits_the_flat_array(flat_state, monkeypatch):
    (mc, oc), _ = _pair("adam")
    step = tracenn.compile(_step_fn(mc, oc))
    data = _data(6)
    for x, y in data[:2]:
        step(x, y)
    splits, joins = [], []
    fs = step._last.fstate
    monkeypatch.setattr(fs, "split_jit", lambda flat, real=fs.split_jit: splits.append(1) or real(flat))
    monkeypatch.setattr(fs, "join_jit", lambda arrays, real=fs.join_jit: joins.append(1) or real(arrays))
    for x, y in data[2:]:
        step(x, y)
    assert splits == [] and joins == []  # the guards, the learning rate's placement: nothing reads a value
    mc[0].weight.sum()
    assert splits == [1]                  # one split for all of them
    step(*data[0])
    assert joins == []                    # only read: the flat array still holds their values


@pytest.mark.parametrize("write", ["eager_step", "in_place", "load_state_dict", "optimizer_state"])
def test_a_write_between_compiled_steps_is_seen_by_the_next(flat_state, write):
    (me, oe, ref), (mc, oc, compiled), data = _running("sgd_momentum")
    for m, o in ((me, oe), (mc, oc)):
        if write == "eager_step":  # (an eager step, with its own numbers: both models take it)
            _step_fn(m, o)(*data[5])
        elif write == "in_place":
            with tracenn.no_grad():
                m[3].bias.mul_(0.5)
        elif write == "load_state_dict":
            sd = {k: v * 0.9 for k, v in _net(seed=3).state_dict().items()}
            m.load_state_dict(sd)
        else:
            with tracenn.no_grad():
                o.state[m[0].weight]["momentum_buffer"].zero_()
    for x, y in data[3:]:
        np.testing.assert_allclose(to_np(compiled(x, y)), to_np(ref(x, y)), rtol=1e-6, atol=1e-7)
    _assert_same(_state(mc, oc), _state(me, oe))


def test_two_compiled_steps_over_the_same_parameters(flat_state):
    """Two programs that each keep the parameters flat, alternating: each sees the other's updates."""
    (me, oe), (mc, oc) = _pair("adam")
    o2e, o2c = tracenn.optim.SGD(me.parameters(), lr=0.1), tracenn.optim.SGD(mc.parameters(), lr=0.1)
    ref = [_reference(me, oe), _reference(me, o2e)]
    compiled = [tracenn.compile(_step_fn(mc, oc)), tracenn.compile(_step_fn(mc, o2c))]
    for k, (x, y) in enumerate(_data(8)):
        np.testing.assert_allclose(to_np(compiled[k % 2](x, y)), to_np(ref[k % 2](x, y)), rtol=1e-6, atol=1e-7)
    _assert_same(_state(mc, oc), _state(me, oe))


def test_eval_between_steps_and_a_compiled_model(flat_state):
    (me, oe), (mc, oc) = _pair("sgd_momentum")
    ref, compiled = _reference(me, oe), tracenn.compile(_step_fn(mc, oc))
    cm = tracenn.compile(mc)
    x_eval = tracenn.randn(4, 6)
    for x, y in _data(5):
        ref(x, y), compiled(x, y)
        me.eval(), mc.eval()
        with tracenn.no_grad():
            np.testing.assert_allclose(to_np(cm(x_eval)), to_np(me(x_eval)), rtol=1e-6, atol=1e-7)
        me.train(), mc.train()
    _assert_same(_state(mc, oc), _state(me, oe))


def test_a_pending_tensor_looks_and_copies_as_its_own_class(flat_state):
    mc, oc, step = _stepped()
    w = mc[0].weight
    assert flatstate.is_pending(w) and isinstance(w, nn.Parameter) and isinstance(w, tracenn.Tensor)
    assert type(w).__name__ == "Parameter" and type(w).__qualname__ == "Parameter"
    c = copy.deepcopy(mc)  # copies made from a pending tensor are of its own class, with its values
    assert type(c[0].weight) is nn.Parameter and not flatstate.is_pending(w)
    np.testing.assert_array_equal(to_np(c[0].weight), to_np(w))
    step(*_data(1)[0])
    assert flatstate.is_pending(w)
    p = pickle.loads(pickle.dumps(w))
    assert type(p) is nn.Parameter and p.requires_grad and "_flat_pending" not in p.__dict__
    np.testing.assert_array_equal(to_np(p), to_np(w))
    step(*_data(1)[0])
    exp_avg = oc.state[w]["exp_avg"]
    assert flatstate.is_pending(exp_avg)
    # its shape, dtype and device read without making it plain
    assert (exp_avg.shape, exp_avg.dtype, exp_avg.ndim, exp_avg.dim(), exp_avg.size(1), exp_avg.numel()) == \
        ((16, 6), tracenn.float32, 2, 2, 6, 96)
    assert exp_avg.device == tracenn.device("cpu") and exp_avg.nbytes == 384 and flatstate.is_pending(exp_avg)
    assert "tensor(" in repr(exp_avg) and type(exp_avg) is tracenn.Tensor
    step(*_data(1)[0])
    assert repr(w).startswith("Parameter containing:\ntensor(")


def test_a_saved_parameter_changed_by_a_step_fails_backward_as_eager(flat_state):
    """A step moves each member's version counter, as a write of each would: a graph that saved a
    parameter before the step cannot be differentiated after it."""
    (mc, oc), _ = _pair("sgd_momentum")
    step = tracenn.compile(_step_fn(mc, oc))
    data = _data(4)
    for x, y in data[:2]:
        step(x, y)
    out = (mc[0](data[0][0].requires_grad_()) ** 2).sum()  # saves the weight (for the input's gradient)
    w = mc[0].weight
    before = w._version
    step(*data[2])
    assert flatstate.is_pending(w) and w._version == before + 1
    step(*data[3])
    assert w._version == before + 2
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_on_the_cpu_by_default_nothing_is_flat():
    mc, _, step = _stepped()
    assert step._last.fstate is None and not flatstate.is_pending(mc[0].weight)


def test_save_load_and_moves_of_pending_state(flat_state, tmp_path):
    """Checkpoints, state dicts and device moves see the values of a pending step's state."""
    (me, oe, ref), (mc, oc, compiled), data = _running("adam")
    assert flatstate.is_pending(mc[0].weight)
    tracenn.save({"model": mc.state_dict(), "opt": oc.state_dict()}, tmp_path / "ckpt.pt")
    ck = tracenn.load(tmp_path / "ckpt.pt")
    _assert_same({n: to_np(t) for n, t in ck["model"].items()}, {n: to_np(t) for n, t in me.state_dict().items()})
    for x, y in data[3:5]:
        ref(x, y), compiled(x, y)
    mc.to("cpu")  # (a move to where they are: the values unchanged)
    (m2, o2), _ = _pair("adam")
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["opt"])
    step2 = tracenn.compile(_step_fn(m2, o2))
    (m3, o3), _ = _pair("adam")
    m3.load_state_dict(ck["model"])
    o3.load_state_dict(ck["opt"])
    ref3 = _reference(m3, o3)
    for x, y in data[3:]:
        np.testing.assert_allclose(to_np(step2(x, y)), to_np(ref3(x, y)), rtol=1e-6, atol=1e-7)
    _assert_same(_state(m2, o2), _state(m3, o3))
    np.testing.assert_allclose(to_np(compiled(*data[5])), to_np(ref(*data[5])), rtol=1e-6, atol=1e-7)
    _assert_same(_state(mc, oc), _state(me, oe))


def test_large_state_is_not_flat(flat_state, monkeypatch):
    """Above flatstate.MAX_BYTES a step is not host-bound: the state stays apart."""
    monkeypatch.setattr(flatstate, "MAX_BYTES", 1000)
    mc, _, step = _stepped()
    assert step._last.fstate is None and not flatstate.is_pending(mc[0].weight)
