"""Gather/scatter primitives: advanced indexing, index_put, gather, scatter, index_select, sort, topk.

Bounds are checked by the caller (eagerly, as torch does); JAX would silently clamp or drop.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .movement import build_index
from .registry import register


def _full_index(spec, idx):
    """Index tuple from a spec whose ("t", k) entries take the k-th index array."""
    out = []
    for e in spec:
        if e[0] == "t":
            out.append(idx[e[1]])
        elif e[0] == "e":
            out.append(Ellipsis)
        else:
            out.append(build_index((e,))[0])
    return tuple(out)


def _torch_order(spec, idx):
    """``spec`` in torch's order, as two jnp indexes: first the basic entries (an int selects, a
    slice slices, None and a 0-d bool ("b") add a dim), then the index arrays over what is left,
    NumPy's placement. One jnp index counts an int as an advanced index, which moves the arrays'
    dims (``x[0, :, [1, 2]]`` is (2, 3) in NumPy, (3, 2) in torch). None where one index agrees
    with torch: no int (static "i" or traced "d") and no 0-d bool in ``spec``."""
    if not any(e[0] in ("i", "d", "b") for e in spec):
        return None
    first, then = [], []
    for e in spec:
        tag = e[0]
        if tag == "i":
            first.append(e[1])
        elif tag == "d":
            first.append(idx[e[1]])
        elif tag in ("t", "b"):  # a "b" indexes the dim it adds with [0] (True) or [] (False)
            first.append(slice(None) if tag == "t" else None)
            then.append(idx[e[1]])
        elif tag == "e":
            first.append(Ellipsis)
            then.append(Ellipsis)
        else:
            first.append(build_index((e,))[0])
            then.append(slice(None))
    return tuple(first), tuple(then)


@register("index", static=("spec",))
def _index(x, *idx, spec):
    """Advanced indexing x[spec] with integer/boolean index arrays (torch's placement of dims)."""
    order = _torch_order(spec, idx)
    if order is None:
        return x[_full_index(spec, idx)]
    first, then = order
    return x[first][then]


@register("index_put", static=("spec", "accumulate"))
def _index_put(x, v, *idx, spec, accumulate):
    """x with x[spec] set to (or, with accumulate, increased by) v, broadcast."""
    v = v.astype(x.dtype) if hasattr(v, "astype") else v
    order = _torch_order(spec, idx)
    if order is None:
        ref = x.at[_full_index(spec, idx)]
        return ref.add(v) if accumulate else ref.set(v)
    first, then = order  # write into the selected part, then the part into x
    part = x[first].at[then]
    return x.at[first].set(part.add(v) if accumulate else part.set(v))


def _slice_to(x, shape, dim):
    """torch's gather/scatter read only index.shape in the other dims: crop x to that."""
    lims = [s if i != dim else x.shape[i] for i, s in enumerate(shape)]
    if tuple(lims) == x.shape:
        return x
    return lax.slice(x, (0,) * x.ndim, lims)


def _grid(index, dim):
    """Full coordinate arrays for a torch gather/scatter along ``dim`` with ``index``."""
    coords = list(jnp.indices(index.shape, sparse=True))
    coords[dim] = index
    return tuple(coords)


@register("gather", static=("dim",), saves=(1,))
def _gather(x, index, *, dim):
    return x[_grid(index, dim)]


def _others_product(v, zeros, nonzero_prod):
    """d(product of a group)/d(v): the product of the group's other members, exact with zeros."""
    safe = jnp.where(v == 0, jnp.ones_like(v), v)
    return jnp.where(v == 0, jnp.where(zeros == 1, nonzero_prod, 0), jnp.where(zeros == 0, nonzero_prod / safe, 0))


def _scatter_identity(reduce, dtype):
    """The value that leaves ``reduce`` unchanged: what include_self=False starts the written positions at."""
    if reduce in ("add", "sum"):
        return 0
    if reduce in ("multiply", "prod"):
        return 1
    if dtype == jnp.bool_:
        return reduce == "amin"
    if jnp.issubdtype(dtype, jnp.inexact):
        return -jnp.inf if reduce == "amax" else jnp.inf
    lim = jnp.iinfo(dtype)
    return lim.min if reduce == "amax" else lim.max


def _vjp_scatter(g, out, x, index, src, *, dim, reduce, include_self):
    grid = _grid(index, dim)
    has_src = hasattr(src, "shape")
    s = jnp.broadcast_to(src, index.shape).astype(x.dtype) if has_src else None
    if reduce is None:  # the written positions lose x's gradient; src gets the gradient it landed on
        return g.at[grid].set(0), None, (g[grid] if has_src else None)
    own = g if include_self else g.at[grid].set(0)  # include_self=False: x's written positions do not count
    if reduce in ("add", "sum"):
        return own, None, (g[grid] if has_src else None)
    if reduce in ("multiply", "prod"):
        base = x if include_self else x.at[grid].set(1)
        zeros = (base == 0).astype(x.dtype)  # per group: how many members are 0, and the product of the rest
        prod = jnp.where(base == 0, jnp.ones_like(base), base)
        if has_src:
            zeros = zeros.at[grid].add((s == 0).astype(x.dtype))
            prod = prod.at[grid].multiply(jnp.where(s == 0, jnp.ones_like(s), s))
        gx = own * _others_product(base, zeros, prod)
        gs = (g[grid] * _others_product(s, zeros[grid], prod[grid])) if has_src else None
        return gx, None, gs
    # amax / amin: torch shares the gradient evenly among every member equal to the result. With
    # include_self=False torch still counts x's own value among them (and then gives x nothing there):
    # a group [2, 2] reduced onto a 2 gets 1/3 each.
    x_hit = (x == out).astype(g.dtype)
    s_hit = (s == out[grid]).astype(g.dtype) if has_src else None
    count = x_hit.at[grid].add(s_hit) if has_src else x_hit
    share = g / jnp.maximum(count, 1)
    gx = x_hit * share
    return (gx if include_self else gx.at[grid].set(0)), None, (s_hit * share[grid] if has_src else None)


@register("scatter", static=("dim", "reduce", "include_self"), vjp=_vjp_scatter, saves_out=True)
def _scatter(x, index, src, *, dim, reduce, include_self):
    """torch.scatter / scatter_add / scatter_reduce; src already src[:index.shape]. ``include_self=False``
    (with a ``reduce``): the positions written start from the reduction's identity instead of x."""
    grid = _grid(index, dim)
    src = src.astype(x.dtype) if hasattr(src, "astype") else src
    if reduce is None:
        return x.at[grid].set(src)
    ref = (x if include_self else x.at[grid].set(_scatter_identity(reduce, x.dtype))).at[grid]
    return {"add": ref.add, "sum": ref.add, "multiply": ref.multiply, "prod": ref.multiply,
            "amax": ref.max, "amin": ref.min}[reduce](src)


@register("index_select", static=("dim",), saves=(1,))
def _index_select(x, index, *, dim):
    return jnp.take(x, index, axis=dim)


@register("index_add", static=("dim",))
def _index_add(x, index, src, alpha, *, dim):
    idx = [slice(None)] * x.ndim
    idx[dim] = index
    return x.at[tuple(idx)].add((src * alpha).astype(x.dtype))


def _vjp_sort(g, out, x, *, dim, descending, stable):
    gv, _ = g
    z = jnp.zeros(x.shape, gv.dtype)
    return (jnp.put_along_axis(z, out[1], gv, axis=dim, inplace=False),)


@register("sort", static=("dim", "descending", "stable"), vjp=_vjp_sort, saves=(), saves_out=True, nout=2)
def _sort(x, *, dim, descending, stable):
    idx = jnp.argsort(x, axis=dim, stable=True, descending=descending)
    return jnp.take_along_axis(x, idx, axis=dim), idx.astype(jnp.int64)


def _vjp_topk(g, out, x, *, k, dim, largest, sorted):
    gv, _ = g
    z = jnp.zeros(x.shape, gv.dtype)
    return (jnp.put_along_axis(z, out[1], gv, axis=dim, inplace=False),)


@register("topk", static=("k", "dim", "largest", "sorted"), vjp=_vjp_topk, saves=(), saves_out=True, nout=2)
def _topk(x, *, k, dim, largest, sorted):
    xm = jnp.moveaxis(x, dim, -1)
    if largest:
        _, idx = lax.top_k(xm, k)
    else:
        # top_k of the negation breaks on unsigned/min-int; a stable ascending argsort is exact.
        idx = jnp.argsort(xm, axis=-1, stable=True)[..., :k]
    vals = jnp.take_along_axis(xm, idx, axis=-1)
    return jnp.moveaxis(vals, -1, dim), jnp.moveaxis(idx, -1, dim).astype(jnp.int64)
