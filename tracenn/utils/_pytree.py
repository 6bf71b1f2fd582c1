"""Flattening the nested structures tracenn passes through compiled calls: tuples, lists, dicts
and namedtuples with Tensors at the leaves (as ``torch.utils._pytree``). One definition serves the
tracer, the printed IR and the runtime's guards."""
from __future__ import annotations

from ..tensor import Tensor


class _Leaf:
    def __repr__(self):
        return "*"


LEAF = _Leaf()  # marks where a Tensor was in a flattened structure


def flatten(tree):
    """(leaves, structure): Tensors and other values at the leaves of tuples, lists, dicts and
    namedtuples; the structure has ``LEAF`` where a Tensor was and keeps other values as they are."""
    leaves = []

    def walk(t):
        if isinstance(t, Tensor):
            leaves.append(t)
            return LEAF
        if isinstance(t, tuple):
            items = [walk(x) for x in t]
            return type(t)(*items) if hasattr(t, "_fields") else tuple(items)
        if isinstance(t, list):
            return [walk(x) for x in t]
        if isinstance(t, dict):
            return type(t)((k, walk(v)) for k, v in t.items())
        return t

    return leaves, walk(tree)


def unflatten(tree, leaves):
    """Rebuild what :func:`flatten` took apart, with ``leaves`` in the Tensors' places."""
    it = iter(leaves)

    def walk(t):
        if t is LEAF:
            return next(it)
        if isinstance(t, tuple):
            items = [walk(x) for x in t]
            return type(t)(*items) if hasattr(t, "_fields") else tuple(items)
        if isinstance(t, list):
            return [walk(x) for x in t]
        if isinstance(t, dict):
            return type(t)((k, walk(v)) for k, v in t.items())
        return t

    return walk(tree)




def signature(tree):
    """A hashable form of a structure from :func:`flatten` (non-tensor leaves by value, or by
    identity when unhashable), for guard keys."""
    if tree is LEAF:
        return LEAF
    if isinstance(tree, tuple):
        return (type(tree), tuple(signature(x) for x in tree))
    if isinstance(tree, list):
        return (list, tuple(signature(x) for x in tree))
    if isinstance(tree, dict):
        return (type(tree), tuple((k, signature(v)) for k, v in tree.items()))
    try:
        hash(tree)
    except TypeError:
        return ("id", id(tree))
    return (type(tree), tree)
