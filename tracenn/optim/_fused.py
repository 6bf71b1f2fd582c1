"""The eager step of every optimizer here: its update rule as one jitted program per param group
(torch's ``foreach`` / ``fused``), and the write-back of the results into the parameters and state
tensors, which keep their identity.

This runs on every training step of an eager or partly compiled loop, for every parameter, so the
host work per tensor is kept small: a step of the 784-512-512-10 MLP's SGD spends more time here
than in its program unless it is (see docs/performance.md, "twentieth session").
"""
from __future__ import annotations

from sys import getrefcount
from typing import Callable

import jax
import numpy as np

from .. import _dispatch
from ..autograd.grad_mode import GRAD
from ..device import put_beside
from ..tensor import Tensor

__all__ = ["apply_rule", "write_back", "write_back_all"]

_TRACE, _FUNC, _META = _dispatch.TRACE, _dispatch.FUNC, _dispatch.META
_wrap = Tensor._wrap


def _no_write_rules() -> bool:
    """No mode that changes what an in-place write does: no trace, no grad mode, no ``tracenn.func``
    transform, no meta tensor ever made (the global half of :func:`write_back`'s direct write)."""
    return _TRACE[0] is None and not GRAD.enabled and _FUNC[0] is None and not _META[0]


def _plain(dst: Tensor) -> bool:
    """``dst`` is a root with no history that takes writes (not a view, an inference tensor or an
    ``as_strided`` result): ``_set_`` only rebinds its array and bumps its version."""
    return dst._base is None and dst._node is None and dst._no_writes is None and not dst._inference


def write_back(dst: Tensor, src: Tensor) -> None:
    """Make ``dst`` (a parameter or a state tensor) hold ``src``'s values, keeping ``dst``.

    An eager result with ``dst``'s shape, dtype and placement (an update computed from ``dst``)
    goes straight to ``_set_``, the in-place write ``copy_`` ends in (versions, views and the
    autograd checks as ``copy_``): ``copy_``'s broadcasting and device checks cost 10x more,
    which adds up over every tensor of a large model. And where none of ``_set_``'s rules can apply
    (no grad mode, a root tensor with no history, none of the states that refuse or redirect a
    write: an inference or meta tensor, an ``as_strided`` result, a ``tracenn.func`` transform),
    the write is what ``_set_`` would do for it: the new array and a version bump.
    """
    if src is dst:
        return
    sv, dv = src._value, dst._value
    if _TRACE[0] is None and sv.shape == dv.shape and sv.dtype == dv.dtype:
        ss, ds = sv.sharding, dv.sharding
        if ss is ds or ss == ds:
            if not src._requires_grad and _no_write_rules() and _plain(dst):
                dst._value = sv
                dst._ver += 1
            else:
                dst._set_(src, "copy_")
            return
    dst.copy_(src)


def write_back_all(dsts, srcs) -> None:
    """:func:`write_back` each result of an update rule into its tensor (None: none kept)."""
    for dst, src in zip(dsts, srcs):
        if dst is not None and src is not None:
            write_back(dst, src)


_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FUSED: dict = {}  # (rule, options, autocast, item rows, row layouts, kinds) -> [jitted program, same avals]


def apply_rule(group: dict, rule: Callable, items: list, **options) -> list:
    """``[rule(*tensors, **coefs, **options) for tensors, coefs in items]``, in eager mode as one
    jitted XLA program per (device, dtype) instead of a few kernels per parameter.

    ``rule`` is the tensor half of an update rule (``_functional.<name>_apply``); ``coefs`` the
    coefficients its scalar half computed on the host (Python numbers, or None to turn a term
    off); ``tensors`` the parameter, its gradient and its state (None where absent). Items that
    share a step count should share one ``coefs`` dict: it becomes one row of the program's input.

    The program calls ``rule`` itself on tracer-backed tensors, so the per-op kernels inline into
    it and compute the loop's formulas; XLA may contract a multiply and an add of two of them into
    one FMA (as in a compiled step, and as torch's foreach kernels do), so a result can differ
    from the loop's in the last bit. The coefficients are *inputs* (cast to the parameter's dtype,
    as a Python scalar operand is), so a new ``lr``, momentum or step count reuses the compiled
    program; a new set of options or of None coefficients (SGD's first step, RAdam's switch to
    the rectified update) compiles another.

    The results are ``(new_param, *new_state)``: the caller writes result 0 back into
    ``tensors[0]`` and result ``k`` into ``tensors[k + 1]`` (every optimizer here does, with
    :func:`write_back`). A fused item's results are already written there when ``apply_rule``
    returns, and are those tensors themselves (a state tensor that was None is a new one), so the
    caller's write is a no-op: the write-back loop runs once, here, over raw arrays. So the
    program is given those arrays to reuse (XLA donation: the update is done in place, with no
    second copy of the parameters and state, and ~2.5x faster on the CPU) — each one whose array
    nothing else holds. A JAX array may back several tensors (a ``clone()`` shares its input's,
    and an eager graph still alive keeps the arrays it read); such an array is not donated, and
    its holders keep the old values.

    The loop runs instead while a compiled step is traced (the tracer records the rule), for a
    group with ``foreach=False`` (and not ``fused=True``), and for items it cannot fuse: tensor
    coefficients (a tensor ``lr``, ``capturable``), or dtypes other than float32/float64 (the
    narrow floats' ``lerp`` computes in float32, which a cast operand would round twice).
    """
    if any(tensors[0]._value.dtype.kind == "c" for tensors, _ in items):  # (a complex parameter: its state too)
        return _apply_rule_complex(group, rule, items, options)
    loop = _dispatch.TRACE[0] is not None or (group.get("foreach") is False and not group.get("fused"))
    if loop:
        return [rule(*tensors, **coefs, **options) for tensors, coefs in items]
    results: list = [None] * len(items)
    buckets: dict = {}
    numeric: dict = {}  # id(coefs) -> whether all its coefficients are Python numbers (or None)
    for i, (tensors, coefs) in enumerate(items):
        arrays = _fusable(tensors, coefs, numeric)
        if arrays is None:
            results[i] = rule(*tensors, **coefs, **options)
        else:
            buckets.setdefault((arrays[0].dtype, arrays[0].sharding), []).append((i, arrays, coefs, tensors))
    for bucket in buckets.values():
        _run_fused(rule, options, bucket, results)
    return results


def _apply_rule_complex(group: dict, rule: Callable, items: list, options: dict) -> list:
    """:func:`apply_rule` for items with complex tensors. torch updates a complex parameter and its
    state through ``view_as_real``: every rule treats the real and imaginary parts as two
    independent real numbers (Adam's ``exp_avg_sq`` holds ``re(g)**2`` and ``im(g)**2``, never
    the complex ``g * g``). The rule runs on real views; its results become complex again."""
    from .._api.complexnum import view_as_complex, view_as_real
    flags = [tensors[0].is_complex() for tensors, _ in items]
    real_items = [(tuple(view_as_real(t) if t is not None and t.is_complex() else t for t in tensors), coefs)
                  for tensors, coefs in items]
    results = apply_rule(group, rule, real_items, **options)
    return [tuple(None if r is None else view_as_complex(r) for r in res) if flag else res
            for res, flag in zip(results, flags)]


def _fusable(tensors, coefs, numeric):
    """The arrays of ``tensors`` if the item can join a fused program, else None."""
    ok = numeric.get(id(coefs))
    if ok is None:
        ok = numeric[id(coefs)] = all(v is None or isinstance(v, (int, float)) for v in coefs.values())
    if not ok:
        return None
    arrays = tuple([None if t is None else (t._value if t._base is None else t._sync()) for t in tensors])
    dt = arrays[0].dtype
    if dt not in _FUSED_DTYPES:
        return None
    for a in arrays:
        if a is not None and a.dtype != dt:
            return None
    return arrays


# sys.getrefcount of an input array that only its tensor holds, counted inside _run_fused: the
# tensor's slot, the item's array tuple, the local name and getrefcount's own argument.
_SOLE_HOLDER = 4


# The coefficient arrays of recent fused steps, by (placement, values): SGD's stay the same from
# step to step, and a host array passed to the program would be copied to the device every call.
_VALUES: dict = {}


def _run_fused(rule, options, bucket, results) -> None:
    """Run one bucket's items as one program; store their results (as Tensors) in ``results``."""
    rows, layouts, values, item_rows = {}, [], [], []
    for _, _, coefs, _ in bucket:
        r = rows.get(id(coefs))
        if r is None:
            r = rows[id(coefs)] = len(layouts)
            layouts.append((tuple(coefs), tuple(v is not None for v in coefs.values()), len(values)))
            values.extend(float(v) for v in coefs.values() if v is not None)
        item_rows.append(r)
    # Per input: 0 absent, 1 passed, 2 donated (see apply_rule). The gradient (position 1) is
    # never donated: backward() leaves it readable after the step, as torch does.
    donated, kept, kinds = [], [], []
    last = _dispatch.LAST[0]  # (what synchronize() waits on: replaced below)
    for _, arrays, _, _ in bucket:
        item = []
        for k in range(len(arrays)):  # (not enumerate: its reused tuple would hold a reference)
            a = arrays[k]
            if a is None:
                item.append(0)
            elif k != 1 and getrefcount(a) <= _SOLE_HOLDER + 2 * (a is last):  # (LAST and `last`)
                donated.append(a)
                item.append(2)
            else:
                kept.append(a)
                item.append(1)
        kinds.append(tuple(item))
    a = last = None
    key = (rule, tuple(options.items()), _dispatch.AUTOCAST[0], tuple(item_rows), tuple(layouts), tuple(kinds))
    entry = _FUSED.get(key)
    if entry is None:
        if len(_FUSED) >= 64:
            _FUSED.clear()
        entry = _FUSED[key] = [_fused_program(rule, options, key[3], key[4], key[5]), None]
    first = bucket[0][1][0]
    vkey = (first.sharding, tuple(values))
    varr = _VALUES.get(vkey)
    if varr is None:  # the coefficients on the parameters' device, once per set of values
        if len(_VALUES) >= 16:
            _VALUES.clear()
        varr = _VALUES[vkey] = put_beside(np.asarray(values, np.float64), first)
    single = len(first.sharding.device_set) == 1
    first = None
    outs = entry[0](donated, kept, varr)
    _dispatch.LAST[0] = outs[-1][0]  # what synchronize() waits on; tracing left a tracer there
    if entry[1] is None:  # (the rule keeps each tensor's shape and dtype: checked once per program)
        entry[1] = all(o is None or t is None or (o.shape == t._value.shape and o.dtype == t._value.dtype)
                       for (_, _, _, tensors), out in zip(bucket, outs)
                       for o, t in zip(out, tensors[:1] + tensors[2:]))
    # The write-back of every result into its tensor, as write_back does; a plain tensor (the usual
    # parameter or state: a root with no history, nothing refusing writes) takes the array directly.
    direct = entry[1] and single and _no_write_rules()
    for (i, _, _, tensors), out in zip(bucket, outs):
        res = []
        for k in range(len(out)):
            o = out[k]
            dst = tensors[0] if k == 0 else tensors[k + 1]
            if o is None:
                res.append(None)
            elif dst is None:
                res.append(_wrap(o))
            elif direct and _plain(dst):
                dst._value = o
                dst._ver += 1
                res.append(dst)
            else:
                write_back(dst, _wrap(o))
                res.append(dst)
        results[i] = tuple(res)


def _fused_program(rule, options, item_rows, layouts, kinds):
    """``jax.jit`` of the bucket's update: the rule's eager ops, traced once, inline into it.
    ``kinds`` says, per item and input, where its array is: absent, passed or donated."""
    def program(donated, kept, values):
        d, k = iter(donated), iter(kept)
        arrays = [tuple(None if c == 0 else next(d) if c == 2 else next(k) for c in item) for item in kinds]
        dtype = arrays[0][0].dtype
        row_coefs = []
        for names, present, offset in layouts:
            coefs = {}
            for name, on in zip(names, present):
                coefs[name] = Tensor._wrap(values[offset].astype(dtype)) if on else None
                offset += on
            row_coefs.append(coefs)
        prev, GRAD.enabled = GRAD.enabled, False
        try:
            outs = []
            for ins, r in zip(arrays, item_rows):
                new = rule(*(None if a is None else Tensor._wrap(a) for a in ins), **row_coefs[r], **options)
                outs.append(tuple(None if t is None else t._value for t in new))
        finally:
            GRAD.enabled = prev
        return outs

    return jax.jit(program, donate_argnums=0)
