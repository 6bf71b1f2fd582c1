"""Pooling: max/avg/lp pooling (1-3 d), max unpooling, adaptive avg/max pooling.

Max and average pooling are the ``reduce_window`` primitive (``window_argmax`` when indices are
wanted); everything else is a composite. Output sizes, ``ceil_mode``, the average's divisor
(``count_include_pad``, ``divisor_override``) and the adaptive windows
(``start = floor(i * L / out)``, ``end = ceil((i + 1) * L / out)``) follow torch's CPU kernels.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ... import _dispatch
from ..._dispatch import apply as _apply
from ..._api._common import value_of
from ...errors import DtypeError, ShapeError
from ...ops import OPS as _OPS
from ...tensor import Tensor
from ._conv import _batched, _const, _dims, _gather_windows, _ntuple, _sizes, _who
from ...amp import float32_under_cpu_autocast

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
           "max_pool3d_with_indices", "max_unpool1d", "max_unpool2d", "max_unpool3d", "avg_pool1d", "avg_pool2d",
           "avg_pool3d", "lp_pool1d", "lp_pool2d", "lp_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
           "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
           "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
           "adaptive_max_pool3d_with_indices"]

_REDUCE_WINDOW = _OPS["reduce_window"]
_WINDOW_ARGMAX = _OPS["window_argmax"]
_SCATTER = _OPS["scatter"]
_GATHER = _OPS["gather"]


# ---- geometry -----------------------------------------------------------------------------------

def _pool_geometry(who, input, nd, kernel_size, stride, padding, dilation, ceil_mode):
    """Check pooling arguments against ``input`` as torch does; return the normalised geometry.

    Returns ``(x, unbatched, kernel, stride, pads, dilation, outs)``; ``pads`` holds (lo, hi) per dim,
    where ``hi`` is grown so the last ``ceil_mode`` window fits.
    """
    x, unbatched = _batched(who, input, nd, empty_ok=False)
    k = _ntuple(kernel_size, nd, "kernel_size", who)
    s = k if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0) else \
        _ntuple(stride, nd, "stride", who)
    p = _ntuple(padding, nd, "padding", who)
    d = _ntuple(dilation, nd, "dilation", who)
    if any(v < 1 for v in k + s + d):
        raise ShapeError(f"{_who(who)}: kernel_size, stride and dilation must be greater than zero, but got "
                         f"kernel_size={k}, stride={s}, dilation={d}")
    for pp, kk, dd in zip(p, k, d):
        if pp < 0 or pp > (dd * (kk - 1) + 1) // 2:
            raise ShapeError(f"{_who(who)}: pad should be at most half of effective kernel size, but got pad={pp}, "
                             f"kernel_size={kk} and dilation={dd}; use padding <= {(dd * (kk - 1) + 1) // 2}")
    sp = tuple(x.shape[2:])
    outs, pads = [], []
    for n, kk, ss, pp, dd in zip(sp, k, s, p, d):
        span = n + 2 * pp - dd * (kk - 1) - 1
        o = (span + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= n + pp:  # the last window must start inside the input or left pad
            o -= 1
        outs.append(o)
        pads.append((pp, max(pp, (o - 1) * ss + dd * (kk - 1) + 1 - n - pp)))
    if any(o < 1 for o in outs):
        c = x.shape[1]
        raise ShapeError(f"{_who(who)}: Given input size: ({'x'.join(map(str, (c,) + sp))}). Calculated output size: "
                         f"({'x'.join(map(str, (c,) + tuple(max(o, 0) for o in outs)))}). Output size is too small: "
                         f"the input's spatial size {_sizes(sp)} is smaller than the window {_sizes(k)}"
                         f"{f' with dilation {d}' if any(v != 1 for v in d) else ''}"
                         f"{f' even with padding {p}' if any(p) else ''} in "
                         f"{_dims([o - 1 for o in outs], [0] * nd, input.ndim - nd)}; feed a larger input, pad it, "
                         f"or use a smaller kernel_size")
    return x, unbatched, k, s, tuple(pads), d, tuple(outs)


def _float_input(who, input):
    if input._value.dtype.kind not in "fV":
        raise DtypeError(f"{_who(who)}: expected a floating point input, got {input.dtype}; convert it first, "
                         f"e.g. input.float()")


# ---- max pooling --------------------------------------------------------------------------------

def _max_pool(who, nd, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, unbatched, k, s, pads, d, _ = _pool_geometry(who, input, nd, kernel_size, stride, padding, dilation,
                                                     ceil_mode)
    if return_indices:
        out, idx = _apply(_WINDOW_ARGMAX, (x,), (k, s, pads, d))
        return (out.squeeze(0), idx.squeeze(0)) if unbatched else (out, idx)
    out = _apply(_REDUCE_WINDOW, (x,), ("max", k, s, pads, d))
    return out.squeeze(0) if unbatched else out


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""1-D max pooling over an input of shape :math:`(N, C, L)`.

    Args:
        input: :math:`(N, C, L)` or unbatched :math:`(C, L)`.
        kernel_size: the window size.
        stride: the window step (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides (at most half the effective window).
        dilation: spacing between window elements.
        ceil_mode: round the output size up (a last partial window is kept if it starts inside
            the input or the left padding).
        return_indices: also return the flat position of each max (for :func:`max_unpool1d`).

    Shape:
        :math:`L_{out} = \lfloor (L + 2p - d(k - 1) - 1) / s \rfloor + 1` (ceil with ``ceil_mode``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.max_pool1d(tracenn.tensor([[[1., 3., 2., 5., 4.]]]), 2, return_indices=True)
    (tensor([[[3., 5.]]]), tensor([[[1, 3]]]))
    """
    return _max_pool("max_pool1d()", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""2-D max pooling over an input of shape :math:`(N, C, H, W)`.

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        kernel_size, stride, padding, dilation: ints or pairs (``stride`` defaults to ``kernel_size``).
        ceil_mode, return_indices: as :func:`max_pool1d`; indices are flat over :math:`H \times W`.

    Shape:
        Each output size as in :func:`max_pool1d`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.max_pool2d(tracenn.arange(16.).reshape(1, 1, 4, 4), 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    return _max_pool("max_pool2d()", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@float32_under_cpu_autocast
def max_pool3d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    r"""3-D max pooling over an input of shape :math:`(N, C, D, H, W)`.

    Args:
        input: :math:`(N, C, D, H, W)` or unbatched :math:`(C, D, H, W)`.
        kernel_size, stride, padding, dilation: ints or triples.
        ceil_mode, return_indices: as :func:`max_pool1d`; indices are flat over :math:`D H W`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.max_pool3d(tracenn.arange(8.).reshape(1, 2, 2, 2), 2)
    tensor([[[[7.]]]])
    """
    return _max_pool("max_pool3d()", 3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """:func:`max_pool1d` that always returns ``(output, indices)``."""
    return _max_pool("max_pool1d_with_indices()", 1, input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """:func:`max_pool2d` that always returns ``(output, indices)``."""
    return _max_pool("max_pool2d_with_indices()", 2, input, kernel_size, stride, padding, dilation, ceil_mode, True)


@float32_under_cpu_autocast
def max_pool3d_with_indices(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                            return_indices=False):
    """:func:`max_pool3d` that always returns ``(output, indices)``."""
    return _max_pool("max_pool3d_with_indices()", 3, input, kernel_size, stride, padding, dilation, ceil_mode, True)


# ---- max unpooling ------------------------------------------------------------------------------

def _max_unpool(who, nd, input, indices, kernel_size, stride, padding, output_size):
    x, unbatched = _batched(who, input, nd)
    k = _ntuple(kernel_size, nd, "kernel_size", who)
    s = k if stride is None else _ntuple(stride, nd, "stride", who)
    p = _ntuple(padding, nd, "padding", who)
    if indices._value.dtype.kind not in "iu":
        raise DtypeError(f"{_who(who)}: indices must be int64 (as max_pool{nd}d(..., return_indices=True) gives), "
                         f"got {indices.dtype}")
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{_who(who)}: Expected shape of indices to be same as that of the input tensor "
                         f"({list(input.shape)}) but got indices tensor with shape: {list(indices.shape)}")
    sp = tuple(x.shape[2:])
    default = [(n - 1) * ss + kk - 2 * pp for n, ss, kk, pp in zip(sp, s, k, p)]
    if output_size is None:
        out = default
    else:
        out = [int(o) for o in output_size]
        if len(out) == nd + 2:
            out = out[2:]
        elif len(out) == nd + 1 and unbatched:
            out = out[1:]
        if len(out) != nd:
            raise ValueError(f"{_who(who)}: output_size should be a sequence containing {nd} or {nd + 2} elements, "
                             f"but it has a length of '{len(output_size)}'")
        for i, (o, dflt, ss) in enumerate(zip(out, default, s)):
            if not dflt - ss < o < dflt + ss:
                raise ValueError(f'{_who(who)}: invalid output_size "{tuple(output_size)}" (dim {i} must be between '
                                 f'{dflt - ss} and {dflt + ss})')
    if any(o < 0 for o in out):
        raise ValueError(f"{_who(who)}: output_size must contain non-negative spatial dimensions, got {tuple(out)}")
    total = math.prod(out)
    n, c = x.shape[0], x.shape[1]
    idx = (indices.unsqueeze(0) if unbatched else indices).reshape(n, c, -1)
    if idx.numel() and not _dispatch.abstract(value_of(idx)):  # (no values while compiling)
        lo, hi = int(idx.min()), int(idx.max())  # one host read, as torch's CPU kernel checks every index
        if lo < 0 or hi >= total:
            bad = lo if lo < 0 else hi
            raise ShapeError(f"{_who(who)}: Found an invalid max index: {bad} (output volumes are of size "
                             f"{'x'.join(map(str, out))}); indices must come from the matching max_pool{nd}d")
    y = _apply(_SCATTER, (x.new_zeros((n, c, total)), idx, x.reshape(n, c, -1)), (2, None, True))
    y = y.reshape((n, c) + tuple(out))
    return y.squeeze(0) if unbatched else y


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    r"""Partial inverse of :func:`max_pool1d`: put each value back at its index, zeros elsewhere.

    Args:
        input, indices: the output and indices of ``max_pool1d(..., return_indices=True)``.
        kernel_size, stride, padding: those of the pooling.
        output_size: the size to produce (the pooling's input size); it resolves the ambiguity when
            several input sizes pool to the same output size.

    Shape:
        :math:`L_{out} = (L_{in} - 1) s - 2p + k`, or ``output_size``.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.max_unpool1d(tracenn.tensor([[[3., 5.]]]), tracenn.tensor([[[1, 3]]]), 2)
    tensor([[[0., 3., 0., 5.]]])
    """
    return _max_unpool("max_unpool1d()", 1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    r"""Partial inverse of :func:`max_pool2d` (indices flat over :math:`H_{out} \times W_{out}`).

    Args:
        input, indices, kernel_size, stride, padding, output_size: as :func:`max_unpool1d`, with pairs.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.arange(16.).reshape(1, 1, 4, 4)
    >>> y, i = F.max_pool2d(x, 2, return_indices=True)
    >>> F.max_unpool2d(y, i, 2)[0, 0]
    tensor([[ 0.,  0.,  0.,  0.],
            [ 0.,  5.,  0.,  7.],
            [ 0.,  0.,  0.,  0.],
            [ 0., 13.,  0., 15.]])
    """
    return _max_unpool("max_unpool2d()", 2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size, stride=None, padding=0, output_size=None) -> Tensor:
    r"""Partial inverse of :func:`max_pool3d` (indices flat over :math:`D H W`).

    Args:
        input, indices, kernel_size, stride, padding, output_size: as :func:`max_unpool1d`, with triples.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.max_unpool3d(tracenn.tensor([[[[[7.]]]]]), tracenn.tensor([[[[[7]]]]]), 2).flatten()
    tensor([0., 0., 0., 0., 0., 0., 0., 7.])
    """
    return _max_unpool("max_unpool3d()", 3, input, indices, kernel_size, stride, padding, output_size)


# ---- average pooling ----------------------------------------------------------------------------

def _avg_divisor(sizes, outs, k, s, pads, count_include_pad):
    """torch's per-output divisor: the window clipped to input+padding (count_include_pad) or to the input."""
    per_dim = []
    for n, o, kk, ss, (lo, _) in zip(sizes, outs, k, s, pads):
        start = np.arange(o) * ss - lo
        end = np.minimum(start + kk, n + lo)
        if count_include_pad:
            per_dim.append(end - start)
        else:
            per_dim.append(np.minimum(end, n) - np.maximum(start, 0))
    div = per_dim[0]
    for v in per_dim[1:]:
        div = np.multiply.outer(div, v)
    return np.maximum(div, 1)


def _avg_pool(who, nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, unbatched, k, s, pads, d, outs = _pool_geometry(who, input, nd, kernel_size, stride, padding, 1, ceil_mode)
    _float_input(who, input)
    total = _apply(_REDUCE_WINDOW, (x,), ("sum", k, s, pads, d))
    if divisor_override is not None:
        if not divisor_override:
            raise ShapeError(f"{_who(who)}: divisor must be not zero (divisor_override={divisor_override!r})")
        out = total / divisor_override
    else:
        sp = tuple(x.shape[2:])
        key = ("avg_div", sp, outs, k, s, pads, bool(count_include_pad))
        div = _avg_divisor(sp, outs, k, s, pads, count_include_pad)
        if (div == div.flat[0]).all():
            out = total / int(div.flat[0])
        else:
            out = total / _const(key, x, lambda: div, dtype=x.dtype)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    r"""1-D average pooling over an input of shape :math:`(N, C, L)`.

    Args:
        input: :math:`(N, C, L)` or unbatched :math:`(C, L)`.
        kernel_size: the window size.
        stride: the window step (default: ``kernel_size``).
        padding: implicit zero padding on both sides (at most half the window).
        ceil_mode: round the output size up.
        count_include_pad: whether the zero padding counts in the average's divisor.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.avg_pool1d(tracenn.tensor([[[1., 2., 3., 4., 5., 6., 7.]]]), 3, stride=2)
    tensor([[[2., 4., 6.]]])
    """
    return _avg_pool("avg_pool1d()", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    r"""2-D average pooling over an input of shape :math:`(N, C, H, W)`.

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        kernel_size, stride, padding: ints or pairs (``stride`` defaults to ``kernel_size``).
        ceil_mode, count_include_pad: as :func:`avg_pool1d`.
        divisor_override: divide every window's sum by this instead of its size.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.avg_pool2d(tracenn.ones(1, 1, 2, 2), 2, padding=1, count_include_pad=False)
    tensor([[[[1., 1.],
              [1., 1.]]]])
    """
    return _avg_pool("avg_pool2d()", 2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


@float32_under_cpu_autocast
def avg_pool3d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None) -> Tensor:
    r"""3-D average pooling over an input of shape :math:`(N, C, D, H, W)`.

    Args:
        input: :math:`(N, C, D, H, W)` or unbatched :math:`(C, D, H, W)`.
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as
            :func:`avg_pool2d`, with triples.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.avg_pool3d(tracenn.arange(8.).reshape(1, 2, 2, 2), 2)
    tensor([[[[3.5000]]]])
    """
    return _avg_pool("avg_pool3d()", 3, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ---- power-average pooling ----------------------------------------------------------------------

def _lp_pool(who, nd, input, norm_type, kernel_size, stride, ceil_mode):
    k = _ntuple(kernel_size, nd, "kernel_size", who)
    if norm_type == math.inf:
        return _max_pool(who, nd, input.abs(), kernel_size, stride, 0, 1, ceil_mode, False)
    if norm_type == -math.inf:
        return -_max_pool(who, nd, -input.abs(), kernel_size, stride, 0, 1, ceil_mode, False)
    out = _avg_pool(who, nd, input.pow(norm_type), kernel_size, stride, 0, ceil_mode, True, None)
    return (out.sign() * out.abs().relu()).mul(math.prod(k)).pow(1.0 / norm_type)


def lp_pool1d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    r"""1-D power-average pooling: :math:`(\sum_{x \in \text{window}} x^p)^{1/p}`.

    ``p = inf`` is max pooling of ``|x|``; ``p = 1`` is sum pooling. As in torch, windows are not
    padded, and a window whose sum of powers is negative gives 0 (or NaN for a fractional root).

    Args:
        input: :math:`(N, C, L)` or unbatched :math:`(C, L)`.
        norm_type: the power :math:`p`.
        kernel_size, stride, ceil_mode: as :func:`avg_pool1d`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.lp_pool1d(tracenn.tensor([[[3., 4., 1., 1.]]]), 2, 2)
    tensor([[[5.0000, 1.4142]]])
    """
    return _lp_pool("lp_pool1d()", 1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    r"""2-D power-average pooling (see :func:`lp_pool1d`).

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        norm_type, kernel_size, stride, ceil_mode: as :func:`lp_pool1d`, with pairs.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.lp_pool2d(tracenn.ones(1, 1, 2, 2), 2, 2)
    tensor([[[[2.]]]])
    """
    return _lp_pool("lp_pool2d()", 2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input: Tensor, norm_type, kernel_size, stride=None, ceil_mode=False) -> Tensor:
    r"""3-D power-average pooling (see :func:`lp_pool1d`).

    Args:
        input: :math:`(N, C, D, H, W)` or unbatched :math:`(C, D, H, W)`.
        norm_type, kernel_size, stride, ceil_mode: as :func:`lp_pool1d`, with triples.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.lp_pool3d(tracenn.ones(1, 1, 2, 2, 2), 1, 2).flatten()
    tensor([8.])
    """
    return _lp_pool("lp_pool3d()", 3, input, norm_type, kernel_size, stride, ceil_mode)


# ---- adaptive pooling ---------------------------------------------------------------------------

def _adaptive_sizes(who, x, nd, output_size):
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size,) * nd
    out = tuple(output_size)
    if len(out) == 1 and nd > 1:
        out = out * nd
    if len(out) != nd:
        raise ShapeError(f"{_who(who)}: output_size must have {nd} elements (or be an int), got {tuple(output_size)}")
    out = tuple(n if o is None else int(o) for o, n in zip(out, x.shape[2:]))
    if any(o < 0 for o in out):
        raise ShapeError(f"{_who(who)}: elements of output_size must be greater than or equal to 0, got {out}")
    return out


def _adaptive_tables(n, o):
    """(o, K) input positions of each adaptive window (clamped repeats of the last one) and a mask."""
    i = np.arange(o)
    start = (i * n) // o
    end = -((-(i + 1) * n) // o)  # ceil
    width = int((end - start).max()) if o else 1
    pos = start[:, None] + np.arange(width)[None, :]
    mask = pos < end[:, None]
    return np.minimum(pos, end[:, None] - 1).astype(np.int64), mask


def _adaptive_avg(who, nd, input, output_size):
    x, unbatched = _batched(who, input, nd, empty_ok=False)
    _float_input(who, input)
    sp = tuple(x.shape[2:])
    out = _adaptive_sizes(who, x, nd, output_size)
    if all(o == 1 for o in out):
        y = x.sum(tuple(range(2, nd + 2)), keepdim=True) / math.prod(sp)  # sum / count, as torch (not * 1/count)
    elif all(o and n % o == 0 for n, o in zip(sp, out)):
        k = tuple(n // o for n, o in zip(sp, out))
        y = _apply(_REDUCE_WINDOW, (x,), ("sum", k, k, ((0, 0),) * nd, (1,) * nd)) / math.prod(k)
    else:
        # Separable: a box average is the average over rows of the averages over columns.
        y = x
        for i, (n, o) in enumerate(zip(sp, out)):
            axis = 2 + i
            if o and n % o == 0:
                shape = tuple(y.shape)
                y = y.reshape(shape[:axis] + (o, n // o) + shape[axis + 1:]).sum(axis + 1) / (n // o)
                continue
            pos, mask = _adaptive_tables(n, o)
            key = ("adaptive", n, o)
            yt = y.movedim(axis, -1)
            win = _gather_windows(yt, [pos], key)  # (..., o, K)
            m = _const(key + ("mask",), x, lambda: mask)
            cnt = _const(key + ("count",), x, lambda: mask.sum(1), dtype=x.dtype)
            y = (win.where(m, 0.0).sum(-1) / cnt).movedim(-1, axis)
    return y.squeeze(0) if unbatched else y


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    r"""1-D adaptive average pooling: ``output_size`` windows that tile the input.

    Window :math:`i` covers :math:`[\lfloor iL/O \rfloor, \lceil (i+1)L/O \rceil)`, as torch's.

    Args:
        input: :math:`(N, C, L)` or unbatched :math:`(C, L)`.
        output_size: the output length :math:`O`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_avg_pool1d(tracenn.tensor([[[1., 2., 3., 4., 5.]]]), 2)
    tensor([[[2., 4.]]])
    """
    return _adaptive_avg("adaptive_avg_pool1d()", 1, input, output_size)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    r"""2-D adaptive average pooling (see :func:`adaptive_avg_pool1d`).

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        output_size: an int, a pair, or a pair with ``None`` (keep that input size).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_avg_pool2d(tracenn.arange(16.).reshape(1, 4, 4), 1)
    tensor([[[7.5000]]])
    """
    return _adaptive_avg("adaptive_avg_pool2d()", 2, input, output_size)


@float32_under_cpu_autocast
def adaptive_avg_pool3d(input: Tensor, output_size) -> Tensor:
    r"""3-D adaptive average pooling (see :func:`adaptive_avg_pool1d`).

    Args:
        input: :math:`(N, C, D, H, W)` or unbatched :math:`(C, D, H, W)`.
        output_size: an int, a triple, or a triple with ``None`` entries.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_avg_pool3d(tracenn.ones(1, 2, 3, 4), (1, None, 2)).shape
    tracenn.Size([1, 1, 3, 2])
    """
    return _adaptive_avg("adaptive_avg_pool3d()", 3, input, output_size)


def _adaptive_max(who, nd, input, output_size, return_indices):
    x, unbatched = _batched(who, input, nd, empty_ok=False)
    sp = tuple(x.shape[2:])
    out = _adaptive_sizes(who, x, nd, output_size)
    if all(o and n % o == 0 for n, o in zip(sp, out)):
        k = tuple(n // o for n, o in zip(sp, out))
        pads, ones = ((0, 0),) * nd, (1,) * nd
        if return_indices:
            y, idx = _apply(_WINDOW_ARGMAX, (x,), (k, k, pads, ones))
        else:
            y, idx = _apply(_REDUCE_WINDOW, (x,), ("max", k, k, pads, ones)), None
    else:
        # Gather every window (ragged ones padded with repeats of their last element, which never
        # change a max or win a tie), then take the first max of each.
        tabs = [_adaptive_tables(n, o)[0] for n, o in zip(sp, out)]
        win = _gather_windows(x, tabs, ("adaptive_max", sp, out))  # (N, C, O1, K1, O2, K2, ...)
        perm = (0, 1) + tuple(2 + 2 * i for i in range(nd)) + tuple(3 + 2 * i for i in range(nd))
        win = win.permute(perm)
        win = win.reshape(tuple(win.shape[:2 + nd]) + (-1,))
        y, local = win.max(-1)
        idx = None
        if return_indices:
            def flat_positions():
                # input position (flat over the spatial dims) of every window element, as (O..., K1*K2*...)
                mult = np.cumprod((1,) + sp[:0:-1])[::-1]
                total = 0
                for i, t in enumerate(tabs):
                    shape = [1] * (2 * nd)
                    shape[2 * i], shape[2 * i + 1] = t.shape
                    total = total + (t * mult[i]).reshape(shape)  # axes (O1, K1, O2, K2, ...)
                order = [2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)]
                return total.transpose(order).reshape(tuple(out) + (-1,)).astype(np.int64)

            table = _const(("adaptive_max_idx", sp, out), x, flat_positions).expand(tuple(win.shape))
            idx = _apply(_GATHER, (table, local.unsqueeze(-1)), (win.ndim - 1,)).squeeze(-1)
    if unbatched:
        y = y.squeeze(0)
        idx = idx.squeeze(0) if idx is not None else None
    return (y, idx) if return_indices else y


def adaptive_max_pool1d(input: Tensor, output_size, return_indices=False):
    r"""1-D adaptive max pooling: windows as :func:`adaptive_avg_pool1d`, the max of each.

    Args:
        input: :math:`(N, C, L)` or unbatched :math:`(C, L)`.
        output_size: the output length.
        return_indices: also return the position of each max (the first one on ties).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_max_pool1d(tracenn.tensor([[[1., 5., 3., 4., 2.]]]), 2, return_indices=True)
    (tensor([[[5., 4.]]]), tensor([[[1, 3]]]))
    """
    return _adaptive_max("adaptive_max_pool1d()", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size, return_indices=False):
    r"""2-D adaptive max pooling (see :func:`adaptive_max_pool1d`); indices flat over :math:`H W`.

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        output_size: an int, a pair, or a pair with ``None`` (keep that input size).
        return_indices: also return the flat position of each max.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_max_pool2d(tracenn.arange(16.).reshape(1, 4, 4), 2)
    tensor([[[ 5.,  7.],
             [13., 15.]]])
    """
    return _adaptive_max("adaptive_max_pool2d()", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size, return_indices=False):
    r"""3-D adaptive max pooling (see :func:`adaptive_max_pool1d`); indices flat over :math:`D H W`.

    Args:
        input: :math:`(N, C, D, H, W)` or unbatched :math:`(C, D, H, W)`.
        output_size: an int, a triple, or a triple with ``None`` entries.
        return_indices: also return the flat position of each max.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.adaptive_max_pool3d(tracenn.arange(8.).reshape(1, 2, 2, 2), 1).flatten()
    tensor([7.])
    """
    return _adaptive_max("adaptive_max_pool3d()", 3, input, output_size, return_indices)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size, return_indices=False):
    """:func:`adaptive_max_pool1d` that always returns ``(output, indices)``."""
    return _adaptive_max("adaptive_max_pool1d_with_indices()", 1, input, output_size, True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size, return_indices=False):
    """:func:`adaptive_max_pool2d` that always returns ``(output, indices)``."""
    return _adaptive_max("adaptive_max_pool2d_with_indices()", 2, input, output_size, True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size, return_indices=False):
    """:func:`adaptive_max_pool3d` that always returns ``(output, indices)``."""
    return _adaptive_max("adaptive_max_pool3d_with_indices()", 3, input, output_size, True)
