"""Values a traced call leaves behind outside its outputs: tensors the traced code stored on a
module (``self.mask = ...``) or put in a list or dict that outlives the call (``self.acts.append(h)``,
a global ``history.append(loss)``). They hold the trace's symbolic values, which no later call can
read: one computable at compile time gets its value, anything else is undone and the call runs
eagerly (:class:`~tracenn.errors.UnsupportedError`), with what to do instead."""
from __future__ import annotations

import functools

from ..errors import UnsupportedError
from ..tensor import Tensor
from ..utils._pytree import flatten, unflatten
from .graph import Value, known_value


def tensor_attributes(modules) -> dict:
    """{(path, attribute): tensor} of the plain tensor attributes of ``modules`` (not parameters or
    buffers: what ``self.mask = ...`` stores)."""
    return {(path, k): v for path, m in modules for k, v in vars(m).items() if isinstance(v, Tensor)}


def view_sources(leaves, inputs, state) -> dict:
    """{index: (0, input index | 1, state index, view)} for the tensors of ``leaves`` (the call's
    outputs, then its stored tensors) that are one of the traced ``inputs`` or ``state`` tensors
    (``view`` None: ``x.add_(1); return x``) or a view of one (``view`` its (steps, strides,
    detached): ``x[0]``, ``x.t()``, ``x.detach()``, ``self.weight.T``). The runtime returns the
    caller's tensor, or the same view of it (whose in-place changes reach it), as eager code
    does, not the program's copy."""
    ins = {id(s): k for k, s in enumerate(inputs)}
    st = {id(t): j for j, t in enumerate(state.values())}
    got = {}
    for i, t in enumerate(leaves):
        if id(t) in ins or id(t) in st:  # the tensor itself, maybe changed in place: the caller's
            got[i] = (0, ins[id(t)], None) if id(t) in ins else (1, st[id(t)], None)
            continue
        root = t._base if isinstance(t, Tensor) else None
        if root is None or (id(root) not in ins and id(root) not in st):
            continue
        n = len(root._layout)
        if t._chain[:n] != root._layout or len(t._chain) == n:
            continue
        src = (0, ins[id(root)]) if id(root) in ins else (1, st[id(root)])
        got[i] = src + ((t._chain[n:], t._strides, t._detached),)
    return got


def settle_module_tensors(graph, modules, state, arrays) -> None:
    """Tensors the traced code stored on a module (``self.mask = ...``, a lazily built cache) hold
    this graph's symbolic values, which no later call, program or eager, can read. One computed
    from constants and captured tensors (a module's plain tensor attributes: ``arrays`` has their
    arrays by state name) gets its value now (the graph's nodes evaluated at compile time), as if
    the call had run eagerly. One computed from the call's inputs, parameters or buffers is left
    for :class:`Containers` (a store the call replays, or an UnsupportedError). (The state tensors
    themselves get their arrays back after the trace.)"""
    import jax.numpy as jnp
    after = tensor_attributes(modules)
    in_state = {id(t) for t in state.values()}
    pending = [t for t in after.values() if isinstance(t._value, Value) and id(t) not in in_state]
    known = {v: arrays[n] for n, v in graph.state.items() if v.kind == "capture" and n in arrays}
    for t in pending:
        got = known_value(t._value, graph, known)
        if got is not None:
            t._value = jnp.asarray(got)


_MISSING = object()


@functools.cache
def _module_internals() -> frozenset:
    """The attributes every Module has (its parameter, buffer, submodule and hook dicts)."""
    from ..nn.modules.module import Module
    return frozenset(vars(Module()))


def _symbolic(x, depth=0) -> bool:
    """Is ``x`` a tensor holding a trace's symbolic value, or a tuple, list or dict holding one?"""
    if isinstance(x, Tensor):
        return isinstance(x._value, Value)
    if depth < 3 and isinstance(x, (tuple, list)):
        return any(_symbolic(v, depth + 1) for v in x)
    if depth < 3 and isinstance(x, dict):
        return any(_symbolic(v, depth + 1) for v in x.values())
    return False


class Containers:
    """The lists and dicts a traced call could leave symbolic tensors in: those held (up to three
    levels down) by the modules' own attributes and, for a function, by the globals, closure cells
    and defaults it names. Their items are copied when the trace starts (cheap: a trace is rare),
    so what the trace put in them can be taken out again."""

    _MAX = 10_000  # containers followed at most (a replay buffer of many small lists)

    def __init__(self, modules, captures=()):
        self.found = []  # (where, container, its items before the trace)
        seen = set()
        internal = _module_internals()
        self.modules = [(path, m, dict(vars(m))) for path, m in modules]  # (their attributes before)
        roots = [(f"{path + '.' if path else ''}{k}", v) for path, m in modules
                 for k, v in vars(m).items() if k not in internal]
        roots += [(name, v) for name, v in captures if not isinstance(v, Tensor)]
        for where, v in roots:
            self._walk(where, v, 0, seen)

    def _walk(self, where, v, depth, seen):
        if isinstance(v, (list, dict)):
            if id(v) in seen or len(seen) >= self._MAX:
                return
            seen.add(id(v))
            self.found.append((where, v, dict(v) if isinstance(v, dict) else list(v)))
            items = v.items() if isinstance(v, dict) else enumerate(v)
        elif type(v) is tuple:
            items = enumerate(v)
        else:
            return
        if depth < 2:
            for k, x in items:
                self._walk(f"{where}[{k!r}]", x, depth + 1, seen)

    def stores(self, graph) -> list:
        """The :class:`Store` s that replay what the traced code put in the containers, each with the
        symbolic tensors its items hold (in order): an append to a list, an item set in a dict, or
        a module attribute set (``self.attn = w``). Anything else that left a symbolic tensor in one
        (an item replaced or removed, a list rebuilt) raises UnsupportedError, as does replacing a
        tensor attribute the graph reads (``self.h = f(self.h)``: a buffer's job). The containers
        and attributes get their contents back (:meth:`restore`)."""
        out, bad = [], []
        read = None  # the values the graph reads (a tensor attribute only overwritten is a plain store)
        for path, m, before in self.modules:
            for k, v in vars(m).items():
                if v is not before.get(k, _MISSING) and _symbolic(v) \
                        and not (isinstance(v, Tensor) and "_float_slot" in v.__dict__):
                    # (not a float attribute passed as a program input: runtime/floats.FloatSlot)
                    where = f"self.{path + '.' if path else ''}{k}"
                    name = f"{path + '.' if path else ''}{k}"
                    # (a float attribute that is a program input, set anew: a store written back as a float)
                    old = None if name in graph.python_floats else graph.state.get(name)
                    if old is not None and read is None:
                        read = set(graph.users()) | {x for x in graph.outputs if isinstance(x, Value)} \
                            | {x for x in graph.writes.values() if isinstance(x, Value)}
                    if old is not None and old in read:
                        raise UnsupportedError(
                            f"the traced code reads the tensor attribute {where} and replaces it with a tensor "
                            "computed in the call: a compiled call cannot carry it to the next call that way. "
                            "Register it as a buffer (self.register_buffer(name, tensor)) and update it in "
                            "place or reassign it, or pass it in and return it")
                    out.append(Store("attr", m, k, where, v))
        for where, c, before in self.found:
            if not _symbolic(c):
                continue
            if isinstance(c, list):
                if len(c) < len(before) or any(a is not b for a, b in zip(before, c)):
                    bad.append(where)
                    continue
                out += [Store("append", c, None, where, x) for x in c[len(before):]]
            else:
                if any(k not in c for k in before):
                    bad.append(where)
                    continue
                out += [Store("item", c, k, where, v) for k, v in c.items() if k not in before or v is not before[k]]
        if bad:
            raise UnsupportedError(
                f"the traced code changed a list or dict that outlives the call ({', '.join(bad[:3])}) with "
                "tensors computed in the call other than by appending to a list or setting a dict item, "
                "which a compiled call can replay: return the tensors from the compiled call and store "
                "them outside")
        return out

    def restore(self) -> None:
        """Put back the items of every container, and the attributes of every module, the trace
        left a symbolic tensor in."""
        for _, m, before in self.modules:
            for k, v in list(vars(m).items()):
                if v is not before.get(k, _MISSING) and _symbolic(v):
                    if k in before:
                        object.__setattr__(m, k, before[k])
                    else:
                        delattr(m, k)
        for _, c, before in self.found:
            if _symbolic(c):
                if isinstance(c, dict):
                    c.clear()
                    c.update(before)
                else:
                    c[:] = before


class Store:
    """A side effect of a traced call that the compiled call replays after each call with that
    call's tensors: ``history.append(loss)`` (kind ``"append"``), ``log["loss"] = loss``
    (``"item"``, ``key``) or ``self.attn = w`` (``"attr"``: ``target`` the module, ``key`` the
    name), as torch.compile replays them. ``tree`` is the stored object with its
    tensors taken out (:func:`~tracenn.utils._pytree.flatten`); the graph's outputs end with the
    values of every store's tensors, in order (``Graph.stores``)."""

    __slots__ = ("kind", "target", "key", "where", "tree", "n", "leaves", "as_float")

    def __init__(self, kind, target, key, where, item):
        leaves, self.tree = flatten(item)
        self.kind, self.target, self.key, self.where, self.n = kind, target, key, where, len(leaves)
        self.as_float = False  # a module attribute set to a Python float (api._traced): written back as one
        self.leaves = leaves  # (the trace's tensors, until the graph's outputs hold their values)

    def describe(self, value: str) -> str:
        """The store as Python, ``value`` in place of what is stored: ``history.append(%7)``."""
        if self.kind == "append":
            return f"{self.where}.append({value})"
        return f"{self.where} = {value}" if self.kind == "attr" else f"{self.where}[{self.key!r}] = {value}"

    def apply(self, values) -> None:
        """Do it, with ``values`` (this call's tensors) in place of the trace's."""
        item = unflatten(self.tree, values)
        if self.kind == "append":
            self.target.append(item)
        elif self.kind == "item":
            self.target[self.key] = item
        elif self.as_float:  # (eagerly a float, computed from float inputs: ``self.t = self.t * 0.5``)
            object.__setattr__(self.target, self.key, float(values[0]))
        else:  # (not Module.__setattr__: that moves the epoch, and the next call would re-read the model)
            for t in values:
                if isinstance(t, Tensor):
                    t.__dict__["_stored"] = True  # (api._attribute_tensors: not an input of the next call)
            object.__setattr__(self.target, self.key, item)

