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
