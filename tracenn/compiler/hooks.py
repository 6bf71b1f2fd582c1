"""Module hooks inside compiled programs.

A forward pre-hook or forward hook on a traced module becomes one ``hook`` node::

    %7: f32[64,10] = hook[fn=<forward hook 3 of 'fc'>] %x, %6    # fc  net.py:20

Its lowering is a host callback (``jax.experimental.io_callback``) that calls the Python hook with
real tensors on every compiled call, in program order, so hooks that log, record activations or
check values see what eager mode would show them. A hook may return a replacement of the same
shapes and dtypes (it then changes the result as in eager). For gradients a hook node is the
identity on the values it passes through, so a replacement made while gradients are being
recorded cannot be part of the program: the runtime then runs that call again eagerly (the hook is
called a second time), warns once, and runs later grad-enabled calls with the same guards eagerly,
so the result and its gradients are eager's.

A module's full backward hooks (``register_full_backward_hook``,
``register_full_backward_pre_hook``) put two ``backward_hook`` nodes around its call, where eager
mode routes the tensors through an identity autograd Function::

    %3: f32[4,3] = backward_hook[side=<backward hook inputs of 'fc'>] %x          # fc  net.py:12
    ...
    %7: f32[4,2] = backward_hook[side=<backward hook outputs of 'fc'>] %6         # fc  net.py:12

Both are the identity forward. Their gradient rule calls back to the host with the real
gradients: the output side collects ``grad_output`` and runs the pre-hooks (which may replace
it), the input side runs the full hooks with ``grad_input`` and that ``grad_output`` (a
replacement ``grad_input`` flows on), as eager's :class:`~tracenn.nn.utils.hooks.BackwardHook`
does, whose code they share. They fire during ``backward()`` through a compiled call, and inside
a compiled training step's traced backward. The deprecated ``register_backward_hook`` (non-full)
still makes the call run eagerly, with a one-time warning.
"""
from __future__ import annotations

import itertools
import logging

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dispatch
from ..errors import CompileError, UnsupportedError  # noqa: F401
from ..ops.derived import CALLBACK as HOOK_OP  # noqa: F401  (the op of a hook node)

_ids = itertools.count()


class HookCall:
    """One hook at one call site: the hook, its module, and how to rebuild its arguments."""

    def __init__(self, hook, module, name, kind, with_kwargs, tree, n_args, out_avals, grad):
        self.hook = hook
        self.module = module
        self.name = name                # the module's path, for the printed graph
        self.id = next(_ids)
        self.grad = grad                # gradients are being recorded through the program
        self.kind = kind                # "forward_pre" or "forward"
        self.with_kwargs = with_kwargs
        self.tree = tree                # structure of (args, kwargs[, output]) around the tensors
        self.n_args = n_args            # how many leading tensors are the arguments
        self.out_avals = out_avals      # what the node returns (the tensors it may replace)

    def __repr__(self):
        return f"<{self.kind} hook {self.id} of {self.name!r}>"

    def __call__(self, *arrays):
        try:
            return self._call(self.grad, *arrays)
        except BaseException as e:  # the runtime re-raises it in place of JAX's wrapped error
            _stash(e)
            raise

    def _call(self, grad: bool, *arrays):
        from ..autograd.grad_mode import no_grad
        from ..tensor import Tensor
        from ..utils._pytree import flatten, unflatten
        tensors = [Tensor._wrap(jnp.asarray(a)) for a in arrays]
        with no_grad():
            if self.kind == "forward_pre":
                args, kwargs = unflatten(self.tree, tensors)
                r = self.hook(self.module, args, kwargs) if self.with_kwargs else self.hook(self.module, args)
                if r is None:
                    return tuple(np.asarray(a) for a in arrays)
                if self.with_kwargs:
                    new = r
                else:
                    new = (r if isinstance(r, tuple) else (r,), kwargs)
                mine = tensors
            else:
                args, kwargs, out = unflatten(self.tree, tensors)
                r = (self.hook(self.module, args, kwargs, out) if self.with_kwargs
                     else self.hook(self.module, args, out))
                if r is None:
                    return tuple(np.asarray(a) for a in arrays[self.n_args:])
                new = r
                mine = tensors[self.n_args:]
        leaves, _ = flatten(new)
        if grad:
            raise ReplacedUnderGrad(
                f"the {self.kind.replace('_', ' ')} hook {_name(self.hook)} on module "
                f"{type(self.module).__name__} returned a replacement while gradients are recorded")
        if len(leaves) != len(mine) or any(
                a._value.shape != b._value.shape or a._value.dtype != b._value.dtype for a, b in zip(leaves, mine)):
            got = [f"{tuple(t.shape)} {t.dtype}" for t in leaves]
            want = [f"{tuple(t.shape)} {t.dtype}" for t in mine]
            raise CompileError(
                f"the {self.kind.replace('_', ' ')} hook {_name(self.hook)} returned tensors {got}, but "
                f"under tracenn.compile a replacement must keep the shapes and dtypes {want} (the "
                "program was traced with them). Run this model eagerly to change shapes in a hook.")
        return tuple(np.asarray(t._value) for t in leaves)


class ReplacedUnderGrad(CompileError):
    """A hook returned a replacement inside a grad-enabled program, whose derivative the program
    cannot contain: the runtime runs that call, and later ones with the same guards, eagerly."""

    eager_instead = True

    def __init__(self, what: str):
        self.what = what  # (tracenn.compile's runtime words its own warning around it)
        super().__init__(
            f"{what}. A replacement's derivative cannot be part of a compiled program: trace this "
            "function under tracenn.no_grad() (an inference function), or run the model eagerly.")


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def hook_call(hook, module, name, kind, with_kwargs, tree, n_args, out_avals, grad) -> "HookCall":
    """The callable a ``hook`` node runs (its static ``fn``)."""
    return HookCall(hook, module, name, kind, with_kwargs, tree, n_args, out_avals, grad)


class BackwardSite:
    """One call of a module with full backward hooks inside a compiled program: eager's
    :class:`~tracenn.nn.utils.hooks.BackwardHook` for that call, and its two sides (the static
    ``side`` of the call's ``backward_hook`` nodes)."""

    def __init__(self, module, name, hooks, pre_hooks):
        from ..nn.utils.hooks import BackwardHook
        self.name = name
        self.hook = BackwardHook(module, hooks, pre_hooks)
        self.routed_out = ()

    def route_inputs(self, tracer, args: tuple) -> tuple:
        """``args`` with the tensors that require grad read through the inputs' node."""
        from ..tensor import Tensor
        h = self.hook
        h.n_inputs = len(args)
        h.input_tensors_index = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        h._input_routed = [i for i in h.input_tensors_index if args[i]._requires_grad]
        h._input_zeros = {i: (a.shape, a.dtype, a.device) for i, a in enumerate(args)
                          if isinstance(a, Tensor) and i not in h._input_routed}
        if not h._input_routed:
            h.input_tensors_index = None  # (eager's mark: the output side calls the hooks)
            return args
        new = list(args)
        outs = tracer.record(BACKWARD_HOOK_OP, [args[i] for i in h._input_routed], (_Side(self, "inputs"),))
        for i, t in zip(h._input_routed, outs):
            new[i] = t
        return tuple(new)

    def route_outputs(self, tracer, result):
        """``result`` (a tensor or a tuple) with its tensors that require grad read through the
        outputs' node."""
        from ..tensor import Tensor
        h = self.hook
        single = not isinstance(result, tuple)
        items = (result,) if single else result
        h.n_outputs = len(items)
        h._output_routed = [i for i, a in enumerate(items) if isinstance(a, Tensor) and a._requires_grad]
        if not h._output_routed:
            return result
        new = list(items)
        outs = tracer.record(BACKWARD_HOOK_OP, [items[i] for i in h._output_routed], (_Side(self, "outputs"),))
        for i, t in zip(h._output_routed, outs):
            new[i] = t
        return new[0] if single else tuple(new)

    def run(self, side: str, arrays) -> tuple:
        """The hooks on one side, with the real gradients ``arrays`` (on the host)."""
        from ..autograd.grad_mode import no_grad
        from ..tensor import Tensor
        h = self.hook
        grads = tuple(Tensor._wrap(jnp.asarray(a)) for a in arrays)
        with no_grad():
            if side == "outputs":
                h._outputs_with_grad = set(range(len(grads)))  # (a program has each one's cotangent)
                got = h._on_output_grads(grads)
            else:
                got = h._on_input_grads(grads)
        out = []
        for g, a in zip(got, arrays):
            a = np.asarray(a)
            if g is None:
                out.append(np.zeros(a.shape, a.dtype))
                continue
            if tuple(g.shape) != a.shape:
                raise RuntimeError(f"a backward hook of module {self.name!r} returned a gradient of shape "
                                   f"{list(g.shape)} for one of shape {list(a.shape)}")
            out.append(np.asarray(g._value, a.dtype))
        return tuple(out)


class _Side:
    """The ``side`` of a ``backward_hook`` node: called back with the cotangents of the node's
    outputs, returns those its inputs get."""

    def __init__(self, site: BackwardSite, side: str):
        self.site, self.side = site, side

    def __repr__(self):
        return f"<backward hook {self.side} of {self.site.name!r}>"

    def __call__(self, *arrays):
        try:
            return self.site.run(self.side, arrays)
        except BaseException as e:  # the runtime re-raises it in place of JAX's wrapped error
            _stash(e)
            raise


def _stash(e: BaseException):
    """Keep what a hook raised for the runtime to re-raise after the program, with its traceback
    from the user's hook down (as eager's ends; without this module's frames and JAX's callback
    frames, which the exception gathers as it propagates out of the callback)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__") == __name__:
        tb = tb.tb_next
    _dispatch.CALLBACK_ERROR[0] = e
    if len(_dispatch.CALLBACK_ERROR) > 1:  # (where the runtime reads it)
        _dispatch.CALLBACK_ERROR[1] = tb


from ..ops.derived import BACKWARD_HOOK as BACKWARD_HOOK_OP  # noqa: E402


class _QuietHookErrors(logging.Filter):
    """JAX logs the traceback of an exception a host callback raises ("jax.io_callback failed")
    before it fails the program. The runtime re-raises a hook's own exception to the caller (or,
    for :class:`ReplacedUnderGrad`, runs the call eagerly with its one warning), as eager mode
    shows it, so that log would print the error twice, or a traceback for a call that succeeds.
    Only records whose exception was raised through a hook callback are dropped (its traceback
    passes through one of them): JAX's own errors and other callbacks' are logged as before. The
    filter runs in the thread that logs (a host callback thread on GPU) and keeps no state."""

    codes = frozenset({HookCall.__call__.__code__, _Side.__call__.__code__})

    def filter(self, record) -> bool:
        tb = record.exc_info[2] if record.exc_info else None
        while tb is not None:
            if tb.tb_frame.f_code in self.codes:
                return False
            tb = tb.tb_next
        return True


logging.getLogger("jax._src.callback").addFilter(_QuietHookErrors())  # (jax.experimental.io_callback's logger)
