"""``torch.autograd.detect_anomaly`` and ``set_detect_anomaly``.

While anomaly detection is on, every autograd node records the Python stack of the forward call
that made it, and ``backward()`` checks each node's gradients: the first one with a NaN raises
``RuntimeError: Function 'DivBackward0' returned nan values in its 1th output.`` (torch's words), after a warning
that shows where that node's forward op was called. It slows forward and backward down (a stack
per node, a device read per gradient): a debugging tool, as in torch.

>>> import tracenn, warnings
>>> x = tracenn.zeros(1, requires_grad=True)
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     with tracenn.autograd.detect_anomaly():
...         y = (x / x).sum()
...         y.backward()
Traceback (most recent call last):
    ...
RuntimeError: Function 'DivBackward0' returned nan values in its 1th output.
"""
from __future__ import annotations

import functools
import traceback
import warnings

from .graph import ANOMALY, FORWARD_STACKS

__all__ = ["detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled"]


def is_anomaly_enabled() -> bool:
    return ANOMALY[0]


def is_anomaly_check_nan_enabled() -> bool:
    return ANOMALY[1]


class detect_anomaly:
    """Context manager (or decorator) turning anomaly detection on (see the module doc)."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan
        warnings.warn("Anomaly Detection has been enabled. This mode will increase the runtime and should only be "
                      "enabled for debugging.", stacklevel=2)

    def __enter__(self):
        self.prev = tuple(ANOMALY)
        ANOMALY[:] = [True, self.check_nan]
        return self

    def __exit__(self, *exc):
        ANOMALY[:] = list(self.prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self.__class__(self.check_nan):
                return fn(*args, **kwargs)
        return wrapped


class set_detect_anomaly:
    """``set_detect_anomaly(True)`` turns anomaly detection on (or off) now; as a context manager
    it restores the previous setting on exit."""

    def __init__(self, mode: bool, check_nan: bool = True):
        self.prev = tuple(ANOMALY)
        ANOMALY[:] = [bool(mode), bool(check_nan)]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        ANOMALY[:] = list(self.prev)
        return False


def check_nan(node, cts) -> None:
    """Raise torch's error if a gradient ``node`` computed (``cts``: arrays, tensors or None) has a NaN."""
    import jax.numpy as jnp
    for i, c in enumerate(cts):
        if c is None:
            continue
        v = getattr(c, "_value", c)
        if jnp.issubdtype(jnp.result_type(v), jnp.inexact) and bool(jnp.isnan(v).any()):
            stack = FORWARD_STACKS.get(node)
            if stack:
                warnings.warn(f"Error detected in {node.name()}. Traceback of forward call that caused the error:\n"
                              + "".join(traceback.format_list(stack)), stacklevel=4)
            raise RuntimeError(f"Function '{node.name()}' returned nan values in its {i}th output.")
