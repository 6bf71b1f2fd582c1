"""A neural-ODE time grid built inside the compiled step from a tensor end time,
``torch.linspace(0, t_end, n)``: the ends are only known in the program, the points follow the
linspace op's formula (torch's, to the bit in float32)."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


@pytest.mark.parametrize("steps", [0, 1, 2, 7, 50])
def test_linspace_of_traced_ends_equals_eager(steps):
    f = tracenn.compile(lambda a, b: tracenn.linspace(a, b, steps))
    for a, b in ((0.0, 2.0), (-1.3, 0.7), (3.0, 3.0), (1.0, -2.5)):
        got = f(tracenn.tensor(a), tracenn.tensor(b)).numpy()
        np.testing.assert_array_equal(got, tracenn.linspace(a, b, steps).numpy())
    mixed = tracenn.compile(lambda b: tracenn.linspace(0, b, steps, dtype=tracenn.float64))(tracenn.tensor(1.7))
    np.testing.assert_allclose(mixed.numpy(), np.linspace(0.0, float(np.float32(1.7)), steps), rtol=1e-14)


def test_rk4_time_grid_from_input():
    def solve(y0, t_end):
        t = tracenn.linspace(0, t_end, 11)
        y = y0
        for i in range(10):
            h = t[i + 1] - t[i]
            f = lambda y: -y  # noqa: E731 (dy/dt = -y)
            k1 = f(y); k2 = f(y + h / 2 * k1); k3 = f(y + h / 2 * k2); k4 = f(y + h * k3)  # noqa: E702
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return y
    got = tracenn.compile(solve)(tracenn.ones(3), tracenn.tensor(1.0))
    np.testing.assert_allclose(got.numpy(), np.exp(-1.0), rtol=1e-5)


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    f = tracenn.compile(lambda a, b: tracenn.linspace(a, b, 13))
    for a, b in ((0.0, 2.0), (-1.3, 0.7), (0.1, 1e4)):
        got = f(tracenn.tensor(a), tracenn.tensor(b)).numpy()
        np.testing.assert_array_equal(got, torch.linspace(torch.tensor(a), torch.tensor(b), 13).numpy())
