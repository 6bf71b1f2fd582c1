"""Max/avg/LP/adaptive pooling and max unpooling: NumPy references, parity with PyTorch (forward,
indices and gradients, batched and unbatched, ties), pinned reprs and errors that name the layer."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

SLOW = pytest.mark.slow


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _t(x, grad=False):
    return tracenn.tensor(x, requires_grad=grad)


def pool_ref(x, k, s, p, reduce, fill):
    """2-D pooling of (N, C, H, W) by explicit windows over the padded input."""
    xp = np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)], constant_values=fill)
    ho, wo = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
    return np.stack([np.stack([reduce(xp[:, :, i * s:i * s + k, j * s:j * s + k], axis=(2, 3))
                               for j in range(wo)], -1) for i in range(ho)], -2)


# ---- NumPy references and known values (no torch needed) ----------------------------------------

def test_max_pool2d_matches_numpy_and_routes_gradient_to_the_max():
    x = _rand((2, 3, 7, 6))
    xt = _t(x, True)
    out = F.max_pool2d(xt, 3, stride=2, padding=1)
    assert_close(out, pool_ref(x, 3, 2, 1, np.max, -np.inf))
    out.sum().backward()
    g = to_np(xt.grad)
    # every input gets one unit per window whose max it is
    ref = np.zeros_like(x)
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)], constant_values=-np.inf)
    for n, c, i, j in np.ndindex(2, 3, 4, 3):
        win = xp[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        a, b = np.unravel_index(np.argmax(win), win.shape)
        ref[n, c, 2 * i + a - 1, 2 * j + b - 1] += 1
    assert_close(g, ref)


def test_avg_pool2d_matches_numpy_with_and_without_padding_counted():
    x = _rand((1, 2, 5, 5))
    incl = F.avg_pool2d(_t(x), 3, stride=2, padding=1)
    assert_close(incl, pool_ref(x, 3, 2, 1, np.sum, 0) / 9, rtol=1e-5)
    excl = F.avg_pool2d(_t(x), 3, stride=2, padding=1, count_include_pad=False)
    counts = pool_ref(np.ones_like(x), 3, 2, 1, np.sum, 0)
    assert_close(excl, pool_ref(x, 3, 2, 1, np.sum, 0) / counts, rtol=1e-5)
    over = F.avg_pool2d(_t(x), 3, stride=2, padding=1, divisor_override=2)
    assert_close(over, pool_ref(x, 3, 2, 1, np.sum, 0) / 2, rtol=1e-5)


def test_known_values_ceil_mode_indices_and_unpool():
    x = tracenn.arange(25.).reshape(1, 1, 5, 5)
    assert F.max_pool2d(x, 2).tolist() == [[[[6., 8.], [16., 18.]]]]
    y, i = F.max_pool2d(x, 2, ceil_mode=True, return_indices=True)
    assert y.tolist() == [[[[6., 8., 9.], [16., 18., 19.], [21., 23., 24.]]]]
    assert i.tolist() == [[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]] and i.dtype == tracenn.int64
    up = F.max_unpool2d(y, i, 2, output_size=(5, 5))
    assert up.shape == (1, 1, 5, 5) and up.sum().item() == y.sum().item() and up[0, 0, 4, 4].item() == 24.
    # avg with ceil_mode: the last window hangs over the edge and divides by its in-bounds size
    assert F.avg_pool1d(tracenn.tensor([[[1., 2., 3., 4., 5.]]]), 2, ceil_mode=True).tolist() == [[[1.5, 3.5, 5.]]]
    # dilation
    assert F.max_pool1d(tracenn.tensor([[[1., 9., 2., 0., 3.]]]), 2, 1, dilation=2).tolist() == [[[2., 9., 3.]]]


def test_adaptive_pools_known_values():
    x = tracenn.tensor([[[1., 2., 3., 4., 5., 6., 7.]]])
    # windows of 7 -> 3: [0, 3), [2, 5), [4, 7)
    assert_close(F.adaptive_avg_pool1d(x, 3), np.array([[[2., 4., 6.]]], np.float32))
    v, i = F.adaptive_max_pool1d(x, 3, return_indices=True)
    assert v.tolist() == [[[3., 5., 7.]]] and i.tolist() == [[[2, 4, 6]]]
    img = tracenn.arange(30.).reshape(1, 5, 6)
    assert F.adaptive_avg_pool2d(img, (1, 1)).item() == 14.5
    assert F.adaptive_avg_pool2d(img, (5, None)).shape == (1, 5, 6)
    v, i = F.adaptive_max_pool2d(img, (2, 4), return_indices=True)
    # rows [0, 3) and [2, 5); columns [0, 2), [1, 3), [3, 5), [4, 6)
    assert v.tolist() == [[[13., 14., 16., 17.], [25., 26., 28., 29.]]] and \
        i.tolist() == [[[13, 14, 16, 17], [25, 26, 28, 29]]]


def test_lp_pool_known_values():
    x = tracenn.tensor([[[3., 4., -1., 1.]]])
    assert_close(F.lp_pool1d(x, 2, 2), np.array([[[5., math.sqrt(2)]]], np.float32))
    assert F.lp_pool1d(x, math.inf, 2).tolist() == [[[4., 1.]]]
    assert F.lp_pool1d(x, 1, 2).tolist() == [[[7., 0.]]]


def test_max_pool_gradient_on_ties_goes_to_the_first_max():
    x = _t(np.array([[[2., 2., 1., 2.]]], np.float32), True)
    F.max_pool1d(x, 3, 1).sum().backward()  # windows (2, 2, 1) (2, 1, 2): the first max of each
    assert x.grad.tolist() == [[[1., 1., 0., 0.]]]
    y = _t(np.array([[[2., 2., 1., 2.]]], np.float32), True)
    v, i = F.max_pool1d(y, 2, 1, return_indices=True)  # windows (2, 2) (2, 1) (1, 2)
    assert i.tolist() == [[[0, 1, 3]]]
    v.sum().backward()
    assert y.grad.tolist() == [[[1., 1., 0., 1.]]]


def test_max_pool_propagates_nan():
    x = tracenn.tensor([[[1., float("nan"), 3., 4.]]])
    assert np.isnan(to_np(F.max_pool1d(x, 2))[0, 0, 0]) and F.max_pool1d(x, 2)[0, 0, 1].item() == 4.
    assert F.max_pool1d(x, 2, return_indices=True)[1].tolist() == [[[1, 3]]]


# ---- parity with PyTorch ------------------------------------------------------------------------

# The default run keeps one row per feature, on shared shapes (each new (op, shape) pair compiles
# a kernel); the slow rows sweep the rest.
POOLS = [  # (layer, args, kwargs, input shape)
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1}, (2, 3, 9)),
    ("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (3, 7, 6)),
    ("MaxPool2d", ((2, 3),), {"stride": (2, 1), "dilation": (2, 1), "return_indices": True}, (2, 3, 7, 6)),
    ("MaxPool3d", (2,), {"stride": 1, "padding": 1, "return_indices": True}, (2, 3, 4, 3)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False, "ceil_mode": True}, (2, 3, 9)),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}, (3, 7, 6)),
    ("LPPool2d", (2, 2), {}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 6)),
    ("AdaptiveMaxPool2d", ((3, 4),), {"return_indices": True}, (3, 7, 6)),
    pytest.param("MaxPool2d", (2,), {}, (2, 3, 6, 6), marks=SLOW),
    pytest.param("AvgPool2d", (3,), {"stride": 2, "padding": 1}, (2, 3, 7, 6), marks=SLOW),
    pytest.param("AvgPool2d", (2,), {"divisor_override": 3}, (2, 3, 6, 6), marks=SLOW),
    pytest.param("AvgPool3d", (2,), {"stride": 1, "padding": 1, "count_include_pad": False}, (2, 3, 4, 3),
                 marks=SLOW),
    pytest.param("LPPool1d", (2, 3), {"stride": 2}, (2, 3, 9), marks=SLOW),
    pytest.param("LPPool2d", (float("inf"), 2), {"ceil_mode": True}, (3, 7, 6), marks=SLOW),
    pytest.param("AdaptiveAvgPool1d", (4,), {}, (2, 3, 9), marks=SLOW),
    pytest.param("AdaptiveAvgPool2d", (1,), {}, (2, 3, 6, 6), marks=SLOW),
    pytest.param("AdaptiveAvgPool3d", ((2, 3, 2),), {}, (2, 4, 5, 3), marks=SLOW),
    pytest.param("AdaptiveMaxPool1d", (4,), {"return_indices": True}, (2, 3, 9), marks=SLOW),
    pytest.param("AdaptiveMaxPool2d", (2,), {"return_indices": True}, (2, 3, 6, 6), marks=SLOW),
    pytest.param("AdaptiveMaxPool3d", ((2, 1, 2),), {"return_indices": True}, (2, 4, 5, 3), marks=SLOW),
    pytest.param("MaxPool1d", (2,), {"return_indices": True, "ceil_mode": True}, (3, 9), marks=SLOW),
    pytest.param("MaxPool3d", ((1, 2, 2),), {"ceil_mode": True, "dilation": (1, 1, 2)}, (1, 2, 3, 5, 6), marks=SLOW),
    pytest.param("AvgPool1d", (2,), {}, (3, 9), marks=SLOW),
    pytest.param("AvgPool3d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True, "divisor_override": 5},
                 (1, 2, 5, 6, 4), marks=SLOW),
    pytest.param("LPPool3d", (3, 2), {"stride": 1}, (2, 3, 4, 3), marks=SLOW),
    pytest.param("AdaptiveAvgPool2d", ((4, 5),), {}, (3, 7, 6), marks=SLOW),
    pytest.param("AdaptiveMaxPool1d", (9,), {}, (3, 9), marks=SLOW),
]


def _pool_parity(torch, name, args, kw, x):
    m, tm = getattr(nn, name)(*args, **kw), getattr(torch.nn, name)(*args, **kw)
    assert repr(m) == repr(tm)
    xt, tx = _t(x, True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt), tm(tx)
    if kw.get("return_indices"):
        (out, idx), (tout, tidx) = out, tout
        assert idx.dtype == tracenn.int64 and idx.tolist() == tidx.tolist()
    assert_close(out, tout, rtol=1e-5, atol=1e-6)
    g = _rand(tuple(tout.shape), 1)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,args,kw,shape", POOLS)
def test_pooling_matches_torch(torch, name, args, kw, shape):
    _pool_parity(torch, name, args, kw, _rand(shape))


@pytest.mark.parametrize("name,args,kw", [("MaxPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}),
                                          pytest.param("AdaptiveMaxPool2d", ((3, 4),), {"return_indices": True},
                                                       marks=SLOW)])
def test_max_pooling_ties_match_torch(torch, name, args, kw):
    x = np.random.default_rng(3).integers(0, 3, (3, 7, 6)).astype(np.float32)  # many tied maxima
    _pool_parity(torch, name, args, kw, x)


@pytest.mark.parametrize("nd", [pytest.param(1, marks=SLOW), 2])
def test_max_unpool_matches_torch(torch, nd):
    x = _rand((2, 3) + (8, 6)[:nd])
    pool = getattr(torch.nn, f"MaxPool{nd}d")(2, return_indices=True)
    y, i = pool(torch.tensor(x))
    um, tum = getattr(nn, f"MaxUnpool{nd}d")(2), getattr(torch.nn, f"MaxUnpool{nd}d")(2)
    assert repr(um) == repr(tum)
    size = list(x.shape[2:])
    yt = _t(y.numpy(), True)
    ty = y.clone().requires_grad_()
    out, tout = um(yt, _t(i.numpy()), output_size=size), tum(ty, i, output_size=size)
    assert_close(out, tout)
    g = _rand(tuple(tout.shape), 2)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(yt.grad, ty.grad)
    assert_close(um(_t(y[0].numpy()), _t(i[0].numpy())), tum(y[0], i[0]))  # unbatched, default size


def test_functional_pool_signatures_match_torch(torch):
    x = _rand((2, 3, 7, 6))
    T = torch.nn.functional
    pairs = [  # positional arguments in torch's order (configs of the table above: no new kernels)
        (F.max_pool2d(_t(x), 3, 2, 1, 1, True, True), T.max_pool2d(torch.tensor(x), 3, 2, 1, 1, True, True)),
        (F.max_pool2d_with_indices(_t(x), (2, 3), (2, 1), 0, (2, 1)),
         T.max_pool2d_with_indices(torch.tensor(x), (2, 3), (2, 1), 0, (2, 1))),
        (F.avg_pool2d(_t(x), 3, 2, 1, True, False, None), T.avg_pool2d(torch.tensor(x), 3, 2, 1, True, False, None)),
        (F.adaptive_max_pool2d_with_indices(_t(x), (3, 4)),
         T.adaptive_max_pool2d_with_indices(torch.tensor(x), (3, 4))),
        (F.lp_pool2d(_t(x), 2, 2, None, False), T.lp_pool2d(torch.tensor(x), 2, 2, None, False)),
    ]
    for ours, theirs in pairs:
        if isinstance(theirs, tuple):
            assert_close(ours[0], theirs[0], rtol=1e-5) and assert_close(ours[1], theirs[1])
        else:
            assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


# ---- reprs and errors ---------------------------------------------------------------------------

REPRS = [
    ("MaxPool2d(3, stride=2)", "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)"),
    ("MaxPool1d((2,), padding=1, return_indices=True, ceil_mode=True)",
     "MaxPool1d(kernel_size=(2,), stride=(2,), padding=1, dilation=1, ceil_mode=True)"),
    ("MaxUnpool3d(2, 1)", "MaxUnpool3d(kernel_size=(2, 2, 2), stride=(1, 1, 1), padding=(0, 0, 0))"),
    ("AvgPool1d(3)", "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    ("AvgPool2d((3, 2), stride=(2, 1), divisor_override=2)", "AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0)"),
    ("LPPool2d(2, 3)", "LPPool2d(norm_type=2, kernel_size=3, stride=None, ceil_mode=False)"),
    ("AdaptiveAvgPool2d((5, None))", "AdaptiveAvgPool2d(output_size=(5, None))"),
    ("AdaptiveMaxPool1d(3, return_indices=True)", "AdaptiveMaxPool1d(output_size=3)"),
]


@pytest.mark.parametrize("ctor,text", REPRS)
def test_reprs_are_torchs(lib, ctor, text):
    assert repr(eval("lib.nn." + ctor)) == text


def _z(*shape):
    return tracenn.tensor(np.zeros(shape, np.float32))


def test_errors_name_the_layer_and_what_it_expected():
    with pytest.raises(RuntimeError, match=r"^MaxPool2d\(kernel_size=3, stride=3, padding=0, dilation=1, "
                                           r"ceil_mode=False\): Given input size: \(3x2x2\)\. Calculated output size: "
                                           r"\(3x0x0\)\. Output size is too small: the input's spatial size \(2, 2\) "
                                           r"is smaller than the window \(3, 3\) in dims 2 and 3; feed a larger "
                                           r"input, pad it, or use a smaller kernel_size"):
        nn.MaxPool2d(3)(_z(1, 3, 2, 2))
    with pytest.raises(RuntimeError, match=r"spatial size \(1,\) is smaller than the window \(2,\) with dilation "
                                           r"\(3,\) even with padding \(1,\) in dim 1;"):
        F.max_pool1d(_z(3, 1), 2, padding=1, dilation=3)
    with pytest.raises(RuntimeError, match=r"^avg_pool2d\(\): pad should be at most half of effective kernel size, "
                                           r"but got pad=2, kernel_size=3 and dilation=1; use padding <= 1"):
        F.avg_pool2d(_z(1, 3, 4, 4), 3, padding=2)
    with pytest.raises(RuntimeError, match=r"^AvgPool1d\(kernel_size=\(2,\), .*\): expected 2D \(unbatched\) or 3D "
                                           r"\(batched\) input, but got input of size: \[4\]"):
        nn.AvgPool1d(2)(_z(4))
    with pytest.raises(RuntimeError, match=r"kernel_size must be a single int or a tuple of 2 ints, but got "
                                           r"kernel_size=\(2, 2, 2\)"):
        F.max_pool2d(_z(1, 3, 4, 4), (2, 2, 2))
    with pytest.raises(RuntimeError, match=r"kernel_size, stride and dilation must be greater than zero"):
        F.max_pool2d(_z(1, 3, 4, 4), 2, stride=0)
    with pytest.raises(RuntimeError, match=r"^AdaptiveAvgPool2d\(output_size=\(2, 2, 2\)\): output_size must have "
                                           r"2 elements"):
        nn.AdaptiveAvgPool2d((2, 2, 2))(_z(1, 4, 4))
    with pytest.raises(RuntimeError, match=r"expected a floating point input, got tracenn.int64"):
        F.avg_pool1d(tracenn.tensor([[[1, 2]]]), 2)
    with pytest.raises(RuntimeError, match=r"divisor must be not zero"):
        F.avg_pool2d(_z(1, 2, 2), 2, divisor_override=0)
    with pytest.raises(RuntimeError, match=r"^max_unpool2d\(\): Found an invalid max index: 99 \(output volumes are "
                                           r"of size 4x4\)"):
        F.max_unpool2d(_z(1, 1, 2, 2), tracenn.tensor([[[[0, 1], [2, 99]]]]), 2)
    with pytest.raises(ValueError, match=r'^MaxUnpool2d\(.*\): invalid output_size "\(9, 9\)" \(dim 0 must be '
                                         r'between 2 and 6\)'):
        nn.MaxUnpool2d(2)(_z(1, 1, 2, 2), tracenn.zeros(1, 1, 2, 2, dtype=tracenn.int64), output_size=(9, 9))
    with pytest.raises(RuntimeError, match=r"Expected shape of indices to be same as that of the input tensor"):
        F.max_unpool1d(_z(1, 1, 2), tracenn.zeros(1, 1, 3, dtype=tracenn.int64), 2)
    with pytest.raises(RuntimeError, match=r"indices must be int64"):
        F.max_unpool1d(_z(1, 1, 2), _z(1, 1, 2), 2)


def test_pool_output_may_be_changed_in_place_before_backward(torch):
    # torch's pools keep indices, not their output: MaxPool2d then ReLU(inplace=True) is legal
    x = _rand((2, 3, 7, 6))
    for name, args, kw in (("MaxPool2d", ((2, 3),), {"stride": (2, 1), "dilation": (2, 1)}),
                           ("LPPool2d", (2, 2), {})):
        xt, tx = _t(x, True), torch.tensor(x, requires_grad=True)
        out = nn.ReLU(inplace=True)(getattr(nn, name)(*args, **kw)(xt - 0.5))
        tout = torch.nn.ReLU(inplace=True)(getattr(torch.nn, name)(*args, **kw)(tx - 0.5))
        out.sum().backward()
        tout.sum().backward()
        assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-6)
