"""Matrix products and convolution.

Convolution has three lowerings, one per direction: :func:`conv_forward`, :func:`conv_input_grad`
and :func:`conv_weight_grad`. The ``conv`` op's impl is a ``jax.custom_vjp`` whose backward is the
same two gradient functions its vjp rule calls, so eager backward and a compiled program that
differentiates ``impl`` run the same code (``conv_transpose`` in window.py reuses all three).

Why not ``lax.conv_general_dilated`` and JAX's own derivative of it: XLA:CPU hands a 2-d float
convolution to YNNPACK only when its output is no larger than its input, and runs it ~2-4x slower
when its padding is all zero (measured, 64x32x26x26 -> 64 channels, 3x3: forward 25 ms VALID vs
7 ms with one extra high column computed and cropped; weight gradient 32 ms vs 14 ms; the input
gradient, a "full" convolution whose output is larger than its input, 19 ms vs 14 ms when its
input is padded first). :func:`_cpu_conv` rewrites a convolution into the form that takes the fast
path; on other platforms (``lax.platform_dependent``) and dtypes the plain convolutions run.

XLA:CPU runs a convolution of a batch of small images on one core: its kernel splits work across
threads along the image width only. So on the CPU the forward and the input gradient of a
convolution with 32 or more channels on one side run as one convolution of a single wide image,
the samples side by side along the width (:func:`_side_by_side`; the windows that straddle two
samples are dropped). Measured (2 cores, one process, ms, wide / batch slices): the MNIST CNN's
Conv2d(32, 64, 3) at batch 64, forward 5.44 / 7.74 and forward + both gradients 17.8 / 17.4; a
Conv2d(64, 64, 3) on 64x64x30x30 11.9 / 19.0 and 44.6 / 52.8 (``benchmarks/conv.py``). The other
convolutions (grouped, or narrower, where the wide form measured slower) are computed as
convolutions of slices of the batch, which XLA can run side by side (:func:`_batch_chunks`; the
same values per sample): forward slices of about 32 samples, input-gradient slices of about 16.
XLA:CPU's executor hands work to a second thread only when one thread finds several operations
ready at once, and how the slices become ready differs between the two directions. The sizes
were measured on the MNIST CNN's training step, batch 64, as forward/input-gradient slices (ms per
step): 2/4 slices 23.6-24.1; 4/4 27.7-28.4; 3/4 27.6-28.4; 2/8 26.0-26.3; 2/2 37.5; 1/4 36.1.
The weight gradient is one convolution either way: split along its input channels or the batch,
or laid out wide, it measured no faster. XLA:CPU's fast kernel takes no lhs dilation, so a strided
convolution's input gradient (and a strided ConvTranspose's forward) runs as the stride-1 input
gradients of its sub-kernels, interleaved (:func:`_strided_input_grad`): ConvTranspose2d(128, 64,
4, 2, 1) on 64x128x16x16 took 14.7 ms against 48.6 lhs-dilated.
"""
from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
from jax import lax

from .registry import register


@register("matmul", saves={0: (1,), 1: (0,)})  # d/dx reads y, d/dy reads x: torch saves only those
def _matmul(x, y):
    """torch.matmul semantics (1-D operands, batch broadcasting) — identical to numpy's."""
    return jnp.matmul(x, y, preferred_element_type=x.dtype)


@register("einsum", static=("equation",))
def _einsum(*xs, equation):
    return jnp.einsum(equation, *xs)


# ---- convolution --------------------------------------------------------------------------------
# Layouts are torch's: x (N, C, *sp), w (O, C/groups, *k); ``padding`` is (lo, hi) per spatial dim.

def _spec(nd: int, batch: str = "N", feature: str = "C") -> str:
    return batch + feature + "DHW"[-nd:]


def _conv_out_len(n, k, s, pad, d):
    return (n + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def _cpu_fast(*arrays) -> bool:
    """YNNPACK convolves float32/float64 only; other dtypes keep the plain lowering."""
    return all(a.dtype in (jnp.float32, jnp.float64) for a in arrays)


def _per_platform(fast, plain, *args):
    """``fast(*args)`` when the program runs on CPU, ``plain(*args)`` elsewhere (chosen at lowering)."""
    return lax.platform_dependent(*args, cpu=fast, default=plain)


def _cpu_conv(lhs, rhs, strides, pads, rhs_dilation, dn, *, feature_group_count=1, batch_group_count=1):
    """``lax.conv_general_dilated`` rewritten for XLA:CPU's fast 2-d path; same result.

    ``dn`` is (lhs, rhs, out) spec strings. A 1-d convolution runs as a 2-d one of unit height. If an
    output is larger than its input along a spatial dim (a "full" convolution), the input is padded
    explicitly first; if then no padding is left, one high row is added along the last spatial dim
    that can take it and the extra output cropped.
    """
    ls, rs, os_ = dn
    if len(ls) == 3:  # 1-d: insert a unit H before W in every operand
        y = _cpu_conv(lhs[_unit_at(ls)], rhs[_unit_at(rs)], (1,) + tuple(strides), ((0, 0),) + tuple(pads),
                      (1,) + tuple(rhs_dilation), tuple(d.replace("W", "HW") for d in dn),
                      feature_group_count=feature_group_count, batch_group_count=batch_group_count)
        return y.squeeze(os_.index("W"))
    sp = [c for c in ls if c not in "NC"]
    in_sz = [lhs.shape[ls.index(c)] for c in sp]
    k_sz = [rhs.shape[rs.index(c)] for c in sp]
    outs = [_conv_out_len(n, k, s, p, d) for n, k, s, p, d in zip(in_sz, k_sz, strides, pads, rhs_dilation)]
    pads = [tuple(p) for p in pads]
    if any(o > n for o, n in zip(outs, in_sz)):
        cfg = [(0, 0, 0)] * lhs.ndim
        for c, (lo, hi) in zip(sp, pads):
            cfg[ls.index(c)] = (lo, hi, 0)
        lhs = lax.pad(lhs, jnp.zeros((), lhs.dtype), cfg)
        in_sz = [n + lo + hi for n, (lo, hi) in zip(in_sz, pads)]
        pads = [(0, 0)] * len(sp)
    if all(p == (0, 0) for p in pads):
        for i in reversed(range(len(sp))):
            if outs[i] < in_sz[i]:  # one more output row still fits inside the input
                pads[i] = (0, 1)
                break
    y = lax.conv_general_dilated(lhs, rhs, strides, pads, rhs_dilation=rhs_dilation, dimension_numbers=dn,
                                 feature_group_count=feature_group_count, batch_group_count=batch_group_count)
    limit = list(y.shape)
    for c, o in zip(sp, outs):
        limit[os_.index(c)] = o
    return y if tuple(limit) == y.shape else lax.slice(y, (0,) * y.ndim, limit)


def _unit_at(spec):
    """Index expression inserting a unit axis just before the 'W' axis of ``spec``."""
    i = spec.index("W")
    return (slice(None),) * i + (None,)


def conv_forward(x, w, stride, padding, dilation, groups):
    """N-d cross-correlation, (N, C, *sp) x (O, C/groups, *k) -> (N, O, *out)."""
    nd = x.ndim - 2
    dn = (_spec(nd), _spec(nd, "O", "I"), _spec(nd))

    def plain(x, w):
        return lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation, dimension_numbers=dn,
                                        feature_group_count=groups)

    if _depthwise_pays(x.shape, w.shape, groups, x, w):
        return _per_platform(lambda x, w: _depthwise(x, w, stride, padding, dilation), plain, x, w)
    if nd > 2 or not _cpu_fast(x, w):
        return plain(x, w)

    def fast(x, w):
        if _wide_pays(x, w, groups):
            return _side_by_side(x, w, stride, padding, dilation, dn[1])
        return _batch_chunks(lambda x: _cpu_conv(x, w, stride, padding, dilation, dn, feature_group_count=groups), x,
                             _CPU_FORWARD_SLICE)

    return _per_platform(fast, plain, x, w)


# XLA:CPU runs one convolution on one core; a convolution split along its batch into independent
# pieces can run them side by side. Samples per slice, per direction: measured on 2 cores (see the
# module doc).
_CPU_FORWARD_SLICE = 32
_CPU_INPUT_GRAD_SLICE = 16


# Off: the forms before the side-by-side one (batch slices, and lhs-dilated strided input gradients);
# benchmarks/conv.py compares the two.
_SIDE_BY_SIDE = [True]
_WIDE_MIN_CHANNELS = 32


def _wide_pays(x, w, groups) -> bool:
    """Whether :func:`_side_by_side` beats batch slices: several samples, no groups, and 32 or more
    channels on one side of the convolution. Measured on 2 cores (``benchmarks/conv.py --sweep``),
    forward and input gradient, wide / slices: 1->32 channels on 28x28 0.87 / 0.85, 32->64 on
    26x26 0.74 / 0.72, 64->64 on 56x56 0.53 / 0.55; narrower ones lose: 3->16 1.05 / 1.43, 16->16
    1.47 / 1.40 (and, though the rule takes it, the input gradient of 3->32 on 32x32: 0.74 / 1.35)."""
    return _SIDE_BY_SIDE[0] and groups == 1 and x.shape[0] > 1 and max(w.shape[:2]) >= _WIDE_MIN_CHANNELS


def _side_by_side(x, w, stride, pads, dilation, w_spec):
    """An (N, C, *sp) batch (1-d or 2-d; torch layout, ``w`` laid out as ``w_spec``) convolved as one
    wide image: the samples, padded, side by side along the last spatial dim, each widened to a
    multiple of the stride so that every sample's windows start on the stride's grid. Each window
    that straddles two samples gives an output column that is dropped. Same values as convolving
    each sample.
    """
    if x.ndim == 3:  # 1-d: a 2-d convolution of unit height
        y = _side_by_side(x[:, :, None], w[:, :, None], (1,) + tuple(stride), ((0, 0),) + tuple(pads),
                          (1,) + tuple(dilation), w_spec[:2] + "HW")
        return y[:, :, 0]
    (sh, sw), wd = stride, x.shape[3] + pads[1][0] + pads[1][1]
    wq = -(-wd // sw) * sw  # the padded sample's width, rounded up to the stride
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0), (*pads[0], 0), (pads[1][0], pads[1][1] + wq - wd, 0)])
    n, c, h, _ = x.shape
    kh, kw = w.shape[w_spec.index("H")], w.shape[w_spec.index("W")]
    eh, ew = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1  # the window's extent
    ho, wo = (h - eh) // sh + 1, (wd - ew) // sw + 1
    wide = jnp.transpose(x, (2, 0, 3, 1)).reshape(1, h, n * wq, c)
    # The windows past the last sample read padding. XLA:CPU runs a convolution without padding on
    # a slow path: with a 1-wide kernel, one high row is padded (and cropped) instead.
    pad_h = (0, 1) if ew == 1 and eh > 1 else (0, 0)
    y = lax.conv_general_dilated(wide, w, (sh, sw), [pad_h, (0, ew - 1)], rhs_dilation=tuple(dilation),
                                 dimension_numbers=("NHWC", w_spec, "NHWC"))
    y = y[:, :ho, :n * wq // sw].reshape(ho, n, wq // sw, -1)[:, :, :wo]
    return jnp.transpose(y, (1, 3, 0, 2))


_DEPTHWISE_MAX_TAPS = 64  # larger kernels keep the grouped convolution (one slice per tap would bloat the program)


def _depthwise_pays(x_shape, w_shape, groups, *arrays) -> bool:
    """A depthwise convolution (one input channel per group) of float32/float64 arrays with at most
    ``_DEPTHWISE_MAX_TAPS`` kernel taps: on the CPU, :func:`_depthwise` computes it."""
    return (groups > 1 and x_shape[1] == groups and w_shape[1] == 1 and _cpu_fast(*arrays)
            and math.prod(w_shape[2:]) <= _DEPTHWISE_MAX_TAPS)


def _depthwise(x, w, stride, padding, dilation):
    """A depthwise convolution (``w`` (C*m, 1, *k), groups = C) as the sum over the kernel's taps of
    a strided slice of the padded input times the tap's weight per output channel: one fused loop.

    XLA:CPU runs grouped convolutions on a slow path. Measured (``benchmarks/conv.py --sweep``, ms,
    here / the grouped convolution): a 3x3 depthwise convolution of 32x64x56x56 3.48 / 129, a 7x7
    one of 16x96x56x56 5.61 / 215. The gradients are this function's transposes
    (``jax.linear_transpose``, in conv_input_grad and conv_weight_grad): the 3x3's forward and
    both gradients 64.9 / 246.
    """
    nd = x.ndim - 2
    n, c = x.shape[:2]
    m = w.shape[0] // c  # output channel c * m + j reads input channel c (torch's group order)
    x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (0, 0, 0)] + [(lo, hi, 0) for lo, hi in padding])
    if m > 1:
        x = jnp.repeat(x, m, axis=1)
    k = w.shape[2:]
    out = [_conv_out_len(x.shape[2 + i], k[i], stride[i], (0, 0), dilation[i]) for i in range(nd)]
    total = None
    for tap in itertools.product(*(range(kk) for kk in k)):
        start = tuple(t * d for t, d in zip(tap, dilation))
        xs = lax.slice(x, (0, 0) + start, (n, c * m) + tuple(a + (o - 1) * s + 1 for a, o, s in zip(start, out, stride)),
                       (1, 1) + tuple(stride))
        term = xs * w[(slice(None), 0) + tap].reshape((1, c * m) + (1,) * nd)
        total = term if total is None else total + term
    return total


def _batch_chunks(conv, x, size):
    """``conv(x)`` for an (N, C, ...) ``x``, computed as convolutions of ``N // size`` slices of the
    batch (``size`` samples each, give or take; each sample's result is the same)."""
    n = x.shape[0]
    k = n // size
    if k < 2:
        return conv(x)
    bounds = [n * i // k for i in range(k + 1)]
    return jnp.concatenate([conv(lax.slice_in_dim(x, a, b, axis=0)) for a, b in zip(bounds, bounds[1:])], 0)


def _input_grad_pads(x_shape, k, stride, padding, dilation, g_shape):
    # The transposed convolution reads the cotangent padded so each input position sees every output
    # its window touched (JAX's _conv_general_vjp_lhs_padding); output_padding-style extra input rows
    # (never read by the forward) come out as zeros through the high padding.
    pads = []
    for n, kk, s, (lo, _), d, o in zip(x_shape[2:], k, stride, padding, dilation, g_shape[2:]):
        before = d * (kk - 1) - lo
        pads.append((before, n + d * (kk - 1) - ((o - 1) * s + 1) - before))
    return pads


def conv_input_grad(g, w, x_shape, stride, padding, dilation, groups):
    """d conv_forward / d x: the cotangent ``g`` (N, O, *out) convolved back to ``x_shape``.

    A stride-1 convolution of ``g`` with the flipped kernel whose in/out channels are swapped
    within each group; ``stride`` becomes ``lhs_dilation``. This is also torch's conv_transpose.
    XLA:CPU's fast kernel takes no lhs dilation, so on the CPU a strided one (without dilation)
    runs as the stride-1 input gradients of its sub-kernels (:func:`_strided_input_grad`).
    """
    nd = g.ndim - 2
    pads = _input_grad_pads(x_shape, w.shape[2:], stride, padding, dilation, g.shape)

    def plain(g, w):
        return lax.conv_general_dilated(g, _transposed_kernel(w, groups), (1,) * nd, pads, lhs_dilation=stride,
                                        rhs_dilation=dilation, dimension_numbers=(_spec(nd), _spec(nd, "I", "O"),
                                                                                  _spec(nd)),
                                        feature_group_count=groups)

    if _depthwise_pays(x_shape, w.shape, groups, g, w):
        def depthwise(g, w):
            return jax.linear_transpose(lambda x: _depthwise(x, w, stride, padding, dilation),
                                        jax.ShapeDtypeStruct(x_shape, g.dtype))(g)[0]
        return _per_platform(depthwise, plain, g, w)
    strided = any(s != 1 for s in stride)
    if nd > 2 or not _cpu_fast(g, w) or strided and (any(d != 1 for d in dilation) or not _SIDE_BY_SIDE[0]):
        return plain(g, w)
    if strided:
        return _per_platform(lambda g, w: _strided_input_grad(g, w, x_shape, stride, padding, groups), plain, g, w)
    return _per_platform(lambda g, w: _input_grad_cpu(g, w, pads, dilation, groups), plain, g, w)


def _transposed_kernel(w, groups):
    """(O, I, *k) -> the input gradient's kernel: flipped, (O/G, G*I, *k) (the group index moves
    into the output channels), read with spec "IO..."."""
    o_, i_, k = w.shape[0], w.shape[1], tuple(w.shape[2:])
    if groups > 1:
        w = w.reshape((groups, o_ // groups, i_) + k)
        w = jnp.swapaxes(w, 0, 1).reshape((o_ // groups, groups * i_) + k)
    return lax.rev(w, tuple(range(2, w.ndim)))


def _input_grad_cpu(g, w, pads, dilation, groups):
    """The CPU input gradient of a stride-1 convolution (``pads`` from :func:`_input_grad_pads`)."""
    nd = g.ndim - 2
    w = _transposed_kernel(w, groups)
    dn = (_spec(nd), _spec(nd, "I", "O"), _spec(nd))
    if _wide_pays(g, w, groups):
        return _side_by_side(g, w, (1,) * nd, pads, dilation, dn[1])
    return _batch_chunks(lambda g: _cpu_conv(g, w, (1,) * nd, pads, dilation, dn, feature_group_count=groups), g,
                         _CPU_INPUT_GRAD_SLICE)


def _strided_input_grad(g, w, x_shape, stride, padding, groups):
    """The CPU input gradient of a strided convolution (no dilation), without lhs dilation.

    An input position ``i`` is reached by the kernel taps ``t`` with ``i + lo = j * s + t``: those of
    one residue ``r = t mod s``. So for each residue (per spatial dim) the gradient at positions
    ``q * s + r - lo`` is the stride-1 ("full") input gradient of the sub-kernel ``w[..., r::s]``;
    the residues' results are interleaved, then cropped (or zero-padded) to ``x_shape``. A
    residue with no taps (a stride larger than the kernel) gets zeros. Same sums as the
    lhs-dilated convolution, without its multiplications by inserted zeros; XLA:CPU runs each
    sub-kernel's convolution on its fast path. Measured (2 cores, ``benchmarks/conv.py --sweep``,
    ms, against lhs-dilated): ConvTranspose2d(128, 64, 4, 2, 1) on 64x128x16x16 14.7 / 48.6; the
    input gradients of 3x3 stride-2 64 -> 128 channels on 32x64x56x56 19.2 / 22.2, of 1x1 stride 2
    5.2 / 9.0, of a 7x7 stride-2 stem on 16x3x224x224 87 / 150.
    """
    nd = g.ndim - 2
    n, c = g.shape[0], x_shape[1]
    k = w.shape[2:]
    q = [j + -(-kk // s) - 1 for j, kk, s in zip(g.shape[2:], k, stride)]  # positions per residue
    parts = []
    for r in itertools.product(*(range(s) for s in stride)):
        wr = w[(slice(None), slice(None)) + tuple(slice(ri, None, s) for ri, s in zip(r, stride))]
        if 0 in wr.shape[2:]:
            parts.append(jnp.zeros((n, c, *q), g.dtype))
            continue
        kr = wr.shape[2:]
        part = _input_grad_cpu(g, wr, [(m - 1, m - 1) for m in kr], (1,) * nd, groups)
        parts.append(jnp.pad(part, [(0, 0), (0, 0)] + [(0, qq - (j + m - 1)) for qq, j, m in zip(q, g.shape[2:], kr)]))
    z = jnp.stack(parts, -1).reshape(n, c, *q, *stride)  # the residues, last dim's fastest
    z = z.transpose([0, 1] + [a for d in range(nd) for a in (2 + d, 2 + nd + d)])
    z = z.reshape(n, c, *(qq * s for qq, s in zip(q, stride)))  # position q * s + r
    cfg = [(0, 0, 0), (0, 0, 0)] + [(-lo, xl + lo - qq * s, 0) for (lo, _), xl, qq, s in zip(padding, x_shape[2:], q, stride)]
    return lax.pad(z, jnp.zeros((), z.dtype), cfg)


def conv_weight_grad(g, x, w_shape, stride, padding, dilation, groups):
    """d conv_forward / d w: correlate the input ``x`` with the cotangent ``g`` -> ``w_shape``.

    A convolution whose batch is x's channels and whose contracted feature is the batch N; the
    forward's dilation becomes its stride and the forward's stride its kernel dilation (JAX's
    _conv_general_dilated_transpose_rhs, with ``batch_group_count`` splitting the groups).
    """
    nd = g.ndim - 2
    if g.size == 0 or x.size == 0:
        return jnp.zeros(w_shape, g.dtype)
    k = tuple(w_shape[2:])
    pads = [(lo, (o - 1) * s + d * (kk - 1) + 1 - n - lo)
            for n, kk, s, (lo, _), d, o in zip(x.shape[2:], k, stride, padding, dilation, g.shape[2:])]
    dn = (_spec(nd, "C", "N"), _spec(nd, "I", "O"), _spec(nd, "C", "N"))

    def plain(g, x):
        return lax.conv_general_dilated(x, g, dilation, pads, rhs_dilation=stride, dimension_numbers=dn,
                                        batch_group_count=groups)

    if _depthwise_pays(x.shape, w_shape, groups, g, x):
        def depthwise(g, x):
            return jax.linear_transpose(lambda w: _depthwise(x, w, stride, padding, dilation),
                                        jax.ShapeDtypeStruct(w_shape, g.dtype))(g)[0]
        return _per_platform(depthwise, plain, g, x)
    # YNNPACK takes no batch groups; 1-d as 2-d measured slower here (unlike forward and input grad).
    if nd != 2 or groups > 1 or not _cpu_fast(g, x):
        return plain(g, x)

    def fast(g, x):
        if k[0] * k[1] <= _TAP_DOTS_MAX:
            return _weight_grad_by_taps(g, x, k, stride, padding, dilation)
        return _cpu_conv(x, g, dilation, pads, stride, dn)

    return _per_platform(fast, plain, g, x)


# Kernels up to this many taps take their weight gradient as one dot product per tap on the CPU.
_TAP_DOTS_MAX = 25


def _weight_grad_by_taps(g, x, k, stride, padding, dilation):
    """A 2-d convolution's weight gradient as one dot product per kernel tap: ``dw[:, :, i, j]`` is
    ``g`` contracted over (N, H, W) with the input window that tap reads. XLA:CPU runs these on
    its dot kernels; the equivalent convolution (a kernel as large as the output, an output the
    size of the kernel) runs on YNNPACK's, which took 5x longer on an AMD EPYC (AVX2) for the MNIST
    CNN's conv2 (145-198 ms against 29-41 ms) and about as long on an Intel AVX-512 machine (11.1
    against 11.5 ms). See docs/performance.md."""
    (kh, kw), (s0, s1), (d0, d1) = k, stride, dilation
    ho, wo = g.shape[2:]
    xp = jnp.pad(x, [(0, 0), (0, 0), tuple(padding[0]), tuple(padding[1])])
    taps = [jnp.einsum("nohw,nchw->oc", g,
                       xp[:, :, i * d0: i * d0 + (ho - 1) * s0 + 1: s0, j * d1: j * d1 + (wo - 1) * s1 + 1: s1],
                       precision=lax.Precision.HIGHEST)
            for i in range(kh) for j in range(kw)]
    return jnp.stack(taps, -1).reshape(g.shape[1], x.shape[1], kh, kw)


def _vjp_conv(g, out, x, w, *, stride, padding, dilation, groups):
    return (conv_input_grad(g, w, x.shape, stride, padding, dilation, groups),
            conv_weight_grad(g, x, w.shape, stride, padding, dilation, groups))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _conv_ad(x, w, stride, padding, dilation, groups):
    return conv_forward(x, w, stride, padding, dilation, groups)


def _conv_ad_fwd(x, w, stride, padding, dilation, groups):
    return conv_forward(x, w, stride, padding, dilation, groups), (x, w)


def _conv_ad_bwd(stride, padding, dilation, groups, res, g):
    x, w = res
    return _vjp_conv(g, None, x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)


_conv_ad.defvjp(_conv_ad_fwd, _conv_ad_bwd)


@register("conv", static=("stride", "padding", "dilation", "groups"), vjp=_vjp_conv)
def _conv(x, w, *, stride, padding, dilation, groups):
    """N-d cross-correlation, torch layout (N, C, *spatial) x (O, C/groups, *kernel).

    ``padding`` is a tuple of (lo, hi) per spatial dim; bias is added by the caller. Differentiating
    this function with JAX runs the op's own gradient lowerings (a ``jax.custom_vjp``).
    """
    return _conv_ad(x, w, tuple(stride), tuple(tuple(p) for p in padding), tuple(dilation), groups)


# ---- LU, the nonsymmetric eigenproblem and least squares (tracenn.linalg) -----------------------
# Torch's conventions: pivots are LAPACK's, 1-based int32 (JAX's are 0-based); ``info`` is getrf's.
# An op whose other outputs are integers takes a rule that differentiates its first output only.

def _mT(a):
    return jnp.swapaxes(a, -1, -2)


def _mH(a):
    return jnp.conj(_mT(a)) if jnp.iscomplexobj(a) else _mT(a)


def _getrf_info(lu):
    """Per matrix, the 1-based index of the first zero on U's diagonal (0: none): getrf's ``info``."""
    zero = jnp.diagonal(lu, axis1=-2, axis2=-1) == 0
    if zero.shape[-1] == 0:
        return jnp.zeros(zero.shape[:-1], jnp.int32)
    return jnp.where(zero.any(-1), jnp.argmax(zero, axis=-1) + 1, 0).astype(jnp.int32)


def _vjp_lu_factor(g, out, a):
    return jax.vjp(lambda a: jax.lax.linalg.lu(a)[0], a)[1](g[0])


@register("linalg_lu_factor", nout=3, vjp=_vjp_lu_factor)
def _lu_factor(a):
    """LAPACK's getrf with partial pivoting: the packed LU (L strictly below the diagonal, its unit
    diagonal implied; U on and above), torch's 1-based int32 pivots, and getrf's ``info``."""
    lu, piv, _ = jax.lax.linalg.lu(a)
    return lu, piv + 1, _getrf_info(lu)


def _permutation(pivots, m):
    """P (as the index array ``perm``: row ``i`` of L U is row ``perm[i]`` of A) from 1-based pivots."""
    return jax.lax.linalg.lu_pivots_to_permutation(pivots - 1, m)


@register("linalg_lu_unpack", nout=3)
def _lu_unpack(lu, pivots):
    """(P, L, U) with A = P L U from lu_factor's packed LU and pivots; P in LU's dtype."""
    m, n = lu.shape[-2:]
    k = min(m, n)
    perm = _permutation(pivots, m)
    p = _mT(jax.nn.one_hot(perm, m, dtype=lu.dtype))  # P[perm[i], i] = 1
    lower = jnp.tril(lu[..., :, :k], -1) + jnp.eye(m, k, dtype=lu.dtype)
    return p, lower, jnp.triu(lu[..., :k, :])


def _lu_solve_left(lu, perm, b, trans):
    """``op(A) X = B`` for A = P L U (``trans`` 0: A, 1: A^T, 2: A^H): two triangular solves."""
    tri = jax.lax.linalg.triangular_solve
    if trans == 0:
        y = jnp.take_along_axis(b, perm[..., :, None], axis=-2)
        y = tri(lu, y, left_side=True, lower=True, unit_diagonal=True)
        return tri(lu, y, left_side=True, lower=False)
    conj = trans == 2
    y = tri(lu, b, left_side=True, lower=False, transpose_a=True, conjugate_a=conj)
    y = tri(lu, y, left_side=True, lower=True, unit_diagonal=True, transpose_a=True, conjugate_a=conj)
    inverse = jnp.argsort(perm, axis=-1)
    return jnp.take_along_axis(y, inverse[..., :, None], axis=-2)


@register("linalg_lu_solve", static=("left", "adjoint"))
def _lu_solve(lu, pivots, b, *, left, adjoint):
    """``A X = B`` from lu_factor's (LU, pivots); ``adjoint``: A^H in place of A; not ``left``:
    ``X A = B``. The batch dims of LU (and pivots) and B broadcast."""
    n = lu.shape[-1]
    batch = jnp.broadcast_shapes(lu.shape[:-2], pivots.shape[:-1], b.shape[:-2])
    lu = jnp.broadcast_to(lu, batch + lu.shape[-2:])
    perm = _permutation(jnp.broadcast_to(pivots, batch + pivots.shape[-1:]), n)
    b = jnp.broadcast_to(b, batch + b.shape[-2:])
    if left:
        return _lu_solve_left(lu, perm, b, 2 if adjoint else 0)
    if adjoint:  # X A^H = B  <=>  A X^H = B^H
        return _mH(_lu_solve_left(lu, perm, _mH(b), 0))
    return _mT(_lu_solve_left(lu, perm, _mT(b), 1))  # X A = B  <=>  A^T X^T = B^T


@register("linalg_eig", nout=2)
def _eig(a):
    """Eigenvalues and unit right eigenvectors (LAPACK geev's, complex). Differentiated through
    LAPACK's normalisation (unit norm, largest component real): a loss that does not depend on
    the eigenvectors' phases gets torch's gradient."""
    w, v = jax.lax.linalg.eig(a, compute_left_eigenvectors=False, enable_eigvec_derivs=True)
    return w, v


@register("linalg_eigvals")
def _eigvals(a):
    # (the eigenvalues' derivative is computed from the eigenvectors: their flag lets it be differentiated again)
    return jax.lax.linalg.eig(a, compute_left_eigenvectors=False, compute_right_eigenvectors=False,
                              enable_eigvec_derivs=True)[0]


def _lstsq_svd(a, b, rcond):
    batch = jnp.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = jnp.broadcast_to(a, batch + a.shape[-2:])
    b = jnp.broadcast_to(b, batch + b.shape[-2:])
    u, s, vh = jnp.linalg.svd(a, full_matrices=False)
    keep = s > rcond * s[..., :1]
    inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0).astype(u.dtype)
    return a, b, _mH(vh) @ (inv[..., :, None] * (_mH(u) @ b)), keep, s


def _vjp_lstsq(g, out, a, b, *, rcond):
    """torch's linalg_lstsq_backward: the gradient of ``pinv(A) @ B`` (pinv with its default
    cutoff, whatever ``rcond``), so the gradient does not depend on the driver."""
    from .decomp import _pinv_values, _vjp_pinv
    a, b, *_ = _lstsq_svd(a, b, rcond)
    p = _pinv_values(a, None, None, False)
    gx = g[0]
    return _vjp_pinv(gx @ _mH(b), p, a, atol=None, rtol=None, hermitian=False)[0], _mH(p) @ gx


@register("linalg_lstsq", static=("rcond",), nout=3, vjp=_vjp_lstsq)
def _lstsq(a, b, *, rcond):
    """The minimum-norm least-squares solution of ``A X = B`` by the SVD (LAPACK gelsd's answer;
    singular values at most ``rcond`` times the largest count as zero), A's rank on that cutoff
    (int64), and the singular values. A's and B's batch dims broadcast."""
    _, _, x, keep, s = _lstsq_svd(a, b, rcond)
    return x, keep.sum(-1).astype(jnp.int64), s
