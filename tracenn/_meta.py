"""The ``meta`` device: tensors with a shape and a dtype and no data (torch's meta tensors).

A meta tensor's ``_value`` is a :class:`MetaArray`. Ops on meta tensors run the op's shape rule
(``OpDef.shape``: ``jax.eval_shape`` of its JAX implementation, the same rule the compiler's tracer
uses) instead of its kernel, so ``empty(64, 784, device="meta") @ w_meta`` costs no memory and
gives a meta tensor of the right shape. Uses: shape inference, deferred initialisation of big
models (``with tracenn.device("meta"): model = Net()`` then ``model.to_empty(device="cpu")``),
and the torch.func ensembling recipe (a meta copy of a model as the structure for
``functional_call``).

Eager dispatch is the hot path: it looks here only once a meta tensor was ever made, or the default
device was set to meta (``_dispatch.META``, set by every new :class:`MetaArray`, by
:func:`set_default` and by ``Tensor.to("meta")``); until then the meta device costs one list read
per op.
"""
from __future__ import annotations

import functools

import jax
import numpy as np

from . import _dispatch

# Whether factory ops (an op with no tensor argument: full, arange, random draws) make meta tensors:
# 0 no; CONTEXT while the default device is meta (``with tracenn.device("meta")`` /
# ``set_default_device("meta")``); EXPLICIT while a factory called with ``device="meta"`` runs.
DEFAULT = [0]
EXPLICIT, CONTEXT = 1, 2

NO_DATA = "Cannot copy out of meta tensor; no data!"


class _MetaPlatform:
    """What a MetaArray gives as its JAX ``device``: ``device.from_jax`` maps it to ``meta``."""

    __slots__ = ()
    platform = "meta"
    id = -1

    def __repr__(self):
        return "MetaDevice"


META_DEVICE = _MetaPlatform()


class ShapedArray:
    """``ndim`` and ``size`` of an array-like that has only ``shape`` and ``dtype`` (a meta array, a
    compiled graph's Value), as a numpy or JAX array has them."""

    __slots__ = ()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


class MetaArray(ShapedArray):
    """A shape and a dtype where a JAX array would be: what a meta tensor holds. It answers the
    array attributes tensor code reads (``shape``, ``dtype``, ``ndim``, ``size``, ``device``)
    and refuses to give values.

    ``recipe``: for an array a factory made because the default device is meta, how to compute it,
    ``(op, key, input values)``, else None. It lets an in-place fill of a *real* tensor inside
    ``with tracenn.device("meta")`` (``nn.Linear(..., device="cpu")`` there runs
    ``init.kaiming_uniform_`` on a CPU weight: its random draw is a factory op) get its values
    as torch does (see :func:`materialize`)."""

    __slots__ = ("shape", "dtype", "recipe")
    device = META_DEVICE
    weak_type = False

    def __init__(self, shape, dtype, recipe=None):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.recipe = recipe
        _dispatch.META[0] = True

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def devices(self):
        return {META_DEVICE}

    def astype(self, dtype):
        return MetaArray(self.shape, dtype)

    def block_until_ready(self):
        return self

    def __repr__(self):
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"

    def __array__(self, dtype=None, copy=None):
        raise NotImplementedError(NO_DATA)

    def __jax_array__(self):
        raise RuntimeError(needs_values(self))

    @property
    def sharding(self):  # (what a compiled call reads first of its parameters and buffers)
        raise RuntimeError(needs_values(self))


def needs_values(v) -> str:
    from .dtypes import type_str
    return (f"a tensor on the meta device ({type_str(v.shape, v.dtype)}) reached a computation that needs its "
            "values (a compiled program, a JAX transform, backward): meta tensors have a shape and a dtype, no "
            "data. Give the module real tensors first (module.to_empty(device='cpu'), then load_state_dict or "
            "reset_parameters), or pass real parameters with tracenn.func.functional_call.")


def is_meta(v) -> bool:
    """Whether ``v`` (a tensor's ``_value``) is a meta array."""
    return type(v) is MetaArray


def meta_tensor(shape, dtype, requires_grad=False):
    """A new meta tensor (a leaf) of ``shape`` and ``dtype`` (a tracenn or numpy dtype)."""
    from .tensor import Tensor
    t = Tensor._wrap(MetaArray(shape, getattr(dtype, "np", dtype)))
    if requires_grad:
        t.requires_grad_()
    return t


def like(v) -> MetaArray:
    """A meta array with the shape and dtype of array ``v``."""
    return MetaArray(v.shape, v.dtype)


def set_default(flag) -> None:
    """Factory ops make meta tensors (``flag``: CONTEXT or True, EXPLICIT), or not (0)."""
    DEFAULT[0] = CONTEXT if flag is True else int(flag)
    if flag:
        _dispatch.META[0] = True


def materialize(v):
    """The values of meta array ``v`` that a factory made while the default device is meta, computed
    now (only while it still is: outside the block a meta tensor has no data, as in torch)."""
    if type(v) is not MetaArray:
        return v
    if v.recipe is None or DEFAULT[0] != CONTEXT:
        raise NotImplementedError(NO_DATA)
    op, key, vals = v.recipe
    return op.forward_kernel(key)(*[materialize(x) for x in vals])


def involved(op, key, args) -> bool:
    """Whether ``op`` on ``args`` runs on the meta device: a tensor argument is meta, there is no
    tensor argument (a factory op) while the default device is meta, or it is a move to meta."""
    if key and key[0] is META_DEVICE:  # (to_device)
        return True
    Tensor = _dispatch.Tensor
    any_tensor = False
    for a in args:
        if isinstance(a, Tensor):
            if type(a._value) is MetaArray:
                return True
            any_tensor = True
    return DEFAULT[0] and not any_tensor


def refuse(args) -> None:
    """A meta tensor given to an op inside tracenn.compile or a tracenn.func transform: say so (the
    program, or JAX's transform, needs values)."""
    Tensor = _dispatch.Tensor
    for a in args:
        if isinstance(a, Tensor) and type(a._value) is MetaArray:
            raise RuntimeError(needs_values(a._value))


def run(op, key, args, vals):
    """The meta outputs of ``op`` on ``args`` (``vals``: their values): MetaArray(s) of the shapes and
    dtypes the op's shape rule gives. A real tensor with data beside a meta one is refused as torch
    does, except a 0-d CPU tensor (a scalar) and CPU indices of an indexing op, as in torch."""
    if key and key[0] is META_DEVICE:  # x.to("meta")
        return like(vals[0])
    Tensor = _dispatch.Tensor
    expected = None
    for a, v in zip(args, vals):
        if isinstance(a, Tensor):
            if type(v) is MetaArray:
                dev = "meta"
            else:
                dev = str(a.device)
                if dev == "cpu" and (v.ndim == 0 or op.name in _INDEX_OPS and v.dtype.kind in "biu"):
                    continue
            if expected is None:
                expected = dev
            elif dev != expected:
                raise RuntimeError(f"Tensor on device {dev} is not on the expected device {expected}!")
    sig = tuple(_sig(v) for v in vals)
    try:
        avals = _out_avals(op, key, sig) if None not in sig else op.shape(*map(_abstract, vals), **op.params(key))
    except Exception as e:
        from ._dispatch import _broadcast_error
        _broadcast_error(e, vals)
        raise
    recipe = None
    if DEFAULT[0] == CONTEXT and op.nout == 1 and all(type(v) is not MetaArray or v.recipe is not None for v in vals):
        recipe = (op, key, tuple(vals))
    if isinstance(avals, (tuple, list)):
        return tuple(MetaArray(a.shape, a.dtype) for a in avals)
    return MetaArray(avals.shape, avals.dtype, recipe)


_INDEX_OPS = frozenset(("index", "index_put", "index_select", "gather", "scatter"))


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, np.generic)


def _abstract(v):
    return jax.ShapeDtypeStruct(v.shape, v.dtype, weak_type=getattr(v, "weak_type", False)) if _is_array(v) else v


def _sig(v):
    """A hashable key for input ``v`` of a shape rule (None: not hashable, so not cached)."""
    if _is_array(v):
        return ("a", tuple(v.shape), np.dtype(v.dtype), bool(getattr(v, "weak_type", False)))
    try:
        hash(v)
    except TypeError:
        return None
    return ("p", type(v), v)


@functools.lru_cache(maxsize=4096)
def _out_avals(op, key, sig):
    """Output ShapeDtypeStruct(s) of ``op`` for input signature ``sig`` (the op's shape rule)."""
    args = [jax.ShapeDtypeStruct(s[1], s[2], weak_type=s[3]) if s[0] == "a" else s[2] for s in sig]
    return op.shape(*args, **op.params(key))
