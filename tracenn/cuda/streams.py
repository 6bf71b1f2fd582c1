"""``tracenn.cuda.Stream`` and ``Event``: torch's stream API over XLA's one ordered queue.

XLA orders a GPU's work itself: every eager op and compiled call runs after the ones dispatched
before it, whichever stream was current. So a ``Stream`` is a name for that one queue: creating,
selecting (``with tracenn.cuda.stream(s):``) and waiting between streams (``wait_stream``,
``wait_event``) are kept as torch's bookkeeping (``current_stream()`` answers what was selected) and
never reorder or overlap work; ``synchronize()`` waits for all of it.

An ``Event`` created with ``enable_timing=True`` waits for the queued work when it is recorded
and reads ``time.perf_counter()``; ``elapsed_time`` is the difference in milliseconds. The time
between two records therefore includes the work queued before the second one, as timing with
``synchronize()`` does, and also includes the host's time between them. Other events remember
the latest dispatched result, so ``query()`` and ``synchronize()`` see whether it has finished.

>>> import tracenn
>>> if tracenn.cuda.is_available():
...     start, end = tracenn.cuda.Event(enable_timing=True), tracenn.cuda.Event(enable_timing=True)
...     start.record(); y = tracenn.ones(256, 256, device="cuda") @ tracenn.ones(256, 256, device="cuda")
...     end.record(); assert start.elapsed_time(end) >= 0
"""
from __future__ import annotations

import itertools
import threading
import time

from .. import _dispatch
from ..device import device as _device
from ..errors import CudaDeviceError
from . import _gpu

_IDS = itertools.count(1)  # (stream 0 is each GPU's default stream)
_DEFAULT: dict[int, "Stream"] = {}
_CURRENT = threading.local()  # .streams: {gpu index: Stream}, per thread as torch's current stream


def _wait_for_queued_work() -> None:
    from .. import synchronize
    synchronize()


class Stream:
    """A handle on a GPU's work queue (torch.cuda.Stream). XLA runs a GPU's work in one order, so
    every stream of a device names the same queue: see the module docstring.

    Args:
        device: the GPU (index, ``"cuda:0"``, or device); default the current one.
        priority: kept for torch's signature; XLA schedules its work itself.
    """

    def __init__(self, device=None, priority: int = 0, **kwargs):
        if not _gpu.gpus():
            raise CudaDeviceError("tracenn.cuda.Stream needs a GPU: " + _gpu.NO_GPU)
        _gpu.jax_device(device)
        self.device_index = _gpu.index(device)
        self.device_type = "cuda"
        self.priority = priority
        self.stream_id = kwargs.get("_stream_id", None)
        if self.stream_id is None:
            self.stream_id = next(_IDS)

    @property
    def device(self) -> _device:
        return _device("cuda", self.device_index)

    @property
    def cuda_stream(self) -> int:
        """An id for this handle (not a CUDA stream pointer: XLA owns its streams)."""
        return self.stream_id

    def query(self) -> bool:
        """Whether all work dispatched so far has finished (does not wait)."""
        last = _dispatch.LAST[0]
        return last is None or not hasattr(last, "is_ready") or last.is_ready()

    def synchronize(self) -> None:
        """Wait for all work dispatched so far (the one queue's)."""
        _wait_for_queued_work()

    def wait_event(self, event: "Event") -> None:
        """Nothing to do: work dispatched after this call already runs after the event's work."""
        return None

    def wait_stream(self, stream: "Stream") -> None:
        """Nothing to do: ``stream``'s work and this stream's are one queue, run in order."""
        return None

    def record_event(self, event: "Event | None" = None) -> "Event":
        """Record ``event`` (a new one by default) here and return it."""
        event = Event() if event is None else event
        event.record(self)
        return event

    def __enter__(self):
        self._context = StreamContext(self)
        self._context.__enter__()
        return self

    def __exit__(self, *exc):
        self._context.__exit__(*exc)
        return False

    def __eq__(self, other):
        return isinstance(other, Stream) and (self.device_index, self.stream_id) == (other.device_index,
                                                                                     other.stream_id)

    def __hash__(self):
        return hash((self.device_index, self.stream_id))

    def __repr__(self):
        return f"<tracenn.cuda.Stream device=cuda:{self.device_index} cuda_stream={self.stream_id:#x}>"


def default_stream(device=None) -> Stream:
    """The default stream of ``device`` (the current GPU by default)."""
    i = _gpu.index(device)
    _gpu.jax_device(i)
    if i not in _DEFAULT:
        _DEFAULT[i] = Stream(i, _stream_id=0)
    return _DEFAULT[i]


def current_stream(device=None) -> Stream:
    """The stream selected for ``device`` in this thread (by :func:`set_stream` or :func:`stream`),
    else its default stream."""
    i = _gpu.index(device)
    _gpu.jax_device(i)
    return getattr(_CURRENT, "streams", {}).get(i) or default_stream(i)


def set_stream(stream: Stream) -> None:
    """Select ``stream`` for its device in this thread; ``None`` does nothing (as in torch)."""
    if stream is None:
        return
    if not hasattr(_CURRENT, "streams"):
        _CURRENT.streams = {}
    _CURRENT.streams[stream.device_index] = stream


class StreamContext:
    """Select ``stream`` inside the ``with`` block and restore the previous one after it;
    ``None`` does nothing (torch.cuda.StreamContext)."""

    def __init__(self, stream: Stream | None):
        self.stream = stream
        self._previous = None

    def __enter__(self):
        if self.stream is None:
            return None
        self._previous = current_stream(self.stream.device_index)
        set_stream(self.stream)
        return self.stream

    def __exit__(self, *exc):
        if self.stream is not None:
            set_stream(self._previous)
        return False


def stream(stream: Stream | None) -> StreamContext:
    """``with tracenn.cuda.stream(s):`` selects ``s`` for the block (see :class:`StreamContext`)."""
    return StreamContext(stream)


class Event:
    """A marker in the GPU's work queue (torch.cuda.Event); see the module docstring for what
    recording one waits for.

    Args:
        enable_timing: record waits for the queued work and reads the clock, so
            :meth:`elapsed_time` can measure (default False).
        blocking, interprocess, external: kept for torch's signature.
    """

    def __init__(self, enable_timing: bool = False, blocking: bool = False, interprocess: bool = False,
                 external: bool = False):
        if not _gpu.gpus():
            raise CudaDeviceError("tracenn.cuda.Event needs a GPU: " + _gpu.NO_GPU)
        self.enable_timing, self.blocking, self.interprocess = enable_timing, blocking, interprocess
        self._recorded = False
        self._time = None
        self._mark = None  # the latest dispatched result when recorded (what query/synchronize wait on)

    def record(self, stream: Stream | None = None) -> None:
        """Mark the work dispatched so far; with ``enable_timing`` wait for it and read the clock."""
        if self.enable_timing:
            _wait_for_queued_work()
            self._time = time.perf_counter()
            self._mark = None
        else:
            self._mark = _dispatch.LAST[0]
        self._recorded = True

    def wait(self, stream: Stream | None = None) -> None:
        """Nothing to do: work dispatched after this call already runs after the event's work."""
        return None

    def query(self) -> bool:
        """Whether the work marked by :meth:`record` has finished (True if never recorded, as torch)."""
        return self._mark is None or not hasattr(self._mark, "is_ready") or self._mark.is_ready()

    def synchronize(self) -> None:
        """Wait until the work marked by :meth:`record` has finished."""
        if self._mark is not None and hasattr(self._mark, "block_until_ready"):
            self._mark.block_until_ready()

    def elapsed_time(self, end_event: "Event") -> float:
        """Milliseconds between this event's record and ``end_event``'s (both made with
        ``enable_timing=True``): the host clock after each waited for the queued work."""
        if not (self.enable_timing and end_event.enable_timing):
            raise ValueError("Both events must be created with argument 'enable_timing=True'.")
        if not (self._recorded and end_event._recorded):
            raise ValueError("Both events must be recorded before calculating elapsed time.")
        return (end_event._time - self._time) * 1000.0

    def __repr__(self):
        return f"<tracenn.cuda.Event {'recorded' if self._recorded else 'uninitialized'}>"
