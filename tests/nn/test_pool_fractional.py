"""fractional_max_pool2d/3d and FractionalMaxPool2d/3d: torch's window placement given
``_random_samples`` (values, indices, gradients), deterministic properties of the random windows,
module construction and errors."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np


def _rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _starts(u, n, o, k):
    """torch's generate_intervals, in float32 like its kernel."""
    if o == 1:
        return [n - k]
    alpha = np.float32(n - k) / np.float32(o - 1)
    u = np.float32(u)
    return [int((np.float32(i) + u) * alpha) - int(u * alpha) for i in range(o - 1)] + [n - k]


def _reference_2d(x, k, out, samples):
    """A loop over planes: samples[n, c] = (u_w, u_h), windows start at _starts, first max wins."""
    N, C, H, W = x.shape
    y = np.empty((N, C) + out, x.dtype)
    idx = np.empty((N, C) + out, np.int64)
    for n in range(N):
        for c in range(C):
            hs = _starts(samples[n, c, 1], H, out[0], k[0])
            ws = _starts(samples[n, c, 0], W, out[1], k[1])
            for i, h0 in enumerate(hs):
                for j, w0 in enumerate(ws):
                    win = x[n, c, h0:h0 + k[0], w0:w0 + k[1]]
                    a = int(np.argmax(win))
                    y[n, c, i, j] = win.flat[a]
                    idx[n, c, i, j] = (h0 + a // k[1]) * W + w0 + a % k[1]
    return y, idx


@pytest.mark.parametrize("shape,k,out", [((2, 3, 7, 9), (2, 2), (3, 4)), ((1, 2, 6, 6), (2, 2), (5, 5)),
                                         ((2, 2, 10, 11), (3, 2), (4, 1)), ((1, 1, 5, 5), (1, 1), (1, 1))])
def test_2d_matches_a_numpy_loop(shape, k, out):
    x = _rand(shape)
    u = np.random.default_rng(1).random((shape[0], shape[1], 2)).astype(np.float32)
    y, idx = F.fractional_max_pool2d(tracenn.tensor(x), k, output_size=out, return_indices=True,
                                     _random_samples=tracenn.tensor(u))
    ry, ridx = _reference_2d(x, k, out, u)
    assert np.array_equal(to_np(y), ry) and np.array_equal(to_np(idx), ridx) and idx.dtype == tracenn.int64


def test_known_values_and_unpool_round_trip():
    x = tracenn.arange(16.0).reshape(1, 1, 4, 4)
    y, i = F.fractional_max_pool2d(x, 2, output_size=2, return_indices=True, _random_samples=tracenn.zeros(1, 1, 2))
    assert y.tolist() == [[[[5.0, 7.0], [13.0, 15.0]]]] and i.tolist() == [[[[5, 7], [13, 15]]]]
    back = F.max_unpool2d(y, i, 2, output_size=(4, 4))
    assert to_np(back).sum() == 40.0 and to_np(back)[0, 0, 3, 3] == 15.0


def test_random_windows_properties():
    """Without _random_samples: output size, every output is the max of a window of the input that
    covers the input's corners, and the same seed gives the same windows."""
    x = tracenn.randn(2, 3, 20, 16)
    tracenn.manual_seed(4)
    y, idx = F.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.75), return_indices=True)
    assert tuple(y.shape) == (2, 3, 10, 12)
    flat = to_np(x).reshape(2, 3, -1)
    assert np.array_equal(np.take_along_axis(flat, to_np(idx).reshape(2, 3, -1), -1).reshape(y.shape), to_np(y))
    i = to_np(idx)
    rows, cols = i // 16, i % 16
    assert rows[..., 0, :].min() <= 2 and rows[..., -1, :].max() >= 17  # first window at the top, last at the bottom
    assert np.all(np.diff(rows, axis=2) >= 0) and np.all(np.diff(cols, axis=3) >= -2)
    tracenn.manual_seed(4)
    assert np.array_equal(to_np(F.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.75))), to_np(y))
    assert not np.array_equal(to_np(F.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.75))), to_np(y))


def test_gradient_goes_to_the_first_max_of_each_window():
    x = tracenn.zeros(1, 1, 4, 4, requires_grad=True)  # all ties: each window's first element wins
    y = F.fractional_max_pool2d(x, 2, output_size=3, _random_samples=tracenn.full((1, 1, 2), 0.5))
    y.sum().backward()
    expected = np.zeros((4, 4), np.float32)
    for h in _starts(0.5, 4, 3, 2):
        for w in _starts(0.5, 4, 3, 2):
            expected[h, w] += 1
    assert np.array_equal(to_np(x.grad)[0, 0], expected)


def test_3d_shapes_and_unbatched():
    x = tracenn.randn(3, 8, 8, 8)
    y, i = F.fractional_max_pool3d(x, 2, output_size=(4, 3, 5), return_indices=True)
    assert tuple(y.shape) == (3, 4, 3, 5) and tuple(i.shape) == (3, 4, 3, 5)
    assert np.array_equal(np.take_along_axis(to_np(x).reshape(3, -1), to_np(i).reshape(3, -1), -1).reshape(y.shape),
                          to_np(y))
    assert tuple(F.fractional_max_pool2d(tracenn.randn(3, 9, 9), 2, output_ratio=0.5).shape) == (3, 4, 4)


@pytest.mark.parametrize("nd,shape,k,kw", [
    (2, (2, 3, 7, 9), 2, {"output_size": (3, 4)}), (2, (2, 3, 7, 9), (3, 2), {"output_size": (4, 4)}),
    (2, (3, 10, 11), 3, {"output_size": (5, 3)}), (2, (2, 2, 9, 8), 2, {"output_ratio": (0.5, 0.7)}),
    (2, (1, 2, 6, 6), 2, {"output_size": 5}), (3, (2, 3, 5, 6, 7), 2, {"output_size": (3, 4, 5)}),
    (3, (3, 5, 6, 7), (1, 2, 3), {"output_size": (4, 4, 4)}), (3, (1, 1, 4, 4, 4), 2, {"output_size": 2})])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch_given_random_samples(torch, nd, shape, k, kw, dtype):
    x = _rand(shape, dtype=dtype)
    batch = shape[0] if len(shape) == nd + 2 else 1
    u = np.random.default_rng(2).random((batch, shape[-nd - 1], nd)).astype(dtype)
    fn, tfn = getattr(F, f"fractional_max_pool{nd}d"), getattr(torch.nn.functional, f"fractional_max_pool{nd}d")
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, i = fn(xt, k, return_indices=True, _random_samples=tracenn.tensor(u), **kw)
    ty, ti = tfn(tx, k, return_indices=True, _random_samples=torch.tensor(u), **kw)
    assert np.array_equal(to_np(y), to_np(ty)) and np.array_equal(to_np(i), to_np(ti))
    g = _rand(tuple(ty.shape), 3, dtype)
    y.backward(tracenn.tensor(g))
    ty.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad)


@pytest.mark.slow  # (31 s: the fixed geometries above cover each path in the default run)
def test_many_random_geometries_match_torch_exactly(torch):
    rng = np.random.default_rng(5)
    for _ in range(25):
        n = int(rng.integers(5, 60))
        k = int(rng.integers(1, 4))
        o = int(rng.integers(1, n - k + 2))
        x = rng.standard_normal((1, 3, n, n)).astype(np.float32)
        u = rng.random((1, 3, 2)).astype(np.float32)
        i = F.fractional_max_pool2d(tracenn.tensor(x), k, output_size=o, return_indices=True,
                                    _random_samples=tracenn.tensor(u))[1]
        ti = torch.nn.functional.fractional_max_pool2d(torch.tensor(x), k, output_size=o, return_indices=True,
                                                       _random_samples=torch.tensor(u))[1]
        assert np.array_equal(to_np(i), to_np(ti)), (n, k, o)


def test_modules_match_torch(torch):
    x = _rand((2, 3, 9, 10))
    u = np.random.default_rng(3).random((2, 3, 2)).astype(np.float32)
    m = nn.FractionalMaxPool2d(3, output_ratio=0.5, return_indices=True, _random_samples=tracenn.tensor(u))
    tm = torch.nn.FractionalMaxPool2d(3, output_ratio=0.5, return_indices=True, _random_samples=torch.tensor(u))
    assert repr(m) == repr(tm) == "FractionalMaxPool2d()"
    assert list(m.state_dict()) == list(tm.state_dict()) == ["_random_samples"]
    assert (m.kernel_size, m.output_size, m.output_ratio) == (tm.kernel_size, tm.output_size, tm.output_ratio)
    (y, i), (ty, ti) = m(tracenn.tensor(x)), tm(torch.tensor(x))
    assert np.array_equal(to_np(y), to_np(ty)) and np.array_equal(to_np(i), to_np(ti))
    m3 = nn.FractionalMaxPool3d((2, 2, 2), output_size=(2, 3, 2))
    tm3 = torch.nn.FractionalMaxPool3d((2, 2, 2), output_size=(2, 3, 2))
    assert m3.output_size == tm3.output_size == (2, 3, 2) and m3._random_samples is None
    assert tuple(m3(tracenn.randn(1, 2, 5, 6, 5)).shape) == (1, 2, 2, 3, 2)


@pytest.mark.parametrize("ctor,exc,text", [
    (lambda nn: nn.FractionalMaxPool2d(3), ValueError,
     "FractionalMaxPool2d requires specifying either an output size, or a pooling ratio"),
    (lambda nn: nn.FractionalMaxPool3d(3), ValueError,
     "FractionalMaxPool3d requires specifying either an output size, or a pooling ratio"),
    (lambda nn: nn.FractionalMaxPool2d(3, 2, 0.5), ValueError,
     "only one of output_size and output_ratio may be specified"),
    (lambda nn: nn.FractionalMaxPool2d(3, output_ratio=1.5), ValueError,
     "output_ratio must be between 0 and 1 (got 1.5)"),
    (lambda nn: nn.FractionalMaxPool3d(3, output_ratio=(0.5, 0.5, 1.0)), ValueError,
     "output_ratio must be between 0 and 1 (got (0.5, 0.5, 1.0))"),
    (lambda nn: nn.FractionalMaxPool3d(0, output_size=2), ValueError, "kernel_size must be greater than 0, but got 0"),
])
def test_module_constructor_errors_are_torchs(lib, ctor, exc, text):
    with pytest.raises(exc) as e:
        ctor(lib.nn)
    assert str(e.value) == text


@pytest.mark.parametrize("call,text", [
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2), "requires specifying either an output_size"),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_ratio=(0.5, 0.5, 0.5)),
     "requires output_ratio to either be a single Int or tuple of Ints."),
])
def test_functional_value_errors(lib, call, text):
    with pytest.raises(ValueError, match=text):
        call(lib.nn.functional, lib)


@pytest.mark.parametrize("call,text", [
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 5, output_size=(4, 4)),
     "pool height 5 too large relative to input height 7"),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 5, output_size=(3, 6)),
     "pool width 5 too large relative to input width 9"),
    (lambda F, t: F.fractional_max_pool3d(t.ones(1, 1, 5, 9, 9), 3, output_size=(3, 2, 2)),
     "pool time 3 too large relative to input time 5"),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_size=(3, 4), _random_samples=t.rand(2, 3, 3)),
     "Expect _random_samples.size(2) equals to 2; got 3."),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_size=(3, 4), _random_samples=t.rand(1, 3, 2)),
     "Expect _random_samples.size(0) no less then input batch size."),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_size=(3, 4), _random_samples=t.rand(2, 2, 2)),
     "Expect _random_samples.size(1) equals to input channel size."),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_size=(3, 4),
                                          _random_samples=t.rand(2, 3, 2, dtype=t.float64)),
     "Expect _random_samples to have the same dtype as input"),
    (lambda F, t: F.fractional_max_pool2d(t.ones(2, 3, 7, 9), 2, output_size=(3, 4), _random_samples=t.rand(6, 2)),
     "Expect _random_samples to have 3 dimensions, got 2"),
])
def test_functional_runtime_errors_name_torchs_reason(lib, call, text):
    with pytest.raises(RuntimeError) as e:
        call(lib.nn.functional, lib)
    assert text in str(e.value)


def test_input_rank_and_dtype_errors():
    with pytest.raises(RuntimeError, match=r"fractional_max_pool2d\(\): expected 3D \(unbatched\) or 4D"):
        F.fractional_max_pool2d(tracenn.ones(7, 9), 2, output_size=2)
    with pytest.raises(RuntimeError, match="expected a floating point input"):
        F.fractional_max_pool2d(tracenn.ones(1, 7, 9, dtype=tracenn.int64), 2, output_size=2)
    with pytest.raises(RuntimeError, match=r"FractionalMaxPool2d\(\): pool height"):
        nn.FractionalMaxPool2d(5, output_size=4)(tracenn.ones(1, 1, 6, 9))
