"""Convolution and max-pool lowerings: the MNIST CNN's layers and train step, tracenn vs JAX vs PyTorch.

    python benchmarks/conv.py [--quick] [--only NAME[,NAME...]] [--no-torch] [--stat median|min]
    python benchmarks/conv.py --sweep [--quick]

Layers (float32, NCHW, no bias), each timed forward (``fwd``) and forward + backward to both the
input and the weight (``fwd+bwd``):

  conv1   Conv2d(1, 32, 3) on 64x1x28x28
  conv2   Conv2d(32, 64, 3) on 64x32x26x26
  conv3   Conv2d(64, 64, 3) on 64x64x30x30 (a ResNet-sized layer)
  pool    MaxPool2d(2) on 64x64x24x24

Columns:

* ``tracenn eager`` — ``tracenn.nn.functional`` on tensors (``.backward(g)`` for fwd+bwd): one cached
  jitted kernel per op, the backward kernel is the op's vjp rule.
* ``tracenn op, jit`` — the op's ``impl`` (``OPS[...].call``) under ``jax.jit`` (+ ``jax.vjp``): what a
  compiled tracenn program runs (the compiler lowers graphs with ``impl`` and differentiates the whole
  function with JAX, which then runs each op's ``custom_vjp``).
* ``op jit, slices`` — the same, traced with the batch-slice form of the CPU forward and input
  gradient (``linalg._SIDE_BY_SIDE`` off: what tracenn ran before the side-by-side form), for
  comparison. For the pool: traced with ``window._TILED`` off, the strided-slice lowering of any
  window geometry (what tracenn ran before its tiled, channels-minor lowering of 2x2 windows).
* ``raw jax`` — the baseline: ``lax.conv_general_dilated(..., 'VALID')`` / ``lax.reduce_window`` max,
  jitted, with JAX's own derivative.
* ``torch`` — PyTorch eager (``torch.nn.functional`` + ``autograd.grad``), when importable.

``train`` is one SGD step (lr 0.01) of Conv(1,32,3)-ReLU-Conv(32,64,3)-ReLU-MaxPool2-Flatten-
Linear(9216,128)-ReLU-Linear(128,10), batch 64, cross-entropy: ``raw jax`` and ``tracenn op, jit`` are
the same hand-written ``jax.jit(value_and_grad + update)``, the first with plain ``lax`` convolution
and pooling, the second calling the tracenn op impls; ``tracenn eager`` is ``nn.Sequential`` +
``optim.SGD``; ``torch`` the same model in PyTorch eager.

``--sweep`` times, for a table of convolution shapes (channels, image sizes, kernels, strides), the
op's jitted forward and input gradient in both CPU forms: the samples side by side in one wide
image (a strided input gradient: its sub-kernels' stride-1 input gradients), and batch slices (a
strided input gradient: JAX's lhs-dilated convolution); the ratio says which form pays for which
shapes.

Every row's result is checked against the raw-jax row before timing. Times are medians (or minima)
of interleaved repeats (_timing.py), so load bursts on the shared machine hit all rows alike; compare
ratios, which come from one run.
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
from jax import lax  # noqa: E402

import tracenn  # noqa: E402
import tracenn.nn.functional as TF  # noqa: E402
from tracenn.ops import OPS  # noqa: E402
from tracenn.ops import linalg, window  # noqa: E402

from _timing import fmt_ratio, print_table, time_interleaved, try_import_torch  # noqa: E402

BATCH = 64
CONVS = {"conv1": (1, 32, 28), "conv2": (32, 64, 26), "conv3": (64, 64, 30)}  # in channels, out channels, input size
POOL = (64, 24)  # channels, input size
DN = ("NCHW", "OIHW", "NCHW")
VALID = ((0, 0), (0, 0))
CONV_KEY = ((1, 1), VALID, (1, 1), 1)  # the conv op's static parameters: stride, padding, dilation, groups
POOL_KEY = ("max", (2, 2), (2, 2), VALID, (1, 1))  # reduce_window's: kind, window, strides, padding, dilation


# ---- the functions each column runs --------------------------------------------------------------

def jax_conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=DN)


def jax_pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def op_conv(x, w):
    return OPS["conv"].call((x, w), CONV_KEY)


def op_pool(x):
    return OPS["reduce_window"].call((x,), POOL_KEY)


def _fwd_bwd(f):
    """jit(x, w.., g -> cotangents of every argument of f)."""
    def run(*args):
        *xs, g = args
        return jax.vjp(f, *xs)[1](g)
    return jax.jit(run)


def _traced(f, *args, form):
    """``f`` (jitted), traced now with one form of the CPU lowerings forced: ``"slices"`` (batch
    slices) or ``"wide"`` (side by side, whatever the channels) for the convolutions, ``"untiled"``
    (tiled pooling off) for the pool. tracenn/ops/linalg.py and window.py read their switches at
    trace time; later calls reuse the trace."""
    saved = linalg._SIDE_BY_SIDE[0], linalg._WIDE_MIN_CHANNELS, window._TILED[0]
    if form == "untiled":
        window._TILED[0] = False
    else:
        linalg._SIDE_BY_SIDE[0] = form == "wide"
        linalg._WIDE_MIN_CHANNELS = 0 if form == "wide" else saved[1]
    try:
        jax.block_until_ready(f(*args))
    finally:
        linalg._SIDE_BY_SIDE[0], linalg._WIDE_MIN_CHANNELS, window._TILED[0] = saved
    return f


def _sync(r):
    jax.block_until_ready(r)


def _tn_sync(r):
    r = r[-1] if isinstance(r, (tuple, list)) else r
    if isinstance(r, tracenn.Tensor):
        r._value.block_until_ready()
    tracenn.synchronize()


def _no_sync(r):
    pass  # PyTorch CPU ops are synchronous


# ---- layer cases --------------------------------------------------------------------------------

def layer_cases(torch, rng):
    """(name, kind, {column: (fn, sync, settle)}, {column: result fn}) per row."""
    cases = []
    for name, (cin, cout, n) in CONVS.items():
        x_np = rng.standard_normal((BATCH, cin, n, n)).astype(np.float32)
        w_np = (rng.standard_normal((cout, cin, 3, 3)) / np.sqrt(9 * cin)).astype(np.float32)
        g_np = rng.standard_normal((BATCH, cout, n - 2, n - 2)).astype(np.float32)
        x, w, g = map(jnp.asarray, (x_np, w_np, g_np))
        tx, tw = tracenn.tensor(x_np), tracenn.tensor(w_np)
        gx, gw = tracenn.tensor(x_np, requires_grad=True), tracenn.tensor(w_np, requires_grad=True)
        tg = tracenn.tensor(g_np)
        jf, of = jax.jit(jax_conv), jax.jit(op_conv)
        jb, ob = _fwd_bwd(jax_conv), _fwd_bwd(op_conv)

        def tn_fwd(tx=tx, tw=tw):
            return TF.conv2d(tx, tw)

        def tn_bwd(gx=gx, gw=gw, tg=tg):
            gx.grad = gw.grad = None
            TF.conv2d(gx, gw).backward(tg)
            return gx.grad, gw.grad

        # (default arguments bind this iteration's arrays: the loop and the pool case below rebind names)
        # (new functions: jax.jit shares one trace cache between jits of the same function)
        sf = _traced(jax.jit(lambda x, w: op_conv(x, w)), x, w, form="slices")
        sb = _traced(_fwd_bwd(op_conv), x, w, g, form="slices")
        fwd = {"tracenn eager": tn_fwd, "tracenn op, jit": lambda f=of, x=x, w=w: f(x, w),
               "op jit, slices": lambda f=sf, x=x, w=w: f(x, w), "raw jax": lambda f=jf, x=x, w=w: f(x, w)}
        bwd = {"tracenn eager": tn_bwd, "tracenn op, jit": lambda f=ob, x=x, w=w, g=g: f(x, w, g),
               "op jit, slices": lambda f=sb, x=x, w=w, g=g: f(x, w, g),
               "raw jax": lambda f=jb, x=x, w=w, g=g: f(x, w, g)}
        if torch is not None:
            px, pw, pg = torch.from_numpy(x_np), torch.from_numpy(w_np), torch.from_numpy(g_np)
            qx, qw = px.clone().requires_grad_(), pw.clone().requires_grad_()
            F = torch.nn.functional
            fwd["torch"] = lambda px=px, pw=pw: F.conv2d(px, pw)
            bwd["torch"] = lambda qx=qx, qw=qw, pg=pg: torch.autograd.grad(F.conv2d(qx, qw), (qx, qw), pg)
        cases.append((f"{name} {cin}->{cout}, {BATCH}x{cin}x{n}x{n}", "fwd", fwd))
        cases.append((f"{name} {cin}->{cout}, {BATCH}x{cin}x{n}x{n}", "fwd+bwd", bwd))

    c, n = POOL
    x_np = rng.standard_normal((BATCH, c, n, n)).astype(np.float32)
    g_np = rng.standard_normal((BATCH, c, n // 2, n // 2)).astype(np.float32)
    x, g = jnp.asarray(x_np), jnp.asarray(g_np)
    tx, gx, tg = tracenn.tensor(x_np), tracenn.tensor(x_np, requires_grad=True), tracenn.tensor(g_np)
    jf, of = jax.jit(jax_pool), jax.jit(op_pool)
    jb, ob = _fwd_bwd(jax_pool), _fwd_bwd(op_pool)

    def tn_pool_bwd():
        gx.grad = None
        TF.max_pool2d(gx, 2).backward(tg)
        return gx.grad

    sf = _traced(jax.jit(lambda x: op_pool(x)), x, form="untiled")
    sb = _traced(_fwd_bwd(op_pool), x, g, form="untiled")
    fwd = {"tracenn eager": lambda: TF.max_pool2d(tx, 2), "tracenn op, jit": lambda: of(x),
           "op jit, slices": lambda: sf(x), "raw jax": lambda: jf(x)}
    bwd = {"tracenn eager": tn_pool_bwd, "tracenn op, jit": lambda: ob(x, g), "op jit, slices": lambda: sb(x, g),
           "raw jax": lambda: jb(x, g)}
    if torch is not None:
        px, pg = torch.from_numpy(x_np), torch.from_numpy(g_np)
        qx = px.clone().requires_grad_()
        fwd["torch"] = lambda: torch.nn.functional.max_pool2d(px, 2)
        bwd["torch"] = lambda: torch.autograd.grad(torch.nn.functional.max_pool2d(qx, 2), (qx,), pg)
    cases.append((f"pool 2x2, {BATCH}x{c}x{n}x{n}", "fwd", fwd))
    cases.append((f"pool 2x2, {BATCH}x{c}x{n}x{n}", "fwd+bwd", bwd))
    return cases


# ---- the train step -----------------------------------------------------------------------------

def init_params(rng):
    def uniform(shape, fan_in):  # torch's default init bound for weights and biases
        b = 1 / np.sqrt(fan_in)
        return rng.uniform(-b, b, shape).astype(np.float32)
    return {"c1w": uniform((32, 1, 3, 3), 9), "c1b": uniform((32,), 9),
            "c2w": uniform((64, 32, 3, 3), 288), "c2b": uniform((64,), 288),
            "f1w": uniform((128, 9216), 9216), "f1b": uniform((128,), 9216),
            "f2w": uniform((10, 128), 128), "f2b": uniform((10,), 128)}


def make_jax_step(conv, pool, lr=0.01):
    def loss_fn(p, x, y):
        h = jax.nn.relu(conv(x, p["c1w"]) + p["c1b"][:, None, None])
        h = jax.nn.relu(conv(h, p["c2w"]) + p["c2b"][:, None, None])
        h = pool(h).reshape(x.shape[0], -1)
        h = jax.nn.relu(h @ p["f1w"].T + p["f1b"])
        logits = h @ p["f2w"].T + p["f2b"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    def step(p, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        return jax.tree.map(lambda a, b: a - lr * b, p, grads), loss

    return jax.jit(step)


def _seq(nn, params, tensor):
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))
    names = {"0.weight": "c1w", "0.bias": "c1b", "2.weight": "c2w", "2.bias": "c2b",
             "6.weight": "f1w", "6.bias": "f1b", "8.weight": "f2w", "8.bias": "f2b"}
    m.load_state_dict({k: tensor(params[v].copy()) for k, v in names.items()})
    return m


def train_case(torch, rng):
    params = init_params(rng)
    x_np = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y_np = rng.integers(0, 10, BATCH).astype(np.int64)
    x, y = jnp.asarray(x_np), jnp.asarray(y_np, jnp.int32)
    state = {}
    runs, first_loss = {}, {}
    for col, (conv, pool) in {"raw jax": (jax_conv, jax_pool), "tracenn op, jit": (op_conv, op_pool),
                              "op jit, slices": (op_conv, op_pool)}.items():
        step = make_jax_step(conv, pool)
        state[col] = {k: jnp.asarray(v) for k, v in params.items()}
        if col == "op jit, slices":
            _traced(step, dict(state[col]), x, y, form="slices")
        first_loss[col] = float(step(state[col], x, y)[1])

        def run(col=col, step=step):
            state[col], loss = step(state[col], x, y)
            return loss

        runs[col] = run
    try:
        model = _seq(tracenn.nn, params, tracenn.tensor)
        opt = tracenn.optim.SGD(model.parameters(), lr=0.01)
        tx, ty = tracenn.tensor(x_np), tracenn.tensor(y_np)

        def tn_step():
            opt.zero_grad()
            loss = tracenn.nn.functional.cross_entropy(model(tx), ty)
            loss.backward()
            opt.step()
            return loss

        first_loss["tracenn eager"] = float(tn_step().item())
        runs["tracenn eager"] = tn_step
    except Exception as e:  # noqa: BLE001 - the eager stack is optional context here
        print(f"tracenn eager train step unavailable: {type(e).__name__}: {e}", file=sys.stderr)
    if torch is not None:
        pmodel = _seq(torch.nn, params, torch.from_numpy)
        popt = torch.optim.SGD(pmodel.parameters(), lr=0.01)
        px, py = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def torch_step():
            popt.zero_grad()
            loss = torch.nn.functional.cross_entropy(pmodel(px), py)
            loss.backward()
            popt.step()
            return loss

        first_loss["torch"] = float(torch_step())
        runs["torch"] = torch_step
    for col, v in first_loss.items():
        assert abs(v - first_loss["raw jax"]) < 1e-4, f"train step: {col} loss {v} != raw jax {first_loss['raw jax']}"
    return ("train step MNIST CNN, batch 64", "SGD", runs)


# ---- the shape sweep: side by side vs batch slices -----------------------------------------------

SWEEP = [  # (x shape, out channels, kernel, padding, stride)
    ((64, 1, 28, 28), 32, 3, 0, 1), ((64, 1, 28, 28), 16, 3, 0, 1), ((64, 32, 26, 26), 64, 3, 0, 1),
    ((256, 32, 26, 26), 64, 3, 0, 1), ((128, 3, 32, 32), 16, 3, 1, 1), ((128, 3, 32, 32), 32, 3, 1, 1),
    ((128, 16, 32, 32), 16, 3, 1, 1), ((128, 16, 32, 32), 32, 3, 1, 1), ((32, 64, 56, 56), 64, 3, 1, 1),
    ((32, 64, 56, 56), 128, 3, 1, 2), ((32, 64, 56, 56), 128, 1, 0, 2), ((32, 64, 28, 28), 128, 1, 0, 1),
    ((16, 3, 224, 224), 64, 7, 3, 2), ((16, 16, 300), 32, 5, 2, 1),
    ((64, 64, 32, 32), 128, 4, 1, 2)]  # (its dx is ConvTranspose2d(128, 64, 4, 2, 1) on 64x128x16x16)


def sweep(repeats, target, torch):
    rng = np.random.default_rng(1)
    rows = []
    for shape, o, k, p, st in SWEEP:
        nd = len(shape) - 2
        x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        w = jnp.asarray(rng.standard_normal((o, shape[1]) + (k,) * nd) / np.sqrt(k ** nd * shape[1]), jnp.float32)
        key = ((st,) * nd, ((p, p),) * nd, (1,) * nd, 1)
        fwd = lambda x, w: linalg.conv_forward(x, w, *key)  # noqa: E731
        g = jnp.asarray(rng.standard_normal(jax.eval_shape(fwd, x, w).shape), jnp.float32)
        dx = lambda g, w: linalg.conv_input_grad(g, w, x.shape, *key)  # noqa: E731
        runs = {(kind, form): (_traced(jax.jit(lambda *a, f=f: f(*a)), *args, form=form), args)
                for kind, f, args in (("fwd", fwd, (x, w)), ("dx", dx, (g, w))) for form in ("wide", "slices")}
        for kind in ("fwd", "dx"):
            a, b = (np.asarray(runs[kind, m][0](*runs[kind, m][1])) for m in ("wide", "slices"))
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()), err_msg=f"{shape} {kind}")
        entries = {key_: (lambda f=f, a=a: f(*a), _sync, False) for key_, (f, a) in runs.items()}
        res = time_interleaved(entries, repeats=repeats, target_s=target, stat="median")
        row = [f"{shape} -> {o}, k{k} p{p} s{st}", "wide" if linalg._wide_pays(x, w, 1) else "slices"]
        for kind in ("fwd", "dx"):
            row += [f"{res[kind, 'slices'] * 1e3:.2f}", f"{res[kind, 'wide'] * 1e3:.2f}",
                    fmt_ratio(res[kind, "wide"], res[kind, "slices"])]
        rows.append(row)
        print(f"  {row[0]}", file=sys.stderr, flush=True)
    print()
    print_table(["x -> out channels", "used", "fwd slices", "fwd wide", "wide/slices", "dx slices", "dx wide",
                 "wide/slices"], rows)
    print("\nused: the form tracenn picks for the shape (ops/linalg.py::_wide_pays); dx: the input gradient; for a\n"
          "strided convolution, 'slices' is JAX's lhs-dilated form and 'wide' the sub-kernels' input gradients")
    depthwise_table(repeats, target, torch)


DEPTHWISE = [  # (x shape, kernel, padding, stride): groups = channels, one output channel each
    ((32, 64, 56, 56), 3, 1, 1), ((32, 128, 28, 28), 3, 1, 2), ((16, 96, 56, 56), 7, 3, 1)]


def depthwise_table(repeats, target, torch):
    """Depthwise convolutions: the op's jitted lowering (a sum of strided slices on the CPU) against
    ``lax.conv_general_dilated`` with ``feature_group_count`` and JAX's derivative, forward and
    forward + both gradients."""
    rng = np.random.default_rng(2)
    rows = []
    for shape, k, p, st in DEPTHWISE:
        c = shape[1]
        x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
        w = jnp.asarray(rng.standard_normal((c, 1, k, k)) / k, jnp.float32)
        key = ((st, st), ((p, p), (p, p)), (1, 1), c)

        def op(x, w):
            return OPS["conv"].call((x, w), key)

        def raw(x, w):
            return lax.conv_general_dilated(x, w, key[0], key[1], dimension_numbers=DN, feature_group_count=c)

        g = jnp.asarray(rng.standard_normal(jax.eval_shape(raw, x, w).shape), jnp.float32)
        runs = {("fwd", "op jit"): (jax.jit(op), (x, w)), ("fwd", "raw jax"): (jax.jit(raw), (x, w)),
                ("fwd+bwd", "op jit"): (_fwd_bwd(op), (x, w, g)), ("fwd+bwd", "raw jax"): (_fwd_bwd(raw), (x, w, g))}
        for kind in ("fwd", "fwd+bwd"):
            a, b = (jax.tree.leaves(runs[kind, col][0](*runs[kind, col][1])) for col in ("op jit", "raw jax"))
            for u, v in zip(a, b):
                np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-4, atol=1e-4 * float(np.abs(v).max()))
        entries = {key_: (lambda f=f, a=a: f(*a), _sync, False) for key_, (f, a) in runs.items()}
        if torch is not None:
            px, pw, pg = (torch.from_numpy(np.array(a)) for a in (x, w, g))
            qx, qw = px.clone().requires_grad_(), pw.clone().requires_grad_()
            F = torch.nn.functional
            entries["fwd", "torch"] = (lambda: F.conv2d(px, pw, stride=st, padding=p, groups=c), _no_sync, True)
            entries["fwd+bwd", "torch"] = (lambda: torch.autograd.grad(F.conv2d(qx, qw, stride=st, padding=p, groups=c),
                                                                         (qx, qw), pg), _no_sync, True)
        res = time_interleaved(entries, repeats=repeats, target_s=target, stat="median")
        row = [f"{shape}, k{k} p{p} s{st}"]
        for kind in ("fwd", "fwd+bwd"):
            t = {col: res.get((kind, col)) for col in ("op jit", "raw jax", "torch")}
            row += [f"{t['op jit'] * 1e3:.2f}", f"{t['raw jax'] * 1e3:.2f}",
                    f"{t['torch'] * 1e3:.2f}" if t["torch"] else "-", fmt_ratio(t["op jit"], t["raw jax"])]
        rows.append(row)
    print("\ndepthwise convolutions (groups = channels), ms:")
    print_table(["x", "fwd op jit", "raw jax", "torch", "op/jax", "fwd+bwd op jit", "raw jax", "torch", "op/jax"], rows)


# ---- checks and main ----------------------------------------------------------------------------

def _np(r):
    if isinstance(r, (tuple, list)):
        return [_np(v) for v in r]
    if isinstance(r, tracenn.Tensor):
        return np.asarray(r._value)
    if hasattr(r, "detach"):
        return r.detach().numpy()
    return np.asarray(r)


def check(cases):
    """Every column of a layer row computes what the raw-jax column does (rtol 1e-4)."""
    for name, kind, runs in cases:
        ref = _np(runs["raw jax"]())
        for col, fn in runs.items():
            got = _np(fn())
            for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
                np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()),
                                           err_msg=f"{name} {kind}: {col} differs from raw jax")


COLUMNS = ("tracenn eager", "tracenn op, jit", "op jit, slices", "raw jax", "torch")
SYNC = {"tracenn eager": _tn_sync, "tracenn op, jit": _sync, "op jit, slices": _sync, "raw jax": _sync,
        "torch": _no_sync}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter timed loops")
    p.add_argument("--only", default="", help="comma-separated substrings of row names (conv1, conv2, pool, train)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--stat", choices=("median", "min"), default="median", help="statistic over repeats")
    p.add_argument("--torch-threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    p.add_argument("--sweep", action="store_true", help="convolution shapes: side by side vs batch slices")
    args = p.parse_args(argv)
    repeats, target = (5, 0.1) if args.quick else (15, 0.25)
    torch = None if args.no_torch else try_import_torch()
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    if args.sweep:
        print(f"conv forms on the CPU, float32, ms per call (median of {repeats} interleaved loops); "
              f"jax {jax.__version__}; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}")
        sweep(repeats, target, torch)
        return
    print(f"conv / max-pool lowerings, float32, ms per call ({args.stat} of {repeats} interleaved loops of "
          f"~{target * 1e3:.0f} ms)")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          + (f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not available")
          + f"; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(0)
    sel = [s.strip() for s in args.only.split(",") if s.strip()]
    cases = [c for c in layer_cases(torch, rng) if not sel or any(s in c[0] for s in sel)]
    check(cases)
    if not sel or any(s in "train" for s in sel):
        cases.append(train_case(torch, rng))
    entries = {}
    for i, (_, _, runs) in enumerate(cases):
        for col, fn in runs.items():
            entries[i, col] = (fn, SYNC[col], col == "torch")
    print(f"warming up and calibrating {len(entries)} loops ...", file=sys.stderr, flush=True)
    res = time_interleaved(entries, repeats=repeats, target_s=target, stat=args.stat,
                           progress=lambda r, n: print(f"  repeat {r}/{n}", file=sys.stderr, flush=True))
    rows = []
    for i, (name, kind, runs) in enumerate(cases):
        t = {col: res.get((i, col)) for col in COLUMNS}
        rows.append([name, kind] + [f"{v * 1e3:.2f}" if v is not None else "-" for v in t.values()]
                    + [fmt_ratio(t[c], t["torch"]) for c in ("tracenn eager", "tracenn op, jit", "raw jax")]
                    + [fmt_ratio(t["tracenn op, jit"], t["raw jax"]), fmt_ratio(t["tracenn op, jit"], t["op jit, slices"])])
    print()
    print_table(["case", "kind", "tracenn eager", "tracenn op, jit", "op jit, slices", "raw jax", "torch",
                 "eager/torch", "op jit/torch", "jax/torch", "op jit/jax", "op jit/slices"], rows)
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (shared 2-core machine: compare ratios)")


if __name__ == "__main__":
    main()
