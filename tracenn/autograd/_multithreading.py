"""``torch.autograd.set_multithreading_enabled``: torch runs backward on per-device worker threads
unless this turns them off. tracenn's backward always runs on the calling thread (its kernels are
JAX's, which do their own parallelism), so the flag is kept, thread-locally as torch's, and
changes nothing."""
from __future__ import annotations

import functools
import threading

__all__ = ["set_multithreading_enabled", "is_multithreading_enabled"]

_STATE = threading.local()


def is_multithreading_enabled() -> bool:
    """Whether multithreaded backward is enabled on this thread (True unless
    :class:`set_multithreading_enabled` turned it off); tracenn's backward is single-threaded either way."""
    return getattr(_STATE, "enabled", True)


_is_multithreading_enabled = is_multithreading_enabled


class set_multithreading_enabled:
    """Enable or disable multithreaded backward, as torch's (a no-op in tracenn: see the module
    docstring). Takes effect when constructed, so it works as a function, a context manager that
    restores the previous setting on exit, or a decorator.

    >>> import tracenn
    >>> with tracenn.autograd.set_multithreading_enabled(False):
    ...     pass
    """

    def __init__(self, mode: bool) -> None:
        self.prev = is_multithreading_enabled()
        _STATE.enabled = bool(mode)
        self.mode = mode

    def __enter__(self) -> None:
        pass

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        _STATE.enabled = self.prev

    def clone(self) -> "set_multithreading_enabled":
        """A copy of this context manager (what decorating uses for each call)."""
        return self.__class__(self.mode)

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self.clone():
                return func(*args, **kwargs)
        return wrapper
