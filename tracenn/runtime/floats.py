"""Python float arguments whose value changes: program inputs, not constants (as torch.compile's).

A compiled call guards on the value of every non-tensor argument, so ``cm(x, 0.5)`` bakes 0.5
into its program. torch.compile does that on the first call too, but when a float argument's
value changes and causes a recompile, it makes that argument an input of the new graph (a 0-d
float64 tensor: ``specialize_float=False`` with automatic dynamic), so later values reuse it.
:class:`FloatArgs` does the same for a :class:`~tracenn.runtime.compiled.Compiled`: after such a
recompile the float at that place in the arguments (``args[1]``, ``kwargs['alpha']``,
``args[2][0]``) is passed as a 0-d float64 array, and the trace treats it as the Python number it
stands for (compiler/graph.py ``Graph.python_float``: ``loss * alpha`` keeps ``loss``'s dtype).

A branch on such a float (``if alpha > 0.5:``) is a guard of the program traced through it
(compiler/float_guards.py, ``guarded`` here): a value on the other side compiles a program of its
own, as torch.compile's guard on ``alpha > 0.5`` does. Where the traced code needs the number itself
(``float(alpha)``, an op that takes only a number), the trace with the input fails; the argument
is then guarded by value again ("pinned"). Ints are not made inputs: they often decide shapes,
which an XLA program fixes.
"""
from __future__ import annotations

import collections

import jax
import numpy as np

from ..tensor import Tensor
from ..utils._pytree import COMPOSITE, LEAF, _is_dataclass, dataclass_items, map_leaves


# What counts as a float argument. NumPy's float scalars are program inputs from the first call,
# as torch.compile takes them (a Python float is baked in on the first call, as torch does too).
_FLOAT_TYPES = frozenset((float, np.float64, np.float32))


def float_paths(tree) -> list[tuple[str, float]]:
    """``(path, value)`` of each Python (or NumPy) float in ``tree`` (``(args, kwargs)`` as
    ``utils._pytree.flatten`` leaves it), in the order :func:`~tracenn.utils._pytree.map_leaves`
    meets them; paths as ``args[1]``, ``kwargs['alpha']``, ``args[2][0]``, ``args[0].scale``."""
    out = []

    def walk(t, path):
        if type(t) in _FLOAT_TYPES:
            out.append((path, t))
        elif t is LEAF or COMPOSITE and type(t) in COMPOSITE:
            return
        elif isinstance(t, (tuple, list)):
            for i, x in enumerate(t):
                walk(x, f"{path}[{i}]")
        elif isinstance(t, dict):
            for k, x in t.items():
                walk(x, f"{path}[{k!r}]")
        elif _is_dataclass(t):
            for n, x in dataclass_items(t):
                walk(x, f"{path}.{n}")
        elif isinstance(t, collections.UserDict):
            for k, x in t.data.items():
                walk(x, f"{path}[{k!r}]")

    args, kwargs = tree
    for i, a in enumerate(args):
        walk(a, f"args[{i}]")
    for k, v in kwargs.items():
        walk(v, f"kwargs[{k!r}]")
    return out


def _is_leaf_or_float(t) -> bool:
    return t is LEAF or type(t) in _FLOAT_TYPES


class FloatArgs:
    """Which float arguments of one compiled call are program inputs (``dynamic``), which stay
    guarded by value because the traced code needs their number (``pinned``: path -> why), and
    the first value seen at each place (a different one at a recompile makes it dynamic)."""

    def __init__(self, mode=None):
        self.mode = mode  # tracenn.compile's ``dynamic``: None automatic, True from the first call, False never
        self.dynamic: dict[str, str] = {}  # path -> how it became dynamic ("0.5 -> 0.6")
        self.pinned: dict[str, str] = {}   # path -> why it is guarded by value again
        self.seen: dict[str, float] = {}
        # structure key with the floats as inputs -> [(key of a program, its FloatGuards)]: programs
        # traced through a branch on a float (``if alpha > 0.5:``), valid while their guards hold
        self.guarded: dict = {}

    def pick(self, key, floats):
        """The key of a program for ``key`` whose guards hold for ``floats`` (position -> value),
        or None; and the guards that failed, for the recompile reason."""
        failed = []
        for full, guards in self.guarded.get(key, ()):
            bad = [g for g in guards if not g.holds(floats)]
            if not bad:
                return full, []
            failed += bad
        return None, failed

    def changed(self, tree) -> list[tuple[str, float, float]]:
        """At a cache miss: the floats of ``tree`` whose value differs from the first one seen at
        their place (and that are neither inputs already nor pinned), as (path, first, now)."""
        out = []
        if self.mode is False:  # (dynamic=False: every value compiles its own program, as torch's)
            return out
        for path, v in float_paths(tree):
            first = self.seen.setdefault(path, v)
            if path in self.dynamic or path in self.pinned:
                continue
            if type(v) is not float or self.mode:  # a NumPy float, or dynamic=True: an input from the first call
                out.append((path, None, v))
            elif not _same(first, v):
                out.append((path, first, v))
        return out

    def mark(self, changed) -> frozenset:
        """Make the floats ``changed`` found program inputs; their paths."""
        for path, first, now in changed:
            self.dynamic[path] = f"{first!r} -> {now!r}" if first is not None else \
                "an input from the first call, as torch.compile takes " + (
                    "every float with dynamic=True" if type(now) is float else f"a NumPy {type(now).__name__}")
        return frozenset(p for p, _, _ in changed)

    def as_inputs(self, leaves, tree):
        """``(leaves, tree, floats)``: the call's flattened arguments with each float at a
        dynamic place moved from the structure into the leaves as a 0-d float64 tensor, and those
        leaves' positions with their values (``{position: value}``). ``None`` for
        ``floats`` when no float of this call is dynamic (``leaves`` and ``tree`` unchanged)."""
        paths = [p for p, _ in float_paths(tree)]
        if not any(p in self.dynamic for p in paths):
            return leaves, tree, None
        it, k = iter(leaves), iter(paths)
        out, positions = [], {}
        dynamic = self.dynamic

        def take(t):
            if t is LEAF:
                out.append(next(it))
                return LEAF
            if next(k) not in dynamic:
                return t
            positions[len(out)] = t
            out.append(Tensor._wrap(_array(t)))
            return LEAF
        tree = map_leaves(tree, _is_leaf_or_float, take)
        return out, tree, positions


def _same(a: float, b: float) -> bool:
    """Equal as a guard sees floats (``-0.0`` differs from ``0.0``; NaN equals NaN)."""
    return a == b and np.signbit(a) == np.signbit(b) or a != a and b != b


def _array(v: float):
    """``v`` as a 0-d float64 NumPy array: the program's call moves it to the device (a JAX array
    made here first costs 50-100 µs on the CPU, ten times the rest of the call's work)."""
    return np.asarray(v, np.float64)


class FloatSlot:
    """A Python float a compiled call reads from outside its arguments — a module attribute
    (``self.temperature``), a global, a closure cell, an attribute of an object a function captures
    — that is a program input (its value changed at a recompile, as torch.compile makes such a
    float dynamic: compiler/values.py). A state entry like ``OptionRef``: the program reads the
    float at each call as a 0-d float64 array (:attr:`_value`), and while tracing the float's
    place holds a tensor of the input (:meth:`trace_in`), which the trace treats as the Python
    number it stands for. ``read``/``write`` get and set the float at its place (a write moves no
    epoch); a ``pinned`` slot (the traced code needs the number) is left as it is while tracing."""

    __slots__ = ("name", "read", "write", "pinned", "key", "_number", "_host", "_array")
    _base = None
    _node = None
    _requires_grad = False
    kind = "option"
    aval = ((), np.dtype(np.float64))

    def __init__(self, name, read, write):
        self.name, self.read, self.write, self.pinned, self.key = name, read, write, False, None
        self._number = self._host = self._array = None

    @property
    def _value(self):
        """The float as a 0-d float64 array: a NumPy one for a new value (a JAX array made per call
        costs more than the call), then, from its second call on, one JAX array made for it, so
        calls with an unchanged value pass no host array (24 such floats: 211 -> 54 µs a call, 44 baked in)."""
        v = self.read()
        n = self._number
        if v is n or v == n and type(v) is type(n) and v != 0:
            a = self._array
            if a is None:
                a = self._array = jax.device_put(self._host)
            return a
        self._number, self._array = v, None
        h = self._host = np.asarray(v, np.float64)
        return h

    @_value.setter
    def _value(self, _):  # (check=True puts state back after its eager run: the float is where it was)
        pass

    _ver = property(lambda self: 0, lambda self, _: None)

    def trace_in(self, value):
        if self.pinned:
            return _nothing
        old = self.read()
        t = Tensor._wrap(value)
        t.__dict__["_float_slot"] = self.name  # (not a tensor the code stored there: compiler/escapes.py)
        self.write(t)

        def undo():  # (a Python value the traced code put there stays, as eagerly)
            if isinstance(self.read(), Tensor):
                self.write(old)
        return undo


def _nothing():
    pass
