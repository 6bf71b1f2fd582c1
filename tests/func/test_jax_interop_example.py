"""examples/jax_interop.py, run in-process with few steps: JAX trains, tracenn evaluates the same numbers."""
from __future__ import annotations

import importlib.util
import pathlib

import jax
import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "jax_interop.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("examples_jax_interop", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trains_in_jax_and_loads_back_exactly(example, capsys):
    r = example.main(["--steps", "40", "--batch-size", "64"])
    out = capsys.readouterr().out
    assert "in JAX with" in out and r["optimizer"] in out
    assert r["final_loss"] < 0.8 * r["first_loss"]
    assert r["exact"] and r["max_diff"] < 1e-5 and r["compiled_diff"] < 1e-5
    assert r["accuracy"] > 0.4


def test_hand_written_adam_matches_optax(example):
    optax = pytest.importorskip("optax")  # optax is optional: the example falls back without it
    params = {"w": jax.numpy.arange(6.0, dtype=np.float32).reshape(2, 3), "b": jax.numpy.ones(3, np.float32)}
    grads = jax.tree_util.tree_map(lambda a: a * 0.5 - 1.0, params)
    name, init, update = example.make_adam(1e-2, use_optax=False)
    tx = optax.adam(1e-2)
    p1, s1, p2, s2 = params, init(params), params, tx.init(params)
    for _ in range(3):
        p1, s1 = update(grads, s1, p1)
        u, s2 = tx.update(grads, s2, p2)
        p2 = optax.apply_updates(p2, u)
    for k in params:
        np.testing.assert_allclose(np.asarray(p1[k]), np.asarray(p2[k]), rtol=1e-5, atol=1e-6)
