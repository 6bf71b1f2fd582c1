"""tracenn.linalg's eig, eigvals, lstsq, lu, lu_factor(_ex), lu_solve, solve_ex, matrix_rank and cond,
and torch.lu_unpack/lu/lu_solve: values against NumPy (always) and PyTorch (when installed),
gradients against central finite differences and PyTorch, compiled equal to eager, torch's dtypes,
named tuples and errors.

Each case is one function ``fn(T, *inputs)`` run with ``T`` = tracenn or torch; it returns a real
tensor that does not depend on a decomposition's free choices (eigenvector phases are seen
through ``|V|`` or ``V diag(w) V^-1``).
"""
import math

import numpy as np
import pytest

import tracenn
from tracenn import linalg as LA
from helpers import central_differences, to_np

_rng = np.random.default_rng(11)


def _mat(*shape, complex_=False):
    a = _rng.standard_normal(shape)
    if complex_:
        a = a + 1j * _rng.standard_normal(shape)
    return a


def _well(*shape):
    """A well-conditioned square matrix (batch): random plus a multiple of the identity."""
    n = shape[-1]
    return _mat(*shape) + 2 * n ** 0.5 * np.eye(n)


def _ri(z):
    return np.stack([z.real, z.imag], -1)


def _rank_def(m=5, n=3):
    a = _mat(m, n)
    a[:, 2] = a[:, 0] + a[:, 1]
    return a


RANK_DEF = _rank_def()
ZERO_COLUMN = np.concatenate([_mat(5, 2), np.zeros((5, 1))], 1)  # (R[2, 2] of its QR is exactly zero)


def _np_lstsq(a, b):
    if a.ndim == 2:
        return np.linalg.lstsq(a, b, rcond=None)[0]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a, b = np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:])
    return np.stack([np.linalg.lstsq(x, y, rcond=None)[0] for x, y in zip(a, b)])


def _lu_ref(a):
    """A pivoted Doolittle LU in NumPy: (P, L, U) with a = P L U (partial pivoting, as getrf)."""
    a = np.array(a, dtype=np.result_type(a, np.float64))
    m, n = a.shape
    perm = np.arange(m)
    for j in range(min(m, n)):
        p = j + int(np.argmax(np.abs(a[j:, j])))
        a[[j, p]], perm[[j, p]] = a[[p, j]], perm[[p, j]]
        a[j + 1:, j] /= a[j, j]
        a[j + 1:, j + 1:] -= np.outer(a[j + 1:, j], a[j, j + 1:])
    k = min(m, n)
    P = np.eye(m)[:, perm]
    return P, np.tril(a[:, :k], -1) + np.eye(m, k), np.triu(a[:k, :])


def _vr(T, z):
    return T.view_as_real(z.resolve_conj())


# name -> (fn(T, *inputs) -> real tensor, inputs (float64 / complex128), NumPy reference of the same or None)
CASES = {
    "eigvals": (lambda T, a: _vr(T, T.linalg.eigvals(a)), [_mat(4, 4)], lambda a: _ri(np.linalg.eigvals(a))),
    "eigvals_batch": (lambda T, a: _vr(T, T.linalg.eigvals(a)), [_mat(2, 3, 3)], lambda a: _ri(np.linalg.eigvals(a))),
    "eigvals_complex": (lambda T, a: _vr(T, T.linalg.eigvals(a)), [_mat(3, 3, complex_=True)],
                        lambda a: _ri(np.linalg.eigvals(a))),
    "eig_values": (lambda T, a: _vr(T, T.linalg.eig(a).eigenvalues), [_mat(4, 4)], lambda a: _ri(np.linalg.eig(a)[0])),
    "eig_abs_vectors": (lambda T, a: T.linalg.eig(a).eigenvectors.abs(), [_mat(2, 4, 4)],
                        lambda a: np.abs(np.linalg.eig(a)[1])),
    "eig_reconstruct": (lambda T, a: (lambda w, v: _vr(T, (v * w.unsqueeze(-2)) @ T.linalg.inv(v)))(*T.linalg.eig(a)),
                        [_mat(3, 3)], lambda a: _ri(a + 0j)),
    "eig_complex_abs_vectors": (lambda T, a: T.linalg.eig(a).eigenvectors.abs(), [_mat(3, 3, complex_=True)],
                                lambda a: np.abs(np.linalg.eig(a)[1])),
    "lu_factor": (lambda T, a: T.linalg.lu_factor(a).LU, [_mat(4, 4)], None),
    "lu_factor_wide": (lambda T, a: T.linalg.lu_factor(a).LU, [_mat(3, 5)], None),
    "lu_factor_ex_tall": (lambda T, a: T.linalg.lu_factor_ex(a).LU, [_mat(2, 5, 3)], None),
    "lu_P_L_U": (lambda T, a: (lambda P, L, U: P @ L @ U)(*T.linalg.lu(a)), [_mat(2, 4, 4)], lambda a: a),
    "lu_L_tall": (lambda T, a: T.linalg.lu(a).L, [_mat(5, 3)], lambda a: _lu_ref(a)[1]),
    "lu_U_wide": (lambda T, a: T.linalg.lu(a).U, [_mat(3, 5)], lambda a: _lu_ref(a)[2]),
    "lu_P": (lambda T, a: T.linalg.lu(a).P, [_mat(4, 4)], lambda a: _lu_ref(a)[0]),
    "lu_complex_U": (lambda T, a: _vr(T, T.linalg.lu(a).U), [_mat(3, 3, complex_=True)],
                     lambda a: _ri(_lu_ref(a)[2])),
    "lu_unpack": (lambda T, a: (lambda P, L, U: P @ L @ U)(*T.lu_unpack(*T.linalg.lu_factor(a))), [_mat(3, 5)],
                  lambda a: a),
    "lu_unpack_L": (lambda T, a: T.lu_unpack(*T.linalg.lu_factor(a)).L, [_mat(2, 4, 4)],
                    lambda a: np.stack([_lu_ref(x)[1] for x in a])),
    "lu_solve": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b), [_well(4, 4), _mat(4, 2)],
                 np.linalg.solve),
    "lu_solve_adjoint": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b, adjoint=True),
                         [_well(4, 4), _mat(4, 2)], lambda a, b: np.linalg.solve(a.T, b)),
    "lu_solve_right": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b, left=False),
                       [_well(4, 4), _mat(2, 4)], lambda a, b: b @ np.linalg.inv(a)),
    "lu_solve_right_adjoint": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b, left=False, adjoint=True),
                               [_well(4, 4), _mat(2, 4)], lambda a, b: b @ np.linalg.inv(a.T)),
    "lu_solve_broadcast_B": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b), [_well(3, 3), _mat(2, 3, 2)],
                             lambda a, b: np.linalg.solve(a, b)),
    "lu_solve_broadcast_LU": (lambda T, a, b: T.linalg.lu_solve(*T.linalg.lu_factor(a), b),
                              [_well(2, 3, 3), _mat(3, 2)], lambda a, b: np.linalg.solve(a, b)),
    "lu_solve_complex_adjoint": (
        lambda T, a, b: _vr(T, T.linalg.lu_solve(*T.linalg.lu_factor(a), b, adjoint=True)),
        [_mat(3, 3, complex_=True) + 3 * np.eye(3), _mat(3, 2, complex_=True)],
        lambda a, b: _ri(np.linalg.solve(a.conj().T, b))),
    "lu_solve_complex_right": (
        lambda T, a, b: _vr(T, T.linalg.lu_solve(*T.linalg.lu_factor(a), b, left=False)),
        [_mat(3, 3, complex_=True) + 3 * np.eye(3), _mat(2, 3, complex_=True)],
        lambda a, b: _ri(b @ np.linalg.inv(a))),
    "solve_ex": (lambda T, a, b: T.linalg.solve_ex(a, b).result, [_well(2, 3, 3), _mat(2, 3, 2)], np.linalg.solve),
    "solve_ex_right": (lambda T, a, b: T.linalg.solve_ex(a, b, left=False).result, [_well(3, 3), _mat(2, 3)],
                       lambda a, b: b @ np.linalg.inv(a)),
    "solve_ex_vector": (lambda T, a, b: T.linalg.solve_ex(a, b).result, [_well(2, 3, 3), _mat(2, 3)],
                        lambda a, b: np.linalg.solve(a, b[..., None])[..., 0]),
    "lstsq": (lambda T, a, b: T.linalg.lstsq(a, b).solution, [_mat(5, 3), _mat(5, 2)], _np_lstsq),
    "lstsq_gelsd_residuals": (lambda T, a, b: T.linalg.lstsq(a, b, driver="gelsd").residuals, [_mat(5, 3), _mat(5, 2)],
                              lambda a, b: ((a @ _np_lstsq(a, b) - b) ** 2).sum(0)),
    "lstsq_gels_residuals_batch": (lambda T, a, b: T.linalg.lstsq(a, b, driver="gels").residuals,
                                   [_mat(2, 5, 3), _mat(2, 5, 2)],
                                   lambda a, b: ((a @ _np_lstsq(a, b) - b) ** 2).sum(-2)),
    "lstsq_vector": (lambda T, a, b: T.linalg.lstsq(a, b, driver="gelss").solution, [_mat(5, 3), _mat(5)], _np_lstsq),
    "lstsq_wide_min_norm": (lambda T, a, b: T.linalg.lstsq(a, b, driver="gelsd").solution, [_mat(3, 5), _mat(3, 2)],
                            _np_lstsq),
    "lstsq_broadcast": (lambda T, a, b: T.linalg.lstsq(a, b).solution, [_mat(2, 5, 3), _mat(1, 5, 2)],
                        _np_lstsq),
    "lstsq_complex": (lambda T, a, b: _vr(T, T.linalg.lstsq(a, b, driver="gelsd").solution),
                      [_mat(5, 3, complex_=True), _mat(5, 2, complex_=True)], lambda a, b: _ri(_np_lstsq(a, b))),
    "lstsq_singular_values": (lambda T, a, b: T.linalg.lstsq(a, b, driver="gelsd").singular_values,
                              [_mat(5, 3), _mat(5, 2)], lambda a, b: np.linalg.svd(a, compute_uv=False)),
    "cond": (lambda T, a: T.linalg.cond(a), [_mat(2, 3, 3)], np.linalg.cond),
    "cond_rect": (lambda T, a: T.linalg.cond(a), [_mat(5, 3)], np.linalg.cond),
    "cond_-2": (lambda T, a: T.linalg.cond(a, -2), [_mat(3, 4)], lambda a: np.linalg.cond(a, -2)),
    "cond_fro": (lambda T, a: T.linalg.cond(a, "fro"), [_mat(3, 3)], lambda a: np.linalg.cond(a, "fro")),
    "cond_nuc": (lambda T, a: T.linalg.cond(a, "nuc"), [_mat(3, 3)], lambda a: np.linalg.cond(a, "nuc")),
    "cond_inf": (lambda T, a: T.linalg.cond(a, math.inf), [_mat(3, 3)], lambda a: np.linalg.cond(a, np.inf)),
    "cond_-inf": (lambda T, a: T.linalg.cond(a, -math.inf), [_mat(3, 3)], lambda a: np.linalg.cond(a, -np.inf)),
    "cond_1": (lambda T, a: T.linalg.cond(a, 1), [_mat(2, 3, 3)], lambda a: np.linalg.cond(a, 1)),
    "cond_-1": (lambda T, a: T.linalg.cond(a, -1), [_mat(3, 3)], lambda a: np.linalg.cond(a, -1)),
    "cond_complex": (lambda T, a: T.linalg.cond(a, 1), [_mat(3, 3, complex_=True)], lambda a: np.linalg.cond(a, 1)),
}
NO_GRAD = {"lu_P", "lstsq_singular_values"}  # (a permutation; torch's lstsq singular values take no gradient)
# torch 2.13's cond for these orders fails in backward (it fills its inverse in place): values only
TORCH_NO_GRAD = {"cond_fro", "cond_inf", "cond_-inf", "cond_1", "cond_-1", "cond_complex"}


def _tensors(T, arrays, grad):
    ts = [T.tensor(a) for a in arrays]
    return [t.requires_grad_(True) for t in ts] if grad else ts


def _weights(shape):
    return np.random.default_rng(3).standard_normal(tuple(shape))


def _grads(T, fn, arrays):
    """(output, d sum(output * w) / d each input) with ``T``, as NumPy."""
    ts = _tensors(T, arrays, True)
    out = fn(T, *ts)
    (out * T.tensor(_weights(out.shape))).sum().backward()
    return to_np(out), [to_np(t.grad.resolve_conj() if hasattr(t.grad, "resolve_conj") else t.grad) for t in ts]


def _fd(fn, arrays, which, h=1e-6):
    """d sum(fn * w) / d Re + i d/d Im of input ``which``, by central differences (float64)."""
    def loss(args):
        with tracenn.no_grad():
            out = fn(tracenn, *[tracenn.tensor(a) for a in args])
            return float((to_np(out) * _weights(out.shape)).sum())

    return central_differences(loss, arrays, which, h)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    fn, arrays, ref = CASES[name]
    out = fn(tracenn, *_tensors(tracenn, arrays, False))
    if ref is not None:
        np.testing.assert_allclose(to_np(out), ref(*arrays), rtol=1e-9, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_and_gradients_match_torch(name, torch):
    fn, arrays, _ = CASES[name]
    if name in NO_GRAD | TORCH_NO_GRAD:
        got, want = fn(tracenn, *_tensors(tracenn, arrays, False)), fn(torch, *_tensors(torch, arrays, False))
        np.testing.assert_allclose(to_np(got), to_np(want), rtol=1e-9, atol=1e-10, err_msg=name)
        return
    out, grads = _grads(tracenn, fn, arrays)
    tout, tgrads = _grads(torch, fn, arrays)
    np.testing.assert_allclose(out, tout, rtol=1e-9, atol=1e-10, err_msg=name)
    for g, tg in zip(grads, tgrads):
        assert g.dtype == tg.dtype
        np.testing.assert_allclose(g, tg, rtol=1e-7, atol=1e-9, err_msg=name + " grad")


@pytest.mark.parametrize("name", sorted(set(CASES) - NO_GRAD))
def test_gradients_match_finite_differences(name):
    fn, arrays, _ = CASES[name]
    _, grads = _grads(tracenn, fn, arrays)
    for i, g in enumerate(grads):
        assert g.dtype == arrays[i].dtype
        np.testing.assert_allclose(g, _fd(fn, arrays, i), rtol=1e-5, atol=1e-6, err_msg=f"{name} d/d(arg {i})")


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_matches_eager(name):
    fn, arrays, _ = CASES[name]
    compiled = tracenn.compile(lambda *xs: fn(tracenn, *xs))
    out, grads = _grads(tracenn, fn, arrays) if name not in NO_GRAD else (None, None)
    for _ in range(2):  # (the second call runs the cached program)
        if name in NO_GRAD:
            ts = _tensors(tracenn, arrays, False)
            np.testing.assert_allclose(to_np(compiled(*ts)), to_np(fn(tracenn, *ts)))
            continue
        got, got_grads = _grads(tracenn, lambda T, *xs: compiled(*xs), arrays)
        np.testing.assert_allclose(got, out, rtol=1e-10, atol=1e-12, err_msg=name)
        for g, e in zip(got_grads, grads):
            np.testing.assert_allclose(g, e, rtol=1e-8, atol=1e-10, err_msg=name + " compiled grad")


SECOND_ORDER = ["lstsq", "lu_solve", "eigvals", "eig_abs_vectors", "lu_P_L_U", "lu_U_wide", "solve_ex"]


@pytest.mark.parametrize("name", SECOND_ORDER)
def test_second_derivatives_match_torch(name, torch):
    """The gradient of a function of the gradient (create_graph=True), as torch's."""
    fn, arrays, _ = CASES[name]
    res = []
    for T in (tracenn, torch):
        xs = _tensors(T, arrays, True)
        out = fn(T, *xs)
        g = T.autograd.grad(((out * T.tensor(_weights(out.shape))) ** 2).sum(), xs, create_graph=True)
        res.append([to_np(h) for h in T.autograd.grad(sum((gi ** 2).sum() for gi in g), xs)])
    for got, want in zip(*res):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * np.abs(want).max(), err_msg=name)


FLOAT32_CASES = ["eigvals", "eig_abs_vectors", "eig_complex_abs_vectors", "lu_P_L_U", "lu_solve_adjoint",
                 "lu_solve_complex_right", "solve_ex", "lstsq", "lstsq_gelsd_residuals", "lstsq_complex", "cond"]


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


# ---- dtypes, shapes and named tuples ----------------------------------------------------------------

def test_dtypes_follow_torch():
    a32 = tracenn.tensor(_mat(3, 3).astype(np.float32))
    w, v = LA.eig(a32)
    assert (w.dtype, v.dtype) == (tracenn.complex64, tracenn.complex64)
    assert LA.eigvals(a32.double()).dtype == tracenn.complex128
    assert LA.eigvals(a32.to(tracenn.complex64)).dtype == tracenn.complex64
    lu_, piv, info = LA.lu_factor_ex(a32)
    assert (lu_.dtype, piv.dtype, info.dtype) == (tracenn.float32, tracenn.int32, tracenn.int32)
    assert piv.shape == (3,) and info.shape == () and 1 <= int(piv.min()) and int(piv.max()) <= 3
    assert LA.matrix_rank(a32).dtype == tracenn.int64
    assert LA.cond(a32.to(tracenn.complex64)).dtype == tracenn.float32
    r = LA.lstsq(a32.to(tracenn.complex64), a32.to(tracenn.complex64), driver="gelsd")
    assert (r.solution.dtype, r.residuals.dtype, r.rank.dtype, r.singular_values.dtype) == (
        tracenn.complex64, tracenn.float32, tracenn.int64, tracenn.float32)
    P, L, U = LA.lu(a32.double())
    assert P.dtype == L.dtype == U.dtype == tracenn.float64
    assert LA.solve_ex(a32, a32).info.dtype == tracenn.int32


def test_pivots_are_torchs_one_based_lapack_swaps():
    # getrf on [[1, 2], [3, 4]] swaps rows 1 and 2, then keeps row 2: pivots [2, 2]
    lu_, piv = LA.lu_factor(tracenn.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert piv.tolist() == [2, 2]
    np.testing.assert_allclose(to_np(lu_), [[3.0, 4.0], [1 / 3, 2 - 4 / 3]], rtol=1e-6)
    P, L, U = tracenn.lu_unpack(lu_, piv)
    assert P.tolist() == [[0.0, 1.0], [1.0, 0.0]]
    _, piv = LA.lu_factor(tracenn.eye(3))
    assert piv.tolist() == [1, 2, 3]


# driver -> what lstsq fills for a tall full-rank A: (residuals, rank, singular_values) shapes for batch (2,)
LSTSQ_FIELDS = {None: ((0,), (2,), (0,)), "gelsy": ((0,), (2,), (0,)), "gels": ((2, 4), (0,), (0,)),
                "gelsd": ((2, 4), (2,), (2, 3)), "gelss": ((2, 4), (2,), (2, 3))}


@pytest.mark.parametrize("driver", list(LSTSQ_FIELDS))
def test_lstsq_fills_torchs_fields_per_driver(driver):
    a, b = tracenn.tensor(_mat(2, 5, 3)), tracenn.tensor(_mat(2, 5, 4))
    r = LA.lstsq(a, b, driver=driver)
    assert r._fields == ("solution", "residuals", "rank", "singular_values")
    assert (tuple(r.residuals.shape), tuple(r.rank.shape), tuple(r.singular_values.shape)) == LSTSQ_FIELDS[driver]
    assert r.solution.shape == (2, 3, 4)
    if driver != "gels":
        assert r.rank.tolist() == [3, 3]
    # wide or square: no residuals; a rank-deficient A (gelsd): no residuals, rank 2
    assert LA.lstsq(a.mT, b[..., :3, :], driver=driver).residuals.shape == (0,)
    if driver in ("gelsd", "gelss"):
        rd = LA.lstsq(tracenn.tensor(RANK_DEF), tracenn.tensor(_mat(5, 2)), driver=driver)
        assert rd.residuals.shape == (0,) and int(rd.rank) == 2


@pytest.mark.parametrize("driver", list(LSTSQ_FIELDS))
@pytest.mark.parametrize("shapes", [((2, 5, 3), (2, 5, 4)), ((3, 5), (3, 2)), ((4, 4), (4, 1)), ((5, 3), (5,)),
                                    ((2, 5, 3), (2, 5)), "rank_deficient"])
def test_lstsq_fields_match_torch(driver, shapes, torch):
    if shapes == "rank_deficient" and driver == "gels":
        pytest.skip("whether gels finds an exactly zero pivot in R depends on the LAPACK build's rounding")
    a, b = (RANK_DEF, _mat(5, 2)) if shapes == "rank_deficient" else (_mat(*shapes[0]), _mat(*shapes[1]))
    got = LA.lstsq(tracenn.tensor(a), tracenn.tensor(b), driver=driver)
    want = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for g, w, f in zip(got, want, got._fields):
        assert (tuple(g.shape), str(g.dtype)) == (tuple(w.shape), str(w.dtype).replace("torch", "tracenn")), f
        if f != "solution" or shapes != "rank_deficient" or driver in ("gelsd", "gelss"):
            np.testing.assert_allclose(to_np(g), to_np(w), rtol=1e-8, atol=1e-10, err_msg=f)


def test_lstsq_compiled_fills_residuals_whenever_tall():
    """(Documented: a compiled program cannot choose its output shapes from the rank.)"""
    a, b = tracenn.tensor(RANK_DEF), tracenn.tensor(_mat(5, 2))
    assert LA.lstsq(a, b, driver="gelsd").residuals.shape == (0,)
    compiled = tracenn.compile(lambda a, b: LA.lstsq(a, b, driver="gelsd").residuals)
    assert compiled(a, b).shape == (2,)
    assert tracenn.compile(lambda a, b: LA.lstsq(a, b).residuals)(a, b).shape == (0,)  # (gelsy: never)


def test_lstsq_rank_deficient_is_the_minimum_norm_solution():
    a, b = RANK_DEF, _mat(5, 2)
    r = LA.lstsq(tracenn.tensor(a), tracenn.tensor(b), driver="gelsd")
    x, _, rank, s = np.linalg.lstsq(a, b, rcond=None)
    np.testing.assert_allclose(to_np(r.solution), x, rtol=1e-8, atol=1e-10)
    assert int(r.rank) == rank == 2
    np.testing.assert_allclose(to_np(r.singular_values), s, atol=1e-12)
    # rcond decides the rank: with rcond above the middle singular value, only one is kept
    assert int(LA.lstsq(tracenn.tensor(a), tracenn.tensor(b), rcond=0.99 * s[1] / s[0] + 0.01,
                        driver="gelsd").rank) == 1


@pytest.mark.parametrize("name,call,fields", [
    ("linalg_eig", lambda a: LA.eig(a), ("eigenvalues", "eigenvectors")),
    ("linalg_lu", lambda a: LA.lu(a), ("P", "L", "U")),
    ("linalg_lu_factor", lambda a: LA.lu_factor(a), ("LU", "pivots")),
    ("linalg_lu_factor_ex", lambda a: LA.lu_factor_ex(a), ("LU", "pivots", "info")),
    ("lu_unpack", lambda a: tracenn.lu_unpack(*LA.lu_factor(a)), ("P", "L", "U")),
    ("linalg_solve_ex", lambda a: LA.solve_ex(a, a), ("result", "info")),
    ("linalg_lstsq", lambda a: LA.lstsq(a, a), ("solution", "residuals", "rank", "singular_values")),
])
def test_named_tuples(name, call, fields):
    r = call(tracenn.tensor([[2.0, 1.0], [1.0, 3.0]]))
    assert r._fields == fields
    assert repr(r).startswith(f"tracenn.return_types.{name}(\n{fields[0]}=tensor(")


@pytest.mark.parametrize("call", [
    lambda T, a: T.linalg.lu_factor(a), lambda T, a: T.linalg.lu_factor_ex(a), lambda T, a: T.linalg.lu(a),
    lambda T, a: T.lu_unpack(*T.linalg.lu_factor(a)), lambda T, a: T.linalg.solve_ex(a, a),
    lambda T, a: T.linalg.lstsq(2 * T.eye(2), a, driver="gelsd"), lambda T, a: T.linalg.eig(a)])
def test_reprs_match_torch(call, torch):
    a = [[4.0, 0.0], [2.0, 1.0]]  # (exact LU, real eigenvalues)
    want = repr(call(torch, torch.tensor(a))).replace("torch.", "tracenn.")
    assert repr(call(tracenn, tracenn.tensor(a))) == want


@pytest.mark.parametrize("call", [
    lambda T, a: T.linalg.slogdet(a), lambda T, a: T.linalg.inv_ex(a), lambda T, a: T.linalg.cholesky_ex(a @ a.mT),
    lambda T, a: T.linalg.eigh(T.diag(T.diagonal(a)))])
def test_existing_named_tuples_print_as_torchs(call, torch):
    a = [[4.0, 0.0], [2.0, 1.0]]
    want = repr(call(torch, torch.tensor(a))).replace("torch.", "tracenn.")
    assert repr(call(tracenn, tracenn.tensor(a))) == want


def test_existing_named_tuple_names():
    a = tracenn.tensor([[4.0, 0.0], [2.0, 1.0]])
    for r, name in [(LA.qr(a), "linalg_qr"), (LA.svd(a), "linalg_svd"), (tracenn.svd(a), "svd"),
                    (tracenn.geqrf(a), "geqrf"), (LA.slogdet(a), "linalg_slogdet")]:
        assert type(r).__name__ == name and repr(r).startswith(f"tracenn.return_types.{name}(\n")


def test_eig_matches_lapacks_order_and_normalisation():
    a = _mat(4, 4)
    w, v = LA.eig(tracenn.tensor(a))
    nw, nv = np.linalg.eig(a)  # (LAPACK geev too)
    np.testing.assert_allclose(to_np(w), nw, rtol=1e-10)
    np.testing.assert_allclose(to_np(v), nv, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.linalg.norm(to_np(v), axis=0), 1.0)
    np.testing.assert_allclose(to_np(tracenn.tensor(a + 0j) @ v), to_np(v * w.unsqueeze(-2)), atol=1e-10)


def test_eig_known_values():
    w = LA.eigvals(tracenn.tensor([[0.0, -1.0], [1.0, 0.0]]))  # a rotation: +-i
    np.testing.assert_allclose(to_np(w), [1j, -1j], atol=1e-7)
    w, v = LA.eig(tracenn.tensor([[2.0, 1.0], [0.0, 3.0]]))
    np.testing.assert_allclose(to_np(w), [2, 3])
    np.testing.assert_allclose(np.abs(to_np(v)), [[1, 2 ** -0.5], [0, 2 ** -0.5]], atol=1e-7)


def test_matrix_rank():
    a = RANK_DEF
    assert int(LA.matrix_rank(tracenn.tensor(a))) == np.linalg.matrix_rank(a) == 2
    assert LA.matrix_rank(tracenn.tensor(np.stack([a, _mat(5, 3)]))).tolist() == [2, 3]
    b = tracenn.tensor(_mat(4, 3))
    s = to_np(LA.svdvals(b))
    assert int(LA.matrix_rank(b, atol=float(s[1]) + 1e-6)) == 1
    assert int(LA.matrix_rank(b, rtol=float(s[2] / s[0]) + 1e-6)) == 2
    assert int(LA.matrix_rank(b, float(s[2]) + 1e-6)) == 2  # tol (deprecated): atol with rtol 0
    assert LA.matrix_rank(b, atol=tracenn.tensor([[0.0], [float(s[0]) + 1]])).tolist() == [[3], [0]]
    assert LA.matrix_rank(b.unsqueeze(0).expand(2, 4, 3), atol=tracenn.tensor([0.0, float(s[1]) + 1e-6])).tolist() \
        == [3, 1]
    sym = tracenn.tensor(np.diag([3.0, -2.0, 0.0]))
    assert int(LA.matrix_rank(sym, hermitian=True)) == 2
    assert int(LA.matrix_rank(tracenn.zeros(3, 3))) == 0 and int(LA.matrix_rank(tracenn.zeros(0, 3))) == 0
    assert LA.matrix_rank(tracenn.zeros(2, 0, 3)).tolist() == [0, 0]
    compiled = tracenn.compile(lambda x: LA.matrix_rank(x))
    assert int(compiled(tracenn.tensor(a))) == 2


@pytest.mark.parametrize("call", [
    lambda T, a: T.linalg.matrix_rank(a), lambda T, a: T.linalg.matrix_rank(a, atol=0.5, rtol=0.1),
    lambda T, a: T.linalg.matrix_rank(a, atol=0.0), lambda T, a: T.linalg.matrix_rank(a, hermitian=True),
    lambda T, a: T.linalg.matrix_rank(a, atol=T.tensor([[0.1], [1.5]], dtype=T.float64))])
def test_matrix_rank_matches_torch(call, torch):
    a = np.diag([3.0, 1.0, 1e-3]) @ _mat(3, 3)
    a = a + a.T
    assert to_np(call(tracenn, tracenn.tensor(a))).tolist() == to_np(call(torch, torch.tensor(a))).tolist()


def test_cond_singular_and_empty():
    s = tracenn.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]])
    for p in ("fro", math.inf, 1, -1):
        got = to_np(LA.cond(s, p))
        assert got[1] == math.inf and np.isfinite(got[0])
    assert LA.cond(tracenn.zeros(0, 3, 3), "fro").shape == (0,)
    assert float(LA.cond(tracenn.zeros(0, 0))) == 0.0
    assert float(LA.cond(tracenn.zeros(0, 3), 1)) == 0.0
    assert math.isnan(float(LA.cond(tracenn.zeros(2, 2))))


def test_cond_singular_matches_torch(torch):
    s = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]]
    for p in (None, 2, -2, "fro", "nuc", math.inf, -math.inf, 1, -1):
        np.testing.assert_allclose(to_np(LA.cond(tracenn.tensor(s), p)), torch.linalg.cond(torch.tensor(s), p).numpy(),
                                   rtol=1e-3, err_msg=str(p))


def test_solve_ex_reports_singular_matrices():
    a = tracenn.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]])
    x, info = LA.solve_ex(a, tracenn.ones(2, 2, 1))
    assert info.tolist() == [0, 2]
    assert np.isfinite(to_np(x[0])).all() and not np.isfinite(to_np(x[1])).all()
    with pytest.raises(LA.LinAlgError, match=r"^torch.linalg.solve_ex: \(Batch element 1\): The solver failed because "
                                             r"the input matrix is singular.$"):
        LA.solve_ex(a, tracenn.ones(2, 2, 1), check_errors=True)
    with pytest.raises(LA.LinAlgError, match=r"^torch.linalg.solve: \(Batch element 1\): The solver failed"):
        LA.solve(a, tracenn.ones(2, 2, 1))
    compiled = tracenn.compile(lambda a, b: LA.solve_ex(a, b, check_errors=True).info)  # (no host read: no raise)
    assert compiled(a, tracenn.ones(2, 2, 1)).tolist() == [0, 2]


def test_lu_factor_checks_and_info():
    z = tracenn.tensor(np.stack([np.eye(3), np.zeros((3, 3))]))
    msg = ("U[1,1] is zero and using it on lu_solve would result in a division by zero. If you still want to perform "
           "the factorization, consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")
    with pytest.raises(RuntimeError, match=r"^torch.linalg.lu_factor: \(Batch element 1\): " + msg.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[").replace("]", r"\]").replace(".", r"\.") + "$"):
        LA.lu_factor(z)
    with pytest.raises(RuntimeError, match=r"^torch.linalg.lu_factor_ex: U\[2,2\] is zero"):
        LA.lu_factor_ex(tracenn.tensor([[1.0, 2.0], [2.0, 4.0]]), check_errors=True)
    assert LA.lu_factor_ex(z).info.tolist() == [0, 1]
    assert LA.lu(z).U.shape == (2, 3, 3)  # (lu never raises)
    assert tracenn.lu(z, get_infos=True).info.tolist() == [0, 1]
    compiled = tracenn.compile(lambda a: LA.lu_factor_ex(a).info)
    assert compiled(z).tolist() == [0, 1]
    LU, piv = tracenn.compile(lambda a: LA.lu_factor(a))(z)  # (no host read inside a compiled program)
    assert piv.tolist() == [[1, 2, 3], [1, 2, 3]]


def test_top_level_and_tensor_spellings():
    a, b = tracenn.tensor(_well(3, 3)), tracenn.tensor(_mat(3, 2))
    LU, piv = tracenn.lu(a)
    np.testing.assert_allclose(to_np(tracenn.lu_solve(b, LU, piv)), np.linalg.solve(to_np(a), to_np(b)), rtol=1e-10)
    np.testing.assert_allclose(to_np(b.lu_solve(*a.lu())), np.linalg.solve(to_np(a), to_np(b)), rtol=1e-10)
    P, L, U = tracenn.lu_unpack(LU, piv, unpack_data=False)
    assert P.shape == (3, 3) and L.shape == U.shape == (0,)
    P, L, U = tracenn.lu_unpack(LU, piv, unpack_pivots=False)
    assert P.shape == (0,) and L.shape == U.shape == (3, 3)


def test_out_arguments():
    a = tracenn.tensor(_mat(3, 3))
    w, v = tracenn.empty(3, dtype=tracenn.complex128), tracenn.empty(3, 3, dtype=tracenn.complex128)
    r = LA.eig(a, out=(w, v))
    assert r.eigenvalues is w and r.eigenvectors is v
    np.testing.assert_allclose(to_np(w), np.linalg.eigvals(to_np(a)), rtol=1e-10)
    out = tracenn.empty(3)
    assert LA.cond(a, out=out) is out


# ---- errors -------------------------------------------------------------------------------------

ERRORS = [
    (lambda: LA.eig(tracenn.ones(2, 3)), RuntimeError,
     "linalg.eig: A must be batches of square matrices, but they are 2 by 3 matrices"),
    (lambda: LA.eig(tracenn.ones(3)), RuntimeError, "linalg.eig: The input tensor A must have at least 2 dimensions."),
    (lambda: LA.eigvals(tracenn.ones(3, 3, dtype=tracenn.int64)), RuntimeError,
     "linalg.eigvals: Expected a floating point or complex tensor as input. Got Long"),
    (lambda: LA.eig(tracenn.ones(3, 3, dtype=tracenn.float16)), RuntimeError,
     "\"linalg_eig_out_cpu\" not implemented for 'Half'"),
    (lambda: LA.eig(tracenn.full((3, 3), float("nan"))), RuntimeError,
     "torch.linalg.eig: input tensor should not contain infs or NaNs."),
    (lambda: LA.lu(tracenn.ones(3)), RuntimeError,
     "linalg.lu: Expected tensor with 2 or more dimensions. Got size: [3] instead"),
    (lambda: LA.lu_factor(tracenn.ones(3)), RuntimeError,
     "torch.lu_factor: Expected tensor with 2 or more dimensions. Got size: [3] instead"),
    (lambda: LA.lu_factor(tracenn.eye(3), pivot=False), RuntimeError,
     "linalg.lu_factor: LU without pivoting is not implemented on the CPU"),
    (lambda: LA.lu(tracenn.eye(3, dtype=tracenn.bfloat16)), RuntimeError, "\"lu_cpu\" not implemented for 'BFloat16'"),
    (lambda: LA.lu_solve(*LA.lu_factor(tracenn.eye(3)), tracenn.ones(3)), RuntimeError,
     "linalg.lu_solve: The input tensor B must have at least 2 dimensions."),
    (lambda: LA.lu_solve(*LA.lu_factor(tracenn.eye(3)), tracenn.ones(4, 2)), RuntimeError,
     "linalg.lu_solve: Incompatible shapes of A and B for the equation AX = B (3x3 and 4x2)"),
    (lambda: LA.lu_solve(*LA.lu_factor(tracenn.eye(3)), tracenn.ones(3, 2), left=False), RuntimeError,
     "linalg.lu_solve: Incompatible shapes of A and B for the equation XA = B (3x3 and 3x2)"),
    (lambda: LA.lu_solve(LA.lu_factor(tracenn.eye(3))[0], LA.lu_factor(tracenn.eye(3))[1].long(), tracenn.ones(3, 2)),
     RuntimeError, "linalg.lu_solve: pivots should be a Tensor of scalar type torch.int32"),
    (lambda: LA.lu_solve(*LA.lu_factor(tracenn.eye(3)), tracenn.ones(3, 2, dtype=tracenn.float64)), RuntimeError,
     "linalg.lu_solve: Expected LU and B to have the same dtype, but found LU of type Float and B of type Double "
     "instead"),
    (lambda: LA.lu_solve(tracenn.ones(3, 2), tracenn.ones(3, dtype=tracenn.int32), tracenn.ones(3, 2)), RuntimeError,
     "torch.linalg.lu_solve: A must be batches of square matrices, but they are 3 by 2 matrices"),
    (lambda: LA.lu_solve(tracenn.eye(3), tracenn.ones(2, dtype=tracenn.int32), tracenn.ones(3, 2)), RuntimeError,
     "linalg.lu_solve: Number of pivots per batch should be same as the dimension of the matrix"),
    (lambda: LA.lu_solve(tracenn.eye(3).expand(2, 3, 3), tracenn.ones(3, dtype=tracenn.int32), tracenn.ones(3, 2)),
     RuntimeError, "linalg.lu_solve: Expected LU.shape[:-1] and pivots.shape to be the same, but got pivots with "
                   "shape [3] instead"),
    (lambda: tracenn.lu_unpack(tracenn.eye(3), tracenn.ones(3, dtype=tracenn.int64)), RuntimeError,
     "torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype."),
    (lambda: LA.lstsq(tracenn.ones(5, 3), tracenn.ones(5, 2), driver="foo"), RuntimeError,
     "torch.linalg.lstsq: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)"),
    (lambda: LA.lstsq(tracenn.ones(5), tracenn.ones(5, 2)), RuntimeError,
     "torch.linalg.lstsq: input must have at least 2 dimensions."),
    (lambda: LA.lstsq(tracenn.ones(5, 3), tracenn.ones(4, 2)), RuntimeError,
     "torch.linalg.lstsq: input.size(-2) should match other.size(-2)"),
    (lambda: LA.lstsq(tracenn.ones(5, 3), tracenn.ones(5, 2, dtype=tracenn.float64)), RuntimeError,
     "torch.linalg.lstsq: Expected input and other to have the same dtype, but got input's dtype Float and other's "
     "dtype Double"),
    (lambda: LA.lstsq(tracenn.ones(5, 3, dtype=tracenn.int64), tracenn.ones(5, 2, dtype=tracenn.int64)), RuntimeError,
     "This function doesn't handle types other than float and double"),
    (lambda: LA.lstsq(tracenn.ones(5, 3), tracenn.ones(3, 5, 2)), RuntimeError,
     "torch.linalg.lstsq: input.dim() must be greater or equal to other.dim() and (input.dim() - other.dim()) <= 1"),
    (lambda: LA.lstsq(tracenn.ones(3, 5, 3), tracenn.ones(2, 5, 2)), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (2) at non-singleton dimension 0"),
    (lambda: LA.lstsq(tracenn.tensor(ZERO_COLUMN), tracenn.ones(5, 2, dtype=tracenn.float64), driver="gels"),
     LA.LinAlgError, "torch.linalg.lstsq: The least squares solution could not be computed because the input matrix "
                     "does not have full rank (error code: 3)."),
    (lambda: LA.matrix_rank(tracenn.ones(3)), RuntimeError,
     "torch.linalg.matrix_rank: The input tensor input must have at least 2 dimensions."),
    (lambda: LA.matrix_rank(tracenn.ones(4, 3), hermitian=True), RuntimeError,
     "linalg.eigh: A must be batches of square matrices, but they are 4 by 3 matrices"),
    (lambda: LA.matrix_rank(tracenn.ones(3, 3), atol=tracenn.tensor(1 + 0j)), RuntimeError,
     "torch.linalg.matrix_rank: atol tensor of complex type is not supported. Got ComplexFloat"),
    (lambda: LA.matrix_rank(tracenn.ones(3, 3), 0.5, atol=0.5), TypeError,
     "linalg.matrix_rank: tol (deprecated) cannot be combined"),
    (lambda: LA.cond(tracenn.ones(3)), RuntimeError, "linalg.cond: The input tensor must have at least 2 dimensions."),
    (lambda: LA.cond(tracenn.ones(3, 3), 3), RuntimeError, "linalg.cond got an invalid norm type: 3"),
    (lambda: LA.cond(tracenn.ones(3, 3), "foo"), RuntimeError, "linalg.cond got an invalid norm type: foo"),
    (lambda: LA.cond(tracenn.ones(4, 3), "fro"), RuntimeError,
     "linalg.cond(ord=fro): A must be batches of square matrices, but they are 4 by 3 matrices"),
    (lambda: LA.cond(tracenn.ones(4, 3), math.inf), RuntimeError,
     "linalg.cond(ord=inf): A must be batches of square matrices, but they are 4 by 3 matrices"),
    (lambda: LA.cond(tracenn.ones(4, 3), -1), RuntimeError,
     "linalg.cond(ord=-1): A must be batches of square matrices, but they are 4 by 3 matrices"),
    (lambda: LA.cond(tracenn.ones(4, 3), 1.0), RuntimeError,
     "linalg.cond(ord=1.000000): A must be batches of square matrices, but they are 4 by 3 matrices"),
    (lambda: LA.solve_ex(tracenn.eye(2), tracenn.ones(2, 1, dtype=tracenn.float64)), RuntimeError,
     "linalg.solve: Expected A and B to have the same dtype, but found A of type Float and B of type Double instead"),
    (lambda: LA.solve_ex(tracenn.ones(2, 3), tracenn.ones(2, 1)), RuntimeError,
     "linalg.solve: A must be batches of square matrices, but they are 2 by 3 matrices"),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    call, kind, msg = ERRORS[i]
    with pytest.raises(kind) as info:
        call()
    assert str(info.value).startswith(msg), str(info.value)


# The same calls with torch: each message above is torch's own (ours may add how to fix it).
TORCH_SAME = [i for i, (_, _, m) in enumerate(ERRORS)
              if not m.startswith(("\"", "linalg.eigvals: Expected", "linalg.matrix_rank: tol", "torch.lu_factor",
                                   "linalg.lu_factor: LU"))]


@pytest.mark.parametrize("i", TORCH_SAME)
def test_error_messages_are_torchs(i, torch):
    import sys
    call, kind, msg = ERRORS[i]
    code = call.__code__
    # Run the same lambda with tracenn swapped for torch in its globals.
    env = dict(call.__globals__, tracenn=torch, LA=torch.linalg)
    fn = type(call)(code, env)
    with pytest.raises(RuntimeError) as info:
        fn()
    assert msg in str(info.value), (str(info.value), sys.version)
