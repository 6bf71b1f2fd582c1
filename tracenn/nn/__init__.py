"""``tracenn.nn``: torch.nn's module system on tracenn tensors.

``Module``, ``Parameter``, ``Buffer``, the containers and the layers, with torch's semantics; see
:mod:`tracenn.nn.modules.module` for the rule on names in error messages.
"""
from .parameter import Buffer, Parameter, UninitializedBuffer, UninitializedParameter  # noqa: F401
from .modules import *  # noqa: F401,F403
from . import functional, init, modules, parameter, utils  # noqa: F401
from . import attention, parallel  # noqa: F401
from . import grad  # noqa: F401
from .parallel import DataParallel  # noqa: F401

functional.grad = grad  # torch.nn.functional.grad is torch.nn.grad

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", *modules.__all__, "functional",
           "init", "utils", "parallel", "DataParallel", "grad"]
