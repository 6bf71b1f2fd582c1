"""``logcumsumexp``, ``searchsorted`` and ``histc``: primitives JAX has directly."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .reduce import scan_in_opmath
from .registry import register


@register("logcumsumexp", static=("dim",))
def _logcumsumexp(x, *, dim):
    return scan_in_opmath(jax.lax.cumlogsumexp, x, dim)


@register("searchsorted", static=("right", "dtype"), differentiable=False)
def _searchsorted(sorted_sequence, values, *, right, dtype):
    """Per row of ``sorted_sequence`` (its last dim), the insertion index of each value of the
    matching row of ``values`` (a 1-d sequence serves every value)."""
    side = "right" if right else "left"
    if sorted_sequence.ndim == 1:
        return jnp.searchsorted(sorted_sequence, values, side=side).astype(dtype)
    rows = sorted_sequence.reshape(-1, sorted_sequence.shape[-1])
    vals = values.reshape(rows.shape[0], -1)
    out = jax.vmap(lambda s, v: jnp.searchsorted(s, v, side=side))(rows, vals)
    return out.reshape(values.shape).astype(dtype)


@register("histogram", differentiable=False)
def _histogram(x, edges, weight):
    """The summed ``weight`` of ``x``'s values in each bin ``[edges[i], edges[i + 1])`` (the last
    bin closed on the right; values outside ignored): torch.histogram's counts."""
    x, weight = x.reshape(-1), weight.reshape(-1).astype(x.dtype)
    edges = edges.astype(x.dtype)
    n = edges.shape[0] - 1
    idx = jnp.searchsorted(edges, x, side="right") - 1
    idx = jnp.where(x == edges[-1], n - 1, idx)
    inside = (x >= edges[0]) & (x <= edges[-1])
    return jnp.zeros(n, x.dtype).at[jnp.where(inside, idx, n)].add(weight, mode="drop")


@register("histc", static=("bins",), differentiable=False)
def _histc(x, lo, hi, *, bins):
    """Counts of ``x`` in ``bins`` equal bins of [lo, hi] (values outside ignored; hi in the last):
    torch's bin, ``floor((x - lo) * bins / (hi - lo))`` in x's dtype, to the last bit at the edges.
    ``lo``/``hi``: numbers, or scalars computed in the program (the data's own range)."""
    x = x.reshape(-1)
    lo, hi = jnp.asarray(lo).astype(x.dtype), jnp.asarray(hi).astype(x.dtype)
    # XLA rewrites a division by a broadcast scalar as a multiplication by its reciprocal (1 ulp off
    # in a quarter of the elements, which moves values on a bin edge): divide by a per-element width
    # instead (x * 0 keeps it per element; an inf or nan x lies outside anyway)
    width = (hi - lo) + x * 0
    idx = jnp.floor((x - lo) * jnp.asarray(bins, x.dtype) / width).astype(jnp.int32)
    idx = jnp.where(x == hi, bins - 1, idx)
    inside = (x >= lo) & (x <= hi)
    return jnp.zeros(bins, x.dtype).at[jnp.where(inside, idx, bins)].add(1, mode="drop")
