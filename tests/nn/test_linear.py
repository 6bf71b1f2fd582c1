"""Identity, Linear, ReLU/Tanh/Sigmoid and nn.functional.linear/relu, against torch."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np


def test_linear_parameters_names_shapes(lib):
    m = lib.nn.Linear(5, 3)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("weight", (3, 5)), ("bias", (3,))]
    assert m.in_features == 5 and m.out_features == 3
    m2 = lib.nn.Linear(5, 3, bias=False)
    assert m2.bias is None and [n for n, _ in m2.named_parameters()] == ["weight"]
    assert "bias" in m2._parameters


def test_linear_dtype_and_device_arguments(lib):
    m = lib.nn.Linear(2, 2, dtype=lib.float64, device="cpu")
    assert m.weight.dtype == lib.float64 and m.bias.dtype == lib.float64
    assert m(lib.ones(1, 2, dtype=lib.float64)).dtype == lib.float64


def test_linear_default_init_distribution_matches_torch_bounds():
    m = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = to_np(m.weight), to_np(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.mean()) < 0.01 * bound and abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(b).max() <= bound and np.abs(b).max() > 0.9 * bound
    assert len(np.unique(w)) > 0.99 * w.size  # really random, not a repeated pattern


def test_linear_init_is_drawn_from_tracenns_generator():
    tracenn.manual_seed(3)
    a = nn.Linear(4, 4)
    tracenn.manual_seed(3)
    b = nn.Linear(4, 4)
    c = nn.Linear(4, 4)
    assert_close(a.weight, b.weight) and assert_close(a.bias, b.bias)
    assert not np.array_equal(to_np(b.weight), to_np(c.weight))


def test_linear_with_no_inputs_warns_and_zero_bias(lib):
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        m = lib.nn.Linear(0, 3)
    assert m.bias.tolist() == [0.0, 0.0, 0.0]


def test_reset_parameters_redraws():
    m = nn.Linear(3, 3)
    w = m.weight
    before = to_np(w).copy()
    m.reset_parameters()
    assert m.weight is w and not np.array_equal(before, to_np(m.weight))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (4, 2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_match_torch(torch, shape, bias):
    m = nn.Linear(3, 2, bias=bias)
    tm = torch.nn.Linear(3, 2, bias=bias)
    tm.load_state_dict({k: torch.tensor(v.numpy()) for k, v in m.state_dict().items()})
    x = np.linspace(-2, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt), tm(tx)
    assert_close(out, tout)
    (out ** 2).sum().backward()
    (tout ** 2).sum().backward()
    assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-5)
    assert_close(m.weight.grad, tm.weight.grad, rtol=1e-5, atol=1e-5)
    if bias:
        assert_close(m.bias.grad, tm.bias.grad, rtol=1e-5, atol=1e-5)


def test_functional_linear_with_vector_weight_matches_torch(torch):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    w = np.array([1.0, -1.0, 2.0], np.float32)
    assert_close(F.linear(tracenn.tensor(x), tracenn.tensor(w)),
                 torch.nn.functional.linear(torch.tensor(x), torch.tensor(w)))
    assert_close(F.linear(tracenn.tensor(x[0]), tracenn.tensor(w), tracenn.tensor(0.5)),
                 torch.nn.functional.linear(torch.tensor(x[0]), torch.tensor(w), torch.tensor(0.5)))


def test_linear_shape_mismatch_raises(lib):
    with pytest.raises(RuntimeError):
        lib.nn.Linear(3, 2)(lib.ones(2, 4))


@pytest.mark.parametrize("name", ["ReLU", "Tanh", "Sigmoid", "Identity"])
def test_activations_match_torch(torch, name):
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = getattr(nn, name)()(xt), getattr(torch.nn, name)()(tx)
    assert_close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_close(xt.grad, tx.grad)


def test_identity_returns_its_input(lib):
    x = lib.ones(2)
    assert lib.nn.Identity(1, 2, key="ignored")(x) is x


def test_relu_inplace(lib):
    x = lib.tensor([-1.0, 2.0])
    out = lib.nn.ReLU(inplace=True)(x)
    assert out is x and x.tolist() == [0.0, 2.0]
    y = lib.tensor([-1.0, 2.0])
    assert lib.nn.functional.relu(y).tolist() == [0.0, 2.0] and y.tolist() == [-1.0, 2.0]
    assert lib.nn.functional.relu(y, inplace=True) is y and y.tolist() == [0.0, 2.0]


def test_mlp_training_step_matches_torch(torch):
    """A whole step: forward, loss, backward, SGD update under no_grad, second forward."""
    tracenn.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Sigmoid())
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Sigmoid())
    tnet.load_state_dict({k: torch.tensor(v.numpy()) for k, v in net.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for _ in range(2):
        loss = (net(tracenn.tensor(x)) ** 2).mean()
        tloss = (tnet(torch.tensor(x)) ** 2).mean()
        assert_close(loss, tloss, rtol=1e-5)
        net.zero_grad()
        tnet.zero_grad()
        loss.backward()
        tloss.backward()
        with tracenn.no_grad():
            for p in net.parameters():
                p.sub_(0.5 * p.grad)
        with torch.no_grad():
            for p in tnet.parameters():
                p.sub_(0.5 * p.grad)
    for p, tp in zip(net.parameters(), tnet.parameters()):
        assert_close(p, tp, rtol=1e-5, atol=1e-6)


# ---- Bilinear ---------------------------------------------------------------------------------------

def test_bilinear_parameters_repr_and_init(lib):
    m = lib.nn.Bilinear(3, 4, 5)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("weight", (5, 3, 4)), ("bias", (5,))]
    assert repr(m) == "Bilinear(in1_features=3, in2_features=4, out_features=5, bias=True)"
    m2 = lib.nn.Bilinear(3, 4, 5, bias=False, dtype=lib.float64)
    assert m2.bias is None and m2.weight.dtype == lib.float64 and "bias=False" in repr(m2)


def test_bilinear_default_init_distribution():
    m = nn.Bilinear(400, 3, 50)
    bound = 1 / math.sqrt(400)  # torch: 1/sqrt(in1_features), for weight and bias alike
    w, b = to_np(m.weight), to_np(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound and np.abs(b).max() <= bound


def test_bilinear_numpy_reference():
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 4))
    w, b = rng.standard_normal((5, 3, 4)), rng.standard_normal(5)
    out = F.bilinear(tracenn.tensor(x1), tracenn.tensor(x2), tracenn.tensor(w), tracenn.tensor(b))
    assert_close(out, np.einsum("...i,oij,...j->...o", x1, w, x2) + b, rtol=1e-10, atol=1e-12)
    assert tuple(F.bilinear(tracenn.ones(3), tracenn.ones(4), tracenn.ones(5, 3, 4)).shape) == (5,)
    assert tuple(F.bilinear(tracenn.ones(0, 3), tracenn.ones(0, 4), tracenn.ones(5, 3, 4)).shape) == (0, 5)


@pytest.mark.parametrize("s1,s2", [((3,), (4,)), ((2, 3), (2, 4)), ((2, 6, 3), (2, 6, 4))])
@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_forward_and_backward_match_torch(torch, s1, s2, bias):
    m, tm = nn.Bilinear(3, 4, 5, bias=bias), torch.nn.Bilinear(3, 4, 5, bias=bias)
    m.load_state_dict(tm.state_dict())
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal(s1).astype(np.float32), rng.standard_normal(s2).astype(np.float32)
    a, b = tracenn.tensor(x1, requires_grad=True), tracenn.tensor(x2, requires_grad=True)
    ta, tb = torch.tensor(x1, requires_grad=True), torch.tensor(x2, requires_grad=True)
    out, tout = m(a, b), tm(ta, tb)
    assert_close(out, tout, rtol=1e-5, atol=1e-5)
    (out ** 2).sum().backward()
    (tout ** 2).sum().backward()
    for g, tg in [(a.grad, ta.grad), (b.grad, tb.grad), (m.weight.grad, tm.weight.grad)]:
        assert_close(g, tg, rtol=1e-4, atol=1e-5)
    if bias:
        assert_close(m.bias.grad, tm.bias.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("s1,s2,w,b", [((2, 3), (3, 4), (5, 3, 4), None), ((2, 3), (2, 5), (5, 3, 4), None),
                                       ((2, 3), (4,), (5, 3, 4), None), ((2, 2, 3), (2, 3, 4), (5, 3, 4), None),
                                       ((2, 4), (2, 4), (5, 3, 4), None), ((2, 3), (2, 4), (5, 3, 4), (6,))])
def test_bilinear_errors_are_torchs(lib, message, s1, s2, w, b):
    args = [lib.ones(*s1), lib.ones(*s2), lib.ones(*w)] + ([lib.ones(*b)] if b else [])
    with pytest.raises(RuntimeError) as e:
        lib.nn.functional.bilinear(*args)
    assert message(e).startswith("bilinear(): ")
    if lib is tracenn:
        return
    with pytest.raises(RuntimeError) as e2:
        F.bilinear(*[tracenn.ones(*a.shape) for a in args])
    assert message(e2) == message(e)


def test_wrong_input_features_names_the_layer():
    with pytest.raises(RuntimeError, match=re.escape(
            "Linear(in_features=512, out_features=10): expected input with 512 features in the last "
            "dimension, got input of shape (64, 256)")):
        nn.Linear(512, 10)(tracenn.randn(64, 256))
