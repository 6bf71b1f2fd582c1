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


# float() of a tensor that requires grad warns once per process (as torch): which test would see it
# depends on the order tests run in, so the suite starts with it said (its own test resets it).
import sys  # noqa: E402
sys.modules["tracenn.tensor"]._float_warned[0] = True


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
