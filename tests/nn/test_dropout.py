"""Dropout family: identity out of training, the statistics of the masks in training (zero fraction,
scale, preserved mean/variance), whole-channel masks, gradients, seeds, reprs and errors."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

SHAPE = (128, 16, 2, 2)  # 8192 elements, 2048 channels: one shape for every test (one compile each)
FUNCS = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]
MODULES = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]
# the input rank each function is meant for (dropout3d's 4-D input is one unbatched sample)
RANK_SHAPE = {"dropout": SHAPE, "dropout1d": (128, 16, 4), "dropout2d": SHAPE, "dropout3d": SHAPE,
              "alpha_dropout": SHAPE, "feature_alpha_dropout": SHAPE}


def _ones(name="dropout", requires_grad=False):
    return tracenn.ones(*RANK_SHAPE[name], requires_grad=requires_grad)


@pytest.mark.parametrize("name", FUNCS)
def test_identity_out_of_training_or_with_p_zero(name):
    x = _ones(name)
    assert getattr(F, name)(x, 0.5, training=False) is x
    assert getattr(F, name)(x, 0.0, training=True) is x


@pytest.mark.parametrize("name", MODULES)
def test_modules_are_identity_in_eval_mode(name):
    m = getattr(nn, name)(0.5)
    x = _ones("dropout1d" if name == "Dropout1d" else "dropout")
    assert m.eval()(x) is x
    assert m.train()(x) is not x


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_statistics(p):
    y = to_np(F.dropout(_ones(), p))
    zero = (y == 0).mean()
    assert abs(zero - p) < 0.03
    assert np.allclose(y[y != 0], 1 / (1 - p))
    assert abs(y.mean() - 1) < 0.1  # the expectation is kept


def test_gradient_is_the_scaled_mask():
    x = _ones(requires_grad=True)
    y = F.dropout(x, 0.25)
    y.backward(tracenn.ones_like(y))
    assert_close(x.grad, to_np(y))  # d(x * mask / (1-p)) / dx, and y = mask / (1-p) for x = 1


def test_masks_come_from_tracenns_generator():
    x = _ones()
    tracenn.manual_seed(7)
    a = to_np(F.dropout(x, 0.5))
    b = to_np(F.dropout(x, 0.5))
    tracenn.manual_seed(7)
    assert np.array_equal(a, to_np(F.dropout(x, 0.5)))
    assert not np.array_equal(a, b)  # a new mask on every call


@pytest.mark.parametrize("name,shape,per", [
    ("dropout1d", (128, 16, 4), 2), ("dropout1d", (2048, 4), 1), ("dropout2d", SHAPE, 2),
    ("dropout3d", SHAPE + (1,), 2), ("dropout3d", SHAPE, 1), ("feature_alpha_dropout", SHAPE, 2)])
def test_feature_dropout_masks_whole_channels(name, shape, per):
    y = to_np(getattr(F, name)(tracenn.ones(*shape), 0.5, training=True))
    slices = y.reshape(int(np.prod(shape[:per])), -1)
    assert (slices.min(1) == slices.max(1)).all()  # every channel kept or dropped whole
    assert 0.3 < (slices[:, 0] == slices[:, 0].min()).mean() < 0.7


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_alpha_dropout_keeps_mean_and_variance(p):
    tracenn.manual_seed(3)
    x = tracenn.randn(*SHAPE)
    y = to_np(F.alpha_dropout(x, p, training=True))
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05
    a = 1 / np.sqrt((1.7580993408473766 ** 2 * p + 1) * (1 - p))
    dropped = np.isclose(y, 1.7580993408473766 * a * (p - 1), rtol=0, atol=1e-6)
    assert abs(dropped.mean() - p) < 0.03


def test_alpha_dropout_constants_match_torch(torch):
    """The dropped value and the affine map of kept values are torch's."""
    p = 0.3
    x = np.linspace(-2, 2, int(np.prod(SHAPE)), dtype=np.float32).reshape(SHAPE)
    ours = to_np(F.alpha_dropout(tracenn.tensor(x), p, training=True))
    theirs = torch.nn.functional.alpha_dropout(torch.tensor(x), p, training=True).numpy()
    a = 1 / np.sqrt((1.7580993408473766 ** 2 * p + 1) * (1 - p))
    for y in (ours, theirs):
        dropped_value = np.float32(1.7580993408473766 * a * (p - 1))
        kept = ~np.isclose(y, dropped_value, rtol=0, atol=1e-6)
        np.testing.assert_allclose(y[kept], x[kept] * a + 1.7580993408473766 * a * p, rtol=1e-5, atol=1e-6)
        assert abs((~kept).mean() - p) < 0.03


def test_p_one_zeroes_everything_with_zero_gradient():
    x = _ones(requires_grad=True)
    y = F.dropout(x, 1.0)
    y.backward(tracenn.ones_like(y))
    assert not to_np(y).any() and not to_np(x.grad).any()
    assert not to_np(F.alpha_dropout(_ones(), 1.0, training=True)).any()


def test_inplace():
    x = _ones()
    assert F.dropout(x, 0.5, inplace=True) is x
    assert set(np.unique(to_np(x))) == {0.0, 2.0}
    y = tracenn.ones(16, 4)
    assert nn.Dropout1d(0.5, inplace=True)(y) is y and set(np.unique(to_np(y))) == {0.0, 2.0}


def test_reprs(lib):
    assert repr(lib.nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(lib.nn.Dropout2d(0.1, inplace=True)) == "Dropout2d(p=0.1, inplace=True)"
    assert repr(lib.nn.AlphaDropout(0.2)) == "AlphaDropout(p=0.2, inplace=False)"
    assert repr(lib.nn.FeatureAlphaDropout()) == "FeatureAlphaDropout(p=0.5, inplace=False)"
    assert repr(lib.nn.Sequential(lib.nn.Identity(), lib.nn.Dropout1d())) == (
        "Sequential(\n  (0): Identity()\n  (1): Dropout1d(p=0.5, inplace=False)\n)")


def test_sequential_train_eval_toggle():
    net = nn.Sequential(nn.Identity(), nn.Dropout(0.5))
    x = _ones()
    assert (to_np(net(x)) == 0).any()
    net.eval()
    assert_close(net(x), to_np(x))


def test_errors(lib):
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        lib.nn.functional.dropout(lib.ones(2), 1.5)
    with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got -0.1"):
        lib.nn.Dropout(-0.1)
    with pytest.raises(RuntimeError, match="dropout1d: Expected 2D or 3D input, but received a 4D input"):
        lib.nn.functional.dropout1d(lib.ones(2, 2, 2, 2))
    with pytest.warns(UserWarning, match="dropout2d: Received a 2-D input to dropout2d"):
        lib.nn.functional.dropout2d(lib.ones(4, 4), training=False)
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout behavior is desired"):
        lib.nn.functional.dropout2d(lib.ones(4, 4, 4), training=False)
    with pytest.warns(UserWarning, match="dropout3d: Received a 3-D input to dropout3d"):
        lib.nn.functional.dropout3d(lib.ones(4, 4, 4), training=False)
