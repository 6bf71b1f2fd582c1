"""Primitives that make a tensor from nothing but static parameters (and a fill value)."""
from __future__ import annotations

import jax.numpy as jnp

from .registry import register


@register("full", static=("shape", "dtype"), differentiable=False)
def _full(value, *, shape, dtype):
    return jnp.full(shape, value, dtype)


@register("arange", static=("start", "end", "step", "dtype"), differentiable=False)
def _arange(*, start, end, step, dtype):
    return jnp.arange(start, end, step, dtype=dtype)


@register("linspace", static=("start", "end", "steps", "dtype"), differentiable=False)
def _linspace(*, start, end, steps, dtype):
    return jnp.linspace(start, end, steps, dtype=dtype)


@register("eye", static=("n", "m", "dtype"), differentiable=False)
def _eye(*, n, m, dtype):
    return jnp.eye(n, m, dtype=dtype)
