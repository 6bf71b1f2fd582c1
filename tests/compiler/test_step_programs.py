"""A training step as one program or two (runtime/compiled.py::Entry._two_programs,
compiler/lower.py::split_point): the forward, returning what the backward reads, then the backward
and the update. XLA:CPU runs some steps much faster in the two-program form and others in the
one-program form, so by default the runtime times both on the first calls and keeps the faster
(``gradcall.Measured``); ``TRACENN_STEP_PROGRAMS=1`` or ``2`` fixes the form. Both forms must
equal the eager step, step for step, with randomness and buffer writes in the forward."""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
import tracenn.runtime.gradcall as gradcall
from helpers import to_np
from tracenn import nn
from tracenn.compiler.lower import lower, split_point


def _net(seed=0):
    tracenn.manual_seed(seed)
    # (no bias before BatchNorm: its gradient is ~0, and Adam turns float noise there into steps of lr)
    return nn.Sequential(nn.Linear(6, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(16, 3))


def _step(m, o):
    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss
    return step


def _data(n, seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(8, 6, generator=g), tracenn.randint(0, 3, (8,), generator=g)) for _ in range(n)]


OPTS = {"sgd": lambda p: tracenn.optim.SGD(p, lr=0.1, momentum=0.9),
        "adam": lambda p: tracenn.optim.Adam(p, lr=0.01)}


@pytest.mark.parametrize("form", ["1", "2", "auto"])
@pytest.mark.parametrize("opt", list(OPTS))
def test_every_form_equals_the_eager_step(form, opt, monkeypatch):
    monkeypatch.setenv("TRACENN_STEP_PROGRAMS", form)
    me, mc = _net(), _net()
    oe, oc = OPTS[opt](me.parameters()), OPTS[opt](mc.parameters())
    eager, compiled = _step(me, oe), tracenn.compile(_step(mc, oc))
    tracenn.manual_seed(7)
    losses_e = [float(eager(x, y)) for x, y in _data(8)]
    tracenn.manual_seed(7)
    losses_c = [float(compiled(x, y)) for x, y in _data(8)]
    np.testing.assert_allclose(losses_c, losses_e, rtol=2e-5, atol=1e-6)
    for (n, a), b in zip(me.state_dict().items(), mc.state_dict().values()):  # BatchNorm's running stats too
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b.grad), to_np(a.grad), rtol=1e-4, atol=2e-6)
        for k, v in oe.state[a].items():
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(v), rtol=1e-4, atol=2e-6, err_msg=k)
    entry = compiled._last
    if form == "1":
        assert entry.forms is None and entry.programs is None
    elif form == "2":
        assert hasattr(entry.fwd_donating, "programs") and entry.programs is None
    else:  # 7 calls of the steady-state entry: both forms timed, one kept
        assert entry.programs.pick is not None
        assert "runs as " in compiled.explain() and "(measured: one program" in compiled.explain()


def test_split_point_is_the_first_backward_node():
    m = _net()
    o = OPTS["sgd"](m.parameters())
    compiled = tracenn.compile(_step(m, o))
    for x, y in _data(2):
        compiled(x, y)
    g = compiled._last.graph
    k = split_point(g)
    assert g.nodes[k].phase == "backward"
    assert {n.phase for n in g.nodes[:k]} == {"forward"}
    model = tracenn.compile(_net())
    model(tracenn.randn(8, 6))
    assert split_point(model._last.graph) is None  # no backward: one program


def test_the_two_functions_compute_what_the_one_does():
    m = _net()
    o = OPTS["adam"](m.parameters())
    compiled = tracenn.compile(_step(m, o))
    for x, y in _data(2):
        compiled(x, y)
    entry = compiled._last
    g = entry.graph
    state = [None if i in entry.dropped else t._value for i, t in enumerate(entry.state_tensors)]
    rng, ins = entry.rng_args(), [t._value for t in _data(1, seed=9)[0]]
    outs, writes = lower(g)(state, rng, ins)
    first, rest = lower(g, split_point(g))
    outs2, writes2 = rest(state, rng, ins, first(state, rng, ins))
    for a, b in zip(outs + writes, outs2 + writes2):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-7)


class _Clock:
    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.mark.parametrize("faster", [0, 1])
def test_measured_keeps_the_faster_form_after_two_timed_calls_of_each(faster, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(gradcall, "time", clock)
    ran = []

    def form(k, cost):
        def f(x):
            ran.append(k)
            clock.now += cost
            return x
        return f

    m = gradcall.Measured(("one program", "two programs"))
    call = m.wrap(form(0, 2.0 if faster == 1 else 1.0), form(1, 1.0 if faster == 1 else 2.0))
    for i in range(10):
        assert call(i) == i
    assert ran[:6] == [0, 1, 0, 1, 0, 1]  # calls 1-2 compile (not timed), then two timed calls each
    assert m.pick == faster and set(ran[6:]) == {faster}
    assert m.describe() == (f"{m.names[faster]} (measured: one program {1000 if faster == 0 else 2000} ms, "
                            f"two programs {2000 if faster == 0 else 1000} ms)")


def test_a_bad_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TRACENN_STEP_PROGRAMS", "3")
    m = _net()
    o = OPTS["sgd"](m.parameters())
    compiled = tracenn.compile(_step(m, o))
    with pytest.raises(ValueError, match=r"TRACENN_STEP_PROGRAMS='3': expected 'auto', '1' or '2'"):
        for x, y in _data(2):
            compiled(x, y)
