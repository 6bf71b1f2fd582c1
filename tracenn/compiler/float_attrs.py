"""Float attributes, globals and closure cells whose value changes: program inputs, not constants.

A compiled call guards the plain values it reads outside its arguments by value (values.py): a
module attribute (``self.temperature``), the attribute of an option object it holds or captures
(``cfg.scale``), a global, a closure cell. torch.compile (2.13) does that on the first call too, but
when such a *float* changes value and causes a recompile, it makes it an input of the new graph (a
0-d float64 tensor, as a float argument: runtime/floats.py), so an annealed temperature, an
exploration epsilon or a loss weight changed every step compiles two graphs, not one per value.
:class:`FloatAttrs` does the same for a compiled call. At each refresh of its structure key (a
module attribute set moves the epoch; a function's captures and option objects are watched at
every call) it replaces such a float's value in the key by a :class:`DynamicFloat` and adds a
:class:`~tracenn.runtime.floats.FloatSlot` to the call's state, which the program reads at each
call and the trace treats as the Python number it stands for.

A branch on such a float (``if self.t > 0.5:``) is a guard of the program traced through it
(compiler/float_guards.py): the structure key holds the *side* of the branches (a region) the
current values are on, so a value on the other side compiles a program of its own, as torch's
guard on ``t > 0.5`` does. Where the traced code needs the number itself (``float(self.t)``,
``math.exp(self.t)``), the trace fails with the float as an input and is redone with it by value;
from then on it is guarded by value again ("pinned"), a program per value, as before (torch
specializes on ``math.exp(self.t)`` too, but keeps ``float(self.t)`` symbolic: two graphs). A
module attribute the call changes itself (``self.t = self.t * 0.5`` in forward) is an input from
the second call, its new value written back as a float after each call (as torch replays it). A
NumPy float is an input from the first call (torch takes it so). Ints stay guarded by value (torch
specializes an nn.Module's int attributes and int globals; it makes the int attribute of a plain
object and an int closure cell dynamic, but ints often decide shapes, which an XLA program fixes).
Default arguments and the arguments a ``functools.partial`` binds stay guarded by value too (they
cannot change without a new function).
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from ..runtime.floats import _FLOAT_TYPES, FloatSlot

RESETS = [0]  # tracenn.compiler.reset() counts here: every FloatAttrs forgets what it learned


class DynamicFloat:
    """A float in a structure key that is a program input: equal to any other for the same side
    of the branches traced on such floats (``region``), whatever its value; its repr (recompile
    reasons, ``cm.explain()``) shows the value and why."""

    __slots__ = ("region", "value", "note")

    def __init__(self, region, value, note):
        self.region, self.value, self.note = region, value, note

    def __eq__(self, other):
        return type(other) is DynamicFloat and other.region == self.region

    def __hash__(self):
        return hash((DynamicFloat, self.region))

    def __repr__(self):
        return f"{self.value!r} ({self.note})"


class PinnedFloat:
    """A float that was a program input but is guarded by value again: the traced code needs the
    number (``float(self.t)``); equal for equal values."""

    __slots__ = ("value", "why")

    def __init__(self, value, why):
        self.value, self.why = value, why

    def __eq__(self, other):
        return type(other) is PinnedFloat and _same(other.value, self.value)

    def __hash__(self):
        return hash((PinnedFloat, self.value))

    def __repr__(self):
        if self.why is REBINDS:  # (the recompile reason says why: see values.replayed)
            return repr(self.value)
        return f"{self.value!r} (guarded by value again: the traced code needs the number)"


REBINDS = "the call rebinds it itself"  # why a function's float the call changes stays guarded by value


def _same(a: float, b: float) -> bool:
    """Equal as a guard sees floats (``-0.0`` differs from ``0.0``; NaN equals NaN)."""
    return a == b and np.signbit(a) == np.signbit(b) or a != a and b != b


class FloatAttrs:
    """Which floats a compiled call reads outside its arguments are program inputs (``dynamic``:
    ``(path, name) -> how``; path None for a function's captures), which are guarded by value again
    (``pinned``: key -> why), the first value seen of each, and the sides of the branches traced on
    them (``regions``: region -> its FloatGuards, None until a trace with that region ran)."""

    def __init__(self, fn=None, mode=None):
        self.fn = fn          # a compiled function's target (None for a module)
        self.mode = mode      # tracenn.compile's ``dynamic``: None automatic, True from the first call
        self.log = None       # the compiled call's log (cm.explain() shows it), once it has one
        self._forget()

    def _forget(self):
        self.generation = RESETS[0]
        self.first: dict = {}
        self.dynamic: dict = {}
        self.pinned: dict = {}
        self.regions: dict = {}
        self.next_region = getattr(self, "next_region", 0)  # (never reused: old structure keys name old ones)
        self.region = None
        self.keys: dict = {}  # state name -> key, of the slots the latest refresh made

    def apply(self, skey, modules, state, volatile=frozenset()):
        """``skey`` with each dynamic float replaced by a :class:`DynamicFloat` (a pinned one by a
        :class:`PinnedFloat`), making dynamic the floats whose value differs from the first seen;
        adds a FloatSlot to ``state`` per dynamic float. Runs at each refresh of the structure key."""
        if self.generation != RESETS[0]:
            self._forget()
        found = [((row[0], k), v) for row in skey[0] for k, v in row[4] if type(v) in _FLOAT_TYPES]
        if len(skey) == 7:  # a function's: the values it reads come last
            found += [((None, n), v) for n, v in skey[6] if type(v) in _FLOAT_TYPES]
        if not found:
            return skey
        counts: dict = {}
        for key, _ in found:
            counts[key] = counts.get(key, 0) + 1
        mods = {p: m for p, m in modules}
        marks, values, slots, fresh = {}, {}, {}, []
        for key, v in found:
            if counts[key] > 1 or key in volatile and key[0] is None:  # (a name read twice; see below)
                continue
            # A module attribute the call changes itself (``self.t = self.t * 0.5`` in forward) is an
            # input too, and its new value is written back after each call (compiler/escapes.py, a
            # store ``as_float``), as torch.compile replays the change. (A function's global or
            # closure float the call rebinds is not: nothing would write it back. It stays guarded
            # by value, pinned: values.ValueGuards.replayed.)
            changes = key in volatile
            if key in self.pinned:
                marks[key] = PinnedFloat(v, self.pinned[key])
                continue
            first = self.first.setdefault(key, v)
            if key not in self.dynamic and not self.mode and not changes and type(v) is float and _same(first, v):
                continue  # (a NumPy float is an input from the first call, as torch.compile takes it)
            slot = _slot(key, mods, self.fn)
            if slot is None:
                continue
            if key not in self.dynamic:
                self.dynamic[key] = "the call changes it itself, and its new value is written back after each " \
                    "call" if changes else (
                    "an input from the first call, as torch.compile(dynamic=True) takes it" if self.mode else
                    f"an input from the first call, as torch.compile takes a NumPy {type(v).__name__}"
                    if type(v) is not float else f"{first!r} -> {v!r}")
                fresh.append(key)
            name = slot.name
            while name in state or name in slots:
                name += "'"
            slot.name = name
            slots[name], values[name] = slot, v
            marks[key] = v
        if not marks:
            return skey
        region, failed = self._region(values) if slots else (None, [])
        self.region = region
        self.keys = {n: s.key for n, s in slots.items()}
        side = "; ".join(sorted({g.where for g in failed}))
        for key, v in list(marks.items()):
            if type(v) in _FLOAT_TYPES:
                note = ("a program input from now on (dynamic): its value changed, as torch.compile makes "
                        "such a float dynamic") if key in fresh else \
                    f"a program input, on the other side of {side}" if side else "a program input (dynamic)"
                marks[key] = DynamicFloat(region, v, note)
        state.update(slots)
        mod_rows = tuple(row[:4] + (tuple((k, marks.get((row[0], k), v)) for k, v in row[4]),) for row in skey[0])
        if len(skey) == 7:
            return (mod_rows,) + skey[1:6] + (tuple((n, marks.get((None, n), v)) for n, v in skey[6]),)
        return (mod_rows,) + skey[1:]

    def _region(self, values):
        """The side of the branches traced so far that ``values`` (state name -> float) are on: the
        first region whose guards all hold, else one not traced yet (a new one); and the guards
        that failed."""
        failed = []
        for r, guards in self.regions.items():
            if guards is None:
                continue
            bad = [g for g in guards if not _holds(g, values)]
            if not bad:
                return r, []
            failed += bad
        for r, guards in self.regions.items():
            if guards is None:
                return r, failed
        r = self.next_region
        self.next_region += 1
        self.regions[r] = None
        return r, failed

    def live(self, state) -> dict:
        """The slots of ``state`` that are program inputs: state name -> FloatSlot."""
        return {n: t for n, t in state.items() if type(t) is FloatSlot and not t.pinned}

    def learned(self, guards) -> None:
        """A trace with the float slots as inputs took the branches ``guards`` on them: the
        program is for the values on that side (the region the structure key holds)."""
        if self.region in self.regions and self.regions[self.region] is None:
            self.regions[self.region] = list(guards)

    def pin(self, slots, why) -> None:
        """The traced code needs the numbers of ``slots``: guarded by value from now on."""
        for n, s in slots.items():
            s.pinned = True
            key = self.keys.get(n)
            if key is not None:
                self.pin_key(key, why)
                if self.log is not None:
                    self.log.append(f"float {_label(key)}: guarded by value again, not a program input: the traced "
                                    f"code needs the number ({why})")
        self.regions.clear()  # (their guards may read the pinned floats)

    def pin_key(self, key, why) -> None:
        """Keep the float ``key`` names guarded by value from now on (the traced code needs the
        number; or a function's global or closure float the call rebinds: nothing would write a
        program input's new value back). The first reason given stays."""
        self.dynamic.pop(key, None)
        self.pinned.setdefault(key, why)

    def describe(self) -> list[str]:
        """Lines for ``cm.explain()``."""
        out = [f"  - but float {_label(k)} is a program input (dynamic), not guarded: " +
               (f"its value changed between calls ({how})" if " -> " in how else how) +
               ", so it is read at each call as a 0-d float64 array and a new value reuses the program"
               for k, how in self.dynamic.items()]
        out += [f"  - float {_label(k)} stays guarded by value: its value changed, but the traced code needs it as a "
                f"Python number ({why})" for k, why in self.pinned.items()]
        return out


def _label(key) -> str:
    path, name = key
    if path is None:
        return repr(name)
    return f"attribute {(path + '.' if path else '') + name!r}"


def _holds(guard, values) -> bool:
    try:
        return guard.holds(values)
    except (KeyError, IndexError):  # (it reads a float no longer an input)
        return False


def _slot(key, mods, fn):
    """A FloatSlot reading and writing the float ``key`` names, or None where it cannot be set from
    outside (a default argument, a partial's argument, a name read twice)."""
    path, name = key
    parts = name.split(".")
    if path is not None:
        obj = mods.get(path)
        label = f"{path}.{name}" if path else name
    else:
        obj = _capture_owner(fn, parts[0])
        if obj is None:
            return None
        if isinstance(obj, _Place):
            if len(parts) == 1:
                return obj.slot(name, key)
            obj = obj.read()
        elif len(parts) == 1:
            return None
        parts = parts[1:]
        label = name
    for p in parts[:-1]:
        obj = getattr(obj, "__dict__", {}).get(p)
        if obj is None:
            return None
    d = getattr(obj, "__dict__", None)
    if d is None or type(d.get(parts[-1])) not in _FLOAT_TYPES:
        return None
    s = FloatSlot(label, functools.partial(dict.__getitem__, d, parts[-1]),
                  functools.partial(dict.__setitem__, d, parts[-1]))
    s.key = key
    return s


class _Place:
    """Where a function's captured name lives: a closure cell or its globals dict."""

    def __init__(self, cell=None, globs=None, name=None):
        self.cell, self.globs, self.name = cell, globs, name

    def read(self):
        return self.cell.cell_contents if self.cell is not None else self.globs[self.name]

    def slot(self, label, key):
        if type(self.read()) not in _FLOAT_TYPES:
            return None
        if self.cell is not None:
            cell = self.cell
            s = FloatSlot(label, lambda: cell.cell_contents, lambda v: setattr(cell, "cell_contents", v))
        else:
            s = FloatSlot(label, functools.partial(dict.__getitem__, self.globs, self.name),
                          functools.partial(dict.__setitem__, self.globs, self.name))
        s.key = key
        return s


def _capture_owner(fn, base):
    """What the captured name ``base`` of ``fn`` is read from: the object a method is bound to
    (``self``), a closure cell or the globals (a :class:`_Place`), or the captured object whose
    attributes are read (``cfg`` of ``cfg.scale``); None for a default or a partial's argument."""
    fns = []
    f = fn
    while f is not None and len(fns) < 9:
        if isinstance(f, functools.partial):
            f = f.func
            continue
        fns.append(f)
        f = getattr(f, "__wrapped__", None)
    for f in fns:
        owner = None
        if inspect.ismethod(f):
            owner, f = f.__self__, f.__func__
        if base == "self" and owner is not None:
            return owner
        code = getattr(f, "__code__", None)
        if code is None:
            continue
        if base in code.co_freevars:
            cell = (f.__closure__ or ())[code.co_freevars.index(base)]
            return _Place(cell=cell)
        from .values import _global_names
        if base in _global_names(code) and base in getattr(f, "__globals__", {}):
            if base in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
                return None  # (also a parameter's name: its default, not the global)
            return _Place(globs=f.__globals__, name=base)
    return None
