"""Storage-level Tensor methods: ``storage_offset``, ``data_ptr``, ``untyped_storage``, ``resize_``,
``resize_as_``.

tracenn has no raw memory. A root tensor (one that is not a view) owns its *storage*: its value
(JAX arrays are immutable, so in-place ops rebind it), read through the root's own layout steps
(``t_()``, ``unsqueeze_()``...). A view records the steps it took from that storage
(``Tensor._chain``), so its torch ``storage_offset`` is computed from those steps, exactly as torch
would have advanced a pointer. ``data_ptr()`` is an integer identity, not an address: the root's
``id()`` plus the view's offset in bytes, so views of one base (``x[1]``, ``x.t()``, ``x.detach()``,
``p.data``) report the base's storage as torch's do, and ``a.data_ptr() == b.data_ptr()`` tells a
tied or aliased tensor from a copy.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _dispatch
from ..errors import InplaceError, UnsupportedError
from ..ops import OPS
from ..ops.movement import apply_chain
from ..tensor import Tensor
from ._common import shape_arg
from .shape import _view_strides, contiguous_strides


def _storage_shape(root: Tensor) -> tuple:
    """The shape of a root's storage: its value's shape before its layout steps."""
    shape = tuple(root._value.shape)
    for name, key in root._layout_inv:
        if name == "reshape":
            shape = tuple(key[0])
        elif name == "permute":
            shape = tuple(shape[d] for d in key[0])
    return shape


def _storage_strides(root: Tensor, shape: tuple) -> tuple:
    """The strides of a root's storage of ``shape``: contiguous, or a memory format's
    (``x.contiguous(memory_format=tracenn.channels_last)``), read back through its layout steps."""
    if root._strides is None:
        return contiguous_strides(shape)
    cur, st = tuple(root._value.shape), root._strides
    for name, key in root._layout_inv:  # (reshapes and permutations: _step always answers)
        cur, st, _ = _step(name, key, cur, st, 0)
    return st


def _step(name, key, shape, st, off):
    """(shape, strides, offset) after view step ``(name, key)``, in units of the result's dtype;
    None for a step whose offset cannot be read from its key."""
    if name == "alias":
        return shape, st, off
    if name == "reshape":
        new = tuple(key[0])
        got = _view_strides(shape, st, new)
        return new, (got if got is not None else contiguous_strides(new)), off
    if name == "permute":
        return tuple(shape[d] for d in key[0]), tuple(st[d] for d in key[0]), off
    if name == "expand":
        new = tuple(key[0])
        lead = len(new) - len(shape)
        return new, (0,) * lead + tuple(0 if n == 1 and m != 1 else s
                                        for n, m, s in zip(shape, new[lead:], st)), off
    if name == "slice":
        out_shape, out_st, d = [], [], 0
        for e in key[0]:
            if e[0] == "n":
                out_shape.append(1)
                out_st.append(shape[d] * st[d] if d < len(shape) else 1)
            elif e[0] == "i":
                if len(e) < 2:
                    return None  # (a dynamic index: its value is not in the key)
                off += e[1] * st[d]
                d += 1
            else:
                n = shape[d]
                r = range(*slice(e[1], e[2], e[3]).indices(n))
                off += (r.start if len(r) else min(e[1] or 0, n)) * st[d]
                out_shape.append(len(r))
                out_st.append(st[d] * r.step)
                d += 1
        return tuple(out_shape) + shape[d:], tuple(out_st) + st[d:], off
    if name == "diagonal":
        k, d1, d2 = key
        off += k * st[d2] if k >= 0 else -k * st[d1]
        n = max(0, min(shape[d1] + min(k, 0), shape[d2] - max(k, 0)))
        keep = [i for i in range(len(shape)) if i not in (d1, d2)]
        return (tuple(shape[i] for i in keep) + (n,), tuple(st[i] for i in keep) + (st[d1] + st[d2],), off)
    if name in ("real", "imag"):  # complex elements to their float halves
        return shape, tuple(2 * s for s in st), 2 * off + (name == "imag")
    if name == "view_as_real":
        return shape + (2,), tuple(2 * s for s in st) + (1,), 2 * off
    if name == "view_as_complex":
        return shape[:-1], tuple(s // 2 for s in st[:-1]), off // 2
    return None


def storage_offset(self) -> int:
    """The offset of this tensor's first element in its base's storage, in elements (torch's).

    >>> import tracenn
    >>> x = tracenn.arange(12.).reshape(3, 4)
    >>> x[1].storage_offset(), x[:, 2:].storage_offset(), x.diagonal(1).storage_offset()
    (4, 2, 1)
    """
    root = self._base
    if root is None:
        return 0  # (a root's own layout steps are reshapes and permutations: its first element stays)
    shape = _storage_shape(root)
    st, off = _storage_strides(root, shape), 0
    for name, key in self._chain:
        got = _step(name, key, shape, st, off)
        if got is None:  # a step whose key does not say: find where the first element landed
            if self._value.size == 0:
                return 0
            first = _storage_shape(root)
            pos = apply_chain(np.arange(math.prod(first)).reshape(first), self._chain)  # (positions: metadata)
            return int(pos.reshape(-1)[0])
        shape, st, off = got
    return off


def data_ptr(self) -> int:
    """An integer identity of this tensor's first element: its base's ``id()`` (the storage) plus
    ``storage_offset() * element_size()``; 0 for a tensor with no elements, as torch's.

    It is not a memory address (JAX owns the memory); it is stable while the base lives, equal for
    aliases of the same elements and different for copies.
    """
    if self._value.size == 0:
        return 0
    root = self if self._base is None else self._base
    return id(root) + storage_offset(self) * self._value.dtype.itemsize


class UntypedStorage:
    """What ``Tensor.untyped_storage()`` returns: the identity and size of a base's storage (its
    bytes cannot be read or written directly in tracenn; go through a tensor)."""

    def __init__(self, root: Tensor):
        self._root = root

    def data_ptr(self) -> int:
        return 0 if self._root._value.size == 0 else id(self._root)

    def nbytes(self) -> int:
        return int(self._root._value.size) * self._root._value.dtype.itemsize

    size = nbytes
    __len__ = nbytes

    @property
    def device(self):
        return self._root.device

    def __repr__(self):
        return f"<tracenn.UntypedStorage of {self.nbytes()} bytes at {hex(self.data_ptr())}>"


def untyped_storage(self) -> UntypedStorage:
    """The storage this tensor views (its base's, for a view): ``x[1].untyped_storage().data_ptr()
    == x.untyped_storage().data_ptr()``."""
    return UntypedStorage(self if self._base is None else self._base)


def resize_(self, *sizes, memory_format=None) -> Tensor:
    """Give this tensor the shape ``sizes`` in place, reading its storage in order (torch's).

    Keeping the number of elements keeps the data (read in storage order from this tensor's first
    element, so a non-contiguous tensor is reinterpreted as torch's is); new elements are zeros
    (torch leaves them uninitialised). A view stays a view of its base while the base's storage
    holds the new size; a base that changes its number of elements gets new storage, and views
    taken of it before no longer follow it (take them again). Tensors that require grad cannot be
    resized, as in torch.

    >>> import tracenn
    >>> x = tracenn.arange(6.)
    >>> x.resize_(2, 2)
    tensor([[0., 1.],
            [2., 3.]])
    """
    if self._requires_grad:
        raise RuntimeError("cannot resize variables that require grad (resize a tensor.detach() "
                           "of it, or make a new tensor)")
    new = shape_arg(sizes)
    for s in new:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(new)}")
    if new == tuple(self._value.shape):
        return self
    if _dispatch.TRACE[0] is not None or _dispatch.FUNC[0] is not None:
        raise UnsupportedError("resize_ changes a tensor's shape, which a compiled program or a tracenn.func "
                               "transform cannot do; this call runs eagerly where it can.")
    n = math.prod(new)
    root = self if self._base is None else self._base
    shape = _storage_shape(root)
    storage = apply_chain(root._value, root._layout_inv).reshape(-1)
    start = storage_offset(self)
    if self._base is not None:
        if start + n > storage.size:
            raise InplaceError(
                f"resize_ would grow this view to {n} elements past the end of its base's storage "
                f"({storage.size} elements from offset {start}); tracenn cannot grow a base's storage "
                "through a view: resize the base, or resize a .clone() of the view")
        self._chain = (("reshape", ((storage.size,),)), ("slice", ((("s", start, start + n, 1),),)),
                       ("reshape", (new,)))
        self._value = storage[start:start + n].reshape(new)
        self._strides = None
        self._base_seen = root._ver + root._writes
        return self
    _dispatch.EPOCH[0] += 1  # the shape changed: compiled calls re-check
    if n == storage.size:  # the same storage, read as the new shape: views of it stay views
        self._value = storage.reshape(new)
        self._layout, self._layout_inv = (("reshape", (new,)),), (("reshape", (shape,)),)
    else:
        grown = storage[:n] if n <= storage.size else _dispatch.apply(  # (new elements: zeros)
            OPS["pad"], (Tensor._wrap(storage), 0), (((0, n - storage.size),), "constant"))._value
        self._value = grown.reshape(new)
        self._layout = self._layout_inv = ()
    self._strides = None
    return self


def resize_as_(self, the_template: Tensor, memory_format=None) -> Tensor:
    """``resize_(the_template.shape)``."""
    return resize_(self, the_template.shape)


def resize(self, *sizes) -> Tensor:
    """The deprecated non-inplace ``Tensor.resize``: torch's autograd form, which only reshapes
    (the number of elements must stay), and warns. Use ``reshape`` (or ``resize_`` in place).

    >>> import tracenn, warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     tracenn.arange(4.).resize(2, 2)
    tensor([[0., 1.],
            [2., 3.]])
    """
    import warnings
    warnings.warn("non-inplace resize is deprecated", stacklevel=2)
    return _resize_keeping_numel(self, shape_arg(sizes))


def resize_as(self, tensor: Tensor) -> Tensor:
    """The deprecated non-inplace ``Tensor.resize_as``: :func:`resize` to ``tensor``'s shape."""
    import warnings
    warnings.warn("non-inplace resize_as is deprecated", stacklevel=2)
    return _resize_keeping_numel(self, tuple(tensor.shape))


def _resize_keeping_numel(self, sizes) -> Tensor:
    n, have = math.prod(sizes), self.numel()
    if n != have:
        raise RuntimeError(
            f"requested resize to {'x'.join(str(s) for s in sizes)} ({n} elements in total), but the given tensor "
            f"has a size of {'x'.join(str(s) for s in self.shape)} ({have} elements). autograd's resize can only "
            "change the shape of a given tensor, while preserving the number of elements. ")
    return self.contiguous().view(sizes)
