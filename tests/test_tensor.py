"""The Tensor surface: attributes, conversions, Python protocol, operators, repr (pinned)."""
import copy
import pickle
import re

import numpy as np
import pytest

import tracenn
from helpers import assert_close


def test_attributes():
    x = tracenn.zeros(2, 3, 4)
    assert x.shape == (2, 3, 4) and isinstance(x.shape, tracenn.Size)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.ndim == 3 and x.dim() == 3 and x.numel() == 24
    assert x.dtype is tracenn.float32 and x.element_size() == 4 and x.nbytes == 96
    assert x.is_leaf and not x.requires_grad and x.grad is None and x.grad_fn is None
    assert x.T.shape == (4, 3, 2) and x.mT.shape == (2, 4, 3)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 3\)"):
        x.size(3)


def test_size_repr_and_numel():
    s = tracenn.zeros(2, 3).shape
    assert repr(s) == "tracenn.Size([2, 3])"
    assert s.numel() == 6 and s[1:] == (3,) and isinstance(s[1:], tracenn.Size)


REPRS = [
    (lambda: tracenn.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    (lambda: tracenn.tensor([1, 2]), "tensor([1, 2])"),
    (lambda: tracenn.tensor([1, 2], dtype=tracenn.int32), "tensor([1, 2], dtype=tracenn.int32)"),
    (lambda: tracenn.tensor(3.5), "tensor(3.5000)"),
    (lambda: tracenn.tensor([True, False]), "tensor([ True, False])"),
    (lambda: tracenn.tensor([1.5], dtype=tracenn.float64), "tensor([1.5000], dtype=tracenn.float64)"),
    (lambda: tracenn.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True),
     "tensor([[1., 2.],\n        [3., 4.]], requires_grad=True)"),
    (lambda: tracenn.tensor([1.0, 2.0], requires_grad=True) * 2, "tensor([2., 4.], grad_fn=<MulBackward0>)"),
    (lambda: tracenn.zeros(0, 3), "tensor([], size=(0, 3))"),
    (lambda: tracenn.tensor([1e-8, 1.0]), "tensor([1.0000e-08, 1.0000e+00])"),
]


@pytest.mark.parametrize("make,expected", REPRS)
def test_repr_pinned(make, expected):
    assert repr(make()) == expected


def test_repr_matches_torch(torch):
    rng = np.random.default_rng(0)
    for arr in [rng.standard_normal((3, 4)).astype(np.float32), np.arange(2000), rng.integers(-5, 5, (4, 4)),
                np.array([np.nan, np.inf, -1.5], dtype=np.float32), rng.standard_normal(30).astype(np.float32) * 1e6]:
        t, ref = tracenn.tensor(arr), torch.tensor(arr)
        assert repr(t) == repr(ref).replace("torch.", "tracenn."), arr.dtype


def test_item_tolist_numpy():
    assert tracenn.tensor([[2.5]]).item() == 2.5
    assert isinstance(tracenn.tensor(3).item(), int)
    assert tracenn.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    a = tracenn.tensor([1.0, 2.0]).numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        tracenn.tensor([1, 2]).item()
    with pytest.raises(RuntimeError, match="Use tensor.detach\\(\\).numpy\\(\\) instead"):
        tracenn.ones(2, requires_grad=True).numpy()
    assert np.asarray(tracenn.ones(2, requires_grad=True).detach()).tolist() == [1.0, 1.0]


def test_python_protocol():
    x = tracenn.tensor([3, 1, 2])
    assert len(x) == 3 and [int(v) for v in x] == [3, 1, 2]
    assert float(tracenn.tensor(2.5)) == 2.5 and int(tracenn.tensor(7)) == 7
    assert [10, 20, 30][tracenn.tensor(1)] == 20
    assert bool(tracenn.tensor([1])) is True
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(x)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(tracenn.tensor(1))
    assert f"{tracenn.tensor(3.14159):.2f}" == "3.14"
    assert x in {x} and hash(x) == hash(x)


def test_conversions():
    x = tracenn.tensor([1.7, -2.2])
    assert x.long().tolist() == [1, -2] and x.long().dtype is tracenn.int64
    assert x.int().dtype is tracenn.int32 and x.double().dtype is tracenn.float64
    assert x.half().dtype is tracenn.float16 and x.bfloat16().dtype is tracenn.bfloat16
    assert x.bool().tolist() == [True, True]
    assert x.to(tracenn.float64).dtype is tracenn.float64
    assert x.to(tracenn.float32) is x  # no-op returns self, as torch
    assert x.to(tracenn.zeros(1, dtype=tracenn.int8)).dtype is tracenn.int8
    assert x.to(dtype=tracenn.int16).dtype is tracenn.int16
    assert x.type() == "torch.FloatTensor"
    assert x.type(tracenn.float64).dtype is tracenn.float64
    assert x.type("torch.LongTensor").dtype is tracenn.int64
    assert x.type_as(tracenn.tensor([1])).dtype is tracenn.int64
    y = tracenn.ones(2, requires_grad=True)
    z = y.double()
    assert z.grad_fn is not None and z.dtype is tracenn.float64
    z.sum().backward()
    assert y.grad.dtype is tracenn.float32 and y.grad.tolist() == [1.0, 1.0]


def test_detach_clone():
    x = tracenn.ones(2, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    c = x.clone()
    assert c.requires_grad and c.grad_fn is not None
    c.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_pickle_and_deepcopy():
    x = tracenn.tensor([[1.0, 2.0]], requires_grad=True)
    y = pickle.loads(pickle.dumps(x))
    assert y.tolist() == x.tolist() and y.requires_grad and y.dtype is tracenn.float32
    z = copy.deepcopy(x)
    assert z is not x and z.tolist() == x.tolist() and z.requires_grad


OPERATORS = [
    ("add", lambda a, b: a + b), ("radd", lambda a, b: 2 + a), ("sub", lambda a, b: a - b),
    ("rsub", lambda a, b: 1 - a), ("mul", lambda a, b: a * b), ("rmul", lambda a, b: 3 * a),
    ("truediv", lambda a, b: a / b), ("rtruediv", lambda a, b: 1 / b), ("floordiv", lambda a, b: a // b),
    ("mod", lambda a, b: a % b), ("pow", lambda a, b: a ** 2), ("rpow", lambda a, b: 2 ** a),
    ("matmul", lambda a, b: a @ b.T), ("neg", lambda a, b: -a), ("abs", lambda a, b: abs(a)),
    ("lt", lambda a, b: a < b), ("ge", lambda a, b: a >= b), ("eq", lambda a, b: a == b),
    ("ne", lambda a, b: a != b),
]


@pytest.mark.parametrize("name,fn", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_operators_match_numpy(name, fn):
    a = np.array([[1.5, -2.0, 3.0]], dtype=np.float32)
    b = np.array([[0.5, 4.0, -3.0]], dtype=np.float32)
    got = fn(tracenn.tensor(a), tracenn.tensor(b))
    want = fn(a, b)
    assert_close(got, np.asarray(want), rtol=1e-6, check_dtype=False)


def test_bitwise_operators():
    a, b = tracenn.tensor([0b1100, 5]), tracenn.tensor([0b1010, 3])
    assert (a & b).tolist() == [8, 1] and (a | b).tolist() == [14, 7] and (a ^ b).tolist() == [6, 6]
    assert (~a).tolist() == [-13, -6] and (a << 1).tolist() == [24, 10] and (a >> 2).tolist() == [3, 1]
    m = tracenn.tensor([True, False])
    assert (~m).tolist() == [False, True] and (m & tracenn.tensor([True, True])).dtype is tracenn.bool
    with pytest.raises(RuntimeError, match="bitwise ops take integer or bool tensors"):
        tracenn.ones(2) & tracenn.ones(2)


def test_inplace_operators_keep_identity():
    x = tracenn.ones(3)
    y = x
    x += 2
    x *= tracenn.tensor([1.0, 2.0, 3.0])
    x -= 1
    x /= 2
    assert y is x and x.tolist() == [1.0, 2.5, 4.0]
    assert x.add_(1, alpha=2) is x and x.tolist() == [3.0, 4.5, 6.0]
    assert x.zero_().tolist() == [0.0, 0.0, 0.0]
    assert x.fill_(7).tolist() == [7.0] * 3
    assert x.copy_(tracenn.tensor([1, 2, 3])).tolist() == [1.0, 2.0, 3.0] and x.dtype is tracenn.float32
    assert x.clamp_(min=1.5, max=2.5).tolist() == [1.5, 2.0, 2.5]


def test_bool_subtraction_error():
    with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with two bool tensors"):
        tracenn.tensor([True]) - tracenn.tensor([False])


def test_integer_negative_power_error():
    with pytest.raises(RuntimeError, match="Integers to negative integer powers are not allowed"):
        tracenn.tensor([2]) ** -1


def test_matmul_dtype_mismatch_error():
    with pytest.raises(RuntimeError, match="expected m1 and m2 to have the same dtype, but got: float != double"):
        tracenn.ones(2, 2) @ tracenn.ones(2, 2, dtype=tracenn.float64)


def test_matmul_shape_error():
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(64x28 and 784x10\)"):
        tracenn.ones(64, 28) @ tracenn.ones(784, 10)


_NOT_BROADCASTING = [((3,), (2,), "a (3) must match the size of tensor b (2) at non-singleton dimension 0"),
                     ((2, 3), (4,), "a (3) must match the size of tensor b (4) at non-singleton dimension 1"),
                     ((5, 2, 3), (4, 1, 3), "a (5) must match the size of tensor b (4) at non-singleton dimension 0")]


@pytest.mark.parametrize("a,b,message", _NOT_BROADCASTING)
def test_shapes_that_do_not_broadcast_raise_torchs_error(a, b, message):
    """Torch's RuntimeError and words, not JAX's TypeError (the first differing sizes from the
    last dimension, and that dimension of the broadcast result); with a tape too."""
    with pytest.raises(RuntimeError, match=re.escape("The size of tensor " + message)):
        tracenn.ones(a) + tracenn.ones(b)
    with pytest.raises(RuntimeError, match=re.escape("The size of tensor " + message)):
        tracenn.ones(a, requires_grad=True) * tracenn.ones(b)


@pytest.mark.parametrize("a,b,message", _NOT_BROADCASTING)
def test_broadcast_error_is_torchs(torch, a, b, message):
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(a) + torch.ones(b)
    with pytest.raises(RuntimeError) as ours:
        tracenn.ones(a) + tracenn.ones(b)
    assert str(ours.value) == str(theirs.value)


def test_reductions_with_dim_return_named_tuples():
    x = tracenn.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    v, i = x.max(dim=1)
    assert v.tolist() == [5.0, 6.0] and i.tolist() == [1, 2]
    r = x.min(1, keepdim=True)
    assert r.values.shape == (2, 1) and r.indices.tolist() == [[0], [1]]
    assert x.max().item() == 6.0 and x.argmax().item() == 5
    s = x.sort(dim=1, descending=True)
    assert s.values.tolist() == [[5.0, 3.0, 1.0], [6.0, 4.0, 2.0]]
    assert x.topk(2).indices.tolist() == [[1, 2], [2, 0]]


def test_mean_of_int_raises():
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        tracenn.tensor([1, 2]).mean()
    assert tracenn.tensor([1, 2]).sum().dtype is tracenn.int64
    assert tracenn.tensor([True, True]).sum().item() == 2


def test_masked_fill_by_index_is_a_where_and_compiles():
    """``x[mask] = v`` (one value, a boolean mask over leading dims) is ``where(mask, v, x)``:
    torch's values, torch's gradient (zero where overwritten), and no data-dependent shape, so it
    compiles (the PyTorch tutorial's custom ReLU backward writes ``grad[x < 0] = 0``)."""
    x = tracenn.tensor([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
    y = x.clone()
    y[y < 0] = 0.5
    assert y.tolist() == [[1.0, 0.5, 3.0], [0.5, 5.0, 0.5]]
    rows = x.clone()
    rows[tracenn.tensor([True, False])] = 2
    assert rows.tolist() == [[2.0, 2.0, 2.0], [-4.0, 5.0, -6.0]]
    ints = tracenn.tensor([1, -2, 3])
    ints[ints < 0] = 7.9  # cast to the tensor's dtype, as torch
    assert ints.tolist() == [1, 7, 3]
    w = tracenn.tensor([1.0, -2.0, 3.0], requires_grad=True)
    z = w * 2
    z[z < 0] = 0
    z.sum().backward()
    assert w.grad.tolist() == [2.0, 0.0, 2.0]

    def relu_like(t):
        t = t * 1.0
        t[t < 0] = 0.0
        return t

    assert tracenn.compile(relu_like)(x).tolist() == relu_like(x).tolist() == [[1.0, 0.0, 3.0], [0.0, 5.0, 0.0]]


def test_float_of_a_tensor_that_requires_grad_warns_once_as_torch(monkeypatch):
    import sys
    import warnings
    monkeypatch.setattr(sys.modules["tracenn.tensor"], "_float_warned", [False])  # (tracenn.tensor: the function)
    x = tracenn.ones((), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert int(x * 2) == 2 and (x * 2).item() == 2.0 and float(x.detach()) == 1.0
        with tracenn.no_grad():
            assert float(x) == 1.0  # (no warning under no_grad, nor for int(), item() or detached tensors)
    with pytest.warns(UserWarning, match=r"^Converting a tensor with requires_grad=True to a scalar may lead to "
                                         r"unexpected behavior.\nConsider using tensor.detach\(\) first.$"):
        assert float(x * 3) == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(x * 4) == 4.0  # once per process
