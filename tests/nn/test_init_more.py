"""nn.init additions: eye_, dirac_ (exact, against torch), trunc_normal_, orthogonal_ and sparse_
(properties and moments; tracenn's random streams are not torch's)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
from tracenn.nn import init
from helpers import to_np

SHAPE = (200, 50)  # one shape for the random initialisations (each kernel compiles once)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (4, 2)])
def test_eye_matches_torch(lib, shape):
    w = lib.nn.init.eye_(lib.empty(*shape))
    assert w.tolist() == np.eye(*shape).tolist()


@pytest.mark.parametrize("shape,groups", [((4, 2, 3), 1), ((4, 4, 3, 3), 2), ((3, 5, 3, 2, 3), 1), ((6, 2, 1, 1), 3)])
def test_dirac_matches_torch(torch, shape, groups):
    ours = to_np(init.dirac_(tracenn.empty(*shape), groups))
    theirs = torch.nn.init.dirac_(torch.empty(*shape), groups).numpy()
    assert np.array_equal(ours, theirs)


def test_dirac_convolution_is_the_identity():
    w = init.dirac_(tracenn.empty(3, 3, 3))
    x = tracenn.randn(1, 3, 8)
    out = tracenn.conv1d(x, w, padding=1)
    assert np.allclose(to_np(out), to_np(x))


def test_parameters_stay_leaves_and_values_change_in_place():
    p = tracenn.nn.Parameter(tracenn.empty(*SHAPE))
    assert init.orthogonal_(p) is p and p.requires_grad and p.grad_fn is None
    assert init.eye_(p) is p and init.trunc_normal_(p) is p and init.sparse_(p, 0.5) is p


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, -1.0, 2.0), (0.0, 1.0, 2.0, 4.0)])
def test_trunc_normal_moments(mean, std, a, b):
    w = to_np(init.trunc_normal_(tracenn.empty(*SHAPE), mean, std, a, b)).astype(np.float64)
    assert w.min() >= a and w.max() <= b
    # moments of the truncated normal
    al, be = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    zz = cdf(be) - cdf(al)
    m = mean + std * (pdf(al) - pdf(be)) / zz
    var = std ** 2 * (1 + (al * pdf(al) - be * pdf(be)) / zz - ((pdf(al) - pdf(be)) / zz) ** 2)
    assert abs(w.mean() - m) < 0.03 * std and abs(w.std() - math.sqrt(var)) < 0.03 * std


def test_trunc_normal_reproducible_and_warns_far_from_the_interval():
    tracenn.manual_seed(5)
    a = to_np(init.trunc_normal_(tracenn.empty(*SHAPE)))
    tracenn.manual_seed(5)
    assert np.array_equal(a, to_np(init.trunc_normal_(tracenn.empty(*SHAPE))))
    g = tracenn.Generator().manual_seed(5)
    tracenn.manual_seed(1)
    assert np.array_equal(a, to_np(init.trunc_normal_(tracenn.empty(*SHAPE), generator=g)))  # drawn from g
    with pytest.warns(UserWarning, match="mean is more than 2 std from \\[a, b\\] in nn.init.trunc_normal_"):
        init.trunc_normal_(tracenn.empty(*SHAPE), mean=10.0, std=1.0, a=-1.0, b=1.0)


@pytest.mark.parametrize("shape", [SHAPE, SHAPE[::-1], (4, 2, 3, 3)])
def test_orthogonal(shape):
    w = to_np(init.orthogonal_(tracenn.empty(*shape), gain=2.0)).reshape(shape[0], -1).astype(np.float64)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)


def test_sparse():
    w = to_np(init.sparse_(tracenn.empty(*SHAPE), sparsity=0.25, std=0.5))
    assert ((w == 0).sum(0) == 50).all()
    nz = w[w != 0]
    assert abs(nz.std() - 0.5) < 0.02 and abs(nz.mean()) < 0.02
    # a different set of zero rows per column
    assert len({tuple(np.flatnonzero(w[:, j] == 0)) for j in range(SHAPE[1])}) == SHAPE[1]


def test_errors(lib):
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        lib.nn.init.eye_(lib.empty(3))
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions are supported"):
        lib.nn.init.dirac_(lib.empty(3, 3))
    with pytest.raises(ValueError, match="dim 0 must be divisible by groups"):
        lib.nn.init.dirac_(lib.empty(3, 3, 3), groups=2)
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        lib.nn.init.orthogonal_(lib.empty(3))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        lib.nn.init.sparse_(lib.empty(3, 3, 3), 0.1)
