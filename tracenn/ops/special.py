"""``special``: torch.special's functions that tracenn has no other op for, one op keyed by the
function's name, over ``jax.scipy.special`` (differentiated by JAX)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss

from .registry import register


@jax.custom_jvp
def _entr(x):
    return jnp.where(x > 0, -x * jnp.log(jnp.where(x > 0, x, 1)), jnp.where(x == 0, 0.0, -jnp.inf))


@_entr.defjvp
def _entr_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return _entr(x), -(1 + jnp.log(x)) * t  # torch's: +inf at 0, NaN below


def _logit(x, eps):
    if eps is not None:
        x = jnp.clip(x, eps, 1 - eps)
    return jnp.log(x) - jnp.log1p(-x)


def _erfcx(x):
    """exp(x^2) erfc(x): the product in float64 up to x = 26 (where exp(x^2) would overflow),
    beyond it the asymptotic series (11 terms: below 1e-15 relative error there)."""
    wide = jnp.promote_types(x.dtype, jnp.float64) if jax.config.jax_enable_x64 else x.dtype
    xw = x.astype(wide)
    big = xw > 26.0
    xs = jnp.where(big, 0.0, xw)
    small = jnp.exp(xs * xs) * jss.erfc(xs)
    xb = jnp.where(big, xw, 30.0)
    inv = 1.0 / (2.0 * xb * xb)
    term, total = jnp.ones_like(xb), jnp.ones_like(xb)
    for k in range(1, 11):
        term = -term * (2 * k - 1) * inv
        total = total + term
    series = total / (xb * math.sqrt(math.pi))
    return jnp.where(big, series, small).astype(x.dtype)


_UNARY = {
    "erfcx": _erfcx, "i0": jss.i0, "i0e": jss.i0e, "i1": jss.i1, "i1e": jss.i1e, "ndtr": jss.ndtr,
    "ndtri": jss.ndtri, "log_ndtr": jss.log_ndtr, "sinc": jnp.sinc, "entr": _entr,
}
_BINARY = {"xlog1py": jss.xlog1py, "zeta": jss.zeta, "gammainc": jss.gammainc, "gammaincc": jss.gammaincc}


@register("special", static=("fn", "arg"))
def _special(*xs, fn, arg):
    """torch.special function ``fn`` (a name in this module's tables); ``arg``: a static number
    (polygamma's order, multigammaln's dimension, logit's eps)."""
    if fn in _UNARY:
        return _UNARY[fn](xs[0])
    if fn in _BINARY:
        return _BINARY[fn](xs[0], xs[1])
    if fn == "polygamma":
        return jss.polygamma(arg, xs[0])
    if fn == "multigammaln":
        return jss.multigammaln(xs[0], arg)
    if fn == "logit":
        return _logit(xs[0], arg)
    raise ValueError(f"special: unknown function {fn!r}")
