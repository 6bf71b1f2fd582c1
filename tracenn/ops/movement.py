"""Shape and movement primitives. Those marked ``view=True`` alias their input in torch; the Tensor
layer records them in a view chain so in-place writes through a view reach the base."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax

from .complexnum import COMPLEX_VIEWS, unview
from .registry import register


def _vjp_reshape(g, out, x, *, shape):
    return (g.reshape(x.shape),)


@register("reshape", static=("shape",), vjp=_vjp_reshape, saves=(), view=True)
def _reshape(x, *, shape):
    return jnp.reshape(x, shape)


def _vjp_permute(g, out, x, *, dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return (jnp.transpose(g, inv),)


@register("permute", static=("dims",), vjp=_vjp_permute, saves=(), view=True)
def _permute(x, *, dims):
    return jnp.transpose(x, dims)


@register("expand", static=("shape",), vjp=lambda g, out, x, shape: (g,), saves=(), view=True)
def _expand(x, *, shape):
    return jnp.broadcast_to(x, shape)  # the caller's unbroadcast sums the cotangent back


def build_index(spec):
    """Turn a static basic-index spec into a jnp index tuple.

    Entries: ("i", n) an int, ("s", start, stop, step) a slice, ("n",) None (new axis).
    """
    idx = []
    for e in spec:
        if e[0] == "i":
            idx.append(e[1])
        elif e[0] == "s":
            idx.append(slice(e[1], e[2], e[3]))
        else:
            idx.append(None)
    return tuple(idx)


@register("slice", static=("spec",), saves=(), view=True)
def _slice(x, *, spec):
    """Basic indexing (ints, slices with step > 0, None); indices already checked in range."""
    return x[build_index(spec)]


def _at(spec, ints):
    """A jnp index from a spec whose ("i",) entries take the next of ``ints`` (array operands)."""
    it = iter(ints)
    return tuple(next(it) if e[0] == "i" else build_index((e,))[0] for e in spec)


@register("dynamic_slice", static=("spec",), saves=(), view=True)
def _dynamic_slice(x, *ints, spec):
    """Basic indexing whose integers are operands, not static: one kernel serves ``x[0]``, ``x[1]``,
    ... . ``spec`` is ``slice``'s with each integer entry written ``("i",)``; the integers are
    already checked in range and non-negative (eager only: a traced graph uses ``slice``)."""
    return x[_at(spec, ints)]


@register("dynamic_update_slice", static=("spec",), saves=())
def _dynamic_update_slice(x, v, *ints, spec):
    """``x`` with ``x[spec] = v`` (``v`` a number, or broadcast to that shape in x's dtype): the
    write of ``x[i] = v``, with the integers as operands as in ``dynamic_slice``."""
    return x.at[_at(spec, ints)].set(lax.convert_element_type(v, x.dtype))


@register("diagonal", static=("offset", "dim1", "dim2"), saves=(), view=True)
def _diagonal(x, *, offset, dim1, dim2):
    return jnp.diagonal(x, offset, dim1, dim2)


@register("alias", vjp=lambda g, out, x: (g,), saves=(), view=True)
def _alias(x):
    """Identity; a tensor that shares its base's memory (detach, .data)."""
    return x


@register("copy", vjp=lambda g, out, x: (g,), saves=())
def _copy(x):
    """Identity as a fresh tensor (clone, contiguous); JAX arrays are immutable, so nothing moves."""
    return x


def _vjp_cat(g, out, *xs, dim):
    cuts, acc = [], 0
    for x in xs[:-1]:
        acc += x.shape[dim]
        cuts.append(acc)
    return tuple(jnp.split(g, cuts, axis=dim))


@register("cat", static=("dim",), vjp=_vjp_cat, saves=())
def _cat(*xs, dim):
    """Concatenate along ``dim`` (inputs already promoted to one dtype)."""
    return jnp.concatenate(xs, axis=dim)


@register("stack", static=("dim",), vjp=lambda g, out, *xs, dim: tuple(jnp.moveaxis(g, dim, 0)), saves=())
def _stack(*xs, dim):
    return jnp.stack(xs, axis=dim)


@register("flip", static=("dims",), vjp=lambda g, out, x, dims: (jnp.flip(g, dims),), saves=())
def _flip(x, *, dims):
    return jnp.flip(x, dims)


@register("roll", static=("shifts", "dims"), saves=())
def _roll(x, *, shifts, dims):
    if dims is None:
        return jnp.roll(x.reshape(-1), shifts).reshape(x.shape)
    return jnp.roll(x, shifts, dims)


@register("pad", static=("widths", "mode"), saves=())
def _pad(x, value, *, widths, mode):
    """Pad with ``widths`` ((lo, hi) per dim, negative crops); mode constant/reflect/edge/wrap."""
    if mode == "constant":
        cfg = [(lo, hi, 0) for lo, hi in widths]
        return lax.pad(x, jnp.asarray(value, x.dtype), cfg)
    return jnp.pad(x, widths, mode=mode)


@register("tile", static=("reps",), saves=())
def _tile(x, *, reps):
    return jnp.tile(x, reps)


@register("repeat_interleave", static=("repeats", "dim", "total"), saves=())
def _repeat_interleave(x, *, repeats, dim, total):
    """``repeats``: an int, or a tuple with one count per element along ``dim`` (static either way)."""
    reps = np.asarray(repeats) if isinstance(repeats, tuple) else repeats
    return jnp.repeat(x, reps, axis=dim, total_repeat_length=total)


@register("tril", static=("k",), vjp=lambda g, out, x, k: (jnp.tril(g, k),), saves=())
def _tril(x, *, k):
    return jnp.tril(x, k)


@register("triu", static=("k",), vjp=lambda g, out, x, k: (jnp.triu(g, k),), saves=())
def _triu(x, *, k):
    return jnp.triu(x, k)


def apply_chain(x, chain):
    """Apply a view chain — a tuple of (op name, static key) steps — to an array."""
    from .registry import OPS

    for name, key in chain:
        x = OPS[name].call((x,), key)
    return x


@register("view_scatter", static=("chain",))
def _view_scatter(base, new, *, chain):
    """``base`` with the elements that view ``chain`` selects replaced by ``new``.

    The flat positions a view reads are found by applying the chain to ``arange``; the write is
    one scatter. This is how an in-place change through any view (index, view, transpose, ...)
    becomes a functional update of its base.
    """
    for k, (name, _) in enumerate(chain):
        if name in COMPLEX_VIEWS:  # a view of another dtype: write the view whole, then its source
            inner = apply_chain(base, chain[:k])
            view = _view_scatter(apply_chain(inner, chain[k:k + 1]), new, chain=chain[k + 1:])
            return _view_scatter(base, unview(name, inner, view), chain=chain[:k])
    if all(name == "alias" for name, _ in chain):
        return jnp.broadcast_to(new, base.shape).astype(base.dtype)
    pos = apply_chain(jnp.arange(base.size).reshape(base.shape), chain)
    new = jnp.broadcast_to(new, pos.shape).astype(base.dtype)
    return base.reshape(-1).at[pos.reshape(-1)].set(new.reshape(-1)).reshape(base.shape)


@register("stop_gradient", differentiable=False)
def _stop_gradient(x):
    """The same values, through which no gradient flows: what ``detach()`` and ``no_grad`` become
    in a traced graph (eager autograd needs no op for them: it simply records nothing)."""
    return lax.stop_gradient(x)


@register("to_device", static=("device",))
def _to_device(x, *, device):
    """Move to a JAX device (the gradient moves back)."""
    import jax
    return jax.device_put(x, device)


@register("bitcast", static=("dtype",), differentiable=False)
def _bitcast(x, *, dtype):
    """Reinterpret the bits as ``dtype`` of the same width (``Tensor.view(dtype)``)."""
    return lax.bitcast_convert_type(x, dtype)
