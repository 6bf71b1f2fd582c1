"""Distances: pairwise_distance, cosine_similarity, pdist, cdist and the two modules, against torch
and NumPy (values and gradients, including equal points and zero vectors)."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn.nn.functional._distance import cdist
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
A = RNG.standard_normal((4, 5)).astype(np.float32)
B = RNG.standard_normal((4, 5)).astype(np.float32)
B[1] = A[1]          # equal points: distance eps, gradient finite
A[2] = 0.0           # a zero vector for cosine similarity


def _pair(fn, a, b, lib):
    ta, tb = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
    out = fn(ta, tb)
    out.backward(lib.ones_like(out) * lib.arange(1.0, 1.0 + out.numel()).reshape(tuple(out.shape)))
    return out, ta.grad, tb.grad


def _check(fn, tfn, a, b, torch, tol=1e-5):
    ours, theirs = _pair(fn, a, b, tracenn), _pair(tfn, a, b, torch)
    for o, t in zip(ours, theirs):
        assert np.isfinite(to_np(o)).all()
        assert_close(o, t, rtol=tol, atol=tol)


@pytest.mark.parametrize("p,keepdim", [(2.0, False), (2.0, True), (1.0, False), (3.0, False), (float("inf"), False),
                                       (0.5, False)])
def test_pairwise_distance_matches_torch(torch, p, keepdim):
    _check(lambda a, b: F.pairwise_distance(a, b, p, keepdim=keepdim),
           lambda a, b: torch.nn.functional.pairwise_distance(a, b, p, keepdim=keepdim), A, B, torch)


@pytest.mark.parametrize("a,b", [(A[0], B[0]), (A[:1], B), (A, B[0])], ids=["1d", "bcast-row", "bcast-vec"])
def test_pairwise_distance_shapes_match_torch(torch, a, b):
    _check(F.pairwise_distance, torch.nn.functional.pairwise_distance, a, b, torch)


@pytest.mark.parametrize("dim", [1, 0, -1])
def test_cosine_similarity_matches_torch(torch, dim):
    _check(lambda a, b: F.cosine_similarity(a, b, dim), lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim),
           A, B, torch)


def test_cosine_similarity_broadcasts_and_clamps_tiny_norms(torch):
    _check(F.cosine_similarity, torch.nn.functional.cosine_similarity, A[:1], B, torch)
    _check(lambda a, b: F.cosine_similarity(a, b, eps=0.5), lambda a, b: torch.nn.functional.cosine_similarity(a, b, eps=0.5),
           A * 0.01, B, torch)


def test_cosine_similarity_numpy_reference():
    out = to_np(F.cosine_similarity(tracenn.tensor(A), tracenn.tensor(B)))
    na, nb = np.maximum(np.linalg.norm(A, axis=1), 1e-8), np.maximum(np.linalg.norm(B, axis=1), 1e-8)
    np.testing.assert_allclose(out, ((A / na[:, None]) * (B / nb[:, None])).sum(1), rtol=1e-5, atol=1e-7)
    assert out[2] == 0.0 and abs(out[1] - 1) < 1e-6  # the zero vector; equal vectors


@pytest.mark.parametrize("p", [2.0, 1.0, float("inf"), 0.5])
def test_pdist_matches_torch(torch, p):
    x = np.concatenate([A, A[:1]])  # a duplicate row: a zero distance with a zero gradient
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = F.pdist(xt, p), torch.nn.functional.pdist(tx, p)
    assert_close(out, tout, rtol=1e-5, atol=1e-6)
    out.backward(tracenn.arange(1.0, 1.0 + out.numel()))
    tout.backward(torch.arange(1.0, 1.0 + tout.numel()))
    if p != float("inf"):  # torch's inf-norm gradient does not split ties; compare elsewhere
        assert_close(xt.grad, tx.grad, rtol=1e-4, atol=1e-5)
    assert np.isfinite(to_np(xt.grad)).all()


def test_pdist_numpy_reference():
    out = to_np(F.pdist(tracenn.tensor(A)))
    i, j = np.triu_indices(4, 1)
    np.testing.assert_allclose(out, np.linalg.norm(A[i] - A[j], axis=1), rtol=1e-6)


@pytest.mark.parametrize("rows,p,mode", [(4, 2.0, "use_mm_for_euclid_dist_if_necessary"), (30, 2.0, "use_mm_for_euclid_dist_if_necessary"),
                                         (4, 1.0, "use_mm_for_euclid_dist_if_necessary"), (4, 2.0, "use_mm_for_euclid_dist")])
def test_cdist_matches_torch(torch, rows, p, mode):
    x1 = RNG.standard_normal((rows, 5)).astype(np.float32)
    out = cdist(tracenn.tensor(x1), tracenn.tensor(B[:3]), p, mode)
    assert_close(out, torch.cdist(torch.tensor(x1), torch.tensor(B[:3]), p, mode), rtol=1e-5, atol=1e-5)


def test_modules(lib):
    m = lib.nn.PairwiseDistance(p=1.0, eps=0.0, keepdim=True)
    assert repr(m) == "PairwiseDistance()" and m.norm == 1.0 and m.keepdim
    out = m(lib.tensor([[0.0, 0.0]]), lib.tensor([[3.0, 4.0]]))
    assert out.tolist() == [[7.0]]
    c = lib.nn.CosineSimilarity(dim=0)
    assert repr(c) == "CosineSimilarity()" and c.eps == 1e-8
    assert float(c(lib.tensor([1.0, 0.0]), lib.tensor([2.0, 0.0]))) == pytest.approx(1.0)


def test_errors():
    with pytest.raises(RuntimeError, match="pdist only supports 2D tensors, got: 1D"):
        F.pdist(tracenn.ones(3))
    with pytest.raises(RuntimeError, match="pdist only supports non-negative p values"):
        F.pdist(tracenn.tensor(A), -1.0)
    with pytest.raises(RuntimeError, match="expected common dtype to be floating point"):
        F.cosine_similarity(tracenn.tensor([[1, 2]]), tracenn.tensor([[1, 2]]))
    with pytest.raises(RuntimeError, match="X1 and X2 must have the same number of columns. X1: 5 X2: 4"):
        cdist(tracenn.tensor(A), tracenn.ones(2, 4))


# ---- tracenn.norm's gradient at zero entries (the distances' building block) --------------------------

@pytest.mark.parametrize("p", [0.5, 0.25, 0, -1, -0.5, 1, 1.5, 3])
def test_norm_gradient_is_zero_at_zero_entries_without_torch(p):
    x = tracenn.tensor([0.0, 1.0, -2.0, 0.0], requires_grad=True)
    n = tracenn.norm(x, p)
    n.backward()
    g = to_np(x.grad)
    assert np.isfinite(g).all() and g[0] == 0 and g[3] == 0
    if p == 0:
        assert n.item() == 2.0 and np.array_equal(g, np.zeros(4))  # the count's gradient is 0
    elif p > 0:
        v = np.array([1.0, 2.0])
        s = (v ** p).sum()
        expected = s ** (1 / p - 1) * v ** (p - 1) * np.array([1, -1])
        assert np.allclose(g[1:3], expected, rtol=1e-5)
    z = tracenn.zeros(3, requires_grad=True)
    tracenn.norm(z, p).backward()
    assert np.array_equal(to_np(z.grad), np.zeros(3))


@pytest.mark.parametrize("p", [0.5, 0.25, -1, 1, 1.5, 3, 0])
@pytest.mark.parametrize("dim", [None, 1])
def test_norm_values_and_gradients_match_torch(torch, p, dim):
    x = np.array([[0.0, 1.0, -2.0], [0.0, 0.0, 0.0], [3.0, 0.0, -0.5]], np.float32)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    n, tn = tracenn.norm(xt, p, dim), torch.norm(tx, p, dim)
    assert_close(n, tn, rtol=1e-5, atol=1e-6)
    n.sum().backward()
    tn.sum().backward()
    # torch leaves .grad None for p=0 (an undefined gradient); tracenn gives the zeros it stands for
    expected = np.zeros_like(x) if tx.grad is None else to_np(tx.grad)
    assert_close(xt.grad, expected, rtol=1e-5, atol=1e-6)


def test_norm_p0_counts_inf_and_nan_and_keeps_them_out_of_the_gradient():
    x = tracenn.tensor([float("inf"), float("nan"), 0.0, 2.0], requires_grad=True)
    n = tracenn.norm(x, 0)
    n.backward()
    assert n.item() == 3.0 and np.array_equal(to_np(x.grad), np.zeros(4))


def test_pdist_and_pairwise_distance_with_small_p_have_finite_gradients(torch):
    x = np.array([[0.0, 1.0], [0.0, 3.0], [2.0, 1.0]], np.float32)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.pdist(xt, 0.5).sum().backward()
    torch.nn.functional.pdist(tx, 0.5).sum().backward()
    assert_close(xt.grad, tx.grad, rtol=1e-5, atol=1e-6)
