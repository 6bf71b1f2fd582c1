"""Ops whose output shape depends on values, inside and outside tracenn.compile.

Inside a compiled function their DataDependentError names the op and its shape-static form; the
forms that do not depend on values compile: ``x[mask] = row``, ``masked_scatter``,
``repeat_interleave(..., output_size=)``.
"""
import numpy as np
import pytest

import tracenn
from tracenn.errors import DataDependentError

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed (test oracle)")


def _compiled_error(fn, *args) -> str:
    with pytest.raises(DataDependentError) as e:
        tracenn.compile(fn)(*args)
    return str(e.value)


X = tracenn.tensor([1, 0, 3, 0, 2])


@pytest.mark.parametrize("fn, what, fix", [
    (lambda x: x.nonzero(), "torch.nonzero/argwhere (one row for each nonzero element)", "nonzero_static"),
    (lambda x: tracenn.argwhere(x), "torch.nonzero/argwhere", "nonzero_static"),
    (lambda x: tracenn.unique(x), "torch.unique (one entry for each distinct value)", "no fixed-size form"),
    (lambda x: tracenn.unique_consecutive(x), "torch.unique_consecutive", "no fixed-size form"),
    (lambda x: tracenn.bincount(x, minlength=5), "torch.bincount (max(input) + 1 counts)", "index_add_"),
    (lambda x: x[x > 0], "indexing with a boolean mask (x[mask]", "tracenn.where(mask, x, 0)"),
    (lambda x: tracenn.masked_select(x, x > 0), "indexing with a boolean mask", "masked_fill"),
    (lambda x: tracenn.repeat_interleave(x), "repeat_interleave with tensor repeats", "output_size="),
])
def test_compiled_message_names_the_op_and_its_fix(fn, what, fix):
    msg = _compiled_error(fn, X)
    assert msg.startswith("tracenn.compile: ")
    assert __file__ in msg  # the user's line
    assert what in msg and fix in msg, msg
    assert 'fallback="eager"' in msg


def test_plain_value_read_keeps_the_generic_message():
    msg = _compiled_error(lambda x: x * float(x.sum()), X.float())
    assert "Python code read a tensor's value" in msg and "tracenn.cond" in msg


def test_the_reason_is_cleared_after_an_eager_read():
    tracenn.nonzero(X)  # eager: reads values, leaves no reason behind
    assert tracenn._dispatch.HOST_READ[0] is None
    assert "Python code read a tensor's value" in _compiled_error(lambda x: x * x.sum().item(), X.float())


# ---- x[mask] = value with a value the same for every selected row ------------------------------

def _row_write(x, m, v):
    y = x * 1
    y[m] = v
    return y


@pytest.mark.parametrize("vshape", [(), (4,), (1, 4), (2, 1), (1, 1, 1, 4)])
def test_masked_row_write_compiles_with_gradients(vshape):
    rs = np.random.RandomState(0)
    xn, vn = rs.randn(3, 2, 4).astype(np.float32), np.asarray(rs.randn(*vshape), np.float32)
    m = tracenn.tensor([True, False, True])
    want = xn.copy()
    want[[0, 2]] = vn.reshape(vn.shape[-2:] if len(vshape) > 2 else vn.shape)
    grads = []
    for fn in (_row_write, tracenn.compile(_row_write)):
        x = tracenn.tensor(xn, requires_grad=True)
        v = tracenn.tensor(vn, requires_grad=True)
        y = fn(x, m, v)
        np.testing.assert_allclose(y.detach().numpy(), want, rtol=1e-6)
        (y * tracenn.arange(24.).view(3, 2, 4)).sum().backward()
        grads.append((x.grad.numpy(), v.grad.numpy()))
    w = np.arange(24.).reshape(3, 2, 4)
    np.testing.assert_allclose(grads[0][0], w * np.array([0, 1, 0])[:, None, None])
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert grads[0][1].shape == vshape


def test_masked_write_of_a_value_per_selected_row_still_reads_the_mask():
    # a value with one row per True has the count in its shape: that is data-dependent
    x = tracenn.tensor([[1., 2, 3], [4, 5, 6]])
    assert _row_write(x, x[:, 0] > 0, tracenn.ones(2, 3)).tolist() == [[1.] * 3] * 2
    msg = _compiled_error(lambda x: _row_write(x, x[:, 0] > 0, tracenn.ones(2, 3)), x)
    assert "indexing with a boolean mask" in msg


# ---- masked_scatter --------------------------------------------------------------------------

M = [[True, False, True], [False, True, True]]


def test_masked_scatter_values_and_gradients():
    m = tracenn.tensor(M)
    s = tracenn.arange(6., requires_grad=True)
    x = tracenn.zeros(2, 3, requires_grad=True)
    for fn in (lambda x, m, s: x.masked_scatter(m, s), tracenn.compile(lambda x, m, s: x.masked_scatter(m, s))):
        s.grad = x.grad = None
        y = fn(x, m, s)
        assert y.tolist() == [[0., 0., 1.], [0., 2., 3.]]
        (y * tracenn.arange(1., 7.).view(2, 3)).sum().backward()
        assert s.grad.tolist() == [1., 3., 5., 6., 0., 0.]
        assert x.grad.tolist() == [[0., 2., 0.], [4., 0., 0.]]


def test_masked_scatter_broadcast_mask_and_in_place():
    assert tracenn.zeros(2, 3).masked_scatter(tracenn.tensor([True, False, True]), tracenn.arange(6.)).tolist() == \
        [[0., 0., 1.], [2., 0., 3.]]
    x = tracenn.zeros(2, 3)
    assert x.masked_scatter_(tracenn.tensor(M), tracenn.arange(4.)) is x
    assert x.tolist() == [[0., 0., 1.], [0., 2., 3.]]


@pytest.mark.parametrize("args, match", [
    ((tracenn.tensor(M), tracenn.arange(3.)), "Number of elements of source < number of ones in mask"),
    ((tracenn.tensor(M), tracenn.arange(6, dtype=tracenn.float64)),
     "masked_scatter: expected self and source to have same dtypes but got Float and Double"),
    ((tracenn.tensor(M).int(), tracenn.arange(6.)), "masked_scatter_ only supports boolean masks, but got mask "
                                                     "with dtype Int"),
])
def test_masked_scatter_errors(args, match):
    with pytest.raises(RuntimeError, match=match):
        tracenn.zeros(2, 3).masked_scatter(*args)


@needs_torch
def test_masked_scatter_matches_torch():
    rs = np.random.RandomState(1)
    xn, mn, sn = rs.randn(3, 4, 5).astype(np.float32), rs.rand(4, 5) > 0.5, rs.randn(70).astype(np.float32)
    want = torch.tensor(xn).masked_scatter(torch.tensor(mn), torch.tensor(sn)).numpy()
    got = tracenn.tensor(xn).masked_scatter(tracenn.tensor(mn), tracenn.tensor(sn)).numpy()
    np.testing.assert_array_equal(got, want)


# ---- repeat_interleave -----------------------------------------------------------------------

def test_repeat_interleave_of_counts_alone():
    assert tracenn.repeat_interleave(tracenn.tensor([1, 0, 3])).tolist() == [0, 2, 2, 2]
    assert tracenn.repeat_interleave(tracenn.tensor([2, 1]), output_size=3).tolist() == [0, 0, 1]


@pytest.mark.parametrize("call, match", [
    (lambda: tracenn.tensor([1, 2, 3]).repeat_interleave(tracenn.tensor([1, 0])),
     r"repeats must have the same size as input along dim, but got repeats.size\(0\) = 2 and input.size\(0\) = 3"),
    (lambda: tracenn.tensor([1, 2, 3]).repeat_interleave(tracenn.tensor([1, -1, 1])), "repeats can not be negative"),
    (lambda: tracenn.tensor([1, 2, 3]).repeat_interleave(-1), "repeats can not be negative"),
    (lambda: tracenn.tensor([1, 2, 3]).repeat_interleave(tracenn.tensor([1, 0, 3]), output_size=5),
     "allocated size does not match required size"),
    (lambda: tracenn.repeat_interleave(tracenn.tensor([[1]])), "repeat_interleave only accept 1D vector as repeat"),
    (lambda: tracenn.tensor([1, 2]).repeat_interleave(tracenn.tensor([1., 1.])), "must be an integer tensor"),
])
def test_repeat_interleave_errors(call, match):
    with pytest.raises(RuntimeError, match=match):
        call()


def _rep(x, r):
    return x.repeat_interleave(r, dim=0, output_size=5)


def test_repeat_interleave_compiles_with_output_size():
    f = tracenn.compile(_rep)
    grads = []
    for fn in (_rep, f):
        x = tracenn.tensor([[1., 2], [3, 4], [5, 6]], requires_grad=True)
        y = fn(x, tracenn.tensor([2, 0, 3]))
        assert y.tolist() == [[1., 2], [1, 2], [5, 6], [5, 6], [5, 6]]
        (y * tracenn.arange(10.).view(5, 2)).sum().backward()
        grads.append(x.grad.tolist())
    assert grads[0] == grads[1] == [[2., 4.], [0., 0.], [18., 21.]]
    assert f(tracenn.ones(3, 2), tracenn.tensor([1, 1, 3])).shape == (5, 2)  # other counts: the same program
    assert tracenn.compile(lambda r: tracenn.repeat_interleave(r, output_size=4))(
        tracenn.tensor([1, 0, 3])).tolist() == [0, 2, 2, 2]


@needs_torch
@pytest.mark.parametrize("shape, reps, dim", [((3,), [1, 0, 2], None), ((2, 3), [2, 1], 0), ((2, 3), [0, 1, 2], 1),
                                              ((2, 3), 3, 1), ((2, 2), [1, 1, 2, 0], None)])
def test_repeat_interleave_matches_torch(shape, reps, dim):
    xn = np.arange(np.prod(shape)).reshape(shape)
    tr = torch.tensor(reps) if isinstance(reps, list) else reps
    want = torch.tensor(xn).repeat_interleave(tr, dim=dim).numpy()
    got = tracenn.tensor(xn).repeat_interleave(tracenn.tensor(reps) if isinstance(reps, list) else reps, dim=dim)
    np.testing.assert_array_equal(got.numpy(), want)
