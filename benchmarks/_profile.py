"""Profiles for benchmarks/train_step.py: the MNIST CNN's convolutions by part (``conv_profile``),
and a step's time per XLA operation, optionally as a per-thread timeline (``xla_profile``,
``step_timeline``; ``--profile``, ``--timeline``)."""
from __future__ import annotations

import json

import numpy as np

import jax
import jax.numpy as jnp

from _timing import fmt_ms, print_table, time_interleaved
from compiled import sync_jax, sync_none


def conv_profile(torch, repeats, target):
    """The MNIST CNN's two convolutions split into forward, input gradient and weight gradient, each one
    jitted program: JAX's own lowering (``lax.conv_general_dilated`` VALID and its transpose rules),
    tracenn's lowerings (tracenn/ops/linalg.py: conv_forward / conv_input_grad / conv_weight_grad),
    an im2col + matmul weight gradient (``lax.conv_general_dilated_patches`` then one dot), and torch."""
    from jax import lax
    from tracenn.ops.linalg import conv_forward, conv_input_grad, conv_weight_grad
    rng = np.random.default_rng(3)
    out, result = [], {}
    for label, xs, ws in (("conv1", (64, 1, 28, 28), (32, 1, 3, 3)), ("conv2", (64, 32, 26, 26), (64, 32, 3, 3))):
        x = jnp.asarray(rng.standard_normal(xs).astype(np.float32))
        w = jnp.asarray(rng.standard_normal(ws).astype(np.float32) * 0.1)
        dn = lax.conv_dimension_numbers(xs, ws, ("NCHW", "OIHW", "NCHW"))

        def plain(x, w):
            return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=dn)

        g = jnp.ones(jax.eval_shape(plain, x, w).shape, jnp.float32) * 0.01
        one, zero = (1, 1), ((0, 0), (0, 0))

        def im2col_wgrad(g, x):
            pt = lax.conv_general_dilated_patches(x, ws[2:], (1, 1), "VALID")  # (N, C*kh*kw, H', W')
            return jnp.einsum("nkhw,nohw->ok", pt, g).reshape(ws)

        progs = {
            "forward": {"jax": (jax.jit(plain), (x, w)),
                        "tracenn": (jax.jit(lambda x, w: conv_forward(x, w, one, zero, one, 1)), (x, w))},
            "input grad": {"jax": (jax.jit(lambda x, w, g: jax.vjp(lambda x: plain(x, w), x)[1](g)[0]), (x, w, g)),
                           "tracenn": (jax.jit(lambda w, g: conv_input_grad(g, w, xs, one, zero, one, 1)), (w, g))},
            "weight grad": {"jax": (jax.jit(lambda x, w, g: jax.vjp(lambda w: plain(x, w), w)[1](g)[0]), (x, w, g)),
                            "tracenn": (jax.jit(lambda x, g: conv_weight_grad(g, x, ws, one, zero, one, 1)), (x, g)),
                            "im2col+matmul": (jax.jit(im2col_wgrad), (g, x))},
        }
        if label == "conv1":
            del progs["input grad"]  # the step never needs it (the input is data)
        entries = {}
        for part, impls in progs.items():
            for impl, (f, args) in impls.items():
                entries[(part, impl)] = (lambda f=f, args=args: f(*args), sync_jax)
        if torch is not None:
            tx = torch.from_numpy(np.array(x)).requires_grad_(True)
            tw = torch.from_numpy(np.array(w)).requires_grad_(True)
            tg = torch.from_numpy(np.array(g))
            tnf = torch.nn.functional
            with torch.enable_grad():
                ty = tnf.conv2d(tx, tw)

            def t_fwd():
                with torch.no_grad():
                    return tnf.conv2d(tx, tw)

            def t_grad(wrt):
                return lambda: torch.autograd.grad(ty, wrt, tg, retain_graph=True)

            entries[("forward", "torch")] = (t_fwd, sync_none, True)
            if label != "conv1":
                entries[("input grad", "torch")] = (t_grad(tx), sync_none, True)
            entries[("weight grad", "torch")] = (t_grad(tw), sync_none, True)
        res = time_interleaved(entries, repeats=repeats, target_s=target)
        result[label] = {f"{p} / {i}": v for (p, i), v in res.items()}
        for part in progs:
            out.append([f"{label} {part}"] + [fmt_ms(res.get((part, i))) for i in ("jax", "tracenn", "im2col+matmul",
                                                                                  "torch")])
    print("\n  cnn convolutions by part, batch 64 (ms; each one jitted program; torch: autograd.grad of a kept graph):")
    print_table(["  part", "jax (lax VALID + JAX's vjp)", "tracenn lowering", "im2col+matmul", "torch"], out)
    return result


def step_timeline(name, label, events, skip, info, min_ms=0.2):
    """The last traced step's XLA operations on each thread (``--timeline``): start (ms from the
    step's start), thread, duration, for operations of ``min_ms`` or more; and how busy each thread
    was over the step. Shows whether independent operations ran side by side (XLA:CPU's executor
    hands work to another thread only when one thread finds several operations ready at once)."""
    xs = [e for e in events if e.get("ph") == "X"]
    syncs = [e for e in xs if e["name"].endswith("block_until_ready")]
    calls = [e for e in xs if e["name"].startswith("PjitFunction")]
    if not syncs or not calls:
        print(f"\n  {name}, {label}: no program call and sync found in the trace")
        return None
    last = max(syncs, key=lambda e: e["ts"])  # the last step: from its program call to its sync's end
    t1 = last["ts"] + last["dur"]
    t0 = max((e["ts"] for e in calls if e["ts"] < last["ts"]), default=last["ts"])
    ops = sorted((e for e in events if e.get("ph") == "X" and not e["name"].startswith(skip)
                  and t0 <= e["ts"] <= t1), key=lambda e: e["ts"])
    threads = {}
    for e in ops:
        threads.setdefault(e["tid"], len(threads))
    busy = [0.0] * len(threads)
    for e in ops:
        busy[threads[e["tid"]]] += e["dur"]
    span = (t1 - t0) / 1e3
    print(f"\n  {name}, {label}: one step's XLA operations by thread ({span:.1f} ms; operations of "
          f"{min_ms} ms or more; busy: " + ", ".join(f"t{i} {b / 1e3 / span:.0%}" for i, b in enumerate(busy)) + ")")
    rows = [[f"{(e['ts'] - t0) / 1e3:.2f}", f"t{threads[e['tid']]}", f"{e['dur'] / 1e3:.2f}", e["name"],
             info.get(e["name"], ("?", ""))[0][:34]] for e in ops if e["dur"] >= min_ms * 1e3]
    print_table(["  start ms", "thread", "ms", "instruction", "shape"], rows)
    return {"span_ms": span, "busy": [b / 1e3 for b in busy],
            "ops": [[(e["ts"] - t0) / 1e3, threads[e["tid"]], e["dur"] / 1e3, e["name"]] for e in ops]}


def trace_events(step, steps, keep_as=None):
    """The events of a jax.profiler trace of ``steps`` calls of ``step`` (a callable with ``.sync``),
    each waited for; ``keep_as``: also copy the raw trace (``.trace.json.gz``) to that path."""
    import glob
    import gzip
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix="tracenn_prof_")
    try:
        jax.profiler.start_trace(d)
        for _ in range(steps):
            step.sync(step())
        jax.profiler.stop_trace()
        fn = glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]
        if keep_as:
            shutil.copy(fn, keep_as)
        with gzip.open(fn) as fh:
            return json.load(fh)["traceEvents"]
    finally:
        shutil.rmtree(d, ignore_errors=True)


def xla_profile(name, progs, *, timeline=False, torch=None, torch_step=None, steps=5, top=12):
    """Where the steady-state programs spend their time, per XLA operation (thunk): a jax.profiler
    trace of a few steps, durations summed per HLO instruction and labelled from the compiled HLO.
    Durations are summed over XLA's threads (independent thunks run concurrently), so they add up to
    more than the wall time: read them as shares. ``progs`` holds (label, step, lowered program)
    triples, a step being a callable with ``.sync``; ``timeline`` adds one step by thread. Torch's own
    profiler gives the same for ``torch_step`` (PyTorch eager)."""
    import collections
    import re
    skip = ("end:", "$", "Pjit", "Common", "Thread", "Python", "Parse", "Handle", "Allocate", "Wait", "Thunk")
    result = {}
    for label, step, lowered in progs:
        if step is None:
            continue
        info = {}
        for line in lowered.compile().as_text().splitlines():
            m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+)", line)
            if m:
                op = re.search(r'op_name="([^"]*)"', line)
                info[m.group(1)] = (m.group(2), op.group(1).split("/")[-1] if op else "")
        events = trace_events(step, steps)
        tot = collections.Counter()
        for e in events:
            if e.get("ph") == "X" and not e["name"].startswith(skip):
                tot[e["name"]] += e["dur"] / 1e3 / steps
        total = sum(tot.values())
        print(f"\n  {name}, {label}: XLA operations by time (ms per step, summed over threads; all: {total:.0f})")
        rows = []
        for n, t in tot.most_common(top):
            shape, op = info.get(n, ("?", ""))
            rows.append([n, f"{t:.1f}", f"{100 * t / total:.0f}%", shape[:34], op[:40]])
        print_table(["  instruction", "ms", "share", "shape", "from (op_name)"], rows)
        result[label] = dict(tot)
        if timeline:
            result[label + " timeline"] = step_timeline(name, label, events, skip, info)
    if torch_step is not None:
        from torch.profiler import ProfilerActivity, profile
        tt = torch_step
        for _ in range(2):
            tt()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                tt()
        avgs = sorted(prof.key_averages(), key=lambda a: -a.self_cpu_time_total)[:top]
        total = sum(a.self_cpu_time_total for a in prof.key_averages()) / 1e3 / steps
        print(f"\n  {name}, torch eager ({torch.get_num_threads()} threads): aten ops by self CPU time "
              f"(ms per step; all: {total:.0f})")
        print_table(["  op", "ms", "share"], [[a.key, f"{a.self_cpu_time_total / 1e3 / steps:.1f}",
                                               f"{100 * a.self_cpu_time_total / 1e3 / steps / total:.0f}%"]
                                              for a in avgs])
        result["torch"] = {a.key: a.self_cpu_time_total / 1e3 / steps for a in avgs}
    return result
