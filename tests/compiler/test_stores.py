"""Tensors a compiled call puts in Python lists and dicts that outlive it (``self.aux.append(l)``,
a global ``history.append(loss)``, ``log["loss"] = loss``): the program returns them and the call
replays the append or item set after each call with real tensors (``Graph.stores``), as eager does;
anything else is undone and the call runs eagerly, with a warning, never leaving a symbolic
tensor behind."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import UnsupportedError
from tracenn.func import to_jax
from helpers import assert_close


def _quiet(fn, *args):
    """``fn(*args)``, failing on any warning (a fallback to eager warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args)


def _is_real(t) -> bool:
    return isinstance(t, tracenn.Tensor) and not isinstance(t._value, tracenn.compiler.graph.Value)


class _Gate(nn.Module):
    """A mixture-of-experts style gate: an auxiliary loss appended to a list, statistics in a dict."""

    def __init__(self):
        super().__init__()
        self.gate = nn.Linear(4, 3)
        self.aux = []
        self.stats = {}

    def forward(self, x):
        p = self.gate(x).softmax(-1)
        self.aux.append((p.mean(0) ** 2).sum())
        self.stats["entropy"] = -(p * p.log()).sum(-1).mean().detach()
        self.stats["range"] = (p.max(), p.min())
        return p @ tracenn.ones(3, 2)


def _train_gate(compiled: bool):
    tracenn.manual_seed(0)
    m = _Gate()
    f = tracenn.compile(m) if compiled else m
    x = tracenn.tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    lengths = []
    for i in range(3):
        out = _quiet(f, x * (i + 1))
        lengths.append(len(m.aux))
        loss = out.sum() + 0.1 * sum(m.aux)
        loss.backward()
        m.aux.clear()
    return m, f, lengths


def test_list_append_and_dict_items_replay_with_gradients():
    eager, _, eager_lengths = _train_gate(False)
    comp, cm, lengths = _train_gate(True)
    assert lengths == eager_lengths == [1, 1, 1]
    assert_close(comp.gate.weight.grad, eager.gate.weight.grad, rtol=1e-5, atol=1e-6)  # through the aux loss too
    assert all(_is_real(t) for t in (comp.stats["entropy"], *comp.stats["range"]))
    assert_close(comp.stats["entropy"], eager.stats["entropy"], rtol=1e-6)
    assert_close(comp.stats["range"][1], eager.stats["range"][1], rtol=1e-6)
    assert not comp.stats["entropy"].requires_grad and comp.stats["range"][0].requires_grad
    assert len(cm.explain().split("compile ")) == 2  # one program: replaying is not a recompile


def test_the_ir_prints_the_stores_after_the_writes():
    _, cm, _ = _train_gate(True)
    text = str(cm.graph)
    assert "\n  aux.append(%6)\n  stats['entropy'] = %12\n  stats['range'] = (%13, %14)\n  return %16" in text
    assert text.startswith("graph _Gate(%x: f32[5,4]) -> f32[5,2]    mode=train\n")


def test_a_global_history_in_a_compiled_training_step():
    def run(compiled):
        tracenn.manual_seed(0)
        net = nn.Linear(3, 1)
        opt = tracenn.optim.SGD(net.parameters(), lr=0.1)
        history = []

        def step(x):
            opt.zero_grad()
            loss = net(x).pow(2).mean()
            loss.backward()
            opt.step()
            history.append(loss.detach())
            return loss

        s = tracenn.compile(step) if compiled else step
        x = tracenn.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))
        for _ in range(4):
            _quiet(s, x)
        return history, net.weight

    (h_eager, w_eager), (h_comp, w_comp) = run(False), run(True)
    assert len(h_comp) == 4 and all(_is_real(t) for t in h_comp)
    np.testing.assert_allclose([t.item() for t in h_comp], [t.item() for t in h_eager], rtol=1e-6)
    assert h_comp[0].item() > h_comp[-1].item()  # the losses of successive steps, not one value four times
    assert_close(w_comp, w_eager, rtol=1e-6)


def test_default_argument_list_and_closure_dict():
    log = {}

    def f(x, seen=[]):  # noqa: B006  (a mutable default, on purpose)
        y = x * 2
        seen.append(y)
        log["last"] = y.sum()
        return y + 1

    cf = tracenn.compile(f)
    for i in range(3):
        _quiet(cf, tracenn.full((2,), float(i)))
    seen = f.__defaults__[0]
    assert [t.tolist() for t in seen] == [[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]]
    assert log["last"].item() == 8.0


@pytest.mark.parametrize("change", ["replace", "insert", "pop"])
def test_other_changes_run_eagerly_and_leave_no_symbolic_tensor(change):
    class Acts(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.acts = [tracenn.zeros(2)]

        def forward(self, x):
            h = self.lin(x)
            if change == "replace":
                self.acts[0] = h
            elif change == "insert":
                self.acts.insert(0, h)
            else:
                self.acts.pop()
                self.acts.append(h)
            return h

    m = Acts()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    with pytest.warns(UserWarning, match=r"running Acts eagerly.*changed a list or dict that outlives the call "
                                         r"\(acts\).*other than by appending"):
        out = cm(x)
    assert all(_is_real(t) for t in m.acts)
    assert_close(m.acts[0], out)
    assert len(m.acts) == (2 if change == "insert" else 1)


def test_a_failed_trace_takes_its_appends_back():
    class Reads(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, x):
            self.seen.append(x * 2)
            return x if x.sum() > 0 else -x  # reads a value: this trace fails

    m = Reads()
    cm = tracenn.compile(m, fallback="eager")
    with pytest.warns(UserWarning):
        cm(tracenn.ones(2))
    assert len(m.seen) == 1 and _is_real(m.seen[0])


def test_a_checked_call_appends_once():
    m = _Gate()
    cm = tracenn.compile(m, check=True)
    cm(tracenn.ones(5, 4))
    assert len(m.aux) == 1 and _is_real(m.aux[0])


def test_to_jax_refuses_a_forward_that_stores():
    with pytest.raises(UnsupportedError, match=r"to_jax: _Gate.forward stores tensors in Python lists or dicts "
                                               r"\(aux.append\(...\), stats\['entropy'\] = ...,"):
        to_jax(_Gate(), tracenn.ones(5, 4))


class _Attn(nn.Module):
    """Keeps its attention weights and an auxiliary loss as attributes, as models do for plots and
    for losses the training loop adds."""

    def __init__(self):
        super().__init__()
        self.q = nn.Linear(4, 4)
        self.weights = None
        self.aux_loss = None

    def forward(self, x):
        w = (self.q(x) @ x.transpose(-1, -2)).softmax(-1)
        self.weights = w.detach()
        self.aux_loss = (w ** 2).mean()
        return w @ x


def _train_attn(compiled: bool):
    tracenn.manual_seed(0)
    m = nn.Sequential(_Attn(), nn.Linear(4, 1))
    f = tracenn.compile(m) if compiled else m
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    weights = []
    for i in range(3):
        x = tracenn.ones(2, 3, 4) * (i + 1) * 0.1 + tracenn.arange(4.0) * 0.05
        opt.zero_grad()
        loss = _quiet(f, x).sum() + m[0].aux_loss
        loss.backward()
        opt.step()
        weights.append(m[0].weights)
    return m, f, weights


def test_module_attributes_set_in_forward_are_replayed():
    (m_e, _, w_e), (m_c, f, w_c) = _train_attn(False), _train_attn(True)
    assert len({id(w) for w in w_c}) == 3 and all(_is_real(w) and not w.requires_grad for w in w_c)
    for a, b in zip(w_c, w_e):
        assert_close(a, b, rtol=1e-6)
    assert_close(m_c[0].q.weight, m_e[0].q.weight, rtol=1e-6)  # the aux loss's gradient reached it
    assert f.explain().count("compile ") == 1
    assert "\n  self.0.weights = %" in str(f.graph) and "\n  self.0.aux_loss = %" in str(f.graph)


def test_an_attribute_read_and_replaced_is_a_buffers_job_and_runs_eagerly():
    class Running(nn.Module):
        def __init__(self):
            super().__init__()
            self.h = tracenn.zeros(2)

        def forward(self, x):
            self.h = self.h * 0.5 + x
            return self.h * 2

    m = Running()
    cm = tracenn.compile(m)
    with pytest.warns(UserWarning, match=r"reads the tensor attribute self.h and replaces it.*register_buffer"):
        outs = [cm(tracenn.ones(2)).tolist() for _ in range(3)]
    assert outs == [[2.0, 2.0], [3.0, 3.0], [3.5, 3.5]] and _is_real(m.h)


def test_a_stored_attribute_read_by_a_later_trace_runs_that_call_eagerly():
    class Last(nn.Module):
        def __init__(self):
            super().__init__()
            self.last = None

        def forward(self, x):
            out = x * 2 if self.last is None else x * 2 + self.last.sum()
            self.last = x.sum(0)
            return out

    m = Last()
    cm = tracenn.compile(m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cm(tracenn.ones(2, 2))  # traced while self.last is None; the call stores it
        cm(tracenn.ones(2, 2))  # the same program (it does not read self.last)
    with pytest.warns(UserWarning, match="reads a tensor attribute that a compiled call stored"):
        out = cm(tracenn.ones(3, 2))  # a new shape: this trace reads self.last, a stored output
    assert out.tolist() == [[6.0, 6.0]] * 3  # 2 + the sum of the last call's x.sum(0) = [2, 2]
    assert _is_real(m.last) and m.last.tolist() == [3.0, 3.0]


def test_an_attribute_an_eager_call_set_and_a_compiled_call_only_overwrites_is_a_store():
    # The style-transfer tutorial's loss modules: ``self.loss = mse(...)`` in forward, and the
    # model run eagerly before it is compiled, so the attribute exists (a captured tensor) when the
    # first program is traced. The trace never reads it, so the call compiles and stores it; the
    # next call's state no longer holds it (a stored output), and then the program is reused.
    class Loss(nn.Module):
        def __init__(self, target):
            super().__init__()
            self.target = target

        def forward(self, x):
            self.loss = ((x - self.target) ** 2).mean()
            return x

    m = nn.Sequential(nn.Linear(3, 3), Loss(tracenn.ones(2, 3)))
    m(tracenn.zeros(2, 3))
    cm = tracenn.compile(m)
    x = tracenn.arange(6.0).reshape(2, 3).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        losses = []
        for i in range(4):
            cm(x * (i + 1))
            losses.append(m[1].loss)
    expected = [((m[0](x * (i + 1)) - 1) ** 2).mean() for i in range(4)]
    for a, b in zip(losses, expected):
        assert_close(a, b, rtol=1e-6)
    losses[-1].backward()  # the stored loss is on the tape: its gradient reaches the input
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert cm.explain().count("compile ") == 2 and "eager" not in cm.explain().split("log:")[1]
