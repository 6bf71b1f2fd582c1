"""``torch.utils.swap_tensors``: exchange the contents of two tensor objects, keeping their identities.

A tracenn tensor's content is its class, its slots (``_value``, ``_requires_grad``, ``_node``,
``_out_idx``) and its instance dict (``grad``, view and version state, ``_acc``): swapping all
three is torch's swap of the Python objects and the ``at::Tensor`` they point to.

What torch refuses, tracenn refuses with torch's errors: a tensor something else holds a weak
reference to (a ``retain_grad()`` non-leaf, say), or two classes with different slots. A leaf's
gradient accumulator (``AccumulateGrad``, the one weak reference torch allows) is poisoned, as
torch's: a backward through a graph recorded before the swap raises instead of accumulating into
the wrong tensor; later ops record fresh accumulators. One difference: torch also refuses a tensor
whose views are alive (they hold its storage); tracenn cannot see those views (a view refers to
its root object, not the reverse), and after the swap they read the object's new content.
"""
from __future__ import annotations

import copyreg
import weakref

__all__ = ["swap_tensors"]

_POISONED = ("Trying to execute AccumulateGrad node that was poisoned by swap_tensors this can happen when you try "
             "to run backward on a tensor that was swapped. For a module m with "
             "`torch.__future__.set_swap_module_params_on_conversion(True)` you should not change the device or "
             "dtype of the module (e.g. `m.cpu()` or `m.half()`) between running forward and backward. To resolve "
             "this, please only change the device/dtype before running forward (or after both forward and "
             "backward).")


def _poison(grad):
    raise RuntimeError(_POISONED)


def _check_weakrefs(t, name):
    acc = t.__dict__.get("_acc")
    allowed = acc.variable if acc is not None else None
    if any(r is not allowed for r in weakref.getweakrefs(t)):
        raise RuntimeError(f"Cannot swap {name} because it has weakref associated with it")


def swap_tensors(t1, t2) -> None:
    """Swap the contents of tensors ``t1`` and ``t2`` (class, value, dtype, shape, ``requires_grad``,
    ``grad``, autograd history, attributes), so that each object keeps its identity and takes the
    other's content, as torch's. Modules and optimizers that hold either object see the new content.

    >>> import tracenn
    >>> a, b = tracenn.zeros(2), tracenn.nn.Parameter(tracenn.ones(3))
    >>> ida = id(a)
    >>> tracenn.utils.swap_tensors(a, b)
    >>> id(a) == ida, type(a).__name__, a.shape, b
    (True, 'Parameter', tracenn.Size([3]), tensor([0., 0.]))
    """
    from .. import _dispatch
    from ..tensor import Tensor
    for t, name in ((t1, "t1"), (t2, "t2")):
        if not isinstance(t, Tensor):
            raise TypeError(f"swap_tensors: expected {name} to be a Tensor, got {type(t).__name__}")
    if t1 is t2:
        return
    _check_weakrefs(t1, "t1")
    _check_weakrefs(t2, "t2")
    if set(copyreg._slotnames(t1.__class__)) != set(copyreg._slotnames(t2.__class__)):
        raise RuntimeError("Cannot swap t1 and t2 if they have different slots")
    accs = [t.__dict__.pop("_acc", None) for t in (t1, t2)]
    for acc in accs:  # the graph recorded before the swap must not reach the swapped tensors
        if acc is not None:
            acc._add_pre(0, _poison)
    t1.__class__, t2.__class__ = t2.__class__, t1.__class__
    d1, d2 = dict(t1.__dict__), dict(t2.__dict__)
    # Each object keeps its version counter: the graph recorded before the swap saved the object
    # with its version (torch saves the impl, whose version moves with it); a backward through that
    # graph then reaches the poisoned accumulator, torch's error, not a version mismatch.
    v1, v2 = d1.pop("_ver", None), d2.pop("_ver", None)
    if v1 is not None:
        d2["_ver"] = v1  # (d2 becomes t1's dict)
    if v2 is not None:
        d1["_ver"] = v2
    t1.__dict__.clear()
    t1.__dict__.update(d2)
    t2.__dict__.clear()
    t2.__dict__.update(d1)
    for slot in ("_value", "_requires_grad", "_node", "_out_idx"):
        a, b = getattr(t1, slot), getattr(t2, slot)
        setattr(t1, slot, b)
        setattr(t2, slot, a)
    for t in (t1, t2):
        t._writes = t._writes + 1  # views of either object re-read it (see the module docstring)
    _dispatch.EPOCH[0] += 1  # compiled calls re-read the parameters they hold
