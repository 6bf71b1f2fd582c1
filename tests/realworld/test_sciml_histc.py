"""Histograms of a state or a residual in scientific code: ``torch.histc`` and ``torch.histogram``
over the data's own range inside a compiled step (the range is computed in the program: no
value needs reading), and histc's bin of a value on a bin edge, which torch computes as
``floor((x - min) * bins / (max - min))`` in the input's dtype."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def _torch_histc(x, bins, lo, hi):
    """torch's CPU histc, in NumPy: the bin in x's dtype, true division, max in the last bin."""
    f = x.dtype.type
    lo, hi = f(lo), f(hi)
    pos = np.floor((x - lo) * f(bins) / (hi - lo)).astype(np.int64)
    pos[x == hi] = bins - 1
    inside = (x >= lo) & (x <= hi)
    return np.bincount(pos[inside], minlength=bins).astype(x.dtype)


def _edge_data(bins, lo, hi):
    """Values on and around every bin edge, plus sevenths (whose bins land on edges by rounding)."""
    rng = np.random.default_rng(bins)
    return np.concatenate([np.linspace(lo, hi, bins + 1), rng.integers(-14, 14, 100) / 7]).astype(np.float32)


@pytest.mark.parametrize("bins,lo,hi", [(7, -1.0, 0.5), (34, -0.8508867, 2.100784), (35, -1.8554695, -0.3055483)])
def test_histc_bins_values_on_edges_as_torch(bins, lo, hi):
    x = _edge_data(bins, lo, hi)
    want = _torch_histc(x, bins, lo, hi)
    np.testing.assert_array_equal(tracenn.histc(tracenn.tensor(x), bins=bins, min=lo, max=hi).numpy(), want)
    step = tracenn.compile(lambda t: tracenn.histc(t, bins=bins, min=lo, max=hi))
    np.testing.assert_array_equal(step(tracenn.tensor(x)).numpy(), want)


def test_histc_data_range_compiles():
    x = np.random.default_rng(0).standard_normal(500).astype(np.float32)
    step = tracenn.compile(lambda t: tracenn.histc(t * 2, bins=10))
    got = step(tracenn.tensor(x)).numpy()
    np.testing.assert_array_equal(got, tracenn.histc(tracenn.tensor(x * 2), bins=10).numpy())
    np.testing.assert_array_equal(got, _torch_histc(x * 2, 10, (x * 2).min(), (x * 2).max()))
    flat = tracenn.compile(lambda t: tracenn.histc(t, bins=4))(tracenn.full((3,), 2.0)).numpy()
    np.testing.assert_array_equal(flat, [0, 0, 3, 0])  # a flat range is widened to [1, 3]


def test_histogram_data_range_compiles():
    x = np.random.default_rng(1).standard_normal(300).astype(np.float32)
    hist, edges = tracenn.compile(lambda t: tracenn.histogram(t, bins=7))(tracenn.tensor(x))
    want_hist, want_edges = tracenn.histogram(tracenn.tensor(x), bins=7)
    np.testing.assert_array_equal(edges.numpy(), want_edges.numpy())
    np.testing.assert_array_equal(hist.numpy(), want_hist.numpy())
    assert hist.numpy().sum() == 300


def test_histc_and_histogram_match_pytorch_compiled():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    sevenths = (rng.integers(0, 7, 50) / 7).astype(np.float32)
    for x, bins in ((rng.standard_normal(400).astype(np.float32), 10), (sevenths, 7), (rng.standard_normal(60), 7)):
        def fn(t):
            return tracenn.histc(t, bins=bins), tracenn.histogram(t, bins=bins), tracenn.histc(t, bins, -0.5, 0.75)
        got = tracenn.compile(fn)(tracenn.tensor(x))
        t = torch.tensor(x)
        np.testing.assert_array_equal(got[0].numpy(), torch.histc(t, bins=bins).numpy())
        want = torch.histogram(t, bins=bins)
        np.testing.assert_array_equal(got[1].hist.numpy(), want.hist.numpy())
        if x.dtype == np.float32:  # (float64 edges: torch's come from long double, these within an ulp)
            np.testing.assert_array_equal(got[1].bin_edges.numpy(), want.bin_edges.numpy())
        np.testing.assert_allclose(got[1].bin_edges.numpy(), want.bin_edges.numpy(), rtol=1e-14)
        np.testing.assert_array_equal(got[2].numpy(), torch.histc(t, bins, -0.5, 0.75).numpy())
