"""More of torch's tensor functions: trace, diff, kron, block_diag, diag_embed, rot90,
cartesian_prod, combinations, vander, cov, corrcoef, quantile/nanquantile, logcumsumexp,
searchsorted/bucketize and histc. Most are compositions of existing ops (so eager, compiled and
differentiable like them); logcumsumexp, searchsorted and histc are primitives (ops/scan.py)."""
from __future__ import annotations

import collections
import itertools

import numpy as np

from .. import _dispatch, dtypes as _dt
from .._dispatch import apply
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import float_np_dtype
from .math import _cast
from ..amp import float32_under_cpu_autocast

__all__ = ["trace", "diff", "kron", "block_diag", "diag_embed", "rot90", "cartesian_prod", "combinations",
           "vander", "cov", "corrcoef", "quantile", "nanquantile", "logcumsumexp", "searchsorted", "bucketize",
           "histc"]


def _t():
    import tracenn
    return tracenn


@float32_under_cpu_autocast
def trace(input):
    """The sum of the diagonal of a matrix."""
    if input.ndim != 2:
        raise RuntimeError(f"trace: expected a matrix, but got tensor with dim {input.ndim}")
    return input.diagonal().sum()


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The ``n``-th forward difference along ``dim`` (``!=`` for bool), after concatenating
    ``prepend`` and ``append``."""
    T = _t()
    if input.ndim == 0:
        raise RuntimeError("diff expects input to be at least one-dimensional")
    if prepend is not None or append is not None:
        parts = ([prepend] if prepend is not None else []) + [input] + ([append] if append is not None else [])
        parts = [p if p.ndim == input.ndim else p.expand(*input.shape[:-1], -1) for p in parts]
        input = T.cat(parts, dim=dim)
    d = _wrap_dim(dim, input.ndim)
    for _ in range(n):
        m = input.shape[d]
        hi, lo = input.narrow(d, 1, max(m - 1, 0)), input.narrow(d, 0, max(m - 1, 0))
        input = hi != lo if input.dtype == _dt.bool else hi - lo
    return input


def kron(input, other):
    """The Kronecker product: blocks ``input[i] * other``."""
    nd = max(input.ndim, other.ndim)
    a = input.reshape((1,) * (nd - input.ndim) + tuple(input.shape))
    b = other.reshape((1,) * (nd - other.ndim) + tuple(other.shape))
    # (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...) -> (a0 * b0, a1 * b1, ...)
    a2 = a.reshape(tuple(x for s in a.shape for x in (s, 1)))
    b2 = b.reshape(tuple(x for s in b.shape for x in (1, s)))
    return (a2 * b2).reshape(tuple(x * y for x, y in zip(a.shape, b.shape)))


def block_diag(*tensors):
    """The tensors (0-, 1- or 2-d) as blocks along the diagonal of one matrix, zeros elsewhere."""
    T = _t()
    mats = []
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t.ndim} dimensions")
        mats.append(t.reshape(1, 1) if t.ndim == 0 else t.reshape(1, -1) if t.ndim == 1 else t)
    if not mats:
        return T.empty(1, 0)
    dtype = mats[0].dtype
    for m in mats[1:]:
        dtype = T.promote_types(dtype, m.dtype)
    cols = sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        right = cols - left - m.shape[1]
        rows.append(T.nn.functional.pad(m.to(dtype), (left, right)))
        left += m.shape[1]
    return T.cat(rows, dim=0)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """Matrices (placed at ``dim1``, ``dim2`` of the result) with ``input``'s last dim on their
    ``offset`` diagonal."""
    T = _t()
    m, k = input.shape[-1], abs(offset)
    full = input.unsqueeze(-1) * T.eye(m, dtype=input.dtype, device=input.device)
    if offset > 0:  # entry i at (i, i + offset): columns shift right, a row of zeros below each
        full = T.nn.functional.pad(full, (k, 0, 0, k))
    elif offset < 0:  # entry i at (i + k, i)
        full = T.nn.functional.pad(full, (0, k, k, 0))
    nd = full.ndim
    d1, d2 = _wrap_dim(dim1, nd), _wrap_dim(dim2, nd)
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return T.movedim(full, (nd - 2, nd - 1), (d1, d2))


def rot90(input, k=1, dims=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``dims`` (from the first towards the second)."""
    T = _t()
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = _wrap_dim(dims[0], input.ndim), _wrap_dim(dims[1], input.ndim)
    if d0 == d1:
        raise RuntimeError(f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return T.flip(input, (d1,)).transpose(d0, d1)
    if k == 2:
        return T.flip(input, (d0, d1))
    if k == 3:
        return T.flip(input, (d0,)).transpose(d0, d1)
    return input.clone()


def cartesian_prod(*tensors):
    """All combinations of one element from each 1-d tensor, as rows."""
    T = _t()
    if len(tensors) == 1:
        return tensors[0]
    grids = T.meshgrid(*tensors, indexing="ij")
    return T.stack([g.reshape(-1) for g in grids], dim=1)


def combinations(input, r=2, with_replacement=False):
    """The length-``r`` combinations of a 1-d tensor's elements, as rows (itertools' order)."""
    T = _t()
    if input.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(input.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    n = input.shape[0]
    comb = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(comb(range(n), r)), np.int64).reshape(-1, r)
    if r == 0 or idx.size == 0:
        return T.empty(0, dtype=input.dtype)
    return input[T.tensor(idx)]


def vander(x, N=None, increasing=False):
    """Columns ``x ** k`` for k = N-1 .. 0 (0 .. N-1 with ``increasing``)."""
    T = _t()
    if x.ndim != 1:
        raise RuntimeError("x must be a one-dimensional tensor.")
    n = x.shape[0] if N is None else N
    if n < 0:
        raise RuntimeError("N must be non-negative.")
    powers = T.arange(n, device=x.device)
    if not increasing:
        powers = powers.flip(0)
    dtype = x.dtype if x.is_floating_point() else _dt.int64
    return x.to(dtype).unsqueeze(-1) ** powers.to(dtype)


def cov(input, *, correction=1, fweights=None, aweights=None):
    """The covariance matrix of the variables in the rows of ``input`` (observations in columns)."""
    T = _t()
    if input.ndim > 2:
        raise RuntimeError(f"cov(): expected input to have two or fewer dimensions but got an input with "
                           f"{input.ndim} dimensions")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    x = _cast(x, float_np_dtype(x._value.dtype))
    n = x.shape[1]
    w = None
    if fweights is not None:
        w = fweights.to(x.dtype)
    if aweights is not None:
        w = aweights.to(x.dtype) if w is None else w * aweights.to(x.dtype)
    if w is None:
        avg = x.mean(1, keepdim=True)
        norm = n - correction
        c = (x - avg) @ (x - avg).mT
    else:
        wsum = w.sum()
        avg = (x * w).sum(1, keepdim=True) / wsum
        norm = wsum - correction if aweights is None else wsum - correction * (w * aweights.to(x.dtype)).sum() / wsum
        c = ((x - avg) * w) @ (x - avg).mT
    c = c / (norm if isinstance(norm, Tensor) else max(norm, 0) if norm != 0 else 0.0)
    return c.squeeze() if input.ndim < 2 else c


def corrcoef(input):
    """Pearson correlation coefficients of the rows' variables (values clipped to [-1, 1])."""
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = c.diagonal()
    stddev = d.sqrt()
    return (c / stddev.unsqueeze(1) / stddev.unsqueeze(0)).clamp(-1, 1)


def _quantile(input, q, dim, keepdim, interpolation, ignore_nan, name):
    T = _t()
    if not input.is_floating_point():
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    scalar_q = not isinstance(q, Tensor)
    qt = T.tensor(q, dtype=input.dtype) if scalar_q else q.to(input.dtype)
    if qt.ndim > 1:
        raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
    if not _dispatch.abstract(qt._value):  # (a traced q cannot be read)
        qv = np.asarray(qt.detach()._value, np.float64).reshape(-1)
        bad = qv[(qv < 0) | (qv > 1)]
        if bad.size:
            raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {bad[0]}")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest. "
                           f"Got {interpolation}")
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _wrap_dim(dim, input.ndim)
    x = T.movedim(x, d, -1)
    srt = x.sort(dim=-1).values  # NaNs sort last
    n = x.shape[-1]
    if ignore_nan:
        count = (~x.isnan()).sum(-1, keepdim=True).to(input.dtype)
    else:
        count = T.full(tuple(x.shape[:-1]) + (1,), float(n), dtype=input.dtype)
    qs = qt.reshape(-1)
    rank = qs * (count - 1)  # (..., len(q))
    lo = rank.floor()
    hi = rank.ceil()
    if interpolation == "lower":
        pos_lo = pos_hi = lo
    elif interpolation == "higher":
        pos_lo = pos_hi = hi
    elif interpolation == "nearest":
        pos_lo = pos_hi = rank.round()
    else:
        pos_lo, pos_hi = lo, hi
    max_idx = (count - 1).clamp(min=0)
    i_lo = pos_lo.clamp(min=0).minimum(max_idx).long()
    i_hi = pos_hi.clamp(min=0).minimum(max_idx).long()
    v_lo, v_hi = srt.gather(-1, i_lo), srt.gather(-1, i_hi)
    if interpolation == "linear":
        out = v_lo + (v_hi - v_lo) * (rank - lo)
    elif interpolation == "midpoint":
        out = (v_lo + v_hi) / 2
    else:
        out = v_lo
    if not ignore_nan:
        out = T.where(x.isnan().any(-1, keepdim=True), float("nan"), out)
    else:
        out = T.where(count == 0, float("nan"), out)
    out = T.movedim(out, -1, 0)  # (len(q), ...)
    if keepdim:
        out = out.unsqueeze(d + 1) if dim is not None else out.reshape((out.shape[0],) + (1,) * input.ndim)
    return out.squeeze(0) if scalar_q or qt.ndim == 0 else out


@float32_under_cpu_autocast
def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """The ``q``-th quantiles (a number or a 1-d tensor of them) along ``dim`` (or of all values);
    NaN where the slice has a NaN."""
    return _quantile(input, q, dim, keepdim, interpolation, False, "quantile")


@float32_under_cpu_autocast
def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear"):
    """:func:`quantile` ignoring NaNs (NaN only where a slice is all NaN)."""
    return _quantile(input, q, dim, keepdim, interpolation, True, "nanquantile")


def logcumsumexp(input, dim):
    """``log(cumsum(exp(input)))`` along ``dim``, without overflow."""
    x = _cast(input, float_np_dtype(input._value.dtype))
    return apply(OPS["logcumsumexp"], (x,), (_wrap_dim(dim, max(x.ndim, 1)) if x.ndim else 0,))


def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None, sorter=None):
    """Where each value of ``input`` would go in ``sorted_sequence`` (its last dim) to keep it
    sorted: the first such index, or the last with ``right=True`` / ``side="right"``."""
    T = _t()
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"side can only be 'left' or 'right' but got {side}")
        if right and side == "left":
            raise RuntimeError("side and right can't be set to opposites, got side of left while right was True")
        right = side == "right"
    scalar = not isinstance(input, Tensor)
    values = T.tensor(input, dtype=sorted_sequence.dtype) if scalar else input
    if sorter is not None:
        sorted_sequence = sorted_sequence.gather(-1, sorter)
    if sorted_sequence.ndim > 1 and tuple(sorted_sequence.shape[:-1]) != tuple(values.shape[:-1]):
        raise RuntimeError("torch.searchsorted(): boundaries tensor should be 1 dimension or the first N-1 "
                           "dimensions of boundaries tensor and input value tensor must match, but we got "
                           f"boundaries tensor {list(sorted_sequence.shape)} and input value tensor {list(values.shape)}")
    dt = T.result_type(sorted_sequence, values)
    dtype = np.dtype(np.int32 if out_int32 else np.int64)
    return apply(OPS["searchsorted"], (sorted_sequence.to(dt), values.to(dt)), (bool(right), dtype))


def bucketize(input, boundaries, *, out_int32=False, right=False):
    """The bucket of each value: ``boundaries[i-1] < x <= boundaries[i]`` (``right=True``:
    ``boundaries[i-1] <= x < boundaries[i]``)."""
    if boundaries.ndim != 1:
        raise RuntimeError(f"boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})")
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


def histc(input, bins=100, min=0, max=0):  # noqa: A002 (torch's names)
    """Counts of the values in ``bins`` equal bins between ``min`` and ``max`` (both 0: the data's
    own range); values outside are ignored."""
    if not input.is_floating_point():
        raise RuntimeError(f"\"histogram_cpu\" not implemented for '{str(input.dtype).split('.')[-1].capitalize()}'")
    lo, hi = float(min), float(max)
    if lo == hi == 0 and input.numel() and _dispatch.abstract(input._value):
        # compiled (or vmapped): the data's range is computed in the program, widened as below when flat
        from .math import where
        lo, hi = input.detach().min(), input.detach().max()
        flat = lo == hi
        return apply(OPS["histc"], (input, where(flat, lo - 1, lo), where(flat, hi + 1, hi)), (int(bins),))
    if lo == hi == 0 and input.numel():
        lo, hi = float(input.min()), float(input.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    if lo > hi:
        raise RuntimeError("torch.histc: max must be larger than min")
    return apply(OPS["histc"], (input, lo, hi), (int(bins),))


_histogram = collections.namedtuple("histogram", ["hist", "bin_edges"])


def _edges_of_range(input, n):
    """``n + 1`` equal bin edges over the data's own range, computed in the program (a compiled or
    vmapped ``input`` has no values to read), a flat range widened by 0.5 as torch."""
    from .creation import linspace
    from .math import where
    lo, hi = input.detach().min(), input.detach().max()
    flat = lo == hi
    return linspace(where(flat, lo - 0.5, lo), where(flat, hi + 0.5, hi), n + 1, dtype=input.dtype)


def histogram(input, bins, *, range=None, weight=None, density=False, out=None):  # noqa: A002 (torch's names)
    """``(hist, bin_edges)``: counts (or summed ``weight``s) of the values in ``bins`` equal bins
    over ``range`` (default: the data's own), or between given increasing ``bins`` edges. The
    last bin includes its right edge; values outside are ignored. ``density`` divides by the
    total and the bins' widths."""
    if out is not None:
        raise TypeError("histogram(out=...) is not supported: use the returned (hist, bin_edges)")
    if not input.is_floating_point():
        raise NotImplementedError(
            f"\"histogramdd\" not implemented for '{str(input.dtype).split('.')[-1].capitalize()}'")
    if isinstance(bins, Tensor):
        if bins.dim() != 1 or bins.shape[0] < 1:
            raise RuntimeError(f"torch.histogram(): bins must be a 1D tensor of edges, got shape {list(bins.shape)}")
        edges = _cast(bins, input._value.dtype)
    else:
        n = int(bins)
        if n <= 0:
            raise RuntimeError(f"torch.histogramdd(): bins must be > 0, but got {n} for dimension 0")
        if range is not None:
            lo, hi = float(range[0]), float(range[1])
        elif _dispatch.abstract(input._value) and input.numel():
            edges = _edges_of_range(input, n)  # compiled (or vmapped): the data's range, in the program
            lo = hi = None
        elif input.numel():
            lo, hi = float(input.min()), float(input.max())
        else:
            lo, hi = 0.0, 0.0
        if lo is not None and lo > hi:
            raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {lo:g} max {hi:g} "
                               "for dimension 0")
        if lo is not None and lo == hi:
            lo, hi = lo - 0.5, hi + 0.5  # (torch widens an empty range the same way)
        if lo is not None:
            edges = apply(OPS["linspace"], (), (lo, hi, n + 1, input.dtype.np))  # (torch's edges, to the bit)
    if weight is None:
        weight = apply(OPS["full"], (1,), (tuple(input.shape), input.dtype.np))
    hist = apply(OPS["histogram"], (input, edges, weight), ())
    if density:
        hist = hist / (hist.sum() * (edges[1:] - edges[:-1]))
    return _histogram(hist, edges)
