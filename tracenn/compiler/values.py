"""What a compiled call reads by value: the plain values (module attributes, what a function
captures) its structure key guards, the option objects whose attributes are watched at every call,
and the readers of a function's closure, globals and defaults. Moved out of api.py, which imports
these names back."""
from __future__ import annotations

import dis
import functools
import inspect
import operator
import types
from itertools import repeat

import numpy as np

from ..utils._pytree import value_signature
from ..runtime.floats import _FLOAT_TYPES
from .float_attrs import REBINDS, DynamicFloat, FloatAttrs, _label

# What a module attribute or a captured value may be for a compiled call to guard it by value: a
# program bakes such a value in (``self.p`` of Dropout, ``self.eps``, a flag a forward branches on,
# a global scale), so a change must compile anew (as torch.compile's guards do).
_PLAIN = frozenset((bool, int, float, complex, str, type(None), np.dtype))


def _plain(v) -> bool:
    t = type(v)
    return t in _PLAIN or t is tuple and all(map(_plain, v)) or t is _classes()[4] \
        or isinstance(v, np.generic)  # (a NumPy scalar, np.float64(0.5): baked in like a float)


def _attrs_key(m) -> tuple:
    """A module's plain attributes (:func:`_plain`) by name and value, those of the option
    objects it holds (:func:`_options_object`) as ``config.output_hidden_states``, and the
    contents of the lists, dicts and arrays its methods read (:func:`_watched`). Setting any
    attribute of a module moves the epoch (Module.__setattr__), so compiled calls read this again
    after one; an option object's attributes and those contents are watched at every call
    (:meth:`ValueGuards.watcher`): they change in place."""
    out = []
    read = None
    for k, v in vars(m).items():
        if _plain(v):
            if k != "training":
                out.append((k, v))
        elif _options_object(v):
            out += _options_items(k, v)
        elif _mutable(v) and _size(v) and k in (read := read or _names_read(type(m))):
            # (an empty one is left out: a forward that fills a dict of its own with tensors, as
            # one of statistics, keeps its key; the watcher still sees one filled with numbers)
            kind = _watched(v)
            if kind:  # (a larger one by identity: assigning a new one is seen, through the epoch)
                out.append((k, Contents(v) if kind == "contents" else ("id", id(v))))
    return tuple(out)


def _by_contents(v) -> bool:
    """Is ``v`` a mutable value a call guards by its contents (:func:`_watched`)?"""
    return _mutable(v) and _watched(v) == "contents"


def _size(v) -> int:
    return v.size if type(v) is np.ndarray else len(v)


# Lists, dicts, sets and NumPy arrays of plain values a program may bake in (``torch.tensor(self.sizes)``,
# ``self.cfg["scale"]``, a small lookup table): guarded by their contents, which may change in place,
# up to these sizes (a larger one is read at every call for nothing in most programs; it is guarded by
# identity only, through the epoch: assign a new one to change it, or hold it as a tensor buffer).
_WATCH_ITEMS = 256
_WATCH_ARRAY_BYTES = 1 << 16


def _mutable(v) -> bool:
    t = type(v)
    return t is list or t is dict or t is set or t is np.ndarray or t is tuple and not _plain(v)


def _watched(v):
    """How a call guards ``v``: ``"contents"`` for a list, dict, set or tuple of plain values
    (nested, :data:`_WATCH_ITEMS` in all) or a NumPy array of numbers up to
    :data:`_WATCH_ARRAY_BYTES`; ``"identity"`` for a larger one of plain values; None for one
    holding anything else (tensors, modules: the call's state, guarded otherwise)."""
    budget = [_WATCH_ITEMS]

    def ok(x, depth):
        t = type(x)
        if t in _PLAIN or isinstance(x, np.generic):
            return True
        if t is np.ndarray:
            if x.dtype.hasobject:
                return None
            budget[0] -= (x.nbytes > _WATCH_ARRAY_BYTES) * (_WATCH_ITEMS + 1)
            return True
        if depth > 3 or t not in (list, tuple, dict, set, frozenset):
            return None
        budget[0] -= len(x)
        if budget[0] < -_WATCH_ITEMS * 64:  # (too large to look through every time it is read again)
            return None
        return all(ok(a, depth + 1) and ok(b, depth + 1) for a, b in x.items()) if t is dict \
            else all(ok(a, depth + 1) for a in x)
    if not ok(v, 0):
        return None
    return "contents" if budget[0] >= 0 else "identity"


_content = value_signature  # (a hashable snapshot of a :func:`_watched` value's contents)


class Contents:
    """A mutable value's contents as they were read, for a guard key: equal to another snapshot of
    the same contents; shown as the value (``[1.0, 2.0, 3.0]``, ``float32 array (3,)``)."""

    __slots__ = ("key", "text")

    def __init__(self, v):
        self.key = _content(v)
        self.text = _short(repr(v)) if type(v) is not np.ndarray else \
            f"{v.dtype} array {v.shape} {_short(np.array2string(v, threshold=8, separator=', '))}"

    def __eq__(self, other):
        return type(other) is Contents and other.key == self.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return self.text


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=None)
def _names_read(cls) -> frozenset:
    """The attribute names the functions of ``cls`` (a Module subclass, not Module's own) read,
    ``__init__`` aside: which of its instance's lists and dicts its forward may read. A list the
    training loop appends to (``model.losses``) is not guarded, as torch.compile guards only what
    the traced code reads."""
    module = _classes()[0]
    names = set()
    for c in cls.__mro__:
        if c is module or c is object:
            continue
        for name, f in vars(c).items():
            f = f.fget if isinstance(f, property) else getattr(f, "__func__", f)
            code = getattr(f, "__code__", None)
            if code is not None and name != "__init__":
                names.update(_attributes_loaded(code))
    return frozenset(names) - frozenset(vars(module()))  # (not Module's own: parameters, hooks, ...)


def _attributes_loaded(code, depth: int = 0) -> set:
    """The attribute names ``code`` (and the functions defined in it) loads."""
    out = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_ATTR", "LOAD_METHOD")}
    if depth < 4:
        for c in code.co_consts:
            if hasattr(c, "co_names"):
                out |= _attributes_loaded(c, depth + 1)
    return out


def _options_object(v) -> bool:
    """Is ``v`` a plain Python object of options (a Hugging Face ``PretrainedConfig`` held as
    ``self.config``, a dataclass, a SimpleNamespace) whose attributes a forward may branch on
    (``if self.config.output_hidden_states``)? The program bakes in what it read, so its plain
    attributes are guarded by value, as torch.compile guards the attributes a forward reads. Not a
    callable (a module, a function), a class, a Python module, or one of tracenn's own objects."""
    t = type(v)
    if t in _PLAIN or not t.__dictoffset__ or callable(v) or isinstance(v, (type, types.ModuleType)):
        return False  # (no instance dict: nothing to read, and no user __getattr__ is run to find out)
    if isinstance(v, _CONTAINERS):  # (guarded otherwise: module structure, hooks, state identity)
        return False
    where = (getattr(t, "__module__", None) or "").partition(".")[0]
    return where not in _NOT_OPTIONS


_NOT_OPTIONS = frozenset(("tracenn", "jax", "jaxlib"))  # (their objects are state or arrays, not options)
_CONTAINERS = (dict, list, tuple, set, frozenset)  # (a module's OrderedDicts: parameters, hooks)


def _options_items(name, obj, depth=0) -> list:
    """``(name.attr, value)`` for the plain attributes of the option object ``obj`` and of the
    option objects it holds (a composite config's ``text_config``), two levels deep."""
    out = []
    for k, v in vars(obj).items():
        if _plain(v):
            out.append((f"{name}.{k}", v))
        elif depth < 1 and _options_object(v) and v is not obj:
            out += _options_items(f"{name}.{k}", v, depth + 1)
        elif _by_contents(v):
            out.append((f"{name}.{k}", Contents(v)))
    return out


def _plain_captures(fn, captured=None) -> tuple:
    """What ``fn`` captures that its program bakes in, by name and value: plain values and the
    plain attributes of option objects (``args.fp16``, ``cfg.scale``)."""
    out = []
    for name, v in _captures(fn) if captured is None else captured:
        if _plain(v):
            out.append((name, v))
        elif _options_object(v):
            out += _options_items(name, v)
        elif _by_contents(v):  # (a global list or table: changed in place)
            out.append((name, Contents(v)))
    return tuple(out)


def _options_objects(values, depth=0, found=None) -> dict:
    """The option objects among ``values`` and within them (as :func:`_options_items`), by id."""
    found = {} if found is None else found
    for v in values:
        if id(v) not in found and _options_object(v):
            found[id(v)] = v
            if depth < 1:
                _options_objects(vars(v).values(), depth + 1, found)
    return found


def options_watcher(objs, contents=()):
    """A function of no arguments, run at every compiled call, whose value changes when a plain
    attribute of one of the option objects ``objs`` changes, one is added or deleted, or an option
    object they hold is replaced, or the contents of a list, dict or array they hold or of one of
    ``contents`` change (so the call re-reads the structure key: :func:`_attrs_key`); None for
    nothing to watch."""
    if not objs and not contents:
        return None
    reads = []
    for obj in objs:
        names = [k for k, v in vars(obj).items() if _plain(v)]
        inner = tuple(k for k, v in vars(obj).items() if _options_object(v))  # (by identity: one replaced)
        held = tuple(k for k, v in vars(obj).items() if _by_contents(v))
        reads.append((obj, operator.itemgetter(*names) if names else len, inner, held))
    contents = tuple(contents)

    def watch():
        out = [tuple(map(_content, contents))] if contents else []
        try:
            for o, get, inner, held in reads:
                d = o.__dict__
                out.append((len(d), get(d), [id(d[k]) for k in inner] if inner else None,
                            [_content(d[k]) for k in held] if held else None))
            return out
        except KeyError:  # (an attribute deleted: never equal, so the call re-reads everything)
            return object()
    return watch


class ValueGuards:
    """The plain values a compiled call's structure key holds (module attributes; for a function,
    the values it reads: see :func:`_plain`), for the runtime: which ones a trace changed, and a
    structure key without a given set of them (``(path, name)``; path ``None`` for a function's)."""

    def __init__(self, fn=None, mode=None, floats=True):
        self.fn = fn
        self.volatile = frozenset()
        # floats among them that change value: program inputs at a recompile (float_attrs.py)
        self.floats = FloatAttrs(self._target(), mode) if floats and mode is not False else None

    def dynamize(self, skey, modules, state):
        """``skey`` with the floats that are program inputs taken out (their slots added to
        ``state``): see :class:`~tracenn.compiler.float_attrs.FloatAttrs`."""
        return skey if self.floats is None else self.floats.apply(skey, modules, state, self.volatile)

    def snapshot(self, modules) -> dict:
        out = {(p, k): v for p, m in modules for k, v in _attrs_key(m)}
        if self.fn is not None:
            out.update(((None, n), v) for n, v in _plain_captures(self._target()))
        return out

    def watcher(self, modules):
        """:func:`options_watcher` of the option objects the modules hold and, for a function,
        those it captures: what a compiled call watches besides the epoch (None for none)."""
        values = [v for _, m in modules for v in vars(m).values()]
        contents = [v for p, m in modules for k, v in vars(m).items()
                    if (p, k) not in self.volatile and k in _names_read(type(m)) and _by_contents(v)]
        if self.fn is not None:
            captured = [v for _, v in _captures(self._target())]
            values += captured
            contents += [v for v in captured if _by_contents(v)]
        return options_watcher(list(_options_objects(values).values()), contents)

    def _target(self):
        fn = self.fn
        return fn.__func__ if inspect.ismethod(fn) and _is_module(fn.__self__) else fn

    def changed(self, before, modules) -> set:
        after = self.snapshot(modules)
        return {k for k in before.keys() | after.keys() if before.get(k, before) != after.get(k, before)}

    def replayed(self, changed, modules) -> tuple:
        """Of the values a trace ``changed``, those a call keeps right without re-running the Python
        that changed them, which can stop being guarded: a module's float attribute (a program
        input from then on, its new value written back after each call: float_attrs.py), and what
        is not a guarded plain value (a tensor a forward stores; an attribute it deleted).

        A list, dict, set or array the call changes stops being guarded too: its change happens
        when the call is traced, as a ``print`` runs then (the usual trace counter,
        ``traces.append(1)``; tensors the call appends are replayed: compiler/escapes.py).

        The rest stay guarded: an int counter (``self.calls += 1``), a string, a global or closure
        number the function rebinds. A program cannot repeat a Python side effect, so the next call
        sees a new value and traces again, which runs the change again: the count is what eager code
        gives (torch.compile replays such a change; past ``cache_size_limit`` the calls run eagerly,
        with a warning that names the value). A function's float stays guarded by value (pinned),
        not made an input: nothing would write it back.

        Returns the values that stop being guarded, and how a recompile reason names the others.
        """
        after = self.snapshot(modules)
        out, kept = set(), set()
        for key in changed:
            v = after.get(key, Contents)  # (Contents: gone, or not a plain value)
            is_float = type(v) in _FLOAT_TYPES and self.floats is not None
            if v is Contents or type(v) is Contents or is_float and key[0] is not None:
                out.add(key)
                continue
            if is_float:
                self.floats.pin_key(key, REBINDS)
            kept.add(_label(key))
        return out, kept

    def canon(self, skey, volatile):
        self.volatile = frozenset(volatile)  # (not made program inputs: the trace changes them itself)
        if not volatile:
            return skey
        mods = tuple(row[:4] + (tuple((k, v) for k, v in row[4]  # (one the call changes may be an input)
                                      if (row[0], k) not in volatile or type(v) is DynamicFloat),)
                     for row in skey[0])
        if len(skey) == 7:  # a function's: the values it reads come last
            return (mods,) + skey[1:6] + (tuple((n, v) for n, v in skey[6] if (None, n) not in volatile),)
        return (mods,) + skey[1:]


def _captures(fn):
    """(name, value) for what ``fn`` reads besides its arguments: its closure, the globals it
    names, its default arguments, and — for a method of a plain object (``trainer.step``) — the
    object's attributes (``self.model``, ``self.opt``). Modules, optimizers and tensors found
    here are the compiled call's state, read at every call."""
    return _capture_reader(fn)()


def _capture_reader(fn, named=True):
    """A function of no arguments returning ``_captures(fn)`` — or, with ``named=False``, just the
    values, in the same order — with what a call cannot change (which function, its code, closure
    cells and globals dict) looked up once: the per-call watch of a compiled function reads it on
    every call. A decorated function (``@tracenn.no_grad()``, anything ``functools.wraps`` made)
    reads what the function it wraps reads too (``__wrapped__``), and a ``functools.partial``
    reads its bound arguments (:func:`_partial_pairs`) and what its function reads."""
    if isinstance(fn, functools.partial):
        bound, inner_fn = _partial_pairs(fn)
        inner = _capture_reader(inner_fn, named)
        if named:
            return lambda: bound + inner()
        values = [v for _, v in bound]
        return lambda: values + inner()
    chain = []
    inner = getattr(fn, "__wrapped__", None)
    while inner is not None and len(chain) < 8 and not any(inner is f for f in chain):
        chain.append(inner)
        inner = getattr(inner, "__wrapped__", None)
    if chain:
        readers = [_one_capture_reader(f, named) for f in [fn] + chain]
        return lambda: [x for read in readers for x in read()]
    return _one_capture_reader(fn, named)


def _positional_names(fn) -> list:
    """The names of ``fn``'s positional parameters, in order (none when it has no signature): what
    an argument bound by position is called in state names (``model.0.weight``)."""
    try:
        return [p.name for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return []


def _partial_pairs(fn: functools.partial):
    """(name, value) for the arguments ``fn`` (a ``functools.partial``) binds, named by the
    function's parameters (``partial(decode_one_token, model)`` binds ``model``), and the function
    whose captures come after them. A partial of a module's method binds the module as ``self``
    (its parameters and buffers are the call's state, as for a compiled method)."""
    func = fn.func
    params = _positional_names(func)
    bound = [(params[i] if i < len(params) else f"args[{i}]", v) for i, v in enumerate(fn.args)]
    bound += list(fn.keywords.items())
    if inspect.ismethod(func) and _is_module(func.__self__):
        bound.append(("self", func.__self__))
        func = func.__func__
    return bound, func


def _one_capture_reader(fn, named):
    owner = None
    if inspect.ismethod(fn):
        owner, fn = fn.__self__, fn.__func__
    code = getattr(fn, "__code__", None)
    free = code.co_freevars if code is not None else ()
    cells = (fn.__closure__ or ()) if code is not None else ()
    g = getattr(fn, "__globals__", {})
    names = _global_names(code) if code is not None else ()
    missing = object()

    def values():
        found = list(getattr(owner, "__dict__", {}).values()) if owner is not None else []
        if code is None:
            return found
        for cell in cells:
            try:
                found.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        found += [v for v in map(g.get, names, repeat(missing)) if v is not missing]
        found += fn.__defaults__ or ()
        found += (fn.__kwdefaults__ or {}).values()
        return found

    def pairs():
        found = [(f"self.{k}", v) for k, v in getattr(owner, "__dict__", {}).items()] if owner is not None else []
        if code is None:
            return found
        for name, cell in zip(free, cells):
            try:
                found.append((name, cell.cell_contents))
            except ValueError:
                pass
        found += [(n, v) for n, v in zip(names, map(g.get, names, repeat(missing))) if v is not missing]
        defaults = fn.__defaults__ or ()
        found += zip(code.co_varnames[code.co_argcount - len(defaults):code.co_argcount], defaults)
        found += (fn.__kwdefaults__ or {}).items()
        return found
    return pairs if named else values


def _global_names(code, depth: int = 0) -> tuple:
    """The names ``code`` looks up outside itself, with those of the functions, lambdas and
    comprehensions defined in it (``lambda a: a * w`` reads the global ``w`` too), once each."""
    names = list(code.co_names)
    if depth < 4:
        for c in code.co_consts:
            if hasattr(c, "co_names"):
                names += _global_names(c, depth + 1)
    return tuple(dict.fromkeys(names))


def _is_module(obj) -> bool:
    return isinstance(obj, _classes()[0])


@functools.lru_cache(maxsize=None)
def _classes():
    """(Module, Optimizer, Parameter, GradScaler, tracenn.dtype), imported on first use (they
    import the compiler), then kept: the checks run on every call of a compiled function."""
    from .._grad_scaler import GradScaler
    from ..dtypes import dtype
    from ..nn.modules.module import Module
    from ..nn.parameter import Parameter
    from ..optim.optimizer import Optimizer
    return Module, Optimizer, Parameter, GradScaler, dtype
