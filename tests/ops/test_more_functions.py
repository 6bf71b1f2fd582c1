"""trace, diff, kron, block_diag, diag_embed, rot90, cartesian_prod, combinations, vander, cov,
corrcoef, quantile/nanquantile, logcumsumexp, searchsorted/bucketize, histc: values against
PyTorch (and NumPy), gradients against PyTorch, compiled equal to eager, torch's errors."""
import numpy as np
import pytest

import tracenn
from helpers import to_np

A = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
S = np.sort(A, axis=1)
B = A.copy()
B[0, 1] = np.nan

CASES = {  # name: (call on a namespace T and the tensors, inputs, differentiable)
    "trace": (lambda T, x: x[:, :3].trace(), [A], True),
    "diff": (lambda T, x: T.diff(x, n=2, dim=1, prepend=x[:, :1]), [A], True),
    "diff_bool": (lambda T, x: T.diff(x > 0), [A], False),
    "kron": (lambda T, x: T.kron(x, x[:2, :2]), [A], True),
    "block_diag": (lambda T, x: T.block_diag(x[0, 0], x[0], x[:2, :2]), [A], True),
    "diag_embed": (lambda T, x: T.diag_embed(x, offset=1), [A], True),
    "diag_embed_dims": (lambda T, x: T.diag_embed(x, offset=-2, dim1=0, dim2=2), [A], True),
    "rot90": (lambda T, x: T.rot90(x, 3, (1, 0)), [A], True),
    "cartesian_prod": (lambda T, x: T.cartesian_prod(x[0], x[1, :2]), [A], True),
    "combinations": (lambda T, x: T.combinations(x[0], 3, with_replacement=True), [A], True),
    "vander": (lambda T, x: T.vander(x[0], 3, increasing=True), [A], False),  # (torch's backward fails: in-place)
    "cov": (lambda T, x: T.cov(x), [A], True),
    "cov_weights": (lambda T, x: T.cov(x, fweights=T.tensor([1, 2, 1, 3]), aweights=T.tensor([0.5, 1.0, 2.0, 1.0])), [A], True),
    "corrcoef": (lambda T, x: T.corrcoef(x), [A], True),
    "quantile": (lambda T, x: T.quantile(x, T.tensor([0.1, 0.5, 0.9]), dim=1, keepdim=True), [A], True),
    "quantile_nearest": (lambda T, x: T.quantile(x, 0.3, interpolation="nearest"), [A], True),
    "quantile_nan": (lambda T, x: T.quantile(x, 0.5, dim=1), [B], False),
    "nanquantile": (lambda T, x: T.nanquantile(x, 0.5, dim=1, interpolation="midpoint"), [B], False),
    "logcumsumexp": (lambda T, x: T.logcumsumexp(x, 1), [A], True),
    "searchsorted": (lambda T, s, x: T.searchsorted(s, x), [S, A], False),
    "searchsorted_1d_right": (lambda T, s, x: T.searchsorted(s[0], x, side="right"), [S, A], False),
    "bucketize": (lambda T, s, x: T.bucketize(x, s[0], right=True), [S, A], False),
    "histc": (lambda T, x: T.histc(x, bins=5, min=-1, max=1), [A], False),
}


def _run(lib, name, grad=False):
    fn, inputs, _ = CASES[name]
    ts = [lib.tensor(a, requires_grad=grad) for a in inputs]
    return fn(lib, *ts), ts


@pytest.mark.parametrize("name", list(CASES))
def test_values_and_compiled(name):
    out, ts = _run(tracenn, name)
    compiled = tracenn.compile(lambda *xs: CASES[name][0](tracenn, *xs))
    np.testing.assert_allclose(to_np(compiled(*ts)), to_np(out), rtol=1e-5, atol=1e-6)
    torch = pytest.importorskip("torch")
    tout, _ = _run(torch, name)
    np.testing.assert_allclose(to_np(out), tout.numpy(), rtol=1e-5, atol=1e-6)
    assert str(out.dtype).split(".")[-1] == str(tout.dtype).split(".")[-1]


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c[2]])
def test_gradients_match_torch(name):
    torch = pytest.importorskip("torch")
    out, ts = _run(tracenn, name, grad=True)
    tout, tts = _run(torch, name, grad=True)
    w = np.random.default_rng(1).standard_normal(tuple(out.shape)).astype(np.float32)
    (out * tracenn.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    for t, tt in zip(ts, tts):
        np.testing.assert_allclose(to_np(t.grad), tt.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_known_values_and_errors():
    T = tracenn
    assert to_np(T.trace(T.ones(2, 3))) == 2.0
    np.testing.assert_array_equal(to_np(T.diff(T.tensor([1, 3, 2]))), [2, -1])
    assert to_np(T.combinations(T.tensor([1, 2, 3]))).tolist() == [[1, 2], [1, 3], [2, 3]]
    np.testing.assert_array_equal(to_np(T.histc(T.tensor([1.0, 2.0, 1.0]), bins=4, min=0, max=3)), [0, 2, 1, 0])
    np.testing.assert_array_equal(to_np(T.vander(T.tensor([1, 2, 3]), N=3)), [[1, 1, 1], [4, 2, 1], [9, 3, 1]])
    with pytest.raises(RuntimeError, match="trace: expected a matrix, but got tensor with dim 3"):
        T.trace(T.ones(2, 3, 4))
    with pytest.raises(RuntimeError, match="diff expects input to be at least one-dimensional"):
        T.diff(T.tensor(1.0))
    with pytest.raises(RuntimeError, match=r"quantile\(\) q must be in the range \[0, 1\] but got 1.5"):
        T.quantile(T.tensor([1.0, 2.0]), 1.5)
    with pytest.raises(RuntimeError, match=r"quantile\(\) input tensor must be either float or double dtype"):
        T.quantile(T.tensor([1, 2]), 0.5)
    with pytest.raises(RuntimeError, match="side and right can't be set to opposites"):
        T.searchsorted(T.tensor([1.0, 2.0]), T.tensor([1.5]), right=True, side="left")
    with pytest.raises(RuntimeError, match="torch.block_diag: Input tensors must have 2 or fewer dimensions. Input 0 has 3"):
        T.block_diag(T.ones(1, 1, 1))
    with pytest.raises(RuntimeError, match="expected rotation dims to be different"):
        T.rot90(T.ones(2, 2), 1, (0, 0))
