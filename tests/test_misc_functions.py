"""tracenn/_api/misc.py, misc_math.py, misc_reduce.py, windows.py: values against NumPy or known values,
against PyTorch (skipped without it), gradients against PyTorch, compiled equal to eager, torch's errors."""
import numpy as np
import pytest

import tracenn
from helpers import to_np

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
    "isclose_uint8": (lambda T, i, j: T.isclose(i, j, rtol=0.1, atol=2), [I.astype(np.uint8), J.astype(np.uint8)],
                      False, True),
    "diag_vec": (lambda T, v: T.diag(v, -1), [V], True, True),
    "diag_mat": (lambda T, x: x.diag(1), [A], True, True),
    "diagflat": (lambda T, x: T.diagflat(x[:2, :2], 1), [A], True, True),
    "ravel": (lambda T, x: x.t().ravel(), [A], True, True),
    "unfold": (lambda T, x: x.unfold(1, 2, 1), [A], True, True),
    "unfold_step": (lambda T, x: x.unfold(0, 2, 2).unfold(1, 3, 1), [BATCH], True, True),
    "unfold_0d": (lambda T, x: (x[0, 0].unfold(0, 1, 1), x[0, 0].unfold(-1, 0, 1)), [A], True, True),
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
    "trapezoid_uint8_wraps": (lambda T, i, j: (T.trapezoid(i), T.trapezoid(i, j[0])), [I.astype(np.uint8), J], False,
                              True),
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


# ---- without torch: NumPy references and known values -------------------------------------------

def _np_unfold(x, dim, size, step):
    w = np.lib.stride_tricks.sliding_window_view(x, size, axis=dim)
    return np.take(w, np.arange(0, w.shape[dim], step), axis=dim)


def _np_put(x, fn):
    out = x.copy()
    fn(out)
    return out


def _np_renorm(x, p, dim, maxnorm):
    axes = tuple(k for k in range(x.ndim) if k != dim)
    norm = np.sum(np.abs(x) ** p, axis=axes, keepdims=True) ** (1 / p)
    return x * np.where(norm > maxnorm, maxnorm / (norm + 1e-7), 1)


_PERIODIC = lambda f, n: f(n + 1)[:-1]  # noqa: E731  numpy's windows are symmetric

# name: (tracenn call, numpy reference, inputs)
NUMPY = {
    "isclose": (lambda T, x, y: T.isclose(x, y, rtol=1e-2, atol=0.1), lambda x, y: np.isclose(x, y, 1e-2, 0.1),
                [A, A + RNG.uniform(-0.2, 0.2, A.shape).astype(np.float32)]),
    "isclose_nan": (lambda T, x: T.isclose(x, x, equal_nan=True), lambda x: np.isclose(x, x, equal_nan=True), [NANS]),
    "diag_1d": (lambda T, v: T.diag(v, 2), lambda v: np.diag(v, 2), [V]),
    "diag_2d": (lambda T, x: T.diag(x, -1), lambda x: np.diag(x, -1), [A]),
    "diagflat": (lambda T, x: T.diagflat(x, -2), lambda x: np.diagflat(x, -2), [A]),
    "ravel": (lambda T, x: x.t().ravel(), lambda x: x.T.ravel(), [A]),
    "unfold": (lambda T, b: b.unfold(2, 3, 1), lambda b: _np_unfold(b, 2, 3, 1), [BATCH]),
    "unfold_step": (lambda T, b: b.unfold(-1, 2, 3), lambda b: _np_unfold(b, 2, 2, 3), [BATCH]),
    "index_copy": (lambda T, x, s: T.index_copy(x, 0, T.tensor(IDX), s[:2]),
                   lambda x, s: _np_put(x, lambda o: o.__setitem__(IDX, s[:2])), [A, A]),
    "select_scatter": (lambda T, x, v: T.select_scatter(x, v[:3], 1, 2),
                       lambda x, v: _np_put(x, lambda o: o.__setitem__((slice(None), 2), v[:3])), [A, V]),
    "slice_scatter": (lambda T, x, s: T.slice_scatter(x, s[:2], 0, 0, 3, 2),
                      lambda x, s: _np_put(x, lambda o: o.__setitem__(slice(0, 3, 2), s[:2])), [A, A]),
    "diagonal_scatter": (lambda T, x, v: T.diagonal_scatter(x, v[:3], -1),
                         lambda x, v: _np_put(x, lambda o: o.__setitem__((np.arange(1, 4), np.arange(3)), v[:3])),
                         [SQ, V]),
    "copysign": (lambda T, x, y: T.copysign(x, y), np.copysign, [A, SQ[:3]]),
    "deg2rad": (lambda T, x: T.deg2rad(x), np.deg2rad, [A]),
    "rad2deg": (lambda T, x: T.rad2deg(x), np.rad2deg, [A]),
    "heaviside": (lambda T, x: T.heaviside(T.round(x), T.tensor(0.5)), lambda x: np.heaviside(np.round(x), 0.5), [A]),
    "gcd": (lambda T, i, j: T.gcd(i, j), np.gcd, [I, J]),
    "lcm": (lambda T, i, j: T.lcm(i, j), np.lcm, [I, J]),
    "gcd_int32_broadcast": (lambda T, i, j: T.gcd(i.int(), j[0].int()), lambda i, j: np.gcd(i, j[0]).astype(np.int32),
                            [I * 7919, J * 104729]),
    "logaddexp2": (lambda T, x, y: T.logaddexp2(x * 80, y), lambda x, y: np.logaddexp2(x * 80, y), [A, SQ[:3]]),
    "logit_eps": (lambda T, p: T.logit(p * 1.2 - 0.1, eps=0.1),
                  lambda p: (lambda q: np.log(q / (1 - q)))(np.clip(p * 1.2 - 0.1, 0.1, 0.9)), [P]),
    "sinc": (lambda T, x: T.sinc(x), np.sinc, [A]),
    "i0": (lambda T, x: T.i0(x), np.i0, [A]),
    "isin": (lambda T, i, j: T.isin(i, j), np.isin, [I, J]),
    "isin_invert": (lambda T, i, j: T.isin(i, j, invert=True), lambda i, j: np.isin(i, j, invert=True), [I, J]),
    "isneginf": (lambda T, s: T.isneginf(s), np.isneginf, [SPECIAL]),
    "isposinf": (lambda T, s: T.isposinf(s), np.isposinf, [SPECIAL]),
    "isreal": (lambda T, x: T.isreal(x), np.isreal, [A]),
    "frexp": (lambda T, s: T.frexp(s), lambda s: tuple(x.astype(np.int32) if x.dtype.kind == "i" else x
                                                        for x in np.frexp(s)), [SPECIAL]),
    "ldexp": (lambda T, x, i: T.ldexp(x[:2], i % 5), lambda x, i: np.ldexp(x[:2], i % 5), [A, I]),
    "nextafter": (lambda T, s, y: T.nextafter(s, y), np.nextafter, [SPECIAL, SPECIAL[::-1].copy()]),
    "trapezoid": (lambda T, x: T.trapezoid(x), lambda x: np.trapezoid(x), [A]),
    "trapezoid_x": (lambda T, x, v: T.trapezoid(x, v.cumsum(0)), lambda x, v: np.trapezoid(x, v.cumsum(0)), [A, V]),
    "trapz_dx": (lambda T, x: T.trapz(x, dx=0.5, dim=0), lambda x: np.trapezoid(x, dx=0.5, axis=0), [A]),
    "cumulative_trapezoid": (lambda T, x: T.cumulative_trapezoid(x, dx=2.0),
                             lambda x: np.cumsum((x[:, 1:] + x[:, :-1]) / 2 * 2.0, axis=1), [A]),
    "vdot": (lambda T, v: T.vdot(v, v * 2), lambda v: np.vdot(v, v * 2), [V]),
    "cross": (lambda T, x, y: T.cross(x.t(), y.t()), lambda x, y: np.cross(x.T, y.T, axis=0), [V3, V3[::-1].copy()]),
    "chain_matmul": (lambda T, x, s: T.chain_matmul(x, s, s), lambda x, s: x @ s @ s, [A, SQ]),
    "addbmm": (lambda T, x, b: T.addbmm(x[:3, :3], b, b.transpose(1, 2), beta=0.5, alpha=2),
               lambda x, b: 0.5 * x[:3, :3] + 2 * (b @ b.transpose(0, 2, 1)).sum(0), [SQ, BATCH]),
    "addr": (lambda T, x, v: T.addr(x, v[:3], v, beta=2), lambda x, v: 2 * x + np.outer(v[:3], v), [A, V]),
    "addr_beta0_nan": (lambda T, x, v: T.addr(x, v[:2], v, beta=0), lambda x, v: np.outer(v[:2], v), [NANS, V]),
    "renorm": (lambda T, x: T.renorm(x, 2, 0, 1.5), lambda x: _np_renorm(x, 2, 0, 1.5), [A]),
    "renorm_p3": (lambda T, b: T.renorm(b, 3, 1, 1.0), lambda b: _np_renorm(b, 3, 1, 1.0), [BATCH]),
    "hsplit": (lambda T, x: T.hsplit(x, 2), lambda x: tuple(np.hsplit(x, 2)), [A]),
    "vsplit": (lambda T, x: T.vsplit(x, [1, 2]), lambda x: tuple(np.vsplit(x, [1, 2])), [A]),
    "dsplit": (lambda T, b: T.dsplit(b, 4), lambda b: tuple(np.dsplit(b, 4)), [BATCH]),
    "unravel_index": (lambda T, i: T.unravel_index(i.abs(), (4, 5)),
                      lambda i: np.unravel_index(np.abs(i), (4, 5)), [I]),
    "nanmedian_odd": (lambda T, x: T.nanmedian(x, 1).values, lambda x: np.nanmedian(x, 1),
                      [np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 5.0, 0.5, np.nan]], dtype=np.float32)]),
    "gradient": (lambda T, x: T.gradient(x), lambda x: tuple(np.gradient(x)), [A]),
    "gradient_edge2": (lambda T, b: T.gradient(b, spacing=[2.0, 0.5], dim=[1, 2], edge_order=2),
                       lambda b: tuple(np.gradient(b, 2.0, 0.5, axis=(1, 2), edge_order=2)), [BATCH]),
    "gradient_coords": (lambda T, x, v: T.gradient(x, spacing=(T.tensor([0.0, 0.5, 2.0]),
                                                               T.tensor([0.0, 1.0, 1.5, 4.0])), edge_order=2),
                        lambda x, v: tuple(np.gradient(x, np.array([0.0, 0.5, 2.0]), np.array([0.0, 1.0, 1.5, 4.0]),
                                                       edge_order=2)), [A, V]),
    "hann_window": (lambda T: T.hann_window(8), lambda: _PERIODIC(np.hanning, 8), []),
    "hamming_window_sym": (lambda T: T.hamming_window(7, False), lambda: np.hamming(7), []),
    "blackman_window": (lambda T: T.blackman_window(9, dtype=T.float64), lambda: _PERIODIC(np.blackman, 9), []),
    "bartlett_window_sym": (lambda T: T.bartlett_window(6, periodic=False), lambda: np.bartlett(6), []),
    "kaiser_window": (lambda T: T.kaiser_window(7, True, 6.0), lambda: np.kaiser(8, 6.0)[:-1], []),
}


@pytest.mark.parametrize("name", list(NUMPY))
def test_values_match_numpy(name):
    fn, ref, inputs = NUMPY[name]
    out = fn(tracenn, *[tracenn.tensor(a) for a in inputs])
    expected = ref(*inputs)
    outs = _flat(out)
    exps = list(expected) if isinstance(expected, tuple) else [expected]
    assert len(outs) == len(exps)
    for o, e in zip(outs, exps):
        o = to_np(o)
        e = np.asarray(e)
        assert o.shape == e.shape, (o.shape, e.shape)
        if e.dtype.kind == "f" and o.dtype.kind == "f":
            np.testing.assert_allclose(o, e.astype(o.dtype), rtol=2e-5, atol=1e-6, equal_nan=True)
        else:
            np.testing.assert_array_equal(o, e)


def test_known_values():
    T = tracenn
    assert T.allclose(T.tensor([1.0, float("nan")]), T.tensor([1.0, float("nan")]), equal_nan=True) is True
    assert T.tensor([1.0, 2.0]).allclose(T.tensor([1.0, 2.1])) is False
    assert to_np(T.isclose(T.tensor([True, False]), T.tensor([True, True]))).tolist() == [True, False]
    assert to_np(T.isclose(T.tensor([float("inf"), 1.0]), T.tensor([float("inf"), 1.0]))).tolist() == [True, True]
    x = T.ones(2, requires_grad=True)
    assert T.detach(x).requires_grad is False
    assert to_np(T.mode(T.tensor([[1, 2, 2, 3, 3], [4, 4, 1, 1, 0]])).values).tolist() == [2, 1]
    assert to_np(T.mode(T.tensor([[1, 2, 2, 3, 3], [4, 4, 1, 1, 0]])).indices).tolist() == [2, 3]
    u, inv, cnt = T.unique_consecutive(T.tensor([1, 1, 2, 2, 3, 1, 1]), return_inverse=True, return_counts=True)
    assert to_np(u).tolist() == [1, 2, 3, 1] and to_np(cnt).tolist() == [2, 2, 1, 2]
    assert to_np(inv).tolist() == [0, 0, 1, 1, 2, 3, 3]
    assert [to_np(c).item() for c in T.unravel_index(-1, (2, 4))] == [1, 3]
    assert T.tensor([0.0]).is_nonzero() is False and T.is_nonzero(T.tensor([[3]])) is True
    assert T.is_same_size(T.ones(2, 3), T.zeros(2, 3)) and not T.ones(2).is_same_size(T.ones(3))
    assert T.ones(1).is_signed() and T.ones(1, dtype=T.int8).is_signed() and not T.ones(1, dtype=T.uint8).is_signed()
    np.testing.assert_array_equal(to_np(T.fill(T.zeros(2, dtype=T.int64), 3)), [3, 3])
    np.testing.assert_array_equal(to_np(T.ones(2, 3, 4).sum_to_size(3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(to_np(T.hann_window(0)), np.zeros(0))
    np.testing.assert_array_equal(to_np(T.hann_window(1)), [1.0])
    np.testing.assert_array_equal(to_np(T.heaviside(T.tensor([-1.0, 0.0, 2.0]), T.tensor([0.5]))), [0.0, 0.5, 1.0])
    assert to_np(T.copysign(T.tensor([1, 2]), -0.0)).tolist() == [-1.0, -2.0]
    assert T.frexp(T.tensor([8.0])).exponent.dtype == T.int32
    assert to_np(T.cross(T.tensor([[1.0, 0, 0]]), T.tensor([[0.0, 1, 0]]))).tolist() == [[0.0, 0.0, 1.0]]
    assert T.trapezoid(T.tensor([1, 2, 3])).dtype == T.float32
    assert T.vdot(T.tensor([1, 2], dtype=T.int32), T.tensor([3, 4], dtype=T.int32)).dtype == T.int32
    u3, u250 = T.tensor([3], dtype=T.uint8), T.tensor([250], dtype=T.uint8)
    assert not T.isclose(u3, u250, atol=20).item()  # the error is 247, not 3 - 250 wrapped to 9
    assert T.deg2rad(T.tensor([180])).dtype == T.float32
    assert len(T.gradient(T.ones(3, 4))) == 2
    assert T.kaiser_window(4, dtype=T.float64).dtype == T.float64
    assert T.multinomial(T.tensor([0.0, 1.0]), 2, True).tolist() == [1, 1]
    assert T.tensor([0.0, 1.0]).multinomial(1).tolist() == [1]
    np.testing.assert_array_equal(to_np(T.tensor([-1.0, 0.2, 0.75]).hardshrink()), [-1.0, 0.0, 0.75])
    np.testing.assert_allclose(to_np(T.tensor([-1.0, 2.0]).prelu(T.tensor([0.25]))), [-0.25, 2.0])


@pytest.mark.parametrize("shape,wrap", [((3, 3), False), ((5, 3), False), ((7, 3), True), ((3, 5), True),
                                        ((3, 3, 3), False)])
def test_fill_diagonal_(shape, wrap):
    x = tracenn.zeros(*shape)
    assert x.fill_diagonal_(2.0, wrap=wrap) is x
    expected = np.zeros(shape, dtype=np.float32)
    np.fill_diagonal(expected, 2.0, wrap=wrap)
    np.testing.assert_array_equal(to_np(x), expected)


INPLACE = {  # method_: (args after self, input)
    "index_copy_": (lambda T: (0, T.tensor(IDX), T.ones(2, 4)), A),
    "copysign_": (lambda T: (T.tensor(SQ[:3]),), A),
    "deg2rad_": (lambda T: (), A),
    "rad2deg_": (lambda T: (), A),
    "heaviside_": (lambda T: (T.tensor(0.5),), A),
    "gcd_": (lambda T: (T.tensor(J),), I),
    "lcm_": (lambda T: (T.tensor(J),), I),
    "logit_": (lambda T: (0.1,), P),
    "sinc_": (lambda T: (), A),
    "i0_": (lambda T: (), A),
    "ldexp_": (lambda T: (T.tensor([[1], [2], [3]]),), A),
    "nextafter_": (lambda T: (T.zeros(4),), A),
    "addbmm_": (lambda T: (T.tensor(BATCH[:, :, :3]), T.tensor(BATCH[:, :3, :])), SQ[:3, :]),
    "addr_": (lambda T: (T.tensor(V[:3]), T.tensor(V)), A),
    "renorm_": (lambda T: (2, 0, 1.0), A),
}


@pytest.mark.parametrize("name", list(INPLACE))
def test_inplace_equals_out_of_place(name):
    T = tracenn
    args, data = INPLACE[name]
    x = T.tensor(data)
    expected = getattr(x, name[:-1])(*args(T))
    assert getattr(x, name)(*args(T)) is x
    _close(x, expected)


def test_errors():
    T = tracenn
    with pytest.raises(RuntimeError, match="Float did not match Double"):
        T.isclose(T.ones(2), T.ones(2, dtype=T.float64))
    with pytest.raises(TypeError, match="must be Tensor, not float"):
        T.isclose(T.ones(2), 1.0)
    with pytest.raises(RuntimeError, match="rtol must be greater than or equal to zero, but got -1"):
        T.isclose(T.ones(2), T.ones(2), rtol=-1)
    with pytest.raises(RuntimeError, match=r"diag\(\): Supports 1D or 2D tensors. Got 3D"):
        T.diag(T.ones(2, 2, 2))
    with pytest.raises(RuntimeError, match="maximum size for tensor at dimension 0 is 5 but size is 6"):
        T.ones(5).unfold(0, 6, 1)
    with pytest.raises(RuntimeError, match="step is 0 but must be > 0"):
        T.ones(5).unfold(0, 2, 0)
    with pytest.raises(RuntimeError, match="all dimensions of input must be of equal length"):
        T.ones(2, 3, 4).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="dimensions must larger than 1"):
        T.ones(3).fill_diagonal_(1)
    with pytest.raises(RuntimeError, match="Destination slice shape: 2 at dimension 1 and source slice shape: 3"):
        T.ones(3, 2).index_copy(0, T.tensor([0]), T.ones(1, 3))
    with pytest.raises(RuntimeError, match="Expected a long tensor for index, but got Float"):
        T.ones(3, 2).index_copy(0, T.tensor([0.0]), T.ones(1, 2))
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        T.ones(3, 2).index_copy(0, T.tensor([5]), T.ones(1, 2))
    with pytest.raises(RuntimeError, match=r"same dtype, but got \(self\) Float and \(source\) Double"):
        T.ones(3, 2).index_copy(0, T.tensor([0]), T.ones(1, 2, dtype=T.float64))
    with pytest.raises(RuntimeError, match=r"src size = \[3\], slice size = \[2\]"):
        T.select_scatter(T.ones(3, 2), T.ones(3), 0, 0)
    with pytest.raises(RuntimeError, match=r"src size = \[3, 2\], slice size = \[2, 2\]"):
        T.slice_scatter(T.ones(3, 2), T.ones(3, 2), 0, 1)
    with pytest.raises(RuntimeError, match=r"src size = \[3\], slice size = \[2\]"):
        T.diagonal_scatter(T.ones(3, 2), T.ones(3))
    with pytest.raises(RuntimeError, match="heaviside is not yet implemented for tensors with different dtypes"):
        T.heaviside(T.tensor([1, 2]), T.tensor([0.5]))
    with pytest.raises(RuntimeError, match="\"gcd_cpu\" not implemented for 'Float'"):
        T.gcd(T.ones(2), T.ones(2))
    with pytest.raises(RuntimeError, match="\"logaddexp2_cpu\" not implemented for 'Long'"):
        T.logaddexp2(T.tensor([1]), T.tensor([1]))
    with pytest.raises(RuntimeError, match=r"torch.frexp\(\) only supports floating-point dtypes"):
        T.frexp(T.tensor([1]))
    with pytest.raises(RuntimeError, match="1D tensors expected, but got 1D and 2D tensors"):
        T.vdot(T.ones(3), T.ones(2, 3))
    with pytest.raises(RuntimeError, match="expected both vectors to have same dtype, but found Float and Double"):
        T.vdot(T.ones(3), T.ones(3, dtype=T.float64))
    with pytest.raises(RuntimeError, match="inputs must have the same number of dimensions"):
        T.cross(T.ones(2, 3), T.ones(3))
    with pytest.raises(RuntimeError, match="no dimension of size 3 in input"):
        T.cross(T.ones(2, 4), T.ones(2, 4))
    with pytest.raises(RuntimeError, match="Expected one or more matrices"):
        T.chain_matmul()
    with pytest.raises(RuntimeError, match="addr: Expected 1-D argument vec1, but got 2-D"):
        T.addr(T.ones(2, 3), T.ones(2, 1), T.ones(3))
    with pytest.raises(RuntimeError, match="renorm: input needs at least 2 dimensions, got 1 dimensions"):
        T.renorm(T.ones(3), 2, 0, 1)
    with pytest.raises(RuntimeError, match="renorm: non-positive-norm not supported"):
        T.renorm(T.ones(2, 2), -1, 0, 1)
    with pytest.raises(RuntimeError, match="torch.hsplit requires a tensor with at least 1 dimension"):
        T.hsplit(T.ones(()), 2)
    with pytest.raises(RuntimeError, match="size of the dimension 3 is not divisible by the split_size 2"):
        T.hsplit(T.ones(3, 3), 2)
    with pytest.raises(RuntimeError, match="torch.vsplit requires a tensor with at least 2 dimension"):
        T.vsplit(T.ones(3), 2)
    with pytest.raises(RuntimeError, match=r"size \{\[3, 3\]\} is not expandable to size \{\[2, 3\]\}"):
        T.ones(2, 3).sum_to_size(3, 3)
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        T.ones(2).is_nonzero()
    with pytest.raises(TypeError, match="expected 'indices' to be integer dtype, but got torch.float32"):
        T.unravel_index(T.tensor(1.0), (2, 4))
    with pytest.raises(IndexError, match="Expected reduction dim 0 to have non-zero size"):
        T.mode(T.ones(0, 2), 0)
    with pytest.raises(RuntimeError, match="hann_window expects floating point dtypes"):
        T.hann_window(4, dtype=T.int64)
    with pytest.raises(RuntimeError, match="Unsupported input type encountered for isin"):
        T.isin(T.tensor([True]), T.tensor([True]))
    with pytest.raises(RuntimeError, match="trapezoid: received a bool input for `y`"):
        T.trapezoid(T.tensor([True, False]))
    with pytest.raises(RuntimeError, match="torch.gradient does not support uint8 input"):
        T.gradient(T.ones(3, dtype=T.uint8))
    with pytest.raises(TypeError, match="pass x or dx, not both"):
        T.trapezoid(T.ones(3), T.ones(3), dx=1.0)
    with pytest.raises(RuntimeError, match="only supports edge_order=1 and edge_order=2"):
        T.gradient(T.ones(3), edge_order=3)
    with pytest.raises(RuntimeError, match="expected each dimension size to be at least edge_order"):
        T.gradient(T.ones(2), edge_order=2)
    with pytest.raises(RuntimeError, match="a list of length equal to 'self.dim\\(\\) = 2'"):
        T.gradient(T.ones(3, 3), spacing=[1.0, 2.0, 3.0])


def test_errors_match_torch_types():
    torch = pytest.importorskip("torch")
    calls = [lambda T: T.diag(T.ones(2, 2, 2)), lambda T: T.ones(5).unfold(0, 6, 1),
             lambda T: T.ones(3, 2).index_copy(0, T.tensor([5]), T.ones(1, 2)),
             lambda T: T.vdot(T.ones(3), T.ones(2, 3)), lambda T: T.unravel_index(T.tensor(1.0), (2, 4)),
             lambda T: T.mode(T.ones(0, 2), 0), lambda T: T.nanmedian(T.ones(0, 2), 0),
             lambda T: T.gcd(T.ones(2), T.ones(2)), lambda T: T.ones(2, 3).sum_to_size(3, 3)]
    for call in calls:
        with pytest.raises(Exception) as ours:
            call(tracenn)
        with pytest.raises(Exception) as theirs:
            call(torch)
        assert isinstance(ours.value, type(theirs.value)) or issubclass(type(theirs.value), type(ours.value)) \
            or (type(theirs.value) is NotImplementedError and isinstance(ours.value, RuntimeError)), \
            (ours.value, theirs.value)
