"""``tracenn.cpu``: CPU counterparts of ``tracenn.cuda`` helpers."""
from __future__ import annotations


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def synchronize(device=None) -> None:
    """Wait until all queued work has finished (JAX dispatches asynchronously)."""
    from . import synchronize as _sync
    _sync()


def malloc_tuning() -> str:
    """What ``import tracenn`` did to glibc's malloc settings, as a sentence.

    XLA:CPU allocates a program's buffers on every call; glibc serves large blocks with fresh
    pages each time unless its mmap and trim thresholds and its top pad are raised, which tracenn
    does at import (the MNIST CNN's training step: 38 -> 28 ms); while they are, tracenn's CPU
    programs also keep their temporaries in blocks under 32 MiB, which glibc's thread arenas hold
    (the same step on another machine: 21,119 -> 0 page faults a step). Set
    ``TRACENN_MALLOC_TUNING=0`` before the import to leave malloc alone; ``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or a ``glibc.malloc`` entry in ``GLIBC_TUNABLES``
    also leave it to you.

    >>> import tracenn
    >>> tracenn.cpu.malloc_tuning()  # doctest: +SKIP
    'on: glibc mmap and trim thresholds 1024 MiB, top pad 64 MiB'
    """
    from . import _malloc
    return _malloc.state
