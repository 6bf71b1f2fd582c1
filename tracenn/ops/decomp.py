"""Matrix decompositions and solvers (``tracenn.linalg``): each one JAX's, differentiated by JAX.

Matrices are the last two dims; leading dims are a batch. Torch's conventions where they differ
from JAX's are applied here (``solve``'s ``left``, ``cholesky``'s ``upper``, ``solve_triangular``'s
right-hand form); the API layer (``tracenn/linalg.py``) checks arguments and shapes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .registry import register


def _mT(a):
    return jnp.swapaxes(a, -1, -2)


def _mH(a):
    return jnp.conj(_mT(a)) if jnp.iscomplexobj(a) else _mT(a)


@register("linalg_inv")
def _inv(a):
    return jnp.linalg.inv(a)


@register("linalg_solve", static=("left",))
def _solve(a, b, *, left):
    """``A X = B`` (``left``) or ``X A = B``, for B of matrices (the API makes vectors columns)."""
    if left:
        return jnp.linalg.solve(a, b)
    return _mT(jnp.linalg.solve(_mT(a), _mT(b)))


@register("linalg_det")
def _det(a):
    return jnp.linalg.det(a)


@register("linalg_slogdet", nout=2)
def _slogdet(a):
    sign, logabsdet = jnp.linalg.slogdet(a)
    return sign, logabsdet


@register("linalg_cholesky", static=("upper",))
def _cholesky(a, *, upper):
    lower = jnp.linalg.cholesky(a)
    return _mH(lower) if upper else lower


@register("linalg_qr", static=("mode",), nout=2)
def _qr(a, *, mode):
    if mode == "r":
        return jnp.zeros((0,), a.dtype), jnp.linalg.qr(a, mode="r")
    q, r = jnp.linalg.qr(a, mode=mode)
    return q, r


@register("linalg_svd", static=("full_matrices",), nout=3)
def _svd(a, *, full_matrices):
    u, s, vh = jnp.linalg.svd(a, full_matrices=full_matrices)
    return u, s, vh


@register("linalg_svdvals")
def _svdvals(a):
    return jnp.linalg.svd(a, compute_uv=False)


def _hermitian(a, uplo="L"):
    """``a`` as torch's eigh sees it: the Hermitian matrix of its ``uplo`` triangle (the other is
    never read). Its gradient is the Hermitian part of the cotangent, as torch's: the values come
    from the triangle, the derivative from ``(a + a^H) / 2``."""
    tri = jnp.tril(a) if uplo == "L" else jnp.triu(a)
    strict = jnp.tril(a, -1) if uplo == "L" else jnp.triu(a, 1)
    full = tri + _mH(strict)
    sym = (a + _mH(a)) / 2
    return sym + jax.lax.stop_gradient(full - sym)


@register("linalg_eigh", static=("uplo",), nout=2)
def _eigh(a, *, uplo):
    w, v = jnp.linalg.eigh(_hermitian(a, uplo), symmetrize_input=False)
    return w, v


@register("linalg_eigvalsh", static=("uplo",))
def _eigvalsh(a, *, uplo):
    return jnp.linalg.eigh(_hermitian(a, uplo), symmetrize_input=False)[0]


def _pinv_values(a, atol, rtol, hermitian):
    """torch's cutoff: singular values at most ``max(atol, rtol * largest)`` count as zero; default
    ``rtol = eps * max(m, n)``, and 0 when only an ``atol`` above zero is given (torch's rule:
    ``atol=0.0`` keeps the default ``rtol``). ``hermitian``: only the lower triangle is read."""
    if hermitian:
        a = jnp.tril(a) + _mH(jnp.tril(a, -1))
    m, n = a.shape[-2:]
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else jnp.finfo(a.dtype).eps * max(m, n)
    atol = 0.0 if atol is None else atol
    u, s, vh = jnp.linalg.svd(a, full_matrices=False)
    cutoff = jnp.maximum(atol, rtol * jnp.max(s, axis=-1, keepdims=True))
    inv = jnp.where(s > cutoff, 1.0 / jnp.where(s > cutoff, s, 1.0), 0.0)
    return (_mH(vh) * inv[..., None, :].astype(u.dtype)) @ _mH(u)


def _vjp_pinv(g, p, a, *, atol, rtol, hermitian):
    """torch's pinv_backward (Golub and Pereyra's derivative, with the cutoff's pseudo-inverse)."""
    m, n = a.shape[-2:]
    ph, gh = _mH(p), _mH(g)
    if m <= n:
        k = gh @ p
        kph = k @ ph
        return (-_mH(p @ k) + kph - (a @ p) @ kph + (ph @ p) @ (gh - k @ a),)
    k = p @ gh
    phk = ph @ k
    return (-_mH(k @ p) + (gh - a @ k) @ p @ ph + phk - phk @ p @ a,)


@register("linalg_pinv", static=("atol", "rtol", "hermitian"), vjp=lambda g, out, a, **kw: _vjp_pinv(g, out, a, **kw),
          saves_out=True)
def _pinv(a, *, atol, rtol, hermitian):
    return _pinv_values(a, atol, rtol, hermitian)


@register("linalg_matrix_exp")
def _matrix_exp(a):
    return jsl.expm(a)


@register("linalg_solve_triangular", static=("upper", "left", "unitriangular"))
def _solve_triangular(a, b, *, upper, left, unitriangular):
    if left:
        return jsl.solve_triangular(a, b, lower=not upper, unit_diagonal=unitriangular)
    # X A = B  <=>  A^T X^T = B^T, and A^T is triangular the other way
    return _mT(jsl.solve_triangular(_mT(a), _mT(b), lower=upper, unit_diagonal=unitriangular))


@register("linalg_cross", static=("dim",))
def _cross(a, b, *, dim):
    return jnp.cross(a, b, axis=dim)


def _householder_reference(a, tau):
    """``H_1 ... H_k`` applied to the first ``n`` columns of the identity, ``H_i = I - tau_i v_i v_i^H``
    with ``v_i`` column ``i`` of ``a`` below the diagonal and 1 on it: JAX ops, so differentiable
    (JAX's primitive has no derivative rule)."""
    m, n = a.shape[-2:]
    k = tau.shape[-1]
    rows = jnp.arange(m)
    q0 = jnp.broadcast_to(jnp.eye(m, n, dtype=a.dtype), a.shape[:-2] + (m, n))

    def body(j, q):
        i = k - 1 - j
        col = jax.lax.dynamic_index_in_dim(a, i, axis=a.ndim - 1, keepdims=False)
        v = jnp.where(rows > i, col, (rows == i).astype(a.dtype))
        t = jax.lax.dynamic_index_in_dim(tau, i, axis=tau.ndim - 1, keepdims=True)[..., None]
        return q - t * v[..., :, None] * (jnp.conj(v)[..., None, :] @ q)

    return jax.lax.fori_loop(0, k, body, q0)


@jax.custom_vjp
def _householder(a, tau):
    return jax.lax.linalg.householder_product(a, tau)


def _householder_fwd(a, tau):
    return jax.lax.linalg.householder_product(a, tau), (a, tau)


def _householder_bwd(res, g):
    return jax.vjp(_householder_reference, *res)[1](g)


_householder.defvjp(_householder_fwd, _householder_bwd)


@register("linalg_householder_product")
def _householder_product(a, tau):
    """LAPACK's fast product forward; the gradient of the same product written in JAX ops."""
    return _householder(a, tau)


@register("geqrf", nout=2, differentiable=False)
def _geqrf(a):
    """LAPACK's QR in Householder form: R above the diagonal, the reflectors below, and tau.
    (JAX has the primitive but not yet a public name for it.)"""
    geqrf = getattr(jax.lax.linalg, "geqrf", None)
    if geqrf is None:
        from jax._src.lax.linalg import geqrf
    return geqrf(a)


@register("linalg_lu_info", differentiable=False)
def _lu_info(a):
    """Per matrix, the 1-based index of the first zero on U's diagonal (0: none), as LAPACK's
    getrf ``info``: how torch tells a singular matrix."""
    lu = jax.lax.linalg.lu(a)[0]
    zero = jnp.diagonal(lu, axis1=-2, axis2=-1) == 0
    return jnp.where(zero.any(-1), jnp.argmax(zero, axis=-1) + 1, 0).astype(jnp.int32)


@register("linalg_cholesky_failed", differentiable=False)
def _cholesky_failed(lower):
    """Per factor, whether the factorization failed (JAX leaves NaNs; the API finds which leading
    minor is not positive-definite on the host, for the error message)."""
    return jnp.isnan(lower).any((-2, -1))
