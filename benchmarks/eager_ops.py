"""Per-op eager latency: tracenn vs raw ``jax.numpy`` vs PyTorch, in one run.

    python benchmarks/eager_ops.py [--quick] [--ops add,matmul,...] [--no-torch]

Small tensors (64x128 float32) so the numbers are dispatch overhead, not arithmetic. For every op:
tracenn eager, the same computation in eager ``jax.numpy`` on the same arrays, a cached ``jax.jit``
of that ``jax.numpy`` function (the floor a jitted-kernel-per-op design can reach), and PyTorch eager
(when ``import torch`` works). Medians of interleaved timed loops after warm-up (see _timing.py).

Rows marked ``grad`` record autograd history (inputs require grad); the ``fwd+bwd`` rows run a
forward and a backward. The summary's median ratio to torch is over the forward rows without grad;
beside it, the same median for the jax.jit floor, and tracenn's median ratio to that floor.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

import tracenn  # noqa: E402

from _timing import fmt_ratio, fmt_us, print_table, time_interleaved, try_import_torch  # noqa: E402

M, N = 64, 128


def _tn_sync(r):
    if isinstance(r, (tuple, list)):
        r = r[-1]
    if isinstance(r, tracenn.Tensor):
        r._value.block_until_ready()
    tracenn.synchronize()


def _jax_sync(r):
    jax.block_until_ready(r)


def _torch_sync(r):
    pass  # PyTorch CPU ops are synchronous


def build_cases(torch):
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((M, N)).astype(np.float32)
    b_np = rng.standard_normal((M, N)).astype(np.float32)
    w_np = rng.standard_normal((N, M)).astype(np.float32)
    idx_np = rng.integers(0, M, size=(32,)).astype(np.int64)
    img_np = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    ker_np = rng.standard_normal((16, 3, 3, 3)).astype(np.float32)
    bias_np = rng.standard_normal((M,)).astype(np.float32)

    T = tracenn
    ta, tb, tw = T.tensor(a_np), T.tensor(b_np), T.tensor(w_np)
    tidx, timg, tker = T.tensor(idx_np), T.tensor(img_np), T.tensor(ker_np)
    # grad-requiring copies
    ga, gb = T.tensor(a_np, requires_grad=True), T.tensor(b_np, requires_grad=True)
    gw, gbias = T.tensor(w_np, requires_grad=True), T.tensor(bias_np, requires_grad=True)

    ja, jb, jw = jnp.asarray(a_np), jnp.asarray(b_np), jnp.asarray(w_np)
    jidx, jimg, jker, jbias = jnp.asarray(idx_np), jnp.asarray(img_np), jnp.asarray(ker_np), jnp.asarray(bias_np)

    if torch is not None:
        pa, pb, pw = torch.from_numpy(a_np), torch.from_numpy(b_np), torch.from_numpy(w_np)
        pidx, pimg, pker = torch.from_numpy(idx_np), torch.from_numpy(img_np), torch.from_numpy(ker_np)
        qa, qb = pa.clone().requires_grad_(), pb.clone().requires_grad_()
        qw, qbias = pw.clone().requires_grad_(), torch.from_numpy(bias_np).requires_grad_()
        F = torch.nn.functional

    def conv_j(x, k):
        return lax.conv_general_dilated(x, k, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def chain_j(w, bias, a):
        # the same chain as the tracenn/torch rows below
        h = jax.nn.relu(a @ w + bias)
        return jnp.sum(jax.nn.log_softmax(h, axis=-1) * 0.5)

    chain_grad = jax.grad(chain_j, argnums=(0, 1))
    chain_grad_jit = jax.jit(chain_grad)

    cases = []  # (name, kind, tracenn fn, jnp fn, jit fn, torch fn)

    def add_case(name, kind, tn, jn, jit_of=None, pt=None):
        jit_fn = None
        if jit_of is not None:
            f, args = jit_of
            jf = jax.jit(f)
            jit_fn = lambda: jf(*args)  # noqa: E731
        cases.append((name, kind, tn, jn, jit_fn, pt if torch is not None else None))

    fwd = "fwd"
    add_case("add", fwd, lambda: ta + tb, lambda: jnp.add(ja, jb), (jnp.add, (ja, jb)),
             lambda: pa + pb)
    add_case("add scalar (x + 1.0)", fwd, lambda: ta + 1.0, lambda: jnp.add(ja, 1.0),
             (lambda x: x + 1.0, (ja,)), lambda: pa + 1.0)
    add_case("mul", fwd, lambda: ta * tb, lambda: jnp.multiply(ja, jb), (jnp.multiply, (ja, jb)),
             lambda: pa * pb)
    add_case("matmul 64x128@128x64", fwd, lambda: ta @ tw, lambda: jnp.matmul(ja, jw),
             (jnp.matmul, (ja, jw)), lambda: pa @ pw)
    add_case("relu", fwd, lambda: ta.relu(), lambda: jax.nn.relu(ja), (jax.nn.relu, (ja,)),
             lambda: pa.relu())
    add_case("exp", fwd, lambda: ta.exp(), lambda: jnp.exp(ja), (jnp.exp, (ja,)), lambda: pa.exp())
    add_case("sum (all)", fwd, lambda: ta.sum(), lambda: jnp.sum(ja), (jnp.sum, (ja,)), lambda: pa.sum())
    add_case("sum(dim=1)", fwd, lambda: ta.sum(1), lambda: jnp.sum(ja, axis=1),
             (lambda x: jnp.sum(x, axis=1), (ja,)), lambda: pa.sum(1))
    add_case("mean (all)", fwd, lambda: ta.mean(), lambda: jnp.mean(ja), (jnp.mean, (ja,)),
             lambda: pa.mean())
    add_case("view(128,64)", fwd, lambda: ta.view(N, M), lambda: ja.reshape(N, M),
             (lambda x: x.reshape(N, M), (ja,)), lambda: pa.view(N, M))
    add_case("reshape(-1)", fwd, lambda: ta.reshape(-1), lambda: ja.reshape(-1),
             (lambda x: x.reshape(-1), (ja,)), lambda: pa.reshape(-1))
    add_case("x[:, 1:5]", fwd, lambda: ta[:, 1:5], lambda: ja[:, 1:5], (lambda x: x[:, 1:5], (ja,)),
             lambda: pa[:, 1:5])
    add_case("x[3] (int index)", fwd, lambda: ta[3], lambda: ja[3], (lambda x: x[3], (ja,)), lambda: pa[3])
    add_case("x[idx] (32 rows)", fwd, lambda: ta[tidx], lambda: ja[jidx], (lambda x, i: x[i], (ja, jidx)),
             lambda: pa[pidx])
    add_case("softmax(dim=-1)", fwd, lambda: T.softmax(ta, -1), lambda: jax.nn.softmax(ja, axis=-1),
             (lambda x: jax.nn.softmax(x, axis=-1), (ja,)), lambda: torch.softmax(pa, -1))
    add_case("log_softmax(dim=-1)", fwd, lambda: T.log_softmax(ta, -1),
             lambda: jax.nn.log_softmax(ja, axis=-1),
             (lambda x: jax.nn.log_softmax(x, axis=-1), (ja,)), lambda: torch.log_softmax(pa, -1))
    add_case("t().contiguous()", fwd, lambda: ta.t().contiguous(), lambda: ja.T,
             (lambda x: x.T, (ja,)), lambda: pa.t().contiguous())
    add_case("cat([a, b], 0)", fwd, lambda: T.cat([ta, tb], 0), lambda: jnp.concatenate([ja, jb], 0),
             (lambda x, y: jnp.concatenate([x, y], 0), (ja, jb)), lambda: torch.cat([pa, pb], 0))
    add_case("conv2d 8x3x32x32 * 16x3x3x3", fwd, lambda: T.conv2d(timg, tker), lambda: conv_j(jimg, jker),
             (conv_j, (jimg, jker)), lambda: F.conv2d(pimg, pker))

    # autograd recording (forward only, inputs require grad): the Node-creation cost
    g = "grad"
    add_case("add (grad rec.)", g, lambda: ga + gb, lambda: jnp.add(ja, jb), (jnp.add, (ja, jb)),
             lambda: qa + qb)
    add_case("matmul (grad rec.)", g, lambda: ga @ gw, lambda: jnp.matmul(ja, jw), (jnp.matmul, (ja, jw)),
             lambda: qa @ qw)

    # forward + backward
    def tn_add_bwd():
        ga.grad = None
        gb.grad = None
        (ga + gb).sum().backward()
        return ga.grad

    def pt_add_bwd():
        qa.grad = None
        qb.grad = None
        (qa + qb).sum().backward()
        return qa.grad

    add_grad = jax.grad(lambda x, y: jnp.sum(x + y), argnums=(0, 1))
    add_case("fwd+bwd: (a+b).sum()", "bwd", tn_add_bwd, lambda: add_grad(ja, jb),
             (add_grad, (ja, jb)), pt_add_bwd)

    def tn_chain():
        gw.grad = None
        gbias.grad = None
        h = (ta @ gw + gbias).relu()
        (T.log_softmax(h, -1) * 0.5).sum().backward()
        return gw.grad, gbias.grad

    def pt_chain():
        qw.grad = None
        qbias.grad = None
        h = (pa @ qw + qbias).relu()
        (torch.log_softmax(h, -1) * 0.5).sum().backward()
        return qw.grad, qbias.grad

    cases.append(("fwd+bwd: logsm(relu(a@w+b))*.5", "bwd", tn_chain, lambda: chain_grad(jw, jbias, ja),
                  lambda: chain_grad_jit(jw, jbias, ja), pt_chain if torch is not None else None))
    return cases


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter timed loops (~4x faster)")
    p.add_argument("--ops", default="", help="comma-separated substrings: run only matching rows")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--no-jit", action="store_true", help="skip the jax.jit column")
    p.add_argument("--stat", choices=("median", "min"), default="median", help="statistic over repeats")
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch.set_num_threads (default 1; 0: torch's default). At 64x128 torch's "
                        "intra-op threads barely matter, but on this shared 2-core machine its 2 "
                        "OpenMP threads turn background load into 100-1000x stalls")
    args = p.parse_args(argv)
    repeats, target = (7, 0.005) if args.quick else (21, 0.02)

    torch = None if args.no_torch else try_import_torch()
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    print(f"tracenn eager per-op latency, {M}x{N} float32, µs/op ({args.stat} of {repeats} loops of "
          f"~{target * 1e3:.0f} ms each)")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          + (f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not available")
          + f"; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}")
    cases = build_cases(torch)
    sel = [s.strip() for s in args.ops.split(",") if s.strip()]
    cases = [c for c in cases if not sel or any(s in c[0] for s in sel)]
    entries = {}
    for i, (name, kind, tn, jn, jt, pt) in enumerate(cases):
        entries[i, "tracenn"] = (tn, _tn_sync)
        entries[i, "jnp"] = (jn, _jax_sync)
        if jt is not None and not args.no_jit:
            entries[i, "jit"] = (jt, _jax_sync)
        if pt is not None:
            entries[i, "torch"] = (pt, _torch_sync, True)
    print(f"warming up and calibrating {len(entries)} loops ...", file=sys.stderr, flush=True)
    res = time_interleaved(entries, repeats=repeats, target_s=target, stat=args.stat,
                           progress=lambda r, n: print(f"  repeat {r}/{n}", file=sys.stderr, flush=True))
    rows, fwd_ratios, floor_ratios, jit_ratios = [], [], [], []
    for i, (name, kind, *_rest) in enumerate(cases):
        t_tn, t_jn, t_jt, t_pt = res[i, "tracenn"], res[i, "jnp"], res.get((i, "jit")), res.get((i, "torch"))
        if kind == "fwd" and t_pt is not None:
            fwd_ratios.append(t_tn / t_pt)
            if t_jt is not None:
                floor_ratios.append(t_jt / t_pt)
        if kind == "fwd" and t_jt is not None:
            jit_ratios.append(t_tn / t_jt)
        rows.append([name, kind, fmt_us(t_tn), fmt_us(t_jn), fmt_us(t_jt), fmt_us(t_pt),
                     fmt_ratio(t_tn, t_jn), fmt_ratio(t_tn, t_jt), fmt_ratio(t_tn, t_pt)])
    print()
    print_table(["op", "kind", "tracenn µs", "jnp µs", "jax.jit µs", "torch µs", "tn/jnp", "tn/jit",
                 "tn/torch"], rows)
    print()
    if fwd_ratios:
        print(f"median tracenn/torch over {len(fwd_ratios)} forward ops: "
              f"{statistics.median(fwd_ratios):.2f}x  (min {min(fwd_ratios):.2f}, max {max(fwd_ratios):.2f})")
    else:
        print("median tracenn/torch: n/a (PyTorch not available)")
    if floor_ratios:
        print(f"median jax.jit/torch over the same ops: {statistics.median(floor_ratios):.2f}x  (the floor of a "
              "jitted-kernel-per-op design: tracenn/torch cannot go below it)")
    if jit_ratios:
        print(f"median tracenn/jax.jit over {len(jit_ratios)} forward ops: {statistics.median(jit_ratios):.2f}x  "
              f"(min {min(jit_ratios):.2f}, max {max(jit_ratios):.2f}; 1.0 = at the floor)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (this machine is shared: above ~0.5 "
          "before the run, other work competed for the 2 cores and the numbers are noisier)")
    print("jnp = eager jax.numpy (for fwd+bwd rows: un-jitted jax.grad); jax.jit = the same function "
          "jitted and cached (per-op floor); torch = PyTorch eager CPU.")


if __name__ == "__main__":
    main()
