"""A Python float argument whose value changes becomes a program input after one recompile (as
torch.compile makes it dynamic), so a temperature or mixing coefficient that changes every step
compiles at most two programs; ints stay guarded by value; code that needs the number (an `if`,
``float()``) keeps it guarded by value. See tracenn/runtime/floats.py."""
import functools
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn

VALUES = [0.5, 0.6, 0.7, 0.1, 1 / 3, 0.123456789]


def _counted(fn):
    """``fn`` that counts its calls (traces, for a compiled one; eager reference calls subtract)."""
    @functools.wraps(fn)  # (the compiled call reads fn's names and captures through __wrapped__)
    def wrapper(*args, **kwargs):
        wrapper.traces += 1
        return fn(*args, **kwargs)
    wrapper.traces = 0
    return wrapper


def _eager(fn, *args, **kwargs):
    out = fn(*args, **kwargs)
    fn.traces -= 1
    return out


def test_a_changing_float_compiles_twice_and_matches_eager():
    @_counted
    def f(x, a):
        return x * a, x / a, x.sum() * (1 - a)

    cm = tracenn.compile(f)
    x = tracenn.randn(5)
    for a in VALUES:
        for got, want in zip(cm(x, a), _eager(f, x, a)):
            assert got.dtype == want.dtype == tracenn.float32
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert f.traces == 2
    assert len(cm._entries) == 2
    assert "%a: f64[]" in str(cm.graph)  # the float is an input of the second program


def test_known_values_without_torch():
    cm = tracenn.compile(lambda x, a: x * a + (1 - a))
    x = tracenn.tensor([1.0, 2.0, 4.0])
    for a in (0.5, 0.25, 0.75):
        np.testing.assert_allclose(cm(x, a).numpy(), np.array([1.0, 2.0, 4.0]) * a + (1 - a), rtol=1e-6)


def test_gradients_match_eager_for_every_value():
    lin = nn.Linear(3, 2)

    @_counted
    def loss_fn(x, alpha):
        out = lin(x)
        return (out * out).mean() * alpha + out.sum() * (1 - alpha)

    cm = tracenn.compile(loss_fn)
    x = tracenn.randn(4, 3)
    for a in VALUES[:3]:
        lin.zero_grad()
        loss = cm(x, a)
        loss.backward()
        got = [p.grad.numpy().copy() for p in lin.parameters()]
        lin.zero_grad()
        want_loss = _eager(loss_fn, x, a)
        want_loss.backward()
        assert loss.dtype == want_loss.dtype == tracenn.float32
        np.testing.assert_allclose(loss.item(), want_loss.item(), rtol=1e-6)
        for g, p in zip(got, lin.parameters()):
            np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert loss_fn.traces == 2


def test_a_float_input_promotes_as_a_python_number():
    """``loss * alpha`` (a 0-d float32), ``ints * alpha``, bfloat16 and float64 tensors keep the
    dtype eager mode gives them with a Python float, not the float64 of a 0-d tensor."""
    def f(x, a):
        return (x.sum() * a, tracenn.arange(3) * a, x.bfloat16() * a, x.double() * a,
                x.sum().bfloat16() * (a * 2 - 1), a * x.sum())

    cm = tracenn.compile(f)
    x = tracenn.randn(4)
    for a in (0.5, 0.3, 0.9):
        for got, want in zip(cm(x, a), f(x, a)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
    assert len(cm._entries) == 2


def test_ints_stay_guarded_by_value():
    @_counted
    def f(x, k):
        return x * k

    cm = tracenn.compile(f)
    x = tracenn.ones(2)
    for k in (1, 2, 3):
        np.testing.assert_array_equal(cm(x, k).numpy(), [k, k])
    assert f.traces == 3
    assert not cm._floats.dynamic


def test_a_branch_on_the_float_compiles_a_program_per_side():
    """As torch.compile, which guards on ``a > 0.5``: the first value, then one program per side."""
    @_counted
    def f(x, a):
        if a > 0.5:
            return x * a
        return x - a

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    for a in [0.6, 0.7, 0.8, 0.3, 0.2, 0.9, 0.1, 0.5]:
        np.testing.assert_array_equal(cm(x, a).numpy(), _eager(f, x, a).numpy())
    assert f.traces == len(cm._entries) == 3
    text = cm.explain()
    assert "used while `if a > 0.5:` at test_dynamic_floats.py:" in text
    assert ("compiled because: a float argument is on the other side of a branch that the program(s) for these "
            "inputs were traced through (`if a > 0.5:` at test_dynamic_floats.py:") in text


def test_a_loop_on_the_float_holds_for_the_same_number_of_steps():
    @_counted
    def f(x, a):
        while a < 1.0:
            a = a * 2
            x = x + a
        return x

    cm = tracenn.compile(f)
    x = tracenn.zeros(2)
    for a in [0.3, 0.35, 0.4, 0.2, 0.22, 0.45, 0.6, 0.7]:
        np.testing.assert_allclose(cm(x, a).numpy(), _eager(f, x, a).numpy(), rtol=1e-6)
    assert f.traces == len(cm._entries) == 4  # the first value; two doublings; three; one


def test_code_that_needs_the_number_keeps_it_guarded_by_value():
    @_counted
    def f(x, a):
        return x * round(a, 1)  # (Python's round: the number itself)

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    values = [0.61, 0.72, 0.83]
    for a in values:
        np.testing.assert_array_equal(cm(x, a).numpy(), _eager(f, x, a).numpy())
    assert len(cm._entries) == len(values)  # one program per value, as before
    text = cm.explain()
    assert ("  - float argument args[1] stays guarded by value: its value changed, but the traced code needs it "
            "as a Python number (TypeError: type Tensor doesn't define __round__ method)") in text
    assert "args[1]: guarded by value again, not a program input" in text


def test_explain_says_the_argument_is_dynamic_and_why():
    cm = tracenn.compile(lambda x, temperature: (x / temperature).softmax(-1))
    x = tracenn.randn(2, 3)
    cm(x, 1.0)
    cm(x, 0.5)
    cm(x, 0.25)
    text = cm.explain()
    assert ("  - but float argument args[1] is a program input (dynamic), not guarded: its value changed "
            "between calls (1.0 -> 0.5), so it is passed as a 0-d float64 array and a new value reuses the "
            "program") in text
    assert ("  2. inputs (f32[2,3], f64[]); grad on; 2 nodes, with backward; 2 call(s) — compiled because: "
            "non-tensor argument args[1] changed: 1.0 -> 0.5 (args[1] is now a program input (dynamic): a Python "
            "float argument whose value changes is passed as a 0-d float64 array, as torch.compile does, so later "
            "values reuse this program)") in text


def test_a_float_keyword_argument_and_one_inside_a_tuple():
    @_counted
    def f(x, pair, *, scale):
        return x * pair[0] + pair[1], x * scale

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    for a, s in ((0.5, 2.0), (0.6, 3.0), (0.7, 4.0), (0.8, 5.0)):
        for got, want in zip(cm(x, (a, 1.5), scale=s), _eager(f, x, (a, 1.5), scale=s)):
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    assert f.traces == 2
    assert set(cm._floats.dynamic) == {"args[1][0]", "kwargs['scale']"}  # (pair[1] never changed)


def test_a_module_argument_and_a_returned_number():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x, temperature):
            return self.lin(x) / temperature

    net = Net()
    cm = tracenn.compile(net)
    x = tracenn.randn(2, 3)
    with tracenn.no_grad():
        for t in (1.0, 2.0, 0.5, 4.0):
            np.testing.assert_allclose(cm(x, t).numpy(), net(x, t).numpy(), rtol=1e-6)
    assert len(cm._entries) == 2

    # returning a number computed from the float: eagerly a Python float, so it stays guarded
    cr = tracenn.compile(lambda x, a: (x * a, a * 2))
    for a in (0.5, 0.6, 0.7):
        out, twice = cr(x, a)
        assert type(twice) is float and twice == a * 2
    assert cr._floats.pinned["args[1]"] == ("UnsupportedError: the traced code returns or stores a number computed "
                                            "from a float argument")

    class Keeps(Net):
        def forward(self, x, temperature):
            self.temperature = temperature  # (eagerly a float: stays one)
            return self.lin(x) / temperature
    keeps = Keeps()
    ck = tracenn.compile(keeps)
    for t in (1.0, 2.0, 0.5):
        ck(x, t)
        assert type(keeps.temperature) is float and keeps.temperature == t


def test_past_the_limit_before_the_change_and_reset():
    cm = tracenn.compile(lambda x, a: x * a)
    x = tracenn.ones(2)
    cm(x, 0.5)
    cm(x, 0.6)
    tracenn.compiler.reset()
    assert not cm._floats.dynamic  # reset forgets that it was dynamic, as torch's reset does
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no recompile storm: two programs for many values)
        for a in np.linspace(0.1, 0.9, 12):
            np.testing.assert_allclose(cm(x, float(a)).numpy(), [a, a], rtol=1e-6)
    assert len(cm._entries) == 2


def test_numpy_floats_are_inputs_from_the_first_call():
    @_counted
    def f(x, a):
        return x * a

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    for v in (0.5, 0.6, 0.7):
        for a in (np.float64(v), np.float32(v)):
            np.testing.assert_array_equal(cm(x, a).numpy(), _eager(f, x, a).numpy())
    assert f.traces == len(cm._entries) == 1  # as torch.compile (one graph)
    assert ("float argument args[1] is a program input (dynamic), not guarded: an input from the first call, as "
            "torch.compile takes a NumPy float64") in cm.explain()


def test_compile_dynamic_true_and_false_as_torch():
    """torch.compile(dynamic=False) compiles a graph per float value; dynamic=True one graph."""
    x = tracenn.ones(2)
    for dynamic, programs in ((False, 4), (True, 1)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (dynamic=True: shapes stay static)
            cm = tracenn.compile(lambda x, a: x * a, dynamic=dynamic)
        for a in (0.5, 0.6, 0.7, 0.8):
            np.testing.assert_allclose(cm(x, a).numpy(), [a, a], rtol=1e-6)
        assert len(cm._entries) == programs, dynamic


@pytest.mark.slow  # (8 s: torch.compile's first use; run with -m slow)
def test_torch_compiles_a_changing_float_twice_too():
    torch = pytest.importorskip("torch")
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    f = torch.compile(lambda x, a: x * a, backend="eager")
    tf = tracenn.compile(lambda x, a: x * a)
    xt, x = torch.ones(2), tracenn.ones(2)
    for a in (0.5, 0.6, 0.7, 0.8):
        np.testing.assert_array_equal(tf(x, a).numpy(), f(xt, a).numpy())
    assert counters["stats"]["unique_graphs"] == len(tf._entries) == 2
    torch._dynamo.reset()
    counters.clear()
    f = torch.compile(lambda x, a: x * a, backend="eager")
    tf = tracenn.compile(lambda x, a: x * a)
    for a in (0.5, 0.6, 0.7):  # a NumPy float: one graph
        np.testing.assert_array_equal(tf(x, np.float64(a)).numpy(), f(xt, np.float64(a)).numpy())
    assert counters["stats"]["unique_graphs"] == len(tf._entries) == 1
    for dynamic in (False, True):
        torch._dynamo.reset()
        counters.clear()
        f = torch.compile(lambda x, a: x * a, backend="eager", dynamic=dynamic)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tf = tracenn.compile(lambda x, a: x * a, dynamic=dynamic)
        for a in (0.5, 0.6, 0.7, 0.8):
            np.testing.assert_array_equal(tf(x, a).numpy(), f(xt, a).numpy())
        assert counters["stats"]["unique_graphs"] == len(tf._entries) == (1 if dynamic else 4)
    torch._dynamo.reset()


def test_a_training_step_with_a_changing_float_matches_eager():
    tracenn.manual_seed(0)
    model, ref = nn.Linear(3, 1), nn.Linear(3, 1)
    ref.load_state_dict(model.state_dict())
    opt, ref_opt = tracenn.optim.SGD(model.parameters(), lr=0.1), tracenn.optim.SGD(ref.parameters(), lr=0.1)

    def step(x, y, alpha, m=model, o=opt):
        o.zero_grad()
        out = m(x)
        loss = ((out - y) ** 2).mean() * alpha + out.abs().mean() * (1 - alpha)
        loss.backward()
        o.step()
        return loss

    cs = tracenn.compile(step)
    x, y = tracenn.randn(4, 3), tracenn.randn(4, 1)
    for a in (0.5, 0.6, 0.7, 0.8):
        np.testing.assert_allclose(cs(x, y, a).item(), step(x, y, a, ref, ref_opt).item(), rtol=1e-5)
    np.testing.assert_allclose(model.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-5)
    assert len(cs._entries) == 2 and list(cs._floats.dynamic) == ["args[2]"]


def test_check_mode_and_fallback_eager():
    x = tracenn.randn(3)
    cm = tracenn.compile(lambda x, a: x * a - a, check=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no mismatch report)
        for a in (0.5, 0.6, 0.7):
            np.testing.assert_allclose(cm(x, a).numpy(), (x * a - a).numpy(), rtol=1e-6)
    assert "check: call 1 of entry 2 matched eager" in cm.explain()

    def f(x, a):  # reads a tensor's value: runs eagerly, whatever the float does
        return x * a if x.sum() > 0 else x - a
    cf = tracenn.compile(f, fallback="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a in (0.5, 0.6, 0.7):
            np.testing.assert_array_equal(cf(x, a).numpy(), f(x, a).numpy())
