"""Integer division by zero raises ``RuntimeError: ZeroDivisionError`` eagerly, as torch on CPU."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

A = [5, -3, 7]
Z = [1, 0, 2]

# (name, fn(a, b)) for every integer division torch checks
DIVISIONS = [
    ("//", lambda a, b: a // b),
    ("%", lambda a, b: a % b),
    ("floor_divide", lambda a, b: a.floor_divide(b)),
    ("div floor", lambda a, b: a.div(b, rounding_mode="floor")),
    ("div trunc", lambda a, b: a.div(b, rounding_mode="trunc")),
    ("remainder", lambda a, b: a.remainder(b)),
    ("fmod", lambda a, b: a.fmod(b)),
    ("floor_divide_", lambda a, b: a.clone().floor_divide_(b)),
    ("remainder_", lambda a, b: a.clone().remainder_(b)),
]


@pytest.mark.parametrize("name,fn", DIVISIONS, ids=[d[0] for d in DIVISIONS])
@pytest.mark.parametrize("dtype", [tracenn.int64, tracenn.int32, tracenn.uint8])
def test_zero_tensor_divisor_raises(name, fn, dtype):
    a = tracenn.tensor([5, 3, 7], dtype=dtype)
    with pytest.raises(RuntimeError, match="^ZeroDivisionError: integer .* by zero"):
        fn(a, tracenn.tensor(Z, dtype=dtype))


@pytest.mark.parametrize("name,fn", DIVISIONS, ids=[d[0] for d in DIVISIONS])
def test_zero_scalar_divisor_raises(name, fn):
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        fn(tracenn.tensor(A), 0)


def test_scalar_dividend_zero_tensor_divisor():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        5 // tracenn.tensor(Z)
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        5 % tracenn.tensor(Z)


def test_nonzero_divisors_and_floats_do_not_raise():
    a = tracenn.tensor(A)
    np.testing.assert_array_equal((a // tracenn.tensor([2, 2, 2])).numpy(), [2, -2, 3])
    np.testing.assert_array_equal((a % 3).numpy(), [2, 0, 1])
    assert np.isinf((a.float() // 0).numpy()).all()  # a float computation gives inf, as torch
    assert np.isinf((a // 0.0).numpy()).all()  # a float divisor promotes to float
    assert (a / 0).dtype == tracenn.float32  # true division never raises
    empty = tracenn.tensor([], dtype=tracenn.int64)
    assert (empty // empty).shape == (0,)


def test_compiled_code_returns_values_instead():
    """Under jax.jit there are no values to check: no error, XLA's numbers come back."""
    import jax
    W = tracenn.Tensor._wrap

    @jax.jit
    def f(x, y):
        return (W(x) // W(y))._value

    out = np.asarray(f(np.array(A), np.array(Z)))
    assert out[0] == 5 and out[2] == 3


@pytest.mark.parametrize("name,fn", DIVISIONS, ids=[d[0] for d in DIVISIONS])
def test_matches_torch(torch, name, fn):
    for divisor in (Z, 0):
        tb = torch.tensor(Z) if divisor is Z else 0
        nb = tracenn.tensor(Z) if divisor is Z else 0
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(torch.tensor(A), tb)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            fn(tracenn.tensor(A), nb)


def test_half_floor_and_trunc_division_round_the_float32_quotient():
    """torch's CPU kernels floor or truncate a float16/bfloat16 quotient computed in float32:
    1.3046875 / 1.3076171875 is 0.99776..., which bfloat16 would round to 1.0 first."""
    a = tracenn.tensor([1.3046875, -1.3046875, 2.0], dtype=tracenn.bfloat16, requires_grad=True)
    b = tracenn.tensor(1.3076171875, dtype=tracenn.float16)
    want = [0.0, -1.0, 1.0]
    for got in (a // b, a.div(b, rounding_mode="floor"), tracenn.floor_divide(a, b)):
        assert got.dtype == tracenn.bfloat16
        assert got.tolist() == want
    (a.div(b, rounding_mode="floor")).sum().backward()
    assert a.grad.tolist() == [0.0, 0.0, 0.0]
    compiled = tracenn.compile(lambda x, y: x.div(y, rounding_mode="floor"))
    assert compiled(a.detach(), b).tolist() == want
    for got in (a.div(b, rounding_mode="trunc"), tracenn.compile(lambda x, y: x.div(y, rounding_mode="trunc"))(a, b)):
        assert got.dtype == tracenn.bfloat16 and got.tolist() == [0.0, -0.0, 1.0]


def test_half_division_by_a_divisor_per_element_rounds_the_quotient_first():
    """With a divisor per element torch's CPU kernel rounds a half quotient before truncating it, and
    with one divisor (0-d or broadcast) it does not: -9.3125 / 0.083984375 = -110.88..., -111.0 in
    bfloat16."""
    a = tracenn.tensor([-9.3125, -9.3125], dtype=tracenn.bfloat16)
    b = tracenn.tensor(0.083984375, dtype=tracenn.bfloat16)
    assert a.div(b.expand(2).clone(), rounding_mode="trunc").tolist() == [-111.0, -111.0]
    assert a.div(b, rounding_mode="trunc").tolist() == [-110.0, -110.0]
    assert a.div(b.reshape(1), rounding_mode="trunc").tolist() == [-110.0, -110.0]
