"""``tracenn.Tensor``: a small mutable handle around a ``jax.Array``.

State, in slots: ``_value`` (the array), ``_requires_grad``, ``_node``/``_out_idx`` (the op that made
it, its ``grad_fn``). Rarer state lives in the instance dict with class-level defaults, so making a
tensor on the hot path sets four slots and nothing else.

Views: a tensor made by a view op (indexing, view/reshape, transpose, detach, .data, ...) keeps its
root tensor in ``_base`` and the ``_chain`` of view steps from the root. In-place ops rebind the
handle; on a view they also write the new values back into the root (a ``view_scatter``), and a
view re-reads its root (``_sync``) when the root's counters have moved on. That is torch's
aliasing, built from functional updates. A view's ``_value`` may be stale: read it through
``_sync()`` (``_api._common.value_of``), never directly.

Versions: ``_version`` is torch's version counter, shared by a root and all its views and checked
by autograd against what backward saved; writes through ``.data`` are counted apart (``_writes``),
as torch gives ``.data`` its own counter. An in-place op's own node keeps the old values (JAX arrays
are immutable), so ``_set_`` drops that node's record of ``self`` (see ``_restamp``).

Most methods are attached from ``tracenn._api`` (one definition serves ``x.sum()`` and
``tracenn.sum(x)``).
"""
from __future__ import annotations

import warnings

import numpy as np

from . import dtypes as _dt
from ._meta import MetaArray as _MetaArray
from ._dispatch import EPOCH as _EPOCH, FUNC as _FUNC, META as _META, TRACE as _TRACE, apply
from .autograd.graph import SEQ as _NODE_SEQ, AccumulateGrad, Node, named as _named
from .autograd.grad_mode import GRAD
from .size import Size
from .errors import BackwardError, InplaceError, ShapeError, DtypeError
from .ops import OPS

_float_warned = [False]  # float() of a tensor that requires grad: warned (once per process, as torch)

_new = object.__new__
_VIEW_SCATTER = OPS["view_scatter"]
_ALIAS = OPS["alias"]


class Tensor:
    __slots__ = ("_value", "_requires_grad", "_node", "_out_idx", "__dict__", "__weakref__")

    # Defaults for the rarely-set state (instance dict when set).
    grad = None
    _base = None          # root tensor of a view
    _chain = ()           # view steps from the root's storage: ((op name, static key), ...)
    _layout = ()          # a root's steps from its storage to its value (t_(), unsqueeze_(), ...)
    _layout_inv = ()      # ... and back
    _base_seen = 0        # the root's _version + _writes when this view last read it
    _detached = False     # "detach" / "data": a view whose writes reach the root without autograd
    _strides = None       # torch strides of a view (None: contiguous)
    _ver = 0              # torch's version counter (a root's; see the _version property)
    _writes = 0           # writes torch's version counter does not see (through .data)
    _acc = None           # AccumulateGrad of a leaf
    _leaf_base = None     # a view's nearest viewed tensor that was a leaf requiring grad
    _retains_grad = False
    _inference = False    # made inside inference_mode (is_inference(); a view takes its root's)
    _no_writes = None     # why in-place writes are refused (an as_strided result: a copy, not an alias)
    is_sparse = False     # True for tracenn.sparse's SparseTensor (layout sparse_coo)

    # ---- construction -----------------------------------------------------------------------

    def __new__(cls, *args, **kwargs):
        return _new(cls)

    def __init__(self, *args, dtype=None, device=None):
        # torch.Tensor(data) / torch.Tensor(2, 3): legacy constructor, always the default float dtype.
        from ._api._common import value_of
        from ._api.legacy import legacy_new
        made = legacy_new(_dt.as_dtype(dtype) if dtype is not None else _dt.get_default_dtype(), device, args,
                          name="Tensor")
        self._value = value_of(made)
        self._requires_grad = False
        self._node = None
        self._out_idx = 0
        if GRAD.inference:
            self._inference = True

    def is_inference(self) -> bool:
        """Whether this tensor was made inside ``inference_mode`` (a view: whether its base was)."""
        return self._inference

    @staticmethod
    def _wrap(value, requires_grad=False, node=None, idx=0):
        t = _new(Tensor)
        t._value = value
        t._requires_grad = requires_grad
        t._node = node
        t._out_idx = idx
        if GRAD.inference:  # made in inference_mode: an inference tensor, as torch's
            t._inference = True
        return t

    # ---- basic attributes ---------------------------------------------------------------------

    @property
    def shape(self):
        return Size(self._value.shape)

    def size(self, dim=None):
        """The shape, or one dimension of it (negative ``dim`` counts from the end)."""
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
        d = getattr(v, "device", None)
        if not hasattr(d, "platform"):  # an array sharded over several devices: their kind
            d = min(v.devices(), key=lambda x: x.id)
        return from_jax(d)

    @property
    def is_meta(self) -> bool:
        """Whether this tensor is on the meta device (a shape and a dtype, no data)."""
        return type(self._value) is _MetaArray

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
        if self._requires_grad != bool(requires_grad):
            _EPOCH[0] += 1  # compiled calls differentiate by which parameters require grad
            self._requires_grad = bool(requires_grad)
            if requires_grad and _TRACE[0] is not None:  # compiling: gradients now flow into it
                _TRACE[0].new_leaf(self)
        return self

    @property
    def _version(self) -> int:
        """torch's version counter: bumped by every in-place change; a view shares its root's."""
        b = self._base
        return self._ver if b is None else b._ver

    @_version.setter
    def _version(self, value):
        b = self._base
        (self if b is None else b)._ver = value

    @property
    def grad_fn(self):
        n = self._node
        if n is not None and type(n) is Node:
            _named(n)  # type(t.grad_fn).__name__ is torch's name ('MulBackward0')
        return n

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
            cur._ver += 1

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self._requires_grad:
            raise BackwardError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is None or self._retains_grad:
            return
        if _TRACE[0] is not None:
            from .errors import UnsupportedError
            raise UnsupportedError(
                "Tensor.retain_grad() inside a compiled call: the program's intermediate tensors are not "
                "kept for backward(), so this call runs eagerly. To compile it, return the tensor and call "
                "retain_grad() on the compiled call's output, or use a module forward hook")
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
        if _TRACE[0] is not None:
            from .errors import UnsupportedError
            raise UnsupportedError(
                "Tensor.register_hook inside a compiled call: the hook would run inside the program's "
                "backward, so this call runs eagerly. To compile it, register the hook on the compiled "
                "call's output, or on a module (register_full_backward_hook)")
        if self._node is None:
            _EPOCH[0] += 1  # (compiled calls re-read what they depend on)
            return self._grad_accumulator()._add_pre(0, hook)
        return self._node._add_pre(self._out_idx, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor) -> None`` runs after ``backward()`` accumulated into this leaf's ``.grad``
        (not for ``autograd.grad``, which does not accumulate). Returns a handle with ``remove()``.

        Under a compiled training step (``tracenn.compile`` of a function that calls
        ``loss.backward()``) such a hook cannot run inside the program: the step runs eagerly.

        >>> import tracenn
        >>> w = tracenn.ones(2, requires_grad=True)
        >>> h = w.register_post_accumulate_grad_hook(lambda p: print("grad", p.grad))
        >>> (3 * w).sum().backward()
        grad tensor([3., 3.])
        """
        if not self._requires_grad:
            raise BackwardError("cannot register a hook on a tensor that doesn't require gradient")
        if self._node is not None:
            raise BackwardError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if _TRACE[0] is not None:
            from .errors import UnsupportedError
            raise UnsupportedError(
                "Tensor.register_post_accumulate_grad_hook inside a compiled call: this call runs eagerly. "
                "To compile it, register the hook before calling the compiled function")
        _EPOCH[0] += 1  # (compiled calls re-read what they depend on)
        return self._grad_accumulator()._add_post_accumulate(hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see ``tracenn.autograd.backward``)."""
        from .autograd import backward
        if type(self._value) is _MetaArray:
            from ._meta import needs_values
            raise RuntimeError(needs_values(self._value))
        backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, outside autograd (in-place changes reach both)."""
        return self._make_view(self._value if self._base is None else self._sync(), ("alias", ()),
                               detached="detach", strides=self._strides)

    def detach_(self) -> "Tensor":
        if self._base is not None and not self._detached:
            raise InplaceError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self._requires_grad = False
        return self

    @property
    def data(self) -> "Tensor":
        """This tensor's data as a detached alias: ``p.data.fill_(1.)`` changes ``p`` untracked."""
        return self._make_view(self._value if self._base is None else self._sync(), ("alias", ()),
                               detached="data", strides=self._strides)

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        self._value = other._value if other._base is None else other._sync()
        _EPOCH[0] += 1  # the shape or dtype may have changed: compiled calls re-check
        if self._base is not None:  # new data of its own: no longer a view of the old root
            for k in ("_base", "_chain", "_base_seen", "_strides", "_leaf_base", "_layout", "_layout_inv"):
                self.__dict__.pop(k, None)
        self._strides = other._strides

    # ---- views and in-place updates ---------------------------------------------------------

    def _make_view(self, value, step, *, detached=False, node=None, strides=None, requires_grad=False,
                   idx=0):
        """A tensor that aliases this one's root: ``value`` is step(self).

        ``detached``: False, "detach" (shares the root's version counter, as torch's detach()) or
        "data" (writes are invisible to autograd's saved-tensor check, as torch's ``.data``).
        """
        v = Tensor._wrap(value, requires_grad and not detached, None if detached else node, idx)
        base = self._base
        root = self if base is None else base
        v._base = root
        v._chain = (self._layout if base is None else self._chain) + (step,)
        v._base_seen = root._ver + root._writes
        if v._inference is not root._inference:
            v._inference = root._inference
        kind = detached or self._detached
        if kind:
            v._detached = kind
        elif self._requires_grad and self._node is None and base is not None:
            v._leaf_base = self  # a leaf that is itself a view: x = t.view(2, 3).requires_grad_()
        elif self._leaf_base is not None:
            v._leaf_base = self._leaf_base
        if strides is not None:
            v._strides = strides
        return v

    def _sync(self):
        """A view's current value, re-read from its root if the root changed since.

        A view that takes part in autograd re-derives its grad_fn from the root's current history
        (torch regenerates a view's grad_fn the same way), also under no_grad, so that reading a
        view inside ``no_grad`` does not cut it off from the graph.
        """
        root = self._base
        seen = root._ver + root._writes
        if self._base_seen != seen:
            t = root
            track = not self._detached and (GRAD.enabled or self._requires_grad)
            prev, GRAD.enabled = GRAD.enabled, track
            try:
                for name, key in root._layout_inv + self._chain:
                    t = apply(OPS[name], (t,), key)
            finally:
                GRAD.enabled = prev
            self._value = t._value
            if track and t._requires_grad:
                self._node, self._out_idx, self._requires_grad = t._node, t._out_idx, True
            self._base_seen = seen
        return self._value

    def _check_inplace(self):
        if self._inference and not GRAD.inference:
            raise InplaceError(
                "Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to "
                "get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 for "
                "more details.")
        if not GRAD.enabled or self._detached:
            return
        if self._requires_grad and self._node is None:
            raise InplaceError(
                "a leaf Variable that requires grad is being used in an in-place operation. "
                "Wrap the update in `with tracenn.no_grad():` (as optimizers do), or work on a "
                "clone.")
        base = self._base
        if base is not None and (base._requires_grad and base._node is None or (
                self._leaf_base is not None and self._leaf_base._node is None)):
            raise InplaceError(
                "a view of a leaf Variable that requires grad is being used in an in-place "
                "operation. Wrap the update in `with tracenn.no_grad():`, or work on a clone.")

    def _set_(self, result: "Tensor", opname: str = "", since: int | None = None) -> "Tensor":
        """Make ``result`` (computed out of place) this tensor's new value, as an in-place op does.

        Checks torch's rules (leaf requiring grad, shape, castable dtype), casts to this tensor's
        dtype, rebinds the handle and, for a view, writes the values back into the root.

        ``since``: ``_NODE_SEQ[0]`` read before ``result`` was computed. The nodes made since then
        belong to this in-place op; the saved-tensor stamps they took of this tensor move to its
        new version (see :func:`_restamp`). Without it only ``result``'s own node is restamped,
        which is exact for in-place ops made of one primitive.
        """
        self._check_inplace()
        if self._no_writes is not None or (self._base is not None and self._base._no_writes is not None):
            raise InplaceError((self._no_writes or self._base._no_writes) + (f" (in {opname})" if opname else ""))
        if _TRACE[0] is not None:  # compiling: an in-place change of a tensor from outside is noted
            copied = (self if self._base is None else self._base).__dict__.get("_copied_view")
            if copied is not None and not copied[2]:  # (see _api/index.py getitem: written back, or else)
                copied[2] = True
                _TRACE[0].copied_views.append(self if self._base is None else self._base)
            _TRACE[0].mutating(self)
        if _FUNC[0] is not None:  # in a tracenn.func transform: a tensor from outside must not change
            _FUNC[0].mutating(self)
        if result._value.shape != self._value.shape:
            raise ShapeError(
                f"output with shape {list(self._value.shape)} doesn't match the broadcast shape "
                f"{list(result._value.shape)}" + (f" (in {opname})" if opname else ""))
        made = result
        if since is None:
            since = made._node.seq - 1 if made._node is not None else _NODE_SEQ[0]
        rd, sd = result._value.dtype, self._value.dtype
        if rd != sd:
            r, s = _dt.from_np(rd), _dt.from_np(sd)
            if r._category > s._category:
                raise DtypeError(
                    f"result type {_TORCH_NAMES[r]} can't be cast to the desired output type "
                    f"{_TORCH_NAMES[s]}" + (f" (in {opname}; make the tensor {r} first, e.g. "
                                            f"x = x.to({r}))" if opname else ""))
            result = apply(OPS["cast"], (result,), (sd,))
        if _META[0] and (type(result._value) is _MetaArray or type(self._value) is _MetaArray):
            if type(self._value) is _MetaArray:
                return self._set_meta()
            from ._meta import materialize  # (a fill inside `with device("meta")`: its values, or torch's error)
            result = Tensor._wrap(materialize(result._value))
        if self._detached and result._requires_grad:
            result = Tensor._wrap(result._value)
        if _TRACE[0] is not None and not GRAD.enabled and self._requires_grad and self._base is None:
            result = _TRACE[0].keep_history(self, result)  # as eager: no_grad changes only the values
        root = self._base
        grad = GRAD.enabled
        if root is None:
            if grad and self._node is not None and not result._requires_grad:
                # Overwritten by a value that needs no grad (fill_, copy_ of a constant): the
                # tensor stays in the graph, and its old history gets a zero gradient, as torch.
                result = apply(_VIEW_SCATTER, (self, result), ((),))
            self._value = result._value
            if grad or not self._requires_grad:
                self._node, self._out_idx = result._node, result._out_idx
                self._requires_grad = self._requires_grad or result._requires_grad
            self._ver += 1
            if grad and self._node is not None:
                _restamp((self._node,), since, self, self._ver - 1, made)
            return self
        if opname != "fill_" and any(n == "expand" for n, _ in self._chain) and _overlaps(self):
            # (torch lets fill_/zero_ write one value through overlapping memory; nothing else)
            raise InplaceError(
                "unsupported operation: more than one element of the written-to tensor refers to a "
                "single memory location. Please clone() the tensor before performing the operation.")
        self._value = result._value
        if self._detached:
            GRAD.enabled = False
            try:
                new_root = apply(_VIEW_SCATTER, (root, result), (root._layout_inv + self._chain,))
                if _TRACE[0] is not None and root._requires_grad:  # as eager: values change, history stays
                    new_root = _TRACE[0].keep_history(root, new_root)
            finally:
                GRAD.enabled = grad
            root._value = new_root._value
            if self._detached == "data":
                root._writes += 1  # torch's .data has its own version counter
            else:
                root._ver += 1
            self._base_seen = root._ver + root._writes
            return self
        new_root = apply(_VIEW_SCATTER, (root, result), (root._layout_inv + self._chain,))
        if _TRACE[0] is not None and not grad and root._requires_grad:
            new_root = _TRACE[0].keep_history(root, new_root)  # as eager: no_grad changes only values
        root._value = new_root._value
        root._ver += 1
        self._base_seen = root._ver + root._writes
        if new_root._requires_grad:
            root._node, root._out_idx, root._requires_grad = new_root._node, 0, True
            _restamp((new_root._node,), since, root, root._ver - 1, made)
            if result._requires_grad:
                self._node, self._out_idx, self._requires_grad = result._node, result._out_idx, True
            else:  # the view's history is the root's new one: re-derive it on next use
                self._base_seen = -1
        return self

    def _set_meta(self) -> "Tensor":
        """``_set_`` of a meta tensor: it stays meta (it has no values to change: ``nn.init`` on meta
        parameters is a no-op, as in torch); only its version counts the write. (A factory's recipe
        is dropped: the values it would give are no longer this tensor's, see ``_meta.MetaArray``.)"""
        root = self if self._base is None else self._base
        for t in (root, self):
            if t._value.recipe is not None:
                t._value = _MetaArray(t._value.shape, t._value.dtype)
        root._ver += 1
        if self._base is not None:
            self._base_seen = root._ver + root._writes
        return self

    def _relayout_(self, view: "Tensor") -> "Tensor":
        """Become ``view`` (a view of self, or of self's root) in place: ``t_()``, ``unsqueeze_()``...

        A view simply takes the new view's chain. A root keeps its storage — every existing view
        stays a view of that storage — and records the step in ``_layout`` (and its inverse in
        ``_layout_inv``), which views apply to read and write through the new layout.
        """
        self._check_inplace()
        if self._base is None:
            name, key = view._chain[-1]
            self._layout = view._chain
            self._layout_inv = (_inverse_step(name, key, self._value.shape),) + self._layout_inv
        else:
            self._chain, self._base_seen = view._chain, view._base_seen
        self._value, self._strides = view._value, view._strides
        if view._node is not None:
            self._node, self._out_idx = view._node, view._out_idx
        return self

    # ---- Python protocol ----------------------------------------------------------------------

    def __repr__(self):
        return self._repr()

    def _repr(self, prefix="tensor("):
        from ._tensor_str import format_meta, format_tensor
        v = self._value if self._base is None else self._sync()
        node = self._node
        if type(v) is _MetaArray:
            d = _dt.from_np(v.dtype)
            return format_meta(v.shape, v.dtype.kind, dtype_name=repr(d), show_dtype=d is not _dt.get_default_dtype(),
                               requires_grad=self._requires_grad and node is None,
                               grad_fn_name=node.name() if node is not None else None, prefix=prefix)
        if _dispatch.abstract(v):  # while compiling or transforming: shape and dtype only
            return f"{prefix}<symbolic {v!r}>)"
        d = _dt.from_np(v.dtype)
        show = d not in (_dt.get_default_dtype(), _dt.int64, _dt.bool) and not (
            d is _dt.complex64 and _dt.get_default_dtype() is _dt.float32)
        dev = self.device
        return format_tensor(self._host(), dtype_name=repr(d), show_dtype=show,
                             device=None if dev.type == "cpu" else str(dev),
                             requires_grad=self._requires_grad and node is None,
                             grad_fn_name=node.name() if node is not None else None, prefix=prefix)

    def __format__(self, spec):
        if self._value.ndim == 0 and type(self._value) is not _MetaArray:
            return format(self.item(), spec)
        return object.__format__(self, spec)

    def _host(self) -> np.ndarray:
        v = _dispatch.host_value(self._value if self._base is None else self._sync())
        if isinstance(v, _dispatch.ARRAY):
            try:  # (JAX runs work asynchronously: a failure of the work that made v is raised here;
                # reading a failed array's buffer directly aborts the process in jaxlib 0.10)
                v.block_until_ready()
            except RuntimeError as e:
                _dispatch._out_of_memory(e)
                raise
        return np.asarray(v)

    def numpy(self, *, force: bool = False) -> np.ndarray:
        """A writable numpy array with this tensor's values.

        Unlike torch's, it is a copy, not a view: JAX arrays are immutable, so writing to the array
        does not change the tensor (and later in-place ops on the tensor do not show in the array).
        Take it again after changing the tensor; use ``tracenn.from_numpy`` to make a tensor of it.

        >>> import tracenn
        >>> a = tracenn.zeros(3).numpy()
        >>> a[0] = 1
        >>> a
        array([1., 0., 0.], dtype=float32)
        """
        if self._requires_grad and not force:
            raise BackwardError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if type(self._value) is _MetaArray:
            raise TypeError("can't convert meta device type tensor to numpy. Use Tensor.cpu() to copy the tensor "
                            "to host memory first.")
        a = self._host()
        # np.asarray of a JAX array is a read-only view of its buffer: copy it, once. An array
        # that is writable and its own already is a fresh one (never the tensor's storage).
        if a.flags.writeable and a.flags.owndata and a is not self._value:
            return a
        return a.copy()

    def __array__(self, dtype=None, copy=None):
        if type(self._value) is _MetaArray:
            return self.numpy()
        a = self._host()
        return a.astype(dtype) if dtype is not None else a

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._value.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._value.size} elements cannot be converted to Scalar")
        if type(self._value) is _MetaArray:
            raise RuntimeError("Tensor.item() cannot be called on meta tensors")
        return self._host().reshape(()).item()

    def tolist(self):
        return self._host().tolist()

    def __bool__(self):
        if self._value.size != 1:
            raise RuntimeError(
                "Boolean value of Tensor with more than one value is ambiguous")
        return bool(self.item())

    def __float__(self):
        if self._requires_grad and not _float_warned[0] and GRAD.enabled:
            _float_warned[0] = True  # (torch warns once per process, for float() only)
            warnings.warn("Converting a tensor with requires_grad=True to a scalar may lead to unexpected "
                          "behavior.\nConsider using tensor.detach() first.", UserWarning, stacklevel=2)
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
        if type(self._value) is _MetaArray:  # (torch pickles meta tensors too: shape and dtype)
            return (_rebuild_meta, (self._value.shape, self._value.dtype, self._requires_grad))
        return (_rebuild, (self._host(), self._requires_grad))

    def __deepcopy__(self, memo):
        t = Tensor._wrap(self._value if self._base is None else self._sync(), self._requires_grad)
        if self._base is None and self._strides is not None:  # a root's strides are dense: keep them
            t._strides = self._strides
        if self.grad is not None:
            t.grad = Tensor._wrap(self.grad._value)
        memo[id(self)] = t
        return t

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export this tensor's current values through DLPack (``numpy.from_dlpack(t)``,
        ``jax.dlpack.from_dlpack(t)``): the JAX array's buffer, read-only for the consumer."""
        if self._requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        value = self._value if self._base is None else self._sync()
        if type(value) is _MetaArray:
            raise BufferError("Cannot pack tensors on meta")
        if getattr(value, "symbolic", False):
            raise RuntimeError("a tensor being traced by tracenn.compile has no values to export through DLPack")
        kw = {k: v for k, v in (("stream", stream), ("max_version", max_version), ("dl_device", dl_device),
                                ("copy", copy)) if v is not None}
        return value.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._value.__dlpack_device__()

    def block_until_ready(self) -> "Tensor":
        """Wait until this tensor's value is computed (JAX dispatches asynchronously)."""
        self._value.block_until_ready()
        return self


_TORCH_NAMES = {d: _dt.scalar_type_name(d) for d in _dt.ALL}  # torch's ScalarType names: Float, Long, UInt16


from . import _dispatch  # noqa: E402
_dispatch.Tensor = Tensor


def _rebuild(arr, requires_grad):
    import jax.numpy as jnp
    t = Tensor._wrap(jnp.asarray(arr))
    if requires_grad:
        t.requires_grad_()
    return t


def _rebuild_meta(shape, dtype, requires_grad):
    from ._meta import meta_tensor
    return meta_tensor(shape, np.dtype(dtype), requires_grad)


def _restamp(nodes, since: int, root: Tensor, old: int, made: Tensor) -> None:
    """Fix the saved-tensor records that an in-place op's own nodes took of ``root``.

    An in-place op records the node that computes the new value from the old one. Its vjp reads
    the *old* ``self``, which torch saves as a copy (``original_self``); here the node already
    holds it (JAX arrays are immutable), so its records of ``self`` are dropped: neither
    this op's own version bump nor later ones can invalidate it. A saved *output* (``made``, the
    op's result, which now lives in ``root``) is re-pointed at ``root`` at its new version, so
    changing the tensor again before backward raises, as in torch (``x.exp_(); x.add_(1)``).
    Records taken by earlier nodes are left alone: they still raise.
    """
    if _TRACE[0] is not None:  # compiling: the nodes are graph nodes, their records the tracer's
        _TRACE[0].restamp(nodes, since, root, old, made)
        return
    stack = [n for n in nodes if isinstance(n, Node) and n.seq > since]
    seen = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n.saved:
            n.saved = restamped(n.saved, root, old, made)
        for e in n.edges:
            if e is not None and isinstance(e[0], Node) and e[0].seq > since:
                stack.append(e[0])


def restamped(saved, root: Tensor, old: int, made: Tensor) -> list:
    """One node's saved-tensor records after an in-place op of its own changed ``root`` from
    version ``old`` (see :func:`_restamp`; also the tracer's, ``Tracer.restamp``)."""
    import weakref
    keep = []
    for rec in saved:
        r, ver, which = rec
        if r is root and ver == old and which.startswith("input"):
            continue  # read the old value, which the node holds (x.hypot_(y) reads x twice)
        if isinstance(r, weakref.ref) and r() is made:
            rec = (root, old + 1, which)
        keep.append(rec)
    return keep  # (a new list: records may be shared tuples)


def _inverse_step(name: str, key: tuple, shape: tuple) -> tuple:
    """The view step that undoes ``(name, key)`` applied to an array of ``shape``."""
    if name == "reshape":
        return ("reshape", (tuple(shape),))
    if name == "permute":
        inv = [0] * len(key[0])
        for i, d in enumerate(key[0]):
            inv[d] = i
        return ("permute", (tuple(inv),))
    if name == "alias":
        return ("alias", ())
    raise ValueError(f"no inverse for view step {name}")


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
