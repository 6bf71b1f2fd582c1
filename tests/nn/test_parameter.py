"""nn.Parameter and nn.Buffer: construction, repr, identity under in-place updates, copying."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close


def test_parameter_is_a_leaf_tensor_requiring_grad(lib):
    p = lib.nn.Parameter(lib.ones(2, 3))
    assert isinstance(p, lib.Tensor) and isinstance(p, lib.nn.Parameter)
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert tuple(p.shape) == (2, 3)
    assert not lib.nn.Parameter(lib.ones(2), requires_grad=False).requires_grad


def test_parameter_repr(lib):
    assert repr(lib.nn.Parameter(lib.tensor([1.0, 2.0]))) == (
        "Parameter containing:\ntensor([1., 2.], requires_grad=True)")
    assert repr(lib.nn.Parameter(lib.tensor([1.0, 2.0]), requires_grad=False)) == (
        "Parameter containing:\ntensor([1., 2.])")
    assert repr(lib.nn.Parameter()) == "Parameter containing:\ntensor([], requires_grad=True)"
    assert repr(lib.nn.Parameter(lib.ones(2, dtype=lib.float64))) == (
        "Parameter containing:\ntensor([1., 1.], dtype=%s.float64, requires_grad=True)" % lib.__name__)


def test_parameter_of_integers_cannot_require_grad(lib, message):
    with pytest.raises(RuntimeError) as e:
        lib.nn.Parameter(lib.tensor([1, 2]))
    assert message(e) == "Only Tensors of floating point and complex dtype can require gradients"
    p = lib.nn.Parameter(lib.tensor([1, 2]), requires_grad=False)
    assert p.dtype == lib.int64 and not p.requires_grad


def test_parameter_keeps_its_identity_under_in_place_updates():
    p = nn.Parameter(tracenn.zeros(3))
    with tracenn.no_grad():
        assert p.add_(1.0) is p
        p.mul_(2.0)
        p.copy_(p + 1.0)
    p.data.fill_(7.0)
    assert type(p) is nn.Parameter and p.is_leaf and p.requires_grad
    assert_close(p, np.full(3, 7.0, np.float32))
    p.data.mul_(2.0)
    assert_close(p, np.full(3, 14.0, np.float32))


def test_in_place_update_of_a_parameter_outside_no_grad_raises(lib):
    p = lib.nn.Parameter(lib.zeros(2))
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
        p.add_(1.0)


def test_results_of_ops_on_parameters_are_plain_tensors(lib):
    p = lib.nn.Parameter(lib.ones(2))
    for t in (p * 2, p.detach(), p.data, p + p):
        assert type(t) is lib.Tensor


def test_parameter_gradients_accumulate_on_the_parameter():
    p = nn.Parameter(tracenn.tensor([1.0, 2.0]))
    (p * p).sum().backward()
    (p * 3).sum().backward()
    assert_close(p.grad, np.array([5.0, 7.0], np.float32))


def test_parameter_from_a_parameter_and_from_a_view():
    base = tracenn.arange(6.0).reshape(2, 3)
    p = nn.Parameter(base[1])
    assert_close(p, np.array([3.0, 4.0, 5.0], np.float32))
    assert p._base is None  # a parameter is a root, never a view
    q = nn.Parameter(p)
    assert q is not p and type(q) is nn.Parameter
    assert_close(q, p)


def test_parameter_rejects_non_tensor_data():
    with pytest.raises(TypeError, match="data must be a tracenn.Tensor, got list"):
        nn.Parameter([1.0, 2.0])


def test_parameter_deepcopy_keeps_class_and_flag_and_drops_grad(lib):
    p = lib.nn.Parameter(lib.ones(2))
    p.grad = lib.ones(2)
    q = copy.deepcopy(p)
    assert type(q) is lib.nn.Parameter and q is not p and q.requires_grad
    assert q.grad is None  # torch's Parameter.__deepcopy__ does not copy .grad
    memo = {}
    assert copy.deepcopy(p, memo) is copy.deepcopy(p, memo)
    r = copy.deepcopy(lib.nn.Parameter(lib.ones(1), requires_grad=False))
    assert not r.requires_grad


def test_parameter_pickles_as_a_parameter(lib):
    p = lib.nn.Parameter(lib.tensor([1.0, -2.0]))
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is lib.nn.Parameter and q.requires_grad
    assert_close(q, p.detach())
    q = pickle.loads(pickle.dumps(lib.nn.Parameter(lib.ones(1), requires_grad=False)))
    assert not q.requires_grad


def test_buffer_returns_a_marked_plain_tensor(lib):
    t = lib.ones(2)
    b = lib.nn.Buffer(t)
    assert type(b) is lib.Tensor and isinstance(b, lib.nn.Buffer)
    assert b.persistent is True
    assert not isinstance(t, lib.nn.Buffer)
    assert not isinstance(lib.nn.Parameter(lib.ones(1)), lib.nn.Buffer)
    assert lib.nn.Buffer(lib.ones(1), persistent=False).persistent is False
    assert tuple(lib.nn.Buffer().shape) == (0,)


def test_buffer_shares_data_with_its_source(lib):
    t = lib.zeros(2)
    b = lib.nn.Buffer(t)
    b.add_(1.0)
    assert t.tolist() == [1.0, 1.0]


def test_buffer_keeps_requires_grad_of_its_source(lib):
    assert lib.nn.Buffer(lib.ones(1, requires_grad=True)).requires_grad
    assert not lib.nn.Buffer(lib.ones(1)).requires_grad


# ---- UninitializedParameter / UninitializedBuffer (the lazy modules' placeholders) ------------------

def test_uninitialized_parameter_knows_dtype_device_but_not_shape(lib, message):
    p = lib.nn.UninitializedParameter(dtype=lib.float64)
    assert repr(p) == "<UninitializedParameter>" and isinstance(p, lib.nn.Parameter)
    assert p.dtype == lib.float64 and p.device.type == "cpu" and p.requires_grad and p.is_leaf
    assert p.is_floating_point() and not p.is_complex() and tuple(p.size()) == (0,) and p.grad is None
    assert lib.nn.parameter.is_lazy(p) and not lib.nn.parameter.is_lazy(lib.nn.Parameter(lib.ones(1)))
    with pytest.raises(RuntimeError) as e:
        p.shape
    assert message(e).startswith("Can't access the shape of an uninitialized parameter or buffer.")
    for use in (lambda: p + 1, lambda: p.dim(), lambda: p.numel(), lambda: p.detach(), lambda: len(p)):
        with pytest.raises(ValueError, match="Attempted to use an uninitialized parameter in"):
            use()
    assert not lib.nn.UninitializedParameter(requires_grad=False).requires_grad


def test_uninitialized_conversions(lib):
    p = lib.nn.UninitializedParameter()
    assert p.float() is p and type(p.cpu()) is lib.nn.UninitializedParameter
    assert p.double().dtype == lib.float64 and p.half().dtype == lib.float16 and p.long().dtype == lib.int64
    b = lib.nn.UninitializedBuffer()
    assert repr(b) == "<UninitializedBuffer>" and not b.requires_grad and b.persistent
    assert isinstance(b, lib.nn.Buffer) and not isinstance(b, lib.nn.Parameter)
    d = b.double()
    assert type(d) is lib.nn.UninitializedBuffer and d.dtype == lib.float64
    assert type(b.to("cpu")) is lib.nn.UninitializedBuffer


def test_materialize_turns_the_placeholder_into_a_parameter_or_tensor(lib):
    p = lib.nn.UninitializedParameter(dtype=lib.float64)
    obj = p
    p.materialize((2, 3))
    assert p is obj and type(p) is lib.nn.Parameter and tuple(p.shape) == (2, 3) and p.dtype == lib.float64
    assert p.requires_grad and p.is_leaf
    q = lib.nn.UninitializedParameter()
    q.materialize((4,), dtype=lib.float64)
    assert q.dtype == lib.float64
    b = lib.nn.UninitializedBuffer()
    b.materialize((2,))
    assert type(b) is lib.Tensor and tuple(b.shape) == (2,) and isinstance(b, lib.nn.Buffer)


def test_uninitialized_copies_and_pickles():
    p = nn.UninitializedParameter(dtype=tracenn.float64)
    c = copy.deepcopy(p)
    assert type(c) is nn.UninitializedParameter and c is not p and c.dtype == tracenn.float64
    assert type(pickle.loads(pickle.dumps(p))) is nn.UninitializedParameter
    b = nn.UninitializedBuffer(persistent=False)
    cb = copy.deepcopy(b)
    assert type(cb) is nn.UninitializedBuffer and cb.persistent is False
    assert pickle.loads(pickle.dumps(b)).persistent is False


def test_module_with_placeholders_registers_them():
    m = nn.Module()
    m.w = nn.UninitializedParameter()
    m.register_buffer("b", nn.UninitializedBuffer())
    assert [n for n, _ in m.named_parameters()] == ["w"] and [n for n, _ in m.named_buffers()] == ["b"]
    m.double()
    assert type(m.w) is nn.UninitializedParameter and m.w.dtype == tracenn.float64 and m.b.dtype == tracenn.float64
