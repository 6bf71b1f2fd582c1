"""Shared test helpers. PyTorch is an optional oracle: tests that need it take the ``torch``
fixture and are skipped cleanly when it is not installed."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


@pytest.fixture
def torch():
    """The real PyTorch, or skip the test."""
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts with the same seed, grad mode on, float32 default."""
    tracenn.manual_seed(0)
    tracenn.set_default_dtype(tracenn.float32)
    prev = tracenn.is_grad_enabled()
    tracenn.set_grad_enabled(True)
    yield
    tracenn.set_grad_enabled(prev)
    tracenn.set_default_dtype(tracenn.float32)


def to_np(x) -> np.ndarray:
    """numpy values of a tracenn tensor, a torch tensor, or anything array-like."""
    if isinstance(x, tracenn.Tensor):
        return np.asarray(x.detach()._value)
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # torch.Tensor
        t = x.detach()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return np.asarray(x)


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, check_dtype=True):
    a, e = to_np(actual), to_np(expected)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    if check_dtype:
        assert a.dtype == e.dtype or str(a.dtype) == str(e.dtype).replace("torch.", ""), f"dtype {a.dtype} != {e.dtype}"
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype.kind not in "bc" else a,
                               e.astype(np.float64) if e.dtype.kind not in "bc" else e,
                               rtol=rtol, atol=atol, equal_nan=True)
