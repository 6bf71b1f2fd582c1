"""A float a compiled call reads outside its arguments — a module attribute (``self.temperature``),
a global, a closure cell, an attribute of a captured object — whose value changes becomes a program
input at its first recompile, as torch.compile makes it dynamic (2 programs, not one per value).
Branches on it are guards (a program per side); code that needs the number pins it by value.
See tracenn/compiler/float_attrs.py."""
import math
import types
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn

VALUES = [0.5, 0.6, 0.7, 0.1, 1 / 3, 0.123456789]


class Scaled(nn.Module):
    def __init__(self, t=0.5):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.t = t

    def forward(self, x):
        y = self.lin(x)
        return y * self.t + (1 - self.t), y.sum() / self.t


def _check(got, want):
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g.detach().numpy(), w.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_a_changing_float_attribute_compiles_twice_and_matches_eager():
    m = Scaled()
    cm = tracenn.compile(m)
    x = tracenn.randn(4, 3)
    for v in VALUES:
        m.t = v
        _check(cm(x), m(x))
    assert len(cm._entries) == 2
    assert "%t" in str(cm.graph)  # the attribute is an input of the second program
    assert ("", "t") in cm._values.floats.dynamic


def test_known_values_without_torch():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = 2.0

        def forward(self, x):
            return x * self.scale + 1

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.tensor([1.0, 2.0, 4.0])
    for s in (2.0, 0.5, 0.25, 3.0):
        m.scale = s
        np.testing.assert_allclose(cm(x).numpy(), np.array([1.0, 2.0, 4.0]) * s + 1, rtol=1e-6)
    assert len(cm._entries) == 2


def test_gradients_match_eager_for_every_value():
    m = Scaled()
    cm = tracenn.compile(m)
    x = tracenn.randn(4, 3)
    for v in VALUES[:4]:
        m.t = v
        m.zero_grad()
        a, b = cm(x)
        (a.square().mean() + b).backward()
        got = [p.grad.numpy().copy() for p in m.parameters()]
        m.zero_grad()
        a, b = m(x)
        (a.square().mean() + b).backward()
        for g, p in zip(got, m.parameters()):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert len(cm._entries) == 2


def test_the_float_promotes_as_a_python_number():
    """``loss * self.t`` (a 0-d float32), ints, bfloat16 and float64 tensors keep eager's dtype."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5

        def forward(self, x):
            return (x.sum() * self.t, x.bfloat16() * self.t, tracenn.arange(3) * self.t, x.double() * self.t,
                    x.sum().bfloat16() * (self.t * 2 - 1))

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.randn(4)
    for v in (0.5, 0.3, 0.9):
        m.t = v
        for got, want in zip(cm(x), m(x)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    assert len(cm._entries) == 2


G = 0.5


def _global_fn(x):
    return x * G + x.sum() * G


def test_a_global_a_closure_cell_and_a_captured_objects_attribute():
    global G
    x = tracenn.randn(3)
    cm = tracenn.compile(_global_fn)
    for v in VALUES:
        G = v
        _check([cm(x)], [_global_fn(x)])
    assert len(cm._entries) == 2

    t = 0.5
    cfg = types.SimpleNamespace(scale=0.5)

    def f(x):
        return x * t - cfg.scale

    cm = tracenn.compile(f)
    for v in VALUES:
        t = v
        _check([cm(x)], [f(x)])
    assert len(cm._entries) == 2
    for v in VALUES:
        cfg.scale = v
        _check([cm(x)], [f(x)])
    assert len(cm._entries) == 3  # (cfg.scale: its own recompile, then an input too)


def test_a_function_reading_a_modules_attribute():
    m = Scaled()
    step = tracenn.compile(lambda x: m(x)[0].sum())
    x = tracenn.randn(2, 3)
    for v in VALUES:
        m.t = v
        np.testing.assert_allclose(step(x).item(), m(x)[0].sum().item(), rtol=1e-6)
    assert len(step._entries) == 2


def test_a_branch_on_the_attribute_compiles_a_program_per_side():
    """As torch.compile, which guards on ``t > 0.55``: the first value, then one program per side."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5

        def forward(self, x):
            if self.t > 0.55:
                return x * self.t
            return x - self.t

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.randn(3)
    for v in [0.5, 0.6, 0.7, 0.8, 0.3, 0.2, 0.9, 0.1, 0.5]:
        m.t = v
        _check([cm(x)], [m(x)])
    assert len(cm._entries) == 3
    text = cm.explain()
    assert "on the other side of `if self.t > 0.55:`" in text


def test_code_that_needs_the_number_keeps_it_guarded_by_value():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5

        def forward(self, x):
            return x * math.exp(self.t)

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.randn(3)
    vals = [0.5, 0.6, 0.7, 0.6]
    for v in vals:
        m.t = v
        _check([cm(x)], [m(x)])
    # 0.5; 0.6 (traced as an input, then by value: kept under the input's key, which is not used again);
    # 0.7 and 0.6 by value (torch keeps 0.6's graph: 3)
    assert len(cm._entries) == 4
    floats = cm._values.floats
    assert (None, "t") not in floats.dynamic and ("", "t") in floats.pinned
    text = cm.explain()
    assert "float attribute 't': guarded by value again, not a program input: the traced code needs the number " \
           "(`return x * math.exp(self.t)` at test_dynamic_float_attrs.py" in text
    assert "0.7 (guarded by value again: the traced code needs the number)" in text


def test_ints_stay_guarded_by_value():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.k = 1

        def forward(self, x):
            return x * self.k

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    for k in (1, 2, 3):
        m.k = k
        np.testing.assert_array_equal(cm(x).numpy(), [k, k])
    assert len(cm._entries) == 3
    assert not cm._values.floats.dynamic


def test_explain_says_the_attribute_is_dynamic_and_why():
    m = Scaled()
    cm = tracenn.compile(m)
    x = tracenn.randn(4, 3)
    for v in (0.5, 0.25, 0.75):
        m.t = v
        cm(x)
    text = cm.explain()
    assert "attribute 't' changed: 0.5 -> 0.25 (a program input from now on (dynamic): its value changed, " \
           "as torch.compile makes such a float dynamic)" in text
    assert cm._values.floats.describe() == [
        "  - but float attribute 't' is a program input (dynamic), not guarded: its value changed between calls "
        "(0.5 -> 0.25), so it is read at each call as a 0-d float64 array and a new value reuses the program"]


def test_compile_dynamic_true_and_false_and_reset():
    x = tracenn.randn(4, 3)
    for dynamic, programs in ((True, 1), (False, 4)):
        m = Scaled()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (dynamic=True warns that shapes stay static)
            cm = tracenn.compile(m, dynamic=dynamic)
        for v in VALUES[:4]:
            m.t = v
            _check(cm(x), m(x))
        assert len(cm._entries) == programs
    m = Scaled()
    cm = tracenn.compile(m)
    for v in VALUES[:3]:
        m.t = v
        cm(x)
    tracenn.compiler.reset()
    for v in VALUES[:3]:
        m.t = v
        _check(cm(x), m(x))
    assert len(cm._entries) == 2  # (guarded by value again after a reset, then an input again)


def test_a_value_the_forward_sets_itself_is_not_made_an_input():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 1.0
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            return x * self.t

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    for v in (1.0, 2.0, 3.0):
        m.t = v
        np.testing.assert_array_equal(cm(x).numpy(), [v, v])
    # (the int counter the forward changes stays guarded: each call traces again, so it counts
    # every call as eager code does; t is an input from the second program on)
    assert len(cm._entries) == 3 and m.calls == 3 and type(m.calls) is int
    assert type(m.t) is float and m.t == 3.0


def test_a_training_step_with_an_annealed_loss_weight_matches_eager():
    tracenn.manual_seed(0)
    ref = nn.Linear(3, 1)
    model = nn.Linear(3, 1)
    model.load_state_dict(ref.state_dict())
    weights = types.SimpleNamespace(w=1.0)

    def make(mod):
        opt = tracenn.optim.SGD(mod.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = mod(x).square().mean() * weights.w
            loss.backward()
            opt.step()
            return loss
        return step

    step = tracenn.compile(make(model))
    eager = make(ref)
    x = tracenn.randn(5, 3)
    for w in (1.0, 0.9, 0.8, 0.7):
        weights.w = w
        np.testing.assert_allclose(step(x).item(), eager(x).item(), rtol=1e-5)
    np.testing.assert_allclose(model.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-5)
    assert len(step._entries) <= 3  # (an optimizer's first step compiles one of its own)


@pytest.mark.parametrize("kind", ["input", "branch", "exp"])
def test_torch_compiles_as_many_graphs(kind):
    torch = pytest.importorskip("torch")
    from torch._dynamo.testing import CompileCounter

    def fwd(self, x):
        if kind == "branch":
            return x * 2 if self.t > 0.55 else x * 3
        return x * math.exp(self.t) if kind == "exp" else x * self.t

    class TM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5
        forward = fwd

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5
        forward = fwd

    torch._dynamo.reset()
    cnt = CompileCounter()
    tm, m = TM(), M()
    tc, cm = torch.compile(tm, backend=cnt), tracenn.compile(m)
    tx, x = torch.ones(3), tracenn.ones(3)
    for v in [0.5, 0.6, 0.7, 0.4]:
        tm.t = m.t = v
        np.testing.assert_allclose(cm(x).numpy(), tc(tx).numpy(), rtol=1e-6)
    assert len(cm._entries) == cnt.frame_count == {"input": 2, "branch": 3, "exp": 4}[kind]
    torch._dynamo.reset()


NP_SCALE = np.float32(2.0)


def _np_global_fn(x):
    return x * NP_SCALE


def test_a_numpy_scalar_attribute_or_global_is_an_input_from_the_first_call():
    """As torch.compile takes a NumPy float (one graph, the float an input); a NumPy int is guarded
    by value. Both were neither guarded nor inputs: the program kept the first value (stale)."""
    global NP_SCALE

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = np.float64(0.5)
            self.k = np.int64(1)

        def forward(self, x):
            return x * self.t * self.k

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    for v in (0.5, 0.6, 0.7):
        m.t = np.float64(v)
        np.testing.assert_allclose(cm(x).numpy(), [v, v], rtol=1e-6)
    assert len(cm._entries) == 1
    m.k = np.int64(2)
    np.testing.assert_allclose(cm(x).numpy(), [1.4, 1.4], rtol=1e-6)
    assert len(cm._entries) == 2
    cf = tracenn.compile(_np_global_fn)
    for v in (2.0, 3.0, 4.0):
        NP_SCALE = np.float32(v)
        np.testing.assert_allclose(cf(x).numpy(), [v, v])
    assert len(cf._entries) == 1
    NP_SCALE = np.float32(2.0)


class Decays(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = 1.0

    def forward(self, x):
        self.t = self.t * 0.5
        return x * self.t


def test_an_attribute_the_forward_changes_itself_is_an_input_written_back():
    """It was baked in with the value the first trace read, and the change was not replayed: every
    call returned x * 0.5 and the attribute stayed 0.5 (eager: 0.5, 0.25, 0.125...)."""
    m, ref = Decays(), Decays()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    for _ in range(5):
        np.testing.assert_array_equal(cm(x).numpy(), ref(x).numpy())
        assert type(m.t) is float and m.t == ref.t
    assert len(cm._entries) == 2


def test_torch_replays_the_change_too():
    torch = pytest.importorskip("torch")
    from torch._dynamo.testing import CompileCounter

    class TDecays(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 1.0

        forward = Decays.forward

    torch._dynamo.reset()
    cnt = CompileCounter()
    tm, m = TDecays(), Decays()
    tc, cm = torch.compile(tm, backend=cnt), tracenn.compile(m)
    for _ in range(4):
        np.testing.assert_array_equal(cm(tracenn.ones(2)).numpy(), tc(torch.ones(2)).numpy())
        assert m.t == tm.t
    assert len(cm._entries) == cnt.frame_count == 2
    torch._dynamo.reset()


def test_a_bound_methods_owner_and_a_modules_config_object():
    class Agent:
        def __init__(self):
            self.eps = 0.1
            self.lin = nn.Linear(3, 3)

        def act(self, x):
            return self.lin(x) * (1 - self.eps) + self.eps

    agent = Agent()
    cm = tracenn.compile(agent.act)
    x = tracenn.randn(2, 3)
    for e in (0.1, 0.2, 0.3, 0.05):
        agent.eps = e
        np.testing.assert_allclose(cm(x).detach().numpy(), agent.act(x).detach().numpy(), rtol=1e-6)
    assert len(cm._entries) == 2 and list(cm._values.floats.dynamic) == [(None, "self.eps")]

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = types.SimpleNamespace(scale=0.5, hidden=3)

        def forward(self, x):
            return x * self.config.scale

    m = M()
    c2 = tracenn.compile(m)
    for v in (0.5, 0.6, 0.7):
        m.config.scale = v
        np.testing.assert_allclose(c2(x).numpy(), m(x).numpy(), rtol=1e-6)
    assert len(c2._entries) == 2 and list(c2._values.floats.dynamic) == [("", "config.scale")]


def test_a_tensor_made_from_the_float_is_made_from_the_input():
    """``tracenn.tensor(self.t)`` (and of a float argument) read the number: a program per value."""
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.t = 0.5

        def forward(self, x):
            return x * tracenn.tensor(self.t), tracenn.tensor(self.t, dtype=tracenn.float16) + 1

    m = M()
    cm = tracenn.compile(m)
    x = tracenn.ones(2)
    for v in VALUES:
        m.t = v
        _check(cm(x), m(x))
    assert len(cm._entries) == 2
    cf = tracenn.compile(lambda x, a: x * tracenn.tensor(a))
    for v in VALUES:
        np.testing.assert_allclose(cf(x, v).numpy(), [v, v], rtol=1e-6)
    assert len(cf._entries) == 2
    # (float64: a 0-d float64 tensor made from it reads as the number itself, so it is pinned: right values,
    # a program per value)
    cd = tracenn.compile(lambda x, a: tracenn.tensor(a, dtype=tracenn.float64) + x.sum())
    for v in VALUES[:3]:
        np.testing.assert_allclose(cd(x, v).numpy(), v + 2, rtol=1e-12)
