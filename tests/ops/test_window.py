"""The windowed ops' lowerings (tracenn/ops/window.py): pooling forward and gradients, conv_transpose.

Max/sum pooling run as strided slices (forward) and per-phase shifts (gradient); these tests pin them
to ``lax.reduce_window`` and to a NumPy loop with torch's gradient rule (each output's gradient goes
to the first maximum of its window in row-major order; a NaN maximum to the last NaN), over windows,
strides, paddings and dilations in 1-3 dims. Each op's ``impl`` is a ``jax.custom_vjp``: JAX's
derivative of it (the compiler's path, under ``jax.jit``) must equal the op's vjp rule (eager's).
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tracenn.ops import OPS

RW, ARGMAX, CONV_T = OPS["reduce_window"], OPS["window_argmax"], OPS["conv_transpose"]
SPATIAL = {1: (13,), 2: (9, 10), 3: (7, 6, 8)}


def _geometries(nd):
    for k, s, p, d in itertools.product((1, 2, 3), (1, 2, 3), (0, 1), (1, 2)):
        if p > (d * (k - 1) + 1) // 2 or (nd == 3 and k == 1):
            continue
        pads = ((p, p + (s > 1)),) * nd  # the extra high pad: ceil_mode's last partial window
        outs = [(n + p + p + (s > 1) - d * (k - 1) - 1) // s + 1 for n in SPATIAL[nd]]
        # as torch's pooling geometry: some output, and the last window starts inside input or low pad
        if all(o >= 1 and (o - 1) * s < n + p for o, n in zip(outs, SPATIAL[nd])):
            yield (k,) * nd, (s,) * nd, pads, (d,) * nd


GRID = [(nd,) + geo for nd in (1, 2, 3) for geo in _geometries(nd)]
DEFAULT = [c for c in GRID if c[0] == 2 or c[1][0] == c[2][0]]  # all 2-d; 1-d/3-d: stride == window


def _ids(c):
    nd, w, s, p, d = c
    return f"{nd}d-k{w[0]}-s{s[0]}-p{p[0][0]}-d{d[0]}"


def _input(nd, dtype=np.float32, seed=0, nan=False):
    """Small integers: many ties inside windows, so the first-maximum rule is exercised."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal((2, 3) + SPATIAL[nd]) * 1.5)
    if nan:
        x[0, 0].flat[::4] = np.nan
    return x.astype(dtype)


def _windows(x_shape, window, strides, padding, dilation):
    """Yield (output index, list of input indices of its window in row-major order, padding skipped)."""
    nd = len(window)
    sp = x_shape[-nd:]
    outs = [(n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, k, s, (lo, hi), d in zip(sp, window, strides, padding, dilation)]
    for o in itertools.product(*map(range, outs)):
        idx = []
        for t in itertools.product(*map(range, window)):
            q = tuple(oi * s - lo + ti * d for oi, s, (lo, _), ti, d in zip(o, strides, padding, t, dilation))
            if all(0 <= qi < n for qi, n in zip(q, sp)):
                idx.append(q)
        yield o, idx


def ref_pool(x, kind, window, strides, padding, dilation, g=None):
    """NumPy forward (and input gradient for cotangent ``g``) with torch's first-maximum rule."""
    nd = len(window)
    lead = x.shape[:-nd]
    outs = [o for o, _ in _windows(x.shape, window, strides, padding, dilation)]
    shape = lead + tuple(np.max(outs, axis=0) + 1)
    y = np.zeros(shape, x.dtype)
    gx = np.zeros(x.shape, np.float64)
    for b in itertools.product(*map(range, lead)):
        for o, idx in _windows(x.shape, window, strides, padding, dilation):
            vals = [x[b + q] for q in idx]
            if kind == "sum":
                y[b + o] = np.sum(vals)
                hits = idx
            else:
                nan = [q for q, v in zip(idx, vals) if v != v]
                best = max(vals) if not nan else np.nan
                y[b + o] = best
                hits = nan[-1:] or [q for q, v in zip(idx, vals) if v == best][:1]
            if g is not None:
                for q in hits:
                    gx[b + q] += g[b + o]
    return y, gx


@pytest.mark.parametrize("case", DEFAULT, ids=_ids)
@pytest.mark.parametrize("kind", ["max", "sum"])
def test_reduce_window(case, kind):
    nd, window, strides, padding, dilation = case
    x = _input(nd, nan=(kind == "max" and nd == 1))
    key = (kind, window, strides, padding, dilation)
    out = RW.forward_kernel(key)(jnp.asarray(x))
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    y_ref, gx_ref = ref_pool(x, kind, window, strides, padding, dilation, g)
    np.testing.assert_array_equal(np.asarray(out), y_ref)  # exact: max picks, sums of small integers
    rule = RW.backward_kernel(key, (True,))(jnp.asarray(g), out, jnp.asarray(x))[0]
    auto = jax.jit(lambda x, g: jax.vjp(lambda x: RW.call((x,), key), x)[1](g)[0])(jnp.asarray(x), jnp.asarray(g))
    # float32 sums of up to prod(window) cotangents, in another order than the reference's
    np.testing.assert_allclose(np.asarray(rule), gx_ref, rtol=1e-5, atol=1e-6 * np.prod(window))
    np.testing.assert_array_equal(np.asarray(auto), np.asarray(rule))


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in GRID if c not in DEFAULT], ids=_ids)
@pytest.mark.parametrize("kind", ["max", "sum"])
def test_reduce_window_exhaustive(case, kind):
    test_reduce_window(case, kind)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_max_of_integers_and_bools(dtype):
    x = np.random.default_rng(2).integers(0, 4, (2, 3, 9, 10)).astype(dtype)
    key = ("max", (3, 2), (2, 2), ((1, 2), (0, 1)), (1, 1))
    want = lax.reduce_window(jnp.asarray(x), jnp.asarray(False if dtype == np.bool_ else np.iinfo(dtype).min, dtype),
                             lax.max, (1, 1, 3, 2), (1, 1, 2, 2), ((0, 0), (0, 0), (1, 2), (0, 1)))
    got = RW.forward_kernel(key)(jnp.asarray(x))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_large_window_uses_reduce_window():
    x = np.random.default_rng(3).standard_normal((2, 3, 100)).astype(np.float32)
    key = ("max", (90,), (5,), ((0, 0),), (1,))
    y_ref, _ = ref_pool(x, "max", *key[1:])
    np.testing.assert_array_equal(np.asarray(RW.forward_kernel(key)(jnp.asarray(x))), y_ref)


def test_pooling_is_differentiable_under_jit():
    # A compiled program differentiates the whole lowered function: before the custom_vjp, JAX
    # refused the generic reduce_window inside jit ("Linearization failed ...").
    x = jnp.arange(2 * 3 * 8 * 8, dtype=jnp.float32).reshape(2, 3, 8, 8) % 7
    for kind in ("max", "sum"):
        key = (kind, (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
        gx = jax.jit(jax.grad(lambda x: jnp.sum(RW.call((x,), key) ** 2)))(x)
        assert gx.shape == x.shape


def _max_and_grad(x, case, g):
    """Max pooling's forward (the op's kernel) and input gradient (its vjp rule) for ``x``."""
    nd, window, strides, padding, dilation = case
    key = ("max", window, strides, padding, dilation)
    out = RW.forward_kernel(key)(jnp.asarray(x))
    return out, RW.backward_kernel(key, (True,))(jnp.asarray(g, x.dtype), out, jnp.asarray(x))[0]


SMALL = [c for c in DEFAULT if np.prod(c[1]) <= 4]  # windows whose index comes from argmax (_ARGMAX_WINDOW)


@pytest.mark.parametrize("case", SMALL, ids=_ids)
def test_max_pool_ties_and_nans_float32_and_float64(case):
    # Both dtypes must match the reference: first maximum on ties (small integers), last NaN of a
    # window (test_reduce_window puts NaNs in 1-d inputs only).
    nd = case[0]
    x = _input(nd, nan=True)
    out = RW.forward_kernel(("max",) + case[1:])(jnp.asarray(x))
    g = np.random.default_rng(1).standard_normal(out.shape)
    y_ref, gx_ref = ref_pool(x, "max", *case[1:], g)
    for dtype in (np.float32, np.float64):
        y, gx = _max_and_grad(x.astype(dtype), case, g)
        assert y.dtype == dtype and gx.dtype == dtype
        np.testing.assert_array_equal(np.asarray(y), y_ref)
        np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-6, atol=1e-6)


def test_max_pool_ties_of_zeros_infinities_and_nans():
    # Known values, windows of 2 along the last dim: the gradient goes to the first maximum (-0.0
    # and 0.0 tie, as torch's ``val > max``), to the last NaN, and a window of -inf keeps its first.
    x = np.array([[-0.0, 0.0, 0.0, -0.0, -np.inf, -np.inf, np.inf, 3.0, np.nan, np.nan, 1.0, np.nan,
                   np.nan, 2.0]], np.float32)
    case = (1, (2,), (2,), ((0, 0),), (1,))
    for dtype in (np.float32, np.float64, np.float16, jnp.bfloat16):
        y, gx = _max_and_grad(x.astype(dtype), case, np.arange(1.0, 8.0)[None])
        np.testing.assert_array_equal(np.asarray(y, np.float32), [[0, 0, -np.inf, np.inf, np.nan, np.nan, np.nan]])
        np.testing.assert_array_equal(np.asarray(gx, np.float32), [[1, 0, 2, 0, 3, 0, 4, 0, 0, 5, 0, 6, 7, 0]])


@pytest.mark.parametrize("window", [2, 3, 5])  # the argmax path (<= 4 offsets) and the compare-with-max one
def test_max_pool_window_of_padding_values_picks_first_inside(window):
    # A window whose inputs all equal the padding value (-inf) ties with its padded positions; torch
    # gives its index and gradient to the first position inside the input (NumPy reference: ref_pool).
    x = np.full((1, 1, 3, 7), -np.inf, np.float32)
    x[0, 0, 1, 3] = 2.0
    case = (2, (window, window), (2, 2), ((1, 1), (1, 1)), (1, 1))
    out = RW.forward_kernel(("max",) + case[1:])(jnp.asarray(x))
    g = np.arange(1.0, out.size + 1).reshape(out.shape)
    y_ref, gx_ref = ref_pool(x, "max", *case[1:], g)
    y, gx = _max_and_grad(x, case, g)
    np.testing.assert_array_equal(np.asarray(y), y_ref)
    np.testing.assert_array_equal(np.asarray(gx), gx_ref)
    best, where = ARGMAX.forward_kernel(case[1:])(jnp.asarray(x))
    picked = np.take_along_axis(x.reshape(1, 1, -1), np.asarray(where).reshape(1, 1, -1), axis=2)
    assert np.asarray(where).min() >= 0 and np.array_equal(picked.reshape(best.shape), y_ref)
    np.testing.assert_array_equal(np.asarray(ARGMAX.backward_kernel(case[1:], (True,))(
        (jnp.asarray(g, jnp.float32), None), (best, where), jnp.asarray(x))[0]), gx_ref)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
def test_max_pool_half_precision(dtype):
    case = (2, (2, 2), (2, 2), ((1, 1), (0, 1)), (1, 1))  # the padded, ceil_mode-like geometry
    x = _input(2, nan=True)
    g = np.random.default_rng(1).standard_normal((2, 3, 5, 5))
    y_ref, gx_ref = ref_pool(x, "max", *case[1:], g.astype(dtype).astype(np.float64))
    y, gx = _max_and_grad(x.astype(dtype), case, g)
    assert y.dtype == dtype and gx.dtype == dtype
    np.testing.assert_array_equal(np.asarray(y, np.float32), y_ref)
    np.testing.assert_array_equal(np.asarray(gx, np.float32), gx_ref.astype(dtype).astype(np.float32))


@pytest.mark.parametrize("case", [c for c in DEFAULT if c[0] == 2][::3] + [GRID[0], GRID[-1]], ids=_ids)
def test_window_argmax(case):
    nd, window, strides, padding, dilation = case
    x = _input(nd, nan=True)
    key = (window, strides, padding, dilation)
    best, where = ARGMAX.forward_kernel(key)(jnp.asarray(x))
    g = np.random.default_rng(1).standard_normal(best.shape).astype(np.float32)
    y_ref, gx_ref = ref_pool(x, "max", window, strides, padding, dilation, g)
    np.testing.assert_array_equal(np.asarray(best), y_ref)
    flat = x.reshape(x.shape[:2] + (-1,))
    picked = np.take_along_axis(flat, np.asarray(where).reshape(where.shape[:2] + (-1,)), axis=2)
    np.testing.assert_array_equal(picked.reshape(best.shape), y_ref)  # the index points at the maximum
    rule = ARGMAX.backward_kernel(key, (True,))((jnp.asarray(g), None), (best, where), jnp.asarray(x))[0]
    auto = jax.jit(lambda x, g: jax.vjp(lambda x: ARGMAX.call((x,), key)[0], x)[1](g)[0])(jnp.asarray(x),
                                                                                           jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(rule), gx_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(auto), np.asarray(rule))


# Windows that tile the input (stride == window, no padding or dilation): on the CPU these take
# window.py's channels-minor lowering (_tiled_reduce, _tiled_max_grad, _tiled_grad). Sizes that are not a multiple
# of the window leave trailing rows/columns outside every window (floor mode): they get no gradient.
TILED = [((2, 3, 13), (2,)), ((2, 3, 12), (3,)), ((2, 3, 9, 10), (2, 2)), ((2, 3, 9, 10), (3, 3)),
         ((2, 3, 9, 10), (2, 3)), ((3, 8, 6), (2, 2)), ((1, 1, 4, 4), (4, 4))]


@pytest.mark.parametrize("kind", ["max", "sum"])
@pytest.mark.parametrize("shape, window", TILED, ids=lambda v: "x".join(map(str, v)))
def test_tiled_pooling_matches_reference(shape, window, kind):
    # Small integers (many ties) and, for max, NaNs: the first maximum of each window, or its last
    # NaN, in float32 and float64; the compiled path (JAX differentiating impl) equals the rule.
    rng = np.random.default_rng(4)
    x = np.round(rng.standard_normal(shape) * 1.5)
    if kind == "max":
        x.reshape(-1)[::7] = np.nan
    case = (len(window), window, window, ((0, 0),) * len(window), (1,) * len(window))
    key = (kind,) + case[1:]
    out_shape = shape[:-len(window)] + tuple(n // k for n, k in zip(shape[-len(window):], window))
    g = rng.standard_normal(out_shape)
    y_ref, gx_ref = ref_pool(x, kind, *case[1:], g)
    for dtype in (np.float32, np.float64):
        y = RW.forward_kernel(key)(jnp.asarray(x, dtype))
        gx = RW.backward_kernel(key, (True,))(jnp.asarray(g, dtype), y, jnp.asarray(x, dtype))[0]
        assert y.dtype == dtype and gx.dtype == dtype
        np.testing.assert_array_equal(np.asarray(y), y_ref)  # exact: max picks, sums of small integers
        np.testing.assert_allclose(np.asarray(gx), gx_ref, rtol=1e-6, atol=1e-6)
        auto = jax.jit(lambda x, g: jax.vjp(lambda x: RW.call((x,), key), x)[1](g)[0])(
            jnp.asarray(x, dtype), jnp.asarray(g, dtype))
        np.testing.assert_array_equal(np.asarray(auto), np.asarray(gx))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.bool_])
def test_tiled_max_pool_of_integers_and_bools(dtype):
    x = np.random.default_rng(5).integers(0, 4, (2, 3, 9, 10)).astype(dtype)
    y_ref, _ = ref_pool(x, "max", (3, 2), (3, 2), ((0, 0), (0, 0)), (1, 1))
    got = RW.forward_kernel(("max", (3, 2), (3, 2), ((0, 0), (0, 0)), (1, 1)))(jnp.asarray(x))
    assert got.dtype == dtype
    np.testing.assert_array_equal(np.asarray(got), y_ref)


def test_tiled_pooling_runs_channels_minor_without_reductions():
    # The CPU lowering's form: the gradient is selects over the input (no argmax reduction, no
    # concatenation of per-offset pieces), and both directions transpose into (H, N, W, C), the
    # order the CPU convolutions leave their output in, so that XLA can cancel the transposes.
    from tracenn.ops import window
    assert window._tiled_order(4, 2) == (2, 0, 3, 1) and window._tiled_order(3, 1) == (0, 2, 1)
    assert window._tiled_order(3, 2) == (1, 2, 0)  # unbatched (C, H, W): H, W, C
    x = jnp.zeros((2, 3, 8, 8), jnp.float32)
    key = ("max", (2, 2), (2, 2), ((0, 0), (0, 0)), (1, 1))
    out = RW.forward_kernel(key)(x)
    hlo = jax.jit(lambda g, y, x: RW.vjp(g, y, x, kind="max", window=(2, 2), strides=(2, 2),
                                         padding=((0, 0), (0, 0)), dilation=(1, 1))).lower(out, out, x).as_text()
    assert "stablehlo.reduce" not in hlo and "stablehlo.concatenate" not in hlo
    assert "dims = [2, 0, 3, 1]" in hlo
    for kind in ("max", "sum"):  # the forwards: slices in the same order, no reduce_window
        hlo = jax.jit(lambda x: RW.impl(x, kind=kind, window=(2, 2), strides=(2, 2), padding=((0, 0), (0, 0)),
                                        dilation=(1, 1))).lower(x).as_text()
        assert "reduce_window" not in hlo and "dims = [2, 0, 3, 1]" in hlo
    hlo = jax.jit(lambda g, x: RW.vjp(g, None, x, kind="sum", window=(2, 2), strides=(2, 2),
                                      padding=((0, 0), (0, 0)), dilation=(1, 1))).lower(out, x).as_text()
    assert "stablehlo.pad" not in hlo and "stablehlo.concatenate" not in hlo and "dims = [2, 0, 3, 1]" in hlo


# ---- conv_transpose -----------------------------------------------------------------------------

def ref_conv_transpose(x, w, stride, padding, output_padding, dilation, groups):
    """JAX's derivative of the strided convolution it transposes, at cotangent x."""
    nd = x.ndim - 2
    sp = "DHW"[-nd:]
    k = w.shape[2:]
    out = [(n - 1) * s - 2 * p + d * (kk - 1) + op + 1
           for n, s, p, d, kk, op in zip(x.shape[2:], stride, padding, dilation, k, output_padding)]
    z = jnp.zeros((x.shape[0], w.shape[1] * groups) + tuple(out), x.dtype)

    def conv(z):
        return lax.conv_general_dilated(z, w, stride, [(p, p) for p in padding], rhs_dilation=dilation,
                                        dimension_numbers=("NC" + sp, "OI" + sp, "NC" + sp), feature_group_count=groups)

    y, pullback = jax.vjp(conv, z)
    # output_padding >= stride (allowed below dilation) gives the convolution an extra output row that
    # reads only padding: it takes a zero cotangent.
    x = jnp.pad(x, [(0, a - b) for a, b in zip(y.shape, x.shape)])
    return pullback(x)[0]


CT_GRID = [(nd, s, p, op, d, gr) for nd in (1, 2, 3)
           for s, p, op, d, gr in itertools.product((1, 2), (0, 1), (0, 1), (1, 2), (1, 2))
           if (op < s or op < d) and (nd == 2 or (s, d) == (2, 1))]


@pytest.mark.parametrize("nd,stride,padding,output_padding,dilation,groups", CT_GRID)
def test_conv_transpose(nd, stride, padding, output_padding, dilation, groups):
    rng = np.random.default_rng(0)
    sp, k = {1: ((7,), (3,)), 2: ((5, 6), (3, 2)), 3: ((4, 3, 4), (2, 3, 2))}[nd]
    x = jnp.asarray(rng.standard_normal((2, 4) + sp), jnp.float32)
    w = jnp.asarray(rng.standard_normal((4, 6 // groups) + k), jnp.float32)
    key = ((stride,) * nd, (padding,) * nd, (output_padding,) * nd, (dilation,) * nd, groups)
    want, pullback = jax.vjp(lambda x, w: ref_conv_transpose(x, w, *key), x, w)
    got = CONV_T.forward_kernel(key)(x, w)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    g = jnp.asarray(rng.standard_normal(want.shape), jnp.float32)
    rule = CONV_T.backward_kernel(key, (True, True))(g, got, x, w)
    auto = jax.jit(lambda x, w, g: jax.vjp(lambda x, w: CONV_T.call((x, w), key), x, w)[1](g))(x, w, g)
    for a, b, c in zip(rule, auto, pullback(g)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(c), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-6)
