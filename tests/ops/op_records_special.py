"""Op-table rows for torch.special's Bessel, Airy and orthogonal-polynomial functions (the
``special_nograd`` op: no gradients, as torch) and the torch-level polygamma, mvlgamma, igamma,
igammac and special.zeta; op_records.py, which owns the table, calls :func:`add` at its end.

The NumPy references here are independent of torch's algorithms (integral representations summed
by the trapezoid rule, which converges geometrically for these smooth periodic or doubly
exponentially decaying integrands, and plain three-term recurrences); tests/test_special_more.py
reuses them."""
from __future__ import annotations

import math

import numpy as np

_EULER = 0.5772156649015329


def _trapezoid_periodic(f, x, n=4000):
    """(1/pi) * integral over [0, pi] of f(x, t), for integrands that are smooth and periodic."""
    x = np.asarray(x, np.float64)
    t = (np.arange(n) + 0.5) * (np.pi / n)  # the midpoint rule: the trapezoid rule, shifted
    return np.mean(f(x[..., None], t), axis=-1)


def bessel_j0_ref(x):
    return _trapezoid_periodic(lambda x, t: np.cos(x * np.sin(t)), x)


def bessel_j1_ref(x):
    return _trapezoid_periodic(lambda x, t: np.cos(t - x * np.sin(t)), x)


def bessel_i0_ref(x):
    return _trapezoid_periodic(lambda x, t: np.exp(x * np.cos(t)), x)


def bessel_i1_ref(x):
    return _trapezoid_periodic(lambda x, t: np.exp(x * np.cos(t)) * np.cos(t), x)


def bessel_k_ref(x, order, scaled=False):
    """K_order(x) = integral over [0, inf) of exp(-x cosh t) cosh(order t) dt (x > 0)."""
    x = np.asarray(x, np.float64)[..., None]
    t = np.linspace(0.0, 12.0, 6001)
    w = np.full(t.shape, t[1])
    w[0] /= 2
    shift = x if scaled else 0.0  # exp(x) K(x): fold the scale into the exponent
    return np.sum(np.exp(-x * np.cosh(t) + shift) * np.cosh(order * t) * w, axis=-1)


def spherical_j0_ref(x):
    x = np.asarray(x, np.float64)
    return np.sinc(x / np.pi)


def poly_ref(name):
    """p_n(x) by its plain three-term recurrence (n truncated; negative n gives 0)."""
    shifted = name.startswith("shifted_")
    kind = name[-1]

    def first(x):
        if "chebyshev" in name:
            return {"t": x, "u": 2 * x, "v": 2 * x - 1, "w": 2 * x + 1}[kind]
        return {"h": 2 * x, "e": x, "l": 1 - x, "p": x}[kind]

    def step(x, k, p, q):
        if "chebyshev" in name:
            return 2 * x * q - p
        if name == "hermite_polynomial_h":
            return 2 * x * q - 2 * k * p
        if name == "hermite_polynomial_he":
            return x * q - k * p
        if name == "laguerre_polynomial_l":
            return ((2 * k + 1 - x) * q - k * p) / (k + 1)
        return ((2 * k + 1) * x * q - k * p) / (k + 1)

    def one(x, n):
        n = int(n)
        x = 2 * x - 1 if shifted else x
        if n < 0:
            return 0.0
        p, q = 1.0, first(x)
        if n == 0:
            return p
        for k in range(1, n):
            p, q = q, step(x, k, p, q)
        return q

    v = np.vectorize(one, otypes=[np.float64])
    return lambda x, n: v(np.asarray(x, np.float64), np.asarray(n, np.float64))


UNARY_REFS = {
    "bessel_j0": bessel_j0_ref, "bessel_j1": bessel_j1_ref, "modified_bessel_i0": bessel_i0_ref,
    "modified_bessel_i1": bessel_i1_ref, "modified_bessel_k0": lambda x: bessel_k_ref(x, 0),
    "modified_bessel_k1": lambda x: bessel_k_ref(x, 1),
    "scaled_modified_bessel_k0": lambda x: bessel_k_ref(x, 0, True),
    "scaled_modified_bessel_k1": lambda x: bessel_k_ref(x, 1, True), "spherical_bessel_j0": spherical_j0_ref,
    "bessel_y0": None, "bessel_y1": None, "airy_ai": None,  # (checked against torch, and relations)
}
POLYNOMIALS = [f"{s}chebyshev_polynomial_{k}" for s in ("", "shifted_") for k in "tuvw"] + [
    "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l", "legendre_polynomial_p"]
# (torch's J0 and J1 lose digits between 2 and 20, which tracenn reproduces: see test_special_more.py)
_DOMAIN = {"bessel_j0": (-2, 2), "bessel_j1": (-2, 2), "modified_bessel_k0": (0.1, 6),
           "modified_bessel_k1": (0.1, 6), "scaled_modified_bessel_k0": (0.1, 6),
           "scaled_modified_bessel_k1": (0.1, 6), "bessel_y0": (0.1, 12), "bessel_y1": (0.1, 12)}

_A = np.array([0.5, 1.5, 3.0, 7.0])  # igamma's (constant) first argument in the gradient rows


def _lgamma(x):
    return np.vectorize(math.lgamma, otypes=[np.float64])(x)


def _mvlgamma_ref(x, p=2):
    return sum(_lgamma(x - j / 2) for j in range(p)) + p * (p - 1) / 4 * math.log(math.pi)


def add(R):
    """Append the rows to op_records (``R``: that module, loaded under its test name)."""
    F32, F64, I64, Sample, arr, rec = R.F32, R.F64, R.I64, R.Sample, R.arr, R.rec
    for name, ref in UNARY_REFS.items():
        lo, hi = _DOMAIN.get(name, (-8, 8))
        rec(f"special.{name}", (lambda n: lambda T, x: getattr(T.special, n)(x))(name), ref,
            [Sample(arr((2, 3), F32, lo, hi)), Sample(arr((7,), F64, lo, hi)), Sample(arr((3,), I64, 1, 4))],
            "float", grad=False, tol=3.0)
    for name in POLYNOMIALS:
        lo = 0.0 if name.startswith("shifted") else -1.0
        rec(f"special.{name}", (lambda n: lambda T, x, k: getattr(T.special, n)(x, k))(name), poly_ref(name),
            [Sample(arr((2, 3), F32, lo, 1), 5), Sample(arr((4,), F64, lo, 1), np.array([0, 1, 3, 9])),
             Sample(arr((3, 1), F64, -3, 3), np.array([-1, 2, 4, 7])), Sample(np.array([1, 2, -1]), 3)],
            "float", grad=False, tol=5.0)
    rec("polygamma", lambda T, x, n=1: T.polygamma(n, x), None,
        [Sample(arr((2, 3), F32, -3.5, 4)), Sample(arr((5,), F64, 0.2, 4)), Sample(arr((4,), F64, -2.9, -2.1), n=3),
         Sample(arr((3,), I64, 1, 4), n=2)], "float", tol=3.0)
    rec("Tensor.polygamma", lambda T, x: x.polygamma(2), None, [Sample(arr((4,), F64, 0.5, 3))], "same")
    rec("mvlgamma", lambda T, x, p=2: T.mvlgamma(x, p), _mvlgamma_ref,
        [Sample(arr((2, 3), F32, 1.5, 5)), Sample(arr((5,), F64, 1.5, 5), p=3),
         Sample(arr((3,), F64, -1.7, -1.2), p=1)], "float", tol=3.0)
    for name in ("igamma", "igammac"):
        rec(name, (lambda n: lambda T, a, x: getattr(T, n)(a, x))(name), None,
            [Sample(arr((2, 3), F32, 0.1, 5), arr((2, 3), F32, 0.1, 5)),
             Sample(arr((4,), F64, 0.5, 30), arr((4,), F64, 0.5, 30)),
             Sample(arr((3, 1), F32, 0.5, 3), arr((4,), F64, 0.5, 3))], "promote", grad=False, tol=3.0)
        # differentiable in its second argument only (torch raises for the first): a constant first argument
        rec(f"{name}[d/dx]", (lambda n: lambda T, x: getattr(T, n)(T.tensor(_A), x))(name), None,
            [Sample(arr((4,), F64, 0.5, 6))], "same", tol=3.0)
    rec("special.zeta[d/dq]", lambda T, q: T.special.zeta(T.tensor([2.0, 3.5, 5.0]), q), None,
        [Sample(arr((3,), F64, 0.5, 4))], "same", tol=3.0)
