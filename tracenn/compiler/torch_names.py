"""``torch.compiler``'s functions, on ``tracenn.compiler`` (scripts call them as
``torch.compiler.disable``, ``torch.compiler.is_compiling()``), and ``torch._dynamo``'s older
spellings of them (``tracenn._dynamo``).

tracenn traces by running the Python code with symbolic tensors and compiles each call into one
XLA program, so torch's graph breaks do not exist: a function marked :func:`disable` makes the
compiled call that reaches it run eagerly as a whole (or raise, with ``fullgraph=True``).
"""
from __future__ import annotations

import functools

from .. import _dispatch
from ..errors import UnsupportedError


def is_compiling() -> bool:
    """True while ``tracenn.compile`` traces a call (model code can skip a check that reads values:
    ``if not tracenn.compiler.is_compiling(): assert mask.any()``)."""
    return _dispatch.TRACE[0] is not None


is_dynamo_compiling = is_compiling


def is_exporting() -> bool:
    """False: tracenn has no ``torch.export``."""
    return False


def reset() -> None:
    """Forget every compiled program (as ``torch.compiler.reset()``): each compiled call traces and
    compiles again on its next call, and its recompile count starts over."""
    from ..runtime.compiled import forget_all
    from .float_attrs import RESETS
    RESETS[0] += 1  # (float attributes made program inputs are guarded by value again, as at first)
    forget_all()


def disable(fn=None, recursive: bool = True, *, reason: str | None = None):
    """Keep ``fn`` out of compiled programs: it always runs eagerly, and a compiled call whose trace
    reaches it runs eagerly as a whole, with one warning (raises with ``fullgraph=True``).
    ``tracenn.compile(fn)`` returns ``fn``. Usable as ``@disable`` and ``@disable(reason=...)``;
    a module's forward is disabled in place.

    >>> import tracenn
    >>> @tracenn.compiler.disable
    ... def log_stats(x):
    ...     return float(x.mean())
    >>> tracenn.compile(log_stats) is log_stats
    True
    """
    if fn is None:
        return functools.partial(disable, recursive=recursive, reason=reason)
    from ..nn.modules.module import Module
    if isinstance(fn, Module):
        fn.forward = disable(fn.forward, recursive, reason=reason)
        return fn
    if getattr(fn, "_tracenn_disabled", False):
        return fn
    name = getattr(fn, "__qualname__", type(fn).__name__)
    why = f" ({reason})" if reason else ""

    @functools.wraps(fn)
    def eager_only(*args, **kwargs):
        if _dispatch.TRACE[0] is not None:
            raise UnsupportedError(
                f"{name} is marked tracenn.compiler.disable{why}: a compiled program cannot stop to run it, so "
                "the compiled call that reaches it runs eagerly. Move the call out of the compiled code to "
                "compile the rest")
        return fn(*args, **kwargs)

    eager_only._tracenn_disabled = True
    return eager_only


def allow_in_graph(fn):
    """``fn`` itself: tracenn traces through every Python function already."""
    return fn


def assume_constant_result(fn):
    """``fn`` itself: a function that returns Python values runs while tracing, and its result is a
    constant of the program (guarded where it comes from module attributes or captured values)."""
    return fn


def nested_compile_region(fn=None, options=None):
    """``fn`` itself: each compiled call is one program, and XLA shares repeated work itself."""
    return (lambda f: f) if fn is None else fn


def cudagraph_mark_step_begin() -> None:
    """Nothing to do: XLA programs need no CUDA-graph step marks."""


def list_backends(exclude_tags=("debug", "experimental")) -> list[str]:
    """The ``backend=`` names ``tracenn.compile`` accepts (both mean tracenn's XLA program)."""
    return ["inductor", "openxla"]


def get_default_backend() -> str:
    return "inductor"
