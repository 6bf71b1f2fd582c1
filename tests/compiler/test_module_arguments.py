"""A compiled function called with modules among its arguments (gpt-fast's
``decode_one_token(model, x, input_pos)``, ``train_step(model, batch)``): the modules' parameters
and buffers are the call's state, read at every call, and each set of modules compiles its own
program (compiler/api.py::_bind_module_arguments)."""
import copy
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
import tracenn.nn.functional as F
from tracenn.errors import UnsupportedError
from helpers import assert_close, to_np


def _mlp(seed):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_a_module_argument_is_state_and_each_module_compiles_its_own_program():
    m1, m2 = _mlp(0), _mlp(1)
    traced = []

    @tracenn.compile(fullgraph=True)  # (a module argument raised here before)
    def decode(model, x, scale=1.0):
        traced.append(1)
        return model(x).softmax(-1) * scale

    x = tracenn.randn(2, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_close(decode(m1, x), m1(x).softmax(-1), rtol=1e-6)
        assert_close(decode(m2, x, scale=2.0), 2 * m2(x).softmax(-1), rtol=1e-6)
        assert_close(decode(model=m1, x=x), m1(x).softmax(-1), rtol=1e-6)  # (by keyword: another binding)
        with tracenn.no_grad():
            m1[0].weight.mul_(0.5)  # read at every call, not baked in
        assert_close(decode(m1, x), m1(x).softmax(-1), rtol=1e-6)
        decode(m1, tracenn.randn(2, 4))
    assert len(traced) == 3  # m1 positional, m2, m1 by keyword; then no retrace
    assert "%model.0.weight" in str(decode.graph)  # (state named by the parameter's name)
    assert "module argument(s) model, set 2" in decode.explain()


def test_a_training_step_given_the_model_equals_eager_step_for_step():
    mc, me = _mlp(0), _mlp(0)
    oc, oe = tracenn.optim.Adam(mc.parameters(), lr=0.01), tracenn.optim.Adam(me.parameters(), lr=0.01)

    def make(opt):
        def step(model, x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.detach()
        return step

    compiled, eager = tracenn.compile(make(oc)), make(oe)
    g = tracenn.Generator().manual_seed(3)
    for _ in range(4):
        x, y = tracenn.randn(5, 4, generator=g), tracenn.randint(0, 3, (5,), generator=g)
        assert_close(compiled(mc, x, y), eager(me, x, y), rtol=1e-5)
    for a, b in zip(mc.parameters(), me.parameters()):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)
    (inner,) = compiled._bound.values()
    assert all(not e.eager for e in inner._entries.values())


def test_buffers_of_a_module_argument_are_written_back():
    bn = nn.BatchNorm1d(3)
    ref = copy.deepcopy(bn)
    f = tracenn.compile(lambda m, x: m(x) * 2)
    x = tracenn.randn(6, 3)
    assert_close(f(bn, x), ref(x) * 2, rtol=1e-5)
    assert_close(bn.running_mean, ref.running_mean, rtol=1e-6)
    assert int(bn.num_batches_tracked) == 1


def test_a_module_inside_a_structure_still_runs_eagerly():
    f = tracenn.compile(lambda ms, x: ms[0](x), fullgraph=True)
    with pytest.raises(UnsupportedError, match="argument of type Sequential holds a tensor"):
        f([_mlp(0)], tracenn.randn(2, 4))
