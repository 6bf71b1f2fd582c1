"""``tracenn.jit``: what model code written for TorchScript calls, so that it runs.

TorchScript compiles Python into its own IR; tracenn compiles with ``tracenn.compile`` instead.
The annotations model code uses (``is_scripting()``, ``@ignore``, ``@unused``, ``@export``,
``Final``, ``annotate``) behave as they do when the code is not being scripted. ``script`` returns
the function or module unchanged (it still runs, eagerly or under ``tracenn.compile``), with a
one-time note. ``trace(model, example_inputs)`` returns ``tracenn.compile(model)``, the closest
thing: the same calls, traced into one program. ``save``/``load`` of TorchScript archives are not
supported: use ``tracenn.save(model.state_dict(), ...)``.

``freeze`` and ``optimize_for_inference`` return the module itself in eval mode (as ``script``
returns its argument; torch's folds the weights into constants: here the module keeps reading
its parameters), ``fork`` runs the call at once and returns a finished :class:`Future`,
``isinstance`` checks ``List[int]``-style container types as torch's eager version does.
"""
from __future__ import annotations

import builtins
import collections
import collections.abc
import functools
import typing
import warnings

__all__ = ["script", "trace", "is_scripting", "is_tracing", "ignore", "unused", "export", "Final", "annotate",
           "interface", "save", "load", "ScriptModule", "ScriptFunction", "freeze", "optimize_for_inference",
           "script_if_tracing", "isinstance", "fork", "wait", "Future", "Attribute", "Error"]

Final = typing.Final
_NOTED = [False]


class ScriptModule:  # (for isinstance checks in user code: nothing tracenn returns is one)
    pass


class ScriptFunction:
    pass


def is_scripting() -> bool:
    """False: tracenn never runs code under TorchScript."""
    return False


def is_tracing() -> bool:
    """False (torch.jit.trace's tracing; ``tracenn.compile``'s tracing is transparent to the code)."""
    return False


def script(obj, optimize=None, _frames_up=0, _rcb=None, example_inputs=None):
    """``obj`` itself: tracenn does not compile TorchScript (use ``tracenn.compile`` for one XLA
    program per call)."""
    if not _NOTED[0]:
        _NOTED[0] = True
        warnings.warn("tracenn.jit.script returns its argument unchanged (tracenn has no TorchScript); "
                      "tracenn.compile(model) compiles it into one XLA program", stacklevel=2)
    return obj


def trace(func, example_inputs=None, optimize=None, check_trace=True, check_inputs=None, check_tolerance=1e-5,
          strict=True, **kwargs):
    """``tracenn.compile(func)``, run once on ``example_inputs`` (as torch.jit.trace runs it)."""
    from ..compiler.api import compile as _compile
    compiled = _compile(func)
    if example_inputs is not None:
        args = example_inputs if builtins.isinstance(example_inputs, tuple) else (example_inputs,)
        compiled(*args)
    return compiled


def _identity_decorator(fn=None, **kwargs):
    if fn is None:
        return lambda f: f
    return fn


ignore = _identity_decorator
unused = _identity_decorator
export = _identity_decorator
interface = _identity_decorator


def annotate(the_type, the_value):
    return the_value


def save(m, f, _extra_files=None):
    raise NotImplementedError("tracenn.jit.save: tracenn has no TorchScript archives; save the weights with "
                              "tracenn.save(model.state_dict(), path)")


def load(f, map_location=None, _extra_files=None):
    raise NotImplementedError("tracenn.jit.load: tracenn cannot read TorchScript archives; load weights saved "
                              "with torch.save(model.state_dict(), path) through tracenn.load")


# ---- freeze, optimize_for_inference, fork/wait, isinstance, Attribute, Error ------------------------

Attribute = collections.namedtuple("Attribute", ["value", "type"])
Attribute.__doc__ = """torch's ``(value, type)`` annotation of a ScriptModule attribute: tracenn keeps plain
attributes, so assign ``value`` itself (``self.foo = 0.1``)."""


class Error(Exception):
    """torch.jit.Error: what a failed TorchScript ``raise`` or ``assert`` raises (tracenn runs no TorchScript)."""


def _jit_deprecated(name: str) -> None:
    warnings.warn(f"`torch.jit.{name}` is deprecated. Please use `torch.compile` instead.", DeprecationWarning,
                  stacklevel=3)


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """``mod`` itself (tracenn has no TorchScript to freeze), after torch's checks: a module in
    training mode raises torch's RuntimeError. Warns (DeprecationWarning) as torch 2.13 does.
    Unlike torch's frozen copy, the result reads the module's parameters, so later changes to
    them show; ``tracenn.compile(mod)`` compiles it."""
    _jit_deprecated("freeze")
    return _freeze(mod)


def _freeze(mod):
    if getattr(mod, "training", False):
        raise RuntimeError("Freezing is currently only implemented for modules in eval mode. Please call .eval() "
                           "on your module before freezing.")
    return mod


def optimize_for_inference(mod, other_methods=None):
    """``mod`` in eval mode (``mod.eval()``, then :func:`freeze`), as torch's returns it frozen and
    in eval mode. Warns (DeprecationWarning) as torch 2.13 does."""
    _jit_deprecated("optimize_for_inference")
    if hasattr(mod, "training"):
        mod = _freeze(mod.eval())  # (torch's calls freeze, warning twice; once is enough)
    return mod


def script_if_tracing(fn):
    """``fn``, wrapped as torch's (it would be scripted when called under ``torch.jit.trace``;
    tracenn's tracing runs Python, so the call is ``fn`` itself)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    wrapper.__original_fn = fn
    wrapper.__script_if_tracing_wrapper = True
    return wrapper


class Future:
    """The result of :func:`fork`: already done (tracenn runs the call at once)."""

    def __init__(self, value):
        self._value = value

    def done(self) -> bool:
        return True

    def wait(self):
        return self._value

    def value(self):
        return self._value

    def then(self, callback):
        return Future(callback(self))

    def add_done_callback(self, callback) -> None:
        callback(self)


def fork(func, *args, **kwargs) -> Future:
    """Run ``func(*args, **kwargs)`` now and return a finished :class:`Future` holding the result
    (torch runs it asynchronously under TorchScript, synchronously in eager mode as here).

    >>> import tracenn
    >>> fut = tracenn.jit.fork(lambda a, b: a + b, 2, 3)  # doctest: +SKIP
    >>> tracenn.jit.wait(fut)  # doctest: +SKIP
    5
    """
    _jit_deprecated("fork")
    return Future(func(*args, **kwargs))


def wait(future):
    """The value of a :class:`Future` from :func:`fork`."""
    _jit_deprecated("wait")
    return future.wait()


_RAW_CONTAINERS = {dict: "dict", list: "list", tuple: "tuple", typing.Dict: "Dict", typing.List: "List",
                   typing.Optional: "Optional", typing.Tuple: "Tuple"}


def _check_args_exist(target_type) -> None:
    try:
        name = _RAW_CONTAINERS.get(target_type)
    except TypeError:  # (an unhashable target)
        name = None
    if name is None:
        return
    if name.endswith("ict"):
        raise RuntimeError(f"Attempted to use {name} without contained types. Please add contained type, e.g. "
                           f"{name}[int, int]")
    raise RuntimeError(f"Attempted to use {name} without a contained type. Please add a contained type, e.g. "
                       f"{name}[int]")


def _check_empty(obj) -> None:
    if obj == [] or obj == {} or obj == ():
        warnings.warn("The inner type of a container is lost when calling torch.jit.isinstance in eager mode. For "
                      "example, List[int] would become list and therefore falsely return True for List[float] or "
                      "List[str].", stacklevel=4)


def _element_ok(el, el_type) -> bool:
    return _container_ok(el, el_type) if typing.get_origin(el_type) else builtins.isinstance(el, el_type)


def _container_ok(obj, target_type) -> bool:
    import types
    origin = typing.get_origin(target_type)
    _check_args_exist(target_type)
    args = typing.get_args(target_type)
    if origin is list:
        _check_empty(obj)
        return builtins.isinstance(obj, list) and all(_element_ok(el, args[0]) for el in obj)
    if origin is dict:
        _check_empty(obj)
        return builtins.isinstance(obj, dict) and all(
            builtins.isinstance(k, args[0]) and _element_ok(v, args[1]) for k, v in obj.items())
    if origin is tuple:
        _check_empty(obj)
        return builtins.isinstance(obj, tuple) and len(obj) == len(args) and all(
            _element_ok(el, t) for el, t in zip(obj, args))
    if origin is typing.Union or origin is types.UnionType:  # (Optional too)
        if obj is None:
            return True
        for t in args:
            if typing.get_origin(t):
                return _container_ok(obj, t)  # (torch's: the first container member decides)
            if builtins.isinstance(obj, t):
                return True
    return False


def isinstance(obj, target_type) -> bool:
    """torch.jit.isinstance in eager mode: ``builtins.isinstance`` that also understands
    ``List[int]``, ``Dict[str, Tensor]``, ``Tuple[int, str]``, ``Optional[T]`` and unions
    (checking every element), with torch's errors and its warning for empty containers.

    >>> import tracenn
    >>> from typing import Dict, List
    >>> tracenn.jit.isinstance([1, 2], List[int]), tracenn.jit.isinstance({"a": 1.0}, Dict[str, int])
    (True, False)
    """
    if builtins.isinstance(target_type, collections.abc.Container):
        if not builtins.isinstance(target_type, tuple):
            raise RuntimeError("The second argument to `torch.jit.isinstance` must be a type or a tuple of types")
        return any(isinstance(obj, t) for t in target_type)
    if typing.get_origin(target_type):
        return _container_ok(obj, target_type)
    _check_args_exist(target_type)
    return builtins.isinstance(obj, target_type)
