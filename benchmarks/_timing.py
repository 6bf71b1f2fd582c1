"""Shared timing helpers for the eager benchmarks (not a benchmark itself).

Method: every measured callable ``fn()`` runs one unit of work (one op, one training step) and
returns something to wait on; ``sync(result)`` waits until it is computed. A timed *loop* runs
``fn`` ``n`` times and waits once at the end (JAX and tracenn dispatch asynchronously, so that
measures steady-state dispatch+compute throughput, which is what an eager program sees; PyTorch on
the CPU is synchronous). ``n`` is calibrated so one loop takes about ``target_s``. The reported time
is the median over ``repeats`` loops of (loop time / n). All entries (every op of every framework)
are interleaved loop by loop, so slow drift of a shared machine hits every column alike.

Before and after each PyTorch loop the process sleeps ``SETTLE_S``: right after a JAX loop, XLA's CPU worker threads still spin for a while, and on this
2-core machine PyTorch's 2 OpenMP threads then stall badly (measured: torch.softmax of 64x128 at
~50-80 µs right after a JAX loop vs ~4.5 µs after a 50 ms pause); the pause keeps each framework's
numbers free of the other's threads.
"""
from __future__ import annotations

import gc
import statistics
import time

perf = time.perf_counter
SETTLE_S = 0.03


def _loop(fn, sync, n, settle=False):
    if settle:
        time.sleep(SETTLE_S)
    r = None
    t0 = perf()
    for _ in range(n):
        r = fn()
    sync(r)
    return perf() - t0


def calibrate(fn, sync, target_s, warmup=3, max_n=100_000, settle=False):
    """Warm up ``fn`` (compiles, caches) and choose a loop count that takes about ``target_s``."""
    if settle:
        time.sleep(SETTLE_S)
    for _ in range(warmup):
        sync(fn())
    n = 1
    while True:
        dt = _loop(fn, sync, n)
        if dt >= target_s / 4 or n >= max_n:
            break
        n *= 4
    return max(1, min(max_n, int(round(n * target_s / max(dt, 1e-9)))))


def time_interleaved(entries, *, repeats, target_s, stat="median", progress=None):
    """``entries``: {key: (fn, sync[, settle])}. Returns {key: seconds per call} (median, or min,
    of repeats). ``settle`` (default False): sleep ``SETTLE_S`` before each loop of this entry (give
    it to PyTorch entries, see the module doc).

    Every repeat runs one loop of *every* entry, so each entry's samples are spread over the whole
    run: a burst of load from other tenants of this shared machine (seconds long; it slows
    PyTorch's 2 OpenMP threads by up to 1000x) spoils one sample of many entries rather than
    every sample of one entry.
    """
    entries = {k: (e[0], e[1], e[2] if len(e) > 2 else False) for k, e in entries.items()}
    counts = {}
    for k, (fn, sync, settle) in entries.items():
        counts[k] = calibrate(fn, sync, target_s, settle=settle)
    samples = {k: [] for k in entries}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        prev = False  # (kept across repeats: the first row after a PyTorch loop settles too)
        for r in range(repeats):
            for k, (fn, sync, settle) in entries.items():
                # settle before a PyTorch loop, and after one (its OpenMP threads spin on too)
                samples[k].append(_loop(fn, sync, counts[k], settle or prev) / counts[k])
                prev = settle
            gc.collect()
            if progress:
                progress(r + 1, repeats)
    finally:
        if gc_was:
            gc.enable()
    agg = min if stat == "min" else statistics.median
    return {k: agg(v) for k, v in samples.items()}


def fmt_us(s):
    if s is None:
        return "-"
    us = s * 1e6
    return f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def fmt_ms(s):
    if s is None:
        return "-"
    return f"{s * 1e3:.0f}" if s >= 0.1 else f"{s * 1e3:.1f}" if s >= 0.01 else f"{s * 1e3:.2f}"


def fmt_ratio(a, b):
    if a is None or b is None:
        return "-"
    return f"{a / b:.2f}"


def print_table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths)))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def try_import_torch():
    """PyTorch, or None when it is not installed (the benchmarks then print its columns as '-')."""
    try:
        import torch
    except Exception:  # noqa: BLE001 - any import failure means "no torch column"
        return None
    return torch
