"""Sparse COO tensors (tracenn/sparse/_coo.py): making them, their parts, conversions, repr, and the
errors for what they do not support. NumPy references only (torch comparisons: test_torch_oracle.py)."""
import numpy as np
import pytest

import tracenn
import tracenn.sparse
from tracenn.errors import DataDependentError, SparseUnsupportedError

coo = tracenn.sparse_coo_tensor

I = [[0, 1, 1, 0], [2, 0, 2, 2]]
V = [3., 4., 5., 1.]


def dense_ref(indices, values, shape):
    out = np.zeros(shape, np.asarray(values).dtype)
    np.add.at(out, tuple(np.asarray(indices)), np.asarray(values))
    return out


def test_parts_and_attributes():
    s = coo(I, V, (2, 3))
    assert s.is_sparse and not tracenn.ones(2).is_sparse
    assert s.layout is tracenn.sparse.sparse_coo and repr(s.layout) == "tracenn.sparse_coo"
    assert tracenn.ones(2).layout is tracenn.strided
    assert tuple(s.shape) == (2, 3) and s.size(1) == 3 and s.dim() == 2 and s.numel() == 6
    assert s.dtype is tracenn.float32 and s.device.type == "cpu"
    assert (s.sparse_dim(), s.dense_dim(), s._nnz()) == (2, 0, 4)
    assert not s.is_coalesced() and isinstance(s, tracenn.Tensor)
    np.testing.assert_array_equal(s._indices().numpy(), I)
    np.testing.assert_array_equal(s._values().numpy(), V)
    assert s._indices().dtype is tracenn.int64


def test_toplevel_names():
    assert tracenn.sparse_coo is tracenn.sparse.sparse_coo and tracenn.spmm is tracenn.sparse.spmm
    assert tracenn.sparse_coo_tensor([[0]], [1.]).is_sparse


def test_to_dense_sums_duplicates():
    s = coo(I, V, (2, 3))
    np.testing.assert_array_equal(s.to_dense().numpy(), dense_ref(I, V, (2, 3)))
    assert s.to_dense(tracenn.float64).dtype is tracenn.float64


def test_hybrid_dense_dims():
    vals = np.arange(8.).reshape(4, 2)
    s = coo(I, vals, (2, 3, 2))
    assert (s.sparse_dim(), s.dense_dim()) == (2, 1)
    np.testing.assert_array_equal(s.to_dense().numpy(), dense_ref(I, vals, (2, 3, 2)))


def test_size_inferred_from_indices():
    s = coo([[0, 4], [1, 0]], [1., 2.])
    assert tuple(s.shape) == (5, 2)
    assert tuple(coo([[0, 1]], [[1., 2., 3.]] * 2).shape) == (2, 3)


def test_coalesce_sorts_and_sums():
    c = coo(I, V, (2, 3)).coalesce()
    assert c.is_coalesced() and c.coalesce() is c
    np.testing.assert_array_equal(c.indices().numpy(), [[0, 1, 1], [2, 0, 2]])
    np.testing.assert_array_equal(c.values().numpy(), [4., 4., 5.])


def test_indices_values_need_coalesced():
    s = coo(I, V, (2, 3))
    with pytest.raises(RuntimeError, match="uncoalesced tensor, please call .coalesce"):
        s.indices()
    with pytest.raises(RuntimeError, match="uncoalesced tensor"):
        s.values()
    assert coo([[0, 1]], [1., 2.], is_coalesced=True).is_coalesced()


def test_to_sparse_round_trip():
    a = np.array([[0., 1., 0.], [2., 0., 3.]], np.float32)
    s = tracenn.tensor(a).to_sparse()
    assert s.is_coalesced() and s._nnz() == 3
    np.testing.assert_array_equal(s.indices().numpy(), np.stack(np.nonzero(a)))
    np.testing.assert_array_equal(s.to_dense().numpy(), a)
    assert tracenn.tensor(a).to_sparse_coo()._nnz() == 3
    h = tracenn.tensor([[[0., 1.], [0., 0.]], [[0., 0.], [0., 0.]], [[2., 0.], [3., 3.]]]).to_sparse(1)
    assert (h.sparse_dim(), h.dense_dim(), h._nnz()) == (1, 2, 2)
    np.testing.assert_array_equal(h.indices().numpy(), [[0, 2]])
    assert s.to_sparse() is s


def test_transpose_and_scalars():
    s = coo(I, V, (2, 3))
    ref = dense_ref(I, V, (2, 3))
    np.testing.assert_array_equal(s.t().to_dense().numpy(), ref.T)
    np.testing.assert_array_equal(s.transpose(0, 1).to_dense().numpy(), ref.T)
    for got, want in [(s * 2, ref * 2), (2 * s, ref * 2), (s / 4, ref / 4), (-s, -ref),
                      (s * tracenn.tensor(3.), ref * 3), (s.mul(0.5), ref * 0.5)]:
        assert got.is_sparse
        np.testing.assert_allclose(got.to_dense().numpy(), want)


def test_add_sparse_sparse():
    a, b = coo(I, V, (2, 3)).coalesce(), coo([[1], [1]], [7.], (2, 3)).coalesce()
    c = a + b
    assert c.is_coalesced() and c._nnz() == 4
    np.testing.assert_array_equal(c.to_dense().numpy(), dense_ref(I, V, (2, 3)) + dense_ref([[1], [1]], [7.], (2, 3)))


def test_dtype_device_and_legacy_constructor():
    s = coo(I, V, (2, 3), dtype=tracenn.float64)
    assert s.dtype is tracenn.float64 and s._values().dtype is tracenn.float64
    assert s.to(tracenn.float32).dtype is tracenn.float32
    assert coo(tracenn.tensor(I, dtype=tracenn.int32), V)._indices().dtype is tracenn.int64
    f = tracenn.sparse.FloatTensor(tracenn.tensor(I), tracenn.tensor(V, dtype=tracenn.float64), tracenn.Size([2, 3]))
    assert f.dtype is tracenn.float32 and tuple(f.shape) == (2, 3)


@pytest.mark.parametrize("args, match", [
    (([[0, 1], [0, 0]], [1.], (2, 2)), "same nnz, but got nnz from indices: 2, nnz from values: 1"),
    (([[0], [0]], [1.], (2, 2, 2)), r"len\(size\) = 3, sparse_dim = 2, dense_dim = 0"),
    (([[0], [0]], [[1., 2.]], (2, 2, 3)), r"values has incorrect size, expected \[1, 3\], got \[1, 2\]"),
    (([0, 1], [1., 2.], (2, 2)), r"indices must be sparse_dim x nnz, but got: \[2\]"),
    (([[5], [0]], [1.], (2, 2)), "for dim 0, size is 2 but found index 5"),
    (([[-1], [0]], [1.], (2, 2)), "found negative index -1 for dim 0"),
])
def test_bad_arguments(args, match):
    with pytest.raises(RuntimeError, match=match):
        coo(*args)


def test_float_indices_refused():
    with pytest.raises(RuntimeError, match="indices must be an int64 tensor"):
        coo(tracenn.tensor([[0.], [1.]]), [1.], (2, 2))


def test_repr():
    s = coo(I, V, (2, 3))
    assert repr(s) == ("tensor(indices=tensor([[0, 1, 1, 0],\n"
                       "                       [2, 0, 2, 2]]),\n"
                       "       values=tensor([3., 4., 5., 1.]),\n"
                       "       size=(2, 3), nnz=4, layout=tracenn.sparse_coo)")
    assert repr(coo(I, V, (2, 3), dtype=tracenn.float64)).endswith("nnz=4, dtype=tracenn.float64, "
                                                                   "layout=tracenn.sparse_coo)")
    assert repr(coo(I, V, (2, 3), requires_grad=True)).endswith("layout=tracenn.sparse_coo, requires_grad=True)")
    e = coo(np.zeros((2, 0), np.int64), np.zeros(0, np.float32), (2, 3))
    assert repr(e) == ("tensor(indices=tensor([], size=(2, 0)),\n"
                       "       values=tensor([], size=(0,)),\n"
                       "       size=(2, 3), nnz=0, layout=tracenn.sparse_coo)")


UNSUPPORTED = [
    ("s + dense", lambda s: s + tracenn.ones(2, 3)),
    ("dense + s", lambda s: tracenn.ones(2, 3) + s),
    ("s * dense", lambda s: s * tracenn.ones(2, 3)),
    ("dense * s", lambda s: tracenn.ones(2, 3) * s),
    ("relu method", lambda s: s.relu()),
    ("tracenn.exp", lambda s: tracenn.exp(s)),
    ("indexing", lambda s: s[0]),
    ("view", lambda s: s.view(-1)),
    ("numpy", lambda s: s.numpy()),
    ("cat", lambda s: tracenn.cat([s, s])),
    ("s - s", lambda s: s - s),
    ("sparse @ sparse", lambda s: tracenn.sparse.mm(s, s.t())),
    ("bool", lambda s: bool(s)),
    ("sum keepdim", lambda s: s.sum(0, keepdim=True)),
]


@pytest.mark.parametrize("name, fn", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_raise_clear_error(name, fn):
    s = coo(I, V, (2, 3))
    with pytest.raises(SparseUnsupportedError, match=r"sparse COO tensor .*Call .to_dense\(\) first"):
        fn(s)


def test_unsupported_error_is_torchs_type():
    assert issubclass(SparseUnsupportedError, NotImplementedError)
    assert issubclass(SparseUnsupportedError, RuntimeError)


def test_unsupported_inside_compile():
    s = coo(I, V, (2, 3))
    with pytest.raises(SparseUnsupportedError, match="sparse COO"):
        tracenn.compile(lambda a: tracenn.relu(a))(s)


def test_coalesce_inside_compile_is_data_dependent():
    s = coo(I, V, (2, 3))
    with pytest.raises(DataDependentError, match=r"coalesce\(\).*adj = adj.coalesce\(\)"):
        tracenn.compile(lambda a: a.coalesce().to_dense())(s)
    c = s.coalesce()  # coalesced already: nothing to read
    np.testing.assert_array_equal(tracenn.compile(lambda a: a.coalesce().to_dense())(c).numpy(),
                                  dense_ref(I, V, (2, 3)))
