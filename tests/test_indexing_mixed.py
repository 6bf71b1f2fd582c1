"""Indexing that mixes ints, slices, None, ``...``, lists, int tensors and bool masks
(``tracenn/_api/index.py``, ops ``index``/``index_put`` in ``tracenn/ops/index.py``).

torch applies each int as a select first (its dim goes) and only then the lists/tensors/masks, with
NumPy's placement of their dims: ``x[0, :, [1, 2]]`` is (3, 2), where NumPy, which counts the int as
an advanced index, gives (2, 3). One table of index expressions drives reads, writes and gradients,
checked against a NumPy model of torch's rule (no torch needed) and against PyTorch when installed.
"""
from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np


class I:
    """An int tensor index (0-d included): ``I(1)`` is ``tensor(1)``, ``I([[0, 1]])`` a 2-d one."""

    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return f"I({self.v})"


class M:
    """A bool tensor index (0-d included): ``M(True)`` is ``tensor(True)``."""

    def __init__(self, v):
        self.v = v

    def __repr__(self):
        return f"M({self.v})"


class U8(M):
    """A uint8 tensor index: torch reads it as a mask (deprecated, with a warning)."""

    def __repr__(self):
        return f"U8({self.v})"


S = slice(None)
# (shape, index). An index written as a list (not a tuple) is the whole subscript: x[[[0, 1]]].
CASES = [
    ((2, 3, 4), (1, slice(1, None), [0, 2])),
    ((2, 3, 4), (0, S, [1, 2])),
    ((2, 3, 4), (0, None, [1, 2])),
    ((2, 3, 4), (0, ..., None, [1])),
    ((2, 3, 4), (1, S, I([[0, 1], [2, 3]]))),
    ((2, 3, 4), (-1, ..., [1, 3])),
    ((2, 3, 4), (..., -2, [1, 0])),
    ((2, 3, 4), ([1, 0], S, -1)),
    ((2, 3, 4), (S, [0, 2], 1)),
    ((2, 3, 4), (S, 0, [1, 2])),
    ((2, 3, 4), (1, S, [0, 0, 2])),  # a repeated index: gradients add up (no write test)
    ((2, 3, 4), (I(1), S, [0, 2])),
    ((2, 3, 4), (I(-1), slice(None, None, 2), [3, 1])),
    ((2, 3, 4), (M(True),)),
    ((2, 3, 4), (M(False),)),
    ((2, 3, 4), (True,)),
    ((2, 3, 4), (1, M(True), [0, 2])),
    ((2, 3, 4), ([0, 1], M(True), S, [0, 2])),
    ((2, 3, 4), (M([True, False]), 1)),
    ((2, 3, 4), (M([[True, False, True], [False, True, True]]), 1)),
    ((2, 3, 4), (1, S, M([True, False, True, True]))),
    ((2, 3, 4), (U8([1, 0]), S, [3, 1])),
    ((2, 3, 4), (1, U8(1), [0, 2])),
    ((2, 3, 4, 5), (0, [0, 1], S, [1, 3])),
    ((2, 3, 4, 5), (None, 1, S, [[0], [2]], 0)),
    ((2, 3, 4, 5), (slice(1, None), 1, [0, 2], slice(None, None, 2))),
    ((2, 3, 4, 5), ([1, 0], ..., 3, None, [4, 0])),
    ((2, 3, 4), [[0, 1]]),  # a list holding a list: read as a tuple, with torch's warning
    ((2, 3, 4), [[0, 1], [1, 2]]),
    ((2, 3, 4), [1, 0]),  # ints only: one index tensor, no warning
]
IDS = [f"{i}:{idx!r}" for i, (_, idx) in enumerate(CASES)]


def _as_tuple(index) -> bool:
    """torch's rule: a list shorter than 32 holding a sequence, slice, ..., None or tensor is a tuple."""
    return isinstance(index, list) and len(index) < 32 and any(
        isinstance(e, (list, tuple, slice, I, M)) or e is None or e is Ellipsis for e in index)


def build(lib, index):
    """The index for ``lib`` (tracenn or torch)."""
    def one(e):
        if isinstance(e, I):
            return lib.tensor(e.v, dtype=lib.int64)
        if isinstance(e, M):
            return lib.tensor(e.v, dtype=lib.uint8 if isinstance(e, U8) else lib.bool)
        return e
    return tuple(one(e) for e in index) if isinstance(index, tuple) else index


def ref_index(a: np.ndarray, index) -> np.ndarray:
    """torch's ``a[index]`` in NumPy: ints (and 0-d int tensors) select first; a bool (or 0-d bool
    tensor) adds a dim indexed by [0] (True) or [] (False); then the lists, int tensors and masks
    index what is left, NumPy placing their dims."""
    if _as_tuple(index):
        index = tuple(index)
    if not isinstance(index, tuple):
        index = (index,)
    entries = []
    for e in index:
        if isinstance(e, (I, M)):
            e = np.asarray(e.v, dtype=np.int64 if isinstance(e, I) else bool)
            e = (bool(e) if e.dtype == bool else int(e)) if e.ndim == 0 else e
        elif isinstance(e, list):
            e = np.asarray(e, dtype=np.int64)
        entries.append(e)
    used = sum(0 if e is None or e is Ellipsis or isinstance(e, bool)
               else e.ndim if isinstance(e, np.ndarray) and e.dtype == bool else 1 for e in entries)
    first, then = [], []
    for e in entries:
        if e is Ellipsis:
            first += [S] * (a.ndim - used)
            then += [S] * (a.ndim - used)
        elif isinstance(e, bool):
            first.append(None)
            then.append(np.arange(int(e)))
        elif isinstance(e, int):
            first.append(e)
        elif e is None or isinstance(e, slice):
            first.append(e)
            then.append(S)
        else:
            first += [S] * (e.ndim if e.dtype == bool else 1)
            then.append(e)
    return a[tuple(first)][tuple(then)]


@contextlib.contextmanager
def _warns_like_torch(index):
    """torch warns once for a list read as a tuple, and only then."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        yield
    got = [w for w in rec if "non-tuple sequence for multidimensional indexing" in str(w.message)]
    assert len(got) == int(_as_tuple(index)), [str(w.message) for w in rec]


def _read(lib, shape, index):
    """``arange(n).reshape(shape)[index]`` (float32: the gradient test runs the same kernels)."""
    x = lib.arange(int(np.prod(shape)), dtype=lib.float32).reshape(shape)
    with _warns_like_torch(index):
        return x[build(lib, index)]


def _write(lib, shape, index, value: np.ndarray):
    """``zeros(shape)[index] = v`` and the gradient of ``sum(y * w)`` reaching v."""
    y = lib.zeros(shape)
    v = lib.tensor(value).requires_grad_()
    with _warns_like_torch(index):
        y[build(lib, index)] = v
    w = lib.arange(int(np.prod(shape)), dtype=lib.float32).reshape(shape)
    (y * w).sum().backward()
    return y, v.grad


def _grad(lib, shape, index, w: np.ndarray):
    """The gradient reaching x of ``sum(x[index] * w)``."""
    x = lib.zeros(shape).requires_grad_()
    with _warns_like_torch(index):
        out = x[build(lib, index)]
    (out * lib.tensor(w)).sum().backward()
    return x.grad


def _refs(shape, index):
    """(flat positions x[index] reads, the upstream gradient w, a value v for a write)."""
    pos = ref_index(np.arange(int(np.prod(shape))).reshape(shape), index)
    w = (np.arange(pos.size, dtype=np.float32) + 1).reshape(pos.shape)
    return pos, w, -w


@pytest.mark.parametrize("shape,index", CASES, ids=IDS)
def test_read_matches_numpy(shape, index):
    pos, _, _ = _refs(shape, index)
    out = _read(tracenn, shape, index)
    assert tuple(out.shape) == pos.shape
    assert_close(out, pos.astype(np.float32))


@pytest.mark.parametrize("shape,index", CASES, ids=IDS)
def test_write_matches_numpy(shape, index):
    pos, w, v = _refs(shape, index)
    if np.unique(pos).size != pos.size:
        pytest.skip("a repeated index: which write lands is unspecified")
    want = np.zeros(int(np.prod(shape)), np.float32)
    want[pos.ravel()] = v.ravel()
    y, vgrad = _write(tracenn, shape, index, v)
    assert_close(y, want.reshape(shape))
    assert_close(vgrad, pos.astype(np.float32))  # d sum(y * arange) / dv: the positions written


@pytest.mark.parametrize("shape,index", CASES, ids=IDS)
def test_grad_matches_numpy_scatter_add(shape, index):
    pos, w, _ = _refs(shape, index)
    want = np.zeros(int(np.prod(shape)), np.float32)
    np.add.at(want, pos.ravel(), w.ravel())
    assert_close(_grad(tracenn, shape, index, w), want.reshape(shape))


@pytest.mark.filterwarnings("ignore:indexing with dtype torch.uint8")  # (torch's backward warns again)
@pytest.mark.parametrize("shape,index", CASES, ids=IDS)
def test_matches_torch(torch, shape, index):
    assert_close(_read(tracenn, shape, index), _read(torch, shape, index))
    pos, w, v = _refs(shape, index)
    if np.unique(pos).size == pos.size:
        for got, want in zip(_write(tracenn, shape, index, v), _write(torch, shape, index, v)):
            assert_close(got, want)
    assert_close(_grad(tracenn, shape, index, w), _grad(torch, shape, index, w))


def test_sequence_as_tuple_warning_points_at_the_callers_line():
    x = tracenn.zeros(2, 3, 4)
    with pytest.warns(UserWarning, match=re.escape("use x[tuple(seq)] instead of x[seq]")) as rec:
        x[[[0, 1]]]
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tuple(x[[[0, 1]] * 32].shape) == (32, 2, 3, 4)  # 32 or more: an index tensor, no warning


def test_uint8_index_is_a_mask_with_torchs_warning():
    x = tracenn.arange(6).reshape(2, 3)
    with pytest.warns(UserWarning, match="indexing with dtype torch.uint8 is now deprecated") as rec:
        out = x[tracenn.tensor([1, 0], dtype=tracenn.uint8)]
    assert rec[0].filename == __file__
    assert_close(out, np.array([[0, 1, 2]]))


def test_compiled_matches_eager():
    def f(x, i, v):
        y = tracenn.zeros(2, 3, 4)
        y[0, :, [1, 2]] = v
        return x[1, 1:, [0, 2]], x[i, :, [3, 1]], y, x[..., -2, [1, 0]] * 2

    cf = tracenn.compile(f)
    x = tracenn.arange(24.0).reshape(2, 3, 4)
    v = tracenn.arange(6.0).reshape(3, 2)
    for i in (1, -2):  # a 0-d int tensor: an operand of the compiled program, not read
        it = tracenn.tensor(i)
        for got, want in zip(cf(x, it, v), f(x, it, v)):
            assert_close(got, want)
        assert_close(cf(x, it, v)[1], to_np(x)[i][:, [3, 1]])


def test_0d_bool_false_writes_nothing():
    x = tracenn.ones(2, 3)
    x[tracenn.tensor(False)] = 5.0
    assert_close(x, np.ones((2, 3), np.float32))


@pytest.mark.parametrize("weights,dtype", [
    (None, np.int64), ([0.5, 1.0, 1.0], np.float32), (np.array([0.5, 1.0, 1.0]), np.float64),
    ([1, 2, 3], np.float64), ([True, False, True], np.float64),
])
def test_bincount_dtype(weights, dtype):
    w = None if weights is None else tracenn.tensor(weights)
    r = tracenn.bincount(tracenn.tensor([0, 1, 1]), weights=w)
    ref = np.bincount([0, 1, 1], None if weights is None else np.asarray(weights, np.float64))
    assert_close(r, ref.astype(dtype))
    empty = tracenn.bincount(tracenn.tensor([], dtype=tracenn.int64), weights=tracenn.tensor([]), minlength=2)
    assert_close(empty, np.zeros(2, np.int64))  # torch: an empty input gives int64 zeros, weights or not
