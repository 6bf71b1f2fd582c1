"""Primitives that make a tensor from nothing but static parameters (and a fill value)."""
from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

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
    """torch's CPU formula, to the last bit: ``step = (end - start) / (steps - 1)`` in the dtype,
    then ``start + step * i`` for the first ``steps // 2`` points and ``end - step * (steps - 1 - i)``
    for the rest, each a fused multiply-add (jnp.linspace rounds differently: 1 ulp off in most
    float32 ranges). Integer and half-precision ranges: jnp.linspace, cast."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64) or steps < 2:
        return jnp.linspace(start, end, steps, dtype=dtype)
    wide = np.float64 if dt == np.float32 else np.longdouble  # (exact products: one rounding, as an FMA)
    lo, hi = dt.type(start), dt.type(end)
    step = dt.type((hi - lo) / dt.type(steps - 1))
    i = np.arange(steps)
    head = wide(lo) + wide(step) * i.astype(wide)
    tail = wide(hi) - wide(step) * (steps - 1 - i).astype(wide)
    return jnp.asarray(np.where(i < steps // 2, head, tail).astype(dt))


@register("eye", static=("n", "m", "dtype"), differentiable=False)
def _eye(*, n, m, dtype):
    return jnp.eye(n, m, dtype=dtype)
