"""The old ``torch.nn.utils.weight_norm`` / ``remove_weight_norm`` (deprecated in torch in favour
of :func:`tracenn.nn.utils.parametrizations.weight_norm`; its state dicts load into that one).

torch keeps ``weight_g`` and ``weight_v`` as parameters and recomputes a plain ``weight``
attribute in a forward pre-hook. Here ``weight`` is a property of a per-module subclass (with the
module's own class name) computing ``g * v / ||v||`` on every read: the same parameters and
state dict, always current, and traced like any other code under ``tracenn.compile`` (a hook
setting an attribute would leave a traced value on the module and bake the weight into the
program as a constant).
"""
from __future__ import annotations

import warnings

from ..modules.module import Module
from ..parameter import Parameter, UninitializedParameter
from .parametrizations import _norm_except_dim, _weight_norm

__all__ = ["weight_norm", "remove_weight_norm"]


def _weight_norm_class(base: type, dims: dict) -> type:
    props = {name: property(lambda self, n=name, d=dim: _weight_norm(getattr(self, n + "_v"), getattr(self, n + "_g"), d))
             for name, dim in dims.items()}
    return type(base.__name__, (base,), {"_weight_norm_dims": dict(dims), "__reduce_ex__": _reduce_ex,
                                         "__module__": base.__module__, "__qualname__": base.__qualname__,
                                         **props})


def _reduce_ex(self, protocol):
    """Pickle and deepcopy through the module's real class (the subclass is made per module)."""
    cls = type(self)
    return _rebuild, (cls.__bases__[0], cls._weight_norm_dims, self.__dict__)


def _rebuild(base: type, dims: dict, state: dict):
    obj = base.__new__(base)
    obj.__dict__.update(state)
    obj.__class__ = _weight_norm_class(base, dims)
    return obj


def _dims(module) -> dict:
    return dict(getattr(type(module), "_weight_norm_dims", {}))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` (its norm over every dim but ``dim``; all of them
    when ``dim`` is None) and ``<name>_v`` (its direction), with ``module.<name> = g * v / ||v||``.

    >>> import tracenn
    >>> m = tracenn.nn.utils.weight_norm(tracenn.nn.Linear(20, 40))  # doctest: +SKIP
    >>> m.weight_g.shape, m.weight_v.shape  # doctest: +SKIP
    (tracenn.Size([40, 1]), tracenn.Size([40, 20]))
    """
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    dims = _dims(module)
    if name in dims:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    if dim is None:
        dim = -1
    weight = getattr(module, name)
    if isinstance(weight, UninitializedParameter):
        raise ValueError("The module passed to `WeightNorm` can't have uninitialized parameters. "
                         "Make sure to run the dummy forward before applying weight normalization")
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, 2, dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    dims[name] = dim
    base = type(module).__bases__[0] if _dims(module) else type(module)
    module.__class__ = _weight_norm_class(base, dims)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``module.<name>`` becomes a parameter again, holding ``g * v / ||v||``."""
    dims = _dims(module)
    if name not in dims:
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    weight = getattr(module, name).detach()
    del module._parameters[name + "_g"]
    del module._parameters[name + "_v"]
    del dims[name]
    base = type(module).__bases__[0]
    module.__class__ = _weight_norm_class(base, dims) if dims else base
    module.register_parameter(name, Parameter(weight))
    return module
