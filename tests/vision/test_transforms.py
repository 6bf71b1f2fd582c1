"""ToTensor / Normalize / Compose / Lambda: torchvision's behaviour on numpy images."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from tracenn.vision import transforms as T


def test_to_tensor_uint8_hw_and_hwc():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    x = T.ToTensor()(img)
    assert x.shape == (1, 3, 4) and x.dtype is tracenn.float32
    np.testing.assert_array_equal(x.numpy()[0], img.astype(np.float32) / np.float32(255))
    rgb = np.stack([img, img // 2, img // 4], axis=-1)
    y = T.ToTensor()(rgb)
    assert y.shape == (3, 3, 4)
    np.testing.assert_array_equal(y.numpy()[2], (img // 4).astype(np.float32) / np.float32(255))


def test_to_tensor_keeps_non_uint8_values():
    x = T.ToTensor()(np.full((2, 2, 1), 7.5, dtype=np.float64))
    assert x.dtype is tracenn.float64 and x.shape == (1, 2, 2) and x.max().item() == 7.5


def test_to_tensor_follows_default_dtype():
    tracenn.set_default_dtype(tracenn.float64)
    assert T.ToTensor()(np.zeros((2, 2), np.uint8)).dtype is tracenn.float64


def test_to_tensor_errors():
    with pytest.raises(TypeError, match="pic should be a numpy array"):
        T.ToTensor()([[1, 2]])
    with pytest.raises(ValueError, match="pic should be 2/3 dimensional. Got 1 dimensions."):
        T.ToTensor()(np.zeros(3, np.uint8))


def test_to_tensor_matches_torch(torch):
    img = np.random.RandomState(0).randint(0, 256, size=(5, 6, 3)).astype(np.uint8)
    theirs = torch.from_numpy(img.transpose(2, 0, 1).copy()).float().div(255)
    np.testing.assert_array_equal(T.ToTensor()(img).numpy(), theirs.numpy())


def test_normalize():
    x = tracenn.ones(2, 2, 2)
    y = T.Normalize((0.5, 1.0), (0.5, 2.0))(x)
    assert y[0].tolist() == [[1.0, 1.0], [1.0, 1.0]] and y[1].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    batch = T.Normalize([0.1307], [0.3081])(tracenn.zeros(4, 1, 2, 2))  # (..., C, H, W)
    assert batch.shape == (4, 1, 2, 2)
    assert abs(batch[0, 0, 0, 0].item() - (-0.1307 / 0.3081)) < 1e-6
    z = tracenn.ones(1, 1, 1)
    assert T.Normalize((1.0,), (1.0,), inplace=True)(z) is z and z.item() == 0.0


def test_normalize_errors():
    with pytest.raises(TypeError, match="Input tensor should be a float tensor. Got tracenn.int64."):
        T.Normalize((0.0,), (1.0,))(tracenn.zeros(1, 1, 1, dtype=tracenn.int64))
    with pytest.raises(ValueError, match="Expected tensor to be a tensor image of size"):
        T.Normalize((0.0,), (1.0,))(tracenn.zeros(2, 2))
    with pytest.raises(ValueError, match="std evaluated to zero after conversion to tracenn.float32"):
        T.Normalize((0.0,), (0.0,))(tracenn.zeros(1, 2, 2))


def test_compose_lambda_and_reprs():
    t = T.Compose([T.ToTensor(), T.Lambda(lambda x: x * 2), T.Normalize((0.1307,), (0.3081,))])
    out = t(np.full((2, 2), 255, np.uint8))
    assert abs(out[0, 0, 0].item() - (2 - 0.1307) / 0.3081) < 1e-5
    assert repr(t) == "Compose(\n    ToTensor()\n    Lambda()\n    Normalize(mean=(0.1307,), std=(0.3081,))\n)"
    with pytest.raises(TypeError, match="Argument lambd should be callable, got 'int'"):
        T.Lambda(3)
