"""A physics-informed net trained with L-BFGS as the PINN papers do: the closure takes first and
second derivatives with ``torch.autograd.grad(..., create_graph=True)``. L-BFGS.step itself
branches on values, so it stays eager and the closure is what gets compiled; compiling the whole
step says so."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False, steps=2):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    if init:
        init(model)
    x = torch.tensor(np.linspace(-1, 1, 16, dtype=np.float32)[:, None])
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=4, history_size=4, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        xr = x.clone().requires_grad_(True)
        u = model(xr)
        u_x = torch.autograd.grad(u, xr, grad_outputs=torch.ones_like(u), create_graph=True)[0]
        u_xx = torch.autograd.grad(u_x, xr, grad_outputs=torch.ones_like(u_x), create_graph=True)[0]
        residual = u_xx + np.pi ** 2 * torch.sin(np.pi * xr)  # u'' = -pi^2 sin(pi x)
        boundary = model(torch.tensor([[-1.0], [1.0]]))
        loss = (residual ** 2).mean() + (boundary ** 2).mean()
        loss.backward()
        return loss

    step = tracenn.compile(closure) if compiled else closure
    losses = [float(opt.step(step)) for _ in range(steps)]
    return {"losses": losses, "model": model}


@pytest.mark.slow
def test_lbfgs_with_compiled_closure_equals_eager():
    def init(m):
        init.state = {k: v.clone() for k, v in m.state_dict().items()} if not hasattr(init, "state") else init.state
        m.load_state_dict(init.state)
    eager = program(tracenn, init=init)
    compiled = program(tracenn, init=init, compiled=True)
    np.testing.assert_allclose(compiled["losses"], eager["losses"], rtol=1e-4)
    assert eager["losses"][-1] < eager["losses"][0]


def test_compiling_the_whole_lbfgs_step_says_to_compile_the_closure():
    model = tracenn.nn.Linear(2, 1)
    opt = tracenn.optim.LBFGS(model.parameters())
    x = tracenn.ones(4, 2)

    def step(x):
        def closure():
            opt.zero_grad()
            loss = model(x).pow(2).mean()
            loss.backward()
            return loss
        return opt.step(closure)
    pattern = r"(?s)LBFGS.step\(closure\).*closure = tracenn.compile"
    with pytest.raises(tracenn.errors.DataDependentError, match=pattern):
        tracenn.compile(step)(x)
    with pytest.warns(UserWarning, match="eagerly"):
        loss = tracenn.compile(step, fallback="eager")(x)
    assert np.isfinite(float(loss))


@pytest.mark.slow
def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, compiled=True), rtol=1e-4, atol=1e-5)
