"""The two cheapest compiled calls, each written out for its model's number of state tensors.

A compiled ``Linear(16, 16)`` at batch 1 runs ~10 µs of XLA per call on the CPUs measured, and
every line of Python a call runs comes on top of that. Right after XLA's dispatch the interpreter's
caches are cold, and a Python step costs three to five times what it costs in a tight loop
(``docs/performance.md``, the tenth session's "Per call"). Reading each parameter's array by name
(``s0._value``, which Python 3.11 specialises to a slot read) measured ~1.2 µs cheaper per call
than a list comprehension over the parameters, which makes a function object and a frame on every
call. So these calls are generated from source, one code object per shape of call (state count,
which of the state tensors get gradients), as ``collections.namedtuple`` and ``dataclasses``
generate theirs. The generated code is small and shown in the templates below.

- :func:`plain`: no gradient, no RNG, no writes, one input tensor and one output.
- :func:`recomputing`: the same with grad enabled, for a forward cheap enough to re-run in the
  backward. The output's ``grad_fn`` keeps the call's arrays and pulls back through the forward
  again (no residual outputs: on XLA:CPU each output buffer costs more than this forward).

Each returns ``bind(entry, d)``, which :class:`~tracenn.runtime.compiled.Compiled` calls once per
entry with its own ``__dict__``: the call then counts itself on the entry and makes it the
compiled object's latest (``cm.graph``), as every call does.
"""
from __future__ import annotations

import functools

import jax

from .. import _dispatch
from ..autograd.engine import _edge_of
from ..autograd import graph as _graph
from ..autograd.grad_mode import GRAD
from ..tensor import Tensor
from .gradcall import _CompiledOp

_PLAIN = '''
def make(fwd, entry, d, reraise, Tensor, new, grad{params}):
    def call(a):
        entry.calls += 1
        d["_last"] = entry
        try:
            out = fwd({values}a._value if a._base is None else a._sync())
        except Exception as e:
            reraise(e)
            raise
        t = new(Tensor)  # Tensor._wrap written out (see _TENSOR_SLOTS)
        t._value, t._requires_grad, t._node, t._out_idx = out, False, None, 0
        if grad.inference:  # (made in inference_mode: an inference tensor, as _wrap makes it)
            t._inference = True
        return t
    return call
'''

_RECOMPUTING = '''
def make(fwd, entry, d, reraise, op, roots, edges, labels, needs, Node, edge_of, d_in, save_in, Tensor, new, seq,
         anomaly{params}):
    last = [((), ())]  # (the parameters' versions at the latest call, its saved records)

    def call(a):
        entry.calls += 1
        d["_last"] = entry
        vals = ({values}a._value if a._base is None else a._sync(),)
        try:
            out = fwd(*vals)
        except Exception as e:
            reraise(e)
            raise
        vers = ({versions})
        seen, saved = last[0]  # (one read: another thread may replace the pair)
        if vers != seen:  # (records are immutable tuples: calls share them until a version moves)
            saved = tuple(zip(roots, vers, labels))
            last[0] = vers, saved
        ed = edges
        if d_in:  # the input needs grad: its edge, and its version where an op's gradient reads it
            ed = edges + (edge_of(a),)
            if save_in:
                root = a if a._base is None else a._base
                saved += ((root, root._ver, labels[-1]),)
        if anomaly[0]:  # (the constructor records the forward's stack)
            node = Node(op, (), (vals,), out, ed, needs, saved)
        else:  # Node.__init__ and Tensor._wrap written out: two frames fewer a call (see _NODE_SLOTS)
            node = new(Node)
            node.op, node.key, node.inputs, node.out, node.edges, node.needs = op, (), (vals,), out, ed, needs
            node.saved = saved
            node.seq = seq[0] = seq[0] + 1
            node.pre_hooks = node.retains = node.hooks = node.unit = None
        t = new(Tensor)
        t._value, t._requires_grad, t._node, t._out_idx = out, True, node, 0
        return t
    return call
'''

# What the templates' written-out constructors set; tests/compiler/test_grad_calls.py checks these are
# every slot of autograd's Node and of Tensor, so a slot added there fails that test, not silently here.
_NODE_SLOTS = ("op", "key", "inputs", "out", "edges", "needs", "saved", "seq", "pre_hooks", "retains", "hooks",
               "unit")
_TENSOR_SLOTS = ("_value", "_requires_grad", "_node", "_out_idx")


@functools.lru_cache(maxsize=256)
def _maker(template: str, n_state: int, versioned: tuple = ()):
    """``make`` from ``template`` for ``n_state`` state tensors ``s0..``, of which ``versioned``
    (indices) have their version counters read at each call."""
    names = [f"s{i}" for i in range(n_state)]
    src = template.format(params="".join(", " + n for n in names),
                          values="".join(n + "._value, " for n in names),
                          versions="".join(f"s{i}._ver, " for i in versioned))
    namespace: dict = {}
    exec(compile(src, f"<tracenn compiled call, {n_state} state tensors>", "exec"), namespace)  # noqa: S102
    return namespace["make"]


def reraise_callback_error(e):
    """Raise what a hook raised inside the program, instead of JAX's wrapped runtime error, and
    XLA's out-of-memory error as torch's OutOfMemoryError."""
    err = _dispatch.CALLBACK_ERROR[0]
    if err is not None:
        tb = _dispatch.CALLBACK_ERROR[1]
        _dispatch.CALLBACK_ERROR[:] = [None, None]
        raise err.with_traceback(tb) from None
    _dispatch._out_of_memory(e)


def flat_program(run, n_state):
    """``run`` (the lowered graph) for a call with no RNG and one output, taking the state and
    inputs as flat positional arrays: what jit's C++ fast path dispatches cheapest."""
    def flat(*arrays):
        outs, _ = run(arrays[:n_state], (), arrays[n_state:])
        return outs[0]
    return flat


def plain(run, state_tensors, jit=jax.jit):
    """The no-grad call (see the module docstring) of the lowered graph ``run``, compiled by
    ``jit`` (the entry's: jax.jit with its compiler options)."""
    fwd = jit(flat_program(run, len(state_tensors)))
    make = _maker(_PLAIN, len(state_tensors))

    def bind(entry, d):
        return make(fwd, entry, d, reraise_callback_error, Tensor, object.__new__, GRAD, *state_tensors)
    return bind


def recomputing(run, state_tensors, d_state, d_in, save_in, jit=jax.jit):
    """The grad-enabled call (see the module docstring): gradients for the state tensors at
    indices ``d_state`` and, when ``d_in`` is ``(0,)``, for the input, whose version the output's
    node records when ``save_in`` (an op's gradient reads it); compiled by ``jit``."""
    n_state = len(state_tensors)
    ds = tuple(d_state)
    flat = flat_program(run, n_state)

    def bwd(arrays, cts):  # the forward again, differentiated (its output is dropped)
        arrays = list(arrays)

        def f(dstate, dins):
            a = list(arrays)
            for i, x in zip(ds, dstate):
                a[i] = x
            for i, x in zip(d_in, dins):
                a[n_state + i] = x
            return [flat(*a)]
        _, pull = jax.vjp(f, [arrays[i] for i in ds], [arrays[n_state + i] for i in d_in])
        return pull(cts)

    fwd = jit(flat)
    op = _CompiledOp(1, jit(bwd))
    roots = tuple(state_tensors[i] for i in ds)
    labels = tuple(f"input {k}" for k in range(len(ds) + len(d_in)))
    edges = tuple(_edge_of(t) for t in roots)  # leaves stay leaves: torch forbids in-place on them
    needs = (True,) * (len(ds) + len(d_in))
    make = _maker(_RECOMPUTING, n_state, ds)

    def bind(entry, d):
        return make(fwd, entry, d, reraise_callback_error, op, roots, edges, labels, needs, _graph.Node, _edge_of,
                    bool(d_in), save_in, Tensor, object.__new__, _graph.SEQ, _graph.ANOMALY, *state_tensors)
    return bind
