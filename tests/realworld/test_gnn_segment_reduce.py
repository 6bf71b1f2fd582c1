"""Global pooling of a mini-batch of graphs stored back to back (CSR-style), with
``torch.segment_reduce`` and per-graph node counts computed from the ``batch`` vector inside the
compiled step: the output's length is the counts' (known), the segment of each node is computed
in the program."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

X = np.arange(18, dtype=np.float32).reshape(6, 3) - 7.0
BATCH = [0, 1, 1, 3, 3, 3]  # graph 2 has no nodes


def pool(torch, x, batch, reduce):
    counts = torch.zeros(4, dtype=torch.long).scatter_add_(0, batch, torch.ones_like(batch))
    return torch.segment_reduce(x, reduce, lengths=counts, initial=0.0 if reduce == "max" else None)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_pooling_with_traced_lengths_compiles(reduce):
    step = tracenn.compile(lambda x, b: pool(tracenn, x, b, reduce))
    got = step(tracenn.tensor(X), tracenn.tensor(BATCH)).numpy()
    np.testing.assert_array_equal(got, pool(tracenn, tracenn.tensor(X), tracenn.tensor(BATCH), reduce).numpy())
    want = {"sum": [X[0], X[1] + X[2], 0 * X[0], X[3] + X[4] + X[5]],
            "mean": [X[0], (X[1] + X[2]) / 2, np.full(3, np.nan), (X[3] + X[4] + X[5]) / 3],
            "max": [np.maximum(X[0], 0), np.maximum(X[2], 0), np.zeros(3), X[5]]}[reduce]  # (initial=0 counts)
    np.testing.assert_allclose(got, np.array(want, np.float32), rtol=1e-6)


def test_offsets_traced_and_gradient():
    x = tracenn.tensor(X + 10, requires_grad=True)
    step = tracenn.compile(lambda x, o: tracenn.segment_reduce(x, "max", offsets=o, initial=0.0).sum())
    step(x, tracenn.tensor([0, 1, 3, 3, 6])).backward()
    want = np.array([[1, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(x.grad.numpy(), want)


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    for reduce in ("sum", "mean", "max", "min", "prod"):
        got = tracenn.compile(lambda x, b: pool(tracenn, x, b, reduce))(tracenn.tensor(X), tracenn.tensor(BATCH))
        want = pool(torch, torch.tensor(X), torch.tensor(BATCH), reduce)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, equal_nan=True)
