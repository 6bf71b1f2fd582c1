"""torch.stft / istft and torch.histogram: known values, the round trip, gradients, compiled equal
to eager, torch's errors, and torch as the oracle."""
import warnings

import numpy as np
import pytest

import tracenn

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 100)).astype(np.float32)

# (stft keywords; "hann" stands for a Hann window of win_length)
CASES = [dict(n_fft=16), dict(n_fft=16, hop_length=5, win_length=10, window="hann"),
         dict(n_fft=20, center=False), dict(n_fft=16, normalized=True, pad_mode="constant"),
         dict(n_fft=16, onesided=False), dict(n_fft=15, hop_length=3),
         dict(n_fft=16, win_length=8, window="hann", center=False, align_to_window=True)]


def _kw(lib, kw, window="ones"):
    kw = dict(kw)
    size = kw.get("win_length", kw["n_fft"])
    kind = kw.get("window", window)
    kw["window"] = lib.hann_window(size) if kind == "hann" else lib.ones(size)
    return kw


def _np(t):
    return np.asarray(t.detach()._value)


def test_pure_tone_peaks_at_its_bin():
    n_fft, k = 32, 5
    t = np.arange(256)
    x = tracenn.tensor(np.cos(2 * np.pi * k * t / n_fft).astype(np.float32))
    spec = tracenn.stft(x, n_fft, window=tracenn.ones(n_fft), center=False, return_complex=True)
    assert spec.shape == (n_fft // 2 + 1, 1 + (256 - n_fft) // (n_fft // 4))
    mag = _np(spec.abs())
    assert (mag.argmax(0) == k).all()
    np.testing.assert_allclose(mag[k], n_fft / 2, rtol=1e-5)  # a cosine's energy splits between k and -k


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_istft_inverts_stft(kw):
    kw = {k: v for k, v in kw.items() if k not in ("pad_mode", "align_to_window")}
    x = tracenn.tensor(X)
    spec = tracenn.stft(x, return_complex=True, **_kw(tracenn, kw))
    if not kw.get("center", True) and kw.get("win_length", kw["n_fft"]) < kw["n_fft"]:
        # the first samples lie under the zero padding of every frame's window: not invertible (NOLA)
        with pytest.raises(RuntimeError, match="window overlap add min: 0"):
            tracenn.istft(spec, length=100, **_kw(tracenn, kw))
        return
    back = tracenn.istft(spec, length=100, **_kw(tracenn, kw))
    np.testing.assert_allclose(_np(back), X, atol=2e-6)


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_stft_matches_torch(kw):
    torch = pytest.importorskip("torch")
    for xs in (X, X[0]):
        ours = tracenn.stft(tracenn.tensor(xs), return_complex=True, **_kw(tracenn, kw))
        theirs = torch.stft(torch.tensor(xs), return_complex=True, **_kw(torch, kw))
        np.testing.assert_allclose(_np(ours), theirs.numpy(), atol=2e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch deprecates return_complex=False)
        theirs = torch.stft(torch.tensor(X), return_complex=False, **_kw(torch, kw))
    ours = tracenn.stft(tracenn.tensor(X), return_complex=False, **_kw(tracenn, kw))
    np.testing.assert_allclose(_np(ours), theirs.numpy(), atol=2e-6)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    kw = dict(n_fft=16, hop_length=5, win_length=10, window="hann")
    x = tracenn.tensor(X, requires_grad=True)
    loss = tracenn.istft(tracenn.stft(x, return_complex=True, **_kw(tracenn, kw)).pow(2), length=100,
                         **_kw(tracenn, kw)).sin().sum() + tracenn.stft(x, return_complex=True, **_kw(tracenn, kw)).abs().sum()
    loss.backward()
    tx = torch.tensor(X, requires_grad=True)
    tl = torch.istft(torch.stft(tx, return_complex=True, **_kw(torch, kw)).pow(2), length=100,
                     **_kw(torch, kw)).sin().sum() + torch.stft(tx, return_complex=True, **_kw(torch, kw)).abs().sum()
    tl.backward()
    np.testing.assert_allclose(float(loss), float(tl.detach()), rtol=1e-5)
    np.testing.assert_allclose(_np(x.grad), tx.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_gradcheck_float64():
    x = tracenn.tensor(RNG.standard_normal(40), dtype=tracenn.float64, requires_grad=True)
    w = tracenn.hann_window(8, dtype=tracenn.float64)
    assert tracenn.autograd.gradcheck(
        lambda x: tracenn.view_as_real(tracenn.stft(x, 8, hop_length=3, window=w, return_complex=True)), (x,))


def test_compiled_equals_eager():
    w = tracenn.hann_window(16)

    def spectral_loss(x):
        spec = tracenn.stft(x, 16, hop_length=4, window=w, return_complex=True)
        return tracenn.istft(spec * 0.5, 16, hop_length=4, window=w, length=100).square().mean() + spec.abs().mean()

    x = tracenn.tensor(X, requires_grad=True)
    eager = spectral_loss(x)
    (g_eager,) = tracenn.autograd.grad(eager, x)
    compiled = tracenn.compile(spectral_loss)
    out = compiled(x)
    (g_comp,) = tracenn.autograd.grad(out, x)
    np.testing.assert_allclose(float(out), float(eager), rtol=1e-6)
    np.testing.assert_allclose(_np(g_comp), _np(g_eager), rtol=1e-5, atol=1e-7)


def test_errors_say_what_to_pass():
    x = tracenn.tensor(X[0])
    with pytest.raises(RuntimeError, match="stft requires the return_complex parameter"):
        tracenn.stft(x, 16)
    with pytest.raises(RuntimeError, match="expected a 1D window tensor of size equal to win_length=16"):
        tracenn.stft(x, 16, window=tracenn.ones(20), return_complex=True)
    with pytest.raises(RuntimeError, match="expected 0 < win_length <= n_fft"):
        tracenn.stft(x, 16, win_length=20, window=tracenn.ones(20), return_complex=True)
    with pytest.raises(RuntimeError, match="expected hop_length > 0"):
        tracenn.stft(x, 16, hop_length=0, window=tracenn.ones(16), return_complex=True)
    with pytest.raises(RuntimeError, match="align_to_window should only be set when center = false"):
        tracenn.stft(x, 16, window=tracenn.ones(16), return_complex=True, align_to_window=True)
    spec = tracenn.stft(x, 16, window=tracenn.zeros(16), return_complex=True)
    with pytest.raises(RuntimeError, match="window overlap add min"):
        tracenn.istft(spec, 16, window=tracenn.zeros(16))
    with pytest.raises(RuntimeError, match="istft requires a complex-valued input"):
        tracenn.istft(spec.real, 16)
    with pytest.warns(UserWarning, match="rectangular window"):
        tracenn.stft(x, 16, return_complex=True)


def test_histogram_known_values():
    x = tracenn.tensor([1.0, 2.0, 1.0, 4.0, 2.5])
    hist, edges = tracenn.histogram(x, 3)
    assert hist.tolist() == [2.0, 2.0, 1.0] and edges.tolist() == [1.0, 2.0, 3.0, 4.0]
    hist, edges = x.histogram(2, range=(0.0, 1.0))  # the right edge belongs to the last bin
    assert hist.tolist() == [0.0, 2.0] and edges.tolist() == [0.0, 0.5, 1.0]
    hist, _ = tracenn.histogram(x, tracenn.tensor([0.0, 2.0, 5.0]), weight=tracenn.full((5,), 2.0), density=True)
    np.testing.assert_allclose(hist.tolist(), [0.2, 0.2])
    hist, edges = tracenn.histogram(tracenn.tensor([3.0, 3.0]), 2)
    assert hist.tolist() == [0.0, 2.0] and edges.tolist() == [2.5, 3.0, 3.5]
    with pytest.raises(NotImplementedError, match="not implemented for 'Int64'"):
        tracenn.histogram(tracenn.tensor([1, 2]), 2)
    with pytest.raises(RuntimeError, match="min should not exceed max"):
        tracenn.histogram(x, 2, range=(2.0, 1.0))


def test_histogram_matches_torch():
    torch = pytest.importorskip("torch")
    x = RNG.standard_normal(500).astype(np.float32)
    w = RNG.random(500).astype(np.float32)
    for bins, kw in [(10, {}), (7, dict(range=(-1.0, 1.5))), (12, dict(density=True)), (5, dict(weight=w))]:
        ours = tracenn.histogram(tracenn.tensor(x), bins, **{k: tracenn.tensor(v) if k == "weight" else v
                                                              for k, v in kw.items()})
        theirs = torch.histogram(torch.tensor(x), bins, **{k: torch.tensor(v) if k == "weight" else v
                                                           for k, v in kw.items()})
        np.testing.assert_allclose(_np(ours.bin_edges), theirs.bin_edges.numpy(), rtol=1e-6)
        np.testing.assert_allclose(_np(ours.hist), theirs.hist.numpy(), rtol=1e-5)


def test_histogram_compiled_equals_eager():
    def f(x, w):
        return tracenn.histogram(x, 4, range=(0.0, 1.0), weight=w, density=True).hist

    x, w = tracenn.tensor([0.1, 0.2, 0.9, 1.0, 1.5]), tracenn.tensor([1.0, 2.0, 1.0, 1.0, 5.0])
    np.testing.assert_allclose(_np(tracenn.compile(f)(x, w)), _np(f(x, w)), rtol=1e-6)
    np.testing.assert_allclose(_np(f(x, w)), [3 / 5 * 4, 0.0, 0.0, 2 / 5 * 4], rtol=1e-6)
    # without range the data's own range is computed in the program
    np.testing.assert_array_equal(_np(tracenn.compile(lambda x: tracenn.histogram(x, 4).hist)(x)),
                                  _np(tracenn.histogram(x, 4).hist))
