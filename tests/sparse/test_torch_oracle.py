"""Sparse COO tensors against torch itself (skipped without torch): the same program, written once
against a ``torch``-like module, run with torch and with tracenn."""
import numpy as np
import pytest

import tracenn
import tracenn.sparse

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks")

IDX = [[0, 1, 1, 3, 0, 2], [2, 0, 2, 1, 2, 3]]
VAL = [0.5, -1.25, 2.0, 3.5, 1.0, -0.75]
DENSE = np.arange(12, dtype=np.float32).reshape(4, 3) / 7


def coo(T, *args, **kwargs):
    return T.sparse_coo_tensor(*args, **kwargs)


def as_np(x):
    if x.is_sparse:
        x = x.to_dense()
    return x.detach().numpy()


PROGRAMS = {
    "to_dense": lambda T: coo(T, IDX, VAL, (4, 4)).to_dense(),
    "coalesce": lambda T: coo(T, IDX, VAL, (4, 4)).coalesce().values(),
    "coalesce_indices": lambda T: coo(T, IDX, VAL, (4, 4)).coalesce().indices(),
    "t": lambda T: coo(T, IDX, VAL, (4, 4)).t(),
    "sparse.mm": lambda T: T.sparse.mm(coo(T, IDX, VAL, (4, 4)), T.tensor(DENSE)),
    "spmm": lambda T: T.spmm(coo(T, IDX, VAL, (4, 4)), T.tensor(DENSE)),
    "matmul_vec": lambda T: T.matmul(coo(T, IDX, VAL, (4, 4)), T.tensor(DENSE[:, 1])),
    "dense_at_sparse": lambda T: T.tensor(DENSE.T) @ coo(T, IDX, VAL, (4, 4)),
    "sum": lambda T: T.sparse.sum(coo(T, IDX, VAL, (4, 4))),
    "sum_dim1": lambda T: T.sparse.sum(coo(T, IDX, VAL, (4, 4)), 1),
    "sum_dim0_values": lambda T: T.sparse.sum(coo(T, IDX, VAL, (4, 4)), 0).values(),
    "softmax1": lambda T: T.sparse.softmax(coo(T, IDX, VAL, (4, 4)), 1),
    "softmax0": lambda T: T.sparse.softmax(coo(T, IDX, VAL, (4, 4)), 0),
    "log_softmax1": lambda T: T.sparse.log_softmax(coo(T, IDX, VAL, (4, 4)), 1),
    "scalar": lambda T: (coo(T, IDX, VAL, (4, 4)) * 3 / 2).coalesce().values(),
    "to_sparse": lambda T: T.tensor(DENSE - 0.5).relu().to_sparse().indices(),
    "add": lambda T: (coo(T, IDX, VAL, (4, 4)).coalesce() + coo(T, [[3], [3]], [1.], (4, 4)).coalesce()).values(),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_same_numbers_as_torch(name):
    want, got = PROGRAMS[name](torch), PROGRAMS[name](tracenn)
    assert got.is_sparse == want.is_sparse
    np.testing.assert_allclose(as_np(got), as_np(want), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kwargs", [{}, {"dtype": "float64"}, {"requires_grad": True}])
def test_same_repr_as_torch(kwargs):
    def make(T):
        kw = {k: getattr(T, v) if k == "dtype" else v for k, v in kwargs.items()}
        return coo(T, IDX, VAL, (4, 4), **kw)
    assert repr(make(tracenn)) == repr(make(torch)).replace("torch.", "tracenn.")
    h = [coo(T, IDX, np.arange(12.).reshape(6, 2), (4, 4, 2)).coalesce() for T in (tracenn, torch)]
    assert repr(h[0]) == repr(h[1]).replace("torch.", "tracenn.")


def test_gradients_as_torch():
    outs = {}
    for T in (torch, tracenn):
        v = T.tensor(VAL, requires_grad=True)
        d = T.tensor(DENSE, requires_grad=True)
        leaf = coo(T, IDX, VAL, (4, 4)).coalesce().detach().requires_grad_()
        s = coo(T, T.tensor(IDX), v * 2, (4, 4))
        loss = (T.sparse.mm(s, d) ** 2).sum() + (T.sparse.mm(leaf, d) * d.sum()).sum()
        loss = loss + T.sparse.softmax(s, 1).to_dense()[:, 2].sum()
        loss.backward()
        outs[T] = [v.grad.numpy(), d.grad.numpy(), leaf.grad.coalesce().values().numpy(),
                   leaf.grad.coalesce().indices().numpy()]
    for got, want in zip(outs[tracenn], outs[torch]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
