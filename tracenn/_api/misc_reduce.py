"""torch's nanmedian, mode, unravel_index, unique_consecutive and gradient.

nanmedian, mode, unravel_index and gradient are compositions of existing ops (eager, compiled and
differentiable like them; the values of nanmedian and mode are gathered at their indices, so the
gradient goes to the element the index names, as torch's). unique_consecutive's output size
depends on the values, so it runs on the host, like ``unique``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor, _wrap_dim
from ._common import numpy_names, shape_values
from .index import UNIQUE_FIX, _to_jnp
from .reduce import values_indices

__all__ = ["nanmedian", "mode", "unravel_index", "unique_consecutive", "gradient"]


def _t():
    import tracenn
    return tracenn


def _along_last(input, dim):
    """``input`` with ``dim`` moved last (0-d: one element), and the dim's index."""
    x = input.reshape(1) if input.ndim == 0 else input
    d = _wrap_dim(dim, x.ndim)
    return x.movedim(d, -1), d


def _finish(name, input, d, keepdim, values, indices):
    """Put a reduced last dim back at ``d`` (kept as size 1 with ``keepdim``)."""
    if input.ndim == 0:
        return values_indices[name](values.reshape(()), indices.reshape(()))
    values, indices = values.movedim(-1, d), indices.movedim(-1, d)
    if not keepdim:
        values, indices = values.squeeze(d), indices.squeeze(d)
    return values_indices[name](values, indices)


def nanmedian(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    """The lower median of the non-NaN values (NaN only where all are NaN); with ``dim`` ->
    (values, indices).

    >>> import tracenn as torch
    >>> torch.nanmedian(torch.tensor([1.0, float("nan"), 3.0, 2.0]))
    tensor(2.)
    """
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("nanmedian", dim, keepdim, axis, keepdims)
    if input.dtype == _dt.bool:
        raise NotImplementedError(f"\"{'median_cpu' if dim is None else 'median_out'}\" not implemented for 'Bool'")
    if dim is None:
        if input.numel() == 0:
            return _t().full((), float("nan"), dtype=input.dtype)
        return nanmedian(input.reshape(-1), 0).values
    x, d = _along_last(input, dim)
    if x.shape[-1] == 0:
        raise IndexError(f"median(): Expected reduction dim {d} to have non-zero size.")
    order = x.sort(-1).indices  # NaNs sort last
    count = (~_t().isnan(x)).sum(-1, keepdim=True)
    pos = _t().where(count > 0, (count - 1) // 2, (x.shape[-1] - 1) // 2)
    idx = order.gather(-1, pos)
    return _finish("nanmedian", input, d, keepdim, x.gather(-1, idx), idx)


def mode(input, dim=-1, keepdim=False, *, axis=None, keepdims=None):
    """The most frequent value along ``dim`` (the smallest of equally frequent ones) and the index
    of its last occurrence.

    >>> import tracenn as torch
    >>> torch.mode(torch.tensor([1, 2, 2, 3, 3]))
    tracenn.return_types.mode(
    values=tensor(2),
    indices=tensor(2))
    """
    if axis is not None or keepdims is not None:
        dim, keepdim = numpy_names("mode", dim, keepdim, axis, keepdims, -1)
    T = _t()
    x, d = _along_last(input, dim)
    n = x.shape[-1]
    if n == 0:
        raise IndexError(f"mode(): Expected reduction dim {d} to have non-zero size.")
    v = x.detach()
    counts = (v.unsqueeze(-1) == v.unsqueeze(-2)).sum(-1)
    frequent = counts == counts.amax(-1, keepdim=True)
    value = T.where(frequent, v, v.amax(-1, keepdim=True)).amin(-1, keepdim=True)
    positions = T.arange(n).expand(v.shape)
    idx = T.where(v == value, positions, T.full_like(positions, -1)).amax(-1, keepdim=True)
    return _finish("mode", input, d, keepdim, x.gather(-1, idx), idx)


def unravel_index(indices, shape):
    """The coordinates, one tensor per dim of ``shape``, of flat (row-major) ``indices``.

    >>> import tracenn as torch
    >>> torch.unravel_index(torch.tensor([5, 7]), (2, 4))
    (tensor([1, 1]), tensor([1, 3]))
    """
    T = _t()
    if isinstance(indices, numbers.Integral) and not isinstance(indices, bool):
        indices = T.tensor(int(indices))
    if not isinstance(indices, Tensor):
        raise TypeError(f"expected 'indices' to be a tensor, but got {type(indices).__name__}")
    if indices.is_floating_point() or indices.is_complex() or indices.dtype == _dt.bool:
        got = str(indices.dtype).replace("tracenn.", "torch.")
        raise TypeError(f"expected 'indices' to be integer dtype, but got {got}")
    shape = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
    if any(s < 0 for s in shape):
        raise ValueError("'shape' cannot have negative values, but got " + str(shape))
    total = int(np.prod(shape))
    flat = indices.long() % total if total else indices.long()
    coords = []
    for s in reversed(shape):
        coords.append(flat % s)
        flat = flat // s
    return tuple(reversed(coords))


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):
    """Collapse each run of equal consecutive elements (slices along ``dim``) to one; optionally the
    run each element falls in (``return_inverse``) and each run's length (``return_counts``).

    >>> import tracenn as torch
    >>> torch.unique_consecutive(torch.tensor([1, 1, 2, 2, 3, 1, 1]), return_counts=True)
    (tensor([1, 2, 3, 1]), tensor([2, 2, 1, 2]))
    """
    a = shape_values(input, "torch.unique_consecutive (one entry for each run of equal values)", UNIQUE_FIX)
    if dim is None:
        flat = a.reshape(-1)
        starts = np.ones(flat.shape[0], dtype=bool)
        starts[1:] = flat[1:] != flat[:-1]
        out = flat[starts]
        inverse = (np.cumsum(starts) - 1).reshape(a.shape)
    else:
        d = _wrap_dim(dim, a.ndim)
        moved = np.moveaxis(a, d, 0).reshape(a.shape[d], -1)
        starts = np.ones(moved.shape[0], dtype=bool)
        starts[1:] = (moved[1:] != moved[:-1]).any(axis=1)
        out = np.take(a, np.nonzero(starts)[0], axis=d)
        inverse = np.cumsum(starts) - 1
    res = [Tensor._wrap(_to_jnp(out))]
    if return_inverse:
        res.append(Tensor._wrap(_to_jnp(inverse.astype(np.int64))))
    if return_counts:
        res.append(Tensor._wrap(_to_jnp(np.diff(np.append(np.nonzero(starts)[0], starts.shape[0])).astype(np.int64))))
    return res[0] if len(res) == 1 else tuple(res)


# ---- gradient ----------------------------------------------------------------------------------

def _spacings(spacing, dims, input, explicit_dim):
    """One entry per dim: a number (uniform spacing) or a 1-d coordinate tensor."""
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            if explicit_dim:
                raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar or it's spacing "
                                   f"and dim arguments to have the same length, but got a spacing argument of "
                                   f"length {len(spacing)} and a dim argument of length {len(dims)}.")
            raise RuntimeError(f"torch.gradient expected spacing to be unspecified, a scalar, or a list of length "
                               f"equal to 'self.dim() = {input.ndim}', since dim argument was not given, but got a "
                               f"list of length {len(spacing)}")
        out = []
        for s, d in zip(spacing, dims):
            if isinstance(s, Tensor) and s.ndim == 0:
                s = s.item()
            if isinstance(s, Tensor) and s.shape[0] != input.shape[d]:
                raise RuntimeError(f"torch.gradient expected each tensor to be on the same device and to have "
                                   f"the same size as input's dimension {d}")
            out.append(s)
        return out
    if isinstance(spacing, Tensor):
        spacing = spacing.item()
    return [spacing] * len(dims)


def _narrow(x, d, start, length):
    return x.narrow(d, start % x.shape[d] if start < 0 else start, length)


def _gradient_dim(f, d, h, edge_order):
    """numpy.gradient's second-order-accurate differences along ``d`` (``h``: number or coordinates)."""
    n = f.shape[d]

    def at(start, length=1):
        return _narrow(f, d, start, length)
    if isinstance(h, Tensor):
        h = h.to(f.dtype)
        shape = [1] * f.ndim
        shape[d] = -1
        dx = h.diff().reshape(shape)
        hd, hs = _narrow(dx, d, 0, n - 2), _narrow(dx, d, 1, n - 2)
        interior = (hd ** 2 * at(2, n - 2) + (hs ** 2 - hd ** 2) * at(1, n - 2) - hs ** 2 * at(0, n - 2)) \
            / (hs * hd * (hd + hs))
        d0, d1 = _narrow(dx, d, 0, 1), _narrow(dx, d, -1, 1)
        if edge_order == 1:
            first, last = (at(1) - at(0)) / d0, (at(-1) - at(-2)) / d1
        else:
            e1, e2 = d0, _narrow(dx, d, 1, 1)
            first = (-(2 * e1 + e2) / (e1 * (e1 + e2)) * at(0) + (e1 + e2) / (e1 * e2) * at(1)
                     - e1 / (e2 * (e1 + e2)) * at(2))
            e1, e2 = _narrow(dx, d, -2, 1), d1
            last = (e2 / (e1 * (e1 + e2)) * at(-3) - (e2 + e1) / (e1 * e2) * at(-2)
                    + (2 * e2 + e1) / (e2 * (e1 + e2)) * at(-1))
    else:
        interior = (at(2, n - 2) - at(0, n - 2)) / (2 * h)
        if edge_order == 1:
            first, last = (at(1) - at(0)) / h, (at(-1) - at(-2)) / h
        else:
            first = (-1.5 * at(0) + 2 * at(1) - 0.5 * at(2)) / h
            last = (0.5 * at(-3) - 2 * at(-2) + 1.5 * at(-1)) / h
    return _t().cat([first, interior, last], dim=d)


def gradient(input, *, spacing=1, dim=None, edge_order=1):
    """The derivative of ``input`` sampled on a grid, one tensor per dim (central differences
    inside, one-sided at the edges, accurate to ``edge_order`` there), as ``numpy.gradient``.

    >>> import tracenn as torch
    >>> torch.gradient(torch.tensor([1.0, 2.0, 4.0, 8.0]))
    (tensor([1.0000, 1.5000, 3.0000, 4.0000]),)
    """
    if edge_order not in (1, 2):
        raise RuntimeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    if dim is None:
        dims = list(range(input.ndim))
    elif isinstance(dim, numbers.Integral):
        dims = [_wrap_dim(dim, input.ndim)]
    else:
        dims = [_wrap_dim(x, input.ndim) for x in dim]
    for d in dims:
        if input.shape[d] < edge_order + 1:
            raise RuntimeError("torch.gradient expected each dimension size to be at least edge_order+1")
    if input.dtype in (_dt.bool, _dt.uint8):
        if input.dtype == _dt.uint8:
            raise RuntimeError("torch.gradient does not support uint8 input.")
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    f = input if input.is_floating_point() or input.is_complex() else input.to(_t().get_default_dtype())
    spacings = _spacings(spacing, dims, input, dim is not None)
    return tuple(_gradient_dim(f, d, h, edge_order) for d, h in zip(dims, spacings))
