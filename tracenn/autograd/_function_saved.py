"""What a custom ``autograd.Function`` saved with ``ctx.save_for_backward``, kept and checked as
torch keeps it.

torch's rules (2.13), which this module follows, eagerly and inside a traced training step:

- ``save_for_backward`` takes tensors or None (else a TypeError); the last call wins. Until the
  node is recorded (in ``forward``/``setup_context``), ``ctx.saved_tensors`` is ``()``.
- A backward without ``retain_graph`` frees what a node saved (if it saved anything, even only
  None): reading ``ctx.saved_tensors`` (also as ``grad_fn.saved_tensors``) afterwards raises
  "Trying to backward through the graph a second time ...". The node itself is not freed: a
  second backward through it runs (and its ``backward`` raises only if it reads what it saved).
- Each saved tensor's version is taken when ``apply`` returns and checked when
  ``ctx.saved_tensors`` is read (not when the node runs: a backward that never reads it does not
  raise), with the message eager autograd gives for built-in ops (``engine._check_saved``). An
  input or an intermediate is checked through its root's version and named by its own
  ``grad_fn`` ("which is output 0 of Add"); a differentiable output by this node
  ("which is output 0 of Sq"); a non-differentiable output (``mark_non_differentiable``) has no
  ``grad_fn`` and is named by nothing.
- Reading ``ctx.saved_tensors`` gives back an input or intermediate as the same tensor object,
  and an output as a tensor whose ``grad_fn`` is this node (so a ``create_graph`` backward that
  uses it differentiates through the node, as torch's).

The records are ``(tensor or weakref to an output, version, label)``, as ``Node.saved`` holds
them; an eager node's ``saved`` is non-empty exactly when ``save_for_backward`` saved something
(a None gets a ``(None, 0, label)`` record), and the engine releases it (:func:`release`) when it
frees the node's saved tensors. The engine does not check a custom Function node's records
before running it (reading ``ctx.saved_tensors`` does).
"""
from __future__ import annotations

import weakref

_SAME, _OUT = 0, 1


def check_saveable(tensors) -> None:
    """torch's TypeError for a ``save_for_backward`` argument that is not a tensor or None."""
    from ..tensor import Tensor
    for i, t in enumerate(tensors):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"save_for_backward can only save variables, but argument {i} is of type "
                            f"{type(t).__name__}")


def check_dirty(ctx, outs) -> None:
    """torch's checks of ``ctx.mark_dirty``: every dirty tensor is returned, and none is a leaf
    that requires grad (when the node is recorded)."""
    from ..errors import InplaceError
    from .grad_mode import GRAD
    for d in ctx._dirty:
        if not any(o is d for o in outs):
            raise InplaceError("Some elements marked as dirty during the forward method were not returned as output. "
                               "The inputs that are modified inplace must all be outputs of the Function.")
        if GRAD.enabled and d._requires_grad and d._node is None and d._base is None:
            raise InplaceError("a leaf Variable that requires grad has been used in an in-place operation.")


class Saved:
    """What a recorded node's ctx saved: how to unpack each entry, its version records
    (``records()``), and ``released`` once a backward freed them. ``node()``: the node (None once
    gone); ``name``: the name function ``engine._check_saved`` takes (None: eager nodes' own names);
    ``output(i)``: the tensor ``saved_tensors`` gives for output ``i``."""

    __slots__ = ("entries", "records", "node", "name", "output", "released")

    def __init__(self, entries, records, node, name, output):
        self.entries, self.records, self.node, self.name, self.output = entries, records, node, name, output
        self.released = False


def _entries(to_save, args, inner_outs, outs, diff, dirty):
    """Per saved tensor: (how to unpack, what) and its version record. ``inner_outs``: what forward
    returned; ``outs``: the tensors ``apply`` returns for them; ``diff``: which are differentiable;
    ``dirty``: the inputs marked dirty (returned as outputs: saved as outputs, as torch's)."""
    entries, records = [], []  # (the ctx then drops to_save: a backward frees what entries hold)
    for k, t in enumerate(to_save):
        label = f"ctx.saved_tensors[{k}]"
        if t is None:
            entries.append((_SAME, None))
            records.append((None, 0, label))
            continue
        i = next((j for j, o in enumerate(inner_outs) if o is t), None)
        if i is not None and (any(d is t for d in dirty) or not any(a is t for a in args)):
            if diff[i]:
                entries.append((_OUT, i))
                records.append((weakref.ref(outs[i]), outs[i]._version, f"output {i}"))
                continue
            t = outs[i]  # a non-differentiable output: the tensor apply returned, without a grad_fn
        root = t if t._base is None else t._base
        entries.append((_SAME, t))
        records.append((root, root._ver, label))
    return entries, records


def record_eager(ctx, node, args, inner_outs, outs, diff) -> list:
    """Note what ``ctx`` saved for eager node ``node`` (just recorded); returns its ``saved``."""
    from ..tensor import Tensor
    entries, records = _entries(ctx._to_save, args, inner_outs, outs, diff, ctx._dirty)
    ctx._to_save = ()
    ref = weakref.ref(node)

    def output(i):
        n = ref()
        o = inner_outs[i]
        return o if n is None else Tensor._wrap(o._value, True, n, i)

    def current():  # (an in-place op that made the node may have restamped node.saved)
        n = ref()
        return records if n is None else n.saved

    ctx._state = Saved(entries, current, ref, None, output)
    return records


def record_traced(call, args, inner_outs, outs, diff, name) -> None:
    """Note what ``call.ctx`` saved for a custom Function call inside a trace (``call``: its
    ``CustomCall``; the traced backward releases it as the engine does)."""
    ctx = call.ctx
    entries, records = _entries(ctx._to_save, args, inner_outs, outs, diff, ctx._dirty)
    ctx._to_save = ()
    ctx._state = Saved(entries, lambda: records, lambda: call, name, lambda i: outs[i])


def release(ctx) -> None:
    """A backward without retain_graph ran the node: free what it saved, as torch does."""
    st = ctx._state
    if st is not None and st.entries:  # (a node that saved nothing has nothing to free)
        st.released = True
        st.entries = ()


def unpack(ctx) -> tuple:
    """``ctx.saved_tensors``: torch's error once freed, or if a saved tensor changed in place."""
    from ..errors import BackwardError
    from .engine import _FREED, _check_saved
    st = ctx._state
    if st is None:
        return ()
    if st.released:
        raise BackwardError(_FREED)
    node = st.node()
    if node is not None:
        _check_saved(node, [r for r in st.records() if r[0] is not None], st.name)
    return tuple(st.output(what) if kind == _OUT else what for kind, what in st.entries)
