"""nn.utils: clip_grad_norm_ (and get_total_norm / clip_grads_with_norm_), clip_grad_value_,
parameters_to_vector / vector_to_parameters — against torch and by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close, to_np

GRADS = [np.array([[3.0, -4.0], [1.0, 2.0]], np.float32), np.array([-12.0, 0.5], np.float32)]


def _params(lib, grads=GRADS):
    ps = []
    for g in grads:
        p = lib.nn.Parameter(lib.zeros(*g.shape))
        p.grad = lib.tensor(g)
        ps.append(p)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf"), 0.5])
@pytest.mark.parametrize("max_norm", [1.0, 100.0])
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    ours, theirs = _params(tracenn), _params(torch)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert_close(total, ttotal, rtol=1e-6)
    for p, tp in zip(ours, theirs):
        assert_close(p.grad, tp.grad, rtol=1e-6)


def test_clip_grad_norm_by_hand():
    ps = _params(tracenn)
    total = nn.utils.clip_grad_norm_(ps, max_norm=1.0)
    flat = np.concatenate([g.ravel() for g in GRADS])
    norm = np.linalg.norm(flat)
    assert float(total) == pytest.approx(norm, rel=1e-6)
    scale = 1.0 / (norm + 1e-6)
    for p, g in zip(ps, GRADS):
        assert_close(p.grad, g * scale, rtol=1e-6)
    assert float(np.linalg.norm(np.concatenate([to_np(p.grad).ravel() for p in ps]))) == pytest.approx(1.0, rel=1e-5)


def test_large_max_norm_leaves_gradients_unchanged_and_single_tensor_works():
    ps = _params(tracenn)
    nn.utils.clip_grad_norm_(ps, max_norm=1e6)
    assert_close(ps[0].grad, GRADS[0])
    p = _params(tracenn)[1]
    total = nn.utils.clip_grad_norm_(p, 0.5, foreach=True)
    assert float(total) == pytest.approx(math.hypot(12.0, 0.5), rel=1e-6)


def test_parameters_without_grad_are_skipped_and_no_grads_give_zero():
    ps = _params(tracenn) + [nn.Parameter(tracenn.ones(3))]
    nn.utils.clip_grad_norm_(ps, 1.0)
    assert ps[2].grad is None
    assert float(nn.utils.clip_grad_norm_([nn.Parameter(tracenn.ones(2))], 1.0)) == 0.0


def test_clipping_is_not_recorded_by_autograd():
    model = nn.Linear(2, 1)
    model(tracenn.ones(3, 2)).sum().backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.1)
    assert not model.weight.grad.requires_grad and model.weight.grad.grad_fn is None


def test_nonfinite_norm(lib):
    ps = _params(lib, [np.array([1.0, float("nan")], np.float32)])
    with pytest.raises(RuntimeError, match="The total norm of order 2.0 for gradients from `parameters` is "
                                           "non-finite, so it cannot be clipped"):
        lib.nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    total = lib.nn.utils.clip_grad_norm_(ps, 1.0)  # scaled by the non-finite norm, as torch
    assert math.isnan(float(total))


def test_empty_generator_warns(lib):
    with pytest.warns(UserWarning, match="`parameters` is an empty generator, no gradient clipping will occur."):
        lib.nn.utils.clip_grad_norm_((p for p in []), 1.0)


def test_get_total_norm_and_clip_grads_with_norm(torch):
    grads = [tracenn.tensor(g) for g in GRADS]
    total = nn.utils.get_total_norm(grads, 3.0)
    assert_close(total, torch.nn.utils.get_total_norm([torch.tensor(g) for g in GRADS], 3.0), rtol=1e-6)
    ps, tps = _params(tracenn), _params(torch)
    nn.utils.clip_grads_with_norm_(ps, 2.0, total)
    torch.nn.utils.clip_grads_with_norm_(tps, 2.0, torch.tensor(to_np(total)))
    assert_close(ps[1].grad, tps[1].grad, rtol=1e-6)


def test_deprecated_clip_grad_norm_warns():
    with pytest.warns(FutureWarning, match="clip_grad_norm` is now deprecated in favor of"):
        nn.utils.clip_grad_norm(_params(tracenn), 1.0)


def test_clip_grad_value(lib):
    ps = _params(lib)
    assert lib.nn.utils.clip_grad_value_(ps, 2.5) is None
    assert ps[0].grad.tolist() == [[2.5, -2.5], [1.0, 2.0]] and ps[1].grad.tolist() == [-2.5, 0.5]
    p = _params(lib)[1]
    lib.nn.utils.clip_grad_value_(p, 1, foreach=False)
    assert p.grad.tolist() == [-1.0, 0.5]


def test_parameters_to_vector_and_back(lib):
    lib.manual_seed(0)
    m = lib.nn.Linear(3, 2)
    vec = lib.nn.utils.parameters_to_vector(m.parameters())
    assert tuple(vec.shape) == (8,)
    assert vec[:6].tolist() == m.weight.reshape(-1).tolist() and vec[6:].tolist() == m.bias.tolist()
    lib.nn.utils.vector_to_parameters(lib.arange(8.0), m.parameters())
    assert m.weight.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and m.bias.tolist() == [6.0, 7.0]
    assert isinstance(m.weight, lib.nn.Parameter) and m.weight.requires_grad
    out = m(lib.ones(1, 3))
    out.sum().backward()
    assert m.weight.grad.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]


def test_parameters_to_vector_is_differentiable():
    m = nn.Linear(2, 1)
    (nn.utils.parameters_to_vector(m.parameters()) * tracenn.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert to_np(m.weight.grad).tolist() == [[1.0, 2.0]] and to_np(m.bias.grad).tolist() == [3.0]


def test_vector_to_parameters_type_error(lib, message):
    with pytest.raises(TypeError) as e:
        lib.nn.utils.vector_to_parameters([1.0], lib.nn.Linear(1, 1).parameters())
    assert message(e) == "expected tracenn.Tensor, but got: list"
