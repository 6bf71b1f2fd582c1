"""tracenn/_api/misc.py, misc_math.py, misc_reduce.py, windows.py: values against NumPy or known values,
against PyTorch (skipped without it), gradients against PyTorch, compiled equal to eager, torch's errors."""
import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4)).astype(np.float32)
SQ = RNG.standard_normal((4, 4)).astype(np.float32)
V = RNG.standard_normal(4).astype(np.float32)
V3 = RNG.standard_normal((2, 3)).astype(np.float32)
P = RNG.uniform(0.05, 0.95, (3, 4)).astype(np.float32)
BATCH = RNG.standard_normal((2, 3, 4)).astype(np.float32)
I = np.array([[12, -9, 0, 7], [0, 6, -4, 15]], dtype=np.int64)
J = np.array([[18, 6, 5, 0], [0, -4, 6, 10]], dtype=np.int64)
NANS = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 4.0, np.nan, 0.5]], dtype=np.float32)
MODE = np.array([[1, 2, 2, 3, 3], [4, 4, 1, 1, 0]], dtype=np.float32)
SPECIAL = np.array([0.0, -0.0, 1.5, -3.0, np.inf, -np.inf, np.nan, 1e-40], dtype=np.float32)
IDX = np.array([2, 0], dtype=np.int64)

# name: (call on a namespace T and the tensors, inputs, differentiable, compiled)
CASES = {
    "isclose": (lambda T, x: T.isclose(x, x + 1e-6, rtol=0, atol=1e-5), [A], False, True),
    "isclose_nan": (lambda T, x: T.isclose(x, x, equal_nan=True), [NANS], False, True),
    "isclose_int": (lambda T, i, j: T.isclose(i, j, rtol=0.5, atol=1), [I, J], False, True),
    "diag_vec": (lambda T, v: T.diag(v, -1), [V], True, True),
    "diag_mat": (lambda T, x: x.diag(1), [A], True, True),
    "diagflat": (lambda T, x: T.diagflat(x[:2, :2], 1), [A], True, True),
    "ravel": (lambda T, x: x.t().ravel(), [A], True, True),
    "unfold": (lambda T, x: x.unfold(1, 2, 1), [A], True, True),
    "unfold_step": (lambda T, x: x.unfold(0, 2, 2).unfold(1, 3, 1), [BATCH], True, True),
    "index_copy": (lambda T, x, s: x.index_copy(1, T.tensor([3, 0]), s[:, :2]), [A, A], True, True),
    "select_scatter": (lambda T, x, v: T.select_scatter(x, v, 0, -1), [A, V], True, True),
    "slice_scatter": (lambda T, x, s: T.slice_scatter(x, s[:, :2], 1, 1, None, 2), [A, A], True, True),
    "diagonal_scatter": (lambda T, x, v: T.diagonal_scatter(x, v[:3], 1, 1, 0), [SQ, V], True, True),
    "diagonal_scatter_3d": (lambda T, x, s: T.diagonal_scatter(x, s[:2, :3], -1, 2, 1), [BATCH, A], True, True),
    "copysign": (lambda T, x, y: T.copysign(x, y), [A, SQ[:3]], True, True),
    "copysign_int": (lambda T, i: T.copysign(i, -1), [I], False, True),
    "deg2rad": (lambda T, x: T.deg2rad(x * 90), [A], True, True),
    "rad2deg_int": (lambda T, i: T.rad2deg(i), [I], False, True),
    "heaviside": (lambda T, x: T.heaviside(T.round(x), T.tensor(0.5)), [A], False, True),
    "gcd": (lambda T, i, j: T.gcd(i, j), [I, J], False, True),
    "lcm": (lambda T, i, j: i.lcm(j), [I, J], False, True),
    "logaddexp2": (lambda T, x, y: T.logaddexp2(x * 50, y), [A, SQ[:3]], True, True),
    "logit_eps": (lambda T, p: T.logit(p * 1.2 - 0.1, eps=0.1), [P], True, True),
    "sinc": (lambda T, x: T.sinc(x), [A], True, True),
    "i0": (lambda T, x: x.i0(), [A], True, True),
    "isin": (lambda T, i, j: T.isin(i, j), [I, J], False, True),
    "isin_invert": (lambda T, i: T.isin(i, 6, invert=True), [I], False, True),
    "isneginf": (lambda T, s: T.isneginf(s), [SPECIAL], False, True),
    "isposinf": (lambda T, s: s.isposinf(), [SPECIAL], False, True),
    "isreal": (lambda T, x: T.isreal(x), [A], False, True),
    "frexp": (lambda T, s: T.frexp(s), [SPECIAL], False, True),
    "ldexp": (lambda T, x, i: T.ldexp(x[:2], i % 5), [A, I], True, True),
    "nextafter": (lambda T, s, x: T.nextafter(s, T.tensor([1.0, -1.0, 2.0, -4.0, 0.0, 0.0, 1.0, -1.0])),
                  [SPECIAL, A], False, True),
    "trapezoid": (lambda T, x: T.trapezoid(x), [A], True, True),
    "trapezoid_x": (lambda T, x, v: T.trapezoid(x, v.cumsum(0), dim=1), [A, V], True, True),
    "trapezoid_dx": (lambda T, x: T.trapz(x, dx=0.5, dim=0), [A], True, True),
    "trapezoid_int": (lambda T, i: T.trapezoid(i), [I], False, True),
    "cumulative_trapezoid": (lambda T, x: T.cumulative_trapezoid(x, dx=2.0), [A], True, True),
    "vdot": (lambda T, v: T.vdot(v, v * 2), [V], True, True),
    "cross": (lambda T, x, y: T.cross(x, y), [V3, V3[::-1].copy()], True, True),
    "chain_matmul": (lambda T, x, s: T.chain_matmul(x, s, s.t()), [A, SQ], True, True),
    "addbmm": (lambda T, x, b: T.addbmm(x[:3, :3], b, b.transpose(1, 2), beta=0.5, alpha=2), [SQ, BATCH], True, True),
    "addr": (lambda T, x, v: x.addr(v[:3], v, alpha=3), [A, V], True, True),
    "renorm": (lambda T, x: T.renorm(x, 2, 0, 1.5), [A], True, True),
    "renorm_p1": (lambda T, x: x.renorm(1, 1, 1.0), [A], True, True),
    "hsplit": (lambda T, x: T.hsplit(x, 2), [A], True, True),
    "vsplit": (lambda T, x: T.vsplit(x, [1]), [A], True, True),
    "dsplit": (lambda T, b: b.dsplit([1, 3]), [BATCH], True, True),
    "unravel_index": (lambda T, i: T.unravel_index(i, (3, 5)), [I], False, True),
    "unique_consecutive": (lambda T, i: T.unique_consecutive(i // 10, return_inverse=True, return_counts=True),
                           [I], False, False),
    "unique_consecutive_dim": (lambda T, x: T.unique_consecutive(x, return_counts=True, dim=1),
                               [np.array([[1, 1, 2, 2], [3, 3, 4, 5]])], False, False),
    "nanmedian": (lambda T, x: T.nanmedian(x), [NANS], True, True),
    "nanmedian_dim": (lambda T, x: T.nanmedian(x, 1, keepdim=True), [NANS], True, True),
    "mode": (lambda T, m: T.mode(m), [MODE], True, True),
    "mode_dim0": (lambda T, m: m.mode(0), [MODE], True, True),
    "sum_to_size": (lambda T, b: b.sum_to_size(3, 1), [BATCH], True, True),
    "fill": (lambda T, x: T.fill(x, 2.5), [A], False, True),
    "prelu": (lambda T, x: x.prelu(T.tensor([0.25])), [A], True, True),
    "hardshrink": (lambda T, x: x.hardshrink(0.3), [A], True, True),
    "gradient": (lambda T, x: T.gradient(x), [A], True, True),
    "gradient_edge2": (lambda T, x: T.gradient(x, spacing=2.0, dim=1, edge_order=2), [A], True, True),
    "gradient_coords": (lambda T, x, v: T.gradient(x, spacing=(v.cumsum(0).abs() + T.arange(4),), dim=1,
                                                   edge_order=2), [A, V], True, True),
    "gradient_int": (lambda T, i: T.gradient(i, spacing=[2.0, 1.0]), [I], False, True),
    "hann_window": (lambda T: T.hann_window(6), [], False, True),
    "hamming_window": (lambda T: T.hamming_window(5, periodic=False, alpha=0.5, beta=0.4), [], False, True),
    "blackman_window": (lambda T: T.blackman_window(7, dtype=T.float64), [], False, True),
    "bartlett_window": (lambda T: T.bartlett_window(5), [], False, True),
    "kaiser_window": (lambda T: T.kaiser_window(6, True, 8.0), [], False, True),
    "kaiser_window_sym": (lambda T: T.kaiser_window(6, False, 5.0), [], False, True),
}


def _run(lib, name, grad=False):
    fn, inputs, _, _ = CASES[name]
    ts = [lib.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in inputs]
    return fn(lib, *ts), ts


def _flat(out):
    return list(out) if isinstance(out, tuple) else [out]


def _close(a, b):
    a, b = to_np(a), to_np(b)
    assert a.shape == b.shape and str(a.dtype) == str(b.dtype), (a.shape, b.shape, a.dtype, b.dtype)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[3]])
def test_compiled_equals_eager(name):
    out, ts = _run(tracenn, name)
    compiled = tracenn.compile(lambda *xs: CASES[name][0](tracenn, *xs))
    for c, e in zip(_flat(compiled(*ts)), _flat(out)):
        _close(c, e)


@pytest.mark.parametrize("name", list(CASES))
def test_values_match_torch(name):
    torch = pytest.importorskip("torch")
    out, _ = _run(tracenn, name)
    tout, _ = _run(torch, name)
    outs, touts = _flat(out), _flat(tout)
    assert len(outs) == len(touts)
    for o, t in zip(outs, touts):
        _close(o, t)


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    out, ts = _run(tracenn, name, grad=True)
    tout, tts = _run(torch, name, grad=True)
    w_rng = np.random.default_rng(1)
    loss, tloss = 0, 0
    for o, t in zip(_flat(out), _flat(tout)):
        if not hasattr(o, "is_floating_point") or not o.is_floating_point():
            continue
        w = w_rng.standard_normal(tuple(o.shape)).astype(np.float32)
        finite = np.isfinite(to_np(o))
        loss = loss + (tracenn.where(tracenn.tensor(finite), o, 0) * tracenn.tensor(w)).sum()
        tloss = tloss + (torch.where(torch.tensor(finite), t, 0) * torch.tensor(w)).sum()
    loss.backward()
    tloss.backward()
    for t, tt in zip(ts, tts):
        if tt.grad is None or t.grad is None:  # (one side may leave a zero gradient as None)
            assert not any(g is not None and to_np(g).any() for g in (t.grad, tt.grad))
        else:
            np.testing.assert_allclose(to_np(t.grad), tt.grad.numpy(), rtol=1e-4, atol=1e-5)
