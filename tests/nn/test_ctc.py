"""ctc_loss beyond its values (tests/nn/test_loss.py checks those): targets and lengths that are
inputs of a compiled call (a DataLoader batch inside a compiled training step), and torch's NaN
gradient for an alignment that cannot exist (what ``zero_infinity`` is for)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn.errors import DataDependentError
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 3, 4)).astype(np.float32)  # T=6, N=3, C=4
TARGETS = np.array([[1, 2, 2], [3, 1, 0], [2, 0, 0]])       # padded; the repeated 2 needs a blank
IN_LEN, TG_LEN = [6, 5, 3], [3, 2, 1]


def _loss_and_grad(fn, *args):
    x = tracenn.tensor(LOGITS, requires_grad=True)
    loss = fn(x, *args)
    loss.sum().backward()
    return to_np(loss), to_np(x.grad)


def _ctc(reduction):
    def loss(x, targets, in_len, tg_len):
        return F.ctc_loss(x.log_softmax(2), targets, in_len, tg_len, reduction=reduction)
    return loss


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_compiled_ctc_takes_targets_and_lengths_as_inputs(reduction):
    """Padded targets and both length vectors are tensors of the compiled call (unknown while
    tracing): the loss and its gradient are eager's (the call used to raise DataDependentError)."""
    args = tracenn.tensor(TARGETS), tracenn.tensor(IN_LEN), tracenn.tensor(TG_LEN)
    want, want_grad = _loss_and_grad(_ctc(reduction), *args)
    compiled = tracenn.compile(_ctc(reduction))
    got, got_grad = _loss_and_grad(compiled, *args)
    assert_close(got, want, rtol=1e-5)
    assert_close(got_grad, want_grad, rtol=1e-5, atol=1e-6)
    # new targets and lengths of the same shapes reuse the program and still give eager's numbers
    other = tracenn.tensor([[2, 1, 3], [1, 1, 1], [3, 2, 0]]), tracenn.tensor([5, 6, 4]), tracenn.tensor([2, 3, 2])
    assert_close(_loss_and_grad(compiled, *other)[0], _loss_and_grad(_ctc(reduction), *other)[0], rtol=1e-5)
    assert compiled.explain().count("compile ") == 1


def test_compiled_ctc_concatenated_targets():
    """1-D concatenated targets are cut by the target lengths: as a list they compile (the targets
    an input of the call); as a tensor input they cannot be known, and the error says what to pass."""
    flat = tracenn.tensor(np.concatenate([TARGETS[i, :n] for i, n in enumerate(TG_LEN)]))
    want, want_grad = _loss_and_grad(_ctc("sum"), flat, IN_LEN, TG_LEN)
    got, got_grad = _loss_and_grad(tracenn.compile(lambda x, t: _ctc("sum")(x, t, IN_LEN, TG_LEN)), flat)
    assert_close(got, want, rtol=1e-5)
    assert_close(got_grad, want_grad, rtol=1e-5, atol=1e-6)
    with pytest.raises(DataDependentError, match="concatenated.*Python list, or pass padded"):
        _loss_and_grad(tracenn.compile(_ctc("sum")), flat, IN_LEN, tracenn.tensor(TG_LEN))


def _impossible(zero_infinity, reduction="none"):
    x = tracenn.tensor(LOGITS, requires_grad=True)
    # "1 2 2" needs four frames (1, 2, blank, 2): sample 0 has three
    loss = F.ctc_loss(x.log_softmax(2), tracenn.tensor(TARGETS), [3, 5, 3], TG_LEN, reduction=reduction,
                      zero_infinity=zero_infinity)
    loss.sum().backward()
    return to_np(loss), to_np(x.grad)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_impossible_alignment_gradient_is_nan_on_its_frames(reduction):
    """torch: an impossible sample's loss is inf and its gradient NaN at the frames it has (t < 3),
    zero past them; the other samples' gradients stay finite (tracenn gave zeros, hiding the inf)."""
    loss, grad = _impossible(False, reduction)
    assert math.isinf(float(np.sum(loss)))
    assert np.isnan(grad[:3, 0]).all() and not grad[3:, 0].any()
    assert np.isfinite(grad[:, 1:]).all() and grad[:, 1:].any()
    # zero_infinity: a zero loss and zero gradient for it, the others unchanged
    loss0, grad0 = _impossible(True, reduction)
    assert np.isfinite(loss0).all() and not grad0[:, 0].any()
    assert_close(grad0[:, 1:], grad[:, 1:], rtol=1e-6)


def test_compiled_impossible_alignment_matches_eager():
    x = tracenn.tensor(LOGITS, requires_grad=True)
    f = tracenn.compile(lambda x, t, il: F.ctc_loss(x.log_softmax(2), t, il, TG_LEN, reduction="none"))
    loss = f(x, tracenn.tensor(TARGETS), tracenn.tensor([3, 5, 3]))
    loss.sum().backward()
    want_loss, want_grad = _impossible(False)
    assert_close(to_np(loss), want_loss)
    np.testing.assert_array_equal(np.isnan(to_np(x.grad)), np.isnan(want_grad))
    assert_close(np.nan_to_num(to_np(x.grad)), np.nan_to_num(want_grad), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("zero_infinity", [False, True])
def test_impossible_alignment_matches_torch(torch, zero_infinity):
    x = torch.tensor(LOGITS, requires_grad=True)
    loss = torch.nn.functional.ctc_loss(x.log_softmax(2), torch.tensor(TARGETS), torch.tensor([3, 5, 3]),
                                        torch.tensor(TG_LEN), reduction="none", zero_infinity=zero_infinity)
    loss.sum().backward()
    got_loss, got_grad = _impossible(zero_infinity)
    assert_close(got_loss, loss.detach().numpy(), rtol=1e-5)
    np.testing.assert_array_equal(np.isnan(got_grad), np.isnan(x.grad.numpy()))
    assert_close(np.nan_to_num(got_grad), np.nan_to_num(x.grad.numpy()), rtol=1e-4, atol=1e-5)
