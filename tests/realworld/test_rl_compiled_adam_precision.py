"""A compiled training step's Adam family equals eager mode's numbers (tracenn/optim/_functional.py,
``_host_math``). Eagerly the step count is a Python number and the bias corrections are float64
host math; traced, the count is a float32 tensor, and ``1 - 0.999 ** t`` in float32 is off by
1e-5 relative. That showed in SAC's temperature: ``log_alpha = torch.tensor(np.log(0.2),
requires_grad=True)`` is float64 (NumPy's float64), stepped by its own Adam with lr=3e-4..0.1,
and drifted 3e-6 from eager (and torch) in a compiled step; float32 parameters with a large
learning rate drifted likewise."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

OPTIMIZERS = ["Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Adagrad"]


def _run(lib, optname, dtype, compiled):
    log_alpha = lib.tensor(np.log(0.2), dtype=dtype, requires_grad=True)
    w = lib.tensor([0.3, -1.7], dtype=dtype, requires_grad=True)
    opt = getattr(lib.optim, optname)([log_alpha, w], lr=0.1)

    def step(logp):
        loss = -(log_alpha * (logp + 2.0)).mean() + (w * logp[:2]).sin().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    run = tracenn.compile(step) if compiled else step
    for i in range(4):
        run(lib.tensor([0.5, 1.0 + i, -3.0], dtype=dtype))
    return np.concatenate([log_alpha.detach().numpy().ravel(), w.detach().numpy()])


@pytest.mark.parametrize("optname", OPTIMIZERS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_compiled_step_equals_eager(optname, dtype):
    dt = getattr(tracenn, dtype)
    eager = _run(tracenn, optname, dt, compiled=False)
    compiled = _run(tracenn, optname, dt, compiled=True)
    tol = 1e-14 if dtype == "float64" else 3e-7  # (was 3e-6 apart in both dtypes)
    np.testing.assert_allclose(compiled, eager, rtol=0, atol=tol)


def test_adam_first_step_known_value():
    # Adam's first step moves each parameter by lr * sign(grad) (up to eps), whatever the dtype.
    w = tracenn.tensor([0.5, -2.0], dtype=tracenn.float64, requires_grad=True)
    opt = tracenn.optim.Adam([w], lr=0.1, eps=1e-12)

    def step():
        opt.zero_grad()
        (w * tracenn.tensor([3.0, -0.25], dtype=tracenn.float64)).sum().backward()
        opt.step()

    tracenn.compile(step)()
    np.testing.assert_allclose(w.detach().numpy(), [0.4, -1.9], rtol=0, atol=1e-12)


def test_sac_temperature_matches_torch():
    torch = pytest.importorskip("torch")
    want = _run(torch, "Adam", torch.float64, compiled=False)
    got = _run(tracenn, "Adam", tracenn.float64, compiled=True)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
