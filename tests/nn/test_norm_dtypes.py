"""The normalisations' dtype rule (batch_norm, instance_norm, layer_norm, group_norm), as torch's:
parameters and running statistics have the input's dtype, or are float32 under a bfloat16/float16
input (normalised in float32, rounded once to the input's dtype); any other mix raises."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import to_np

RNG = np.random.default_rng(3)
X = (RNG.standard_normal((4, 8, 6)) * 3 + 1).astype(np.float32)
W = RNG.standard_normal(8).astype(np.float32)
B = RNG.standard_normal(8).astype(np.float32)


def _calls(x, w, b, rm, rv, F=F):
    """name -> the functional call (``F``: tracenn's or torch's), its parameters in the dtype of ``w``."""
    return {
        "layer_norm": lambda: F.layer_norm(x, (6,), w[:6], b[:6]),
        "batch_norm (train)": lambda: F.batch_norm(x, rm, rv, w, b, training=True),
        "batch_norm (eval)": lambda: F.batch_norm(x, rm, rv, w, b, training=False),
        "group_norm": lambda: F.group_norm(x, 2, w, b),
        "instance_norm": lambda: F.instance_norm(x, None, None, w, b),
    }


def _inputs(lib, x_dtype, p_dtype):
    x = lib.tensor(X).to(getattr(lib, x_dtype)).requires_grad_()
    w = lib.tensor(W).to(getattr(lib, p_dtype)).requires_grad_()
    b = lib.tensor(B).to(getattr(lib, p_dtype))
    rm, rv = lib.zeros(8, dtype=getattr(lib, p_dtype)), lib.full((8,), 2.0, dtype=getattr(lib, p_dtype))
    return x, w, b, rm, rv


NAMES = list(_calls(*_inputs(tracenn, "float32", "float32")))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x_dtype,p_dtype", [("float64", "float32"), ("float32", "bfloat16"),
                                             ("float32", "float64"), ("bfloat16", "float16")])
def test_mixed_dtypes_raise_as_torch(name, x_dtype, p_dtype):
    call = _calls(*_inputs(tracenn, x_dtype, p_dtype))[name]
    fn = name.split()[0]
    with pytest.raises(RuntimeError, match=rf"mixed dtype \(CPU\): all inputs must share same datatype\. {fn} got an "
                                           rf"input of dtype tracenn\.{x_dtype} and \w+ of dtype tracenn\.{p_dtype}"):
        call()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x_dtype", ["bfloat16", "float16"])
def test_half_input_with_float32_parameters_is_normalised_in_float32(name, x_dtype):
    x, w, b, rm, rv = _inputs(tracenn, x_dtype, "float32")
    y = _calls(x, w, b, rm, rv)[name]()
    assert y.dtype == x.dtype and rm.dtype == tracenn.float32
    # the same call on the float32 value of the input, rounded once at the end
    x32, w32, b32, rm32, rv32 = _inputs(tracenn, "float32", "float32")
    x32 = x.detach().float().requires_grad_()
    ref = _calls(x32, w32, b32, rm32, rv32)[name]()
    np.testing.assert_array_equal(to_np(y.float()), to_np(ref.to(x.dtype).float()))
    np.testing.assert_allclose(to_np(rm), to_np(rm32), rtol=1e-6, atol=1e-7)
    # and the gradient flows to both the half input and the float32 weight
    y.float().sum().backward()
    assert x.grad.dtype == x.dtype and w.grad.dtype == tracenn.float32
    assert np.isfinite(to_np(x.grad.float())).all()


def test_layer_norm_half_against_numpy():
    x = tracenn.tensor(X).to(tracenn.bfloat16)
    y = nn.LayerNorm(6)(x)
    xs = to_np(x.float()).astype(np.float64)
    ref = (xs - xs.mean(-1, keepdims=True)) / np.sqrt(xs.var(-1, keepdims=True) + 1e-5)
    assert y.dtype == tracenn.bfloat16
    np.testing.assert_allclose(to_np(y.float()), ref, rtol=2 ** -8, atol=2 ** -8)


def test_a_float64_model_with_float32_input_says_how_to_fix():
    model = nn.Sequential(nn.BatchNorm1d(8)).to(tracenn.float64)
    with pytest.raises(RuntimeError, match=r"batch_norm got an input of dtype tracenn\.float32 and weight of dtype "
                                           r"tracenn\.float64: give them one dtype, e.g\. module\.to\(tracenn\.float32\) "
                                           r"or input\.to\(tracenn\.float64\)"):
        model(tracenn.tensor(X))


@pytest.mark.parametrize("module", [lambda: nn.LayerNorm(6), lambda: nn.BatchNorm1d(8), lambda: nn.GroupNorm(2, 8),
                                    lambda: nn.InstanceNorm1d(8, affine=True, track_running_stats=True)])
def test_compiled_half_input_matches_eager(module):
    m = module()
    x = tracenn.tensor(X).to(tracenn.bfloat16)
    eager = m(x)
    m2 = module()
    cm = tracenn.compile(m2)
    out = cm(x)
    assert out.dtype == tracenn.bfloat16
    np.testing.assert_array_equal(to_np(out.float()), to_np(eager.float()))
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-6, atol=1e-7, err_msg=k)


def test_compiled_mixed_dtype_raises_the_same_error():
    cm = tracenn.compile(nn.LayerNorm(6))
    with pytest.raises(RuntimeError, match=r"mixed dtype \(CPU\).*layer_norm got an input of dtype tracenn\.float64"):
        cm(tracenn.tensor(X, dtype=tracenn.float64))


# ---- torch parity ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("x_dtype", ["bfloat16", "float16"])
def test_half_input_matches_torch(name, x_dtype):
    torch = pytest.importorskip("torch")
    outs = []
    for lib in (torch, tracenn):
        x, w, b, rm, rv = _inputs(lib, x_dtype, "float32")
        y = _calls(x, w, b, rm, rv, lib.nn.functional)[name]()
        (y.float() * lib.arange(y.numel()).reshape(y.shape).float().sin()).sum().backward()
        outs.append([str(y.dtype).split(".")[-1]] + [t.detach().float().numpy() for t in (y, x.grad, rm)]
                    + [w.grad.numpy()])
    (td, *tv), (md, *mv) = outs
    assert td == md
    np.testing.assert_array_equal(mv[0], tv[0], err_msg="output")
    np.testing.assert_allclose(mv[2], tv[2], rtol=1e-6, atol=1e-7, err_msg="running_mean")
    np.testing.assert_allclose(mv[1], tv[1], rtol=2 ** -7, atol=1e-6, err_msg="input grad")  # one half ulp
    # torch sums the weight gradient of a mixed layer_norm in the half dtype; here it is float32
    np.testing.assert_allclose(mv[3], tv[3], rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("name", NAMES)
def test_mixed_dtype_error_type_matches_torch(name):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="mixed dtype"):
        _calls(*_inputs(torch, "float64", "float32"), torch.nn.functional)[name]()
    with pytest.raises(RuntimeError, match="mixed dtype"):
        _calls(*_inputs(tracenn, "float64", "float32"))[name]()
