"""Hook handles and the machinery behind module backward hooks (torch's ``torch.utils.hooks``).

:class:`RemovableHandle` is what every ``register_*_hook`` returns. :class:`BackwardHook` implements
``register_full_backward_hook`` / ``register_full_backward_pre_hook`` as torch does: the tensors going
into and coming out of a module pass through an identity autograd Function, so backward reaches one
node for all of the module's outputs (grad_output) and one for all of its inputs (grad_input). Here
the identity Function's own ``backward`` calls the hooks (torch registers hooks on its grad_fn
instead); what the user hooks see and may replace is the same.
"""
from __future__ import annotations

import functools
import warnings
import weakref
from collections import OrderedDict
from typing import Any

from ..._api.creation import zeros
from ..._dispatch import EPOCH
from ...autograd.function import Function
from ...autograd.grad_mode import GRAD
from ...tensor import Tensor

__all__ = ["RemovableHandle", "unserializable_hook", "BackwardHook"]


class RemovableHandle:
    """A handle which provides the capability to remove a hook.

    Args:
        hooks_dict: the dict of hooks, keyed by hook id, the hook was put in.
        extra_dict: another dict (or a list of dicts) the hook id is also a key of; ``remove()``
            deletes the id from them too.

    >>> import tracenn
    >>> m = tracenn.nn.Identity()
    >>> calls = []
    >>> with m.register_forward_hook(lambda mod, args, out: calls.append(out.shape)):
    ...     _ = m(tracenn.zeros(2))
    >>> _ = m(tracenn.zeros(3))  # the hook was removed when the block ended
    >>> calls
    [tracenn.Size([2])]
    """

    id: int
    next_id: int = 0

    def __init__(self, hooks_dict: Any, *, extra_dict: Any = None) -> None:
        EPOCH[0] += 1  # a hook added (the caller adds it next) or removed: compiled calls re-check
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = RemovableHandle.next_id
        RemovableHandle.next_id += 1
        self.extra_dict_ref: tuple = ()
        if isinstance(extra_dict, dict):
            self.extra_dict_ref = (weakref.ref(extra_dict),)
        elif isinstance(extra_dict, list):
            self.extra_dict_ref = tuple(weakref.ref(d) for d in extra_dict)

    def remove(self) -> None:
        EPOCH[0] += 1
        hooks_dict = self.hooks_dict_ref()
        if hooks_dict is not None and self.id in hooks_dict:
            del hooks_dict[self.id]
        for ref in self.extra_dict_ref:
            extra_dict = ref()
            if extra_dict is not None and self.id in extra_dict:
                del extra_dict[self.id]

    def __getstate__(self):
        return (self.hooks_dict_ref(), self.id, tuple(ref() for ref in self.extra_dict_ref))

    def __setstate__(self, state) -> None:
        if state[0] is None:
            # The hooks dict is gone: keep a dummy one so remove() stays a no-op.
            self.hooks_dict_ref = weakref.ref(OrderedDict())
        else:
            self.hooks_dict_ref = weakref.ref(state[0])
        self.id = state[1]
        RemovableHandle.next_id = max(RemovableHandle.next_id, self.id + 1)
        if len(state) < 3 or state[2] is None:
            self.extra_dict_ref = ()
        else:
            self.extra_dict_ref = tuple(weakref.ref(d) for d in state[2])

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, type: Any, value: Any, tb: Any) -> None:
        self.remove()


def unserializable_hook(f):
    """Mark a function as an unserializable hook (accepted for compatibility)."""
    f.__torch_unserializable__ = True
    return f


class _HookIdentity(Function):
    """Identity on tensors; in backward it hands the incoming gradients to ``on_backward`` and
    passes on what that returns (the gradients a module hook may have replaced)."""

    @staticmethod
    def forward(ctx, on_backward, *tensors):
        ctx.on_backward = on_backward
        return tuple(Tensor._wrap(t._value if t._base is None else t._sync()) for t in tensors)

    @staticmethod
    def backward(ctx, *grads):
        return (None, *ctx.on_backward(grads))


def _mark(seen: set, k: int, grad) -> None:
    # A tensor hook on a routed output: records that output k received a gradient.
    seen.add(k)


class BackwardHook:
    """Runs a module's full backward (pre-)hooks for one forward call.

    ``setup_input_hook(args)`` and ``setup_output_hook(result)`` route the tensors that require grad
    through :class:`_HookIdentity`. In backward the output-side node runs first: it collects
    ``grad_output`` (one entry per output, ``None`` where none flows) and runs the pre-hooks, which
    may replace it. The input-side node then calls the full hooks with ``grad_input`` (one entry per
    positional input: None for non-tensors, zeros for tensors that need no gradient, as torch) and
    that ``grad_output``; a hook may return a replacement ``grad_input``.
    """

    def __init__(self, module, user_hooks, user_pre_hooks) -> None:
        self.user_hooks = user_hooks
        self.user_pre_hooks = user_pre_hooks
        self.module = module
        self.grad_outputs = None
        self.n_outputs = -1
        self.output_tensors_index = None
        self.n_inputs = -1
        self.input_tensors_index = None

    @staticmethod
    def _pack_with_none(indices, values, size):
        res = [None] * size
        for idx, val in zip(indices, values, strict=True):
            res[idx] = val
        return tuple(res)

    @staticmethod
    def _route(args, on_backward):
        """Route the tensors in ``args`` that require grad through the identity node.

        Returns (new args, positions of all tensors or None, positions of routed tensors, the
        routed tensors as they are now).
        """
        tensors_idx = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        routed = [i for i in tensors_idx if args[i]._requires_grad]
        if not (routed and GRAD.enabled):
            return args, None, [], ()
        new = _HookIdentity.apply(on_backward, *[args[i] for i in routed])
        arg_list = list(args)
        for idx, val in zip(routed, new, strict=True):
            arg_list[idx] = val
        out = tuple(arg_list) if type(args) is tuple else type(args)(*arg_list)
        return out, tensors_idx, routed, new

    def setup_input_hook(self, args):
        res, self.input_tensors_index, self._input_routed, _ = self._route(args, self._on_input_grads)
        self.n_inputs = len(args)
        # torch's grad_input holds zeros for tensor inputs that need no gradient.
        self._input_zeros = {i: (a.shape, a.dtype, a.device) for i, a in enumerate(args)
                             if isinstance(a, Tensor) and i not in self._input_routed}
        return res

    def setup_output_hook(self, args):
        is_tuple = isinstance(args, tuple)
        if not is_tuple:
            args = (args,)
        res, self.output_tensors_index, self._output_routed, new = self._route(args, self._on_output_grads)
        self.n_outputs = len(args)
        # The engine hands a node zeros for outputs that got no gradient; torch's grad_output has
        # None there. Tensor hooks (which run only for outputs that got one) tell them apart.
        self._outputs_with_grad = set()
        for k, t in enumerate(new):
            t.register_hook(functools.partial(_mark, self._outputs_with_grad, k))
        return res if is_tuple else res[0]

    def _on_output_grads(self, grads):
        got = self._outputs_with_grad
        grads = [g if k in got else None for k, g in enumerate(grads)]
        got.clear()
        self.grad_outputs = self._pack_with_none(self._output_routed, grads, self.n_outputs)
        if self.user_pre_hooks:
            expected_len = len(self.grad_outputs)
            for user_pre_hook in self.user_pre_hooks:
                hook_grad_outputs = user_pre_hook(self.module, self.grad_outputs)
                if hook_grad_outputs is None:
                    continue
                actual_len = len(hook_grad_outputs)
                if actual_len != expected_len:
                    raise RuntimeError("Backward pre hook returned an invalid number of grad_output, "
                                       f"got {actual_len}, but expected {expected_len}")
                self.grad_outputs = hook_grad_outputs
        local_grad_outputs = self.grad_outputs
        if self.input_tensors_index is None:
            # No input requires grad: the input-side node does not exist, so call the hooks here.
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module "
                "outputs since no inputs require gradients. See https://docs.pytorch.org/docs/main/"
                "generated/torch.nn.Module.html#torch.nn.Module.register_full_backward_hook for more "
                "details.", stacklevel=2)
            grad_inputs = self._pack_with_none([], [], self.n_inputs)
            for user_hook in self.user_hooks:
                res = user_hook(self.module, grad_inputs, self.grad_outputs)
                if res is not None and not (isinstance(res, tuple) and all(el is None for el in res)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient "
                                       "should always return None or None for all gradients.")
            self.grad_outputs = None
        return tuple(local_grad_outputs[i] for i in self._output_routed)

    def _on_input_grads(self, grads):
        if self.grad_outputs is None:  # the module's outputs got no gradient: no hook call
            return grads
        res = list(self._pack_with_none(self._input_routed, grads, self.n_inputs))
        for i, (shape, dtype, device) in self._input_zeros.items():
            res[i] = zeros(shape, dtype=dtype, device=device)
        res = tuple(res)
        for hook in self.user_hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            if len(out) != len(res):
                raise RuntimeError("Backward hook returned an invalid number of grad_input, "
                                   f"got {len(out)}, but expected {len(res)}")
            res = out
        self.grad_outputs = None
        return tuple(res[i] for i in self._input_routed)
