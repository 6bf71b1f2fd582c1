"""``tracenn.utils.hooks``: torch.utils.hooks' names, for code that imports them from here.

:class:`RemovableHandle` (what every ``register_*_hook`` returns), :func:`unserializable_hook` and
:class:`BackwardHook` are the classes ``tracenn.nn`` already uses (defined in
:mod:`tracenn.nn.utils.hooks`), so a handle from a module hook is an instance of this
``RemovableHandle``.

>>> import tracenn
>>> from tracenn.utils.hooks import RemovableHandle
>>> h = tracenn.nn.Identity().register_forward_hook(lambda m, args, out: None)
>>> isinstance(h, RemovableHandle)
True
"""
from __future__ import annotations

import warnings

from ..nn.utils.hooks import BackwardHook, RemovableHandle, unserializable_hook

__all__ = ["RemovableHandle", "unserializable_hook", "warn_if_has_hooks", "BackwardHook"]


def _tensor_hooks(tensor) -> list:
    """The hooks ``tensor.register_hook`` put on ``tensor`` (on its grad node: the leaf's
    AccumulateGrad, or the node that made it at the output slot it came from)."""
    if tensor._node is not None:
        node, idx = tensor._node, tensor._out_idx
    else:
        node, idx = tensor._acc, 0
    pre = getattr(node, "pre_hooks", None) if node is not None else None
    return list(pre.get(idx, ())) if pre else []


def warn_if_has_hooks(tensor) -> None:
    """Warn for each backward hook on ``tensor`` that saving it will drop, unless the hook is
    marked with :func:`unserializable_hook`.

    >>> import warnings, tracenn
    >>> w = tracenn.ones(2, requires_grad=True)
    >>> _ = w.register_hook(unserializable_hook(lambda g: g))
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error")
    ...     warn_if_has_hooks(w)  # marked: no warning
    """
    for hook in _tensor_hooks(tensor):
        if not hasattr(hook, "__torch_unserializable__"):
            warnings.warn(f"backward hook {hook!r} on tensor will not be serialized.  If this is expected, you can "
                          "decorate the function with @torch.utils.hooks.unserializable_hook to suppress this warning",
                          stacklevel=2)
