"""The conv op's lowerings (tracenn/ops/linalg.py) against plain ``lax.conv_general_dilated``.

``conv_forward``, ``conv_input_grad`` and ``conv_weight_grad`` rewrite convolutions into the forms
XLA:CPU runs fastest (extra padding then a crop, explicit input padding, 1-d as 2-d); each must give
what the plain convolution and JAX's own derivative of it give, over strides, paddings (zero,
symmetric, asymmetric, wider than the kernel), dilations and groups in 1, 2 and 3 spatial dims. The
op's ``impl`` is a ``jax.custom_vjp``: differentiating it with JAX (as the compiler does) must equal
the op's vjp rule (as eager backward runs it), jitted or not.
"""
from __future__ import annotations

import itertools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from tracenn.ops import OPS
from tracenn.ops.linalg import _input_grad_pads, conv_forward, conv_input_grad, conv_weight_grad

CONV = OPS["conv"]
SPATIAL = {1: ((11,), (3,)), 2: ((9, 8), (3, 2)), 3: ((6, 5, 6), (2, 3, 2))}
PADS = {"zero": (0, 0), "same": (1, 1), "asym": (1, 2), "wide": (3, 3)}


def plain(x, w, stride, padding, dilation, groups):
    sp = "DHW"[-(x.ndim - 2):]
    return lax.conv_general_dilated(x, w, stride, padding, rhs_dilation=dilation,
                                    dimension_numbers=("NC" + sp, "OI" + sp, "NC" + sp), feature_group_count=groups)


def _case(nd, stride, pad, dilation, groups, dtype=np.float32, seed=0, n=2):
    sp, k = SPATIAL[nd]
    key = ((stride,) * nd, (PADS[pad],) * nd, (dilation,) * nd, groups)
    return _with_reference((n, 4) + sp, (6, 4 // groups) + k, key, dtype, seed)


def _with_reference(xs, ws, key, dtype=np.float32, seed=0):
    """Random x and w of these shapes, a random cotangent g, and the plain convolution's output
    and gradients (gx, gw) for them: (x, w, g, key, y, (gx, gw))."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal(xs), dtype)
    w = jnp.asarray(rng.standard_normal(ws), dtype)
    y, pullback = jax.vjp(lambda x, w: plain(x, w, *key), x, w)
    g = jnp.asarray(rng.standard_normal(y.shape), dtype)
    return x, w, g, key, y, pullback(g)


def _close(got, want, tol):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    scale = max(1.0, float(jnp.max(jnp.abs(want.astype(jnp.float32)))))
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=tol, atol=tol * scale)


GRID = [(nd, s, p, d, gr) for nd in (1, 2, 3)
        for s, p, d, gr in itertools.product((1, 2), ("zero", "same", "asym", "wide"), (1, 2), (1, 2))
        # the default run: every option once per rank, and the 2-d cases the fast paths special-case
        if nd == 2 and d == 1 or (s, d, gr) in ((1, 1, 1), (2, 2, 2))]
SLOW = [(nd, s, p, d, gr) for nd in (1, 2, 3)
        for s, p, d, gr in itertools.product((1, 2), ("zero", "same", "asym", "wide"), (1, 2), (1, 2))
        if (nd, s, p, d, gr) not in GRID]


def _check_lowerings(nd, s, p, d, gr):
    x, w, g, key, y, (gx, gw) = _case(nd, s, p, d, gr)
    _close(jax.jit(lambda x, w: conv_forward(x, w, *key))(x, w), y, 1e-5)
    _close(jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))(g, w), gx, 1e-5)
    _close(jax.jit(lambda g, x: conv_weight_grad(g, x, w.shape, *key))(g, x), gw, 1e-5)


@pytest.mark.parametrize("nd,stride,pad,dilation,groups", GRID)
def test_lowerings_match_plain_conv(nd, stride, pad, dilation, groups):
    _check_lowerings(nd, stride, pad, dilation, groups)


@pytest.mark.slow
@pytest.mark.parametrize("nd,stride,pad,dilation,groups", SLOW)
def test_lowerings_match_plain_conv_exhaustive(nd, stride, pad, dilation, groups):
    _check_lowerings(nd, stride, pad, dilation, groups)


@pytest.mark.parametrize("nd,stride,pad,dilation,groups", [(2, 1, "zero", 1, 1), (2, 2, "asym", 2, 2),
                                                            (1, 1, "wide", 1, 2), (3, 2, "same", 1, 1)])
def test_jax_derivative_of_impl_is_the_vjp_rule(nd, stride, pad, dilation, groups):
    x, w, g, key, y, (gx, gw) = _case(nd, stride, pad, dilation, groups)
    out = CONV.forward_kernel(key)(x, w)
    _close(out, y, 1e-5)
    rule = CONV.backward_kernel(key, (True, True))(g, out, x, w)  # eager backward: the vjp rule, jitted
    auto = jax.jit(lambda x, w, g: jax.vjp(lambda x, w: CONV.call((x, w), key), x, w)[1](g))(x, w, g)
    unjitted = jax.vjp(lambda x, w: CONV.call((x, w), key), x, w)[1](g)
    for a, b, c, want in zip(rule, auto, unjitted, (gx, gw)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        _close(c, want, 1e-5)
        _close(a, want, 1e-5)


def test_only_needed_gradients():
    x, w, g, key, y, (gx, gw) = _case(2, 1, "zero", 1, 1)
    got_x, none_w = CONV.backward_kernel(key, (True, False))(g, y, x, w)
    none_x, got_w = CONV.backward_kernel(key, (False, True))(g, y, x, w)
    assert none_w is None and none_x is None
    _close(got_x, gx, 1e-5)
    _close(got_w, gw, 1e-5)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float16, 3e-3), (jnp.bfloat16, 3e-2)])
def test_other_dtypes(dtype, tol):
    x, w, g, key, y, (gx, gw) = _case(2, 1, "zero", 1, 1, dtype)
    out = CONV.forward_kernel(key)(x, w)
    _close(out, y, tol)
    for a, want in zip(jax.vjp(lambda x, w: CONV.call((x, w), key), x, w)[1](g), (gx, gw)):
        _close(a, want, tol)


def test_second_derivative_through_impl():
    # The custom_vjp's backward is itself differentiable (grad of a gradient norm, as in a WGAN-GP).
    x, w, g, key, y, _ = _case(2, 1, "zero", 1, 1, np.float64)

    def gnorm(f):
        return lambda x, w: jnp.sum(jax.grad(lambda x: jnp.sum(f(x, w) * g))(x) ** 2)

    ours = jax.grad(gnorm(lambda x, w: CONV.call((x, w), key)), argnums=1)(x, w)
    ref = jax.grad(gnorm(lambda x, w: plain(x, w, *key)), argnums=1)(x, w)
    _close(ours, ref, 1e-10)


def test_empty_batch():
    x = jnp.zeros((0, 4, 9, 8))
    w = jnp.ones((6, 4, 3, 2))
    key = ((1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    y = CONV.call((x, w), key)
    assert y.shape == (0, 6, 7, 7)
    gx, gw = jax.vjp(lambda x, w: CONV.call((x, w), key), x, w)[1](y)
    assert gx.shape == x.shape and gw.shape == w.shape and not jnp.any(gw)


# (x shape, w shape, stride, padding, dilation): 32 or more channels on one side
WIDE = [((3, 16, 9, 8), (32, 16, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1)),
        ((2, 16, 7, 9), (32, 16, 3, 2), (1, 1), ((1, 1), (2, 0)), (1, 1)),    # asymmetric padding
        ((4, 16, 9, 9), (32, 16, 3, 3), (1, 1), ((2, 2), (2, 2)), (2, 2)),    # dilation
        ((3, 32, 8, 8), (64, 32, 3, 1), (1, 1), ((1, 1), (0, 0)), (1, 1)),    # 1 wide: the high row instead
        ((3, 64, 5, 6), (64, 64, 1, 1), (1, 1), ((1, 1), (1, 1)), (1, 1)),    # 1x1; the input gradient crops
        ((3, 16, 9, 9), (32, 16, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1)),    # stride: 11 wide, rounded to 12
        ((2, 8, 11, 10), (32, 8, 1, 1), (2, 3), ((0, 0), (0, 0)), (1, 1)),    # 1x1, uneven strides
        ((3, 16, 20), (48, 16, 5), (1,), ((2, 1),), (2,)),                    # 1-d
        ((3, 16, 21), (48, 16, 3), (2,), ((1, 1),), (1,))]                    # 1-d, stride


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", WIDE)
def test_side_by_side(xs, ws, stride, padding, dilation):
    """On the CPU a convolution with 32 or more channels on one side runs as one convolution of
    the batch laid side by side along the width (XLA:CPU splits that one across threads): the same
    values forward and in both gradients, through one convolution of a 1 x H x N*W image."""
    x, w, g, key, y, (gx, gw) = _with_reference(xs, ws, (stride, padding, dilation, 1), seed=2)
    fwd = jax.jit(lambda x, w: conv_forward(x, w, *key))
    dx = jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))
    _close(fwd(x, w), y, 1e-5)
    _close(dx(g, w), gx, 1e-5)
    _close(jax.jit(lambda g, x: conv_weight_grad(g, x, w.shape, *key))(g, x), gw, 1e-5)
    n, c, *sp = x.shape
    sp = [k + lo + hi for k, (lo, hi) in zip(sp, padding)]
    h, wd = ([1] + sp)[-2:]
    wd = -(-wd // stride[-1]) * stride[-1]
    assert _conv_lhs(fwd, x, w) == [f"1x{h}x{n * wd}x{c}"]
    if all(s == 1 for s in stride):  # (a strided input gradient keeps JAX's lhs-dilated form)
        pads = _input_grad_pads(x.shape, ws[2:], stride, padding, dilation, g.shape)
        sp = [k + lo + hi for k, (lo, hi) in zip(g.shape[2:], pads)]
        h, wd = ([1] + sp)[-2:]
        assert _conv_lhs(dx, g, w) == [f"1x{h}x{n * wd}x{g.shape[1]}"]
    # one sample, or groups: the convolution's input keeps torch's (N, C, ...) layout
    assert [t.split("x")[:2] for t in _conv_lhs(fwd, x[:1], w)] == [["1", str(c)]]
    grouped = jax.jit(lambda x, w: conv_forward(x, w, stride, padding, dilation, 2))
    assert [t.split("x")[1] for t in _conv_lhs(grouped, x, w[:, :c // 2])] == [str(c)]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", [WIDE[0], WIDE[5]])
def test_side_by_side_float64(xs, ws, stride, padding, dilation):
    x, w, g, key, y, (gx, _) = _with_reference(xs, ws, (stride, padding, dilation, 1), np.float64, seed=3)
    fwd = jax.jit(lambda x, w: conv_forward(x, w, *key))
    _close(fwd(x, w), y, 1e-12)
    _close(jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))(g, w), gx, 1e-12)
    assert _conv_lhs(fwd, x, w)[0].startswith("1x")


# (x shape, w shape, stride, padding, groups): strided convolutions' input gradients
STRIDED = [((2, 8, 11, 10), (16, 8, 3, 3), (2, 2), ((1, 1), (1, 1)), 1),
           ((2, 8, 12, 12), (16, 8, 4, 4), (2, 2), ((1, 1), (1, 1)), 1),   # ConvTranspose2d(16, 8, 4, 2, 1)
           ((2, 8, 9, 10), (16, 8, 1, 1), (2, 3), ((0, 0), (0, 0)), 1),    # stride > kernel: zeros between
           ((3, 8, 13, 7), (16, 4, 3, 2), (3, 2), ((2, 0), (1, 3)), 2),    # groups; padding past the kernel
           ((2, 64, 9, 9), (32, 64, 3, 3), (2, 2), ((1, 1), (1, 1)), 1),   # sub-kernels side by side
           ((2, 6, 17), (8, 6, 5), (3,), ((2, 1),), 1)]                     # 1-d


@pytest.mark.parametrize("xs,ws,stride,padding,groups", STRIDED)
def test_strided_input_grad(xs, ws, stride, padding, groups):
    """On the CPU a strided convolution's input gradient runs as the stride-1 input gradients of
    its sub-kernels, interleaved (XLA:CPU's fast kernel takes no lhs dilation): the same values as
    JAX's derivative, and no lhs-dilated convolution left in the compiled program."""
    x, w, g, key, _, (gx, _) = _with_reference(xs, ws, (stride, padding, (1,) * len(stride), groups), seed=4)
    dx = jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))
    _close(dx(g, w), gx, 1e-5)
    assert "lhs_dilate" not in dx.lower(g, w).compile().as_text()
    jax_dx = jax.jit(lambda g: jax.vjp(lambda x: plain(x, w, *key), x)[1](g)[0])  # (JAX's own: lhs-dilated)
    assert "lhs_dilate" in jax_dx.lower(g).compile().as_text()


# (x shape, w shape, stride, padding, dilation): depthwise (groups = input channels)
DEPTHWISE = [((3, 8, 9, 10), (8, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1)),
             ((2, 8, 11, 9), (8, 1, 3, 3), (2, 2), ((1, 1), (0, 2)), (1, 1)),    # stride, asymmetric padding
             ((2, 4, 12, 12), (8, 1, 3, 2), (1, 2), ((2, 2), (1, 1)), (2, 1)),   # multiplier 2, dilation
             ((2, 6, 17), (12, 1, 5), (2,), ((2, 2),), (1,)),                    # 1-d, multiplier 2
             ((2, 3, 5, 6, 5), (3, 1, 2, 3, 2), (1, 1, 1), ((1, 0), (1, 1), (0, 1)), (1, 1, 1))]  # 3-d


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("xs,ws,stride,padding,dilation", DEPTHWISE)
def test_depthwise(xs, ws, stride, padding, dilation, dtype, tol):
    """On the CPU a depthwise convolution (XLA:CPU's grouped convolutions are slow) is a sum over
    the kernel taps of strided slices times per-channel weights, and its gradients that sum's
    transposes: the same values as the grouped convolution, and no convolution in the program."""
    key = (stride, padding, dilation, xs[1])
    x, w, g, key, y, (gx, gw) = _with_reference(xs, ws, key, dtype, seed=5)
    fwd = jax.jit(lambda x, w: conv_forward(x, w, *key))
    dx = jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))
    dw = jax.jit(lambda g, x: conv_weight_grad(g, x, w.shape, *key))
    _close(fwd(x, w), y, tol)
    _close(dx(g, w), gx, tol)
    _close(dw(g, x), gw, tol)
    for f, args in ((fwd, (x, w)), (dx, (g, w)), (dw, (g, x))):
        assert "convolution(" not in f.lower(*args).compile().as_text()
    # through the op's impl (a custom_vjp): JAX's derivative, and a second derivative, as the plain's
    ours = jax.grad(lambda x, w: jnp.sum(jax.grad(lambda x: jnp.sum(CONV.call((x, w), key) * g))(x) ** 2),
                    argnums=1)(x, w)
    ref = jax.grad(lambda x, w: jnp.sum(jax.grad(lambda x: jnp.sum(plain(x, w, *key) * g))(x) ** 2),
                   argnums=1)(x, w)
    _close(ours, ref, tol * 10)


def _conv_lhs(f, *args) -> list:
    """The input shapes ("1x26x1664x32") of the convolutions in ``f``'s StableHLO."""
    return re.findall(r"stablehlo\.convolution.*?: \(tensor<([0-9x]+)x[a-z0-9]+>", f.lower(*args).as_text())


@pytest.mark.parametrize("n", [64, 75])
@pytest.mark.parametrize("nd,stride,pad,dilation,groups", [(2, 1, "zero", 1, 1), (2, 1, "same", 1, 2),
                                                            (1, 1, "asym", 2, 1)])
def test_batch_split_into_chunks(n, nd, stride, pad, dilation, groups):
    """Where the side-by-side form does not apply or pays less (here: 216 multiply-adds per output
    pixel, or groups), the CPU forward and input gradient run as convolutions of batch slices of
    about 32 and 16 samples (XLA:CPU can run them side by side): the same values, unequal slices
    included."""
    from tracenn.ops import linalg
    assert (linalg._CPU_FORWARD_SLICE, linalg._CPU_INPUT_GRAD_SLICE) == (32, 16)
    x, w, g, key, y, (gx, gw) = _case(nd, stride, pad, dilation, groups, seed=1, n=n)
    fwd = jax.jit(lambda x, w: conv_forward(x, w, *key))
    _close(fwd(x, w), y, 1e-5)
    _close(jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))(g, w), gx, 1e-5)
    _close(jax.jit(lambda g, x: conv_weight_grad(g, x, w.shape, *key))(g, x), gw, 1e-5)
    assert fwd.lower(x, w).as_text().count("stablehlo.convolution") == 2  # (split)
    dx = jax.jit(lambda g, w: conv_input_grad(g, w, x.shape, *key))
    assert dx.lower(g, w).as_text().count("stablehlo.convolution") == 4
    small = x[:31]  # fewer than 2 slices' worth: one convolution
    assert fwd.lower(small, w).as_text().count("stablehlo.convolution") == 1
