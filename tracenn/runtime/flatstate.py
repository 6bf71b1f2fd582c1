"""The state a compiled step rewrites each call, kept on the device as one flat array.

On a GPU a small training step is host-bound: each array a program takes or returns costs the
host microseconds per call, and a step returns every parameter and every optimizer buffer it
updates (the transformer of ``benchmarks/train_step.py``: 78 of them, with Adam). So off the CPU
(``entry.FLAT_STATE_PLATFORMS``) the state tensors a step donates (parameters, momentum and Adam
buffers, running statistics) of its most common dtype enter the program as one concatenated
array and leave it as one, donated back to the next call (:class:`FlatState`).

Between calls each of those tensors is *pending*: its ``_value`` slot is empty and its class is a
subclass of its own made by :func:`pending_class`, whose ``_value`` property makes all of the
step's tensors plain again on the first read or write (one jitted call splits the flat array). A
loop that only steps never makes them: the next call passes the flat array it has. Whether the
flat array still holds the tensors' values is known without reading them: they are pending on it,
or they hold the very arrays it handed them (a write, eager or another program's, replaces a
tensor's array); otherwise the next call concatenates their current values first.

What a user can see: ``type(p)`` of a pending parameter is its pending subclass (named as its own
class: ``isinstance`` and its printed name are unchanged, ``type(p) is nn.Parameter`` is False
until ``p`` is read). Not on the CPU: there, concatenating copies every array on the host.
"""
from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
import numpy as np

from ..tensor import Tensor

_SLOT = Tensor.__dict__["_value"]  # the slot itself, under a pending class's ``_value`` property
_KEY = "_flat_pending"              # a pending tensor's instance dict: (its FlatState, its index)
_BASES: dict = {}                   # pending class -> the class it stands for
_PENDING: dict = {}                 # class -> its pending class
# Above this much state a step is not host-bound (its update alone reads and writes this much on
# the device, and a GPU's per-array host cost is ~5 µs): the flat array would cost passes over the
# state (XLA copies the donated input it rewrites) and a state-sized buffer, and save nothing.
MAX_BYTES = 256 << 20


def _settle(t):
    """Make ``t`` a plain tensor again (all of its step's pending tensors with it); its value."""
    info = t.__dict__.get(_KEY)
    if info is None:  # (an object made through type(self) of a pending tensor: nothing to load)
        t.__class__ = _BASES[type(t)]
    else:
        info[0].materialize()
    return _SLOT.__get__(t)


class _PendingValue:
    """The ``_value`` of a pending tensor: reading or writing it first makes the tensor plain."""

    def __get__(self, t, cls=None):
        if t is None:
            return self
        return _settle(t)

    def __set__(self, t, value):
        _settle(t)
        _SLOT.__set__(t, value)


class _PendingVersion:
    """The ``_ver`` of a pending tensor: its own count plus the calls since it became pending (each
    call rewrites it, so each moves its version on, as a write would) without a write per call."""

    def __get__(self, t, cls=None):
        if t is None:
            return 0
        d = t.__dict__
        info = d.get(_KEY)
        if info is None:
            _settle(t)
            return d.get("_ver", 0)
        fs = info[0]
        return d.get("_ver", 0) + fs.calls - fs.pend_at

    def __set__(self, t, value):
        _settle(t)
        t.__dict__["_ver"] = value


def _settled(name):
    def method(self, *args, **kwargs):  # (copies and pickles of the tensor, not of its pending class)
        _settle(self)
        return getattr(self, name)(*args, **kwargs)
    method.__name__ = name
    return method


class _Meta:
    """What a pending tensor's shape, dtype and device are read from (a Tensor method given this
    in place of the tensor reads only its ``_value``): no need to make the tensor plain for them."""

    __slots__ = ("_value",)

    def __init__(self, value):
        self._value = value


def _meta(t, device=False):
    info = t.__dict__.get(_KEY)
    if info is None or (device and info[0].flat is None):
        return _Meta(_settle(t))
    fs, k = info
    return _Meta(fs.flat if device else fs.avals[k])


def _meta_property(name):
    get = getattr(Tensor, name).fget
    return property(lambda self: get(_meta(self, name == "device")), doc=getattr(Tensor, name).__doc__)


def _meta_method(name):
    fn = getattr(Tensor, name)

    def method(self, *args):
        return fn(_meta(self), *args)
    method.__name__, method.__doc__ = name, fn.__doc__
    return method


_META_PROPERTIES = ("shape", "dtype", "ndim", "nbytes", "itemsize", "device")
_META_METHODS = ("size", "dim", "ndimension", "numel", "nelement", "element_size")


def pending_class(cls):
    """``cls``'s pending subclass (made once): the same slots and names, ``_value`` a property;
    its shape, dtype and device read without making it plain."""
    out = _PENDING.get(cls)
    if out is None:
        ns = {"__slots__": (), "_value": _PendingValue(), "_ver": _PendingVersion(), "__module__": cls.__module__,
              "__qualname__": cls.__qualname__, "__doc__": cls.__doc__}
        for name in ("__deepcopy__", "__copy__", "__reduce_ex__", "__reduce__", "__getstate__"):
            if hasattr(cls, name):
                ns[name] = _settled(name)
        for name in _META_PROPERTIES + _META_METHODS:
            if getattr(cls, name) is getattr(Tensor, name):  # (a class of its own keeps its own)
                ns[name] = _meta_property(name) if name in _META_PROPERTIES else _meta_method(name)
        out = _PENDING[cls] = type(cls.__name__, (cls,), ns)
        _BASES[out] = cls
    return out


def is_pending(t) -> bool:
    return type(t) in _BASES


def array_of(t):
    """An array placed where ``t``'s values are, without making a pending ``t`` plain."""
    if type(t) in _BASES:
        info = t.__dict__.get(_KEY)
        if info is not None and info[0].flat is not None:
            return info[0].flat
    return t._value


def layout(shapes):
    """``(split, join, size)`` for arrays of ``shapes`` laid end to end in one flat array: the
    arrays from it, it from the arrays, its length."""
    sizes = [int(np.prod(s)) for s in shapes]
    offsets = [int(o) for o in np.cumsum([0] + sizes[:-1])]

    def split(flat):
        return [flat[o:o + n].reshape(s) for o, n, s in zip(offsets, sizes, shapes)]

    def join(arrays):
        return jnp.concatenate([a.reshape(-1) for a in arrays])
    return split, join, sum(sizes)


class FlatState:
    """State tensors ``members`` of one compiled program, of one dtype, as one flat array: the
    program wrapper that splits and joins it, and the two ends of a call (:meth:`take` for the
    array to donate, :meth:`write_back` for the new one)."""

    def __init__(self, members, index, positions):
        self.members = members      # the state tensors, in the order of the flat array
        self.index = index          # their indices among the program's state
        self.positions = positions  # their positions in the program's writes
        self.at = positions[0]      # where the new flat array is among the writes
        shapes = [tuple(m._value.shape) for m in members]
        self.dtype = members[0]._value.dtype
        self.avals = [jax.ShapeDtypeStruct(s, self.dtype) for s in shapes]
        self.split, self.join, self.size = layout(shapes)
        self.split_jit, self.join_jit = jax.jit(self.split), jax.jit(self.join)
        self.flat = None       # the array that holds the members' values, once a call made it
        self.calls = 0         # calls that wrote the members (their versions: see _PendingVersion)
        self.pend_at = 0       # ... as many as when they last became pending
        self.pending = False   # whether every member is pending on this flat array
        self.handed = None     # else, once the members were made plain: the arrays they were given
        self.bases = [_BASES.get(type(m), type(m)) for m in members]
        self.classes = [pending_class(c) for c in self.bases]

    @classmethod
    def plan(cls, state_tensors, donated, positions):
        """A :class:`FlatState` for the donated state indices ``donated`` (``positions``: state
        index -> write position) of the most common dtype, or None (fewer than two, or more than
        :data:`MAX_BYTES`)."""
        plain = [i for i in donated if _is_plain(state_tensors[i])]
        by_dtype: dict = {}
        for i in plain:
            by_dtype.setdefault(np.dtype(state_tensors[i]._value.dtype), []).append(i)
        if not by_dtype:
            return None

        def size(ix):
            return sum(int(np.prod(state_tensors[i]._value.shape)) for i in ix)
        dtype, idx = max(by_dtype.items(), key=lambda kv: size(kv[1]))
        if len(idx) < 2 or size(idx) * dtype.itemsize > MAX_BYTES:
            return None
        return cls([state_tensors[i] for i in idx], idx, [positions[i] for i in idx])

    def wrap(self, run, donate_idx):
        """``run`` (of the donated arrays in the order ``donate_idx``) taking this flat array first
        in place of the members' arrays, and returning the new one at ``self.at`` in its writes
        (None at the members' other positions)."""
        slot = {i: k for k, i in enumerate(donate_idx)}
        mine = [slot[i] for i in self.index]
        taken = set(mine)
        rest = [k for k in range(len(donate_idx)) if k not in taken]
        positions, at, split, join = self.positions, self.at, self.split, self.join

        def run_flat(dstate, kstate, rng, ins):
            full = [None] * len(donate_idx)
            for k, a in zip(mine, split(dstate[0])):
                full[k] = a
            for k, a in zip(rest, dstate[1:]):
                full[k] = a
            full += dstate[1 + len(rest):]  # (the old flat grads, last: see Entry)
            outs, writes = run(full, kstate, rng, ins)
            writes = list(writes)
            new = join([writes[j] for j in positions])
            for j in positions:
                writes[j] = None
            writes[at] = new
            return outs, writes
        return run_flat

    def take(self):
        """The array to donate: the last call's, while it holds the members' values; else their
        current values concatenated (the first call, or after anything else wrote one)."""
        flat = self.flat
        if flat is not None and (self.pending or (self.handed is not None and all(
                map(operator.is_, map(_SLOT.__get__, self.members), self.handed)))):
            return flat
        return self.join_jit([m._value for m in self.members])

    def write_back(self, flat):
        """Take the call's new flat array; the members are pending on it (their versions move on,
        as a write of each would move them: see _PendingVersion)."""
        self.flat = flat
        if not self.pending:
            for k, (m, cls) in enumerate(zip(self.members, self.classes)):
                _SLOT.__set__(m, None)
                m.__class__ = cls
                m.__dict__[_KEY] = (self, k)
            self.pending, self.handed, self.pend_at = True, None, self.calls
        self.calls += 1

    def materialize(self):
        """Make every member pending on this flat array a plain tensor holding its values."""
        flat = self.flat
        if flat is None or flat.is_deleted():
            raise RuntimeError("tracenn: a parameter or optimizer state tensor was read while the compiled step that "
                               "updates it held its values (from a hook or callback inside the step), or after "
                               "that step failed part way and its values were lost; read it after a step returns")
        arrays = self.split_jit(flat)
        moved = self.calls - self.pend_at
        for k, (m, base) in enumerate(zip(self.members, self.bases)):
            d = m.__dict__
            info = d.get(_KEY)
            if info is not None and info[0] is self:
                del d[_KEY]
                m.__class__ = base
                _SLOT.__set__(m, arrays[k])
                d["_ver"] = d.get("_ver", 0) + moved
        self.pending, self.handed = False, arrays


def _is_plain(t) -> bool:
    """A tensor whose ``_value`` is its slot (not a ref, nor a lazy parameter's property)."""
    if not isinstance(t, Tensor):
        return False
    for c in _BASES.get(type(t), type(t)).__mro__:
        v = c.__dict__.get("_value")
        if v is not None:
            return v is _SLOT
    return False
