"""Eager parity with torch 2.13: in-place activations' gradients, ``tensor()`` of ranges and numpy
arrays, ``arange`` with an integer dtype and float arguments, ``==`` with non-numbers, a writable
``.numpy()``, NumPy's ``axis``/``keepdims`` names on reductions and the ``return_types`` repr.

Each section checks known values (NumPy references) and then, when torch is installed, the same
table against torch.
"""
from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from helpers import to_np


def _torch():
    return pytest.importorskip("torch")


def _lib_name(s: str) -> str:
    return s.replace("torch.", "tracenn.")


# ---- 1. in-place activations -----------------------------------------------------------------------

_SELU_A, _SELU_S = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def _mish_grad(z):
    sp = np.log1p(np.exp(z))
    sig = 1 / (1 + np.exp(-z))
    return np.tanh(sp) + z * (1 - np.tanh(sp) ** 2) * sig


# name -> (call(F, x, inplace), d out / d z as NumPy, for z = 1.5 * x)
ACTIVATIONS = {
    "elu": (lambda F, x, ip: F.elu(x, inplace=ip), lambda z: np.where(z > 0, 1.0, np.exp(z))),
    "elu_alpha": (lambda F, x, ip: F.elu(x, 0.5, inplace=ip), lambda z: np.where(z > 0, 1.0, 0.5 * np.exp(z))),
    "selu": (lambda F, x, ip: F.selu(x, inplace=ip),
             lambda z: np.where(z > 0, _SELU_S, _SELU_S * _SELU_A * np.exp(z))),
    "celu": (lambda F, x, ip: F.celu(x, 0.7, inplace=ip), lambda z: np.where(z > 0, 1.0, np.exp(z / 0.7))),
    "mish": (lambda F, x, ip: F.mish(x, inplace=ip), _mish_grad),
    "silu": (lambda F, x, ip: F.silu(x, inplace=ip), lambda z: (1 + z * np.exp(-z) / (1 + np.exp(-z))) /
             (1 + np.exp(-z))),
    "relu": (lambda F, x, ip: F.relu(x, inplace=ip), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda F, x, ip: F.leaky_relu(x, 0.1, inplace=ip), lambda z: np.where(z > 0, 1.0, 0.1)),
    "hardtanh": (lambda F, x, ip: F.hardtanh(x, inplace=ip), lambda z: ((z > -1) & (z < 1)).astype(float)),
    "hardswish": (lambda F, x, ip: F.hardswish(x, inplace=ip),
                  lambda z: np.where(z <= -3, 0.0, np.where(z >= 3, 1.0, (2 * z + 3) / 6))),
    "hardsigmoid": (lambda F, x, ip: F.hardsigmoid(x, inplace=ip),
                    lambda z: ((z > -3) & (z < 3)).astype(float) / 6),
    "threshold": (lambda F, x, ip: F.threshold(x, 0.5, 9.0, inplace=ip), lambda z: (z > 0.5).astype(float)),
    "rrelu_eval": (lambda F, x, ip: F.rrelu(x, 0.1, 0.3, inplace=ip), lambda z: np.where(z > 0, 1.0, 0.2)),
}
MODULES = {
    "ELU": lambda nn: nn.ELU(inplace=True), "SELU": lambda nn: nn.SELU(inplace=True),
    "CELU": lambda nn: nn.CELU(0.7, inplace=True), "Mish": lambda nn: nn.Mish(inplace=True),
}
_X = [-1.0, 0.5, 2.0, -3.0]


def _inplace_grad(lib, call, dtype=None):
    """x.grad of ``sum(act_(1.5 * x))``, and the in-place result's identity with its input."""
    x = lib.tensor(_X, dtype=dtype, requires_grad=True)
    z = x * 1.5
    out = call(z)
    assert out is z
    out.sum().backward()
    return x.grad


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_inplace_activation_gradient(name):
    call, dact = ACTIVATIONS[name]
    z = 1.5 * np.array(_X)
    grad = _inplace_grad(tracenn, lambda t: call(F, t, True))
    np.testing.assert_allclose(to_np(grad), 1.5 * dact(z), rtol=1e-5, atol=1e-6)
    # ... and the same gradient as out of place
    x = tracenn.tensor(_X, requires_grad=True)
    call(F, x * 1.5, False).sum().backward()
    np.testing.assert_allclose(to_np(grad), to_np(x.grad), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_inplace_activation_module_gradient(name):
    grad = _inplace_grad(tracenn, MODULES[name](tracenn.nn))
    x = tracenn.tensor(_X, requires_grad=True)
    mod = MODULES[name](tracenn.nn)
    mod.inplace = False
    mod(x * 1.5).sum().backward()
    np.testing.assert_allclose(to_np(grad), to_np(x.grad), rtol=1e-6)


def test_inplace_activation_on_view_and_half():
    x = tracenn.tensor([[-1.0, 0.5], [2.0, -3.0]], requires_grad=True)
    z = x * 1.5
    F.elu(z[:, 1:], inplace=True)
    (z * tracenn.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [[1.5, 3.0], [4.5, 6.0 * math.exp(-4.5)]], rtol=1e-5)
    g = _inplace_grad(tracenn, lambda t: F.mish(t, inplace=True), tracenn.float16)
    assert g.dtype == tracenn.float16
    np.testing.assert_allclose(to_np(g).astype(np.float64), 1.5 * _mish_grad(1.5 * np.array(_X)), rtol=2e-3)


@pytest.mark.parametrize("name", ["elu", "selu", "celu", "mish", "relu"])
def test_inplace_activation_errors(name):
    call = ACTIVATIONS[name][0]
    leaf = tracenn.tensor(_X, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        call(F, leaf, True)
    # a tensor saved for backward by an earlier op, then changed in place: torch raises
    x = tracenn.tensor(_X, requires_grad=True)
    z = x * 1.5
    w = z * z
    call(F, z, True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (w.sum() + z.sum()).backward()
    with tracenn.no_grad():  # allowed without grad, as torch
        assert call(F, leaf, True) is leaf and leaf._version == 1


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_inplace_activation_gradient_matches_torch(name):
    torch = _torch()
    call = ACTIVATIONS[name][0]
    for tl, tt in [(None, None), (tracenn.float64, torch.float64)]:
        got = _inplace_grad(tracenn, lambda t: call(F, t, True), tl)
        want = _inplace_grad(torch, lambda t: call(torch.nn.functional, t, True), tt)
        # (torch's in-place ELUs differentiate from the result: float32 rounds a little apart)
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_inplace_activation_module_gradient_matches_torch(name):
    torch = _torch()
    make = MODULES[name]
    np.testing.assert_allclose(to_np(_inplace_grad(tracenn, make(tracenn.nn))),
                               to_np(_inplace_grad(torch, make(torch.nn))), rtol=1e-5, atol=1e-6)


# ---- 2. tensor() of ranges, numpy arrays and numpy scalars ------------------------------------------

# name -> (data, dtype name, values)
CREATION = {
    "range": (lambda: range(3), "int64", [0, 1, 2]),
    "empty_range": (lambda: range(0), "float32", []),
    "list_of_ranges": (lambda: [range(2), range(2, 4)], "int64", [[0, 1], [2, 3]]),
    "tuple_range_list": (lambda: (range(2), [3, 4]), "int64", [[0, 1], [3, 4]]),
    "np_f64_arrays": (lambda: [np.array([1.0, 2.0]), np.array([3.0, 4.0])], "float64", [[1, 2], [3, 4]]),
    "np_f32_arrays": (lambda: [np.array([1.0, 2.0], np.float32)], "float32", [[1, 2]]),
    "np_i32_arrays": (lambda: [np.array([1, 2], np.int32), np.array([3, 4], np.int32)], "int32", [[1, 2], [3, 4]]),
    "np_i32_f32_arrays": (lambda: [np.array([1, 2], np.int32), np.array([3.0, 4.0], np.float32)], "float32",
                          [[1, 2], [3, 4]]),
    "np_i32_and_floats": (lambda: [np.array([1, 2], np.int32), [3.5, 4.0]], "float32", [[1, 2], [3.5, 4]]),
    "np_u8_and_ints": (lambda: [np.array([1, 2], np.uint8), [3, 4]], "int64", [[1, 2], [3, 4]]),
    "np_bool_arrays": (lambda: [np.array([True, False])], "bool", [[True, False]]),
    "np_f16_arrays": (lambda: [np.array([1.0, 2.0], np.float16)], "float16", [[1, 2]]),
    "np_empty_arrays": (lambda: [np.zeros((0,))], "float64", [[]]),
    "np_f32_scalars": (lambda: [np.float32(1.0), np.float32(2.0)], "float32", [1, 2]),
    "np_f64_scalar_float": (lambda: [np.float64(1.0), 2.0], "float64", [1, 2]),
    "np_f16_scalar_float": (lambda: [np.float16(1.0), 2.0], "float32", [1, 2]),
    "np_i32_scalars": (lambda: [np.int32(1), np.int32(2)], "int32", [1, 2]),
    "np_i32_scalar_int": (lambda: [np.int32(1), 2], "int64", [1, 2]),
    "np_f32_scalar_int": (lambda: [np.float32(1.5), 2], "float32", [1.5, 2]),
    "np_bool_scalars": (lambda: [np.bool_(True), False], "bool", [True, False]),
    "0d_tensors": (lambda: [tracenn.tensor(1.0), tracenn.tensor(2.0)], "float32", [1, 2]),
    "0d_int_tensors": (lambda: [tracenn.tensor(1), tracenn.tensor(2)], "int64", [1, 2]),
    "0d_int_tensor_float": (lambda: [tracenn.tensor(1), 2.5], "float32", [1, 2.5]),
    "0d_f64_tensor_float": (lambda: [tracenn.tensor(1.0, dtype=tracenn.float64), 2.5], "float64", [1, 2.5]),
    "0d_f16_tensor_float": (lambda: [tracenn.tensor(1.0, dtype=tracenn.float16), 2.5], "float32", [1, 2.5]),
    "0d_i32_tensor_int": (lambda: [tracenn.tensor(1, dtype=tracenn.int32), 2], "int64", [1, 2]),
}


@pytest.mark.parametrize("name", sorted(CREATION))
def test_tensor_dtype_inference(name):
    make, dtype, values = CREATION[name]
    t = tracenn.tensor(make())
    assert t.dtype == getattr(tracenn, dtype)
    assert t.tolist() == values
    assert tracenn.tensor(make(), dtype=tracenn.float32).tolist() == values


@pytest.mark.parametrize("data", [None, [None], {1: 2}, (i for i in range(2)), ["a"]])
def test_tensor_of_non_numbers_raises(data):
    with pytest.raises(RuntimeError, match="Could not infer dtype of"):
        tracenn.tensor(data)


def test_tensor_ragged_numpy_arrays_raise():
    with pytest.raises(ValueError):
        tracenn.tensor([np.array([1.0, 2.0]), np.array([3.0])])


@pytest.mark.parametrize("name", sorted(CREATION))
def test_tensor_dtype_inference_matches_torch(name):
    torch = _torch()
    make = CREATION[name][0]
    data = make()
    if name.startswith("0d"):  # the same data made of torch's tensors
        data = [torch.tensor(x.item(), dtype=getattr(torch, str(x.dtype).split(".")[1]))
                if isinstance(x, tracenn.Tensor) else x for x in data]
    with warnings.catch_warnings():  # (torch warns that a list of arrays is slow)
        warnings.simplefilter("ignore")
        want = torch.tensor(data)
    got = tracenn.tensor(make())
    assert _lib_name(str(want.dtype)) == str(got.dtype)
    assert got.tolist() == want.tolist()


# ---- 3. arange with an integer dtype and float arguments ---------------------------------------------

# (start, end, step, dtype name, values): torch sizes int64 from the truncated arguments, the other
# integer dtypes from the float ones; the values are trunc(start) + i * trunc(step)
ARANGE = [
    (0, 5, 1.5, "int64", [0, 1, 2, 3, 4]),
    (0, 5, 1.5, "int32", [0, 1, 2, 3]),
    (0, 5, 1.5, "uint8", [0, 1, 2, 3]),
    (0, 5, 2.7, "int64", [0, 2, 4]),
    (0, 5, 2.7, "int16", [0, 2]),
    (5.9, 0, -1.5, "int64", [5, 4, 3, 2, 1]),
    (5.9, 0, -1.5, "int32", [5, 4, 3, 2]),
    (-3.7, 4.2, 1.3, "int64", [-3, -2, -1, 0, 1, 2, 3]),
    (-3.7, 4.2, 1.3, "uint8", [253, 254, 255, 0, 1, 2, 3]),
    (0.5, 5, 1, "int64", [0, 1, 2, 3, 4]),
    (-0.5, 3, 1, "int64", [0, 1, 2]),
    (-0.5, 3, 1, "int32", [0, 1, 2, 3]),
    (0, 1e-9, 1, "int64", []),
    (0, 1e-9, 1, "int32", [0]),
    (0, 2.5, 0.5, "int32", [0, 0, 0, 0, 0]),
    (250, 260, 1, "uint8", [250, 251, 252, 253, 254, 255, 0, 1, 2, 3]),
    (0, 5, 1.5, "float32", [0.0, 1.5, 3.0, 4.5]),
    (0, 10, 3, "int64", [0, 3, 6, 9]),
]
ARANGE_ERRORS = [
    ((0, 5, 0.5), "int64", ValueError, "step must be nonzero"),
    ((0, 5, 0), "int32", RuntimeError, "step must be nonzero"),
    ((0, 5, float("nan")), "float32", RuntimeError, "step must be nonzero"),
    ((0, 5, -1), "int64", RuntimeError, "inconsistent with step sign"),
    ((0.5, 0.2, 1), "int32", RuntimeError, "inconsistent with step sign"),
    ((0, float("inf"), 1), "float32", RuntimeError, "unsupported range"),
]


@pytest.mark.parametrize("start,end,step,dtype,values", ARANGE)
def test_arange_integer_dtype_float_args(start, end, step, dtype, values):
    t = tracenn.arange(start, end, step, dtype=getattr(tracenn, dtype))
    assert t.dtype == getattr(tracenn, dtype) and t.tolist() == values


@pytest.mark.parametrize("args,dtype,exc,match", ARANGE_ERRORS)
def test_arange_errors(args, dtype, exc, match):
    with pytest.raises(exc, match=match):
        tracenn.arange(*args, dtype=getattr(tracenn, dtype))


def test_arange_matches_torch():
    torch = _torch()
    for start, end, step, _, _ in ARANGE:
        for dtype in ("int64", "int32", "int16", "int8", "uint8"):
            try:
                want = torch.arange(start, end, step, dtype=getattr(torch, dtype)).tolist()
            except (ValueError, RuntimeError) as e:
                with pytest.raises(type(e)):
                    tracenn.arange(start, end, step, dtype=getattr(tracenn, dtype))
                continue
            got = tracenn.arange(start, end, step, dtype=getattr(tracenn, dtype))
            assert got.tolist() == want, (start, end, step, dtype)
    for args, dtype, exc, _ in ARANGE_ERRORS:
        with pytest.raises(exc):
            torch.arange(*args, dtype=getattr(torch, dtype))


# ---- 4. comparing with things that are not numbers ---------------------------------------------------

class _Other:
    pass


# name -> (lambda t: expression, result)
COMPARISONS = {
    "eq_none": (lambda t: t == None, False),  # noqa: E711
    "ne_none": (lambda t: t != None, True),  # noqa: E711
    "none_eq": (lambda t: None == t, False),  # noqa: E711
    "none_ne": (lambda t: None != t, True),  # noqa: E711
    "eq_str": (lambda t: t == "a", False),
    "ne_str": (lambda t: t != "a", True),
    "eq_object": (lambda t: t == _Other(), False),
    "eq_list": (lambda t: t == [1], False),
    "eq_tuple": (lambda t: t == (1,), False),
    "eq_dtype": (lambda t: t == t.dtype, False),
    "in_none_1": (lambda t: t in [None, 1], True),
    "in_none": (lambda t: t in [None], False),
    "in_str": (lambda t: t in ["a"], False),
    "none_in": (lambda t: None in [t], False),
    "in_itself": (lambda t: t in [None, t], True),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_compare_with_non_numbers(name):
    expr, want = COMPARISONS[name]
    got = expr(tracenn.tensor([1]))
    assert type(got) is bool and got is want


def test_compare_with_non_numbers_errors_and_numbers():
    t = tracenn.tensor([1, 2])
    for expr in (lambda: t < None, lambda: t >= "a", lambda: t.eq(None), lambda: tracenn.eq(t, None)):
        with pytest.raises(TypeError):
            expr()
    with pytest.raises(RuntimeError, match="ambiguous"):
        t in [None, 1]  # noqa: B015 (t == 1 is a two-element tensor, as in torch)
    assert (t == 1).tolist() == [True, False] and (t != 2.0).tolist() == [True, False]
    assert (t == tracenn.tensor([1, 3])).tolist() == [True, False]
    assert (t == np.array([1, 2])).tolist() == [True, True] and (t == np.int32(2)).tolist() == [False, True]


@pytest.mark.parametrize("name", sorted(COMPARISONS))
def test_compare_with_non_numbers_matches_torch(name):
    torch = _torch()
    expr = COMPARISONS[name][0]
    assert expr(tracenn.tensor([1])) is expr(torch.tensor([1]))


# ---- 5. numpy() is writable ------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: tracenn.zeros(3), lambda: tracenn.arange(6.0).reshape(2, 3).t(),
                                  lambda: tracenn.tensor([1.0, 2.0], dtype=tracenn.bfloat16),
                                  lambda: tracenn.tensor(True), lambda: tracenn.arange(4)[1:3]])
def test_numpy_is_writable_copy(make):
    t = make()
    before = t.tolist()
    a = t.numpy()
    assert a.flags.writeable and a.shape == tuple(t.shape)
    a[...] = 1
    assert t.tolist() == before  # a copy: the tensor keeps its values
    assert tracenn.from_numpy(a).tolist() == np.ones_like(a).tolist()


def test_numpy_requires_grad_raises():
    with pytest.raises(RuntimeError, match="detach"):
        tracenn.ones(2, requires_grad=True).numpy()
    a = tracenn.ones(2, requires_grad=True).numpy(force=True)
    a[0] = 5
    assert a.tolist() == [5, 1]


# ---- 6. NumPy's axis / keepdims names -----------------------------------------------------------------

# name -> input kind: these reductions take ``axis`` and ``keepdims``, as torch's
REDUCTIONS = {"sum": "f", "nansum": "f", "mean": "f", "nanmean": "f", "prod": "f", "std": "f", "var": "f",
              "max": "f", "min": "f", "amax": "f", "amin": "f", "argmax": "f", "argmin": "f", "any": "b",
              "all": "b", "logsumexp": "f", "median": "f", "nanmedian": "f", "mode": "f", "aminmax": "f"}
SCANS = ["cumsum", "cumprod", "cummax", "cummin", "softmax", "log_softmax", "count_nonzero"]


def _input(kind):
    x = tracenn.tensor([[3.0, 1.0, 2.0, 5.0], [0.5, 4.0, 4.0, -1.0], [2.0, 2.0, 7.0, 0.0]])
    return x > 1.5 if kind == "b" else x


def _values(r):
    return [to_np(v) for v in r] if isinstance(r, tuple) else [to_np(r)]


def _same(a, b):
    assert len(_values(a)) == len(_values(b))
    for u, v in zip(_values(a), _values(b)):
        assert u.shape == v.shape and np.array_equal(u, v)


@pytest.mark.parametrize("name", sorted(REDUCTIONS) + SCANS)
def test_numpy_axis_keepdims_names(name):
    x = _input(REDUCTIONS.get(name, "f"))
    method, function = getattr(x, name), getattr(tracenn, name)
    _same(method(axis=1), method(dim=1))
    _same(function(x, axis=0), function(x, dim=0))
    if name in REDUCTIONS:
        _same(method(axis=1, keepdims=True), method(dim=1, keepdim=True))
        _same(function(x, dim=1, keepdims=True), function(x, dim=1, keepdim=True))
        assert _values(method(axis=1, keepdims=True))[0].shape == (3, 1)


def test_numpy_names_more_and_errors():
    x = _input("f")
    assert x.sum(axis=(0, 1)).item() == float(to_np(x).sum())
    assert x.mean(axis=None).item() == pytest.approx(float(to_np(x).mean()))
    np.testing.assert_allclose(to_np(x.std(axis=1, unbiased=False)), to_np(x).std(axis=1), rtol=1e-6)
    np.testing.assert_allclose(to_np(x.var(axis=1, correction=0, keepdims=True)),
                               to_np(x).var(axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(to_np(x.amax(axis=[0, 1])), to_np(x).max())
    assert x.max(axis=1).indices.tolist() == [3, 1, 2]
    with pytest.raises(TypeError, match="axis"):
        x.sum(1, axis=0)
    with pytest.raises(TypeError, match="keepdims"):
        x.sum(1, keepdim=True, keepdims=True)
    with pytest.raises(TypeError, match="dim"):
        tracenn.cumsum(x)
    with pytest.raises(TypeError, match="dim"):
        tracenn.logsumexp(x)


@pytest.mark.parametrize("name", sorted(REDUCTIONS) + SCANS)
def test_numpy_axis_keepdims_names_match_torch(name):
    torch = _torch()
    x = _input(REDUCTIONS.get(name, "f"))
    tx = torch.tensor(to_np(x))
    calls = [dict(axis=1), dict(axis=0)] + ([dict(axis=1, keepdims=True)] if name in REDUCTIONS else [])
    for kw in calls:
        got, want = getattr(x, name)(**kw), getattr(tx, name)(**kw)
        for u, v in zip(_values(got), _values(want)):
            np.testing.assert_allclose(u, v, rtol=1e-6, err_msg=f"{name}{kw}")
        got, want = getattr(tracenn, name)(x, **kw), getattr(torch, name)(tx, **kw)
        for u, v in zip(_values(got), _values(want)):
            np.testing.assert_allclose(u, v, rtol=1e-6, err_msg=f"{name}{kw}")


# ---- 7. the repr of torch.return_types ---------------------------------------------------------------

_M = [[1.0, 5.0, 2.0], [3.0, 2.0, 3.0]]
# name -> the call on a tensor of _M
RETURN_TYPES = {
    "max": lambda T, x: x.max(1), "min": lambda T, x: x.min(1), "sort": lambda T, x: x.sort(1),
    "topk": lambda T, x: x.topk(2), "median": lambda T, x: x.median(1), "nanmedian": lambda T, x: T.nanmedian(x, 1),
    "mode": lambda T, x: T.mode(x, 1), "kthvalue": lambda T, x: x.kthvalue(1, 1),
    "cummax": lambda T, x: x.cummax(1), "cummin": lambda T, x: x.cummin(1),
    "aminmax": lambda T, x: T.aminmax(x), "aminmax_dim": lambda T, x: T.aminmax(x, dim=1),
}


def test_return_types_repr():
    x = tracenn.tensor(_M)
    r = x.max(1)
    want = "tracenn.return_types.max(\nvalues=tensor([5., 3.]),\nindices=tensor([1, 0]))"
    assert repr(r) == str(r) == want
    assert repr([r]) == f"[{want}]"
    assert repr(tracenn.aminmax(x)) == "tracenn.return_types.aminmax(\nmin=tensor(1.),\nmax=tensor(5.))"
    assert repr(x.sort(1)) == ("tracenn.return_types.sort(\nvalues=tensor([[1., 2., 5.],\n        [2., 3., 3.]]),\n"
                               "indices=tensor([[0, 2, 1],\n        [1, 0, 2]]))")
    v, i = r  # still a named tuple: unpacking, fields, pickling
    assert v is r.values and i is r[1] and r._fields == ("values", "indices")
    back = pickle.loads(pickle.dumps(r))
    assert type(back) is type(r) and back.indices.tolist() == [1, 0]


@pytest.mark.parametrize("name", sorted(RETURN_TYPES))
def test_return_types_repr_matches_torch(name):
    torch = _torch()
    call = RETURN_TYPES[name]
    want = repr(call(torch, torch.tensor(_M)))
    assert repr(call(tracenn, tracenn.tensor(_M))) == want.replace("torch.return_types.", "tracenn.return_types.")


def test_flip_takes_dims_as_ints_a_sequence_or_a_keyword():
    a = tracenn.arange(6.0).reshape(2, 3)
    want = [[5.0, 4.0, 3.0], [2.0, 1.0, 0.0]]
    assert a.flip(0, 1).tolist() == want and a.flip((0, 1)).tolist() == want and a.flip(dims=[0, 1]).tolist() == want
    assert tracenn.flip(a, 1).tolist() == [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0]]
    with pytest.raises(TypeError, match="dims"):
        a.flip()
