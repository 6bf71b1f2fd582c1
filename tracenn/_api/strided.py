"""Explicit strides: ``as_strided`` (and ``_copy``/``_scatter``), ``empty_strided``, ``empty_permuted``.

tracenn has no raw memory (JAX arrays are values), so a view with arbitrary strides cannot alias
its input the way torch's does. What is well defined is *which elements* it reads: position
``storage_offset + sum(i_k * stride_k)`` of the storage the input views. So:

- ``as_strided_copy`` and ``as_strided_scatter`` are exact (they make new tensors in torch too).
- ``as_strided`` returns those same elements as a new tensor (values and gradients are torch's),
  which is *read-only*: an in-place write to it (or to a view of it) raises, because torch's would
  write through to the input and tracenn's cannot. Use ``as_strided_scatter`` to write.
- ``as_strided_`` raises (it would re-stride a tensor in place).
- ``empty_strided``/``empty_permuted`` make a tensor whose ``stride()`` is the one asked for when
  that layout is a permutation of a dense one, possibly broadcast (stride 0): a view of a new
  storage, as torch's. Strides with gaps raise. The values are zeros (torch leaves them uninitialised).
"""
from __future__ import annotations

import numpy as np

from .. import _dispatch
from ..ops import OPS
from ..tensor import Tensor
from ._common import shape_arg, tensor_arg

__all__ = ["as_strided", "as_strided_", "as_strided_copy", "as_strided_scatter", "empty_strided", "empty_permuted"]


def _check_geometry(size, stride, offset, name="as_strided"):
    size, stride = shape_arg((size,)), shape_arg((stride,))
    if len(size) != len(stride):
        raise RuntimeError(f"mismatch in length of strides and shape ({len(stride)} strides for {len(size)} sizes)")
    if any(s < 0 for s in stride):
        raise RuntimeError(f"{name}: Negative strides are not supported at the moment, got strides: {list(stride)}")
    if any(s < 0 for s in size):
        raise RuntimeError(f"Trying to create tensor with negative dimension {min(size)}: {list(size)}")
    if offset < 0:
        raise RuntimeError(f"Tensor: invalid storage offset {offset}")
    return size, stride


def _positions(size, stride, offset) -> np.ndarray:
    pos = np.full(size, offset, dtype=np.int64)
    for d, (n, s) in enumerate(zip(size, stride)):
        shape = [1] * len(size)
        shape[d] = n
        pos = pos + (np.arange(n, dtype=np.int64) * s).reshape(shape)
    return pos


def _storage(x: Tensor) -> Tensor:
    """The storage ``x`` views, as a 1-d tensor (the root's values in storage order), with autograd."""
    root = x if x._base is None else x._base
    t = root
    for name, key in root._layout_inv:
        t = _dispatch.apply(OPS[name], (t,), key)
    if not root._layout_inv and root._strides is not None and root.ndim > 1:
        # a root laid out by a memory format (channels_last): its dims in storage order, the
        # largest stride first (its strides are dense and non-overlapping)
        order = tuple(sorted(range(root.ndim), key=lambda d: -root._strides[d]))
        if order != tuple(range(root.ndim)):
            t = _dispatch.apply(OPS["permute"], (t,), (order,))
    from .shape import reshape
    flat = reshape(t, (-1,))
    return flat.detach() if x._detached else flat


def _gather(flat: Tensor, pos: np.ndarray) -> Tensor:
    from .creation import tensor
    from .index import take
    return take(flat, tensor(pos))


def as_strided_values(input, size, stride, storage_offset=None) -> Tensor:
    """The elements ``input.as_strided(size, stride, storage_offset)`` views, as a new tensor."""
    from .shape import _is_contiguous, reshape, strides_of
    from .storage import storage_offset as _offset_of
    own = _offset_of(input)
    offset = own if storage_offset is None else int(storage_offset)
    size, stride = _check_geometry(size, stride, offset)
    pos = _positions(size, stride, offset)
    if pos.size and _is_contiguous(tuple(input.shape), strides_of(input)) \
            and own <= pos.min() and pos.max() < own + input.numel():
        return _gather(reshape(input, (-1,)), pos - own)  # within input's own elements: grads go to input
    flat = _storage(input)
    if pos.size and pos.max() >= flat.numel():
        item = input.element_size()
        raise RuntimeError(
            f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and itemsize "
            f"{item} requiring a storage size of {(int(pos.max()) + 1) * item} are out of bounds for storage of "
            f"size {flat.numel() * item}")
    if not pos.size:
        from .creation import empty
        return empty(size, dtype=input.dtype, device=input.device)
    return _gather(flat, pos)


def as_strided(input, size, stride, storage_offset=None) -> Tensor:
    """The elements at ``storage_offset + sum(i * stride)`` of ``input``'s storage, shaped ``size``.

    Values and gradients are torch's; the result is a read-only copy, not an alias (see the module
    docstring): writing into it raises. ``as_strided_copy`` is the same values as a writable tensor.

    >>> import tracenn
    >>> tracenn.arange(5.).as_strided((3, 2), (1, 1))  # sliding windows
    tensor([[0., 1.],
            [1., 2.],
            [2., 3.]])
    """
    tensor_arg("as_strided", "input", 1, input)
    out = as_strided_values(input, size, stride, storage_offset)
    out._no_writes = ("this tensor is an as_strided result: tracenn computes it as a copy (JAX arrays cannot "
                      "alias with arbitrary strides), so an in-place write would not reach the input as torch's "
                      "does. Write with tracenn.as_strided_scatter(input, src, size, stride), or make a "
                      "writable copy with tracenn.as_strided_copy(...)")
    return out


def as_strided_copy(input, size, stride, storage_offset=None) -> Tensor:
    """``as_strided``'s elements as a new, writable tensor (exactly torch's ``as_strided_copy``)."""
    tensor_arg("as_strided_copy", "input", 1, input)
    return as_strided_values(input, size, stride, storage_offset)


def as_strided_(input, size, stride, storage_offset=None):
    raise RuntimeError("as_strided_ re-strides a tensor's memory in place, which tracenn cannot do (JAX arrays "
                       "are values, not memory). Use x = x.as_strided_copy(size, stride) (a new tensor), or "
                       "reshape/permute/expand views.")


def _dense_order(shape, strides):
    """The dims of a tensor from outermost to innermost if ``strides`` are a permutation of a dense
    layout of ``shape``; None if they are not."""
    order = sorted(range(len(shape)), key=lambda d: (-strides[d], -d))
    expect = 1
    for d in reversed(order):
        if shape[d] != 1 and strides[d] != expect:
            return None
        expect *= shape[d]
    return order


def as_strided_scatter(input, src, size, stride, storage_offset=None) -> Tensor:
    """A copy of ``input`` with ``src`` written where ``input.as_strided(size, stride, storage_offset)``
    would view (positions counted in ``input``'s own dense layout, as torch's clone keeps it).

    >>> import tracenn
    >>> tracenn.as_strided_scatter(tracenn.zeros(4), tracenn.ones(2), (2,), (2,), 1)
    tensor([0., 1., 0., 1.])
    """
    tensor_arg("as_strided_scatter", "input", 1, input)
    tensor_arg("as_strided_scatter", "src", 2, src)
    from .shape import permute, reshape, strides_of
    from .creation import tensor
    from .index import _broadcast_value
    offset = 0 if storage_offset is None else int(storage_offset)
    size, stride = _check_geometry(size, stride, offset, "as_strided_scatter")
    if tuple(src.shape) != size:
        raise RuntimeError(f"expected src to have a size equal to the slice of self. src size = {list(src.shape)}, "
                           f"slice size = {list(size)}")
    shape = tuple(input.shape)
    order = _dense_order(shape, strides_of(input))
    if order is None:
        raise RuntimeError("as_strided_scatter: tracenn needs an input whose layout is dense (a permutation of "
                           "a contiguous tensor, no gaps or overlaps); call .contiguous() on it first")
    flat = reshape(permute(input, order), (-1,))
    pos = _positions(size, stride, offset)
    if pos.size and pos.max() >= flat.numel():
        item = input.element_size()
        raise RuntimeError(f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {offset}, and "
                           f"itemsize {item} requiring a storage size of {(int(pos.max()) + 1) * item} are out of "
                           f"bounds for storage of size {flat.numel() * item}")
    from .index import index_put
    value = _broadcast_value(src, size, input._value.dtype)
    out = index_put(flat, (tensor(pos),), value)
    inverse = [order.index(d) for d in range(len(shape))]
    return permute(reshape(out, tuple(shape[d] for d in order)), inverse).contiguous()


def _strided_layout(size, stride, make):
    """A view with ``size`` and ``stride`` of a new storage made by ``make(shape)``."""
    from .shape import expand, permute
    size, stride = _check_geometry(size, stride, 0, "empty_strided")
    kept = [d for d in range(len(size)) if not (stride[d] == 0 and size[d] > 1)]  # stride 0: broadcast
    sub_shape = tuple(size[d] for d in kept)
    order = _dense_order(sub_shape, tuple(stride[d] for d in kept))
    if order is None:
        raise RuntimeError(
            f"empty_strided: tracenn makes a tensor with strides {list(stride)} for sizes {list(size)} only when "
            "they are a permutation of a dense layout (stride 0 for broadcast dims allowed); these leave gaps "
            "between elements, which a JAX array cannot. Use tracenn.empty(size) (contiguous) instead")
    t = make(tuple(sub_shape[d] for d in order))
    t = permute(t, [order.index(d) for d in range(len(kept))])
    if len(kept) != len(size):
        from .shape import reshape
        t = expand(reshape(t, tuple(size[d] if d in kept else 1 for d in range(len(size)))), size)
    return t


def empty_strided(size, stride, *, dtype=None, layout=None, device=None, requires_grad=False, pin_memory=False):
    """A tensor of ``size`` whose ``stride()`` is ``stride`` (zeros; see the module docstring).

    >>> import tracenn
    >>> tracenn.empty_strided((2, 3), (1, 2)).stride()
    (1, 2)
    """
    from .creation import empty
    t = _strided_layout(size, stride, lambda s: empty(s, dtype=dtype, device=device))
    return t.requires_grad_() if requires_grad else t


def empty_permuted(size, physical_layout, *, dtype=None, layout=None, device=None, requires_grad=False,
                   pin_memory=False):
    """A tensor of ``size`` laid out in memory in the dim order ``physical_layout`` (outermost first).

    >>> import tracenn
    >>> tracenn.empty_permuted((2, 3, 4), (0, 2, 1)).stride()
    (12, 1, 3)
    """
    from .creation import empty
    from .shape import permute
    size, order = shape_arg((size,)), tuple(physical_layout)
    if sorted(order) != list(range(len(size))):
        raise RuntimeError(f"Number of dimensions in size does not match the length of the physical_layout; "
                           f"physical_layout must be a permutation of the dims, got {list(order)} for {len(size)} dims"
                           if len(order) != len(size) else f"physical_layout must be a permutation, got {list(order)}")
    t = permute(empty(tuple(size[d] for d in order), dtype=dtype, device=device), [order.index(d) for d in
                                                                                 range(len(size))])
    return t.requires_grad_() if requires_grad else t


def new_empty_strided(self, size, stride, *, dtype=None, layout=None, device=None, requires_grad=False,
                      pin_memory=False):
    """``empty_strided`` with this tensor's dtype and device unless given."""
    return empty_strided(size, stride, dtype=dtype or self.dtype, device=device or self.device,
                         requires_grad=requires_grad)

