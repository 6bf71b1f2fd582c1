"""What a profile holds: :class:`FunctionEvent` (one timed op, region or compiled call),
:class:`EventList` (a profile's events, with torch's ``key_averages()``, ``table()`` and
``export_chrome_trace()``) and :class:`FunctionEventAvg` (one row of ``key_averages()``).

Times are microseconds (floats), as in torch. An event's self time is its total less the totals
of the events directly inside it on the same thread (a ``record_function`` region less the ops it
ran), found from the events' time intervals.
"""
from __future__ import annotations

import json
import os


class Interval:
    """An event's time range: ``start`` and ``end`` in microseconds from the profile's start."""

    __slots__ = ("start", "end")

    def __init__(self, start: float, end: float):
        self.start, self.end = start, end

    def elapsed_us(self) -> float:
        return self.end - self.start

    def __repr__(self):
        return f"Interval(start={self.start:.3f}, end={self.end:.3f})"


class FunctionEvent:
    """One profiled event: an eager op (``tracenn::matmul``), a backward node
    (``autograd::engine::evaluate_function: MmBackward0``), a compiled call
    (``tracenn.compile: Net``) or a ``record_function`` region."""

    def __init__(self, id, name, thread, start_us, end_us, input_shapes=None, kind="op"):
        self.id = id
        self.name = name
        self.thread = thread
        self.time_range = Interval(start_us, end_us)
        self.input_shapes = input_shapes if input_shapes is not None else []
        self.kind = kind               # "op", "backward", "compiled" or "user" (record_function)
        self.cpu_parent = None
        self.cpu_children: list[FunctionEvent] = []

    key = property(lambda self: self.name)
    cpu_time_total = property(lambda self: self.time_range.elapsed_us())
    self_cpu_time_total = property(
        lambda self: self.cpu_time_total - sum(c.cpu_time_total for c in self.cpu_children))
    is_user_annotation = property(lambda self: self.kind == "user")
    # torch's device columns: tracenn times each op to its completion (the device's work included),
    # so everything is in the CPU columns.
    device_time_total = self_device_time_total = 0.0
    count = 1

    def __repr__(self):
        return (f"<FunctionEvent id={self.id} name={self.name} thread={self.thread} "
                f"cpu_time={_format_time(self.cpu_time_total)} "
                f"start_us={self.time_range.start:.3f} end_us={self.time_range.end:.3f} "
                f"input_shapes={self.input_shapes}>")


class FunctionEventAvg:
    """The events of one name (and input shapes, with ``group_by_input_shape``) added up."""

    def __init__(self, key, input_shapes=None):
        self.key = key
        self.input_shapes = input_shapes
        self.count = 0
        self.cpu_time_total = 0.0
        self.self_cpu_time_total = 0.0
        self.device_time_total = self.self_device_time_total = 0.0
        self.is_user_annotation = False

    def add(self, other) -> "FunctionEventAvg":
        self.count += other.count
        self.cpu_time_total += other.cpu_time_total
        self.self_cpu_time_total += other.self_cpu_time_total
        self.is_user_annotation = other.is_user_annotation
        return self

    @property
    def cpu_time(self) -> float:
        """The average time per call."""
        return self.cpu_time_total / self.count if self.count else 0.0

    def __repr__(self):
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={_format_time(self.self_cpu_time_total)} "
                f"cpu_time={_format_time(self.cpu_time)} input_shapes={self.input_shapes}>")


class EventList(list):
    """A profile's events (a list), with torch's summaries."""

    def _link(self) -> "EventList":
        """Find each event's parent: the innermost event on its thread whose interval holds it."""
        by_thread: dict = {}
        for e in self:
            by_thread.setdefault(e.thread, []).append(e)
        for events in by_thread.values():
            events.sort(key=lambda e: (e.time_range.start, -e.time_range.end))
            stack: list[FunctionEvent] = []
            for e in events:
                while stack and stack[-1].time_range.end < e.time_range.end:
                    stack.pop()
                e.cpu_parent = stack[-1] if stack else None
                e.cpu_children = []
                if e.cpu_parent is not None:
                    e.cpu_parent.cpu_children.append(e)
                stack.append(e)
        return self

    @property
    def self_cpu_time_total(self) -> float:
        return sum(e.self_cpu_time_total for e in self)

    def key_averages(self, group_by_input_shape: bool = False, group_by_stack_n: int = 0) -> "EventList":
        """One :class:`FunctionEventAvg` per event name (and input shapes), in first-seen order."""
        if group_by_stack_n:
            raise NotImplementedError("key_averages(group_by_stack_n=...): tracenn's profiler records no stacks")
        rows: dict = {}
        for e in self:
            key = (e.key, str(e.input_shapes)) if group_by_input_shape else e.key
            row = rows.get(key)
            if row is None:
                row = rows[key] = FunctionEventAvg(e.key, e.input_shapes if group_by_input_shape else None)
            row.add(e)
        return EventList(rows.values())

    def total_average(self) -> FunctionEventAvg:
        total = FunctionEventAvg("Total")
        for e in self:
            total.add(e)
        return total

    def table(self, sort_by=None, row_limit=100, max_src_column_width=75, max_name_column_width=55,
              max_shapes_column_width=80, header=None, top_level_events_only=False, time_unit=None) -> str:
        """torch's summary table: one row per event (or per :meth:`key_averages` row), sorted by
        ``sort_by`` (``"cpu_time_total"``, ``"self_cpu_time_total"``, ``"count"``...), descending."""
        return _table(self, sort_by, row_limit, max_name_column_width, max_shapes_column_width,
                      header, top_level_events_only, time_unit)

    def export_chrome_trace(self, path: str) -> None:
        """Write the events as a Chrome trace (JSON), for chrome://tracing or Perfetto."""
        events = [{"ph": "X", "cat": _CATEGORY.get(getattr(e, "kind", "op"), "cpu_op"), "name": e.name,
                   "pid": os.getpid(), "tid": e.thread, "ts": round(e.time_range.start, 3),
                   "dur": round(e.cpu_time_total, 3),
                   "args": {"Input Dims": e.input_shapes} if e.input_shapes else {}}
                  for e in self]
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)

    def __str__(self):
        return self.table()


_CATEGORY = {"op": "cpu_op", "backward": "cpu_op", "compiled": "cpu_op", "user": "user_annotation"}
_HEADERS = ["Name", "Self CPU %", "Self CPU", "CPU total %", "CPU total", "CPU time avg", "# of Calls"]
_WIDTH = 12  # every column but the name and shapes, as torch prints them


def _format_time(time_us: float, unit=None) -> str:
    if unit == "s" or unit is None and time_us >= 1e6:
        return f"{time_us / 1e6:.3f}s"
    if unit == "ms" or unit is None and time_us >= 1e3:
        return f"{time_us / 1e3:.3f}ms"
    return f"{time_us:.3f}us"


def _share(time_us: float, total_us: float) -> str:
    return "NaN" if total_us == 0 else f"{time_us * 100.0 / total_us:.2f}%"


def _table(events, sort_by, row_limit, max_name_width, max_shapes_width, header, top_level_only, unit):
    if not events:
        return ""
    if sort_by is not None:
        events = sorted(events, key=lambda e: getattr(e, sort_by.replace("cuda", "device")), reverse=True)
    shapes = any(e.input_shapes for e in events)
    name_width = max(len(e.key) for e in events) + 4
    if max_name_width is not None:
        name_width = min(name_width, max_name_width)
    widths = [name_width] + [_WIDTH] * (len(_HEADERS) - 1)
    headers = list(_HEADERS)
    if shapes:
        shapes_width = max(len(str(e.input_shapes)) for e in events) + 4
        widths.append(shapes_width if max_shapes_width is None else min(shapes_width, max_shapes_width))
        headers.append("Input Shapes")
    row = "".join("{: >" + str(w) + "}  " for w in widths)
    sep = "".join("-" * w + "  " for w in widths)
    total = sum(e.self_cpu_time_total for e in events)
    lines = []
    if header is not None:
        lines += ["=" * (sum(widths) + 2 * len(widths) - 2), header]
    lines += [sep, row.format(*headers), sep]
    shown = 0
    for e in events:
        if shown == row_limit:
            break
        if top_level_only and getattr(e, "cpu_parent", None) is not None:
            continue
        shown += 1
        name = e.key
        if max_name_width is not None and len(name) >= max_name_width - 3:
            name = name[:max_name_width - 3] + "..."
        values = [name, _share(e.self_cpu_time_total, total), _format_time(e.self_cpu_time_total, unit),
                  _share(e.cpu_time_total, total), _format_time(e.cpu_time_total, unit),
                  _format_time(e.cpu_time_total / max(e.count, 1), unit), e.count]
        if shapes:
            text = str(e.input_shapes)
            values.append(text if max_shapes_width is None else text[:max_shapes_width])
        lines.append(row.format(*values))
    lines += [sep, f"Self CPU time total: {_format_time(total, unit)}"]
    return "\n".join(lines) + "\n"
