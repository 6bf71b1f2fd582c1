"""Outputs that are the call's own tensors or views of them (``return x``, ``nn.Identity``,
``return self.weight``, ``x[0]``, ``x.t()``, ``x.detach()``): a compiled call returns the tensor
itself, or a view of the caller's tensor whose in-place changes reach it, as eager code and
torch.compile do, not the program's copy. And a compiled call's tape node records the version
of an input only where an op's gradient reads it, so changing an input that was only viewed or
added before ``backward()`` does not raise (eager does not either)."""
import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import SavedTensorModifiedError
from helpers import to_np


def _both(fn):
    """(eager fn, a compiled fn, the same compiled fn again: its second call is the cached one)."""
    c = tracenn.compile(fn)
    return [fn, c, c]


@pytest.mark.parametrize("grad", [True, False])
def test_identity_returns_its_input(grad):
    cm = tracenn.compile(nn.Identity())
    x = tracenn.randn(3, requires_grad=grad)
    with tracenn.set_grad_enabled(grad):
        for _ in range(3):  # (the first call traces; later ones take the cached call)
            assert cm(x) is x


def test_a_returned_input_and_parameter_are_the_same_objects():
    lin = nn.Linear(3, 2)

    def f(x, y):
        return x, lin.weight, y * 2

    cf = tracenn.compile(f)
    x, y = tracenn.randn(2, 3), tracenn.randn(3)
    for _ in range(2):
        a, w, z = cf(x, y)
        assert a is x and w is lin.weight
        np.testing.assert_array_equal(to_np(z), to_np(y) * 2)


def _views(x):
    return x[0], x.t(), x.detach(), x.view(9)[2:5]


@pytest.mark.parametrize("fn", _both(_views)[1:])
def test_views_of_an_input_are_views_of_the_callers_tensor(fn):
    with tracenn.no_grad():
        x = tracenn.zeros(3, 3)
        row, t, d, flat = fn(x)
        assert all(v._base is x for v in (row, t, d, flat))
        row.add_(5)
        d[2, 2] = 1
        t[0, 1] = 7  # x[1, 0]
        flat.mul_(2)  # x[0, 2], x[1, 0], x[1, 1]
    expect = np.array([[5, 5, 10], [14, 0, 0], [0, 0, 1]], np.float32)
    np.testing.assert_array_equal(to_np(x), expect)
    np.testing.assert_array_equal(to_np(row), expect[0])  # the view re-reads its root
    assert tuple(t.stride()) == (1, 3) and not d.requires_grad


def _edit_views_then_backward(fn):
    a = tracenn.arange(9.0).reshape(3, 3).requires_grad_()
    x = a * 2
    row, t = fn(x)[:2]
    row.mul_(3)
    t[1, 2] = 0.5  # x[2, 1]
    (x * x).sum().backward()
    return [to_np(x.detach()), to_np(a.grad), to_np(row.detach()), to_np(t.detach())]


def test_in_place_changes_through_returned_views_match_eager_with_gradients():
    eager, compiled, again = (_edit_views_then_backward(f) for f in _both(_views))
    for got in (compiled, again):
        for e, c in zip(eager, got):
            np.testing.assert_array_equal(c, e)
    # the values themselves, without eager as the reference
    x = np.arange(9.0, dtype=np.float32).reshape(3, 3) * 2
    x[0] *= 3
    x[2, 1] = 0.5
    np.testing.assert_array_equal(compiled[0], x)
    grad = 2 * x * 2
    grad[0] *= 3
    grad[2, 1] = 0
    np.testing.assert_array_equal(compiled[1], grad)


def test_gradients_flow_through_a_returned_view():
    cf = tracenn.compile(lambda x: x.t()[1])
    x = tracenn.randn(3, 4, requires_grad=True)
    y = cf(x)
    assert y._base is x and y.grad_fn is not None
    (y * tracenn.arange(3.0)).sum().backward()
    expect = np.zeros((3, 4), np.float32)
    expect[:, 1] = [0, 1, 2]
    np.testing.assert_array_equal(to_np(x.grad), expect)


def test_a_view_of_a_parameter_is_a_view_of_the_parameter():
    lin = nn.Linear(3, 2)
    cf = tracenn.compile(lambda: lin.weight.T)
    wt = cf()
    assert wt._base is lin.weight
    np.testing.assert_array_equal(to_np(wt.detach()), to_np(lin.weight.detach()).T)
    with tracenn.no_grad():
        lin.weight.fill_(1.5)
    np.testing.assert_array_equal(to_np(wt.detach()), np.full((3, 2), 1.5, np.float32))


def test_a_view_of_an_input_that_is_itself_a_view_stays_a_copy_with_the_right_values():
    cf = tracenn.compile(lambda x: x[1])
    base = tracenn.arange(12.0).reshape(3, 4)
    x = base.t()  # a view: the call returns the program's copy (same values)
    got = cf(x)
    np.testing.assert_array_equal(to_np(got), np.arange(12.0).reshape(3, 4).T[1])


def test_stored_views_are_views_too():
    log = []

    def f(x):
        log.append(x[0])
        return x.sum()

    cf = tracenn.compile(f)
    with tracenn.no_grad():
        x = tracenn.zeros(2, 2)
        for _ in range(2):
            cf(x)
        assert all(v._base is x for v in log)
        log[-1].add_(1)
    np.testing.assert_array_equal(to_np(x), [[1, 1], [0, 0]])


@pytest.mark.parametrize("fn", [lambda x: x[0] + 1, lambda x: x.t(), lambda x: (x + 2).sum(0)])
def test_changing_an_input_no_gradient_reads_does_not_block_backward(fn):
    for f in _both(fn):
        a = tracenn.ones(2, 2, requires_grad=True)
        x = a * 1
        y = f(x)
        with tracenn.no_grad():
            x.add_(1) if y._base is not x else None
        y.sum().backward()
        assert a.grad is not None


@pytest.mark.parametrize("fn", [lambda x: (x * x).sum(), lambda x: x.exp() @ x])
def test_changing_an_input_a_gradient_reads_raises_as_in_eager(fn):
    for f in _both(fn):
        x = tracenn.ones(2, 2, requires_grad=True) * 1
        y = f(x)
        x.add_(1)
        with pytest.raises(SavedTensorModifiedError, match="modified by an inplace operation"):
            y.sum().backward()


def test_identity_compiled_matches_torch_compile_semantics():
    torch = pytest.importorskip("torch")
    tx = torch.randn(3)
    assert torch.nn.Identity()(tx) is tx  # what eager torch (and torch.compile) give
    x = tracenn.randn(3)
    assert tracenn.compile(nn.Identity())(x) is x


def test_an_input_changed_in_place_and_returned_is_the_callers_tensor():
    def f(x):
        x.mul_(2)
        return x, x[1:]

    for fn in _both(f):
        with tracenn.no_grad():
            x = tracenn.arange(3.0)
            y, tail = fn(x)
        assert y is x and tail._base is x
        np.testing.assert_array_equal(to_np(x), [0, 2, 4])
        np.testing.assert_array_equal(to_np(tail), [2, 4])


def test_a_buffer_changed_in_place_and_returned_is_the_buffer():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("n", tracenn.zeros(2))

        def forward(self, x):
            self.n.add_(x)
            return self.n

    for m in (Counter(), tracenn.compile(Counter())):
        for _ in range(2):
            out = m(tracenn.ones(2))
        assert out is m.n
        np.testing.assert_array_equal(to_np(out), [2, 2])


def test_outputs_of_calls_in_inference_mode_are_inference_tensors():
    m = tracenn.compile(tracenn.nn.Linear(4, 4))
    f = tracenn.compile(lambda x, y: (x + y, x * 2))
    x = tracenn.randn(2, 4)
    with tracenn.inference_mode():
        for _ in range(3):  # (the first call traces; later ones take the lean path)
            y = m(x)
            a, b = f(x, x)
            assert y.is_inference() and a.is_inference() and b.is_inference()
    with tracenn.no_grad():
        assert not m(x).is_inference()
    assert not m(x).is_inference()
