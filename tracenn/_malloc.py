"""Keep glibc's malloc from handing XLA:CPU fresh pages on every call.

XLA:CPU allocates a program's temporary buffers (and its outputs) with ``malloc`` on every call
and frees them when the call ends. glibc serves a block larger than its mmap threshold (128 KiB,
rising to at most 32 MiB as blocks are freed) with a fresh ``mmap`` and returns it with
``munmap``: every call then touches new pages, and the kernel faults in and zeroes each 4 KiB page.
The MNIST CNN's training step (batch 64) faulted ~11,700 pages per step, and the faults cost
about a quarter of the step: 38-39 ms per step before, 27-29 ms with the thresholds below.

``tune()`` raises the mmap threshold and the trim threshold to 1 GiB, so such blocks come from
the heap and stay there between calls. The cost is that memory freed by a step is kept by the
process for the next one (as PyTorch's caching allocators do) instead of going back to the
operating system; the benchmarks' peak memory within a step is unchanged.

Not covered: a single block over 64 MiB allocated on one of XLA's worker threads. glibc's
per-thread arenas cannot hold a block that large and map it afresh whatever the threshold (the
CNN step at batch 128 still faults). ``JAX_CPU_ENABLE_ASYNC_DISPATCH=0`` (programs run on the
calling thread, whose arena is the main one) or ``GLIBC_TUNABLES=glibc.malloc.arena_max=1`` avoid
that; both measured slower elsewhere, so neither is set here (docs/performance.md).

It runs at ``import tracenn`` on Linux with glibc, unless ``TRACENN_MALLOC_TUNING=0`` is set, or
the user already chose malloc thresholds (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``
or ``glibc.malloc`` in ``GLIBC_TUNABLES``): their choice wins. ``tracenn.cpu.malloc_tuning()``
says which happened.
"""
from __future__ import annotations

import ctypes
import os
import sys

ENV = "TRACENN_MALLOC_TUNING"
THRESHOLD = 1 << 30  # bytes: larger than any single buffer of the workloads measured
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's <malloc.h>
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")

state = "not tried"


def _glibc():
    """The C library when it is glibc (it has ``mallopt``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (absent from musl and other C libraries)
        return libc
    except (OSError, AttributeError):
        return None


def tune(environ=os.environ) -> str:
    """Apply the thresholds unless switched off or already chosen by the user; returns (and keeps
    in ``state``) a sentence saying what was done."""
    global state
    if environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        state = f"off ({ENV}={environ[ENV]})"
    elif any(k in environ for k in _USER_SETTINGS) or "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        state = "left to the user's MALLOC_* / GLIBC_TUNABLES settings"
    else:
        libc = _glibc()
        if libc is None:
            state = "not applicable (not Linux with glibc)"
        elif libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD):
            state = f"on: glibc mmap and trim thresholds {THRESHOLD >> 20} MiB"
        else:
            state = "not applicable (glibc refused the thresholds)"
    return state
