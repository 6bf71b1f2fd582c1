"""Sparse @ dense, sums and softmax on sparse COO tensors (tracenn/sparse/_ops.py): eager against
NumPy, gradients (to the dense operand, to the values, a sparse leaf's sparse .grad), and compiled
against eager."""
import numpy as np
import pytest

import tracenn
import tracenn.sparse
from tracenn.errors import DtypeError, ShapeError

coo = tracenn.sparse_coo_tensor

RNG = np.random.default_rng(0)
IDX = np.array([[0, 1, 1, 3, 0, 2], [2, 0, 2, 1, 2, 3]])  # (0, 2) twice: uncoalesced
VAL = RNG.standard_normal(6).astype(np.float32)
DENSE = RNG.standard_normal((4, 3)).astype(np.float32)
A = np.zeros((4, 4), np.float32)
np.add.at(A, tuple(IDX), VAL)


def spmm_forms():
    return [
        ("sparse.mm", lambda s, d: tracenn.sparse.mm(s, d)),
        ("spmm", lambda s, d: tracenn.sparse.spmm(s, d)),
        ("mm", lambda s, d: tracenn.mm(s, d)),
        ("matmul", lambda s, d: tracenn.matmul(s, d)),
        ("@", lambda s, d: s @ d),
        ("method", lambda s, d: s.mm(d)),
    ]


@pytest.mark.parametrize("name, f", spmm_forms(), ids=[n for n, _ in spmm_forms()])
def test_sparse_at_dense_matches_numpy(name, f):
    out = f(coo(IDX, VAL, (4, 4)), tracenn.tensor(DENSE))
    assert not out.is_sparse
    np.testing.assert_allclose(out.numpy(), A @ DENSE, rtol=1e-5, atol=1e-6)


def test_vector_and_dense_at_sparse():
    s = coo(IDX, VAL, (4, 4))
    v = DENSE[:, 0]
    np.testing.assert_allclose((s @ tracenn.tensor(v)).numpy(), A @ v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((tracenn.tensor(DENSE.T) @ s).numpy(), DENSE.T @ A, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tracenn.mm(tracenn.tensor(DENSE.T), s).numpy(), DENSE.T @ A, rtol=1e-5, atol=1e-6)


def test_mm_errors():
    s = coo(IDX, VAL, (4, 4))
    with pytest.raises(ShapeError, match=r"cannot be multiplied \(4x4 and 3x2\)"):
        tracenn.sparse.mm(s, tracenn.ones(3, 2))
    with pytest.raises(DtypeError, match="dtype tracenn.float32"):
        tracenn.sparse.mm(s, tracenn.ones(4, 2, dtype=tracenn.float64))


def test_gradients_to_dense_operand_and_values():
    w = tracenn.tensor(VAL, requires_grad=True)
    d = tracenn.tensor(DENSE, requires_grad=True)
    g = RNG.standard_normal((4, 3)).astype(np.float32)
    (tracenn.sparse.mm(coo(IDX, w * 1, (4, 4)), d) * tracenn.tensor(g)).sum().backward()
    np.testing.assert_allclose(d.grad.numpy(), A.T @ g, rtol=1e-5, atol=1e-6)
    # d out[r] / d value_k = dense[c] for entry k at (r, c): grad_k = g[r] . dense[c]
    want = np.einsum("kj,kj->k", g[IDX[0]], DENSE[IDX[1]])
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5, atol=1e-6)


def test_sparse_leaf_gets_sparse_grad():
    s = coo(IDX, VAL, (4, 4), requires_grad=True).coalesce().detach().requires_grad_()
    assert s.is_leaf and s.requires_grad and s.grad is None
    d = tracenn.tensor(DENSE)
    g = RNG.standard_normal((4, 3)).astype(np.float32)
    (tracenn.sparse.mm(s, d) * tracenn.tensor(g)).sum().backward()
    assert s.grad.is_sparse and s.grad.is_coalesced()
    full = g @ DENSE.T  # the dense gradient; torch.sparse.mm gives it at the stored positions
    idx = s.indices().numpy()
    np.testing.assert_array_equal(s.grad.indices().numpy(), idx)
    np.testing.assert_allclose(s.grad.values().numpy(), full[tuple(idx)], rtol=1e-5, atol=1e-6)


def test_making_a_sparse_leaf_leaves_the_callers_values_alone():
    v = tracenn.tensor(VAL)
    s = coo(IDX, v, (4, 4))
    s.requires_grad_()
    assert s.requires_grad and not v.requires_grad


def test_to_dense_gradient():
    w = tracenn.tensor(VAL, requires_grad=True)
    g = RNG.standard_normal((4, 4)).astype(np.float32)
    (coo(IDX, w, (4, 4)).to_dense() * tracenn.tensor(g)).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), g[tuple(IDX)], rtol=1e-6)


def test_sum():
    s = coo(IDX, VAL, (4, 4))
    np.testing.assert_allclose(tracenn.sparse.sum(s).item(), A.sum(), rtol=1e-5)
    for dim in (0, 1, -1):
        r = tracenn.sparse.sum(s, dim)
        assert r.is_sparse and r.is_coalesced()
        np.testing.assert_allclose(r.to_dense().numpy(), A.sum(dim), rtol=1e-5, atol=1e-6)
    assert not tracenn.sparse.sum(s, (0, 1)).is_sparse
    np.testing.assert_allclose(tracenn.sparse.sum(s, (0, 1)).item(), A.sum(), rtol=1e-5)
    h = coo(IDX, np.stack([VAL, 2 * VAL], 1), (4, 4, 2))
    np.testing.assert_allclose(tracenn.sparse.sum(h, 2).to_dense().numpy(), 3 * A, rtol=1e-5, atol=1e-6)


def np_sparse_softmax(idx, val, shape, dim, log=False):
    """Softmax over ``dim`` of the stored (coalesced) entries only."""
    dense = np.full(shape, -np.inf)
    summed = {}
    for k in range(idx.shape[1]):
        summed[tuple(idx[:, k])] = summed.get(tuple(idx[:, k]), 0.0) + float(val[k])
    for pos, x in summed.items():
        dense[pos] = x
    m = dense.max(axis=dim, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.exp(dense - m)
        out = e / e.sum(axis=dim, keepdims=True)
        if log:
            out = np.log(out)
    return np.where(np.isinf(dense), 0, out)


@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("log", [False, True])
def test_softmax(dim, log):
    s = coo(IDX, VAL, (4, 4))
    f = tracenn.sparse.log_softmax if log else tracenn.sparse.softmax
    r = f(s, dim)
    assert r.is_sparse and r.is_coalesced()
    np.testing.assert_allclose(r.to_dense().numpy(), np_sparse_softmax(IDX, VAL, (4, 4), dim, log), rtol=1e-5,
                               atol=1e-6)


def test_softmax_gradient_matches_finite_differences():
    c = coo(IDX, VAL.astype(np.float64), (4, 4)).coalesce()
    base = c.values().numpy()
    w = tracenn.tensor(base, requires_grad=True)
    probe = RNG.standard_normal(len(base))

    def f(vals):
        s = coo(c.indices(), vals, (4, 4), is_coalesced=True)
        return (tracenn.sparse.softmax(s, 1).values() * tracenn.tensor(probe)).sum()

    f(w).backward()
    eps = 1e-6
    num = [(f(tracenn.tensor(base + eps * e)).item() - f(tracenn.tensor(base - eps * e)).item()) / (2 * eps)
           for e in np.eye(len(base))]
    np.testing.assert_allclose(w.grad.numpy(), num, rtol=1e-5, atol=1e-8)


def test_compiled_matches_eager_forward_and_gradients():
    s = coo(IDX, VAL, (4, 4)).coalesce()
    lin = tracenn.nn.Linear(3, 2)

    def f(a, x):
        h = tracenn.sparse.mm(a, x)
        deg = tracenn.sparse.sum(a, 1).to_dense()
        return (lin(h) * deg.unsqueeze(1)).sum() + tracenn.sparse.softmax(a, 1).to_dense().sum()

    x = tracenn.tensor(DENSE, requires_grad=True)
    eager = f(s, x)
    eager.backward()
    gx, gw = x.grad.numpy().copy(), lin.weight.grad.numpy().copy()
    x.grad = None
    lin.weight.grad = None
    compiled = tracenn.compile(f)(s, x)
    compiled.backward()
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-5)
    np.testing.assert_allclose(x.grad.numpy(), gx, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(lin.weight.grad.numpy(), gw, rtol=1e-5, atol=1e-6)


def test_compiled_gradient_to_values():
    w = tracenn.tensor(VAL, requires_grad=True)
    d = tracenn.tensor(DENSE)
    idx = tracenn.tensor(IDX)

    def f(vals):
        return tracenn.sparse.mm(coo(idx, vals, (4, 4)), d).pow(2).sum()

    f(w).backward()
    want = w.grad.numpy().copy()
    w.grad = None
    tracenn.compile(f)(w).backward()
    np.testing.assert_allclose(w.grad.numpy(), want, rtol=1e-5)


def test_compiled_returns_sparse_and_reads_captured_sparse():
    s = coo(IDX, VAL, (4, 4))
    out = tracenn.compile(lambda a: a * 3)(s)
    assert out.is_sparse and tuple(out.shape) == (4, 4)
    np.testing.assert_allclose(out.to_dense().numpy(), 3 * A, rtol=1e-6)

    def g(x):
        return s @ x  # (s: a captured global-like closure variable)

    x = tracenn.tensor(DENSE)
    cg = tracenn.compile(g)
    np.testing.assert_allclose(cg(x).numpy(), A @ DENSE, rtol=1e-5, atol=1e-6)
    s._sp_values.mul_(2)  # an in-place change of the captured tensor's values is seen
    np.testing.assert_allclose(cg(x).numpy(), 2 * A @ DENSE, rtol=1e-5, atol=1e-6)
