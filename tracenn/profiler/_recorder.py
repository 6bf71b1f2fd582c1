"""Recording: while a profile records, every eager op, backward node, compiled call and
``record_function`` region becomes a :class:`~._events.FunctionEvent`.

Nothing on the hot paths checks for a profiler. Starting one puts a timing kernel table in each
op's place (``OpDef._fwd``: every eager op looks its kernel up there) and a recorder in
``autograd.graph.PROFILER``, which the backward engine and compiled calls read; it also moves the
modules' epoch so compiled modules leave their fast path (the slow path records the call).
Stopping puts everything back.

Each timed op waits for its result (``jax.block_until_ready``), so an event's time is the op's
whole cost, dispatch and computation, as PyTorch's CPU profiler reports it. JAX otherwise runs ops
asynchronously, so a profiled program runs somewhat slower than an unprofiled one.
"""
from __future__ import annotations

import threading
import time

import jax

from .. import _dispatch
from ..autograd import graph
from ..ops import OPS
from ._events import EventList, FunctionEvent

_now = time.perf_counter_ns
_thread = threading.get_native_id


class Recorder:
    """The events of one recording window, and the clock they are timed against."""

    def __init__(self, record_shapes: bool):
        self.record_shapes = record_shapes
        self.origin = _now()
        self.events = EventList()

    def add(self, name, t0, t1, kind="op", shapes=None):
        o = self.origin
        self.events.append(FunctionEvent(len(self.events), name, _thread(), (t0 - o) / 1e3, (t1 - o) / 1e3,
                                         shapes, kind))

    def time(self, name, fn, args, kind):
        """``fn(*args)``, run to completion and recorded as one event (``name``)."""
        t0 = _now()
        out = fn(*args)
        _wait(out)
        shapes = _shapes(args) if self.record_shapes and kind != "backward" else None
        self.add(name, t0, _now(), kind, shapes)
        return out


def _wait(out):
    try:
        jax.block_until_ready(out)
    except Exception:  # noqa: BLE001 - something that is not an array (a tracer, an object): nothing to wait on
        pass


def _shapes(args) -> list:
    """torch's ``input_shapes``: each argument's shape, ``[]`` for a scalar or a non-array."""
    out = []
    for a in args:
        shape = getattr(a, "shape", None)
        out.append(list(shape) if shape is not None else [])
    return out


class _TimedKernels(dict):
    """An op's kernel table while a profile records: the same kernels, handed out timed."""

    __slots__ = ("name",)

    def __init__(self, op):
        super().__init__(op._fwd)
        self.name = f"tracenn::{op.name}"

    def get(self, key, default=None):
        fn = dict.get(self, key)
        if fn is None:
            return default
        name = self.name

        def timed(*args):
            rec = graph.PROFILER[0]
            if rec is None:
                return fn(*args)
            return rec.time(name, fn, args, "op")
        return timed


_LOCK = threading.Lock()


def start(recorder: Recorder) -> None:
    with _LOCK:
        if graph.PROFILER[0] is not None:
            raise RuntimeError(
                "tracenn.profiler: a profile is already recording; stop it (leave its `with` block or call "
                "stop()) before starting another")
        for op in OPS.values():
            op._fwd = _TimedKernels(op)
        graph.PROFILER[0] = recorder
        _dispatch.EPOCH[0] += 1  # compiled modules leave their fast path while this records


def stop() -> None:
    with _LOCK:
        if graph.PROFILER[0] is None:
            return
        graph.PROFILER[0] = None
        for op in OPS.values():
            if isinstance(op._fwd, _TimedKernels):
                op._fwd = dict(op._fwd)  # (with the kernels compiled while recording)
        _dispatch.EPOCH[0] += 1


def active() -> Recorder | None:
    return graph.PROFILER[0]
