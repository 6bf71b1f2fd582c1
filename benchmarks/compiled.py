"""tracenn.compile against a hand-written jax.jit of the same computation (issue 6's performance goals).

    python benchmarks/compiled.py [--quick] [--only NAME[,NAME...]] [--breakdown] [--json PATH]

Workloads (float32, CPU; names for ``--only``):

  call_linear        per-call overhead: Linear(16, 16), batch 1, called in a loop
  call_mlp8          per-call overhead: 8 x (Linear(64, 64) + ReLU), batch 1
  train_mlp          train step: MLP 784-512-512-10, batch 128, cross-entropy, SGD momentum 0.9
  train_transformer  train step: 2-layer TransformerEncoder (d_model 128, 4 heads, ffn 512,
                     dropout 0, post-norm, batch_first) + mean-pool + Linear(128, 10), seq 64,
                     batch 32, cross-entropy, Adam
  infer_mlp          inference: the MLP above, eval mode, no_grad, batch 256
  infer_cnn          inference: MNIST CNN Conv(1,32,3)-ReLU-Conv(32,64,3)-ReLU-MaxPool2-Flatten-
                     Linear(9216,128)-ReLU-Linear(128,10), eval mode, no_grad, batch 256

Rows of every table:

* ``jax.jit`` — the baseline: the same function written by hand in jax.numpy/lax, jitted, called
  with the *same* initial weights and inputs (XLA copies of the tracenn model's arrays). The CNN's
  convolutions are ``lax.conv_general_dilated(..., "VALID")`` as a JAX user writes them. Parameters are a
  pytree argument, as a JAX user would pass them. Training steps are one jitted function
  (value_and_grad + the optimizer update, buffers donated); the update is optax's when optax is
  importable, else a hand-written one with the same math (the output says which).
* ``tracenn compiled`` — ``tracenn.compile(model)``. Per-call rows are timed under
  ``tracenn.no_grad()`` and with grad enabled (the program then is ``jax.vjp`` of the graph and the
  output carries a ``grad_fn``: the call also returns the residuals of the backward). Training rows
  are compiled forward + eager-tape ``loss.backward()`` (the compiled program's jitted pullback) +
  the eager ``tracenn.optim`` step; two variants: the model compiled with the loss computed eagerly,
  and a compiled function returning the loss. For context (not the issue's target) two more:
  the compiled loss function with ``tracenn.compile`` of ``opt.step()`` (the update as one
  program), and the whole step (forward, ``backward()``, ``opt.step()``) compiled as one program.
  And ``jax.jit split as the eager loss splits it``: the baseline's step cut into the programs the
  eager-loss row runs (forward ``jax.vjp`` with residuals, loss with its gradient, pullback, donated
  update), no tracenn in it: what that structure itself costs over one program.
* ``tracenn program, bare jax.jit`` (diagnostic) — the graph tracenn lowered, called through a plain
  ``jax.jit`` with no runtime around it: separates the runtime's per-call cost from the program's.
* ``tracenn eager``, ``torch eager`` and ``torch.compile`` for context (torch rows only when torch is
  importable; torch.compile prints "unavailable: reason" when it fails, and is skipped by
  ``--quick``).

Before timing, every row's output (or the losses of the first training steps) is compared with
the baseline's. Times are medians over interleaved repeats (``time_rotated`` below, on
benchmarks/_timing.py's loops: each repeat runs one calibrated loop of every row, in an order that
rotates, so load bursts on a shared machine hit all rows alike). A row's ratio to the baseline is
the median of its per-repeat ratios (each row's loop against the baseline's loop of the same
repeat), which drifts in machine speed over a run do not move as they move a ratio of medians; the
"first call" column is the wall time of the very first call, including tracing and XLA compilation
(for training rows, the whole first step: forward compile, backward compile, optimizer kernels).
``--breakdown`` adds, for the training workloads, the time of each phase of the tracenn step
(forward / backward / optimizer) with a sync after each, next to the baseline's jitted parts.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import sys
import time

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
from tracenn import nn as tnn  # noqa: E402
from tracenn.compiler.lower import lower as _lower_graph  # noqa: E402  (diagnostic row only)

from _timing import _loop, calibrate, print_table, time_interleaved, try_import_torch  # noqa: E402

try:
    import optax  # noqa: F401
except Exception:  # noqa: BLE001 - optax is optional: the baseline then spells the update out
    optax = None

perf = time.perf_counter
WORKLOADS = ("call_linear", "call_mlp8", "train_mlp", "train_transformer", "infer_mlp", "infer_cnn")
TARGETS = {"call": 1.3, "train": 1.3, "infer": 1.1}  # issue 6: ratio to the jax.jit baseline
LR_SGD, MOMENTUM, LR_ADAM = 0.01, 0.9, 1e-3
BETAS, EPS = (0.9, 0.999), 1e-8


# ---- small helpers ----------------------------------------------------------------------------

def _np(x):
    """A host copy of a tracenn tensor, torch tensor or jax array."""
    if isinstance(x, tracenn.Tensor):
        return np.array(x.detach()._value)
    if hasattr(x, "detach"):
        return x.detach().numpy().copy()
    return np.array(x)


def sync_jax(r):
    jax.block_until_ready(r)


def sync_tracenn(r):
    jax.block_until_ready([t._value for t in (r if isinstance(r, (list, tuple)) else [r])])


def sync_none(r):
    pass  # CPU PyTorch is synchronous


class Row:
    """One implementation of a workload: ``fn()`` runs one unit of work, ``sync(fn())`` waits on it."""

    def __init__(self, name, fn, sync, *, settle=False, first_s=None, value=None, note="", role=""):
        self.name, self.fn, self.sync, self.settle = name, fn, sync, settle
        self.first_s, self.value, self.note, self.role = first_s, value, note, role
        self.time = self.ratio = None


class Unavailable(Row):
    def __init__(self, name, reason):
        super().__init__(name, None, None, note=f"unavailable: {reason}")


def _fmt_first(s):
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


def _torch_compiled_call(torch, module, x):
    def make():
        c = torch.compile(module)
        return lambda: c(x)
    return make


def first_call(fn, sync):
    """(seconds, result) of the first call of ``fn``, waited for."""
    t0 = perf()
    r = fn()
    sync(r)
    return perf() - t0, r


def _reason(e) -> str:
    s = f"{type(e).__name__}: {e}".strip().splitlines()
    return s[0][:160] if s else type(e).__name__


def params_of(model):
    """The tracenn model's parameters as fresh jax arrays, by state_dict name: XLA-made copies of
    the same values (the baseline donates its buffers, which must not be the model's; and its
    arrays are made the way tracenn's are, not wrapped from numpy memory)."""
    return {n: jnp.copy(p._value) for n, p in model.named_parameters()}


def torch_copy(torch, tmodel, builder):
    """The same architecture built with torch.nn, loaded with the tracenn model's weights."""
    m = builder(torch.nn)
    m.load_state_dict({k: torch.from_numpy(_np(v)) for k, v in tmodel.state_dict().items()})
    return m


def tracenn_copy(tmodel, builder):
    m = builder(tnn)
    m.load_state_dict(tmodel.state_dict())
    return m


def try_torch_compile(torch, name, make_fn, sync=sync_none):
    """A torch.compile row, or an Unavailable row with the reason (no C++ toolchain, ...)."""
    try:
        fn = make_fn()
        t, r = first_call(fn, sync)
        return Row(name, fn, sync, settle=True, first_s=t, value=r)
    except Exception as e:  # noqa: BLE001 - any failure is reported as a reason, not raised
        return Unavailable(name, _reason(e))


# ---- models (built from either nn namespace: tracenn.nn or torch.nn) ---------------------------

def build_linear(nn):
    return nn.Linear(16, 16)


def build_mlp8(nn):
    layers = []
    for _ in range(8):
        layers += [nn.Linear(64, 64), nn.ReLU()]
    return nn.Sequential(*layers)


def build_mlp(nn):
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def build_cnn(nn):
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Linear(128, 10))


D_MODEL, HEADS, FFN, SEQ, LAYERS = 128, 4, 512, 64, 2


def build_transformer(nn):
    class EncoderClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FFN, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            self.head = nn.Linear(D_MODEL, 10)

        def forward(self, x):
            return self.head(self.encoder(x).mean(1))

    return EncoderClassifier()


# ---- the same functions in plain JAX -----------------------------------------------------------

def jax_linear(p, x, name=""):
    return x @ p[name + "weight"].T + p[name + "bias"]


def jax_seq_mlp(p, x, idx, relu_last):
    for k, i in enumerate(idx):
        x = jax_linear(p, x, f"{i}.")
        if relu_last or k < len(idx) - 1:
            x = jax.nn.relu(x)
    return x


def jax_linear16(p, x):
    return jax_linear(p, x)


def jax_mlp8(p, x):
    return jax_seq_mlp(p, x, range(0, 16, 2), True)


def jax_mlp(p, x):
    return jax_seq_mlp(p, x, (0, 2, 4), False)


def jax_cnn(p, x):
    def conv(x, i):
        dn = lax.conv_dimension_numbers(x.shape, p[f"{i}.weight"].shape, ("NCHW", "OIHW", "NCHW"))
        y = lax.conv_general_dilated(x, p[f"{i}.weight"], (1, 1), "VALID", dimension_numbers=dn)
        return y + p[f"{i}.bias"][None, :, None, None]

    x = jax.nn.relu(conv(x, 0))
    x = jax.nn.relu(conv(x, 2))
    x = lax.reduce_window(x, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    x = x.reshape(x.shape[0], -1)
    x = jax.nn.relu(jax_linear(p, x, "6."))
    return jax_linear(p, x, "8.")


def _layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * w + b


def jax_transformer(p, x):
    B, S, D = x.shape
    H, Dh = HEADS, D_MODEL // HEADS
    for i in range(LAYERS):
        pre = f"encoder.layers.{i}."
        qkv = x @ p[pre + "self_attn.in_proj_weight"].T + p[pre + "self_attn.in_proj_bias"]
        q, k, v = (t.reshape(B, S, H, Dh).transpose(0, 2, 1, 3) for t in jnp.split(qkv, 3, axis=-1))
        a = jax.nn.softmax((q @ k.transpose(0, 1, 3, 2)) / math.sqrt(Dh), axis=-1)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(B, S, D)
        o = jax_linear(p, o, pre + "self_attn.out_proj.")
        x = _layer_norm(x + o, p[pre + "norm1.weight"], p[pre + "norm1.bias"])
        f = jax_linear(p, jax.nn.relu(jax_linear(p, x, pre + "linear1.")), pre + "linear2.")
        x = _layer_norm(x + f, p[pre + "norm2.weight"], p[pre + "norm2.bias"])
    return jax_linear(p, x.mean(1), "head.")


def jax_cross_entropy(logits, y):
    lp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.mean(jnp.take_along_axis(lp, y[:, None], axis=1))


# ---- the baseline's optimizer: optax when importable, else the same math by hand ----------------

def make_jax_optimizer(kind):
    """(name, init(params) -> state, update(params, grads, state) -> (params, state))."""
    if optax is not None:
        tx = optax.sgd(LR_SGD, momentum=MOMENTUM) if kind == "sgd" else \
            optax.adam(LR_ADAM, b1=BETAS[0], b2=BETAS[1], eps=EPS)

        def update(params, grads, state):
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return f"optax.{kind}", tx.init, update
    tm = jax.tree_util.tree_map
    if kind == "sgd":
        # torch/optax rule: buf = momentum * buf + grad (buf starts at zero); p -= lr * buf
        def init(params):
            return tm(jnp.zeros_like, params)

        def update(params, grads, bufs):
            bufs = tm(lambda b, g: MOMENTUM * b + g, bufs, grads)
            return tm(lambda p, b: p - LR_SGD * b, params, bufs), bufs

        return "hand-written SGD momentum (optax not installed)", init, update
    b1, b2 = BETAS

    def init(params):
        return tm(jnp.zeros_like, params), tm(jnp.zeros_like, params), jnp.zeros((), jnp.float32)

    def update(params, grads, state):
        m, v, t = state
        t = t + 1
        m = tm(lambda m, g: b1 * m + (1 - b1) * g, m, grads)
        v = tm(lambda v, g: b2 * v + (1 - b2) * g * g, v, grads)
        bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
        params = tm(lambda p, m, v: p - LR_ADAM * (m / bc1) / (jnp.sqrt(v / bc2) + EPS), params, m, v)
        return params, (m, v, t)

    return "hand-written Adam (optax not installed)", init, update


# ---- per-call overhead ---------------------------------------------------------------------------

def workload_call(ctx, name, builder, jax_fn, in_shape):
    torch = ctx.torch
    tracenn.manual_seed(0)
    model = builder(tnn)
    x_np = np.random.default_rng(1).standard_normal(in_shape).astype(np.float32)
    x = tracenn.tensor(x_np)
    p = params_of(model)
    xj = jnp.copy(x._value)
    tables = []
    for grad in (False, True):
        mode = "grad enabled" if grad else "no_grad"
        rows = []
        f = jax.jit(lambda p, x: jax_fn(p, x))  # a new function: its first call compiles afresh
        t, r = first_call(lambda: f(p, xj), sync_jax)
        rows.append(Row("jax.jit", lambda: f(p, xj), sync_jax, first_s=t, value=r, role="base"))
        if grad:
            fv = jax.jit(lambda p, x: jax.vjp(lambda p: jax_fn(p, x), p))
            t, r = first_call(lambda: fv(p, xj), sync_jax)
            rows.append(Row("jax.jit of jax.vjp (out + residuals)", lambda: fv(p, xj), sync_jax, first_s=t,
                            value=r[0], role="vjp"))

        cm = tracenn.compile(model)
        ctxm = tracenn.enable_grad if grad else tracenn.no_grad
        with ctxm():
            t, r = first_call(lambda: cm(x), sync_tracenn)
            rows.append(Row("tracenn compiled", lambda: cm(x), sync_tracenn, first_s=t, value=r, role="tn"))
            if grad:
                assert r.grad_fn is not None, "a grad-enabled compiled call must give its output a grad_fn"
        rows.append(_bare_program_row(cm, x, grad))
        with ctxm():
            t, r = first_call(lambda: model(x), sync_tracenn)
        rows.append(Row("tracenn eager", lambda: model(x), sync_tracenn, first_s=t, value=r))
        if torch is not None:
            tm = torch_copy(torch, model, builder)
            tx = torch.from_numpy(x_np)
            tctx = torch.enable_grad if grad else torch.no_grad
            with tctx():
                t, r = first_call(lambda: tm(tx), sync_none)
            rows.append(Row("torch eager", lambda: tm(tx), sync_none, settle=True, first_s=t, value=r))
            if ctx.torch_compile:
                with tctx():
                    rows.append(try_torch_compile(torch, "torch.compile", _torch_compiled_call(torch, tm, tx)))
        tables.append(Table(f"{name} ({mode})", rows, grad_mode=grad, target=TARGETS["call"]))
    return tables


def _bare_program_row(cm, x, grad):
    """The program tracenn lowered for ``cm``'s latest call, run through a plain jax.jit (reads
    runtime internals: reported as unavailable, not raised, when they change)."""
    try:
        return _bare_program(cm, x, grad)
    except Exception as e:  # noqa: BLE001
        return Unavailable("tracenn program, bare jax.jit", _reason(e))


def _bare_program(cm, x, grad):
    entry = cm._last
    run = _lower_graph(entry.graph)
    state = [t._value for t in entry.state_tensors]
    xs = [x._value]
    if not grad:
        f = jax.jit(lambda s, i: run(s, [], i)[0])
    else:
        f = jax.jit(lambda s, i: jax.vjp(lambda s: run(s, [], i)[0], s))
    t, r = first_call(lambda: f(state, xs), sync_jax)
    return Row("tracenn program, bare jax.jit", lambda: f(state, xs), sync_jax, first_s=t,
               value=r[0][0] if grad else r[0])


# ---- inference ---------------------------------------------------------------------------------------

def workload_infer(ctx, name, builder, jax_fn, in_shape):
    torch = ctx.torch
    tracenn.manual_seed(0)
    model = builder(tnn).eval()
    x_np = np.random.default_rng(1).standard_normal(in_shape).astype(np.float32)
    x = tracenn.tensor(x_np)
    p = params_of(model)
    xj = jnp.copy(x._value)
    rows = []
    f = jax.jit(jax_fn)
    t, r = first_call(lambda: f(p, xj), sync_jax)
    rows.append(Row("jax.jit", lambda: f(p, xj), sync_jax, first_s=t, value=r, role="base"))
    cm = tracenn.compile(model)
    with tracenn.no_grad():
        t, r = first_call(lambda: cm(x), sync_tracenn)
        rows.append(Row("tracenn compiled", lambda: cm(x), sync_tracenn, first_s=t, value=r, role="tn"))
        rows.append(_bare_program_row(cm, x, False))
        t, r = first_call(lambda: model(x), sync_tracenn)
        rows.append(Row("tracenn eager", lambda: model(x), sync_tracenn, first_s=t, value=r))
    if torch is not None:
        tm = torch_copy(torch, model, builder).eval()
        tx = torch.from_numpy(x_np)
        with torch.no_grad():
            t, r = first_call(lambda: tm(tx), sync_none)
            rows.append(Row("torch eager", lambda: tm(tx), sync_none, settle=True, first_s=t, value=r, role="torch"))
            if ctx.torch_compile:
                rows.append(try_torch_compile(torch, "torch.compile", _torch_compiled_call(torch, tm, tx)))
    return [Table(name, rows, grad_mode=False, target=TARGETS["infer"])]


# ---- training ---------------------------------------------------------------------------------------

class TracennTrain:
    """One training step: forward (compiled model, compiled loss function, or eager), eager-tape
    backward, eager optimizer step."""

    def __init__(self, model, x, y, opt_kind, how):
        self.model, self.x, self.y = model, x, y
        params = list(model.parameters())
        self.params = params
        self.opt = tracenn.optim.SGD(params, lr=LR_SGD, momentum=MOMENTUM) if opt_kind == "sgd" else \
            tracenn.optim.Adam(params, lr=LR_ADAM, betas=BETAS, eps=EPS)
        self.step = None
        self.opt_step = self.opt.step
        if how == "model":
            cm = tracenn.compile(model)
            self.forward = lambda: TF.cross_entropy(cm(x), y)
        elif how in ("loss", "loss+opt"):
            cl = tracenn.compile(lambda x, y: TF.cross_entropy(model(x), y))
            self.forward = lambda: cl(x, y)
            if how == "loss+opt":  # the optimizer's update as one program (tracenn.compile of a step)
                opt = self.opt

                def optimizer_step():
                    opt.step()

                self.opt_step = tracenn.compile(optimizer_step)
        elif how == "step":
            opt = self.opt

            def train_step(x, y):
                opt.zero_grad()
                loss = TF.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                return loss

            cs = tracenn.compile(train_step)
            self.step = lambda: cs(x, y)
        else:
            self.forward = lambda: TF.cross_entropy(model(x), y)

    def __call__(self):
        if self.step is not None:
            return self.step()
        self.opt.zero_grad()
        loss = self.forward()
        loss.backward()
        self.opt_step()
        return loss

    def sync(self, loss):
        jax.block_until_ready([loss._value] + [p._value for p in self.params])

    def phases(self, n):
        """Seconds per step of: forward, backward, optimizer (zero_grad + step), each waited for."""
        acc = [0.0, 0.0, 0.0]
        for _ in range(n):
            t0 = perf()
            self.opt.zero_grad()
            loss = self.forward()
            jax.block_until_ready(loss._value)
            t1 = perf()
            loss.backward()
            jax.block_until_ready([p.grad._value for p in self.params])
            t2 = perf()
            self.opt_step()
            jax.block_until_ready([p._value for p in self.params])
            t3 = perf()
            acc[0] += t1 - t0
            acc[1] += t2 - t1
            acc[2] += t3 - t2
        return [a / n for a in acc]


class JaxTrain:
    def __init__(self, params, x, y, jax_fn, opt_kind):
        self.opt_kind = opt_kind
        self.opt_name, init, update = make_jax_optimizer(opt_kind)
        self.params, self.state = params, init(params)
        self.x, self.y = x, y
        self.jax_fn, self.update = jax_fn, update

        def loss_fn(p, x, y):
            return jax_cross_entropy(jax_fn(p, x), y)

        def step(params, state, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            params, state = update(params, grads, state)
            return params, state, loss

        self.loss_fn = loss_fn
        self.step = jax.jit(step, donate_argnums=(0, 1))

    def __call__(self):
        self.params, self.state, loss = self.step(self.params, self.state, self.x, self.y)
        return loss

    def sync(self, loss):
        jax.block_until_ready((loss, self.params))

    def split(self):
        """The same step in the pieces tracenn's 'compiled model, eager loss' row runs it in, each a
        ``jax.jit`` program: the forward (``jax.vjp``, keeping its residuals), the loss with its
        gradient (an eager scalar loss computes both in one program: OpDef.with_grad), the pullback,
        the update (donated). What this structure costs in XLA programs and their buffers, with no
        tracenn in it: the floor of that row."""
        fwd = jax.jit(lambda p, x: jax.vjp(lambda p: self.jax_fn(p, x), p))
        loss = jax.jit(jax.value_and_grad(jax_cross_entropy))
        pull = jax.jit(lambda vjp, ct: vjp(ct)[0])
        update = jax.jit(self.update, donate_argnums=(0, 2))
        opt_name, init, _ = make_jax_optimizer(self.opt_kind)
        box = [jax.tree_util.tree_map(jnp.copy, self.params), None]
        box[1] = init(box[0])

        def step():
            out, vjp = fwd(box[0], self.x)
            value, dout = loss(out, self.y)
            grads = pull(vjp, dout)
            box[0], box[1] = update(box[0], grads, box[1])
            return value

        return step, lambda v: jax.block_until_ready((v, box[0]))

    def parts(self):
        """Jitted pieces of the same step, for the --breakdown table: forward+loss, value_and_grad,
        the optimizer update alone."""
        fwd = jax.jit(self.loss_fn)
        vg = jax.jit(jax.value_and_grad(self.loss_fn))
        upd = jax.jit(self.update)
        grads = vg(self.params, self.x, self.y)[1]
        return {
            "forward + loss": lambda: fwd(self.params, self.x, self.y),
            "value_and_grad (forward + backward)": lambda: vg(self.params, self.x, self.y),
            "optimizer update": lambda: upd(self.params, grads, self.state),
        }


class TorchTrain:
    def __init__(self, torch, model, x, y, opt_kind, compiled=False):
        self.torch, self.x, self.y = torch, x, y
        self.model = model
        self.fwd = torch.compile(model) if compiled else model
        self.opt = torch.optim.SGD(model.parameters(), lr=LR_SGD, momentum=MOMENTUM) if opt_kind == "sgd" else \
            torch.optim.Adam(model.parameters(), lr=LR_ADAM, betas=BETAS, eps=EPS)

    def __call__(self):
        self.opt.zero_grad()
        loss = self.torch.nn.functional.cross_entropy(self.fwd(self.x), self.y)
        loss.backward()
        self.opt.step()
        return loss


def workload_train(ctx, name, builder, jax_fn, x_shape, opt_kind):
    torch = ctx.torch
    check_steps = 2 if ctx.quick else 3
    tracenn.manual_seed(0)
    model = builder(tnn)
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal(x_shape).astype(np.float32)
    y_np = rng.integers(0, 10, size=(x_shape[0],)).astype(np.int64)
    x, y = tracenn.tensor(x_np), tracenn.tensor(y_np)
    rows = []
    jt = JaxTrain(params_of(model), jnp.copy(x._value), jnp.copy(y._value), jax_fn, opt_kind)
    split, split_sync = jt.split()  # (from the same first weights: made before the baseline steps)

    def with_losses(row, impl, to_float):
        losses = [to_float(row.value)] + [to_float(impl()) for _ in range(check_steps - 1)]
        row.value = np.array(losses)
        return row

    t, r = first_call(jt, jt.sync)
    rows.append(with_losses(Row("jax.jit (whole step)", jt, jt.sync, first_s=t, value=r, role="base",
                                note=jt.opt_name), jt, float))
    t, r = first_call(split, split_sync)
    rows.append(with_losses(Row("jax.jit split as the eager loss splits it", split, split_sync, first_s=t, value=r,
                                note="context: the floor of 'compiled model, eager loss'"), split, float))
    tn_impls = {}
    for how, label in (("model", "tracenn compiled model, eager loss"), ("loss", "tracenn compiled loss fn"),
                       ("loss+opt", "tracenn compiled loss fn + compiled opt.step"),
                       ("step", "tracenn compiled whole step"), ("eager", "tracenn eager")):
        impl = TracennTrain(tracenn_copy(model, builder), x, y, opt_kind, how)
        tn_impls[how] = impl
        try:
            t, r = first_call(impl, impl.sync)
        except Exception as e:  # noqa: BLE001 - step compiles are new: report, don't stop
            if how not in ("step", "loss+opt"):
                raise
            rows.append(Unavailable(label, _reason(e)))
            continue
        rows.append(with_losses(Row(label, impl, impl.sync, first_s=t, value=r,
                                    role="tn" if how in ("model", "loss") else "",
                                    note="" if how in ("model", "loss", "eager") else "context: not issue 6's target"),
                                impl, lambda l: float(l.item())))
    if torch is not None:
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)
        impl = TorchTrain(torch, torch_copy(torch, model, builder), tx, ty, opt_kind)
        t, r = first_call(impl, sync_none)
        rows.append(with_losses(Row("torch eager", impl, sync_none, settle=True, first_s=t, value=r,
                                    role="torch"), impl, lambda l: float(l.item())))
        if ctx.torch_compile:
            row = try_torch_compile(torch, "torch.compile (model)",
                                    lambda: TorchTrain(torch, torch_copy(torch, model, builder), tx, ty, opt_kind,
                                                       compiled=True))
            if row.fn is not None:
                row = with_losses(row, row.fn, lambda l: float(l.item()))
            rows.append(row)
    table = Table(name, rows, grad_mode=True, target=TARGETS["train"], kind="train")
    if ctx.breakdown:
        table.breakdown = (tn_impls, jt)
    return [table]


def breakdown(ctx, table):
    """Phase times of the tracenn compiled steps (synced after each phase) and the baseline's parts."""
    tn_impls, jt = table.breakdown
    n = 3 if ctx.quick else 10
    print(f"\n  breakdown of {table.title} (medians of {ctx.repeats} rounds of {n} steps, each phase waited for):")
    out = []
    for how in ("model", "loss", "loss+opt"):
        impl = tn_impls.get(how)
        if impl is None or not hasattr(impl, "phases"):
            continue
        samples = [impl.phases(n) for _ in range(ctx.repeats)]
        med = [statistics.median(s[i] for s in samples) for i in range(3)]
        out.append([f"tracenn compiled ({how})", *(f"{m * 1e3:.3f}" for m in med), f"{sum(med) * 1e3:.3f}"])
    parts = jt.parts()
    res = time_interleaved({k: (f, sync_jax) for k, f in parts.items()}, repeats=ctx.repeats, target_s=ctx.target)
    f, vg, upd = (res[k] for k in parts)
    out.append(["jax.jit parts (fwd+loss | vg - fwd | update)", f"{f * 1e3:.3f}", f"{(vg - f) * 1e3:.3f}",
                f"{upd * 1e3:.3f}", f"{(vg + upd) * 1e3:.3f}"])
    print_table(["  step", "forward ms", "backward ms", "optimizer ms", "sum ms"], out)
    return out


def time_rotated(entries, *, repeats, target_s):
    """``_timing.time_interleaved`` (calibrated loops, one loop of every row per repeat, medians),
    with the order of the rows changed every repeat: PyTorch rows first, each with its settle
    pause, then the other rows in an order rotated by one per repeat. On this shared 2-core
    machine a row's place in the repeat moved its time by up to 1.3-1.5x (the row after a
    PyTorch loop meets its still-spinning OpenMP threads; the row after a pause starts cold), and
    the baseline always came first; rotating gives every row every place equally often.
    Returns {row: median seconds per call} and {row: the per-repeat samples}."""
    counts = {k: calibrate(fn, sync, target_s, settle=settle) for k, (fn, sync, settle) in entries.items()}
    first = [k for k, e in entries.items() if e[2]]
    rest = [k for k, e in entries.items() if not e[2]]
    samples = {k: [] for k in entries}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(repeats):
            j = r % max(1, len(rest))
            prev = False
            for k in first + rest[j:] + rest[:j]:
                fn, sync, settle = entries[k]
                samples[k].append(_loop(fn, sync, counts[k], settle or prev) / counts[k])
                prev = settle
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return {k: statistics.median(v) for k, v in samples.items()}, samples


def paired_ratio(samples, key, base_key):
    """The median over repeats of row ``key``'s time over the baseline's in the same repeat."""
    return statistics.median(a / b for a, b in zip(samples[key], samples[base_key]))


# ---- tables ---------------------------------------------------------------------------------------

class Table:
    def __init__(self, title, rows, *, grad_mode, target, kind=""):
        self.title, self.rows, self.grad_mode, self.target = title, rows, grad_mode, target
        self.kind = kind
        self.breakdown = None
        self.check = None

    @property
    def base(self):
        return next(r for r in self.rows if r.role == "base")

    def verify(self):
        """Max relative difference of each row's output (losses for training) to the baseline's."""
        ref = np.asarray(self.base.value)
        scale = max(float(np.max(np.abs(ref))), 1e-6)
        worst = 0.0
        for r in self.rows:
            if r.value is None or r.fn is None:
                continue
            v = _np(r.value) if not isinstance(r.value, np.ndarray) else r.value
            d = float(np.max(np.abs(v.astype(np.float64) - ref))) / scale
            r.diff = d
            worst = max(worst, d)
        self.check = worst
        return worst


def run_tables(ctx, tables):
    results = []
    for table in tables:
        worst = table.verify()
        tol = 1e-3 if table.kind == "train" else 1e-4
        ok = worst <= tol
        print(f"\n== {table.title}")
        print(f"  outputs{' (losses of the first steps)' if table.kind == 'train' else ''} agree with the "
              f"jax.jit baseline: max relative difference {worst:.1e} " + ("(OK)" if ok else f"(MISMATCH > {tol})"))
        entries = {r.name: (r.fn, r.sync, r.settle) for r in table.rows if r.fn is not None}
        # The whole timed run sits in one grad-mode context (tracenn's and torch's), so no row pays
        # for entering a context manager per call.
        with _grad_mode(ctx, table.grad_mode):
            res, samples = time_rotated(entries, repeats=ctx.repeats, target_s=ctx.target)
        base = res[table.base.name]
        for r in table.rows:
            r.ratio = None if r.name not in res else paired_ratio(samples, r.name, table.base.name)
        unit, scale = ("us", 1e6) if base < 1e-3 else ("ms", 1e3)
        rows = []
        for r in table.rows:
            t = res.get(r.name)
            r.time = t
            rows.append([r.name, "-" if t is None else f"{t * scale:.2f}",
                         "-" if t is None else f"{r.ratio:.2f}",
                         _fmt_first(r.first_s),
                         r.note])
        print_table(["  implementation", f"{unit}/call" if table.kind != "train" else "ms/step", "vs jax.jit",
                     "first call ms", "note"], rows)
        tn = [r for r in table.rows if r.role == "tn"]
        summary = {"workload": table.title, "base_s": base, "check": worst, "ok": ok,
                   "rows": {r.name: {"s": r.time, "ratio": r.ratio,
                                     "first_s": r.first_s, "note": r.note} for r in table.rows}}
        vjp_row = next((r for r in table.rows if r.role == "vjp" and r.time is not None), None)
        for r in tn:
            ratio = r.ratio
            met = ratio <= table.target
            print(f"  -> {r.name}: {ratio:.2f}x jax.jit (target <= {table.target}: {'met' if met else 'NOT met'})"
                  + (f"; {paired_ratio(samples, r.name, vjp_row.name):.2f}x jax.jit of jax.vjp, the same work" if vjp_row else ""))
        torch_row = next((r for r in table.rows if r.role == "torch" and r.time is not None), None)
        if torch_row is not None and "cnn" in table.title:
            for r in tn:
                vs = paired_ratio(samples, r.name, torch_row.name)
                print(f"  -> {r.name} vs torch eager: {vs:.2f}x ({'faster' if vs < 1 else 'NOT faster'})")
        if table.breakdown is not None:
            summary["breakdown"] = breakdown(ctx, table)
        results.append(summary)
    return results


class _grad_mode:
    def __init__(self, ctx, enabled):
        self.tn = tracenn.enable_grad() if enabled else tracenn.no_grad()
        torch = ctx.torch
        self.pt = None if torch is None else (torch.enable_grad() if enabled else torch.no_grad())

    def __enter__(self):
        self.tn.__enter__()
        if self.pt is not None:
            self.pt.__enter__()

    def __exit__(self, *exc):
        if self.pt is not None:
            self.pt.__exit__(*exc)
        self.tn.__exit__(*exc)


# ---- main ---------------------------------------------------------------------------------------------

class Context:
    pass


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few short loops, no torch.compile (a smoke run)")
    ap.add_argument("--only", default="", help=f"comma-separated workloads: {', '.join(WORKLOADS)}")
    ap.add_argument("--repeats", type=int, default=0, help="timed loops per row (default 15; --quick 3)")
    ap.add_argument("--target", type=float, default=0.0, help="seconds per timed loop (default 0.2; --quick 0.04)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-torch-compile", action="store_true")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch.set_num_threads for the PyTorch rows (0: torch's default; on a loaded "
                         "2-core machine its 2 OpenMP threads stall, 1 thread does not)")
    ap.add_argument("--breakdown", action="store_true", help="phase times of the training steps")
    ap.add_argument("--json", default="", help="also write the results to this file")
    args = ap.parse_args(argv)
    only = [w.strip() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    bad = [w for w in only if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workload(s) {bad}; choose from {', '.join(WORKLOADS)}")

    ctx = Context()
    ctx.quick = args.quick
    ctx.repeats = args.repeats or (3 if args.quick else 15)
    ctx.target = args.target or (0.04 if args.quick else 0.2)
    ctx.breakdown = args.breakdown
    ctx.torch = None if args.no_torch else try_import_torch()
    ctx.torch_compile = ctx.torch is not None and not args.no_torch_compile and not args.quick
    torch = ctx.torch
    if torch is not None and args.torch_threads:
        torch.set_num_threads(args.torch_threads)

    print("tracenn.compile vs a hand-written jax.jit of the same computation (float32)")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; "
          + (f"torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else "torch: not available")
          + f"; {os.cpu_count()} cpus; load average {os.getloadavg()[0]:.2f}; "
          + f"{ctx.repeats} interleaved repeats of ~{ctx.target:.2f} s loops, medians"
          + ("" if ctx.torch_compile else "; torch.compile: " + (
              "skipped (--quick)" if args.quick and torch is not None else "off")))
    print(f"malloc (process-wide, every row): {tracenn.cpu.malloc_tuning()}")
    jax.block_until_ready(jax.jit(lambda a: a + 1)(jnp.ones(2)))  # backend start-up off the first-call figures

    all_results = []
    for w in only:
        t0 = perf()
        if w == "call_linear":
            tables = workload_call(ctx, w, build_linear, jax_linear16, (1, 16))
        elif w == "call_mlp8":
            tables = workload_call(ctx, w, build_mlp8, jax_mlp8, (1, 64))
        elif w == "train_mlp":
            tables = workload_train(ctx, w, build_mlp, jax_mlp, (128, 784), "sgd")
        elif w == "train_transformer":
            tables = workload_train(ctx, w, build_transformer, jax_transformer, (32, SEQ, D_MODEL), "adam")
        elif w == "infer_mlp":
            tables = workload_infer(ctx, w, build_mlp, jax_mlp, (256, 784))
        else:
            tables = workload_infer(ctx, w, build_cnn, jax_cnn, (256, 1, 28, 28))
        all_results += run_tables(ctx, tables)
        print(f"  ({perf() - t0:.0f} s)", file=sys.stderr, flush=True)

    print("\nsummary (ratio to jax.jit measured in the same run; target from issue 6):")
    for r in all_results:
        parts = []
        for name, v in r["rows"].items():
            if v["ratio"] is not None and name.startswith("tracenn compiled"):
                parts.append(f"{name}: {v['ratio']:.2f}x")
        print(f"  {r['workload']}: " + "; ".join(parts) + ("" if r["ok"] else "  [OUTPUT MISMATCH]"))
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"argv": sys.argv[1:], "load_end": os.getloadavg()[0], "results": all_results}, fh, indent=1)


if __name__ == "__main__":
    main()
