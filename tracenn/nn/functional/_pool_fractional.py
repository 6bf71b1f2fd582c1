"""Fractional max pooling (Graham, 2014): ``fractional_max_pool2d/3d`` (and ``*_with_indices``).

Each (sample, channel) plane gets its own pseudo-random window starts from one uniform sample per
spatial dim (``_random_samples``, shape ``(N, C, 2)`` or ``(N, C, 3)``, drawn from tracenn's
generator when not given). The starts follow torch's CPU kernel term for term, in the input's
dtype: with ``alpha = (n - k) / (o - 1)``, window ``i < o - 1`` starts at
``int((i + u) * alpha) - int(u * alpha)`` and the last at ``n - k``. So given the same
``_random_samples`` the output and indices are torch's; without them the windows are tracenn's own
random draw. As in torch, the 2-D samples are ordered (width, height), the 3-D ones (time, height,
width).

The windows are gathered (one gather over the flattened plane) and reduced with ``max``, so the
gradient goes to each window's first maximum, as torch's.
"""
from __future__ import annotations

import numbers

import numpy as np

from ... import dtypes as _dt, random as _random
from ..._api import creation as _creation, index as _index, shape as _shape
from ...errors import DtypeError, ShapeError
from ...tensor import Tensor
from ._conv import _batched, _who

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d", "fractional_max_pool2d_with_indices",
           "fractional_max_pool3d_with_indices"]


def _tuple(value, nd: int, name: str, who: str) -> tuple:
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return (value,) * nd
    v = tuple(value)
    if len(v) == 1:
        return v * nd
    if len(v) != nd:
        raise ShapeError(f"{who}: {name} must either be a single Int or tuple of {nd} Ints, got {name}={v}")
    return v


def _window_starts(u: Tensor, n: int, o: int, k: int) -> Tensor:
    """torch's ``generate_intervals`` for samples ``u`` of shape (N, C): int64 starts (N, C, o)."""
    last = _creation.full((*u.shape, min(o, 1)), n - k, dtype=_dt.int64, device=u.device)
    if o <= 1:
        return last
    scalar = u._value.dtype.type
    alpha = float(scalar(n - k) / scalar(o - 1))  # in the input's dtype, as the kernel's scalar_t
    i = _creation.arange(o - 1, dtype=u.dtype, device=u.device)
    starts = ((i + u.unsqueeze(-1)) * alpha).long() - (u * alpha).long().unsqueeze(-1)
    return _shape.cat([starts, last], -1)


def _fractional_max_pool(who, nd: int, input: Tensor, kernel_size, output_size, output_ratio, _random_samples):
    """``(output, indices)``; ``who`` is the function's name or the calling layer (for messages)."""
    if output_size is None and output_ratio is None:
        raise ValueError(f"fractional_max_pool{nd}d requires specifying either an output_size or an output_ratio")
    x, unbatched = _batched(who, input, nd, empty_ok=False)
    who = _who(who)
    if input._value.dtype.kind not in "fV":
        raise DtypeError(f"{who}: expected a floating point input, got {input.dtype}; convert it first, "
                         "e.g. input.float()")
    sp = tuple(x.shape[2:])
    k = tuple(int(v) for v in _tuple(kernel_size, nd, "kernel_size", who))
    if output_size is None:
        ratio = output_ratio if isinstance(output_ratio, numbers.Number) else tuple(output_ratio)
        if not isinstance(ratio, numbers.Number) and len(ratio) > nd:
            raise ValueError(f"fractional_max_pool{nd}d requires output_ratio to either be a single Int or tuple "
                             "of Ints.")
        out = tuple(int(n * r) for n, r in zip(sp, _tuple(ratio, nd, "output_ratio", who)))
    else:
        out = tuple(int(v) for v in _tuple(output_size, nd, "output_size", who))
    if any(v < 1 for v in k):
        raise ShapeError(f"{who}: kernel_size must be positive, got kernel_size={k}")
    names = ("height", "width") if nd == 2 else ("time", "height", "width")
    for name, n, o, kk in zip(names, sp, out, k):
        if o < 0:
            raise ShapeError(f"{who}: output_size must be non-negative, got output_size={out}")
        # torch's kernels: output + kernel - 1 <= input in 2-D, but < input in 3-D
        need = o + kk - 1 if nd == 2 else o + kk
        if need > n:
            raise ShapeError(f"{who}: pool {name} {kk} too large relative to input {name} {n} (an output {name} "
                             f"of {o} needs an input {name} of at least {need})")
    batch, channels = x.shape[0], x.shape[1]
    if _random_samples is None:
        u = _random._draw("uniform", (batch, channels, nd), input.dtype, (0.0, 1.0), None, input.device)
    else:
        u = _random_samples
        if u.ndim != 3:
            raise ShapeError(f"Expect _random_samples to have 3 dimensions, got {u.ndim}")
        if u.shape[2] != nd:
            raise ShapeError(f"Expect _random_samples.size(2) equals to {nd}; got {u.shape[2]}.")
        if u.shape[0] < batch:
            raise ShapeError("Expect _random_samples.size(0) no less then input batch size.")
        if u.shape[1] != channels:
            raise ShapeError("Expect _random_samples.size(1) equals to input channel size.")
        if u.dtype != input.dtype:
            raise DtypeError("Expect _random_samples to have the same dtype as input")
        u = u.detach()[:batch]
    # sample j belongs to spatial dim j (3-D) or to the dims in reverse (2-D: width, then height)
    dims = range(nd) if nd == 3 else reversed(range(nd))
    starts = [_window_starts(u[:, :, j], n, o, kk) for j, n, o, kk in zip(dims, sp, out, k)]
    # flat plane position of every window element: axes (N, C, o_1, ..., o_nd, k_1, ..., k_nd)
    strides = np.cumprod((1,) + sp[:0:-1])[::-1]
    flat = None
    for i, (s, kk) in enumerate(zip(starts, k)):
        # (N, C, o_i, k_i) flat positions along dim i
        pos = (s.unsqueeze(-1) + _creation.arange(kk, device=input.device)) * int(strides[i])
        # size-1 axes around o_i and k_i put them at their places (2 + i, 2 + nd + i)
        ones_before, ones_after = [1] * i, [1] * (nd - 1 - i)
        pos = pos.reshape([batch, channels] + ones_before + [out[i]] + ones_after + ones_before + [kk] + ones_after)
        flat = pos if flat is None else flat + pos
    window = int(np.prod(k))
    flat = flat.expand(batch, channels, *out, *k).reshape(batch, channels, -1)
    values = _index.gather(x.reshape(batch, channels, -1), 2, flat).reshape(batch, channels, *out, window)
    y, local = values.max(-1)
    idx = _index.gather(flat.reshape(batch, channels, *out, window), -1, local.unsqueeze(-1)).squeeze(-1)
    if unbatched:
        y, idx = y.squeeze(0), idx.squeeze(0)
    return y, idx


def fractional_max_pool2d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """:func:`fractional_max_pool2d` that always returns ``(output, indices)``."""
    return _fractional_max_pool("fractional_max_pool2d()", 2, input, kernel_size, output_size, output_ratio,
                                _random_samples)


def fractional_max_pool2d(input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    r"""2-D fractional max pooling over an input of shape :math:`(N, C, H, W)` or :math:`(C, H, W)`:
    max over ``kernel_size`` windows placed pseudo-randomly so that the output has ``output_size``.

    Args:
        input: the input.
        kernel_size: the window size (an int or a pair).
        output_size: the output's :math:`(H_{out}, W_{out})` (an int or a pair), or
        output_ratio: the output's size as a fraction of the input's (a number or a pair in (0, 1)).
        return_indices: also return the flat index (``h * W + w``) of each maximum, for
            :func:`max_unpool2d`.
        _random_samples: :math:`(N, C, 2)` uniform samples in the input's dtype (width, height)
            that fix the windows; drawn from tracenn's generator when None.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.arange(16.).reshape(1, 1, 4, 4)
    >>> F.fractional_max_pool2d(x, 2, output_size=2, _random_samples=tracenn.zeros(1, 1, 2))
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    out, idx = fractional_max_pool2d_with_indices(input, kernel_size, output_size, output_ratio, return_indices,
                                                  _random_samples)
    return (out, idx) if return_indices else out


def fractional_max_pool3d_with_indices(input: Tensor, kernel_size, output_size=None, output_ratio=None,
                                       return_indices=False, _random_samples=None):
    """:func:`fractional_max_pool3d` that always returns ``(output, indices)``."""
    return _fractional_max_pool("fractional_max_pool3d()", 3, input, kernel_size, output_size, output_ratio,
                                _random_samples)


def fractional_max_pool3d(input: Tensor, kernel_size, output_size=None, output_ratio=None, return_indices=False,
                          _random_samples=None):
    r"""3-D fractional max pooling over an input of shape :math:`(N, C, T, H, W)` or :math:`(C, T, H, W)`;
    see :func:`fractional_max_pool2d`. ``_random_samples`` is :math:`(N, C, 3)`, ordered (time, height,
    width); indices are flat over the volume (``t * H * W + h * W + w``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.fractional_max_pool3d(tracenn.randn(2, 3, 8, 8, 8), 2, output_ratio=0.5).shape
    tracenn.Size([2, 3, 4, 4, 4])
    """
    out, idx = fractional_max_pool3d_with_indices(input, kernel_size, output_size, output_ratio, return_indices,
                                                  _random_samples)
    return (out, idx) if return_indices else out
