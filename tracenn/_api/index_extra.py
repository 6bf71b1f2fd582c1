"""More indexed reads and writes, composed of existing ops (so eager, compiled and differentiable
like them): ``index_reduce``, ``put``, ``nonzero_static``, ``constant_pad_nd``, ``histogramdd`` and
``segment_reduce``."""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import _dispatch, dtypes as _dt
from .._dispatch import apply
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import host_values, shape_arg, tensor_arg, value_of
from .reduce import return_type

__all__ = ["index_reduce", "put", "nonzero_static", "constant_pad_nd", "histogramdd", "segment_reduce"]

_HISTOGRAMDD = return_type("histogramdd", ["hist", "bin_edges"])


def index_reduce(input, dim, index, source, reduce, *, include_self=True):
    """Reduce rows of ``source`` into ``input`` at ``index`` along ``dim`` with ``reduce``: one of
    ``"prod"``, ``"mean"``, ``"amax"``, ``"amin"`` (``include_self=False``: rows that receive a value
    forget their own).

    >>> import tracenn
    >>> x = tracenn.ones(3)
    >>> x.index_reduce(0, tracenn.tensor([0, 2, 0]), tracenn.tensor([2., 4., 6.]), "amax")
    tensor([6., 1., 4.])
    """
    tensor_arg("index_reduce", "input", 1, input)
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got {reduce}.")
    d = _wrap_dim(dim, builtins.max(input.ndim, 1))
    if index.ndim > 1:
        raise IndexError("index_reduce_(): Index is supposed to be a vector")
    if index.dtype.name not in ("int64", "int32"):
        raise IndexError(f"index_reduce_(): Expected dtype int32/int64 for index but got: {index.dtype}")
    if input.dtype != source.dtype:
        raise RuntimeError("index_reduce_(): self and source must have the same scalar type")
    n = index.numel()
    if source.ndim and source.shape[d if source.ndim > d else 0] != n:
        raise IndexError("index_reduce_(): Number of indices should be equal to source.size(dim)")
    from .index import _check_bounds, scatter_reduce
    from .shape import expand, reshape
    _check_bounds(index, input.shape[d] if input.ndim else 1, d, "index_reduce_(): index")
    if source.ndim == 0:
        return scatter_reduce(input, 0, reshape(index, (1,)), reshape(source, (1,)), reduce, include_self=include_self)
    lead = [1] * source.ndim
    lead[d] = n
    full = expand(reshape(index, tuple(lead)), tuple(source.shape))
    return scatter_reduce(input, d, full, source, reduce, include_self=include_self)


def put(input, index, source, accumulate=False):
    """A copy of ``input`` with ``source`` written at the flat positions ``index`` (as if ``input``
    were 1-d; negative positions count from the end); ``accumulate=True`` adds instead.

    >>> import tracenn
    >>> tracenn.zeros(2, 2).put(tracenn.tensor([0, -1]), tracenn.tensor([1., 2.]))
    tensor([[1., 0.],
            [0., 2.]])
    """
    tensor_arg("put", "input", 1, input)
    if index.dtype.name != "int64":
        raise RuntimeError(f"put_(): Expected a long tensor for index, but got {index.dtype}")
    if input.dtype != source.dtype:
        raise RuntimeError(f"put_(): self and source expected to have the same dtype, but got self.dtype = "
                           f"{input.dtype} and source.dtype = {source.dtype}")
    if index.numel() != source.numel():
        raise RuntimeError(f"put_(): Expected source and index to have the same number of elements, but got "
                           f"source.numel() = {source.numel()}, index.numel() = {index.numel()}")
    numel = input.numel()
    seen = host_values(index)
    if seen is not None and seen.size:
        bad = seen[(seen >= numel) | (seen < -numel)]
        if bad.size:
            raise IndexError(f"out of range: tried to access index {int(bad[0])} on a tensor of {numel} elements.")
    from .index import index_put
    from .math import remainder
    from .shape import reshape
    flat = reshape(input, (-1,))
    pos = remainder(reshape(index, (-1,)), builtins.max(numel, 1))
    return reshape(index_put(flat, (pos,), reshape(source, (-1,)), accumulate), tuple(input.shape))


def nonzero_static(input, *, size, fill_value=-1):
    """``nonzero(input)`` with exactly ``size`` rows: cut off after ``size``, padded with
    ``fill_value``. Its shape does not depend on the values, so it compiles.

    >>> import tracenn
    >>> tracenn.nonzero_static(tracenn.tensor([0, 3, 0, 5]), size=3)
    tensor([[ 1],
            [ 3],
            [-1]])
    """
    tensor_arg("nonzero_static", "input", 1, input)
    if not isinstance(size, int) or size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be an non-negative integer, got {size}")
    from .creation import arange, full
    from .index import argsort
    from .math import floor_divide, ne, remainder, where
    from .reduce import sum as _sum
    from .shape import cat, reshape, stack
    shape = tuple(input.shape)
    if not shape:  # (a 0-d input has no coordinates: rows of none)
        return full((size, 0), 0, dtype=_dt.int64)
    n = math.prod(shape)
    flat = reshape(input, (-1,))
    hit = ne(flat, 0)
    pos = arange(n)
    first = argsort(where(hit, pos, pos + n))  # (the non-zero positions first, in order)
    if size > n:
        first = cat([first, full((size - n,), 0, dtype=first.dtype)])
    first = first[:size]
    valid = arange(size) < _sum(hit)
    coords, step = [], n
    for s in shape:
        step //= s
        coords.append(remainder(floor_divide(first, builtins.max(step, 1)), s))
    out = stack(coords, 1)
    return where(reshape(valid, (size, 1)), out, fill_value)


def constant_pad_nd(input, pad, value=0):
    """Pad the last dims with ``value``: ``pad`` is ``(left, right)`` for the last dim, then the one
    before, ...; negative widths crop (torch's ``constant_pad_nd``, ``F.pad``'s constant mode).

    >>> import tracenn
    >>> tracenn.constant_pad_nd(tracenn.ones(1, 2), (1, 0), 7.0)
    tensor([[7., 1., 1.]])
    """
    tensor_arg("constant_pad_nd", "input", 1, input)
    pad = shape_arg((pad,))
    if len(pad) % 2:
        raise RuntimeError(f"Length of pad must be even but instead it equals {len(pad)}")
    if len(pad) // 2 > input.ndim:
        raise RuntimeError(f"Length of pad should be no more than twice the number of dimensions of the input. "
                           f"Pad length is {len(pad)} while the input has {input.ndim} dimensions.")
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    for d, (lo, hi) in enumerate(widths):
        if input.shape[d] + lo + hi < 0:
            raise RuntimeError(f"The input size {input.shape[d]}, plus negative padding {lo} and {hi} resulted in a "
                               f"negative output size, which is invalid. Check dimension {d} of your input.")
    return apply(OPS["pad"], (input, value), (tuple(widths), "constant"))


def histogramdd(input, bins, *, range=None, weight=None, density=False):  # noqa: A002 (torch's names)
    """``(hist, bin_edges)`` of the points in ``input`` (``(..., D)``: D coordinates a point): counts
    (or summed ``weight``) in a D-dimensional grid of bins. ``bins``: one int for all dims, an int
    a dim, or a 1-d tensor of edges a dim; ``range``: ``[lo0, hi0, lo1, hi1, ...]`` (default each
    dim's own). The last bin of each dim includes its right edge.

    >>> import tracenn
    >>> tracenn.histogramdd(tracenn.tensor([[0., 0.], [1., 1.], [1., 0.9]]), bins=2).hist
    tensor([[1., 0.],
            [0., 2.]])
    """
    from .creation import zeros
    from .index import scatter_add
    from .math import eq, ge, le, logical_and, where
    from .more import searchsorted
    from .shape import reshape
    if input.ndim < 2:
        raise RuntimeError("torch.histogramdd: input tensor should have at least 2 dimensions")
    if not input.is_floating_point():
        raise NotImplementedError(
            f"\"histogramdd\" not implemented for '{str(input.dtype).split('.')[-1].capitalize()}'")
    D = input.shape[-1]
    pts = reshape(input, (-1, D))
    if isinstance(bins, (int, np.integer)):
        bins = [int(bins)] * D
    bins = list(bins)
    if len(bins) != D:
        raise RuntimeError(f"torch.histogramdd: expected {D} sequences of bin edges for each of the {D} input "
                           f"dimensions, but got {len(bins)} bin sequences")
    if range is not None and len(range) != 2 * D:
        raise RuntimeError(f"torch.histogramdd: for a {D}-dimensional histogram range should have {2 * D} "
                           f"elements, but got {len(range)}")
    edges = []
    for d, b in enumerate(bins):
        if isinstance(b, Tensor):
            if b.ndim != 1 or b.shape[0] < 1:
                raise RuntimeError(f"torch.histogramdd: bins[{d}] must be a 1-d tensor of edges")
            edges.append(b.to(input.dtype))
            continue
        if int(b) <= 0:
            raise RuntimeError(f"torch.histogramdd(): bins must be > 0, but got {int(b)} for dimension {d}")
        if range is not None:
            lo, hi = float(range[2 * d]), float(range[2 * d + 1])
        elif _dispatch.abstract(input._value):
            raise RuntimeError("histogramdd without range reads the data's range, which a compiled or transformed "
                               "function cannot: pass range=[min0, max0, min1, max1, ...]")
        elif pts.shape[0]:
            lo, hi = float(pts[:, d].min()), float(pts[:, d].max())
        else:
            lo, hi = 0.0, 0.0
        if lo > hi:
            raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {lo:g} max {hi:g} for "
                               f"dimension {d}")
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        edges.append(apply(OPS["linspace"], (), (lo, hi, int(b) + 1, input.dtype.np)))
    counts = [e.shape[0] - 1 for e in edges]
    flat, valid = None, None
    for d, e in enumerate(edges):
        x = pts[:, d]
        last = builtins.max(counts[d] - 1, 0)
        i = where(eq(x, e[-1]), last, searchsorted(e, x, right=True) - 1)
        inside = logical_and(ge(x, e[0]), le(x, e[-1]))
        valid = inside if valid is None else logical_and(valid, inside)
        flat = i if flat is None else flat * counts[d] + i
    w = weight.reshape(-1).to(input.dtype) if weight is not None else zeros(pts.shape[0], dtype=input.dtype) + 1
    total = math.prod(counts)
    hist = zeros(total, dtype=input.dtype)
    if total and pts.shape[0]:
        hist = scatter_add(hist, 0, where(valid, flat, 0), where(valid, w, 0))
    hist = reshape(hist, tuple(counts))
    if density:
        vol = None
        for d, e in enumerate(edges):
            width = reshape(e[1:] - e[:-1], tuple(counts[d] if k == d else 1 for k in builtins.range(D)))
            vol = width if vol is None else vol * width
        hist = hist / (hist.sum() * vol)
    return _HISTOGRAMDD(hist, tuple(edges))


def segment_reduce(data, reduce, *, lengths=None, indices=None, offsets=None, axis=0, unsafe=False, initial=None):
    """Reduce consecutive segments of ``data`` along ``axis``: segment ``i`` is the next ``lengths[i]``
    entries (or ``offsets[i]:offsets[i + 1]``). ``reduce``: ``"sum"``, ``"mean"``, ``"max"``, ``"min"``,
    ``"prod"``; an empty segment gives ``initial`` if given, else 0, NaN, -inf, inf, 1. tracenn takes 1-d
    ``lengths``/``offsets``; in a compiled or transformed function they may be computed there (the
    output's length is theirs), but that they sum to ``data``'s length is not checked.

    >>> import tracenn
    >>> tracenn.segment_reduce(tracenn.tensor([1., 2., 3., 4., 5.]), "sum", lengths=tracenn.tensor([2, 0, 3]))
    tensor([ 3.,  0., 12.])
    """
    from .creation import arange, full, ones_like, tensor
    from .index import scatter_add, scatter_reduce
    from .math import clamp, div
    from .shape import expand, reshape
    tensor_arg("segment_reduce", "data", 1, data)
    kind = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin", "prod": "prod"}.get(reduce)
    if kind is None:
        raise RuntimeError(f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}")
    if indices is not None:
        raise RuntimeError("segment_reduce(): indices based reduction is not supported yet (as in torch); pass "
                           "lengths or offsets")
    given = lengths if lengths is not None else offsets
    if given is None:
        raise RuntimeError("segment_reduce(): Either lengths or offsets must be defined")
    if given.ndim != 1:
        raise NotImplementedError("segment_reduce: tracenn takes 1-d lengths or offsets (one set of segments for "
                                  "every row); reduce each row's segments separately")
    d = _wrap_dim(axis, data.ndim)
    seen = host_values(given)
    if seen is None:  # compiled or transformed: each entry's segment is computed in the program (unchecked)
        from .more import searchsorted
        from .reduce import cumsum
        ends = cumsum(given.long(), 0) if lengths is not None else given.long()[1:]
        seg, n_out = searchsorted(ends, arange(data.shape[d]), right=True), ends.shape[0]
    else:
        sizes = seen.astype(np.int64) if lengths is not None else np.diff(seen.astype(np.int64))
        if (sizes < 0).any() or int(sizes.sum()) != data.shape[d]:  # (unsafe=True: undefined in torch; checked)
            raise RuntimeError("segment_reduce(): Expected all rows of lengths along axis to sum to "
                               "data.size(lengths.dim()-1) when !unsafe.")
        seg, n_out = tensor(np.repeat(np.arange(len(sizes)), sizes)), len(sizes)
    lead = [1] * data.ndim
    lead[d] = data.shape[d]
    idx = expand(reshape(seg, tuple(lead)), tuple(data.shape))
    out_shape = tuple(n_out if k == d else n for k, n in enumerate(data.shape))
    if kind == "mean":
        total = scatter_add(full(out_shape, 0.0 if initial is None else initial, dtype=data.dtype), d, idx, data)
        count = scatter_add(full(out_shape, 0.0, dtype=data.dtype), d, idx, ones_like(data))
        return div(total, count) if initial is None else div(total, clamp(count, min=1))
    empty = {"sum": 0.0, "prod": 1.0, "amax": -math.inf, "amin": math.inf}[kind]
    base = full(out_shape, empty if initial is None else initial, dtype=data.dtype)
    return scatter_reduce(base, d, idx, data, kind, include_self=True)
