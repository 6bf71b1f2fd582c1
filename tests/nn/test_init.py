"""nn.init: torch's formulas, in place under no_grad, tracenn's generator."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from tracenn.nn import init
from helpers import to_np

GAINS = [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None), ("tanh", None),
         ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 1), ("selu", None)]


@pytest.mark.parametrize("nonlinearity,param", GAINS)
def test_calculate_gain_matches_torch(lib, nonlinearity, param):
    expected = {"linear": 1, "conv2d": 1, "conv_transpose3d": 1, "sigmoid": 1, "tanh": 5.0 / 3,
                "relu": math.sqrt(2.0), "selu": 0.75}.get(nonlinearity)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        expected = math.sqrt(2.0 / (1 + slope ** 2))
    assert lib.nn.init.calculate_gain(nonlinearity, param) == expected


INIT_ERRORS = [
    (lambda lib: lib.nn.init.calculate_gain("foo"), "Unsupported nonlinearity foo"),
    (lambda lib: lib.nn.init.calculate_gain("leaky_relu", "x"), "negative_slope x not a valid number"),
    (lambda lib: lib.nn.init.calculate_gain("leaky_relu", True), "negative_slope True not a valid number"),
    (lambda lib: lib.nn.init.kaiming_uniform_(lib.empty(3)),
     "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"),
    (lambda lib: lib.nn.init.kaiming_uniform_(lib.empty(3, 3), mode="foo"),
     "Mode foo not supported, please use one of ['fan_in', 'fan_out']"),
    (lambda lib: lib.nn.init.xavier_uniform_(lib.empty(3)),
     "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"),
]


@pytest.mark.parametrize("script,text", INIT_ERRORS, ids=[f"err{i}" for i in range(len(INIT_ERRORS))])
def test_init_errors(lib, script, text):
    with pytest.raises(ValueError) as e:
        script(lib)
    assert str(e.value) == text


@pytest.mark.parametrize("shape,fans", [((3, 5), (5, 3)), ((4, 2, 3, 3), (18, 36)), ((2, 7, 5), (35, 10))])
def test_fans(lib, shape, fans):
    assert lib.nn.init._calculate_fan_in_and_fan_out(lib.empty(*shape)) == fans


def test_fills_work_in_place_on_parameters_without_recording():
    p = nn.Parameter(tracenn.empty(3, 4))
    for fn, args in [(init.uniform_, (-1.0, 1.0)), (init.normal_, ()), (init.constant_, (0.5,)),
                     (init.ones_, ()), (init.zeros_, ()), (init.kaiming_uniform_, ()), (init.kaiming_normal_, ()),
                     (init.xavier_uniform_, ()), (init.xavier_normal_, ())]:
        assert fn(p, *args) is p
        assert p.is_leaf and p.requires_grad and p.grad_fn is None
    assert to_np(init.constant_(p, 0.5)).tolist() == [[0.5] * 4] * 3
    assert to_np(init.ones_(p)).sum() == 12 and to_np(init.zeros_(p)).sum() == 0


@pytest.mark.parametrize("fn,kwargs,bound", [
    (init.kaiming_uniform_, {}, math.sqrt(6.0 / 200)),  # a=0: leaky_relu with slope 0
    (init.kaiming_uniform_, {"a": math.sqrt(5)}, 1 / math.sqrt(200)),
    (init.kaiming_uniform_, {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(6.0 / 300)),
    (init.xavier_uniform_, {"gain": 2.0}, 2.0 * math.sqrt(6.0 / 500)),
    (init.uniform_, {"a": -0.3, "b": 0.3}, 0.3),
])
def test_uniform_bounds(fn, kwargs, bound):
    w = to_np(fn(tracenn.empty(300, 200), **kwargs))
    assert np.abs(w).max() <= bound * (1 + 1e-6) and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound


@pytest.mark.parametrize("fn,kwargs,std", [
    (init.kaiming_normal_, {"nonlinearity": "relu"}, math.sqrt(2.0 / 200)),
    (init.xavier_normal_, {}, math.sqrt(2.0 / 500)),
    (init.normal_, {"mean": 1.0, "std": 0.1}, 0.1),
])
def test_normal_std(fn, kwargs, std):
    w = to_np(fn(tracenn.empty(300, 200), **kwargs))
    assert abs(w.std() - std) < 0.02 * std
    assert abs(w.mean() - kwargs.get("mean", 0.0)) < 0.02 * std


def test_generator_argument_reproduces():
    g = tracenn.Generator().manual_seed(5)
    a = to_np(init.kaiming_uniform_(tracenn.empty(3, 3), generator=g)).copy()
    g.manual_seed(5)
    b = to_np(init.kaiming_uniform_(tracenn.empty(3, 3), generator=g))
    assert np.array_equal(a, b)


def test_zero_element_tensor_is_a_no_op(lib):
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        t = lib.nn.init.kaiming_normal_(lib.empty(0, 3))
    assert tuple(t.shape) == (0, 3)
