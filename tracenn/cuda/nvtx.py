"""``tracenn.cuda.nvtx``: NVTX profiler ranges, which do nothing in tracenn.

NVTX marks ranges on the CUDA timeline for NVIDIA's profilers; XLA launches the GPU work, so
there is no CUDA call of the user's to annotate. ``range_push`` / ``range_pop`` keep torch's
nesting depth as return values, ``range`` is a context manager, and ``mark`` does nothing, so
scripts that wrap their steps in NVTX ranges run unchanged. For XLA's own trace, use
``tracenn.profiler`` (or ``jax.profiler``).

>>> import tracenn
>>> with tracenn.cuda.nvtx.range("forward"):
...     pass
"""
from __future__ import annotations

import contextlib

_DEPTH = [0]


def range_push(msg: str) -> int:
    """Open a range (does nothing); returns the zero-based depth of the range opened, as torch."""
    _DEPTH[0] += 1
    return _DEPTH[0] - 1


def range_pop() -> int:
    """Close the innermost range (does nothing); returns the depth of the range closed, -1 if none."""
    if _DEPTH[0] == 0:
        return -1
    _DEPTH[0] -= 1
    return _DEPTH[0]


def range_start(msg: str) -> int:
    """Start a range that may cross threads (does nothing); returns an id for :func:`range_end`."""
    return 0


def range_end(range_id: int) -> None:
    """End a range from :func:`range_start` (does nothing)."""
    return None


def mark(msg: str) -> None:
    """Mark an instant (does nothing)."""
    return None


@contextlib.contextmanager
def range(msg: str, *args, **kwargs):
    """``with tracenn.cuda.nvtx.range("step {}", i):`` a range around the block (does nothing)."""
    range_push(msg.format(*args, **kwargs))
    try:
        yield
    finally:
        range_pop()
