"""``tracenn._dynamo``: the ``torch._dynamo`` names training scripts use.

``config`` holds the settings (``cache_size_limit`` and ``suppress_errors`` change
``tracenn.compile``'s defaults; see :mod:`tracenn._dynamo.config`); ``reset``, ``disable``,
``is_compiling`` and ``allow_in_graph`` are ``tracenn.compiler``'s; ``OptimizedModule`` (also in
``eval_frame``) is the class of ``tracenn.compile(module)``. The shape marks
(``mark_dynamic``, ``mark_static``, ``maybe_mark_dynamic``) change nothing: tracenn compiles one
program per input shape, as ``dynamic=False``.
"""
from __future__ import annotations

from . import config, eval_frame  # noqa: F401
from .eval_frame import OptimizedModule  # noqa: F401
from ..compiler.torch_names import (  # noqa: F401
    allow_in_graph, assume_constant_result, disable, is_compiling, list_backends, reset)


def mark_dynamic(t, index, *, hint_override=None, min=None, max=None, specialize_on=None) -> None:
    """Nothing to do: tracenn compiles one program per input shape."""


def maybe_mark_dynamic(t, index) -> None:
    """Nothing to do: tracenn compiles one program per input shape."""


def mark_static(t, index=None) -> None:
    """Nothing to do: every shape is static in a tracenn program."""


def mark_static_address(t, guard=True) -> None:
    """Nothing to do: XLA places a program's buffers itself."""


def optimize(backend="inductor", *, nopython: bool = False, dynamic=None, **kwargs):
    """torch._dynamo's older ``optimize(backend)(fn)``: ``tracenn.compile`` with those options
    (``disable=True`` too)."""
    from ..compiler.api import compile
    return compile(backend=backend if isinstance(backend, str) else "inductor", fullgraph=nopython,
                   dynamic=dynamic, disable=bool(kwargs.get("disable", False)))
