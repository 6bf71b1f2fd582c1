"""``state_dict`` / ``load_state_dict`` of :class:`~tracenn.nn.Module` and their hooks.

Key names and order, ``_metadata``, ``strict`` checking and the error texts are torch 2.13's (with
tracenn's names, see :mod:`tracenn.nn.modules.module`). Beyond torch, ``load_state_dict`` takes
numpy arrays, JAX arrays and PyTorch tensors as values, so a torch checkpoint loads directly.
"""
from __future__ import annotations

import itertools
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping
from typing import Any

from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from ..parameter import Parameter, is_lazy
from ..utils.hooks import RemovableHandle
from ._hooks import _WrappedHook

_EXTRA_STATE_KEY_SUFFIX = "_extra_state"


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: ``(missing_keys, unexpected_keys)``."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _as_loadable(value):
    """A state_dict value as a tracenn Tensor, or None if it is not tensor-like.

    Beyond torch: numpy arrays, JAX arrays and PyTorch tensors are converted, so
    ``model.load_state_dict(torch_model.state_dict())`` works.
    """
    if isinstance(value, Tensor):
        return value
    import jax
    import numpy as np
    from ..._api.creation import tensor
    if isinstance(value, np.ndarray):
        return tensor(value)
    if isinstance(value, jax.Array):
        return Tensor._wrap(value)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "numpy"):
        t = value.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            from ... import bfloat16
            return tensor(t.float().numpy()).to(bfloat16)
        return tensor(t.numpy())
    return None


class StateDictMixin:
    """The saving/loading half of :class:`~tracenn.nn.Module`."""

    def get_extra_state(self) -> Any:
        """Override (with :meth:`set_extra_state`) to put extra state into ``state_dict``."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called. Please "
            "file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
            "to report this bug.")

    def set_extra_state(self, state: Any) -> None:
        """Override to restore what :meth:`get_extra_state` returned."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called. Please "
            "file an issue at https://github.com/pytorch/pytorch/issues/new?template=bug-report.yml "
            "to report this bug.")

    def _register_state_dict_hook(self, hook):
        """Private post-hook ``hook(module, state_dict, prefix, local_metadata)`` that may return a
        new state dict (prefer :meth:`register_state_dict_post_hook`)."""
        if getattr(hook, "_from_public_api", False):
            raise RuntimeError("Cannot register the same function as the state dict post hook that "
                               "was previously registered via register_state_dict_post_hook")
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_state_dict_post_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata) -> None`` runs after this module's
        entries were added; it may change ``state_dict`` in place."""
        hook._from_public_api = True
        handle = RemovableHandle(self._state_dict_hooks)
        self._state_dict_hooks[handle.id] = hook
        return handle

    def register_state_dict_pre_hook(self, hook):
        """``hook(module, prefix, keep_vars) -> None`` runs before ``state_dict`` adds this module's
        entries."""
        handle = RemovableHandle(self._state_dict_pre_hooks)
        self._state_dict_pre_hooks[handle.id] = hook
        return handle

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if keep_vars else buf.detach()
        extra_state_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if getattr(self.__class__, "get_extra_state", StateDictMixin.get_extra_state) is not StateDictMixin.get_extra_state:
            destination[extra_state_key] = self.get_extra_state()

    def state_dict(self, *args, destination=None, prefix="", keep_vars=False):
        r"""The module's whole state: parameters and persistent buffers, keyed by dotted names.

        Order: this module's parameters, then its buffers, then each child's entries recursively.
        Values are detached aliases (``keep_vars=True``: the Parameters themselves), so they follow
        later in-place updates of the module.

        Args:
            destination: a dict to fill (default: a new ``OrderedDict``).
            prefix: prepended to every key.
            keep_vars: return the tensors themselves instead of detached aliases.

        Returns:
            an ``OrderedDict`` (with a ``_metadata`` attribute holding each module's ``_version``).

        >>> import tracenn
        >>> import tracenn.nn as nn
        >>> class Module(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.linear = nn.Linear(2, 2)
        ...         self.param = nn.Parameter(tracenn.zeros(1))
        ...         self.register_buffer("buffer", tracenn.zeros(1))
        >>> Module().state_dict().keys()
        odict_keys(['param', 'buffer', 'linear.weight', 'linear.bias'])
        """
        if len(args) > 0:
            warnings.warn(
                "Positional args are being deprecated, use kwargs instead. Refer to "
                "https://pytorch.org/docs/main/generated/torch.nn.Module.html#torch.nn.Module.state_dict"
                " for details.", FutureWarning, stacklevel=2)
            if destination is None:
                destination = args[0]
            if len(args) > 1 and prefix == "":
                prefix = args[1]
            if len(args) > 2 and keep_vars is False:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
            destination._metadata = OrderedDict()
        local_metadata = dict(version=self._version)
        if hasattr(destination, "_metadata"):
            destination._metadata[prefix[:-1]] = local_metadata
        for hook in self._state_dict_pre_hooks.values():
            hook(self, prefix, keep_vars)
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        for hook in self._state_dict_hooks.values():
            hook_result = hook(self, destination, prefix, local_metadata)
            if not getattr(hook, "_from_public_api", False):
                if hook_result is not None:
                    destination = hook_result
            elif hook_result is not None:
                raise RuntimeError("state_dict post-hook must return None")
        return destination

    def _register_load_state_dict_pre_hook(self, hook, with_module=False):
        handle = RemovableHandle(self._load_state_dict_pre_hooks)
        self._load_state_dict_pre_hooks[handle.id] = _WrappedHook(hook, self if with_module else None)
        return handle

    def register_load_state_dict_pre_hook(self, hook):
        """``hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs) -> None`` runs before this module loads its entries."""
        return self._register_load_state_dict_pre_hook(hook, with_module=True)

    def register_load_state_dict_post_hook(self, hook):
        """``hook(module, incompatible_keys) -> None`` runs after ``load_state_dict`` loaded this
        module; it may edit ``incompatible_keys.missing_keys``/``unexpected_keys`` in place."""
        handle = RemovableHandle(self._load_state_dict_post_hooks)
        self._load_state_dict_post_hooks[handle.id] = hook
        return handle

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        """Load this module's own parameters and buffers (not its children's) from ``state_dict``."""
        for hook in self._load_state_dict_pre_hooks.values():
            hook(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

        persistent_buffers = {k: v for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set}
        local_name_params = itertools.chain(self._parameters.items(), persistent_buffers.items())
        local_state = {k: v for k, v in local_name_params if v is not None}
        assign_to_params_buffers = local_metadata.get("assign_to_params_buffers", False)

        for name, param in local_state.items():
            key = prefix + name
            if key in state_dict:
                input_param = _as_loadable(state_dict[key])
                if input_param is None:
                    error_msgs.append(
                        f'While copying the parameter named "{key}", expected tracenn.Tensor or '
                        f"Tensor-like object from checkpoint but received {type(state_dict[key])}")
                    continue
                # A placeholder of a lazy module that the load pre-hook left unmaterialized (the
                # checkpoint's value is a placeholder too) has no shape to check and nothing to copy.
                is_param_lazy = is_lazy(param)
                # A 0-dim parameter loads from a 1-element 1-dim tensor (older checkpoints).
                if (not is_param_lazy and len(param.shape) == 0 and len(input_param.shape) == 1
                        and input_param.shape[0] == 1):
                    input_param = input_param[0]
                if not is_param_lazy and input_param.shape != param.shape:
                    error_msgs.append(
                        f"size mismatch for {key}: copying a param with shape {input_param.shape} from "
                        f"checkpoint, the shape in current model is {param.shape}.")
                    continue
                if not (assign_to_params_buffers or is_param_lazy or is_lazy(input_param)) and param.is_meta \
                        and not input_param.is_meta:
                    warnings.warn(
                        f"for {key}: copying from a non-meta parameter in the checkpoint to a meta parameter in "
                        "the current model, which is a no-op. (Did you mean to pass `assign=True` to assign items "
                        "in the state dictionary to their corresponding key in the module instead of copying them "
                        "in place?)", UserWarning, stacklevel=2)
                try:
                    with no_grad():
                        if assign_to_params_buffers:
                            if isinstance(param, Parameter):
                                if not isinstance(input_param, Parameter):
                                    input_param = Parameter(input_param, requires_grad=param.requires_grad)
                                else:
                                    input_param.requires_grad_(param.requires_grad)
                            setattr(self, name, input_param)
                        elif not is_param_lazy:
                            param.copy_(input_param)
                except Exception as ex:
                    error_msgs.append(
                        f'While copying the parameter named "{key}", whose dimensions in the model '
                        f"are {param.size()} and whose dimensions in the checkpoint are "
                        f"{input_param.size()}, an exception occurred : {ex.args}.")
            elif strict:
                missing_keys.append(key)

        extra_state_key = prefix + _EXTRA_STATE_KEY_SUFFIX
        if getattr(self.__class__, "set_extra_state", StateDictMixin.set_extra_state) is not StateDictMixin.set_extra_state:
            if extra_state_key in state_dict:
                self.set_extra_state(state_dict[extra_state_key])
            elif strict:
                missing_keys.append(extra_state_key)
        elif strict and (extra_state_key in state_dict):
            unexpected_keys.append(extra_state_key)

        if strict:
            for key in state_dict.keys():
                if key.startswith(prefix) and key != extra_state_key:
                    input_name = key[len(prefix):].split(".", 1)
                    # A key for a submodule is the child's to judge; it must at least exist.
                    if len(input_name) > 1:
                        if input_name[0] not in self._modules:
                            unexpected_keys.append(key)
                    elif input_name[0] not in local_state:
                        unexpected_keys.append(key)

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False):
        r"""Copy parameters and buffers from ``state_dict`` into this module and its descendants.

        Values are copied into the existing tensors (which keep their dtype and stay the same
        objects); with ``assign=True`` the state dict's tensors are assigned instead (Parameters
        keep their ``requires_grad``). Values may also be numpy arrays, JAX arrays or PyTorch
        tensors (a tracenn extension).

        Args:
            state_dict: a mapping from dotted names to tensors.
            strict: raise ``RuntimeError`` listing every missing key, unexpected key and size
                mismatch (size mismatches raise even when not strict).
            assign: assign instead of copying.

        Returns:
            ``NamedTuple`` with ``missing_keys`` and ``unexpected_keys`` fields.

        >>> import tracenn.nn as nn
        >>> a, b = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> b.load_state_dict(a.state_dict())
        <All keys matched successfully>
        >>> bool((a.weight == b.weight).all())
        True
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")

        missing_keys: list[str] = []
        unexpected_keys: list[str] = []
        error_msgs: list[str] = []

        # copy state_dict so _load_from_state_dict can modify it
        metadata = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)
        if metadata is not None:
            state_dict._metadata = metadata

        _load_tree(self, state_dict, "", metadata, assign, missing_keys, unexpected_keys, error_msgs)

        if strict:
            if len(unexpected_keys) > 0:
                error_msgs.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in unexpected_keys)))
            if len(missing_keys) > 0:
                error_msgs.insert(0, "Missing key(s) in state_dict: {}. ".format(
                    ", ".join(f'"{k}"' for k in missing_keys)))
        if len(error_msgs) > 0:
            raise RuntimeError("Error(s) in loading state_dict for {}:\n\t{}".format(
                self.__class__.__name__, "\n\t".join(error_msgs)))
        return _IncompatibleKeys(missing_keys, unexpected_keys)


def _load_tree(module, local_state_dict, prefix, metadata, assign, missing_keys, unexpected_keys, error_msgs):
    """Load ``module`` and, recursively, its children; then run its load_state_dict post-hooks."""
    local_metadata = {} if metadata is None else metadata.get(prefix[:-1], {})
    if assign:
        local_metadata["assign_to_params_buffers"] = assign
    module._load_from_state_dict(local_state_dict, prefix, local_metadata, True, missing_keys,
                                 unexpected_keys, error_msgs)
    for name, child in module._modules.items():
        if child is not None:
            child_prefix = prefix + name + "."
            child_state_dict = {k: v for k, v in local_state_dict.items() if k.startswith(child_prefix)}
            _load_tree(child, child_state_dict, child_prefix, metadata, assign, missing_keys, unexpected_keys,
                       error_msgs)
    incompatible_keys = _IncompatibleKeys(missing_keys, unexpected_keys)
    for hook in module._load_state_dict_post_hooks.values():
        out = hook(module, incompatible_keys)
        if out is not None:
            raise AssertionError(
                "Hooks registered with ``register_load_state_dict_post_hook`` are not expected "
                "to return new values, if incompatible_keys need to be modified, it should be "
                "done inplace.")
