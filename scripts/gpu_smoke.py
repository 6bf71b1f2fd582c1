"""Run realistic tracenn programs on a GPU and compare them with the same programs on the CPU.

    python scripts/gpu_smoke.py            # on a machine whose JAX sees a CUDA GPU
    CHECK_DEVICE=cpu python scripts/gpu_smoke.py   # a dry run: every case on the CPU twice

Each case builds a model on the CPU, copies it to the device, runs it there eagerly and compiled,
and prints one line: OK or FAIL, the largest differences found (device eager vs CPU eager, device
compiled vs device eager) and where the results live. Matrix products run at full float32
precision here (``jax_default_matmul_precision=highest``) so that the CPU is a reference; the
half-precision cases are compared with a float64 reference instead. A case that raises prints its
error and the next case runs. The exit status is the number of failed cases.
"""
import os
import sys
import traceback

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo, uninstalled
import tracenn as torch  # noqa: E402
from tracenn import nn  # noqa: E402
import tracenn.nn.functional as F  # noqa: E402
from tracenn.runtime.flatstate import is_pending  # noqa: E402

DEV = os.environ.get("CHECK_DEVICE", "cuda")
if DEV == "cuda" and not torch.cuda.is_available():
    print("no CUDA device visible to JAX: nothing to check")
    sys.exit(0)
jax.config.update("jax_default_matmul_precision", "highest")
print("jax", jax.__version__, "devices:", jax.devices(), "| checking on", DEV, flush=True)

CASES = []
FAILED = []


def case(fn):
    CASES.append(fn)
    return fn


def diff(a, b):
    """Largest absolute difference of two tensors (or nested tuples of them), compared on the CPU."""
    if isinstance(a, (tuple, list)):
        return max(diff(x, y) for x, y in zip(a, b))
    return float(np.max(np.abs(np.asarray(a.detach().cpu().double().numpy())
                               - np.asarray(b.detach().cpu().double().numpy())), initial=0.0))


def on_device(*tensors):
    devs = {str(t.device).split(":")[0] for t in tensors}
    return devs == {DEV}


def twin(make):
    """The same freshly made module twice: on the CPU and on the device, equal weights."""
    torch.manual_seed(0)
    cpu = make()
    dev = make().to(DEV)
    dev.load_state_dict(cpu.state_dict())
    return cpu, dev


def grads(model):
    return [p.grad for p in model.parameters() if p.grad is not None]


def check(name, ok, **figures):
    text = " ".join(f"{k}={v:.2e}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items())
    print(f"{'OK  ' if ok else 'FAIL'} {name}: {text}", flush=True)
    if not ok:
        FAILED.append(name)


def fwd_bwd(model, x, compiled=False):
    model.zero_grad()
    fn = torch.compile(model) if compiled else model
    out = fn(x)
    out.float().pow(2).mean().backward()
    return out, grads(model)


@case
def cnn_with_batchnorm():
    cpu, dev = twin(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)))
    x = torch.randn(4, 3, 16, 16)
    out_c, g_c = fwd_bwd(cpu, x)
    out_e, g_e = fwd_bwd(dev, x.to(DEV))
    rm_e = dev[1].running_mean.clone()
    _, dev2 = twin(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)))
    out_k, g_k = fwd_bwd(dev2, x.to(DEV), compiled=True)
    bn = dev2[1]
    check("CNN+BatchNorm train step", diff(out_e, out_c) < 1e-4 and diff(out_k, out_e) < 1e-4
          and diff(g_k, g_e) < 1e-3 and diff(bn.running_mean, rm_e) < 1e-5
          and int(bn.num_batches_tracked) == 1 and on_device(out_k, bn.running_mean, *g_k),
          dev_vs_cpu=diff(out_e, out_c), compiled_vs_eager=diff(out_k, out_e), grads=diff(g_k, g_e),
          running_mean=diff(bn.running_mean, rm_e), where=str(bn.running_mean.device))


@case
def transformer_dropout_same_masks():
    def make():
        return nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.1, batch_first=True), 2)
    _, dev = twin(make)
    x = torch.randn(2, 10, 32).to(DEV)
    torch.manual_seed(5)
    out_e, g_e = fwd_bwd(dev, x)
    torch.manual_seed(5)
    out_k, g_k = fwd_bwd(dev, x, compiled=True)
    out_k2 = torch.compile(dev)(x)
    check("Transformer with dropout: compiled = eager masks, fresh masks per call",
          diff(out_k, out_e) < 1e-4 and diff(g_k, g_e) < 1e-3 and diff(out_k2, out_k) > 1e-3
          and on_device(out_k, *g_k),
          compiled_vs_eager=diff(out_k, out_e), grads=diff(g_k, g_e), next_call_differs=diff(out_k2, out_k))


@case
def lstm_packed():
    cpu, dev = twin(lambda: nn.LSTM(8, 16, num_layers=2, batch_first=True, bidirectional=True))
    x = torch.randn(3, 7, 8)
    lengths = torch.tensor([7, 5, 2])

    def run(model, inp, lens, compiled=False):
        def fn(inp, lens):
            packed = nn.utils.rnn.pack_padded_sequence(inp, lens, batch_first=True, enforce_sorted=False)
            out, (h, c) = model(packed)
            return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=7)[0], h
        model.zero_grad()
        out, h = (torch.compile(fn) if compiled else fn)(inp, lens)
        (out.pow(2).mean() + h.pow(2).mean()).backward()
        return (out, h), grads(model)

    o_c, g_c = run(cpu, x, lengths)
    o_e, g_e = run(dev, x.to(DEV), lengths.to(DEV))
    o_k, g_k = run(dev, x.to(DEV), lengths.to(DEV), compiled=True)
    check("packed bidirectional LSTM", diff(o_e, o_c) < 1e-5 and diff(o_k, o_e) < 1e-5 and diff(g_k, g_e) < 1e-4
          and on_device(*o_k, *g_k),
          dev_vs_cpu=diff(o_e, o_c), compiled_vs_eager=diff(o_k, o_e), grads=diff(g_k, g_e))


@case
def whole_step_adamw_scheduler():
    def make():
        return nn.Sequential(nn.Linear(20, 64), nn.GELU(), nn.LayerNorm(64), nn.Linear(64, 5))
    cpu, dev = twin(make)
    results = []
    for model, compiled in ((cpu, False), (dev, True)):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
        dv = next(model.parameters()).device

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss
        fn = torch.compile(step) if compiled else step
        torch.manual_seed(1)
        losses = []
        for _ in range(5):
            x, y = torch.randn(16, 20), torch.randint(0, 5, (16,))
            losses.append(fn(x.to(dv), y.to(dv)).item())
            sched.step()
        # (off the CPU a compiled step's grads stay one flat array until read: runtime/flatgrads.py)
        pending = sum(type(p.__dict__.get("grad")).__name__ == "PendingGrad" for p in model.parameters())
        # (and its parameters and optimizer state one flat array until read: runtime/flatstate.py)
        flat = sum(map(is_pending, model.parameters())) + sum(map(is_pending, (
            v for st in opt.state.values() for v in st.values())))
        results.append((losses, [p.detach() for p in model.parameters()], opt.state_dict(),
                        [p.grad for p in model.parameters()], (pending, flat)))
    (l_c, p_c, s_c, g_c, _), (l_k, p_k, s_k, g_k, (pending, flat)) = results
    exp_avg = [s_k["state"][i]["exp_avg"] for i in s_k["state"]]
    check("whole compiled step (AdamW, clip, StepLR) on device vs eager on CPU",
          max(abs(a - b) for a, b in zip(l_c, l_k)) < 1e-5 and diff(p_k, p_c) < 1e-5 and diff(g_k, g_c) < 1e-5
          and on_device(*p_k, *exp_avg, *g_k),
          losses=max(abs(a - b) for a, b in zip(l_c, l_k)), params=diff(p_k, p_c), grads=diff(g_k, g_c),
          pending_grads_before_read=pending, flat_state_before_read=flat, exp_avg=diff(exp_avg, [s_c["state"][i]["exp_avg"] for i in s_c["state"]]))


@case
def autocast_bf16():
    cpu, dev = twin(lambda: nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 8)))
    x = torch.randn(16, 32)
    ref = cpu.double()(x.double())
    with torch.autocast(DEV, dtype=torch.bfloat16):
        out_e = dev(x.to(DEV))
        out_k = torch.compile(dev)(x.to(DEV))
    rel = diff(out_k, ref) / float(ref.abs().max())
    check("autocast bf16 Linear stack", out_e.dtype == torch.bfloat16 and out_k.dtype == torch.bfloat16
          and rel < 2e-2 and diff(out_k, out_e) < 5e-2 and on_device(out_k),
          dtype=str(out_k.dtype), rel_err_vs_f64=rel, compiled_vs_eager=diff(out_k, out_e))


@case
def sdpa_half():
    torch.manual_seed(2)
    q, k, v = (torch.randn(2, 4, 32, 64) for _ in range(3))
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double(), is_causal=True)
    errs = {}
    for name, dt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        args = [t.to(DEV).to(dt) for t in (q, k, v)]
        out = F.scaled_dot_product_attention(*args, is_causal=True)
        out_k = torch.compile(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True))(*args)
        errs[name] = (diff(out, ref), diff(out_k, ref), out.dtype == dt and on_device(out, out_k))
    check("SDPA causal in bf16/f16 vs float64", errs["bf16"][0] < 2e-2 and errs["f16"][0] < 3e-3
          and all(e[2] for e in errs.values()) and all(e[1] < 2 * e[0] + 1e-3 for e in errs.values()),
          bf16_eager=errs["bf16"][0], bf16_compiled=errs["bf16"][1],
          f16_eager=errs["f16"][0], f16_compiled=errs["f16"][1])


@case
def grad_scaler_fp16():
    cpu, dev = twin(lambda: nn.Linear(16, 4))
    opt = torch.optim.SGD(dev.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler(DEV)
    x, y = torch.randn(8, 16).to(DEV), torch.randn(8, 4).to(DEV)
    before = dev.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        with torch.autocast(DEV, dtype=torch.float16):
            loss = F.mse_loss(dev(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    moved = diff(dev.weight, before)
    check("GradScaler + fp16 autocast", moved > 1e-4 and float(scaler.get_scale()) == 65536.0
          and on_device(dev.weight, dev.weight.grad), weight_moved=moved, scale=float(scaler.get_scale()))


@case
def module_argument_decode():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(50, 16)
            self.out = nn.Linear(16, 50)

        def forward(self, idx):
            return self.out(self.emb(idx))

    cpu, dev = twin(Tiny)

    @torch.compile
    def decode(model, idx):
        return model(idx).argmax(-1)

    idx = torch.randint(0, 50, (2, 5))
    with torch.no_grad():
        got = decode(dev, idx.to(DEV))
        want = cpu(idx).argmax(-1)
    check("compiled function taking the model as an argument", bool((got.cpu() == want).all()) and on_device(got),
          where=str(got.device))


@case
def sparse_spmm():
    torch.manual_seed(3)
    dense = torch.randn(6, 5) * (torch.rand(6, 5) > 0.6)
    w = torch.randn(5, 4, requires_grad=True)
    sp = dense.to_sparse()
    out_c = torch.sparse.mm(sp, w)
    wd = w.detach().to(DEV).requires_grad_(True)
    out_e = torch.sparse.mm(sp.to(DEV), wd)
    out_e.sum().backward()
    check("sparse COO @ dense with gradient", diff(out_e, out_c) < 1e-5 and diff(wd.grad, dense.sum(0)[:, None]
                                                                              .expand(5, 4)) < 1e-5
          and on_device(out_e, wd.grad), dev_vs_cpu=diff(out_e, out_c))


@case
def save_load_roundtrip():
    import io
    _, dev = twin(lambda: nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)))
    buf = io.BytesIO()
    torch.save(dev.state_dict(), buf)
    buf.seek(0)
    sd_cpu = torch.load(buf, map_location="cpu")
    buf.seek(0)
    sd_dev = torch.load(buf)
    check("save on device, load with and without map_location",
          all(str(t.device) == "cpu" for t in sd_cpu.values()) and on_device(*sd_dev.values())
          and max(diff(sd_cpu[k], sd_dev[k]) for k in sd_cpu) == 0.0,
          cpu_load=str(next(iter(sd_cpu.values())).device), plain_load=str(next(iter(sd_dev.values())).device))


@case
def mixed_devices_error():
    lin = nn.Linear(4, 4).to(DEV)
    try:
        lin(torch.randn(2, 4))  # (torch raises for linear, conv and embedding; so does tracenn)
    except RuntimeError as e:
        msg = str(e)
        check("CPU input to a device model raises torch's error",
              msg.startswith("Expected all tensors to be on the same device"), message=msg[:90])
    else:
        check("CPU input to a device model raises torch's error", DEV == "cpu", message="no error")


for fn in CASES:
    try:
        fn()
    except Exception as e:  # one broken case must not hide the others
        check(fn.__name__, False, error=f"{type(e).__name__}: {str(e)[:300]}")
        traceback.print_exc(limit=-4)
print(f"{len(CASES) - len(FAILED)} of {len(CASES)} cases OK" + (f"; failed: {', '.join(FAILED)}" if FAILED else ""))
sys.exit(len(FAILED))
