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

A block over 64 MiB allocated on one of XLA's worker threads is another matter: glibc's
per-thread arenas cannot hold a block that large and map it afresh whatever the thresholds. XLA:CPU
puts all of a program's temporaries in one block, and the MNIST CNN's training step at batch 64
needs 99 MiB of them: it faulted ~21,000 pages a step, a third of its time on a 2-core AMD EPYC.
So tracenn's CPU programs are compiled with their temporaries split into blocks under 32 MiB
(``program_options``: XLA's ``xla_multiheap_size_constraint_per_heap``), which the arenas hold.
That alone left the step faulting in three runs of six (8,143-15,359 pages a step):
glibc 2.36 unmaps a thread arena's second or later 64 MiB heap as soon as it is empty, whatever
the trim threshold, unless glibc's top pad is at least a heap's size. So ``tune()`` also sets the
top pad to 64 MiB, which keeps those heaps mapped; the step then faulted 0 pages in every run.
(The top pad is also how far the main heap grows past a request when it must grow: address space,
not memory, until used. ``MALLOC_ARENA_MAX=1`` also avoids the faults, but puts every thread on
one allocator lock, measured slower on other workloads: docs/performance.md.) A single buffer
over 64 MiB still comes from fresh pages.

It runs at ``import tracenn`` on Linux with glibc, unless ``TRACENN_MALLOC_TUNING=0`` is set, or
the user already chose malloc settings (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_TOP_PAD_`` or ``glibc.malloc`` in ``GLIBC_TUNABLES``): their choice wins. ``tracenn.cpu.malloc_tuning()``
says which happened.
"""
from __future__ import annotations

import ctypes
import os
import sys

ENV = "TRACENN_MALLOC_TUNING"
THRESHOLD = 1 << 30  # bytes: larger than any single buffer of the workloads measured
HEAP_SPLIT = 32 << 20  # bytes: a program's temporaries in blocks under this (glibc's thread heaps hold 64 MiB)
_SPLIT_OPTION = "xla_multiheap_size_constraint_per_heap"
TOP_PAD = 64 << 20  # bytes: a thread arena's heap (glibc keeps an empty one when the pad is this large)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # mallopt parameters, from glibc's <malloc.h>
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

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
        elif libc.mallopt(_M_MMAP_THRESHOLD, THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, THRESHOLD) \
                and libc.mallopt(_M_TOP_PAD, TOP_PAD):
            state = f"on: glibc mmap and trim thresholds {THRESHOLD >> 20} MiB, top pad {TOP_PAD >> 20} MiB"
        else:
            state = "not applicable (glibc refused the thresholds)"
    return state


def program_options(largest_buffer: int, environ=os.environ) -> dict:
    """XLA compiler options for a tracenn program on the CPU whose largest value takes
    ``largest_buffer`` bytes: its temporaries split into blocks under ``HEAP_SPLIT`` bytes (or
    just over its largest value, which XLA would otherwise warn about at every compile), so that
    glibc's thread arenas serve them (see the module docstring). Empty while the thresholds are
    not on (switched off, left to the user, not glibc), or when the user's ``XLA_FLAGS`` set the
    option: their choice wins."""
    if not state.startswith("on") or _SPLIT_OPTION in environ.get("XLA_FLAGS", ""):
        return {}
    limit = max(HEAP_SPLIT, largest_buffer + 1)
    return {_SPLIT_OPTION: limit} if limit < 1 << 31 else {}  # (an int32 option)
