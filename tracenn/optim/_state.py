"""``Optimizer.state``: torch's ``defaultdict(dict)``, as dicts that count their changes.

A compiled training step guards the structure of its optimizers' state (which parameters have
state, which keys, which tensor objects) on every call. Read out, that is a key of ids over every
state tensor: about 20 µs a call for the transformer step of ``benchmarks/train_step.py`` (78
tensors) on this 2-core CPU, several times that on a GPU machine's host, where a small step is
host-bound. These dicts bump one module-wide count on every change (an item set or deleted,
``update``, ``pop``, ``clear``...), so :func:`structure_key` reads the key out only after a change.
A state made of other dicts (a plain dict a user put in, ``__setstate__`` with a plain
``defaultdict``) is read out on every call, as before: slower, never stale.

They print, compare and pickle as the dicts they are (``opt.state`` prints as torch's
``defaultdict(<class 'dict'>, {...})``).
"""
from __future__ import annotations

import weakref
from collections import defaultdict
from itertools import chain

CHANGES = [0]  # changes made to any optimizer's state dicts


def _counting(method):
    def counted(self, *args, **kwargs):
        CHANGES[0] += 1
        return method(self, *args, **kwargs)
    counted.__name__ = method.__name__
    counted.__doc__ = method.__doc__
    return counted


_MUTATORS = ("__setitem__", "__delitem__", "__ior__", "pop", "popitem", "clear", "update", "setdefault")


class StateDict(dict):
    """One parameter's optimizer state (``opt.state[p]``): a dict."""

    __slots__ = ()
    for _name in _MUTATORS:
        locals()[_name] = _counting(getattr(dict, _name))
    del _name


class State(defaultdict):
    """``opt.state``: a ``defaultdict`` of :class:`StateDict`."""

    __slots__ = ()
    for _name in _MUTATORS:
        locals()[_name] = _counting(getattr(defaultdict, _name))
    del _name

    def __init__(self, *args, **kwargs):
        super().__init__(StateDict, *args, **kwargs)

    def __reduce__(self):  # (rebuilt by its items, as a defaultdict is)
        return State, (), None, None, iter(self.items())

    def __repr__(self):
        return f"defaultdict(<class 'dict'>, {dict.__repr__(self)})"

    def __copy__(self):
        return State(self)

    copy = __copy__


_KEYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # optimizer -> (state, CHANGES, key)


def structure_key(opt) -> tuple:
    """Which parameters ``opt`` has state for, how many entries each, and which objects: a key
    that changes with any of them. Read out again only after a change to some optimizer's state
    dicts, or always when ``opt.state`` is not made of this module's dicts."""
    st = opt.state
    memo = _KEYS.get(opt)
    if memo is not None and memo[0] is st and memo[1] == CHANGES[0]:
        return memo[2]
    key = (tuple(map(id, st)), tuple(map(len, st.values())),
           tuple(map(id, chain.from_iterable(map(dict.values, st.values())))))
    if type(st) is State and all(type(d) is StateDict for d in st.values()):
        _KEYS[opt] = (st, CHANGES[0], key)
    else:
        _KEYS.pop(opt, None)
    return key
