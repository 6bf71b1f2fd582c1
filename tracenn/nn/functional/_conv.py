"""Convolutions: conv1d/2d/3d, conv_transpose1d/2d/3d, unfold (im2col) and fold (col2im).

Also the helpers the pooling and vision functions share: argument tuples (``_ntuple``), the
batch-dim convention (``_batched``), cached constant tables (``_const``) and ``who`` — the name an
error starts with: the function (``"conv2d()"``), or the layer that called it, formatted only when
an error is raised (so layers pay nothing for a readable message).
"""
from __future__ import annotations

import numbers

import numpy as np

from ..._api.creation import tensor as _tensor
from ..._api.linalg import convnd as _convnd
from ... import _dispatch
from ..._dispatch import apply as _apply
from ...errors import DtypeError, ShapeError
from ...ops import OPS as _OPS
from ...tensor import Tensor

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "unfold", "fold"]

_CONV_T = _OPS["conv_transpose"]
_INDEX_SELECT = _OPS["index_select"]
_INDEX_ADD = _OPS["index_add"]


# ---- shared helpers -----------------------------------------------------------------------------

def _who(who) -> str:
    """The name an error message starts with: a function name, or a layer as its repr shows it."""
    if isinstance(who, str):
        return who
    return f"{who._get_name()}({who.extra_repr()})"


def _ntuple(value, n: int, name: str, who) -> tuple:
    """torch's int-or-tuple argument convention: 3 -> (3, 3); (3,) -> (3, 3); (3, 2) stays."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),) * n
    try:
        v = tuple(int(e) for e in value)
    except TypeError:
        raise TypeError(f"{_who(who)}: {name} must be an int or a tuple of {n} ints, got {value!r}") from None
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise ShapeError(f"{_who(who)}: {name} must be a single int or a tuple of {n} ints, but got "
                         f"{name}={tuple(value)}")
    return v


def _batched(who, input: Tensor, nd: int, *, empty_ok: bool = True):
    """``(input with a leading batch dim, whether one was added)``; checks the rank is nd+1 or nd+2."""
    if input.ndim == nd + 2:
        x, unbatched = input, False
    elif input.ndim == nd + 1:
        x, unbatched = input.unsqueeze(0), True
    else:
        raise ShapeError(f"{_who(who)}: expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, but got "
                         f"input of size: {list(input.shape)}")
    if not empty_ok and any(s == 0 for s in x.shape[1:]):
        raise ShapeError(f"{_who(who)}: expected input with non-zero sizes in every dimension but the batch, "
                         f"got input of size: {list(input.shape)}")
    return x, unbatched


def _sizes(shape) -> str:
    return str(tuple(int(s) for s in shape))


def _dims(have, need, first) -> str:
    """'dim 3' / 'dims 2 and 3': the input dims (numbered from ``first``) where have < need."""
    bad = [str(first + i) for i, (h, n) in enumerate(zip(have, need)) if h < n]
    return ("dim " if len(bad) == 1 else "dims ") + " and ".join(bad)


_CONSTS: dict = {}


def _const(key, like: Tensor, make, dtype=None) -> Tensor:
    """A cached constant tensor (index tables, divisors) on ``like``'s device.

    ``make()`` builds the numpy array once per (key, device, dtype); the tensor is private, never
    modified, and shared across calls, so a layer's index tables cost one dict lookup per call.
    """
    dev = like.device
    k = (key, dev, dtype)
    t = _CONSTS.get(k)
    if t is None:
        if len(_CONSTS) > 2048:
            _CONSTS.clear()
        tracer, _dispatch.TRACE[0] = _dispatch.TRACE[0], None  # concrete even while compiling: it outlives
        try:  # the trace (a symbolic one, reused by a later eager call, had no values)
            t = _tensor(make(), dtype=dtype, device=dev)
        finally:
            _dispatch.TRACE[0] = tracer
        _CONSTS[k] = t
    return t


def _check_same_dtype(who, input: Tensor, weight: Tensor):
    if input._value.dtype != weight._value.dtype and not _dispatch.autocasting(input, weight):
        raise DtypeError(f"{_who(who)}: input and weight must have the same dtype, got input {input.dtype} and "
                         f"weight {weight.dtype}; cast one, e.g. input.to(weight.dtype)")


# ---- convolution --------------------------------------------------------------------------------

def _conv(who, nd, input, weight, bias, stride, padding, dilation, groups):
    """conv{nd}d with errors that name ``who``; the arithmetic is tracenn's ``convnd``."""
    _dispatch.same_device(who, input=input, weight=weight, bias=bias)
    x, unbatched = _batched(who, input, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{_who(who)}: expected a {nd + 2}D weight (out_channels, in_channels/groups, *kernel), "
                         f"got weight of shape {tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ShapeError(f"{_who(who)}: groups must be a positive integer, got groups={groups!r}")
    cin = weight.shape[1] * groups
    if x.shape[1] != cin:
        g = f" (groups={groups} x {weight.shape[1]} per group)" if groups > 1 else ""
        raise ShapeError(f"{_who(who)}: expected input with {cin} channels{g} in dim {0 if unbatched else 1}, got "
                         f"input of shape {tuple(input.shape)}")
    if weight.shape[0] % groups:
        raise ShapeError(f"{_who(who)}: Given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0, but got weight of size {list(weight.shape)}")
    _check_same_dtype(who, input, weight)
    k = tuple(weight.shape[2:])
    st = _ntuple(stride, nd, "stride", who)
    dl = _ntuple(dilation, nd, "dilation", who)
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{_who(who)}: invalid padding string {padding!r}, should be one of 'valid' or 'same'")
        if padding == "same" and any(s != 1 for s in st):
            raise ValueError(f"{_who(who)}: padding='same' is not supported for strided convolutions "
                             f"(stride={st}); use an explicit padding")
        total = [d * (kk - 1) for d, kk in zip(dl, k)] if padding == "same" else [0] * nd
    else:
        total = [2 * p for p in _ntuple(padding, nd, "padding", who)]
    sp = tuple(x.shape[2:])
    padded = tuple(s + t for s, t in zip(sp, total))
    eff = tuple(d * (kk - 1) + 1 for d, kk in zip(dl, k))
    if any(p < e for p, e in zip(padded, eff)):
        detail = "" if (padded == sp and eff == k) else \
            f" (padded input size {_sizes(padded)}, dilated kernel size {_sizes(eff)})"
        raise ShapeError(f"{_who(who)}: input of spatial size {_sizes(sp)} is smaller than the kernel {_sizes(k)}"
                         f"{detail} in {_dims(padded, eff, input.ndim - nd)}; feed a larger input, add padding, "
                         f"or use a smaller kernel_size")
    out = _convnd(nd, x, weight, bias, st, padding, dl, groups)
    return out.squeeze(0) if unbatched else out


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups=1) -> Tensor:
    r"""1-D convolution (cross-correlation) over an input of shape :math:`(N, C_{in}, L)`.

    Args:
        input: :math:`(N, C_{in}, L)` or unbatched :math:`(C_{in}, L)`.
        weight: :math:`(C_{out}, C_{in}/\text{groups}, kW)`.
        bias: optional :math:`(C_{out})`.
        stride, dilation: an int or a 1-tuple.
        padding: an int, a 1-tuple, ``'valid'`` (none) or ``'same'`` (output length = input length;
            stride 1 only).
        groups: split the channels into this many independent groups.

    Shape:
        Output :math:`(N, C_{out}, L_{out})`,
        :math:`L_{out} = \lfloor (L + 2p - d(kW - 1) - 1) / s \rfloor + 1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv1d(tracenn.arange(5.).reshape(1, 1, 5), tracenn.ones(1, 1, 2))
    tensor([[[1., 3., 5., 7.]]])
    """
    return _conv("conv1d()", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups=1) -> Tensor:
    r"""2-D convolution (cross-correlation) over an input of shape :math:`(N, C_{in}, H, W)`.

    Args:
        input: :math:`(N, C_{in}, H, W)` or unbatched :math:`(C_{in}, H, W)`.
        weight: :math:`(C_{out}, C_{in}/\text{groups}, kH, kW)`.
        bias: optional :math:`(C_{out})`.
        stride, dilation: an int or a pair.
        padding: an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only; an even total padding
            puts the extra row/column at the end, as torch does).
        groups: split the channels into this many independent groups.

    Shape:
        Output :math:`(N, C_{out}, H_{out}, W_{out})`,
        :math:`H_{out} = \lfloor (H + 2p - d(kH - 1) - 1) / s \rfloor + 1` (likewise :math:`W`).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv2d(tracenn.ones(1, 1, 3, 3), tracenn.ones(1, 1, 2, 2), padding=1)[0, 0]
    tensor([[1., 2., 2., 1.],
            [2., 4., 4., 2.],
            [2., 4., 4., 2.],
            [1., 2., 2., 1.]])
    """
    return _conv("conv2d()", 2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0, dilation=1,
           groups=1) -> Tensor:
    r"""3-D convolution (cross-correlation) over an input of shape :math:`(N, C_{in}, D, H, W)`.

    Args:
        input: :math:`(N, C_{in}, D, H, W)` or unbatched :math:`(C_{in}, D, H, W)`.
        weight: :math:`(C_{out}, C_{in}/\text{groups}, kD, kH, kW)`.
        bias, stride, padding, dilation, groups: as :func:`conv2d`, with triples.

    Shape:
        Output :math:`(N, C_{out}, D_{out}, H_{out}, W_{out})`, each size as in :func:`conv2d`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv3d(tracenn.ones(1, 1, 2, 2, 2), tracenn.ones(1, 1, 2, 2, 2)).flatten()
    tensor([8.])
    """
    return _conv("conv3d()", 3, input, weight, bias, stride, padding, dilation, groups)


# ---- transposed convolution ---------------------------------------------------------------------

def _conv_transpose(who, nd, input, weight, bias, stride, padding, output_padding, groups, dilation):
    if isinstance(padding, str):
        raise TypeError(f"{_who(who)}: argument 'padding' must be an int or a tuple of ints, not str "
                        f"(transposed convolutions have no 'same'/'valid' padding)")
    x, unbatched = _batched(who, input, nd)
    if weight.ndim != nd + 2:
        raise ShapeError(f"{_who(who)}: expected a {nd + 2}D weight (in_channels, out_channels/groups, *kernel), "
                         f"got weight of shape {tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ShapeError(f"{_who(who)}: groups must be a positive integer, got groups={groups!r}")
    if weight.shape[0] % groups:
        raise ShapeError(f"{_who(who)}: Given groups={groups}, expected weight to be divisible by {groups} at "
                         f"dimension 0, but got weight of size {list(weight.shape)}")
    if x.shape[1] != weight.shape[0]:
        raise ShapeError(f"{_who(who)}: expected input with {weight.shape[0]} channels in dim "
                         f"{0 if unbatched else 1}, got input of shape {tuple(input.shape)}")
    _check_same_dtype(who, input, weight)
    k = tuple(weight.shape[2:])
    st = _ntuple(stride, nd, "stride", who)
    pd = _ntuple(padding, nd, "padding", who)
    op = _ntuple(output_padding, nd, "output_padding", who)
    dl = _ntuple(dilation, nd, "dilation", who)
    if any(v < 1 for v in st + dl) or any(v < 0 for v in pd + op):
        raise ShapeError(f"{_who(who)}: stride and dilation must be positive and padding/output_padding "
                         f"non-negative, got stride={st}, padding={pd}, output_padding={op}, dilation={dl}")
    if any(o >= s and o >= d for o, s, d in zip(op, st, dl)):
        raise ShapeError(f"{_who(who)}: output padding must be smaller than either stride or dilation, but got "
                         f"output_padding={op}, stride={st}, dilation={dl}")
    sp = tuple(x.shape[2:])
    out = tuple((n - 1) * s - 2 * p + d * (kk - 1) + o + 1 for n, s, p, d, kk, o in zip(sp, st, pd, dl, k, op))
    if any(o < 1 for o in out):
        raise ShapeError(f"{_who(who)}: Given input size per channel: {_sizes(sp)}. Calculated output size per "
                         f"channel: {_sizes(out)}. Output size is too small; reduce padding={pd}")
    y = _apply(_CONV_T, (x, weight), (st, pd, op, dl, groups))
    if bias is not None:
        if _dispatch.AUTOCAST[0] is not None and bias._value.dtype != y._value.dtype:
            bias = bias.to(y.dtype)  # (torch's autocast casts the bias too: the output stays low precision)
        y = y + bias.reshape((1, -1) + (1,) * nd)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1) -> Tensor:
    r"""1-D transposed convolution ("deconvolution"): the gradient of :func:`conv1d` w.r.t. its input.

    Args:
        input: :math:`(N, C_{in}, L)` or unbatched :math:`(C_{in}, L)`.
        weight: :math:`(C_{in}, C_{out}/\text{groups}, kW)` (note: in-channels first).
        bias: optional :math:`(C_{out})`.
        stride, padding, dilation: as the convolution this transposes.
        output_padding: extra size added to one side of the output (smaller than stride or dilation).
        groups: split the channels into this many independent groups.

    Shape:
        Output :math:`L_{out} = (L - 1) s - 2p + d(kW - 1) + \text{output\_padding} + 1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv_transpose1d(tracenn.tensor([[[1., 2.]]]), tracenn.ones(1, 1, 2), stride=2)
    tensor([[[1., 1., 2., 2.]]])
    """
    return _conv_transpose("conv_transpose1d()", 1, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1) -> Tensor:
    r"""2-D transposed convolution: the gradient of :func:`conv2d` w.r.t. its input.

    Args:
        input: :math:`(N, C_{in}, H, W)` or unbatched :math:`(C_{in}, H, W)`.
        weight: :math:`(C_{in}, C_{out}/\text{groups}, kH, kW)`.
        bias, stride, padding, output_padding, groups, dilation: as :func:`conv_transpose1d`, with pairs.

    Shape:
        Output :math:`H_{out} = (H - 1) s - 2p + d(kH - 1) + \text{output\_padding} + 1` (likewise W).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv_transpose2d(tracenn.ones(1, 1, 2, 2), tracenn.ones(1, 1, 2, 2))[0, 0]
    tensor([[1., 2., 1.],
            [2., 4., 2.],
            [1., 2., 1.]])
    """
    return _conv_transpose("conv_transpose2d()", 2, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
                     output_padding=0, groups=1, dilation=1) -> Tensor:
    r"""3-D transposed convolution: the gradient of :func:`conv3d` w.r.t. its input.

    Args:
        input: :math:`(N, C_{in}, D, H, W)` or unbatched :math:`(C_{in}, D, H, W)`.
        weight: :math:`(C_{in}, C_{out}/\text{groups}, kD, kH, kW)`.
        bias, stride, padding, output_padding, groups, dilation: as :func:`conv_transpose1d`, with triples.

    Shape:
        Each output size as in :func:`conv_transpose2d`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.conv_transpose3d(tracenn.ones(1, 1, 1, 1, 1), tracenn.ones(1, 2, 1, 2, 2)).shape
    tracenn.Size([1, 2, 1, 2, 2])
    """
    return _conv_transpose("conv_transpose3d()", 3, input, weight, bias, stride, padding, output_padding,
                           groups, dilation)


# ---- unfold / fold (im2col / col2im) ------------------------------------------------------------

def _window_tables(outs, kernel, stride, dilation):
    """Per windowed dim, the (out, kernel) table of input positions a sliding window reads."""
    return [np.arange(o)[:, None] * s + np.arange(k)[None, :] * d
            for o, k, s, d in zip(outs, kernel, stride, dilation)]


def _gather_windows(x: Tensor, tables, key) -> Tensor:
    """x[..., t1, t2, ...] for (out_i, k_i) index tables over the trailing dims.

    Result shape: leading dims + (out_1, k_1, out_2, k_2, ...). One gather per windowed dim.
    """
    lead = x.ndim - len(tables)
    for i, tab in enumerate(tables):
        axis = lead + 2 * i
        idx = _const(("windows", key, i), x, lambda tab=tab: tab.reshape(-1).astype(np.int64))
        x = _apply(_INDEX_SELECT, (x, idx), (axis,))
        x = x.reshape(tuple(x.shape[:axis]) + tab.shape + tuple(x.shape[axis + 1:]))
    return x


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    r"""Extract sliding local blocks (im2col): each column holds one block, channel-major.

    Args:
        input: :math:`(N, C, H, W)` or unbatched :math:`(C, H, W)`.
        kernel_size, dilation, padding, stride: ints or pairs, as a convolution's.

    Shape:
        Output :math:`(N, C \cdot kH \cdot kW, L)` where :math:`L` is the number of blocks
        (:math:`H_{out} \cdot W_{out}`, each as a convolution's output size).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.unfold(tracenn.arange(9.).reshape(1, 1, 3, 3), kernel_size=2)
    tensor([[[0., 1., 3., 4.],
             [1., 2., 4., 5.],
             [3., 4., 6., 7.],
             [4., 5., 7., 8.]]])
    """
    return _unfold("unfold()", input, kernel_size, dilation, padding, stride)


def _unfold(who, input, kernel_size, dilation, padding, stride):
    if input.ndim not in (3, 4):
        raise ShapeError(f"{_who(who)}: expected 3D (unbatched) or 4D (batched) input, but got input of size: "
                         f"{list(input.shape)} (only 2-D spatial blocks are supported, as in torch)")
    x, unbatched = _batched(who, input, 2, empty_ok=False)
    k = _ntuple(kernel_size, 2, "kernel_size", who)
    d = _ntuple(dilation, 2, "dilation", who)
    p = _ntuple(padding, 2, "padding", who)
    s = _ntuple(stride, 2, "stride", who)
    if any(v < 1 for v in k + d + s) or any(v < 0 for v in p):
        raise ShapeError(f"{_who(who)}: kernel_size, dilation and stride must be positive and padding non-negative, "
                         f"got kernel_size={k}, dilation={d}, padding={p}, stride={s}")
    sp = tuple(x.shape[2:])
    outs = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1 for n, kk, dd, pp, ss in zip(sp, k, d, p, s))
    if any(o < 1 for o in outs):
        raise ShapeError(f"{_who(who)}: Given input with spatial size {sp}, kernel_size={k}, dilation={d}, padding={p}, "
                         f"calculated shape of the array of sliding blocks as {outs}, but its components must be "
                         f"at least one; use a smaller kernel_size or dilation, or more padding")
    if any(p):
        from ._vision import _pad
        x = _pad(who, x, (p[1], p[1], p[0], p[0]))
    cols = _gather_windows(x, _window_tables(outs, k, s, d), (outs, k, s, d))  # (N, C, Oh, kh, Ow, kw)
    n, c = x.shape[0], x.shape[1]
    cols = cols.permute(0, 1, 3, 5, 2, 4).reshape(n, c * k[0] * k[1], outs[0] * outs[1])
    return cols.squeeze(0) if unbatched else cols


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    r"""Combine sliding local blocks into a tensor (col2im), summing where blocks overlap.

    The inverse arrangement of :func:`unfold`: ``fold(unfold(x))`` multiplies each element of ``x``
    by the number of blocks that cover it.

    Args:
        input: :math:`(N, C \cdot kH \cdot kW, L)` or unbatched :math:`(C \cdot kH \cdot kW, L)`.
        output_size: the spatial size :math:`(H, W)` of the result (int or pair).
        kernel_size, dilation, padding, stride: ints or pairs, as for :func:`unfold`.

    Shape:
        Output :math:`(N, C, H, W)`; :math:`L` must equal the number of blocks that fit.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.fold(tracenn.ones(1, 4, 4), output_size=3, kernel_size=2)
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])
    """
    return _fold("fold()", input, output_size, kernel_size, dilation, padding, stride)


def _fold(who, input, output_size, kernel_size, dilation, padding, stride):
    if input.ndim not in (2, 3) or any(sz == 0 for sz in input.shape[-2:]):
        raise ShapeError(f"{_who(who)}: expected 2D (unbatched) or 3D (batched) input with non-zero sizes, but got "
                         f"input of size: {list(input.shape)}")
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    osz = _ntuple(output_size, 2, "output_size", who)
    k = _ntuple(kernel_size, 2, "kernel_size", who)
    d = _ntuple(dilation, 2, "dilation", who)
    p = _ntuple(padding, 2, "padding", who)
    s = _ntuple(stride, 2, "stride", who)
    kk = k[0] * k[1]
    if x.shape[1] % kk:
        raise ShapeError(f"{_who(who)}: Expected size of input's dimension {1 - unbatched} to be divisible by the product "
                         f"of kernel_size, but got input.size({1 - unbatched})={x.shape[1]} and kernel_size={k}")
    blocks = tuple((n + 2 * pp - dd * (kq - 1) - 1) // ss + 1 for n, kq, dd, pp, ss in zip(osz, k, d, p, s))
    if any(b < 1 for b in blocks) or x.shape[2] != blocks[0] * blocks[1]:
        raise ShapeError(f"{_who(who)}: Given output_size={osz}, kernel_size={k}, dilation={d}, padding={p}, stride={s}, "
                         f"expected size of input's dimension {2 - unbatched} to match the calculated number of "
                         f"sliding blocks {blocks[0]} * {blocks[1]} = {blocks[0] * blocks[1]}, but got "
                         f"input.size({2 - unbatched})={x.shape[2]}")
    n, c = x.shape[0], x.shape[1] // kk
    hp, wp = osz[0] + 2 * p[0], osz[1] + 2 * p[1]

    def positions():
        th, tw = _window_tables(blocks, k, s, d)  # (Oh, kh), (Ow, kw)
        flat = th.T[:, None, :, None] * wp + tw.T[None, :, None, :]  # (kh, kw, Oh, Ow)
        return flat.reshape(-1).astype(np.int64)

    idx = _const(("fold", osz, k, d, p, s), x, positions)
    out = x.new_zeros((n, c, hp * wp))
    out = _apply(_INDEX_ADD, (out, idx, x.reshape(n, c, -1), 1), (2,)).reshape(n, c, hp, wp)
    if any(p):
        out = out[:, :, p[0]:p[0] + osz[0], p[1]:p[1] + osz[1]].contiguous()
    return out.squeeze(0) if unbatched else out
