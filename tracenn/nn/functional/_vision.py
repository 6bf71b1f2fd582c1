"""Vision functions: pad, pixel_shuffle/unshuffle, interpolate (and the upsample aliases),
grid_sample and affine_grid — composites of pad, gathers and elementwise math.

interpolate reproduces torch's CPU index math: source indices and weights are computed once per
(size, scale, mode) in numpy, in the input's compute precision (float32 for float32/16 inputs, as
torch's ``opmath``), with torch's special cases (``nearest`` copies equal sizes and halves indices
for exactly 2x) and its antialiasing filters; they are applied one spatial dim at a time,
innermost first, as torch's separable kernels do — one gather and one weighted sum per dim.

grid_sample handles every spatial dim at once on (..., ndim) coordinate tensors and gathers all
corners (or 4 x 4 bicubic taps) of all output points in one gather.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..._dispatch import apply as _apply
from ...errors import DtypeError, ShapeError
from ...ops import OPS as _OPS
from ...tensor import Tensor
from ._conv import _const, _who
from ...amp import float32_under_cpu_autocast

__all__ = ["pad", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
           "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "grid_sample", "affine_grid"]

_PAD = _OPS["pad"]
_INDEX_SELECT = _OPS["index_select"]
_INDEX = _OPS["index"]
_JNP_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


# ---- pad ----------------------------------------------------------------------------------------

def _crop(x: Tensor, widths) -> Tensor:
    """Remove the negative parts of (lo, hi) widths (one pair per dim of x)."""
    if all(lo >= 0 and hi >= 0 for lo, hi in widths):
        return x
    idx = tuple(slice(-lo if lo < 0 else None, n + hi if hi < 0 else None) for (lo, hi), n in zip(widths, x.shape))
    return x[idx].contiguous()


def _pad(who, input: Tensor, pad, mode="constant", value=None) -> Tensor:
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ShapeError(f"{_who(who)}: Padding length must be divisible by 2, got pad={pad}")
    m = len(pad) // 2
    nd = input.ndim
    if m > nd:
        raise ShapeError(f"{_who(who)}: Padding length should be less than or equal to two times the input "
                         f"dimension but got padding length {len(pad)} and input of dimension {nd}")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise NotImplementedError(f"{_who(who)}: Unrecognised padding mode {mode} (expected 'constant', 'reflect', "
                                  f"'replicate' or 'circular')")
    widths = [(0, 0)] * (nd - m) + [(pad[2 * i], pad[2 * i + 1]) for i in reversed(range(m))]
    if mode == "constant":
        for (lo, hi), n, d in zip(widths, input.shape, range(nd)):
            if n + lo + hi < 0:
                raise ShapeError(f"{_who(who)}: padding ({lo}, {hi}) of dim {d} would give a negative size "
                                 f"({n} + {lo} + {hi}) for input of size {list(input.shape)}")
        if not any(pad):
            return input.clone()
        return _apply(_PAD, (input, 0.0 if value is None else value), (tuple(widths), "constant"))
    if value is not None and value != 0:
        raise ShapeError(f'{_who(who)}: Padding mode "{mode}" doesn\'t take in value argument (got value={value})')
    if m == 0 or m > 3 or nd not in (m + 1, m + 2):
        raise NotImplementedError(f"{_who(who)}: Padding size {len(pad)} is not supported for {nd}D input tensor "
                                  f"(mode {mode!r} pads the last {m} dims of a {m + 1}D or {m + 2}D input)")
    if any(s == 0 for s in input.shape[nd - m - 1:]):  # every dim but an optional batch dim
        raise ShapeError(f"{_who(who)}: Expected {m + 1}D or {m + 2}D (batch mode) tensor with possibly 0 batch "
                         f"size and other non-zero dimensions for input, but got: {list(input.shape)}")
    x = input
    if mode == "circular":  # torch crops first, then wraps around what is left
        x = _crop(x, widths)
        for (lo, hi), n, d in zip(widths, x.shape, range(nd)):
            if lo > n or hi > n:
                raise ShapeError(f"{_who(who)}: Padding value causes wrapping around more than once: padding "
                                 f"({lo}, {hi}) of dim {d} with size {n}; circular padding can be at most the size")
        pos = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)
        return _apply(_PAD, (x, 0.0), (pos, "wrap")) if any(map(any, pos)) else x.clone()
    if mode == "reflect":
        for (lo, hi), n, d in zip(widths, x.shape, range(nd)):
            if lo >= n or hi >= n:
                raise ShapeError(f"{_who(who)}: Argument #4: Padding size should be less than the corresponding input "
                                 f"dimension, but got: padding ({lo}, {hi}) at dimension {d} of input "
                                 f"{list(x.shape)}; use mode='replicate' or a smaller padding")
    pos = tuple((max(lo, 0), max(hi, 0)) for lo, hi in widths)  # torch pads from the full input, then crops
    if any(map(any, pos)):
        x = _apply(_PAD, (x, 0.0), (pos, _JNP_MODE[mode]))
    neg = [(min(lo, 0), min(hi, 0)) for lo, hi in widths]
    return _crop(x, neg) if x is not input else _crop(x, neg).clone()


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    r"""Pad (or, with negative widths, crop) the last dims of a tensor.

    Args:
        input: any tensor; for ``reflect``/``replicate``/``circular``, an :math:`(m+1)`- or
            :math:`(m+2)`-D tensor when padding :math:`m` dims.
        pad: ``(left, right)`` widths for the last dim, then ``(top, bottom)`` for the one before,
            and so on (at most ``2 * input.dim()`` numbers).
        mode: ``'constant'`` (fill with ``value``), ``'reflect'`` (mirror without repeating the
            edge), ``'replicate'`` (repeat the edge) or ``'circular'`` (wrap around).
        value: the fill for ``'constant'`` (default 0).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.tensor([[[1., 2., 3.]]])
    >>> F.pad(x, (2, 1), mode="reflect"), F.pad(x, (1, 1), value=9.0)
    (tensor([[[3., 2., 1., 2., 3., 2.]]]), tensor([[[9., 1., 2., 3., 9.]]]))
    """
    if mode in ("reflect", "replicate"):  # (in float32 under CPU autocast, as torch's)
        return _pad_float32("pad()", input, pad, mode, value)
    return _pad("pad()", input, pad, mode, value)


# ---- pixel shuffle ------------------------------------------------------------------------------

def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    r"""Rearrange :math:`(*, C r^2, H, W)` into :math:`(*, C, H r, W r)` (sub-pixel convolution).

    Args:
        input: at least 3-D; the channel dim (``-3``) must be divisible by ``upscale_factor ** 2``.
        upscale_factor: :math:`r`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.pixel_shuffle(tracenn.arange(4.).reshape(1, 4, 1, 1), 2)
    tensor([[[[0., 1.],
              [2., 3.]]]])
    """
    return _pixel_shuffle("pixel_shuffle()", input, upscale_factor)


def _pixel_shuffle(who, input, upscale_factor):
    r = upscale_factor
    if input.ndim < 3:
        raise ShapeError(f"{_who(who)}: expects input to have at least 3 dimensions, but got input with "
                         f"{input.ndim} dimension(s)")
    if not isinstance(r, numbers.Integral) or r <= 0:
        raise ShapeError(f"{_who(who)}: expects a positive upscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"{_who(who)}: expects its input's 'channel' dimension to be divisible by the square of "
                         f"upscale_factor, but input.size(-3)={c} is not divisible by {r * r}")
    k = len(lead)
    x = input.reshape(*lead, c // (r * r), r, r, h, w)
    x = x.permute(*range(k), k, k + 3, k + 1, k + 4, k + 2)
    return x.reshape(*lead, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    r"""Rearrange :math:`(*, C, H r, W r)` into :math:`(*, C r^2, H, W)`: the inverse of :func:`pixel_shuffle`.

    Args:
        input: at least 3-D; height and width must be divisible by ``downscale_factor``.
        downscale_factor: :math:`r`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.pixel_unshuffle(tracenn.arange(4.).reshape(1, 1, 2, 2), 2).flatten()
    tensor([0., 1., 2., 3.])
    """
    return _pixel_unshuffle("pixel_unshuffle()", input, downscale_factor)


def _pixel_unshuffle(who, input, downscale_factor):
    r = downscale_factor
    if input.ndim < 3:
        raise ShapeError(f"{_who(who)}: expects input to have at least 3 dimensions, but got input with "
                         f"{input.ndim} dimension(s)")
    if not isinstance(r, numbers.Integral) or r <= 0:
        raise ShapeError(f"{_who(who)}: expects a positive downscale_factor, but got {r}")
    *lead, c, h, w = input.shape
    for name, n, d in (("height", h, -2), ("width", w, -1)):
        if n % r:
            raise ShapeError(f"{_who(who)}: expects {name} to be divisible by downscale_factor, but "
                             f"input.size({d})={n} is not divisible by {r}")
    k = len(lead)
    x = input.reshape(*lead, c, h // r, r, w // r, r)
    x = x.permute(*range(k), k, k + 2, k + 4, k + 1, k + 3)
    return x.reshape(*lead, c * r * r, h // r, w // r)


# ---- channel shuffle ----------------------------------------------------------------------------

def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    r"""Split the channels of an :math:`(N, C, *)` input into ``groups`` groups and interleave them:
    :math:`(N, g, C/g, *)` is transposed to :math:`(N, C/g, g, *)` and flattened back (ShuffleNet).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.channel_shuffle(tracenn.arange(4.).reshape(1, 4, 1), 2).flatten()
    tensor([0., 2., 1., 3.])
    """
    return _channel_shuffle("channel_shuffle", input, groups)


def native_channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """torch's ``native_channel_shuffle``: the same as :func:`channel_shuffle`."""
    return _channel_shuffle("channel_shuffle", input, groups)


def _channel_shuffle(who, input: Tensor, groups: int) -> Tensor:
    if input.ndim <= 2:
        raise ShapeError(f"{_who(who)} expects input with > 2 dims, but got input with sizes {list(input.shape)}")
    if groups <= 0:
        raise ShapeError(f"Number of groups to divide channels in must be positive. Value of groups:{groups}")
    n, c, *rest = input.shape
    if c % groups:
        raise ShapeError(f"Number of channels must be divisible by groups. Got {c} channels and {groups} groups.")
    x = input.reshape(n, groups, c // groups, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


# ---- interpolate --------------------------------------------------------------------------------

def _opmath(dtype) -> np.dtype:
    """torch's index/weight precision for an input dtype: float64 for double, else float32."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _area_scale(n, o, align_corners, scale, ft):
    if align_corners:
        return ft.type((n - 1) / (o - 1)) if o > 1 else ft.type(0)
    if scale is not None and scale > 0:
        return ft.type(1.0 / scale)
    return ft.type(n) / ft.type(o)


def _source_index(scale, o, align_corners, cubic, ft):
    dst = np.arange(o).astype(ft)
    if align_corners:
        return scale * dst
    src = scale * (dst + ft.type(0.5)) - ft.type(0.5)
    return src if cubic else np.maximum(src, ft.type(0))


def _nearest_table(n, o, scale, exact):
    if not exact:
        if o == n:
            return np.arange(o)
        if o == 2 * n:
            return np.arange(o) >> 1
        s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n) / np.float32(o)
        src = np.floor(np.arange(o).astype(np.float32) * s)
    else:
        s = np.float32(1.0 / scale) if scale is not None and scale > 0 else np.float32(n) / np.float32(o)
        src = np.floor(((np.arange(o) + 0.5) * np.float64(s)).astype(np.float32))
    return np.minimum(src.astype(np.int64), n - 1)


def _linear_table(n, o, scale, align_corners, ft):
    s = _area_scale(n, o, align_corners, scale, ft)
    real = _source_index(s, o, align_corners, False, ft)
    i0 = np.minimum(np.floor(real).astype(np.int64), n - 1)
    lam = np.clip(real - i0.astype(ft), 0, 1).astype(ft)
    i1 = i0 + (i0 < n - 1)
    return np.stack([i0, i1], 1), np.stack([(ft.type(1) - lam).astype(ft), lam], 1)


def _cubic_table(n, o, scale, align_corners, ft):
    a = ft.type(-0.75)
    s = _area_scale(n, o, align_corners, scale, ft)
    real = _source_index(s, o, align_corners, True, ft)
    i0 = np.minimum(np.floor(real).astype(np.int64), n - 1)
    t = np.clip(real - i0.astype(ft), 0, 1).astype(ft)
    one = ft.type(1)

    def conv1(x):
        return ((a + 2) * x - (a + 3)) * x * x + one

    def conv2(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    x2 = one - t
    weights = [conv2(t + one), conv1(t), conv1(x2), conv2(x2 + one)]
    idx = [np.clip(i0 - 1 + j, 0, n - 1) for j in range(4)]
    return np.stack(idx, 1), np.stack(weights, 1).astype(ft)


def _aa_table(n, o, scale, align_corners, ft, cubic):
    """torch's antialiased resampling weights (``_upsample_*_aa``): a filter stretched by the
    downscale factor, normalised per output; returns (indices (o, K), weights (o, K))."""
    s = _area_scale(n, o, align_corners, scale, ft)
    interp = 4 if cubic else 2
    support = ft.type(interp * 0.5 * s) if s >= 1 else ft.type(interp * 0.5)
    width = int(math.ceil(support)) * 2 + 1
    invscale = ft.type(1.0 / s) if s >= 1 else ft.type(1)
    idx = np.zeros((o, width), np.int64)
    wts = np.zeros((o, width), ft)
    for i in range(o):
        center = ft.type(s * (i + 0.5))
        xmin = max(int(center - support + ft.type(0.5)), 0)
        xsize = min(max(min(int(center + support + ft.type(0.5)), n) - xmin, 0), width)
        d = np.abs(((np.arange(xsize) + xmin).astype(ft) - center + ft.type(0.5)) * invscale).astype(ft)
        if cubic:  # Keys' a = -0.5 for the antialiasing filter
            a = ft.type(-0.5)
            w = np.where(d < 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                         np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0)).astype(ft)
        else:
            w = np.maximum(ft.type(1) - d, 0).astype(ft)
        total = w.sum(dtype=ft)
        if total != 0:
            w = (w / total).astype(ft)
        idx[i, :xsize] = np.arange(xsize) + xmin
        idx[i, xsize:] = xmin  # unused taps: any valid index, weight 0
        wts[i, :xsize] = w
    return idx, wts


def _resample_dim(x: Tensor, axis, idx, w, key):
    """Resample dim ``axis`` of x: ``out[o] = sum_k x[idx[o, k]] * w[o, k]`` (``w`` None: one tap).

    One gather of all taps, then a weighted sum over the tap axis.
    """
    it = _const(key + ("i",), x, lambda: idx.reshape(-1).astype(np.int64))
    y = _apply(_INDEX_SELECT, (x, it), (axis,))
    if w is None:
        return y
    shape = tuple(x.shape)
    y = y.reshape(shape[:axis] + idx.shape + shape[axis + 1:])
    wshape = (1,) * axis + idx.shape + (1,) * (x.ndim - axis - 1)
    return (y * _const(key + ("w", wshape), x, lambda: w.reshape(wshape), dtype=x.dtype)).sum(axis + 1)


_MODES_DIM = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    r"""Resize the spatial dims of a batch: nearest, nearest-exact, (bi/tri)linear, bicubic or area.

    Args:
        input: :math:`(N, C, L)`, :math:`(N, C, H, W)` or :math:`(N, C, D, H, W)`.
        size: the output spatial size (an int or one per spatial dim).
        scale_factor: multiplier(s) for the spatial size (``floor(in * scale)``); unless
            ``recompute_scale_factor=True``, it is also the scale the source indices use, as torch.
        mode: ``'nearest'`` (torch's legacy floor rule), ``'nearest-exact'`` (pixel centers),
            ``'linear'`` (3-D), ``'bilinear'`` (4-D), ``'bicubic'`` (4-D, A = -0.75, edges clamped),
            ``'trilinear'`` (5-D) or ``'area'`` (adaptive average pooling).
        align_corners: for the interpolating modes: map corner pixel centers onto each other
            (``True``) or use half-pixel centers (``False``, the default).
        recompute_scale_factor: compute the scale from the output size instead of ``scale_factor``.
        antialias: for ``'bilinear'``/``'bicubic'`` on 4-D input: when downsampling, widen the filter
            by the scale factor (torch's ``_upsample_*_aa``: triangle, or Keys cubic with a = -0.5).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.tensor([[[1., 2., 3.]]])
    >>> F.interpolate(x, scale_factor=2)
    tensor([[[1., 1., 2., 2., 3., 3.]]])
    >>> F.interpolate(x, size=5, mode="linear", align_corners=True)
    tensor([[[1.0000, 1.5000, 2.0000, 2.5000, 3.0000]]])
    """
    return _interpolate("interpolate()", input, size, scale_factor, mode, align_corners, recompute_scale_factor,
                        antialias)


def _interpolate(who, input, size, scale_factor, mode, align_corners, recompute_scale_factor, antialias):
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(f"{_who(who)}: align_corners option can only be set with the interpolating modes: "
                             f"linear | bilinear | bicubic | trilinear (got mode={mode!r})")
    elif align_corners is None:
        align_corners = False
    nd = input.ndim - 2
    known = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")
    if mode not in known or nd not in (1, 2, 3):
        raise NotImplementedError(f"{_who(who)}: Input Error: Only 3D, 4D and 5D input Tensors supported (got "
                                  f"{input.ndim}D) for the modes: {' | '.join(known)} (got {mode})")
    if mode in _MODES_DIM and _MODES_DIM[mode] != nd:
        raise NotImplementedError(f"{_who(who)}: Got {input.ndim}D input, but {mode} mode needs "
                                  f"{_MODES_DIM[mode] + 2}D input")
    if size is not None and scale_factor is not None:
        raise ValueError(f"{_who(who)}: only one of size or scale_factor should be defined")
    sp = tuple(input.shape[2:])
    scales = [None] * nd
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{_who(who)}: recompute_scale_factor is not meaningful with an explicit size.")
        if isinstance(size, (list, tuple)):
            if len(size) != nd:
                raise ValueError(f"{_who(who)}: Input and output must have the same number of spatial dimensions, but got "
                                 f"input with spatial dimensions of {list(sp)} and output size of {size}. Please "
                                 f"provide input tensor in (N, C, d1, d2, ...,dK) format and output size in "
                                 f"(o1, o2, ...,oK) format.")
            if not all(isinstance(s, numbers.Integral) for s in size):
                raise TypeError(f"{_who(who)}: expected size to be one of int or Tuple[int] or Tuple[int, int] or "
                                f"Tuple[int, int, int], but got size with types {[type(s) for s in size]}")
            out = tuple(int(s) for s in size)
        else:
            out = (int(size),) * nd
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != nd:
                raise ValueError(f"{_who(who)}: Input and scale_factor must have the same number of spatial dimensions, but "
                                 f"got input with spatial dimensions of {list(sp)} and scale_factor of shape "
                                 f"{scale_factor}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                                 f"scale_factor in (s1, s2, ...,sK) format.")
            sf = tuple(float(s) for s in scale_factor)
        else:
            sf = (float(scale_factor),) * nd
        out = tuple(int(math.floor(n * s)) for n, s in zip(sp, sf))
        if not (recompute_scale_factor or mode == "area"):
            scales = list(sf)
    else:
        raise ValueError(f"{_who(who)}: either size or scale_factor should be defined")
    if antialias and (mode not in ("bilinear", "bicubic") or input.ndim != 4):
        raise ValueError(f"{_who(who)}: Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
                         f"requires a 4-D tensor as input")
    if any(n < 1 for n in sp) or any(o < 1 for o in out):
        dims = "DHW"[-nd:]
        raise ShapeError(f"{_who(who)}: Input and output sizes should be greater than 0, but got input "
                         f"({', '.join(f'{c}: {n}' for c, n in zip(dims, sp))}) and output "
                         f"({', '.join(f'{c}: {o}' for c, o in zip(dims, out))})")
    if mode == "area":
        from ._pool import adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[nd - 1](input, out)
    if mode not in ("nearest", "nearest-exact") and input._value.dtype.kind not in "fV":
        raise DtypeError(f"{_who(who)}: mode {mode!r} needs a floating point input, got {input.dtype}; convert it "
                         f"first, e.g. input.float()")
    ft = _opmath(input._value.dtype)
    x = input
    for i in reversed(range(nd)):  # innermost dim first, as torch's separable kernels
        n, o, s = sp[i], out[i], scales[i]
        if n == o and s is None and mode in ("nearest", "nearest-exact"):
            continue
        key = ("interp", mode, n, o, s, align_corners, ft.name)
        if mode in ("nearest", "nearest-exact"):
            idx, w = _nearest_table(n, o, s, mode == "nearest-exact")[:, None], None
        elif antialias:
            idx, w = _aa_table(n, o, s, align_corners, ft, mode == "bicubic")
        elif mode == "bicubic":
            idx, w = _cubic_table(n, o, s, align_corners, ft)
        else:
            idx, w = _linear_table(n, o, s, align_corners, ft)
        x = _resample_dim(x, 2 + i, idx, w, key + (antialias,))
    return x if x is not input else input.clone()


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest", align_corners=None) -> Tensor:
    """Deprecated alias of :func:`interpolate` (warns, as torch).

    >>> import tracenn, warnings
    >>> import tracenn.nn.functional as F
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample(tracenn.tensor([[[1., 2.]]]), scale_factor=2)
    tensor([[[1., 1., 2., 2.]]])
    """
    warnings.warn("nn.functional.upsample is deprecated. Use nn.functional.interpolate instead.", stacklevel=2)
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')`` (warns, as torch).

    >>> import tracenn, warnings
    >>> import tracenn.nn.functional as F
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample_nearest(tracenn.tensor([[[1., 2.]]]), size=3)
    tensor([[[1., 1., 2.]]])
    """
    warnings.warn("nn.functional.upsample_nearest is deprecated. Use nn.functional.interpolate instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(..., mode='bilinear', align_corners=True)`` (warns, as torch).

    >>> import tracenn, warnings
    >>> import tracenn.nn.functional as F
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     F.upsample_bilinear(tracenn.tensor([[[[0., 2.]]]]), size=(1, 3))
    tensor([[[[0., 1., 2.]]]])
    """
    warnings.warn("nn.functional.upsample_bilinear is deprecated. Use nn.functional.interpolate instead.",
                  stacklevel=2)
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---- grid_sample / affine_grid ------------------------------------------------------------------

# grid_sample works on all spatial dims at once: coordinates are (..., nd) tensors in the grid's
# order (x, y[, z]: last spatial dim first), and per-dim sizes are small constant vectors.

def _dims_const(like: Tensor, key, values, dtype=None) -> Tensor:
    return _const(("gs", key), like, lambda: np.asarray(values), dtype=like.dtype if dtype is None else dtype)


def _unnormalize(g: Tensor, sizes, align_corners: bool) -> Tensor:
    """[-1, 1] grid coordinates to pixel coordinates (torch's grid_sampler_unnormalize)."""
    if align_corners:
        return (g + 1) / 2 * _dims_const(g, ("n-1", sizes), [n - 1 for n in sizes])
    return ((g + 1) * _dims_const(g, ("n", sizes), sizes) - 1) / 2


def _reflect(c: Tensor, sizes, align_corners: bool) -> Tensor:
    """torch's reflect_coordinates about [0, n-1] (align_corners) or [-0.5, n-0.5]."""
    lo = [0.0 if align_corners else -0.5] * len(sizes)
    span = [float(n - 1) if align_corners else float(n) for n in sizes]
    if any(sp == 0 for sp in span):  # a size-1 dim with align_corners reflects everything to 0
        span = [sp if sp else 1.0 for sp in span]
    lo_t = _dims_const(c, ("lo", tuple(lo)), lo)
    span_t = _dims_const(c, ("span", tuple(span)), span)
    d = (c - lo_t).abs()
    extra = d.fmod(span_t)
    even = (d / span_t).floor().remainder(2) == 0
    out = (extra + lo_t).where(even, span_t - extra + lo_t)
    if align_corners and any(n == 1 for n in sizes):
        out = out * _dims_const(c, ("keep", sizes), [0.0 if n == 1 else 1.0 for n in sizes])
    return out


def _source_coord(c: Tensor, sizes, padding_mode: str, align_corners: bool) -> Tensor:
    if padding_mode == "zeros":
        return c
    if padding_mode == "reflection":
        c = _reflect(c, sizes, align_corners)
    return c.clamp(min=_dims_const(c, ("0", len(sizes)), [0.0] * len(sizes)),
                   max=_dims_const(c, ("n-1", sizes), [n - 1 for n in sizes]))


def _sample(flat: Tensor, batch: Tensor, coords: Tensor, sizes) -> Tensor:
    """Values of ``flat`` (N, prod, C) at integer-valued float ``coords`` (N, L, K, nd), 0 outside.

    Returns (N, L, K, C) from one gather.
    """
    top = _dims_const(coords, ("n-1", sizes), [n - 1 for n in sizes])
    inside = ((coords >= 0) & (coords <= top)).all(-1)
    mult = np.cumprod([1] + list(sizes[:-1]))  # x + W * y (+ W * H * z)
    idx = coords.clamp(min=_dims_const(coords, ("0", len(sizes)), [0.0] * len(sizes)), max=top).long()
    pos = (idx * _dims_const(idx, ("mult", sizes), mult, dtype=idx.dtype)).sum(-1)  # (N, L, K)
    n, l, k = pos.shape
    vals = _apply(_INDEX, (flat, batch, pos.reshape(n, l * k)), ((("t", 0), ("t", 1)),))
    return vals.reshape(n, l, k, flat.shape[-1]).where(inside.unsqueeze(-1), 0.0)


def _cubic_weights(d: Tensor) -> Tensor:
    """torch's cubic convolution (A = -0.75) at distances ``d`` in [0, 2)."""
    a = -0.75
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return near.where(d <= 1, far)


_pad_float32 = float32_under_cpu_autocast(lambda *a: _pad(*a))


@float32_under_cpu_autocast
def grid_sample(input: Tensor, grid: Tensor, mode: str = "bilinear", padding_mode: str = "zeros",
                align_corners: bool | None = None) -> Tensor:
    r"""Sample ``input`` at the normalised locations in ``grid`` (spatial transformer networks).

    Args:
        input: :math:`(N, C, H, W)` or :math:`(N, C, D, H, W)`.
        grid: :math:`(N, H_{out}, W_{out}, 2)` (or :math:`(N, D_o, H_o, W_o, 3)`) of :math:`(x, y[, z])`
            in :math:`[-1, 1]`; ``x`` indexes width.
        mode: ``'bilinear'``, ``'nearest'`` (rounds half to even) or ``'bicubic'`` (4-D only).
        padding_mode: where samples fall outside: ``'zeros'``, ``'border'`` (clamp) or
            ``'reflection'``.
        align_corners: ``True``: -1 and 1 are the corner pixels' centers; ``False`` (default, with a
            warning when not given, as torch): their outer edges.

    Shape:
        Output :math:`(N, C, H_{out}, W_{out})` (or :math:`(N, C, D_o, H_o, W_o)`).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> img = tracenn.tensor([[[[0., 1.], [2., 3.]]]])
    >>> F.grid_sample(img, tracenn.zeros(1, 1, 1, 2), align_corners=False)
    tensor([[[[1.5000]]]])
    """
    who = "grid_sample()"
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"{_who(who)}: expected mode to be 'bilinear', 'nearest' or 'bicubic', but got: '{mode}'")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"{_who(who)}: expected padding_mode to be 'zeros', 'border', or 'reflection', but got: "
                         f"'{padding_mode}'")
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                      "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                      "grid_sample for details.", stacklevel=2)
        align_corners = False
    nd = input.ndim - 2
    if nd not in (2, 3) or grid.ndim != input.ndim:
        raise ShapeError(f"{_who(who)}: expected 4D or 5D input and grid with the same number of dimensions, but got "
                         f"input with sizes {list(input.shape)} and grid with sizes {list(grid.shape)}")
    if grid.shape[-1] != nd:
        raise ShapeError(f"{_who(who)}: expected grid to have size {nd} in last dimension, but got grid with sizes "
                         f"{list(grid.shape)}")
    if grid.shape[0] != input.shape[0]:
        raise ShapeError(f"{_who(who)}: expected grid and input to have same batch size, but got input with sizes "
                         f"{list(input.shape)} and grid with sizes {list(grid.shape)}")
    if mode == "bicubic" and nd != 2:
        raise ShapeError(f"{_who(who)}: bicubic interpolation only supports 4D input")
    if input._value.dtype != grid._value.dtype:
        raise DtypeError(f"{_who(who)}: expected input and grid to have the same dtype, but input has {input.dtype} and "
                         f"grid has {grid.dtype}")
    n, c = input.shape[0], input.shape[1]
    out_sp = tuple(grid.shape[1:-1])
    sizes = tuple(input.shape[2:])[::-1]  # in the grid's coordinate order: (W, H[, D])
    flat = input.reshape(n, c, -1).permute(0, 2, 1)  # (N, D*H*W, C)
    batch = _const(("gs_batch", n), input, lambda: np.arange(n).reshape(n, 1).astype(np.int64))
    g = _unnormalize(grid.reshape(n, -1, 1, nd), sizes, align_corners)  # (N, L, 1, nd)
    ones = None
    if mode == "bicubic":
        # 4 x 4 taps around floor(coord); each tap is clamped or reflected on its own, as torch.
        base = g.floor()
        taps = _dims_const(g, ("taps",), [[j - 1.0, i - 1.0] for i in range(4) for j in range(4)])  # (16, 2)
        w = _cubic_weights((g - base - taps).abs()).prod(-1)  # (N, L, 16)
        vals = _sample(flat, batch, _source_coord(base + taps, sizes, padding_mode, align_corners), sizes)
    else:
        g = _source_coord(g, sizes, padding_mode, align_corners)
        if mode == "nearest":
            r = g.round()  # round half to even, as torch
            vals, w = _sample(flat, batch, r, sizes), None
            if r.requires_grad:  # torch's grid gradient here is zeros, not None: scale by ones read from r
                # (where() never picks r, so the values stay exact; round's and where's gradients are 0)
                ones = r[:, :, 0, :1].where(_const(("gs_false",), r, lambda: np.zeros((), bool)), 1.0)
        else:
            # 2**nd corners: floor + bit, weighted (floor + 1 - coord) or (coord - floor), as torch.
            lo = g.floor()
            bits = _dims_const(g, ("bits", nd), [[(k >> i) & 1 for i in range(nd)] for k in range(2 ** nd)])
            w = ((g - lo) * bits + (lo + 1 - g) * (1 - bits)).prod(-1)  # (N, L, 2**nd)
            vals = _sample(flat, batch, lo + bits, sizes)
    out = vals[:, :, 0] if w is None else (vals * w.unsqueeze(-1)).sum(2)  # (N, L, C)
    if ones is not None:
        out = out * ones
    return out.permute(0, 2, 1).reshape((n, c) + out_sp)


def _base_axis(steps, align_corners):
    if steps <= 1:
        return np.zeros(max(steps, 1))
    r = np.linspace(-1.0, 1.0, steps)
    return r if align_corners else r * (steps - 1) / steps


def affine_grid(theta: Tensor, size, align_corners: bool | None = None) -> Tensor:
    r"""The sampling grid of a batch of affine maps, for :func:`grid_sample`.

    Args:
        theta: :math:`(N, 2, 3)` (2-D) or :math:`(N, 3, 4)` (3-D) affine matrices, floating point.
        size: the target output size :math:`(N, C, H, W)` or :math:`(N, C, D, H, W)`.
        align_corners: as :func:`grid_sample` (default ``False``, with a warning when not given).

    Shape:
        Output :math:`(N, H, W, 2)` (or :math:`(N, D, H, W, 3)`): ``theta`` applied to the normalised
        coordinates :math:`(x, y[, z], 1)` of every output pixel.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> identity = tracenn.tensor([[[1., 0., 0.], [0., 1., 0.]]])
    >>> F.affine_grid(identity, (1, 1, 2, 2), align_corners=True)
    tensor([[[[-1., -1.],
              [ 1., -1.]],
    <BLANKLINE>
             [[-1.,  1.],
              [ 1.,  1.]]]])
    """
    who = "affine_grid()"
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                      "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                      "grid_sample for details.", stacklevel=2)
        align_corners = False
    if theta._value.dtype.kind not in "fV":
        raise ValueError(f"{_who(who)}: Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(s) for s in size)
    if len(size) == 4:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (2, 3):
            raise ValueError(f"{_who(who)}: Expected a batch of 2D affine matrices of shape Nx2x3 for size {size}. Got "
                             f"{tuple(theta.shape)}.")
        spatial = size[-2:]
    elif len(size) == 5:
        if theta.ndim != 3 or tuple(theta.shape[-2:]) != (3, 4):
            raise ValueError(f"{_who(who)}: Expected a batch of 3D affine matrices of shape Nx3x4 for size {size}. Got "
                             f"{tuple(theta.shape)}.")
        spatial = size[-3:]
    else:
        raise NotImplementedError(f"{_who(who)}: affine_grid only supports 4D and 5D sizes, for 2D and 3D affine "
                                  f"transforms, respectively. Got size {size}.")
    if align_corners and min(spatial) == 1:
        warnings.warn("Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
                      "align_corners=True. This is not an intended use case of affine_grid. See the documentation "
                      "of affine_grid for details.", stacklevel=2)
    elif min(size) <= 0:
        raise ValueError(f"{_who(who)}: Expected non-zero, positive output size. Got {size}")
    nd = len(spatial)

    def base():
        axes = [_base_axis(s, align_corners) for s in spatial]  # (D,) H, W
        mesh = np.meshgrid(*axes, indexing="ij")
        coords = [mesh[nd - 1 - i] for i in range(nd)]  # x (width) first
        grid = np.stack(coords + [np.ones_like(mesh[0])], axis=-1)
        return grid.reshape(-1, nd + 1)

    b = _const(("affine_base", spatial, bool(align_corners)), theta, base, dtype=theta.dtype)
    out = b.matmul(theta.transpose(1, 2))  # (N, prod(spatial), nd)
    return out.reshape((size[0],) + tuple(spatial) + (nd,))
