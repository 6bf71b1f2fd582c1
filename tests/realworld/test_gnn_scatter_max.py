"""Max/min message aggregation as torch_geometric's internals write it with plain torch:
``scatter_reduce(..., reduce="amax", include_self=False)`` and ``index_reduce_``. torch shares a
max's gradient evenly among every value equal to it, and with ``include_self=False`` it still
counts the tensor's own value among them (then gives it nothing): a node whose messages are
[2, 2] reduced onto a base of 2 sends 1/3 of its gradient to each message."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

DST = [0, 0, 1, 1, 1, 3, 3, 0]
SRC = [1.0, 2.0, 2.0, 2.0, -1.0, 0.5, 0.0, 2.0]
BASE = [2.0, 0.0, 5.0, 0.0, 1.0]
W = [1.0, 2.0, 3.0, 4.0, 5.0]


def _grads(torch, reduce, include_self, compiled=False):
    def fn(base, src, w):
        y = base.scatter_reduce(0, torch.tensor(DST), src, reduce=reduce, include_self=include_self)
        return y, (y * w).sum()
    if compiled:
        fn = tracenn.compile(fn)
    base = torch.tensor(BASE, requires_grad=True)
    src = torch.tensor(SRC, requires_grad=True)
    y, loss = fn(base, src, torch.tensor(W))
    loss.backward()
    return y.detach().numpy(), base.grad.numpy(), src.grad.numpy()


def test_amax_exclude_self_counts_the_tie_with_self():
    y, gbase, gsrc = _grads(tracenn, "amax", False)
    np.testing.assert_array_equal(y, [2.0, 2.0, 5.0, 0.5, 1.0])
    # node 0: messages 1 and 7 tie with the base's 2.0 (three members), the base gets nothing
    np.testing.assert_allclose(gsrc, [0, 1 / 3, 1, 1, 0, 4, 0, 1 / 3], rtol=1e-6)
    np.testing.assert_array_equal(gbase, [0, 0, 3, 0, 5])  # rows 2 and 4 get no message


def test_amin_exclude_self_counts_the_tie_with_self():
    y, gbase, gsrc = _grads(tracenn, "amin", False)
    np.testing.assert_array_equal(y, [1.0, -1.0, 5.0, 0.0, 1.0])
    np.testing.assert_allclose(gsrc, [1, 0, 0, 0, 2, 0, 2, 0], rtol=1e-6)  # node 3: 0.0 ties the base's 0.0


def test_integer_amax_exclude_self_ignores_self():
    x = tracenn.tensor([100, -5, 7])
    y = x.scatter_reduce(0, tracenn.tensor([0, 0, 1]), tracenn.tensor([3, 4, -9]), "amax", include_self=False)
    np.testing.assert_array_equal(y.numpy(), [4, -9, 7])
    y = x.scatter_reduce(0, tracenn.tensor([0, 0, 1]), tracenn.tensor([3, 4, -9]), "amin", include_self=False)
    np.testing.assert_array_equal(y.numpy(), [3, -9, 7])


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("include_self", [True, False])
@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
def test_scatter_reduce_matches_pytorch(reduce, include_self, compiled):
    torch = pytest.importorskip("torch")
    for got, want in zip(_grads(tracenn, reduce, include_self, compiled), _grads(torch, reduce, include_self)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_index_reduce_amax_matches_pytorch():
    torch = pytest.importorskip("torch")

    def run(T):
        src = T.tensor([[2.0, 1.0], [1.0, 3.0], [2.0, 0.5]], requires_grad=True)
        y = T.tensor([[2.0, 0.0], [0.0, 0.0]]).index_reduce(0, T.tensor([0, 0, 0]), src, "amax", include_self=False)
        y.sum().backward()
        return y.detach().numpy(), src.grad.numpy()
    for got, want in zip(run(tracenn), run(torch)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
