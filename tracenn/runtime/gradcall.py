"""How a grad-enabled compiled call joins eager autograd: the tape op whose backward runs the
program's pullback (or scales gradients the program already computed), the per-call plan that picks
between residuals, recomputation and value-and-grad, and the graph queries that decide which
inputs and outputs take part. :class:`~tracenn.runtime.compiled.Entry` builds and runs the plans.
"""
from __future__ import annotations

import math


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
