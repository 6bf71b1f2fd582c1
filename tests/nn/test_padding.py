"""F.pad (constant/reflect/replicate/circular, negative widths) and the padding layers: NumPy
references, parity with PyTorch (values and gradients), pinned reprs, errors."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close

SLOW = pytest.mark.slow


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _np_pad(x, pad, mode, value=0.0):
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(len(pad) // 2))]
    if mode == "constant":
        return np.pad(x, widths, constant_values=value)
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_matches_numpy(mode):
    x = _rand((2, 3, 4, 5))
    pad = (1, 2, 3, 0)
    assert_close(F.pad(tracenn.tensor(x), pad, mode=mode), _np_pad(x, pad, mode))


def test_pad_known_values_and_negative_widths():
    x = tracenn.tensor([[[1., 2., 3., 4.]]])
    assert F.pad(x, (1, 1), value=-1.0).tolist() == [[[-1., 1., 2., 3., 4., -1.]]]
    assert F.pad(x, (-1, 2)).tolist() == [[[2., 3., 4., 0., 0.]]]
    # reflect/replicate pad from the whole input, then crop; circular crops first, then wraps
    assert F.pad(x, (-1, 2), mode="reflect").tolist() == [[[2., 3., 4., 3., 2.]]]
    assert F.pad(x, (-1, 2), mode="replicate").tolist() == [[[2., 3., 4., 4., 4.]]]
    assert F.pad(x, (-1, 2), mode="circular").tolist() == [[[2., 3., 4., 2., 3.]]]
    assert F.pad(tracenn.tensor([1, 2]), (1, 0), value=2.7).tolist() == [2, 1, 2]  # the fill takes the dtype
    assert F.pad(x, (0, 0)).tolist() == x.tolist()


def test_pad_gradient_sums_the_copies():
    x = tracenn.tensor([[[1., 2., 3.]]], requires_grad=True)
    F.pad(x, (2, 2), mode="reflect").sum().backward()  # [3 2 | 1 2 3 | 2 1]
    assert x.grad.tolist() == [[[2., 3., 2.]]]
    y = tracenn.tensor([[[1., 2., 3.]]], requires_grad=True)
    F.pad(y, (2, 1), mode="replicate").sum().backward()
    assert y.grad.tolist() == [[[3., 1., 2.]]]


PADS = [  # (layer, args, input shape)
    ("ZeroPad2d", ((1, 0, 2, -1),), (2, 3, 4, 5)),
    ("ConstantPad1d", ((2, 1), 3.5), (3, 4)),
    ("ConstantPad3d", (1, -2.0), (1, 2, 2, 3, 2)),
    ("ReflectionPad2d", ((2, 1, 0, 3),), (3, 4, 5)),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), (1, 2, 2, 3, 2)),
    ("CircularPad2d", ((1, 2, 2, 0),), (2, 3, 4, 5)),
    pytest.param("ZeroPad1d", (2,), (2, 3, 4), marks=SLOW),
    pytest.param("ZeroPad3d", ((1, 0, 0, 1, 1, 0),), (2, 2, 3, 2), marks=SLOW),
    pytest.param("ConstantPad2d", ((1, 1, 0, 2), 1.0), (2, 3, 4, 5), marks=SLOW),
    pytest.param("ReflectionPad1d", (3,), (2, 3, 4), marks=SLOW),
    pytest.param("ReflectionPad3d", (1,), (2, 2, 3, 2), marks=SLOW),
    pytest.param("ReplicationPad1d", ((3, 1),), (3, 4), marks=SLOW),
    pytest.param("ReplicationPad2d", ((0, 2, 1, 1),), (2, 3, 4, 5), marks=SLOW),
    pytest.param("CircularPad1d", ((4, 1),), (2, 3, 4), marks=SLOW),
    pytest.param("CircularPad3d", ((1, 1, 0, 2, 1, 0),), (1, 2, 2, 3, 2), marks=SLOW),
]


@pytest.mark.parametrize("name,args,shape", PADS)
def test_padding_layers_match_torch(torch, name, args, shape):
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(tm)
    x = _rand(shape)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt), tm(tx)
    assert_close(out, tout)
    g = _rand(tuple(tout.shape), 1)
    out.backward(tracenn.tensor(g))
    tout.backward(torch.tensor(g))
    assert_close(xt.grad, tx.grad)


REPRS = [
    ("ZeroPad2d(2)", "ZeroPad2d((2, 2, 2, 2))"),
    ("ConstantPad1d(3, 1.5)", "ConstantPad1d(padding=(3, 3), value=1.5)"),
    ("ConstantPad3d((1, 2, 3, 4, 5, 6), 0)", "ConstantPad3d(padding=(1, 2, 3, 4, 5, 6), value=0)"),
    ("ReflectionPad1d((1, 2))", "ReflectionPad1d((1, 2))"),
    ("ReplicationPad3d(1)", "ReplicationPad3d((1, 1, 1, 1, 1, 1))"),
    ("CircularPad2d([1, 0, 1, 0])", "CircularPad2d((1, 0, 1, 0))"),
]


@pytest.mark.parametrize("ctor,text", REPRS)
def test_reprs_are_torchs(lib, ctor, text):
    m = eval("lib.nn." + ctor)
    assert repr(m) == text and isinstance(m.padding, tuple)


def test_pad_errors():
    x = tracenn.tensor(np.zeros((1, 2, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"^pad\(\): Padding length must be divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(RuntimeError, match=r"Padding length should be less than or equal to two times the input "
                                           r"dimension but got padding length 8 and input of dimension 3"):
        F.pad(x, (1,) * 8)
    with pytest.raises(NotImplementedError, match=r"Unrecognised padding mode foo"):
        F.pad(x, (1, 1), mode="foo")
    with pytest.raises(RuntimeError, match=r"Padding size should be less than the corresponding input dimension, "
                                           r"but got: padding \(3, 3\) at dimension 2 of input \[1, 2, 3\]; use "
                                           r"mode='replicate' or a smaller padding"):
        F.pad(x, (3, 3), mode="reflect")
    with pytest.raises(RuntimeError, match=r"Padding value causes wrapping around more than once"):
        F.pad(x, (4, 0), mode="circular")
    with pytest.raises(NotImplementedError, match=r"Padding size 2 is not supported for 1D input tensor"):
        F.pad(tracenn.tensor([1., 2.]), (1, 1), mode="reflect")
    with pytest.raises(RuntimeError, match=r'Padding mode "reflect" doesn\'t take in value argument'):
        F.pad(x, (1, 1), mode="reflect", value=1.0)
    with pytest.raises(RuntimeError, match=r"would give a negative size"):
        F.pad(x, (-2, -2))
    with pytest.raises(ValueError, match=r"^CircularPad2d\(\(1, 1, 1, 1\)\): expected 3D or 4D input \(got 2D "
                                         r"input\)"):
        nn.CircularPad2d(1)(tracenn.tensor(np.zeros((2, 2), np.float32)))
    with pytest.raises(RuntimeError, match=r"^ReflectionPad2d\(\(4, 4, 4, 4\)\): Argument #4: Padding size should be "
                                           r"less than the corresponding input dimension"):
        nn.ReflectionPad2d(4)(x)
