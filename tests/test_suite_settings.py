"""The test session's own settings (conftest.py): what they change must not change results."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.interpreters import mlir


FAST = os.environ.get("TRACENN_TEST_XLA", "fast").strip().lower() != "default"


def _program(x, w):
    y = jnp.tanh(x @ w + jnp.arange(3.0)) * 0.5
    return jnp.where(y > 0, y, jnp.exp(y) - 1).sum(axis=0)


def _lowered_text(*shapes):
    return jax.jit(_program).lower(*(jnp.ones(s, jnp.float32) for s in shapes)).as_text()


@pytest.mark.skipif(not FAST, reason="TRACENN_TEST_XLA=default: JAX's own MLIR contexts")
def test_lowering_reuses_a_context_per_thread_and_lowers_the_same_text():
    reused = mlir.make_ir_context
    assert getattr(reused, "reused", False), "conftest did not install the MLIR context reuse"
    shapes = ((4, 5), (5, 3))
    text = _lowered_text(*shapes)
    a, b, c = reused(), reused(), reused()
    assert a is b or b is c  # (three calls cross the bound of 200 at most once)
    try:
        mlir.make_ir_context = reused.original  # JAX's own: a new context for every lowering
        fresh = _lowered_text(*shapes)
        assert mlir.make_ir_context() is not mlir.make_ir_context()
    finally:
        mlir.make_ir_context = reused
    assert text == fresh
    out = jax.jit(_program)(np.ones((4, 5), np.float32), np.ones((5, 3), np.float32))
    np.testing.assert_allclose(out, _program(np.ones((4, 5)), np.ones((5, 3))), rtol=1e-6)


@pytest.mark.skipif(not FAST, reason="TRACENN_TEST_XLA=default: JAX's own MLIR contexts")
def test_a_new_context_every_bound_of_lowerings():
    made = []

    def counting():
        made.append(object())
        return made[-1]

    saved = mlir.make_ir_context
    install = saved.install  # conftest._reuse_mlir_contexts (tests/ has a conftest.py of its own)
    mlir.make_ir_context = counting
    try:
        assert install(uses=3)
        contexts = [mlir.make_ir_context() for _ in range(7)]
    finally:
        mlir.make_ir_context = saved
    assert len(made) == 3 and contexts == [made[0]] * 3 + [made[1]] * 3 + [made[2]]
