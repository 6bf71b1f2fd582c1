"""What a compiled call reads by value: the plain values (module attributes, what a function
captures) its structure key guards, the option objects whose attributes are watched at every call,
and the readers of a function's closure, globals and defaults. Moved out of api.py, which imports
these names back."""
from __future__ import annotations

import functools
import inspect
import operator
import types
from itertools import repeat

import numpy as np

from .float_attrs import DynamicFloat, FloatAttrs

# What a module attribute or a captured value may be for a compiled call to guard it by value: a
# program bakes such a value in (``self.p`` of Dropout, ``self.eps``, a flag a forward branches on,
# a global scale), so a change must compile anew (as torch.compile's guards do).
_PLAIN = frozenset((bool, int, float, complex, str, type(None), np.dtype))


def _plain(v) -> bool:
    t = type(v)
    return t in _PLAIN or t is tuple and all(map(_plain, v)) or t is _classes()[4] \
        or isinstance(v, np.generic)  # (a NumPy scalar, np.float64(0.5): baked in like a float)


def _attrs_key(m) -> tuple:
    """A module's plain attributes (:func:`_plain`) by name and value, and those of the option
    objects it holds (:func:`_options_object`) as ``config.output_hidden_states``. Setting any
    attribute of a module moves the epoch (Module.__setattr__), so compiled calls read this again
    after one; an option object's attributes are watched at every call (:func:`options_watcher`)."""
    out = []
    for k, v in vars(m).items():
        if _plain(v):
            if k != "training":
                out.append((k, v))
        elif _options_object(v):
            out += _options_items(k, v)
    return tuple(out)


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


def options_watcher(objs):
    """A function of no arguments, run at every compiled call, whose value changes when a plain
    attribute of one of the option objects ``objs`` changes, one is added or deleted, or an option
    object they hold is replaced (so the call re-reads the structure key: :func:`_attrs_key`);
    None for no objects."""
    if not objs:
        return None
    reads = []
    for obj in objs:
        names = [k for k, v in vars(obj).items() if _plain(v)]
        inner = tuple(k for k, v in vars(obj).items() if _options_object(v))  # (by identity: one replaced)
        reads.append((obj, operator.itemgetter(*names) if names else len, inner))

    def watch():
        out = []
        try:
            for o, get, inner in reads:
                d = o.__dict__
                out.append((len(d), get(d), [id(d[k]) for k in inner] if inner else None))
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
        if self.fn is not None:
            values += [v for _, v in _captures(self._target())]
        return options_watcher(list(_options_objects(values).values()))

    def _target(self):
        fn = self.fn
        return fn.__func__ if inspect.ismethod(fn) and _is_module(fn.__self__) else fn

    def changed(self, before, modules) -> set:
        after = self.snapshot(modules)
        return {k for k in before.keys() | after.keys() if before.get(k, before) != after.get(k, before)}

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
