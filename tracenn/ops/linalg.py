"""Matrix products and convolution."""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .registry import register


@register("matmul")
def _matmul(x, y):
    """torch.matmul semantics (1-D operands, batch broadcasting) — identical to numpy's."""
    return jnp.matmul(x, y, preferred_element_type=x.dtype)


@register("einsum", static=("equation",))
def _einsum(*xs, equation):
    return jnp.einsum(equation, *xs)


@register("conv", static=("stride", "padding", "dilation", "groups"))
def _conv(x, w, *, stride, padding, dilation, groups):
    """N-d cross-correlation, torch layout (N, C, *spatial) x (O, C/groups, *kernel).

    ``padding`` is a tuple of (lo, hi) per spatial dim; bias is added by the caller.
    """
    nd = x.ndim - 2
    sp = "DHW"[-nd:] if nd <= 3 else None
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NC" + sp, "OI" + sp, "NC" + sp))
    return lax.conv_general_dilated(x, w, window_strides=stride, padding=padding,
                                    rhs_dilation=dilation, dimension_numbers=dn,
                                    feature_group_count=groups)
