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

Backward hooks (``register_full_backward_hook``...) cannot run inside a program: a call on a
module tree that has them runs eagerly, with a one-time warning, so they fire exactly as in eager.
"""
from __future__ import annotations

import itertools

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
            _dispatch.CALLBACK_ERROR[0] = e
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
