"""cumsum, cumprod and logcumsumexp of float16/bfloat16 tensors accumulate in float32 and round
each output once, as torch's CPU kernels do: within one ulp of the exact running result, where a
scan in the half dtype drifts by many (top-p sampling's running sum of bfloat16 probabilities)."""
import ml_dtypes
import numpy as np
import pytest

import tracenn

HALF = {"bfloat16": (ml_dtypes.bfloat16, 7), "float16": (np.float16, 10)}  # numpy type, mantissa bits
RNG = np.random.RandomState(0)
PROBS = RNG.dirichlet(np.ones(300), size=3).astype(np.float32)
NEAR_ONE = (RNG.rand(3, 300) * 0.02 + 0.995).astype(np.float32)
NORMAL = RNG.randn(3, 300).astype(np.float32)


def _logcumsumexp(x, axis):
    return np.logaddexp.accumulate(x, axis=axis)


CASES = [("cumsum", PROBS, np.cumsum), ("cumprod", NEAR_ONE, np.cumprod), ("logcumsumexp", NORMAL, _logcumsumexp)]


def _ulps(got, exact, bits):
    ulp = 2.0 ** (np.floor(np.log2(np.abs(exact))) - bits)
    return np.abs(got - exact) / ulp


@pytest.mark.parametrize("half", list(HALF))
@pytest.mark.parametrize("name,data,ref", CASES, ids=[c[0] for c in CASES])
def test_half_scans_stay_within_an_ulp(half, name, data, ref):
    kind, bits = HALF[half]
    x = tracenn.tensor(data).to(getattr(tracenn, half))
    out = getattr(tracenn, name)(x, -1)
    assert out.dtype == x.dtype
    exact = ref(data.astype(kind).astype(np.float64), axis=-1)
    assert _ulps(out.double().numpy(), exact, bits).max() <= 1.0


def test_half_cumsum_gradient_accumulates_in_float32():
    p = tracenn.tensor(PROBS).to(tracenn.bfloat16).requires_grad_()
    g = NORMAL.astype(ml_dtypes.bfloat16)
    (p.cumsum(-1) * tracenn.tensor(g.astype(np.float32)).to(tracenn.bfloat16)).sum().backward()
    exact = np.flip(np.cumsum(np.flip(g.astype(np.float64), -1), -1), -1)  # sum of g from i on
    rounded = exact.astype(ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_array_equal(p.grad.double().numpy(), rounded)


def test_dtype_argument_scans_in_that_dtype():
    x = tracenn.tensor(PROBS).to(tracenn.bfloat16)
    out = tracenn.cumsum(x, -1, dtype=tracenn.float32)
    assert out.dtype == tracenn.float32
    np.testing.assert_allclose(out.numpy(), np.cumsum(PROBS.astype(ml_dtypes.bfloat16).astype(np.float32), -1),
                               rtol=1e-6)


def test_compiled_matches_eager():
    x = tracenn.tensor(PROBS).to(tracenn.bfloat16)
    f = tracenn.compile(lambda t: (t.cumsum(-1), t.cumprod(-1), tracenn.logcumsumexp(t, -1)))
    for a, b in zip(f(x), (x.cumsum(-1), x.cumprod(-1), tracenn.logcumsumexp(x, -1))):
        np.testing.assert_array_equal(a.float().numpy(), b.float().numpy())
