"""Grad mode: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

The flag is process-global (torch's is thread-local): the eager hot path reads it on every op.
"""
from __future__ import annotations

import functools


class _GradState:
    __slots__ = ("enabled", "inference")

    def __init__(self):
        self.enabled = True
        self.inference = False


GRAD = _GradState()


def is_grad_enabled() -> bool:
    """True when ops record autograd history."""
    return GRAD.enabled


def is_inference_mode_enabled() -> bool:
    return GRAD.inference


class _Mode:
    """A context manager that is also a decorator, like torch's grad-mode classes."""

    _to: bool

    def __enter__(self):
        self._prev = GRAD.enabled
        GRAD.enabled = self._to

    def __exit__(self, *exc):
        GRAD.enabled = self._prev
        return False

    def __call__(self, fn):
        to = self._to

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev, GRAD.enabled = GRAD.enabled, to
            try:
                return fn(*args, **kwargs)
            finally:
                GRAD.enabled = prev
        return wrapper


class no_grad(_Mode):
    """Ops inside do not record history (``with tracenn.no_grad(): ...`` or ``@no_grad()``).

    >>> import tracenn
    >>> x = tracenn.ones(2, requires_grad=True)
    >>> with tracenn.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self):
        self._to = False


class enable_grad(_Mode):
    """Turn recording back on inside a ``no_grad`` block."""

    def __init__(self):
        self._to = True


class set_grad_enabled(_Mode):
    """``set_grad_enabled(False)`` as a call sets the mode; as a context manager it restores it."""

    def __init__(self, mode: bool):
        self._prev = GRAD.enabled
        self._to = bool(mode)
        GRAD.enabled = self._to

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        GRAD.enabled = self._prev
        return False


class inference_mode(_Mode):
    """Like ``no_grad`` (tracenn has no separate inference tensors)."""

    def __init__(self, mode: bool = True):
        self._to = not mode
        self._mode = mode

    def __enter__(self):
        super().__enter__()
        self._prev_inf = GRAD.inference
        GRAD.inference = self._mode

    def __exit__(self, *exc):
        GRAD.inference = self._prev_inf
        return super().__exit__(*exc)
