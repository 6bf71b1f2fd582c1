"""tracenn.func's transforms against the same computation in raw JAX and in torch.func.

    python benchmarks/func_transforms.py [--quick] [--repeats N] [--no-torch] [--torch-threads N] [--only NAME]

Workloads (float32, CPU):

  per_sample_grads  per-sample gradients of cross-entropy through an MLP 784-128-10, batch 64:
                    ``vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)`` with ``functional_call``
  ensemble          8 MLPs 784-128-10 stacked with ``stack_module_state``, one batch of 64 through all
                    of them: ``vmap(fmodel, in_dims=(0, 0, None))(params, buffers, x)``
  jacobian          ``jacrev`` of a 64 -> 64 tanh layer at one point (a 64 x 64 Jacobian)
  dropout_per_sample_grads
                    per_sample_grads with dropout (p=0.5) after the hidden layer, masks drawn per
                    sample: ``vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")``. Extra
                    row: the same transform forced onto the eager fallback (op by op under JAX's
                    transforms: how random functions ran before they were traced into programs),
                    checked to give the same numbers under the same seed. The random streams differ
                    from JAX's and torch's, so only tracenn's two rows are compared.

Rows: ``jax.jit`` (the baseline: the same function in jax.numpy, ``jax.jit(jax.vmap(jax.grad(...)))``
and so on, called with the same arrays), ``tracenn.func`` (the transform as torch code calls it; each
call passes tensors and gets tensors), ``torch.func`` (when PyTorch is installed), and for the
per-sample gradients the loop a PyTorch user writes without torch.func (one ``backward()`` per
sample, tracenn eager). Times are medians of interleaved loops (benchmarks/_timing.py); "first call"
includes tracing and XLA compilation. Outputs are compared with the baseline's before timing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import tracenn  # noqa: E402
import tracenn.nn.functional as TF  # noqa: E402
from tracenn import nn as tnn  # noqa: E402
from tracenn.func import functional_call, grad, jacrev, stack_module_state, vmap  # noqa: E402

from _timing import print_table, time_interleaved, try_import_torch  # noqa: E402

BATCH, D_IN, HIDDEN, D_OUT, MODELS = 64, 784, 128, 10, 8


def _np(x):
    if isinstance(x, tracenn.Tensor):
        return np.asarray(x.detach()._value)
    if hasattr(x, "detach"):
        return x.detach().numpy()
    return np.asarray(x)


def _sync_tree(r):
    jax.block_until_ready(jax.tree_util.tree_map(lambda t: t._value if isinstance(t, tracenn.Tensor) else t, r,
                                                 is_leaf=lambda t: isinstance(t, tracenn.Tensor)))
    return r


def _none(r):
    return r


def _mlp(nn):
    return nn.Sequential(nn.Linear(D_IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, D_OUT))


def _jax_mlp(p, x):
    h = jnp.maximum(x @ p["0.weight"].T + p["0.bias"], 0)
    return h @ p["2.weight"].T + p["2.bias"]


def _torch_copy(torch, model):
    tm = _mlp(torch.nn)
    tm.load_state_dict({k: torch.tensor(_np(v)) for k, v in model.state_dict().items()})
    return tm


def _first(fn, sync):
    t = time.perf_counter()
    r = sync(fn())
    return time.perf_counter() - t, r


def _per_sample_setup(model):
    """The per-sample-gradient workloads' data, ``model``'s parameters (detached) and the loss of
    one sample through ``functional_call``."""
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, D_IN)).astype(np.float32)
    y_np = rng.integers(0, D_OUT, BATCH)
    x, y = tracenn.tensor(x_np), tracenn.tensor(y_np)
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, a, b):
        return TF.cross_entropy(functional_call(model, p, (a.unsqueeze(0),)), b.unsqueeze(0))
    return x_np, y_np, x, y, params, loss


def per_sample_grads(torch):
    tracenn.manual_seed(0)
    model = _mlp(tnn)
    x_np, y_np, x, y, params, loss = _per_sample_setup(model)
    f = vmap(grad(loss), in_dims=(None, 0, 0))

    jp = {k: jnp.asarray(_np(v)) for k, v in params.items()}
    jx, jy = jnp.asarray(x_np), jnp.asarray(y_np)

    def jloss(p, a, b):
        logits = _jax_mlp(p, a[None])
        return -jax.nn.log_softmax(logits)[0, b]
    jf = jax.jit(jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0)))

    def loop():  # the per-sample loop without torch.func
        out = []
        for i in range(BATCH):
            model.zero_grad()
            TF.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
            out.append([p.grad for p in model.parameters()])
        return out[-1]
    rows = [("jax.jit", lambda: jf(jp, jx, jy), jax.block_until_ready, "base"),
            ("tracenn.func", lambda: f(params, x, y), _sync_tree, "tn"),
            ("tracenn eager loop", loop, _sync_tree, None)]
    ref = lambda r: _np(r["0.weight"])  # noqa: E731
    if torch is not None:
        tm = _torch_copy(torch, model)
        tp = {k: v.detach() for k, v in tm.named_parameters()}
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)

        def tl(p, a, b):
            return torch.nn.functional.cross_entropy(torch.func.functional_call(tm, p, (a.unsqueeze(0),)),
                                                     b.unsqueeze(0))
        tf = torch.func.vmap(torch.func.grad(tl), in_dims=(None, 0, 0))
        rows.append(("torch.func", lambda: tf(tp, tx, ty), _none, "torch"))
    return "per_sample_grads", rows, ref


def ensemble(torch):
    tracenn.manual_seed(0)
    models = [_mlp(tnn) for _ in range(MODELS)]
    params, buffers = stack_module_state(models)
    params = {k: v.detach() for k, v in params.items()}
    x_np = np.random.default_rng(0).standard_normal((BATCH, D_IN)).astype(np.float32)
    x = tracenn.tensor(x_np)
    f = vmap(lambda p, b, a: functional_call(models[0], (p, b), (a,)), in_dims=(0, 0, None))
    jp = {k: jnp.asarray(_np(v)) for k, v in params.items()}
    jx = jnp.asarray(x_np)
    jf = jax.jit(jax.vmap(_jax_mlp, in_axes=(0, None)))
    rows = [("jax.jit", lambda: jf(jp, jx), jax.block_until_ready, "base"),
            ("tracenn.func", lambda: f(params, buffers, x), _sync_tree, "tn")]
    if torch is not None:
        tms = [_torch_copy(torch, m) for m in models]
        tp, tb = torch.func.stack_module_state(tms)
        tp = {k: v.detach() for k, v in tp.items()}
        tx = torch.tensor(x_np)
        tf = torch.func.vmap(lambda p, b, a: torch.func.functional_call(tms[0], (p, b), (a,)), in_dims=(0, 0, None))
        rows.append(("torch.func", lambda: tf(tp, tb, tx), _none, "torch"))
    return "ensemble", rows, _np


def jacobian(torch):
    tracenn.manual_seed(0)
    rng = np.random.default_rng(0)
    w_np = rng.standard_normal((64, 64)).astype(np.float32) / 8
    v_np = rng.standard_normal(64).astype(np.float32)
    w, v = tracenn.tensor(w_np), tracenn.tensor(v_np)
    f = jacrev(lambda a: (w @ a).tanh())
    jw, jv = jnp.asarray(w_np), jnp.asarray(v_np)
    jf = jax.jit(jax.jacrev(lambda a: jnp.tanh(jw @ a)))
    rows = [("jax.jit", lambda: jf(jv), jax.block_until_ready, "base"),
            ("tracenn.func", lambda: f(v), _sync_tree, "tn")]
    if torch is not None:
        tw, tv = torch.tensor(w_np), torch.tensor(v_np)
        tf = torch.func.jacrev(lambda a: (tw @ a).tanh())
        rows.append(("torch.func", lambda: tf(tv), _none, "torch"))
    return "jacobian", rows, _np


def dropout_per_sample_grads(torch):
    from tracenn.func import _transforms
    tracenn.manual_seed(0)
    model = tnn.Sequential(tnn.Linear(D_IN, HIDDEN), tnn.ReLU(), tnn.Dropout(0.5), tnn.Linear(HIDDEN, D_OUT))
    x_np, y_np, x, y, params, loss = _per_sample_setup(model)
    f = vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")
    eager = vmap(grad(loss), in_dims=(None, 0, 0), randomness="different")
    make = _transforms._Program.make
    _transforms._Program.make = classmethod(lambda cls, *a: None)  # its first call caches "no program"
    try:
        eager(params, x, y)
    finally:
        _transforms._Program.make = make
    got = []  # (a transform of its own for the program: f's first timed call still traces)
    for g in (vmap(grad(loss), in_dims=(None, 0, 0), randomness="different"), eager):
        tracenn.manual_seed(1)
        got.append(_np(g(params, x, y)["0.weight"]))
    err = float(np.max(np.abs(got[0] - got[1])))
    print(f"  tracenn.func vs its eager fallback, same seed: max difference {err:.1e} "
          f"({'OK' if err < 1e-5 else 'MISMATCH'})")

    jp = {k: jnp.asarray(_np(v)) for k, v in params.items()}
    jx, jy, key = jnp.asarray(x_np), jnp.asarray(y_np), jax.random.PRNGKey(0)

    def jloss(p, a, b, k):
        h = jnp.maximum(a[None] @ p["0.weight"].T + p["0.bias"], 0)
        h = jnp.where(jax.random.uniform(k, h.shape) >= 0.5, h * 2.0, 0.0)
        logits = h @ p["3.weight"].T + p["3.bias"]
        return -jax.nn.log_softmax(logits)[0, b]
    jf = jax.jit(lambda p, a, b, k: jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0, 0))(
        p, a, b, jax.random.split(k, a.shape[0])))
    step = [0]

    def jcall():
        step[0] += 1
        return jf(jp, jx, jy, jax.random.fold_in(key, step[0]))
    rows = [("jax.jit", jcall, jax.block_until_ready, "base"),
            ("tracenn.func", lambda: f(params, x, y), _sync_tree, "tn"),
            ("tracenn.func eager fallback", lambda: eager(params, x, y), _sync_tree, None)]
    if torch is not None:
        tm = torch.nn.Sequential(torch.nn.Linear(D_IN, HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                 torch.nn.Linear(HIDDEN, D_OUT))
        tp = {k: v.detach() for k, v in tm.named_parameters()}
        tx, ty = torch.tensor(x_np), torch.tensor(y_np)

        def tl(p, a, b):
            return torch.nn.functional.cross_entropy(torch.func.functional_call(tm, p, (a.unsqueeze(0),)),
                                                     b.unsqueeze(0))
        tf = torch.func.vmap(torch.func.grad(tl), in_dims=(None, 0, 0), randomness="different")
        rows.append(("torch.func", lambda: tf(tp, tx, ty), _none, "torch"))
    return "dropout_per_sample_grads", rows, None


def run(workload, torch, repeats, target_s):
    name, rows, ref = workload(torch)
    print(f"\n== {name}")
    first, values = {}, {}
    for label, fn, sync, _ in rows:
        first[label], r = _first(fn, sync)
        values[label] = ref(r) if ref is not None and label != "tracenn eager loop" else None
    base = values["jax.jit"]
    for label, v in values.items():
        if v is not None and label != "jax.jit":
            err = float(np.max(np.abs(v - base)) / max(float(np.max(np.abs(base))), 1e-30))
            print(f"  {label} vs jax.jit: max relative difference {err:.1e} ({'OK' if err < 1e-4 else 'MISMATCH'})")
    entries = {label: (fn, sync, role == "torch") for label, fn, sync, role in rows}
    times = time_interleaved(entries, repeats=repeats, target_s=target_s)
    b = times["jax.jit"]
    print_table(["implementation", "ms/call", "vs jax.jit", "first call ms"],
                [(label, f"{times[label] * 1e3:.3f}", f"{times[label] / b:.2f}", f"{first[label] * 1e3:.0f}")
                 for label, *_ in rows])
    tn = times["tracenn.func"]
    tail = f"; {tn / times['torch.func']:.2f}x torch.func" if "torch.func" in times else ""
    print(f"  -> tracenn.func: {tn / b:.2f}x jax.jit{tail}\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 short repeats")
    ap.add_argument("--repeats", type=int, default=0)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=0)
    ap.add_argument("--only", choices=[w.__name__ for w in WORKLOADS], help="run one workload")
    args = ap.parse_args(argv)
    torch = None if args.no_torch else try_import_torch()
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    repeats = args.repeats or (3 if args.quick else 9)
    target = 0.05 if args.quick else 0.2
    print(f"tracenn.func vs raw JAX (float32); jax {jax.__version__} on {jax.devices()[0].platform}; "
          f"torch: {torch.__version__ if torch is not None else 'not available'}; {os.cpu_count()} cpus; "
          f"load average {os.getloadavg()[0]:.2f}; {repeats} interleaved repeats, medians")
    for w in WORKLOADS:
        if args.only in (None, w.__name__):
            run(w, torch, repeats, target)


WORKLOADS = (per_sample_grads, ensemble, jacobian, dropout_per_sample_grads)


if __name__ == "__main__":
    main()
