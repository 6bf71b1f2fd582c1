"""Structured control flow: ``tracenn.cond`` and ``tracenn.while_loop`` (torch.cond and
torch.while_loop).

Eagerly they are the Python they stand for (``if``/``while`` on the predicate's value), recorded on
the autograd tape like any code. Inside ``tracenn.compile`` a predicate that is a traced tensor has
no value: the branches (or the loop's cond and body) are traced into blocks of one ``cond`` /
``while_loop`` node, lowered to ``lax.cond`` / ``lax.while_loop`` (tracenn/compiler/control.py).
"""
from __future__ import annotations

from .. import _dispatch
from ..tensor import Tensor
from ..utils._pytree import flatten, unflatten

__all__ = ["cond", "while_loop"]


def cond(pred, true_fn, false_fn, operands=()):
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``, as one program when compiled.

    Args:
        pred: a Python bool, or a tensor with one element.
        true_fn, false_fn: functions of the operands. Inside ``tracenn.compile`` both are traced
            and must return the same structure of tensors with the same shapes and dtypes; they
            may read parameters and other tensors from outside, but not change them in place,
            draw random numbers or call module hooks (such a call runs eagerly).
        operands: a tuple (or list) of tensors, possibly nested in tuples, lists and dicts.

    Eagerly only the branch taken runs (the other is not checked against it). Under
    ``tracenn.vmap``, where the predicate differs per example, both run and each output is
    selected with ``where``.

    >>> import tracenn
    >>> x = tracenn.tensor([1.0, -2.0])
    >>> tracenn.cond(x.sum() > 0, lambda t: t * 2, lambda t: -t, (x,))
    tensor([-1.,  2.])
    """
    if not callable(true_fn) or not callable(false_fn):
        raise RuntimeError("Expect both branches to be callable.")
    if not isinstance(operands, (tuple, list)) or any(
            not isinstance(x, Tensor) for x in _leaves_and_values(operands)):
        raise RuntimeError("Expect operands to be a tuple of possibly nested dict/list/tuple that only "
                           f"consists of tensor leaves, but got {operands}.")
    if isinstance(pred, Tensor):
        if pred.numel() != 1:
            raise RuntimeError(f"Expected pred to be bool or single-element tensor, but got {pred}.")
        tracer = _dispatch.TRACE[0]
        if tracer is not None and getattr(pred._value, "symbolic", False):
            return tracer.cond(pred, true_fn, false_fn, tuple(operands))
        if _dispatch.FUNC[0] is not None and _dispatch.abstract(_dispatch.host_value(pred._value)):
            return _both(pred, true_fn, false_fn, operands)
        taken = bool(pred)
    elif isinstance(pred, bool):
        taken = pred
    else:
        raise RuntimeError(f"Expected pred to be bool or tensor, but got {pred}.")
    return (true_fn if taken else false_fn)(*operands)


def _both(pred, true_fn, false_fn, operands):
    """Inside a tracenn.func transform whose predicate has no single value (``vmap``: one per
    example): both branches, and each output selected where the predicate holds, as torch's vmap
    of cond does."""
    from ..dtypes import type_str
    from .math import where
    t_leaves, t_tree = flatten(true_fn(*operands))
    f_leaves, f_tree = flatten(false_fn(*operands))
    if t_tree != f_tree or len(t_leaves) != len(f_leaves) or any(
            a.shape != b.shape or a.dtype != b.dtype for a, b in zip(t_leaves, f_leaves)):
        def types(leaves):
            return ", ".join(type_str(tuple(t.shape), t._value.dtype) for t in leaves)
        raise RuntimeError(f"tracenn.cond under a transform: the branches must return the same structure of tensors "
                           f"with the same shapes and dtypes; true_fn returned ({types(t_leaves)}) and false_fn "
                           f"({types(f_leaves)})")
    p = pred.reshape(()) != 0
    return unflatten(t_tree, [where(p, a, b) for a, b in zip(t_leaves, f_leaves)])


def while_loop(cond_fn, body_fn, carried_inputs):
    """Run ``body_fn(*carried)`` while ``cond_fn(*carried)`` is True; return the last carried values.

    ``cond_fn`` returns a bool tensor with one element (or a Python bool), ``body_fn`` the next
    values: as many tensors as ``carried_inputs`` holds, each of the same shape and dtype.
    Inside ``tracenn.compile`` the loop is one ``lax.while_loop`` in the program; there the
    carried values must be tensors, and a loop whose tensors require grad runs eagerly (XLA's
    while loops have no reverse-mode derivative). Returns ``carried_inputs`` (as a tuple) when the
    loop runs no iteration, else what ``body_fn`` last returned.

    >>> import tracenn
    >>> tracenn.while_loop(lambda i, x: i < 3, lambda i, x: (i + 1, x * 2),
    ...                    (tracenn.tensor(0), tracenn.tensor(1.0)))
    (tensor(3), tensor(8.))
    """
    if not callable(cond_fn) or not callable(body_fn):
        raise RuntimeError("Expect cond_fn and body_fn to be callable.")
    if not isinstance(carried_inputs, (tuple, list)):
        raise RuntimeError("carried_inputs must be a tuple or list of (possibly nested) tensors or ints, "
                           f"but got {type(carried_inputs).__name__}.")
    tracer = _dispatch.TRACE[0]
    if tracer is not None:
        return tracer.while_loop(cond_fn, body_fn, tuple(carried_inputs))
    val = result = tuple(carried_inputs)
    carried, _ = flatten(val)
    while _loop_pred(cond_fn(*val)):
        result = body_fn(*val)
        leaves, _ = flatten(result)
        check_carry([t._value for t in leaves], [t._value for t in carried])
        val = result if isinstance(result, (tuple, list)) else (result,)
    return result


def check_carry(outs, carried) -> None:
    """torch's check that a loop body returns what it was given: as many tensors, each of the same
    shape and dtype (``outs``, ``carried``: anything with ``shape`` and ``dtype``)."""
    from ..dtypes import type_str
    if len(outs) != len(carried):
        raise RuntimeError(
            f"tracenn.while_loop: body_fn returned {len(outs)} tensor(s) but carried_inputs has {len(carried)}: "
            "body_fn must return the next value of every carried input")
    for i, (a, b) in enumerate(zip(outs, carried)):
        if tuple(a.shape) != tuple(b.shape) or a.dtype != b.dtype:
            raise RuntimeError(
                "Expected body_fn_output and carried_inputs to have same metadata but found: "
                f"pair[{i}] differ: body_fn returned {type_str(a.shape, a.dtype)} for carried "
                f"{type_str(b.shape, b.dtype)}")


def _loop_pred(p) -> bool:
    from ..dtypes import bool as bool_
    if isinstance(p, bool):
        return p
    if not isinstance(p, Tensor) or p.numel() != 1 or p.dtype != bool_:
        what = type(p).__name__ if not isinstance(p, Tensor) else f"a {p.dtype} tensor of shape {list(p.shape)}"
        raise RuntimeError(f"Expected cond_fn to return a scalar bool tensor or a bool but got {what}.")
    return bool(p)


def _leaves_and_values(tree) -> list:
    """Every leaf of nested tuples, lists and dicts (tensors and anything else)."""
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in _leaves_and_values(t)]
    if isinstance(tree, dict):
        return [x for t in tree.values() for x in _leaves_and_values(t)]
    return [tree]
