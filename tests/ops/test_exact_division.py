"""Division rounds once, as torch's (and NumPy's) does, including by a broadcast divisor: XLA
rewrites ``x / broadcast(s)`` as ``x * broadcast(1 / s)``, 1 ulp off in about a third of the
results, and ``ops/elementwise._divide`` keeps such a division exact (float64 for float32 and
narrower, a materialised divisor for float64). References: NumPy's IEEE division; torch when there."""
import numpy as np
import pytest

import tracenn
from helpers import to_np

_rng = np.random.default_rng(11)
X = _rng.standard_normal((300, 64))
S = _rng.random((300, 1)) + 0.5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("divisor", ["python scalar", "0-d tensor", "row", "column", "full"])
def test_quotients_are_correctly_rounded(dtype, divisor):
    x = X.astype(dtype)
    d = {"python scalar": 3.0, "0-d tensor": np.asarray(0.7, dtype), "row": S.astype(dtype),
         "column": S[:64, 0].astype(dtype), "full": np.full(X.shape, 0.3, dtype)}[divisor]
    want = x / (np.asarray(d, dtype) if divisor != "python scalar" else dtype(d))
    y = d if divisor == "python scalar" else tracenn.tensor(d)
    got = tracenn.tensor(x) / y
    np.testing.assert_array_equal(to_np(got), want)
    compiled = tracenn.compile(lambda a, b: a / b)(tracenn.tensor(x), y)
    np.testing.assert_array_equal(to_np(compiled), want)


def test_half_precision_divides_in_float32_and_rounds_once():
    x, s = X.astype(np.float16), S.astype(np.float16)
    want = (x.astype(np.float32) / s.astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(to_np(tracenn.tensor(x) / tracenn.tensor(s)), want)


def test_gradient_of_the_dividend_is_g_over_y_rounded_once():
    x = tracenn.tensor(X.astype(np.float32), requires_grad=True)
    s = tracenn.tensor(S.astype(np.float32))
    g = _rng.standard_normal(X.shape).astype(np.float32)
    (x / s).backward(tracenn.tensor(g))
    np.testing.assert_array_equal(to_np(x.grad), g / S.astype(np.float32))


def test_matches_torch(torch):
    x, s = X.astype(np.float32), S.astype(np.float32)
    tx, ts = torch.tensor(x, requires_grad=True), torch.tensor(s, requires_grad=True)
    ax, as_ = tracenn.tensor(x, requires_grad=True), tracenn.tensor(s, requires_grad=True)
    (tx / ts / 3.0).sum().backward()
    (ax / as_ / 3.0).sum().backward()
    np.testing.assert_array_equal(to_np(ax / as_ / 3.0), (tx / ts / 3.0).detach().numpy())
    np.testing.assert_array_equal(to_np(ax.grad), tx.grad.numpy())


def test_a_tpu_divides_as_xla_does(monkeypatch):
    """On a TPU (float64 emulated, float32 division not correctly rounded) the division is left to
    XLA: the quotient is then the reciprocal multiply's."""
    from tracenn.ops import OPS, elementwise
    monkeypatch.setattr(elementwise, "_exact_division", lambda: False)
    x = X[:, :61].astype(np.float32)  # (a shape no test divided before: its kernel is traced anew)
    try:
        got = to_np(tracenn.tensor(x) / 3.0)
    finally:
        OPS["div"]._fwd.clear()  # (no later division in this process reuses the kernel traced here)
    np.testing.assert_array_max_ulp(got, x / np.float32(3), maxulp=1)
    assert (got != x / np.float32(3)).any()
