"""Per-sample gradients with torch.func's recipe, and a DP-SGD training step built on them.

    python examples/per_sample_gradients.py [--steps N] [--eager]

DP-SGD (Abadi et al., 2016) clips every sample's gradient to a norm bound before averaging and
adds Gaussian noise, so no single sample moves the model much. It needs one gradient per sample:
``vmap(grad(loss))`` over the batch, written exactly as with ``torch.func``. The whole step
(per-sample gradients, clipping, noise, the optimizer update) is one ``tracenn.compile`` program;
``--eager`` runs it op by op instead, with the same numbers for the same seed.

The data are synthetic (two Gaussian blobs per class in 20 dimensions), so the script needs no
downloads; it prints the loss and accuracy as it trains.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tracenn as torch  # noqa: E402
import tracenn.nn as nn  # noqa: E402
import tracenn.nn.functional as F  # noqa: E402
from tracenn.func import functional_call, grad, vmap  # noqa: E402

FEATURES, CLASSES, BATCH = 20, 4, 64
CLIP, NOISE, LR = 1.0, 0.5, 0.5


def make_data(n, seed=0):
    """``n`` points: class c is a Gaussian blob around a centre of its own (the same centres for
    every ``seed``; the seed draws the points)."""
    centres = torch.randn(CLASSES, FEATURES, generator=torch.Generator().manual_seed(1234)) * 0.5
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, CLASSES, (n,), generator=g)
    x = centres[y] + torch.randn(n, FEATURES, generator=g)
    return x, y


def make_step(model, opt):
    params = dict(model.named_parameters())  # the optimizer steps these tensors

    def loss_one(p, x, y):  # the loss of one sample, as a function of the parameters
        return F.cross_entropy(functional_call(model, p, (x.unsqueeze(0),)), y.unsqueeze(0))

    per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))

    def step(x, y):
        detached = {k: v.detach() for k, v in params.items()}
        grads = per_sample(detached, x, y)  # {name: [batch, *shape]}
        norms = torch.stack([g.flatten(1).norm(dim=1) for g in grads.values()], 1).norm(dim=1)
        scale = (CLIP / (norms + 1e-6)).clamp(max=1.0)  # each sample's gradient clipped to norm CLIP
        for name, p in params.items():
            g = grads[name]
            clipped = (g * scale.reshape((-1,) + (1,) * (g.dim() - 1))).sum(0)
            p.grad = (clipped + NOISE * CLIP * torch.randn_like(clipped)) / x.shape[0]
        opt.step()
        with torch.no_grad():
            return F.cross_entropy(functional_call(model, detached, (x,)), y)
    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--eager", action="store_true", help="run the step op by op instead of compiled")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, CLASSES))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    step = make_step(model, opt)
    if not args.eager:
        step = torch.compile(step)
    x_all, y_all = make_data(BATCH * 16)
    x_test, y_test = make_data(512, seed=1)
    losses = []
    t0 = time.perf_counter()
    for i in range(args.steps):
        if i == 2:  # (the first two calls compile: one makes the optimizer's state)
            t0 = time.perf_counter()
        j = i % 16
        losses.append(float(step(x_all[j * BATCH:(j + 1) * BATCH], y_all[j * BATCH:(j + 1) * BATCH])))
        if (i + 1) % max(1, args.steps // 5) == 0:
            print(f"step {i + 1:4d}  loss {sum(losses[-10:]) / len(losses[-10:]):.4f}")
    with torch.no_grad():
        acc = float((model(x_test).argmax(1) == y_test).float().mean())
    print(f"test accuracy {acc:.3f}; {(time.perf_counter() - t0) / max(args.steps - 2, 1) * 1e3:.2f} ms a step "
          f"({'eager' if args.eager else 'compiled'}; after the first two)")
    return losses, acc


if __name__ == "__main__":
    main()
