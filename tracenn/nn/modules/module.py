"""``nn.Module``: parameters, buffers, submodules and hooks kept in ordered dicts, as torch does.

Everything a user can observe follows torch 2.13: registration rules, traversal order and
de-duplication, ``state_dict`` key names and order, ``load_state_dict`` results and error texts,
``repr``, hook call order and what hooks may replace.

Names in messages: where torch's text names a torch type (``torch.FloatTensor``,
``torch.nn.Parameter``, ``torch.Size([2])``, ``torch Tensor``), tracenn's text is torch's with
``torch`` replaced by ``tracenn`` (``tracenn.FloatTensor``, ``tracenn.nn.Parameter``, ...), and is
otherwise identical. The tests check this rule against torch.

Extensions (documented where they apply): ``load_state_dict`` also accepts numpy arrays, JAX arrays
and PyTorch tensors as values, so a torch checkpoint loads directly.

Layout: this file has registration, traversal, modes, moves/casts and repr; the hook methods and
``__call__`` are in ``_hooks.py`` (with the module-global ``register_module_*`` functions,
re-exported here as in torch) and ``state_dict``/``load_state_dict`` in ``_state_dict.py``. Both are
mixins of :class:`Module`.
"""
from __future__ import annotations

import inspect
import warnings
from collections import OrderedDict
from typing import Any, Callable

from ... import dtypes as _dt
from ..._dispatch import EPOCH
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from ..parameter import Buffer, Parameter
from . import _hooks
from ._hooks import (  # noqa: F401  (torch's names live here)
    HookMixin, _WrappedHook, register_module_backward_hook, register_module_buffer_registration_hook,
    register_module_forward_hook, register_module_forward_pre_hook, register_module_full_backward_hook,
    register_module_full_backward_pre_hook, register_module_module_registration_hook,
    register_module_parameter_registration_hook)
from ._state_dict import StateDictMixin, _IncompatibleKeys  # noqa: F401

__all__ = [
    "register_module_forward_pre_hook", "register_module_forward_hook",
    "register_module_full_backward_pre_hook", "register_module_backward_hook",
    "register_module_full_backward_hook", "register_module_buffer_registration_hook",
    "register_module_module_registration_hook", "register_module_parameter_registration_hook",
    "Module",
]


def _addindent(s_, numSpaces):
    s = s_.split("\n")
    if len(s) == 1:
        return s_
    first = s.pop(0)
    s = [(numSpaces * " ") + line if line.strip() else "" for line in s]
    return first + "\n" + "\n".join(s)


def _typename(obj) -> str:
    """torch.typename with tracenn's names: 'tracenn.FloatTensor' for a float32 tensor."""
    if isinstance(obj, Tensor):
        return _dt.TYPE_NAMES[obj.dtype].replace("torch.", "tracenn.")
    from ..._api.query import typename
    return typename(obj)


def _forward_unimplemented(self, *input: Any) -> None:
    raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required "forward" function')


class Module(HookMixin, StateDictMixin):
    r"""Base class for all neural network modules; subclass it and define ``forward``.

    Assigning a :class:`~tracenn.nn.Parameter`, a :class:`~tracenn.nn.Buffer` or a Module as an
    attribute registers it, so ``parameters()``, ``state_dict()``, ``to()``, ``repr`` and the rest
    see it. Call the module (``model(x)``), not ``forward``: the call runs the hooks.

    >>> import tracenn
    >>> import tracenn.nn as nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1 = nn.Linear(4, 3)
    ...         self.act = nn.ReLU()
    ...         self.fc2 = nn.Linear(3, 1)
    ...     def forward(self, x):
    ...         return self.fc2(self.act(self.fc1(x)))
    >>> net = Net()
    >>> net
    Net(
      (fc1): Linear(in_features=4, out_features=3, bias=True)
      (act): ReLU()
      (fc2): Linear(in_features=3, out_features=1, bias=True)
    )
    >>> net(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 1])
    >>> [name for name, _ in net.named_parameters()]
    ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']
    """

    dump_patches: bool = False
    _version: int = 1  # saved in state_dict()._metadata; bump when a module's state layout changes
    training: bool
    call_super_init: bool = False
    _compiled_call_impl: Callable | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if self.call_super_init is False and bool(kwargs):
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                            f"'{next(iter(kwargs))}'")
        if self.call_super_init is False and bool(args):
            raise TypeError(f"{type(self).__name__}.__init__() takes 1 positional argument but "
                            f"{len(args) + 1} were given")
        # object.__setattr__ skips Module.__setattr__'s registration logic for the internals.
        sa = super().__setattr__
        sa("training", True)
        sa("_parameters", {})
        sa("_buffers", {})
        sa("_non_persistent_buffers_set", set())
        sa("_backward_pre_hooks", OrderedDict())
        sa("_backward_hooks", OrderedDict())
        sa("_is_full_backward_hook", None)
        sa("_forward_hooks", OrderedDict())
        sa("_forward_hooks_with_kwargs", OrderedDict())
        sa("_forward_hooks_always_called", OrderedDict())
        sa("_forward_pre_hooks", OrderedDict())
        sa("_forward_pre_hooks_with_kwargs", OrderedDict())
        sa("_state_dict_hooks", OrderedDict())
        sa("_state_dict_pre_hooks", OrderedDict())
        sa("_load_state_dict_pre_hooks", OrderedDict())
        sa("_load_state_dict_post_hooks", OrderedDict())
        sa("_modules", {})
        if self.call_super_init:
            super().__init__(*args, **kwargs)

    forward: Callable[..., Any] = _forward_unimplemented

    # ---- registration ------------------------------------------------------------------------

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state that is not a parameter (e.g. BatchNorm's ``running_mean``).

        Args:
            name: the attribute name.
            tensor: the buffer, or None (then ``to()``/``state_dict()`` skip it).
            persistent: whether it is part of ``state_dict()``.

        >>> import tracenn
        >>> m = tracenn.nn.Module()
        >>> m.register_buffer("running_mean", tracenn.zeros(3))
        >>> m.register_buffer("cache", tracenn.zeros(3), persistent=False)
        >>> list(m.state_dict())
        ['running_mean']
        """
        EPOCH[0] += 1  # compiled calls re-check module structure
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        elif not isinstance(name, str):
            raise TypeError(f"buffer name should be a string. Got {_typename(name)}")
        elif "." in name:
            raise KeyError('buffer name can\'t contain "."')
        elif name == "":
            raise KeyError('buffer name can\'t be empty string ""')
        elif hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute '{name}' already exists")
        elif tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{_typename(tensor)}' object to buffer '{name}' "
                            "(tracenn Tensor or None required)")
        else:
            for hook in _hooks._global_buffer_registration_hooks.values():
                output = hook(self, name, tensor)
                if output is not None:
                    tensor = output
            self._buffers[name] = tensor
            if persistent:
                self._non_persistent_buffers_set.discard(name)
            else:
                self._non_persistent_buffers_set.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (a :class:`Parameter` or None) under ``name``; same as assigning it."""
        EPOCH[0] += 1  # compiled calls re-check module structure
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        elif not isinstance(name, str):
            raise TypeError(f"parameter name should be a string. Got {_typename(name)}")
        elif "." in name:
            raise KeyError('parameter name can\'t contain "."')
        elif name == "":
            raise KeyError('parameter name can\'t be empty string ""')
        elif hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute '{name}' already exists")

        if param is None:
            self._parameters[name] = None
        elif not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{_typename(param)}' object to parameter '{name}' "
                            "(tracenn.nn.Parameter or None required)")
        elif param.grad_fn:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, compute "
                "the value in the forward() method.")
        else:
            for hook in _hooks._global_parameter_registration_hooks.values():
                output = hook(self, name, param)
                if output is not None:
                    param = output
            self._parameters[name] = param

    def add_module(self, name: str, module: "Module | None") -> None:
        """Add a child module under ``name`` (same as assigning it as an attribute)."""
        EPOCH[0] += 1  # compiled calls re-check module structure
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        elif not isinstance(name, str):
            raise TypeError(f"module name should be a string. Got {_typename(name)}")
        elif hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")
        elif "." in name:
            raise KeyError(f'module name can\'t contain ".", got: {name}')
        elif name == "":
            raise KeyError('module name can\'t be empty string ""')
        for hook in _hooks._global_module_registration_hooks.values():
            output = hook(self, name, module)
            if output is not None:
                module = output
        self._modules[name] = module

    def register_module(self, name: str, module: "Module | None") -> None:
        """Alias for :meth:`add_module`."""
        self.add_module(name, module)

    def get_submodule(self, target: str) -> "Module":
        """The submodule at dotted path ``target`` ("" is this module).

        >>> import tracenn.nn as nn
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
        >>> net.get_submodule("1.0")
        ReLU()
        """
        if target == "":
            return self
        atoms = target.split(".")
        mod = self
        for item in atoms:
            if not hasattr(mod, item):
                raise AttributeError(mod._get_name() + " has no attribute `" + item + "`")
            mod = getattr(mod, item)
            if not isinstance(mod, Module):
                raise AttributeError("`" + item + "` is not an nn.Module")
        return mod

    def set_submodule(self, target: str, module: "Module", strict: bool = False) -> None:
        """Set the submodule at dotted path ``target``; with ``strict`` it must exist already."""
        if target == "":
            raise ValueError("Cannot set the submodule without a target name!")
        atoms = target.split(".")
        if not isinstance(module, Module):
            raise ValueError("`" + "module" + f"` is not an nn.Module, found {type(module)}")
        if len(atoms) == 1:
            parent = self
        else:
            parent = self.get_submodule(".".join(atoms[:-1]))
        if strict and not hasattr(parent, atoms[-1]):
            raise AttributeError(parent._get_name() + " has no attribute `" + atoms[-1] + "`")
        if hasattr(parent, atoms[-1]):
            mod = getattr(parent, atoms[-1])
            if not isinstance(mod, Module):
                raise AttributeError("`" + atoms[-1] + "` is not an nn.Module")
        setattr(parent, atoms[-1], module)

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (e.g. ``"net.0.weight"``)."""
        module_path, _, param_name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, param_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + param_name + "`")
        param = getattr(mod, param_name)
        if not isinstance(param, Parameter):
            raise AttributeError("`" + param_name + "` is not an nn.Parameter")
        return param

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target``."""
        module_path, _, buffer_name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if not hasattr(mod, buffer_name):
            raise AttributeError(mod._get_name() + " has no attribute `" + buffer_name + "`")
        buffer = getattr(mod, buffer_name)
        if buffer_name not in mod._buffers:
            raise AttributeError("`" + buffer_name + "` is not a buffer")
        return buffer

    # ---- moves and casts ----------------------------------------------------------------------

    def _apply(self, fn, recurse=True):
        """Apply ``fn`` to every parameter, gradient and buffer.

        Parameters and their gradients keep their objects (``param.data = fn(param)``), so
        optimizers built before ``to()`` still hold the module's parameters; buffers are replaced
        by ``fn``'s result, as in torch.
        """
        EPOCH[0] += 1  # compiled calls re-check module structure
        if recurse:
            for module in self.children():
                module._apply(fn)
        for key, param in self._parameters.items():
            if param is None:
                continue
            with no_grad():
                param_applied = fn(param)
            param_grad = param.grad
            param.data = param_applied
            if param_grad is not None:
                with no_grad():
                    grad_applied = fn(param_grad)
                param_grad.data = grad_applied
        for key, buf in self._buffers.items():
            if buf is not None:
                self._buffers[key] = fn(buf)
        return self

    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """Call ``fn`` on every submodule (children first, recursively) and then on self.

        Typical use is initialising parameters (torch's documentation example):

        >>> import tracenn
        >>> import tracenn.nn as nn
        >>> @tracenn.no_grad()
        ... def init_weights(m):
        ...     print(m)
        ...     if type(m) is nn.Linear:
        ...         m.weight.fill_(1.0)
        ...         print(m.weight)
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
        >>> net.apply(init_weights)
        Linear(in_features=2, out_features=2, bias=True)
        Parameter containing:
        tensor([[1., 1.],
                [1., 1.]], requires_grad=True)
        Linear(in_features=2, out_features=2, bias=True)
        Parameter containing:
        tensor([[1., 1.],
                [1., 1.]], requires_grad=True)
        Sequential(
          (0): Linear(in_features=2, out_features=2, bias=True)
          (1): Linear(in_features=2, out_features=2, bias=True)
        )
        Sequential(
          (0): Linear(in_features=2, out_features=2, bias=True)
          (1): Linear(in_features=2, out_features=2, bias=True)
        )
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def cuda(self, device=None) -> "Module":
        """Move all parameters and buffers to the GPU (in place; returns self)."""
        return self._apply(lambda t: t.cuda(device))

    def cpu(self) -> "Module":
        """Move all parameters and buffers to the CPU (in place; returns self)."""
        return self._apply(lambda t: t.cpu())

    def type(self, dst_type) -> "Module":
        """Cast *all* parameters and buffers (integer ones too) to ``dst_type``."""
        return self._apply(lambda t: t.type(dst_type))

    def float(self) -> "Module":
        """Cast floating-point parameters and buffers to float32."""
        return self._apply(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> "Module":
        """Cast floating-point parameters and buffers to float64."""
        return self._apply(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> "Module":
        """Cast floating-point parameters and buffers to float16."""
        return self._apply(lambda t: t.half() if t.is_floating_point() else t)

    def bfloat16(self) -> "Module":
        """Cast floating-point parameters and buffers to bfloat16."""
        return self._apply(lambda t: t.bfloat16() if t.is_floating_point() else t)

    def to_empty(self, *, device, recurse: bool = True) -> "Module":
        """Replace parameters and buffers by uninitialised tensors of the same shape and dtype on
        ``device`` (parameters stay the same objects). The step after building a model on the meta
        device; then load a state dict or call ``reset_parameters()``. "Uninitialised" is zeros here
        (JAX has no uninitialised memory; torch's are whatever the memory held).

        >>> import tracenn
        >>> with tracenn.device("meta"):
        ...     lin = tracenn.nn.Linear(2, 2)
        >>> lin.to_empty(device="cpu").weight
        Parameter containing:
        tensor([[0., 0.],
                [0., 0.]], requires_grad=True)
        """
        from ..._api.creation import empty_like
        return self._apply(lambda t: empty_like(t, device=device), recurse=recurse)

    def to(self, *args, **kwargs) -> "Module":
        """Move and/or cast parameters and buffers, in place: ``to(device)``, ``to(dtype)``,
        ``to(device, dtype)``, ``to(tensor)``, ``to(memory_format=tracenn.channels_last)``.

        A dtype applies to floating-point (and complex) tensors only; integer buffers keep theirs.
        A memory format applies to the 4-d and 5-d tensors (as torch's: a 5-d one raises for
        ``channels_last``); it changes their strides, not their values. Parameters stay the same objects.

        >>> import tracenn
        >>> lin = tracenn.nn.Linear(2, 2)
        >>> w = lin.weight
        >>> lin.to(tracenn.float64) is lin, lin.weight is w, lin.weight.dtype
        (True, True, tracenn.float64)
        """
        from ..._api.convert import _parse_to
        dtype, device, _, fmt = _parse_to(args, dict(kwargs))
        non_blocking = bool(kwargs.get("non_blocking", False))
        if dtype is not None:
            dtype = _dt.as_dtype(dtype)
            if not (dtype.is_floating_point or dtype.is_complex):
                raise TypeError("nn.Module.to only accepts floating point or complex dtypes, but got "
                                f"desired dtype={dtype}")
            if dtype.is_complex:
                warnings.warn(
                    "Complex modules are a new feature under active development whose design may "
                    "change, and some modules might not work as expected when using complex tensors "
                    "as parameters or buffers. Please file an issue at https://github.com/pytorch/"
                    "pytorch/issues/new?template=bug-report.yml if a complex module does not work as "
                    "expected.", stacklevel=2)

        def convert(t):
            kw = {"non_blocking": non_blocking}
            if device is not None:
                kw["device"] = device
            if dtype is not None and (t.is_floating_point() or t.is_complex()):
                kw["dtype"] = dtype
            if fmt is not None and t.dim() in (4, 5):
                kw["memory_format"] = kwargs["memory_format"]
            return t.to(**kw)

        return self._apply(convert)

    # ---- Python protocol -----------------------------------------------------------------------

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_compiled_call_impl", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        # Modules pickled by older versions may lack newer attributes.
        for name in ("_forward_pre_hooks", "_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
                     "_forward_hooks_always_called", "_state_dict_hooks", "_state_dict_pre_hooks",
                     "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_backward_pre_hooks"):
            if name not in self.__dict__:
                self.__dict__[name] = OrderedDict()
        if "_non_persistent_buffers_set" not in self.__dict__:
            self._non_persistent_buffers_set = set()
        if "_is_full_backward_hook" not in self.__dict__:
            self._is_full_backward_hook = None

    def __getattr__(self, name: str) -> Any:
        if "_parameters" in self.__dict__:
            _parameters = self.__dict__["_parameters"]
            if name in _parameters:
                return _parameters[name]
        if "_buffers" in self.__dict__:
            _buffers = self.__dict__["_buffers"]
            if name in _buffers:
                return _buffers[name]
        if "_modules" in self.__dict__:
            modules = self.__dict__["_modules"]
            if name in modules:
                return modules[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name: str, value: Any) -> None:
        def remove_from(*dicts_or_sets) -> None:
            for d in dicts_or_sets:
                if name in d:
                    if isinstance(d, dict):
                        del d[name]
                    else:
                        d.discard(name)

        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            remove_from(self.__dict__, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as parameter '{name}' "
                                "(tracenn.nn.Parameter or None expected)")
            self.register_parameter(name, value)
        else:
            modules = self.__dict__.get("_modules")
            # (self.encoder = tracenn.compile(self.encoder) is a Module too: runtime/module_wrapper.py)
            if isinstance(value, Module):
                if modules is None:
                    raise AttributeError("cannot assign module before Module.__init__() call")
                EPOCH[0] += 1
                remove_from(self.__dict__, self._parameters, self._buffers, self._non_persistent_buffers_set)
                for hook in _hooks._global_module_registration_hooks.values():
                    output = hook(self, name, value)
                    if output is not None:
                        value = output
                modules[name] = value
            elif modules is not None and name in modules:
                EPOCH[0] += 1
                if value is not None:
                    raise TypeError(f"cannot assign '{_typename(value)}' as child module '{name}' "
                                    "(tracenn.nn.Module or None expected)")
                for hook in _hooks._global_module_registration_hooks.values():
                    output = hook(self, name, value)
                    if output is not None:
                        value = output
                modules[name] = value
            else:
                buffers = self.__dict__.get("_buffers")
                if isinstance(value, Buffer) or buffers is not None and name in buffers:
                    if value is not None and not isinstance(value, Tensor):
                        raise TypeError(f"cannot assign '{_typename(value)}' as buffer '{name}' "
                                        "(tracenn.nn.Buffer, tracenn.Tensor or None expected)")
                    if isinstance(value, Buffer):
                        persistent = value.persistent
                    else:
                        persistent = name not in self._non_persistent_buffers_set
                    # A subclass may override register_buffer without the persistent argument.
                    if getattr(self.register_buffer, "__func__", None) is Module.register_buffer:
                        self.register_buffer(name, value, persistent)
                    else:
                        sign = inspect.signature(self.register_buffer)
                        if "persistent" in sign.parameters:
                            self.register_buffer(name, value, persistent)
                        else:
                            if not persistent:
                                raise RuntimeError(
                                    "Registering a non-persistent buffer on a Module subclass that "
                                    "implements register_buffer() without the persistent argument "
                                    "is not allowed.")
                            self.register_buffer(name, value)
                else:
                    # compiled calls guard the mode and plain attributes (Dropout's p, a flag a forward
                    # branches on, a tensor attribute) and re-read them after a change
                    EPOCH[0] += 1
                    super().__setattr__(name, value)

    def __delattr__(self, name) -> None:
        EPOCH[0] += 1
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers_set.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            super().__delattr__(name)

    # ---- traversal -----------------------------------------------------------------------------

    def _named_members(self, get_members_fn, prefix="", recurse=True, remove_duplicate: bool = True):
        memo = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            members = get_members_fn(module)
            for k, v in members:
                if v is None or v in memo:
                    continue
                if remove_duplicate:
                    memo.add(v)
                name = module_prefix + ("." if module_prefix else "") + k
                yield name, v

    def parameters(self, recurse: bool = True):
        """Iterate over the parameters (of submodules too unless ``recurse=False``), each once."""
        for _name, param in self.named_parameters(recurse=recurse):
            yield param

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Iterate over ``(dotted name, parameter)``; a shared parameter appears once (under its first
        name) unless ``remove_duplicate=False``."""
        gen = self._named_members(lambda module: module._parameters.items(), prefix=prefix,
                                  recurse=recurse, remove_duplicate=remove_duplicate)
        yield from gen

    def buffers(self, recurse: bool = True):
        """Iterate over the buffers (non-persistent ones included)."""
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Iterate over ``(dotted name, buffer)``."""
        gen = self._named_members(lambda module: module._buffers.items(), prefix=prefix,
                                  recurse=recurse, remove_duplicate=remove_duplicate)
        yield from gen

    def children(self):
        """Iterate over the immediate child modules, each once."""
        for _name, module in self.named_children():
            yield module

    def named_children(self):
        """Iterate over ``(name, child)`` for the immediate children, each module once."""
        memo = set()
        for name, module in self._modules.items():
            if module is not None and module not in memo:
                memo.add(module)
                yield name, module

    def modules(self, remove_duplicate: bool = True):
        """Iterate over all modules in the tree (self first, depth-first), each once."""
        for _, module in self.named_modules(remove_duplicate=remove_duplicate):
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Iterate over ``(dotted name, module)`` for all modules in the tree, self (``""``) first.

        A module reachable twice is yielded once, unless ``remove_duplicate=False``
        (torch's documentation example):

        >>> import tracenn.nn as nn
        >>> l = nn.Linear(2, 2)
        >>> net = nn.Sequential(l, l)
        >>> for idx, m in enumerate(net.named_modules()):
        ...     print(idx, '->', m)
        0 -> ('', Sequential(
          (0): Linear(in_features=2, out_features=2, bias=True)
          (1): Linear(in_features=2, out_features=2, bias=True)
        ))
        1 -> ('0', Linear(in_features=2, out_features=2, bias=True))
        """
        if memo is None:
            memo = set()
        if self not in memo:
            if remove_duplicate:
                memo.add(self)
            yield prefix, self
            for name, module in self._modules.items():
                if module is None:
                    continue
                submodule_prefix = prefix + ("." if prefix else "") + name
                yield from module.named_modules(memo, submodule_prefix, remove_duplicate)

    # ---- modes and gradients -------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Set training mode (``self.training``) on this module and all descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> "Module":
        """Set evaluation mode (``train(False)``); returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` on every parameter (e.g. to freeze a part); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to None (default) or to zeros in place."""
        for p in self.parameters():
            if set_to_none:  # (read raw: a compiled step's pending grad is dropped, not made a tensor)
                if p.__dict__.get("grad") is not None:
                    p.grad = None
            elif p.grad is not None:
                if p.grad.grad_fn is not None:
                    p.grad.detach_()
                else:
                    p.grad.requires_grad_(False)
                p.grad.zero_()

    def share_memory(self) -> "Module":
        """Accepted for compatibility (JAX arrays need no shared-memory move); returns self."""
        return self._apply(lambda t: t.share_memory_())

    # ---- repr ----------------------------------------------------------------------------------

    def _get_name(self):
        return self.__class__.__name__

    def extra_repr(self) -> str:
        """Override to put extra information into the module's repr (one line, or several)."""
        return ""

    def __repr__(self):
        extra_lines = []
        extra_repr = self.extra_repr()
        if extra_repr:
            extra_lines = extra_repr.split("\n")
        child_lines = []
        for key, module in self._modules.items():
            mod_str = repr(module)
            mod_str = _addindent(mod_str, 2)
            child_lines.append("(" + key + "): " + mod_str)
        lines = extra_lines + child_lines

        main_str = self._get_name() + "("
        if lines:
            # simple one-liner info, which most builtin Modules will use
            if len(extra_lines) == 1 and not child_lines:
                main_str += extra_lines[0]
            else:
                main_str += "\n  " + "\n  ".join(lines) + "\n"
        main_str += ")"
        return main_str

    def __dir__(self):
        module_attrs = dir(self.__class__)
        attrs = list(self.__dict__.keys())
        parameters = list(self._parameters.keys())
        modules = list(self._modules.keys())
        buffers = list(self._buffers.keys())
        keys = module_attrs + attrs + parameters + modules + buffers
        # Eliminate attrs that are not legal Python variable names
        keys = [key for key in keys if not key[0].isdigit()]
        return sorted(keys)

