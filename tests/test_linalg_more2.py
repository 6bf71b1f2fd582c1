"""The second batch of linear algebra (tracenn/_linalg_extra.py): torch.linalg's ldl_factor(_ex),
ldl_solve, tensorinv, tensorsolve, vander and matmul; torch's cholesky_solve, cholesky_inverse,
triangular_solve, qr, orgqr, ormqr, nuclear_norm, frobenius_norm, svd_lowrank, pca_lowrank and the
removed solve/lstsq/symeig/eig/matrix_rank. Values against NumPy (always) and PyTorch (when
installed), gradients against central finite differences and PyTorch, compiled equal to eager,
torch's dtypes, named tuples and errors.

Each case is ``fn(T, *inputs)`` run with ``T`` = tracenn or torch, returning a real tensor.
"""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import linalg as LA
from helpers import central_differences, to_np

_rng = np.random.default_rng(23)


def _mat(*shape, complex_=False):
    a = _rng.standard_normal(shape)
    return a + 1j * _rng.standard_normal(shape) if complex_ else a


def _spd(*shape, complex_=False):
    a = _mat(*shape, complex_=complex_)
    return a @ np.conj(np.swapaxes(a, -1, -2)) + shape[-1] * np.eye(shape[-1])


def _chol(*shape, complex_=False):
    return np.linalg.cholesky(_spd(*shape, complex_=complex_))


def _tri(*shape, upper=True):
    a = _mat(*shape) + 3 * np.eye(shape[-1])
    return np.triu(a) if upper else np.tril(a)


def _ri(z):
    return np.stack([z.real, z.imag], -1)


def _vr(T, z):
    return T.view_as_real(z.resolve_conj()) if z.is_complex() else z


def _inv_spd_solve(b, L, upper=False):
    A = np.conj(np.swapaxes(L, -1, -2)) @ L if upper else L @ np.conj(np.swapaxes(L, -1, -2))
    return np.linalg.solve(A, b)


def _np_householder_q(a, tau):
    """The square Q = H_1 ... H_k of LAPACK's reflectors (columns of ``a`` below the diagonal)."""
    m = a.shape[0]
    q = np.eye(m, dtype=np.result_type(a, tau))
    for i in range(len(tau)):
        v = np.zeros(m, q.dtype)
        v[i], v[i + 1:] = 1, a[i + 1:, i]
        q = q @ (np.eye(m) - tau[i] * np.outer(v, v.conj()))
    return q


def _geqrf(a):
    """(reflectors, tau) of ``a``'s QR from tracenn's geqrf (LAPACK's, as torch's)."""
    r, tau = tracenn.geqrf(tracenn.tensor(a))
    return to_np(r), to_np(tau)


GQ_A, GQ_TAU = _geqrf(_mat(4, 3))
GQ_CA, GQ_CTAU = _geqrf(_mat(4, 3, complex_=True))


def _lowrank(m, n, r):
    return _mat(m, r) @ _mat(r, n)


def _seeded(f):
    """``f`` with the default generator reseeded first (randomized algorithms: the same draws each call)."""
    def g(T, *xs):
        T.manual_seed(0)
        return f(T, *xs)
    return g


# name -> (fn(T, *inputs) -> real tensor, inputs, NumPy reference of the same or None)
CASES = {
    "cholesky_solve": (lambda T, b, L: T.cholesky_solve(b, L), [_mat(3, 2), _chol(3, 3)], _inv_spd_solve),
    "cholesky_solve_upper": (lambda T, b, U: T.cholesky_solve(b, U, upper=True), [_mat(3, 2), _chol(3, 3).T],
                             lambda b, U: _inv_spd_solve(b, U, upper=True)),
    "cholesky_solve_broadcast": (lambda T, b, L: T.cholesky_solve(b, L), [_mat(2, 3, 2), _chol(1, 3, 3)],
                                 _inv_spd_solve),
    # a factor with junk above the diagonal: torch reads the triangle, differentiates the whole
    "cholesky_solve_full_factor": (lambda T, b, L: T.cholesky_solve(b, L), [_mat(3, 2), _chol(3, 3) + np.triu(
        _mat(3, 3), 1)], lambda b, L: _inv_spd_solve(b, np.tril(L))),
    "cholesky_solve_complex": (lambda T, b, L: _vr(T, T.cholesky_solve(b, L)),
                               [_mat(3, 2, complex_=True), _chol(3, 3, complex_=True)],
                               lambda b, L: _ri(_inv_spd_solve(b, L))),
    "cholesky_solve_of_cholesky": (lambda T, b, a: T.cholesky_solve(b, T.linalg.cholesky(a @ a.mT + 3 * T.eye(3,
                                   dtype=a.dtype))), [_mat(3, 2), _mat(3, 3)],
                                   lambda b, a: np.linalg.solve(a @ a.T + 3 * np.eye(3), b)),
    "cholesky_inverse": (lambda T, L: T.cholesky_inverse(L), [_chol(3, 3)], lambda L: np.linalg.inv(L @ L.T)),
    "cholesky_inverse_upper_batch": (lambda T, U: T.cholesky_inverse(U, True), [np.swapaxes(_chol(2, 3, 3), -1, -2)],
                                     lambda U: np.linalg.inv(np.swapaxes(U, -1, -2) @ U)),
    "cholesky_inverse_complex": (lambda T, L: _vr(T, T.cholesky_inverse(L)), [_chol(3, 3, complex_=True)],
                                 lambda L: _ri(np.linalg.inv(L @ L.conj().T))),
    "triangular_solve": (lambda T, b, A: T.triangular_solve(b, A).solution, [_mat(3, 2), _tri(3, 3)],
                         lambda b, A: np.linalg.solve(A, b)),
    "triangular_solve_lower_transpose": (lambda T, b, A: T.triangular_solve(b, A, False, True).solution,
                                         [_mat(3, 2), _tri(3, 3, upper=False)], lambda b, A: np.linalg.solve(A.T, b)),
    "triangular_solve_unit": (lambda T, b, A: T.triangular_solve(b, A, unitriangular=True).solution,
                              [_mat(3, 2), _mat(3, 3)],
                              lambda b, A: np.linalg.solve(np.triu(A, 1) + np.eye(3), b)),
    "triangular_solve_broadcast": (lambda T, b, A: T.triangular_solve(b, A).solution, [_mat(2, 3, 2), _tri(1, 3, 3)],
                                   lambda b, A: np.linalg.solve(A, b)),
    "triangular_solve_coefficient": (lambda T, A: T.triangular_solve(T.ones(2, 3, 2, dtype=A.dtype),
                                                                      A).cloned_coefficient,
                                     [_tri(3, 3)], lambda A: np.broadcast_to(A, (2, 3, 3))),
    "triangular_solve_complex": (lambda T, b, A: _vr(T, T.triangular_solve(b, A, transpose=True).solution),
                                 [_mat(3, 2, complex_=True), _tri(3, 3) + 1j * np.triu(_mat(3, 3))],
                                 lambda b, A: _ri(np.linalg.solve(A.T, b))),
    "qr_R_abs": (lambda T, a: T.qr(a).R.abs(), [_mat(4, 3)], lambda a: np.abs(np.linalg.qr(a)[1])),
    "qr_QR": (lambda T, a: (lambda q, r: q @ r)(*T.qr(a, some=False)), [_mat(3, 3)], lambda a: a),
    "orgqr": (lambda T, a, tau: T.orgqr(a, tau), [GQ_A, GQ_TAU], lambda a, tau: _np_householder_q(a, tau)[:, :3]),
    "ormqr": (lambda T, a, tau, c: T.ormqr(a, tau, c), [GQ_A, GQ_TAU, _mat(4, 2)],
              lambda a, tau, c: _np_householder_q(a, tau) @ c),
    "ormqr_transpose": (lambda T, a, tau, c: T.ormqr(a, tau, c, transpose=True), [GQ_A, GQ_TAU, _mat(4, 2)],
                        lambda a, tau, c: _np_householder_q(a, tau).T @ c),
    "ormqr_right": (lambda T, a, tau, c: T.ormqr(a, tau, c, left=False), [GQ_A, GQ_TAU, _mat(2, 4)],
                    lambda a, tau, c: c @ _np_householder_q(a, tau)),
    "ormqr_right_transpose": (lambda T, a, tau, c: T.ormqr(a, tau, c, left=False, transpose=True),
                              [GQ_A, GQ_TAU, _mat(2, 4)], lambda a, tau, c: c @ _np_householder_q(a, tau).T),
    "ormqr_complex": (lambda T, a, tau, c: _vr(T, T.ormqr(a, tau, c, transpose=True)),
                      [GQ_CA, GQ_CTAU, _mat(4, 2, complex_=True)],
                      lambda a, tau, c: _ri(_np_householder_q(a, tau).conj().T @ c)),
    "vander": (lambda T, x: T.linalg.vander(x), [_mat(4)], lambda x: x[:, None] ** np.arange(4)),
    "vander_N_batch_zero": (lambda T, x: T.linalg.vander(x, N=5), [np.array([[0.0, 2.0, -1.0], [0.5, 0.0, 3.0]])],
                            lambda x: x[..., None] ** np.arange(5)),
    "vander_complex": (lambda T, x: _vr(T, T.linalg.vander(x, N=3)), [_mat(3, complex_=True)],
                       lambda x: _ri(x[:, None] ** np.arange(3))),
    "tensorinv": (lambda T, a: T.linalg.tensorinv(a, ind=2), [_mat(2, 3, 6) + 4 * np.eye(6).reshape(2, 3, 6)],
                  lambda a: np.linalg.tensorinv(a, ind=2)),
    "tensorinv_ind1": (lambda T, a: T.linalg.tensorinv(a, ind=1), [_mat(4, 2, 2) + 4 * np.eye(4).reshape(4, 2, 2)],
                       lambda a: np.linalg.tensorinv(a, ind=1)),
    "tensorsolve": (lambda T, a, b: T.linalg.tensorsolve(a, b), [_mat(2, 3, 6) + 4 * np.eye(6).reshape(2, 3, 6),
                                                                 _mat(2, 3)], np.linalg.tensorsolve),
    "tensorsolve_dims": (lambda T, a, b: T.linalg.tensorsolve(a, b, dims=(0,)),
                         [np.moveaxis(_mat(2, 3, 6) + 4 * np.eye(6).reshape(2, 3, 6), -1, 0), _mat(2, 3)],
                         lambda a, b: np.linalg.tensorsolve(a, b, axes=(0,))),
    "linalg_matmul": (lambda T, a, b: T.linalg.matmul(a, b), [_mat(2, 3, 4), _mat(4)], np.matmul),
    "nuclear_norm": (lambda T, a: T.nuclear_norm(a), [_mat(4, 3)], lambda a: np.linalg.norm(a, "nuc")),
    "nuclear_norm_dim": (lambda T, a: T.nuclear_norm(a, (0, 2), keepdim=True), [_mat(4, 2, 3)],
                         lambda a: np.linalg.norm(np.moveaxis(a, 1, 0), "nuc", axis=(1, 2))[None, :, None]),
    "frobenius_norm": (lambda T, a: T.frobenius_norm(a, (0, 1)), [_mat(3, 4, 2)],
                       lambda a: np.sqrt((a ** 2).sum((0, 1)))),
    "svd_lowrank_reconstruct": (_seeded(lambda T, a: (lambda u, s, v: (u * s.unsqueeze(-2)) @ v.mT)(
        *T.svd_lowrank(a, q=2))), [_lowrank(6, 5, 2)], lambda a: a),
    "svd_lowrank_wide_S": (_seeded(lambda T, a: T.svd_lowrank(a, q=4)[1][..., :2]), [_mat(2, 4, 2) @ _mat(2, 2, 7)],
                           lambda a: np.linalg.svd(a, compute_uv=False)[..., :2]),
    "svd_lowrank_M": (_seeded(lambda T, a, m: (lambda u, s, v: (u * s.unsqueeze(-2)) @ v.mT)(
        *T.svd_lowrank(a + m, q=2, M=m))), [_lowrank(5, 4, 2), _mat(5, 4)], lambda a, m: a),
    "pca_lowrank_S": (_seeded(lambda T, a: T.pca_lowrank(a, q=3)[1][:2]), [_lowrank(6, 4, 2) + 1.5],
                      lambda a: np.linalg.svd(a - a.mean(0), compute_uv=False)[:2]),
}
NO_TORCH_GRAD = {"svd_lowrank_reconstruct", "svd_lowrank_wide_S", "svd_lowrank_M", "pca_lowrank_S"}  # (draws differ)
NO_FD = {"svd_lowrank_wide_S", "pca_lowrank_S"}  # (a zero singular value past the rank: no derivative)


def _tensors(T, arrays, grad):
    ts = [T.tensor(a) for a in arrays]
    return [t.requires_grad_(True) for t in ts] if grad else ts


def _weights(shape):
    return np.random.default_rng(3).standard_normal(tuple(shape))


def _grads(T, fn, arrays):
    ts = _tensors(T, arrays, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's deprecation warnings)
        out = fn(T, *ts)
    (out * T.tensor(_weights(out.shape))).sum().backward()
    return to_np(out), [to_np(t.grad.resolve_conj() if hasattr(t.grad, "resolve_conj") else t.grad) for t in ts]


def _fd(fn, arrays, which, h=1e-6):
    def loss(args):
        with tracenn.no_grad():
            out = fn(tracenn, *[tracenn.tensor(a) for a in args])
            return float((to_np(out) * _weights(out.shape)).sum())

    return central_differences(loss, arrays, which, h)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    fn, arrays, ref = CASES[name]
    out = fn(tracenn, *_tensors(tracenn, arrays, False))
    np.testing.assert_allclose(to_np(out), ref(*arrays), rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, torch):
    fn, arrays, _ = CASES[name]
    if name in NO_TORCH_GRAD:
        got, want = fn(tracenn, *_tensors(tracenn, arrays, False)), fn(torch, *_tensors(torch, arrays, False))
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-8, atol=1e-9, err_msg=name)
        return
    out, grads = _grads(tracenn, fn, arrays)
    tout, tgrads = _grads(torch, fn, arrays)
    np.testing.assert_allclose(out, tout, rtol=1e-9, atol=1e-10, err_msg=name)
    for g, tg in zip(grads, tgrads):
        assert g.dtype == tg.dtype
        np.testing.assert_allclose(g, tg, rtol=1e-7, atol=1e-9, err_msg=name + " grad")


# (case, input): a Cholesky factor passed directly: the forward reads its triangle only, torch's gradient
# (and ours) covers the whole matrix, so finite differences are compared on the triangle read
FACTOR_INPUTS = {("cholesky_solve", 1): np.tril, ("cholesky_solve_upper", 1): np.triu,
                 ("cholesky_solve_broadcast", 1): np.tril, ("cholesky_solve_complex", 1): np.tril,
                 ("cholesky_inverse", 0): np.tril, ("cholesky_inverse_upper_batch", 0): np.triu,
                 ("cholesky_inverse_complex", 0): np.tril}


@pytest.mark.parametrize("name", sorted(set(CASES) - NO_FD - {"cholesky_solve_full_factor"}))
def test_gradients_match_finite_differences(name):
    fn, arrays, _ = CASES[name]
    _, grads = _grads(tracenn, fn, arrays)
    for i, g in enumerate(grads):
        assert g.dtype == arrays[i].dtype
        fd = _fd(fn, arrays, i)
        mask = FACTOR_INPUTS.get((name, i))
        if mask is not None:
            np.testing.assert_allclose(mask(fd) - fd, 0, atol=1e-8)  # (the other triangle is not read)
            g = mask(g)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6, err_msg=f"{name} d/d(arg {i})")


def test_cholesky_solve_differentiates_the_whole_factor():
    """torch's rule: the gradient of (L L^H)^-1 B with L read whole, though only its triangle is
    read (finite differences see only the triangle): the lower part agrees with them, the upper
    part is what the formula gives."""
    fn, (b, L), _ = CASES["cholesky_solve_full_factor"]
    _, (_, gL) = _grads(tracenn, fn, [b, L])
    fd = _fd(fn, [b, L], 1)
    np.testing.assert_allclose(np.triu(fd, 1), 0, atol=1e-8)
    x = _inv_spd_solve(b, np.tril(L))
    G = _inv_spd_solve(_weights(x.shape), np.tril(L))
    full = -(G @ x.T + x @ G.T) @ L  # torch's cholesky_solve_backward
    np.testing.assert_allclose(gL, full, rtol=1e-7, atol=1e-9)
    assert np.abs(np.triu(gL, 1)).max() > 1e-3


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_matches_eager(name):
    fn, arrays, _ = CASES[name]
    compiled = tracenn.compile(lambda *xs: fn(tracenn, *xs))
    out, grads = _grads(tracenn, fn, arrays)
    for _ in range(2):
        got, got_grads = _grads(tracenn, lambda T, *xs: compiled(*xs), arrays)
        np.testing.assert_allclose(got, out, rtol=1e-10, atol=1e-12, err_msg=name)
        for g, e in zip(got_grads, grads):
            np.testing.assert_allclose(g, e, rtol=1e-8, atol=1e-10, err_msg=name + " compiled grad")


SECOND_ORDER = ["cholesky_solve", "cholesky_solve_full_factor", "cholesky_inverse", "triangular_solve", "ormqr"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_match_torch(name, torch):
    fn, arrays, _ = CASES[name]
    res = []
    for T in (tracenn, torch):
        xs = _tensors(T, arrays, True)
        out = fn(T, *xs)
        g = T.autograd.grad(((out * T.tensor(_weights(out.shape))) ** 2).sum(), xs, create_graph=True)
        res.append([to_np(h) for h in T.autograd.grad(sum((gi ** 2).sum() for gi in g), xs)])
    for got, want in zip(*res):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * np.abs(want).max(), err_msg=name)


FLOAT32_CASES = ["cholesky_solve", "cholesky_solve_complex", "cholesky_inverse", "triangular_solve_complex", "ormqr",
                 "vander", "tensorsolve", "nuclear_norm"]


@pytest.mark.parametrize("name", FLOAT32_CASES)
def test_float32_values_and_gradients_match_torch(name, torch):
    fn, arrays, _ = CASES[name]
    arrays = [a.astype(np.complex64 if a.dtype.kind == "c" else np.float32) for a in arrays]
    out, grads = _grads(tracenn, fn, arrays)
    tout, tgrads = _grads(torch, fn, arrays)
    assert out.dtype == tout.dtype
    np.testing.assert_allclose(out, tout, rtol=1e-4, atol=1e-5, err_msg=name)
    for g, tg in zip(grads, tgrads):
        assert g.dtype == tg.dtype
        np.testing.assert_allclose(g, tg, rtol=2e-3, atol=2e-4 * np.abs(tg).max(), err_msg=name + " grad")


# ---- LDL ---------------------------------------------------------------------------------------------

def _np_ldl_reconstruct(ld, piv, hermitian=False):
    """A from sytrf's lower (LD, pivots), by LAPACK's definition A = L D L^T with
    L = P(1) L(1) P(2) L(2) ... (each P(k) swaps row k, or k+1 for a 2x2 block, with |piv[k]|)."""
    n = ld.shape[0]
    conj = np.conj if hermitian else (lambda z: z)
    L, D = np.eye(n, dtype=ld.dtype), np.zeros_like(ld)
    k = 0
    while k < n:
        step = 1 if piv[k] > 0 else 2
        kk, kp = k + step - 1, abs(piv[k]) - 1
        P = np.eye(n)
        P[[kk, kp]] = P[[kp, kk]]
        Lk = np.eye(n, dtype=ld.dtype)
        Lk[k + step:, k:k + step] = ld[k + step:, k:k + step]
        L = L @ P @ Lk
        D[k:k + step, k:k + step] = ld[k:k + step, k:k + step]
        if step == 2:
            D[k, k + 1] = conj(ld[k + 1, k])
        k += step
    return L @ D @ conj(L.T)


LDL_MATRICES = {
    "random": (lambda z: z + z.T)(_mat(5, 5)),
    "indefinite_2x2_pivots": np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.01]]),
    "diagonal": np.diag([3.0, -2.0, 1.0]),
    "complex_symmetric": (lambda z: z + z.T)(_mat(4, 4, complex_=True)),
}


@pytest.mark.parametrize("name", sorted(LDL_MATRICES))
@pytest.mark.parametrize("hermitian", [False, True])
def test_ldl_factor_reconstructs_the_matrix(name, hermitian):
    a = LDL_MATRICES[name]
    if hermitian and a.dtype.kind == "c":
        a = a + a.conj().T
    ld, piv = LA.ldl_factor(tracenn.tensor(a), hermitian=hermitian)
    assert (ld.dtype, piv.dtype) == (tracenn.tensor(a).dtype, tracenn.int32)
    ld, piv = to_np(ld), to_np(piv)
    np.testing.assert_allclose(np.triu(ld, 1), 0)
    np.testing.assert_allclose(_np_ldl_reconstruct(ld, piv, hermitian), a, rtol=1e-10, atol=1e-12)
    b = _mat(a.shape[0], 2)
    x = LA.ldl_solve(tracenn.tensor(ld), tracenn.tensor(piv), tracenn.tensor(b.astype(a.dtype)), hermitian=hermitian)
    np.testing.assert_allclose(to_np(x), np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)


def test_ldl_known_pivots():
    # [[0, 1], [1, 0]]: no 1x1 pivot is acceptable, one 2x2 block (LAPACK's -2, -2)
    r = LA.ldl_factor_ex(tracenn.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert r.pivots.tolist() == [-2, -2] and int(r.info) == 0
    # a large off-diagonal entry in column 0 swaps row 0 with row 2 (1x1 pivot at 2: 3 = |piv|)
    r = LA.ldl_factor(tracenn.tensor([[0.1, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 5.0]]))
    assert r.pivots.tolist() == [3, 2, 3]
    np.testing.assert_allclose(to_np(r.LD)[:, 0], [5.0, 0.0, 0.2])
    # the zero matrix: D[0, 0] exactly zero, info 1
    assert int(LA.ldl_factor_ex(tracenn.zeros(3, 3)).info) == 1


@pytest.mark.slow  # (28 s: the known-pivot and reconstruction tests above cover the default run)
def test_ldl_matches_torch_on_many_matrices(torch):
    rng = np.random.default_rng(5)
    for trial in range(24):
        n = int(rng.integers(1, 7))
        cplx, herm = trial % 3 == 0, trial % 2 == 0
        a = rng.standard_normal((2, n, n)) + (1j * rng.standard_normal((2, n, n)) if cplx else 0)
        if trial % 4 == 0:
            a = np.round(a)  # (ties between candidate pivots)
        single = trial % 5 == 1
        if single:
            a = a.astype(np.complex64 if cplx else np.float32)
        got = LA.ldl_factor_ex(tracenn.tensor(a), hermitian=herm)
        want = torch.linalg.ldl_factor_ex(torch.tensor(a), hermitian=herm)
        assert got.pivots.tolist() == want.pivots.tolist(), (trial, a)
        assert got.info.tolist() == want.info.tolist()
        assert str(got.LD.dtype).split(".")[-1] == str(want.LD.dtype).split(".")[-1]
        np.testing.assert_allclose(to_np(got.LD), want.LD.numpy(), rtol=1e-4 if single else 1e-10,
                                   atol=1e-5 if single else 1e-12)
        # (solves are compared where the system is well conditioned: a rounded float32 matrix can be nearly
        # singular, and then two correct solvers' answers differ by far more than the tolerance)
        low = np.tril(a, -1)  # (the matrix the factorization reads: the lower triangle, mirrored)
        full = np.tril(a) + np.swapaxes(low.conj() if herm else low, -1, -2)
        if not want.info.any() and np.linalg.cond(full.astype(np.complex128)).max() * np.finfo(a.dtype).eps < 1e-4:
            b = rng.standard_normal((2, n, 2)).astype(a.dtype)  # (torch 2.13 crashes when LD's batch must broadcast)
            x = LA.ldl_solve(got.LD, got.pivots, tracenn.tensor(b), hermitian=herm)
            tx = torch.linalg.ldl_solve(want.LD, want.pivots, torch.tensor(b), hermitian=herm)
            np.testing.assert_allclose(to_np(x), tx.numpy(), rtol=1e-3 if single else 1e-8,
                                       atol=1e-4 if single else 1e-9)


def test_ldl_solve_broadcasts_batches():
    a = _mat(2, 4, 4)
    a = a + np.swapaxes(a, -1, -2)
    b = _mat(3, 1, 4, 2)
    x = LA.ldl_solve(*LA.ldl_factor(tracenn.tensor(a)), tracenn.tensor(b))
    np.testing.assert_allclose(to_np(x), np.linalg.solve(a, b), rtol=1e-9, atol=1e-10)


def test_ldl_compiled_matches_eager():
    a, b = LDL_MATRICES["indefinite_2x2_pivots"], _mat(3, 2)
    compiled = tracenn.compile(lambda a, b: (LA.ldl_factor(a).LD, LA.ldl_solve(*LA.ldl_factor(a), b)))
    for _ in range(2):
        ld, x = compiled(tracenn.tensor(a), tracenn.tensor(b))
        np.testing.assert_array_equal(to_np(ld), to_np(LA.ldl_factor(tracenn.tensor(a)).LD))
        np.testing.assert_allclose(to_np(x), np.linalg.solve(a, b), rtol=1e-10)


def test_ldl_takes_no_gradient_as_torch():
    a = tracenn.tensor(LDL_MATRICES["random"], requires_grad=True)
    ld, piv = LA.ldl_factor(a)
    assert not ld.requires_grad
    assert not LA.ldl_solve(ld, piv, a).requires_grad


def test_ldl_errors():
    with pytest.raises(RuntimeError, match=r"ldl_factor_ex: A must be batches of square matrices, but they are 3 by 4"):
        LA.ldl_factor_ex(tracenn.zeros(3, 4))
    with pytest.raises(RuntimeError, match="The input tensor A must have at least 2 dimensions"):
        LA.ldl_factor(tracenn.zeros(3))
    with pytest.raises(RuntimeError, match="Expected a floating point or complex tensor as input. Got Long"):
        LA.ldl_factor(tracenn.ones(2, 2, dtype=tracenn.int64))
    with pytest.raises(RuntimeError, match="not implemented for 'Half'"):
        LA.ldl_factor(tracenn.ones(2, 2, dtype=tracenn.float16))
    with pytest.raises(LA.LinAlgError, match=r"\(Batch element 1\): .*D\[0, 0\] is exactly zero"):
        LA.ldl_factor(tracenn.stack([tracenn.eye(2), tracenn.zeros(2, 2)]))
    with pytest.raises(LA.LinAlgError, match="exactly zero"):
        LA.ldl_factor_ex(tracenn.zeros(2, 2), check_errors=True)
    ld, piv = LA.ldl_factor(tracenn.eye(4, dtype=tracenn.float64))
    with pytest.raises(RuntimeError, match="Expected b and A to have the same dtype, but found b of type Float and A "
                                           "of type Double instead."):
        LA.ldl_solve(ld, piv, tracenn.ones(4, 1))
    with pytest.raises(RuntimeError, match=r"Expected LD.shape\[:-1\] and pivots.shape to be the same, but got pivots "
                                           r"with shape \[3\] instead"):
        LA.ldl_solve(ld, piv[:3], tracenn.ones(4, 1, dtype=tracenn.float64))
    with pytest.raises(RuntimeError, match="each A matrix is 4 by 4 but each b matrix is 3 by 2"):
        LA.ldl_solve(ld, piv, tracenn.ones(3, 2, dtype=tracenn.float64))
    with pytest.raises(IndexError, match="B must have at least 2 dimensions"):
        LA.ldl_solve(ld, piv, tracenn.ones(4, dtype=tracenn.float64))
    x = LA.ldl_solve(ld, piv.long(), tracenn.ones(4, 1, dtype=tracenn.float64))  # (int64 pivots work, as in torch)
    np.testing.assert_allclose(to_np(x), np.ones((4, 1)))


# ---- named tuples, methods, dtypes ---------------------------------------------------------------------

def test_named_tuples_print_like_torch():
    r = tracenn.triangular_solve(tracenn.ones(2, 1), tracenn.eye(2))
    assert r._fields == ("solution", "cloned_coefficient")
    assert repr(r).startswith("tracenn.return_types.triangular_solve(\nsolution=tensor(")
    q = tracenn.qr(tracenn.eye(2))
    assert q._fields == ("Q", "R") and repr(q).startswith("tracenn.return_types.qr(\nQ=")
    assert LA.ldl_factor(tracenn.eye(2)).__class__.__name__ == "linalg_ldl_factor"
    assert LA.ldl_factor_ex(tracenn.eye(2))._fields == ("LD", "pivots", "info")
    u, s, v = tracenn.svd_lowrank(tracenn.randn(5, 4), q=2)
    assert (u.shape, s.shape, v.shape) == ((5, 2), (2,), (4, 2))


def test_tensor_methods():
    L = tracenn.tensor(_chol(3, 3))
    b = tracenn.tensor(_mat(3, 2))
    np.testing.assert_allclose(to_np(b.cholesky_solve(L)), to_np(tracenn.cholesky_solve(b, L)))
    np.testing.assert_allclose(to_np(L.cholesky_inverse()), np.linalg.inv(to_np(L) @ to_np(L).T), rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(to_np(b.triangular_solve(L.mT).solution), np.linalg.solve(to_np(L).T, to_np(b)),
                                   rtol=1e-10)
        assert b.qr().Q.shape == (3, 2)
    a, tau = tracenn.geqrf(tracenn.tensor(_mat(4, 3)))
    assert a.orgqr(tau).shape == (4, 3) and a.ormqr(tau, tracenn.ones(4, 2, dtype=a.dtype)).shape == (4, 2)
    x = tracenn.tensor(_mat(3, 5))
    np.testing.assert_allclose(to_np(x.cov()), np.cov(to_np(x)), rtol=1e-10)
    np.testing.assert_allclose(to_np(x.corrcoef()), np.corrcoef(to_np(x)), rtol=1e-10)


def test_dtypes():
    f32 = tracenn.tensor(_chol(3, 3).astype(np.float32))
    assert tracenn.cholesky_inverse(f32).dtype == tracenn.float32
    assert tracenn.cholesky_solve(f32, f32).dtype == tracenn.float32
    assert LA.vander(tracenn.tensor([1, 2, 3])).dtype == tracenn.int64
    assert LA.vander(tracenn.tensor([1, 2], dtype=tracenn.int32)).tolist() == [[1, 1], [1, 2]]
    assert LA.vander(tracenn.tensor([1.0, 2.0]).to(tracenn.complex64)).dtype == tracenn.complex64
    assert LA.vander(tracenn.tensor(2.0), N=3).tolist() == [[1.0, 2.0, 4.0]]
    assert tracenn.nuclear_norm(tracenn.eye(3, dtype=tracenn.complex64)).dtype == tracenn.float32


def test_deprecated_functions_warn_once():
    import tracenn._linalg_extra as X
    X._WARNED.discard("qr")
    with pytest.warns(UserWarning, match="torch.qr is deprecated in favor of torch.linalg.qr"):
        tracenn.qr(tracenn.eye(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracenn.qr(tracenn.eye(2))  # (once only, as torch's TORCH_WARN_ONCE)


@pytest.mark.parametrize("name, call", [
    ("solve", lambda: tracenn.solve(tracenn.eye(2), tracenn.eye(2))),
    ("lstsq", lambda: tracenn.lstsq(tracenn.eye(2), tracenn.eye(2))),
    ("symeig", lambda: tracenn.symeig(tracenn.eye(2))),
    ("eig", lambda: tracenn.eig(tracenn.eye(2))),
    ("matrix_rank", lambda: tracenn.matrix_rank(tracenn.eye(2))),
    ("Tensor.solve", lambda: tracenn.eye(2).solve(tracenn.eye(2))),
    ("Tensor.lstsq", lambda: tracenn.eye(2).lstsq(tracenn.eye(2))),
    ("Tensor.symeig", lambda: tracenn.eye(2).symeig()),
    ("Tensor.eig", lambda: tracenn.eye(2).eig(True)),
])
def test_removed_functions_raise_torchs_errors(name, call, torch):
    with pytest.raises(RuntimeError) as got:
        call()
    assert "deprecated since version 1.9 and is now removed" in str(got.value)
    torch_call = {"Tensor.solve": lambda: torch.eye(2).solve(torch.eye(2)),
                  "Tensor.lstsq": lambda: torch.eye(2).lstsq(torch.eye(2)),
                  "Tensor.symeig": lambda: torch.eye(2).symeig(), "Tensor.eig": lambda: torch.eye(2).eig(True)}.get(
        name, lambda: getattr(torch, name)(*([torch.eye(2)] * (2 if name in ("solve", "lstsq") else 1))))
    with pytest.raises(RuntimeError) as want:
        torch_call()
    assert str(got.value) == str(want.value)


def test_removed_functions_name_the_replacement():
    with pytest.raises(RuntimeError, match=r"X = torch.linalg.solve\(A, B\)"):
        tracenn.solve(tracenn.eye(2), tracenn.eye(2))
    with pytest.raises(RuntimeError, match=r"L_complex, V_complex = torch.linalg.eig\(A\)"):
        tracenn.eig(tracenn.eye(2))
    assert not hasattr(tracenn.Tensor, "matrix_rank")  # (torch has no such method)


# ---- argument errors: torch's types and messages -------------------------------------------------------

E64 = tracenn.eye(3, dtype=tracenn.float64)
B64 = tracenn.ones(3, 2, dtype=tracenn.float64)

ERRORS = [
    (lambda: tracenn.cholesky_solve(B64[:, 0], E64), RuntimeError,
     "b should have at least 2 dimensions, but has 1 dimensions instead"),
    (lambda: tracenn.cholesky_solve(B64, E64[:2]), RuntimeError,
     "A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda: tracenn.cholesky_solve(B64.float(), E64), RuntimeError,
     "Expected b and A to have the same dtype, but found b of type Float and A of type Double instead."),
    (lambda: tracenn.cholesky_solve(B64.int(), E64.int()), NotImplementedError,
     "\"cholesky_solve_cpu\" not implemented for 'Int'"),
    (lambda: tracenn.cholesky_solve(tracenn.ones(4, 2, dtype=tracenn.float64), E64), RuntimeError,
     "Incompatible matrix sizes for cholesky_solve: each A matrix is 3 by 3 but each b matrix is 4 by 2"),
    (lambda: tracenn.cholesky_solve(B64.expand(2, 3, 2), E64.expand(3, 3, 3)), RuntimeError,
     "The size of tensor a (2) must match the size of tensor b (3) at non-singleton dimension 0"),
    (lambda: tracenn.cholesky_inverse(tracenn.ones(3)), RuntimeError,
     "cholesky_inverse: The input tensor A must have at least 2 dimensions."),
    (lambda: tracenn.cholesky_inverse(tracenn.ones(3, 4)), RuntimeError,
     "cholesky_inverse: A must be batches of square matrices, but they are 3 by 4 matrices"),
    (lambda: tracenn.cholesky_inverse(tracenn.zeros(2, 3, 3)), LA.LinAlgError,
     "cholesky_inverse: (Batch element 0): The diagonal element 1 is zero, the inversion could not be completed "
     "because the input matrix is singular."),
    (lambda: tracenn.triangular_solve(B64[:, 0], E64), RuntimeError,
     "torch.triangular_solve: Expected b to have at least 2 dimensions, but it has 1 dimensions instead"),
    (lambda: tracenn.triangular_solve(B64, E64[0]), RuntimeError,
     "torch.triangular_solve: Expected A to have at least 2 dimensions, but it has 1 dimensions instead"),
    (lambda: tracenn.triangular_solve(tracenn.ones(4, 2, dtype=tracenn.float64), E64), RuntimeError,
     "Incompatible matrix sizes for triangular_solve: each A matrix is 3 by 3 but each b matrix is 4 by 2"),
    (lambda: tracenn.qr(tracenn.ones(3)), RuntimeError,
     "linalg.qr: The input tensor A must have at least 2 dimensions."),
    (lambda: tracenn.ormqr(E64, E64[0], tracenn.ones(4, 2, dtype=tracenn.float64)), RuntimeError,
     "torch.ormqr: other.shape[-2] must be equal to input.shape[-2]"),
    (lambda: tracenn.ormqr(E64, E64[0], tracenn.ones(2, 4, dtype=tracenn.float64), left=False), RuntimeError,
     "torch.ormqr: other.shape[-1] must be equal to input.shape[-2]"),
    (lambda: tracenn.ormqr(E64, E64[0], B64.float()), RuntimeError,
     "torch.ormqr: Expected input and other to have the same dtype, but input has dtypeDouble and other has dtype "
     "Float"),
    (lambda: tracenn.ormqr(E64.expand(2, 3, 3), E64[:2], E64.expand(3, 3, 3)), RuntimeError,
     "torch.ormqr: Expected batch dimensions of other to be equal to input.shape[:-2], but got [3]"),
    (lambda: tracenn.ormqr(E64, tracenn.ones(4, dtype=tracenn.float64), B64), RuntimeError,
     "torch.ormqr: tau.shape[-1] must be equal to min(other.shape[-2], input.shape[-1])"),
    (lambda: tracenn.orgqr(tracenn.ones(3, 4), tracenn.ones(2)), RuntimeError,
     "torch.linalg.householder_product: input.shape[-2] must be greater than or equal to input.shape[-1]"),
    (lambda: tracenn.orgqr(tracenn.ones(4, 3, dtype=tracenn.float64), tracenn.ones(2)), RuntimeError,
     "torch.linalg.householder_product: tau dtype Float does not match input dtype Double"),
    (lambda: LA.householder_product(tracenn.ones(4, 3), tracenn.ones(4)), RuntimeError,
     "torch.linalg.householder_product: input.shape[-1] must be greater than or equal to tau.shape[-1]"),
    (lambda: LA.householder_product(tracenn.ones(4, 3), tracenn.ones(2, 2)), RuntimeError,
     "torch.linalg.householder_product: Expected tau to have one dimension less than input, but got tau.ndim equal "
     "to 2 and input.ndim is equal to 2"),
    (lambda: LA.householder_product(tracenn.ones(2, 4, 3), tracenn.ones(3, 2)), RuntimeError,
     "torch.linalg.householder_product: Expected batch dimensions of tau to be equal to input.shape[:-2], but got [3]"),
    (lambda: LA.tensorinv(tracenn.ones(2, 2), ind=0), RuntimeError,
     "Expected a strictly positive integer for 'ind', but got 0"),
    (lambda: LA.tensorinv(tracenn.ones(4, 6, 8, 2), ind=2), RuntimeError,
     "Expected self to satisfy the requirement prod(self.shape[ind:]) == prod(self.shape[:ind]), but got 16 != 24"),
    (lambda: LA.tensorinv(tracenn.zeros(2, 2, 2, 2), ind=2), LA.LinAlgError,
     "inv: The diagonal element 1 is zero, the inversion could not be completed because the input matrix is singular."),
    (lambda: LA.tensorsolve(tracenn.ones(6, 4, 2, 3), tracenn.ones(6, 4)), RuntimeError,
     "Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == prod(self.shape[:other.ndim]), "
     "but got 6 != 24"),
    (lambda: LA.tensorsolve(tracenn.zeros(2, 2, 4), tracenn.ones(2, 2)), LA.LinAlgError,
     "torch.linalg.solve: The solver failed because the input matrix is singular."),
    (lambda: LA.vander(tracenn.tensor([True, False])), RuntimeError,
     "linalg.vander supports floating point, complex, and integer tensors, but got Bool"),
    (lambda: LA.vander(tracenn.ones(3, dtype=tracenn.float16)), RuntimeError,
     "linalg.vander supports floating point, complex, and integer tensors, but got Half"),
    (lambda: LA.vander(tracenn.ones(3), N=1), RuntimeError, "N must be greater than 1."),
    (lambda: LA.vander(tracenn.tensor(2.0)), RuntimeError, "N must be greater than 1."),
    (lambda: tracenn.nuclear_norm(E64, (0, 1, 2)), RuntimeError,
     "linalg.matrix_norm: dim must be a 2-tuple. Got 0 1 2"),
    (lambda: tracenn.nuclear_norm(E64, 0), RuntimeError, "linalg.matrix_norm: dims must be different. Got (0, 0)"),
    (lambda: tracenn.frobenius_norm(E64.expand(2, 3, 3), (0, 1, 2)), RuntimeError,
     "Expected at most 2 dimensions, but got 3 dimensions instead."),
    (lambda: tracenn.frobenius_norm(tracenn.ones(3, dtype=tracenn.int64), (0,)), RuntimeError,
     "norm(): input dtype should be either floating point or complex. Got Long instead."),
    (lambda: tracenn.pca_lowrank(tracenn.ones(3, 4), q=5), ValueError,
     "q(=5) must be non-negative integer and not greater than min(m, n)=3"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    call, kind, message = ERRORS[i]
    with pytest.raises(kind) as got:
        call()
    assert str(got.value).startswith(message), str(got.value)


def test_singular_inputs_give_inf_nan_without_raising():
    """As torch: cholesky_solve and triangular_solve do not check for a zero on the diagonal."""
    z = tracenn.zeros(3, 3, dtype=tracenn.float64)
    assert not np.isfinite(to_np(tracenn.cholesky_solve(B64, z))).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not np.isfinite(to_np(tracenn.triangular_solve(B64, z).solution)).all()
