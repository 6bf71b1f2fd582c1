"""How a grad-enabled compiled call joins eager autograd: the tape op whose backward runs the
program's pullback (or scales gradients the program already computed), the per-call plan that picks
between residuals, recomputation and value-and-grad, and the graph queries that decide which
inputs and outputs take part. :class:`~tracenn.runtime.compiled.Entry` builds and runs the plans.
"""
from __future__ import annotations

import math
import time

import jax


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
            cts = bwd(pull, [g] if nout == 1 else list(g))
            return tuple(cts[0]) + tuple(cts[1])

        return kernel


class _ScaledGrads(_CompiledOp):
    """The ``grad_fn`` of a scalar output whose program also computed its gradients
    (value-and-grad mode): the backward scales them by the incoming cotangent, and skips even
    that for ``loss.backward()``'s cotangent of exactly 1."""

    def backward_kernel(self, key, needs):
        scale = self._bwd
        plan = self.plan

        def kernel(g, out, grads):
            plan.backward_seen()
            if g.shape == () and float(g) == 1.0:
                return tuple(grads[0]) + tuple(grads[1])
            gs = scale(grads, g)
            return tuple(gs[0]) + tuple(gs[1])

        return kernel


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
                 "state_roots", "labels", "state_edges")

    def __init__(self, fwd, op, nd_state, nd_in, depends, state_roots):
        self.fwd, self.op, self.nd_state, self.nd_in, self.depends = fwd, op, nd_state, nd_in, depends
        self.state_roots = state_roots  # the state tensors needing grad, in the tape node's order
        self.labels = [f"input {k}" for k in range(len(state_roots))]  # their saved-tensor labels
        self.state_edges = None         # their tape edges, once known to be stable
        self.fwd_vg = self.op_vg = None
        self.use_vg = False
        self.unclaimed = 0

    def backward_seen(self):
        self.unclaimed = 0
        if self.fwd_vg is not None:
            self.use_vg = True


# Below this many floating-point operations (about 10-100 µs of CPU), a grad-enabled call
# recomputes its forward in the backward rather than returning residuals from the forward.
RECOMPUTE_FLOPS = 2_000_000


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


def _reaching(g, outs) -> set:
    """The values of graph ``g`` from which a differentiable path leads to one of ``outs``."""
    live = set(outs)
    for n in reversed(g.nodes):
        if n.op.differentiable and any(o in live for o in n.outputs):
            live.update(v for v in n.inputs if hasattr(v, "symbolic"))
    return live


def _depends_on(g, leaves, values) -> list:
    """For each of ``values``: can a gradient from it reach one of ``leaves`` in graph ``g``?"""
    live = set(leaves)
    for n in g.nodes:
        if n.op.differentiable and any(v in live for v in n.inputs if hasattr(v, "symbolic")):
            live.update(n.outputs)
    return [v in live for v in values]


def _merge(d, nd, d_idx, n):
    out = []
    di = iter(d)
    ndi = iter(nd)
    dset = set(d_idx)
    for i in range(n):
        out.append(next(di) if i in dset else next(ndi))
    return out


class Measured:
    """A choice between two equivalent programs, made by timing them on the first calls.

    A training step's forward and backward run faster as one XLA program for some models (the
    MLP) and as two for others (the transformer; see compiler/lower.py::split_point). Calls
    alternate between the two forms, waiting for each result: the first call of each compiles
    and is not counted; then each form is timed ``ROUNDS`` times and the one with the lower
    best time is kept. Both forms compute the same values (the same ops; only XLA's fusion
    differs), so which one ran is never visible in the results.
    """

    ROUNDS = 2

    def __init__(self, names):
        self.names = names
        self.times = ([], [])
        self.calls = 0
        self.pick = None  # the index of the form kept, once chosen

    def wrap(self, first, second):
        forms = (first, second)

        def call(*args):
            if self.pick is not None:
                return forms[self.pick](*args)
            k = self.calls % 2
            self.calls += 1
            t0 = time.perf_counter()
            out = forms[k](*args)
            jax.block_until_ready(out)
            if self.calls > 2:  # (calls 1 and 2 compile)
                self.times[k].append(time.perf_counter() - t0)
                if len(self.times[1]) >= self.ROUNDS:
                    self.pick = 0 if min(self.times[0]) <= min(self.times[1]) else 1
            return out

        return call

    def describe(self) -> str:
        if self.pick is None:
            return f"{self.names[0]} or {self.names[1]} (timing both: {self.calls} call(s) so far)"
        a, b = (min(t) * 1e3 for t in self.times)
        return f"{self.names[self.pick]} (measured: {self.names[0]} {a:.4g} ms, {self.names[1]} {b:.4g} ms)"
