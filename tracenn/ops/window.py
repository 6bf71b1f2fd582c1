"""Windowed primitives: pooling reductions, argmax-in-window, and the transposed convolution.

- ``reduce_window``: max or sum over sliding windows (max/avg/lp pooling).
- ``window_argmax``: max over sliding windows and where it came from (max pooling with indices).
- ``conv_transpose``: torch's conv_transpose{1,2,3}d, the input gradient of a strided convolution;
  its gradients are that convolution and its weight gradient (linalg.py's three conv lowerings).

Windows slide over the *trailing* ``len(window)`` dims; leading dims (batch, channels) are left alone.
``padding`` is one (lo, hi) pair per windowed dim; padded positions never win a max and add 0 to a sum.

Each op's impl is a ``jax.custom_vjp`` whose backward is the op's vjp rule, so eager backward and a
compiled program that differentiates ``impl`` run the same gradient. JAX cannot differentiate a
``lax.reduce_window`` with a traced init value at all, and its own max-pool gradient
(select_and_scatter) is slow on XLA:CPU: 47-69 ms for a 2x2 max-pool of 64x64x24x24 against 2.5-3 ms
here, 70-150 ms vs 7-9 ms for a 3x3 stride-2 pool of 16x64x56x56 (forward+backward, measured).

Forms used (all fuse into a few elementwise loops):
- max forward: the max of one strided slice per window offset (2-4x faster than reduce_window).
- max backward: the window position torch's CPU kernels pick (ties go to the first position in
  row-major order; a NaN result to the window's last NaN), computed once by a reduction so XLA
  materialises it instead of re-deriving it inside every consumer (that alone was 10x slower),
  then each offset's share of ``g`` is placed back with :func:`_place`.
- :func:`_place` (the transpose of the slices) works per *phase*: the input positions ``p`` with
  one value of ``p mod stride`` receive a sum of whole-array shifts of the offsets' cotangents, and
  the phases are interleaved by one stack+reshape. For stride == window that is a pure reshape.
- Tiled pooling on the CPU (1-d or 2-d windows that tile the input: stride == window, no padding
  or dilation, as ``MaxPool2d(2)`` and ``AvgPool2d(2)``) has its own lowering
  (:func:`_tiled_reduce`, :func:`_tiled_max_grad`, :func:`_tiled_grad`): it runs in the order
  the CPU convolutions leave their output (``linalg._side_by_side``: (H, N, W, C), channels
  minor), so that XLA cancels the transposes on both sides and reads the convolution's output in
  place. The max's window position comes from one chain of compares (torch's kernel loop), and
  each gradient is one broadcast (and for max one select) over the input. In the MNIST CNN's
  compiled training step this took the step to 0.78x its time (max pool) and 0.92x (average pool);
  laying out the general (overlapping, padded) max pooling the same way gained 6% in a compiled
  step but made the pooling alone up to 3x slower on row-major input, so it was not kept.
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .linalg import conv_forward, conv_input_grad, conv_weight_grad
from .registry import register

_SLICED_MAX_WINDOW = 64  # larger windows use lax.reduce_window (one slice per offset would bloat the program)


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


def _place(parts, x_shape, window, strides, padding, dilation):
    """Transpose of :func:`_window_slices`: sum each offset's cotangent back into input positions.

    ``parts`` maps window offset -> cotangent at output resolution. Padded input position
    ``q = m * stride + r`` (phase ``r``) receives ``parts[t][m - (t * dilation - r) / stride]`` from
    every offset ``t`` with ``t * dilation = r (mod stride)``: per phase a sum of plain shifts (pads
    with negative/positive edges, no interior padding), then the phases interleave as
    (..., m, r) -> m * stride + r.
    """
    nd = len(window)
    lead = len(x_shape) - nd
    first = next(iter(parts.values()))
    osz, dtype = first.shape[lead:], first.dtype
    zero = jnp.zeros((), dtype)
    lens = [-(-(n + lo + hi) // s) for n, (lo, hi), s in zip(x_shape[lead:], padding, strides)]

    def phase(r):
        total = None
        for off, part in parts.items():
            if any((t * d) % s != ri for t, d, s, ri in zip(off, dilation, strides, r)):
                continue
            cfg = [(0, 0, 0)] * lead
            for t, d, s, ri, o, m in zip(off, dilation, strides, r, osz, lens):
                shift = (t * d - ri) // s
                cfg.append((shift, m - shift - o, 0))
            term = lax.pad(part, zero, cfg)
            total = term if total is None else total + term
        return jnp.zeros(tuple(x_shape[:lead]) + tuple(lens), dtype) if total is None else total

    def interleave(r, i):
        # Stacking phase r_i after dim i turns (..., m_i, ...) into (..., m_i, s_i, ...); inner dims
        # have already been expanded the same way, so dim i still sits at lead + i.
        if i == nd:
            return phase(r)
        return jnp.stack([interleave(r + (ri,), i + 1) for ri in range(strides[i])], axis=lead + i + 1)

    full = interleave((), 0).reshape(tuple(x_shape[:lead]) + tuple(m * s for m, s in zip(lens, strides)))
    start = [0] * lead + [lo for lo, _ in padding]
    return lax.slice(full, start, [a + b for a, b in zip(start, x_shape)])


def _is_nan(v):
    return (v != v) if jnp.issubdtype(v.dtype, jnp.inexact) else jnp.zeros(v.shape, bool)


_TILED_MAX_WINDOW = 16  # larger tiled windows keep the general lowering (one slice per offset)
_TILED = [True]  # off: tiled windows take the general lowering too (benchmarks/conv.py compares the two)
_ARGMAX_WINDOW = 4  # up to this many offsets the index comes from argmax, larger windows compare with ``out``


def _first_argmax(x, out, window, strides, padding, dilation):
    """int32 (the output's shape): the row-major window offset torch's max-pool picks per window.

    The first maximum, or, when the window holds a NaN, its last NaN (torch's CPU kernels update on
    ``val > max || isnan(val)``). Reductions over an (output, window) view built with ``select_n``,
    so XLA writes the index once instead of re-deriving it inside each consumer (10x slower,
    measured). Small windows use ``argmax`` and ignore ``out``: in one program with the forward,
    XLA recomputes ``out`` inside the reduction (2x2 pool of 64x64x24x24: 6-9 ms that way, 2.2 ms
    with argmax, 2-3 ms comparing with a materialised ``out``); for 3x3 windows argmax is the
    slower one (12 ms vs 6 ms materialised, 10 ms recomputed, 16x64x56x56).
    """
    slices = [s for _, s in _window_slices(x, window, strides, padding, dilation, _lowest(x.dtype))]
    n = len(slices)
    shape = slices[0].shape + (n,)
    pos = lax.broadcasted_iota(jnp.int32, shape, len(shape) - 1)
    dims = tuple(range(len(shape) - 1))
    vals = lax.select_n(pos, *[lax.broadcast_in_dim(s, shape, dims) for s in slices]) if n > 1 else slices[0][..., None]
    nan = _is_nan(vals)
    if n <= _ARGMAX_WINDOW:
        first_max = jnp.argmax(vals, axis=-1).astype(jnp.int32)
        last_nan = jnp.min(jnp.where(nan, -1 - pos, 0), axis=-1)  # -1 - t for the last NaN at t
        idx = jnp.where(last_nan < 0, -1 - last_nan, first_max)
    else:
        # Keys: NaN at offset t -> -1 - t (the last NaN has the smallest), a maximum -> t, else n.
        key = jnp.min(jnp.where(nan, -1 - pos, jnp.where(vals == out[..., None], pos, n)), axis=-1)
        idx = jnp.where(key < 0, -1 - key, key)
    first = _first_inside(x.shape, window, strides, padding, dilation)
    if first is None:
        return idx
    # A window whose inputs all equal the padding value (-inf) ties with its padded positions: torch
    # keeps its first position inside the input.
    return jnp.where(jnp.max(vals, axis=-1) == _lowest(x.dtype), jnp.asarray(first, jnp.int32), idx)


def _first_inside(x_shape, window, strides, padding, dilation):
    """Per output position (trailing dims only), the first row-major window offset that lies inside
    the input; None when no window reaches into the padding."""
    nd = len(window)
    with jax.ensure_compile_time_eval():  # a constant of the shapes, also while tracing
        inside = jnp.ones(x_shape[len(x_shape) - nd:], bool)
        slices = [np.asarray(s) for _, s in _window_slices(inside, window, strides, padding, dilation, False)]
    if all(s.all() for s in slices):
        return None
    return np.argmax(np.stack(slices, -1), axis=-1)


def _tiles(x_ndim, window, strides, padding, dilation) -> bool:
    """Whether windows of 1 or 2 dims tile the input (stride == window; no padding, no dilation)
    over at least one leading dim: the geometry :func:`_tiled_reduce` lowers."""
    nd = len(window)
    return (_TILED[0] and nd in (1, 2) and x_ndim > nd and math.prod(window) <= _TILED_MAX_WINDOW
            and tuple(strides) == tuple(window) and all(d == 1 for d in dilation)
            and all(tuple(p) == (0, 0) for p in padding))


def _tiled_order(ndim, nd):
    """The permutation of an (*lead, *window dims) array into the order the CPU convolutions leave
    their output in (linalg._side_by_side: H, N, W, C): the first window dim of two, the leading
    dims but the last, the last window dim, then the last leading dim (channels)."""
    lead = list(range(ndim - nd))
    win = list(range(ndim - nd, ndim))
    return tuple(win[:-1] + lead[:-1] + win[-1:] + lead[-1:])


def _tiled_axes(x_ndim, window):
    """(:func:`_tiled_order`'s permutation, {permuted axis: window size} for the windowed dims)."""
    nd = len(window)
    perm = _tiled_order(x_ndim, nd)
    return perm, {perm.index(x_ndim - nd + i): k for i, k in enumerate(window)}


def _tiled_offsets(x, window):
    """``x`` permuted by :func:`_tiled_order`, cropped to whole windows and split per window offset:
    (one array per offset, in row-major window order; the permutation)."""
    perm, wins = _tiled_axes(x.ndim, window)
    xt = jnp.transpose(x, perm)
    xt = xt[tuple(slice(0, n - n % wins.get(a, 1)) for a, n in enumerate(xt.shape))]
    split, at = [], []
    for a, n in enumerate(xt.shape):
        if a in wins:
            at.append(len(split) + 1)  # the offset axis of this window dim after the split
            split += [n // wins[a], wins[a]]
        else:
            split.append(n)
    xs = xt.reshape(split)
    slices = []
    for off in itertools.product(*(range(k) for k in window)):
        idx = [slice(None)] * xs.ndim
        for ax, o in zip(at, off):
            idx[ax] = o
        slices.append(xs[tuple(idx)])
    return slices, perm


def _tiled_reduce(x, window, fn):
    """Max (``fn=lax.max``) or sum (``lax.add``) over windows that tile ``x``'s trailing dims (see
    :func:`_tiles`), computed in the CPU convolutions' output order."""
    slices, perm = _tiled_offsets(x, window)
    return jnp.transpose(functools.reduce(fn, slices), np.argsort(perm))


def _tiled_grad(g, x, window, pick=None):
    """The input gradient of a tiled pooling, in the CPU convolutions' output order: each window's
    cotangent repeated over its window (a sum), or, given ``pick`` (per window, the row-major
    offset of the position that gets it), sent to that position alone (a max). Rows and columns
    past the last whole window get zero."""
    perm, wins = _tiled_axes(x.ndim, window)
    gt = jnp.transpose(g, perm)
    wide = [n * wins.get(a, 1) for a, n in enumerate(gt.shape)]

    def up(v):  # each window's value over its window
        split, full = [], []
        for a, n in enumerate(v.shape):
            split += [n, 1] if a in wins else [n]
            full += [n, wins[a]] if a in wins else [n]
        return jnp.broadcast_to(v.reshape(split), full).reshape(wide)

    gx = up(gt)
    if pick is not None:
        # The row-major window offset of every (cropped) input position, a constant of the shapes.
        pos = np.zeros([wide[a] if a in wins else 1 for a in range(len(wide))], np.int32)
        for (a, k), m in zip(wins.items(), np.cumprod((1,) + tuple(window[:0:-1]))[::-1]):
            shape = [1] * len(wide)
            shape[a] = wide[a]
            pos = pos + (np.arange(wide[a]) % k * m).reshape(shape).astype(np.int32)
        gx = jnp.where(up(pick) == pos, gx, jnp.zeros((), g.dtype))
    xt_shape = [x.shape[p] for p in perm]
    if list(gx.shape) != xt_shape:
        gx = jnp.pad(gx, [(0, n - m) for n, m in zip(xt_shape, gx.shape)])
    return jnp.transpose(gx, np.argsort(perm))


def _tiled_max_grad(g, x, window):
    """The input gradient of a tiled max: each window's cotangent goes to the position torch's CPU
    kernel picks (it scans the window in row-major order and moves on ``val > max or isnan(val)``:
    the first maximum, or the last NaN), chosen by the same chain of compares."""
    slices, _ = _tiled_offsets(x, window)
    best, pick = slices[0], jnp.zeros(slices[0].shape, jnp.int32)
    for i, s in enumerate(slices[1:], 1):
        better = (s > best) | _is_nan(s)
        best = jnp.where(better, s, best)
        pick = jnp.where(better, jnp.int32(i), pick)
    return _tiled_grad(g, x, window, pick)


def _max_grad_by_slices(g, out, x, window, strides, padding, dilation):
    """Max pooling's input gradient for any geometry: each output's cotangent goes to the window
    position :func:`_first_argmax` picks, placed back by :func:`_place`."""
    offsets = list(itertools.product(*(range(k) for k in window)))
    idx = _first_argmax(x, out, window, strides, padding, dilation)
    zero = jnp.zeros((), g.dtype)
    parts = {off: jnp.where(idx == i, g, zero) for i, off in enumerate(offsets)}
    return _place(parts, x.shape, window, strides, padding, dilation)


def _vjp_reduce_window(g, out, x, *, kind, window, strides, padding, dilation):
    if kind == "sum":
        def by_slices(g, x):
            return _place({off: g for off in itertools.product(*(range(k) for k in window))}, x.shape, window,
                          strides, padding, dilation)
        tiled = _tiled_grad
    else:
        def by_slices(g, x):
            return _max_grad_by_slices(g, out, x, window, strides, padding, dilation)
        tiled = _tiled_max_grad
    if _tiles(x.ndim, window, strides, padding, dilation):
        return (lax.platform_dependent(g, x, cpu=lambda g, x: tiled(g, x, window), default=by_slices),)
    return (by_slices(g, x),)


def _reduce_window_forward(x, kind, window, strides, padding, dilation):
    if kind not in ("max", "sum"):
        raise ValueError(f"reduce_window: unknown kind {kind!r} (expected 'max' or 'sum')")
    fn = lax.max if kind == "max" else lax.add
    lead = x.ndim - len(window)

    def general(x):
        if kind == "max" and math.prod(window) <= _SLICED_MAX_WINDOW:
            return functools.reduce(lax.max, [s for _, s in _window_slices(x, window, strides, padding, dilation,
                                                                           _lowest(x.dtype))])
        init = _lowest(x.dtype) if kind == "max" else jnp.zeros((), x.dtype)
        return lax.reduce_window(x, init, fn, (1,) * lead + tuple(window), (1,) * lead + tuple(strides),
                                 ((0, 0),) * lead + tuple(padding), window_dilation=(1,) * lead + tuple(dilation))

    if _tiles(x.ndim, window, strides, padding, dilation):
        return lax.platform_dependent(x, cpu=lambda x: _tiled_reduce(x, window, fn), default=general)
    return general(x)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4, 5))
def _reduce_window_ad(x, kind, window, strides, padding, dilation):
    return _reduce_window_forward(x, kind, window, strides, padding, dilation)


def _reduce_window_ad_fwd(x, kind, window, strides, padding, dilation):
    out = _reduce_window_forward(x, kind, window, strides, padding, dilation)
    return out, (x, out)


def _reduce_window_ad_bwd(kind, window, strides, padding, dilation, res, g):
    x, out = res
    return _vjp_reduce_window(g, out, x, kind=kind, window=window, strides=strides, padding=padding,
                              dilation=dilation)


_reduce_window_ad.defvjp(_reduce_window_ad_fwd, _reduce_window_ad_bwd)


# The vjps read the node's output array, which stays valid even if the user later changes the
# output tensor in place (``MaxPool2d`` then ``ReLU(inplace=True)`` is legal in torch), so the
# output is not declared saved (saves_out=False): only the input is checked for in-place changes.
@register("reduce_window", static=("kind", "window", "strides", "padding", "dilation"),
          vjp=_vjp_reduce_window)
def _reduce_window(x, *, kind, window, strides, padding, dilation):
    """Max (``kind="max"``) or sum (``"sum"``) over sliding windows of the trailing dims.

    ``window``/``strides``/``dilation``: one int per windowed dim; ``padding``: (lo, hi) pairs.
    """
    return _reduce_window_ad(x, kind, tuple(window), tuple(strides), tuple(tuple(p) for p in padding),
                             tuple(dilation))


def _vjp_window_argmax(g, out, x, *, window, strides, padding, dilation):
    return _vjp_reduce_window(g[0], out[0], x, kind="max", window=window, strides=strides,
                              padding=padding, dilation=dilation)


def _window_argmax_forward(x, window, strides, padding, dilation):
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
        better = (s > best) | _is_nan(s)  # torch: a later NaN replaces an earlier one
        best = jnp.where(better, s, best)
        where = jnp.where(better, jnp.asarray(origin + shift), where)
    first = _first_inside(x.shape, window, strides, padding, dilation)
    if first is not None:  # an all-padding-value window: its first position inside the input
        t = np.unravel_index(first, window)
        inside = origin + sum(o * d * m for o, d, m in zip(t, dilation, mult))
        where = jnp.where(best == _lowest(x.dtype), jnp.asarray(inside), where)
    return best, where.astype(jnp.int64)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _window_argmax_ad(x, window, strides, padding, dilation):
    return _window_argmax_forward(x, window, strides, padding, dilation)


def _window_argmax_ad_fwd(x, window, strides, padding, dilation):
    out = _window_argmax_forward(x, window, strides, padding, dilation)
    return out, (x, out[0])


def _window_argmax_ad_bwd(window, strides, padding, dilation, res, g):
    x, best = res
    return _vjp_reduce_window(g[0], best, x, kind="max", window=window, strides=strides, padding=padding,
                              dilation=dilation)


_window_argmax_ad.defvjp(_window_argmax_ad_fwd, _window_argmax_ad_bwd)


@register("window_argmax", static=("window", "strides", "padding", "dilation"), vjp=_vjp_window_argmax,
          nout=2)
def _window_argmax(x, *, window, strides, padding, dilation):
    """(max, index) over sliding windows of the trailing dims, as torch's max_pool*_with_indices.

    ``index`` (int64) is the flat position of the max within the unpadded trailing dims of ``x``
    (``h * W + w`` in 2-D); the first maximum in window order wins, and NaN beats any number (the
    last NaN of a window, as torch's CPU kernels pick).
    """
    return _window_argmax_ad(x, tuple(window), tuple(strides), tuple(tuple(p) for p in padding), tuple(dilation))


def _fit(a, shape):
    """Crop or zero-pad the spatial dims of ``a`` (at the end) to ``shape``'s."""
    cfg = [(0, 0, 0)] * 2 + [(0, t - n, 0) for n, t in zip(a.shape[2:], shape[2:])]
    return a if all(c == (0, 0, 0) for c in cfg) else lax.pad(a, jnp.zeros((), a.dtype), cfg)


def _vjp_conv_transpose(g, out, x, w, *, stride, padding, output_padding, dilation, groups):
    # conv_transpose(., w) is the adjoint of the strided convolution C(., w) with this layer's
    # stride/padding/dilation (and the same weight tensor: its (C_in, C_out/groups, *k) layout is
    # that convolution's (out, in/groups, *k)). So d/dx = C(g, w), and d/dw is C's ordinary weight
    # gradient with input g and output-cotangent x. (JAX's own gradient of the lhs-dilated
    # convolution computes that weight gradient ~30x slower on XLA:CPU: 200 ms vs 7 ms measured for
    # 64->32 channels, 13x13 -> 26x26, batch 32.)
    pads = tuple((p, p) for p in padding)
    k = w.shape[2:]
    c_out = [_out_len(n, kk, s, pp, d) for n, kk, s, pp, d in zip(g.shape[2:], k, stride, pads, dilation)]
    # output_padding >= stride (allowed when smaller than dilation) gives C one extra output row:
    # it reads only output padding, so it is cropped from gx and fed a zero cotangent.
    gx = _fit(conv_forward(g, w, stride, pads, dilation, groups), x.shape)
    gw = conv_weight_grad(_fit(x, x.shape[:2] + tuple(c_out)), g, w.shape, stride, pads, dilation, groups)
    return gx, gw


def _conv_transpose_forward(x, w, stride, padding, output_padding, dilation, groups):
    k = w.shape[2:]
    out = tuple((n - 1) * s - 2 * p + d * (kk - 1) + op + 1
                for n, s, p, d, kk, op in zip(x.shape[2:], stride, padding, dilation, k, output_padding))
    shape = (x.shape[0], w.shape[1] * groups) + out
    return conv_input_grad(x, w, shape, stride, tuple((p, p) for p in padding), dilation, groups)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv_transpose_ad(x, w, stride, padding, output_padding, dilation, groups):
    return _conv_transpose_forward(x, w, stride, padding, output_padding, dilation, groups)


def _conv_transpose_ad_fwd(x, w, stride, padding, output_padding, dilation, groups):
    return _conv_transpose_forward(x, w, stride, padding, output_padding, dilation, groups), (x, w)


def _conv_transpose_ad_bwd(stride, padding, output_padding, dilation, groups, res, g):
    x, w = res
    return _vjp_conv_transpose(g, None, x, w, stride=stride, padding=padding, output_padding=output_padding,
                               dilation=dilation, groups=groups)


_conv_transpose_ad.defvjp(_conv_transpose_ad_fwd, _conv_transpose_ad_bwd)


@register("conv_transpose", static=("stride", "padding", "output_padding", "dilation", "groups"),
          vjp=_vjp_conv_transpose)
def _conv_transpose(x, w, *, stride, padding, output_padding, dilation, groups):
    """torch's transposed convolution: (N, C_in, *spatial) x (C_in, C_out/groups, *kernel).

    The adjoint of a strided convolution: its input gradient (linalg.conv_input_grad), a
    convolution with ``lhs_dilation=stride`` over the spatially flipped kernel whose in/out
    channels are swapped within each group. Bias is added by the caller.
    """
    return _conv_transpose_ad(x, w, tuple(stride), tuple(padding), tuple(output_padding), tuple(dilation), groups)
