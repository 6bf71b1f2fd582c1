"""``Optimizer``: the base class of every optimizer, with torch's param groups, state and hooks.

Each optimizer keeps its update rule as a pure function in :mod:`tracenn.optim._functional` and its
``step()`` is bookkeeping around it: collect the parameters that have a gradient, make their state
on first use, do the rule's scalar math on the host, run its tensor half under ``no_grad``
(:func:`apply_rule`: in eager mode one jitted program per param group, torch's ``foreach``), and
write the results back in place, so parameters and state tensors keep their identity.

Scalar state (``step``, NAdam's ``mu_product``) is a 0-d tensor in ``state`` as in torch, so state
dicts look the same. In eager mode its value is also mirrored on the host (see :func:`host_value`),
so the update rules do the scalar math (bias corrections) in Python doubles exactly as torch's
default, non-capturable, implementation does, without a device round trip per step.
"""
from __future__ import annotations

import struct
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from itertools import chain
from typing import Any, Callable

import jax

from .. import _dispatch
from .. import dtypes as _dt
from .._api.creation import tensor as _tensor
from ..autograd.graph import PROFILER
from ..autograd.grad_mode import GRAD
from ..nn.utils.hooks import RemovableHandle
from ..tensor import Tensor
from ._fused import apply_rule, write_back, write_back_all  # noqa: F401 (the optimizers import them from here)
from ._sparse import refuse as _refuse_sparse
from ._state import State, StateDict, structure_key

__all__ = ["Optimizer", "register_optimizer_step_pre_hook", "register_optimizer_step_post_hook",
           "required"]

_global_optimizer_pre_hooks: "OrderedDict[int, Callable]" = OrderedDict()
_global_optimizer_post_hooks: "OrderedDict[int, Callable]" = OrderedDict()


class _RequiredParameter:
    """Singleton marking an option every param group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs) -> None | (args, kwargs)`` before every
    optimizer's ``step``."""
    handle = RemovableHandle(_global_optimizer_pre_hooks)
    _global_optimizer_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Register ``hook(optimizer, args, kwargs) -> None`` after every optimizer's ``step``."""
    handle = RemovableHandle(_global_optimizer_post_hooks)
    _global_optimizer_post_hooks[handle.id] = hook
    return handle


def _typename(obj) -> str:
    """torch.typename: 'torch.FloatTensor' for tensors, else the qualified type name."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    qualname = getattr(obj, "__qualname__", "") or getattr(obj, "__name__", "")
    if not qualname:
        module, qualname = obj.__class__.__module__ or "", obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


# ---- host-mirrored scalar state ------------------------------------------------------------------

_SCALARS: dict = {}  # (value, dtype) -> 0-d Tensor; all parameters of a step share one


def _scalar(value: float, dtype: _dt.dtype) -> Tensor:
    key = (value, dtype)
    t = _SCALARS.get(key)
    if t is None:
        if len(_SCALARS) > 16:
            _SCALARS.clear()
        t = _SCALARS[key] = _tensor(value, dtype=dtype)
    return t


def host_value(t):
    """The Python value of a 0-d state tensor (``step``, ``mu_product``).

    Read from the host mirror that :func:`set_host_value` keeps, so eager steps never wait on the
    device; a tensor changed some other way (loaded, edited by the user) is read once with
    ``item()``. Plain numbers (old state dicts) pass through.
    """
    if not isinstance(t, Tensor):
        return t
    if _dispatch.TRACE[0] is not None:  # a compiled step reads the tensor, never a baked number
        return t
    cached = t.__dict__.get("_optim_host")
    version = t._version
    if cached is not None and cached[0] == version:
        return cached[1]
    value = t.item()
    t._optim_host = (version, value)
    return value


def set_host_value(t: Tensor, value: float) -> None:
    """Write ``value`` into the 0-d tensor ``t`` in place and remember it on the host."""
    if isinstance(value, Tensor):  # a compiled step computed it as a tensor: no host mirror
        t.copy_(value)
        t.__dict__.pop("_optim_host", None)
        return
    write_back(t, _scalar(value, t.dtype))
    t._optim_host = (t._version, value)


def to_f32(x: float) -> float:
    """``x`` rounded to float32, as a float32 state tensor would hold it."""
    return struct.unpack("f", struct.pack("f", x))[0]


def scalar_dtype() -> _dt.dtype:
    """torch's dtype for ``step`` tensors: float64 under a float64 default dtype, else float32."""
    return _dt.float64 if _dt.get_default_dtype() is _dt.float64 else _dt.float32


def new_scalar_state(value: float, device=None) -> Tensor:
    """A fresh 0-d state tensor (a new object: state tensors are written in place). As in torch
    it lives on the CPU unless ``device`` is given (capturable mode: the parameter's device).
    Outside a trace, tensors made with the same value share one array, as eager steps leave them
    (a compiled step then takes them as one input: see compiler/api._shared_scalars); a trace
    makes them as it makes any tensor, and finds equal ones by value (Tracer.const)."""
    if device is None and _dispatch.TRACE[0] is None:  # one array for equal counts (writes replace it)
        t = Tensor._wrap(_scalar(float(value), scalar_dtype())._value)
    else:
        t = _tensor(float(value), dtype=scalar_dtype(), device=device)
    t._optim_host = (t._version, float(value))
    return t


# ---- the base class ------------------------------------------------------------------------------

def _unknown_optimizer(opt):
    """The error for a compiled step that steps an optimizer it was not given: its state would be
    neither read nor written back (the call then runs eagerly, with a warning)."""
    from ..errors import UnsupportedError
    return UnsupportedError(
        f"the compiled code called {type(opt).__name__}.step() on an optimizer that the compiled function does "
        "not name itself (one passed as an argument, or reached through another function or a container), so "
        "the program could not carry its state. tracenn.compile finds a step's optimizers through its closure, "
        "globals, default arguments and a method's self: refer to the optimizer one of those ways")


class Optimizer:
    r"""Base class for all optimizers.

    Args:
        params (iterable): an iterable of :class:`tracenn.Tensor` s, of ``(name, tensor)`` pairs
            (``model.named_parameters()``), or of dicts defining parameter groups. Use an ordered
            collection: a state dict refers to parameters by their position.
        defaults (dict): default values of the optimization options, used by groups that do not
            set them.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.ones(2))
    >>> b = tracenn.nn.Parameter(tracenn.zeros(1))
    >>> opt = tracenn.optim.SGD([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    >>> [g["lr"] for g in opt.param_groups]
    [0.1, 0.5]
    >>> opt.state_dict()["param_groups"][1]["params"]
    [1]
    """

    _group_fallbacks: dict = {}  # group option -> value for state pickled before it existed
    _scalar_state: tuple = ()    # per-parameter state kept as 0-d tensors ("step", ...)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._patch_step_function()

        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            "or dicts, but got " + _typename(params))

        self.state: defaultdict = State()  # (a defaultdict(dict) that counts its changes: optim/_state.py)
        self.param_groups: list[dict[str, Any]] = []

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    # ---- pickling / repr ----------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    # The structure of ``state`` as a key, read out only after a change (a compiled step's guard)
    _structure_key = structure_key

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks", "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self._patch_step_function()
        self.defaults.setdefault("differentiable", False)
        # Group options (and scalar state) that pickles from older versions may lack: each
        # optimizer declares them once instead of re-listing them in its own __setstate__.
        for group in self.param_groups:
            for key, value in self._group_fallbacks.items():
                group.setdefault(key, value)
        if self._scalar_state:
            self._upgrade_scalar_state(*self._scalar_state)

    def __repr__(self) -> str:
        format_string = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            format_string += "\n"
            format_string += f"Parameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    format_string += f"    {key}: {group[key]}\n"
        format_string += ")"
        return format_string

    # ---- step and its hooks -------------------------------------------------------------------

    @staticmethod
    def profile_hook_step(func: Callable) -> Callable:
        """Wrap a ``step`` so the global and per-instance step hooks run around it."""
        import functools

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            self = args[0]
            for pre_hook in chain(_global_optimizer_pre_hooks.values(),
                                  self._optimizer_step_pre_hooks.values()):
                result = pre_hook(self, args, kwargs)
                if result is not None:
                    if isinstance(result, tuple) and len(result) == 2:
                        args, kwargs = result
                    else:
                        raise RuntimeError(f"{func} must return None or a tuple of (new_args, new_kwargs), "
                                           f"but got {result}.")
            _refuse_sparse(self)  # (torch's "<Name> does not support sparse gradients", see _sparse.py)
            tracer = _dispatch.TRACE[0]
            if tracer is None and PROFILER[0] is not None:  # a profile records: a region, named as torch's
                from ..profiler import record_function
                with record_function(f"Optimizer.step#{type(self).__name__}.step"):
                    out = func(*args, **kwargs)
                    jax.block_until_ready([p._value for g in self.param_groups for p in g["params"]])
            elif tracer is None:
                out = func(*args, **kwargs)
            else:  # a compiled training step: the update section of its graph
                known = getattr(tracer, "optimizers", None)
                if known is not None and id(self) not in known:
                    raise _unknown_optimizer(self)
                prev, tracer.phase = tracer.phase, "update"
                try:
                    out = func(*args, **kwargs)
                finally:
                    tracer.phase = prev
            for post_hook in chain(self._optimizer_step_post_hooks.values(),
                                   _global_optimizer_post_hooks.values()):
                post_hook(self, args, kwargs)
            return out

        return wrapper

    def _patch_step_function(self) -> None:
        if not getattr(self.__class__.step, "hooked", None):
            self.__class__.step = self.profile_hook_step(self.__class__.step)
            self.__class__.step.hooked = True

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None | (new_args, new_kwargs)`` runs before ``step``."""
        handle = RemovableHandle(self._optimizer_step_pre_hooks)
        self._optimizer_step_pre_hooks[handle.id] = hook
        return handle

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None`` runs after ``step``."""
        handle = RemovableHandle(self._optimizer_step_post_hooks)
        self._optimizer_step_post_hooks[handle.id] = hook
        return handle

    def step(self, closure: Callable[[], float] | None = None):
        """Perform a single optimization step (update the parameters).

        Args:
            closure (Callable): a closure that re-evaluates the model and returns the loss;
                optional for most optimizers.
        """
        raise NotImplementedError

    def _run_closure(self, closure):
        """torch calls the closure with grad enabled, even inside ``step``'s no_grad."""
        if closure is None:
            return None
        prev, GRAD.enabled = GRAD.enabled, True
        try:
            return closure()
        finally:
            GRAD.enabled = prev

    # ---- state dict ---------------------------------------------------------------------------

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None`` runs before :meth:`state_dict`."""
        return _register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict | None`` runs after :meth:`state_dict`."""
        return _register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict | None`` runs before :meth:`load_state_dict`."""
        return _register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None`` runs after :meth:`load_state_dict`."""
        return _register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as a dict, in torch's layout.

        * ``state``: parameter index -> that parameter's state (e.g. ``{'step': tensor(3.),
          'exp_avg': ..., 'exp_avg_sq': ...}``). The tensors are the live state, as in torch:
          save them (or ``copy.deepcopy`` the dict) to keep a snapshot.
        * ``param_groups``: one dict per group with its options and ``'params'``, the indices of
          its parameters, counted across groups in order (``'param_names'`` too when the optimizer
          was given names).
        """
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)

        param_mappings: dict[int, int] = {}
        start_index = 0

        def pack_group(group):
            nonlocal start_index
            packed = {k: v for k, v in group.items() if k != "params"}
            param_mappings.update({id(p): i for i, p in enumerate(group["params"], start_index)
                                   if id(p) not in param_mappings})
            packed["params"] = [param_mappings[id(p)] for p in group["params"]]
            start_index += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(param_mappings[id(k)] if isinstance(k, Tensor) else k): v
                        for k, v in self.state.items()}
        state_dict = {"state": packed_state, "param_groups": param_groups}

        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state_dict)
            if result is not None:
                state_dict = result
        return state_dict

    @staticmethod
    def _process_value_according_to_param_policy(param, value, param_id, param_groups, key=None):
        """Cast a loaded state tensor as torch does: ``step`` stays as saved, the rest take the
        parameter's dtype (floating parameters) and device. Always a copy (never an alias of the
        loaded dict's tensor), so two optimizers never share state."""
        if key == "step":
            return value.clone()
        if param.is_floating_point():
            value = value.to(dtype=param.dtype, device=param.device)
        else:
            value = value.to(device=param.device)
        return value.clone()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load an optimizer state made by :meth:`state_dict` (of this or an identical optimizer).

        The saved groups are matched to this optimizer's groups by position, and their options
        (``lr``, ...) replace the current ones. Load it after creating any LR scheduler, which
        would otherwise overwrite the loaded learning rates.
        """
        state_dict = state_dict.copy()
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result

        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match the size "
                             "of optimizer's group")

        id_map = dict(zip(chain.from_iterable(g["params"] for g in saved_groups),
                          chain.from_iterable(g["params"] for g in groups)))

        def _cast(param, value, param_id=None, param_groups=None, key=None):
            if isinstance(value, Tensor):
                return Optimizer._process_value_according_to_param_policy(
                    param, value, param_id, param_groups, key)
            if isinstance(value, dict):
                return {k: _cast(param, v, param_id=param_id, param_groups=param_groups, key=k)
                        for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return type(value)(_cast(param, v, param_id=param_id, param_groups=param_groups)
                                   for v in value)
            return value

        state: defaultdict = State()
        for k, v in state_dict["state"].items():
            if k in id_map:
                param = id_map[k]
                state[param] = StateDict(_cast(param, v, param_id=k, param_groups=state_dict["param_groups"]))
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng) for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})
        self._share_scalar_state()

        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def _share_scalar_state(self) -> None:
        """Make the loaded 0-d scalar states (``step``...) of equal value hold one array, as eager
        steps leave them, so a compiled step takes them as one input (api._shared_scalars)."""
        for st in self.state.values():
            for key in self._scalar_state:
                t = st.get(key)
                if isinstance(t, Tensor) and t.dim() == 0 and t._base is None:
                    set_host_value(t, host_value(t))

    def _upgrade_scalar_state(self, *keys: str) -> None:
        """State saved with plain-number ``step``s (old torch) gets 0-d tensors, as torch's
        ``__setstate__`` does."""
        for group in self.param_groups:
            for p in group["params"]:
                p_state = self.state.get(p)
                if p_state:
                    for key in keys:
                        if key in p_state and not isinstance(p_state[key], Tensor):
                            p_state[key] = new_scalar_state(float(p_state[key]))

    # ---- gradients and groups -----------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors.

        Args:
            set_to_none (bool): set ``.grad`` to None instead of filling it with zeros (default).
                A step skips parameters whose ``.grad`` is None, but steps those with a zero one.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:  # (read raw: a compiled step's pending grad is dropped, not made a tensor)
                    if p.__dict__.get("grad") is not None:
                        p.grad = None
                elif p.grad is not None:
                    if p.grad.grad_fn is not None:
                        p.grad.detach_()
                    else:
                        p.grad.requires_grad_(False)
                    p.grad.zero_()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a param group to :attr:`param_groups` (e.g. to train layers unfrozen later).

        Args:
            param_group (dict): the tensors to optimize (``'params'``) and group-specific options;
                options it does not give take the optimizer's defaults.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")

        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list "
                            "instead.")
        else:
            param_group["params"] = list(params)

        tensors, names = [], []
        for param in param_group["params"]:
            if isinstance(param, tuple):
                names.append(param[0])
                tensors.append(param[1])
            else:
                tensors.append(param)
        param_group["params"] = tensors
        if names:
            if len(names) == len(tensors):
                param_group["param_names"] = names
            else:
                raise ValueError("all optimizer params should be with/without names. Some param names "
                                 "are missing")

        for param in param_group["params"]:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(param))
            if not self.defaults.get("differentiable", None) and not (param.is_leaf or param.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")

        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            param_group.setdefault(name, default)

        params = param_group["params"]
        if len(params) != len({id(p) for p in params}):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, "
                          "this will cause an error; see github.com/pytorch/pytorch/issues/40967 for "
                          "more information", stacklevel=3)

        param_set: set[int] = set()
        for group in self.param_groups:
            param_set.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                current = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {current} to the optimizer")
        if not param_set.isdisjoint(id(p) for p in param_group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")

        self.param_groups.append(param_group)


def _register(hooks: OrderedDict, hook: Callable, prepend: bool) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def as_scalar(x):
    """A 1-element tensor option (``lr``) as a 0-d tensor, as torch's ``_to_scalar``."""
    if isinstance(x, Tensor) and x.dim() != 0:
        return x.squeeze()
    return x


def check_lr(lr) -> None:
    """torch's checks on ``lr``: a 1-element tensor or a non-negative number."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= lr:
        raise ValueError(f"Invalid learning rate: {lr}")


def shared_coefs(memo: dict, param: Tensor, coefs_fn: Callable, *scalars, **options):
    """``coefs_fn(*scalars, **options, dtype=param.dtype)``, made once per distinct ``scalars``
    (step counts) and dtype in a group (``memo``): the parameters that share the result share a
    row of the fused program's input, and the host does the scalar math once."""
    dtype = param.dtype.to_real()  # (a complex parameter is updated as its real view)
    key = (tuple(id(x) if isinstance(x, Tensor) else x for x in scalars), dtype)
    coefs = memo.get(key)
    if coefs is None:
        coefs = memo[key] = coefs_fn(*scalars, **options, dtype=dtype)
    return coefs


def next_step(step_t: Tensor, capturable: bool):
    """Advance a ``step`` state tensor by one and return the new count for the update rule: a
    Python number from the host mirror, or (``capturable``) the tensor itself, so the bias
    corrections become tensor math as in torch's capturable mode."""
    if capturable or _dispatch.TRACE[0] is not None:  # a compiled step: the count is an input
        step_t.copy_(step_t + 1)
        return step_t
    step = host_value(step_t) + 1
    set_host_value(step_t, step)
    return step


def check_not_differentiable(differentiable: bool) -> None:
    if differentiable:
        raise NotImplementedError(
            "differentiable=True is not supported: tracenn's optimizers update parameters in place "
            "under no_grad. To differentiate through an update, call the pure update rules in "
            "tracenn.optim._functional on tensors that require grad.")
