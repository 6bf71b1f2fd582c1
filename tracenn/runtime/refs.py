"""State a compiled training step reads that is not a fixed tensor: a parameter's current
``.grad`` (a new tensor after every ``zero_grad()``) and a param group's learning rate (a Python
float a scheduler changes between steps). A ref is read at every call, so neither is baked into
the program: the learning rate is an input, never a constant.

A ref looks like a state tensor to the call path (``_value``, ``_base``); the tracer swaps it
for a graph value with :meth:`trace_in`, which returns the function that undoes the swap.
"""
from __future__ import annotations

import numpy as np


class GradRef:
    """``param.grad``, read when the program is called."""

    __slots__ = ("param",)
    _base = None
    _requires_grad = False
    kind = "grad"

    def __init__(self, param):
        self.param = param

    @property
    def _value(self):
        g = self.param.grad
        return g._value if g._base is None else g._sync()

    @property
    def aval(self):
        v = self.param.grad._value
        return v.shape, v.dtype

    def trace_in(self, value):
        g = self.param.grad
        old = (g, g._value, g._ver)
        g._value = value

        def undo():
            g0, v, ver = old
            g0._value, g0._ver = v, ver
            self.param.grad = g0
        return undo

    def traced_tensor(self):
        return self.param.grad


class OptionRef:
    """A param group's float option (``lr``), read when the program is called."""

    __slots__ = ("group", "key")
    _base = None
    _requires_grad = False
    kind = "option"

    def __init__(self, group, key):
        self.group = group
        self.key = key

    @property
    def _value(self):
        return float(self.group[self.key])

    @property
    def aval(self):
        return (), np.dtype(np.float64)

    def trace_in(self, value):
        from ..tensor import Tensor
        old = self.group[self.key]
        self.group[self.key] = Tensor._wrap(value)

        def undo():
            self.group[self.key] = old
        return undo
