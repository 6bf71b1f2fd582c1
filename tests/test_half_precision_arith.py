"""Numbers torch's CPU arithmetic gives that a plain JAX expression does not: half-precision mul and
div by a Python scalar compute in float32 and round once (bf16 ``x * 0.9`` multiplies by 0.9, not by
bf16(0.9)), and ``s / x`` is ``x.reciprocal() * s``, as torch defines ``__rtruediv__``."""
import numpy as np
import pytest

import tracenn

VALUES = [0.1044921875, -3.25, 7.0]


def test_bfloat16_mul_by_a_scalar_rounds_once():
    x = tracenn.tensor(VALUES, dtype=tracenn.bfloat16)
    assert (x * 0.9).float().tolist() == [0.09423828125, -2.921875, 6.3125]  # bf16(0.9) gives 0.09375, 6.28125
    assert (x / 0.9).float().tolist() == [0.1162109375, -3.609375, 7.78125]
    assert (x * 0.9).dtype == tracenn.bfloat16


def test_scalar_over_a_tensor_is_reciprocal_times_the_scalar():
    x = tracenn.tensor([0.37, 0.74, 1.48])
    assert (3 / x).tolist() == [8.108108520507812, 4.054054260253906, 2.027027130126953]  # 3/x: ...07566, ...3783
    assert (1 / tracenn.tensor([1, 2, -4, 0])).tolist() == [1.0, 0.5, -0.25, float("inf")]


@pytest.mark.parametrize("compiled", [False, True])
def test_gradients_and_compiled(compiled):
    def f(x):
        return 3 / x + x * 0.9

    x = tracenn.tensor([2.0, 4.0], requires_grad=True)
    out = (tracenn.compile(f) if compiled else f)(x)
    out.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), [3.3, 4.35], rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), [-0.75 + 0.9, -0.1875 + 0.9], rtol=1e-6)
    y = (tracenn.compile(lambda v: v * 0.9) if compiled else (lambda v: v * 0.9))(
        tracenn.tensor(VALUES, dtype=tracenn.bfloat16))
    assert y.float().tolist() == [0.09423828125, -2.921875, 6.3125]


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("op", ["mul", "div", "add", "sub", "rsub", "rdiv"])
def test_scalar_arithmetic_equals_torch_bit_for_bit(dtype, op):
    torch = pytest.importorskip("torch")
    f = {"mul": lambda x, s: x * s, "div": lambda x, s: x / s, "add": lambda x, s: x + s,
         "sub": lambda x, s: x - s, "rsub": lambda x, s: s - x, "rdiv": lambda x, s: s / x}[op]
    vals = (np.random.default_rng(0).standard_normal(4096) * 3).astype(np.float32)
    for s in (0.9, 0.1, 3.0001, 1 / 3, 2.0):
        got = f(tracenn.tensor(vals, dtype=getattr(tracenn, dtype)), s)
        want = f(torch.tensor(vals, dtype=getattr(torch, dtype)), s)
        np.testing.assert_array_equal(got.double().numpy(), want.double().numpy(), err_msg=f"{dtype} {op} {s}")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64"])
@pytest.mark.parametrize("op", ["mul", "div"])
def test_mul_div_gradients_equal_torch_bit_for_bit(dtype, op):
    """Both operands' gradients (tensor by tensor, and by a scalar) round where torch's do:
    d(x / y)/dy is ``-g * ((x / y) / y)``, half precision computed in float32."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, y, w = (rng.standard_normal(512) * 3).astype(np.float32), (rng.standard_normal(512) + 3).astype(np.float32), \
        rng.standard_normal(512).astype(np.float32)
    f = (lambda a, b: a * b) if op == "mul" else (lambda a, b: a / b)
    grads = []
    for lib in (tracenn, torch):
        dt = getattr(lib, dtype)
        a, b = lib.tensor(x, dtype=dt, requires_grad=True), lib.tensor(y, dtype=dt, requires_grad=True)
        c = lib.tensor(x, dtype=dt, requires_grad=True)
        ((f(a, b) + f(c, 0.9)) * lib.tensor(w, dtype=dt)).sum().backward()
        grads.append([t.grad.double().numpy() for t in (a, b, c)])
    (ga, gb, gc), (ta, tb, tc) = grads
    np.testing.assert_array_equal(ga, ta)
    np.testing.assert_array_equal(gb, tb)
    if op == "div" and dtype in ("float32", "float64"):  # (g / 0.9 is g * (1 / 0.9) in XLA: see above)
        np.testing.assert_allclose(gc, tc, rtol=3e-16 if dtype == "float64" else 2e-7)
    else:
        np.testing.assert_array_equal(gc, tc)
