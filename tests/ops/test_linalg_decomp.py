"""tracenn.linalg: values and gradients against NumPy (always) and PyTorch (when installed),
compiled equal to eager, torch's errors. Functions of decompositions that are not unique (signs of
singular and eigen vectors) are compared through invariant results."""
import math

import numpy as np
import pytest

import tracenn
from tracenn import linalg as LA
from helpers import to_np

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None


def _spd(n=4, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(batch + (n, n))
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(np.float32)


def _mat(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# name -> (function of tracenn tensors, the same with torch, NumPy reference or None, inputs)
CASES = {
    "inv": (lambda a: LA.inv(a), lambda a: torch.linalg.inv(a), np.linalg.inv, [_spd(batch=(2,))]),
    "solve": (lambda a, b: LA.solve(a, b), lambda a, b: torch.linalg.solve(a, b), np.linalg.solve,
              [_spd(), _mat((4, 3))]),
    "solve_vector": (lambda a, b: LA.solve(a, b), lambda a, b: torch.linalg.solve(a, b),
                     lambda a, b: np.linalg.solve(a, b[..., None])[..., 0], [_spd(batch=(2,)), _mat((2, 4))]),
    "solve_right": (lambda a, b: LA.solve(a, b, left=False), lambda a, b: torch.linalg.solve(a, b, left=False),
                    lambda a, b: b @ np.linalg.inv(a), [_spd(), _mat((3, 4))]),
    "det": (lambda a: LA.det(a), lambda a: torch.linalg.det(a), np.linalg.det, [_mat((2, 3, 3))]),
    "slogdet": (lambda a: LA.slogdet(a).logabsdet, lambda a: torch.linalg.slogdet(a).logabsdet,
                lambda a: np.linalg.slogdet(a)[1], [_mat((3, 3))]),
    "cholesky": (lambda a: LA.cholesky(a), lambda a: torch.linalg.cholesky(a), np.linalg.cholesky, [_spd()]),
    "cholesky_upper": (lambda a: LA.cholesky(a, upper=True), lambda a: torch.linalg.cholesky(a, upper=True),
                       lambda a: np.swapaxes(np.linalg.cholesky(a), -1, -2), [_spd()]),
    "qr_reconstruct": (lambda a: (lambda q, r: q @ r)(*LA.qr(a)), lambda a: (lambda q, r: q @ r)(*torch.linalg.qr(a)),
                       lambda a: a, [_mat((5, 3))]),
    "svd_reconstruct": (lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*LA.svd(a, full_matrices=False)),
                        lambda a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*torch.linalg.svd(a, full_matrices=False)),
                        lambda a: a, [_mat((4, 3))]),
    "svdvals": (lambda a: LA.svdvals(a), lambda a: torch.linalg.svdvals(a),
                lambda a: np.linalg.svd(a, compute_uv=False), [_mat((2, 4, 3))]),
    "eigvalsh": (lambda a: LA.eigvalsh(a), lambda a: torch.linalg.eigvalsh(a), np.linalg.eigvalsh, [_spd()]),
    "eigh_reconstruct": (lambda a: (lambda w, v: (v * w.unsqueeze(-2)) @ v.mT)(*LA.eigh(a)),
                         lambda a: (lambda w, v: (v * w.unsqueeze(-2)) @ v.mT)(*torch.linalg.eigh(a)),
                         lambda a: a, [_spd()]),
    "pinv": (lambda a: LA.pinv(a), lambda a: torch.linalg.pinv(a), np.linalg.pinv, [_mat((4, 3))]),
    "pinv_hermitian": (lambda a: LA.pinv(a, hermitian=True), lambda a: torch.linalg.pinv(a, hermitian=True),
                       np.linalg.pinv, [_spd()]),
    "pinv_atol": (lambda a: LA.pinv(a, atol=0.9), lambda a: torch.linalg.pinv(a, atol=0.9),
                  lambda a: (lambda u, s, vh: (vh.T * np.where(s > 0.9, 1 / s, 0)) @ u.T)(*np.linalg.svd(a, False)),
                  [_mat((4, 3))]),
    "near_singular_pinv": (lambda a: LA.pinv(a), lambda a: torch.linalg.pinv(a), None,
                           [np.array([[1.0, 1.0], [1.0, 1.0 + 2e-6]], np.float32)]),
    "matrix_exp": (lambda a: LA.matrix_exp(a * 0.3), lambda a: torch.linalg.matrix_exp(a * 0.3), None, [_mat((3, 3))]),
    "solve_triangular": (lambda a, b: LA.solve_triangular(a.triu() + 3 * tracenn.eye(3), b, upper=True),
                         lambda a, b: torch.linalg.solve_triangular(a.triu() + 3 * torch.eye(3), b, upper=True),
                         lambda a, b: np.linalg.solve(np.triu(a) + 3 * np.eye(3), b), [_mat((3, 3)), _mat((3, 2))]),
    "solve_triangular_right": (
        lambda a, b: LA.solve_triangular(a.tril() + 3 * tracenn.eye(3), b, upper=False, left=False),
        lambda a, b: torch.linalg.solve_triangular(a.tril() + 3 * torch.eye(3), b, upper=False, left=False),
        lambda a, b: b @ np.linalg.inv(np.tril(a) + 3 * np.eye(3)), [_mat((3, 3)), _mat((2, 3))]),
    "vector_norm_3": (lambda a: LA.vector_norm(a, 3, dim=1), lambda a: torch.linalg.vector_norm(a, 3, dim=1),
                      lambda a: (np.abs(a) ** 3).sum(1) ** (1 / 3), [_mat((3, 4))]),
    "matrix_norm_fro": (lambda a: LA.matrix_norm(a), lambda a: torch.linalg.matrix_norm(a),
                        lambda a: np.linalg.norm(a, "fro", axis=(-2, -1)), [_mat((2, 3, 4))]),
    "matrix_norm_nuc": (lambda a: LA.matrix_norm(a, "nuc"), lambda a: torch.linalg.matrix_norm(a, "nuc"),
                        lambda a: np.linalg.norm(a, "nuc"), [_mat((3, 4))]),
    "matrix_norm_2": (lambda a: LA.matrix_norm(a, 2), lambda a: torch.linalg.matrix_norm(a, 2),
                      lambda a: np.linalg.norm(a, 2), [_mat((3, 4))]),
    "matrix_norm_inf": (lambda a: LA.matrix_norm(a, math.inf), lambda a: torch.linalg.matrix_norm(a, math.inf),
                        lambda a: np.linalg.norm(a, np.inf), [_mat((3, 4))]),
    "matrix_norm_-1": (lambda a: LA.matrix_norm(a, -1), lambda a: torch.linalg.matrix_norm(a, -1),
                       lambda a: np.linalg.norm(a, -1), [_mat((3, 4))]),
    "norm_default": (lambda a: LA.norm(a), lambda a: torch.linalg.norm(a), lambda a: np.linalg.norm(a), [_mat((3, 4))]),
    "cross": (lambda a, b: LA.cross(a, b), lambda a, b: torch.linalg.cross(a, b), np.cross,
              [_mat((4, 3)), _mat((4, 3), seed=2)]),
    "multi_dot": (lambda a, b: LA.multi_dot([a, b, a.mT]), lambda a, b: torch.linalg.multi_dot([a, b, a.mT]),
                  lambda a, b: a @ b @ a.T, [_mat((2, 3)), _mat((3, 3), seed=3)]),
    "matrix_power_-2": (lambda a: LA.matrix_power(a, -2), lambda a: torch.linalg.matrix_power(a, -2),
                        lambda a: np.linalg.matrix_power(a, -2), [_spd()]),
    "matrix_power_3": (lambda a: LA.matrix_power(a, 3), lambda a: torch.linalg.matrix_power(a, 3),
                       lambda a: np.linalg.matrix_power(a, 3), [_mat((2, 3, 3))]),
    "householder_product": (lambda a, t: LA.householder_product(a, t), lambda a, t: torch.linalg.householder_product(a, t),
                            None, [_mat((5, 3)), np.array([1.2, 0.7, 1.5], np.float32)]),
    "logdet": (lambda a: tracenn.logdet(a), lambda a: torch.logdet(a), lambda a: np.log(np.linalg.det(a)), [_spd()]),
}


def _close(a, b, what):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4, err_msg=what)


@pytest.mark.parametrize("name", list(CASES))
def test_values_eager_and_compiled(name):
    fn, tfn, ref, inputs = CASES[name]
    ts = [tracenn.tensor(a) for a in inputs]
    out = fn(*ts)
    if ref is not None:
        _close(to_np(out), ref(*[a.astype(np.float64) for a in inputs]), name)
    if torch is not None:
        np.testing.assert_allclose(to_np(out), tfn(*[torch.tensor(a) for a in inputs]).numpy(), rtol=2e-4,
                                   atol=2e-4 * max(1.0, float(np.abs(to_np(out)).max())), err_msg=name + " torch")
    compiled = tracenn.compile(lambda *xs: fn(*xs))
    _close(to_np(compiled(*ts)), to_np(out), name + " compiled")


@pytest.mark.parametrize("name", [n for n in CASES if n != "near_singular_pinv"])  # (values only: ill-conditioned)
def test_gradients_match_torch(name):
    if torch is None:
        pytest.skip("torch not installed")
    fn, tfn, _, inputs = CASES[name]
    ts = [tracenn.tensor(a, requires_grad=True) for a in inputs]
    tts = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, tout = fn(*ts), tfn(*tts)
    _close(to_np(out), tout.detach().numpy(), name)
    weights = np.random.default_rng(5).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * tracenn.tensor(weights)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    for t, tt in zip(ts, tts):
        _close(to_np(t.grad), tt.grad.numpy(), name + " grad")
    # and through a compiled call
    ts2 = [tracenn.tensor(a, requires_grad=True) for a in inputs]
    (tracenn.compile(lambda *xs: fn(*xs))(*ts2) * tracenn.tensor(weights)).sum().backward()
    for t, t2 in zip(ts, ts2):
        _close(to_np(t2.grad), to_np(t.grad), name + " compiled grad")


def test_return_types_and_top_level_spellings():
    a = tracenn.tensor(_mat((4, 3)))
    q, r = LA.qr(a)
    assert LA.qr(a).Q is not None and q.shape == (4, 3) and r.shape == (3, 3)
    assert LA.qr(a, mode="complete").Q.shape == (4, 4)
    assert LA.qr(a, mode="r").Q.shape == (0,)
    u, s, vh = LA.svd(a)
    assert (u.shape, s.shape, vh.shape) == ((4, 4), (3,), (3, 3))
    U, S, V = tracenn.svd(a)
    _close(to_np((U * S) @ V.mT), to_np(a), "torch.svd")
    spd = tracenn.tensor(_spd())
    assert LA.eigh(spd)._fields == ("eigenvalues", "eigenvectors")
    assert LA.slogdet(spd)._fields == ("sign", "logabsdet")
    _close(to_np(spd.inverse() @ spd), np.eye(4), "Tensor.inverse")
    _close(to_np(spd.det()), np.linalg.det(_spd().astype(np.float64)), "Tensor.det")
    _close(to_np(tracenn.cholesky(spd) @ tracenn.cholesky(spd).mT), to_np(spd), "torch.cholesky")
    inv, info = LA.inv_ex(tracenn.tensor([[1.0, 2.0], [2.0, 4.0]]))
    assert int(info) == 2
    assert int(LA.cholesky_ex(tracenn.tensor([[1.0, 2.0], [2.0, 1.0]])).info) != 0
    assert int(LA.cholesky_ex(spd).info) == 0


def test_torchs_errors():
    singular = tracenn.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [2.0, 4.0]]])
    with pytest.raises(LA.LinAlgError, match=r"linalg.inv: \(Batch element 1\): The diagonal element 2 is zero, "
                                             r"the inversion could not be completed because the input matrix is singular."):
        LA.inv(singular)
    with pytest.raises(LA.LinAlgError, match="linalg.solve: .*singular"):
        LA.solve(singular, tracenn.ones(2, 2, 1))
    with pytest.raises(LA.LinAlgError, match=r"linalg.cholesky: The factorization could not be completed because the "
                                             r"input is not positive-definite \(the leading minor of order 3 is not "
                                             r"positive-definite\)."):
        LA.cholesky(tracenn.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]))
    assert issubclass(LA.LinAlgError, RuntimeError)
    with pytest.raises(RuntimeError, match="linalg.inv: Expected a floating point or complex tensor as input. Got Long"):
        LA.inv(tracenn.ones(2, 2, dtype=tracenn.int64))
    with pytest.raises(RuntimeError, match="linalg.inv: A must be batches of square matrices, but they are 2 by 3 matrices"):
        LA.inv(tracenn.ones(2, 3))
    with pytest.raises(RuntimeError, match="linalg.det: The input tensor A must have at least 2 dimensions."):
        LA.det(tracenn.ones(3))
    with pytest.raises(RuntimeError, match="qr received unrecognized mode 'full'"):
        LA.qr(tracenn.ones(2, 2), mode="full")
    with pytest.raises(RuntimeError, match="linalg.eigh: Expected UPLO argument to be 'L' or 'U', but got X"):
        LA.eigh(tracenn.eye(2), UPLO="X")
    with pytest.raises(RuntimeError, match="linalg.cross: inputs dimension -1 must have length 3"):
        LA.cross(tracenn.ones(2), tracenn.ones(2))
    with pytest.raises(RuntimeError, match="linalg.matrix_norm: Order 3 not supported."):
        LA.matrix_norm(tracenn.ones(2, 2), 3)
    with pytest.raises(RuntimeError, match="If dim is not specified but ord is, the input must be 1D or 2D"):
        LA.norm(tracenn.ones(2, 2, 2), 2)


def test_compiled_singular_input_gives_inf_not_an_error():
    f = tracenn.compile(lambda a: LA.inv(a))
    out = to_np(f(tracenn.tensor([[1.0, 2.0], [2.0, 4.0]])))
    assert not np.isfinite(out).all()


def test_geqrf_matches_torch_and_householder_product_rebuilds_q():
    a = _mat((5, 3))
    x, tau = tracenn.geqrf(tracenn.tensor(a))
    q = to_np(LA.householder_product(x, tau))
    r = np.triu(to_np(x))[:3]
    _close(q @ r, a, "geqrf -> Q R")
    if torch is not None:
        tx, ttau = torch.geqrf(torch.tensor(a))
        _close(to_np(x), tx.numpy(), "geqrf a")
        _close(to_np(tau), ttau.numpy(), "geqrf tau")


def test_pinv_with_atol_zero_keeps_the_default_rtol():
    """torch's rule: only an atol above zero turns the default rtol (eps * max(m, n)) off."""
    a = tracenn.tensor(np.diag([1.0, 1e-20]))
    assert LA.pinv(a, atol=0.0).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert LA.pinv(a, atol=1e-30).tolist() == [[1.0, 0.0], [0.0, 1e20]]
    assert LA.matrix_rank(a, atol=0.0).item() == 1 and LA.matrix_rank(a, atol=1e-30).item() == 2
