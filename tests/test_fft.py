"""tracenn.fft: values against numpy.fft, gradients against finite differences along real and
imaginary parts (torch's convention: for L = Re<c, y>, x.grad = dL/dRe x + i dL/dIm x) and against
torch with random cotangents, compiled equal to eager, and torch's dtypes and errors."""
import numpy as np
import pytest

import tracenn
from helpers import to_np

_rng = np.random.default_rng(3)
X = _rng.standard_normal((3, 5))
Z = X + 1j * _rng.standard_normal((3, 5))
REAL_ONLY = {"rfft", "ihfft", "rfft2", "ihfft2", "rfftn", "ihfftn"}

CALLS = [  # (function, kwargs)
    ("fft", {}), ("fft", {"n": 7}), ("fft", {"n": 3, "dim": 0, "norm": "ortho"}),
    ("ifft", {}), ("ifft", {"n": 4, "norm": "forward"}),
    ("rfft", {}), ("rfft", {"n": 8, "dim": -2}), ("rfft", {"norm": "ortho"}),
    ("irfft", {}), ("irfft", {"n": 5}), ("irfft", {"n": 9, "norm": "forward"}),
    ("hfft", {}), ("hfft", {"n": 7, "norm": "ortho"}),
    ("ihfft", {}), ("ihfft", {"n": 4, "norm": "forward"}),
    ("fft2", {}), ("ifft2", {"s": (4, 6)}), ("rfft2", {"s": (2, 6), "norm": "ortho"}),
    ("irfft2", {}), ("irfft2", {"s": (3, 7)}), ("hfft2", {"s": (-1, 6)}), ("ihfft2", {"norm": "forward"}),
    ("fftn", {}), ("fftn", {"s": (6,)}), ("ifftn", {"dim": (1, 0), "norm": "ortho"}),
    ("rfftn", {"dim": (0,)}), ("irfftn", {"s": (2, 4)}), ("hfftn", {"dim": (-1,)}), ("ihfftn", {}),
]


def _np_ref(name, x, kw):
    """numpy.fft's answer (numpy wants explicit axes with s; its 2-D forms take s/axes too)."""
    kw = dict(kw)
    if name in ("hfft2", "ihfft2", "hfftn", "ihfftn"):
        return None  # numpy has no n-dimensional Hermitian transforms
    if "dim" in kw:
        kw["axis" if name in ("fft", "ifft", "rfft", "irfft", "hfft", "ihfft") else "axes"] = kw.pop("dim")
    if "s" in kw and "axes" not in kw:
        s = kw["s"]
        kw["axes"] = tuple(range(x.ndim - len(s), x.ndim))
        n = name.rstrip("2n")
        kw["s"] = tuple(x.shape[a] if v == -1 and n not in ("irfft", "hfft") else v for a, v in zip(kw["axes"], s))
    return getattr(np.fft, name)(x, **kw)


def _ids(calls):
    return [f"{n}{kw}" for n, kw in calls]


def _input(name):
    return X if name in REAL_ONLY else Z


@pytest.mark.parametrize("name,kw", CALLS, ids=_ids(CALLS))
def test_matches_numpy(name, kw):
    x = _input(name)
    got = getattr(tracenn.fft, name)(tracenn.tensor(x), **kw)
    want = _np_ref(name, x, kw)
    if want is None:
        pytest.skip("numpy has no reference")
    assert to_np(got).dtype == want.dtype
    np.testing.assert_allclose(to_np(got), want, rtol=1e-10, atol=1e-12)


def test_hermitian_transforms_invert_each_other():
    x = tracenn.tensor(X)
    np.testing.assert_allclose(to_np(tracenn.fft.hfftn(tracenn.fft.ihfftn(x), s=X.shape)), X, atol=1e-12)
    np.testing.assert_allclose(to_np(tracenn.fft.hfft2(tracenn.fft.ihfft2(x), s=X.shape)), X, atol=1e-12)
    np.testing.assert_allclose(to_np(tracenn.fft.hfftn(tracenn.fft.ihfftn(x, dim=(-1,)), s=(5,), dim=(-1,))),
                               np.fft.hfft(np.fft.ihfft(X), 5), atol=1e-12)


def _loss(name, kw, cts):
    """L(x) = Re <c, f(x)> = sum(Re c Re y + Im c Im y): torch's gradient for cotangent c is dL/dx."""
    def f(x):
        with tracenn.no_grad():
            y = to_np(getattr(tracenn.fft, name)(tracenn.tensor(x), **kw))
        return float(np.sum(np.real(np.conj(cts) * y)))
    return f


def _fd(f, x, h=1e-6):
    g = np.zeros(x.shape, x.dtype)
    for pos in np.ndindex(*x.shape):
        for unit in ((1.0, 1j) if x.dtype.kind == "c" else (1.0,)):
            xp, xm = x.copy(), x.copy()
            xp[pos] += h * unit
            xm[pos] -= h * unit
            g[pos] += unit * (f(xp) - f(xm)) / (2 * h)
    return g


def _cotangent(shape, dtype, seed=5):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(shape)
    return c + 1j * rng.standard_normal(shape) if np.dtype(dtype).kind == "c" else c


def _grad(T, name, kw, x, cts, fn=None):
    t = T.tensor(x, requires_grad=True)
    y = (fn or getattr(T.fft, name))(t, **kw) if fn is None else fn(t)
    (g,) = T.autograd.grad(y, t, T.tensor(cts))
    return to_np(g.resolve_conj() if hasattr(g, "resolve_conj") else g)


@pytest.mark.parametrize("name,kw", CALLS, ids=_ids(CALLS))
def test_grad_vs_finite_differences(name, kw):
    x = _input(name)
    y = getattr(tracenn.fft, name)(tracenn.tensor(x), **kw)
    cts = _cotangent(tuple(y.shape), to_np(y).dtype)
    got = _grad(tracenn, name, kw, x, cts)
    assert got.dtype == x.dtype
    np.testing.assert_allclose(got, _fd(_loss(name, kw, cts), x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name,kw", CALLS, ids=_ids(CALLS))
def test_matches_torch(name, kw, torch):
    x = _input(name)
    want = getattr(torch.fft, name)(torch.tensor(x), **kw).resolve_conj()
    got = getattr(tracenn.fft, name)(tracenn.tensor(x), **kw)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1]
    np.testing.assert_allclose(to_np(got), want.numpy(), rtol=1e-10, atol=1e-12)
    cts = _cotangent(tuple(want.shape), want.numpy().dtype)
    np.testing.assert_allclose(_grad(tracenn, name, kw, x, cts), _grad(torch, name, kw, x, cts),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kw", CALLS[::3], ids=_ids(CALLS[::3]))
def test_compiled_matches_eager(name, kw):
    x = _input(name)
    f = getattr(tracenn.fft, name)
    y = f(tracenn.tensor(x), **kw)
    cts = _cotangent(tuple(y.shape), to_np(y).dtype)
    want = _grad(tracenn, name, kw, x, cts)
    compiled = tracenn.compile(lambda t: f(t, **kw))
    for _ in range(2):
        t = tracenn.tensor(x, requires_grad=True)
        out = compiled(t)
        np.testing.assert_allclose(to_np(out), to_np(y), rtol=1e-12, atol=1e-12)
        out.backward(tracenn.tensor(cts))
        np.testing.assert_allclose(to_np(t.grad), want, rtol=1e-12, atol=1e-12)


class _Spectral(tracenn.nn.Module):
    """A learned filter in the frequency domain: a real parameter times rfft, back with irfft."""

    def __init__(self):
        super().__init__()
        self.gain = tracenn.nn.Parameter(tracenn.linspace(0.5, 1.5, 4, dtype=tracenn.float64))

    def forward(self, x):
        return (tracenn.fft.irfft(tracenn.fft.rfft(x) * self.gain, n=x.shape[-1]) ** 2).sum()


def test_compiled_training_step_gradient_matches_eager():
    x = tracenn.tensor(_rng.standard_normal((2, 6)))
    m = _Spectral()
    m(x).backward()
    want = to_np(m.gain.grad)
    step = tracenn.compile(m)
    for _ in range(8):  # the pullback, then the value-and-grad program
        m.gain.grad = None
        step(x).backward()
        np.testing.assert_allclose(to_np(m.gain.grad), want, rtol=1e-12)


def test_dtypes_follow_torch():
    f, c = tracenn.fft, tracenn
    assert f.fft(c.tensor([1.0, 2.0])).dtype == c.complex64
    assert f.fft(c.tensor([1.0, 2.0], dtype=c.float64)).dtype == c.complex128
    assert f.fft(c.arange(4)).dtype == c.complex64  # int -> default float -> complex
    assert f.rfft(c.tensor([True, False])).dtype == c.complex64
    assert f.irfft(c.arange(3)).dtype == c.float32
    assert f.irfft(c.tensor([1 + 1j, 2j], dtype=c.complex128)).dtype == c.float64
    c.set_default_dtype(c.float64)
    assert f.fft(c.arange(4)).dtype == c.complex128
    assert f.fftfreq(4).dtype == c.float64


@pytest.mark.parametrize("call,exc,match", [
    (lambda f, x: f.fft(x, dim=2), IndexError,
     r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"),
    (lambda f, x: f.fft(x, norm="bogus"), RuntimeError, 'Invalid normalization mode: "bogus"'),
    (lambda f, x: f.fft(x.half()), RuntimeError, "Unsupported dtype Half"),
    (lambda f, x: f.rfft(x.cfloat()), RuntimeError, "rfft expects a real input tensor, but got ComplexFloat"),
    (lambda f, x: f.ihfft(x.cfloat()), RuntimeError, "ihfft expects a real input tensor"),
    (lambda f, x: f.fft(x, n=0), RuntimeError, r"Invalid number of data points \(0\) specified"),
    (lambda f, x: f.irfft(x[:, :1]), RuntimeError, r"Invalid number of data points \(0\) specified"),
    (lambda f, x: f.fftn(x, s=(3,), dim=(0, 1)), RuntimeError, "dim and shape arguments must have the same length"),
    (lambda f, x: f.fftn(x, dim=(0, 0)), RuntimeError, "FFT dims must be unique"),
    (lambda f, x: f.fftn(x, s=(1, 2, 3)), RuntimeError, "Got shape with 3 values but input tensor only has 2"),
    (lambda f, x: f.fft(x[0, 0]), IndexError, "Dimension specified as -1 but tensor has no dimensions"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(tracenn.fft, tracenn.tensor(X, dtype=tracenn.float32))


@pytest.mark.parametrize("call,exc,match", test_errors.pytestmark[0].args[1])
def test_errors_match_torch(call, exc, match, torch):
    x = torch.tensor(X, dtype=torch.float32)
    with pytest.raises(exc, match=match):
        call(torch.fft, x)


def test_frequencies_and_shifts_match_numpy():
    f = tracenn.fft
    for n, d in ((5, 1.0), (6, 0.1), (1, 2.0)):
        np.testing.assert_allclose(to_np(f.fftfreq(n, d)), np.fft.fftfreq(n, d).astype(np.float32))
        np.testing.assert_allclose(to_np(f.rfftfreq(n, d)), np.fft.rfftfreq(n, d).astype(np.float32))
    a = np.arange(30).reshape(5, 6)
    for dim in (None, 0, -1, (0, 1)):
        np.testing.assert_array_equal(to_np(f.fftshift(tracenn.tensor(a), dim)), np.fft.fftshift(a, dim))
        np.testing.assert_array_equal(to_np(f.ifftshift(tracenn.tensor(a), dim)), np.fft.ifftshift(a, dim))
    t = f.fftfreq(4, dtype=tracenn.float64, requires_grad=True)
    assert t.dtype == tracenn.float64 and t.requires_grad


def test_reachable_as_torch_fft():
    import tracenn as torch
    x = torch.tensor([1.0, 0.0, -1.0, 0.0])
    np.testing.assert_allclose(to_np(torch.fft.rfft(x)), [0, 2, 0], atol=1e-7)
    assert torch.fft.__name__ == "tracenn.fft"
