"""Random primitives. Each takes the generator's ``key`` and a ``counter`` and folds the counter in,
so one generator state yields a fresh stream per call in a single dispatch (and, under the
compiler, the key is just another input)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .registry import opmath, register


def _k(key, counter):
    return jax.random.fold_in(key, counter)


@register("uniform", static=("shape", "dtype"), differentiable=False)
def _uniform(key, counter, low, high, *, shape, dtype):
    u = jax.random.uniform(_k(key, counter), shape, jnp.float32 if dtype in (jnp.bfloat16, jnp.float16) else dtype)
    out = (low + (high - low) * u).astype(dtype)
    # [low, high), as torch: rounding to the dtype can reach ``high`` (bfloat16 often does); such a
    # draw becomes the largest value below it
    top = jnp.asarray(high).astype(dtype)
    return jnp.where(out >= top, jnp.nextafter(top, jnp.asarray(low).astype(dtype)), out)


@register("normal", static=("shape", "dtype"), differentiable=False)
def _normal(key, counter, mean, std, *, shape, dtype):
    z = jax.random.normal(_k(key, counter), shape, jnp.float32 if dtype == jnp.bfloat16 else dtype)
    return (mean + std * z).astype(dtype)


@register("randint", static=("shape", "dtype"), differentiable=False)
def _randint(key, counter, low, high, *, shape, dtype):
    return jax.random.randint(_k(key, counter), shape, low, high, dtype=jnp.int64).astype(dtype)


@register("bernoulli", static=("dtype",), differentiable=False)
def _bernoulli(key, counter, p, *, dtype):
    p = jnp.asarray(p)
    return jax.random.bernoulli(_k(key, counter), p, p.shape).astype(dtype)


@register("randperm", static=("n", "dtype"), differentiable=False)
def _randperm(key, counter, *, n, dtype):
    return jax.random.permutation(_k(key, counter), n).astype(dtype)


@register("multinomial", static=("n", "replacement"), differentiable=False)
def _multinomial(key, counter, probs, *, n, replacement):
    k = _k(key, counter)
    logits = jnp.log(probs)
    if replacement:
        return jax.random.categorical(k, logits, axis=-1, shape=(n,) + probs.shape[:-1]).T.astype(jnp.int64) \
            if probs.ndim == 2 else jax.random.categorical(k, logits, shape=(n,)).astype(jnp.int64)
    # Without replacement: Gumbel top-k.
    g = jax.random.gumbel(k, probs.shape, probs.dtype)
    return jax.lax.top_k(logits + g, n)[1].astype(jnp.int64)


# Marsaglia & Tsang proposals drawn per gamma sample; the first accepted one is kept. Each is
# accepted with probability > 0.95 (shape >= 1), so all are rejected with probability < 0.05**16.
GAMMA_CANDIDATES = 16


@register("standard_gamma", differentiable=False)
def _standard_gamma(key, counter, alpha):
    """Gamma(alpha, 1) draws of ``alpha``'s shape: Marsaglia & Tsang's method, vectorized over
    ``GAMMA_CANDIDATES`` proposals, with shapes below 1 boosted (``G(a) = G(a + 1) U^(1/a)``) as
    torch's sampler does. Half-precision shapes sample in float32."""
    dtype = alpha.dtype
    a = opmath(alpha)
    tiny = jnp.finfo(a.dtype).tiny
    kz, ku, kb = jax.random.split(_k(key, counter), 3)
    boosted = jnp.where(a < 1, a + 1, a)
    d = boosted - 1.0 / 3
    c = jax.lax.rsqrt(9 * d)
    shape = (GAMMA_CANDIDATES,) + a.shape
    z = jax.random.normal(kz, shape, a.dtype)
    u = jnp.maximum(jax.random.uniform(ku, shape, a.dtype), tiny)
    t = 1 + c * z
    v = jnp.maximum(t, tiny) ** 3
    accept = (t > 0) & (jnp.log(u) < 0.5 * z * z + d - d * v + d * jnp.log(v))
    first = jnp.argmax(accept, axis=0)  # the first accepted proposal
    x = jnp.take_along_axis(d * v, first[None], axis=0)[0]
    u_boost = jnp.maximum(jax.random.uniform(kb, a.shape, a.dtype), tiny)
    log_x = jnp.log(x) + jnp.where(a < 1, jnp.log(u_boost) / a, 0)
    return jnp.maximum(jnp.exp(log_x), tiny).astype(dtype)


@register("poisson", static=("shape",), differentiable=False)
def _poisson(key, counter, rate, *, shape):
    """Poisson(``rate``) counts, ``rate`` broadcast to ``shape``, as floats of rate's dtype: JAX's
    sampler (Knuth's method below rate 10, Hormann's transformed rejection above), which computes
    in float32. An infinite rate counts infinity; a negative or NaN rate gives NaN (eager calls
    raise torch's error before they get here)."""
    rate = jnp.broadcast_to(rate, shape)
    valid = (rate >= 0) & (rate < jnp.inf)  # JAX loops forever on an infinite rate, gives -1 below 0
    n = jax.random.poisson(_k(key, counter), jnp.where(valid, rate, 0), dtype=jnp.int64).astype(rate.dtype)
    return jnp.where(valid, n, jnp.where(rate == jnp.inf, jnp.inf, jnp.nan).astype(rate.dtype))


@register("binomial", static=("shape",), differentiable=False)
def _binomial(key, counter, count, prob, *, shape):
    """Binomial(``count``, ``prob``) successes, both broadcast to ``shape``, as floats of count's
    dtype: JAX's sampler (inversion while ``count * min(p, 1 - p) <= 10``, BTRS above). As torch's
    sampler: ``prob`` outside [0, 1] acts as clamped into it (NaN stays NaN), a fractional count as
    its floor, a negative count draws 0 and an infinite one NaN. Half precision samples in float32."""
    n = opmath(jnp.broadcast_to(count, shape))
    n = jnp.where(n < 0, 0, jnp.where(n == jnp.inf, jnp.nan, n))
    p = jnp.clip(jnp.broadcast_to(prob, shape).astype(n.dtype), 0, 1)
    return jax.random.binomial(_k(key, counter), n, p, shape, n.dtype).astype(count.dtype)
