"""Why a compiled training step is slower than the hand-written jax.jit step on a GPU: a diagnosis.

    python benchmarks/gpu_diagnose.py [--only mlp,transformer] [--out DIR]

For each workload of train_step.py (built there, the same models and data):

1. host transfers: three steady-state steps of the compiled step under
   ``jax.transfer_guard("disallow")``; a step that copies to or from the host per call says where;
2. the runtime's Python: cProfile over 200 compiled steps, top functions by own time;
3. device time: a jax.profiler trace of 5 steps of the tracenn program and of the jax.jit step,
   device-side events summed per name (kernels, in µs per step) and counted; with ``--out`` the raw
   traces and the compiled HLO of both programs are written there for reading offline (``--no-trace``
   skips this);
4. host time per step (``host_times``): for the jax.jit step, tracenn's program called bare and the
   compiled step, the host time of each call with no wait (median), the time per step of a loop with
   one wait at its end, and of a loop waiting after every step; for the compiled step also the host
   time inside its program call. When the pipelined step time equals the host time, the host is
   what limits the step.

``--device`` is always the default device JAX picks for tracenn (``cuda`` when one is visible).
"""
from __future__ import annotations

import argparse
import collections
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)

import jax  # noqa: E402

import tracenn  # noqa: E402
import train_step as T  # noqa: E402
from _profile import trace_events  # noqa: E402


def device_events(events):
    """The trace's events that ran on an accelerator (or, on the CPU, XLA's thunks)."""
    names = {e["pid"]: e["args"]["name"] for e in events
             if e.get("ph") == "M" and e.get("name") == "process_name" and "args" in e}
    gpu = {pid for pid, n in names.items() if "GPU" in n or "gpu" in n}
    return [e for e in events if e.get("ph") == "X" and (e["pid"] in gpu if gpu else True)], bool(gpu)


def trace(label, step, lowered, out, name, steps=5):
    events = trace_events(step, steps, os.path.join(out, f"{name}_{label}.trace.json.gz") if out else None)
    if out:
        with open(os.path.join(out, f"{name}_{label}.hlo.txt"), "w") as fh:
            fh.write(lowered.compile().as_text())
    evs, on_gpu = device_events(events)
    tot, cnt = collections.Counter(), collections.Counter()
    for e in evs:
        tot[e["name"]] += e["dur"] / steps
        cnt[e["name"]] += 1 / steps
    print(f"\n  {name}, {label}: {'device' if on_gpu else 'all'} events per step: {sum(cnt.values()):.0f}, "
          f"summed {sum(tot.values()):.0f} µs")
    for n, t in tot.most_common(15):
        print(f"    {t:8.1f} µs  x{cnt[n]:4.0f}  {n[:110]}")
    return tot


def host_times(name, rows, entry, n=300):
    """rows: [(label, step, sync)]. Per row, median µs: the host time of one call in a loop of n
    calls with one wait at its end ("piped") and in a loop that waits after every call ("idle":
    the device has nothing queued when the call starts), and the time per step of both loops. For
    the compiled step also the part of each call spent in its program's jax.jit call."""
    print(f"\n  {name}: host and step times, µs (medians; 5 loops of {n} steps each way)")
    inner = {"piped": [], "idle": []}
    program = entry.fwd_donating
    where = ["piped"]

    def timed_program(*a):
        t0 = time.perf_counter()
        r = program(*a)
        inner[where[0]].append(time.perf_counter() - t0)
        return r
    for label, step, sync in rows:
        for _ in range(5):
            sync(step())
        calls = {"piped": [], "idle": []}
        loops = {"piped": [], "idle": []}
        compiled = label == "tracenn compiled step"
        if compiled:
            entry.fwd_donating = timed_program
        try:
            for _ in range(5):
                for mode in ("piped", "idle"):
                    where[0] = mode
                    t0 = time.perf_counter()
                    for _ in range(n):
                        t = time.perf_counter()
                        r = step()
                        calls[mode].append(time.perf_counter() - t)
                        if mode == "idle":
                            sync(r)
                    sync(r)
                    loops[mode].append(time.perf_counter() - t0)
        finally:
            entry.fwd_donating = program
        us = lambda v: statistics.median(v) * 1e6 if v else float("nan")  # noqa: E731
        print(f"    {label:24s} piped: call {us(calls['piped']):7.1f} step {us(loops['piped']) / n:7.1f}"
              + (f" (program call {us(inner['piped']):6.1f})" if compiled else "")
              + f"   idle: call {us(calls['idle']):7.1f} step {us(loops['idle']) / n:7.1f}"
              + (f" (program call {us(inner['idle']):6.1f})" if compiled else ""), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="mlp,transformer")
    ap.add_argument("--out", default="")
    ap.add_argument("--no-trace", action="store_true")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args()
    if tracenn.cuda.is_available():
        tracenn.set_default_device("cuda")
    ctx = T.Context()
    ctx.device = "cuda" if tracenn.cuda.is_available() else "cpu"
    ctx.quick, ctx.timeline, ctx.torch, ctx.torch_compile = True, False, None, False
    ctx.check_steps, ctx.repeats, ctx.target = 3, 3, 0.05
    print("jax", jax.__version__, jax.devices(), flush=True)
    for name in args.only.split(","):
        rows, ts, jt, _ = T.step_rows(ctx, name)
        e = ts.fn._last
        print(f"\n== {name}: program inputs: {len(e.donate)} donated + {len(e.keep)} kept state arrays, "
              f"{len(ts.fn._last.graph.outputs) if hasattr(e.graph, 'outputs') else '?'} outputs", flush=True)
        for direction in ("host_to_device", "device_to_host", "device_to_device"):
            guard = getattr(jax, f"transfer_guard_{direction}")
            try:
                with guard("disallow"):
                    for _ in range(3):
                        ts.sync(ts())
                print(f"  transfer guard {direction}: no transfer in 3 steps")
            except Exception as exc:  # noqa: BLE001 - the diagnosis is the message and where it came from
                print(f"  transfer guard {direction}: {type(exc).__name__}: {str(exc)[:200]}")
                print("".join(traceback.format_tb(exc.__traceback__)[-6:]))
        call, sync = ts.bare()
        host_times(name, [("jax.jit step", jt, jt.sync), ("tracenn program, bare", call, sync),
                          ("tracenn compiled step", ts, ts.sync)], e)
        if args.no_profile:
            continue
        for _ in range(5):
            ts.sync(ts())
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(200):
            r = ts()
        ts.sync(r)
        prof.disable()
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(22)
        print("\n  cProfile, 200 compiled steps, by own time:")
        print("\n".join(ln for ln in s.getvalue().splitlines()[6:] if ln.strip())[:4000])
        if args.no_trace:
            continue

        class Bare:
            def __call__(self):
                return call()

            def sync(self, r):
                sync(r)
        trace("tracenn", Bare(), ts.lowered(), args.out, name)
        trace("jaxjit", jt, jt.step.lower(jt.params, jt.state, jt.x, jt.y), args.out, name)


if __name__ == "__main__":
    main()
