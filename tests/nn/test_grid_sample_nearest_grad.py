"""F.grid_sample(mode="nearest"): the grid's gradient is zeros of the grid's shape and dtype (torch's),
not None, eagerly and compiled; the sampled values are unchanged by the grid requiring grad."""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from helpers import to_np

_RNG = np.random.default_rng(3)
_X = _RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
_GRID = _RNG.uniform(-1.3, 1.3, (2, 3, 2, 2)).astype(np.float32)  # some points outside [-1, 1]
_X3 = _RNG.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
_GRID3 = _RNG.uniform(-1.2, 1.2, (1, 2, 2, 3, 3)).astype(np.float32)
PADS = [(p, a) for p in ("zeros", "border", "reflection") for a in (False, True)]


def _run(lib, x, grid, padding_mode, align_corners, input_grad=True, dtype=None, compile=False):
    """(output, input grad, grid grad) with ``grid`` (and ``x`` when ``input_grad``) leaves requiring grad."""
    xt = lib.tensor(x, dtype=dtype, requires_grad=input_grad)
    gt = lib.tensor(grid, dtype=dtype, requires_grad=True)

    def fn(a, b):
        return lib.nn.functional.grid_sample(a, b, mode="nearest", padding_mode=padding_mode,
                                             align_corners=align_corners)
    out = (tracenn.compile(fn) if compile else fn)(xt, gt)
    weights = lib.tensor(np.linspace(0.5, 2.0, out.numel()).reshape(tuple(out.shape)), dtype=out.dtype)
    (out * weights).sum().backward()
    return out, xt.grad, gt.grad


@pytest.mark.parametrize("padding_mode,align_corners", PADS)
def test_grid_grad_is_zeros_of_the_grid_shape_and_dtype(padding_mode, align_corners):
    out, gx, gg = _run(tracenn, _X, _GRID, padding_mode, align_corners)
    assert gg is not None
    assert tuple(gg.shape) == _GRID.shape and gg.dtype == tracenn.float32
    assert not np.any(to_np(gg))
    assert gx is not None and np.any(to_np(gx))


def test_only_the_grid_requires_grad():
    """The output requires grad through the grid alone (backward must not raise)."""
    out, gx, gg = _run(tracenn, _X, _GRID, "zeros", False, input_grad=False)
    assert out.requires_grad and gx is None
    assert not np.any(to_np(gg)) and tuple(gg.shape) == _GRID.shape


def test_float64_and_5d():
    _, _, gg = _run(tracenn, _X, _GRID, "border", True, dtype=tracenn.float64)
    assert gg.dtype == tracenn.float64 and not np.any(to_np(gg))
    _, _, gg3 = _run(tracenn, _X3, _GRID3, "zeros", False)
    assert tuple(gg3.shape) == _GRID3.shape and not np.any(to_np(gg3))


def test_values_do_not_change_when_the_grid_requires_grad():
    """Exactly the same values (signed zeros and NaN rows included) with and without grid grad."""
    x = _X.copy()
    x[0, 0] = -0.0
    grid = _GRID.copy()
    grid[1, 0, 0] = np.nan
    plain = F.grid_sample(tracenn.tensor(x), tracenn.tensor(grid), mode="nearest", align_corners=False)
    with_grad = F.grid_sample(tracenn.tensor(x), tracenn.tensor(grid, requires_grad=True), mode="nearest",
                              align_corners=False)
    a, b = to_np(plain), to_np(with_grad.detach())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
    assert np.signbit(a[0, 0]).any()  # (the -0.0 input values were sampled)


def test_no_grad_keeps_the_output_off_the_graph():
    with tracenn.no_grad():
        out = F.grid_sample(tracenn.tensor(_X), tracenn.tensor(_GRID, requires_grad=True), mode="nearest",
                            align_corners=False)
    assert not out.requires_grad


@pytest.mark.parametrize("padding_mode,align_corners", PADS)
def test_compiled_equals_eager(padding_mode, align_corners):
    eager = _run(tracenn, _X, _GRID, padding_mode, align_corners)
    compiled = _run(tracenn, _X, _GRID, padding_mode, align_corners, compile=True)
    for a, b in zip(compiled, eager):
        np.testing.assert_array_equal(to_np(a), to_np(b))
    _, _, gg = _run(tracenn, _X, _GRID, padding_mode, align_corners, input_grad=False, compile=True)
    assert gg is not None and tuple(gg.shape) == _GRID.shape and not np.any(to_np(gg))


@pytest.mark.parametrize("padding_mode,align_corners", PADS)
def test_against_torch(padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    want = _run(torch, _X, _GRID, padding_mode, align_corners)
    got = _run(tracenn, _X, _GRID, padding_mode, align_corners)
    for a, b in zip(got, want):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), rtol=1e-6, atol=1e-6)
    _, gx, gg = _run(torch, _X, _GRID, padding_mode, align_corners, input_grad=False)
    assert gx is None and not gg.any()
