"""Op-table rows for tracenn.linalg's decompositions, tracenn.special and the scan primitives
(logcumsumexp, searchsorted, histc); op_records.py, which owns the table, calls :func:`add` at its end. Inputs that a decomposition needs to be well-conditioned,
symmetric or positive-definite are made so inside the row's call, so that finite differences of
the call are its true derivative (torch's cholesky and eigh gradients assume a Hermitian input)."""
from __future__ import annotations

import math

import numpy as np


def _wc(T, a):
    """A well-conditioned matrix made from ``a``: ``a + 3 I``."""
    return a + 3 * T.eye(a.shape[-1], dtype=a.dtype)


def _np_wc(a):
    return a + 3 * np.eye(a.shape[-1])


def _spd(T, a):
    return a @ a.mT + a.shape[-1] * T.eye(a.shape[-1], dtype=a.dtype)


def _np_spd(a):
    return a @ np.swapaxes(a, -1, -2) + a.shape[-1] * np.eye(a.shape[-1])


def _sym(T, a):
    return a + a.mT


def _vec(f):
    v = np.vectorize(f, otypes=[np.float64])
    return lambda x: v(np.asarray(x, np.float64))


def _ndtr(x):
    return 0.5 * math.erfc(-x / math.sqrt(2))


_SPECIAL = [  # name, reference (or None: torch only), domain
    ("i0", np.i0, (-2, 2)), ("i0e", lambda x: np.exp(-np.abs(x)) * np.i0(x), (-2, 2)),
    ("i1", None, (-2, 2)), ("i1e", None, (-2, 2)), ("ndtr", _vec(_ndtr), (-2, 2)),
    ("ndtri", None, (0.05, 0.95)), ("log_ndtr", _vec(lambda x: math.log(_ndtr(x))), (-2, 2)),
    ("sinc", np.sinc, (-2, 2)), ("erfcx", _vec(lambda x: math.exp(x * x) * math.erfc(x)), (-1, 2)),
    ("entr", lambda x: -x * np.log(x), (0.1, 2)), ("logit", lambda x: np.log(x / (1 - x)), (0.1, 0.9)),
]


def add(R):
    """Append the rows to op_records (``R``: that module, loaded under its test name)."""
    F32, F64, Sample, arr, rec = R.F32, R.F64, R.Sample, R.arr, R.rec
    m33, m233, m43 = (3, 3), (2, 3, 3), (4, 3)
    rec("linalg.inv", lambda T, a: T.linalg.inv(_wc(T, a)), lambda a: np.linalg.inv(_np_wc(a)),
        [Sample(arr(m233, F64)), Sample(arr(m33))], "same", tol=3.0)
    rec("linalg.solve", lambda T, a, b: T.linalg.solve(_wc(T, a), b), lambda a, b: np.linalg.solve(_np_wc(a), b),
        [Sample(arr(m33, F64), arr((3, 2), F64)), Sample(arr(m33), arr((3, 2)))], "same", tol=3.0)
    rec("linalg.det", lambda T, a: T.linalg.det(a), np.linalg.det, [Sample(arr(m233, F64)), Sample(arr(m33))],
        "same", tol=3.0)
    rec("linalg.slogdet", lambda T, a: T.linalg.slogdet(_wc(T, a)).logabsdet,
        lambda a: np.linalg.slogdet(_np_wc(a))[1], [Sample(arr(m33, F64))], "same")
    rec("linalg.cholesky", lambda T, a: T.linalg.cholesky(_spd(T, a)), lambda a: np.linalg.cholesky(_np_spd(a)),
        [Sample(arr(m33, F64)), Sample(arr(m233))], "same", tol=3.0)
    rec("linalg.qr", lambda T, a: (lambda q, r: q @ r)(*T.linalg.qr(a)), lambda a: a, [Sample(arr(m43, F64))],
        "same", tol=3.0)
    rec("linalg.svd", lambda T, a: (lambda u, s, vh: (u * s.unsqueeze(-2)) @ vh)(*T.linalg.svd(a, full_matrices=False)),
        lambda a: a, [Sample(arr(m43, F64))], "same", tol=3.0)
    rec("linalg.svdvals", lambda T, a: T.linalg.svdvals(a), lambda a: np.linalg.svd(a, compute_uv=False),
        [Sample(arr(m43, F64)), Sample(arr((2, 4, 3)))], "same", tol=3.0)
    rec("linalg.eigh", lambda T, a: (lambda w, v: (v * w.unsqueeze(-2)) @ v.mT)(*T.linalg.eigh(_sym(T, a))),
        lambda a: a + np.swapaxes(a, -1, -2), [Sample(arr(m33, F64))], "same", tol=3.0)
    rec("linalg.eigvalsh", lambda T, a: T.linalg.eigvalsh(_sym(T, a)), lambda a: np.linalg.eigvalsh(a + a.T),
        [Sample(arr(m33, F64))], "same", tol=3.0)
    rec("linalg.pinv", lambda T, a: T.linalg.pinv(a), np.linalg.pinv, [Sample(arr(m43, F64)), Sample(arr(m43))],
        "same", tol=3.0)
    rec("linalg.matrix_exp", lambda T, a: T.linalg.matrix_exp(a * 0.5), None, [Sample(arr(m33, F64))], "same",
        tol=3.0)
    rec("linalg.solve_triangular", lambda T, a, b: T.linalg.solve_triangular(_wc(T, a).triu(), b, upper=True),
        lambda a, b: np.linalg.solve(np.triu(_np_wc(a)), b), [Sample(arr(m33, F64), arr((3, 2), F64))], "same",
        tol=3.0)
    rec("linalg.cross", lambda T, a, b: T.linalg.cross(a, b), np.cross,
        [Sample(arr((2, 3), F64), arr((2, 3), F64)), Sample(arr((3,)), arr((3,)))], "same")
    rec("linalg.householder_product", lambda T, a, t: T.linalg.householder_product(a, t), None,
        [Sample(arr(m43, F64), np.array([1.2, 0.7, 1.5]))], "same", tol=3.0)
    rec("geqrf", lambda T, a: T.geqrf(a)[1], None, [Sample(arr(m43, F64))], "same", grad=False)
    for name, ref, (lo, hi) in _SPECIAL:
        rec(f"special.{name}", (lambda n: lambda T, x: getattr(T.special, n)(x))(name), ref,
            [Sample(arr((5,), F64, lo, hi)), Sample(arr((2, 3), F32, lo, hi))], "same", tol=3.0,
            grad=name != "i1e")
    rec("special.polygamma", lambda T, x: T.special.polygamma(1, x), None, [Sample(arr((4,), F64, 0.5, 3))], "same")
    rec("special.xlog1py", lambda T, x, y: T.special.xlog1py(x, y), lambda x, y: x * np.log1p(y),
        [Sample(arr((4,), F64, 0.1, 2), arr((4,), F64, 0.1, 2))], "same")
    rec("logcumsumexp", lambda T, x, d: T.logcumsumexp(x, d),
        lambda x, d: np.log(np.cumsum(np.exp(x), axis=d)), [Sample(arr((3, 4), F64), 1), Sample(arr((5,)), 0)], "same")
    rec("searchsorted", lambda T, s, v, **k: T.searchsorted(s, v, **k),
        lambda s, v, right=False: np.searchsorted(s, v, side="right" if right else "left"),
        [Sample(np.sort(arr((6,), F64)), arr((2, 3), F64)), Sample(np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 0.5]), right=True)],
        "int64", grad=False)
    rec("histc", lambda T, x: T.histc(x, bins=4, min=-1, max=1), lambda x: np.histogram(x, 4, (-1, 1))[0].astype(x.dtype),
        [Sample(arr((10,), F64))], "same", grad=False)
    rec("histogram", lambda T, x: T.histogram(x, 4, range=(-1, 1)).hist,
        lambda x: np.histogram(x, 4, (-1, 1))[0].astype(x.dtype), [Sample(arr((10,), F64))], "same", grad=False)
    rec("conj", lambda T, x: T.conj(x), np.conj,
        [Sample(np.array([1 + 2j, 3 - 1j], np.complex64)), Sample(arr((3,), F64))], "same",
        torch_op=lambda T, x: T.conj(x).resolve_conj())  # (torch's conj is a lazy view numpy() refuses)
