"""tracenn.signal.windows: SciPy-style windows with torch's grid, defaults and errors."""
import numpy as np
import pytest

import tracenn
from tracenn.signal import windows as W

PARAMS = {"general_cosine": dict(a=[0.46, 0.23, 0.31]), "kaiser": dict(beta=5.0), "gaussian": dict(std=2.5)}


def test_known_values():
    np.testing.assert_allclose(W.hann(5).numpy(), [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-7)
    np.testing.assert_allclose(W.hamming(3).numpy(), [0.08, 1.0, 0.08], atol=1e-7)
    np.testing.assert_allclose(W.bartlett(5).numpy(), [0.0, 0.5, 1.0, 0.5, 0.0])
    np.testing.assert_allclose(W.gaussian(3, std=1.0).numpy(), np.exp([-0.5, 0.0, -0.5]), rtol=1e-6)
    np.testing.assert_allclose(W.exponential(3, tau=2.0).numpy(), np.exp([-0.5, 0.0, -0.5]), rtol=1e-6)
    np.testing.assert_allclose(W.cosine(4).numpy(), np.sin(np.pi * (np.arange(4) + 0.5) / 4), rtol=1e-6)
    np.testing.assert_allclose(W.kaiser(3, beta=2.0, dtype=tracenn.float64).numpy(),
                               [1 / np.i0(2.0), 1.0, 1 / np.i0(2.0)], rtol=1e-12)
    np.testing.assert_allclose(W.nuttall(3).numpy()[[0, 1]], [0.3635819 - 0.4891775 + 0.1365995 - 0.0106411, 1.0],
                               atol=1e-7)


@pytest.mark.parametrize("name", W.__all__)
def test_periodic_is_symmetric_of_one_more_point(name):
    kw = PARAMS.get(name, {})
    sym = getattr(W, name)(9, sym=True, dtype=tracenn.float64, **kw).numpy()
    per = getattr(W, name)(8, sym=False, dtype=tracenn.float64, **kw).numpy()
    if name == "exponential":  # its periodic centre is M / 2 unless given
        per = W.exponential(8, sym=False, center=4.0, dtype=tracenn.float64).numpy()
    np.testing.assert_allclose(per, sym[:8], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sym, sym[::-1], atol=1e-12)


@pytest.mark.parametrize("name", W.__all__)
def test_lengths_dtype_and_grad(name):
    f = getattr(W, name)
    kw = PARAMS.get(name, {})
    assert f(0, **kw).shape == (0,) and f(1, **kw).tolist() == [1.0]
    w = f(6, dtype=tracenn.float64, requires_grad=True, **kw)
    assert w.dtype is tracenn.float64 and w.requires_grad and w.shape == (6,)
    assert f(6, **kw).dtype is tracenn.float32


def test_errors():
    with pytest.raises(ValueError, match="requires non-negative window length, got M=-1"):
        W.hann(-1)
    with pytest.raises(ValueError, match="expects float32 or float64 dtypes"):
        W.gaussian(3, dtype=tracenn.float16)
    with pytest.raises(ValueError, match="Tau must be positive"):
        W.exponential(3, tau=0)
    with pytest.raises(ValueError, match="Center must be None for symmetric windows"):
        W.exponential(3, center=1.0)
    with pytest.raises(ValueError, match="Standard deviation must be positive"):
        W.gaussian(3, std=-1)
    with pytest.raises(ValueError, match="beta must be non-negative"):
        W.kaiser(3, beta=-1)
    with pytest.raises(TypeError, match="Coefficients must be a list/tuple"):
        W.general_cosine(3, a=0.5)
    with pytest.raises(ValueError, match="Coefficients cannot be empty"):
        W.general_cosine(3, a=[])


@pytest.mark.parametrize("name", W.__all__)
@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_matches_torch(name, sym, dtype):
    torch = pytest.importorskip("torch")
    kw = dict(PARAMS.get(name, {}))
    if name == "exponential" and not sym:
        kw = dict(center=1.5, tau=2.0)
    for M in (0, 1, 2, 3, 4, 7, 10, 33):
        want = getattr(torch.signal.windows, name)(M, sym=sym, dtype=getattr(torch, dtype), **kw).numpy()
        got = getattr(W, name)(M, sym=sym, dtype=getattr(tracenn, dtype), **kw).numpy()
        assert got.dtype == want.dtype and got.shape == want.shape
        # torch evaluates in the dtype, tracenn in float64 then rounds: the last float32 bit may differ
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 if dtype == "float32" else 1e-12)
