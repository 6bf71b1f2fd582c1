"""The ``.grad`` arrays a compiled step replaces unread, returned as one flat array.

On a GPU a step's time is mostly host time at the sizes people debug with: each array a program
takes or returns costs the host a few microseconds per call (measured on an H200: the transformer
step of ``benchmarks/train_step.py`` took 599 µs in its jax.jit call with 109 arguments and 106
results, against 388 µs for the hand-written step's 81 and 80). A step that starts with
``zero_grad()`` returns every parameter's new ``.grad`` although the next call drops them unread.
So off the CPU those grads leave the program as one concatenated array, and that array is donated
back to the next call for its new grads (:class:`FlatGrads`). Each ``param.grad`` holds a
:class:`~tracenn._pending_grad.PendingGrad` until read (``nn.Parameter.grad``); the first read
makes all of the step's grads tensors, in one jitted call.

Not on the CPU (``entry.FLAT_GRAD_PLATFORMS``): XLA:CPU copies every gradient into the
concatenation, and the MLP step of ``train_step.py`` took 1.8x as long.
"""
from __future__ import annotations

import operator
import sys
from itertools import repeat

import jax
import numpy as np

from .._pending_grad import PendingGrad
from ..device import put_like
from ..tensor import Tensor
from .flatstate import array_of, layout


class GradBucket:
    """One call's flat gradient array, until the next call takes it back."""

    __slots__ = ("flat", "owner", "tensors")

    def __init__(self, flat, owner):
        self.flat = flat
        self.owner = owner
        self.tensors = None

    def aval(self, k):
        return self.owner.shapes[k], self.owner.dtype

    def tensor(self, k):
        if self.tensors is None:
            if self.flat is None:  # taken by the next step, which starts with zero_grad(): None, as it made them
                for p in self.owner.params:
                    d = p.__dict__
                    g = d.get("grad")
                    if g.__class__ is PendingGrad and g.bucket is self:
                        d["grad"] = None
                return None
            self.tensors = [Tensor._wrap(a) for a in self.owner.unflatten(self.flat)]
            for p, t in zip(self.owner.params, self.tensors):  # the step's other grads: the same tensors
                d = p.__dict__
                g = d.get("grad")
                if g.__class__ is PendingGrad and g.bucket is self:
                    d["grad"] = t
        return self.tensors[k]


class FlatGrads:
    """The unread grads of one compiled program, as one flat output: which writes they are, the
    program wrapper that concatenates them, and the two ends of a call (:meth:`take_old` for the
    array to donate, :meth:`write_back` for the new one)."""

    def __init__(self, params, positions, shapes, dtype, like):
        self.params = params        # the parameters whose .grad the program replaces unread
        self.positions = positions  # their positions in the program's writes
        self.shapes = shapes
        self.dtype = np.dtype(dtype)
        self.like = like            # a state tensor: where a fresh flat array is placed
        split, self.join, self.size = layout(shapes)
        self.unflatten = jax.jit(split)
        self.last = None     # the last call's bucket
        self.pend = ()       # the PendingGrad objects it set, while the next call may set them again
        self.dicts = [p.__dict__ for p in params]  # (where .grad lives)

    @classmethod
    def plan(cls, g, state_names, state_tensors, dropped, positions):
        """A :class:`FlatGrads` for the dropped grads ``dropped`` (state indices) of graph ``g``,
        or None: fewer than two, not all of one dtype, or not all of ``nn.Parameter`` objects
        (whose ``.grad`` reads a pending gradient)."""
        from ..nn.parameter import Parameter
        if len(dropped) < 2:
            return None
        params = [state_tensors[i].param for i in dropped]
        values = [g.state[state_names[i]] for i in dropped]
        if not all(isinstance(p, Parameter) for p in params) or len({v.dtype for v in values}) != 1:
            return None
        like = next((t for t in state_tensors if isinstance(t, Tensor)), None)
        if like is None:
            return None
        return cls(params, [positions[state_names[i]] for i in dropped], [tuple(v.shape) for v in values],
                   values[0].dtype, like)

    def wrap(self, run, at):
        """``run`` returning its flat gradient array at ``at`` in its writes (before any RNG
        counters) and None in place of each gradient it holds."""
        positions, join = self.positions, self.join

        def run_flat(state, rng, inputs):
            outs, writes = run(state, rng, inputs)
            writes = list(writes)
            flat = join([writes[j] for j in positions])
            for j in positions:
                writes[j] = None
            return outs, writes[:at] + [flat] + writes[at:]
        return run_flat

    def take_old(self):
        """Drop the parameters' grads (the step replaces them unread) and return the array to
        donate for the new ones: the last call's flat array when nothing else holds it or any of
        its pending grads, else a fresh one.

        A loop that never reads them (the steady state) leaves each ``.grad`` the pending grad
        the last call set: that is checked in one pass, the flat array is taken from its bucket
        (a read now gives None, as the step's ``zero_grad()`` would), and :meth:`write_back`
        hands the same bucket and pending grads the new array."""
        bucket = self.last
        if bucket is not None and bucket.tensors is None and bucket.flat is not None \
                and all(map(operator.is_, map(dict.get, self.dicts, repeat("grad")), self.pend)):
            flat, bucket.flat = bucket.flat, None
            if sys.getrefcount(flat) <= 2:  # this local, the argument
                return flat
            return put_like(np.zeros(self.size, self.dtype), array_of(self.like))
        self.last, self.pend = None, ()
        ok = bucket is not None and bucket.flat is not None
        for p in self.params:
            g = p.__dict__.pop("grad", None)
            # references to a pending grad: this local, getrefcount's argument
            if g.__class__ is PendingGrad and (g.bucket is not bucket or sys.getrefcount(g) > 2):
                ok = False
            del g
        if ok:
            flat, bucket.flat = bucket.flat, None
            if sys.getrefcount(flat) <= 2:  # this local, the argument
                return flat
        like = array_of(self.like)
        return put_like(np.zeros(self.size, self.dtype), like)

    def write_back(self, flat):
        bucket = self.last
        if bucket is not None and bucket.tensors is None and bucket.flat is None and self.pend:
            bucket.flat = flat  # (take_old found the pending grads in place: they stay)
            return
        bucket = self.last = GradBucket(flat, self)
        self.pend = [PendingGrad(bucket, k) for k in range(len(self.params))]
        for d, g in zip(self.dicts, self.pend):
            d["grad"] = g
