"""One TensorBoard event file: ``Event`` messages (``tensorboard/compat/proto/event.proto``) framed
as TFRecords, written without ``tensorboard`` (what ``tensorboard``'s ``EventFileWriter`` does for
torch).

Buffering: torch's writer hands records to a background thread that writes them at once and
flushes the file every ``flush_secs``. Here there is no thread: records wait in memory and are
written (and the file flushed) when ``max_queue`` of them wait, when an ``add`` comes ``flush_secs``
or more after the last write, on ``flush()``/``close()``, and at interpreter exit (``atexit``), so a
script that never calls ``close()`` still leaves complete files.
"""
from __future__ import annotations

import atexit
import itertools
import os
import socket
import threading
import time
import weakref

from ._proto import bytes_field, double_field, int_field, record

# SessionLog.SessionStatus
SESSION_START = 1

_uid = itertools.count()  # the last part of the file name: a per-process counter, as tensorboard's
_uid_lock = threading.Lock()
_open_writers: "weakref.WeakSet[EventFileWriter]" = weakref.WeakSet()


def encode_event(wall_time: float, step=None, *, file_version: str | None = None, summary: bytes | None = None,
                 session_log_status: int | None = None) -> bytes:
    """Event{wall_time = 1, step = 2, file_version = 3 | summary = 5 | session_log = 7}."""
    out = double_field(1, wall_time) + int_field(2, int(step) if step is not None else 0)
    if file_version is not None:
        out += bytes_field(3, file_version, always=True)
    if summary is not None:
        out += bytes_field(5, summary, always=True)
    if session_log_status is not None:
        out += bytes_field(7, int_field(1, session_log_status), always=True)
    return out


class EventFileWriter:
    """Writes serialized ``Event`` messages to a new file
    ``<logdir>/events.out.tfevents.<time>.<hostname>.<pid>.<n><filename_suffix>``; the first event
    holds ``file_version="brain.Event:2"`` and is on disk when the constructor returns."""

    def __init__(self, logdir, max_queue_size=10, flush_secs=120, filename_suffix=""):
        self._logdir = logdir
        self._max_queue = max(int(max_queue_size), 1)
        self._flush_secs = flush_secs
        self._filename_suffix = filename_suffix
        self._lock = threading.Lock()
        self._open()

    def _open(self):
        os.makedirs(self._logdir, exist_ok=True)
        with _uid_lock:
            uid = next(_uid)
        name = "events.out.tfevents.%010d.%s.%s.%s" % (time.time(), socket.gethostname(), os.getpid(), uid)
        self._file_name = os.path.join(self._logdir, name) + self._filename_suffix
        self._file = open(self._file_name, "wb")
        self._pending: list[bytes] = []
        self._last_write = time.time()
        self._closed = False
        _open_writers.add(self)
        self.add_event(encode_event(time.time(), file_version="brain.Event:2"))
        self.flush()

    def get_logdir(self):
        """The directory the event file is in."""
        return self._logdir

    @property
    def file_name(self) -> str:
        """The path of the event file being written."""
        return self._file_name

    def add_event(self, event: bytes) -> None:
        """Queue one serialized ``Event``; write the queue if it is full or ``flush_secs`` have passed."""
        if not isinstance(event, (bytes, bytearray)):
            raise TypeError(f"Expected a serialized Event (bytes), but got {type(event)}")
        with self._lock:
            if self._closed:
                raise OSError("Writer is closed")
            self._pending.append(record(bytes(event)))
            if len(self._pending) >= self._max_queue or time.time() - self._last_write >= self._flush_secs:
                self._write_pending()

    def _write_pending(self):
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        self._file.flush()
        self._last_write = time.time()

    def flush(self) -> None:
        """Write every queued event to the file."""
        with self._lock:
            if not self._closed:
                self._write_pending()

    def close(self) -> None:
        """Write the queued events and close the file. A second call does nothing."""
        with self._lock:
            if self._closed:
                return
            self._write_pending()
            self._file.close()
            self._closed = True
        _open_writers.discard(self)

    def reopen(self) -> None:
        """After ``close()``, start a new event file in the same directory; otherwise do nothing."""
        if self._closed:
            self._open()


@atexit.register
def _flush_all():
    for writer in list(_open_writers):
        try:
            writer.flush()
        except (OSError, ValueError):  # a file already gone at shutdown: nothing left to save
            pass
