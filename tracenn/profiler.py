"""``tracenn.profiler.record_function`` (also ``tracenn.autograd.profiler.record_function``): a
labelled region, which shows in JAX's profiler traces (``jax.profiler``); for a whole-program view
of compiled code use ``jax.profiler.trace`` (see benchmarks/_profile.py)."""
from __future__ import annotations

import jax

__all__ = ["record_function"]


class record_function:
    """Label the work done inside the ``with`` block (eagerly: a host trace annotation)."""

    def __init__(self, name: str, args: str | None = None):
        self.name, self.args = name, args
        self._annotation = None

    def __enter__(self):
        self._annotation = jax.profiler.TraceAnnotation(self.name)
        self._annotation.__enter__()
        return self

    def __exit__(self, *exc):
        self._annotation.__exit__(*exc)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*a, **k):
            with record_function(self.name, self.args):
                return fn(*a, **k)
        return wrapper
