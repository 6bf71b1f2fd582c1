"""``tracenn.autograd.Function``: user-defined ops with a hand-written backward, as in torch.

``forward`` runs with grad recording off (as does ``setup_context``, when the class defines one
and writes ``forward`` without ``ctx``, torch 2's style); if any tensor input requires grad, one
graph node is recorded whose backward calls the user's ``backward(ctx, *grad_outputs)``. Under
``create_graph=True`` that backward runs in grad mode on gradient tensors that carry history, so
the ops it runs are recorded and can be differentiated again (unless it is ``once_differentiable``).
"""
from __future__ import annotations

import functools
import inspect

from .. import _dispatch
from ..errors import BackwardError
from ._function_saved import check_dirty, check_saveable, record_eager, unpack
from .grad_mode import GRAD
from .graph import Node


class FunctionCtx:
    """The ``ctx`` passed to ``forward``/``backward``: save tensors and flags between them."""

    def __init__(self):
        self._to_save = ()
        self._state = None  # what was saved, once the node is recorded (_function_saved.Saved)
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._non_diff = set()
        self._dirty = ()

    def save_for_backward(self, *tensors):
        """Keep tensors (or None) for ``backward``, as torch: their versions are checked when
        ``saved_tensors`` is read, and a backward without ``retain_graph`` frees them."""
        check_saveable(tensors)
        self._to_save = tensors

    @property
    def saved_tensors(self):
        """What ``save_for_backward`` saved (``()`` until the node is recorded). Raises torch's
        errors once a backward freed the node, or if a saved tensor was changed in place since."""
        return unpack(self)

    def mark_non_differentiable(self, *tensors):
        self._non_diff.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool):
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        """Inputs ``forward`` changed in place: ``apply`` returns them as its outputs, now made by
        this node (their history and version move on, as after an in-place op)."""
        self._dirty = tensors


class _FunctionOp:
    """Quacks like an OpDef for the engine: a name, an output count and a backward."""

    differentiable = True
    saves_out = False

    def __init__(self, cls, nout):
        self.name = cls.__name__
        self.backward_name = f"{cls.__name__}Backward"  # torch's node name: no "0", unlike its own ops'
        self.cls = cls
        self.nout = nout

    def backward_kernel(self, ctx, needs):
        from ..tensor import Tensor

        def run(g, out, *inputs):
            gs = g if self.nout != 1 else (g,)
            grads = self.call_backward(ctx, needs, [None if x is None else Tensor._wrap(x) for x in gs], inputs)
            return tuple(None if gr is None else gr._value for gr in grads)
        return run

    def call_backward(self, ctx, needs, grad_outputs, inputs):
        """The user's ``backward(ctx, *grad_outputs)`` on tensors, checked: one gradient tensor (or
        None) per input, cast to the input's dtype. Under ``create_graph=True`` the engine calls it
        directly with grad mode on, so the tensor ops it runs are recorded."""
        from ..dtypes import from_np
        grads = self.cls.backward(ctx, *grad_outputs)
        if not isinstance(grads, tuple):
            grads = (grads,)
        if len(grads) < len(inputs):
            raise BackwardError(f"function {self.name}Backward returned an incorrect number of "
                                f"gradients (expected {len(inputs)}, got {len(grads)})")
        res = []
        for i, (gr, x, need) in enumerate(zip(grads, inputs, needs)):
            if gr is None or not need:
                res.append(None)
                continue
            shape = getattr(x, "shape", ())
            if tuple(gr.shape) != tuple(shape):
                raise BackwardError(
                    f"Function {self.name}Backward returned an invalid gradient at index {i} - got "
                    f"{list(gr.shape)} but expected shape compatible with {list(shape)}")
            res.append(gr if gr._value.dtype == x.dtype else gr.to(from_np(x.dtype)))
        return tuple(res)


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)``; call ``apply``.

    >>> import tracenn
    >>> class Square(tracenn.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * g
    >>> x = tracenn.tensor([3.0], requires_grad=True)
    >>> Square.apply(x).backward()
    >>> x.grad
    tensor([6.])
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Define it (torch 2's style) to write ``forward(*args)`` without ``ctx``: it is then
        called after ``forward`` with the inputs (defaults filled in) and the output, to save
        what ``backward`` needs on ``ctx``."""
        raise NotImplementedError("setup_context is not implemented.")

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor
        ctx = FunctionCtx()
        separate_setup = _defines_setup_context(cls)
        if separate_setup:  # torch binds the arguments to forward's signature first
            bound = inspect.signature(cls.forward).bind(*args, **kwargs)
            bound.apply_defaults()
            args, kwargs = bound.args, {}
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        if _dispatch.TRACE[0] is not None and GRAD.enabled and any(ctx.needs_input_grad):
            # Recorded with its backward, which a traced loss.backward() runs (compiler/autodiff.py).
            def forward():
                if separate_setup:
                    out = cls.forward(*args)
                    cls.setup_context(ctx, args, out)
                    return out
                return cls.forward(ctx, *args, **kwargs)
            return _dispatch.TRACE[0].custom_function(cls, ctx, args, forward)
        prev, GRAD.enabled = GRAD.enabled, False
        try:
            if separate_setup:
                out = cls.forward(*args)
                cls.setup_context(ctx, args, out)
            else:
                out = cls.forward(ctx, *args, **kwargs)
        finally:
            GRAD.enabled = prev
        outs = out if isinstance(out, tuple) else (out,)
        check_dirty(ctx, outs)
        if not (GRAD.enabled and any(ctx.needs_input_grad)):
            for d in ctx._dirty:
                d._version += 1  # (torch bumps a dirty tensor's version once more as apply returns)
            return out
        for a in args:
            if isinstance(a, Tensor) and a._base is not None:
                a._sync()  # a view whose root changed: current value and grad_fn
        edges = tuple(
            ((a._node, a._out_idx) if a._node is not None else (a._grad_accumulator(), 0))
            if isinstance(a, Tensor) and a._requires_grad else None for a in args)
        raw_inputs = tuple(a._value if isinstance(a, Tensor) else a for a in args)
        op = _FunctionOp(cls, len(outs) if isinstance(out, tuple) else 1)
        node = Node(op, ctx, raw_inputs, tuple(o._value for o in outs) if isinstance(out, tuple) else out._value,
                    edges, ctx.needs_input_grad, [])
        wrapped, diffs = [], []
        for i, o in enumerate(outs):
            diff = o.is_floating_point() and id(o) not in ctx._non_diff
            t = Tensor._wrap(o._value, diff, node if diff else None, i)
            if any(o is d for d in ctx._dirty):  # the input itself, made by this node from here on
                o._set_(t, "mark_dirty")
                t = o
            wrapped.append(t)
            diffs.append(diff)
        node.saved = record_eager(ctx, node, args, outs, wrapped, diffs)
        return tuple(wrapped) if isinstance(out, tuple) else wrapped[0]


def _defines_setup_context(cls) -> bool:
    """Whether ``cls`` overrides ``setup_context`` (then its ``forward`` takes no ``ctx``)."""
    fn = inspect.getattr_static(cls, "setup_context")
    return getattr(fn, "__func__", fn) is not Function.__dict__["setup_context"].__func__


def once_differentiable(fn):
    """Decorate a ``backward`` that cannot itself be differentiated, as torch's: it runs under
    ``no_grad``, and under ``create_graph=True`` (when a gradient it got requires grad) its results
    require grad through a node that raises if a later backward reaches it, instead of silently
    giving a wrong higher-order gradient."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        from ..tensor import Tensor
        prev, GRAD.enabled = GRAD.enabled, False
        try:
            outputs = fn(ctx, *args)
        finally:
            GRAD.enabled = prev
        if not GRAD.enabled or not any(isinstance(a, Tensor) and a._requires_grad for a in args):
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        present = [o for o in outs if o is not None]
        delayed = iter(_DelayedError.apply(*[o.detach().requires_grad_() for o in present]))
        outs = tuple(None if o is None else next(delayed) for o in outs)
        return outs[0] if single else outs

    return wrapper


class _DelayedError(Function):
    """The identity, whose backward raises: marks the results of a once_differentiable backward."""

    @staticmethod
    def forward(ctx, *xs):
        return xs

    @staticmethod
    def backward(ctx, *grads):
        raise BackwardError("trying to differentiate twice a function that was marked with "
                            "@once_differentiable")
