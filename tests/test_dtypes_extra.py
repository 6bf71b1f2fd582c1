"""torch's limited-support dtypes: uint16/32/64 and the four float8 formats — creation, casts, printing,
finfo/iinfo, and torch's refusals (no promotion with other dtypes, no float8 arithmetic)."""
import math
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import dtypes as _dt

UNSIGNED = ["uint16", "uint32", "uint64"]
FLOAT8 = ["float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz"]


@pytest.mark.parametrize("name,size", [("uint16", 2), ("uint32", 4), ("uint64", 8)])
def test_unsigned_attributes_and_creation(name, size):
    d = getattr(tracenn, name)
    assert repr(d) == f"tracenn.{name}" and not d.is_floating_point and not d.is_signed and d.itemsize == size
    assert pickle.loads(pickle.dumps(d)) is d
    x = tracenn.tensor([1, 2, 300], dtype=d)
    assert x.dtype is d and x.element_size() == size and not x.is_floating_point()
    assert x.tolist() == [1, 2, 300] and x.type() == f"torch.UInt{size * 8}Tensor"
    assert repr(x) == f"tensor([  1,   2, 300], dtype=tracenn.{name})"
    assert tracenn.zeros(2, dtype=d).tolist() == [0, 0] and tracenn.full((2,), 7, dtype=d).tolist() == [7, 7]
    assert x.to(tracenn.float32).tolist() == [1.0, 2.0, 300.0]
    assert x.sum().dtype is tracenn.int64 and x.sum().item() == 303


@pytest.mark.parametrize("name", FLOAT8)
def test_float8_attributes_and_creation(name):
    d = getattr(tracenn, name)
    assert d.is_floating_point and d.is_signed and d.itemsize == 1 and not d.is_complex
    x = tracenn.tensor([1.0, -2.5, 0.5], dtype=d)
    assert x.element_size() == 1 and x.is_floating_point() and x.tolist() == [1.0, -2.5, 0.5]
    assert repr(x) == f"tensor([ 1.0000, -2.5000,  0.5000], dtype=tracenn.{name})"
    assert tracenn.zeros(2, dtype=d).tolist() == [0.0, 0.0] and tracenn.ones(1, dtype=d).tolist() == [1.0]
    assert x.type() == f"torch.{name.capitalize()}Tensor"
    assert (x == x).all() and tracenn.cat([x, x]).shape == (6,) and x[1:].tolist() == [-2.5, 0.5]


def test_float8_rounding_and_overflow():
    x = tracenn.tensor([300.1, 1000.0, math.inf, -math.inf, math.nan, -1000.0])
    # e4m3fn has no infinities: torch saturates overflow (and infinities) to +-448
    e4 = x.to(tracenn.float8_e4m3fn).float().tolist()
    assert e4[:4] == [288.0, 448.0, 448.0, -448.0] and math.isnan(e4[4]) and e4[5] == -448.0
    assert tracenn.tensor([1000, -7]).to(tracenn.float8_e4m3fn).float().tolist() == [448.0, -7.0]
    # e5m2 keeps infinities; the fnuz formats overflow to NaN
    assert x.to(tracenn.float8_e5m2).float().tolist()[:4] == [320.0, 1024.0, math.inf, -math.inf]
    fnuz = x.to(tracenn.float8_e4m3fnuz).float().tolist()
    assert math.isnan(fnuz[0]) and math.isnan(fnuz[2])


@pytest.mark.parametrize("name,wrapped", [("uint8", 255), ("uint16", 65535), ("uint32", 2 ** 32 - 1),
                                          ("uint64", 2 ** 64 - 1)])
def test_float_to_unsigned_wraps_as_torch(name, wrapped):
    # torch's CPU casts truncate to int64, then wrap
    x = tracenn.tensor([-1.0, -3.7, 255.9, 0.2])
    assert x.to(getattr(tracenn, name)).tolist() == [wrapped, wrapped - 2, 255, 0]


def test_finfo_values_and_repr():
    f = tracenn.finfo(tracenn.float8_e4m3fn)
    assert (f.bits, f.eps, f.max, f.min, f.tiny, f.resolution, f.dtype) == (8, 0.125, 448.0, -448.0, 0.015625,
                                                                               1.0, "float8_e4m3fn")
    assert tracenn.finfo(tracenn.float8_e5m2).max == 57344.0 and tracenn.finfo(tracenn.float8_e4m3fnuz).max == 240.0
    assert repr(tracenn.finfo(tracenn.float16)) == (
        "finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, smallest_normal=6.10352e-05, "
        "tiny=6.10352e-05, dtype=float16)")
    assert tracenn.finfo(tracenn.bfloat16).resolution == 0.01
    assert tracenn.finfo(tracenn.complex128) == tracenn.finfo(tracenn.float64)
    assert tracenn.finfo().dtype == "float32"
    with pytest.raises(TypeError, match="requires a floating point input type"):
        tracenn.finfo(tracenn.int64)


def test_iinfo_values_and_repr():
    assert tracenn.iinfo(tracenn.uint64).max == 2 ** 64 - 1 and tracenn.iinfo(tracenn.uint32).min == 0
    assert tracenn.iinfo(tracenn.uint16).bits == 16
    assert repr(tracenn.iinfo(tracenn.uint32)) == "iinfo(min=0, max=4.29497e+09, dtype=uint32)"
    assert repr(tracenn.iinfo(tracenn.int8)) == "iinfo(min=-128, max=127, dtype=int8)"
    with pytest.raises(TypeError, match="requires an integer input type"):
        tracenn.iinfo(tracenn.float32)
    with pytest.raises(TypeError, match="bool is not supported"):
        tracenn.iinfo(tracenn.bool)


def test_promotion_refusals():
    assert tracenn.promote_types(tracenn.uint16, tracenn.float32) is tracenn.float32
    assert tracenn.promote_types(tracenn.bfloat16, tracenn.uint64) is tracenn.bfloat16
    assert tracenn.promote_types(tracenn.uint32, tracenn.uint32) is tracenn.uint32
    with pytest.raises(RuntimeError, match="uint16, uint32, uint64 types is not supported.*UInt16 and Char"):
        tracenn.promote_types(tracenn.uint16, tracenn.int8)
    with pytest.raises(RuntimeError, match="uint64 types is not supported.*Bool and UInt64"):
        tracenn.promote_types(tracenn.bool, tracenn.uint64)
    with pytest.raises(RuntimeError, match="Float8 Types is not supported.*Float and Float8_e5m2"):
        tracenn.promote_types(tracenn.float32, tracenn.float8_e5m2)
    x = tracenn.tensor([1, 2], dtype=tracenn.uint16)
    assert (x * 2).dtype is tracenn.uint16 and (x + tracenn.ones(2)).dtype is tracenn.float32
    with pytest.raises(RuntimeError, match="UInt16 and Long"):
        x + tracenn.tensor([1, 1])


def test_float8_arithmetic_is_refused_as_torch():
    x = tracenn.tensor([1.0, 2.0], dtype=tracenn.float8_e4m3fn)
    assert (x == 1.0).tolist() == [True, False] and (x != x).tolist() == [False, False]
    for op in (lambda: x + x, lambda: x * 2, lambda: x / x, lambda: x < x):
        with pytest.raises(RuntimeError, match="not implemented for 'Float8_e4m3fn'.*x.float()"):
            op()
    assert (x.float() * 2).tolist() == [2.0, 4.0]


def test_new_dtypes_compile():
    def f(x):
        return x.to(tracenn.float8_e4m3fn).float(), (x * 3).to(tracenn.uint16)
    x = tracenn.tensor([1000.0, -1.0, 2.3])
    for got, want in zip(tracenn.compile(f)(x), f(x)):
        assert got.dtype is want.dtype and got.tolist() == want.tolist()
    assert f(x)[0].tolist() == [448.0, -1.0, 2.25] and f(x)[1].tolist() == [3000, 65533, 6]


# ---- torch as the oracle ----

def test_promotion_table_matches_torch():
    torch = pytest.importorskip("torch")
    for a in _dt.ALL:
        for b in _dt.ALL:
            try:
                want = torch.promote_types(getattr(torch, a.name), getattr(torch, b.name))
            except RuntimeError as e:
                with pytest.raises(RuntimeError, match=str(e)[:60]):
                    _dt.promote_types(a, b)
                continue
            assert _dt.promote_types(a, b).name == str(want).replace("torch.", ""), (a, b)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64", "complex64"] + FLOAT8)
def test_finfo_matches_torch(name):
    torch = pytest.importorskip("torch")
    assert repr(tracenn.finfo(getattr(tracenn, name))) == repr(torch.finfo(getattr(torch, name)))


@pytest.mark.parametrize("name", ["uint8", "int8", "int16", "int32", "int64"] + UNSIGNED)
def test_iinfo_matches_torch(name):
    torch = pytest.importorskip("torch")
    assert repr(tracenn.iinfo(getattr(tracenn, name))) == repr(torch.iinfo(getattr(torch, name)))


@pytest.mark.parametrize("dst", FLOAT8)
@pytest.mark.parametrize("src", ["float32", "float64", "float16", "bfloat16"])
def test_float8_casts_match_torch(src, dst):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(5000) * 10.0 ** rng.integers(-10, 6, 5000)).astype(np.float32)
    x = np.concatenate([x, np.array([np.inf, -np.inf, np.nan, 448, 449, 464, 465, 57344, 61440, 1e6], np.float32)])
    want = torch.tensor(x).to(getattr(torch, src)).to(getattr(torch, dst)).float().numpy()
    got = tracenn.tensor(x).to(getattr(tracenn, src)).to(getattr(tracenn, dst)).float().numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", UNSIGNED + FLOAT8)
def test_repr_matches_torch(name):
    torch = pytest.importorskip("torch")
    vals = [[1.0, -2.5, 300.1], [0.0, 7.0, 0.125]] if name.startswith("float") else [[1, 2, 300], [0, 7, 65535]]
    want = repr(torch.tensor(vals, dtype=getattr(torch, name))).replace("torch.", "tracenn.")
    # (whitespace aside: "tracenn." is two characters longer, which can move the dtype to its own line)
    assert repr(tracenn.tensor(vals, dtype=getattr(tracenn, name))).split() == want.split()
