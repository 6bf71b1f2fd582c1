"""Op-table rows for the second batch of linear algebra (tracenn/_linalg_extra.py): torch's
cholesky_solve / cholesky_inverse (the ``cholesky_solve`` primitive), the LDL primitives
(``linalg_ldl_factor`` / ``linalg_ldl_solve``, no gradient, as torch's), triangular_solve,
ormqr, vander, tensorinv and tensorsolve. op_records.py calls :func:`add` at its end. Factors are
built inside the row's call (``cholesky`` of an SPD matrix), so that finite differences of the call
are its true derivative."""
from __future__ import annotations

import numpy as np


def _spd(T, a):
    return a @ a.mT + a.shape[-1] * T.eye(a.shape[-1], dtype=a.dtype)


def _np_spd(a):
    return a @ np.swapaxes(a, -1, -2) + a.shape[-1] * np.eye(a.shape[-1])


def _np_sym(a):
    return a + np.swapaxes(a, -1, -2)


def add(R):
    """Append the rows to op_records (``R``: that module, loaded under its test name)."""
    F32, F64, Sample, arr, rec = R.F32, R.F64, R.Sample, R.arr, R.rec
    m33, m233 = (3, 3), (2, 3, 3)
    rec("cholesky_solve", lambda T, b, a: T.cholesky_solve(b, T.linalg.cholesky(_spd(T, a))),
        lambda b, a: np.linalg.solve(_np_spd(a), b),
        [Sample(arr((3, 2), F64), arr(m33, F64)), Sample(arr((2, 3, 2)), arr(m33)),
         Sample(arr((3, 1), F64), arr(m233, F64))], "same", tol=3.0)
    rec("cholesky_solve[upper]", lambda T, b, a: T.cholesky_solve(b, T.linalg.cholesky(_spd(T, a), upper=True), True),
        lambda b, a: np.linalg.solve(_np_spd(a), b), [Sample(arr((3, 2), F64), arr(m33, F64))], "same", tol=3.0)
    rec("cholesky_inverse", lambda T, a: T.cholesky_inverse(T.linalg.cholesky(_spd(T, a))),
        lambda a: np.linalg.inv(_np_spd(a)), [Sample(arr(m33, F64)), Sample(arr(m233))], "same", tol=3.0)
    rec("linalg.ldl_factor", lambda T, a: T.linalg.ldl_factor(a + a.mT).LD, None,
        [Sample(arr(m33, F64)), Sample(arr((2, 4, 4)))], "same", grad=False, tol=3.0)
    rec("linalg.ldl_solve", lambda T, a, b: T.linalg.ldl_solve(*T.linalg.ldl_factor(a + a.mT), b),
        lambda a, b: np.linalg.solve(_np_sym(a), b), [Sample(arr(m33, F64), arr((3, 2), F64))], "same", grad=False,
        tol=3.0)
    rec("triangular_solve", lambda T, b, a: T.triangular_solve(b, a.triu() + 3 * T.eye(3, dtype=a.dtype)).solution,
        lambda b, a: np.linalg.solve(np.triu(a) + 3 * np.eye(3), b),
        [Sample(arr((3, 2), F64), arr(m33, F64)), Sample(arr((3, 2)), arr(m33))], "same", tol=3.0)
    rec("ormqr", lambda T, a, t, c: T.ormqr(a, t, c), None,
        [Sample(arr((4, 3), F64), np.array([1.2, 0.7, 1.5]), arr((4, 2), F64))], "same", tol=3.0)
    rec("linalg.vander", lambda T, x: T.linalg.vander(x, N=4), lambda x: x[..., None] ** np.arange(4),
        [Sample(arr((3,), F64)), Sample(arr((2, 3)))], "same")
    rec("linalg.tensorinv", lambda T, a: T.linalg.tensorinv(a + 3 * T.eye(4, dtype=a.dtype).reshape(4, 2, 2), ind=1),
        lambda a: np.linalg.tensorinv(a + 3 * np.eye(4).reshape(4, 2, 2), ind=1), [Sample(arr((4, 2, 2), F64))],
        "same", tol=3.0)
    rec("linalg.tensorsolve", lambda T, a, b: T.linalg.tensorsolve(a + 3 * T.eye(6, dtype=a.dtype).reshape(2, 3, 6), b),
        lambda a, b: np.linalg.tensorsolve(a + 3 * np.eye(6).reshape(2, 3, 6), b),
        [Sample(arr((2, 3, 6), F64), arr((2, 3), F64))], "same", tol=3.0)
