"""``special``: torch.special's differentiable functions that tracenn has no other op for, one op
keyed by the function's name, over ``jax.scipy.special`` where JAX matches torch, and torch's own
algorithms where it does not (polygamma, zeta: JAX's are wrong for negative arguments; gammainc:
JAX's float32 loses digits for large arguments). Gradients are JAX's, or the rule torch writes
where the function is hand-written; where torch has no derivative (zeta's ``x``, gammainc's ``a``)
asking for one raises torch's NotImplementedError.

The functions torch does not differentiate at all (Bessel, Airy, orthogonal polynomials) are the
``special_nograd`` op in :mod:`.special_more`."""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
from jax.custom_derivatives import SymbolicZero

from . import special_more  # noqa: F401 (registers special_nograd)
from .elementwise import _digamma
from .registry import opmath, register


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


def _wide(x):
    """float64 (torch's CPU kernels for zeta and gammainc accumulate in double)."""
    return x.astype(jnp.promote_types(x.dtype, jnp.float64)) if jax.config.jax_enable_x64 else x


def _no_derivative(name):
    raise NotImplementedError(f"the derivative for '{name}' is not implemented.")


# ---- Hurwitz zeta and the polygamma functions -----------------------------------------------------

_MACHEP = 1.11022302462515654042e-16
_ZETA_A = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0, -1.8924375803183791606e9, 7.47242496e10,
           -2.950130727918164224e12, 1.1646782814350067249e14, -4.5979787224074726105e15,
           1.8152105401943546773e17, -7.1661652561756670113e18)


def _zeta_value(x, q):
    """sum_k (k + q)^-x by Cephes's algorithm, as torch: terms summed directly until k + q > 9
    (at least nine; fewer once a term drops below an ulp of the sum), then an Euler-Maclaurin
    tail. Valid for negative non-integer q, where JAX's zeta is not."""
    dt = jnp.result_type(x, q)
    x, q = _wide(x), _wide(q)
    pole = (q <= 0) & (q == jnp.floor(q))
    fixed = pole | (x <= 1) | ((q <= 0) & (x != jnp.floor(x)))
    q_in = q
    q = jnp.where(fixed, 1.0, q)  # (the answer is fixed: skip the loop)
    eps = _MACHEP

    def more(st):
        i, a, _, _, done = st
        return ~done & ((i < 9) | (a <= 9.0))

    def body(st):
        i, a, s, b, done = st
        go = more(st)
        a2 = a + 1.0
        b2 = a2 ** -x
        s2 = s + b2
        done = done | (go & (-eps * s2 < b2) & (b2 < eps * s2))
        return (jnp.where(go, i + 1, i), jnp.where(go, a2, a), jnp.where(go, s2, s), jnp.where(go, b2, b), done)

    start = (jnp.zeros(q.shape, jnp.int32), q, q ** -x, jnp.zeros_like(q), jnp.zeros(q.shape, bool))
    _, a, s, b, done = jax.lax.while_loop(lambda st: jnp.any(more(st)), body, start)
    q = q_in
    w = a
    tail = s + b * w / (x - 1.0) - 0.5 * b
    fact, k, settled = jnp.ones_like(x), 0.0, jnp.zeros(x.shape, bool)
    for coef in _ZETA_A:
        fact = fact * (x + k)
        b = b / w
        t = fact * b / coef
        tail = jnp.where(settled, tail, tail + t)
        settled = settled | (jnp.abs(t / tail) < eps)
        k += 1.0
        fact = fact * (x + k)
        b = b / w
        k += 1.0
    out = jnp.where(done, s, tail)
    out = jnp.where((q <= 0) & (x != jnp.floor(x)), jnp.nan, out)  # (torch's order of the cases)
    out = jnp.where(pole, jnp.inf, out)
    out = jnp.where(x < 1, jnp.nan, out)
    out = jnp.where(x == 1, jnp.inf, out)
    return out.astype(dt)


@jax.custom_jvp
def _zeta(x, q):
    return _zeta_value(x, q)


def _zeta_jvp(primals, tangents):
    (x, q), (tx, tq) = primals, tangents
    if not isinstance(tx, SymbolicZero):
        _no_derivative("zeta")
    out = _zeta(x, q)
    if isinstance(tq, SymbolicZero):
        return out, jnp.zeros_like(out)
    return out, -x * _zeta(x + 1.0, q) * tq  # torch's rule


_zeta.defjvp(_zeta_jvp, symbolic_zeros=True)


def _trigamma(x):
    """polygamma(1, x), torch's algorithm: reflection below 1/2, six recurrence steps, then the
    asymptotic series (in the input's precision)."""
    pi = jnp.asarray(math.pi, x.dtype)
    reflect = x < 0.5
    sin_pi_x = jnp.sin(pi * x)
    total = jnp.where(reflect, -(pi * pi) / (sin_pi_x * sin_pi_x), 0.0)
    sign = jnp.where(reflect, -1.0, 1.0)
    x = jnp.where(reflect, 1.0 - x, x)
    for _ in range(6):
        total = total + 1.0 / (x * x)
        x = x + 1.0
    ixx = 1.0 / (x * x)
    total = total + (1.0 + 1.0 / (2.0 * x) + ixx * (1.0 / 6.0 - ixx * (1.0 / 30.0 - ixx * (1.0 / 42.0)))) / x
    return (sign * total).astype(x.dtype)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _polygamma(n, x):
    if n == 0:
        return _digamma(x)
    if n == 1:
        return _trigamma(x)
    fact = jnp.exp(jss.gammaln(jnp.asarray(n + 1.0, x.dtype)))
    return (1.0 if n % 2 else -1.0) * fact * _zeta_value(jnp.full_like(x, n + 1.0), x)


@_polygamma.defjvp
def _polygamma_jvp(n, primals, tangents):
    (x,), (t,) = primals, tangents
    return _polygamma(n, x), _polygamma(n + 1, x) * t


def _multigammaln(x, p):
    """log of the multivariate gamma function: sum_j lgamma(x - j/2) + p(p-1)/4 log(pi)."""
    args = jnp.arange(-p * 0.5 + 0.5, 0.5, 0.5, dtype=x.dtype)
    # (lgamma in float64: XLA's float32 lgamma is ulps off, e.g. lgamma(1) = 4.8e-7)
    return (jss.gammaln(_wide(x[..., None] + args)).sum(-1) + p * (p - 1) * math.log(math.pi) / 4).astype(x.dtype)


# ---- regularized incomplete gamma functions -------------------------------------------------------

def _gammainc_value(a, x, upper):
    """P(a, x) (Q(a, x) if ``upper``) with torch's answers at the edges of the domain, computed in
    float64 (JAX's float32 kernel is off in the third digit for large a and x)."""
    dt = jnp.result_type(a, x)
    a, x = _wide(a), _wide(x)
    lo, hi = (0.0, 1.0) if not upper else (1.0, 0.0)  # P or Q at x = 0 / x = inf
    out = (jss.gammaincc if upper else jss.gammainc)(jnp.where(a <= 0, 1.0, a), jnp.where(x <= 0, 1.0, x))
    out = jnp.where(jnp.isinf(x), hi, out)
    out = jnp.where(jnp.isinf(a), jnp.where(jnp.isinf(x), jnp.nan, lo), out)
    out = jnp.where(x == 0, lo, out)
    out = jnp.where(a == 0, jnp.where(x > 0, hi, jnp.nan), out)
    out = jnp.where((x < 0) | (a < 0), jnp.nan, out)
    return out.astype(dt)


def _gammainc_rule(upper):
    @jax.custom_jvp
    def f(a, x):
        return _gammainc_value(a, x, upper)

    def jvp(primals, tangents):
        (a, x), (ta, tx) = primals, tangents
        if not isinstance(ta, SymbolicZero):
            _no_derivative("igammac: input" if upper else "igamma: input")
        out = f(a, x)
        if isinstance(tx, SymbolicZero):
            return out, jnp.zeros_like(out)
        d = jnp.exp((a - 1) * jnp.log(x) - x - jss.gammaln(a))  # torch's rule
        return out, (-d if upper else d) * tx

    f.defjvp(jvp, symbolic_zeros=True)
    return f


_UNARY = {
    "erfcx": _erfcx, "i0": jss.i0, "i0e": jss.i0e, "i1": jss.i1, "i1e": jss.i1e, "ndtr": jss.ndtr,
    "ndtri": jss.ndtri, "log_ndtr": jss.log_ndtr, "sinc": jnp.sinc, "entr": _entr,
}
# "gammainc_reparam": P(a, x) differentiable in ``a`` too (JAX's rule), for Gamma's implicit
# reparameterization (random._standard_gamma): torch's public igamma has no derivative in ``a``.
_BINARY = {"xlog1py": jss.xlog1py, "zeta": _zeta, "gammainc": _gammainc_rule(False),
           "gammaincc": _gammainc_rule(True), "gammainc_reparam": jss.gammainc}


@register("special", static=("fn", "arg"))
def _special(*xs, fn, arg):
    """torch.special function ``fn`` (a name in this module's tables); ``arg``: a static number
    (polygamma's order, multigammaln's dimension, logit's eps). float16/bfloat16 compute in
    float32 and round once, as torch's CPU kernels."""
    low = xs[0].dtype if xs[0].dtype in (jnp.float16, jnp.bfloat16) else None
    if low is not None:
        return _special_of(fn, arg, *[opmath(x) for x in xs]).astype(low)
    return _special_of(fn, arg, *xs)


def _special_of(fn, arg, *xs):
    if fn in _UNARY:
        return _UNARY[fn](xs[0])
    if fn in _BINARY:
        return _BINARY[fn](xs[0], xs[1])
    if fn == "polygamma":
        return _polygamma(arg, xs[0])
    if fn == "multigammaln":
        return _multigammaln(xs[0], arg)
    if fn == "logit":
        return _logit(xs[0], arg)
    raise ValueError(f"special: unknown function {fn!r}")
