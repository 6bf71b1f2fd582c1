"""Matrix decompositions and solvers (``tracenn.linalg``): each one JAX's, differentiated by JAX.

Matrices are the last two dims; leading dims are a batch. Torch's conventions where they differ
from JAX's are applied here (``solve``'s ``left``, ``cholesky``'s ``upper``, ``solve_triangular``'s
right-hand form); the API layer (``tracenn/linalg.py``) checks arguments and shapes.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from .registry import register, unbroadcast


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
    # (stop_gradient: JAX's primitive has no derivative; a gradient of the gradient goes through the reference)
    sg = jax.lax.stop_gradient
    return jax.lax.linalg.householder_product(sg(a), sg(tau)), (a, tau)


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


# ---- Cholesky solves (torch.cholesky_solve, torch.cholesky_inverse) --------------------------------

def _cholesky_solve_values(b, factor, upper):
    """``A^-1 B`` for ``A = L L^H`` (``factor`` lower) or ``U^H U`` (upper): two triangular solves
    that read only the factor's triangle. The batch dims of B and the factor broadcast."""
    batch = jnp.broadcast_shapes(b.shape[:-2], factor.shape[:-2])
    b = jnp.broadcast_to(b, batch + b.shape[-2:])
    factor = jnp.broadcast_to(factor, batch + factor.shape[-2:])
    tri = jax.lax.linalg.triangular_solve
    y = tri(factor, b, left_side=True, lower=not upper, transpose_a=upper, conjugate_a=upper)
    return tri(factor, y, left_side=True, lower=not upper, transpose_a=not upper, conjugate_a=not upper)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _cholesky_solve_ad(b, factor, upper):
    return _cholesky_solve_values(b, factor, upper)


def _cholesky_solve_fwd(b, factor, upper):
    x = _cholesky_solve_ad(b, factor, upper)  # (this op again, so that x's own derivative is torch's too)
    return x, (b, factor, x)


def _cholesky_solve_bwd(upper, res, ct):
    """torch's cholesky_solve_backward: the gradient of ``(L L^H)^-1 B`` with the factor read whole,
    though the forward reads only its triangle (so a gradient lands on the other triangle too;
    for a factor that came from ``cholesky`` that part is dropped by cholesky's own rule). Written
    with this op itself, so that its derivative (create_graph) is torch's too. JAX's cotangents
    are the conjugates of torch's."""
    b, factor, x = res
    g = jnp.conj(ct)
    batch = x.shape[:-2]
    full = jnp.broadcast_to(factor, batch + factor.shape[-2:])
    gb = _cholesky_solve_ad(g, full, upper)
    common = gb @ _mH(x)
    common = common + _mH(common)
    gfactor = -(full @ common) if upper else -(common @ full)
    return (jnp.conj(unbroadcast(gb, b.shape)), jnp.conj(unbroadcast(gfactor, factor.shape)))


_cholesky_solve_ad.defvjp(_cholesky_solve_fwd, _cholesky_solve_bwd)


@register("cholesky_solve", static=("upper",))
def _cholesky_solve(b, factor, *, upper):
    """``X`` with ``A X = B`` from A's Cholesky factor (torch.cholesky_solve's argument order)."""
    return _cholesky_solve_ad(b, factor, upper)


# ---- LDL^T with Bunch-Kaufman pivoting (torch.linalg.ldl_factor / ldl_solve) -----------------------
# LAPACK's sytf2/hetf2 (lower) and sytrs/hetrs, step for step, so that the pivots and the packed
# factor are LAPACK's (torch's). The loop's step is 1 or 2 (a 1x1 or a 2x2 pivot block), so it is a
# ``while_loop`` over one matrix, vmapped over the batch. Pivots are 1-based: ``p > 0`` a 1x1 block
# whose row k was swapped with row p; ``-p`` (twice) a 2x2 block whose second row was swapped with p.

_BK_ALPHA = (1 + 17 ** 0.5) / 8


def _abs1(z):
    """LAPACK's cabs1 (|re| + |im|), |z| for reals: the size sytf2 compares."""
    return jnp.abs(z.real) + jnp.abs(z.imag) if jnp.iscomplexobj(z) else jnp.abs(z)


def _mirror(w, herm):
    """The symmetric (Hermitian) matrix of ``w``'s lower triangle; a Hermitian one's diagonal real."""
    upper = _mT(jnp.tril(w, -1))
    full = jnp.tril(w) + (jnp.conj(upper) if herm else upper)
    if herm:
        i = jnp.arange(w.shape[-1])
        full = full.at[i, i].set(full[i, i].real.astype(w.dtype))
    return full


def _ldl_one(a, herm):
    """sytf2 (``herm``: hetf2) on one (n, n) matrix's lower triangle: (LD, pivots, info). The
    trailing matrix is kept whole (mirrored from its lower triangle after every step)."""
    n = a.shape[-1]
    idx = jnp.arange(n)
    absd = (lambda z: jnp.abs(z.real)) if herm else _abs1

    def step(state):
        k, w, piv, info = state
        col = w[:, k]
        absakk = absd(w[k, k])
        cabs = jnp.where(idx > k, _abs1(col), -1.0)
        imax = jnp.argmax(cabs)
        colmax = jnp.maximum(cabs[imax], 0.0)
        zero = (jnp.maximum(absakk, colmax) == 0) | jnp.isnan(absakk)
        rowmax = jnp.max(jnp.where((idx >= k) & (idx != imax), _abs1(w[imax]), -1.0))
        one_k = zero | (absakk >= _BK_ALPHA * colmax * (colmax / jnp.where(rowmax > 0, rowmax, 1.0)))
        one_imax = ~one_k & (absd(w[imax, imax]) >= _BK_ALPHA * rowmax)
        kp = jnp.where(one_k, k, imax)
        two = ~(one_k | one_imax)
        kk = k + two.astype(k.dtype)
        # swap rows and columns kk and kp of the trailing matrix (rows and columns >= k)
        perm = jnp.where(idx == kk, kp, jnp.where(idx == kp, kk, idx))
        trail = idx >= k
        w = jnp.where(trail[None, :], w[perm, :], w)
        w = jnp.where(trail[:, None], w[:, perm], w)
        conj = jnp.conj if herm else (lambda z: z)
        # a 1x1 pivot: A22 -= x x^T / d, column k of L = x / d
        below = idx > k
        x = jnp.where(below, w[:, k], 0)
        d11 = 1 / (w[k, k].real if herm else w[k, k])
        w1 = w + x[:, None] * (-d11 * conj(x))[None, :]
        w1 = w1.at[:, k].set(jnp.where(below, x * d11, w[:, k]))
        # a 2x2 pivot: sytf2's (hetf2's) update with the block's inverse
        below2 = idx > k + 1
        ak = jnp.where(below2, w[:, k], 0)
        ak1 = jnp.where(below2, w[:, jnp.minimum(k + 1, n - 1)], 0)
        k1 = jnp.minimum(k + 1, n - 1)
        if herm:
            dabs = jnp.abs(w[k1, k])
            e11, e22 = w[k1, k1].real / dabs, w[k, k].real / dabs
            tt = 1 / (e11 * e22 - 1)
            e21 = w[k1, k] / dabs
            dd = tt / dabs
            wk = dd * (e11 * ak - e21 * ak1)
            wkp1 = dd * (e22 * ak1 - jnp.conj(e21) * ak)
        else:
            e21 = w[k1, k]
            e11, e22 = w[k1, k1] / e21, w[k, k] / e21
            t = 1 / (e11 * e22 - 1)
            e21 = t / e21
            wk = e21 * (e11 * ak - ak1)
            wkp1 = e21 * (e22 * ak1 - ak)
        if herm:
            w2 = w - ak[:, None] * jnp.conj(wk)[None, :] - ak1[:, None] * jnp.conj(wkp1)[None, :]
        else:
            w2 = w - (ak[:, None] * wk[None, :] + ak1[:, None] * wkp1[None, :])
        w2 = w2.at[:, k].set(jnp.where(below2, wk, w[:, k])).at[:, k1].set(jnp.where(below2, wkp1, w[:, k1]))
        w = jnp.where(zero, w, jnp.where(two, w2, w1))
        w = _mirror(w, herm)
        p = (kp + 1).astype(jnp.int32)
        piv = piv.at[k].set(jnp.where(two, -p, p))
        piv = piv.at[k1].set(jnp.where(two, -p, piv[k1]))
        info = jnp.where(zero & (info == 0), (k + 1).astype(jnp.int32), info)
        return k + 1 + two.astype(k.dtype), w, piv, info

    state = (jnp.int32(0), _mirror(a, herm), jnp.zeros(n, jnp.int32), jnp.int32(0))
    _, w, piv, info = jax.lax.while_loop(lambda s: s[0] < n, step, state)
    return jnp.tril(w), piv, info


def _per_matrix(fn, batch, *arrays):
    """``fn`` vmapped over the (broadcast) leading ``batch`` dims of ``arrays``."""
    for _ in batch:
        fn = jax.vmap(fn)
    return fn(*arrays)


@register("linalg_ldl_factor", static=("hermitian",), nout=3, differentiable=False)
def _ldl_factor(a, *, hermitian):
    """(LD, pivots, info) of LAPACK's sytrf (``hermitian`` and complex: hetrf), lower: L's
    multipliers below the diagonal, D's 1x1 and 2x2 blocks on and beside it, the rest zero;
    ``info`` k > 0 when D[k-1, k-1] is exactly zero."""
    herm = hermitian and jnp.iscomplexobj(a)
    if a.shape[-1] == 0:
        return a, jnp.zeros(a.shape[:-1], jnp.int32), jnp.zeros(a.shape[:-2], jnp.int32)
    return _per_matrix(lambda m: _ldl_one(m, herm), a.shape[:-2], a)


def _ldl_solve_one(ld, piv, b, herm):
    """sytrs (hetrs) for one factor: L D L^T X = B (L^H), B (n, k)."""
    n = ld.shape[-1]
    idx = jnp.arange(n)
    conj = jnp.conj if herm else (lambda z: z)

    def swap(b, i, j):
        perm = jnp.where(idx == i, j, jnp.where(idx == j, i, idx))
        return b[perm]

    def forward(state):
        k, b = state
        two = piv[k] < 0
        k1 = jnp.minimum(k + 1, n - 1)
        kp = jnp.abs(piv[k]) - 1
        # 1x1: swap k and kp; B[k+1:] -= L[k+1:, k] B[k]; B[k] /= D[k, k]
        b1 = swap(b, k, kp)
        b1 = b1 - jnp.where(idx > k, ld[:, k], 0)[:, None] * b1[k][None, :]
        b1 = b1.at[k].set(b1[k] / (ld[k, k].real if herm else ld[k, k]))
        # 2x2: swap k+1 and kp; eliminate with columns k and k+1; solve with the block
        b2 = swap(b, k1, kp)
        b2 = (b2 - jnp.where(idx > k1, ld[:, k], 0)[:, None] * b2[k][None, :]
              - jnp.where(idx > k1, ld[:, k1], 0)[:, None] * b2[k1][None, :])
        akm1k = ld[k1, k]
        akm1, ak = ld[k, k] / conj(akm1k), ld[k1, k1] / akm1k
        denom = akm1 * ak - 1
        bkm1, bk = b2[k] / conj(akm1k), b2[k1] / akm1k
        b2 = b2.at[k].set((ak * bkm1 - bk) / denom).at[k1].set((akm1 * bk - bkm1) / denom)
        return k + 1 + two.astype(k.dtype), jnp.where(two, b2, b1)

    def backward(state):
        k, b = state
        two = piv[k] < 0
        km1 = jnp.maximum(k - 1, 0)
        kp = jnp.abs(piv[k]) - 1
        below = idx > k
        b = b.at[k].add(-(conj(jnp.where(below, ld[:, k], 0)) @ b))
        b = b.at[km1].add(jnp.where(two, -(conj(jnp.where(below, ld[:, km1], 0)) @ b), 0))
        return k - 1 - two.astype(k.dtype), swap(b, k, kp)

    _, b = jax.lax.while_loop(lambda s: s[0] < n, forward, (jnp.int32(0), b))
    _, b = jax.lax.while_loop(lambda s: s[0] >= 0, backward, (jnp.int32(n - 1), b))
    return b


@register("linalg_ldl_solve", static=("hermitian",), differentiable=False)
def _ldl_solve(ld, pivots, b, *, hermitian):
    """``A X = B`` from ldl_factor's (LD, pivots) (LAPACK's sytrs / hetrs); batch dims broadcast."""
    herm = hermitian and jnp.iscomplexobj(ld)
    batch = jnp.broadcast_shapes(ld.shape[:-2], b.shape[:-2])
    ld = jnp.broadcast_to(ld, batch + ld.shape[-2:])
    pivots = jnp.broadcast_to(pivots, batch + pivots.shape[-1:])
    b = jnp.broadcast_to(b, batch + b.shape[-2:])
    if ld.shape[-1] == 0:
        return b
    return _per_matrix(lambda l, p, x: _ldl_solve_one(l, p, x, herm), batch, ld, pivots, b)
