"""Views, aliasing and in-place ops: writes through a view reach its base and the other way round,
advanced indexing copies, strides and contiguity, and torch's rules for in-place ops.

Each scenario is a function of the library module ``T`` (tracenn, or torch when installed), so one
record is checked twice: against values worked out by hand (no torch needed) and against PyTorch.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np


def ar(T, *shape, dtype=None):
    """arange(n) reshaped: a float32 tensor (int64 with dtype=T.int64)."""
    n = int(np.prod(shape))
    x = T.arange(n, dtype=dtype or T.float32)
    return x.reshape(*shape)


def npar(*shape):
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def _values(out):
    out = out if isinstance(out, tuple) else (out,)
    return [to_np(o) if hasattr(o, "detach") else o for o in out]


def _check(got, want):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, np.ndarray):
            assert_close(g, w, rtol=0, atol=0, check_dtype=False)
            assert np.asarray(g).dtype == w.dtype, (np.asarray(g).dtype, w.dtype)
        else:
            assert g == w


# ---- writes through views ----------------------------------------------------------------------
# name -> (scenario(T) -> tensors/values, expected values)

def _e(shape, edit):
    e = npar(*shape)
    edit(e)
    return e


def _row0_plus1(e):
    e[0] += 1


def _diag0(e):
    np.fill_diagonal(e, 0)


WRITES = {
    "select_add_": (lambda T: _w(T, (3, 4), lambda x: x[0].add_(1)),
                    (_e((3, 4), _row0_plus1),)),
    "view_flat_setitem": (lambda T: _w(T, (3, 4), lambda x: x.view(-1).__setitem__(4, 7)),
                          (_e((3, 4), lambda e: e.reshape(-1).__setitem__(4, 7)),)),
    "t_setitem": (lambda T: _w(T, (3, 4), lambda x: x.t().__setitem__((1, 0), 5)),
                  (_e((3, 4), lambda e: e.__setitem__((0, 1), 5)),)),
    "narrow_mul_": (lambda T: _w(T, (3, 4), lambda x: x.narrow(1, 1, 2).mul_(2)),
                    (_e((3, 4), lambda e: e.__setitem__((slice(None), slice(1, 3)), e[:, 1:3] * 2)),)),
    "select_dim1_zero_": (lambda T: _w(T, (3, 4), lambda x: x.select(1, 2).zero_()),
                          (_e((3, 4), lambda e: e.__setitem__((slice(None), 2), 0)),)),
    "split_piece_fill_": (lambda T: _w(T, (4, 3), lambda x: x.split(2)[1].fill_(-1)),
                          (_e((4, 3), lambda e: e.__setitem__(slice(2, None), -1)),)),
    "chunk_piece_fill_": (lambda T: _w(T, (4, 3), lambda x: x.chunk(2, 1)[0].fill_(-1)),
                          (_e((4, 3), lambda e: e.__setitem__((slice(None), slice(0, 2)), -1)),)),
    "unbind_piece_fill_": (lambda T: _w(T, (4, 3), lambda x: x.unbind(1)[1].fill_(-1)),
                           (_e((4, 3), lambda e: e.__setitem__((slice(None), 1), -1)),)),
    "unsqueeze_setitem": (lambda T: _w(T, (3,), lambda x: x.unsqueeze(0).__setitem__((0, 1), 9)),
                          (np.array([0, 9, 2], np.float32),)),
    "diagonal_fill_": (lambda T: _w(T, (3, 3), lambda x: x.diagonal().fill_(0)),
                       (_e((3, 3), _diag0),)),
    "view_of_view": (lambda T: _w(T, (2, 3, 4), lambda x: x[1].t()[2:, 0].sub_(100)),
                     (_e((2, 3, 4), lambda e: e.__setitem__((1, 0, slice(2, None)), e[1, 0, 2:] - 100)),)),
    "permute_copy_": (lambda T: _w(T, (2, 3), lambda x: x.permute(1, 0).copy_(T.zeros(3, 2))),
                      (np.zeros((2, 3), np.float32),)),
    "strided_slice_setitem": (lambda T: _w(T, (6,), lambda x: x[::2].__setitem__(slice(None), -1)),
                              (np.array([-1, 1, -1, 3, -1, 5], np.float32),)),
    "squeeze_add_": (lambda T: _w(T, (1, 3), lambda x: x.squeeze(0).add_(1)),
                     (np.array([[1, 2, 3]], np.float32),)),
    "flatten_add_": (lambda T: _w(T, (2, 2), lambda x: x.flatten().add_(1)),
                     (npar(2, 2) + 1,)),
    "expand_single_element": (lambda T: _w(T, (3, 1), lambda x: x.expand(3, 4)[0, 2].fill_(9)),
                              (np.array([[9], [1], [2]], np.float32),)),
    "iadd_on_view": (lambda T: _w(T, (2, 3), lambda x: x[1].__iadd__(10)),
                     (_e((2, 3), lambda e: e.__setitem__(1, e[1] + 10)),)),
    "int_view_write": (lambda T: _wi(T, lambda x: x[1:].mul_(3)),
                       (np.array([0, 3, 6, 9], np.int64),)),
}


def _w(T, shape, edit):
    x = ar(T, *shape)
    edit(x)
    return x


def _wi(T, edit):
    x = T.arange(4)
    edit(x)
    return x


def _base_to_view(T):
    """A view taken before its base changed sees the change (rows, transposes, views of views)."""
    x = ar(T, 3, 3)
    row, tr, flat, inner = x[1], x.t(), x.view(-1), x.t()[0]
    x.add_(10)
    x[0, 1] = 100
    return row, tr, flat, inner


def _sibling_views(T):
    """Two views of one base: a write through one is seen by the other."""
    x = ar(T, 2, 3)
    a, b = x[0], x.t()
    a.fill_(-1)
    return b, x


def _detach_alias(T):
    x = ar(T, 3)
    d = x.detach()
    d[0] = 5
    x[2] = -1
    return x, d


def _data_write(T):
    """``param.data.fill_`` changes the parameter untracked; it stays a leaf that requires grad."""
    w = ar(T, 2, 2).clone().requires_grad_()
    w.data.fill_(1.0)
    w.data[0, 1] = 3.0
    return w, w.requires_grad, w.is_leaf, w.grad_fn is None


def _mask_setitem(T):
    x = ar(T, 3, 3)
    x[x > 4] = 0
    return x


def _column_setitem(T):
    x = ar(T, 3, 3)
    x[:, 1] = T.tensor([7.0, 8.0, 9.0])
    return x


def _index_tensor_setitem(T):
    x = ar(T, 3, 3)
    x[T.tensor([0, 2])] = -1
    return x


def _list_index_iadd(T):
    x = ar(T, 3, 3)
    x[[0, 2]] += 1
    return x


def _range_index(T):
    """x[range(n), target] (the "What is torch.nn really?" tutorial's nll) reads and writes like a list."""
    x = ar(T, 3, 3)
    picked = x[range(3), T.tensor([2, 0, 1])]
    x[range(1, 3)] = 0
    return picked, x


def _advanced_getitem_copies(T):
    """x[[0, 2]] and x[mask] are copies: writing into them leaves x alone."""
    x = ar(T, 3, 3)
    y = x[[0, 2]]
    y.fill_(0)
    z = x[x > 6]
    z.fill_(0)
    return x, y, z


def _reshape_noncontiguous_copies(T):
    x = ar(T, 3, 4)
    y = x.t().reshape(-1)
    y[0] = 100
    return x, y


def _reshape_contiguous_aliases(T):
    x = ar(T, 3, 4)
    y = x.reshape(-1)
    y[0] = 100
    return x


def _contiguous_copy_does_not_alias(T):
    x = ar(T, 2, 2)
    c = x.t().contiguous()
    c[0, 0] = 9
    return x, c


def _clone_does_not_alias(T):
    x = ar(T, 3)
    c = x.clone()
    c.add_(1)
    v = x[1:]
    x.zero_()
    return c, v


def _setitem_broadcasts(T):
    x = ar(T, 2, 3)
    x[:] = T.tensor([1.0, 2.0, 3.0])
    x[0] = 5
    return x


def _setitem_casts(T):
    x = T.zeros(3, dtype=T.int64)
    x[0] = 2.7  # truncated toward zero, as torch casts
    x[1:] = T.tensor([1.9, -1.9])
    return x


def _expanded_fill(T):
    """fill_/zero_ may write through overlapping memory (one value everywhere), as in torch."""
    x = ar(T, 3)
    x.expand(2, 3).fill_(4)
    y = ar(T, 2, 1)
    y.expand(2, 5).zero_()
    return x, y


def _float_add_int(T):
    x = ar(T, 3)
    x.add_(ar(T, 3, dtype=T.int64))
    return x


def _add_broadcast_ok(T):
    x = ar(T, 2, 3)
    x.add_(ar(T, 3))
    return x


OTHER = {
    "base_change_seen_by_views": (_base_to_view, (
        np.array([13, 14, 15], np.float32),
        np.array([[10, 13, 16], [100, 14, 17], [12, 15, 18]], np.float32),
        np.array([10, 100, 12, 13, 14, 15, 16, 17, 18], np.float32),
        np.array([10, 13, 16], np.float32))),
    "sibling_views": (_sibling_views, (
        np.array([[-1, 3], [-1, 4], [-1, 5]], np.float32),
        np.array([[-1, -1, -1], [3, 4, 5]], np.float32))),
    "detach_aliases": (_detach_alias, (np.array([5, 1, -1], np.float32),) * 2),
    "data_write": (_data_write, (np.array([[1, 3], [1, 1]], np.float32), True, True, True)),
    "mask_setitem": (_mask_setitem, (np.array([[0, 1, 2], [3, 4, 0], [0, 0, 0]], np.float32),)),
    "column_setitem": (_column_setitem, (np.array([[0, 7, 2], [3, 8, 5], [6, 9, 8]], np.float32),)),
    "index_tensor_setitem": (_index_tensor_setitem,
                             (np.array([[-1, -1, -1], [3, 4, 5], [-1, -1, -1]], np.float32),)),
    "list_index_iadd": (_list_index_iadd, (np.array([[1, 2, 3], [3, 4, 5], [7, 8, 9]], np.float32),)),
    "range_index": (_range_index, (np.array([2, 3, 7], np.float32),
                                   np.array([[0, 1, 2], [0, 0, 0], [0, 0, 0]], np.float32))),
    "advanced_getitem_copies": (_advanced_getitem_copies, (
        npar(3, 3), np.zeros((2, 3), np.float32), np.zeros(2, np.float32))),
    "reshape_noncontiguous_copies": (_reshape_noncontiguous_copies, (
        npar(3, 4), np.array([100, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11], np.float32))),
    "reshape_contiguous_aliases": (_reshape_contiguous_aliases,
                                   (_e((3, 4), lambda e: e.__setitem__((0, 0), 100)),)),
    "contiguous_copy_does_not_alias": (_contiguous_copy_does_not_alias, (
        npar(2, 2), np.array([[9, 2], [1, 3]], np.float32))),
    "clone_does_not_alias": (_clone_does_not_alias, (
        np.array([1, 2, 3], np.float32), np.zeros(2, np.float32))),
    "setitem_broadcasts": (_setitem_broadcasts, (np.array([[5, 5, 5], [1, 2, 3]], np.float32),)),
    "setitem_casts": (_setitem_casts, (np.array([2, 1, -1], np.int64),)),
    "expanded_fill": (_expanded_fill, (np.full(3, 4, np.float32), np.zeros((2, 1), np.float32))),
    "float_add_int_keeps_float": (_float_add_int, (np.array([0, 2, 4], np.float32),)),
    "add_broadcast_into_self": (_add_broadcast_ok, (np.array([[0, 2, 4], [3, 5, 7]], np.float32),)),
}

ALL = {**WRITES, **OTHER}


@pytest.mark.parametrize("name", list(ALL))
def test_known_values(name):
    fn, want = ALL[name]
    _check(_values(fn(tracenn)), list(want))


@pytest.mark.parametrize("name", list(ALL))
def test_matches_torch(name, torch):
    fn, _ = ALL[name]
    _check(_values(fn(tracenn)), _values(fn(torch)))


# ---- strides and contiguity ----------------------------------------------------------------------

STRIDES = {
    "t": (lambda x: x[0].t(), [1, 4], False),
    "permute": (lambda x: x.permute(2, 0, 1), [1, 12, 4], False),
    "transpose_select": (lambda x: x.transpose(0, 2)[0], [4, 12], False),
    "step_slice": (lambda x: x[:, ::2], [12, 8, 1], False),
    "select": (lambda x: x[1], [4, 1], True),
    "narrow_inner": (lambda x: x[:, 1:3, 1:], [12, 4, 1], False),
    "narrow_outer": (lambda x: x[:, 1:], [12, 4, 1], False),
    "row_block": (lambda x: x[1:], [12, 4, 1], True),
    "expand": (lambda x: x[:, :, :1].expand(2, 3, 4), [12, 4, 0], False),
    "expand_new_dim": (lambda x: x.unsqueeze(-1).expand(2, 3, 4, 5), [12, 4, 1, 0], False),
    "unsqueeze": (lambda x: x.unsqueeze(1), [12, 12, 4, 1], True),
    "none_ellipsis": (lambda x: x[None, ..., 1], [24, 12, 4], False),
    "view_of_contiguous": (lambda x: x.view(6, 4), [4, 1], True),
    "view_of_narrow": (lambda x: x[:, :, 1:3].view(2, 3, 2, 1), [12, 4, 1, 1], False),
    "size_one_dims_ignored": (lambda x: x[:1, :, :1], [12, 4, 1], False),
    "squeeze_after_t": (lambda x: x[:1].permute(2, 0, 1).squeeze(1), [1, 4], False),
    "diagonal": (lambda x: x[0, :, :3].diagonal(), [5], False),
}


@pytest.mark.parametrize("name", list(STRIDES))
def test_strides_known(name):
    fn, stride, contiguous = STRIDES[name]
    y = fn(ar(tracenn, 2, 3, 4))
    assert list(y.stride()) == stride
    assert y.is_contiguous() is contiguous


@pytest.mark.parametrize("name", list(STRIDES))
def test_strides_match_torch(name, torch):
    fn = STRIDES[name][0]
    y, t = fn(ar(tracenn, 2, 3, 4)), fn(ar(torch, 2, 3, 4))
    assert tuple(y.stride()) == tuple(t.stride())
    assert y.is_contiguous() == t.is_contiguous()
    assert y.stride(-1) == t.stride(-1)


def test_contiguous_returns_self_when_contiguous():
    x = ar(tracenn, 3, 4)
    assert x.contiguous() is x
    assert x[1:].contiguous() is x[1:] or x[1:].is_contiguous()
    t = x.t()
    c = t.contiguous()
    assert c is not t and c.is_contiguous() and c.stride() == (3, 1)
    assert_close(c, to_np(x).T, check_dtype=False)


def test_view_after_contiguous_works():
    x = ar(tracenn, 3, 4)
    assert x.t().contiguous().view(-1).tolist() == to_np(x).T.reshape(-1).tolist()


def test_reshape_aliases_exactly_where_view_would(torch):
    """reshape is a view when strides allow (writes reach the base), else a copy."""
    for T in (tracenn, torch):
        x = ar(T, 2, 3, 4)
        y = x.transpose(1, 2).reshape(2, 12)          # cannot be a view: a copy
        z = x.transpose(0, 1).reshape(3, 8)           # not contiguous either: a copy
        w = x[:, 1:].reshape(2, 8)                    # mergeable: a view
        y[0, 0] = -1
        z[0, 0] = -2
        w[0, 0] = -3
        assert to_np(x)[0, 0, 0] == 0
        assert to_np(x)[0, 1, 0] == -3


# ---- errors ---------------------------------------------------------------------------------

def _view_noncontiguous(T):
    ar(T, 3, 4).t().view(-1)


def _write_expanded(T):
    x = ar(T, 3, 1)
    x.expand(3, 4).add_(1)


def _write_expanded_setitem(T):
    x = ar(T, 3)
    x.expand(2, 3)[:, 0] = 5


def _int_add_float(T):
    ar(T, 3, dtype=T.int64).add_(1.5)


def _int_mul_float_tensor(T):
    ar(T, 3, dtype=T.int64).mul_(T.ones(3))


def _bool_add_int(T):
    T.ones(3, dtype=T.bool).add_(T.ones(3, dtype=T.int64))


def _add_would_broadcast_self(T):
    ar(T, 3).add_(ar(T, 2, 3))


def _view_add_would_broadcast(T):
    x = ar(T, 2, 3)
    x[0].add_(ar(T, 2, 3))


def _leaf_inplace(T):
    ar(T, 3).clone().requires_grad_().add_(1)


def _view_of_leaf_inplace(T):
    w = ar(T, 2, 3).clone().requires_grad_()
    w[0].add_(1)


def _view_of_leaf_that_is_a_view(T):
    w = T.arange(6.0).reshape(2, 3).requires_grad_()  # a leaf, itself a view of the arange
    w[0].add_(1)


def _setitem_leaf(T):
    w = ar(T, 2, 3).clone().requires_grad_()
    w[0] = 1.0


ERRORS = {
    "view_noncontiguous": (_view_noncontiguous, RuntimeError,
                           r"view size is not compatible with input tensor's size and stride.*"
                           r"Use \.reshape\(\.\.\.\) instead"),
    "write_expanded": (_write_expanded, RuntimeError,
                       "more than one element of the written-to tensor refers to a single memory location"),
    "write_expanded_setitem": (_write_expanded_setitem, RuntimeError,
                            "more than one element of the written-to tensor refers to a single memory location"),
    "int_add_float": (_int_add_float, RuntimeError,
                      "result type Float can't be cast to the desired output type Long"),
    "int_mul_float_tensor": (_int_mul_float_tensor, RuntimeError,
                             "result type Float can't be cast to the desired output type Long"),
    "bool_add_int": (_bool_add_int, RuntimeError,
                     "result type Long can't be cast to the desired output type Bool"),
    "add_would_broadcast_self": (_add_would_broadcast_self, RuntimeError,
                                 r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"),
    "view_add_would_broadcast": (_view_add_would_broadcast, RuntimeError,
                                 r"output with shape \[3\] doesn't match the broadcast shape \[2, 3\]"),
    "leaf_inplace": (_leaf_inplace, RuntimeError,
                     "a leaf Variable that requires grad is being used in an in-place operation"),
    "view_of_leaf_inplace": (_view_of_leaf_inplace, RuntimeError,
                             "a view of a leaf Variable that requires grad is being used in an in-place"),
    "view_of_leaf_that_is_a_view": (_view_of_leaf_that_is_a_view, RuntimeError,
                                    "a view of a leaf Variable that requires grad is being used in an in-place"),
    "setitem_leaf": (_setitem_leaf, RuntimeError,
                     "a view of a leaf Variable that requires grad is being used in an in-place"),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    fn, exc, match = ERRORS[name]
    with pytest.raises(exc, match=match):
        fn(tracenn)


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name, torch):
    """The same regex matches torch's own message: tracenn keeps torch's wording."""
    fn, exc, match = ERRORS[name]
    with pytest.raises(exc, match=match):
        fn(torch)


def test_error_messages_say_what_to_do():
    with pytest.raises(RuntimeError, match=r"x = x\.to\(tracenn\.float32\)"):
        _int_add_float(tracenn)
    with pytest.raises(RuntimeError, match="clone"):
        _write_expanded(tracenn)
    with pytest.raises(RuntimeError, match="no_grad"):
        _leaf_inplace(tracenn)


def test_failed_inplace_leaves_tensor_unchanged():
    x = ar(tracenn, 3, dtype=tracenn.int64)
    with pytest.raises(RuntimeError):
        x.add_(1.5)
    assert x.tolist() == [0, 1, 2] and x._version == 0
    v = ar(tracenn, 3, 1)
    with pytest.raises(RuntimeError):
        v.expand(3, 2).add_(1)
    assert v.reshape(-1).tolist() == [0, 1, 2]


# ---- version counter and misc aliasing -----------------------------------------------------

def test_version_counter_is_shared_by_views(torch):
    for T in (tracenn, torch):
        x = ar(T, 2, 3)
        v = x[0]
        v.add_(1)
        x.mul_(2)
        d = x.detach()
        d.zero_()
        assert x._version == v._version == d._version == 3, T


def test_data_writes_do_not_bump_the_version(torch):
    """``.data`` has its own version counter in torch: autograd does not see the write."""
    for T in (tracenn, torch):
        w = ar(T, 3).clone().requires_grad_()
        y = (w * w).sum()
        w.data.add_(1)
        assert w._version == 0
        y.backward()  # no error: the saved ``w`` looks unmodified to autograd
        assert w.grad is not None


def test_views_under_no_grad_track_values():
    """Optimizer-style writes (no_grad) through views of parameters reach the parameter."""
    w = tracenn.zeros(2, 3, requires_grad=True)
    with tracenn.no_grad():
        w[0] += 1
        w.view(-1)[5] = 7
        w.t()[0].sub_(1)
    assert w.tolist() == [[0.0, 1.0, 1.0], [-1.0, 0.0, 7.0]]
    assert w.is_leaf and w.requires_grad and w.grad_fn is None


def test_tensor_iteration_yields_views():
    x = ar(tracenn, 2, 2)
    for row in x:
        row.mul_(-1)
    assert x.tolist() == [[-0.0, -1.0], [-2.0, -3.0]]


def test_out_of_range_index_raises():
    x = ar(tracenn, 2, 3)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 1 with size 3"):
        x[:, 5] = 1
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 2"):
        x[tracenn.tensor([0, 3])] = 1


def test_data_setter_gives_a_view_its_own_data():
    w = tracenn.arange(6.0).view(2, 3).requires_grad_()  # a leaf that is a view of the arange
    w.data = tracenn.zeros(2, 3)
    w.data.add_(1)
    assert w.tolist() == [[1.0] * 3] * 2 and w.is_leaf and w.requires_grad
    w.data = tracenn.ones(3, 2).t()
    assert w.stride() == (1, 2) and not w.is_contiguous()


def test_metadata_inplace_on_a_view():
    x = tracenn.arange(6.0).reshape(2, 3)  # a view of the arange
    x.unsqueeze_(0)
    x[0, 1] = 9
    assert x.tolist() == [[[0.0, 1.0, 2.0], [9.0, 9.0, 9.0]]]


def test_metadata_inplace_keeps_existing_views():
    x = tracenn.zeros(2, 3)
    v = x[0]
    x.t_()
    x.add_(1)
    assert x.shape == (3, 2) and v.tolist() == [1.0, 1.0, 1.0]
    assert x.stride() == (1, 3) and not x.is_contiguous()
    x[2, 0] = 5  # a write through the new layout lands where torch puts it
    assert v.tolist() == [1.0, 1.0, 5.0]
    w = x[:, 1]  # a view taken after the relayout
    x.unsqueeze_(0)
    x.mul_(2)
    assert w.tolist() == [2.0, 2.0, 2.0] and v.tolist() == [2.0, 2.0, 10.0] and x.shape == (1, 3, 2)


def test_metadata_inplace_in_torch(torch):
    x = torch.arange(6.0).reshape(2, 3)
    x.unsqueeze_(0)
    x[0, 1] = 9
    assert x.tolist() == [[[0.0, 1.0, 2.0], [9.0, 9.0, 9.0]]]
    x = torch.zeros(2, 3)
    v = x[0]
    x.t_()
    x.add_(1)
    assert v.tolist() == [1.0, 1.0, 1.0]
