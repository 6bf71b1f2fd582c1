"""Inference tensors in RL code: a rollout collected under ``inference_mode`` and then trained on
raises torch's errors (docs/design.md, "Inference tensors"), instead of running on silently where
torch would refuse; what torch allows keeps working."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F


def _rollout():
    policy = tracenn.nn.Linear(3, 2)
    with tracenn.inference_mode():
        obs = tracenn.ones(4, 3) * 0.5
        actions = policy(obs).argmax(-1)
    return policy, obs, actions


def test_saving_an_inference_tensor_for_backward_raises():
    policy, obs, actions = _rollout()
    assert obs.is_inference() and actions.is_inference()
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        F.cross_entropy(policy(obs * 1.0), actions)  # (gather saves the actions)
    w = tracenn.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        obs * w


def test_inplace_change_outside_inference_mode_raises():
    _, obs, _ = _rollout()
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        obs.add_(1)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside InferenceMode"):
        obs[0] = 2.0
    with tracenn.inference_mode():
        obs.add_(1)  # (inside inference_mode it may change)
    np.testing.assert_allclose(obs.numpy(), 1.5)


def test_what_torch_allows_still_works():
    policy, obs, actions = _rollout()
    data = obs.clone()  # a clone outside inference_mode is a normal tensor
    assert not data.is_inference()
    loss = F.cross_entropy(policy(data), actions.clone()) + (policy.weight - obs[:2]).sum()  # (sub saves nothing)
    loss = loss + tracenn.lerp(policy.weight, obs[:2], 0.5).sum()  # (lerp by a number saves nothing)
    loss.backward()
    assert policy.weight.grad is not None
    data.add_(1)
    with tracenn.no_grad():
        target = policy(obs).max(1).values  # reading inference tensors without autograd is fine
    assert target.shape == (4,)


def test_errors_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tracenn):
        w = lib.ones(3, requires_grad=True)
        with lib.inference_mode():
            x = lib.ones(3)
        with pytest.raises(RuntimeError) as got:
            x * w
        assert "Inference tensors cannot be saved for backward" in str(got.value)
        with pytest.raises(RuntimeError) as got:
            x.mul_(2)
        assert "Inplace update to inference tensor outside InferenceMode" in str(got.value)
