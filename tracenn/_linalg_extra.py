"""torch.linalg's LDL factorization (``ldl_factor``, ``ldl_factor_ex``, ``ldl_solve``),
``tensorinv``, ``tensorsolve``, ``vander`` and ``matmul``; torch's ``cholesky_solve``,
``cholesky_inverse``, ``triangular_solve``, ``qr``, ``orgqr``, ``ormqr``, ``nuclear_norm``,
``frobenius_norm``, ``svd_lowrank`` and ``pca_lowrank``; and the functions torch 2.13 has removed
(``torch.solve``, ``lstsq``, ``symeig``, ``eig``, ``matrix_rank``), which raise torch's errors
pointing at their torch.linalg replacements. Imported into :mod:`tracenn.linalg`.

The LDL ops are LAPACK's sytrf/sytrs (Bunch-Kaufman pivoting) written in JAX step for step, so
the pivots are torch's; like torch's, they take no gradient. ``cholesky_solve`` and
``cholesky_inverse`` differentiate as torch's do (the factor read whole); the rest are composites
of differentiable ops.

>>> import tracenn
>>> A = tracenn.tensor([[4.0, 2.0], [2.0, 3.0]])
>>> L = tracenn.linalg.cholesky(A)
>>> tracenn.cholesky_solve(tracenn.tensor([[2.0], [1.0]]), L)
tensor([[0.5000],
        [0.0000]])
>>> tracenn.linalg.vander(tracenn.tensor([1.0, 2.0, 3.0]))
tensor([[1., 1., 1.],
        [1., 2., 4.],
        [1., 3., 9.]])
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from . import dtypes as _dt
from ._api.reduce import return_type
from ._linalg_more import _batch_prefix, _broadcast_batch, _first_bad, _lapack, _out_all
from .linalg import (LinAlgError, _check, _eager, _float, _op, _square, householder_product, matrix_norm, qr,
                     solve, svd, vector_norm)
from .tensor import Tensor

_LDLFactor = return_type("linalg_ldl_factor", ["LD", "pivots"])
_LDLFactorEx = return_type("linalg_ldl_factor_ex", ["LD", "pivots", "info"])
_TriangularSolve = return_type("triangular_solve", ["solution", "cloned_coefficient"])
_TorchQR = return_type("qr", ["Q", "R"])

_LAPACK_DTYPES = (_dt.float32, _dt.float64, _dt.complex64, _dt.complex128)


def _kernel_dtype(kernel, *ts):
    """torch's CPU kernels here take float32/64 and complex only: its NotImplementedError otherwise."""
    from ._api.math import _torch_name
    for t in ts:
        if t.dtype not in _LAPACK_DTYPES:
            raise NotImplementedError(f"\"{kernel}\" not implemented for '{_torch_name(t._value.dtype)}'; compute "
                                      "in float32 or float64, e.g. A.double()")


def _same_dtype(b, a):
    from ._api.math import _torch_name
    if b.dtype != a.dtype:
        raise RuntimeError(f"Expected b and A to have the same dtype, but found b of type "
                           f"{_torch_name(b._value.dtype)} and A of type {_torch_name(a._value.dtype)} instead.")


_WARNED = set()


def _warn_once(key, message):
    """torch's TORCH_WARN_ONCE: a deprecation warning the first time only."""
    if key not in _WARNED:
        _WARNED.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


# ---- LDL ----------------------------------------------------------------------------------------------

def ldl_factor_ex(A, *, hermitian=False, check_errors=False, out=None):
    """(LD, pivots, info): the LDL^T (``hermitian``: LDL^H) factorization with Bunch-Kaufman
    pivoting of each symmetric matrix, from its lower triangle (LAPACK's sytrf, as torch's):
    L's multipliers below the diagonal, D's 1x1 and 2x2 blocks on and beside it; ``pivots``
    int32, LAPACK's (1-based; a 2x2 block's two entries are negative); ``info`` k > 0 where
    D[k-1, k-1] is exactly zero (a singular matrix, factored all the same). Not differentiable.

    >>> import tracenn
    >>> tracenn.linalg.ldl_factor_ex(tracenn.tensor([[0.0, 1.0], [1.0, 0.0]])).pivots
    tensor([-2, -2], dtype=tracenn.int32)
    """
    name = "torch.linalg.ldl_factor_ex"
    _lapack("ldl_factor_kernel_cpu", A)
    _float(name, A)
    _square(name, A)
    ld, piv, info = _op("linalg_ldl_factor", A, key=(bool(hermitian),))
    if check_errors and _eager() and A.numel():
        _raise_singular_d(name, A, info)
    return _out_all(_LDLFactorEx(ld, piv, info), out)


def _raise_singular_d(name, A, info):
    bad = _first_bad(info)
    if bad is not None:
        i, k = bad
        raise LinAlgError(f"{name}: {_batch_prefix(A.shape, i)}The factorization could not be completed because "
                          f"D[{k - 1}, {k - 1}] is exactly zero: the input matrix is singular (LAPACK sytrf's info = "
                          f"{k}). ldl_factor_ex(A) returns the factorization anyway, with info.")


def ldl_factor(A, *, hermitian=False, out=None):
    """(LD, pivots) as :func:`ldl_factor_ex`; eagerly, a singular D raises :class:`LinAlgError`
    (torch 2.13 fails there with an internal assert). Solve with :func:`ldl_solve`.

    >>> import tracenn
    >>> A = tracenn.tensor([[4.0, 2.0], [2.0, -3.0]])
    >>> LD, pivots = tracenn.linalg.ldl_factor(A)
    >>> LD
    tensor([[ 4.0000,  0.0000],
            [ 0.5000, -4.0000]])
    """
    name = "torch.linalg.ldl_factor"
    _lapack("ldl_factor_kernel_cpu", A)
    _float(name, A)
    _square(name, A)
    ld, piv, info = _op("linalg_ldl_factor", A, key=(bool(hermitian),))
    if _eager() and A.numel():
        _raise_singular_d(name, A, info)
    return _out_all(_LDLFactor(ld, piv), out)


def ldl_solve(LD, pivots, B, *, hermitian=False, out=None):
    """``X`` with ``A X = B`` from ``(LD, pivots) = ldl_factor(A)`` (LAPACK's sytrs); pass the
    same ``hermitian``. Batch dims of LD and B broadcast. Not differentiable, as torch's.

    >>> import tracenn
    >>> A = tracenn.tensor([[4.0, 2.0], [2.0, -3.0]])
    >>> tracenn.linalg.ldl_solve(*tracenn.linalg.ldl_factor(A), tracenn.tensor([[6.0], [-1.0]]))
    tensor([[1.],
            [1.]])
    """
    from ._api.math import _out
    name = "torch.linalg.ldl_solve"
    _lapack("ldl_solve_cpu", LD)
    _float(name, LD)
    _square(name, LD)
    if B.ndim < 2:
        raise IndexError(f"{name}: B must have at least 2 dimensions, but got {B.ndim} (for a vector b, pass "
                         "b.unsqueeze(-1) and squeeze the result)")
    _same_dtype(B, LD)
    if tuple(pivots.shape) != tuple(LD.shape[:-1]):
        raise RuntimeError(f"{name}: Expected LD.shape[:-1] and pivots.shape to be the same, but got pivots with "
                           f"shape {list(pivots.shape)} instead")
    if pivots.dtype != _dt.int32:
        if pivots.dtype.is_floating_point or pivots.dtype.is_complex or pivots.dtype == _dt.bool:
            raise RuntimeError(f"{name}: Expected pivots to be integers. Got {pivots.dtype}")
        pivots = pivots.int()
    n = LD.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for {name}: each A matrix is {n} by {n} but each b matrix is "
                           f"{B.shape[-2]} by {B.shape[-1]}")
    _broadcast_batch(LD.shape[:-2], B.shape[:-2])
    return _out(_op("linalg_ldl_solve", LD, pivots, B, key=(bool(hermitian),)), out)


# ---- tensor equations, Vandermonde, matmul -----------------------------------------------------------

def tensorinv(A, ind=2, *, out=None):
    """The inverse of ``A`` seen as a map from its last dims to its first ``ind`` dims:
    ``tensordot(tensorinv(A, ind), A, ind)`` is the identity. Shape ``A.shape[ind:] + A.shape[:ind]``.

    >>> import tracenn
    >>> A = tracenn.eye(4).reshape(4, 2, 2)
    >>> tracenn.linalg.tensorinv(A, ind=1).shape
    tracenn.Size([2, 2, 4])
    """
    from ._api.math import _out
    if ind <= 0:
        raise RuntimeError(f"Expected a strictly positive integer for 'ind', but got {ind}")
    rows, cols = math.prod(A.shape[:ind]), math.prod(A.shape[ind:])
    if rows != cols:
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[ind:]) == "
                           f"prod(self.shape[:ind]), but got {cols} != {rows}")
    _float("linalg.inv", A)
    a = A.reshape(rows, cols)
    _check("inv", a)
    return _out(_op("linalg_inv", a).reshape(tuple(A.shape[ind:]) + tuple(A.shape[:ind])), out)


def tensorsolve(A, B, dims=None, *, out=None):
    """``X`` with ``tensordot(A, X, X.ndim) == B``: ``A``'s dims beyond ``B.ndim`` are the unknown's
    (``dims``: dims of ``A`` moved to the end first). Shape ``A.shape[B.ndim:]``.

    >>> import tracenn
    >>> A = tracenn.eye(6).reshape(2, 3, 6)
    >>> tracenn.linalg.tensorsolve(A, tracenn.ones(2, 3)).shape
    tracenn.Size([6])
    """
    from ._api.math import _out
    from ._api.shape import movedim
    if dims is not None:
        dims = (dims,) if isinstance(dims, int) else tuple(dims)
        A = movedim(A, dims, tuple(range(A.ndim - len(dims), A.ndim)))
    result_shape = tuple(A.shape[B.ndim:])
    k = math.prod(result_shape)
    if k != B.numel():
        raise RuntimeError(f"Expected self to satisfy the requirement prod(self.shape[other.ndim:]) == "
                           f"prod(self.shape[:other.ndim]), but got {k} != {B.numel()}")
    return _out(solve(A.reshape(k, k), B.flatten()).reshape(result_shape), out)


def vander(x, *, N=None):
    """The Vandermonde matrix of the last dim of ``x``: columns ``x**0, x**1, ..., x**(N-1)``
    (default ``N = x.shape[-1]``), built by cumulative products, so exact for integer ``x``.

    >>> import tracenn
    >>> tracenn.linalg.vander(tracenn.tensor([1, 2, 3]), N=4)
    tensor([[ 1,  1,  1,  1],
            [ 1,  2,  4,  8],
            [ 1,  3,  9, 27]])
    """
    from ._api.math import _torch_name
    from ._api.shape import cat
    ok = x.dtype in _LAPACK_DTYPES or (not x.dtype.is_floating_point and not x.dtype.is_complex
                                       and x.dtype != _dt.bool)
    if not ok:
        raise RuntimeError(f"linalg.vander supports floating point, complex, and integer tensors, but got "
                           f"{_torch_name(x._value.dtype)}")
    x_ = x.unsqueeze(-1) if x.ndim == 0 else x
    n = x_.shape[-1] if N is None else N
    if n <= 1:
        raise RuntimeError(f"N must be greater than 1. (linalg.vander got N={n})")
    powers = x_.unsqueeze(-1).expand(tuple(x_.shape) + (n - 1,)).cumprod(-1)
    return cat([powers.new_ones(tuple(x_.shape) + (1,)), powers], -1)


def matmul(input, other, *, out=None):
    """torch.linalg.matmul: :func:`tracenn.matmul`."""
    from ._api.linalg import matmul as _matmul
    from ._api.math import _out
    return _out(_matmul(input, other), out)


# ---- Cholesky solves, triangular_solve, qr -----------------------------------------------------------

def cholesky_solve(B, L, upper=False, *, out=None):
    """``X`` with ``A X = B`` for ``A = L L^H`` (``upper``: ``A = U^H U``) from A's Cholesky factor
    (only its triangle is read). Batch dims broadcast. Gradients are torch's: those of
    ``(L L^H)^-1 B`` with the factor taken whole.

    >>> import tracenn
    >>> L = tracenn.tensor([[2.0, 0.0], [1.0, 1.0]])
    >>> tracenn.cholesky_solve(tracenn.tensor([[4.0], [3.0]]), L)
    tensor([[0.5000],
            [1.0000]])
    """
    from ._api.math import _out
    if B.ndim < 2:
        raise RuntimeError(f"b should have at least 2 dimensions, but has {B.ndim} dimensions instead")
    if L.ndim < 2:
        raise RuntimeError(f"u should have at least 2 dimensions, but has {L.ndim} dimensions instead")
    _same_dtype(B, L)
    _kernel_dtype("cholesky_solve_cpu", B)
    _square_plain(L)
    n = L.shape[-1]
    if B.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for cholesky_solve: each A matrix is {n} by {n} but each b "
                           f"matrix is {B.shape[-2]} by {B.shape[-1]}")
    _broadcast_batch(B.shape[:-2], L.shape[:-2])
    return _out(_op("cholesky_solve", B, L, key=(bool(upper),)), out)


def _square_plain(a):
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"A must be batches of square matrices, but they are {a.shape[-2]} by {a.shape[-1]} "
                           "matrices")


def cholesky_inverse(L, upper=False, *, out=None):
    """The inverse of ``A = L L^H`` (``upper``: ``U^H U``) from A's Cholesky factor; eagerly, a
    zero on the factor's diagonal raises :class:`LinAlgError`. Gradients are torch's.

    >>> import tracenn
    >>> tracenn.cholesky_inverse(tracenn.tensor([[2.0, 0.0], [0.0, 0.5]]))
    tensor([[0.2500, 0.0000],
            [0.0000, 4.0000]])
    """
    from ._api.creation import eye
    from ._api.math import _out
    _square("cholesky_inverse", L)
    _kernel_dtype("cholesky_inverse_out_cpu", L)
    if _eager() and L.numel():
        zero = np.asarray(L.detach().diagonal(dim1=-2, dim2=-1)._value).reshape(-1, L.shape[-1]) == 0
        bad = np.flatnonzero(zero.any(-1))
        if len(bad):
            i = int(bad[0])
            raise LinAlgError(f"cholesky_inverse: {_batch_prefix(L.shape, i)}The diagonal element "
                              f"{int(np.argmax(zero[i])) + 1} is zero, the inversion could not be completed because "
                              "the input matrix is singular.")
    identity = eye(L.shape[-1], dtype=L.dtype, device=L.device)
    return _out(_op("cholesky_solve", identity, L, key=(bool(upper),)), out)


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False, *, out=None):
    """torch.triangular_solve (deprecated in torch): (solution, cloned_coefficient), ``solution``
    ``X`` with ``A X = b`` (``transpose``: ``A^T X = b``) for triangular ``A`` (``upper`` or
    lower; ``unitriangular``: its diagonal taken as ones), and a copy of ``A`` broadcast to the
    batch. Use :func:`tracenn.linalg.solve_triangular` in new code."""
    from ._api.shape import broadcast_to
    from .linalg import solve_triangular
    _warn_once("triangular_solve", "torch.triangular_solve is deprecated in favor of torch.linalg.solve_triangular"
               "and will be removed in a future PyTorch release.\ntorch.linalg.solve_triangular has its arguments "
               "reversed and does not return a copy of one of the inputs.\nX = torch.triangular_solve(B, A).solution"
               "\nshould be replaced with\nX = torch.linalg.solve_triangular(A, B).")
    for what, t in (("b", b), ("A", A)):
        if t.ndim < 2:
            raise RuntimeError(f"torch.triangular_solve: Expected {what} to have at least 2 dimensions, but it has "
                               f"{t.ndim} dimensions instead")
    _same_dtype(b, A)
    _kernel_dtype("triangular_solve_cpu", b)
    _square_plain(A)
    n = A.shape[-1]
    if b.shape[-2] != n:
        raise RuntimeError(f"Incompatible matrix sizes for triangular_solve: each A matrix is {n} by {n} but each b "
                           f"matrix is {b.shape[-2]} by {b.shape[-1]}")
    batch = _broadcast_batch(b.shape[:-2], A.shape[:-2])
    A_ = broadcast_to(A, batch + (n, n))
    b_ = broadcast_to(b, batch + tuple(b.shape[-2:]))
    x = solve_triangular(A_.mT if transpose else A_, b_, upper=bool(upper) != bool(transpose),
                         unitriangular=unitriangular)
    return _out_all(_TriangularSolve(x, A_.clone()), out)


def torch_qr(input, some=True, *, out=None):
    """torch.qr (deprecated in torch): :func:`tracenn.linalg.qr` with mode 'reduced' (``some``)
    or 'complete'."""
    _warn_once("qr", "torch.qr is deprecated in favor of torch.linalg.qr and will be removed in a future PyTorch "
               "release.\nThe boolean parameter 'some' has been replaced with a string parameter 'mode'.\nQ, R = "
               "torch.qr(A, some)\nshould be replaced with\nQ, R = torch.linalg.qr(A, 'reduced' if some else "
               "'complete')")
    return _out_all(_TorchQR(*qr(input, "reduced" if some else "complete")), out)


# ---- Householder products ----------------------------------------------------------------------------

def orgqr(input, tau):
    """torch.orgqr: :func:`tracenn.linalg.householder_product` (Q from :func:`tracenn.geqrf`)."""
    return householder_product(input, tau)


def ormqr(input, tau, other, left=True, transpose=False, *, out=None):
    """``op(Q) @ other`` (``left``) or ``other @ op(Q)``, with ``Q`` the square product of the
    Householder reflectors in ``(input, tau)`` (as from :func:`tracenn.geqrf`) and ``op`` the
    conjugate transpose when ``transpose``. Differentiable (through the product).

    >>> import tracenn
    >>> A = tracenn.tensor([[3.0, 1.0], [4.0, 2.0]])
    >>> a, tau = tracenn.geqrf(A)
    >>> tracenn.ormqr(a, tau, a.triu())
    tensor([[3., 1.],
            [4., 2.]])
    """
    from ._api.linalg import matmul as _matmul
    from ._api.math import _out, _torch_name
    from ._api.shape import cat
    for what, t in (("input", input), ("other", other)):
        if t.ndim < 2:
            raise RuntimeError(f"torch.ormqr: {what} must have at least 2 dimensions.")
    mn = input.shape[-2]
    if tuple(other.shape[:-2]) != tuple(input.shape[:-2]):
        raise RuntimeError(f"torch.ormqr: Expected batch dimensions of other to be equal to input.shape[:-2], but got "
                           f"{list(other.shape[:-2])}")
    side = -2 if left else -1
    if other.shape[side] != mn:
        raise RuntimeError(f"torch.ormqr: other.shape[{side}] must be equal to input.shape[-2]")
    k = tau.shape[-1] if tau.ndim else 0
    if tau.ndim != input.ndim - 1 or k > min(other.shape[side], input.shape[-1]):
        raise RuntimeError("torch.ormqr: tau.shape[-1] must be equal to min(other.shape[-2], input.shape[-1])")
    if other.dtype != input.dtype:
        raise RuntimeError(f"torch.ormqr: Expected input and other to have the same dtype, but input has dtype"
                           f"{_torch_name(input._value.dtype)} and other has dtype {_torch_name(other._value.dtype)}")
    if tau.dtype != input.dtype:
        raise RuntimeError(f"torch.ormqr: Expected input and tau to have the same dtype, but input has dtype"
                           f"{_torch_name(input._value.dtype)} and tau has dtype {_torch_name(tau._value.dtype)}")
    _kernel_dtype("ormqr_cpu", input)
    # Q (mn x mn): the reflectors padded with identity ones (tau = 0)
    batch = tuple(input.shape[:-2])
    reflectors = input[..., :k]
    if k < mn:
        reflectors = cat([reflectors, reflectors.new_zeros(batch + (mn, mn - k))], -1)
        tau = cat([tau, tau.new_zeros(batch + (mn - k,))], -1)
    q = householder_product(reflectors, tau)
    if transpose:
        q = q.mH
    return _out(_matmul(q, other) if left else _matmul(other, q), out)


# ---- deprecated norms ---------------------------------------------------------------------------------

def nuclear_norm(input, dim=None, keepdim=False, *, out=None):
    """torch.nuclear_norm (deprecated in torch): the sum of the singular values over two dims
    (default the last two); ``nuclear_norm(A, keepdim)`` also works."""
    _warn_once("nuclear_norm", "at::nuclear_norm is deprecated and it is just left for JIT compatibility. It will be "
               "removed in a future PyTorch release. Please use `linalg.matrix_norm(A, 'nuc', dim, keepdim)` instead")
    if isinstance(dim, bool):
        dim, keepdim = None, dim
    if dim is None:
        dim = (-2, -1)
    elif isinstance(dim, int):
        dim = (dim, dim)
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
    return matrix_norm(input, "nuc", tuple(dim), keepdim, out=out)


def frobenius_norm(input, dim, keepdim=False, *, out=None):
    """torch.frobenius_norm (deprecated in torch): the 2-norm over at most two dims (all for ())."""
    from ._api.math import _torch_name
    _warn_once("frobenius_norm", "at::frobenius_norm is deprecated and it is just left for JIT compatibility. It will "
               "be removed in a future PyTorch release. Please use `linalg.vector_norm(A, 2., dim, keepdim)` instead")
    dim = (dim,) if isinstance(dim, int) else tuple(dim)
    if len(dim) > 2:
        raise RuntimeError(f"Expected at most 2 dimensions, but got {len(dim)} dimensions instead.")
    if input.dtype not in _LAPACK_DTYPES and not input.dtype.is_floating_point:
        raise RuntimeError(f"norm(): input dtype should be either floating point or complex. Got "
                           f"{_torch_name(input._value.dtype)} instead.")
    return vector_norm(input, 2, dim or None, keepdim, out=out)


# ---- randomized low-rank SVD and PCA (torch/_lowrank.py) -------------------------------------------------

def _approximate_basis(A, q, niter, M):
    """Q with q orthonormal columns, ``Q Q^H (A - M) ~ A - M`` (Halko et al. 2009, algorithm 4.4);
    draws ``randn(n, q)`` from the default generator, as torch's."""
    from .random import randn
    dtype = A.dtype if A.dtype.is_floating_point or A.is_complex() else _dt.float32
    r = randn(A.shape[-1], q, dtype=dtype, device=A.device)

    x = A @ r if M is None else A @ r - M @ r
    Q = qr(x).Q
    for _ in range(niter):
        x = A.mH @ Q if M is None else A.mH @ Q - M.mH @ Q
        Q = qr(x).Q
        x = A @ Q if M is None else A @ Q - M @ Q
        Q = qr(x).Q
    return Q


def _svd_lowrank(A, q, niter, M):
    q = 6 if q is None else q
    niter = 2 if niter is None else niter
    m, n = A.shape[-2:]
    if M is not None:
        M = M.broadcast_to(A.shape)
    if m < n:
        A = A.mH
        M = None if M is None else M.mH
    Q = _approximate_basis(A, q, niter, M)
    B = Q.mH @ A if M is None else Q.mH @ A - Q.mH @ M
    U, S, Vh = svd(B, full_matrices=False)
    V, U = Vh.mH, Q @ U
    return (V, S, U) if m < n else (U, S, V)


def svd_lowrank(A, q=6, niter=2, M=None):
    """(U, S, V) with ``A - M ~ U diag(S) V^H`` (``M`` default 0): the randomized SVD of Halko et
    al. (2009), ``q`` a slightly overestimated rank, ``niter`` subspace iterations. U is (m, q),
    V (n, q). Random: seed with :func:`tracenn.manual_seed` for repeatable results (the draws are
    tracenn's, so they differ from torch's). Exact for a matrix of rank at most ``q``."""
    return _svd_lowrank(A, q, niter, M)


def pca_lowrank(A, q=None, center=True, niter=2):
    """(U, S, V): a low-rank PCA of the data matrix ``A`` (m samples by n features) by
    :func:`svd_lowrank` of ``A`` centered (``center``); V's columns are the principal
    directions, ``S**2 / (m - 1)`` the variances. Default ``q = min(6, m, n)``."""
    m, n = A.shape[-2:]
    if q is None:
        q = min(6, m, n)
    elif not (q >= 0 and q <= min(m, n)):
        raise ValueError(f"q(={q}) must be non-negative integer and not greater than min(m, n)={min(m, n)}")
    if not niter >= 0:
        raise ValueError(f"niter(={niter}) must be non-negative integer")
    if not center:
        return _svd_lowrank(A, q, niter, None)
    return _svd_lowrank(A - A.mean(dim=(-2,), keepdim=True), q, niter, None)


# ---- removed from torch (they raise torch 2.13's errors) -------------------------------------------------

def removed_solve(input, A, *, out=None):
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed. `torch.solve` is deprecated in favor of "
        "`torch.linalg.solve`. `torch.linalg.solve` has its arguments reversed and does not return the LU "
        "factorization.\n\nTo get the LU factorization see `torch.lu`, which can be used with `torch.lu_solve` or "
        "`torch.lu_unpack`.\nX = torch.solve(B, A).solution should be replaced with:\nX = torch.linalg.solve(A, B)")


def removed_lstsq(input, A, *, out=None):
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed. `torch.lstsq` is deprecated in favor of "
        "`torch.linalg.lstsq`.\n`torch.linalg.lstsq` has reversed arguments and does not return the QR decomposition "
        "in the returned tuple (although it returns other information about the problem).\n\nTo get the QR "
        "decomposition consider using `torch.linalg.qr`.\n\nThe returned solution in `torch.lstsq` stored the "
        "residuals of the solution in the last m - n columns of the returned value whenever m > n. In "
        "torch.linalg.lstsq, the residuals are in the field 'residuals' of the returned named tuple.\n\nThe unpacking "
        "of the solution, as in\nX, _ = torch.lstsq(B, A).solution[:A.size(1)]\nshould be replaced with:\n"
        "X = torch.linalg.lstsq(A, B).solution")


def removed_symeig(input, eigenvectors=False, upper=True, *, out=None):
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed. The default behavior has changed from "
        "using the upper triangular portion of the matrix by default to using the lower triangular portion.\n\n"
        "L, _ = torch.symeig(A, upper=upper) should be replaced with:\nL = torch.linalg.eigvalsh(A, UPLO='U' if upper "
        "else 'L')\n\nand\n\nL, V = torch.symeig(A, eigenvectors=True) should be replaced with:\nL, V = "
        "torch.linalg.eigh(A, UPLO='U' if upper else 'L')")


def removed_eig(self, eigenvectors=False, *, e=None, v=None):
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed. `torch.linalg.eig` returns complex "
        "tensors of dtype `cfloat` or `cdouble` rather than real tensors mimicking complex tensors.\n\nL, _ = "
        "torch.eig(A) should be replaced with:\nL_complex = torch.linalg.eigvals(A)\n\nand\n\nL, V = torch.eig(A, "
        "eigenvectors=True) should be replaced with:\nL_complex, V_complex = torch.linalg.eig(A)")


def removed_matrix_rank(input, tol=None, symmetric=False, *, out=None):
    raise RuntimeError(
        "This function was deprecated since version 1.9 and is now removed.\nPlease use the "
        "`torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed in "
        "`torch.linalg.matrix_rank()` to 'hermitian'.")


for _name, _fn in [("cholesky_solve", cholesky_solve), ("cholesky_inverse", cholesky_inverse),
                   ("triangular_solve", triangular_solve), ("qr", torch_qr), ("orgqr", orgqr), ("ormqr", ormqr),
                   ("solve", removed_solve), ("lstsq", removed_lstsq), ("symeig", removed_symeig),
                   ("eig", removed_eig)]:
    setattr(Tensor, _name, _fn)
