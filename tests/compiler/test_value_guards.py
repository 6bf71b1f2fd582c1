"""What a compiled call bakes in is guarded: plain module attributes, tensors kept as plain module
attributes, plain values a compiled function reads, tensor learning rates; and a failed or
unsupported training-step trace leaves the optimizer as it was."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import DataDependentError
from helpers import sum_loss_step


def _recorded(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(x.message) for x in w]


def test_dropout_probability_changed_after_compile_recompiles():
    d = nn.Dropout(0.5)
    cd = tracenn.compile(d)
    x = tracenn.ones(2, 4)
    dropped = cd(x).numpy()
    assert set(np.unique(dropped)) <= {0.0, 2.0} and (dropped == 0).any()
    d.p = 0.0
    np.testing.assert_array_equal(cd(x).numpy(), np.ones((2, 4), np.float32))
    assert "compile 2: attribute 'p' changed: 0.5 -> 0.0" in cd.explain()


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.double = False
        self.c = tracenn.ones(1)  # a plain tensor attribute: not a parameter or buffer

    def forward(self, x):
        y = self.lin(x) + self.c
        return y * 2 if self.double else y


def test_module_flag_and_tensor_attribute_changes_reach_the_compiled_call():
    m = _Branchy()
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    np.testing.assert_allclose(cm(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    m.double = True
    np.testing.assert_allclose(cm(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    m.c.add_(10)  # in place: the program reads the tensor at every call
    np.testing.assert_allclose(cm(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    m.c = tracenn.full((1,), 7.0)  # a new tensor
    np.testing.assert_allclose(cm(x).detach().numpy(), m(x).detach().numpy(), rtol=1e-6)
    assert "%c" in str(cm.graph)  # an input of the program, not a constant
    assert "attribute 'double' changed: False -> True" in cm.explain()


def test_batchnorm_momentum_changed_after_compile():
    eager, compiled = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    cb = tracenn.compile(compiled)
    x = tracenn.tensor([[1.0, 2.0], [3.0, 5.0]])
    for bn, call in ((eager, eager), (compiled, cb)):
        call(x)
        bn.momentum = 1.0
        call(x)
    np.testing.assert_allclose(compiled.running_mean.numpy(), [2.0, 3.5], rtol=1e-6)
    np.testing.assert_allclose(compiled.running_mean.numpy(), eager.running_mean.numpy(), rtol=1e-6)


SCALE = 2.0


def test_global_number_read_by_a_compiled_function():
    global SCALE
    SCALE = 2.0

    @tracenn.compile
    def f(x):
        return x * SCALE

    np.testing.assert_array_equal(f(tracenn.ones(2)).numpy(), [2.0, 2.0])
    SCALE = 5.0
    np.testing.assert_array_equal(f(tracenn.ones(2)).numpy(), [5.0, 5.0])
    assert "'SCALE' changed: 2.0 -> 5.0" in f.explain()


def test_a_list_the_traced_code_changes_is_not_guarded():
    class Counting(nn.Module):  # (a trace counter: the append happens when the call is traced)
        def __init__(self):
            super().__init__()
            self._traces = []  # (a list: an int the forward changes is guarded, so each call would trace)
            self.lin = nn.Linear(2, 2)

        @property
        def traces(self):
            return len(self._traces)

        def forward(self, x):
            self._traces.append(1)
            return self.lin(x)

    m = Counting()
    cm = tracenn.compile(m)
    _, msgs = _recorded(lambda: [cm(tracenn.ones(1, 2)) for _ in range(4)])
    assert m.traces == 1 and msgs == []
    m.eval()  # other guards still hold: one more program
    cm(tracenn.ones(1, 2))
    assert m.traces == 2


def test_numbers_the_traced_code_changes_stay_guarded_and_count_as_eager():
    """An int or float the call rebinds (``self.calls += 1``, a global counter, a global float it
    scales) cannot be repeated by a program: it stays guarded, each new value traces again, and the
    values are those eager code (and torch.compile, which replays the change) leaves."""
    global CALLS, DECAY
    CALLS, DECAY = 0, 1.0

    @tracenn.compile
    def f(x):
        global CALLS, DECAY
        CALLS += 1
        DECAY = DECAY * 0.5
        return x * 2

    class Stepper(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.step = 0

        def forward(self, x):
            self.step += 1
            return self.lin(x) * self.step

    m = Stepper()
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    for k in range(1, 4):
        f(tracenn.ones(2))
        np.testing.assert_allclose(cm(x).detach().numpy(), (m.lin(x) * k).detach().numpy())
    assert (CALLS, DECAY, m.step) == (3, 0.125, 3)
    assert "attribute 'step' changed: 1 -> 2 (the call changes it itself" in cm.explain()
    assert "'CALLS' changed: 1 -> 2 (the call changes it itself" in f.explain()
    with warnings.catch_warnings(record=True) as w:  # past cache_size_limit: eager, said once, still counting
        warnings.simplefilter("always")
        for _ in range(10):
            cm(x)
    assert m.step == 13 and sum("past cache_size_limit" in str(r.message) for r in w) == 1


CALLS = 0
DECAY = 1.0


def test_compiled_module_called_inside_another_compiled_forward():
    inner = nn.Linear(3, 3)
    cinner = tracenn.compile(inner)

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return cinner(x) + 1

    x = tracenn.randn(2, 3)
    cinner(x)  # its one-tensor call is in its table
    outer = Outer()
    np.testing.assert_allclose(tracenn.compile(outer)(x).detach().numpy(), outer(x).detach().numpy(), rtol=1e-6)


# ---- training steps ---------------------------------------------------------------------------

def _linear():
    m = nn.Linear(2, 1, bias=False)
    with tracenn.no_grad():
        m.weight.fill_(1.0)
    return m


def _item_step(model, opt):
    """A training step whose trace fails: it returns ``loss.item()``."""
    def step(x):
        opt.zero_grad()
        loss = model(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def test_failed_step_trace_leaves_no_symbolic_optimizer_state():
    model = _linear()
    opt = tracenn.optim.Adam(model.parameters(), lr=0.05)
    x = tracenn.ones(3, 2)

    step = _item_step(model, opt)

    with pytest.raises(DataDependentError):
        tracenn.compile(step)(x)
    assert len(opt.state) == 0
    step(x)  # eager still works
    assert set(opt.state[model.weight]) == {"step", "exp_avg", "exp_avg_sq"}


@pytest.mark.parametrize("opt_cls", ["SGD", "Adam"])
def test_fallback_eager_step_whose_trace_fails_matches_eager(opt_cls):
    runs = []
    for compiled in (False, True):
        model = _linear()
        kw = {"momentum": 0.9} if opt_cls == "SGD" else {}
        opt = getattr(tracenn.optim, opt_cls)(model.parameters(), lr=0.1, **kw)
        step = _item_step(model, opt)
        call = tracenn.compile(step, fallback="eager") if compiled else step
        losses, msgs = _recorded(lambda: [call(tracenn.ones(3, 2)) for _ in range(3)])
        runs.append((losses, model.weight.detach().numpy()))
        assert len(msgs) == int(compiled)
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-6)
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-6)


def test_optimizer_reached_through_a_helper_runs_eagerly_with_a_warning():
    model = _linear()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def update():
        opt.step()

    @tracenn.compile
    def step(x):
        model.zero_grad()
        model(x).sum().backward()
        update()

    _, msgs = _recorded(lambda: [step(tracenn.ones(1, 2)) for _ in range(3)])
    # momentum kept between steps, as eagerly: 1 - 0.1, then - 0.19, then - 0.271
    np.testing.assert_allclose(model.weight.detach().numpy(), [[0.439, 0.439]], rtol=1e-6)
    assert len(msgs) == 1
    assert "SGD.step() on an optimizer that the compiled function does not name itself" in msgs[0]


def test_optimizer_passed_as_an_argument_runs_eagerly_with_a_warning():
    model = _linear()

    @tracenn.compile
    def step(opt, x):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()

    opt = tracenn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    _, msgs = _recorded(lambda: [step(opt, tracenn.ones(1, 2)) for _ in range(3)])
    np.testing.assert_allclose(model.weight.detach().numpy(), [[0.439, 0.439]], rtol=1e-6)
    assert any("passed as an argument" in s for s in msgs)


def test_tensor_learning_rate_changed_in_place_between_compiled_steps():
    model = _linear()
    lr = tracenn.tensor(1.0)
    opt = tracenn.optim.SGD(model.parameters(), lr=lr)

    @tracenn.compile
    def step(x):
        opt.zero_grad()
        model(x).sum().backward()  # the weight's gradient is [1, 1]
        opt.step()

    moved = []
    for i in range(4):
        before = model.weight[0, 0].item()
        step(tracenn.ones(1, 2))
        moved.append(before - model.weight[0, 0].item())
        opt.param_groups[0]["lr"].fill_(0.5 ** (i + 1))
    np.testing.assert_allclose(moved, [1.0, 0.5, 0.25, 0.125], rtol=1e-6)
    opt.param_groups[0]["lr"] = tracenn.tensor(0.01)  # a new tensor
    before = model.weight[0, 0].item()
    step(tracenn.ones(1, 2))
    np.testing.assert_allclose(before - model.weight[0, 0].item(), 0.01, rtol=1e-5)


def test_adam_tensor_learning_rate_with_a_scheduler_matches_eager():
    runs = []
    for compiled in (False, True):
        model = _linear()
        opt = tracenn.optim.Adam(model.parameters(), lr=tracenn.tensor(0.05))
        sched = tracenn.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)

        def step(x):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()

        call = tracenn.compile(step) if compiled else step
        for _ in range(4):
            call(tracenn.ones(1, 2))
            sched.step()
        runs.append(model.weight.detach().numpy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)


@pytest.mark.parametrize("kind", ["post_accumulate", "pre"])
def test_a_leaf_hook_added_after_the_step_compiled_fires(kind):
    """Hook presence on a parameter is guarded: the step compiles anew and runs eagerly while the
    hook is there (it cannot run inside the program), and compiled again once it is removed."""
    m = nn.Linear(2, 1)
    cs = tracenn.compile(sum_loss_step(m, tracenn.optim.SGD(m.parameters(), lr=0.1)))
    x = tracenn.ones(3, 2)
    cs(x), cs(x)
    fired = []
    if kind == "pre":
        h = m.weight.register_hook(lambda g: fired.append(g.sum().item()))
    else:
        h = m.weight.register_post_accumulate_grad_hook(lambda p: fired.append(p.grad.sum().item()))
    _, msgs = _recorded(lambda: (cs(x), cs(x)))
    assert fired == [6.0, 6.0]
    assert any("'model.weight' has" in msg and "hooks" in msg for msg in msgs)
    assert "'model.weight' gradient hooks added" in cs.explain()
    assert cs._last.eager
    h.remove()
    cs(x)
    assert fired == [6.0, 6.0] and not cs._last.eager  # the compiled program again
