"""A DQN-style value regression with a target network, as reinforcement-learning code writes it:
the target network is a deepcopy with frozen parameters, updated after every optimizer step by a
soft (Polyak) update under no_grad; the gradient norm is clipped and logged, and the loss of each
step is appended to a history list. Compiled, the whole step (the soft update and the history
append included) is one program (tests/compiler/test_stores.py covers the append's replay)."""
from __future__ import annotations

import copy

import numpy as np

import tracenn

TAU = 0.1


def program(torch, init=None, compiled=False, steps=6, programs=None):
    nn = torch.nn
    F = torch.nn.functional
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))
    if init is not None:
        init(net)
    target = copy.deepcopy(net)
    for p in target.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    history, norms = [], []

    def step(obs, action, reward, next_obs):
        with torch.no_grad():
            best_next = target(next_obs).max(dim=1).values
            goal = reward + 0.9 * best_next
        q = net(obs).gather(1, action[:, None]).squeeze(1)
        loss = F.smooth_l1_loss(q, goal)
        opt.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for t, p in zip(target.parameters(), net.parameters()):
                t.mul_(1 - TAU).add_(p, alpha=TAU)
        history.append(loss.detach())
        return norm

    run = tracenn.compile(step) if compiled else step
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs = torch.tensor(rng.standard_normal((16, 6)).astype(np.float32))
        action = torch.tensor(rng.integers(0, 3, 16))
        reward = torch.tensor(rng.standard_normal(16).astype(np.float32))
        next_obs = torch.tensor(rng.standard_normal((16, 6)).astype(np.float32))
        norms.append(float(run(obs, action, reward, next_obs)))
    if programs is not None:
        programs.append(run.explain())
    return {"loss": [float(h) for h in history], "grad_norm": norms,
            "target": np.concatenate([p.detach().numpy().ravel() for p in target.parameters()]),
            "model": net}


def test_trains_eager_equal_to_compiled(rw):
    explained = []
    eager, comp = program(tracenn), program(tracenn, compiled=True, programs=explained)
    rw.assert_runs_close(comp, eager, rtol=1e-5, atol=1e-6)
    assert len(comp["loss"]) == 6 and len(set(comp["loss"])) == 6  # one loss per step, appended by the program
    assert "eager" not in explained[0] and explained[0].count("compile ") <= 2, explained[0]


def test_matches_pytorch(rw):
    actual, expected = rw.with_torch(program)
    rw.assert_runs_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_compiled_step_matches_pytorch(rw):
    actual, expected = rw.with_torch(program, compiled=True)
    rw.assert_runs_close(actual, expected, rtol=1e-4, atol=1e-5)
