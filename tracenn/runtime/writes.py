"""How a compiled call's state goes in and its results come out: which state arrays the program
may take over (donation), which old ``.grad`` it drops unread, and the setters that put each
written value back into the Python objects — a state tensor in place, a parameter's ``.grad``,
optimizer state the first step makes, or an input (through ``_set_``, as eager)."""
from __future__ import annotations

import operator
import sys

import jax.numpy as jnp

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor


def unread_grads(g) -> set:
    """Names of the ``.grad`` refs graph ``g`` replaces without reading (a step that starts with
    ``zero_grad()``): the call drops them first instead of passing them."""
    used = {id(v) for n in g.nodes for v in n.inputs}
    used.update(id(v) for v in g.outputs)
    used.update(id(v) for v in g.writes.values())
    return {n for n, v in g.state.items()
            if n.endswith(".grad") and g.writes.get(n) is not None and id(v) not in used}


def donated_state(tensors, idx, grads=frozenset()) -> list:
    """The arrays to donate: each tensor's own array, or a copy when anything else holds the same
    array object (a ``clone()`` or ``deepcopy`` shares arrays, since JAX arrays are immutable):
    donating it would delete the other holder's values. Numpy views are protected by JAX itself.

    ``grads``: the positions in ``tensors`` of grad refs (:class:`~.refs.GradRef`) whose old
    ``.grad`` the step replaces unread. Each is dropped from its parameter (as ``zero_grad()``
    drops it) and its array donated, for the new grad to be written into; a copy when the user
    still holds the old grad tensor, which stays valid, as in torch."""
    out = []
    for i in idx:
        if i in grads:
            p = tensors[i].param
            g = p.grad
            p.grad = None
            a = g._value if g._base is None else g._sync()
            # references to g: this local, getrefcount's argument; to a: g's slot, this local, the argument
            out.append(a if sys.getrefcount(g) <= 2 and sys.getrefcount(a) <= 3 else jnp.copy(a))
            del g, a
            continue
        a = tensors[i]._value
        # references: the tensor's slot, this local, getrefcount's argument
        out.append(a if sys.getrefcount(a) <= 3 else jnp.copy(a))
    return out


_VALUE = operator.attrgetter("_value")


def plain_donated(tensors):
    """:func:`donated_state` of ``tensors`` (no grad recycled) in two C-level passes, for the call
    whose arrays nobody else holds (the common case); None when one is held elsewhere (the caller
    then takes donated_state's copies). The transformer step donates 78 arrays a call."""
    out = list(map(_VALUE, tensors))
    # references to each array: its tensor's slot, the list, getrefcount's argument
    if out and max(map(sys.getrefcount, out)) > 3:
        return None
    return out


def write_positions(g, index=None) -> dict:
    """Each name graph ``g`` writes (not None) -> its position in the program's written arrays
    (``index``: from :func:`unique_writes`, where a Value written under several names is one)."""
    names = [n for n, v in g.writes.items() if v is not None]
    return {n: (j if index is None else index[j]) for j, n in enumerate(names)}


def write_targets(g, state_tensors, grad_params) -> list:
    """One setter per (non-None) write of graph ``g``: into a state tensor (in place, keeping
    the tensor), into a parameter's ``.grad``, or into an input (through ``_set_``, as eager)."""
    names = list(g.state)
    inputs = [v.name for v in g.inputs]
    out = []
    for name, v in g.writes.items():
        if v is None:
            continue
        t = state_tensors[names.index(name)] if name in g.state else None
        if t is not None and not hasattr(t, "trace_in"):
            out.append(state_setter(t))
        elif name in g.creates:
            out.append(create_setter(*g.creates[name]))
        elif name.endswith(".grad") and name[:-5] in grad_params:
            out.append(grad_setter(grad_params, name))
        elif name.endswith(".grad") and name[:-5] in inputs:
            out.append(_inputgrad_setter(inputs.index(name[:-5])))
        else:
            out.append(input_setter(inputs.index(name)))
    return out


def state_setter(t):
    def set_state(w, in_tensors):
        t._value = w
        t._ver += 1
    set_state.write_kind, set_state.tensor = "state", t
    return set_state


def create_setter(optimizer, param, key):
    def create(w, in_tensors):  # the optimizer state a first step makes (momentum buffers, step)
        optimizer.state[param][key] = Tensor._wrap(w)
    return create


def grad_setter(grad_params, name):
    p = grad_params[name[:-5]]

    def set_grad(w, in_tensors):
        p.grad = None if w is None else Tensor._wrap(w)
    set_grad.write_kind, set_grad.param = "grad", p
    return set_grad


def _inputgrad_setter(i):
    def set_input_grad(w, in_tensors):  # accumulates into an existing .grad, as backward() does
        t = in_tensors[i]
        t.grad = Tensor._wrap(w) if t.grad is None else Tensor._wrap(t.grad._value + w)
    return set_input_grad


def input_setter(i):
    def set_input(w, in_tensors):
        with no_grad():
            in_tensors[i]._set_(Tensor._wrap(w), "a compiled call")
    return set_input


def unique_writes(run, g):
    """``run`` (from ``lower``) returning each written Value once, and for each non-None write of
    ``g`` its position in that shorter list; ``(run, None)`` when no Value is written twice.

    A Value written under several names (the step count an optimizer shares across parameters,
    see api._shared_scalars) is one output array: returned once per name, XLA would copy it into
    a buffer per name, and the names would no longer share it at the next call."""
    vals = [v for v in g.writes.values() if v is not None]
    at, keep = {}, []
    for j, v in enumerate(vals):
        if id(v) not in at:
            at[id(v)] = len(keep)
            keep.append(j)
    if len(keep) == len(vals):
        return run, None

    def run_unique(state, rng, inputs):
        outs, writes = run(state, rng, inputs)
        return outs, [writes[j] for j in keep]

    return run_unique, [at[id(v)] for v in vals]


def batched_writes(targets, index=None):
    """The common writes of ``targets`` (from :func:`write_targets`) as two index lists, for two
    plain loops instead of a setter call each: ``([(i, state tensor)], [(i, parameter)])``, or
    None when any other kind of write is there (then the setters run, in the graph's order).
    ``index``: each target's position in the program's writes (from :func:`unique_writes`)."""
    kinds = [getattr(t, "write_kind", None) for t in targets]
    if not all(kinds):
        return None
    index = range(len(targets)) if index is None else index
    return ([(i, t.tensor) for i, k, t in zip(index, kinds, targets) if k == "state"],
            [(i, t.param) for i, k, t in zip(index, kinds, targets) if k == "grad"])


def _picker(idx):
    """A function from a list to the tuple of its items at ``idx`` (one itemgetter call)."""
    if len(idx) == 1:
        i = idx[0]
        return lambda w: (w[i],)
    return operator.itemgetter(*idx) if idx else (lambda w: ())


def batched_writer(batched):
    """The writes of :func:`batched_writes` as one function of the program's writes: each state
    tensor takes its array (and moves its version), each parameter its ``.grad``. A pass of
    ``zip`` over the tensors and the arrays picked by one itemgetter, instead of an index and a
    subscript per write (78 writes a call for the transformer step)."""
    states = tuple(t for _, t in batched[0])
    pick_states = _picker([i for i, _ in batched[0]])
    grads = tuple(p.__dict__ for _, p in batched[1])  # (where .grad lives: see Entry.released)
    pick_grads = _picker([i for i, _ in batched[1]])
    wrap = Tensor._wrap

    def write(writes):
        for t, w in zip(states, pick_states(writes)):
            t._value = w
            t._ver += 1
        for d, w in zip(grads, pick_grads(writes)):
            d["grad"] = None if w is None else wrap(w)
    return write


def apply_stores(graph, out_is_value, outs) -> None:
    """Replay ``graph``'s stores (list appends, dict items, module attributes: compiler/escapes.py's
    Store) after a call whose Value outputs are ``outs`` (``out_is_value`` marks which of
    ``graph.outputs`` they are)."""
    it = iter(outs)
    vals = [next(it) if is_v else v for is_v, v in zip(out_is_value, graph.outputs)]
    k = len(vals) - sum(s.n for s in graph.stores)
    for s in graph.stores:
        s.apply(vals[k:k + s.n])
        k += s.n



def output_aliases(graph, out_is_value) -> list:
    """Where the call returns (or stores) one of its own tensors, or a view of one, as eager code
    does: ``return x``, ``return self.weight``, ``x.mul_(2); return x``, ``return x[0]``, ``x.t()``
    or ``x.detach()``. One (index among the graph's Value outputs, 0 for an input or 1 for a state
    tensor, its index, view) each, from the tracer's ``graph.out_views`` (by graph output): ``view``
    None for the tensor itself, or its (steps, strides, detached) for a view of it."""
    at = [i for i, is_v in enumerate(out_is_value) if is_v]  # graph output -> index among Value outputs
    return [(at.index(gi),) + src for gi, src in sorted(graph.out_views.items()) if gi in at]


def alias_outputs(entry, outs, in_tensors) -> None:
    """Put the call's own tensors, and views of them, in ``outs`` where the program returned
    their values (see :func:`output_aliases`): the caller gets the tensor itself, or a view whose
    in-place changes reach it, not a copy. A view of a tensor that is itself a view, or laid out
    differently from the traced one, stays the program's copy (same values); one of a tensor with
    strides of its own (``channels_last``; inputs are traced as contiguous) gets its strides from them."""
    for i, kind, k, view in entry.out_aliases:
        t = in_tensors[k] if kind == 0 else entry.state_tensors[k]
        if not isinstance(t, Tensor):  # a ref: a .grad or an optimizer option read as state
            continue
        if view is None:
            outs[i] = t
        elif t._base is None and not t._layout:
            steps, strides, detached = view
            if t._strides is not None and (strides := _strides_after(t, steps)) is None:
                continue
            o = outs[i]
            v = t._make_view(o._value, steps[0], detached=detached, node=o._node, strides=strides,
                             requires_grad=o._requires_grad, idx=o._out_idx)
            v._chain = tuple(steps)
            outs[i] = v


def _strides_after(t: Tensor, steps):
    """torch's strides of view ``steps`` of the root ``t`` (which has strides of its own), or None
    where a step does not say, or is a reshape that eager code would have copied."""
    from .._api.shape import _view_strides
    from .._api.storage import _step
    shape, st = tuple(t._value.shape), t._strides
    for name, key in steps:
        if name == "reshape" and _view_strides(shape, st, tuple(key[0])) is None:
            return None
        got = _step(name, key, shape, st, 0)
        if got is None:
            return None
        shape, st, _ = got
    return st
