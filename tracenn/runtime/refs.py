"""State a compiled training step reads that is not a fixed tensor: a parameter's current
``.grad`` (a new tensor after every ``zero_grad()``) and a param group's learning rate (a Python
float a scheduler changes between steps). A ref is read at every call, so neither is baked into
the program: the learning rate is an input, never a constant.

A ref looks like a state tensor to the call path (``_value``, ``_base``); the tracer swaps it
for a graph value with :meth:`trace_in`, which returns the function that undoes the swap.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._pending_grad import PendingGrad
from ..device import put_beside
from ..tensor import Tensor
from .flatstate import array_of


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
        g = self.param.__dict__.get("grad")
        if g.__class__ is PendingGrad:  # (not made a tensor for this: see flatgrads)
            return g.aval
        v = g._value
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
    """A param group's float option, read when the program is called: ``lr``, ``momentum``, or
    one element of a tuple option (``betas[0]``: ``index`` 0). Schedulers change these between
    steps (OneCycleLR and CyclicLR cycle momentum or beta1 with the learning rate), so they are
    program inputs, not constants."""

    __slots__ = ("group", "key", "index", "_number", "_where", "_array")
    _base = None
    _requires_grad = False
    kind = "option"

    def __init__(self, group, key, index=None):
        self.group = group
        self.key = key
        self.index = index
        self._number = self._where = self._array = None

    def _option(self):
        v = self.group[self.key]
        return v if self.index is None else v[self.index]

    @property
    def _value(self):
        """The option as a 0-d float64 array. A number is placed beside the group's parameters
        once per new value (or new placement): a Python float passed to the program would be
        copied to the device on every call (a host-to-device transfer per step on a GPU). A
        tensor option is read on the device, with no trip to the host."""
        v = self._option()
        if isinstance(v, Tensor):
            a = v._value
            return a.reshape(()) if a.dtype == np.float64 else a.astype(np.float64).reshape(())
        params = self.group["params"]
        where = array_of(params[0]).sharding if params else None  # (a pending parameter stays pending)
        if v.__class__ is not self._number.__class__ or v != self._number \
                or where is not self._where and where != self._where:
            self._number, self._where = v, where
            self._array = put_beside(np.float64(v), array_of(params[0])) if params else jnp.asarray(float(v))
        return self._array

    @property
    def aval(self):
        return (), np.dtype(np.float64)

    def trace_in(self, value):
        old = self.group[self.key]
        if self.index is None:
            self.group[self.key] = Tensor._wrap(value)
        else:
            new = list(old)
            new[self.index] = Tensor._wrap(value)
            self.group[self.key] = type(old)(new)

        def undo():
            self.group[self.key] = old
        return undo
