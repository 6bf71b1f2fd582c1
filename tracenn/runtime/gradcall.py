"""How a grad-enabled compiled call joins eager autograd: the tape op whose backward runs the
program's pullback (or scales gradients the program already computed), the per-call plan that picks
between residuals, recomputation and value-and-grad, and the graph queries that decide which
inputs and outputs take part. :class:`~tracenn.runtime.entry.Entry` builds and runs the plans.
"""
from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp

from ..autograd.graph import is_seed


class _CompiledOp:
    """The op record of a compiled call's ``grad_fn``: its backward is the program's pullback."""

    differentiable = True
    pullback_only = True  # no gradient op of its own: create_graph=True cannot go through it
    static = ()

    def __init__(self, nout, bwd, plan=None):
        self.name = "compiled_function"
        self.nout = nout
        self._bwd = bwd
        self.plan = plan  # the _GradPlan whose programs this op pulls back through

    def backward_kernel(self, key, needs):
        bwd = self._bwd
        nout = self.nout
        plan = self.plan

        def kernel(g, out, pull):
            if plan is not None:
                plan.backward_seen()
            try:
                cts = bwd(pull, [g] if nout == 1 else list(g))
            except Exception as e:  # a module's backward hook raised inside the pullback
                from .fastcall import reraise_callback_error
                reraise_callback_error(e)
                raise
            return tuple(cts[0]) + tuple(cts[1])

        return kernel


class _ScaledGrads(_CompiledOp):
    """The ``grad_fn`` of a scalar output whose program also computed its gradients
    (value-and-grad mode): the backward scales them by the incoming cotangent, and skips even
    that for ``loss.backward()``'s implicit cotangent of 1, known by identity (``graph.SEEDS``:
    no read of its value, which on a GPU would wait for the device)."""

    def backward_kernel(self, key, needs):
        scale = self._bwd
        plan = self.plan

        def kernel(g, out, grads):
            plan.backward_seen()
            if is_seed(g):
                return tuple(grads[0]) + tuple(grads[1])
            gs = scale(grads, g)
            return tuple(gs[0]) + tuple(gs[1])

        return kernel


class ModeChoice:
    """Whether a scalar loss's value-and-grad mode is faster than its pullback mode on this
    machine, timed in the user's own training loop.

    One program computing a loss and its gradients is usually the faster form (the MLP step:
    1.48 vs 1.55 ms), but XLA:CPU can compile the joint program much worse than a forward and a
    pullback apart (the transformer encoder's loss: 35.3 vs 23.3 ms per step, same process,
    interleaved), as it does for a plain ``jax.jit(jax.value_and_grad(...))``. So once the output
    is being differentiated, calls run in blocks of ``BLOCK`` calls per mode in ``ORDER``; each
    block is timed from its first call to the next block's first call, after waiting for the
    previous iteration's gradients and parameter updates, so a block's time is ``BLOCK`` whole
    iterations of the user's loop. The first block compiles the value-and-grad program and is not
    counted; then the mode with the lower best block time is kept. Calls that stop being
    differentiated pause the timing (the block restarts). Both modes compute the same gradients.
    """

    BLOCK = 4
    ORDER = ("vg", "pullback", "vg", "pullback", "vg")

    def __init__(self, finished):
        self.finished = finished  # waits for the previous iteration's work
        self.block = 0
        self.in_block = 0
        self.start = None
        self.times = {"vg": [], "pullback": []}
        self.pick = None

    def mode(self) -> str:
        """The mode of this call ("vg" or "pullback"); the choice once made."""
        if self.in_block == self.BLOCK:  # a block ends where the next one starts
            self.finished()
            now = time.perf_counter()
            if self.block > 0:
                self.times[self.ORDER[self.block]].append(now - self.start)
            self.block += 1
            self.in_block = 0
            if self.block == len(self.ORDER):
                self.pick = min(self.times, key=lambda m: min(self.times[m]))
                return self.pick
            self.start = now
        elif self.in_block == 0:
            self.finished()
            self.start = time.perf_counter()
        self.in_block += 1
        return self.ORDER[self.block]

    def pause(self):
        """Outputs stopped being differentiated: this block starts again when they are."""
        self.in_block = 0

    def describe(self) -> str:
        vg, pb = (min(self.times[m]) / self.BLOCK * 1e3 for m in ("vg", "pullback"))
        which = "value-and-grad" if self.pick == "vg" else "pullback"
        return f"{which} mode (measured per iteration: value-and-grad {vg:.4g} ms, pullback {pb:.4g} ms)"


class _GradPlan:
    """A grad-enabled call's program and index lists, for one set of inputs needing grad.

    A call whose only floating output is a scalar (a loss) switches to value-and-grad mode once
    its output has been differentiated: the one program computes the loss and its gradients (as
    a hand-written ``jax.value_and_grad`` step does), no residuals leave it, and the backward
    only scales the gradients by the cotangent (an exact no-op for ``loss.backward()``). It
    switches back when outputs stop being differentiated (three calls without a backward), so
    a grad-enabled evaluation loop does not pay for gradients nobody reads.
    """

    __slots__ = ("fwd", "op", "nd_state", "nd_in", "depends", "fwd_vg", "op_vg", "use_vg", "unclaimed",
                 "state_roots", "labels", "state_edges", "choice")

    def __init__(self, fwd, op, nd_state, nd_in, depends, state_roots):
        self.fwd, self.op, self.nd_state, self.nd_in, self.depends = fwd, op, nd_state, nd_in, depends
        self.state_roots = state_roots  # the state tensors needing grad, in the tape node's order
        self.labels = [f"input {k}" for k in range(len(state_roots))]  # their saved-tensor labels
        self.state_edges = None         # their tape edges, once known to be stable
        self.fwd_vg = self.op_vg = None
        self.use_vg = False
        self.unclaimed = 0
        self.choice = None  # ModeChoice: whether value-and-grad is faster here than the pullback

    def backward_seen(self):
        self.unclaimed = 0
        if self.fwd_vg is not None:
            self.use_vg = True


# Below this many floating-point operations (about 10-100 µs of CPU), a grad-enabled call
# recomputes its forward in the backward rather than returning residuals from the forward.
RECOMPUTE_FLOPS = 2_000_000


def _largest_bytes(g) -> int:
    """The size in bytes of graph ``g``'s largest input, state or node output."""
    values = list(g.inputs) + list(g.state.values()) + [v for n in g.nodes for v in n.outputs]
    return max((v.size * v.dtype.itemsize for v in values if hasattr(v, "symbolic")), default=0)


def _flops(g) -> int:
    """A rough count of graph ``g``'s arithmetic: 2·M·N·K per matmul or convolution, one per
    output element elsewhere."""
    total = 0
    for n in g.nodes:
        for v in n.outputs:
            size = math.prod(v.shape)
            if n.op.name in ("matmul", "conv", "linear", "einsum", "conv_transpose"):
                ins = [x for x in n.inputs if hasattr(x, "symbolic")]
                k = math.prod(ins[1].shape) // max(ins[1].shape[0], 1) if n.op.name.startswith("conv") \
                    else (ins[0].shape[-1] if ins and ins[0].shape else 1)
                size *= 2 * k
            total += size
    return total


def _carries_grad(v) -> bool:
    """Can a gradient flow through value ``v``? Not through an integer or bool one: a float input
    reaching the outputs only through ``.long()`` or a comparison gets no gradient (None, as in eager)."""
    return hasattr(v, "symbolic") and v.dtype.kind in "fcV"  # (bfloat16: "V")


def _reaching(g, outs) -> set:
    """The values of graph ``g`` from which a differentiable path leads to one of ``outs``."""
    live = set(outs)
    for n in reversed(g.nodes):
        if n.op.differentiable and any(o in live and _carries_grad(o) for o in n.outputs):
            live.update(v for v in n.inputs if _carries_grad(v))
    return live


def _saved_by_ops(g) -> set:
    """The values of graph ``g`` some op's gradient reads (its registry ``saves``): the inputs a
    compiled call's tape node records the versions of, so an in-place change of one before
    ``backward()`` raises as in eager. An input only viewed, added or summed is not one: the
    program's backward has its own arrays, and torch's would not read it either."""
    got = set()
    for n in g.nodes:
        if not n.op.differentiable:
            continue
        saves = n.op.saves
        if type(saves) is dict:
            saves = {j for js in saves.values() for j in js}
        got.update(v for i, v in enumerate(n.inputs) if saves is None or i in saves)
    return got


def _depends_on(g, leaves, values) -> list:
    """For each of ``values``: can a gradient from it reach one of ``leaves`` in graph ``g``?"""
    live = set(leaves)
    for n in g.nodes:
        if n.op.differentiable and any(v in live for v in n.inputs if _carries_grad(v)):
            live.update(o for o in n.outputs if _carries_grad(o))
    return [v in live for v in values]


def conj_tree(tree):
    """The complex conjugate of every complex array in ``tree`` (real arrays as they are).

    A compiled program's pullback is ``jax.vjp``'s, in JAX's convention, whose cotangents are the
    conjugates of torch's: torch's input gradients are ``conj(pullback(conj(g)))``. Inside the
    program every op with a complex input is differentiated by JAX (compiler/lower.py), so the
    convention is JAX's throughout and only this boundary converts."""
    return jax.tree_util.tree_map(lambda a: jnp.conj(a) if jnp.iscomplexobj(a) else a, tree)


def _complex_boundary(g) -> bool:
    """Does a gradient cross graph ``g``'s boundary as a complex array (a complex input, state
    value or output)?"""
    vals = list(g.inputs) + list(g.state.values()) + [v for v in g.outputs if hasattr(v, "symbolic")]
    return any(v.dtype.kind == "c" for v in vals)


def _merge(d, nd, d_idx, n):
    out = []
    di = iter(d)
    ndi = iter(nd)
    dset = set(d_idx)
    for i in range(n):
        out.append(next(di) if i in dset else next(ndi))
    return out
