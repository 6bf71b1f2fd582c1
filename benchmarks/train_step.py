"""A whole training step compiled by tracenn.compile against a hand-written jax.jit step (issue 7).

    python benchmarks/train_step.py [--quick] [--only NAME[,NAME...]] [--repeats N] [--phases]
                                    [--profile [--timeline]] [--device cpu|cuda] [--torch-threads N] [--no-torch]
                                    [--no-torch-compile] [--no-memory] [--no-layers] [--json PATH]

``--quick`` (a smoke run, under 3 minutes even on the loaded shared machine): the step tables only,
3 short repeats, without the tracenn eager row, torch.compile, the phase, layer and memory tables.

Workloads (float32; names for ``--only``):

  mlp          MLP 784-512-512-10, batch 128, cross-entropy, SGD lr 0.01 momentum 0.9
  transformer  2-layer TransformerEncoder (d_model 128, 4 heads, ffn 512, dropout 0, post-norm,
               batch_first) + mean-pool + Linear(128, 10), seq 64, batch 32, cross-entropy, Adam lr 1e-3
  cnn          MNIST CNN Conv(1,32,3)-ReLU-Conv(32,64,3)-ReLU-MaxPool2-Flatten-Linear(9216,128)-ReLU-
               Linear(128,10), batch 64, cross-entropy, SGD lr 0.01 momentum 0.9

Rows of the step table (one process, every row from the same initial weights):

* ``jax.jit step`` -- the baseline: the model written by hand in jax.numpy/lax (benchmarks/compiled.py's
  functions), ``jax.value_and_grad`` + the optimizer update in one ``jax.jit`` with parameters and
  optimizer state donated (``donate_argnums``). The update is optax's when optax is importable, else a
  hand-written one with torch's rules (the output says which; optax is not a tracenn dependency).
* ``tracenn compiled step`` -- ``tracenn.compile(train_step)`` of PyTorch's loop body (``zero_grad``,
  forward, cross-entropy, ``backward``, ``optimizer.step``): one XLA program per step.
* ``tracenn program, bare jax.jit`` (diagnostic) -- the program tracenn lowered, called with its state
  threaded by hand and no runtime around it: the gap to the row above is the runtime's per-call cost
  (guards, reading ``.grad`` and the learning rate, writing parameters, grads and optimizer state back).
* ``tracenn eager step``, ``torch eager`` and ``torch.compile(model)`` for context (torch rows when torch
  is importable; torch.compile prints "unavailable: reason" when it fails). PyTorch runs with its default
  thread count unless ``--torch-threads`` says otherwise: on a machine shared with other busy processes
  its OpenMP threads wait on each other, and one thread can be several times faster.

Before timing, the first steps' losses of every row are compared with the baseline's, and the compiled
step's parameter updates over those steps with the baseline's. Times are medians over interleaved
repeats (benchmarks/_timing.py's method: each repeat runs one calibrated loop of every row, so load
bursts hit all rows alike); "paired" is the median (and quartiles) of the per-repeat ratios to the
baseline's loop of the same repeat, the steadier figure on a loaded machine. First calls: tracenn's call
1 (traces and compiles a program that also creates the optimizer state) and call 2 (the steady-state
program: grads and optimizer state are now inputs), and jax.jit's first call, each split into XLA
compile, JAX tracing + lowering and the rest (from ``jax.monitoring``'s compile events). "cores" is the
process's CPU time over the wall time of each row's loops (medians): how many cores the step kept busy
(XLA:CPU runs one convolution on one core; PyTorch's kernels use its threads). "faults" is the
process's minor page faults per step (medians): memory the kernel had to map afresh (Linux; see
tracenn/_malloc.py for why that cost the CNN step a quarter of its time).

Per-phase table (the CNN, except with ``--quick``; every workload with ``--phases``): forward + loss,
forward + backward, and the whole step, each one program: jax.jit (``jit(loss)``,
``jit(value_and_grad(loss))``, the step), tracenn (``tracenn.compile`` of the loss function under
``no_grad``, of a function that ends at ``loss.backward()``, and the step) and torch eager. CNN layer
tables (``--no-layers`` skips them): forward and forward + backward of each heavy layer alone, jax.jit
vs tracenn.compile vs torch eager; and each convolution split into forward, input gradient and weight
gradient, one jitted program each, in JAX's lowering, tracenn's, an im2col + matmul weight gradient,
and torch. ``--profile``: each workload's steps' time per XLA operation (a jax.profiler trace, labelled from the
compiled HLO) and per aten op (torch.profiler); with ``--timeline`` also one step's operations by
thread, with each thread's busy share (whether independent operations ran side by side).

Peak memory (``--no-memory`` skips it): one subprocess per (workload, variant) so nothing else is alive;
variants: the jax.jit step, the compiled step, and the compiled step that ends with ``opt.zero_grad()``
(no ``.grad`` survives it, as in the jax.jit step, where gradients are temporaries; with torch's loop
body the gradients stay readable after ``step()``, so they are alive between steps). Printed: all live JAX
arrays when the program starts (for tracenn, less the old ``.grad`` arrays the call drops before it runs), XLA's own accounting of the steady-state program
(``compiled.memory_analysis()``: arguments, outputs, outputs aliased to donated arguments, temporaries),
the peak during a step (live + outputs not aliased + temporaries), and the growth of the process's peak
RSS over steps after warm-up (``/proc/self/clear_refs`` resets VmHWM). ``memory_stats()`` is None on
the CPU, and tracemalloc does not see XLA's buffers.

``--device cuda`` runs every row on the GPU (``tracenn.set_default_device``, torch ``.cuda()``).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
for _p in (_ROOT, _HERE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracenn  # noqa: E402
import tracenn.nn.functional as TF  # noqa: E402
from tracenn import nn as tnn  # noqa: E402
from tracenn.runtime.writes import write_positions  # noqa: E402

from _profile import conv_profile, xla_profile  # noqa: E402
from _timing import _loop, calibrate, fmt_ms, print_table, time_interleaved, try_import_torch  # noqa: E402
# One definition of each model, its plain-JAX twin and the baseline optimizer, shared with compiled.py.
from compiled import (BETAS, D_MODEL, EPS, LR_ADAM, LR_SGD, MOMENTUM, SEQ, JaxTrain, TorchTrain,  # noqa: E402
                      build_cnn, build_mlp, build_transformer, jax_cnn, jax_mlp, jax_transformer, params_of,
                      torch_copy, tracenn_copy, sync_jax, sync_none)

perf = time.perf_counter
WORKLOADS = {  # name: (builder, jax twin, input shape, optimizer)
    "mlp": (build_mlp, jax_mlp, (128, 784), "sgd"),
    "transformer": (build_transformer, jax_transformer, (32, SEQ, D_MODEL), "adam"),
    "cnn": (build_cnn, jax_cnn, (64, 1, 28, 28), "sgd"),
}
TARGET = 1.05  # issue 7: compiled step <= 1.05x the jax.jit step (MLP, transformer)
BASE, TN = "jax.jit step", "tracenn compiled step"


def torch_on_gpu(ctx) -> bool:
    """PyTorch runs on CUDA with ``--device cuda`` (every row then runs on the GPU; the per-layer
    tables leave torch out)."""
    return ctx.torch is not None and getattr(ctx, "device", "cpu") == "cuda"


def torch_setup(ctx, model, x_np, y_np):
    """(model, x, y, sync) for the torch rows, on CUDA when torch_on_gpu."""
    torch = ctx.torch
    tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
    if torch_on_gpu(ctx):
        return model.cuda(), tx.cuda(), ty.cuda(), lambda r: torch.cuda.synchronize()
    return model, tx, ty, sync_none


def _reason(e) -> str:
    s = f"{type(e).__name__}: {e}".strip().splitlines()
    return s[0][:160] if s else type(e).__name__


def data(shape, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.integers(0, 10, size=(shape[0],)).astype(np.int64)
    return x, y


# ---- the tracenn steps ---------------------------------------------------------------------------------

def tracenn_optimizer(params, kind):
    if kind == "sgd":
        return tracenn.optim.SGD(params, lr=LR_SGD, momentum=MOMENTUM)
    return tracenn.optim.Adam(params, lr=LR_ADAM, betas=BETAS, eps=EPS)


class TracennStep:
    """PyTorch's training-loop body as a function, compiled whole (``compiled=True``) or run eagerly."""

    def __init__(self, model, x, y, opt_kind, compiled=True, zero_grad_at_end=False):
        self.model, self.x, self.y = model, x, y
        self.params = list(model.parameters())
        opt = self.opt = tracenn_optimizer(self.params, opt_kind)

        def train_step(x, y):
            opt.zero_grad()
            loss = TF.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if zero_grad_at_end:  # no .grad survives the step, as in the jax.jit step
                opt.zero_grad()
            return loss

        self.fn = tracenn.compile(train_step) if compiled else train_step

    def __call__(self):
        return self.fn(self.x, self.y)

    def sync(self, loss):
        jax.block_until_ready([loss._value] + [p._value for p in self.params])

    def bare(self):
        """The latest program tracenn ran for this step, called through its own jax.jit with the
        donated state threaded by hand: no guards, no write-back (reads runtime internals)."""
        e = self.fn._last
        names = list(e.graph.state)
        st = e.state_tensors
        pos = write_positions(e.graph, e.write_index)  # a Value written under several names is returned once
        widx = [pos[names[i]] for i in e.donate_rest]
        kept = [st[i]._value for i in e.keep]
        ins = [self.x._value, self.y._value]
        rng = e.rng_args()
        box = [self._donated(copy=True)]  # copies: donating them must not touch the model
        if e.fstate is not None:  # the donated state as one flat array (off the CPU: runtime/flatstate.py)
            widx.insert(0, e.fstate.at)
        if e.flat is not None:  # the unread grads as one flat array (off the CPU: runtime/flatgrads.py)
            widx.append(e.flat_at)

        def call():
            outs, writes = e.fwd_donating(box[0], kept, rng, ins)
            box[0] = [writes[j] for j in widx]
            return outs[0]

        return call, lambda r: jax.block_until_ready((r, box[0]))

    def lowered(self):
        """The steady-state program, lowered again (``jax.stages.Lowered``; reads runtime internals)."""
        e = self.fn._last
        st = e.state_tensors
        return e.fwd_donating.lower(self._donated(), [st[i]._value for i in e.keep],
                                    e.rng_args(), [self.x._value, self.y._value])

    def _donated(self, copy=False):
        """The arrays the latest program takes donated, as a call passes them: the flat state
        array first where there is one, the other donated state, the old flat grads last."""
        e = self.fn._last
        st = e.state_tensors
        out = [st[i]._value for i in e.donate_rest]
        if e.fstate is not None:
            out.insert(0, e.fstate.join_jit([m._value for m in e.fstate.members]))
        if e.flat is not None:
            out.append(jnp.zeros(e.flat.size, e.flat.dtype))
        return [jnp.copy(a) for a in out] if copy else out


def update_diff(p0, pa, pb):
    """|(pa - p0) - (pb - p0)| / |pb - p0| over all parameters (L2): the relative difference of two
    runs' total updates. (A per-tensor max would flag Adam's steps on zero-gradient coordinates, such
    as attention's key bias, where float noise in a ~0 gradient becomes a step of about lr.)"""
    num = sum(float(np.sum((pa[n] - pb[n]) ** 2)) for n in p0)
    den = sum(float(np.sum((pb[n] - p0[n]) ** 2)) for n in p0)
    return (num / max(den, 1e-30)) ** 0.5


_EVENTS: list = []  # (name, seconds) of JAX's compile-time events, see _compile_split
jax.monitoring.register_event_duration_secs_listener(lambda name, secs, **kw: _EVENTS.append((name, secs)))


def _compile_split(events):
    """(JAX trace + lowering to StableHLO, XLA compile) seconds among JAX's monitoring events."""
    trace = sum(s for n, s in events if n.endswith(("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration")))
    xla = sum(s for n, s in events if n.endswith("backend_compile_duration"))
    return trace, xla


def first_calls(fn, sync, n):
    """Wall seconds of each of the first ``n`` calls (each waited for), and the last result."""
    times, r = [], None
    for _ in range(n):
        t0 = perf()
        r = fn()
        sync(r)
        times.append(perf() - t0)
    return times, r


class Row:
    def __init__(self, name, fn=None, sync=None, *, settle=False, first=None, losses=None, note=""):
        self.name, self.fn, self.sync, self.settle = name, fn, sync, settle
        self.first, self.losses, self.note = first or [], losses, note
        self.time = None


def _loss_float(r):
    return float(r) if not hasattr(r, "item") else float(r.item())


def run_with_losses(name, fn, sync, n_check, n_first, **kw):
    """A Row whose first ``n_check`` calls are timed one by one (the first ``n_first`` are reported as
    first-call times) and whose losses are kept for the agreement check."""
    times, losses, splits = [], [], []
    for _ in range(n_check):
        k = len(_EVENTS)
        t, r = first_calls(fn, sync, 1)
        times += t
        splits.append(_compile_split(_EVENTS[k:]))
        losses.append(_loss_float(r))
    row = Row(name, fn, sync, first=times[:n_first], losses=np.array(losses), **kw)
    row.splits = splits[:n_first]
    return row


def _minor_faults() -> int:
    try:
        import resource
    except ImportError:  # not a Unix: the column reads 0
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def time_paired(entries, *, repeats, target_s, cores=None, faults=None):
    """time_interleaved's method (calibrated loops, every entry once per repeat, PyTorch settled),
    keeping every sample: {key: [seconds per call, one per repeat]}. Samples of one repeat ran within
    about a second of each other, so their ratio is far less sensitive to the load of this shared
    machine than a ratio of medians. ``cores`` (a dict), if given, gets each entry's process CPU
    time per call alongside: {key: [CPU seconds per call, one per repeat]}; ``faults`` (a dict)
    the minor page faults per call: {key: [faults per call, one per repeat]}."""
    entries = {k: (e[0], e[1], e[2] if len(e) > 2 else False) for k, e in entries.items()}
    counts = {k: calibrate(fn, sync, target_s, settle=settle) for k, (fn, sync, settle) in entries.items()}
    samples = {k: [] for k in entries}
    cpu = {} if cores is None else cores
    cpu.update({k: [] for k in entries})
    flt = {} if faults is None else faults
    flt.update({k: [] for k in entries})
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            prev = False
            for k, (fn, sync, settle) in entries.items():
                c0, f0 = time.process_time(), _minor_faults()
                samples[k].append(_loop(fn, sync, counts[k], settle or prev) / counts[k])
                cpu[k].append((time.process_time() - c0) / counts[k])
                flt[k].append((_minor_faults() - f0) / counts[k])
                prev = settle
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return samples


def paired_ratio(a, b):
    """Median and quartiles of the per-repeat ratios a[i] / b[i]."""
    r = sorted(x / y for x, y in zip(a, b))
    q = statistics.quantiles(r, n=4) if len(r) >= 2 else [r[0]] * 3
    return statistics.median(r), q[0], q[2]


# ---- step table ----------------------------------------------------------------------------------------

def step_rows(ctx, name):
    builder, jax_fn, shape, opt_kind = WORKLOADS[name]
    torch = ctx.torch
    tracenn.manual_seed(0)
    model = builder(tnn)
    x_np, y_np = data(shape)
    x, y = tracenn.tensor(x_np), tracenn.tensor(y_np)
    n_check = ctx.check_steps
    rows = []

    jt = JaxTrain(params_of(model), jnp.asarray(x_np), jnp.asarray(y_np), jax_fn, opt_kind)
    rows.append(run_with_losses(BASE, jt, jt.sync, n_check, 1, note=jt.opt_name))

    ts = TracennStep(tracenn_copy(model, builder), x, y, opt_kind)
    try:
        rows.append(run_with_losses(TN, ts, ts.sync, n_check, 2))
    except Exception as e:  # noqa: BLE001 - report, keep the other rows
        rows.append(Row(TN, note=f"FAILED: {_reason(e)}"))
        ts = None

    # parameters after the checked steps: the compiled step's total update against the baseline's
    param_diff = None
    if ts is not None:
        param_diff = update_diff({n: np.array(p._value) for n, p in model.named_parameters()},
                                 {n: np.array(p._value) for n, p in ts.model.named_parameters()},
                                 {n: np.array(v) for n, v in jt.params.items()})
        try:
            call, sync = ts.bare()
            first_calls(call, sync, 1)  # fails here, not in the timed loop, if the internals moved
            rows.append(Row("tracenn program, bare jax.jit", call, sync, note="diagnostic: no runtime"))
        except Exception as e:  # noqa: BLE001 - reads runtime internals: say so when they moved
            rows.append(Row("tracenn program, bare jax.jit", note=f"unavailable: {_reason(e)}"))

    if not ctx.quick:  # eager kernels compile one by one: ~30 s of first steps for the transformer
        te = TracennStep(tracenn_copy(model, builder), x, y, opt_kind, compiled=False)
        rows.append(run_with_losses("tracenn eager step", te, te.sync, n_check, 1, note="context"))

    if torch is not None:
        tm, tx, ty, tsync = torch_setup(ctx, torch_copy(torch, model, builder), x_np, y_np)
        tt = TorchTrain(torch, tm, tx, ty, opt_kind)
        rows.append(run_with_losses("torch eager", tt, tsync, n_check, 1, settle=True))
        if ctx.torch_compile:
            try:
                tm2 = torch_setup(ctx, torch_copy(torch, model, builder), x_np, y_np)[0]
                tc = TorchTrain(torch, tm2, tx, ty, opt_kind, compiled=True)
                rows.append(run_with_losses("torch.compile(model)", tc, tsync, n_check, 1, settle=True))
            except Exception as e:  # noqa: BLE001 - no C++ toolchain and the like: a reason, not a crash
                rows.append(Row("torch.compile(model)", note=f"unavailable: {_reason(e)}"))
    return rows, ts, jt, param_diff


def step_table(ctx, name):
    rows, ts, jt, param_diff = step_rows(ctx, name)
    base = rows[0]
    scale = max(float(np.max(np.abs(base.losses))), 1e-6)
    print(f"\n== {name}: whole training step ({base.note})")
    for r in rows[1:]:
        if r.losses is not None:
            d = float(np.max(np.abs(r.losses - base.losses))) / scale
            ok = d <= 1e-3
            print(f"  losses of the first {len(base.losses)} steps, {r.name} vs {BASE}: max rel diff {d:.1e}"
                  + ("" if ok else "  (MISMATCH > 1e-3)"))
            r.loss_diff = d
    if param_diff is not None:
        print(f"  parameter updates over those steps, {TN} vs {BASE}: relative L2 difference {param_diff:.1e}"
              + ("" if param_diff <= 1e-3 else "  (MISMATCH > 1e-3)"))
    entries = {r.name: (r.fn, r.sync, r.settle) for r in rows if r.fn is not None}
    with tracenn.enable_grad():
        cpu, flt = {}, {}
        samples = time_paired(entries, repeats=ctx.repeats, target_s=ctx.target, cores=cpu, faults=flt)
    res = {k: statistics.median(v) for k, v in samples.items()}
    b = res[BASE]
    out = []
    for r in rows:
        r.time = res.get(r.name)
        first = " / ".join(fmt_ms(t) for t in r.first) or "-"
        paired = "-"
        if r.time is not None:
            r.paired = paired_ratio(samples[r.name], samples[BASE])
            paired = "{:.2f} [{:.2f}-{:.2f}]".format(*r.paired)
        r.cores = statistics.median(cpu[r.name]) / r.time if r.time else None
        r.faults = statistics.median(flt[r.name]) if r.time else None
        out.append([r.name, fmt_ms(r.time), "-" if r.time is None else f"{r.time / b:.2f}", paired,
                    "-" if r.cores is None else f"{r.cores:.2f}", "-" if r.faults is None else f"{r.faults:.0f}",
                    first, r.note])
    print_table(["  implementation", "ms/step", "vs jax.jit", "paired [quartiles]", "cores", "faults",
                 "first call(s) ms", "note"], out)
    parts = []
    for r in rows[:2]:
        for i, (t, (tr, xla)) in enumerate(zip(r.first, getattr(r, "splits", []))):
            parts.append(f"{r.name}{f' call {i + 1}' if r.name == TN else ''}: XLA compile {fmt_ms(xla)}, JAX trace "
                         f"+ lowering {fmt_ms(tr)}, the rest {fmt_ms(t - tr - xla)}")
    if parts:
        print("  first calls (ms; the rest: tracenn's own tracing and passes, Python, running the step):\n    "
              + "\n    ".join(parts))
    tn = next(r for r in rows if r.name == TN)
    summary = {"workload": name, "rows": {r.name: {"s": r.time, "first_s": r.first, "note": r.note,
                                                     "loss_diff": getattr(r, "loss_diff", None),
                                                     "first_split_s": getattr(r, "splits", None),
                                                     "paired": getattr(r, "paired", None),
                                                     "cores": getattr(r, "cores", None),
                                                     "faults_per_step": getattr(r, "faults", None),
                                                     "samples": samples.get(r.name)}
                                    for r in rows},
               "param_diff": param_diff}
    if tn.time is not None:
        ratio = tn.paired[0]
        verdict = [f"{ratio:.2f}x jax.jit (median of paired ratios)"]
        if name != "cnn":
            verdict.append(f"target <= {TARGET}: {'met' if ratio <= TARGET else 'NOT met'}")
        for other in ("torch eager", "torch.compile(model)"):
            o = res.get(other)
            if o is not None:
                pr = paired_ratio(samples[TN], samples[other])[0]
                verdict.append(f"{pr:.2f}x {other} ({'faster' if pr < 1 else 'NOT faster'})")
        print(f"  -> {TN}: " + "; ".join(verdict))
    return summary, ts, jt


# ---- per-phase table -------------------------------------------------------------------------------------

def phase_table(ctx, name, ts, jt):
    """Forward+loss, forward+backward and the whole step, each one program, per implementation."""
    builder, jax_fn, shape, opt_kind = WORKLOADS[name]
    torch = ctx.torch
    model = ts.model if ts is not None else None
    x, y = (ts.x, ts.y) if ts is not None else (None, None)
    entries, cols = {}, {}

    parts = jt.parts()
    keys = list(parts)  # forward + loss, value_and_grad, optimizer update
    entries["jax fwd"] = (parts[keys[0]], sync_jax)
    entries["jax fwd+bwd"] = (parts[keys[1]], sync_jax)
    entries["jax step"] = (jt, jt.sync)
    cols["jax.jit"] = ("jax fwd", "jax fwd+bwd", "jax step")

    if model is not None:
        loss_fn = tracenn.compile(lambda x, y: TF.cross_entropy(model(x), y))

        def tn_fwd():
            with tracenn.no_grad():
                return loss_fn(x, y)

        def fwd_bwd(x, y):
            model.zero_grad()
            loss = TF.cross_entropy(model(x), y)
            loss.backward()
            return loss

        fb = tracenn.compile(fwd_bwd)
        params = ts.params

        def sync_fb(r):
            jax.block_until_ready([r._value] + [p.grad._value for p in params])

        try:
            fb_call = lambda: fb(x, y)  # noqa: E731
            sync_fb(fb_call())
            entries["tn fwd"] = (tn_fwd, lambda r: jax.block_until_ready(r._value))
            entries["tn fwd+bwd"] = (fb_call, sync_fb)
            entries["tn step"] = (ts, ts.sync)
            cols["tracenn.compile"] = ("tn fwd", "tn fwd+bwd", "tn step")
        except Exception as e:  # noqa: BLE001
            print(f"  (tracenn phases unavailable: {_reason(e)})")

    if torch is not None:
        _, tm, tx, ty = _torch_phase_parts(ctx, name, model if model is not None else builder(tnn), jt)
        F = torch.nn.functional

        def t_fwd():
            return F.cross_entropy(tm.fwd(tx), ty)

        def t_fb():
            tm.opt.zero_grad()
            loss = F.cross_entropy(tm.fwd(tx), ty)
            loss.backward()
            return loss

        tsync = (lambda r: torch.cuda.synchronize()) if torch_on_gpu(ctx) else sync_none
        entries["torch fwd"] = (t_fwd, tsync, True)
        entries["torch fwd+bwd"] = (t_fb, tsync, True)
        entries["torch step"] = (tm, tsync, True)
        cols["torch eager"] = ("torch fwd", "torch fwd+bwd", "torch step")

    with tracenn.enable_grad():
        res = time_interleaved(entries, repeats=ctx.repeats, target_s=ctx.target)
    out = []
    for label, (f, fb_, st) in cols.items():
        a, b_, c = res[f], res[fb_], res[st]
        out.append([label, fmt_ms(a), fmt_ms(b_), fmt_ms(c), fmt_ms(b_ - a), fmt_ms(c - b_)])
    print(f"\n  {name}: where a step's time goes (ms; each column one program/call, medians; "
          "backward = (fwd+bwd) - fwd, update = step - (fwd+bwd))")
    print_table(["  implementation", "fwd+loss", "fwd+bwd", "step", "backward", "update+rest"], out)
    return {label: {"fwd": res[f], "fwd_bwd": res[fb_], "step": res[st]} for label, (f, fb_, st) in cols.items()}


def _torch_phase_parts(ctx, name, model, jt):
    torch = ctx.torch
    builder, _, shape, opt_kind = WORKLOADS[name]
    x_np, y_np = data(shape)
    m, tx, ty, _ = torch_setup(ctx, torch_copy(torch, model, builder), x_np, y_np)
    tm = TorchTrain(torch, m, tx, ty, opt_kind)
    return torch, tm, tx, ty


# ---- CNN layer table -----------------------------------------------------------------------------------

def layer_table(ctx):
    """Forward and forward+backward of each heavy CNN layer alone (batch 64), in three implementations."""
    from jax import lax
    torch = None if torch_on_gpu(ctx) else ctx.torch
    rng = np.random.default_rng(2)
    specs = [  # name, tracenn/torch module builder, input shape, input needs grad
        ("conv1 1->32 3x3 (in 28x28)", lambda nn: nn.Conv2d(1, 32, 3), (64, 1, 28, 28), False),
        ("conv2 32->64 3x3 (in 26x26)", lambda nn: nn.Conv2d(32, 64, 3), (64, 32, 26, 26), True),
        ("max_pool2d 2 (in 64x24x24)", lambda nn: nn.MaxPool2d(2), (64, 64, 24, 24), True),
        ("linear 9216->128", lambda nn: nn.Linear(9216, 128), (64, 9216), True),
    ]

    def jax_layer(kind):
        if kind.startswith("conv"):
            def f(p, x):
                dn = lax.conv_dimension_numbers(x.shape, p["weight"].shape, ("NCHW", "OIHW", "NCHW"))
                return lax.conv_general_dilated(x, p["weight"], (1, 1), "VALID", dimension_numbers=dn) \
                    + p["bias"][None, :, None, None]
        elif kind.startswith("max"):
            def f(p, x):
                return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        else:
            def f(p, x):
                return x @ p["weight"].T + p["bias"]
        return f

    out, result = [], {}
    for label, build, shape, x_grad in specs:
        tracenn.manual_seed(0)
        m = build(tnn)
        x_np = rng.standard_normal(shape).astype(np.float32)
        entries = {}
        # jax.jit
        f = jax_layer(label)
        p = {n: jnp.asarray(np.array(t._value)) for n, t in m.named_parameters()}
        xj = jnp.asarray(x_np)
        yj = jax.jit(f)(p, xj)
        gj = jnp.ones_like(yj) / yj.size
        argn = (0, 1) if x_grad else (0,)
        jf = jax.jit(f)
        jfb = jax.jit(lambda p, x, g: jax.grad(lambda p, x: jnp.vdot(f(p, x), g), argnums=argn)(p, x))
        entries["jax fwd"] = (lambda: jf(p, xj), sync_jax)
        entries["jax fwd+bwd"] = (lambda: jfb(p, xj, gj), sync_jax)
        # tracenn: the module compiled (forward, under no_grad), and a compiled function that runs
        # forward and backward as one program (the ops' own gradient lowerings), like the step does
        cm = tracenn.compile(m)
        xt = tracenn.tensor(x_np, requires_grad=x_grad)
        gt = tracenn.tensor(np.array(gj))
        tparams = list(m.parameters())

        def tn_fwd(cm=cm, xt=xt):
            with tracenn.no_grad():
                return cm(xt)

        cfb = tracenn.compile(_layer_fwd_bwd(m))

        def tn_fb(cfb=cfb, xt=xt, gt=gt, tparams=tparams):
            return [cfb(xt, gt)] + [q.grad for q in tparams]

        entries["tn fwd"] = (tn_fwd, lambda r: jax.block_until_ready(r._value))
        entries["tn fwd+bwd"] = (tn_fb, lambda r: jax.block_until_ready([t._value for t in r]))
        if torch is not None:
            tmod = build(torch.nn)
            tmod.load_state_dict({k: torch.from_numpy(np.array(v._value)) for k, v in m.state_dict().items()})
            txx = torch.from_numpy(x_np).requires_grad_(x_grad)
            tg = torch.from_numpy(np.array(gj))
            tparams_t = list(tmod.parameters())

            def t_fwd(tmod=tmod, txx=txx):
                with torch.no_grad():
                    return tmod(txx)

            def t_fb(tmod=tmod, txx=txx, tg=tg, tp=tparams_t):
                for q in tp:
                    q.grad = None
                txx.grad = None
                tmod(txx).backward(tg)

            entries["torch fwd"] = (t_fwd, sync_none, True)
            entries["torch fwd+bwd"] = (t_fb, sync_none, True)
        with tracenn.enable_grad():
            res = time_interleaved(entries, repeats=ctx.repeats, target_s=ctx.target)
        result[label] = res
        out.append([label] + [fmt_ms(res.get(k)) for k in ("jax fwd", "jax fwd+bwd", "tn fwd", "tn fwd+bwd",
                                                         "torch fwd", "torch fwd+bwd")])
    print("\n  cnn layers alone, batch 64 (ms; fwd+bwd: gradients of the parameters, and of the input "
          "except for conv1, as in the step):")
    print_table(["  layer", "jax fwd", "jax fwd+bwd", "tracenn fwd", "tracenn fwd+bwd", "torch fwd",
                 "torch fwd+bwd"], out)
    return result


def profile(ctx, name, ts, jt):
    """``--profile``: the steps' XLA operations by time (and ``--timeline``: one step by thread), and
    PyTorch eager's aten ops, through _profile.xla_profile."""
    progs = [("tracenn compiled step", ts, ts.lowered() if ts is not None else None),
             (BASE, jt, jt.step.lower(jt.params, jt.state, jt.x, jt.y))]
    torch_step = None
    if ctx.torch is not None and not torch_on_gpu(ctx):
        builder = WORKLOADS[name][0]
        torch_step = _torch_phase_parts(ctx, name, ts.model if ts is not None else builder(tnn), jt)[1]
    return xla_profile(name, progs, timeline=getattr(ctx, "timeline", False), torch=ctx.torch, torch_step=torch_step)


def _layer_fwd_bwd(m):
    # m must reach the function through its closure (or a global): tracenn.compile captures modules
    # from there; reached any other way (a default argument, an attribute of a plain object) its
    # parameters would be traced as constants
    def fwd_bwd(x, g):
        m.zero_grad()
        x.grad = None
        out = (m(x) * g).sum()
        out.backward()
        return x.grad if x.requires_grad else out  # (x.grad is not written back: returned instead)
    return fwd_bwd


# ---- peak memory (one subprocess per variant) -------------------------------------------------------------

def _proc_status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


def memory_probe(name, variant):
    """Run in a fresh process: warm up one step implementation, then measure (see the module doc)."""
    builder, jax_fn, shape, opt_kind = WORKLOADS[name]
    tracenn.manual_seed(0)
    model = builder(tnn)
    x_np, y_np = data(shape)
    if variant == "jax":
        step = JaxTrain(params_of(model), jnp.asarray(x_np), jnp.asarray(y_np), jax_fn, opt_kind)
        del model
        sync = step.sync
    else:
        step = TracennStep(model, tracenn.tensor(x_np), tracenn.tensor(y_np), opt_kind,
                           zero_grad_at_end=variant == "tracenn_zg")
        del model
        sync = step.sync
    for _ in range(4):
        sync(step())
    if variant == "jax":
        ma = step.step.lower(step.params, step.state, step.x, step.y).compile().memory_analysis()
    else:
        ma = step.lowered().compile().memory_analysis()
    for _ in range(2):
        sync(step())
    gc.collect()
    # what is alive when the program starts (the old .grad arrays too: the new ones are written into them)
    live = sum(a.nbytes for a in jax.live_arrays())
    hwm_growth = None
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        rss0 = _proc_status("VmRSS")
        for _ in range(5):
            sync(step())
        hwm_growth = _proc_status("VmHWM") - rss0
    except OSError:
        pass
    return {"live": live, "args": ma.argument_size_in_bytes, "out": ma.output_size_in_bytes,
            "alias": ma.alias_size_in_bytes, "temp": ma.temp_size_in_bytes,
            "xla_peak": getattr(ma, "peak_memory_in_bytes", None), "hwm_growth": hwm_growth}


def memory_table(ctx, names):
    out, result = [], {}
    for name in names:
        for variant, label in (("jax", BASE), ("tracenn", TN), ("tracenn_zg", TN + ", ending with zero_grad()")):
            cmd = [sys.executable, os.path.abspath(__file__), "--_memory", f"{name}:{variant}"]
            env = dict(os.environ, PYTHONPATH=_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            if p.returncode != 0 or not lines:
                out.append([name, label] + ["-"] * 7)
                print(f"  memory probe {name}:{variant} failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            m = json.loads(lines[-1])
            m["peak"] = m["live"] + m["out"] - m["alias"] + m["temp"]
            result[f"{name}:{variant}"] = m
            mb = lambda b: "-" if b is None else f"{b / 2**20:.2f}"  # noqa: E731
            out.append([name, label, mb(m["live"]), mb(m["args"]), mb(m["out"]), mb(m["alias"]), mb(m["temp"]),
                        mb(m["peak"]), mb(m["hwm_growth"])])
    print("\n== peak memory of one step (MiB; one fresh process per row)")
    print_table(["  workload", "implementation", "live at call", "program args", "outputs",
                 "aliased (donated)", "temporaries", "peak in step", "RSS peak growth"], out)
    print("  live at call: all live JAX arrays when the program starts; peak in step = that + outputs not aliased\n"
          "  to a donated input + XLA temporaries (compiled.memory_analysis()); RSS growth: VmHWM over 5 steps\n"
          "  after warm-up minus VmRSS before them")
    for name in names:
        a = result.get(f"{name}:jax")
        for v in ("tracenn", "tracenn_zg"):
            b = result.get(f"{name}:{v}")
            if a and b:
                print(f"  -> {name}: {v} / jax.jit peak in step {b['peak'] / a['peak']:.2f}x "
                      f"({'not higher' if b['peak'] <= a['peak'] * 1.001 else 'HIGHER'})")
    return result


# ---- main --------------------------------------------------------------------------------------------------

class Context:
    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="step tables only, short loops: no tracenn eager row, torch.compile, phases, layers, memory")
    ap.add_argument("--only", default="", help=f"comma-separated workloads: {', '.join(WORKLOADS)}")
    ap.add_argument("--repeats", type=int, default=0, help="timed loops per row (default 11; --quick 3)")
    ap.add_argument("--target", type=float, default=0.0, help="seconds per timed loop (default 0.3; --quick 0.05)")
    ap.add_argument("--phases", action="store_true", help="per-phase table for every workload (cnn: always)")
    ap.add_argument("--profile", action="store_true", help="per-XLA-op (and per-aten-op) time of each workload's steps")
    ap.add_argument("--timeline", action="store_true",
                    help="with --profile: one step's XLA operations by thread, and how busy each thread was")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="where every row runs (tracenn.set_default_device; torch .cuda())")
    ap.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads(N) (default: torch's)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-torch-compile", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-layers", action="store_true")
    ap.add_argument("--json", default="", help="also write the results to this file")
    ap.add_argument("--_memory", default="", help=argparse.SUPPRESS)  # WORKLOAD:VARIANT, subprocess use
    args = ap.parse_args(argv)
    if args._memory:
        name, variant = args._memory.split(":")
        print(json.dumps(memory_probe(name, variant)))
        return
    only = [w.strip() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")

    ctx = Context()
    ctx.device = args.device
    if args.device == "cuda":
        tracenn.set_default_device("cuda")
    ctx.quick = args.quick
    ctx.timeline = args.timeline
    ctx.repeats = args.repeats or (3 if args.quick else 11)
    ctx.target = args.target or (0.05 if args.quick else 0.3)
    ctx.check_steps = 3
    ctx.torch = None if args.no_torch else try_import_torch()
    ctx.torch_compile = ctx.torch is not None and not args.no_torch_compile and not args.quick
    torch = ctx.torch
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    t_start = perf()
    print("whole training step: tracenn.compile(train_step) vs a hand-written jax.jit step (float32)")
    dev = jnp.zeros(()).devices().pop()  # where new arrays go (tracenn makes that the CPU unless --device cuda)
    print(f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}); "
          + (f"torch {torch.__version__} ({'cuda' if torch_on_gpu(ctx) else f'{torch.get_num_threads()} threads'})"
             if torch else "torch: not available")
          + f"; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}; "
          + f"{ctx.repeats} interleaved repeats of ~{ctx.target:.2f} s loops, medians"
          + ("" if ctx.torch_compile else "; torch.compile: " + ("skipped (--quick)" if args.quick and torch
                                                                  else "off")))
    print(f"malloc (process-wide, every row): {tracenn.cpu.malloc_tuning()}")
    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.ones(2)))  # backend start-up off the first-call figures

    results = {"argv": sys.argv[1:], "load_start": os.getloadavg()[0], "workloads": {}}
    for name in only:
        t0 = perf()
        summary, ts, jt = step_table(ctx, name)
        if (name == "cnn" and not args.quick) or args.phases:
            summary["phases"] = phase_table(ctx, name, ts, jt)
        if name == "cnn" and not args.no_layers and not args.quick:
            summary["layers"] = layer_table(ctx)
            summary["convs"] = conv_profile(None if torch_on_gpu(ctx) else ctx.torch, ctx.repeats, ctx.target)
        if args.profile:
            summary["profile"] = profile(ctx, name, ts, jt)
        results["workloads"][name] = summary
        print(f"  ({perf() - t0:.0f} s)", file=sys.stderr, flush=True)
    if not args.no_memory and not args.quick:
        results["memory"] = memory_table(ctx, only)
    results["load_end"] = os.getloadavg()[0]
    print(f"\nload average at the end: {results['load_end']:.2f}; total {perf() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
