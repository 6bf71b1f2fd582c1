"""Activation functions and modules: forward and gradient against torch (kinks included), NumPy
references, in-place behaviour, reprs and errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

# Every kink of the piecewise activations below (0, +-0.5, +-1, +-3, 6, softplus's 20) plus both
# tails, in one shape that every test shares (so each kernel compiles once): (N, C, H, W) = (2, 3, 2, 2).
X = np.array([-100.0, -7.0, -6.0, -3.0, -2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5,
              2.0, 2.5, 3.0, 4.0, 6.0, 7.0, 20.5, 100.0], np.float32).reshape(2, 3, 2, 2)
# Upstream gradient: distinct per element, so a wrong element shows.
G = np.linspace(0.5, 1.5, X.size).astype(np.float32).reshape(X.shape)

# (functional name, kwargs): each row is checked against torch.nn.functional, forward and gradient.
FUNCTIONAL = [
    ("relu", {}), ("relu6", {}), ("hardtanh", {}), ("hardtanh", {"min_val": -0.5, "max_val": 3.0}),
    ("threshold", {"threshold": 1.0, "value": -2.0}), ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}),
    ("celu", {}), ("celu", {"alpha": 2.0}), ("gelu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}),
    ("mish", {}), ("hardswish", {}), ("hardsigmoid", {}), ("leaky_relu", {}), ("leaky_relu", {"negative_slope": 0.2}),
    ("rrelu", {}), ("hardshrink", {}), ("hardshrink", {"lambd": 1.0}), ("softshrink", {}),
    ("softshrink", {"lambd": 1.0}), ("tanhshrink", {}), ("logsigmoid", {}), ("softplus", {}),
    ("softplus", {"beta": 2.0, "threshold": 5.0}), ("softplus", {"beta": 0.5}), ("softsign", {}), ("sigmoid", {}),
    ("tanh", {}),
]

# (module name, constructor kwargs, torch's repr)
MODULES = [
    ("ReLU", {}, "ReLU()"), ("ReLU", {"inplace": True}, "ReLU(inplace=True)"),
    ("ReLU6", {}, "ReLU6()"), ("ReLU6", {"inplace": True}, "ReLU6(inplace=True)"),
    ("Threshold", {"threshold": 0.1, "value": 20.0}, "Threshold(threshold=0.1, value=20.0)"),
    ("Threshold", {"threshold": 0.1, "value": 20, "inplace": True}, "Threshold(threshold=0.1, value=20, inplace=True)"),
    ("Hardtanh", {}, "Hardtanh(min_val=-1.0, max_val=1.0)"),
    ("Hardtanh", {"min_val": -2, "max_val": 2, "inplace": True}, "Hardtanh(min_val=-2, max_val=2, inplace=True)"),
    ("ELU", {}, "ELU(alpha=1.0)"), ("ELU", {"alpha": 0.5, "inplace": True}, "ELU(alpha=0.5, inplace=True)"),
    ("CELU", {"alpha": 2.0}, "CELU(alpha=2.0)"), ("SELU", {}, "SELU()"), ("SELU", {"inplace": True}, "SELU(inplace=True)"),
    ("GELU", {}, "GELU(approximate='none')"), ("GELU", {"approximate": "tanh"}, "GELU(approximate='tanh')"),
    ("SiLU", {}, "SiLU()"), ("SiLU", {"inplace": True}, "SiLU(inplace=True)"), ("Mish", {}, "Mish()"),
    ("Hardswish", {}, "Hardswish()"), ("Hardsigmoid", {}, "Hardsigmoid()"),
    ("LeakyReLU", {}, "LeakyReLU(negative_slope=0.01)"),
    ("LeakyReLU", {"negative_slope": 0.2, "inplace": True}, "LeakyReLU(negative_slope=0.2, inplace=True)"),
    ("RReLU", {}, "RReLU(lower=0.125, upper=0.3333333333333333)"),
    ("RReLU", {"lower": 0.1, "upper": 0.3, "inplace": True}, "RReLU(lower=0.1, upper=0.3, inplace=True)"),
    ("Hardshrink", {}, "Hardshrink(0.5)"), ("Softshrink", {"lambd": 1.0}, "Softshrink(1.0)"),
    ("Tanhshrink", {}, "Tanhshrink()"), ("LogSigmoid", {}, "LogSigmoid()"),
    ("Softplus", {}, "Softplus(beta=1.0, threshold=20.0)"), ("Softsign", {}, "Softsign()"),
    ("Sigmoid", {}, "Sigmoid()"), ("Tanh", {}, "Tanh()"), ("PReLU", {}, "PReLU(num_parameters=1)"),
    ("PReLU", {"num_parameters": 3, "init": 0.1}, "PReLU(num_parameters=3)"),
    ("GLU", {}, "GLU(dim=-1)"), ("Softmax", {"dim": 1}, "Softmax(dim=1)"), ("Softmin", {"dim": -1}, "Softmin(dim=-1)"),
    ("LogSoftmax", {"dim": 0}, "LogSoftmax(dim=0)"), ("Softmax", {}, "Softmax(dim=None)"),
    ("Softmax2d", {}, "Softmax2d()"),
]


def _run(fn, x, lib):
    """(output, input gradient) of fn(x) with a fixed upstream gradient."""
    xt = lib.tensor(x, requires_grad=True)
    out = fn(xt)
    out.backward(lib.tensor(G.reshape(-1)[: out.numel()].reshape(tuple(out.shape))))
    return out, xt.grad


@pytest.mark.parametrize("name,kwargs", FUNCTIONAL, ids=[f"{n}-{k}" for n, k in FUNCTIONAL])
def test_functional_forward_and_gradient_match_torch(torch, name, kwargs):
    out, grad = _run(lambda t: getattr(F, name)(t, **kwargs), X, tracenn)
    tout, tgrad = _run(lambda t: getattr(torch.nn.functional, name)(t, **kwargs), X, torch)
    assert_close(out, tout, rtol=1e-6, atol=1e-6)
    # gelu-tanh's gradient has 1 - tanh(u)**2, which cancels: float32 tanh's last-bit differences
    # (XLA's, at its different optimisation levels, against PyTorch's) reach ~1e-5 there
    tol = 2e-5 if kwargs.get("approximate") == "tanh" else 1e-6
    assert_close(grad, tgrad, rtol=tol, atol=tol)


@pytest.mark.parametrize("name,dtype", [("gelu", "float64"), ("gelu", "bfloat16"), ("softplus", "bfloat16"),
                                        ("logsigmoid", "float64")])
def test_functional_keeps_dtype_and_matches_torch(torch, name, dtype):
    x = tracenn.tensor(X, dtype=getattr(tracenn, dtype))
    tx = torch.tensor(X, dtype=getattr(torch, dtype))
    out, tout = getattr(F, name)(x), getattr(torch.nn.functional, name)(tx)
    assert out.dtype == getattr(tracenn, dtype)
    tol = 1e-12 if dtype == "float64" else 2e-2
    assert_close(out, tout, rtol=tol, atol=tol, check_dtype=False)


@pytest.mark.parametrize("name,kwargs,expected", MODULES, ids=[e for _, _, e in MODULES])
def test_module_repr_is_torchs(name, kwargs, expected):
    assert repr(getattr(nn, name)(**kwargs)) == expected


@pytest.mark.parametrize("name,kwargs,expected", MODULES, ids=[e for _, _, e in MODULES])
def test_module_repr_and_forward_match_torch(torch, name, kwargs, expected):
    x = X  # 4-D: Softmax2d's input; channel dim 3 for PReLU(3)
    m, tm = getattr(nn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(m) == repr(tm) == expected
    m.eval(), tm.eval()  # RReLU: the deterministic slope
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Softmax(dim=None)'s implicit-dim warning
        out, tout = m(tracenn.tensor(x)), tm(torch.tensor(x))
    assert_close(out, tout, rtol=1e-6, atol=1e-6)


def test_numpy_references():
    x = tracenn.tensor(X)
    X64 = X.astype(np.float64)
    erf = np.vectorize(math.erf)
    assert_close(F.gelu(x), X * 0.5 * (1 + erf(X / math.sqrt(2))).astype(np.float32), rtol=1e-6, atol=1e-6)
    scale, alpha = 1.0507009873554805, 1.6732632423543772
    assert_close(F.selu(x), np.where(X > 0, scale * X64, scale * alpha * np.expm1(X64)).astype(np.float32),
                 rtol=1e-6, atol=1e-7)
    assert_close(F.softplus(x), np.where(X > 20, X, np.log1p(np.exp(np.minimum(X64, 20)))).astype(np.float32),
                 rtol=1e-6)
    assert_close(F.logsigmoid(x), (-np.logaddexp(0, -X64)).astype(np.float32), rtol=1e-6, atol=1e-7)
    assert_close(F.mish(x), (X64 * np.tanh(np.logaddexp(0, X64))).astype(np.float32), rtol=1e-6, atol=1e-6)
    assert_close(F.hardsigmoid(x), np.clip(X / 6 + 0.5, 0, 1), atol=1e-7)


def test_extreme_inputs_give_finite_values_and_gradients():
    x = tracenn.tensor(X, requires_grad=True)  # holds -100 and 100: exp overflows in float32
    for f in (F.softplus, F.logsigmoid, F.elu, F.selu, F.celu, F.mish, F.silu, F.gelu):
        x.grad = None
        out = f(x)
        out.sum().backward()
        assert np.isfinite(to_np(out)).all(), f.__name__
        assert np.isfinite(to_np(x.grad)).all(), f.__name__
    assert to_np(F.logsigmoid(x)).flat[0] == -100.0


def test_kink_gradients_are_torchs_without_torch():
    """The gradient at a breakpoint is torch's: open intervals for hardtanh/relu6/hardsigmoid."""
    flat = X.reshape(-1).tolist()

    def grad(f, points):
        x = tracenn.tensor(X, requires_grad=True)
        f(x).sum().backward()
        g = to_np(x.grad).reshape(-1)
        return [float(g[flat.index(p)]) for p in points]
    assert grad(F.relu6, [0.0, 6.0, 3.0]) == [0.0, 0.0, 1.0]
    assert grad(F.hardtanh, [-1.0, 1.0, 0.0]) == [0.0, 0.0, 1.0]
    assert grad(F.hardsigmoid, [-3.0, 3.0]) == [0.0, 0.0]
    assert grad(F.hardswish, [-3.0, 3.0]) == [0.0, 1.0]
    assert grad(F.logsigmoid, [0.0]) == [0.5]
    assert grad(F.softshrink, [0.5, -0.5]) == [0.0, 0.0]
    assert grad(lambda t: F.elu(t, alpha=0.5), [0.0]) == [0.5]


@pytest.mark.parametrize("shape,weight", [((2, 3, 2, 2), [0.1, 0.2, 0.3]), ((2, 3, 2, 2), [0.3]), ((), [0.3])])
def test_prelu_matches_torch(torch, shape, weight):
    x = X if shape else np.float32(-2.0)
    xt, w = tracenn.tensor(x, requires_grad=True), tracenn.tensor(weight, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(weight, requires_grad=True)
    out, tout = F.prelu(xt, w), torch.nn.functional.prelu(tx, tw)
    assert_close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    assert_close(xt.grad, tx.grad)
    assert_close(w.grad, tw.grad, rtol=1e-5)


def test_prelu_module_parameter():
    m = nn.PReLU(3, init=0.1)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("weight", (3,))]
    assert to_np(m.weight).tolist() == pytest.approx([0.1] * 3)
    m(tracenn.tensor(X)).sum().backward()
    assert_close(m.weight.grad, np.minimum(X, 0).sum((0, 2, 3)))


@pytest.mark.parametrize("dim", [0, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin", "glu"])
def test_softmax_family_and_glu_match_torch(torch, name, dim):
    x = X / 10  # softmax of +-100 is exactly one-hot: keep the gradient informative
    out, grad = _run(lambda t: getattr(F, name)(t, dim), x, tracenn)
    tout, tgrad = _run(lambda t: getattr(torch.nn.functional, name)(t, dim), x, torch)
    assert_close(out, tout, rtol=1e-6, atol=1e-6)
    assert_close(grad, tgrad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ndim,dim", [(3, 0), (4, 1)])
def test_softmax_implicit_dim_warns_and_picks_torchs_dim(ndim, dim):
    x = tracenn.tensor(X / 10 if ndim == 4 else X[0] / 10)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax has been deprecated"):
        out = F.softmax(x)
    assert_close(out, F.softmax(x, dim))
    with pytest.warns(UserWarning, match="Implicit dimension choice for log_softmax"):
        nn.LogSoftmax()(x)


def test_softmax_dtype_argument():
    out = F.softmax(tracenn.tensor([1.0, 2.0]), 0, dtype=tracenn.float64)
    assert out.dtype == tracenn.float64


def test_rrelu_training_draws_slopes_from_the_generator():
    x = tracenn.tensor(-np.abs(X) - 1, requires_grad=True)
    tracenn.manual_seed(1)
    out = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = to_np(out) / to_np(x)
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3 and slopes.std() > 0.03
    out.backward(tracenn.ones_like(out))
    assert_close(x.grad, slopes, rtol=1e-6)  # the gradient is the drawn slope
    tracenn.manual_seed(1)
    assert_close(F.rrelu(x, 0.1, 0.3, training=True), out)
    eval_out = to_np(F.rrelu(tracenn.tensor(X), 0.1, 0.3))  # eval: the mean slope
    assert_close(eval_out, np.where(X > 0, X, X * np.float32(0.2)), rtol=1e-6)
    m = nn.RReLU(0.1, 0.3)
    assert m.training and not np.allclose(to_np(m(x)), to_np(x) * 0.2)


@pytest.mark.parametrize("name", ["relu", "relu6", "hardtanh", "elu", "selu", "celu", "leaky_relu", "rrelu",
                                  "silu", "mish", "hardswish", "hardsigmoid", "threshold"])
def test_inplace_rebinds_and_returns_the_input(name):
    args = (0.5, 9.0) if name == "threshold" else ()
    x = tracenn.tensor(X.copy())
    expected = to_np(getattr(F, name)(tracenn.tensor(X), *args))
    out = getattr(F, name)(x, *args, inplace=True)
    assert out is x
    assert_close(x, expected)


def test_inplace_functions_and_modules():
    x = tracenn.tensor([-1.0, 2.0])
    assert F.elu_(x) is x and to_np(x)[1] == 2.0
    y = tracenn.tensor([-1.0, 2.0])
    assert nn.LeakyReLU(0.5, inplace=True)(y) is y and to_np(y).tolist() == [-0.5, 2.0]
    z = tracenn.tensor([-1.0, 2.0])
    assert F.threshold_(z, 0.0, 5.0) is z and to_np(z).tolist() == [5.0, 2.0]
    leaf = tracenn.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        F.elu(leaf, inplace=True)


def test_inplace_on_a_view_writes_through():
    x = tracenn.tensor([[-1.0, 2.0], [-3.0, 4.0]])
    F.relu6(x[0], inplace=True)
    assert to_np(x).tolist() == [[0.0, 2.0], [-3.0, 4.0]]


def test_hardtanh_keeps_integer_dtype(torch):
    x = [-3, 0, 3]
    assert F.hardtanh(tracenn.tensor(x)).tolist() == torch.nn.functional.hardtanh(torch.tensor(x)).tolist()
    assert F.hardtanh(tracenn.tensor(x)).dtype == tracenn.int64


def test_softmax2d_over_channels():
    x = tracenn.tensor(X[0] / 10)
    assert_close(nn.Softmax2d()(x), F.softmax(x, 0))


def test_errors():
    with pytest.raises(RuntimeError, match="Halving dimension must be even, but dimension 1 is size 3"):
        F.glu(tracenn.ones(2, 3))
    with pytest.raises(RuntimeError, match="glu does not support scalars"):
        F.glu(tracenn.tensor(1.0))
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(tracenn.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(tracenn.ones(2), 1.0, -1.0)
    with pytest.raises(AssertionError, match=r"max_val \(1.0\) must be greater than min_val \(2.0\)"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the upper bound"):
        F.rrelu(tracenn.ones(2), 0.5, 0.1, training=True)
    with pytest.raises(RuntimeError, match="Found parameter numbers = 2 and channel size = 3"):
        F.prelu(tracenn.ones(4, 3), tracenn.ones(2))
    with pytest.raises(RuntimeError, match="Expected `weight` to be a scalar or 1D tensor, but got: ndim = 2"):
        F.prelu(tracenn.ones(4, 3), tracenn.ones(1, 3))
    with pytest.raises(ValueError, match="Softmax2d: expected input to be 3D or 4D, got 2D instead"):
        nn.Softmax2d()(tracenn.ones(2, 2))
    with pytest.raises(RuntimeError, match=r"\"elu_cpu\" not implemented for 'Long'.*x.float\(\)"):
        F.elu(tracenn.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="lambda must be greater or equal to 0"):
        F.softshrink(tracenn.ones(2), -1.0)


def test_hardtanh_deprecated_keywords_warn():
    with pytest.warns(FutureWarning, match="keyword argument `min_value` is deprecated"):
        m = nn.Hardtanh(min_value=-2.0)
    assert m.min_val == -2.0


def test_modules_have_no_parameters_but_prelu():
    for name, kwargs, _ in MODULES:
        m = getattr(nn, name)(**kwargs)
        assert (len(list(m.parameters())) == 1) == (name == "PReLU"), name


# ---- gumbel_softmax ---------------------------------------------------------------------------------

def _gumbel_noise_of_next_draw(shape, seed):
    """The Gumbel noise gumbel_softmax draws after manual_seed(seed): -log(Exp(1))."""
    tracenn.manual_seed(seed)
    return -np.log(to_np(tracenn.empty(*shape).exponential_()).astype(np.float64))


@pytest.mark.parametrize("tau,dim", [(1.0, -1), (0.5, 0), (2.0, 1)])
def test_gumbel_softmax_is_the_softmax_of_perturbed_logits(tau, dim):
    logits = np.random.default_rng(0).standard_normal((3, 4, 5)).astype(np.float32)
    g = _gumbel_noise_of_next_draw(logits.shape, 7)
    tracenn.manual_seed(7)
    y = F.gumbel_softmax(tracenn.tensor(logits), tau=tau, dim=dim)
    z = (logits + g) / tau
    e = np.exp(z - z.max(dim, keepdims=True))
    assert_close(y, (e / e.sum(dim, keepdims=True)).astype(np.float32), rtol=1e-4, atol=1e-6)


def test_gumbel_softmax_hard_is_one_hot_with_the_soft_gradient():
    logits = tracenn.randn(6, 5, requires_grad=True)
    tracenn.manual_seed(3)
    hard = F.gumbel_softmax(logits, tau=0.7, hard=True)
    tracenn.manual_seed(3)
    soft = F.gumbel_softmax(logits, tau=0.7)
    h = to_np(hard)
    assert set(np.unique(h)) == {0.0, 1.0} and np.array_equal(h.sum(-1), np.ones(6))
    assert np.array_equal(h.argmax(-1), to_np(soft).argmax(-1))
    w = tracenn.arange(30.0).reshape(6, 5)
    (hard * w).sum().backward()
    g_hard = to_np(logits.grad).copy()
    logits.grad = None
    (soft * w).sum().backward()
    assert_close(g_hard, logits.grad, rtol=1e-5, atol=1e-6)  # straight-through


def test_gumbel_softmax_samples_follow_the_softmax():
    """The Gumbel-max trick: argmax frequencies approach softmax(logits)."""
    logits = tracenn.tensor([1.0, 0.0, -1.0, 2.0])
    y = F.gumbel_softmax(logits.expand(20000, 4), hard=True)
    freq = to_np(y).mean(0)
    p = np.exp([1.0, 0.0, -1.0, 2.0])
    assert np.abs(freq - p / p.sum()).max() < 0.015


def test_gumbel_softmax_draws_from_tracenns_generator_and_warns_on_eps():
    x = tracenn.randn(2, 3)
    tracenn.manual_seed(1)
    a = F.gumbel_softmax(x)
    tracenn.manual_seed(1)
    b = F.gumbel_softmax(x)
    c = F.gumbel_softmax(x)
    assert np.array_equal(to_np(a), to_np(b)) and not np.array_equal(to_np(b), to_np(c))
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated and has no effect."):
        F.gumbel_softmax(x, eps=1e-5)


def test_gumbel_softmax_signature_and_shapes_match_torch(torch):
    import inspect
    def params(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()]
    assert params(F.gumbel_softmax) == params(torch.nn.functional.gumbel_softmax)
    x = np.zeros((2, 3, 4), np.float32)
    for kw in ({}, {"hard": True, "dim": 1}, {"tau": 0.1, "dim": 0}):
        y, ty = F.gumbel_softmax(tracenn.tensor(x), **kw), torch.nn.functional.gumbel_softmax(torch.tensor(x), **kw)
        assert y.shape == tuple(ty.shape) and y.dtype == tracenn.float32
        assert_close(y.sum(kw.get("dim", -1)), ty.sum(kw.get("dim", -1)), rtol=1e-5, atol=1e-5)
