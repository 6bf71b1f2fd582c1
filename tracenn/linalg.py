"""``tracenn.linalg``: torch.linalg's norms, solvers and decompositions.

Each is JAX's (``jnp.linalg``, ``jax.scipy.linalg``) with torch's signature, argument checks,
return types and conventions; gradients are JAX's. Eagerly, ``inv``, ``solve`` and ``cholesky``
raise :class:`LinAlgError` for a singular or not positive-definite input, as torch does (one
extra LU or a look at the factor, and a read on the host); inside ``tracenn.compile`` there is no
host read, and such an input gives inf/NaN, as the ``_ex`` variants' ``info`` would say.

>>> import tracenn
>>> A = tracenn.tensor([[4.0, 1.0], [1.0, 3.0]])
>>> tracenn.linalg.solve(A, tracenn.tensor([1.0, 2.0]))
tensor([0.0909, 0.6364])
>>> tracenn.linalg.eigh(A).eigenvalues
tensor([2.3820, 4.6180])
"""
from __future__ import annotations

import math

import numpy as np

from . import _dispatch
from ._api.reduce import return_type
from ._dispatch import apply
from .errors import TracennError
from .ops import OPS
from .tensor import Tensor

__all__ = ["LinAlgError", "norm", "vector_norm", "matrix_norm", "inv", "inv_ex", "solve", "det", "slogdet",
           "cholesky", "cholesky_ex", "qr", "svd", "svdvals", "eigh", "eigvalsh", "pinv", "matrix_exp",
           "solve_triangular", "cross", "multi_dot", "matrix_power", "vecdot", "diagonal",
           "householder_product", "eig", "eigvals", "lstsq", "lu", "lu_factor", "lu_factor_ex", "lu_solve",
           "matrix_rank", "cond", "solve_ex", "ldl_factor", "ldl_factor_ex", "ldl_solve", "tensorinv", "tensorsolve",
           "vander", "matmul"]


class LinAlgError(TracennError, RuntimeError):
    """A singular or not positive-definite input (torch.linalg.LinAlgError)."""


# torch's named tuples (torch.return_types.linalg_qr, ...), printed as torch prints them
_Slogdet = return_type("linalg_slogdet", ["sign", "logabsdet"])
_QR = return_type("linalg_qr", ["Q", "R"])
_SVD = return_type("linalg_svd", ["U", "S", "Vh"])
_Eigh = return_type("linalg_eigh", ["eigenvalues", "eigenvectors"])
_InvEx = return_type("linalg_inv_ex", ["inverse", "info"])
_CholEx = return_type("linalg_cholesky_ex", ["L", "info"])


def _op(name, *inputs, key=()):
    return apply(OPS[name], inputs, key)


def _float(name, *ts):
    for t in ts:
        if t._value.dtype.kind not in "fc":
            from ._api.math import _torch_name
            raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got "
                               f"{_torch_name(t._value.dtype)}")


def _square(name, a, what="A"):
    if a.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor {what} must have at least 2 dimensions.")
    if a.shape[-1] != a.shape[-2]:
        raise RuntimeError(f"{name}: {what} must be batches of square matrices, but they are "
                           f"{a.shape[-2]} by {a.shape[-1]} matrices")


def _eager() -> bool:
    return _dispatch.TRACE[0] is None


def _raise_singular(name, info, shape):
    """torch's message for the first singular matrix (``info``: LAPACK getrf's, per matrix)."""
    info = np.asarray(info._value).reshape(-1)
    bad = np.flatnonzero(info)
    if not len(bad):
        return
    i = int(bad[0])
    where = f"(Batch element {i}): " if len(shape) > 2 else ""
    raise LinAlgError(f"{name}: {where}The diagonal element {int(info[i])} is zero, the inversion could not be "
                      "completed because the input matrix is singular.")


def _check(name, a, check_errors=True):
    if check_errors and _eager() and a.numel():
        _raise_singular(name, _op("linalg_lu_info", a), a.shape)


# ---- norms -----------------------------------------------------------------------------------------

def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None):
    """The ``ord``-norm of ``x`` over ``dim`` (all dims when None), as a vector."""
    from ._api.math import _out
    from ._api.reduce import norm as _norm
    _float("linalg.vector_norm", x)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: Expected a numeric ord, but got {ord!r}")
    return _out(_norm(x, float(ord), dim, keepdim, dtype=dtype), out)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None, out=None):
    """The matrix ``ord``-norm ('fro', 'nuc', inf, -inf, 1, -1, 2, -2) over the two dims ``dim``."""
    from ._api.math import _out, abs as _abs
    from ._api.reduce import amax, amin, norm as _norm, sum as _sum
    from ._api.shape import movedim
    _float("linalg.matrix_norm", A)
    if A.ndim < 2:
        raise RuntimeError(f"linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {' '.join(str(d) for d in dim)}")
    d0, d1 = (d % A.ndim for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, {dim[1]})")
    if dtype is not None:
        A = A.to(dtype)
    if ord == "fro":
        r = _norm(A, 2, (d0, d1), keepdim)
    elif ord in ("nuc", 2, -2, 2.0, -2.0):
        s = svdvals(movedim(A, (d0, d1), (-2, -1)))
        r = _sum(s, -1) if ord == "nuc" else (amax(s, -1) if ord in (2, 2.0) else amin(s, -1))
        if keepdim:
            for d in sorted((d0, d1)):
                r = r.unsqueeze(d)
    elif ord in (1, -1, math.inf, -math.inf):
        # 1: the largest column sum of |A|, inf: the largest row sum (the min for the negatives)
        sum_dim, red_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = _sum(_abs(A), sum_dim, keepdim=True)
        r = (amax if ord > 0 else amin)(sums, red_dim, keepdim=True)
        if not keepdim:
            r = r.squeeze((d0, d1))
    else:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    return _out(r, out)


def norm(input, ord=None, dim=None, keepdim=False, *, out=None, dtype=None):
    """torch.linalg.norm: a vector norm (1-d input, an int ``dim``, or ``ord=None`` with ``dim=None``:
    the 2-norm of all elements) or a matrix norm (2-d input or a pair of dims)."""
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(input, "fro", dim, keepdim, dtype=dtype, out=out)
        return vector_norm(input, 2, dim, keepdim, dtype=dtype, out=out)
    if dim is None:
        if input.ndim == 1:
            return vector_norm(input, ord, None, keepdim, dtype=dtype, out=out)
        if input.ndim == 2:
            return matrix_norm(input, ord, (-2, -1), keepdim, dtype=dtype, out=out)
        raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                           f"Got {input.ndim}D.")
    if len(dim) == 1:
        return vector_norm(input, ord, dim, keepdim, dtype=dtype, out=out)
    return matrix_norm(input, ord, dim, keepdim, dtype=dtype, out=out)


# ---- inverses and solvers ------------------------------------------------------------------------------

def inv(A, *, out=None):
    """The inverse of each square matrix of ``A``; :class:`LinAlgError` if one is singular."""
    from ._api.math import _out
    _float("linalg.inv", A)
    _square("linalg.inv", A)
    _check("linalg.inv", A)
    return _out(_op("linalg_inv", A), out)


def inv_ex(A, *, check_errors=False, out=None):
    """(inverse, info): ``info`` is 0 per invertible matrix, else the index of U's first zero pivot."""
    _float("linalg.inv_ex", A)
    _square("linalg.inv_ex", A)
    info = _op("linalg_lu_info", A)
    if check_errors and _eager():
        _raise_singular("linalg.inv_ex", info, A.shape)
    return _InvEx(_op("linalg_inv", A), info)


def _solve(name, A, B, left):
    """``solve``'s argument checks and its op (no singularity check)."""
    _float(name, A, B)
    _square(name, A)
    if A.dtype != B.dtype:
        from ._api.math import _torch_name
        raise RuntimeError(f"{name}: Expected A and B to have the same dtype, but found A of type "
                           f"{_torch_name(A._value.dtype)} and B of type {_torch_name(B._value.dtype)} instead")
    vector = B.ndim == 1 or (left and B.ndim == A.ndim - 1 and tuple(B.shape) == tuple(A.shape[:-1]))
    b = B.unsqueeze(-1) if vector else B
    n = A.shape[-1]
    if (b.shape[-2] if left else b.shape[-1]) != n:
        raise RuntimeError(f"{name}: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({A.shape[-2]}x{A.shape[-1]} and "
                           f"{B.shape[-2] if B.ndim > 1 else B.shape[0]}x{B.shape[-1] if B.ndim > 1 else 1})")
    x = _op("linalg_solve", A, b, key=(left,))
    return x.squeeze(-1) if vector else x


def solve(A, B, *, left=True, out=None):
    """``X`` with ``A @ X = B`` (``left``) or ``X @ A = B``. ``B`` may be a (batch of) vector(s)."""
    from ._api.math import _out
    x = _solve("linalg.solve", A, B, left)
    if _eager() and A.numel():
        info = np.asarray(_op("linalg_lu_info", A)._value).reshape(-1)
        bad = np.flatnonzero(info)
        if len(bad):
            where = f"(Batch element {int(bad[0])}): " if A.ndim > 2 else ""
            raise LinAlgError(f"torch.linalg.solve: {where}The solver failed because the input matrix is singular.")
    return _out(x, out)


def det(A, *, out=None):
    from ._api.math import _out
    _float("linalg.det", A)
    _square("linalg.det", A)
    return _out(_op("linalg_det", A), out)


def slogdet(A, *, out=None):
    """(sign, log|det|) of each square matrix: the determinant without over- or underflow."""
    _float("linalg.slogdet", A)
    _square("linalg.slogdet", A)
    return _Slogdet(*_op("linalg_slogdet", A))


def _not_pd(name, A, lower):
    failed = np.asarray(_op("linalg_cholesky_failed", lower)._value).reshape(-1)
    bad = np.flatnonzero(failed)
    if not len(bad):
        return
    i = int(bad[0])
    a = np.asarray(A.detach()._value).reshape((-1,) + tuple(A.shape[-2:]))[i]
    order = next((k for k in range(1, a.shape[-1] + 1) if not _pd(a[:k, :k])), a.shape[-1])
    where = f"(Batch element {i}): " if A.ndim > 2 else ""
    raise LinAlgError(f"{name}: {where}The factorization could not be completed because the input is not "
                      f"positive-definite (the leading minor of order {order} is not positive-definite).")


def _pd(m) -> bool:
    try:
        np.linalg.cholesky(m)
        return True
    except np.linalg.LinAlgError:
        return False


def cholesky(A, *, upper=False, out=None):
    """The Cholesky factor of each Hermitian positive-definite matrix: ``L`` with ``A = L L^H``
    (``upper``: ``U`` with ``A = U^H U``); :class:`LinAlgError` otherwise."""
    from ._api.math import _out
    _float("linalg.cholesky", A)
    _square("linalg.cholesky", A)
    lower = _op("linalg_cholesky", A, key=(False,))
    if _eager():
        _not_pd("linalg.cholesky", A, lower)
    return _out(lower.mH if upper else lower, out)


def cholesky_ex(A, *, upper=False, check_errors=False, out=None):
    """(L, info): ``info`` is 0 per factored matrix, nonzero where the factorization failed."""
    _float("linalg.cholesky_ex", A)
    _square("linalg.cholesky_ex", A)
    lower = _op("linalg_cholesky", A, key=(False,))
    if check_errors and _eager():
        _not_pd("linalg.cholesky_ex", A, lower)
    info = _op("linalg_cholesky_failed", lower).int()
    return _CholEx(lower.mH if upper else lower, info)


def solve_triangular(A, B, *, upper, left=True, unitriangular=False, out=None):
    """``X`` with ``A @ X = B`` (or ``X @ A = B``), ``A`` upper or lower triangular."""
    from ._api.math import _out
    _float("linalg.solve_triangular", A, B)
    _square("linalg.solve_triangular", A)
    return _out(_op("linalg_solve_triangular", A, B, key=(bool(upper), bool(left), bool(unitriangular))), out)


def pinv(A, *, atol=None, rtol=None, hermitian=False, out=None):
    """The Moore-Penrose pseudo-inverse; singular values at most ``max(atol, rtol * largest)`` are
    treated as zero (default ``rtol``: ``eps * max(m, n)``). ``atol``/``rtol`` as numbers."""
    from ._api.math import _out
    _float("linalg.pinv", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.pinv(A): The input tensor A must have at least 2 dimensions.")
    if isinstance(atol, Tensor) or isinstance(rtol, Tensor):
        atol = None if atol is None else float(atol)
        rtol = None if rtol is None else float(rtol)
    key = (None if atol is None else float(atol), None if rtol is None else float(rtol), bool(hermitian))
    return _out(_op("linalg_pinv", A, key=key), out)


def matrix_exp(A):
    """The matrix exponential of each square matrix."""
    _float("linalg.matrix_exp", A)
    _square("linalg.matrix_exp", A)
    return _op("linalg_matrix_exp", A)


# ---- decompositions ------------------------------------------------------------------------------------

def qr(A, mode="reduced", *, out=None):
    """(Q, R) with ``A = Q R``; ``mode`` 'reduced', 'complete' or 'r' (Q empty)."""
    _float("linalg.qr", A)
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(f"qr received unrecognized mode '{mode}' but expected one of 'reduced' "
                           "(default), 'r', or 'complete'")
    if A.ndim < 2:
        raise RuntimeError("linalg.qr: The input tensor A must have at least 2 dimensions.")
    return _QR(*_op("linalg_qr", A, key=(mode,)))


def svd(A, full_matrices=True, *, driver=None, out=None):
    """(U, S, Vh) with ``A = U diag(S) Vh``, singular values in descending order."""
    _float("linalg.svd", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.svd: The input tensor A must have at least 2 dimensions.")
    return _SVD(*_op("linalg_svd", A, key=(bool(full_matrices),)))


def svdvals(A, *, driver=None, out=None):
    from ._api.math import _out
    _float("linalg.svdvals", A)
    if A.ndim < 2:
        raise RuntimeError("linalg.svdvals: The input tensor A must have at least 2 dimensions.")
    return _out(_op("linalg_svdvals", A), out)


def _uplo(name, UPLO):
    if UPLO not in ("L", "U"):
        raise RuntimeError(f"{name}: Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return UPLO


def eigh(A, UPLO="L", *, out=None):
    """(eigenvalues ascending, eigenvectors as columns) of each Hermitian matrix (only its
    ``UPLO`` triangle is read)."""
    _float("linalg.eigh", A)
    _square("linalg.eigh", A)
    return _Eigh(*_op("linalg_eigh", A, key=(_uplo("linalg.eigh", UPLO),)))


def eigvalsh(A, UPLO="L", *, out=None):
    from ._api.math import _out
    _float("linalg.eigvalsh", A)
    _square("linalg.eigvalsh", A)
    return _out(_op("linalg_eigvalsh", A, key=(_uplo("linalg.eigvalsh", UPLO),)), out)


def householder_product(A, tau, *, out=None):
    """The first ``n`` columns of the product of Householder matrices given by ``A`` and ``tau``."""
    from ._api.math import _out, _torch_name
    name = "torch.linalg.householder_product"
    if A.ndim < 2:
        raise RuntimeError(f"{name}: input must have at least 2 dimensions.")
    if A.shape[-2] < A.shape[-1]:
        raise RuntimeError(f"{name}: input.shape[-2] must be greater than or equal to input.shape[-1]")
    if A.shape[-1] < (tau.shape[-1] if tau.ndim else 1):
        raise RuntimeError(f"{name}: input.shape[-1] must be greater than or equal to tau.shape[-1]")
    if tau.ndim != A.ndim - 1:
        raise RuntimeError(f"{name}: Expected tau to have one dimension less than input, but got tau.ndim equal to "
                           f"{tau.ndim} and input.ndim is equal to {A.ndim}")
    if tuple(tau.shape[:-1]) != tuple(A.shape[:-2]):
        raise RuntimeError(f"{name}: Expected batch dimensions of tau to be equal to input.shape[:-2], but got "
                           f"{list(tau.shape[:-1])}")
    if tau.dtype != A.dtype:
        raise RuntimeError(f"{name}: tau dtype {_torch_name(tau._value.dtype)} does not match input dtype "
                           f"{_torch_name(A._value.dtype)}")
    _float("linalg.householder_product", A, tau)
    return _out(_op("linalg_householder_product", A, tau), out)


# ---- products ------------------------------------------------------------------------------------------

def cross(input, other, *, dim=-1, out=None):
    """The cross product of 3-vectors along ``dim`` (inputs broadcast)."""
    from ._api.math import _out
    if input.shape[dim] != 3 or other.shape[dim] != 3:
        raise RuntimeError(f"linalg.cross: inputs dimension {dim} must have length 3. Got {input.shape[dim]} "
                           f"and {other.shape[dim]}")
    return _out(_op("linalg_cross", input, other, key=(dim,)), out)


def multi_dot(tensors, *, out=None):
    """The product of a chain of matrices (the first and last may be vectors), left to right."""
    from ._api.linalg import matmul
    from ._api.math import _out
    if len(tensors) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(tensors)}")
    result = tensors[0]
    for t in tensors[1:]:
        result = matmul(result, t)
    return _out(result, out)


def matrix_power(A, n, *, out=None):
    """``A`` to the integer power ``n`` (negative: of the inverse), by repeated squaring."""
    from ._api.creation import eye
    from ._api.linalg import matmul
    from ._api.math import _out
    _square("linalg.matrix_power", A)
    if n == 0:
        r = eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(A.shape).clone()
        return _out(r, out)
    base = inv(A) if n < 0 else A
    n, result = abs(n), None
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return _out(result, out)


def vecdot(x, y, *, dim=-1, out=None):
    """``sum(conj(x) * y)`` along ``dim``."""
    from ._api.math import _out, mul
    from ._api.reduce import sum as _sum
    return _out(_sum(mul(x.conj() if x.is_complex() else x, y), dim), out)


def diagonal(A, *, offset=0, dim1=-2, dim2=-1):
    return A.diagonal(offset=offset, dim1=dim1, dim2=dim2)


# ---- the top-level spellings (torch.inverse, torch.det, torch.svd, ...) ---------------------------------

_TorchSVD = return_type("svd", ["U", "S", "V"])
_Geqrf = return_type("geqrf", ["a", "tau"])


def geqrf(input, *, out=None):
    """(a, tau): LAPACK's QR in Householder form (``householder_product(a, tau)`` is Q). Not
    differentiable, as torch's."""
    _float("geqrf", input)
    if input.ndim < 2:
        raise RuntimeError("torch.geqrf: input must have at least 2 dimensions.")
    return _Geqrf(*_op("geqrf", input))


def inverse(input, *, out=None):
    return inv(input, out=out)


def logdet(input):
    """log(det): NaN for a negative determinant, -inf for a zero one."""
    from ._api.math import log, where
    sign, logabs = slogdet(input)
    return where(sign < 0, float("nan"), logabs) if not input.is_complex() else log(det(input))


def pinverse(input, rcond=1e-15):
    return pinv(input, rtol=rcond)


def torch_svd(input, some=True, compute_uv=True, *, out=None):
    """torch.svd (deprecated in torch): (U, S, V) with ``A = U diag(S) V^H``; ``some=False`` gives
    square U and V; ``compute_uv=False`` zero-filled U and V."""
    from ._api.creation import zeros
    u, s, vh = svd(input, full_matrices=not some)
    if not compute_uv:
        m, n = input.shape[-2:]
        k = min(m, n) if some else None
        u = zeros(tuple(input.shape[:-2]) + (m, k if some else m), dtype=input.dtype)
        return _TorchSVD(u, s, zeros(tuple(input.shape[:-2]) + (n, k if some else n), dtype=input.dtype))
    return _TorchSVD(u, s, vh.mH)


def torch_cholesky(input, upper=False, *, out=None):
    return cholesky(input, upper=upper, out=out)


for _name, _fn in [("inverse", inverse), ("det", det), ("logdet", logdet), ("slogdet", slogdet),
                   ("pinverse", pinverse), ("matrix_exp", matrix_exp), ("matrix_power", matrix_power),
                   ("svd", torch_svd), ("cholesky", torch_cholesky), ("geqrf", geqrf)]:
    setattr(Tensor, _name, _fn)


# torch.linalg's LU, eig, lstsq, matrix_rank and cond live in their own module (this one's size).
from ._linalg_more import (cond, eig, eigvals, lstsq, lu, lu_factor, lu_factor_ex, lu_solve,  # noqa: E402,F401
                           lu_unpack, matrix_rank, solve_ex, torch_lu, torch_lu_solve)

# torch.linalg's LDL, tensorinv/tensorsolve, vander and matmul, and torch's cholesky_solve, triangular_solve,
# qr, orgqr/ormqr, the low-rank SVD/PCA and the removed functions, in their own module (this one's size).
from ._linalg_extra import (ldl_factor, ldl_factor_ex, ldl_solve, matmul, tensorinv, tensorsolve,  # noqa: E402,F401
                            vander)
