"""The structures a compiled call takes and returns (tracenn/utils/_pytree.py): dataclasses walked
field by field and rebuilt as the same type, tuple subclasses (``tracenn.Size``) kept, and a
tensor hidden in a plain object's attribute refused instead of baked into the program.

``forward`` runs only while tracing, so a counter bumped there counts traces.
"""
from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest

import tracenn
from helpers import to_np
from tracenn import nn
from tracenn.compiler.graph import Value
from tracenn.errors import UnsupportedError


@dataclass
class Out:
    y: object
    aux: object = None


@dataclass(frozen=True)
class Checked:
    """Validates and derives in ``__post_init__``: a rebuilt one must not run it on markers."""
    y: object
    z: object = field(init=False, default=None)

    def __post_init__(self):
        assert self.y.ndim == 1
        object.__setattr__(self, "z", self.y + 1)


@dataclass
class Inputs:
    x: object
    scale: float = 2.0


class Batch:
    def __init__(self, x):
        self.x = x


class Doubler(nn.Module):
    def forward(self, x):
        return Out(x * 2, aux=[x + 1, "tag"])


class Scaled(nn.Module):
    """Reads its input from a dataclass."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.traces = [0]  # (a list: a changed int attribute is a guard)

    def forward(self, inp):
        self.traces[0] += 1
        return self.lin(inp.x) * inp.scale


class FromBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, b):
        return self.lin(b.x)


# ---- dataclass outputs ----------------------------------------------------------------------------

def test_dataclass_output_is_rebuilt_with_values():
    m = Doubler()
    x = tracenn.arange(3.)
    got, want = tracenn.compile(m)(x), m(x)
    assert type(got) is Out and type(got.aux) is list
    np.testing.assert_allclose(to_np(got.y), to_np(want.y))
    np.testing.assert_allclose(to_np(got.aux[0]), to_np(want.aux[0]))
    assert got.aux[1] == "tag"
    assert not isinstance(got.y._value, Value)  # a concrete tensor, not the trace's symbol
    assert "symbolic" not in repr(got)


def test_dataclass_output_keeps_init_false_fields_and_skips_post_init():
    def f(x):
        c = Checked(x * 3)
        late = Out(x)
        late.extra = x - 1  # an attribute set after __init__ comes back too (as torch.compile does)
        return c, x.sum(), late

    x = tracenn.ones(2)
    (c, s, late), (ce, se, latee) = tracenn.compile(f)(x), f(x)
    assert type(c) is Checked and type(late) is Out
    np.testing.assert_allclose(to_np(c.y), to_np(ce.y))
    np.testing.assert_allclose(to_np(c.z), to_np(ce.z))
    np.testing.assert_allclose(to_np(s), to_np(se))
    np.testing.assert_allclose(to_np(late.extra), to_np(latee.extra))


def test_dataclass_output_gradients():
    m = Doubler()
    x = tracenn.ones(2, requires_grad=True)
    o = tracenn.compile(m)(x)
    (o.y.sum() + o.aux[0].sum()).backward()
    np.testing.assert_allclose(to_np(x.grad), [3., 3.])


def test_dataclass_output_graph_prints_and_explains():
    cm = tracenn.compile(Doubler())
    cm(tracenn.ones(2))
    text = str(cm.graph)
    assert text.startswith("graph Doubler(%x: f32[2]) -> Out(")
    assert "mul[dtype=f32] %x, 2" in text and "return Out(" in text
    assert "1 cached program(s)" in cm.explain()


# ---- dataclass inputs -----------------------------------------------------------------------------

def test_dataclass_input_tensor_is_a_traced_input():
    m = Scaled()
    cm = tracenn.compile(m)
    a, b = tracenn.ones(1, 2), tracenn.full((1, 2), 3.)
    first = cm(Inputs(a))
    second = cm(Inputs(b))  # a new tensor in the field is read, not the first call's constant
    assert m.traces == [1] and len(cm._entries) == 1  # another instance with equal fields: no new program
    assert [v.name for v in cm.graph.inputs] == ["inp.0"]
    assert not cm.graph.consts
    np.testing.assert_allclose(to_np(first), to_np(m(Inputs(a))), rtol=1e-6)
    np.testing.assert_allclose(to_np(second), to_np(m(Inputs(b))), rtol=1e-6)


def test_dataclass_input_gradients_flow_to_its_field():
    m = Scaled()
    x = tracenn.ones(1, 2, requires_grad=True)
    tracenn.compile(m)(Inputs(x)).sum().backward()
    got = to_np(x.grad)
    x.grad = None
    m(Inputs(x)).sum().backward()
    np.testing.assert_allclose(got, to_np(x.grad), rtol=1e-6)


def test_dataclass_input_non_tensor_field_is_a_guard():
    m = Scaled()
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    cm(Inputs(x, 2.0))
    got = cm(Inputs(x, 5.0))
    cm(Inputs(x, 2.0))
    assert len(cm._entries) == 2 and m.traces == [2]
    np.testing.assert_allclose(to_np(got), to_np(m(Inputs(x, 5.0))), rtol=1e-6)
    assert "the structure of the arguments" in cm.explain()


# ---- a tensor in a plain object -------------------------------------------------------------------

_HIDDEN = ("tracenn.compile: argument of type Batch holds a tensor in attribute 'x'; a compiled call reads "
           "tensors from tensors, tuples, lists, dicts, namedtuples and dataclasses only — pass the tensor "
           "directly, or make Batch a dataclass")


def test_tensor_in_a_plain_object_is_refused_under_fullgraph():
    cm = tracenn.compile(FromBatch(), fullgraph=True)
    with pytest.raises(UnsupportedError) as info:
        cm(Batch(tracenn.ones(1, 2)))
    assert str(info.value) == _HIDDEN


@pytest.mark.parametrize("fallback", [None, "eager"])
def test_tensor_in_a_plain_object_runs_eagerly_with_a_warning(fallback):
    m = FromBatch()
    cm = tracenn.compile(m, fallback=fallback)
    b = Batch(tracenn.ones(1, 2))
    with pytest.warns(UserWarning, match="argument of type Batch holds a tensor in attribute 'x'"):
        first = cm(b)
    np.testing.assert_allclose(to_np(first), to_np(m(b)))
    b.x = tracenn.zeros(1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (it warns once)
        second = cm(b)
    np.testing.assert_allclose(to_np(second), to_np(m.lin.bias.view(1, 1)))  # the new value, not the old


def test_a_tensor_in_a_list_attribute_is_found():
    class Holder:
        def __init__(self, xs):
            self.xs = xs

    cm = tracenn.compile(lambda h: h.xs[0] + 1, fullgraph=True)
    with pytest.raises(UnsupportedError, match="argument of type Holder holds a tensor in attribute 'xs'"):
        cm(Holder([tracenn.ones(2)]))


def test_plain_objects_without_tensors_still_compile():
    class Config:
        def __init__(self):
            self.scale, self.name = 3.0, "c"

    cfg = Config()
    cm = tracenn.compile(lambda x, c: x * c.scale, fullgraph=True)
    np.testing.assert_allclose(to_np(cm(tracenn.ones(2), cfg)), [3., 3.])


# ---- a tensor read by a function passed as an argument ------------------------------------------

W_GLOBAL = tracenn.tensor([3., 4.])


def _times_global(x):
    return x * W_GLOBAL


def _apply(x, fn):
    return fn(x)


def _closure_fn():
    w = tracenn.tensor([1., 2.])
    return w, (lambda x: x * w)


class _Scaler:
    def __init__(self):
        self.w = tracenn.tensor([5., 6.])

    def scale(self, x):
        return x * self.w


@pytest.mark.parametrize("make, through", [
    (lambda: (None, _closure_fn()[1]), "'w'"),
    (lambda: (None, _times_global), "'W_GLOBAL'"),
    (lambda: (None, functools.partial(tracenn.mul, other=tracenn.ones(2))), "'a functools.partial argument'"),
    (lambda: (None, _Scaler().scale), "'self.w'"),
    (lambda: (None, (lambda f: lambda x: f(x) + 1)(_closure_fn()[1])), "'f -> w'"),
    (lambda: (None, lambda x, w=tracenn.ones(2): x * w), "'w'"),
])
def test_a_function_argument_reading_a_tensor_is_refused_under_fullgraph(make, through):
    _, fn = make()
    with pytest.raises(UnsupportedError, match=f"passed as an argument reads a tensor through {through}"):
        tracenn.compile(_apply, fullgraph=True)(tracenn.ones(2), fn)


def test_a_function_argument_reading_a_tensor_runs_eagerly_and_sees_in_place_changes():
    w, fn = _closure_fn()
    cm = tracenn.compile(_apply)
    with pytest.warns(UserWarning, match="so this call runs eagerly"):
        assert cm(tracenn.ones(2), fn).tolist() == [1., 2.]
    w.mul_(4)  # (a program would have kept [1, 2] as a constant)
    assert cm(tracenn.ones(2), fn).tolist() == [4., 8.]


def test_function_arguments_that_read_no_tensor_still_compile():
    cm = tracenn.compile(_apply, fullgraph=True)
    scale = 3.0
    assert cm(tracenn.ones(2), lambda x: x * scale).tolist() == [3., 3.]
    assert cm(tracenn.ones(2), tracenn.nn.functional.gelu).shape == (2,)
    assert cm(tracenn.ones(2), functools.partial(tracenn.mul, other=2.0)).tolist() == [2., 2.]


def test_a_function_argument_reading_the_calls_own_state_compiles():
    lin = tracenn.nn.Linear(2, 2)

    def step(x):
        return _apply(x, lambda y: lin(y))  # (an inner function: traced as part of step)

    cm = tracenn.compile(lambda x, f: f(x) + lin.bias, fullgraph=True)
    np.testing.assert_allclose(to_np(cm(tracenn.ones(1, 2), lin)), to_np(lin(tracenn.ones(1, 2)) + lin.bias),
                               rtol=1e-6)
    np.testing.assert_allclose(to_np(tracenn.compile(step, fullgraph=True)(tracenn.ones(1, 2))),
                               to_np(lin(tracenn.ones(1, 2))), rtol=1e-6)


# ---- tuple subclasses -----------------------------------------------------------------------------

def test_size_output_keeps_its_type():
    got = tracenn.compile(lambda x: (x.shape, x * 2))(tracenn.ones(2, 3))
    assert type(got[0]) is tracenn.Size and got[0] == (2, 3)
    assert got[0].numel() == 6


def test_namedtuple_output_keeps_its_type():
    x = tracenn.tensor([[1., 4.], [3., 2.]])
    out = tracenn.compile(lambda x: tracenn.max(x, 0))(x)
    assert type(out) is type(tracenn.max(x, 0))
    np.testing.assert_allclose(to_np(out.values), [3., 4.])
    np.testing.assert_allclose(to_np(out.indices), [1, 0])
