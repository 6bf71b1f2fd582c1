"""Whole-step compile (issue 7): a training-step function — zero_grad, forward, loss, backward,
optimizer step, scheduler step — compiled into one program equals the eager step, step for step."""
import copy
import re

import numpy as np
import pytest

import tracenn
from tracenn import nn
import tracenn.nn.functional as F
from tracenn.runtime import entry as entry_mod
from helpers import to_np


def _net(seed=0, dropout=0.0):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.LayerNorm(16), nn.Dropout(dropout), nn.Linear(16, 3))


def _pair(make_opt, dropout=0.0, sched=None):
    """Two identical (model, optimizer, scheduler) triples: one for eager, one for compiled."""
    out = []
    for _ in range(2):
        m = _net(dropout=dropout)
        o = make_opt(m.parameters())
        s = sched(o) if sched else None
        out.append((m, o, s))
    return out


def _step_fn(m, o, s):
    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        if s is not None:
            s.step()
        return loss
    return step


def _data(n=5, seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(8, 6, generator=g), tracenn.randint(0, 3, (8,), generator=g)) for _ in range(n)]


OPTIMIZERS = {
    "sgd": lambda p: tracenn.optim.SGD(p, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda p: tracenn.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda p: tracenn.optim.Adam(p, lr=0.01),
    "adamw_amsgrad": lambda p: tracenn.optim.AdamW(p, lr=0.01, amsgrad=True),
    "rmsprop": lambda p: tracenn.optim.RMSprop(p, lr=0.01, momentum=0.5),
    "adagrad": lambda p: tracenn.optim.Adagrad(p, lr=0.05),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_compiled_step_equals_eager_step_for_step(name):
    (me, oe, _), (mc, oc, _) = _pair(OPTIMIZERS[name])
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    for x, y in _data():
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-5, atol=1e-6)
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
        np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-4, atol=2e-6, err_msg=n)
    for a, b in zip(me.parameters(), mc.parameters()):  # optimizer state, key by key
        for k, v in oe.state[a].items():
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(v), rtol=1e-4, atol=2e-6, err_msg=k)
    # one program for the first step (it makes the optimizer state), one for every later step
    assert len(compiled._entries) <= 2


def test_scheduler_changes_the_learning_rate_without_recompiling():
    sched = lambda o: tracenn.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)  # noqa: E731
    (me, oe, se), (mc, oc, sc) = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9), sched=sched)
    eager, compiled = _step_fn(me, oe, se), tracenn.compile(_step_fn(mc, oc, sc))
    for x, y in _data(6):
        eager(x, y), compiled(x, y)
        assert oc.param_groups[0]["lr"] == oe.param_groups[0]["lr"]
    assert oc.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=1e-6)
    assert len(compiled._entries) == 2
    assert "param_groups[0].lr" in str(compiled.graph)  # the learning rate is a program input


@pytest.mark.parametrize("make_opt", [lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9),
                                      lambda p: tracenn.optim.Adam(p, lr=0.01)], ids=["sgd", "adam"])
def test_one_cycle_momentum_does_not_recompile(make_opt):
    sched = lambda o: tracenn.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=8)  # noqa: E731
    (mc, oc, sc), = _pair(make_opt, sched=sched)[1:]
    compiled = tracenn.compile(_step_fn(mc, oc, sc))
    for x, y in _data(5):
        compiled(x, y)
    assert len(compiled._entries) == 2, compiled.explain()  # (the first call makes the optimizer state)
    key = "momentum" if "momentum" in oc.defaults else "betas[0]"
    assert f"param_groups[0].{key}" in str(compiled.graph)  # a program input, as the learning rate


def test_one_cycle_compiled_equals_eager():
    """OneCycleLR cycles SGD's momentum (Adam's beta1) with the learning rate: all are inputs of
    one program, and the compiled steps equal the eager ones (to the float32 rounding of the
    capturable formulas, which Adam's sqrt(v) + eps amplifies: the same bound holds with no
    scheduler, and held when every step compiled its own program)."""
    sched = lambda o: tracenn.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=8)  # noqa: E731
    for make, rtol in ((lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True), 1e-5),
                       (lambda p: tracenn.optim.RMSprop(p, lr=0.01, momentum=0.5), 1e-4),
                       (lambda p: tracenn.optim.AdamW(p, lr=0.01), 2e-3), (lambda p: tracenn.optim.NAdam(p, lr=0.01), 1e-3)):
        (me, oe, se), (mc, oc, sc) = _pair(make, sched=sched)
        eager, compiled = _step_fn(me, oe, se), tracenn.compile(_step_fn(mc, oc, sc))
        for x, y in _data(6):
            le, lc = eager(x, y), compiled(x, y)
            np.testing.assert_allclose(float(lc), float(le), rtol=1e-5)
        for a, b in zip(me.parameters(), mc.parameters()):
            np.testing.assert_allclose(to_np(b), to_np(a), rtol=rtol, atol=1e-5)
        assert len(compiled._entries) == 2, compiled.explain()


def test_learning_rate_input_is_placed_on_the_device_once_per_value():
    """A Python-float lr would be copied host-to-device on every call (on a GPU, a transfer per
    step): the call passes one cached 0-d array until the value changes."""
    from tracenn.runtime.refs import OptionRef
    (mc, oc, sc), _ = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9),
                            sched=lambda o: tracenn.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5))
    compiled = tracenn.compile(_step_fn(mc, oc, sc))
    for x, y in _data(3):
        compiled(x, y)
    ref = next(t for t in compiled._last.state_tensors if isinstance(t, OptionRef))
    first = ref._value
    assert ref._value is first and first.dtype == np.float64 and first.shape == ()
    assert float(first) == oc.param_groups[0]["lr"] == 0.05
    sc.step()  # the scheduler halves it: a new array with the new value
    assert ref._value is not first and float(ref._value) == 0.025
    oc.param_groups[0]["lr"] = tracenn.tensor([0.5])  # a 1-element tensor lr: read on the device
    assert ref._value.shape == () and float(ref._value) == 0.5


@pytest.mark.parametrize("lr", [tracenn.tensor(0.05), tracenn.tensor([0.05], dtype=tracenn.float64)])
def test_a_tensor_learning_rate_in_a_compiled_step(lr):
    (me, oe, _), (mc, oc, _) = _pair(lambda p: tracenn.optim.Adam(p, lr=lr.clone()))
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    for x, y in _data(3):
        eager(x, y), compiled(x, y)
    for a, b in zip(me.parameters(), mc.parameters()):  # (Adam: float noise on ~0 gradients)
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6)
    assert len(compiled._entries) == 2


def test_optimizer_state_replaced_between_steps_is_read_by_the_next_call():
    """The per-call watch sees new state tensors (a load_state_dict, a user's assignment), grads
    set or cleared, and changed options; the next call reads (and updates) the new tensors."""
    (me, oe, _), (mc, oc, _) = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9))
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    data = _data(5)
    for x, y in data[:2]:
        eager(x, y), compiled(x, y)
    for o, m in ((oe, me), (oc, mc)):  # a fresh momentum buffer for the first weight only
        o.state[m[0].weight]["momentum_buffer"] = tracenn.ones_like(m[0].weight)
    fresh = oc.state[mc[0].weight]["momentum_buffer"]
    for x, y in data[2:4]:
        eager(x, y), compiled(x, y)
    assert oc.state[mc[0].weight]["momentum_buffer"] is fresh and fresh._version == 2
    oe.param_groups[0]["momentum"] = oc.param_groups[0]["momentum"] = 0.5  # an option: recompiles
    eager(*data[4]), compiled(*data[4])
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(to_np(oc.state[b]["momentum_buffer"]), to_np(oe.state[a]["momentum_buffer"]),
                                   rtol=1e-5, atol=1e-6)


def test_old_grads_are_dropped_before_the_call_and_a_held_one_stays_valid():
    (mc, oc, _), _ = _pair(OPTIMIZERS["sgd_momentum_nesterov_wd"])
    compiled = tracenn.compile(_step_fn(mc, oc, None))
    data = _data(3)
    for x, y in data[:2]:
        compiled(x, y)
    entry = compiled._last
    dropped = sorted(list(entry.graph.state)[i] for i in entry.dropped)
    assert dropped == sorted(f"m.{n}.grad" for n, _ in mc.named_parameters())  # zero_grad(): none read
    held = mc[0].weight.grad
    before = to_np(held).copy()
    compiled(*data[2])
    np.testing.assert_array_equal(to_np(held), before)  # the user's old grad is untouched
    assert mc[0].weight.grad is not held


def test_per_group_learning_rates_and_frozen_parameters():
    def make(p):
        return None

    pairs = []
    for _ in range(2):
        m = _net()
        m[4].requires_grad_(False)
        o = tracenn.optim.Adam([{"params": m[0].parameters(), "lr": 0.02},
                                {"params": m[2].parameters(), "lr": 0.005}])
        pairs.append((m, o))
    (me, oe), (mc, oc) = pairs
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    for x, y in _data(4):
        eager(x, y), compiled(x, y)
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
    assert mc[4].weight.grad is None and me[4].weight.grad is None


def test_gradient_accumulation_and_no_grad_blocks():
    pairs = [(_net(), None) for _ in range(2)]
    (me, _), (mc, _) = pairs
    oe, oc = tracenn.optim.SGD(me.parameters(), lr=0.1), tracenn.optim.SGD(mc.parameters(), lr=0.1)

    def body(m, o, x1, y1, x2, y2):
        o.zero_grad()
        total = 0.0
        for x, y in ((x1, y1), (x2, y2)):  # two micro-batches, gradients accumulate
            loss = F.cross_entropy(m(x), y) / 2
            loss.backward()
            with tracenn.no_grad():
                total = total + loss
        o.step()
        return total

    compiled = tracenn.compile(lambda *a: body(mc, oc, *a))
    data = _data(6)
    for (x1, y1), (x2, y2) in zip(data[::2], data[1::2]):
        le, lc = body(me, oe, x1, y1, x2, y2), compiled(x1, y1, x2, y2)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=1e-5)
        assert not lc.requires_grad
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=1e-6)


def test_a_compiled_micro_step_without_an_optimizer_accumulates_grads_across_calls():
    # The usual gradient-accumulation loop compiles only the micro-batch (forward + backward) and
    # steps the optimizer outside it: every call must add to .grad as eagerly, and after
    # zero_grad() the next call starts afresh. (The grads a step reads were watched only through
    # a captured optimizer: this kept .grad at the last micro-batch's gradient.)
    me, mc = _net(), _net()
    oe, oc = tracenn.optim.SGD(me.parameters(), lr=0.1), tracenn.optim.SGD(mc.parameters(), lr=0.1)

    def micro(m):
        def step(x, y):
            loss = F.cross_entropy(m(x), y) / 2
            loss.backward()
            return loss
        return step

    eager, compiled = micro(me), tracenn.compile(micro(mc))
    data = _data(6)
    for k, (x, y) in enumerate(data):
        eager(x, y), compiled(x, y)
        for (n, a), b in zip(me.named_parameters(), mc.parameters()):
            np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-5, atol=1e-7, err_msg=f"{k} {n}")
        if k % 2:
            oe.step(), oc.step()
            oe.zero_grad(), oc.zero_grad()
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=1e-6)


def test_a_compiled_step_accumulates_into_a_plain_leaf_tensor_grad():
    # a captured tensor(..., requires_grad=True) that no optimizer steps gets .grad as eagerly
    w = tracenn.tensor([3.0, 4.0, 5.0, 1.0], requires_grad=True)

    def step():
        loss = (w * 2).pow(2).sum()
        loss.backward()
        return loss

    compiled = tracenn.compile(step)
    assert compiled().item() == 204.0
    np.testing.assert_array_equal(to_np(w.grad), [24.0, 32.0, 40.0, 8.0])
    compiled()
    np.testing.assert_array_equal(to_np(w.grad), [48.0, 64.0, 80.0, 16.0])
    w.grad = None
    compiled()
    np.testing.assert_array_equal(to_np(w.grad), [24.0, 32.0, 40.0, 8.0])


def test_dropout_in_a_compiled_step_draws_the_eager_masks():
    (me, oe, _), (mc, oc, _) = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1), dropout=0.3)
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    for i, (x, y) in enumerate(_data(4)):
        tracenn.manual_seed(100 + i)
        le = eager(x, y)
        tracenn.manual_seed(100 + i)
        lc = compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=1e-5)


def test_printed_step_shows_backward_and_update():
    (m, o, _), _ = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9))
    step = tracenn.compile(_step_fn(m, o, None))
    for x, y in _data(2):
        step(x, y)
    text = str(step.graph)
    sections = [line.strip() for line in text.splitlines() if line.strip().startswith("# ----")]
    assert sections == ["# ---- forward ----", "# ---- backward ----", "# ---- update ----"]
    assert "vjp_matmul" in text and "vjp_relu" in text          # backward as graph nodes
    assert "momentum_buffer <-" in text                         # optimizer state written back
    assert "0.weight.grad <-" in text and "0.weight <-" in text  # grads and params written back


def test_donation_keeps_clones_and_deepcopies_intact():
    m = _net()
    snapshot = copy.deepcopy(m)
    w0 = m[0].weight.detach().clone()
    o = tracenn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    step = tracenn.compile(_step_fn(m, o, None))
    for x, y in _data(3):
        step(x, y)
    entry = list(step._entries.values())[-1]
    assert entry.donate, "a training step donates the arrays it rewrites"
    np.testing.assert_array_equal(to_np(w0), to_np(snapshot[0].weight))  # still readable, unchanged
    assert not np.allclose(to_np(m[0].weight), to_np(w0))


def test_checkpoint_after_compiled_steps_round_trips(tmp_path):
    (m, o, _), _ = _pair(lambda p: tracenn.optim.Adam(p, lr=0.01))
    step = tracenn.compile(_step_fn(m, o, None))
    for x, y in _data(3):
        step(x, y)
    tracenn.save({"model": m.state_dict(), "opt": o.state_dict()}, tmp_path / "ck.pt")
    ck = tracenn.load(tmp_path / "ck.pt")
    m2 = _net(seed=5)
    m2.load_state_dict(ck["model"])
    o2 = tracenn.optim.Adam(m2.parameters(), lr=0.01)
    o2.load_state_dict(ck["opt"])
    for a, b in zip(m.parameters(), m2.parameters()):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    assert float(o2.state_dict()["state"][0]["step"]) == 3.0


def test_autocast_in_a_compiled_step_keeps_float32_master_weights():
    (me, oe, _), (mc, oc, _) = _pair(lambda p: tracenn.optim.SGD(p, lr=0.1))

    def body(m, o, x, y):
        o.zero_grad()
        with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
            loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss

    compiled = tracenn.compile(lambda x, y: body(mc, oc, x, y))
    for x, y in _data(3):
        le, lc = body(me, oe, x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-2)
    assert all(p.dtype == tracenn.float32 and p.grad.dtype == tracenn.float32 for p in mc.parameters())
    assert "cast[dtype=bf16]" in str(compiled.graph)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=2e-2, atol=2e-3)


def test_backward_inside_reaches_an_inputs_grad():
    m = _net()

    def f(x):
        m(x).sum().backward()
        return x.sum()

    x = tracenn.randn(4, 6, requires_grad=True)
    tracenn.compile(f)(x)
    compiled = to_np(x.grad)
    x.grad = None
    m.zero_grad()
    f(x)
    np.testing.assert_allclose(compiled, to_np(x.grad), rtol=1e-5, atol=1e-6)


def test_a_trainer_method_trains():
    class Trainer:
        def __init__(self):
            self.model = _net()
            self.opt = tracenn.optim.SGD(self.model.parameters(), lr=0.1)

        def step(self, x, y):
            self.opt.zero_grad()
            loss = F.cross_entropy(self.model(x), y)
            loss.backward()
            self.opt.step()
            return loss

    te, tc = Trainer(), Trainer()
    compiled = tracenn.compile(tc.step)
    for x, y in _data(3):
        np.testing.assert_allclose(to_np(compiled(x, y)), to_np(te.step(x, y)), rtol=1e-5)
    assert "%self.model.0.weight" in str(compiled.graph) or "self.model.0.weight" in str(compiled.graph)


def test_a_parameter_outside_the_state_is_an_error_not_a_constant():
    class Holder:
        pass

    h = Holder()
    h.m = nn.Linear(3, 2)

    def g(x):
        return h.m(x).sum()

    with pytest.raises(tracenn.errors.CompileError, match="would be baked in as a constant and never train"):
        tracenn.compile(g)(tracenn.randn(2, 3))


@pytest.mark.parametrize("name", ["adam", "sgd_momentum_nesterov_wd"])
def test_plain_tensor_parameters_step_equal_to_eager(name):
    """Leaves that are not nn.Parameters (a functional_call parameter dict): each gets its own
    optimizer state and its .grad, as eagerly. (Their state was once named alike, so only the
    last one's survived a call: the others restarted Adam's bias correction every step.)"""
    from tracenn.func import functional_call
    runs = []
    for compiled in (False, True):
        m = _net()
        params = {k: v.detach().clone().requires_grad_() for k, v in m.named_parameters()}
        opt = OPTIMIZERS[name](params.values())

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(functional_call(m, params, (x,)), y)
            loss.backward()
            opt.step()
            return loss
        fn = tracenn.compile(step) if compiled else step
        losses = [float(fn(x, y)) for x, y in _data()]
        runs.append((losses, params, opt, fn))
    (le, pe, oe, _), (lc, pc, oc, fc) = runs
    np.testing.assert_allclose(lc, le, rtol=2e-5, atol=1e-6)
    for k in pe:
        np.testing.assert_allclose(to_np(pc[k]), to_np(pe[k]), rtol=1e-4, atol=2e-6, err_msg=k)
        np.testing.assert_allclose(to_np(pc[k].grad), to_np(pe[k].grad), rtol=1e-4, atol=2e-6, err_msg=k)
        for s, v in oe.state[pe[k]].items():
            np.testing.assert_allclose(to_np(oc.state[pc[k]][s]), to_np(v), rtol=1e-4, atol=2e-6, err_msg=s)
    assert len(fc._entries) <= 2


# ---- the new grads written into the old ones (entry.RECYCLE_GRAD_PLATFORMS) ----------------------
# A compiled step that starts with zero_grad() writes its new .grad arrays into the old ones
# (donated, unread) off the CPU: on a GPU a step whose outputs land where its inputs were replays
# its CUDA graph as recorded. These tests turn it on for the CPU, where donation works the same.

@pytest.fixture
def recycling(monkeypatch):
    monkeypatch.setattr(entry_mod, "RECYCLE_GRAD_PLATFORMS", frozenset(("cpu",)))


def _aliases(entry, x, y):
    """(donated state name, state name whose write takes its buffer) for each donated argument,
    read from the lowered program's ``tf.aliasing_output`` attributes."""
    st = entry.state_tensors
    lowered = entry.fwd_donating.lower([st[i]._value for i in entry.donate_all], [st[i]._value for i in entry.keep],
                                       entry.rng_args(), [x._value, y._value])
    text = lowered.as_text()
    header = text[text.index("func.func public @main"):]
    header = header[:header.index("{\n")]
    args = re.findall(r"%arg\d+: tensor<[^>]*>( \{[^}]*\})?", header)
    names = list(entry.graph.state)
    written = [n for n, v in entry.graph.writes.items() if v is not None]
    at = {}
    for j, n in enumerate(written):
        at.setdefault(j if entry.write_index is None else entry.write_index[j], n)
    out = []
    for k, attr in enumerate(args[:len(entry.donate_all)]):
        m = re.search(r"tf.aliasing_output = (\d+)", attr or "")
        out.append((names[entry.donate_all[k]], at.get(int(m.group(1)) - entry.n_out) if m else None))
    return out


@pytest.mark.parametrize("name", ["sgd_momentum_nesterov_wd", "adamw_amsgrad"])
def test_every_donated_buffer_is_taken_by_the_write_of_the_same_name(recycling, name):
    (m, o, _), _ = _pair(OPTIMIZERS[name])
    step = tracenn.compile(_step_fn(m, o, None))
    data = _data(3)
    for x, y in data:
        step(x, y)
    e = step._last
    grads = sorted(f"m.{n}.grad" for n, _ in m.named_parameters())
    assert sorted(list(e.graph.state)[i] for i in e.recycled) == grads
    pairs = _aliases(e, *data[0])
    assert len(pairs) == len(e.donate) + len(grads)
    assert [a for a, b in pairs if a != b] == []  # a parameter's buffer is its own new value's, a grad's its grad's


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_recycled_steps_equal_eager_and_the_old_grad_buffers_are_reused(recycling, name):
    (me, oe, _), (mc, oc, _) = _pair(OPTIMIZERS[name])
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    for k, (x, y) in enumerate(_data(5)):
        where = [p.grad._value.unsafe_buffer_pointer() for p in mc.parameters()] if k >= 2 else None
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-5, atol=1e-6)
        if where is not None:  # each new grad where its old one was: donated, not copied
            assert [p.grad._value.unsafe_buffer_pointer() for p in mc.parameters()] == where
    assert compiled._last.recycled
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
        np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-4, atol=2e-6, err_msg=n)


def test_a_grad_the_user_holds_is_copied_not_donated(recycling):
    (m, o, _), _ = _pair(OPTIMIZERS["adam"])
    step = tracenn.compile(_step_fn(m, o, None))
    data = _data(4)
    for x, y in data[:2]:
        step(x, y)
    held = m[0].weight.grad                # the tensor held ...
    bias = m[0].bias.grad._value           # ... or only its array (a view or detach() shares it)
    before, bias_before = to_np(held).copy(), np.asarray(bias).copy()
    other = m[4].weight.grad._value.unsafe_buffer_pointer()
    step(*data[2])
    np.testing.assert_array_equal(to_np(held), before)
    np.testing.assert_array_equal(np.asarray(bias), bias_before)
    assert m[0].weight.grad is not held and not held._value.is_deleted()
    assert m[4].weight.grad._value.unsafe_buffer_pointer() == other  # nobody held that one: reused
    step(*data[3])                         # and the next step runs as before


def test_no_recycling_on_the_cpu_by_default():
    (m, o, _), _ = _pair(OPTIMIZERS["sgd"])
    step = tracenn.compile(_step_fn(m, o, None))
    for x, y in _data(3):
        step(x, y)
    e = step._last
    assert e.dropped and not e.recycled and len(e.released) == len(e.dropped)
    assert all(d is e.state_tensors[i].param.__dict__ for d, i in zip(e.released, e.dropped))  # (where .grad is)
    assert sorted(e.donate_all) == sorted(e.donate)


# ---- the unread grads as one flat array (runtime/flatgrads.py: off the CPU) -----------------------

@pytest.fixture
def flat_grads(monkeypatch):
    monkeypatch.setattr(entry_mod, "RECYCLE_GRAD_PLATFORMS", frozenset(("cpu",)))
    monkeypatch.setattr(entry_mod, "FLAT_GRAD_PLATFORMS", frozenset(("cpu",)))


def _pending(m):
    from tracenn._pending_grad import PendingGrad
    return [type(p.__dict__.get("grad")) is PendingGrad for p in m.parameters()]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_flat_grads_steps_equal_eager_and_grads_read_when_asked(flat_grads, name):
    (me, oe, _), (mc, oc, _) = _pair(OPTIMIZERS[name])
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    where = None
    for k, (x, y) in enumerate(_data(6)):
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-5, atol=1e-6)
        if k >= 1:
            assert all(_pending(mc))  # the step's grads are not tensors until read
            now = compiled._last.flat.last.flat.unsafe_buffer_pointer()
            if where is not None:     # the next step's grads were written into the same array
                assert now == where
            where = now
        if k == 3:  # read: all of the step's grads become tensors, equal to eager's, the same tensor per read
            g = mc[0].weight.grad
            assert g is mc[0].weight.grad and not any(_pending(mc))
            for (n, a), b in zip(me.named_parameters(), mc.parameters()):
                np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-4, atol=2e-6, err_msg=n)
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
        np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-4, atol=2e-6, err_msg=n)
    assert len(compiled._entries) <= 2


def test_flat_grads_held_grad_survives_and_eager_zero_grad_between_steps(flat_grads):
    (me, oe, _), (mc, oc, _) = _pair(OPTIMIZERS["adam"])
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    data = _data(5)
    for x, y in data[:2]:
        eager(x, y), compiled(x, y)
    held = mc[4].bias.grad
    before = to_np(held).copy()
    eager(*data[2]), compiled(*data[2])
    np.testing.assert_array_equal(to_np(held), before)  # read before the step: a tensor of its own
    oc.zero_grad()                                        # eager, between compiled steps
    oe.zero_grad()
    assert all(p.grad is None for p in mc.parameters())
    oc.zero_grad(set_to_none=False)                       # nothing to zero: still None, as in torch
    for x, y in data[3:]:
        np.testing.assert_allclose(to_np(compiled(x, y)), to_np(eager(x, y)), rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(mc[0].weight.grad), to_np(me[0].weight.grad), rtol=1e-4, atol=2e-6)
    del mc[0].weight.grad                                  # as torch: None after del
    assert mc[0].weight.grad is None


def test_flat_grads_eager_zero_grad_drops_them_unread(flat_grads):
    """An eager zero_grad() between compiled steps (the optimizer's, then the module's) sets the
    pending grads to None without making them tensors (no program to split the flat array), and the
    later steps still equal eager ones."""
    (me, oe, _), (mc, oc, _) = _pair(OPTIMIZERS["adam"])
    eager, compiled = _step_fn(me, oe, None), tracenn.compile(_step_fn(mc, oc, None))
    data = _data(6)
    for k, (x, y) in enumerate(data):
        if k in (3, 5):  # (the grads of the step before are pending: a step that starts with grads)
            assert all(_pending(mc))
            bucket = mc[0].weight.__dict__["grad"].bucket
            (oc if k == 3 else mc).zero_grad()
            assert bucket.tensors is None and all(p.__dict__.get("grad") is None for p in mc.parameters())
            oe.zero_grad()
        np.testing.assert_allclose(to_np(compiled(x, y)), to_np(eager(x, y)), rtol=2e-5, atol=1e-6)
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
    assert len(compiled._entries) == 3  # first step; grads set; no grads with Adam's state made


def test_flat_grads_stay_pending_through_guards_and_a_recompile(flat_grads):
    (m, o, _), _ = _pair(OPTIMIZERS["sgd_momentum_nesterov_wd"])
    step = tracenn.compile(_step_fn(m, o, None))
    data = _data(4)
    for x, y in data[:3]:
        step(x, y)
    assert all(_pending(m))
    m.eval()                                # a guard changes: the next call compiles anew, reading
    step(*data[3])                          # the state's shapes without making the grads tensors
    assert len(step._entries) == 3 and all(_pending(m))
