"""torch.linalg's LU factorization and solvers, the nonsymmetric eigenproblem, least squares,
``matrix_rank`` and ``cond`` (and torch's ``lu_unpack``, ``lu``, ``lu_solve``); imported into
:mod:`tracenn.linalg`, whose conventions they share.

The ops (``tracenn/ops/linalg.py``) are JAX's LAPACK-backed ``lax.linalg.lu``/``eig``/``svd``;
pivots are torch's 1-based int32. Eagerly, the ``check_errors`` paths read ``info`` on the host
and raise torch's errors; inside ``tracenn.compile`` nothing is read back.

>>> import tracenn
>>> A = tracenn.tensor([[2.0, 1.0], [4.0, 3.0]])
>>> LU, pivots = tracenn.linalg.lu_factor(A)
>>> pivots
tensor([2, 2], dtype=tracenn.int32)
>>> tracenn.linalg.lu_solve(LU, pivots, tracenn.tensor([[1.0], [1.0]]))
tensor([[ 1.],
        [-1.]])
>>> tracenn.linalg.eigvals(tracenn.tensor([[0.0, -1.0], [1.0, 0.0]]))
tensor([0.+1.j, 0.-1.j])
"""
from __future__ import annotations

import math

import numpy as np

from . import dtypes as _dt
from ._api.reduce import return_type
from .errors import DtypeError
from .linalg import (LinAlgError, _eager, _float, _op, _solve, _square, inv_ex, matrix_norm, svdvals)
from .tensor import Tensor

_Eig = return_type("linalg_eig", ["eigenvalues", "eigenvectors"])
_Lstsq = return_type("linalg_lstsq", ["solution", "residuals", "rank", "singular_values"])
_LU = return_type("linalg_lu", ["P", "L", "U"])
_LUFactor = return_type("linalg_lu_factor", ["LU", "pivots"])
_LUFactorEx = return_type("linalg_lu_factor_ex", ["LU", "pivots", "info"])
_LUWithInfo = return_type("_lu_with_info", ["LU", "pivots", "info"])
_LUUnpack = return_type("lu_unpack", ["P", "L", "U"])
_SolveEx = return_type("linalg_solve_ex", ["result", "info"])


def _out_all(result, out):
    """torch's ``out=`` for a function returning a named tuple: a tuple of tensors written in turn."""
    if out is None:
        return result
    from ._api.math import _out
    return type(result)(*(_out(r, o) for r, o in zip(result, out)))


def _lapack(kernel, *ts):
    """torch's CPU LAPACK kernels take float32/64 and complex; half precision raises its error."""
    from ._api.math import _torch_name
    for t in ts:
        if t.dtype in (_dt.float16, _dt.bfloat16):
            raise DtypeError(f"\"{kernel}\" not implemented for '{_torch_name(t._value.dtype)}'; compute in "
                             f"float32, e.g. A.float()")


def _real(t):
    """The real dtype of ``t``'s (complex64 -> float32)."""
    return _dt.from_np(np.finfo(t._value.dtype).dtype)


def _finite(name, A):
    if _eager() and A.numel() and not np.isfinite(np.asarray(A.detach()._value)).all():
        raise RuntimeError(f"{name}: input tensor should not contain infs or NaNs.")


def _first_bad(info):
    """(batch index, info) of the first matrix whose ``info`` is nonzero, or None."""
    info = np.asarray(info._value).reshape(-1)
    bad = np.flatnonzero(info)
    return None if not len(bad) else (int(bad[0]), int(info[bad[0]]))


def _batch_prefix(shape, i):
    return f"(Batch element {i}): " if len(shape) > 2 else ""


def _broadcast_batch(a, b):
    """torch's error for batch dims that do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        n = max(len(a), len(b))
        pa, pb = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
        d = next(i for i in range(n) if pa[i] != pb[i] and 1 not in (pa[i], pb[i]))
        raise RuntimeError(f"The size of tensor a ({pa[d]}) must match the size of tensor b ({pb[d]}) at "
                           f"non-singleton dimension {d}") from None


# ---- eigenvalues of general matrices ------------------------------------------------------------

def eig(A, *, out=None):
    """(eigenvalues, eigenvectors) of each square matrix: complex (complex64 for float32 input),
    eigenvectors as unit-norm columns, ``A V = V diag(L)``. Not sorted; LAPACK geev's order and
    normalisation (as torch's on the CPU).

    Gradients are torch's for a loss that does not depend on the eigenvectors' phases (torch
    refuses the others; here they are differentiated through LAPACK's choice of phase).

    JAX computes this with LAPACK on the CPU; on a GPU, JAX needs cuSOLVER 11.7.1 or newer (older
    JAX releases have no GPU eig at all), so a compiled program containing it may only run on CPU.

    >>> import tracenn
    >>> tracenn.linalg.eig(tracenn.tensor([[2.0, 0.0], [0.0, 3.0]])).eigenvalues
    tensor([2.+0.j, 3.+0.j])
    """
    _lapack("linalg_eig_out_cpu", A)
    _float("linalg.eig", A)
    _square("linalg.eig", A)
    _finite("torch.linalg.eig", A)
    return _out_all(_Eig(*_op("linalg_eig", A)), out)


def eigvals(A, *, out=None):
    """The eigenvalues of each square matrix, complex (see :func:`eig`; CPU-only in older JAX)."""
    from ._api.math import _out
    _lapack("linalg_eig_out_cpu", A)
    _float("linalg.eigvals", A)
    _square("linalg.eigvals", A)
    _finite("torch.linalg.eigvals", A)
    return _out(_op("linalg_eigvals", A), out)


# ---- LU --------------------------------------------------------------------------------------------

def _lu_args(name, A, pivot):
    _lapack("lu_cpu", A)
    _float(name, A)
    if A.ndim < 2:
        short = "torch.lu_factor" if name.endswith("lu_factor") else name
        raise RuntimeError(f"{short}: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} instead")
    if not pivot:
        raise RuntimeError("linalg.lu_factor: LU without pivoting is not implemented on the CPU (tracenn has only "
                           "the pivoted LU, as torch on the CPU): call it with pivot=True")


def _raise_zero_pivot(name, A, info):
    bad = _first_bad(info)
    if bad is not None:
        i, k = bad
        raise RuntimeError(f"torch.{name}: {_batch_prefix(A.shape, i)}U[{k},{k}] is zero and using it on lu_solve "
                           "would result in a division by zero. If you still want to perform the factorization, "
                           "consider calling linalg.lu(A, pivot) or linalg.lu_factor_ex(A, pivot)")


def lu_factor_ex(A, *, pivot=True, check_errors=False, out=None):
    """(LU, pivots, info): the LU factorization with partial pivoting of each (m, n) matrix,
    packed (L's unit diagonal implied), torch's 1-based int32 ``pivots``, and LAPACK getrf's
    ``info`` per matrix (k > 0: U[k, k], 1-based, is exactly zero). ``pivot=False`` raises, as
    torch on the CPU."""
    _lu_args("linalg.lu_factor_ex", A, pivot)
    lu, piv, info = _op("linalg_lu_factor", A)
    if check_errors and _eager():
        _raise_zero_pivot("linalg.lu_factor_ex", A, info)
    return _out_all(_LUFactorEx(lu, piv, info), out)


def lu_factor(A, *, pivot=True, out=None):
    """(LU, pivots) as :func:`lu_factor_ex`; eagerly, a zero pivot raises torch's error. Inside
    ``tracenn.compile`` it is not checked, and :func:`lu_solve` then gives inf/NaN.

    >>> import tracenn
    >>> tracenn.linalg.lu_factor(tracenn.tensor([[1.0, 2.0], [3.0, 4.0]])).pivots
    tensor([2, 2], dtype=tracenn.int32)
    """
    _lu_args("linalg.lu_factor", A, pivot)
    lu, piv, info = _op("linalg_lu_factor", A)
    if _eager():
        _raise_zero_pivot("linalg.lu_factor", A, info)
    return _out_all(_LUFactor(lu, piv), out)


def lu_unpack(LU_data, LU_pivots, unpack_data=True, unpack_pivots=True, *, out=None):
    """(P, L, U) with ``A = P @ L @ U`` from :func:`lu_factor`'s output: P an (m, m) permutation
    matrix in LU's dtype, L (m, k) unit lower triangular, U (k, n) upper (k = min(m, n)). What
    is not unpacked comes back empty. Differentiable in ``LU_data``."""
    from ._api.creation import empty
    _float("torch.lu_unpack", LU_data)
    if LU_data.ndim < 2:
        raise RuntimeError(f"torch.lu_unpack: Expected tensor with 2 or more dimensions. Got size: "
                           f"{list(LU_data.shape)} instead")
    if LU_pivots.dtype != _dt.int32:
        raise RuntimeError("torch.lu_unpack: LU_pivots is expected to be a contiguous tensor of torch.int32 dtype. "
                           f"Got {LU_pivots.dtype}; pass lu_factor's pivots (or pivots.int())")
    k = min(LU_data.shape[-2:])
    if LU_pivots.ndim < 1 or LU_pivots.shape[-1] != k:
        raise RuntimeError(f"torch.lu_unpack: expected {k} pivots per matrix for LU_data of shape "
                           f"{list(LU_data.shape)}, but got LU_pivots of shape {list(LU_pivots.shape)}")
    _broadcast_batch(LU_data.shape[:-2], LU_pivots.shape[:-1])
    p, lower, upper = _op("linalg_lu_unpack", LU_data, LU_pivots)
    none = empty(0, dtype=LU_data.dtype)
    return _out_all(_LUUnpack(p if unpack_pivots else none, lower if unpack_data else none,
                              upper if unpack_data else none), out)


def lu(A, *, pivot=True, out=None):
    """(P, L, U) with ``A = P @ L @ U``: the LU factorization with partial pivoting of each
    (m, n) matrix (:func:`lu_factor` unpacked). Gradients flow through L and U.

    >>> import tracenn
    >>> P, L, U = tracenn.linalg.lu(tracenn.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> P @ L @ U
    tensor([[1., 2.],
            [3., 4.]])
    """
    if A.ndim < 2:
        _float("linalg.lu", A)
        raise RuntimeError(f"linalg.lu: Expected tensor with 2 or more dimensions. Got size: {list(A.shape)} instead")
    _lu_args("linalg.lu_factor", A, pivot)
    lu_, piv, _ = _op("linalg_lu_factor", A)
    return _out_all(_LU(*lu_unpack(lu_, piv)), out)


def lu_solve(LU, pivots, B, *, left=True, adjoint=False, out=None):
    """``X`` with ``A X = B`` from ``(LU, pivots) = lu_factor(A)`` (``adjoint``: ``A^H X = B``;
    ``left=False``: ``X A = B``, or ``X A^H = B``). Batch dims broadcast; differentiable in LU and B.

    >>> import tracenn
    >>> A = tracenn.tensor([[3.0, 1.0], [1.0, 2.0]])
    >>> tracenn.linalg.lu_solve(*tracenn.linalg.lu_factor(A), tracenn.tensor([[9.0], [8.0]]))
    tensor([[2.],
            [3.]])
    """
    from ._api.math import _out, _torch_name
    _lapack("linalg.lu_solve_cpu", LU)
    _float("torch.linalg.lu_solve", LU)
    _square("torch.linalg.lu_solve", LU)
    if pivots.dtype != _dt.int32:
        raise RuntimeError(f"linalg.lu_solve: pivots should be a Tensor of scalar type torch.int32, got "
                           f"{pivots.dtype}; pass lu_factor's pivots (or pivots.int())")
    if B.ndim < 2:
        raise RuntimeError("linalg.lu_solve: The input tensor B must have at least 2 dimensions. (For a vector b, "
                           "pass b.unsqueeze(-1) and squeeze the result.)")
    if LU.dtype != B.dtype:
        raise RuntimeError(f"linalg.lu_solve: Expected LU and B to have the same dtype, but found LU of type "
                           f"{_torch_name(LU._value.dtype)} and B of type {_torch_name(B._value.dtype)} instead")
    n = LU.shape[-1]
    if pivots.ndim < 1 or pivots.shape[-1] != n:
        raise RuntimeError("linalg.lu_solve: Number of pivots per batch should be same as the dimension of the matrix")
    if tuple(pivots.shape[:-1]) != tuple(LU.shape[:-2]):
        raise RuntimeError(f"linalg.lu_solve: Expected LU.shape[:-1] and pivots.shape to be the same, but got "
                           f"pivots with shape {list(pivots.shape)} instead")
    if (B.shape[-2] if left else B.shape[-1]) != n:
        raise RuntimeError(f"linalg.lu_solve: Incompatible shapes of A and B for the equation "
                           f"{'AX = B' if left else 'XA = B'} ({n}x{n} and {B.shape[-2]}x{B.shape[-1]})")
    _broadcast_batch(LU.shape[:-2], B.shape[:-2])
    return _out(_op("linalg_lu_solve", LU, pivots, B, key=(bool(left), bool(adjoint))), out)


def solve_ex(A, B, *, left=True, check_errors=False, out=None):
    """(result, info): :func:`solve` without the error; ``info`` per matrix is 0, or for a singular
    one the index (1-based) of U's first zero pivot (its ``result`` then holds inf/NaN)."""
    x = _solve("linalg.solve", A, B, left)  # (checks the arguments)
    info = _op("linalg_lu_info", A)
    if check_errors and _eager():
        bad = _first_bad(info)
        if bad is not None:
            raise LinAlgError(f"torch.linalg.solve_ex: {_batch_prefix(A.shape, bad[0])}The solver failed because the "
                              "input matrix is singular.")
    return _out_all(_SolveEx(x, info), out)


# ---- least squares --------------------------------------------------------------------------------

_DRIVERS = ("gels", "gelsy", "gelsd", "gelss")


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution of ``A X = B`` for each (m, n) ``A``, as a named tuple
    (solution, residuals, rank, singular_values), with torch's CPU rules for what each
    ``driver`` (default 'gelsy') fills in: ``rank`` for all but 'gels'; ``singular_values`` for
    'gelsd' and 'gelss'; ``residuals`` (the squared residual of each column of B) for all but
    'gelsy', when m > n and every matrix has full rank. The rest are empty.

    The solution is the minimum-norm one from the SVD for every driver (LAPACK's answer for a
    full-rank ``A`` whatever the driver; singular values at most ``rcond`` times the largest, by
    default ``eps * max(m, n)``, count as zero). Eagerly, 'gels' on a matrix without full rank
    raises torch's error, and whether ``residuals`` is filled is decided from the rank; inside
    ``tracenn.compile`` nothing is read back, and residuals are filled whenever m > n.
    Gradients (of solution and residuals) are torch's: those of ``pinv(A) @ B``.

    >>> import tracenn
    >>> A = tracenn.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> tracenn.linalg.lstsq(A, tracenn.tensor([[1.0], [1.0], [0.0]]), driver="gelsd").solution
    tensor([[0.3333],
            [0.3333]])
    """
    from ._api.creation import empty
    from ._api.math import _torch_name
    name = "torch.linalg.lstsq"
    if A.ndim < 2:
        raise RuntimeError(f"{name}: input must have at least 2 dimensions.")
    if B.ndim < 1:
        raise RuntimeError(f"{name}: other must have at least 1 dimension.")
    if A.dtype != B.dtype:
        raise RuntimeError(f"{name}: Expected input and other to have the same dtype, but got input's dtype "
                           f"{_torch_name(A._value.dtype)} and other's dtype {_torch_name(B._value.dtype)}")
    if A.dtype not in (_dt.float32, _dt.float64, _dt.complex64, _dt.complex128):
        raise RuntimeError(f"This function doesn't handle types other than float and double (torch.linalg.lstsq got "
                           f"{_torch_name(A._value.dtype)}; cast, e.g. A.float() and B.float())")
    if driver is None:
        driver = "gelsy"
    if driver not in _DRIVERS:
        raise RuntimeError(f"{name}: parameter `driver` should be one of (gels, gelsy, gelsd, gelss)")
    if A.ndim < B.ndim or A.ndim - B.ndim > 1:
        raise RuntimeError(f"{name}: input.dim() must be greater or equal to other.dim() and "
                           "(input.dim() - other.dim()) <= 1")
    vector = B.ndim == A.ndim - 1
    b = B.unsqueeze(-1) if vector else B
    m, n = A.shape[-2:]
    if b.shape[-2] != m:
        raise RuntimeError(f"{name}: input.size(-2) should match other.size(-2)")
    _broadcast_batch(A.shape[:-2], b.shape[:-2])
    eps = float(np.finfo(A._value.dtype).eps)
    cutoff = eps * max(m, n) if rcond is None else (eps if float(rcond) < 0 else float(rcond))
    x, rank, s = _op("linalg_lstsq", A, b, key=(cutoff,))
    real = _real(A)
    if driver == "gels" and _eager() and A.numel():
        _raise_rank_deficient(A)
    full = m > n and driver != "gelsy"
    if full and driver != "gels" and _eager():
        full = bool(np.all(np.asarray(rank._value) == n))
    if full:
        r = A @ x - b
        residuals = (r.real.square() + r.imag.square() if r.is_complex() else r.square()).sum(-2)
    else:
        residuals = empty(0, dtype=real)
    return _Lstsq(x.squeeze(-1) if vector else x, residuals,
                  empty(0, dtype=_dt.int64) if driver == "gels" else rank,
                  s.detach() if driver in ("gelsd", "gelss") else empty(0, dtype=real))


def _raise_rank_deficient(A):
    """LAPACK gels's error: the first exactly-zero diagonal entry of R in A's QR (of A^H's when
    m < n)."""
    m, n = A.shape[-2:]
    r = _op("linalg_qr", (A if m >= n else A.mH).detach(), key=("r",))[1]
    zero = np.asarray(r.diagonal(dim1=-2, dim2=-1)._value).reshape(-1, min(m, n)) == 0
    bad = np.flatnonzero(zero.any(-1))
    if len(bad):
        i = int(bad[0])
        raise LinAlgError(f"torch.linalg.lstsq: {_batch_prefix(A.shape, i)}The least squares solution could not be "
                          f"computed because the input matrix does not have full rank (error code: "
                          f"{int(np.argmax(zero[i])) + 1}).")


# ---- rank and condition number ------------------------------------------------------------------

def matrix_rank(A, tol=None, hermitian=False, *, atol=None, rtol=None, out=None):
    """The numerical rank of each matrix: how many singular values (absolute eigenvalues with
    ``hermitian``, which reads the lower triangle) exceed ``max(atol, rtol * largest)``. Default
    ``rtol``: ``eps * max(m, n)``, or 0 when an ``atol`` > 0 is given. ``atol``/``rtol`` may be
    tensors broadcast against the batch. ``tol`` (deprecated) is ``atol`` with ``rtol=0``. int64.

    >>> import tracenn
    >>> tracenn.linalg.matrix_rank(tracenn.tensor([[1.0, 2.0], [2.0, 4.0]]))
    tensor(1)
    """
    from ._api.creation import zeros
    from ._api.math import _out, _torch_name, maximum, where
    from .autograd import no_grad
    from .linalg import eigvalsh
    name = "torch.linalg.matrix_rank"
    if tol is not None:
        if atol is not None or rtol is not None:
            raise TypeError("linalg.matrix_rank: tol (deprecated) cannot be combined with atol or rtol; "
                            "pass atol=tol, rtol=0 instead")
        atol, rtol = tol, 0.0
    if A.ndim < 2:
        raise RuntimeError(f"{name}: The input tensor input must have at least 2 dimensions.")
    _float("linalg.matrix_rank", A)
    for what, t in (("atol", atol), ("rtol", rtol)):
        if isinstance(t, Tensor) and t.is_complex():
            raise RuntimeError(f"{name}: {what} tensor of complex type is not supported. Got "
                               f"{_torch_name(t._value.dtype)}")
    if hermitian:
        _square("linalg.eigh", A)
    if A.numel() == 0:
        return _out(zeros(A.shape[:-2], dtype=_dt.int64), out)
    with no_grad():
        if hermitian:
            s = eigvalsh(A).abs()
            smax = s.amax(-1, keepdim=True)
        else:
            s = svdvals(A)
            smax = s[..., :1]
        m, n = A.shape[-2:]
        default = float(np.finfo(A._value.dtype).eps) * max(m, n)
        if rtol is None:
            if atol is None:
                rtol = default
            elif isinstance(atol, Tensor):
                rtol = where(atol > 0, 0.0, default)
            else:
                rtol = 0.0 if atol > 0 else default
        atol = 0.0 if atol is None else atol
        atol = atol.unsqueeze(-1) if isinstance(atol, Tensor) else atol
        rtol = rtol.unsqueeze(-1) if isinstance(rtol, Tensor) else rtol
        scaled = rtol * smax
        cut = maximum(atol, scaled) if isinstance(atol, Tensor) else scaled.clamp(min=atol)
        return _out((s > cut).sum(-1), out)


_COND_ORDS = (None, 2, -2, "fro", "nuc", math.inf, -math.inf, 1, -1)


def _ord_str(p):
    """``p`` as torch prints it in cond's messages (C++ ``std::to_string``)."""
    if isinstance(p, float) and math.isfinite(p):
        return f"{p:f}"
    return str(p) if not isinstance(p, float) else ("inf" if p > 0 else "-inf")


def cond(A, p=None, *, out=None):
    """The condition number of each matrix in the ``p`` norm: for None/2/-2 the ratio of the largest
    and smallest singular values (any shape); for 'fro', 'nuc', inf, -inf, 1, -1 (square only)
    ``norm(A) * norm(inv(A))``, inf for a singular matrix. Real; differentiable.

    >>> import tracenn
    >>> tracenn.linalg.cond(tracenn.tensor([[2.0, 0.0], [0.0, 0.5]]))
    tensor(4.)
    """
    from ._api.creation import zeros
    from ._api.math import _out, where
    if A.ndim < 2:
        raise RuntimeError("linalg.cond: The input tensor must have at least 2 dimensions.")
    if isinstance(p, bool) or p not in _COND_ORDS or (isinstance(p, str) and p not in ("fro", "nuc")):
        raise RuntimeError(f"linalg.cond got an invalid norm type: {p}")
    _lapack("linalg_svd_cpu", A)
    _float("linalg.cond", A)
    if isinstance(p, str):
        _square(f"linalg.cond(ord={p})", A)
    if A.numel() == 0:
        return _out(zeros(A.shape[:-2], dtype=_real(A)), out)
    if p is None or p in (2, -2):
        s = svdvals(A)
        big, small = s[..., 0], s[..., -1]
        return _out(small / big if p == -2 else big / small, out)
    _square(f"linalg.cond(ord={_ord_str(p)})", A)
    if p == "nuc":  # (the nuclear norm of an inverse with infinities would raise: torch's formula)
        s = svdvals(A)
        return _out(s.sum(-1) * s.reciprocal().sum(-1), out)
    inverse, info = inv_ex(A)
    inverse = where((info > 0)[..., None, None], math.inf, inverse)
    r = matrix_norm(A, p) * matrix_norm(inverse, p)
    return _out(where(r.isnan(), math.inf, r), out)


# ---- torch's older top-level spellings ------------------------------------------------------------

def torch_lu(A, pivot=True, get_infos=False, out=None):
    """torch.lu (deprecated in torch for :func:`lu_factor`): (LU, pivots), with ``get_infos`` also
    getrf's ``info``; never raises for a singular matrix."""
    _lu_args("torch.lu", A, pivot)
    lu_, piv, info = _op("linalg_lu_factor", A)
    return _LUWithInfo(lu_, piv, info) if get_infos else (lu_, piv)


def torch_lu_solve(b, LU_data, LU_pivots, *, out=None):
    """torch.lu_solve (deprecated in torch): :func:`lu_solve` with the arguments in the old order."""
    return lu_solve(LU_data, LU_pivots, b, out=out)


Tensor.lu = torch_lu
Tensor.lu_solve = torch_lu_solve
