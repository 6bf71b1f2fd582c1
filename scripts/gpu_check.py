"""Check that compiled tracenn code runs on a GPU and how fast (run on a machine with one).

Prints: the devices JAX sees; eager vs compiled agreement on CUDA for a CNN forward/backward;
and per-step times of the MNIST CNN training step (batch 64, 28x28) eager and whole-step compiled
on the GPU, with a hand-written jax.jit step as the baseline, all measured in this process.
"""
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo, uninstalled
import tracenn as torch  # noqa: E402
from tracenn import nn  # noqa: E402
import tracenn.nn.functional as F  # noqa: E402

print("jax", jax.__version__, "devices:", jax.devices(), flush=True)
DEV = os.environ.get("CHECK_DEVICE", "cuda")  # CHECK_DEVICE=cpu: a dry run of this script
if DEV == "cuda" and not torch.cuda.is_available():
    print("no CUDA device visible to JAX: nothing to check")
    sys.exit(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def timeit(fn, n=20, reps=5):
    fn()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(n):
            out = fn()
        float(out)  # wait for the device
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e3


torch.manual_seed(0)
cpu_model = Net()
model = Net().to(DEV)
model.load_state_dict(cpu_model.state_dict())
x_cpu = torch.randn(64, 1, 28, 28)
y_cpu = torch.randint(0, 10, (64,))
x, y = x_cpu.to(DEV), y_cpu.to(DEV)
print("param device:", next(model.parameters()).device, "input device:", x.device, flush=True)

# eager vs compiled on CUDA, forward and gradients
cm = torch.compile(model)
out_c = cm(x)
F.cross_entropy(out_c, y).backward()
g_c = [p.grad.clone() for p in model.parameters()]
model.zero_grad()
out_e = model(x)
F.cross_entropy(out_e, y).backward()
g_e = [p.grad for p in model.parameters()]
print("compiled output on", out_c.device, "| max |out diff|", float((out_c - out_e).abs().max()),
      "| max |grad diff|", max(float((a - b).abs().max()) for a, b in zip(g_c, g_e)), flush=True)
out_cpu = cpu_model(x_cpu)
print("cuda vs cpu output max diff", float((out_e.cpu() - out_cpu).abs().max()), flush=True)

# training steps: eager, whole-step compiled, raw jax.jit
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step(x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


cstep = torch.compile(step)
t0 = time.perf_counter(); float(cstep(x, y)); t1 = time.perf_counter(); float(cstep(x, y)); t2 = time.perf_counter()
print(f"compiled step: first call {t1 - t0:.2f} s, second (steady-state program) {t2 - t1:.2f} s", flush=True)
ms_c = timeit(lambda: cstep(x, y))
ms_e = timeit(lambda: step(x, y))

params = {n: p._value for n, p in model.named_parameters()}
mom = {n: jax.numpy.zeros_like(v) for n, v in params.items()}


def jax_loss(p, xa, ya):
    def conv(h, w, b):
        return jax.lax.conv_general_dilated(h, w, (1, 1), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")) \
            + b[None, :, None, None]
    h = jax.nn.relu(conv(xa, p["conv1.weight"], p["conv1.bias"]))
    h = jax.nn.relu(conv(h, p["conv2.weight"], p["conv2.bias"]))
    h = jax.lax.reduce_window(h, -jax.numpy.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    h = h.reshape(h.shape[0], -1)
    h = jax.nn.relu(h @ p["fc1.weight"].T + p["fc1.bias"])
    logits = h @ p["fc2.weight"].T + p["fc2.bias"]
    return -jax.numpy.mean(jax.nn.log_softmax(logits)[jax.numpy.arange(ya.shape[0]), ya])


@jax.jit
def jax_step(p, m, xa, ya):
    loss, g = jax.value_and_grad(jax_loss)(p, xa, ya)
    m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + b, m, g)
    p = jax.tree_util.tree_map(lambda a, b: a - 0.01 * b, p, m)
    return p, m, loss


state = [params, mom]


def run_jax():
    state[0], state[1], loss = jax_step(state[0], state[1], x._value, y._value)
    return loss


ms_j = timeit(run_jax)
print(f"MNIST CNN train step on {jax.devices()[0].device_kind}: tracenn eager {ms_e:.2f} ms, tracenn compiled "
      f"{ms_c:.2f} ms, raw jax.jit {ms_j:.2f} ms (compiled/jit {ms_c / ms_j:.2f}x, eager/compiled "
      f"{ms_e / ms_c:.1f}x)", flush=True)

# inference, batch 256
model.eval()
xb = torch.randn(256, 1, 28, 28).to(DEV)
with torch.no_grad():
    ms_ie = timeit(lambda: model(xb).sum())
    ms_ic = timeit(lambda: cm(xb).sum())
print(f"inference batch 256: eager {ms_ie:.2f} ms, compiled {ms_ic:.2f} ms", flush=True)

# the fused eager optimizer, a compiled loss function in value-and-grad mode, higher-order gradients
# and int indexing on the device. (On a GPU the compiled and eager losses differ at TF32 level, and
# Adam turns such differences on near-zero gradient coordinates into steps of about lr: expect up to
# ~lr per step here; with SGD, or fused vs loop on the same loss, the difference is ~0.)
model.train()
twin = Net().to(DEV)
twin.load_state_dict(model.state_dict())
opts = [torch.optim.Adam(m.parameters(), lr=1e-3, foreach=f) for m, f in ((model, None), (twin, False))]
closs = torch.compile(lambda m_x, m_y: F.cross_entropy(model(m_x), m_y))
for _ in range(3):
    for m, o in zip((model, twin), opts):
        o.zero_grad()
        (closs(x, y) if m is model else F.cross_entropy(twin(x), y)).backward()
        o.step()
print("fused Adam + compiled loss (value-and-grad) vs loop Adam + eager loss, max |param diff| after 3 steps:",
      max(float((a - b).abs().max()) for a, b in zip(model.parameters(), twin.parameters())), flush=True)
w = torch.randn(5, device=DEV, requires_grad=True)
(g,) = torch.autograd.grad((w ** 3).sum(), w, create_graph=True)
(h,) = torch.autograd.grad(g.sum(), w)
print("second derivative of w**3 on", h.device, "max |6w - h|:", float((6 * w - h).abs().max()),
      "| x[3] on", x[3].device, tuple(x[3].shape), flush=True)

# the third session's changes: the value-and-grad / pullback choice timed on the device, the
# one-kernel cross entropy, and the fused optimizer updating parameters in place (donation).
for _ in range(25):
    opts[0].zero_grad()
    closs(x, y).backward()
    opts[0].step()
print("compiled loss after 28 steps:", [ln.strip() for ln in closs.explain().splitlines() if "scalar output" in ln],
      flush=True)
with torch.no_grad():  # (no eager graph left holding the parameters: it would stop their donation)
    logits = model(x)
    manual = -(logits.log_softmax(1).gather(1, y[:, None])).mean()
    print("cross_entropy primitive vs log_softmax+gather on", logits.device, "diff:",
          float((F.cross_entropy(logits, y) - manual).abs()), flush=True)
before = [p._value.unsafe_buffer_pointer() for p in model.parameters()]
opts[0].zero_grad()
closs(x, y).backward()
opts[0].step()
same = sum(p._value.unsafe_buffer_pointer() == b for p, b in zip(model.parameters(), before))
print(f"fused Adam step updated {same} of {len(before)} parameter buffers in place (donated)", flush=True)

# the fourth session's changes: no host value per call. The compiled step's learning rate, the fused
# optimizer's coefficients and a Python number operand of a tensor moved with .to() are device arrays,
# made once (each was copied host-to-device on every call before; on an H200 that cost more than the
# MLP and CNN steps' programs).
from tracenn import _dispatch  # noqa: E402
from tracenn.optim.optimizer import _VALUES  # noqa: E402
from tracenn.runtime.refs import OptionRef  # noqa: E402
lr_ref = next(t for t in cstep._last.state_tensors if isinstance(t, OptionRef))
print("compiled step's lr input on", lr_ref._value.devices(), "| fused coefficients on",
      {d for a in _VALUES.values() for d in a.devices()}, "| x * 0.5 operand on",
      _dispatch.scalar_operand(0.5, x._value).devices(), flush=True)
drop_model = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.1)).to(DEV)
drop_c = torch.compile(drop_model)
xd = torch.randn(4, 16).to(DEV)
with torch.no_grad():
    for _ in range(3):
        drop_c(xd)
    ms_drop = timeit(lambda: drop_c(xd).sum())
print(f"compiled dropout call: RNG counter kept on the device: {drop_c._last.device_counters}, key on "
      f"{drop_c._last.rng_args()[0].devices()}, counter on {getattr(drop_c._last.rng_args()[1], 'devices', lambda: 'host')()}; "
      f"{ms_drop * 1e3:.0f} us per call", flush=True)
