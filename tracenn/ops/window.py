"""Windowed primitives: pooling reductions, argmax-in-window, and the transposed convolution.

- ``reduce_window``: max or sum over sliding windows (max/avg/lp pooling).
- ``window_argmax``: max over sliding windows and where it came from (max pooling with indices).
- ``conv_transpose``: torch's conv_transpose{1,2,3}d, a convolution with ``lhs_dilation``; its
  gradients are the strided convolution it is the adjoint of, and that convolution's weight gradient.

Windows slide over the *trailing* ``len(window)`` dims; leading dims (batch, channels) are left alone.
``padding`` is one (lo, hi) pair per windowed dim; padded positions never win a max and add 0 to a sum.

Gradients. JAX's own gradient of a max ``reduce_window`` (select_and_scatter) is ~10-20x slower on
XLA:CPU than the form used here (PERF-NOTES: a 2x2 max-pool backward took ~75 ms that way, ~4 ms
this way). Every vjp here is written with one strided slice (forward) or one interior-padded pad
(backward) per window offset, which XLA fuses into a few elementwise loops. Ties go to the first
window position in row-major order, as torch's CPU kernels choose.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .registry import register


def _out_len(n, k, s, pad, d):
    return (n + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def _lowest(dtype):
    """The value a padded position holds in a max: -inf, or the integer minimum."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return jnp.array(-jnp.inf, dtype)
    if dtype == jnp.bool_:
        return jnp.array(False)
    return jnp.array(jnp.iinfo(dtype).min, dtype)


def _window_slices(x, window, strides, padding, dilation, fill):
    """Pad the windowed dims of ``x`` with ``fill`` and yield (offset, slice) per window position.

    The slice for window offset ``o`` holds, at output position ``j``, the padded input at
    ``j * stride + o * dilation``: stacking them would be im2col; here each is used once.
    """
    nd = len(window)
    lead = x.ndim - nd
    if any(p != (0, 0) for p in padding):
        x = lax.pad(x, fill, [(0, 0, 0)] * lead + [(lo, hi, 0) for lo, hi in padding])
    outs = [_out_len(n, k, s, (0, 0), d) for n, k, s, d in zip(x.shape[lead:], window, strides, dilation)]
    for off in itertools.product(*(range(k) for k in window)):
        start = [0] * lead + [o * d for o, d in zip(off, dilation)]
        limit = list(x.shape[:lead]) + [st + (n - 1) * s + 1 for st, n, s in zip(start[lead:], outs, strides)]
        yield off, lax.slice(x, start, limit, (1,) * lead + tuple(strides))


def _place(parts, x_shape, window, strides, padding, dilation, dtype):
    """Transpose of :func:`_window_slices`: sum each offset's cotangent back into input positions.

    One ``lax.pad`` per offset: interior padding ``stride - 1`` spreads the outputs to their input
    positions, low/high padding shifts them by the offset, and negative low/high crop the padding.
    """
    nd = len(window)
    lead = len(x_shape) - nd
    zero = jnp.zeros((), dtype)
    total = None
    for off, g in parts:
        cfg = [(0, 0, 0)] * lead
        for i in range(nd):
            n, lo_pad = x_shape[lead + i], padding[i][0]
            lo = off[i] * dilation[i] - lo_pad
            span = (g.shape[lead + i] - 1) * strides[i] + 1
            cfg.append((lo, n - lo - span, strides[i] - 1))
        placed = lax.pad(g.astype(dtype), zero, cfg)
        total = placed if total is None else total + placed
    return total


def _is_nan(v):
    return (v != v) if jnp.issubdtype(v.dtype, jnp.inexact) else jnp.zeros(v.shape, bool)


def _vjp_reduce_window(g, out, x, *, kind, window, strides, padding, dilation):
    slices = _window_slices(x, window, strides, padding, dilation, _lowest(x.dtype) if kind == "max" else
                            jnp.zeros((), x.dtype))
    if kind == "sum":
        return (_place(((off, g) for off, _ in slices), x.shape, window, strides, padding, dilation, g.dtype),)
    # max: the first window position equal to the result (or NaN, which won) takes the gradient.
    taken = jnp.zeros(out.shape, bool)
    out_nan = _is_nan(out)
    parts = []
    for off, s in slices:
        hit = ((s == out) | (_is_nan(s) & out_nan)) & ~taken
        taken = taken | hit
        parts.append((off, jnp.where(hit, g, jnp.zeros((), g.dtype))))
    return (_place(parts, x.shape, window, strides, padding, dilation, g.dtype),)


# The vjps read the node's output array, which stays valid even if the user later changes the
# output tensor in place (``MaxPool2d`` then ``ReLU(inplace=True)`` is legal in torch), so the
# output is not declared saved (saves_out=False): only the input is checked for in-place changes.
@register("reduce_window", static=("kind", "window", "strides", "padding", "dilation"),
          vjp=_vjp_reduce_window)
def _reduce_window(x, *, kind, window, strides, padding, dilation):
    """Max (``kind="max"``) or sum (``"sum"``) over sliding windows of the trailing dims.

    ``window``/``strides``/``dilation``: one int per windowed dim; ``padding``: (lo, hi) pairs.
    """
    lead = x.ndim - len(window)
    if kind == "max":
        init, fn = _lowest(x.dtype), lax.max
    elif kind == "sum":
        init, fn = jnp.zeros((), x.dtype), lax.add
    else:
        raise ValueError(f"reduce_window: unknown kind {kind!r} (expected 'max' or 'sum')")
    return lax.reduce_window(x, init, fn, (1,) * lead + tuple(window), (1,) * lead + tuple(strides),
                             ((0, 0),) * lead + tuple(padding), window_dilation=(1,) * lead + tuple(dilation))


def _vjp_window_argmax(g, out, x, *, window, strides, padding, dilation):
    return _vjp_reduce_window(g[0], out[0], x, kind="max", window=window, strides=strides,
                              padding=padding, dilation=dilation)


@register("window_argmax", static=("window", "strides", "padding", "dilation"), vjp=_vjp_window_argmax,
          nout=2)
def _window_argmax(x, *, window, strides, padding, dilation):
    """(max, index) over sliding windows of the trailing dims, as torch's max_pool*_with_indices.

    ``index`` (int64) is the flat position of the max within the unpadded trailing dims of ``x``
    (``h * W + w`` in 2-D); the first maximum in window order wins, NaN beats any number.
    """
    nd = len(window)
    lead = x.ndim - nd
    sizes = x.shape[lead:]
    outs = [_out_len(n, k, s, p, d) for n, k, s, p, d in zip(sizes, window, strides, padding, dilation)]
    mult = np.cumprod((1,) + sizes[:0:-1])[::-1]  # row-major place values of the trailing dims
    # Flat index of each output position's window origin (offset 0), as a constant of the output shape.
    grids = np.meshgrid(*[np.arange(o) * s - p[0] for o, s, p in zip(outs, strides, padding)], indexing="ij")
    origin = sum(gr * m for gr, m in zip(grids, mult)).astype(np.int64) if nd else np.zeros((), np.int64)
    best, where = None, None
    for off, s in _window_slices(x, window, strides, padding, dilation, _lowest(x.dtype)):
        shift = int(sum(o * d * m for o, d, m in zip(off, dilation, mult)))
        if best is None:
            best, where = s, jnp.broadcast_to(jnp.asarray(origin + shift), s.shape)
            continue
        better = (s > best) | (_is_nan(s) & ~_is_nan(best))
        best = jnp.where(better, s, best)
        where = jnp.where(better, jnp.asarray(origin + shift), where)
    return best, where.astype(jnp.int64)


def _conv_forward(x, w, stride, padding, dilation, groups):
    """torch's strided convolution, (N, C, *sp) x (O, C/groups, *k), symmetric ``padding``."""
    nd = x.ndim - 2
    sp = "DHW"[-nd:]
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NC" + sp, "OI" + sp, "NC" + sp))
    return lax.conv_general_dilated(x, w, window_strides=stride, padding=[(p, p) for p in padding],
                                    rhs_dilation=dilation, dimension_numbers=dn, feature_group_count=groups)


def _fit(a, shape):
    """Crop or zero-pad the spatial dims of ``a`` (at the end) to ``shape``'s."""
    cfg = [(0, 0, 0)] * 2 + [(0, t - n, 0) for n, t in zip(a.shape[2:], shape[2:])]
    return a if all(c == (0, 0, 0) for c in cfg) else lax.pad(a, jnp.zeros((), a.dtype), cfg)


def _vjp_conv_transpose(g, out, x, w, *, stride, padding, output_padding, dilation, groups):
    # conv_transpose(., w) is the adjoint of the strided convolution C(., w) with this layer's
    # stride/padding/dilation (and the same weight tensor: its (C_in, C_out/groups, *k) layout is
    # that convolution's (out, in/groups, *k)). So d/dx = C(g, w), and d/dw is C's ordinary weight
    # gradient with input g and output-cotangent x. JAX's own gradient of the lhs-dilated
    # convolution computes that weight gradient ~30x slower on XLA:CPU (200 ms vs 7 ms measured for
    # 64->32 channels, 13x13 -> 26x26, batch 32).
    def conv(w_):
        return _conv_forward(g, w_, stride, padding, dilation, groups)

    y, pullback = jax.vjp(conv, w)
    # output_padding >= stride (allowed when smaller than dilation) gives C one extra output row:
    # it reads only output padding, so it is cropped from gx and fed a zero cotangent.
    return _fit(y, x.shape), pullback(_fit(x, y.shape))[0]


@register("conv_transpose", static=("stride", "padding", "output_padding", "dilation", "groups"),
          vjp=_vjp_conv_transpose)
def _conv_transpose(x, w, *, stride, padding, output_padding, dilation, groups):
    """torch's transposed convolution: (N, C_in, *spatial) x (C_in, C_out/groups, *kernel).

    The adjoint of a strided convolution, computed directly as a convolution with
    ``lhs_dilation=stride`` over the spatially flipped kernel whose in/out channels are swapped
    within each group. Bias is added by the caller.
    """
    nd = x.ndim - 2
    cin, cout_g = w.shape[0], w.shape[1]
    k = w.shape[2:]
    w = w.reshape((groups, cin // groups, cout_g) + k)
    w = jnp.swapaxes(w, 1, 2).reshape((groups * cout_g, cin // groups) + k)
    w = jnp.flip(w, axis=tuple(range(2, nd + 2)))
    pads = [(d * (kk - 1) - p, d * (kk - 1) - p + op) for kk, p, op, d in zip(k, padding, output_padding, dilation)]
    sp = "DHW"[-nd:]
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NC" + sp, "OI" + sp, "NC" + sp))
    return lax.conv_general_dilated(x, w, window_strides=(1,) * nd, padding=pads, lhs_dilation=stride,
                                    rhs_dilation=dilation, dimension_numbers=dn, feature_group_count=groups)
