"""Train a tracenn model with pure JAX (optax when installed), then load the result back and evaluate it.

Run: python examples/jax_interop.py        (a few seconds on 2 CPU cores)

The model is written as for PyTorch (``import tracenn as torch``). ``tracenn.func.to_jax`` turns it
into a pure function ``fn(state, x, rng=...) -> (logits, new_state)`` plus its state pytree; the
training loop below is plain JAX: ``jax.value_and_grad``, ``jax.jit`` and an optimizer over the
``"params"`` pytree — optax's Adam if optax is importable, otherwise the same Adam written out
with ``jax.tree_util`` (the script says which). Afterwards ``load_state_pytree`` writes the
trained arrays into the tracenn model, bit for bit, and tracenn evaluates it, eagerly and compiled.

Flags: --steps N, --batch-size, --lr, --seed, --no-optax (use the hand-written Adam even when optax
is there), --quiet. ``main(argv)`` returns the run's figures as a dict (the tests call it in-process).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import tracenn as torch
from tracenn import nn
from tracenn.func import load_state_pytree, to_jax


class MLP(nn.Module):
    """Two hidden layers with dropout: 2 features in, ``classes`` logits out."""

    def __init__(self, hidden: int = 64, classes: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Dropout(0.1),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, classes),
        )

    def forward(self, x):
        return self.net(x)


def spirals(n: int, classes: int, rng: np.random.Generator):
    """``n`` points on ``classes`` interleaved noisy spiral arms: (float32 [n, 2], int64 [n])."""
    labels = rng.integers(0, classes, n)
    r = rng.uniform(0.05, 1.0, n)
    theta = 4.0 * r + labels * (2 * np.pi / classes) + rng.normal(0, 0.15, n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1).astype(np.float32)
    return x, labels.astype(np.int64)


# ---- the optimizer: optax's Adam, or the same update written out ------------------------------------

def make_adam(lr: float, use_optax: bool = True):
    """(name, init(params) -> opt_state, update(grads, opt_state, params) -> (params, opt_state))."""
    if use_optax:
        try:
            import optax
        except ImportError:
            pass
        else:
            tx = optax.adam(lr)

            def update(grads, opt_state, params):
                updates, opt_state = tx.update(grads, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            return "optax.adam", tx.init, update

    b1, b2, eps = 0.9, 0.999, 1e-8
    tree_map = jax.tree_util.tree_map

    def init(params):
        zeros = tree_map(jnp.zeros_like, params)
        return {"step": jnp.zeros((), jnp.int32), "mu": zeros, "nu": zeros}

    def update(grads, opt_state, params):
        step = opt_state["step"] + 1
        mu = tree_map(lambda m, g: b1 * m + (1 - b1) * g, opt_state["mu"], grads)
        nu = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, opt_state["nu"], grads)
        c1 = 1 - b1 ** step.astype(jnp.float32)
        c2 = 1 - b2 ** step.astype(jnp.float32)
        params = tree_map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2) + eps), params, mu, nu)
        return params, {"step": step, "mu": mu, "nu": nu}

    return "hand-written Adam (optax is not installed)" if use_optax else "hand-written Adam", init, update


# ---- training in JAX ---------------------------------------------------------------------------------

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-optax", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    say = (lambda *a: None) if args.quiet else print

    torch.manual_seed(args.seed)
    data = np.random.default_rng(args.seed)
    x_train, y_train = spirals(4096, 3, data)
    x_test, y_test = spirals(1024, 3, data)

    model = MLP()
    # Trace once, in training mode, for one batch shape: shapes and the mode are static in `fn`.
    fn, state = to_jax(model, jax.ShapeDtypeStruct((args.batch_size, 2), jnp.float32))
    params, buffers = state["params"], state["buffers"]
    opt_name, opt_init, opt_update = make_adam(args.lr, use_optax=not args.no_optax)
    opt_state = opt_init(params)
    say(f"training {type(model).__name__} ({sum(a.size for a in jax.tree_util.tree_leaves(params))} "
        f"parameters) in JAX with {opt_name}")

    def loss_fn(params, x, y, rng):
        logits, new_state = fn({"params": params, "buffers": buffers}, x, rng=rng)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], 1)), new_state

    @jax.jit
    def train_step(params, opt_state, x, y, rng):
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y, rng)
        params, opt_state = opt_update(grads, opt_state, params)
        return params, opt_state, loss

    key = jax.random.PRNGKey(args.seed)
    n_batches = len(x_train) // args.batch_size
    start = time.perf_counter()
    losses = []
    for step in range(args.steps):
        i = step % n_batches
        if i == 0:
            order = data.permutation(len(x_train))
        idx = order[i * args.batch_size:(i + 1) * args.batch_size]
        key, sub = jax.random.split(key)  # a fresh dropout mask every step
        params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx], sub)
        losses.append(float(loss))
        if step % max(1, args.steps // 6) == 0 or step == args.steps - 1:
            say(f"step {step:4d}  loss {losses[-1]:.4f}")
    train_s = time.perf_counter() - start

    # ---- back into tracenn: write the arrays in, evaluate with tracenn -------------------------------
    load_state_pytree(model, {"params": params, "buffers": buffers})
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(x_test))
        accuracy = (logits.argmax(1) == torch.tensor(y_test)).float().mean().item()
        compiled_logits = torch.compile(model)(torch.tensor(x_test))
    # The same numbers from the JAX side: an eval-mode function traced for the test set's shape.
    fn_eval, _ = to_jax(model, jax.ShapeDtypeStruct(x_test.shape, jnp.float32))
    jax_logits, _ = jax.jit(fn_eval)({"params": params, "buffers": buffers}, x_test)
    max_diff = float(np.max(np.abs(logits.numpy() - np.asarray(jax_logits))))
    compiled_diff = float(np.max(np.abs(compiled_logits.numpy() - np.asarray(jax_logits))))
    exact = all(np.array_equal(np.asarray(t._value), np.asarray(params[n])) for n, t in model.named_parameters())
    say(f"trained {args.steps} steps in {train_s:.1f} s; tracenn eval accuracy {accuracy:.3f}; "
        f"parameters loaded bit-exact: {exact}; |tracenn - jax| logits: eager {max_diff:.1e}, "
        f"compiled {compiled_diff:.1e}")
    return {"optimizer": opt_name, "first_loss": losses[0], "final_loss": float(np.mean(losses[-10:])),
            "accuracy": accuracy, "exact": exact, "max_diff": max_diff, "compiled_diff": compiled_diff,
            "train_seconds": train_s}


if __name__ == "__main__":
    main()
