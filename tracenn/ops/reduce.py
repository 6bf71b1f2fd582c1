"""Reduction primitives. ``dims`` is a tuple of axes or None for all; ``keepdim`` as torch."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from .elementwise import _divide
from .registry import opmath, register


def _expand_back(g, x_shape, dims, keepdim):
    """Re-insert reduced axes so a reduced cotangent broadcasts against the input."""
    if dims is None:
        return jnp.reshape(g, (1,) * len(x_shape)) if not keepdim else g
    if not keepdim:
        for d in sorted(dims):
            g = jnp.expand_dims(g, d)
    return g


def _vjp_sum(g, out, x, *, dims, keepdim, dtype):
    return (jnp.broadcast_to(_expand_back(g, x.shape, dims, keepdim), x.shape),)


@register("sum", static=("dims", "keepdim", "dtype"), vjp=_vjp_sum, saves=())
def _sum(x, *, dims, keepdim, dtype):
    return jnp.sum(x, axis=dims, keepdims=keepdim, dtype=dtype)


def _count(shape, dims):
    n = 1
    for d in (range(len(shape)) if dims is None else dims):
        n *= shape[d]
    return n


def _vjp_mean(g, out, x, *, dims, keepdim, dtype):
    n = _count(x.shape, dims)
    return (jnp.broadcast_to(_expand_back(g, x.shape, dims, keepdim), x.shape) / n,)


@register("mean", static=("dims", "keepdim", "dtype"), vjp=_vjp_mean, saves=())
def _mean(x, *, dims, keepdim, dtype):
    return jnp.mean(x, axis=dims, keepdims=keepdim, dtype=dtype)


@register("var", static=("dims", "correction", "keepdim"))
def _var(x, *, dims, correction, keepdim):
    """Variance with Bessel-style ``correction`` (torch's unbiased=True is correction=1)."""
    return jnp.var(x, axis=dims, ddof=correction, keepdims=keepdim)


@register("prod", static=("dims", "keepdim", "dtype"))
def _prod(x, *, dims, keepdim, dtype):
    return jnp.prod(x, axis=dims, keepdims=keepdim, dtype=dtype)


def _vjp_amax(g, out, x, *, dims, keepdim):
    # torch's amax/amin/max() share the gradient evenly among tied extremes.
    o = _expand_back(out, x.shape, dims, keepdim)
    hit = (x == o).astype(g.dtype)
    cnt = jnp.sum(hit, axis=dims, keepdims=True)
    return (_expand_back(g, x.shape, dims, keepdim) * hit / cnt,)


@register("amax", static=("dims", "keepdim"), vjp=_vjp_amax, saves_out=True)
def _amax(x, *, dims, keepdim):
    return jnp.max(x, axis=dims, keepdims=keepdim)


@register("amin", static=("dims", "keepdim"), vjp=_vjp_amax, saves_out=True)
def _amin(x, *, dims, keepdim):
    return jnp.min(x, axis=dims, keepdims=keepdim)


def _vjp_max_dim(g, out, x, *, dim, keepdim, largest):
    gv, _ = g
    idx = out[1]
    if not keepdim:
        gv, idx = jnp.expand_dims(gv, dim), jnp.expand_dims(idx, dim)
    z = jnp.zeros(x.shape, gv.dtype)
    return (jnp.put_along_axis(z, idx, gv, axis=dim, inplace=False),)


@register("max_dim", static=("dim", "keepdim", "largest"), vjp=_vjp_max_dim, saves=(), saves_out=True, nout=2)
def _max_dim(x, *, dim, keepdim, largest):
    """(values, indices) of the max (largest=True) or min along ``dim``; first index on ties."""
    idx = jnp.argmax(x, axis=dim, keepdims=True) if largest else jnp.argmin(x, axis=dim, keepdims=True)
    val = jnp.take_along_axis(x, idx, axis=dim)
    if not keepdim:
        val, idx = jnp.squeeze(val, dim), jnp.squeeze(idx, dim)
    return val, idx.astype(jnp.int64)


@register("argmax", static=("dim", "keepdim"), differentiable=False)
def _argmax(x, *, dim, keepdim):
    if dim is None:
        r = jnp.argmax(x.reshape(-1))
        return (r.reshape((1,) * x.ndim) if keepdim else r).astype(jnp.int64)
    return jnp.argmax(x, axis=dim, keepdims=keepdim).astype(jnp.int64)


@register("argmin", static=("dim", "keepdim"), differentiable=False)
def _argmin(x, *, dim, keepdim):
    if dim is None:
        r = jnp.argmin(x.reshape(-1))
        return (r.reshape((1,) * x.ndim) if keepdim else r).astype(jnp.int64)
    return jnp.argmin(x, axis=dim, keepdims=keepdim).astype(jnp.int64)


@register("all", static=("dims", "keepdim"), differentiable=False)
def _all(x, *, dims, keepdim):
    return jnp.all(x, axis=dims, keepdims=keepdim)


@register("any", static=("dims", "keepdim"), differentiable=False)
def _any(x, *, dims, keepdim):
    return jnp.any(x, axis=dims, keepdims=keepdim)


def _vjp_logsumexp(g, out, x, *, dims, keepdim):
    o = _expand_back(out, x.shape, dims, keepdim)
    return (_expand_back(g, x.shape, dims, keepdim) * jnp.exp(x - o),)


@register("logsumexp", static=("dims", "keepdim"), vjp=_vjp_logsumexp, saves_out=True)
def _logsumexp(x, *, dims, keepdim):
    """Stable log(sum(exp(x))): the shift by the max keeps exp in range (-inf rows give -inf)."""
    m = lax.stop_gradient(jnp.max(x, axis=dims, keepdims=True, initial=-jnp.inf))  # empty: -inf, as torch
    m = jnp.where(jnp.isfinite(m), m, jnp.zeros_like(m))
    r = jnp.log(jnp.sum(jnp.exp(x - m), axis=dims, keepdims=True)) + m
    return r if keepdim else jnp.squeeze(r, axis=dims)


# ---- the softmax family: one kernel each, torch's formulas and gradients ----------------------

def _shifted(x, dim):
    """``x - max(x, dim)`` (an empty dim's max is -inf, as torch; a row of -inf gives NaN, as torch)."""
    x = opmath(x)
    return x - jnp.max(x, axis=dim, keepdims=True, initial=-jnp.inf)


def _vjp_softmax(g, out, x, *, dim):
    o = opmath(out)
    return (o * (opmath(g) - jnp.sum(opmath(g) * o, axis=dim, keepdims=True)),)


@register("softmax", static=("dim",), vjp=_vjp_softmax, saves=(), saves_out=True)
def _softmax(x, *, dim):
    """``exp(x - max) / sum(exp(x - max))`` along ``dim``: torch's kernel, one fused op."""
    e = jnp.exp(_shifted(x, dim))
    return (e / jnp.sum(e, axis=dim, keepdims=True)).astype(x.dtype)


def _vjp_log_softmax(g, out, x, *, dim):
    g = opmath(g)
    return (g - jnp.exp(opmath(out)) * jnp.sum(g, axis=dim, keepdims=True),)


@register("log_softmax", static=("dim",), vjp=_vjp_log_softmax, saves=(), saves_out=True)
def _log_softmax(x, *, dim):
    """``x - max - log(sum(exp(x - max)))`` along ``dim``: torch's kernel, one fused op."""
    z = _shifted(x, dim)
    return (z - jnp.log(jnp.sum(jnp.exp(z), axis=dim, keepdims=True))).astype(x.dtype)


def _class_logits(x, target, dim, ignore_index):
    """(x - max, log(sum(exp(x - max))), target as x's class axis, keep): the shared start of
    cross_entropy's forward and gradient."""
    z = _shifted(x, dim)
    lse = jnp.log(jnp.sum(jnp.exp(z), axis=dim, keepdims=True))
    return (z, lse) + _targets(target, dim, ignore_index)


def _targets(target, dim, ignore_index):
    """``target`` as an index along the class axis ``dim`` (an ignored one points at class 0), and
    where it is not ignored."""
    t = jnp.expand_dims(target.astype(jnp.int64), dim)
    keep = t != ignore_index
    return jnp.where(keep, t, 0), keep


def _per_target(g, keep, dim, reduction):
    """A class-index loss's incoming gradient per target: along the class axis ('none'), or divided
    by the count of targets not ignored ('mean')."""
    g = opmath(g)
    if reduction == "none":
        return jnp.expand_dims(g, dim)
    if reduction == "mean":
        return g / jnp.sum(keep).astype(g.dtype)
    return g


def _reduce_targets(nll, keep, reduction):
    """A class-index loss per target, reduced: summed, averaged over the targets not ignored (NaN
    if none is), or as it is ('none')."""
    if reduction == "sum":
        return jnp.sum(nll)
    if reduction == "mean":
        return jnp.sum(nll) / jnp.sum(keep).astype(nll.dtype)
    return nll


def _vjp_cross_entropy(g, out, x, target, *, dim, ignore_index, reduction):
    z, lse, t, keep = _class_logits(x, target, dim, ignore_index)
    g = _per_target(g, keep, dim, reduction)
    classes = lax.broadcasted_iota(t.dtype, z.shape, dim)
    dx = jnp.where(keep, (jnp.exp(z - lse) - (classes == t)) * g, 0)  # softmax - one_hot
    return dx.astype(x.dtype), None


def _reduced(key) -> bool:
    """A loss whose output is one number: its reduction, the last static parameter of every loss
    op here, is 'mean' or 'sum', not 'none' (OpDef.with_grad)."""
    return key[-1] != "none"


@register("cross_entropy", static=("dim", "ignore_index", "reduction"), vjp=_vjp_cross_entropy, saves=(0, 1),
          with_grad=_reduced)
def _cross_entropy(x, target, *, dim, ignore_index, reduction):
    """Cross entropy of logits ``x`` and class indices ``target`` along class dim ``dim``:
    ``-log_softmax(x)[target]`` per element (log_softmax's formula), 0 where the target is
    ``ignore_index``; summed, averaged over the targets not ignored, or per element. One kernel
    forward and one backward, where the composite costs ten eagerly; a reduced loss whose logits
    need a gradient computes it in the forward's kernel (``with_grad``): ``softmax - one_hot`` is a
    few elementwise ops on what the forward already has, and ``loss.backward()`` then runs none."""
    z, lse, t, keep = _class_logits(x, target, dim, ignore_index)
    nll = jnp.squeeze(jnp.where(keep, lse - jnp.take_along_axis(z, t, axis=dim), 0), dim)
    return _reduce_targets(nll, keep, reduction).astype(x.dtype)


def _vjp_nll_loss(g, out, x, target, *, dim, ignore_index, reduction):
    t, keep = _targets(target, dim, ignore_index)
    g = _per_target(g, keep, dim, reduction)
    classes = lax.broadcasted_iota(t.dtype, x.shape, dim)
    return jnp.where(keep & (classes == t), -g, 0).astype(x.dtype), None


@register("nll_loss", static=("dim", "ignore_index", "reduction"), vjp=_vjp_nll_loss, saves=(0, 1),
          with_grad=_reduced)
def _nll_loss(x, target, *, dim, ignore_index, reduction):
    """Negative log likelihood of log-probabilities ``x`` at class indices ``target`` along ``dim``:
    ``-x[target]`` per element, 0 where the target is ``ignore_index``; summed, averaged over the
    targets not ignored (NaN if none is), or per element. One kernel each way where the composite
    costs four, and a reduced loss's gradient in the forward's kernel (``with_grad``)."""
    t, keep = _targets(target, dim, ignore_index)
    nll = jnp.squeeze(jnp.where(keep, -jnp.take_along_axis(x, t, axis=dim), 0), dim)
    return _reduce_targets(nll, keep, reduction).astype(x.dtype)


def _reduce_loss(loss, reduction):
    return jnp.mean(loss) if reduction == "mean" else jnp.sum(loss) if reduction == "sum" else loss


def _loss_norm(x, reduction):
    """torch's ``norm`` of a pointwise loss's backward: 1/n for 'mean', else 1."""
    return 1.0 / x.size if reduction == "mean" else 1.0


def _vjp_mse_loss(g, out, x, target, *, reduction):
    """torch's mse_loss_backward: ``norm * (x - target) * g``, norm 2/n ('mean') or 2 ('sum')."""
    norm = 2.0 / x.size if reduction == "mean" else 2.0
    d = (norm * (x - target) * g).astype(x.dtype)
    return d, -d


@register("mse_loss", static=("reduction",), vjp=_vjp_mse_loss, saves=(0, 1), with_grad=_reduced)
def _mse_loss(x, target, *, reduction):
    """Mean (or sum) of ``(x - target) ** 2`` over same-shaped ``x`` and ``target``: one kernel where
    the composite costs three each way, and, when an input needs a gradient, that gradient in the
    same kernel (``with_grad``: ``loss.backward()`` then runs none)."""
    return _reduce_loss(jnp.square(x - target), reduction)


def _vjp_smooth_l1_loss(g, out, x, target, *, beta, reduction):
    """torch's smooth_l1_backward: ``-norm * g`` below ``-beta``, ``norm * g`` from ``beta`` on,
    ``norm * d * g / beta`` between (``d = x - target``); the target's is its negative."""
    d, norm = x - target, _loss_norm(x, reduction)
    dx = jnp.where(d <= -beta, -norm * g, jnp.where(d >= beta, norm * g, norm * d * g / beta)).astype(x.dtype)
    return dx, -dx


@register("smooth_l1_loss", static=("beta", "reduction"), vjp=_vjp_smooth_l1_loss, saves=(0, 1),
          with_grad=_reduced)
def _smooth_l1_loss(x, target, *, beta, reduction):
    """``0.5 * z * z / beta`` where ``z = |x - target| < beta``, else ``z - 0.5 * beta`` (torch's
    kernel), reduced: one kernel where the composite costs five each way."""
    z = jnp.abs(x - target)
    return _reduce_loss(jnp.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta), reduction)


def _vjp_huber_loss(g, out, x, target, *, delta, reduction):
    """torch's huber_backward: ``-norm * g * delta`` below ``-delta``, ``norm * g * delta`` from
    ``delta`` on, ``norm * d * g`` between; the target's is its negative."""
    d, norm = x - target, _loss_norm(x, reduction)
    dx = jnp.where(d <= -delta, -norm * g * delta, jnp.where(d >= delta, norm * g * delta, norm * d * g))
    return dx.astype(x.dtype), -dx.astype(x.dtype)


@register("huber_loss", static=("delta", "reduction"), vjp=_vjp_huber_loss, saves=(0, 1),
          with_grad=_reduced)
def _huber_loss(x, target, *, delta, reduction):
    """``0.5 * z * z`` where ``z = |x - target| < delta``, else ``delta * (z - 0.5 * delta)`` (torch's
    kernel), reduced: one kernel where the composite costs five each way."""
    z = jnp.abs(x - target)
    return _reduce_loss(jnp.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta)), reduction)


def _vjp_binary_cross_entropy(g, out, x, target, *, reduction):
    """torch's binary_cross_entropy backward: ``g * (x - target) / max((1 - x) * x, 1e-12)`` for the
    probabilities, ``-logit(x) * g`` for the target (unclamped: infinite at 0 and 1, as torch's),
    each divided by the element count for 'mean'."""
    dx = g * (x - target) / jnp.maximum((1 - x) * x, _BCE_EPSILON)
    dt = -jnp.log(x / (1 - x)) * g  # (torch's logit: log(x / (1 - x)))
    if reduction == "mean":
        n = jnp.asarray(x.size, dx.dtype)
        dx, dt = _divide(dx, n), _divide(dt, n)  # (torch's div_ by the count: rounded once)
    return dx.astype(x.dtype), dt.astype(target.dtype)


_BCE_EPSILON = float(np.float32(1e-12))  # (torch's EPSILON, a float constant for every dtype)


@register("binary_cross_entropy", static=("reduction",), vjp=_vjp_binary_cross_entropy, saves=(0, 1),
          with_grad=_reduced)
def _binary_cross_entropy(x, target, *, reduction):
    """``(target - 1) * max(log1p(-x), -100) - target * max(log(x), -100)`` over same-shaped
    probabilities and targets (torch's kernel), reduced: one kernel, with torch's gradient (which the
    clamped composite's differs from where a log is clamped: a probability of exactly 0 or 1)."""
    loss = (target - 1) * jnp.maximum(jnp.log1p(-x), -100) - target * jnp.maximum(jnp.log(x), -100)
    return _reduce_loss(loss, reduction)


def _log_sigmoid(x):
    """``min(x, 0) - log1p(exp(-|x|))`` as nn.functional.logsigmoid composes it (one mask for both)."""
    neg = x < 0
    return jnp.where(neg, x, 0) - jnp.log1p(jnp.exp(jnp.where(neg, x, -x)))


def _vjp_bce_with_logits(g, out, x, target, *, reduction):
    """torch's backward: ``(sigmoid(x) - target) * g`` for the logits and ``-x * g`` for the target,
    each divided by the element count for 'mean'."""
    dx = (lax.logistic(x) - target) * g
    dt = -x * g
    if reduction == "mean":
        dx, dt = dx / x.size, dt / x.size
    return dx.astype(x.dtype), dt.astype(target.dtype)


@register("binary_cross_entropy_with_logits", static=("reduction",), vjp=_vjp_bce_with_logits, saves=(0, 1),
          with_grad=_reduced)
def _bce_with_logits(x, target, *, reduction):
    """Mean (or sum) of ``(1 - target) * x - log_sigmoid(x)`` over same-shaped logits and targets
    (torch's stable form), with no weights: one kernel where the composite costs eleven each way, and
    its gradient in the same kernel when an input needs one (``with_grad``)."""
    return _reduce_loss((1 - target) * x - _log_sigmoid(x), reduction)


def scan_in_opmath(scan, x, dim):
    """``scan(x, axis=dim)`` accumulated in float32 for a float16/bfloat16 ``x`` and each output
    rounded once, as torch's CPU scans do (a running sum of 300 bfloat16 probabilities, top-p
    sampling's, drifts by 6 ulps when accumulated in bfloat16)."""
    if x.dtype in (jnp.float16, jnp.bfloat16):
        return scan(opmath(x), axis=dim).astype(x.dtype)
    return scan(x, axis=dim)


def _vjp_cumsum(g, out, x, *, dim, dtype):
    return (jnp.flip(scan_in_opmath(jnp.cumsum, jnp.flip(g, dim), dim), dim),)


@register("cumsum", static=("dim", "dtype"), vjp=_vjp_cumsum, saves=())
def _cumsum(x, *, dim, dtype):
    return scan_in_opmath(jnp.cumsum, x if dtype is None else x.astype(dtype), dim)


@register("cumprod", static=("dim", "dtype"))
def _cumprod(x, *, dim, dtype):
    return scan_in_opmath(jnp.cumprod, x if dtype is None else x.astype(dtype), dim)


def _vjp_cummax(g, out, x, *, dim, largest):
    # Each output takes its value from x[..., idx, ...]: send the gradient there (summing repeats).
    gv, _ = g
    coords = list(jnp.indices(x.shape, sparse=True))
    coords[dim] = out[1]
    return (jnp.zeros(x.shape, gv.dtype).at[tuple(coords)].add(gv),)


@register("cummax", static=("dim", "largest"), vjp=_vjp_cummax, saves=(), saves_out=True, nout=2)
def _cummax(x, *, dim, largest):
    """Running max (``largest``) or min along ``dim`` and the index it came from (the last on ties, as torch)."""
    f = lax.cummax if largest else lax.cummin
    vals = f(x, axis=dim)
    n = x.shape[dim]
    pos = jnp.arange(n).reshape([-1 if i == dim % x.ndim else 1 for i in range(x.ndim)])
    hit = jnp.where(x == vals, pos, -1)
    return vals, lax.cummax(jnp.broadcast_to(hit, x.shape), axis=dim).astype(jnp.int64)
