"""Shared problem for the optimizer tests.

``Problem`` holds two parameters (shapes (3, 4) and (5,), reused by every test so compiled kernels
are cached) and a gradient rule computed in NumPy float32 from the current parameter values and
the step number. tracenn and torch get bit-identical gradients for identical parameters, so a
trajectory comparison measures the optimizers' arithmetic alone.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from helpers import to_np

SHAPES = ((3, 4), (5,))
_rng = np.random.default_rng(1234)
P0 = [_rng.standard_normal(s).astype(np.float32) for s in SHAPES]
TARGET = [_rng.standard_normal(s).astype(np.float32) for s in SHAPES]
NOISE = [[_rng.standard_normal(s).astype(np.float32) * np.float32(0.3) for s in SHAPES] for _ in range(32)]


def grad_rule(values: list[np.ndarray], k: int) -> list[np.ndarray]:
    """d/dp of a bumpy quadratic, plus a fixed per-step 'minibatch' noise (float32 throughout)."""
    return [(np.float32(2) * (v - t) + np.float32(0.5) * np.sin(np.float32(3) * v) + n).astype(np.float32)
            for v, t, n in zip(values, TARGET, NOISE[k % len(NOISE)])]


class Problem:
    """The two parameters as ``lib`` tensors and a way to set their gradients."""

    def __init__(self, lib, init=None, dtype=None):
        dtype = dtype or lib.float32
        self.lib = lib
        self.k = 0
        self.params = [lib.nn.Parameter(lib.tensor(v.copy(), dtype=dtype)) for v in (init or P0)]

    def values(self) -> list[np.ndarray]:
        return [to_np(p).copy() for p in self.params]

    def set_grads(self, skip=()):
        grads = grad_rule([v.astype(np.float32) for v in self.values()], self.k)
        for i, (p, g) in enumerate(zip(self.params, grads)):
            p.grad = None if i in skip else self.lib.tensor(g, dtype=p.dtype)
        self.k += 1

    def run(self, opt, steps: int, skip_at=None) -> list[list[np.ndarray]]:
        """``steps`` optimizer steps; returns the parameter values after each one.
        ``skip_at``: {step: param indices whose grad is None at that step}."""
        traj = []
        for _ in range(steps):
            self.set_grads((skip_at or {}).get(self.k, ()))
            opt.step()
            traj.append(self.values())
        return traj


@pytest.fixture(params=["tracenn", "torch"])
def lib(request):
    """tracenn, or the real torch (skips without it)."""
    if request.param == "torch":
        return request.getfixturevalue("torch")
    return tracenn


def assert_float32_close(got, expected, rtol=2e-6, err_msg=""):
    """Equal up to a few float32 ulps of the array's scale: rounding differences (torch fuses
    multiply-adds, XLA divides by a scalar via its reciprocal) show up where values cancel."""
    got, expected = np.asarray(got, np.float64), np.asarray(expected, np.float64)
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def assert_traj_close(got, expected, rtol=2e-6):
    """Trajectories agree step by step."""
    assert len(got) == len(expected)
    for k, (g_step, e_step) in enumerate(zip(got, expected)):
        for i, (g, e) in enumerate(zip(g_step, e_step)):
            assert_float32_close(g, e, rtol, err_msg=f"step {k + 1}, param {i}")


@pytest.fixture
def problem():
    """``problem(lib, init=None, dtype=None)``: a fresh :class:`Problem`."""
    return Problem


@pytest.fixture
def traj_close():
    return assert_traj_close


@pytest.fixture
def float32_close():
    return assert_float32_close
