"""Flattening the nested structures tracenn passes through compiled calls: tuples, lists, dicts
and namedtuples with Tensors at the leaves (as ``torch.utils._pytree``). One definition serves the
tracer, the printed IR and the runtime's guards."""
from __future__ import annotations

from ..tensor import Tensor


class _Leaf:
    def __repr__(self):
        return "*"


LEAF = _Leaf()  # marks where a Tensor was in a flattened structure


def map_leaves(tree, is_leaf, fn):
    """``tree`` rebuilt with ``fn(x)`` in place of every ``x`` for which ``is_leaf(x)``, walking
    tuples, lists, dicts and namedtuples (their types kept) and keeping every other value."""
    def walk(t):
        if is_leaf(t):
            return fn(t)
        if isinstance(t, tuple):
            items = [walk(x) for x in t]
            return type(t)(*items) if hasattr(t, "_fields") else tuple(items)
        if isinstance(t, list):
            return [walk(x) for x in t]
        if isinstance(t, dict):
            return type(t)((k, walk(v)) for k, v in t.items())
        return t

    return walk(tree)


def flatten(tree):
    """(leaves, structure): Tensors and other values at the leaves of tuples, lists, dicts and
    namedtuples; the structure has ``LEAF`` where a Tensor was and keeps other values as they are."""
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
