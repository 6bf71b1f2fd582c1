"""tracenn.utils.checkpoint: activation checkpointing gives the gradients of the plain run,
recomputes the segment in the backward (with the same random draws), and keeps torch's
warnings and errors; eager and compiled."""
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from tracenn.utils.checkpoint import checkpoint, checkpoint_sequential
from helpers import to_np


class Block(nn.Module):
    """Records whether grad mode was on each time it ran (forward once without, recompute with)."""

    def __init__(self, p=0.0):
        super().__init__()
        self.lin1, self.lin2, self.drop = nn.Linear(4, 8), nn.Linear(8, 4), nn.Dropout(p)
        self.runs = []

    def forward(self, x, scale=1.0):
        self.runs.append(tracenn.is_grad_enabled())
        return self.lin2(self.drop(F.gelu(self.lin1(x)))) * scale


def _pair(p=0.0):
    tracenn.manual_seed(0)
    a = Block(p)
    tracenn.manual_seed(0)
    return a, Block(p)


def _grads(m):
    return [to_np(p.grad) for p in m.parameters()]


@pytest.mark.parametrize("reentrant", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_gradients_equal_the_plain_run(reentrant, p):
    plain, ck = _pair(p)
    x1 = tracenn.randn(3, 4, requires_grad=True)
    x2 = x1.detach().requires_grad_()
    tracenn.manual_seed(7)
    plain(x1).pow(2).sum().backward()
    tracenn.manual_seed(7)
    y = checkpoint(ck, x2, use_reentrant=reentrant)
    tracenn.manual_seed(123)  # other draws between forward and backward: the recompute restores the state
    tracenn.rand(5)
    y.pow(2).sum().backward()
    for a, b in zip(_grads(plain), _grads(ck)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(to_np(x2.grad), to_np(x1.grad), rtol=1e-6, atol=1e-7)
    assert ck.runs == [False, True], "forward without recording, then recomputed in the backward"


def test_non_reentrant_reaches_parameters_when_no_input_requires_grad():
    plain, ck = _pair()
    x = tracenn.randn(3, 4)
    plain(x).sum().backward()
    y = checkpoint(ck, x, use_reentrant=False)
    assert y.requires_grad
    y.sum().backward()
    for a, b in zip(_grads(plain), _grads(ck)):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_reentrant_without_grad_inputs_warns_and_gives_no_graph():
    _, ck = _pair()
    with pytest.warns(UserWarning, match="None of the inputs have requires_grad=True. Gradients will be None"):
        y = checkpoint(ck, tracenn.randn(3, 4), use_reentrant=True)
    assert not y.requires_grad


def test_keyword_arguments_and_several_outputs():
    plain, ck = _pair()
    x1 = tracenn.randn(3, 4, requires_grad=True)
    x2 = x1.detach().requires_grad_()

    def two(m, x):
        h = m(x, scale=2.0)
        return h, h.sum(dim=1)

    a, b = two(plain, x1)
    (a.sum() + b.sum()).backward()
    c, d = checkpoint(lambda x, scale: (ck(x, scale=scale), ck(x, scale=scale).sum(dim=1)), x2,
                      scale=2.0, use_reentrant=False)
    (c.sum() + d.sum()).backward()
    np.testing.assert_allclose(to_np(x2.grad), to_np(x1.grad), rtol=1e-6, atol=1e-6)


def test_torchs_warnings_and_errors():
    _, ck = _pair()
    x = tracenn.randn(2, 4, requires_grad=True)
    with pytest.warns(UserWarning, match="the use_reentrant parameter should be passed explicitly"):
        checkpoint(ck, x)
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(ck, x, use_reentrant=True, scale=2.0)
    with pytest.raises(ValueError, match="Passing `context_fn` or `debug` is only supported when use_reentrant=False."):
        checkpoint(ck, x, use_reentrant=True, debug=True)
    with pytest.raises(ValueError, match="determinism_check should be one of"):
        checkpoint(ck, x, use_reentrant=False, determinism_check="strict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tracenn.no_grad():  # nothing to save memory for: a plain call
            assert not checkpoint(ck, x, use_reentrant=False).requires_grad


def test_checkpoint_sequential():
    tracenn.manual_seed(3)
    seq = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(5)])
    x1 = tracenn.randn(2, 4, requires_grad=True)
    x2 = x1.detach().requires_grad_()
    seq(x1).sum().backward()
    ref = _grads(seq) + [to_np(x1.grad)]
    seq.zero_grad()
    checkpoint_sequential(seq, 2, x2, use_reentrant=False).sum().backward()
    for a, b in zip(ref, _grads(seq) + [to_np(x2.grad)]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_in_a_compiled_step_the_segment_is_traced_inline():
    plain, ck = _pair()
    opt_p = tracenn.optim.SGD(plain.parameters(), lr=0.1)
    opt_c = tracenn.optim.SGD(ck.parameters(), lr=0.1)
    x = tracenn.randn(3, 4)

    def step_plain():
        opt_p.zero_grad()
        loss = plain(x).pow(2).mean()
        loss.backward()
        opt_p.step()
        return loss

    @tracenn.compile
    def step_ck():
        opt_c.zero_grad()
        loss = checkpoint(ck, x, use_reentrant=False).pow(2).mean()
        loss.backward()
        opt_c.step()
        return loss

    for _ in range(3):
        np.testing.assert_allclose(to_np(step_ck()), to_np(step_plain()), rtol=1e-6)
    for a, b in zip(plain.parameters(), ck.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-6, atol=1e-7)
    assert not step_ck._last.eager


def test_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.utils.checkpoint import checkpoint as tcheckpoint
    tracenn.manual_seed(0)
    lin = nn.Linear(4, 3)
    tlin = torch.nn.Linear(4, 3)
    tlin.load_state_dict({k: torch.tensor(to_np(v)) for k, v in lin.state_dict().items()})
    x = tracenn.randn(2, 4, requires_grad=True)
    tx = torch.tensor(to_np(x), requires_grad=True)
    checkpoint(lambda a: F.silu(lin(a)), x, use_reentrant=False).sum().backward()
    tcheckpoint(lambda a: torch.nn.functional.silu(tlin(a)), tx, use_reentrant=False).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(lin.weight.grad), tlin.weight.grad.numpy(), rtol=1e-5, atol=1e-6)
