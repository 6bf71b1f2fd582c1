"""``tracenn.cuda`` CUDA graphs: what they are for, done by ``tracenn.compile``.

A CUDA graph records a sequence of kernel launches once and replays it, to remove per-launch
overhead. ``tracenn.compile`` gives the same: the whole call runs as one XLA program, one
dispatch. So :func:`make_graphed_callables` returns ``tracenn.compile`` of each callable, and the
capture API (``CUDAGraph``, ``graph``, ``graph_pool_handle``) raises, naming ``tracenn.compile``.
"""
from __future__ import annotations

from ..errors import CudaUnsupportedError


def _unsupported(name: str) -> CudaUnsupportedError:
    return CudaUnsupportedError(
        f"tracenn.cuda.{name} is not supported: XLA launches the GPU work, so there are no CUDA kernel launches "
        "to capture. Compile the code instead, which runs it as one program per call: "
        "step = tracenn.compile(step) (or tracenn.cuda.make_graphed_callables(fn, sample_args)).")


class CUDAGraph:
    """Not supported (see the module docstring): raises, naming ``tracenn.compile``."""

    def __init__(self, *args, **kwargs):
        raise _unsupported("CUDAGraph")


class graph:
    """Not supported (see the module docstring): raises, naming ``tracenn.compile``."""

    def __init__(self, cuda_graph=None, pool=None, stream=None, capture_error_mode: str = "global", **kwargs):
        raise _unsupported("graph")


def graph_pool_handle():
    """Not supported (see the module docstring)."""
    raise _unsupported("graph_pool_handle")


def is_current_stream_capturing() -> bool:
    """False: nothing is ever captured into a CUDA graph."""
    return False


def make_graphed_callables(callables, sample_args, num_warmup_iters: int = 3, allow_unused_input: bool = False,
                           pool=None):
    """``tracenn.compile`` of ``callables`` (one, or a tuple giving a tuple), for what a CUDA graph is
    for: one dispatch per call instead of one launch per op. ``sample_args`` is not run; the
    compiled callables trace on their first call. A module comes back as a compiled module.

    >>> import tracenn
    >>> lin = tracenn.cuda.make_graphed_callables(tracenn.nn.Linear(2, 3), (tracenn.ones(4, 2),))
    >>> tuple(lin(tracenn.ones(4, 2)).shape)
    (4, 3)
    """
    from ..compiler.api import compile as _compile
    if isinstance(callables, tuple):
        if not isinstance(sample_args, tuple) or len(sample_args) != len(callables):
            raise ValueError(f"make_graphed_callables: sample_args must be a tuple with one tuple of arguments per "
                             f"callable ({len(callables)}), got {type(sample_args).__name__}")
        return tuple(_compile(c) for c in callables)
    return _compile(callables)
