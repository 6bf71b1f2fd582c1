"""Conv1d/2d/3d, ConvTranspose1d/2d/3d, Fold/Unfold and their functional forms.

Forward and gradients against NumPy references (always) and PyTorch (when installed), batched and
unbatched; reprs pinned; init bounds; errors that name the layer and what it expected.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d cross-correlation (batched, torch layout) from explicit loops over kernel offsets."""
    nd = x.ndim - 2
    st, pd, dl = ((v,) * nd if isinstance(v, int) else tuple(v) for v in (stride, padding, dilation))
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + [(p, p) for p in pd])
    n, cin = x.shape[:2]
    cout, cin_g = w.shape[:2]
    k = w.shape[2:]
    outs = [(x.shape[2 + i] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(nd)]
    y = np.zeros((n, cout, *outs))
    for g in range(groups):
        xs = x[:, g * cin_g:(g + 1) * cin_g]
        ws = w[g * (cout // groups):(g + 1) * (cout // groups)].astype(np.float64)
        for off in np.ndindex(*k):
            sl = tuple(slice(o * d, o * d + (m - 1) * s + 1, s) for o, d, m, s in zip(off, dl, outs, st))
            patch = xs[(slice(None), slice(None)) + sl]  # (N, cin_g, *outs)
            y[:, g * (cout // groups):(g + 1) * (cout // groups)] += np.einsum(
                "nc...,oc->no...", patch, ws[(slice(None), slice(None)) + off])
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    return y.astype(np.float32)


def _z(*shape, dtype=np.float32):
    """A zero input made from numpy (no random-kernel compile: error tests need only shapes)."""
    return tracenn.tensor(np.zeros(shape, dtype))


def _to_torch(torch, m, tm):
    tm.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})


def _parity(torch, m, tm, x, *fargs, rtol=1e-4, atol=1e-5, **fkw):
    """Same weights, same input: outputs and all gradients agree."""
    _to_torch(torch, m, tm)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt, *fargs, **fkw), tm(tx, *fargs, **fkw)
    assert_close(out, tout, rtol=rtol, atol=atol)
    r = _rand(tuple(tout.shape), seed=1)
    out.backward(tracenn.tensor(r))
    tout.backward(torch.tensor(r))
    assert_close(xt.grad, tx.grad, rtol=rtol, atol=atol)
    for (name, p), (_, tp) in zip(m.named_parameters(), tm.named_parameters()):
        assert_close(p.grad, tp.grad, rtol=rtol, atol=atol * 10), name


# ---- NumPy references (no torch needed) ---------------------------------------------------------

@pytest.mark.parametrize("kw", [{}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding": (2, 1)},
                                {"groups": 2}, {"stride": (2, 1), "padding": (0, 1)}])
def test_conv2d_matches_numpy_reference(kw):
    x, w, b = _rand((2, 4, 7, 6)), _rand((6, 4 // kw.get("groups", 1), 3, 3), 1), _rand((6,), 2)
    out = F.conv2d(tracenn.tensor(x), tracenn.tensor(w), tracenn.tensor(b), **kw)
    assert_close(out, conv_ref(x, w, b, **kw), rtol=1e-4, atol=1e-5)


def test_conv2d_known_values_and_same_padding():
    x = tracenn.arange(16.).reshape(1, 1, 4, 4)
    w = tracenn.tensor([[[[0., 1.], [1., 0.]]]])
    assert F.conv2d(x, w).tolist() == [[[[5., 7., 9.], [13., 15., 17.], [21., 23., 25.]]]]
    same = F.conv2d(x, w, padding="same")  # even kernel: the extra row/column of padding goes at the end
    assert same.shape == (1, 1, 4, 4) and same[0, 0, :3, :3].tolist() == [[5., 7., 9.], [13., 15., 17.],
                                                                          [21., 23., 25.]]
    assert same[0, 0, 3].tolist() == [13., 14., 15., 0.]
    assert F.conv2d(x, w, padding="valid").shape == (1, 1, 3, 3)


def test_conv1d_and_conv3d_match_numpy_reference():
    x1, w1 = _rand((2, 3, 9)), _rand((4, 3, 3), 1)
    assert_close(F.conv1d(tracenn.tensor(x1), tracenn.tensor(w1), stride=2, dilation=2),
                 conv_ref(x1, w1, stride=2, dilation=2), rtol=1e-4, atol=1e-5)
    x3, w3 = _rand((1, 2, 4, 5, 3)), _rand((3, 2, 2, 3, 1), 1)
    assert_close(F.conv3d(tracenn.tensor(x3), tracenn.tensor(w3), padding=(1, 0, 1)),
                 conv_ref(x3, w3, padding=(1, 0, 1)), rtol=1e-4, atol=1e-5)


def test_conv2d_layer_unbatched_and_gradient_vs_numpy():
    m = nn.Conv2d(2, 4, 3, padding=1)
    x = _rand((2, 5, 5))
    xt = tracenn.tensor(x, requires_grad=True)
    out = m(xt)
    ref = conv_ref(x[None], to_np(m.weight), to_np(m.bias), padding=1)[0]
    assert_close(out, ref, rtol=1e-4, atol=1e-5)
    out.sum().backward()
    # d(sum)/dx[c, y, x] = the sum of the kernel taps (i, j) whose output (y - i + 1, x - j + 1) exists
    w = to_np(m.weight).sum(0)  # (2, 3, 3)
    expected = np.zeros((2, 5, 5))
    for y, xx, i, j in np.ndindex(5, 5, 3, 3):
        if 0 <= y - i + 1 < 5 and 0 <= xx - j + 1 < 5:
            expected[:, y, xx] += w[:, i, j]
    assert_close(xt.grad, expected.astype(np.float32), rtol=1e-4, atol=1e-5)
    assert_close(m.bias.grad, np.full(4, 25.0, np.float32))


def test_conv_transpose_is_the_input_gradient_of_conv():
    x, w = _rand((1, 3, 4, 5)), _rand((3, 2, 3, 3), 1)  # conv_transpose weight: (C_in, C_out, kh, kw)
    y = F.conv_transpose2d(tracenn.tensor(x), tracenn.tensor(w), stride=2, padding=1, output_padding=1)
    assert y.shape == (1, 2, 8, 10)
    # <conv_transpose(x), z> == <x, conv(z)> with the same weight (adjointness)
    z = _rand((1, 2, 8, 10), 2)
    cz = conv_ref(z, w, stride=2, padding=1)
    assert abs(float((to_np(y) * z).sum()) - float((x * cz).sum())) < 1e-3


def test_conv_transpose1d_known_values():
    y = F.conv_transpose1d(tracenn.tensor([[[1., 2., 3.]]]), tracenn.tensor([[[1., 10.]]]), stride=2, padding=0)
    assert y.tolist() == [[[1., 10., 2., 20., 3., 30.]]]
    y = F.conv_transpose1d(tracenn.tensor([[[1., 2.]]]), tracenn.tensor([[[1., 1., 1.]]]), dilation=2)
    assert y.tolist() == [[[1., 2., 1., 2., 1., 2.]]]


def test_unfold_fold_numpy():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    cols = F.unfold(tracenn.tensor(x), (2, 3), padding=1, stride=(2, 1))
    xp = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    blocks = [xp[:, :, i:i + 2, j:j + 3].reshape(2, -1) for i in range(0, 5, 2) for j in range(0, 5)]
    assert_close(cols, np.stack(blocks, -1))
    # fold sums each element once per block that covers it
    ones = tracenn.ones(1, 4, 4)
    folded = F.fold(F.unfold(ones, 2), (4, 4), 2)
    assert folded.tolist() == [[[1., 2., 2., 1.], [2., 4., 4., 2.], [2., 4., 4., 2.], [1., 2., 2., 1.]]]


def test_fold_gradient_is_unfold():
    cols = tracenn.tensor(_rand((1, 8, 6)), requires_grad=True)
    out = F.fold(cols, (3, 4), 2, dilation=1, padding=0, stride=1)
    g = tracenn.tensor(_rand(tuple(out.shape), 3))
    (out * g).sum().backward()
    assert_close(cols.grad, F.unfold(g, 2), rtol=1e-6)


# ---- parity with PyTorch ------------------------------------------------------------------------

SLOW = pytest.mark.slow
# Rows share layer shapes on purpose: each new parameter shape costs a kernel compile (~1 s on a
# loaded CPU) for its random init; the slow rows widen the sweep.
CONVS = [  # (nd, in, out, kernel, kwargs, batched)
    (1, 2, 4, 3, {"stride": 2, "padding": 1, "groups": 2}, True),
    (2, 2, 4, 3, {"padding": 1}, True),
    pytest.param(2, 2, 4, 3, {"padding": 1}, False, marks=SLOW),  # unbatched: the layer test above
    (2, 2, 4, 3, {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}, True),
    (2, 2, 4, 3, {"padding": "same", "padding_mode": "reflect", "bias": False}, True),
    (2, 2, 4, 3, {"padding": (2, 1), "padding_mode": "circular", "stride": 2}, False),
    pytest.param(3, 2, 4, 3, {"padding": 1, "stride": (2, 1, 1)}, True, marks=SLOW),  # 3-D forward: numpy test
    pytest.param(1, 3, 4, 3, {}, False, marks=SLOW),
    pytest.param(1, 2, 3, 3, {"padding": "same", "dilation": 2, "padding_mode": "circular"}, True, marks=SLOW),
    pytest.param(2, 4, 4, (3, 2), {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 4}, False,
                 marks=SLOW),
    pytest.param(2, 2, 3, 4, {"padding": "same"}, True, marks=SLOW),
    pytest.param(2, 2, 3, 3, {"padding": "valid", "bias": False}, True, marks=SLOW),
    pytest.param(2, 2, 3, 3, {"padding": (1, 2), "padding_mode": "replicate", "stride": 2}, True, marks=SLOW),
    pytest.param(3, 2, 2, 2, {"padding": 1, "stride": (1, 2, 1)}, False, marks=SLOW),
]


@pytest.mark.parametrize("nd,cin,cout,k,kw,batched", CONVS)
def test_conv_matches_torch(torch, nd, cin, cout, k, kw, batched):
    name = f"Conv{nd}d"
    m, tm = getattr(nn, name)(cin, cout, k, **kw), getattr(torch.nn, name)(cin, cout, k, **kw)
    assert repr(m) == repr(tm)
    shape = (cin,) + (6, 5, 4)[:nd]
    _parity(torch, m, tm, _rand(((2,) if batched else ()) + shape))


CONV_TS = [  # (nd, in, out, kernel, kwargs, batched)
    (1, 2, 4, 3, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, True),
    (2, 2, 4, 3, {"stride": 2, "padding": 1, "output_padding": 1}, True),
    pytest.param(2, 2, 4, 3, {"stride": 2, "padding": 1, "output_padding": 1}, False, marks=SLOW),
    pytest.param(2, 2, 4, 3, {"stride": (1, 2), "dilation": 2, "groups": 2, "bias": False, "padding": 2}, True,
                 marks=SLOW),
    pytest.param(3, 2, 4, 3, {"stride": 2, "padding": (0, 1, 0)}, False, marks=SLOW),
    pytest.param(1, 3, 2, 3, {"stride": 2}, False, marks=SLOW),
    pytest.param(1, 4, 4, 2, {"stride": 3, "padding": 1, "output_padding": 2, "groups": 2}, True, marks=SLOW),
    pytest.param(2, 4, 2, (2, 3), {"stride": (1, 2), "dilation": (2, 1), "groups": 2, "bias": False}, True,
                 marks=SLOW),
    pytest.param(2, 2, 3, 3, {"padding": 2, "dilation": 2, "output_padding": 1}, True, marks=SLOW),
    pytest.param(3, 2, 2, 2, {"stride": 2, "padding": (0, 1, 0)}, True, marks=SLOW),
]


@pytest.mark.parametrize("nd,cin,cout,k,kw,batched", CONV_TS)
def test_conv_transpose_matches_torch(torch, nd, cin, cout, k, kw, batched):
    name = f"ConvTranspose{nd}d"
    m, tm = getattr(nn, name)(cin, cout, k, **kw), getattr(torch.nn, name)(cin, cout, k, **kw)
    assert repr(m) == repr(tm)
    shape = (cin,) + (4, 3, 3)[:nd]
    _parity(torch, m, tm, _rand(((2,) if batched else ()) + shape))


def test_conv_transpose_output_size_matches_torch(torch):
    m, tm = nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(2, 4, 3, stride=2, padding=1)
    x = _rand((2, 2, 4, 3))
    _parity(torch, m, tm, x, output_size=[8, 6])
    _parity(torch, m, tm, x[0], output_size=(4, 7, 6))  # unbatched: (C, H, W) sizes are accepted too
    assert m(tracenn.tensor(x), output_size=tracenn.Size([2, 4, 8, 5])).shape == (2, 4, 8, 5)


def test_functional_conv_matches_torch(torch):
    x, w, b = _rand((2, 4, 6, 5)), _rand((4, 2, 2, 2), 1), _rand((4,), 2)
    for kw in ({"stride": 2, "groups": 2}, {"padding": "same", "dilation": 2, "groups": 2}):
        assert_close(F.conv2d(tracenn.tensor(x), tracenn.tensor(w), tracenn.tensor(b), **kw),
                     torch.nn.functional.conv2d(torch.tensor(x), torch.tensor(w), torch.tensor(b), **kw),
                     rtol=1e-4, atol=1e-5)
    wt = _rand((4, 3, 3, 3), 3)
    assert_close(F.conv_transpose2d(tracenn.tensor(x), tracenn.tensor(wt), None, 2, 1, 1, 1, 1),
                 torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(wt), None, 2, 1, 1, 1, 1),
                 rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kw,batched", [
    ({"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}, True),
    pytest.param({"kernel_size": 2}, False, marks=SLOW),
    pytest.param({"kernel_size": 2}, True, marks=SLOW),
    pytest.param({"kernel_size": (2, 3), "dilation": (1, 2), "padding": 1, "stride": (2, 1)}, False, marks=SLOW)])
def test_fold_unfold_match_torch(torch, kw, batched):
    x = _rand(((2,) if batched else ()) + (3, 5, 6))
    u, tu = nn.Unfold(**kw), torch.nn.Unfold(**kw)
    assert repr(u) == repr(tu)
    _parity(torch, u, tu, x, rtol=1e-6, atol=1e-6)
    cols = to_np(u(tracenn.tensor(x)))
    f, tf = nn.Fold((5, 6), **kw), torch.nn.Fold((5, 6), **kw)
    assert repr(f) == repr(tf)
    _parity(torch, f, tf, cols, rtol=1e-5, atol=1e-5)


# ---- parameters, init, repr ---------------------------------------------------------------------

def test_conv_parameter_names_shapes_and_attributes(lib):
    m = lib.nn.Conv2d(2, 4, 3, stride=2, padding=(1, 0), groups=2)
    assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == [("weight", (4, 1, 3, 3)), ("bias", (4,))]
    assert (m.kernel_size, m.stride, m.padding, m.dilation, m.output_padding) == ((3, 3), (2, 2), (1, 0), (1, 1),
                                                                                 (0, 0))
    assert m._reversed_padding_repeated_twice == (0, 0, 1, 1)
    t = lib.nn.ConvTranspose1d(2, 4, 3, groups=2, bias=False)
    assert [(n, tuple(p.shape)) for n, p in t.named_parameters()] == [("weight", (2, 2, 3))]
    assert t.transposed and t.bias is None
    s = lib.nn.Conv2d(2, 4, 3, padding="same", dilation=(2, 1))
    assert s._reversed_padding_repeated_twice == [1, 1, 2, 2]


def test_conv_default_init_bounds():
    m = nn.Conv2d(8, 64, 3)
    fan_in = 8 * 9
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) gives gain*sqrt(3/fan_in) = 1/sqrt(fan_in)
    w, b = to_np(m.weight), to_np(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.98 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert np.abs(b).max() <= bound
    t = nn.ConvTranspose2d(2, 4, 3, groups=2)  # fan_in of a transposed weight: (out/groups) * k*k
    tb = 1 / math.sqrt(2 * 9)
    assert np.abs(to_np(t.weight)).max() <= tb and np.abs(to_np(t.bias)).max() <= tb
    tracenn.manual_seed(5)
    a = nn.Conv1d(2, 4, 3, groups=2)
    tracenn.manual_seed(5)
    assert np.array_equal(to_np(a.weight), to_np(nn.Conv1d(2, 4, 3, groups=2).weight))


REPRS = [  # layer shapes reused from the tests above (each new shape compiles its random init)
    ("Conv1d(2, 4, 3, stride=2, padding=1, groups=2)",
     "Conv1d(2, 4, kernel_size=(3,), stride=(2,), padding=(1,), groups=2)"),
    ("Conv2d(2, 4, (3, 3), stride=(2, 1), padding=(4, 2), dilation=(3, 1))",
     "Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 1), padding=(4, 2), dilation=(3, 1))"),
    ("Conv2d(2, 4, 3, padding='same', groups=2, bias=False, padding_mode='reflect')",
     "Conv2d(2, 4, kernel_size=(3, 3), stride=(1, 1), padding=same, groups=2, bias=False, padding_mode=reflect)"),
    ("Conv3d(2, 4, 3, padding='valid')", "Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=valid)"),
    ("ConvTranspose2d(2, 4, 3, stride=2, padding=1, output_padding=1, dilation=2)",
     "ConvTranspose2d(2, 4, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
     "output_padding=(1, 1))"),
    ("ConvTranspose1d(2, 4, 3, groups=2, bias=False)",
     "ConvTranspose1d(2, 4, kernel_size=(3,), stride=(1,), groups=2, bias=False)"),
    ("Fold((4, 5), 2, padding=1)", "Fold(output_size=(4, 5), kernel_size=2, dilation=1, padding=1, stride=1)"),
    ("Unfold(3, dilation=2)", "Unfold(kernel_size=3, dilation=2, padding=0, stride=1)"),
]


@pytest.mark.parametrize("ctor,text", REPRS)
def test_reprs_are_torchs(lib, ctor, text):
    assert repr(eval("lib.nn." + ctor)) == text


# ---- errors -------------------------------------------------------------------------------------

CTOR_ERRORS = [
    (lambda lib: lib.nn.Conv2d(3, 4, 3, groups=0), ValueError, "groups must be a positive integer"),
    (lambda lib: lib.nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
    (lambda lib: lib.nn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
    (lambda lib: lib.nn.Conv2d(1, 1, 3, padding="full"), ValueError, "Invalid padding string 'full'"),
    (lambda lib: lib.nn.Conv2d(1, 1, 3, padding="same", stride=2), ValueError,
     "padding='same' is not supported for strided convolutions"),
    (lambda lib: lib.nn.Conv1d(1, 1, 3, padding_mode="edge"), ValueError,
     "but got padding_mode='edge'"),
    (lambda lib: lib.nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect"), ValueError,
     'Only "zeros" padding mode is supported for ConvTranspose2d'),
]


@pytest.mark.parametrize("make,exc,text", CTOR_ERRORS)
def test_constructor_errors_match_torch(lib, make, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        make(lib)


def test_conv_layer_errors_name_the_layer_and_what_it_expected():
    m = nn.Conv2d(2, 4, 3)
    with pytest.raises(RuntimeError, match=r"^Conv2d\(2, 4, kernel_size=\(3, 3\), stride=\(1, 1\)\): input of "
                                           r"spatial size \(2, 2\) is smaller than the kernel \(3, 3\) in dims 2 "
                                           r"and 3; feed a larger input, add padding, or use a smaller kernel_size"):
        m(_z(1, 2, 2, 2))
    with pytest.raises(RuntimeError, match=r"input of spatial size \(5, 2\) is smaller than the kernel \(3, 3\) "
                                           r"in dim 2;"):
        m(_z(2, 5, 2))  # unbatched: the width is dim 2
    with pytest.raises(RuntimeError, match=r"Conv2d\(.*\): expected input with 2 channels in dim 1, got input of "
                                           r"shape \(1, 3, 5, 5\)"):
        m(_z(1, 3, 5, 5))
    with pytest.raises(RuntimeError, match=r"Conv2d\(.*\): expected 3D \(unbatched\) or 4D \(batched\) input, but "
                                           r"got input of size: \[5, 5\]"):
        m(_z(5, 5))
    with pytest.raises(RuntimeError, match=r"expected input with 2 channels \(groups=2 x 1 per group\) in dim 0"):
        nn.Conv1d(2, 4, 3, groups=2)(_z(3, 5))
    with pytest.raises(RuntimeError, match=r"padded input size \(4, 4\), dilated kernel size \(5, 5\)"):
        nn.Conv2d(2, 4, 3, padding=1, dilation=2)(_z(2, 2, 2))
    with pytest.raises(RuntimeError, match=r"input and weight must have the same dtype, got input tracenn.float64"):
        m(_z(1, 2, 5, 5, dtype=np.float64))


def test_functional_and_transposed_errors():
    with pytest.raises(RuntimeError, match=r"^conv2d\(\): input of spatial size \(2, 2\) is smaller than the "
                                           r"kernel \(3, 3\)"):
        F.conv2d(_z(1, 1, 2, 2), _z(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match=r"ConvTranspose2d\(2, 4, .*\): output padding must be smaller than "
                                           r"either stride or dilation"):
        nn.ConvTranspose2d(2, 4, 3, output_padding=1)(_z(1, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"Calculated output size per channel: \(-1, -1\)\. Output size is too "
                                           r"small"):
        F.conv_transpose2d(_z(1, 1, 1, 1), _z(1, 1, 1, 1), padding=1)
    with pytest.raises(ValueError, match=r"ConvTranspose1d\(.*\): requested an output size of \[9\], but valid "
                                         r"sizes range from \[7\] to \[8\] \(for an input of \[3\]\)"):
        nn.ConvTranspose1d(2, 4, 3, stride=2, groups=2)(_z(1, 2, 3), output_size=[9])
    with pytest.raises(TypeError, match="transposed convolutions have no 'same'/'valid' padding"):
        F.conv_transpose1d(_z(1, 1, 3), _z(1, 1, 1), padding="same")


def test_fold_unfold_errors():
    with pytest.raises(RuntimeError, match=r"^Unfold\(kernel_size=3, .*\): Given input with spatial size \(2, 2\), "
                                           r"kernel_size=\(3, 3\), .*calculated shape of the array of sliding blocks "
                                           r"as \(0, 0\)"):
        nn.Unfold(3)(_z(1, 1, 2, 2))
    with pytest.raises(RuntimeError, match=r"fold\(\): Expected size of input's dimension 1 to be divisible by the "
                                           r"product of kernel_size, but got input.size\(1\)=5 and kernel_size=\(2, 2\)"):
        F.fold(_z(1, 5, 9), (4, 4), 2)
    with pytest.raises(RuntimeError, match=r"sliding blocks 3 \* 3 = 9, but got input.size\(2\)=8"):
        F.fold(_z(1, 4, 8), (4, 4), 2)
    with pytest.raises(RuntimeError, match=r"only 2-D spatial blocks are supported"):
        F.unfold(_z(1, 1, 1, 2, 2), 1)
