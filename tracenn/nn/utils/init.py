"""``skip_init``: a module made without running its parameter initialisation, as torch's."""
from __future__ import annotations

import inspect

__all__ = ["skip_init"]


def skip_init(module_cls, *args, **kwargs):
    """``module_cls(*args, **kwargs)`` whose parameters and buffers hold unspecified values.

    torch builds the module on its ``meta`` device and then allocates empty storage; tracenn has
    no meta device, so the module is built on ``device`` (default ``"cpu"``) with its ordinary
    initialisation, values that an uninitialised module may hold as well. As in torch, the module
    must take a ``device`` argument.

    >>> import tracenn
    >>> m = tracenn.nn.utils.skip_init(tracenn.nn.Linear, 5, 1)
    >>> m.weight.shape
    tracenn.Size([1, 5])
    """
    from ..modules.module import Module
    if not (isinstance(module_cls, type) and issubclass(module_cls, Module)):
        raise RuntimeError(f"Expected a Module; got {module_cls}")
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    kwargs["device"] = kwargs.pop("device", "cpu")
    return module_cls(*args, **kwargs)
