"""Complex-number primitives: the real and imaginary parts (views of a complex tensor in torch),
the real view of a complex tensor and back, building a complex tensor from parts, and its angle.

None has a hand-written gradient rule: a node with a complex input or output is differentiated by
JAX's vjp of its impl, conjugated into torch's convention (see ``registry._backward``).
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .registry import register


@register("real", saves=(), view=True)
def _real(x):
    """The real part of a complex array (a view of it in torch)."""
    return jnp.real(x)


@register("imag", saves=(), view=True)
def _imag(x):
    """The imaginary part of a complex array (a view of it in torch)."""
    return jnp.imag(x)


@register("view_as_real", saves=(), view=True)
def _view_as_real(x):
    """A complex array as real pairs along a new last dimension of size 2."""
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


@register("view_as_complex", saves=(), view=True)
def _view_as_complex(x):
    """Real pairs along the last dimension (of size 2) as one complex array."""
    return lax.complex(x[..., 0], x[..., 1])


@register("complex", saves=())
def _complex(re, im):
    """``re + i im`` (both real, of one dtype; they broadcast)."""
    return lax.complex(*jnp.broadcast_arrays(re, im))


@register("polar", saves=())
def _polar(r, theta):
    """``r (cos theta + i sin theta)`` (they broadcast)."""
    r, theta = jnp.broadcast_arrays(r, theta)
    return lax.complex(r * jnp.cos(theta), r * jnp.sin(theta))


def _vjp_angle(g, out, x, *, dtype):
    return (jnp.zeros(jnp.shape(x), dtype),)  # a real input's angle is piecewise constant


@register("angle", static=("dtype",), vjp=_vjp_angle, saves=())
def _angle(x, *, dtype):
    """The argument of each element; for a real input (computed in ``dtype``) 0 or pi, NaN kept,
    as torch's."""
    if jnp.iscomplexobj(x):
        return jnp.angle(x)
    x = lax.convert_element_type(x, dtype)
    return jnp.where(jnp.isnan(x), x, jnp.where(x < 0, jnp.asarray(jnp.pi, dtype), jnp.zeros((), dtype)))


def unview(name, inner, view):
    """The value of ``inner`` after complex view step ``name`` of it was rewritten as ``view``:
    how ``view_scatter`` writes through ``x.real``, ``x.imag``, ``view_as_real(x)``..."""
    if name == "real":
        return lax.complex(view.astype(jnp.real(inner).dtype), jnp.imag(inner))
    if name == "imag":
        return lax.complex(jnp.real(inner), view.astype(jnp.real(inner).dtype))
    if name == "view_as_real":
        view = view.astype(jnp.real(inner).dtype)
        return lax.complex(view[..., 0], view[..., 1])
    return jnp.stack([jnp.real(view), jnp.imag(view)], axis=-1).astype(inner.dtype)  # view_as_complex


COMPLEX_VIEWS = frozenset({"real", "imag", "view_as_real", "view_as_complex"})
