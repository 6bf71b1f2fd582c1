"""RL code mixes NumPy scalars into tensor math: SAC's tanh-squash correction is written
``2 * (np.log(2) - x - F.softplus(-2 * x))`` and discounts come as ``np.float32(gamma)``. A NumPy
scalar on the left of an operator must defer to the tensor (torch's Tensor sets
``__array_priority__``), giving a tensor that keeps its gradient, eagerly and compiled."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F


def _squash_logp(x):
    return (2 * (np.log(2) - x - F.softplus(-2 * x))).sum(-1)


@pytest.mark.parametrize("scalar", [np.float64(0.5), np.float32(0.5), np.int64(2)])
@pytest.mark.parametrize("op", ["-", "+", "*", "/", "**", "<"])
def test_numpy_scalar_left_operand_gives_tensor(scalar, op):
    x = tracenn.tensor([0.5, 1.5], requires_grad=True)
    out = eval(f"scalar {op} x")
    assert isinstance(out, tracenn.Tensor)
    want = eval(f"scalar {op} np.array([0.5, 1.5], np.float32)")
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-6)
    assert out.requires_grad == (op != "<")


def test_squash_correction_keeps_gradient():
    x = tracenn.tensor([[0.3, -1.2]], requires_grad=True)
    logp = _squash_logp(x)
    assert isinstance(logp, tracenn.Tensor) and logp.requires_grad
    logp.sum().backward()
    # d/dx 2(log2 - x - softplus(-2x)) = -2 tanh(x)
    np.testing.assert_allclose(x.grad.numpy(), -2 * np.tanh([[0.3, -1.2]]), rtol=1e-5)


def test_squash_correction_compiles():
    lin = tracenn.nn.Linear(3, 2)
    x = tracenn.randn(4, 3)
    eager = _squash_logp(lin(x))
    compiled = tracenn.compile(lambda v: _squash_logp(lin(v)))(x)
    np.testing.assert_allclose(compiled.detach().numpy(), eager.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_matches_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tracenn):
        x = lib.tensor([[0.3, -1.2]], requires_grad=True)
        (np.float32(0.99) * x - np.log(2)).sum().backward()
    got = tracenn.tensor([[0.3, -1.2]], requires_grad=True)
    ref = torch.tensor([[0.3, -1.2]], requires_grad=True)
    _squash_logp(got).sum().backward()
    ref_logp = (2 * (np.log(2) - ref - torch.nn.functional.softplus(-2 * ref))).sum(-1)
    ref_logp.sum().backward()
    np.testing.assert_allclose(got.grad.numpy(), ref.grad.numpy(), rtol=1e-5)
