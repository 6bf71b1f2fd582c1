"""Does dropping a step's outputs right after dispatch stall the pipeline on a GPU? An experiment.

    python benchmarks/gpu_pipeline.py

Timed loops of N steps with one wait at the end (as train_step.py times them), µs per step, and the
host time of the dispatch alone (the loop without its final wait):

* plain JAX: a jitted step ``(p, x) -> p'`` (p donated) against the same step returning one more
  array that the loop drops at once, or keeps until the next step;
* the transformer workload of train_step.py: the jax.jit step; tracenn's program called bare
  (its gradient outputs dropped at once, or kept one step); the compiled step as users call it,
  and the same with the previous step's ``.grad`` arrays held one step longer.
"""
from __future__ import annotations

import os
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
sys.path.insert(0, _HERE)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracenn  # noqa: E402
import train_step as T  # noqa: E402

N = int(os.environ.get("PIPELINE_STEPS", "300"))


def timed(label, fn, sync):
    for _ in range(5):
        sync(fn())
    best, host = float("inf"), float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(N):
            r = fn()
        t1 = time.perf_counter()
        sync(r)
        t2 = time.perf_counter()
        if t2 - t0 < best:
            best, host = t2 - t0, t1 - t0
    print(f"  {label:62s} {best / N * 1e6:8.1f} µs/step   dispatch {host / N * 1e6:8.1f} µs/step", flush=True)


def plain_jax():
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
    state = {"w": [jnp.copy(a) for a in w], "held": None}

    def f_one():
        state["w"] = one(state["w"], x)
        return state["w"]

    def f_drop():
        state["w"], _ = two(state["w"], x)
        return state["w"]

    def f_keep():
        state["w"], state["held"] = two(state["w"], x)
        return state["w"]
    print("plain JAX, 8 x (256x512 @ 512x512):")
    timed("step returning p' only", f_one, jax.block_until_ready)
    timed("step returning p' and h, h dropped at once", f_drop, jax.block_until_ready)
    timed("step returning p' and h, h kept until the next step", f_keep, jax.block_until_ready)


def transformer():
    ctx = T.Context()
    ctx.device = "cuda" if tracenn.cuda.is_available() else "cpu"
    ctx.quick, ctx.timeline, ctx.torch, ctx.torch_compile = True, False, None, False
    ctx.check_steps, ctx.repeats, ctx.target = 3, 3, 0.05
    rows, ts, jt, _ = T.step_rows(ctx, "transformer")
    print("transformer step (train_step.py's):")
    timed("jax.jit step", jt, jt.sync)
    e = ts.fn._last
    g = e.graph
    names, wnames = list(g.state), [n for n, v in g.writes.items() if v is not None]
    st = e.state_tensors
    widx = [wnames.index(names[i]) for i in e.donate]
    if e.write_index is not None:
        widx = [e.write_index[j] for j in widx]
    kept = [st[i]._value for i in e.keep]
    ins = [ts.x._value, ts.y._value]
    rng = e.rng_args()
    box = [[jnp.copy(st[i]._value) for i in e.donate], None]

    def bare(hold):
        def call():
            outs, writes = e.fwd_donating(box[0], kept, rng, ins)
            box[0] = [writes[j] for j in widx]
            if hold:
                box[1] = writes
            return outs[0]
        return call

    def sync(r):
        jax.block_until_ready((r, box[0]))
    timed("tracenn program, bare: other outputs dropped at once", bare(False), sync)
    timed("tracenn program, bare: other outputs kept one step", bare(True), sync)
    timed("tracenn compiled step", ts, ts.sync)
    held = []

    def hold_grads():
        held[:] = [p.grad for p in ts.params]
        return ts()
    timed("tracenn compiled step, previous .grad arrays held one step", hold_grads, ts.sync)


if __name__ == "__main__":
    if tracenn.cuda.is_available():
        tracenn.set_default_device("cuda")
    print("jax", jax.__version__, jax.devices(), flush=True)
    plain_jax()
    transformer()
