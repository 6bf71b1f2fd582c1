"""``x[i]``, ``x[i, j]`` and ``x[i] = v`` pass the integers as kernel operands: one compile serves
every index value (a static index would compile a kernel per value)."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from tracenn.ops import OPS


@pytest.fixture
def traces(monkeypatch):
    """Names of the dynamic-index ops each time JAX traces (compiles) one of their kernels."""
    log = []
    for name in ("dynamic_slice", "dynamic_update_slice", "slice"):
        op = OPS[name]

        def counting(*args, _impl=op.impl, _name=name, **kw):
            log.append(_name)  # runs only while jax traces
            return _impl(*args, **kw)

        monkeypatch.setattr(op, "impl", counting)
        monkeypatch.setattr(op, "_fwd", {})
        monkeypatch.setattr(op, "_bwd", {})
    return log


def test_reading_100_rows_compiles_once(traces):
    a = np.arange(300, dtype=np.float32).reshape(100, 3)
    x = tracenn.tensor(a)
    for i in range(100):
        np.testing.assert_array_equal(x[i].numpy(), a[i])
        np.testing.assert_array_equal(x[-1 - i].numpy(), a[-1 - i])
    assert traces == ["dynamic_slice"]


def test_two_ints_and_a_slice_compile_once(traces):
    a = np.arange(2 * 10 * 4, dtype=np.float32).reshape(2, 10, 4)
    x = tracenn.tensor(a)
    for i in range(10):
        np.testing.assert_array_equal(x[i % 2, i].numpy(), a[i % 2, i])
        np.testing.assert_array_equal(x[1, i, 1:3].numpy(), a[1, i, 1:3])
    assert traces == ["dynamic_slice", "dynamic_slice"]  # one per index pattern, not per value


def test_writing_100_rows_compiles_once(traces):
    x = tracenn.zeros(100, 3)
    for i in range(100):
        x[i] = float(i)
    np.testing.assert_array_equal(x.numpy(), np.repeat(np.arange(100.0, dtype=np.float32)[:, None], 3, 1))
    assert traces == ["dynamic_update_slice"]


def test_gradients_through_int_indexing_compile_once(traces):
    x = tracenn.zeros(20, 2, requires_grad=True)
    total = sum(x[i].sum() * i for i in range(20))
    total.backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.repeat(np.arange(20.0, dtype=np.float32)[:, None], 2, 1))
    assert traces.count("dynamic_slice") == 2  # the forward kernel and the backward's, for all 20 rows


def test_int_index_is_still_a_view():
    x = tracenn.zeros(4, 3)
    row = x[2]
    row.add_(1.0)  # writes through to x
    assert x[2].tolist() == [1.0, 1.0, 1.0] and x.sum().item() == 3.0
    x.mul_(2.0)  # and the view sees later changes of its base
    assert row.tolist() == [2.0, 2.0, 2.0]


def test_setitem_values_and_broadcasting():
    x = tracenn.zeros(3, 2, 4, dtype=tracenn.int64)
    x[1] = 2.7  # a float into an int tensor truncates, as torch
    x[2, 1] = tracenn.tensor([[1, 2, 3, 4]])  # leading 1-dims of the value are dropped
    x[0, 0, 1:3] = tracenn.tensor([7, 8])
    expected = np.zeros((3, 2, 4), np.int64)
    expected[1] = 2
    expected[2, 1] = [1, 2, 3, 4]
    expected[0, 0, 1:3] = [7, 8]
    np.testing.assert_array_equal(x.numpy(), expected)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[0] = tracenn.ones(3)


def test_setitem_gradients():
    v = tracenn.ones(3, requires_grad=True)
    x = tracenn.zeros(4, 3)
    x[1] = v * 2
    (x * tracenn.arange(12.0).reshape(4, 3)).sum().backward()
    np.testing.assert_array_equal(v.grad.numpy(), [6.0, 8.0, 10.0])


def test_writing_rows_of_a_parameter_under_no_grad_compiles_once(traces):
    """Initialising a weight row by row (``with no_grad(): w[i] = ...``) used to compile a kernel
    per row: ~35 ms each."""
    w = tracenn.nn.Parameter(tracenn.zeros(50, 3))
    with tracenn.no_grad():
        for i in range(50):
            w[i] = float(i)
    np.testing.assert_array_equal(w.detach().numpy(), np.repeat(np.arange(50.0, dtype=np.float32)[:, None], 3, 1))
    assert traces == ["dynamic_update_slice"]
    assert w.is_leaf and w.requires_grad and w._version == 50


def test_writing_rows_of_a_view_compiles_once_and_lands_in_the_base(traces, monkeypatch):
    scatters = []
    op = OPS["view_scatter"]
    monkeypatch.setattr(op, "_fwd", {})
    monkeypatch.setattr(op, "impl", lambda *a, _impl=op.impl, **k: (scatters.append(1), _impl(*a, **k))[1])
    base = tracenn.zeros(60, 3)
    view = base[10:]
    for i in range(50):
        view[i] = float(i)
    want = np.zeros((60, 3), np.float32)
    want[10:] = np.arange(50.0)[:, None]
    np.testing.assert_array_equal(base.numpy(), want)
    np.testing.assert_array_equal(view.numpy(), want[10:])
    assert traces.count("dynamic_update_slice") == 1 and len(scatters) == 1
    assert base._version == 50


def test_writing_through_a_view_keeps_gradients():
    src = tracenn.ones(3, requires_grad=True)
    x = tracenn.zeros(6, 3, requires_grad=True).clone()
    view = x[2:]
    view[1] = src * 3  # x[3] = 3 * src
    view[2] = src      # x[4] = src
    (x * tracenn.arange(18.0).reshape(6, 3)).sum().backward()
    w = np.arange(18.0).reshape(6, 3)
    np.testing.assert_allclose(src.grad.numpy(), 3 * w[3] + w[4])


def test_writing_through_a_view_of_a_leaf_requiring_grad_raises_as_torch():
    x = tracenn.zeros(4, 3, requires_grad=True)
    view = x[1:]
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        view[0] = 1.0
    with tracenn.no_grad():
        view[0] = 1.0
    assert x[1].tolist() == [1.0, 1.0, 1.0] and x.is_leaf


def test_setitem_on_a_leaf_requiring_grad_raises_as_torch():
    x = tracenn.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        x[0] = 1.0
    with tracenn.no_grad():
        x[0] = 1.0  # as optimizers do
    assert x.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("index", [5, -6, (0, 3)])
def test_out_of_range_index_error(index):
    x = tracenn.zeros(5, 3)
    with pytest.raises(IndexError, match=r"index -?\d+ is out of bounds for dimension \d with size \d"):
        x[index]
    with pytest.raises(IndexError, match="out of bounds"):
        x[index] = 1.0


def test_matches_torch(torch):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    for index in [1, -1, (1, 2), (0, slice(1, 3), 2), (None, 1, Ellipsis, 3), (Ellipsis, -2)]:
        np.testing.assert_array_equal(tracenn.tensor(a)[index].numpy(), torch.tensor(a)[index].numpy())
        x, t = tracenn.tensor(a), torch.tensor(a)
        x[index] = -1.0
        t[index] = -1.0
        np.testing.assert_array_equal(x.numpy(), t.numpy())
    for index in [5, (0, 3)]:
        with pytest.raises(IndexError) as ours:
            tracenn.tensor(a)[index]
        with pytest.raises(IndexError) as theirs:
            torch.tensor(a)[index]
        assert str(ours.value) == str(theirs.value)
