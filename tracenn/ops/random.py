"""Random primitives. Each takes the generator's ``key`` and a ``counter`` and folds the counter in,
so one generator state yields a fresh stream per call in a single dispatch (and, under the
compiler, the key is just another input)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .registry import register


def _k(key, counter):
    return jax.random.fold_in(key, counter)


@register("uniform", static=("shape", "dtype"), differentiable=False)
def _uniform(key, counter, low, high, *, shape, dtype):
    u = jax.random.uniform(_k(key, counter), shape, jnp.float32 if dtype == jnp.bfloat16 else dtype)
    return (low + (high - low) * u).astype(dtype)


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
