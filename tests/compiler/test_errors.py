"""Errors of tracenn.compile: reading tensor values while tracing (DataDependentError and
``fallback="eager"``), symbolic tensors that leak out of a trace, wrong arguments to
``tracenn.compile``, and shape errors inside a traced forward.

Messages must say where (the user's file and line, independent of where this file lives: the
tests look for ``test_errors.py:LINE`` with the line computed by ``inspect``) and what to do.
"""
from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

import tracenn
from helpers import to_np
from tracenn import nn
from tracenn.errors import CompileError, DataDependentError, UnsupportedError

FILE = "test_errors.py"


def line_of(fn, snippet: str) -> str:
    """``test_errors.py:N`` for the first line of ``fn``'s source that contains ``snippet``."""
    src, start = inspect.getsourcelines(fn)
    for i, text in enumerate(src):
        if snippet in text:
            return f"{FILE}:{start + i}"
    raise AssertionError(f"{snippet!r} is not in {fn.__qualname__}")


# ---- reading tensor values while tracing ---------------------------------------------------------

def if_on_value(x):
    if x.sum() > 0:
        return x
    return -x


def item(x):
    return x * x.sum().item()


def bool_of(x):
    return x if bool(x.mean()) else -x


def float_of(x):
    return x * float(x.sum())


def int_of(x):
    return x * int(x.argmax())


def tolist(x):
    return x * len([v for v in x.tolist() if v > 0])


def numpy_of(x):
    return x * np.abs(x.numpy()).max()


def while_on_value(x):
    while (x > 10).any():
        x = x / 2
    return x


DATA_DEPENDENT = [(if_on_value, "if x.sum() > 0:"), (item, ".item()"), (bool_of, "bool(x.mean())"),
                  (float_of, "float(x.sum())"), (int_of, "int(x.argmax())"), (tolist, ".tolist()"),
                  (numpy_of, ".numpy()"), (while_on_value, "while (x > 10).any():")]


@pytest.mark.parametrize("fn, snippet", DATA_DEPENDENT, ids=[f.__name__ for f, _ in DATA_DEPENDENT])
def test_value_dependent_python_raises_with_the_users_line(fn, snippet):
    cm = tracenn.compile(fn)
    with pytest.raises(DataDependentError) as info:
        cm(tracenn.randn(3))
    msg = str(info.value)
    assert f"{FILE}:{line_of(fn, snippet).split(':')[1]}" in msg  # the user's file and line
    assert f"(in {fn.__name__}: `" in msg and snippet in msg       # the function and the line's text
    assert 'fallback="eager"' in msg and "tracenn.where" in msg     # what to do
    assert isinstance(info.value, CompileError) and isinstance(info.value, RuntimeError)


def test_message_names_the_module_path():
    class Gate(nn.Module):
        def forward(self, x):
            return x if x.max().item() > 0 else -x

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate = Gate()

        def forward(self, x):
            return self.gate(x) + 1

    with pytest.raises(DataDependentError, match=re.escape(
            f"{line_of(Gate.forward, '.item()')} (in forward: `return x if x.max().item() > 0 else -x`), "
            "module 'gate'")):
        tracenn.compile(Model())(tracenn.randn(3))


def test_value_dependent_output_shape_raises():
    def f(x):
        return x[x > 0]  # a boolean mask: the result's shape depends on the values

    with pytest.raises(DataDependentError, match=line_of(f, "x[x > 0]")):
        tracenn.compile(f)(tracenn.randn(4))


def test_printing_a_tensor_in_forward_shows_its_type(capsys):
    # Printing a traced tensor does not need its values: it shows the symbolic value (as printing
    # a JAX tracer does) and the compile goes on. Reading the numbers (.tolist(), .item()) raises.
    def f(x):
        print(x)
        print(x.shape)
        return x + 1

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    np.testing.assert_allclose(to_np(cm(x)), to_np(x) + 1)
    assert capsys.readouterr().out == "tensor(<symbolic f32[3] %x>)\ntracenn.Size([3])\n"
    cm(x)  # the program runs; forward does not, so nothing more is printed
    assert capsys.readouterr().out == ""


def test_control_flow_on_shapes_and_non_tensor_arguments_works():
    def f(x, mode="double"):
        if x.shape[0] > 2 and mode == "double":
            return x * 2
        return x - 1

    cm = tracenn.compile(f)
    np.testing.assert_allclose(to_np(cm(tracenn.ones(3))), 2.0)
    np.testing.assert_allclose(to_np(cm(tracenn.ones(2))), 0.0)
    np.testing.assert_allclose(to_np(cm(tracenn.ones(3), mode="minus")), 0.0)


# ---- fallback="eager" ----------------------------------------------------------------------------

def test_fallback_eager_runs_eagerly_with_one_warning():
    cm = tracenn.compile(if_on_value, fallback="eager")
    x = tracenn.randn(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = cm(x.abs())
        b = cm(-x.abs())
        c = cm(tracenn.randn(5))  # another signature: runs eagerly too, no second warning
    assert len(caught) == 1
    w = caught[0]
    assert w.category is UserWarning and w.filename == __file__  # points at the call
    assert str(w.message).startswith("tracenn.compile(fallback='eager'): running if_on_value eagerly")
    assert line_of(if_on_value, "if x.sum() > 0:") in str(w.message)
    np.testing.assert_allclose(to_np(a), to_np(if_on_value(x.abs())))
    np.testing.assert_allclose(to_np(b), to_np(if_on_value(-x.abs())))
    assert c.shape == (5,)
    assert cm.graph is None  # no program
    assert "eager fallback" in cm.explain()


def test_fallback_eager_keeps_autograd_and_module_state():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.bn = nn.BatchNorm1d(3)

        def forward(self, x):
            y = self.bn(self.fc(x))
            return y * 2 if y.sum().item() > 0 else y

    model = Model()
    cm = tracenn.compile(model, fallback="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm(tracenn.randn(4, 3)).sum().backward()
    assert model.fc.weight.grad is not None and int(model.bn.num_batches_tracked) == 1


def test_fallback_eager_compiles_calls_that_trace():
    def f(x, check=False):
        if check and x.sum() > 0:
            return x
        return x * 2

    cm = tracenn.compile(f, fallback="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning for a call that compiles
        cm(tracenn.ones(2))
    assert cm.graph is not None and len(cm.graph.nodes) == 1


# ---- symbolic tensors that leak out of a trace ---------------------------------------------------

class _Holder:
    def __init__(self):
        self.items = []


class Leaky(nn.Module):
    """Keeps a tensor made while tracing where tracenn cannot see it: a list inside a plain object
    (lists and dicts the module or function holds are replayed: tests/compiler/test_stores.py; a
    tensor attribute of a module is settled after the trace: tests/compiler/test_semantics.py)."""

    def __init__(self):
        super().__init__()
        self.holder = _Holder()

    def forward(self, x):
        self.holder.items.append(x * 2)  # a symbolic tensor, kept after the trace
        return x + 1


def test_leaked_symbolic_tensor_used_later_raises_compile_error():
    model = Leaky()
    tracenn.compile(model)(tracenn.randn(3))
    with pytest.raises(CompileError, match=r"symbolic tensor \(f32\[3\] %0\) made while tracenn.compile "
                                           r"traced a call.*return it from the compiled function instead"):
        model.holder.items[0] + 1


def test_leaked_symbolic_tensor_has_no_values():
    model = Leaky()
    tracenn.compile(model)(tracenn.randn(3))
    assert repr(model.holder.items[0]) == "tensor(<symbolic f32[3] %0>)"
    with pytest.raises(DataDependentError):
        model.holder.items[0].tolist()


@pytest.mark.parametrize("how", ["register_hook", "retain_grad"])
def test_gradient_hooks_on_an_intermediate_inside_forward_run_eagerly(how):
    """A tensor hook or retain_grad() inside a compiled forward: the call runs eagerly (one warning
    that says why and what to do), so the hook fires and .grad is kept, as in eager."""
    seen, kept = [], []

    def f(x):
        y = x * 2
        if how == "register_hook":
            y.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
        else:
            y.retain_grad()
            kept.append(y)
        return y * 3

    x = tracenn.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match=rf"running f eagerly.*Tensor.{how}(\(\))? inside a compiled call"):
        out = tracenn.compile(f)(x)
    out.sum().backward()
    if how == "register_hook":
        assert seen == [[3.0, 3.0]] and x.grad.tolist() == [60.0, 60.0]
    else:
        assert kept[-1].grad.tolist() == [3.0, 3.0] and x.grad.tolist() == [6.0, 6.0]


def test_register_hook_on_an_input_inside_forward_is_not_silently_dropped():
    calls = []

    def f(x):
        x.register_hook(lambda g: calls.append(1))
        return x * 3

    x = tracenn.randn(3, requires_grad=True)
    with pytest.warns(UserWarning, match="register_hook inside a compiled call"):
        out = tracenn.compile(f)(x)
    out.sum().backward()
    assert calls == [1]


# ---- wrong arguments to tracenn.compile ----------------------------------------------------------

def test_bad_fallback_value():
    with pytest.raises(ValueError, match=r"fallback must be None or 'eager', got 'graph'"):
        tracenn.compile(nn.Linear(2, 2), fallback="graph")


def test_unknown_option():
    with pytest.raises(TypeError, match=r"tracenn.compile got unexpected options \['fulgraph'\]"):
        tracenn.compile(nn.Linear(2, 2), fulgraph=True)


def test_torch_compile_arguments_are_accepted():
    """Scripts pass torch.compile's arguments: they run unchanged, with torch's meanings where
    tracenn has one (fullgraph: no eager fallback; disable: the model itself)."""
    lin = nn.Linear(2, 2)
    x = tracenn.randn(3, 2)
    for kw in (dict(mode="reduce-overhead"), dict(mode="max-autotune", fullgraph=True, dynamic=False),
               dict(backend="inductor", options={"triton.cudagraphs": False}), dict(backend="openxla")):
        assert tracenn.allclose(tracenn.compile(lin, **kw)(x), lin(x)), kw
    assert tracenn.compile(lin, disable=True) is lin
    with pytest.warns(UserWarning, match=r"dynamic=True\): shapes stay static"):
        tracenn.compile(lin, dynamic=True)
    with pytest.raises(RuntimeError, match="Unrecognized mode=fast, should be one of: default, reduce-overhead"):
        tracenn.compile(lin, mode="fast")
    with pytest.raises(ValueError, match="backend='aot_eager'.*pass backend='inductor'"):
        tracenn.compile(lin, backend="aot_eager")
    with pytest.raises(ValueError, match="fullgraph=True .* fallback='eager'"):
        tracenn.compile(lin, fullgraph=True, fallback="eager")


def test_fullgraph_raises_where_the_call_would_run_eagerly():
    class Hooked(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.lin.register_backward_hook(lambda m, gi, go: None)  # (non-full: no compiled form)

        def forward(self, x):
            return self.lin(x)

    model, x = Hooked(), tracenn.randn(3, 2)
    with pytest.warns(UserWarning, match="running Hooked eagerly"):
        tracenn.compile(model)(x)  # (by default such a call runs eagerly)
    with pytest.raises(UnsupportedError, match="non-full backward hook"):
        tracenn.compile(model, fullgraph=True)(x)


def test_not_callable():
    with pytest.raises(TypeError, match="tracenn.compile expects an nn.Module or a function, got int"):
        tracenn.compile(3)


def test_decorator_forms_and_recompiling_a_compiled_object():
    @tracenn.compile
    def f(x):
        return x + 1

    @tracenn.compile(fallback="eager")
    def g(x):
        return x * 2

    assert f.__name__ == "f" and float(f(tracenn.ones(1))[0]) == 2.0 and float(g(tracenn.ones(1))[0]) == 2.0
    assert tracenn.compile(f) is f


# ---- shape errors inside a traced forward --------------------------------------------------------

def matmul_mismatch(a, b):
    c = a + 1
    return c @ b


def test_shape_error_inside_forward_is_torchs_error():
    with pytest.raises(RuntimeError, match=re.escape("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)")):
        tracenn.compile(matmul_mismatch)(tracenn.randn(2, 3), tracenn.randn(4, 5))


def test_shape_error_inside_forward_names_the_users_line():
    with pytest.raises(RuntimeError, match=line_of(matmul_mismatch, "return c @ b")):
        tracenn.compile(matmul_mismatch)(tracenn.randn(2, 3), tracenn.randn(4, 5))


def test_broadcast_error_inside_forward_names_the_users_line():
    def add(a, b):
        return a + b

    with pytest.raises(CompileError, match=re.escape(
            "add cannot take inputs f32[2,3], f32[4,5] (at ") + r".*" + line_of(add, "return a + b")):
        tracenn.compile(add)(tracenn.randn(2, 3), tracenn.randn(4, 5))


def test_wrong_input_features_for_a_linear_layer():
    with pytest.raises(RuntimeError, match=re.escape(
            "Linear(in_features=4, out_features=3): expected input with 4 features in the last dimension, "
            "got input of shape (2, 5)")):
        tracenn.compile(nn.Linear(4, 3))(tracenn.randn(2, 5))


def test_failed_trace_leaves_the_model_usable():
    model = nn.Linear(4, 3)
    cm = tracenn.compile(model)
    with pytest.raises(RuntimeError):
        cm(tracenn.randn(2, 5))
    w = to_np(model.weight)
    assert isinstance(model.weight._value, type(tracenn.randn(1)._value))  # its array is back
    out = cm(tracenn.randn(2, 4))
    assert out.shape == (2, 3) and np.array_equal(to_np(model.weight), w)
    assert len(cm._entries) == 1


# ---- tracing bugs found while writing these tests (strict: they flip when fixed) ------------------

def test_returning_a_view_of_a_base_changed_in_place():
    def f(x):
        y = x.clone()
        a = y[0]
        y.mul_(2)
        return a

    x = tracenn.randn(2, 3)
    np.testing.assert_allclose(to_np(tracenn.compile(f)(x)), to_np(x[0]) * 2)


def test_embedding_compiles():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 2))
    idx = tracenn.tensor([[1, 2], [3, 9]])
    np.testing.assert_allclose(to_np(tracenn.compile(model)(idx)), to_np(model(idx)), rtol=1e-5, atol=1e-6)


def test_one_hot_without_num_classes_is_data_dependent_and_falls_back():
    import tracenn.nn.functional as F
    from tracenn.errors import DataDependentError
    t = tracenn.tensor([0, 2, 1])
    with pytest.raises(DataDependentError, match=r"one_hot: num_classes=-1 reads the tensor's largest value.*"
                                                 r"pass num_classes"):
        tracenn.compile(lambda x: F.one_hot(x))(t)
    f = tracenn.compile(lambda x: F.one_hot(x), fallback="eager")
    with pytest.warns(UserWarning, match="running <lambda> eagerly"):
        out = f(t)
    np.testing.assert_array_equal(to_np(out), np.eye(3, dtype=np.int64)[[0, 2, 1]])
    np.testing.assert_array_equal(to_np(tracenn.compile(lambda x: F.one_hot(x, 4))(t)), np.eye(4)[[0, 2, 1]])


def test_values_made_from_constants_in_the_traced_code_are_readable():
    """ctc_loss reads its lengths on the host: lengths made inside the compiled function from Python
    data are constants of the graph, so the call compiles (they were refused as data-dependent)."""
    import numpy as np
    import tracenn.nn.functional as F

    def loss(logits):
        return F.ctc_loss(logits.log_softmax(2), tracenn.tensor([[1, 2]]), tracenn.tensor([4]), tracenn.tensor([2]))

    x = tracenn.tensor(np.random.default_rng(0).standard_normal((4, 1, 5)).astype(np.float32), requires_grad=True)
    want = loss(x)
    want.backward()
    g = x.grad.clone()
    x.grad = None
    got = tracenn.compile(loss)(x)
    got.backward()
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), g.numpy(), rtol=1e-5, atol=1e-6)
