"""examples/per_sample_gradients.py: the DP-SGD step learns, and compiled equals eager step for step
(per-sample gradients, clipping and the noise drawn from tracenn's generator)."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

from helpers import load_by_path

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "per_sample_gradients.py"


@pytest.fixture(scope="module")
def example():
    return load_by_path("examples_per_sample_gradients", EXAMPLE)


def test_compiled_dp_sgd_equals_eager_and_learns(example, capsys):
    compiled, acc = example.main(["--steps", "60"])
    eager, _ = example.main(["--steps", "8", "--eager"])
    np.testing.assert_allclose(compiled[:8], eager, rtol=1e-4)
    assert np.mean(compiled[-10:]) < 0.6 * np.mean(compiled[:5])
    assert acc > 0.6  # four classes: chance is 0.25
    assert "test accuracy" in capsys.readouterr().out
