"""Primitives that make a tensor from nothing but static parameters (and a fill value)."""
from __future__ import annotations

import math

import jax.numpy as jnp

from .registry import register


@register("full", static=("shape", "dtype"), differentiable=False)
def _full(value, *, shape, dtype):
    return jnp.full(shape, value, dtype)


@register("arange", static=("start", "end", "step", "dtype"), differentiable=False)
def _arange(*, start, end, step, dtype):
    """``start + i * step`` for i < ceil((end - start) / step), computed in float64 then cast, as torch
    does (jnp.arange's float ranges accumulate differently)."""
    n = max(0, math.ceil((end - start) / step))
    if jnp.issubdtype(dtype, jnp.integer):
        return jnp.arange(start, start + n * step, step, dtype=dtype)[:n]
    return (start + jnp.arange(n, dtype=jnp.float64) * step).astype(dtype)


@register("linspace", static=("start", "end", "steps", "dtype"), differentiable=False)
def _linspace(*, start, end, steps, dtype):
    return jnp.linspace(start, end, steps, dtype=dtype)


@register("eye", static=("n", "m", "dtype"), differentiable=False)
def _eye(*, n, m, dtype):
    return jnp.eye(n, m, dtype=dtype)
