"""Which arrays a step keeps, and where its outputs land, against its time on a GPU. An experiment.

    python benchmarks/gpu_pipeline.py [--only mlp,transformer,cnn] [--steps 300] [--repeats 5]

Timed loops of N steps with one wait at the end (as train_step.py times them), µs per step,
median over repeats that interleave the rows of a table:

* plain JAX: a jitted step ``(p, x) -> p'`` (p donated) against the same step returning one more
  array ``h`` that the loop drops at once, keeps until the next step, or keeps and donates back
  to the next step (so the new ``h`` is written where the old one was);
* each workload of train_step.py: the jax.jit step; tracenn's compiled step as users call it
  (off the CPU: the donated state in and out as one flat array, ``entry.FLAT_STATE_PLATFORMS``,
  and the unread grads as another, ``FLAT_GRAD_PLATFORMS``); with the grads flat but the state
  arrays apart (the default before the twenty-third session); with every array apart and the new
  grads in fresh buffers (the default on the CPU).

The hypothesis it tests: XLA replays a step's CUDA graph as recorded only while the step's
buffers keep their addresses; outputs in fresh buffers move, donated ones stay.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracenn  # noqa: E402
import train_step as T  # noqa: E402
from tracenn.runtime import entry as _entry  # noqa: E402


def table(title, rows, steps, repeats):
    """rows: [(label, fn, sync)]; each repeat times every row once, in a rotating order."""
    for _, fn, sync in rows:
        for _ in range(5):
            sync(fn())
    times = {label: [] for label, _, _ in rows}
    for r in range(repeats):
        for k in range(len(rows)):
            label, fn, sync = rows[(k + r) % len(rows)]
            t0 = time.perf_counter()
            for _ in range(steps):
                out = fn()
            sync(out)
            times[label].append((time.perf_counter() - t0) / steps * 1e6)
    print(title, flush=True)
    base = statistics.median(times[rows[0][0]])
    for label, _, _ in rows:
        m = statistics.median(times[label])
        print(f"  {label:66s} {m:8.1f} µs/step  {m / base:5.2f}x", flush=True)


def plain_jax(steps, repeats):
    dev = jax.devices()[0]
    w = [jax.device_put(jnp.ones((512, 512), jnp.float32) * 1e-3, dev) for _ in range(8)]
    x = jax.device_put(jnp.ones((256, 512), jnp.float32), dev)

    def body(ws, x):
        h = x
        for a in ws:
            h = jnp.tanh(h @ a)
        g = [a * 0.999 + h.mean() * 1e-6 for a in ws]
        return g, h

    one = jax.jit(lambda ws, x: body(ws, x)[0], donate_argnums=0)
    two = jax.jit(lambda ws, x: body(ws, x), donate_argnums=0)
    back = jax.jit(lambda ws, x, old_h: body(ws, x), donate_argnums=(0, 2), keep_unused=True)
    state = {k: [jnp.copy(a) for a in w] for k in ("one", "drop", "keep", "back")}
    held = {"keep": None, "back": jnp.zeros((256, 512), jnp.float32)}

    def f_one():
        state["one"] = one(state["one"], x)
        return state["one"]

    def f_drop():
        state["drop"], _ = two(state["drop"], x)
        return state["drop"]

    def f_keep():
        state["keep"], held["keep"] = two(state["keep"], x)
        return state["keep"]

    def f_back():
        state["back"], held["back"] = back(state["back"], x, held["back"])
        return state["back"]
    table("plain JAX, 8 x (256x512 @ 512x512):", [
        ("step returning p' only", f_one, jax.block_until_ready),
        ("step returning p' and h, h dropped at once", f_drop, jax.block_until_ready),
        ("step returning p' and h, h kept until the next step", f_keep, jax.block_until_ready),
        ("... h kept, then donated to the next step for its new h", f_back, jax.block_until_ready),
    ], steps, repeats)


def workload(name, steps, repeats):
    builder, jax_fn, shape, opt_kind = T.WORKLOADS[name]
    tracenn.manual_seed(0)
    model = builder(T.tnn)
    x_np, y_np = T.data(shape)
    x, y = tracenn.tensor(x_np), tracenn.tensor(y_np)
    jt = T.JaxTrain(T.params_of(model), jnp.asarray(x_np), jnp.asarray(y_np), jax_fn, opt_kind)
    steps_of = {}
    here = frozenset((jax.devices()[0].platform,))
    flags = ("RECYCLE_GRAD_PLATFORMS", "FLAT_GRAD_PLATFORMS", "FLAT_STATE_PLATFORMS")
    defaults = [getattr(_entry, f) for f in flags]
    for variant, on in {"flat": (here, here, here), "grads": (here, here, frozenset()),
                        "fresh": (frozenset(), frozenset(), frozenset())}.items():
        for f, v in zip(flags, on):
            setattr(_entry, f, v)
        try:
            ts = T.TracennStep(T.tracenn_copy(model, builder), x, y, opt_kind)
            for _ in range(3):  # the steady-state program is the second one
                ts.sync(ts())
        finally:
            for f, v in zip(flags, defaults):
                setattr(_entry, f, v)
        steps_of[variant] = ts
    flat, grads, off = steps_of["flat"], steps_of["grads"], steps_of["fresh"]
    assert flat.fn._last.fstate is not None and grads.fn._last.fstate is None and grads.fn._last.flat is not None
    zg = T.TracennStep(T.tracenn_copy(model, builder), x, y, opt_kind, zero_grad_at_end=True)
    table(f"{name} step (train_step.py's):", [
        ("jax.jit step", jt, jt.sync),
        ("tracenn compiled step: state and .grad each one flat array (default now)", flat, flat.sync),
        ("tracenn compiled step: .grad one flat array, state arrays apart (before)", grads, grads.sync),
        ("tracenn compiled step: every array apart, new .grad in fresh buffers", off, off.sync),
        ("tracenn compiled step ending with zero_grad(): no .grad returned", zg, zg.sync),
    ], steps, repeats)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="mlp,transformer,cnn")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-plain", action="store_true")
    args = ap.parse_args()
    if tracenn.cuda.is_available():
        tracenn.set_default_device("cuda")
    print("jax", jax.__version__, jax.devices(), flush=True)
    if not args.no_plain:
        plain_jax(args.steps, args.repeats)
    for name in args.only.split(","):
        workload(name, args.steps, args.repeats)


if __name__ == "__main__":
    main()
