"""Tensor creation: dtype inference, factories, *_like, arange/linspace/eye, and their errors."""
import numpy as np
import pytest

import tracenn
from helpers import assert_close


@pytest.mark.parametrize("data,dtype", [
    ([1, 2, 3], tracenn.int64), ([1.0, 2], tracenn.float32), ([True, False], tracenn.bool),
    (3, tracenn.int64), (3.5, tracenn.float32), ([[1, 2], [3, 4.5]], tracenn.float32),
    (np.array([1, 2], dtype=np.int32), tracenn.int32), (np.array([1.0]), tracenn.float64),
    ([1 + 2j], tracenn.complex64), ([], tracenn.float32),
])
def test_tensor_dtype_inference(data, dtype):
    assert tracenn.tensor(data).dtype is dtype


def test_tensor_from_tensors_and_explicit_dtype():
    t = tracenn.tensor([tracenn.tensor(1.0), tracenn.tensor(2.0)])
    assert t.tolist() == [1.0, 2.0]
    assert tracenn.tensor([1, 2], dtype=tracenn.float64).dtype is tracenn.float64
    assert tracenn.tensor([1.7, -1.7], dtype=tracenn.int32).tolist() == [1, -1]  # truncates like torch


def test_ragged_input_error():
    with pytest.raises(ValueError, match="sequence of numbers of one shape"):
        tracenn.tensor([[1, 2], [3]])


def test_factories_shapes_and_dtypes():
    assert tracenn.zeros(2, 3).shape == (2, 3)
    assert tracenn.zeros((2, 3)).shape == (2, 3)
    assert tracenn.ones([4]).dtype is tracenn.float32
    assert tracenn.full((2,), 7).dtype is tracenn.int64
    assert tracenn.full((2,), 7.0).dtype is tracenn.float32
    assert tracenn.full((2,), True).dtype is tracenn.bool
    assert tracenn.empty(3).tolist() == [0.0, 0.0, 0.0]
    assert tracenn.zeros(2, dtype=tracenn.int8).dtype is tracenn.int8
    z = tracenn.zeros(2, requires_grad=True)
    assert z.requires_grad and z.is_leaf


def test_like_functions_follow_input():
    x = tracenn.ones(2, 3, dtype=tracenn.float64)
    for f in (tracenn.zeros_like, tracenn.ones_like, tracenn.empty_like, tracenn.rand_like, tracenn.randn_like):
        y = f(x)
        assert y.shape == (2, 3) and y.dtype is tracenn.float64
    assert tracenn.full_like(x, 3).tolist() == [[3.0] * 3] * 2
    assert tracenn.zeros_like(x, dtype=tracenn.int32).dtype is tracenn.int32


def test_negative_dimension_error():
    with pytest.raises(RuntimeError, match="negative dimension -1"):
        tracenn.zeros(2, -1)


def test_arange_linspace_eye():
    assert tracenn.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tracenn.arange(5).dtype is tracenn.int64
    assert tracenn.arange(1, 2, 0.25).tolist() == [1.0, 1.25, 1.5, 1.75]
    assert tracenn.arange(0, 1, 0.1).shape == (10,)
    assert tracenn.arange(5, dtype=tracenn.float32).dtype is tracenn.float32
    assert_close(tracenn.linspace(0, 1, 5), np.linspace(0, 1, 5, dtype=np.float32))
    assert tracenn.eye(2, 3).tolist() == [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(RuntimeError, match="step must be nonzero"):
        tracenn.arange(0, 1, 0)


def test_arange_matches_torch(torch):
    for args in [(10,), (1, 7, 2), (0, 1, 0.1), (-3.5, 2.25, 0.75), (10, 0, -3)]:
        assert_close(tracenn.arange(*args), torch.arange(*args))


def test_from_numpy_and_as_tensor():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tracenn.from_numpy(a)
    assert t.dtype is tracenn.float32 and t.shape == (2, 3)
    x = tracenn.tensor([1.0])
    assert tracenn.as_tensor(x) is x
    assert tracenn.as_tensor([1, 2]).dtype is tracenn.int64
    with pytest.raises(TypeError, match="expected np.ndarray"):
        tracenn.from_numpy([1, 2])


def test_legacy_tensor_constructor():
    assert tracenn.Tensor([1, 2]).dtype is tracenn.float32
    assert tracenn.Tensor(2, 3).shape == (2, 3)
    assert tracenn.Tensor(tracenn.Size([4])).shape == (4,)  # a Size is sizes, not data
    assert tracenn.Tensor().shape == (0,)


LEGACY_NAMES = ["FloatTensor", "DoubleTensor", "HalfTensor", "BFloat16Tensor", "ByteTensor", "CharTensor",
                "ShortTensor", "IntTensor", "LongTensor", "BoolTensor"]


@pytest.fixture(params=["tracenn", "torch"])
def lib(request):
    return tracenn if request.param == "tracenn" else request.getfixturevalue("torch")


def test_legacy_typed_constructors(lib):
    """The older tutorials' ``torch.LongTensor(...)``: data (lists, numpy arrays), sizes, and types."""
    assert lib.LongTensor(np.array([[1, 2], [3, 4]])).tolist() == [[1, 2], [3, 4]]
    assert lib.LongTensor([1.5]).tolist() == [1]
    assert lib.FloatTensor([1, 2]).dtype == lib.float32
    assert tuple(lib.FloatTensor(2, 3).shape) == (2, 3) and tuple(lib.IntTensor(lib.Size([3])).shape) == (3,)
    assert lib.FloatTensor().shape == (0,) and lib.DoubleTensor([]).dtype == lib.float64
    assert [getattr(lib, n).dtype for n in LEGACY_NAMES] == [
        lib.float32, lib.float64, lib.float16, lib.bfloat16, lib.uint8, lib.int8, lib.int16, lib.int32, lib.int64,
        lib.bool]
    assert repr(lib.FloatTensor) == f"<class '{lib.__name__}.FloatTensor'>"
    x = lib.zeros(2)
    assert isinstance(x, lib.FloatTensor) and not isinstance(x, lib.LongTensor)
    assert not issubclass(lib.FloatTensor, lib.Tensor)
    assert x.type(lib.LongTensor).dtype == lib.int64 and x.type() == "torch.FloatTensor"
    alias = lib.FloatTensor(x)
    alias[0] = 5.0
    assert x.tolist() == [5.0, 0.0]


def test_legacy_typed_constructor_errors(lib):
    with pytest.raises(TypeError):
        lib.FloatTensor(lib.zeros(2, dtype=lib.long))
    with pytest.raises(TypeError, match="data must be a sequence"):
        lib.FloatTensor(3.0)
    with pytest.raises(TypeError, match="'size'"):
        lib.FloatTensor(2, 3.0)


def test_legacy_cuda_types(lib):
    """``torch.cuda.FloatTensor`` and the rest: types of CUDA tensors (a CPU tensor is none of them), and
    constructors that need a GPU: without one, a TypeError saying the type is not available."""
    x = lib.zeros(2)
    assert [getattr(lib.cuda, n).dtype for n in LEGACY_NAMES] == [getattr(lib, n).dtype for n in LEGACY_NAMES]
    assert repr(lib.cuda.FloatTensor) == f"<class '{lib.__name__}.cuda.FloatTensor'>"
    assert not isinstance(x, lib.cuda.FloatTensor) and lib.cuda.LongTensor.is_cuda and not lib.LongTensor.is_cuda
    assert x.type(lib.DoubleTensor).dtype == lib.float64
    if lib.cuda.is_available():
        y = lib.cuda.FloatTensor([1.0, 2.0])
        assert y.device.type == "cuda" and isinstance(y, lib.cuda.FloatTensor) and y.type() == "torch.cuda.FloatTensor"
        assert x.type(lib.cuda.FloatTensor).device.type == "cuda" and y.type(lib.FloatTensor).device.type == "cpu"
    else:
        with pytest.raises(TypeError, match="type .*cuda.FloatTensor not available"):
            lib.cuda.FloatTensor([1.0, 2.0])
    with pytest.raises(AttributeError):
        lib.cuda.NoSuchTensor  # noqa: B018


def test_tensor_new(lib):
    x = lib.zeros(2, dtype=lib.int32)
    assert x.new(2, 3).shape == (2, 3) and x.new(2, 3).dtype == lib.int32
    assert x.new([1, 2]).tolist() == [1, 2] and x.new([1.7]).dtype == lib.int32
    assert x.new().shape == (0,) and x.new(lib.Size([3])).shape == (3,)
    assert x.new_zeros(2).device == x.device and x.new_tensor([1.0]).dtype == lib.int32


def test_devices():
    x = tracenn.zeros(2)
    assert x.device == tracenn.device("cpu") and x.is_cpu and not x.is_cuda
    assert repr(x.device) == "device(type='cpu')"
    assert str(tracenn.device("cuda", 1)) == "cuda:1"
    assert x.to("cpu") is x
    if not tracenn.cuda.is_available():
        with pytest.raises(RuntimeError, match="JAX sees no GPU"):
            tracenn.zeros(2, device="cuda")
        with pytest.raises(RuntimeError, match="JAX sees no GPU"):
            x.cuda()
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        tracenn.device("tpu0")


def test_synchronize_runs():
    x = tracenn.randn(64, 64) @ tracenn.randn(64, 64)
    tracenn.synchronize()
    tracenn.cuda.synchronize() if tracenn.cuda.is_available() else tracenn.cpu.synchronize()
    assert x.block_until_ready() is x


def test_numpy_scalars_keep_their_dtype():
    assert tracenn.tensor([np.float64(1.0)]).dtype is tracenn.float64
    assert tracenn.tensor([np.int32(1), np.int32(2)]).dtype is tracenn.int32
    assert tracenn.tensor(np.float16(1.5)).dtype is tracenn.float16


def test_linspace_rounds_as_torch():
    """torch's formula (a float32 step, start + step * i for the first half, end - step * (n - 1 - i)
    for the rest, fused): these values are torch's, and differ from jnp.linspace's in the last bit."""
    assert tracenn.linspace(0.1, 0.7, 7).tolist() == [
        0.10000000149011612, 0.19999998807907104, 0.29999998211860657, 0.4000000059604645, 0.5,
        0.6000000238418579, 0.699999988079071]
    assert tracenn.linspace(-3.899422, 2.755808, 11)[6].item() == 0.09371614456176758
    assert tracenn.linspace(0, 1, 1).tolist() == [0.0] and tracenn.linspace(0, 1, 0).tolist() == []


def test_linspace_matches_torch_bit_for_bit():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for _ in range(100):
        lo, hi = (rng.standard_normal(2) * rng.integers(1, 100)).tolist()
        n = int(rng.integers(2, 40))
        for td, nd in ((torch.float32, tracenn.float32), (torch.float64, tracenn.float64)):
            expected = torch.linspace(lo, hi, n, dtype=td).numpy()
            np.testing.assert_array_equal(tracenn.linspace(lo, hi, n, dtype=nd).numpy(), expected)
