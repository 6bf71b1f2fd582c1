"""The old ``nn.utils.weight_norm`` and ``nn.utils.spectral_norm`` (deprecated in torch in favour of
:mod:`tracenn.nn.utils.parametrizations`, whose state dicts load theirs).

torch keeps their parameters and buffers on the module (``weight_g``/``weight_v``;
``weight_orig``/``weight_u``/``weight_v``) and recomputes a plain ``weight`` attribute in a
forward pre-hook. Here ``weight`` is a property of a per-module subclass (with the module's own
class name) that computes it on every read: the same parameters, buffers and state dict, and
ordinary code for ``tracenn.compile`` to trace (a hook setting an attribute would leave a traced
value on the module, and the traced forward would read the weight as a constant). The value is
always current, where torch's attribute is stale until the next forward. Spectral norm's power
iteration runs, as in torch, in a forward pre-hook: once per training-mode forward, however often
the forward (or the user, between steps) reads the weight.
"""
from __future__ import annotations

import warnings

from ...autograd.grad_mode import no_grad
from ..functional import normalize
from ..modules.module import Module
from ..parameter import Parameter, UninitializedParameter
from .parametrizations import _norm_except_dim, _weight_norm

__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm", "WeightNorm",
           "SpectralNorm"]


def _computers(module) -> dict:
    return dict(getattr(type(module), "_tracenn_computed", {}))


def _class_for(base: type, computers: dict) -> type:
    props = {name: property(c) for name, c in computers.items()}
    return type(base.__name__, (base,), {"_tracenn_computed": dict(computers), "__reduce_ex__": _reduce_ex,
                                         "__module__": base.__module__, "__qualname__": base.__qualname__,
                                         **props})


def _reduce_ex(self, protocol):
    """Pickle and deepcopy through the module's real class (the subclass is made per module)."""
    cls = type(self)
    return _rebuild, (cls.__bases__[0], cls._tracenn_computed, self.__dict__)


def _rebuild(base: type, computers: dict, state: dict):
    obj = base.__new__(base)
    obj.__dict__.update(state)
    obj.__class__ = _class_for(base, computers)
    return obj


def _set_computers(module, computers: dict) -> None:
    base = type(module).__bases__[0] if _computers(module) else type(module)
    module.__class__ = _class_for(base, computers) if computers else base


class WeightNorm:
    """``module.<name>`` computed as ``g * v / ||v||`` (the norm over every dim but ``dim``)."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module):
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    __call__ = compute_weight


class SpectralNorm:
    """``module.<name>`` computed as ``W / sigma``, ``sigma`` estimated by power iteration with the
    buffers ``<name>_u`` and ``<name>_v`` (updated in place on training-mode reads)."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ValueError("Expected n_power_iterations to be positive, but "
                             f"got n_power_iterations={n_power_iterations}")
        self.name, self.dim, self.n_power_iterations, self.eps = name, dim, n_power_iterations, eps

    def reshape_weight_to_matrix(self, weight):
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.dim()) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def compute_weight(self, module, do_power_iteration: bool):
        weight = getattr(module, self.name + "_orig")
        u, v = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with no_grad():  # (in place: the buffers keep their identity)
                for _ in range(self.n_power_iterations):
                    v.copy_(normalize(weight_mat.t().mv(u), dim=0, eps=self.eps))
                    u.copy_(normalize(weight_mat.mv(v), dim=0, eps=self.eps))
        if module.training:  # the next forward's iteration changes the buffers this backward saves
            u, v = u.clone(), v.clone()
        sigma = u.dot(weight_mat.mv(v))
        return weight / sigma

    def __call__(self, module):
        return self.compute_weight(module, do_power_iteration=False)


class _PowerIteration:
    """Spectral norm's forward pre-hook: advance ``<name>_u`` and ``<name>_v`` once per training-mode
    forward. Traceable: ``tracenn.compile`` records its buffer updates in the graph, before the
    forward reads the weight."""
    _tracenn_traceable = True

    def __init__(self, fn: SpectralNorm) -> None:
        self.fn = fn

    def __call__(self, module, inputs) -> None:
        if module.training:
            self.fn.compute_weight(module, do_power_iteration=True)


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split ``module.<name>`` into ``<name>_g`` (its norm over every dim but ``dim``; all of them
    when ``dim`` is None) and ``<name>_v`` (its direction), with ``module.<name> = g * v / ||v||``."""
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    computers = _computers(module)
    if isinstance(computers.get(name), WeightNorm):
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    dim = -1 if dim is None else dim
    weight = getattr(module, name)
    if isinstance(weight, UninitializedParameter):
        raise ValueError("The module passed to `WeightNorm` can't have uninitialized parameters. "
                         "Make sure to run the dummy forward before applying weight normalization")
    del module._parameters[name]
    module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, 2, dim).detach()))
    module.register_parameter(name + "_v", Parameter(weight.detach()))
    computers[name] = WeightNorm(name, dim)
    _set_computers(module, computers)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`weight_norm`: ``module.<name>`` becomes a parameter again, holding ``g * v / ||v||``."""
    computers = _computers(module)
    if not isinstance(computers.get(name), WeightNorm):
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    return _restore(module, computers, name, getattr(module, name).detach(), (name + "_g", name + "_v"), ())


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its spectral norm, estimated by ``n_power_iterations`` of power
    iteration per training-mode forward (parameter ``<name>_orig``, buffers ``<name>_u`` and
    ``<name>_v``). ``dim``: the output dim (default 1 for ``ConvTranspose``, else 0)."""
    from ..modules.conv import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
    computers = _computers(module)
    if isinstance(computers.get(name), SpectralNorm):
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    if dim is None:
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d, ConvTranspose3d)) else 0
    fn = SpectralNorm(name, n_power_iterations, dim, eps)
    weight = module._parameters[name]
    if isinstance(weight, UninitializedParameter):
        raise ValueError("The module passed to `SpectralNorm` can't have uninitialized parameters. "
                         "Make sure to run the dummy forward before applying spectral normalization")
    with no_grad():
        weight_mat = fn.reshape_weight_to_matrix(weight)
        h, w = weight_mat.shape
        u = normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
        v = normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    module.register_buffer(name + "_u", u)
    module.register_buffer(name + "_v", v)
    computers[name] = fn
    _set_computers(module, computers)
    module.register_forward_pre_hook(_PowerIteration(fn))
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo :func:`spectral_norm`: ``module.<name>`` becomes a parameter holding ``W / sigma``
    (sigma from the current vectors, without another iteration)."""
    computers = _computers(module)
    fn = computers.get(name)
    if not isinstance(fn, SpectralNorm):
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    weight = fn.compute_weight(module, do_power_iteration=False).detach()
    hooks = module._forward_pre_hooks
    for key in [k for k, h in hooks.items() if isinstance(h, _PowerIteration) and h.fn.name == name]:
        del hooks[key]
    return _restore(module, computers, name, weight, (name + "_orig",), (name + "_u", name + "_v"))


def _restore(module, computers, name, weight, params, buffers):
    """``module.<name>`` a plain parameter holding ``weight`` again, without the ``params`` and
    ``buffers`` its computation used."""
    for p in params:
        del module._parameters[p]
    for b in buffers:
        del module._buffers[b]
    del computers[name]
    _set_computers(module, computers)
    module.register_parameter(name, Parameter(weight))
    return module
