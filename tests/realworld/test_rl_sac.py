"""Soft actor-critic as RL code writes it: a tanh-squashed Normal policy whose log-prob correction
is ``2 * (np.log(2) - u - softplus(-2 u))`` (a NumPy scalar on the left of a tensor), twin Q
networks with Polyak-averaged targets (``tp.data.mul_(1 - tau); tp.data.add_(tau * p.data)``), and
a learnable temperature ``log_alpha = torch.tensor(np.log(0.2), requires_grad=True)`` (float64,
NumPy's dtype) with its own Adam. The reparameterisation noise is injected, so all three runs
(torch, tracenn eager, tracenn compiled) see the same samples. The precision and NumPy-scalar fixes
have fast unit tests (test_rl_compiled_adam_precision.py, test_rl_numpy_scalar_operands.py); this
is the whole program."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import tracenn

TAU, GAMMA, TARGET_ENTROPY = 0.05, 0.99, -2.0


def program(torch, init=None, compiled=False, steps=3):
    nn, F = torch.nn, torch.nn.functional
    torch.manual_seed(0)

    class Agent(nn.Module):
        def __init__(self):
            super().__init__()
            self.actor = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 4))
            self.q1 = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
            self.q2 = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))

        def act(self, obs, noise):
            mu, log_std = self.actor(obs).chunk(2, -1)
            std = log_std.clamp(-5, 2).exp()
            u = mu + std * noise
            logp = torch.distributions.Normal(mu, std).log_prob(u).sum(-1)
            logp = logp - (2 * (np.log(2) - u - F.softplus(-2 * u))).sum(-1)
            return torch.tanh(u), logp

    agent = Agent()
    if init is not None:
        init(agent)
    q1_t, q2_t = copy.deepcopy(agent.q1), copy.deepcopy(agent.q2)
    log_alpha = torch.tensor(np.log(0.2), requires_grad=True)
    q_opt = torch.optim.Adam([*agent.q1.parameters(), *agent.q2.parameters()], lr=1e-3)
    pi_opt = torch.optim.Adam(agent.actor.parameters(), lr=1e-3)
    a_opt = torch.optim.Adam([log_alpha], lr=3e-2)

    def update(obs, act, rew, next_obs, done, noise, noise2):
        alpha = log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = agent.act(next_obs, noise2)
            sa2 = torch.cat([next_obs, a2], 1)
            q_next = torch.min(q1_t(sa2), q2_t(sa2)).squeeze(-1) - alpha * logp2
            y = rew + GAMMA * (1 - done) * q_next
        sa = torch.cat([obs, act], 1)
        q_loss = F.mse_loss(agent.q1(sa).squeeze(-1), y) + F.mse_loss(agent.q2(sa).squeeze(-1), y)
        q_opt.zero_grad()
        q_loss.backward()
        q_opt.step()
        a, logp = agent.act(obs, noise)
        sa_pi = torch.cat([obs, a], 1)
        pi_loss = (alpha * logp - torch.min(agent.q1(sa_pi), agent.q2(sa_pi)).squeeze(-1)).mean()
        pi_opt.zero_grad()
        pi_loss.backward()
        nn.utils.clip_grad_norm_(agent.actor.parameters(), 1.0)
        pi_opt.step()
        a_loss = -(log_alpha * (logp + TARGET_ENTROPY).detach()).mean()
        a_opt.zero_grad()
        a_loss.backward()
        a_opt.step()
        with torch.no_grad():
            for net, target in ((agent.q1, q1_t), (agent.q2, q2_t)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.data.mul_(1 - TAU)
                    tp.data.add_(TAU * p.data)
        return torch.stack([q_loss.detach(), pi_loss.detach()])

    run = tracenn.compile(update) if compiled else update
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(steps):
        f = lambda *shape: torch.tensor(rng.standard_normal(shape).astype(np.float32))  # noqa: E731
        obs, act, rew, next_obs = f(8, 3), torch.tanh(f(8, 2)), f(8), f(8, 3)
        done = torch.tensor((rng.random(8) < 0.2).astype(np.float32))
        losses.append(run(obs, act, rew, next_obs, done, f(8, 2), f(8, 2)).numpy())
    targets = np.concatenate([p.detach().numpy().ravel() for p in [*q1_t.parameters(), *q2_t.parameters()]])
    return {"losses": np.array(losses), "targets": targets, "log_alpha": float(log_alpha.detach()),
            "alpha_dtype": str(log_alpha.dtype).split(".")[-1], "model": agent}


@pytest.mark.slow
def test_compiled_equals_eager(rw):
    eager, comp = program(tracenn), program(tracenn, compiled=True)
    assert comp["alpha_dtype"] == "float64"
    assert comp["losses"].shape == (3, 2) and np.all(np.isfinite(comp["losses"]))
    del eager["alpha_dtype"], comp["alpha_dtype"]
    rw.assert_runs_close(comp, eager, rtol=1e-5, atol=1e-6)
    assert abs(comp["log_alpha"] - eager["log_alpha"]) < 1e-8  # (float64; 1e-6 apart before the fix)


@pytest.mark.slow
def test_compiled_matches_pytorch(rw):
    actual, expected = rw.with_torch(program, compiled=True)
    assert actual.pop("alpha_dtype") == expected.pop("alpha_dtype") == "float64"
    rw.assert_runs_close(actual, expected, rtol=1e-4, atol=1e-5)
