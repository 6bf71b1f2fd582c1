"""Flattening the nested structures tracenn passes through compiled calls: tuples, lists, dicts
(and UserDicts), namedtuples and dataclasses with Tensors at the leaves (as ``torch.utils._pytree``, and as
torch.compile returns dataclasses). One definition serves the tracer, the printed IR and the
runtime's guards."""
from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import hashlib
import types

import numpy as np

from ..errors import UnsupportedError
from ..tensor import Tensor


class _Leaf:
    def __repr__(self):
        return "*"


LEAF = _Leaf()  # marks where a Tensor was in a flattened structure


# Tensor types made of other tensors (tracenn.sparse's SparseTensor): type -> (parts, rebuild, key).
# ``parts(t)`` lists (name, tensor) pairs; ``rebuild(t, parts)`` makes one like ``t`` from new parts
# (tensors, or LEAF markers in a flattened structure); ``key(t)`` is its static part (shape, flags).
# Flattening walks such a tensor's parts, so a compiled call takes and returns it as its parts.
COMPOSITE: dict = {}


def tensor_parts(name: str, t) -> list:
    """``[(name, t)]`` for a tensor, or its named parts for a composite one (``adj._values``)."""
    kind = COMPOSITE.get(type(t))
    if kind is None:
        return [(name, t)]
    return [(f"{name}.{n}", x) for n, x in kind[0](t)]


_DATACLASS: dict[type, bool] = {}  # type -> whether its instances are dataclasses (asked on every call)


def _is_dataclass(t) -> bool:
    """Whether ``t`` is a dataclass instance (not a dataclass type)."""
    kind = _DATACLASS.get(type(t))
    if kind is None:
        kind = _DATACLASS[type(t)] = dataclasses.is_dataclass(type(t))
    return kind


def dataclass_items(t) -> list[tuple[str, object]]:
    """(name, value) of a dataclass instance's fields (``init=False`` ones too), then of its other
    instance attributes: all that eager code sees on it, so a rebuilt one reads the same."""
    names = [f.name for f in dataclasses.fields(t)]
    names += [k for k in getattr(t, "__dict__", ()) if k not in names]
    missing = object()  # (an init=False field without a default that was never set)
    return [(n, v) for n in names if (v := getattr(t, n, missing)) is not missing]


def _rebuilt(t, attributes):
    """A copy of the dataclass instance ``t`` holding ``attributes``, made without calling its
    ``__init__``/``__post_init__``: they would run on ``LEAF`` markers when flattening (a check
    such as ``assert self.y.ndim == 2`` fails on one), and ran already when ``t`` was made."""
    new = copy.copy(t)
    for name, value in attributes:
        object.__setattr__(new, name, value)  # (through frozen=True)
    return new


def _rebuilt_dict(t, pairs):
    """A dict of ``t``'s type holding ``pairs``. A subclass is made without calling its
    ``__init__`` (Hugging Face's ``ModelOutput`` is an OrderedDict *and* a dataclass: its
    ``__init__`` takes fields, not pairs), keeping its instance attributes (a defaultdict's
    factory, a ModelOutput's fields, which mirror its items and so take the new values too)."""
    cls = type(t)
    if cls is dict:
        return dict(pairs)
    try:
        new = cls.__new__(cls)
    except TypeError:
        return cls(pairs)
    if isinstance(t, collections.defaultdict):
        new.default_factory = t.default_factory
    attrs = getattr(t, "__dict__", None)
    if attrs is not None:
        new.__dict__.update(attrs)
    put = collections.OrderedDict.__setitem__ if isinstance(t, collections.OrderedDict) else dict.__setitem__
    for k, v in pairs:
        put(new, k, v)
        if attrs is not None and k in attrs:
            object.__setattr__(new, k, v)
    return new


def _rebuilt_tuple(t, items):
    if hasattr(t, "_fields"):  # a namedtuple
        return type(t)(*items)
    try:
        return type(t)(items)  # tracenn.Size and other tuple subclasses keep their type
    except TypeError:
        return tuple(items)


def map_leaves(tree, is_leaf, fn):
    """``tree`` rebuilt with ``fn(x)`` in place of every ``x`` for which ``is_leaf(x)``, walking
    tuples, lists, dicts, namedtuples and dataclass instances (their types kept) and keeping every
    other value."""
    def walk(t):
        if COMPOSITE and type(t) in COMPOSITE:
            parts, rebuild, _ = COMPOSITE[type(t)]
            return rebuild(t, [walk(x) for _, x in parts(t)])
        if is_leaf(t):
            return fn(t)
        if isinstance(t, tuple):
            items = [walk(x) for x in t]
            return tuple(items) if type(t) is tuple else _rebuilt_tuple(t, items)
        if isinstance(t, list):
            return [walk(x) for x in t]
        if isinstance(t, dict):
            return _rebuilt_dict(t, [(k, walk(v)) for k, v in t.items()])
        if _is_dataclass(t):
            return _rebuilt(t, [(n, walk(v)) for n, v in dataclass_items(t)])
        if isinstance(t, collections.UserDict):  # (Hugging Face's BatchEncoding: a batch as a UserDict)
            new = copy.copy(t)
            new.__dict__["data"] = walk(t.data)
            return new
        return t

    return walk(tree)


def flatten(tree):
    """(leaves, structure): Tensors and other values at the leaves of tuples, lists, dicts,
    namedtuples and dataclasses; the structure has ``LEAF`` where a Tensor was and keeps other
    values as they are."""
    leaves = []

    def take(t):
        leaves.append(t)
        return LEAF

    return leaves, map_leaves(tree, lambda t: isinstance(t, Tensor), take)


def unflatten(tree, leaves):
    """Rebuild what :func:`flatten` took apart, with ``leaves`` in the Tensors' places."""
    it = iter(leaves)
    return map_leaves(tree, lambda t: t is LEAF, lambda t: next(it))


def signature(tree):
    """A hashable form of a structure from :func:`flatten` (non-tensor leaves by value, or by
    identity when unhashable), for guard keys."""
    if tree is LEAF:
        return LEAF
    if COMPOSITE and type(tree) in COMPOSITE:
        parts, _, key = COMPOSITE[type(tree)]
        return (type(tree), key(tree), tuple(signature(x) for _, x in parts(tree)))
    if isinstance(tree, tuple):
        return (type(tree), tuple(signature(x) for x in tree))
    if isinstance(tree, list):
        return (list, tuple(signature(x) for x in tree))
    if isinstance(tree, dict):
        return (type(tree), tuple((k, signature(v)) for k, v in tree.items()))
    if _is_dataclass(tree):
        return (type(tree), tuple((n, signature(v)) for n, v in dataclass_items(tree)))
    if isinstance(tree, collections.UserDict):
        return (type(tree), tuple((k, signature(v)) for k, v in tree.data.items()))
    if isinstance(tree, np.ndarray):
        return array_signature(tree)
    if _options_object(tree):
        return _object_signature(tree)
    if isinstance(tree, Tensor):  # (inside an object's attributes: not a leaf of the structure)
        return ("id", id(tree))
    try:
        hash(tree)
    except TypeError:
        return ("id", id(tree))
    return (type(tree), tree)


# A NumPy array argument is guarded by its values, as a list of numbers is: the program bakes in
# what the traced code reads from it (``torch.as_tensor(arr)``), and the same array changed in
# place must not reuse it. Up to this many bytes the key holds the bytes; above, a digest of them.
_ARRAY_BYTES_IN_KEY = 4096


def array_signature(a: np.ndarray) -> tuple:
    """A hashable form of a NumPy array's values: ``("ndarray", shape, dtype, bytes or digest)``
    (an object array, whose bytes are pointers, by identity)."""
    if a.dtype.hasobject:
        return ("id", id(a))
    if a.nbytes <= _ARRAY_BYTES_IN_KEY:
        return ("ndarray", a.shape, a.dtype.str, a.tobytes())
    data = a.data if a.flags.c_contiguous else a.tobytes()
    return ("ndarray", a.shape, a.dtype.str, hashlib.blake2b(data, digest_size=16).digest())


_NOT_OPTIONS = frozenset(("tracenn", "jax", "jaxlib", "numpy", "builtins"))


def _options_object(v) -> bool:
    """Is ``v`` a plain object of options passed as an argument (``opts.scale``, a SimpleNamespace,
    an argparse Namespace): not callable, a class, a Python module or one of tracenn's, JAX's or
    NumPy's objects, with attributes of its own? The program bakes in the attributes the traced
    code reads, so the call is keyed by their values (torch.compile guards the attributes read)."""
    t = type(v)
    if not t.__dictoffset__ or callable(v) or isinstance(v, (type, types.ModuleType)):
        return False
    return (getattr(t, "__module__", None) or "").partition(".")[0] not in _NOT_OPTIONS


def _object_signature(obj, depth=0) -> tuple:
    """``("object", type, identity, attributes)``: the object itself as before (by identity, or by
    its own ``__eq__`` where its type defines a hash: a value object), and its attributes by value."""
    t = type(obj)
    same = obj if t.__hash__ is not object.__hash__ and t.__hash__ is not None else id(obj)
    return ("object", t, same, _attributes_signature(obj, depth))


def _attributes_signature(obj, depth=0) -> tuple:
    """The signature of the attributes of the option object ``obj``: numbers, strings and tuples of
    them by value, option objects it holds one level deep, anything else by identity: a list or a
    dict too (an object holding a log it appends to at every step would otherwise compile at every
    call; a module's lists are guarded by contents where its code reads them, compiler/values.py)."""
    out = []
    for k, v in vars(obj).items():
        if _options_object(v):
            out.append((k, _object_signature(v, depth + 1) if depth < 1 else ("id", id(v))))
        elif type(v) is list or type(v) is dict or type(v) is set or type(v) is np.ndarray:
            out.append((k, ("id", id(v))))
        else:
            out.append((k, value_signature(v)))
    return tuple(out)


def value_signature(v):
    """:func:`signature` of an attribute value (or of a list, dict or array a compiled call guards
    by its contents: compiler/values.py): tuples, lists, dicts and sets walked, arrays and hashable
    plain values by value, every other object (a tensor, a module, an object holding this one) by
    identity."""
    t = type(v)
    if t is tuple or t is list:
        return (t, tuple(map(value_signature, v)))
    if t is dict:
        return (t, tuple((k, value_signature(x)) for k, x in v.items()))
    if t is set or t is frozenset:
        try:
            return (t, frozenset(v))
        except TypeError:
            return ("id", id(v))
    if t is np.ndarray:
        return array_signature(v)
    if isinstance(v, Tensor) or callable(v) or t.__dictoffset__ and not isinstance(v, (int, float, str)):
        return ("id", id(v))
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return (t, v)


def _hidden_tensor(t, known=frozenset()) -> str | None:
    """The attribute of ``t`` (an object that is not a structure) holding a Tensor, directly or
    in a list, tuple or dict, or None. A module whose parameters and buffers are all the call's
    state (``known``: their ids; an optimizer the step names steps them) holds none. For a
    function: what it reads a tensor through (:func:`_function_tensor`)."""
    from ..nn.modules.module import Module  # (imports the compiler)
    if isinstance(t, Module):
        named = list(t.named_parameters()) + list(t.named_buffers())
        return next((n for n, x in named if id(x) not in known), None)
    if isinstance(t, (types.FunctionType, types.MethodType, functools.partial)):
        return _function_tensor(t, known)
    for name, v in getattr(t, "__dict__", {}).items():
        values = v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else (v,)
        if any(isinstance(x, Tensor) for x in values):
            return name
    return None


def _function_tensor(fn, known, depth=0) -> str | None:
    """How a function passed as an argument reads a Tensor that is not the call's state: the name
    of a closure variable, a global it names, a default or a ``functools.partial`` argument holding
    one (directly, in a list, tuple or dict, or as a module's parameter; in a function held that
    way, two levels deep), or None. The trace would bake that tensor in as a constant."""
    from ..compiler.api import _captures
    from ..nn.modules.module import Module

    def reads(v):
        if isinstance(v, Tensor):
            return id(v) not in known
        if isinstance(v, Module):
            return any(id(x) not in known for x in list(v.parameters()) + list(v.buffers()))
        if isinstance(v, (list, tuple, dict)):
            return any(isinstance(x, Tensor) and id(x) not in known for x in (v.values() if isinstance(v, dict) else v))
        return False

    if isinstance(fn, functools.partial):
        if any(map(reads, list(fn.args) + list(fn.keywords.values()))):
            return "a functools.partial argument"
        fn = fn.func
    if isinstance(fn, types.MethodType) and isinstance(fn.__self__, Module):
        fn = fn.__func__  # (the module itself is checked as a module argument is)
    for name, v in _captures(fn):  # what a compiled function's own captures are: the same walk
        if reads(v):
            return name
        if depth < 2 and isinstance(v, (types.FunctionType, functools.partial)):
            inner = _function_tensor(v, known, depth + 1)
            if inner is not None:
                return f"{name} -> {inner}"
    return None


def check_no_hidden_tensors(tree, known=frozenset()) -> None:
    """Raise :class:`~tracenn.errors.UnsupportedError` (the call then runs eagerly, with a warning)
    for an object in the structure ``tree`` (from :func:`flatten` of a compiled call's arguments)
    that holds a Tensor in an attribute: the program would keep that tensor as a constant and
    silently read it on every later call. Runs when a program is traced, not on each call."""
    def reject(t):
        name = _hidden_tensor(t, known)
        kind = type(t).__name__
        from ..nn.modules.module import Module  # (imports the compiler)
        if isinstance(t, Module):
            fix = ("reach the module through a closure, a global, a default argument or a method's self "
                   "(its parameters and buffers are then the call's state), or compile the module itself")
        elif isinstance(t, (types.FunctionType, types.MethodType, functools.partial)):
            fn = getattr(t, "__qualname__", None) or getattr(getattr(t, "func", None), "__qualname__", kind)
            raise UnsupportedError(
                f"tracenn.compile: the function {fn} passed as an argument reads a tensor through {name!r}; "
                "a compiled call would keep that tensor as a constant and miss its later changes (in-place "
                "updates, training), so this call runs eagerly. Compile the code that defines the function "
                "instead (a compiled function's closures and globals are read at every call), or pass the "
                "tensor as an argument")
        else:
            fix = f"pass the tensor directly, or make {kind} a dataclass"
        raise UnsupportedError(
            f"tracenn.compile: argument of type {kind} holds a tensor in attribute {name!r}; a compiled call "
            "reads tensors from tensors, tuples, lists, dicts, namedtuples and dataclasses only — " + fix)

    map_leaves(tree, lambda t: t is not LEAF and _hidden_tensor(t, known) is not None, reject)
