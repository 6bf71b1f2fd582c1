"""Op-table rows for complex numbers (real, imag, view_as_real, view_as_complex, complex, polar,
angle) and tracenn.fft; op_records.py, which owns the table, calls :func:`add` at its end.

Rows whose inputs or outputs are complex are forward-only here (``grad=False``: the table's
finite differences and cotangents are real); their gradients are checked against finite
differences along real and imaginary parts, and against torch, in tests/test_fft.py and
tests/autograd/test_complex_grad.py."""
from __future__ import annotations

import numpy as np


def _c(R, shape, dtype="complex64"):
    return (R.arr(shape, "float64") + 1j * R.arr(shape, "float64")).astype(dtype)


def _real_of(s):
    return {"complex64": "float32", "complex128": "float64"}[str(s.args[0].dtype)]


def _complex_of(s):
    return {"float32": "complex64", "float64": "complex128"}[str(s.args[0].dtype)]


def _angle_ref(x):
    if np.iscomplexobj(x):
        return np.angle(x)
    return np.where(np.isnan(x), x, np.where(x < 0, np.pi, 0.0))


def _np_axes(x, s, dim):
    """torch's dims for NumPy (which deprecates ``s`` without ``axes``): the last ``len(s)``."""
    if dim is not None or s is None:
        return dim
    return tuple(range(x.ndim - len(s), x.ndim))


def _resolved(name):
    """torch's call, its lazy conjugate resolved (torch's ifft of a real input is one; numpy()
    refuses it)."""
    def call(T, x, **k):
        return getattr(T.fft, name)(x, **k).resolve_conj()
    return call


def add(R):
    """Append the rows to op_records (``R``: that module, loaded under its test name)."""
    F32, F64, Sample, arr, rec = R.F32, R.F64, R.Sample, R.arr, R.rec
    z64, z128 = _c(R, (2, 3)), _c(R, (4,), "complex128")
    rec("real", lambda T, z: T.real(z), np.real, [Sample(z64), Sample(z128)], _real_of, grad=False, upcast=False)
    rec("imag", lambda T, z: T.imag(z), np.imag, [Sample(z64), Sample(z128)], _real_of, grad=False, upcast=False)
    rec("view_as_real", lambda T, z: T.view_as_real(z), lambda z: np.stack([z.real, z.imag], -1),
        [Sample(z64), Sample(z128)], _real_of, grad=False, upcast=False)
    rec("view_as_complex", lambda T, x: T.view_as_complex(x), lambda x: x[..., 0] + 1j * x[..., 1],
        [Sample(arr((3, 2))), Sample(arr((2, 2, 2), F64))], _complex_of, grad=False, upcast=False)
    rec("complex", lambda T, a, b: T.complex(a, b), lambda a, b: a + 1j * b,
        [Sample(arr((2, 3)), arr((3,))), Sample(arr((4,), F64), arr((4,), F64))], _complex_of, grad=False,
        upcast=False)
    rec("polar", lambda T, a, b: T.polar(a, b), lambda a, b: a * np.exp(1j * b),
        [Sample(arr((2, 3), F32, 0, 2), arr((2, 3))), Sample(arr((4,), F64, 0, 2), arr((4,), F64))], _complex_of,
        grad=False, upcast=False)
    rec("angle", lambda T, x: T.angle(x), _angle_ref,
        [Sample(z64), Sample(z128), Sample(R.special(F32)), Sample(arr((5,), F64)), Sample(np.array([1, -2, 0]))],
        lambda s: "float32" if s.args[0].dtype.kind in "iu" else _real_of(s) if s.args[0].dtype.kind == "c"
        else str(s.args[0].dtype), grad=False, upcast=False)
    x32, x64 = arr((3, 4)), arr((2, 5), F64)
    for name, np_fn, real_in in [("fft", np.fft.fft, False), ("ifft", np.fft.ifft, False),
                                 ("rfft", np.fft.rfft, True), ("irfft", np.fft.irfft, False),
                                 ("hfft", np.fft.hfft, False), ("ihfft", np.fft.ihfft, True)]:
        out_real = name in ("irfft", "hfft")
        z = [Sample(_c(R, (3, 4))), Sample(_c(R, (2, 5), "complex128"), n=6, norm="ortho")]
        samples = [Sample(x32), Sample(x64, n=7, dim=0, norm="forward")] + ([] if real_in else z)
        rec(f"fft.{name}", (lambda n: lambda T, x, **k: getattr(T.fft, n)(x, **k))(name),
            (lambda f: lambda x, n=None, dim=-1, norm=None: f(x, n, dim, norm))(np_fn), samples,
            (lambda r: lambda s: ({"complex64": "float32", "complex128": "float64"}.get(
                str(s.args[0].dtype), str(s.args[0].dtype)) if r else
                {"float32": "complex64", "float64": "complex128"}.get(str(s.args[0].dtype),
                                                                      str(s.args[0].dtype))))(out_real),
            grad=False, upcast=False, tol=3.0, torch_op=_resolved(name))
    for name, np_fn in [("fftn", np.fft.fftn), ("ifftn", np.fft.ifftn), ("rfftn", np.fft.rfftn),
                        ("irfftn", np.fft.irfftn)]:
        src = _c(R, (3, 4)) if name == "irfftn" else x32
        rec(f"fft.{name}", (lambda n: lambda T, x, **k: getattr(T.fft, n)(x, **k))(name),
            (lambda f: lambda x, s=None, dim=None, norm=None: f(x, s, _np_axes(x, s, dim), norm))(np_fn),
            [Sample(src), Sample(src, s=(2, 6), norm="ortho")],
            "float32" if name == "irfftn" else "complex64", grad=False, upcast=False, tol=3.0,
            torch_op=_resolved(name))
