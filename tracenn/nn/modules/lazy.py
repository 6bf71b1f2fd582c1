"""``LazyModuleMixin``: modules whose parameter shapes come from their first input (torch's lazy modules).

A lazy module (``nn.LazyLinear(10)``, ``nn.LazyConv2d(16, 3)``, ...) holds
:class:`~tracenn.nn.UninitializedParameter` placeholders until it is first called. A forward
pre-hook then runs ``initialize_parameters(*args)``, which materializes every placeholder with the
shape the input implies and draws the default initialisation, removes itself, and changes the
module's class to ``cls_to_become`` (``LazyLinear`` becomes ``Linear``): from then on it is the
ordinary layer.

A lazy module's ``state_dict`` holds the placeholders; loading an initialized ``state_dict`` into a
lazy module materializes the placeholders with the checkpoint's shapes first (a load pre-hook), so
either may be loaded into the other, as in torch. The module stays lazy until its first call.

Move or cast a lazy module (``to``, ``double()``) before its first call: the placeholders keep
the dtype and device that ``materialize`` will use.
"""
from __future__ import annotations

import itertools
from typing import Any

from ...autograd.grad_mode import no_grad
from ..parameter import is_lazy

__all__ = ["LazyModuleMixin"]


class LazyModuleMixin:
    r"""A mixin for modules that infer their parameter shapes from their first input.

    Subclasses implement ``initialize_parameters(*args, **kwargs)`` (materialize the placeholders,
    then ``reset_parameters()``) and set ``cls_to_become``.

    >>> import tracenn
    >>> import tracenn.nn as nn
    >>> mlp = nn.Sequential(nn.LazyLinear(10), nn.ReLU(), nn.LazyLinear(1))
    >>> mlp
    Sequential(
      (0): LazyLinear(in_features=0, out_features=10, bias=True)
      (1): ReLU()
      (2): LazyLinear(in_features=0, out_features=1, bias=True)
    )
    >>> mlp(tracenn.ones(4, 7)).shape
    tracenn.Size([4, 1])
    >>> mlp[0]
    Linear(in_features=7, out_features=10, bias=True)
    """

    cls_to_become: type | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._load_hook = self._register_load_state_dict_pre_hook(self._lazy_load_hook)
        self._initialize_hook = self.register_forward_pre_hook(self._infer_parameters, with_kwargs=True)

    def _save_to_state_dict(self, destination, prefix, keep_vars) -> None:
        # Placeholders go into the state_dict as they are (detach() is an op, which they refuse).
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if is_lazy(param) or keep_vars else param.detach()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = buf if is_lazy(buf) or keep_vars else buf.detach()

    def _lazy_load_hook(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                        error_msgs) -> None:
        """load_state_dict pre-hook: materialize each placeholder that the checkpoint has an initialized
        value for, with the checkpoint's shape (the load then copies the values in)."""
        for name, param in itertools.chain(self._parameters.items(), self._buffers.items()):
            key = prefix + name
            if key in state_dict and param is not None:
                input_param = state_dict[key]
                if is_lazy(param) and not is_lazy(input_param):
                    with no_grad():
                        param.materialize(tuple(input_param.shape))

    def initialize_parameters(self, *args: Any, **kwargs: Any) -> None:
        """Materialize the placeholders from the first input's properties (subclasses implement it)."""
        raise NotImplementedError(f"initialize_parameters is not implemented for {self.__class__.__name__}")

    def has_uninitialized_params(self) -> bool:
        """Whether a parameter or buffer of this module is still a placeholder."""
        for param in itertools.chain(self._parameters.values(), self._buffers.values()):
            if is_lazy(param):
                return True
        return False

    def _infer_parameters(self, module, args, kwargs=None) -> None:
        """The forward pre-hook: initialize from this call's inputs, then become ``cls_to_become``."""
        kwargs = kwargs if kwargs else {}
        module.initialize_parameters(*args, **kwargs)
        if module.has_uninitialized_params():
            raise RuntimeError(f"module {self._get_name()} has not been fully initialized")
        module._initialize_hook.remove()
        module._load_hook.remove()
        delattr(module, "_initialize_hook")
        delattr(module, "_load_hook")
        if module.cls_to_become is not None:
            module.__class__ = module.cls_to_become

    def _replicate_for_data_parallel(self):
        raise RuntimeError("Modules with uninitialized parameters can't be used with `DataParallel`. Run a dummy "
                           "forward pass to correctly initialize the modules")
