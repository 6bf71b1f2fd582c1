"""Tests for tracenn._tensor_str: torch-identical tensor repr text.

Golden strings were produced once with torch 2.13 and hard-coded, so these run
without torch; the parity test re-checks many arrays live when torch exists.
"""

import hashlib
import importlib.util
import itertools
import pathlib
import sys

import numpy as np
import pytest

try:
    from ml_dtypes import bfloat16
except ImportError:  # pragma: no cover - ml_dtypes ships with jax
    bfloat16 = None


def _load():
    # The package __init__ may be mid-rewrite; fall back to loading the file itself.
    try:
        from tracenn import _tensor_str as mod
        return mod
    except Exception:
        path = pathlib.Path(__file__).resolve().parents[1] / "tracenn" / "_tensor_str.py"
        spec = importlib.util.spec_from_file_location("_tracenn_tensor_str", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # dataclasses needs the module registered
        spec.loader.exec_module(mod)
        return mod


ts = _load()
format_tensor = ts.format_tensor
nan, inf = np.nan, np.inf


@pytest.fixture(autouse=True)
def _default_printoptions():
    ts.set_printoptions(profile="default")
    yield
    ts.set_printoptions(profile="default")


def _fmt(arr, kw, opts):
    kw = dict(kw)
    kw.setdefault("dtype_name", "tracenn." + str(arr.dtype))
    kw.setdefault("show_dtype", False)
    ts.set_printoptions(**opts)
    return format_tensor(arr, **kw)


# (id, array factory, format_tensor kwargs, print options, torch 2.13's text)
GOLDEN = [
    ('scalar_float', lambda: np.array(3.5, np.float32),
     {}, {},
     'tensor(3.5000)'),
    ('scalar_int', lambda: np.array(7),
     {}, {},
     'tensor(7)'),
    ('scalar_bool', lambda: np.array(True),
     {}, {},
     'tensor(True)'),
    ('scalar_neg_sci', lambda: np.array(-1.5e-7, np.float32),
     {}, {},
     'tensor(-1.5000e-07)'),
    ('vec_float', lambda: np.array([1.5, -2.25, 3.0], np.float32),
     {}, {},
     'tensor([ 1.5000, -2.2500,  3.0000])'),
    ('vec_intvalued', lambda: np.array([1.0, 2.0], np.float32),
     {}, {},
     'tensor([1., 2.])'),
    ('vec_intvalued_neg', lambda: np.array([-1.0, 20.0, 300.0], np.float32),
     {}, {},
     'tensor([ -1.,  20., 300.])'),
    ('mat_float', lambda: (np.arange(6, dtype=np.float32).reshape(2, 3) / 3),
     {}, {},
     'tensor([[0.0000, 0.3333, 0.6667],\n        [1.0000, 1.3333, 1.6667]])'),
    ('cube_float', lambda: (np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3),
     {}, {},
     'tensor([[[-3.0000, -2.5000, -2.0000, -1.5000],\n         [-1.0000, -0.5000,  0.0000,  0.5000],\n         [ 1.0000,  1.5000,  2.0000,  2.5000]],\n\n        [[ 3.0000,  3.5000,  4.0000,  4.5000],\n         [ 5.0000,  5.5000,  6.0000,  6.5000],\n         [ 7.0000,  7.5000,  8.0000,  8.5000]]])'),
    ('dim4', lambda: np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2),
     {}, {},
     'tensor([[[[0., 1.],\n          [2., 3.]]],\n\n\n        [[[4., 5.],\n          [6., 7.]]]])'),
    ('sci_small', lambda: np.array([1e-8, 1.0], np.float32),
     {}, {},
     'tensor([1.0000e-08, 1.0000e+00])'),
    ('sci_ratio', lambda: np.array([0.5, 1234.5], np.float32),
     {}, {},
     'tensor([5.0000e-01, 1.2345e+03])'),
    ('large', lambda: np.array([1e10, 2e10], np.float32),
     {}, {},
     'tensor([1.0000e+10, 2.0000e+10])'),
    ('large_fractional', lambda: np.array([123456789.5, 0.5]),
     {'dtype_name': 'tracenn.float64', 'show_dtype': True}, {},
     'tensor([1.2346e+08, 5.0000e-01], dtype=tracenn.float64)'),
    ('nonfinite', lambda: np.array([nan, inf, -inf, 1.5], np.float32),
     {}, {},
     'tensor([   nan,    inf,   -inf, 1.5000])'),
    ('nonfinite_intmode', lambda: np.array([nan, 1.0, -inf], np.float32),
     {}, {},
     'tensor([nan, 1., -inf])'),
    ('all_nan', lambda: np.array([nan, nan], np.float32),
     {}, {},
     'tensor([nan, nan])'),
    ('zeros_negzero', lambda: np.array([0.0, -0.0], np.float32),
     {}, {},
     'tensor([0., -0.])'),
    ('negatives', lambda: np.array([-1.5, 2.25, -0.0], np.float32),
     {}, {},
     'tensor([-1.5000,  2.2500, -0.0000])'),
    ('int32_dtype', lambda: np.array([1, -2, 300], np.int32),
     {'dtype_name': 'tracenn.int32', 'show_dtype': True}, {},
     'tensor([  1,  -2, 300], dtype=tracenn.int32)'),
    ('int64_hidden', lambda: np.array([[1, -2], [30, 4]]),
     {}, {},
     'tensor([[ 1, -2],\n        [30,  4]])'),
    ('uint8_dtype', lambda: np.array([0, 255], np.uint8),
     {'dtype_name': 'tracenn.uint8', 'show_dtype': True}, {},
     'tensor([  0, 255], dtype=tracenn.uint8)'),
    ('bool_vec', lambda: np.array([True, False, True]),
     {}, {},
     'tensor([ True, False,  True])'),
    ('float64_dtype', lambda: np.array([0.1, 0.2]),
     {'dtype_name': 'tracenn.float64', 'show_dtype': True}, {},
     'tensor([0.1000, 0.2000], dtype=tracenn.float64)'),
    ('float16_dtype', lambda: np.array([0.1, 65504.0], np.float16),
     {'dtype_name': 'tracenn.float16', 'show_dtype': True}, {},
     'tensor([9.9976e-02, 6.5504e+04], dtype=tracenn.float16)'),
    ('bfloat16_dtype', lambda: np.array([1.5, -3.0, 100.25], np.float32).astype(bfloat16),
     {'dtype_name': 'tracenn.bfloat16', 'show_dtype': True}, {},
     'tensor([  1.5000,  -3.0000, 100.0000], dtype=tracenn.bfloat16)'),
    ('complex64', lambda: np.array([1 + 2j, -3.5 - 0.5j], np.complex64),
     {}, {},
     'tensor([ 1.0000+2.0000j, -3.5000-0.5000j])'),
    ('complex128_scalar', lambda: np.array(1.5 - 2j),
     {'dtype_name': 'tracenn.complex128', 'show_dtype': True}, {},
     'tensor(1.5000-2.j, dtype=tracenn.complex128)'),
    ('complex_sci', lambda: np.array([[1e-6 + 1j, 2 - 3e5j]], np.complex64),
     {}, {},
     'tensor([[1.0000e-06+1.0000e+00j, 2.0000e+00-3.0000e+05j]])'),
    ('arange2000', lambda: np.arange(2000),
     {}, {},
     'tensor([   0,    1,    2,  ..., 1997, 1998, 1999])'),
    ('mat100', lambda: (np.arange(10000, dtype=np.float32).reshape(100, 100) / 7),
     {}, {},
     'tensor([[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 1.3857e+01, 1.4000e+01,\n         1.4143e+01],\n        [1.4286e+01, 1.4429e+01, 1.4571e+01,  ..., 2.8143e+01, 2.8286e+01,\n         2.8429e+01],\n        [2.8571e+01, 2.8714e+01, 2.8857e+01,  ..., 4.2429e+01, 4.2571e+01,\n         4.2714e+01],\n        ...,\n        [1.3857e+03, 1.3859e+03, 1.3860e+03,  ..., 1.3996e+03, 1.3997e+03,\n         1.3999e+03],\n        [1.4000e+03, 1.4001e+03, 1.4003e+03,  ..., 1.4139e+03, 1.4140e+03,\n         1.4141e+03],\n        [1.4143e+03, 1.4144e+03, 1.4146e+03,  ..., 1.4281e+03, 1.4283e+03,\n         1.4284e+03]])'),
    ('cube_summarised', lambda: np.arange(1400, dtype=np.int32).reshape(7, 2, 100),
     {'dtype_name': 'tracenn.int32', 'show_dtype': True}, {},
     'tensor([[[   0,    1,    2,  ...,   97,   98,   99],\n         [ 100,  101,  102,  ...,  197,  198,  199]],\n\n        [[ 200,  201,  202,  ...,  297,  298,  299],\n         [ 300,  301,  302,  ...,  397,  398,  399]],\n\n        [[ 400,  401,  402,  ...,  497,  498,  499],\n         [ 500,  501,  502,  ...,  597,  598,  599]],\n\n        ...,\n\n        [[ 800,  801,  802,  ...,  897,  898,  899],\n         [ 900,  901,  902,  ...,  997,  998,  999]],\n\n        [[1000, 1001, 1002,  ..., 1097, 1098, 1099],\n         [1100, 1101, 1102,  ..., 1197, 1198, 1199]],\n\n        [[1200, 1201, 1202,  ..., 1297, 1298, 1299],\n         [1300, 1301, 1302,  ..., 1397, 1398, 1399]]], dtype=tracenn.int32)'),
    ('long_row', lambda: np.linspace(0, 1, 30, dtype=np.float32),
     {}, {},
     'tensor([0.0000, 0.0345, 0.0690, 0.1034, 0.1379, 0.1724, 0.2069, 0.2414, 0.2759,\n        0.3103, 0.3448, 0.3793, 0.4138, 0.4483, 0.4828, 0.5172, 0.5517, 0.5862,\n        0.6207, 0.6552, 0.6897, 0.7241, 0.7586, 0.7931, 0.8276, 0.8621, 0.8966,\n        0.9310, 0.9655, 1.0000])'),
    ('long_row_2d', lambda: np.linspace(-1, 1, 40, dtype=np.float32).reshape(2, 20),
     {}, {},
     'tensor([[-1.0000, -0.9487, -0.8974, -0.8462, -0.7949, -0.7436, -0.6923, -0.6410,\n         -0.5897, -0.5385, -0.4872, -0.4359, -0.3846, -0.3333, -0.2821, -0.2308,\n         -0.1795, -0.1282, -0.0769, -0.0256],\n        [ 0.0256,  0.0769,  0.1282,  0.1795,  0.2308,  0.2821,  0.3333,  0.3846,\n          0.4359,  0.4872,  0.5385,  0.5897,  0.6410,  0.6923,  0.7436,  0.7949,\n          0.8462,  0.8974,  0.9487,  1.0000]])'),
    ('empty_1d', lambda: np.zeros((0,), np.float32),
     {}, {},
     'tensor([])'),
    ('empty_2d', lambda: np.zeros((0, 3), np.float32),
     {}, {},
     'tensor([], size=(0, 3))'),
    ('empty_int64', lambda: np.zeros((0,), np.int64),
     {'dtype_name': 'tracenn.int64', 'show_dtype': False}, {},
     'tensor([], dtype=tracenn.int64)'),
    ('empty_bool_2d', lambda: np.zeros((2, 0), bool),
     {'dtype_name': 'tracenn.bool', 'show_dtype': False}, {},
     'tensor([], size=(2, 0), dtype=tracenn.bool)'),
    ('empty_float64', lambda: np.zeros((0, 3), np.float64),
     {'dtype_name': 'tracenn.float64', 'show_dtype': True}, {},
     'tensor([], size=(0, 3), dtype=tracenn.float64)'),
    ('requires_grad', lambda: np.array([1.0, 2.0], np.float32),
     {'requires_grad': True}, {},
     'tensor([1., 2.], requires_grad=True)'),
    ('grad_fn', lambda: np.array([1.0, 2.0], np.float32),
     {'requires_grad': True, 'grad_fn_name': 'AddBackward0'}, {},
     'tensor([1., 2.], grad_fn=<AddBackward0>)'),
    ('grad_fn_dtype', lambda: np.array([[0.5, 1.0]]),
     {'dtype_name': 'tracenn.float64', 'show_dtype': True, 'grad_fn_name': 'MulBackward0'}, {},
     'tensor([[0.5000, 1.0000]], dtype=tracenn.float64, grad_fn=<MulBackward0>)'),
    ('device', lambda: np.array([1.0, 2.0], np.float32),
     {'device': 'cuda:0'}, {},
     "tensor([1., 2.], device='cuda:0')"),
    ('device_dtype_grad', lambda: np.array([1, 2], np.int32),
     {'device': 'cuda:0', 'dtype_name': 'tracenn.int32', 'show_dtype': True, 'requires_grad': True}, {},
     "tensor([1, 2], device='cuda:0', dtype=tracenn.int32, requires_grad=True)"),
    ('suffix_wraps', lambda: np.linspace(0, 1, 11),
     {'device': 'cuda:1', 'dtype_name': 'tracenn.float64', 'show_dtype': True, 'requires_grad': True}, {},
     "tensor([0.0000, 0.1000, 0.2000, 0.3000, 0.4000, 0.5000, 0.6000, 0.7000, 0.8000,\n        0.9000, 1.0000], device='cuda:1', dtype=tracenn.float64,\n       requires_grad=True)"),
    ('suffix_after_multiline', lambda: np.linspace(0, 1, 30, dtype=np.float32),
     {'device': 'cuda:0', 'requires_grad': True}, {},
     "tensor([0.0000, 0.0345, 0.0690, 0.1034, 0.1379, 0.1724, 0.2069, 0.2414, 0.2759,\n        0.3103, 0.3448, 0.3793, 0.4138, 0.4483, 0.4828, 0.5172, 0.5517, 0.5862,\n        0.6207, 0.6552, 0.6897, 0.7241, 0.7586, 0.7931, 0.8276, 0.8621, 0.8966,\n        0.9310, 0.9655, 1.0000], device='cuda:0', requires_grad=True)"),
    ('prefix', lambda: np.array([1.0, 2.0], np.float32),
     {'prefix': 'MyT('}, {},
     'MyT([1., 2.])'),
    ('precision2', lambda: np.array([1.12345, -2.5, 3.14159], np.float32),
     {}, {'precision': 2},
     'tensor([ 1.12, -2.50,  3.14])'),
    ('precision0', lambda: np.array([1.25, 1e-5], np.float32),
     {}, {'precision': 0},
     'tensor([1e+00, 1e-05])'),
    ('sci_off', lambda: np.array([1e-8, 1.0], np.float32),
     {}, {'sci_mode': False},
     'tensor([0.0000, 1.0000])'),
    ('sci_on', lambda: np.array([1.0, 2.5], np.float32),
     {}, {'sci_mode': True},
     'tensor([1.0000e+00, 2.5000e+00])'),
    ('short_profile', lambda: (np.arange(30, dtype=np.float32) / 3),
     {}, {'profile': 'short', 'threshold': 10},
     'tensor([0.00, 0.33,  ..., 9.33, 9.67])'),
    ('threshold_edgeitems', lambda: np.arange(10),
     {}, {'threshold': 5},
     'tensor([0, 1, 2,  ..., 7, 8, 9])'),
    ('edgeitems0', lambda: np.arange(20).reshape(4, 5),
     {}, {'threshold': 5, 'edgeitems': 0},
     'tensor([...], size=(4, 5))'),
    ('edgeitems0_vec', lambda: np.arange(10),
     {}, {'threshold': 5, 'edgeitems': 0},
     'tensor([...], size=(10,))'),
    ('linewidth', lambda: np.arange(12, dtype=np.float32),
     {}, {'linewidth': 30},
     'tensor([ 0.,  1.,  2.,  3.,\n         4.,  5.,  6.,  7.,\n         8.,  9., 10., 11.])'),
]

@pytest.mark.parametrize("make, kw, opts, expected",
                         [c[1:] for c in GOLDEN], ids=[c[0] for c in GOLDEN])
def test_golden(make, kw, opts, expected):
    if "bfloat16" in kw.get("dtype_name", "") and bfloat16 is None:
        pytest.skip("ml_dtypes not installed")
    assert _fmt(make(), kw, opts) == expected


def test_full_profile_prints_everything():
    ts.set_printoptions(profile="full")
    s = format_tensor(np.arange(1001), dtype_name="tracenn.int64", show_dtype=False)
    assert "..." not in s and s.count("\n") == 83
    assert s.startswith("tensor([   0,    1,    2,    3,")
    assert s.endswith(",\n         996,  997,  998,  999, 1000])")
    # whole 6678-char text as printed by torch 2.13
    assert hashlib.sha256(s.encode()).hexdigest() == (
        "97aa1ba8ce194248292cacb7690665f3c9924451fd7c6f2c3ba9864e5c52b325")


def test_printoptions_api():
    assert ts.get_printoptions() == dict(precision=4, threshold=1000, edgeitems=3,
                                         linewidth=80, sci_mode=None)
    ts.set_printoptions(profile="short", sci_mode=True)
    assert ts.get_printoptions() == dict(precision=2, threshold=1000, edgeitems=2,
                                         linewidth=80, sci_mode=True)
    ts.set_printoptions(linewidth=100)  # like torch, omitting sci_mode resets it
    assert ts.get_printoptions()["sci_mode"] is None
    assert ts.get_printoptions()["linewidth"] == 100
    ts.set_printoptions(profile="full")
    assert ts.get_printoptions()["threshold"] == inf
    before = ts.get_printoptions()
    with ts.printoptions(precision=1):
        assert format_tensor(np.array([1.25], np.float32), dtype_name="tracenn.float32",
                             show_dtype=False) == "tensor([1.2])"
    assert ts.get_printoptions() == before


# ---------------------------------------------------------------- torch parity

def _parity_cases():
    rng = np.random.default_rng(1234)
    dtypes = ["float32", "float64", "float16", "bfloat16", "int8", "int32", "int64",
              "uint8", "bool", "complex64", "complex128"]
    shapes = [(), (1,), (7,), (33,), (3, 4), (2, 3, 5), (2, 1, 2, 3), (0,), (3, 0),
              (1500,), (40, 30), (4, 300, 2)]
    scales = [1e-6, 1.0, 1e5, 1e9]
    cases = []
    for dt, shape, scale in itertools.product(dtypes, shapes, scales):
        x = rng.standard_normal(shape) * scale
        if scale == 1.0 and x.size:
            x.flat[::3] = np.round(x.flat[::3])  # mix of integral and fractional
        if dt == "bool":
            a = x > 0
        elif dt.startswith(("int", "uint")):
            info = np.iinfo(dt)
            a = np.clip(np.round(x * 10), info.min, info.max).astype(dt)
        elif dt.startswith("complex"):
            a = (x + 1j * rng.standard_normal(shape) * scale).astype(dt)
        elif dt == "bfloat16":
            if bfloat16 is None:
                continue
            a = x.astype(np.float32).astype(bfloat16)
        else:
            with np.errstate(over="ignore"):
                a = x.astype(dt)
        cases.append((f"{dt}-{shape}-{scale:g}", a, {}))
    specials = {
        "nonfinite": np.array([1.0, nan, inf, -inf, -0.0, 2.5], np.float32),
        "nonfinite_int": np.array([[1.0, nan], [-inf, 4.0]]),
        "zeros": np.zeros((2, 3), np.float32),
        "negzero": np.array([-0.0, 0.0, -0.0]),
        "nan_only": np.full((3,), nan, np.float32),
        "subnormal": np.array([5e-324, 1.0]),
        "huge_f64": np.array([1e300, -1e-300]),
        "big_int": np.array([2**62, -5, 0]),
        "int8_range": np.array([-128, 127], np.int8),
        "complex_nonfinite": np.array([complex(nan, 1), complex(1, -inf), -0.0j]),
        "f16_ints": np.arange(-2050, 2050, 37).astype(np.float16),
    }
    cases += [(k, v, {}) for k, v in specials.items()]
    # print options, applied to both sides
    options = [dict(precision=2), dict(precision=0), dict(sci_mode=False),
               dict(sci_mode=True), dict(profile="short"), dict(linewidth=30),
               dict(linewidth=200), dict(threshold=5, edgeitems=1),
               dict(threshold=5, edgeitems=0), dict(threshold=0),
               dict(threshold=10, edgeitems=50)]
    picks = [c for c in cases if c[0].split("-")[0] in ("float32", "int32", "complex64",
                                                          "nonfinite", "big_int")]
    for opts, (cid, a, _) in itertools.product(options, picks[::5]):
        cases.append((f"{cid}-{opts}", a, opts))
    return cases


PARITY = _parity_cases()
# autograd suffixes: only float/complex tensors can require grad in torch
PARITY_CASES = [(cid, a, o, None) for cid, a, o in PARITY] + [
    (f"{cid}-{ag}", a, o, ag) for cid, a, o in PARITY for ag in ("leaf", "nonleaf")
    if a.dtype.kind not in "biu" and a.ndim <= 2 and not o]


@pytest.mark.parametrize("arr, opts, autograd", [c[1:] for c in PARITY_CASES],
                         ids=[c[0] for c in PARITY_CASES])
def test_parity_with_torch(arr, opts, autograd):
    torch = pytest.importorskip("torch")
    if arr.dtype == bfloat16:
        t = torch.tensor(arr.astype(np.float32)).bfloat16()
    else:
        t = torch.tensor(arr)
    grad_fn = None
    if autograd is not None:
        t = t.requires_grad_(True)
        if autograd == "nonleaf":
            t = t.clone()  # same values, now with a grad_fn
            grad_fn = type(t.grad_fn).__name__
    hidden = {torch.float32, torch.complex64, torch.int64, torch.bool}
    # torch's own dtype names: wrapping of suffixes depends on their length,
    # so renaming torch.->tracenn. afterwards would shift line breaks.
    torch.set_printoptions(**opts)
    try:
        expected = repr(t)
    finally:
        torch.set_printoptions(profile="default")
    ts.set_printoptions(**opts)
    got = format_tensor(arr, dtype_name=str(t.dtype), show_dtype=t.dtype not in hidden,
                        requires_grad=t.requires_grad, grad_fn_name=grad_fn)
    assert got == expected
