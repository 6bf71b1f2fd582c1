"""``tracenn.Tensor``: a small mutable handle around a ``jax.Array``.

State, in slots: ``_value`` (the array), ``_requires_grad``, ``_node``/``_out_idx`` (the op that made
it, its ``grad_fn``). Rarer state lives in the instance dict with class-level defaults, so making a
tensor on the hot path sets four slots and nothing else.

Views: a tensor made by a view op (indexing, view/reshape, transpose, detach, .data, ...) keeps its
root tensor in ``_base`` and the ``_chain`` of view steps from the root. In-place ops rebind the
handle; on a view they also write the new values back into the root (a ``view_scatter``), and a
view re-reads its root when the root's ``_version`` has moved on. That is torch's aliasing, built
from functional updates.

Most methods are attached from ``tracenn._api`` (one definition serves ``x.sum()`` and
``tracenn.sum(x)``).
"""
from __future__ import annotations

import numpy as np

from . import dtypes as _dt
from ._dispatch import apply
from .autograd.graph import AccumulateGrad
from .autograd.grad_mode import GRAD
from .errors import BackwardError, InplaceError, ShapeError, DtypeError
from .ops import OPS

_new = object.__new__
_VIEW_SCATTER = OPS["view_scatter"]
_ALIAS = OPS["alias"]


class Tensor:
    __slots__ = ("_value", "_requires_grad", "_node", "_out_idx", "__dict__", "__weakref__")

    # Defaults for the rarely-set state (instance dict when set).
    grad = None
    _base = None          # root tensor of a view
    _chain = ()           # view steps from the root: ((op name, static key), ...)
    _base_seen = 0        # the root's _version this view last read
    _detached = False     # a detach()/.data view: writes reach the root without autograd
    _strides = None       # torch strides of a view (None: contiguous)
    _version = 0          # bumped by every in-place change (views use their root's)
    _acc = None           # AccumulateGrad of a leaf
    _retains_grad = False

    # ---- construction -----------------------------------------------------------------------

    def __new__(cls, *args, **kwargs):
        return _new(cls)

    def __init__(self, *args, dtype=None, device=None):
        # torch.Tensor(data) / torch.Tensor(2, 3): legacy constructor, always the default float dtype.
        from ._api.creation import _to_array, empty
        if len(args) == 1 and not isinstance(args[0], int):
            self._value = _to_array(args[0], dtype or _dt.get_default_dtype(), device)
        else:
            self._value = empty(*args, dtype=dtype, device=device)._value
        self._requires_grad = False
        self._node = None
        self._out_idx = 0

    @staticmethod
    def _wrap(value, requires_grad=False, node=None, idx=0):
        t = _new(Tensor)
        t._value = value
        t._requires_grad = requires_grad
        t._node = node
        t._out_idx = idx
        return t

    # ---- basic attributes ---------------------------------------------------------------------

    @property
    def shape(self):
        from .size import Size
        return Size(self._value.shape)

    def size(self, dim=None):
        """The shape, or one dimension of it (negative ``dim`` counts from the end)."""
        from .size import Size
        if dim is None:
            return Size(self._value.shape)
        return self._value.shape[_wrap_dim(dim, self._value.ndim)]

    @property
    def dtype(self) -> _dt.dtype:
        return _dt.from_np(self._value.dtype)

    @property
    def ndim(self) -> int:
        return self._value.ndim

    def dim(self) -> int:
        return self._value.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._value.size)

    nelement = numel

    def element_size(self) -> int:
        return self._value.dtype.itemsize

    @property
    def itemsize(self) -> int:
        return self._value.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return int(self._value.size) * self._value.dtype.itemsize

    @property
    def device(self):
        from .device import from_jax
        v = self._value
        return from_jax(v.device if hasattr(v, "device") else next(iter(v.devices())))

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def is_cpu(self) -> bool:
        return self.device.type == "cpu"

    is_leaf = property(lambda self: self._node is None,
                       doc="True for tensors not made by a recorded op (user-created or no grad).")

    def is_floating_point(self) -> bool:
        return self.dtype.is_floating_point

    def is_complex(self) -> bool:
        return self.dtype.is_complex

    def __len__(self):
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._value.shape[0]

    def __hash__(self):
        return id(self)

    # ---- autograd ---------------------------------------------------------------------------

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        """Set whether autograd records ops on this leaf (in place; returns self)."""
        if self._node is not None:
            if not requires_grad:
                raise BackwardError(
                    "you can only change requires_grad flags of leaf variables. If you want to use a "
                    "computed variable in a subgraph that doesn't require differentiation use "
                    "var_no_grad = var.detach().")
            return self
        if requires_grad and not (self.dtype.is_floating_point or self.dtype.is_complex):
            raise BackwardError("only Tensors of floating point and complex dtype can require gradients")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad_fn(self):
        return self._node

    def _grad_accumulator(self) -> AccumulateGrad:
        acc = self._acc
        if acc is None:
            acc = self._acc = AccumulateGrad(self)
        return acc

    def _accumulate_grad(self, g):
        """Add raw gradient ``g`` into ``.grad`` (made on first use), as torch's AccumulateGrad."""
        cur = self.grad
        if cur is None:
            self.grad = Tensor._wrap(g)
        else:
            from .autograd.engine import _add
            cur._value = _add(cur._value, g)
            cur._version += 1

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise BackwardError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is None or self._retains_grad:
            return
        import weakref
        node = self._node
        if node.retains is None:
            node.retains = {}
        node.retains[self._out_idx] = weakref.ref(self)
        self._retains_grad = True

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def register_hook(self, hook):
        """``hook(grad) -> Tensor | None`` runs when this tensor's gradient is computed; a returned
        tensor replaces the gradient. Returns a handle with ``remove()``."""
        if not self._requires_grad:
            raise BackwardError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is None:
            return self._grad_accumulator()._add_pre(0, hook)
        return self._node._add_pre(self._out_idx, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``tracenn.autograd.backward``)."""
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, outside autograd (in-place changes reach both)."""
        return self._make_view(self._value, ("alias", ()), detached=True)

    def detach_(self) -> "Tensor":
        if self._base is not None and not self._detached:
            raise InplaceError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        """This tensor's data as a detached alias: ``p.data.fill_(1.)`` changes ``p`` untracked."""
        return self._make_view(self._value if self._base is None else self._sync(), ("alias", ()), detached=True)

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._value = other._value if other._base is None else other._sync()

    # ---- views and in-place updates ---------------------------------------------------------

    def _make_view(self, value, step, *, detached=False, node=None, strides=None, requires_grad=False,
                   idx=0):
        """A tensor that aliases this one's root: ``value`` is step(self)."""
        v = Tensor._wrap(value, requires_grad and not detached, None if detached else node, idx)
        root = self._base if self._base is not None else self
        v._base = root
        v._chain = self._chain + (step,) if self._base is not None else (step,)
        v._base_seen = root._version
        if detached or self._detached:
            v._detached = True
        if strides is not None:
            v._strides = strides
        return v

    def _sync(self):
        """A view's current value, re-read from its root if the root changed since."""
        root = self._base
        if self._base_seen != root._version:
            t = root
            grad = GRAD.enabled and not self._detached
            prev, GRAD.enabled = GRAD.enabled, grad
            try:
                for name, key in self._chain:
                    t = apply(OPS[name], (t,), key)
            finally:
                GRAD.enabled = prev
            self._value = t._value
            if not self._detached:
                self._node, self._out_idx, self._requires_grad = t._node, t._out_idx, t._requires_grad
            self._base_seen = root._version
        return self._value

    def _check_inplace(self):
        if not GRAD.enabled:
            return
        if self._base is None:
            if self._requires_grad and self._node is None:
                raise InplaceError(
                    "a leaf Variable that requires grad is being used in an in-place operation. "
                    "Wrap the update in `with tracenn.no_grad():` (as optimizers do), or work on a "
                    "clone.")
        elif not self._detached and self._base._requires_grad and self._base._node is None:
            raise InplaceError(
                "a view of a leaf Variable that requires grad is being used in an in-place "
                "operation. Wrap the update in `with tracenn.no_grad():`, or work on a clone.")

    def _set_(self, result: "Tensor", opname: str = "") -> "Tensor":
        """Make ``result`` (computed out of place) this tensor's new value, as an in-place op does.

        Checks torch's rules (leaf requiring grad, shape, castable dtype), casts to this tensor's
        dtype, rebinds the handle and, for a view, writes the values back into the root.
        """
        self._check_inplace()
        if result._value.shape != self._value.shape:
            raise ShapeError(
                f"output with shape {list(self._value.shape)} doesn't match the broadcast shape "
                f"{list(result._value.shape)}" + (f" (in {opname})" if opname else ""))
        rd, sd = result._value.dtype, self._value.dtype
        if rd != sd:
            r, s = _dt.from_np(rd), _dt.from_np(sd)
            if r._category > s._category:
                raise DtypeError(
                    f"result type {_TORCH_NAMES[r]} can't be cast to the desired output type "
                    f"{_TORCH_NAMES[s]}" + (f" (in {opname}; make the tensor {r} first, e.g. "
                                            f"x = x.to({r}))" if opname else ""))
            result = apply(OPS["cast"], (result,), (sd,))
        if self._detached and result._requires_grad:
            result = Tensor._wrap(result._value)
        if self._base is None:
            self._value = result._value
            if GRAD.enabled or not self._requires_grad:
                self._node, self._out_idx = result._node, result._out_idx
                self._requires_grad = self._requires_grad or result._requires_grad
            self._version += 1
            return self
        root = self._base
        if self._chain and any(n == "expand" for n, _ in self._chain) and _overlaps(self):
            raise InplaceError(
                "unsupported operation: more than one element of the written-to tensor refers to a "
                "single memory location. Please clone() the tensor before performing the operation.")
        if self._detached:
            prev, GRAD.enabled = GRAD.enabled, False
            try:
                new_root = apply(_VIEW_SCATTER, (root, result), (self._chain,))
            finally:
                GRAD.enabled = prev
            root._value = new_root._value
        else:
            new_root = apply(_VIEW_SCATTER, (root, result), (self._chain,))
            root._value = new_root._value
            if new_root._requires_grad:
                root._node, root._out_idx, root._requires_grad = new_root._node, 0, True
            self._node, self._out_idx = result._node, result._out_idx
            self._requires_grad = self._requires_grad or result._requires_grad
        self._value = result._value
        root._version += 1
        self._base_seen = root._version
        return self

    # ---- Python protocol ----------------------------------------------------------------------

    def __repr__(self):
        return self._repr()

    def _repr(self, prefix="tensor("):
        from ._tensor_str import format_tensor
        v = self._value if self._base is None else self._sync()
        d = _dt.from_np(v.dtype)
        show = d not in (_dt.get_default_dtype(), _dt.int64, _dt.bool) and not (
            d is _dt.complex64 and _dt.get_default_dtype() is _dt.float32)
        dev = self.device
        node = self._node
        return format_tensor(np.asarray(v), dtype_name=repr(d), show_dtype=show,
                             device=None if dev.type == "cpu" else str(dev),
                             requires_grad=self._requires_grad and node is None,
                             grad_fn_name=node.name() if node is not None else None, prefix=prefix)

    def __format__(self, spec):
        if self._value.ndim == 0:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def _host(self) -> np.ndarray:
        return np.asarray(self._value if self._base is None else self._sync())

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """A numpy array with this tensor's values (a read-only copy: JAX arrays are immutable)."""
        if self._requires_grad and not force:
            raise BackwardError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._host()

    def __array__(self, dtype=None, copy=None):
        a = self._host()
        return a.astype(dtype) if dtype is not None else a

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._value.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._value.size} elements cannot be converted to Scalar")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def __bool__(self):
        if self._value.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __index__(self):
        if self.dtype.is_floating_point or self.dtype.is_complex or self._value.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __iter__(self):
        if self._value.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._value.shape[0]))

    def __reduce_ex__(self, proto):
        return (_rebuild, (self._host(), self._requires_grad))

    def __deepcopy__(self, memo):
        t = Tensor._wrap(self._value if self._base is None else self._sync(), self._requires_grad)
        if self.grad is not None:
            t.grad = Tensor._wrap(self.grad._value)
        memo[id(self)] = t
        return t

    def block_until_ready(self) -> "Tensor":
        """Wait until this tensor's value is computed (JAX dispatches asynchronously)."""
        self._value.block_until_ready()
        return self


_TORCH_NAMES = {d: d.name.capitalize() for d in _dt.ALL}
_TORCH_NAMES.update({_dt.float32: "Float", _dt.float64: "Double", _dt.float16: "Half",
                     _dt.bfloat16: "BFloat16", _dt.int64: "Long", _dt.int32: "Int",
                     _dt.int16: "Short", _dt.int8: "Char", _dt.uint8: "Byte", _dt.bool: "Bool",
                     _dt.complex64: "ComplexFloat", _dt.complex128: "ComplexDouble"})


from . import _dispatch  # noqa: E402
_dispatch.Tensor = Tensor


def _rebuild(arr, requires_grad):
    import jax.numpy as jnp
    t = Tensor._wrap(jnp.asarray(arr))
    if requires_grad:
        t.requires_grad_()
    return t


def _overlaps(view: Tensor) -> bool:
    """Does an expanded view map several of its elements to one element of its root?"""
    return any(s == 0 and n > 1 for s, n in zip(view._strides or (), view._value.shape))


def _wrap_dim(dim: int, ndim: int) -> int:
    """torch's dimension wrapping with torch's IndexError for a bad dim."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
    return dim % n
