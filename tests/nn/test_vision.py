"""pixel_shuffle/unshuffle, interpolate/Upsample (every mode, torch's index math), grid_sample and
affine_grid: NumPy references and known values, parity with PyTorch (values and gradients)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from tracenn.nn.functional import _vision
from helpers import assert_close, to_np

SLOW = pytest.mark.slow


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _t(x, grad=False):
    return tracenn.tensor(x, requires_grad=grad)


# ---- pixel shuffle ------------------------------------------------------------------------------

def test_pixel_shuffle_numpy_and_round_trip():
    x = np.arange(2 * 8 * 2 * 3, dtype=np.float32).reshape(2, 8, 2, 3)
    y = F.pixel_shuffle(_t(x), 2)
    ref = x.reshape(2, 2, 2, 2, 2, 3).transpose(0, 1, 4, 2, 5, 3).reshape(2, 2, 4, 6)
    assert_close(y, ref)
    assert_close(F.pixel_unshuffle(y, 2), x)
    assert F.pixel_shuffle(_t(x[0]), 2).shape == (2, 4, 6)  # any number of leading dims
    assert F.pixel_shuffle(_t(x.reshape(1, 2, 8, 2, 3)), 2).shape == (1, 2, 2, 4, 6)


def test_pixel_shuffle_matches_torch(torch):
    x = _rand((2, 8, 2, 3))
    for ours, theirs, arg in ((nn.PixelShuffle(2), torch.nn.PixelShuffle(2), x),
                              (nn.PixelUnshuffle(2), torch.nn.PixelUnshuffle(2), x.reshape(2, 2, 4, 6))):
        assert repr(ours) == repr(theirs)
        xt, tx = _t(arg, True), torch.tensor(arg, requires_grad=True)
        out, tout = ours(xt), theirs(tx)
        assert_close(out, tout)
        g = _rand(tuple(tout.shape), 1)
        out.backward(_t(g))
        tout.backward(torch.tensor(g))
        assert_close(xt.grad, tx.grad)


def test_pixel_shuffle_errors():
    with pytest.raises(RuntimeError, match=r"^PixelShuffle\(upscale_factor=2\): expects its input's 'channel' "
                                           r"dimension to be divisible by the square of upscale_factor, but "
                                           r"input.size\(-3\)=3 is not divisible by 4"):
        nn.PixelShuffle(2)(_t(np.zeros((1, 3, 2, 2), np.float32)))
    with pytest.raises(RuntimeError, match=r"pixel_unshuffle\(\): expects height to be divisible by "
                                           r"downscale_factor, but input.size\(-2\)=3 is not divisible by 2"):
        F.pixel_unshuffle(_t(np.zeros((1, 1, 3, 2), np.float32)), 2)
    with pytest.raises(RuntimeError, match=r"expects input to have at least 3 dimensions"):
        F.pixel_shuffle(_t(np.zeros((4, 2), np.float32)), 2)


# ---- interpolate: known values and torch's index tables -----------------------------------------

def test_interpolate_known_values():
    x = _t(np.array([[[1., 2., 3.]]], np.float32))
    assert F.interpolate(x, size=5).tolist() == [[[1., 1., 2., 2., 3.]]]  # floor(i * 3/5)
    assert F.interpolate(x, size=5, mode="nearest-exact").tolist() == [[[1., 1., 2., 3., 3.]]]  # pixel centers
    assert_close(F.interpolate(x, size=6, mode="linear"),
                 np.array([[[1., 1.25, 1.75, 2.25, 2.75, 3.]]], np.float32))
    img = _t(np.array([[[[0., 1.], [2., 3.]]]], np.float32))
    assert_close(F.interpolate(img, size=(3, 3), mode="bilinear", align_corners=True),
                 np.array([[[[0., .5, 1.], [1., 1.5, 2.], [2., 2.5, 3.]]]], np.float32))
    assert F.interpolate(img, scale_factor=(1, 2)).tolist() == [[[[0., 0., 1., 1.], [2., 2., 3., 3.]]]]
    assert_close(F.interpolate(img, size=1, mode="area"), np.array([[[[1.5]]]], np.float32))
    # bicubic weights sum to one: constants stay constant
    flat = F.interpolate(_t(np.full((1, 1, 3, 4), 2.5, np.float32)), size=(5, 7), mode="bicubic")
    assert_close(flat, np.full((1, 1, 5, 7), 2.5, np.float32), rtol=1e-6)


def test_interpolate_gradient_is_the_transposed_weights():
    x = _t(np.array([[[1., 2., 3.]]], np.float32), True)
    F.interpolate(x, size=6, mode="linear").sum().backward()
    # sources 0, .25, .75, 1.25, 1.75, 2 (clamped): each input's total weight is 2
    assert_close(x.grad, np.array([[[2., 2., 2.]]], np.float32))


def _np_apply(x, tables):
    """Apply per-dim (indices (o, K), weights (o, K) or None) tables to x (N, C, *sp), innermost dim first."""
    nd = x.ndim - 2
    for i in reversed(range(nd)):
        idx, w = tables[i]
        axis = 2 + i
        shape = [1] * x.ndim
        shape[axis] = -1
        x = sum(np.take(x, idx[:, k], axis=axis) * (1 if w is None else w[:, k].reshape(shape))
                for k in range(idx.shape[1]))
    return x


INTERP_SWEEP = [(n, o) for n in (1, 3, 4, 5, 7, 10) for o in (1, 2, 3, 6, 8, 11, 20)]


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_index_tables_match_torch(torch, mode):
    for n, o in INTERP_SWEEP:
        src = torch.arange(n, dtype=torch.float32).reshape(1, 1, n)
        got = torch.nn.functional.interpolate(src, size=o, mode=mode)[0, 0].long().numpy()
        assert (_vision._nearest_table(n, o, None, mode == "nearest-exact") == got).all(), (n, o)
    for n, s in ((3, 1.7), (5, 0.45), (4, 2.5), (7, 1 / 3), (10, 0.3)):
        src = torch.arange(n, dtype=torch.float32).reshape(1, 1, n)
        got = torch.nn.functional.interpolate(src, scale_factor=s, mode=mode)[0, 0].long().numpy()
        assert (_vision._nearest_table(n, len(got), s, mode == "nearest-exact") == got).all(), (n, s)


@pytest.mark.parametrize("mode", ["linear", "cubic", "aa-linear", "aa-cubic"])
def test_linear_and_cubic_tables_match_torch(torch, mode):
    f32 = np.dtype(np.float32)
    for align in (False, True):
        for n, o in INTERP_SWEEP:
            if mode == "cubic" and n < 2:
                continue
            x = _rand((1, 1, 3, n))
            if mode == "linear":
                got = torch.nn.functional.interpolate(torch.tensor(x[:, :, 0]), size=o, mode="linear",
                                                      align_corners=align).numpy()
                ours = _np_apply(x[:, :, 0], [_vision._linear_table(n, o, None, align, f32)])
            else:
                aa = mode.startswith("aa")
                got = torch.nn.functional.interpolate(torch.tensor(x), size=(3, o), align_corners=align,
                                                      mode="bilinear" if mode == "aa-linear" else "bicubic",
                                                      antialias=aa).numpy()
                table = (_vision._aa_table(n, o, None, align, f32, mode == "aa-cubic") if aa else
                         _vision._cubic_table(n, o, None, align, f32))
                ours = _np_apply(x, [(np.arange(3)[:, None], None), table])
            np.testing.assert_allclose(ours, got, rtol=1e-5, atol=1e-6, err_msg=str((n, o, align)))


INTERPS = [  # (shape, kwargs)
    ((2, 3, 4, 5), {"scale_factor": (1.5, 0.6), "mode": "bilinear", "align_corners": True}),
    ((2, 3, 4, 5), {"size": (6, 9), "mode": "bicubic"}),
    ((2, 3, 4, 5), {"scale_factor": 1.7, "mode": "nearest"}),
    ((1, 2, 3, 4, 5), {"size": (4, 2, 7), "mode": "trilinear"}),
    ((2, 3, 9, 10), {"size": (4, 3), "mode": "bilinear", "antialias": True}),
    pytest.param((2, 3, 9, 10), {"scale_factor": 0.4, "mode": "bicubic", "antialias": True, "align_corners": True},
                 marks=SLOW),
    pytest.param((2, 3, 4, 5), {"size": (7, 9), "mode": "bicubic", "antialias": True}, marks=SLOW),
    pytest.param((2, 3, 5), {"scale_factor": 2.5, "mode": "linear"}, marks=SLOW),
    pytest.param((2, 3, 4, 5), {"size": (7, 3), "mode": "bilinear"}, marks=SLOW),
    pytest.param((2, 3, 4, 5), {"size": (3, 2), "mode": "area"}, marks=SLOW),
    pytest.param((2, 3, 5), {"size": 12, "mode": "nearest-exact"}, marks=SLOW),
    pytest.param((2, 3, 4, 5), {"scale_factor": 2.3, "mode": "bicubic", "align_corners": True}, marks=SLOW),
    pytest.param((2, 3, 4, 5), {"scale_factor": 1.5, "mode": "bilinear", "recompute_scale_factor": True},
                 marks=SLOW),
    pytest.param((1, 2, 3, 4, 5), {"scale_factor": (2, 1.5, 0.5), "mode": "nearest"}, marks=SLOW),
    pytest.param((1, 2, 3, 4, 5), {"size": 4, "mode": "trilinear", "align_corners": True}, marks=SLOW),
    pytest.param((2, 3, 5), {"size": 3, "mode": "area"}, marks=SLOW),
]


@pytest.mark.parametrize("shape,kw", INTERPS)
def test_interpolate_matches_torch(torch, shape, kw):
    x = _rand(shape)
    xt, tx = _t(x, True), torch.tensor(x, requires_grad=True)
    out, tout = F.interpolate(xt, **kw), torch.nn.functional.interpolate(tx, **kw)
    assert_close(out, tout, rtol=1e-5, atol=1e-6)
    g = _rand(tuple(tout.shape), 1)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-5)


def test_upsample_layers_match_torch(torch):
    x = _rand((2, 3, 4, 5))
    for args, kw in (((), {"scale_factor": 2, "mode": "bilinear"}), ((None, (1.5, 0.6)), {"mode": "bilinear",
                                                                                          "align_corners": True})):
        m, tm = nn.Upsample(*args, **kw), torch.nn.Upsample(*args, **kw)
        assert repr(m) == repr(tm)
        assert_close(m(_t(x)), tm(torch.tensor(x)), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("UpsamplingNearest2d", "UpsamplingBilinear2d"):
            m, tm = getattr(nn, name)(size=(3, 4)), getattr(torch.nn, name)(size=(3, 4))
            assert repr(m) == repr(tm)
            assert_close(m(_t(x)), tm(torch.tensor(x)), rtol=1e-5, atol=1e-6)


REPRS = [
    ("Upsample(scale_factor=2)", "Upsample(scale_factor=2.0, mode='nearest')"),
    ("Upsample(size=(4, 5), mode='bicubic', align_corners=True)", "Upsample(size=(4, 5), mode='bicubic')"),
    ("Upsample(scale_factor=(2, 3), mode='bilinear')", "Upsample(scale_factor=(2.0, 3.0), mode='bilinear')"),
    ("UpsamplingBilinear2d(scale_factor=2)", "UpsamplingBilinear2d(scale_factor=2.0, mode='bilinear')"),
    ("PixelShuffle(3)", "PixelShuffle(upscale_factor=3)"),
    ("PixelUnshuffle(2)", "PixelUnshuffle(downscale_factor=2)"),
]


@pytest.mark.parametrize("ctor,text", REPRS)
def test_reprs_are_torchs(lib, ctor, text):
    assert repr(eval("lib.nn." + ctor)) == text


def test_interpolate_errors():
    x = _t(np.zeros((1, 1, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"align_corners option can only be set with the interpolating modes"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match=r"only one of size or scale_factor should be defined"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match=r"either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match=r"Input and output must have the same number of spatial dimensions, but got "
                                         r"input with spatial dimensions of \[4, 4\] and output size of \(3, 3, 3\)"):
        F.interpolate(x, size=(3, 3, 3))
    with pytest.raises(NotImplementedError, match=r"Got 4D input, but linear mode needs 3D input"):
        F.interpolate(x, size=3, mode="linear")
    with pytest.raises(RuntimeError, match=r"Input and output sizes should be greater than 0, but got input \(H: 4, "
                                           r"W: 4\) and output \(H: 0, W: 0\)"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"Anti-alias option is restricted to bilinear, bicubic, and lanczos modes"):
        F.interpolate(x, size=2, mode="nearest", antialias=True)
    with pytest.raises(RuntimeError, match=r"^Upsample\(size=3, mode='linear'\): Got 4D input, but linear mode needs "
                                           r"3D input"):
        nn.Upsample(size=3, mode="linear")(x)


# ---- grid_sample / affine_grid ------------------------------------------------------------------

GRIDS = [  # (input shape, grid shape, mode, padding_mode, align_corners)
    ((2, 3, 4, 5), (2, 3, 6, 2), "bilinear", "reflection", True),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "bilinear", "zeros", False, marks=SLOW),
    ((2, 3, 4, 5), (2, 3, 6, 2), "nearest", "border", True),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "bicubic", "reflection", False, marks=SLOW),
    pytest.param((1, 2, 3, 4, 5), (1, 2, 3, 2, 3), "bilinear", "reflection", True, marks=SLOW),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "bilinear", "reflection", False, marks=SLOW),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "bicubic", "zeros", True, marks=SLOW),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "bicubic", "border", False, marks=SLOW),
    pytest.param((2, 3, 4, 5), (2, 3, 6, 2), "nearest", "zeros", False, marks=SLOW),
    pytest.param((1, 2, 3, 4, 5), (1, 2, 3, 2, 3), "nearest", "reflection", False, marks=SLOW),
    pytest.param((1, 2, 3, 4, 5), (1, 2, 3, 2, 3), "bilinear", "border", False, marks=SLOW),
]


@pytest.mark.parametrize("ishape,gshape,mode,padding_mode,align", GRIDS)
def test_grid_sample_matches_torch(torch, ishape, gshape, mode, padding_mode, align):
    x = _rand(ishape)
    grid = (np.random.default_rng(2).uniform(-1.4, 1.4, gshape)).astype(np.float32)  # some samples outside
    xt, gt = _t(x, True), _t(grid, True)
    tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(grid, requires_grad=True)
    kw = {"mode": mode, "padding_mode": padding_mode, "align_corners": align}
    out, tout = F.grid_sample(xt, gt, **kw), torch.nn.functional.grid_sample(tx, tg, **kw)
    assert_close(out, tout, rtol=1e-5, atol=1e-5)
    g = _rand(tuple(tout.shape), 1)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-5)
    if mode == "nearest":  # the grid's gradient is zeros (torch's), not None
        assert gt.grad is not None and not to_np(gt.grad).any() and not tg.grad.any()
    else:
        assert_close(gt.grad, tg.grad, rtol=1e-4, atol=1e-4)


def test_grid_sample_known_values():
    # same shapes and options as the first parity row, so no new kernels are compiled
    img = _t(np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5))
    pts = np.zeros((2, 3, 6, 2), np.float32)
    pts[0, 0, :3] = [[1., 1.], [-1., -1.], [0., 0.]]  # bottom-right, top-left, center
    pts[0, 1, 0] = [1.5, 0.]  # x = 5 is past the right edge (0..4): reflected back to x = 3
    out = F.grid_sample(img, _t(pts), mode="bilinear", padding_mode="reflection", align_corners=True)
    assert_close(out[0, 0, 0, :3], np.array([19., 0., 9.5], np.float32))
    assert out[0, 0, 1, 0].item() == 10.5  # y = 1.5, between rows 1 and 2 at x = 3: (8 + 13) / 2


@pytest.mark.parametrize("size,align", [((2, 3, 4, 5), False), pytest.param((2, 1, 3, 2, 4), True, marks=SLOW)])
def test_affine_grid_matches_torch(torch, size, align):
    nd = len(size) - 2
    theta = _rand((2, nd, nd + 1))
    tt, ttheta = _t(theta, True), torch.tensor(theta, requires_grad=True)
    out, tout = F.affine_grid(tt, size, align_corners=align), torch.nn.functional.affine_grid(ttheta, size,
                                                                                             align_corners=align)
    assert_close(out, tout, rtol=1e-5, atol=1e-6)
    g = _rand(tuple(tout.shape), 1)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(tt.grad, ttheta.grad, rtol=1e-4, atol=1e-5)


def test_grid_sample_and_affine_grid_errors():
    x = _t(np.zeros((1, 1, 3, 3), np.float32))
    with pytest.raises(ValueError, match=r"expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: 'foo'"):
        F.grid_sample(x, _t(np.zeros((1, 2, 2, 2), np.float32)), mode="foo", align_corners=False)
    with pytest.raises(RuntimeError, match=r"expected grid to have size 2 in last dimension"):
        F.grid_sample(x, _t(np.zeros((1, 2, 2, 3), np.float32)), align_corners=False)
    with pytest.raises(RuntimeError, match=r"expected grid and input to have same batch size"):
        F.grid_sample(x, _t(np.zeros((2, 2, 2, 2), np.float32)), align_corners=False)
    with pytest.warns(UserWarning, match="Default grid_sample and affine_grid behavior has changed"):
        with pytest.raises(RuntimeError, match="expected grid to have size 2"):
            F.grid_sample(x, _t(np.zeros((1, 2, 2, 3), np.float32)))
    with pytest.raises(ValueError, match=r"Expected a batch of 2D affine matrices of shape Nx2x3 for size "
                                         r"\(1, 1, 2, 2\). Got \(1, 3, 3\)"):
        F.affine_grid(_t(np.zeros((1, 3, 3), np.float32)), (1, 1, 2, 2), align_corners=False)


# ---- channel shuffle ----------------------------------------------------------------------------

def test_channel_shuffle_numpy_reference_and_module():
    x = np.arange(2 * 6 * 2 * 3, dtype=np.float32).reshape(2, 6, 2, 3)
    ref = x.reshape(2, 3, 2, 2, 3).transpose(0, 2, 1, 3, 4).reshape(x.shape)
    assert_close(F.channel_shuffle(_t(x), 3), ref)
    m = nn.ChannelShuffle(3)
    assert repr(m) == "ChannelShuffle(groups=3)" and m.groups == 3
    assert_close(m(_t(x)), ref)
    assert_close(tracenn.native_channel_shuffle(_t(x), 3), ref)
    assert F.channel_shuffle(tracenn.ones(0, 4, 2), 2).shape == (0, 4, 2)


@pytest.mark.parametrize("shape,groups", [((1, 4, 2), 2), ((2, 6, 3, 3), 3), ((2, 8, 2, 2, 2), 4), ((2, 5, 3), 1)])
def test_channel_shuffle_matches_torch(torch, shape, groups):
    x = _rand(shape)
    xt, tx = _t(x, True), torch.tensor(x, requires_grad=True)
    out, tout = nn.ChannelShuffle(groups)(xt), torch.nn.ChannelShuffle(groups)(tx)
    assert_close(out, tout)
    g = _rand(shape, 1)
    out.backward(_t(g))
    tout.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad)
    assert F.channel_shuffle(tracenn.tensor([[[1, 2], [3, 4]]]), 2).dtype == tracenn.int64


@pytest.mark.parametrize("shape,groups", [((4,), 2), ((4, 2), 2), ((1, 5, 2), 2), ((1, 4, 2), 0), ((1, 4, 2), -2)])
def test_channel_shuffle_errors_are_torchs(lib, message, shape, groups):
    with pytest.raises(RuntimeError) as e:
        lib.nn.functional.channel_shuffle(lib.ones(*shape), groups)
    expected = {(4,): "channel_shuffle expects input with > 2 dims, but got input with sizes [4]",
                (4, 2): "channel_shuffle expects input with > 2 dims, but got input with sizes [4, 2]",
                (1, 5, 2): "Number of channels must be divisible by groups. Got 5 channels and 2 groups."}
    assert message(e) == expected.get(
        shape, f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
