"""Binning a coordinate into grid cells, as particle/mesh codes do: ``torch.div(x, h,
rounding_mode="trunc")`` must truncate the correctly rounded quotient, as torch does. XLA turns a
division by a broadcast value into a multiplication by its reciprocal, which moved a quarter of
the quotients by an ulp and, at exact multiples of the cell size, the cell by one."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def _multiples(h, n=20000, seed=0):
    k = np.random.default_rng(seed).integers(-1000, 1000, n).astype(np.float32)
    return (k * np.float32(h)).astype(np.float32)


@pytest.mark.parametrize("h", [0.7, 0.1, -1.9])
def test_trunc_division_by_a_scalar_as_numpy(h):
    x = _multiples(h)
    want = np.trunc(x / np.float32(h))  # NumPy: IEEE division in float32, then trunc (torch's kernel)
    np.testing.assert_array_equal(tracenn.div(tracenn.tensor(x), h, rounding_mode="trunc").numpy(), want)
    step = tracenn.compile(lambda t: tracenn.div(t, h, rounding_mode="trunc"))
    np.testing.assert_array_equal(step(tracenn.tensor(x)).numpy(), want)


def test_trunc_division_by_a_broadcast_column_as_numpy():
    x = _multiples(0.3, 600).reshape(200, 3)
    cell = np.full((200, 1), np.float32(0.3), np.float32)
    want = np.trunc(x / cell)
    step = tracenn.compile(lambda a, b: tracenn.div(a, b, rounding_mode="trunc"))
    got = step(tracenn.tensor(x), tracenn.tensor(cell))
    np.testing.assert_array_equal(got.numpy(), want)


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = _multiples(0.7, seed=1)
    np.testing.assert_array_equal(tracenn.div(tracenn.tensor(x), 0.7, rounding_mode="trunc").numpy(),
                                  torch.div(torch.tensor(x), 0.7, rounding_mode="trunc").numpy())
