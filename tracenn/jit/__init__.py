"""``tracenn.jit``: what model code written for TorchScript calls, so that it runs.

TorchScript compiles Python into its own IR; tracenn compiles with ``tracenn.compile`` instead.
The annotations model code uses (``is_scripting()``, ``@ignore``, ``@unused``, ``@export``,
``Final``, ``annotate``) behave as they do when the code is not being scripted. ``script`` returns
the function or module unchanged (it still runs, eagerly or under ``tracenn.compile``), with a
one-time note. ``trace(model, example_inputs)`` returns ``tracenn.compile(model)``, the closest
thing: the same calls, traced into one program. ``save``/``load`` of TorchScript archives are not
supported: use ``tracenn.save(model.state_dict(), ...)``.
"""
from __future__ import annotations

import typing
import warnings

__all__ = ["script", "trace", "is_scripting", "is_tracing", "ignore", "unused", "export", "Final", "annotate",
           "interface", "save", "load", "ScriptModule", "ScriptFunction"]

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
        args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
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
