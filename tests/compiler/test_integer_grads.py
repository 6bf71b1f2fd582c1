"""Integer ops in a compiled backward (compiler/lower.py): an op none of whose outputs is a float
passes no gradient back, and an integer input of a float op takes none, as in eager autograd,
which records no node for such an op. Compiled gradients equal eager's (and torch's)."""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from helpers import assert_close, to_np


def _grads(lib, fn, values, compile=False):
    """``fn``'s output and its inputs' gradients under the weighted sum of the output (so every
    element's gradient differs), each input a fresh ``lib`` leaf requiring grad."""
    leaves = [lib.tensor(v, requires_grad=True) for v in values]
    out = (tracenn.compile(fn) if compile else fn)(*leaves)
    weights = lib.tensor(np.linspace(0.5, 2.0, out.numel(), dtype=np.float32).reshape(tuple(out.shape)))
    (out * weights).sum().backward()
    return [out] + [t.grad for t in leaves]


def _assert_same(got, want, **tol):
    for i, (a, b) in enumerate(zip(got, want)):
        assert (a is None) == (b is None), f"result {i}: {a} against {b}"
        if a is not None:
            assert_close(to_np(a), to_np(b), **tol)


# name -> (function of the leaves, the leaves' values)
CASES = {
    # a float -> integer cast, then an integer multiply, indexing a float tensor
    "index-by-mul-of-long": (lambda x, g: x[(g * 2).long() * 1] * g,
                             [np.arange(6, dtype=np.float32), np.array([0.4, 1.3], np.float32)]),
    "index-by-add-of-long": (lambda x, g: x[(g * 2).long() + 1] * g,
                             [np.arange(6, dtype=np.float32), np.array([0.4, 1.3], np.float32)]),
    # an integer input of a float op (int * float), and a bool one (where)
    "int-times-float": (lambda x, g: (g * 3).long() * x[:2] + (g > 1).float() * g,
                        [np.arange(6, dtype=np.float32), np.array([0.4, 1.3], np.float32)]),
    "where-on-comparison": (lambda x, g: tracenn.where(x[:2] > g, x[:2] * g, g),
                            [np.arange(6, dtype=np.float32), np.array([0.4, 1.3], np.float32)]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_gradients_through_integer_ops_equal_eager(name):
    fn, values = CASES[name]
    _assert_same(_grads(tracenn, fn, values, compile=True), _grads(tracenn, fn, values))


def test_the_integer_index_case_by_hand():
    fn, values = CASES["index-by-mul-of-long"]
    out, gx, gg = _grads(tracenn, fn, values, compile=True)
    # x[[0, 2]] * g with weights [0.5, 2]: d/dx puts g * w at 0 and 2; d/dg is x[[0, 2]] * w
    assert_close(to_np(out), np.array([0.0, 2.6], np.float32))
    assert_close(to_np(gx), np.array([0.2, 0, 2.6, 0, 0, 0], np.float32))
    assert_close(to_np(gg), np.array([0.0, 4.0], np.float32))


_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((1, 2, 3, 4)).astype(np.float32)
_GRID = _RNG.uniform(-1.2, 1.2, (1, 2, 3, 2)).astype(np.float32)  # some points outside [-1, 1]


def _grid_sample(functional, mode, padding_mode, align_corners):
    return lambda x, grid: functional.grid_sample(x, grid, mode=mode, padding_mode=padding_mode,
                                                  align_corners=align_corners)


GRID_SAMPLE = [(m, p, a) for m in ("bilinear", "bicubic") for p in ("zeros", "border", "reflection")
               for a in (False, True)]


@pytest.mark.parametrize("mode,padding_mode,align_corners", GRID_SAMPLE)
def test_grid_sample_with_a_grid_requiring_grad_compiled_equals_eager(mode, padding_mode, align_corners):
    fn = _grid_sample(F, mode, padding_mode, align_corners)
    eager = _grads(tracenn, fn, [_X, _GRID])
    _assert_same(_grads(tracenn, fn, [_X, _GRID], compile=True), eager, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("mode,padding_mode,align_corners", GRID_SAMPLE)
def test_grid_sample_compiled_gradients_equal_torch(mode, padding_mode, align_corners):
    torch = pytest.importorskip("torch")
    want = _grads(torch, _grid_sample(torch.nn.functional, mode, padding_mode, align_corners), [_X, _GRID])
    got = _grads(tracenn, _grid_sample(F, mode, padding_mode, align_corners), [_X, _GRID], compile=True)
    _assert_same(got, want, rtol=1e-4, atol=1e-4)


def test_func_grad_through_an_integer_op():
    """tracenn.func's transforms differentiate each op with the same rules (lower.differentiable)."""
    from tracenn import func
    fn, values = CASES["index-by-mul-of-long"]
    gx, gg = func.grad(lambda x, g: fn(x, g).sum(), argnums=(0, 1))(*[tracenn.tensor(v) for v in values])
    assert_close(to_np(gx), np.array([0.4, 0, 1.3, 0, 0, 0], np.float32))
    assert_close(to_np(gg), np.array([0.0, 2.0], np.float32))


def _reached_by_ints(x, w):
    """``x`` reaches the output only through ``.long()``: it gets no gradient (None, not zeros)."""
    return w[((x * 3).long()).clamp(0, 3)] * 2


@pytest.mark.parametrize("compile", [False, True])
def test_an_input_reached_only_through_ints_gets_none(compile):
    out, gx, gw = _grads(tracenn, _reached_by_ints, [np.array([0.2, 0.5, 0.9], np.float32),
                                                     np.arange(1, 5, dtype=np.float32)], compile=compile)
    assert gx is None
    np.testing.assert_allclose(to_np(gw), [1.0, 2.5, 4.0, 0.0])  # the weights 0.5, 1.25, 2 at 0, 1, 2, doubled


def test_a_parameter_reached_only_through_ints_keeps_grad_none_compiled():
    class Bucketed(tracenn.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = tracenn.nn.Parameter(tracenn.ones(4))
            self.scale = tracenn.nn.Parameter(tracenn.tensor(0.3))

        def forward(self, x):
            return self.w[(x * self.scale * 10).long().clamp(0, 3)].sum()

    m = Bucketed()
    tracenn.compile(m)(tracenn.tensor([0.2, 0.5, 0.9])).backward()
    assert m.scale.grad is None
    np.testing.assert_allclose(to_np(m.w.grad), [1.0, 1.0, 1.0, 0.0])
