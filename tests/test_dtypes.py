"""dtypes and torch's type promotion (known values; the torch table when installed)."""
import itertools

import numpy as np
import pytest

import tracenn
from tracenn import dtypes as D

ALL = [D.bool, D.uint8, D.int8, D.int16, D.int32, D.int64, D.float16, D.bfloat16, D.float32, D.float64]


def test_dtype_repr_and_aliases():
    assert repr(tracenn.float32) == "tracenn.float32"
    assert tracenn.float is tracenn.float32 and tracenn.double is tracenn.float64
    assert tracenn.long is tracenn.int64 and tracenn.half is tracenn.float16
    assert tracenn.float32.is_floating_point and not tracenn.int64.is_floating_point
    assert tracenn.bfloat16.is_floating_point and tracenn.bfloat16.itemsize == 2


@pytest.mark.parametrize("a,b,expected", [
    (D.uint8, D.int8, D.int16), (D.bfloat16, D.float16, D.float32), (D.int64, D.float16, D.float16),
    (D.bool, D.int32, D.int32), (D.int32, D.int64, D.int64), (D.float32, D.float64, D.float64),
])
def test_promote_types_known(a, b, expected):
    assert tracenn.promote_types(a, b) is expected


@pytest.mark.parametrize("lhs,rhs,expected", [
    (tracenn.tensor([1, 2]), 2.5, D.float32),                                # int tensor + float scalar
    (tracenn.tensor([1, 2], dtype=tracenn.int32), 7, D.int32),               # int scalar keeps int32
    (tracenn.tensor([1.0], dtype=tracenn.float16), tracenn.tensor(1.0), D.float16),  # 0-d float32
    (tracenn.tensor([1], dtype=tracenn.uint8), tracenn.tensor(1.0), D.float32),      # category lift
    (tracenn.tensor([True]), 1, D.int64),
    (tracenn.tensor(1, dtype=tracenn.int32), tracenn.tensor(1.0, dtype=tracenn.float64), D.float64),
])
def test_result_type_known(lhs, rhs, expected):
    assert tracenn.result_type(lhs, rhs) is expected
    assert (lhs + rhs).dtype is expected


def test_promotion_matches_torch_table(torch):
    tmap = {d: getattr(torch, d.name) for d in ALL}
    for a, b in itertools.product(ALL, ALL):
        assert tracenn.promote_types(a, b).name == str(torch.promote_types(tmap[a], tmap[b])).split(".")[1], (a, b)


@pytest.mark.parametrize("dim_a,dim_b", [(True, True), (True, False), (False, True)])
def test_result_type_tensors_matches_torch(torch, dim_a, dim_b):
    for a, b in itertools.product(ALL, ALL):
        shape_a, shape_b = ((2,) if dim_a else ()), ((2,) if dim_b else ())
        ta = tracenn.zeros(shape_a, dtype=a)
        tb = tracenn.zeros(shape_b, dtype=b)
        xa = torch.zeros(shape_a, dtype=getattr(torch, a.name))
        xb = torch.zeros(shape_b, dtype=getattr(torch, b.name))
        assert tracenn.result_type(ta, tb).name == str(torch.result_type(xa, xb)).split(".")[1], (a, b)


@pytest.mark.parametrize("scalar", [True, 3, 2.5])
def test_result_type_scalars_matches_torch(torch, scalar):
    for a in ALL:
        got = tracenn.result_type(tracenn.zeros(2, dtype=a), scalar)
        want = torch.result_type(torch.zeros(2, dtype=getattr(torch, a.name)), scalar)
        assert got.name == str(want).split(".")[1], (a, scalar)


def test_default_dtype():
    assert tracenn.get_default_dtype() is tracenn.float32
    tracenn.set_default_dtype(tracenn.float64)
    assert tracenn.tensor([1.5]).dtype is tracenn.float64
    assert tracenn.zeros(2).dtype is tracenn.float64
    assert (tracenn.tensor([1]) / 2).dtype is tracenn.float64
    tracenn.set_default_dtype(tracenn.float32)
    with pytest.raises(TypeError, match="only floating-point types"):
        tracenn.set_default_dtype(tracenn.int64)


def test_float64_is_real():
    x = tracenn.tensor([1.0, 1e-12], dtype=tracenn.float64)
    assert x.dtype is tracenn.float64
    assert np.asarray(x._value).dtype == np.float64
    assert (x + 1 - 1)[1].item() != 0.0  # float32 would round 1 + 1e-12 to 1


def test_as_dtype_accepts_python_and_numpy_types():
    assert D.as_dtype(float) is D.float32
    assert D.as_dtype(int) is D.int64
    assert D.as_dtype(np.float64) is D.float64
    assert D.as_dtype("torch.LongTensor") is D.int64
    with pytest.raises(ValueError, match="invalid type"):
        D.as_dtype("torch.NopeTensor")


def test_finfo_iinfo():
    assert tracenn.finfo(tracenn.float32).eps == pytest.approx(1.1920929e-07)
    assert tracenn.iinfo(tracenn.int8).max == 127
    assert tracenn.can_cast(tracenn.int32, tracenn.float32) and not tracenn.can_cast(tracenn.float32, tracenn.int32)
