"""Eager MLP training step: tracenn vs PyTorch eager vs JAX (jitted whole step, and eager jax.grad).

    python benchmarks/eager_mlp.py [--quick] [--steps-check 5] [--loss gather|onehot]

MLP 784-512-512-10 (ReLU), batch 128, cross-entropy (log_softmax + NLL), SGD with momentum 0.9 and
lr 0.01 (PyTorch's rule: buf = momentum * buf + grad; p -= lr * buf; buf starts at zero, which gives
torch's first step buf = grad). Weights are stored (in, out) and applied as ``x @ W + b`` in every
framework. tracenn uses plain leaf tensors with ``requires_grad`` and an in-place momentum update
under ``tracenn.no_grad()`` (nn.Module and optim do not exist yet).

All versions start from the same weights and batch; the script first checks they produce the same
losses for a few steps, then times them in the same run (medians of interleaved timed loops).
PyTorch is timed with its default thread count and with 1 thread; the tracenn/torch headline uses
the faster of the two.
"""
from __future__ import annotations

import argparse
import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracenn  # noqa: E402

from _timing import fmt_ratio, print_table, time_interleaved, try_import_torch  # noqa: E402

SIZES = (784, 512, 512, 10)
BATCH = 128
LR, MOMENTUM = 0.01, 0.9


def init_params(seed=0):
    """torch.nn.Linear's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
    rng = np.random.default_rng(seed)
    params = []
    for fin, fout in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(fin)
        params.append(rng.uniform(-bound, bound, (fin, fout)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fout,)).astype(np.float32))
    return params


def make_batch(seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], size=(BATCH,)).astype(np.int64)
    return x, y


# ---- tracenn ------------------------------------------------------------------------------------

class TracennStep:
    def __init__(self, params_np, x_np, y_np, loss_kind):
        T = tracenn
        self.params = [T.tensor(p, requires_grad=True) for p in params_np]
        self.bufs = [T.zeros(p.shape) for p in params_np]
        self.x = T.tensor(x_np)
        self.y = T.tensor(y_np)
        self.y_col = self.y[:, None].clone()
        self.onehot = T.tensor(np.eye(SIZES[-1], dtype=np.float32)[y_np])
        self.loss_kind = loss_kind

    def loss(self):
        T = tracenn
        w1, b1, w2, b2, w3, b3 = self.params
        h = (self.x @ w1 + b1).relu()
        h = (h @ w2 + b2).relu()
        logits = h @ w3 + b3
        lp = T.log_softmax(logits, -1)
        if self.loss_kind == "gather":
            return -lp.gather(1, self.y_col).mean()
        return -(lp * self.onehot).sum() / BATCH

    def __call__(self):
        for p in self.params:
            p.grad = None
        loss = self.loss()
        loss.backward()
        with tracenn.no_grad():
            for p, buf in zip(self.params, self.bufs):
                buf.mul_(MOMENTUM).add_(p.grad)
                p.sub_(buf, alpha=LR)
        return loss

    @staticmethod
    def sync(loss):
        loss._value.block_until_ready()
        tracenn.synchronize()

    def loss_value(self, loss):
        return float(loss.item())


# ---- PyTorch --------------------------------------------------------------------------------------

class TorchStep:
    def __init__(self, torch, params_np, x_np, y_np, loss_kind, threads=None):
        self.torch = torch
        self.threads = threads or torch.get_num_threads()
        self.params = [torch.tensor(p, requires_grad=True) for p in params_np]
        self.bufs = [torch.zeros(p.shape) for p in params_np]
        self.x = torch.from_numpy(x_np)
        self.y_col = torch.from_numpy(y_np)[:, None].clone()
        self.onehot = torch.from_numpy(np.eye(SIZES[-1], dtype=np.float32)[y_np])
        self.loss_kind = loss_kind

    def loss(self):
        torch = self.torch
        w1, b1, w2, b2, w3, b3 = self.params
        h = (self.x @ w1 + b1).relu()
        h = (h @ w2 + b2).relu()
        logits = h @ w3 + b3
        lp = torch.log_softmax(logits, -1)
        if self.loss_kind == "gather":
            return -lp.gather(1, self.y_col).mean()
        return -(lp * self.onehot).sum() / BATCH

    def __call__(self):
        if self.torch.get_num_threads() != self.threads:
            self.torch.set_num_threads(self.threads)
        for p in self.params:
            p.grad = None
        loss = self.loss()
        loss.backward()
        with self.torch.no_grad():
            for p, buf in zip(self.params, self.bufs):
                buf.mul_(MOMENTUM).add_(p.grad)
                p.sub_(buf, alpha=LR)
        return loss

    @staticmethod
    def sync(loss):
        pass  # CPU PyTorch is synchronous

    def loss_value(self, loss):
        return float(loss.item())


# ---- JAX ----------------------------------------------------------------------------------------

def jax_loss(params, x, y, onehot, loss_kind):
    w1, b1, w2, b2, w3, b3 = params
    h = jax.nn.relu(x @ w1 + b1)
    h = jax.nn.relu(h @ w2 + b2)
    logits = h @ w3 + b3
    lp = jax.nn.log_softmax(logits, axis=-1)
    if loss_kind == "gather":
        return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))
    return -jnp.sum(lp * onehot) / BATCH


def jax_step(params, bufs, x, y, onehot, loss_kind):
    loss, grads = jax.value_and_grad(jax_loss)(params, x, y, onehot, loss_kind)
    bufs = [MOMENTUM * b + g for b, g in zip(bufs, grads)]
    params = [p - LR * b for p, b in zip(params, bufs)]
    return params, bufs, loss


class JaxStep:
    """``jit=True``: the whole step as one jitted function (the fast reference); ``jit=False``: the
    same code run eagerly (un-jitted ``jax.value_and_grad`` and eager jnp updates)."""

    def __init__(self, params_np, x_np, y_np, loss_kind, jit):
        self.params = [jnp.asarray(p) for p in params_np]
        self.bufs = [jnp.zeros(p.shape, jnp.float32) for p in params_np]
        self.x, self.y = jnp.asarray(x_np), jnp.asarray(y_np)
        self.onehot = jnp.asarray(np.eye(SIZES[-1], dtype=np.float32)[y_np])
        self.loss_kind = loss_kind
        if jit:
            self.fn = jax.jit(jax_step, static_argnums=(5,), donate_argnums=(0, 1))
        else:
            self.fn = jax_step

    def __call__(self):
        self.params, self.bufs, loss = self.fn(self.params, self.bufs, self.x, self.y, self.onehot,
                                               self.loss_kind)
        return loss

    @staticmethod
    def sync(loss):
        loss.block_until_ready()

    def loss_value(self, loss):
        return float(loss)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter timed loops")
    p.add_argument("--loss", choices=("gather", "onehot"), default="gather",
                   help="NLL via gather (default) or via a one-hot product")
    p.add_argument("--steps-check", type=int, default=5, help="steps compared for equal losses")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--no-jax-eager", action="store_true", help="skip the (slow) eager jax.grad row")
    p.add_argument("--stat", choices=("median", "min"), default="median", help="statistic over repeats")
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch threads for the 'torch eager' row (0: torch's default); a 1-thread "
                        "row is timed too, and the tracenn/torch headline uses the faster of the two")
    args = p.parse_args(argv)
    repeats, target = (7, 0.1) if args.quick else (21, 0.25)

    torch = None if args.no_torch else try_import_torch()
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    nthreads = torch.get_num_threads() if torch is not None else 0
    params_np = init_params()
    x_np, y_np = make_batch()

    def build():
        impls = {"tracenn eager": TracennStep(params_np, x_np, y_np, args.loss)}
        if torch is not None:
            impls["torch eager"] = TorchStep(torch, params_np, x_np, y_np, args.loss, nthreads)
            if nthreads != 1:
                impls["torch eager, 1 thread"] = TorchStep(torch, params_np, x_np, y_np, args.loss, 1)
        impls["jax.jit (whole step)"] = JaxStep(params_np, x_np, y_np, args.loss, jit=True)
        if not args.no_jax_eager:
            impls["jax eager (jax.grad)"] = JaxStep(params_np, x_np, y_np, args.loss, jit=False)
        return impls

    print(f"eager MLP train step {'-'.join(map(str, SIZES))}, batch {BATCH}, SGD momentum {MOMENTUM} "
          f"lr {LR}, cross-entropy via {args.loss}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          + (f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not available")
          + f"; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}")

    # Same numbers first: every implementation from the same start, a few steps.
    impls = build()
    losses = {k: [f.loss_value(f()) for _ in range(args.steps_check)] for k, f in impls.items()}
    ref = losses["torch eager"] if "torch eager" in losses else losses["jax.jit (whole step)"]
    worst = max(abs(a - b) for v in losses.values() for a, b in zip(v, ref))
    print("losses over the first steps: " + "; ".join(
        f"{k}: {' '.join(f'{l:.5f}' for l in v)}" for k, v in losses.items()))
    print(f"max |loss difference| vs {'torch' if 'torch eager' in losses else 'jax.jit'}: {worst:.2e}"
          + ("  (OK)" if worst < 1e-3 else "  (MISMATCH)"))

    impls = build()  # fresh state for timing
    entries = {k: (f, f.sync, k.startswith("torch")) for k, f in impls.items()}
    print(f"timing: {args.stat} of {repeats} interleaved loops of ~{target:.2f} s each ...", file=sys.stderr, flush=True)
    res = time_interleaved(entries, repeats=repeats, target_s=target, stat=args.stat)

    t_tn, t_jit = res["tracenn eager"], res["jax.jit (whole step)"]
    t_pts = [res[k] for k in ("torch eager", "torch eager, 1 thread") if k in res]
    t_pt = min(t_pts) if t_pts else None  # the faster PyTorch configuration is the target
    rows = []
    for k, t in res.items():
        rows.append([k, f"{t * 1e3:.3f}", fmt_ratio(t, t_pt), fmt_ratio(t, t_jit), fmt_ratio(t_tn, t)])
    print()
    rows = [[(f"torch eager ({nthreads} threads)" if r[0] == "torch eager" else r[0])] + r[1:] for r in rows]
    print_table(["implementation", "ms/step", "vs torch*", "vs jax.jit", "tracenn/this"], rows)
    if t_pt is not None:
        print("torch* = the faster of the PyTorch rows (its 2 OpenMP threads stall under background "
              "load on this shared 2-core machine; the 1-thread row does not)")
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if t_pt is not None:
        r = t_tn / t_pt
        print(f"tracenn/torch* = {r:.2f}  (target <= 2.0: {'met' if r <= 2.0 else 'NOT met'}); "
              f"tracenn/jax.jit = {t_tn / t_jit:.2f}; torch*/jax.jit = {t_pt / t_jit:.2f}")
    else:
        print(f"tracenn/jax.jit = {t_tn / t_jit:.2f} (PyTorch not available)")


if __name__ == "__main__":
    main()
