"""``torch.profiler`` for tracenn: ``profile``, ``schedule``, ``record_function``,
``tensorboard_trace_handler``, ``ProfilerActivity`` and ``ProfilerAction``.

::

    with tracenn.profiler.profile(record_shapes=True) as prof:
        with tracenn.profiler.record_function("model_inference"):
            model(x)
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))

A profile records an event for every eager op (``tracenn::matmul``), every backward node
(``autograd::engine::evaluate_function: MmBackward0``), every call of a compiled model or step
(``tracenn.compile: Net``, one event: the whole program) and every ``record_function`` region.
Each op is timed to its completion, so its time includes the device's work (tracenn reports it
all in torch's CPU columns), and JAX's asynchronous dispatch is off while recording. The events
are tracenn's own ops, not aten's. For the XLA operations inside a compiled program, use
``jax.profiler.trace`` (see ``benchmarks/_profile.py``); ``record_function`` regions show there too.
"""
from __future__ import annotations

import enum
import functools
import gzip
import os
import socket
import time
import warnings

import jax

from . import _recorder
from ._events import EventList, FunctionEvent, FunctionEventAvg

__all__ = ["ProfilerAction", "ProfilerActivity", "profile", "record_function", "schedule",
           "supported_activities", "tensorboard_trace_handler", "EventList", "FunctionEvent",
           "FunctionEventAvg"]


class ProfilerActivity(enum.Enum):
    CPU = "CPU"
    CUDA = "CUDA"
    XPU = "XPU"
    MTIA = "MTIA"


def supported_activities() -> set:
    """What a profile can record: CPU (each op timed to completion, whatever the device)."""
    return {ProfilerActivity.CPU}


class ProfilerAction(enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0,
             skip_first_wait: int = 0):
    """torch's step schedule: skip ``skip_first`` steps, then cycles of ``wait`` steps not
    recorded, ``warmup`` steps recorded and dropped, ``active`` steps recorded (the last one
    saves: ``on_trace_ready`` runs), ``repeat`` times (0: until the profile stops)."""
    if wait < 0 or warmup < 0 or active <= 0 or repeat < 0 or skip_first < 0:
        raise AssertionError(
            f"Invalid profiler schedule arguments. Got wait={wait} (need >= 0), warmup={warmup} (need >= 0), "
            f"active={active} (need > 0), repeat={repeat} (need >= 0), skip_first={skip_first} (need >= 0).")
    if warmup == 0:
        warnings.warn("Profiler won't be using warmup, this can skew profiler results", stacklevel=2)
    cycle = wait + warmup + active

    def schedule_fn(step: int) -> ProfilerAction:
        if step < 0:
            raise AssertionError(f"Step must be non-negative. Got {step}.")
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        if skip_first_wait != 0:
            step += wait
        if repeat > 0 and step / cycle >= repeat:
            return ProfilerAction.NONE
        k = step % cycle
        if k < wait:
            return ProfilerAction.NONE
        if k < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD if k < cycle - 1 else ProfilerAction.RECORD_AND_SAVE
    return schedule_fn


def _always_record(step: int) -> ProfilerAction:
    return ProfilerAction.RECORD


_RECORDING = (ProfilerAction.RECORD, ProfilerAction.RECORD_AND_SAVE)


class profile:
    """Record what the code inside the ``with`` block runs (see the module's docstring).

    With a ``schedule``, call ``prof.step()`` at the end of each training step: steps are
    recorded as the schedule says, each shows as a ``ProfilerStep#N`` region, and
    ``on_trace_ready(prof)`` runs after each recorded cycle (``prof.key_averages()`` then holds
    that cycle's events). Without one, everything inside the block is recorded, and
    ``on_trace_ready`` runs when it ends.

    ``profile_memory``, ``with_stack``, ``with_flops`` and ``with_modules`` are accepted and record
    nothing more; ``activities`` other than CPU record as CPU (see ``supported_activities()``).
    """

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None, record_shapes=False,
                 profile_memory=False, with_stack=False, with_flops=False, with_modules=False,
                 experimental_config=None, execution_trace_observer=None, acc_events=False, use_cuda=None):
        for a in activities or ():
            if not isinstance(a, ProfilerActivity):
                raise TypeError(f"profile(activities=...): expected ProfilerActivity values, got {a!r}")
        self.activities = set(activities) if activities else supported_activities()
        self.schedule = schedule if schedule is not None else _always_record
        self.record_steps = schedule is not None
        self.on_trace_ready = on_trace_ready
        self.record_shapes = record_shapes
        self.acc_events = acc_events
        self.step_num = 0
        self.current_action = ProfilerAction.NONE
        self._recorder = None         # the window being recorded
        self._finished = EventList()  # the latest window saved (what key_averages() reads)
        self._step_region = None

    # ---- the recording window --------------------------------------------------------------

    def start(self):
        self.step_num = 0
        self.current_action = self.schedule(0)
        self._enter(self.current_action)
        self._open_step()
        return self

    def stop(self):
        self._close_step()
        action, self.current_action = self.current_action, None
        if action in _RECORDING:
            self._save()
        else:
            self._discard()

    def step(self):
        """The next training step starts: record, drop or save per the schedule."""
        self._close_step()
        prev = self.current_action
        self.step_num += 1
        nxt = self.current_action = self.schedule(self.step_num)
        if prev == ProfilerAction.RECORD_AND_SAVE or prev == ProfilerAction.RECORD and nxt not in _RECORDING:
            if prev == ProfilerAction.RECORD:
                warnings.warn(f"Incorrect schedule: RECORD followed by {nxt.name}", stacklevel=2)
            self._save()
            self._enter(nxt)
        elif prev == ProfilerAction.WARMUP and nxt in _RECORDING:
            self._discard()  # (warmup's events are dropped)
            self._enter(nxt)
        elif prev == ProfilerAction.WARMUP and nxt == ProfilerAction.NONE:
            self._discard()
        elif prev == ProfilerAction.NONE and nxt != ProfilerAction.NONE:
            self._enter(nxt)
        self._open_step()

    def _enter(self, action):
        if action != ProfilerAction.NONE and self._recorder is None:
            self._recorder = _recorder.Recorder(self.record_shapes)
            _recorder.start(self._recorder)

    def _discard(self):
        if self._recorder is not None:
            _recorder.stop()
            self._recorder = None

    def _save(self):
        rec, self._recorder = self._recorder, None
        if rec is None:
            return
        _recorder.stop()
        events = rec.events._link()
        if self.acc_events:
            self._finished = EventList(self._finished + events)._link()
        else:
            self._finished = events
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def _open_step(self):
        if self.record_steps and self._recorder is not None:
            self._step_region = record_function(f"ProfilerStep#{self.step_num}")
            self._step_region.event_name = "ProfilerStep*"  # (torch's event name for every step)
            self._step_region.__enter__()

    def _close_step(self):
        if self._step_region is not None:
            self._step_region.__exit__(None, None, None)
            self._step_region = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- the results -----------------------------------------------------------------------

    def events(self) -> EventList:
        """The events of the latest saved window (the whole block, without a schedule)."""
        return self._finished

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> EventList:
        return self._finished.key_averages(group_by_input_shape, group_by_stack_n)

    def table(self, **kwargs) -> str:
        return self._finished.table(**kwargs)

    def export_chrome_trace(self, path: str) -> None:
        self._finished.export_chrome_trace(path)

    @property
    def self_cpu_time_total(self) -> float:
        return self._finished.self_cpu_time_total


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None, use_gzip: bool = False):
    """An ``on_trace_ready`` that writes each saved window as a Chrome trace,
    ``{dir_name}/{worker_name}.{time in ms}.pt.trace.json`` (``.gz`` with ``use_gzip``)."""
    def handler(prof):
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name or f"{socket.gethostname()}_{os.getpid()}"
        path = os.path.join(dir_name, f"{name}.{time.time_ns() // 1_000_000}.pt.trace.json")
        prof.export_chrome_trace(path)
        if use_gzip:
            with open(path, "rb") as f, gzip.open(path + ".gz", "wb") as g:
                g.write(f.read())
            os.remove(path)
    return handler


class record_function:
    """Label the work done inside the ``with`` block: an event while a profile records, and a
    host trace annotation for ``jax.profiler`` traces."""

    def __init__(self, name: str, args: str | None = None):
        self.name, self.args = name, args
        self.event_name = name
        self._annotation = None
        self._t0 = None

    def __enter__(self):
        self._annotation = jax.profiler.TraceAnnotation(self.name)
        self._annotation.__enter__()
        if _recorder.active() is not None:
            self._t0 = _recorder._now()
        return self

    def __exit__(self, *exc):
        rec = _recorder.active()
        if rec is not None and self._t0 is not None:
            rec.add(self.event_name, self._t0, _recorder._now(), "user")
        self._t0 = None
        self._annotation.__exit__(*exc)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*a, **k):
            with record_function(self.name, self.args):
                return fn(*a, **k)
        return wrapper
