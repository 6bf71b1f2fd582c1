"""Mutable Python values a compiled call reads are guarded by their values, so a change made to
them between calls is seen, as torch.compile's guards see it (never a stale program): a NumPy array
or an object of options passed as an argument (this file), and lists, dicts and arrays held by a
module or captured by a function. See utils/_pytree.signature and compiler/values.py."""
import argparse
import types

import numpy as np
import pytest

import tracenn
from tracenn import nn


class _Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.traces = 0

    def forward(self, x, arr):
        self.__dict__["traces"] += 1  # (not through Module.__setattr__: no epoch move)
        return x * tracenn.as_tensor(arr)


def test_a_numpy_argument_changed_in_place_is_seen():
    m = _Scale()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    arr = np.array([1.0, 2.0, 3.0], np.float32)
    assert cm(x, arr).tolist() == [1.0, 2.0, 3.0]
    arr[:] = 10.0
    assert cm(x, arr).tolist() == [10.0, 10.0, 10.0]
    assert m.traces == 2


def test_a_new_numpy_argument_with_the_same_values_reuses_the_program():
    m = _Scale()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    for _ in range(3):
        assert cm(x, np.array([1.0, 2.0, 3.0], np.float32)).tolist() == [1.0, 2.0, 3.0]
    assert m.traces == 1


def test_a_large_numpy_argument_is_keyed_by_a_digest_of_its_values():
    m = _Scale()
    cm = tracenn.compile(m)
    x = tracenn.ones(4096)
    arr = np.ones(4096, np.float32)  # (16 KiB: above what the key holds as bytes)
    assert float(cm(x, arr).sum()) == 4096.0
    arr[7] = 3.0
    assert float(cm(x, arr).sum()) == 4098.0
    assert m.traces == 2
    key = next(iter(cm._entries))
    assert len(repr(key)) < 400  # (a digest, not 16 KiB of bytes, in the key)


class _Opts:
    def __init__(self):
        self.scale = 2
        self.use_relu = False


class _Act(nn.Module):
    def forward(self, x, opts):
        y = x * opts.scale
        return tracenn.relu(y) if opts.use_relu else y


@pytest.mark.parametrize("make", [_Opts, lambda: types.SimpleNamespace(scale=2, use_relu=False),
                                  lambda: argparse.Namespace(scale=2, use_relu=False)],
                         ids=["object", "SimpleNamespace", "argparse.Namespace"])
def test_an_options_argument_changed_between_calls_is_seen(make):
    m = _Act()
    cm = tracenn.compile(m)
    x = -tracenn.ones(2)
    opts = make()
    assert cm(x, opts).tolist() == [-2.0, -2.0]
    opts.scale, opts.use_relu = 5, True
    assert cm(x, opts).tolist() == m(x, opts).tolist() == [0.0, 0.0]
    opts.use_relu = False
    assert cm(x, opts).tolist() == [-5.0, -5.0]


def test_an_options_argument_with_a_nested_one_and_a_list():
    def f(x, opts):
        return x * opts.inner.scale + tracenn.tensor(opts.shift)

    cm = tracenn.compile(f)
    x = tracenn.ones(2)
    opts = types.SimpleNamespace(inner=types.SimpleNamespace(scale=2.0), shift=[1.0, 2.0])
    assert cm(x, opts).tolist() == [3.0, 4.0]
    opts.inner.scale = 3.0
    assert cm(x, opts).tolist() == [4.0, 5.0]
    opts.shift = [1.0, 0.0]  # (a list an argument holds is guarded by identity: a new one is seen)
    assert cm(x, opts).tolist() == [4.0, 3.0]


def test_an_argument_holding_a_growing_log_keeps_its_program():
    def f(x, state):
        return x * state.scale

    cm = tracenn.compile(f)
    state = types.SimpleNamespace(scale=2.0, losses=[])
    for k in range(12):  # (past the recompile budget, were each append a recompile)
        assert cm(tracenn.ones(2), state).tolist() == [2.0, 2.0]
        state.losses.append(float(k))
    assert len(cm._entries) == 1


def test_an_options_argument_that_holds_itself():
    def f(x, opts):
        return x * opts.w + opts.b

    cm = tracenn.compile(f, fallback="eager")
    opts = types.SimpleNamespace(b=1.0)
    opts.me, opts.items = opts, [opts]
    opts.w = 2.0
    x = tracenn.ones(2)
    assert cm(x, opts).tolist() == [3.0, 3.0]
    opts.w = 4.0
    assert cm(x, opts).tolist() == [5.0, 5.0]


class _Value:
    """An object with value semantics (its own __eq__ and __hash__)."""

    def __init__(self, k):
        self.k = k

    def __eq__(self, other):
        return isinstance(other, _Value) and other.k == self.k

    def __hash__(self):
        return hash(self.k)


def test_equal_value_objects_share_a_program():
    traces = []

    def f(x, v):
        traces.append(1)
        return x * v.k

    cm = tracenn.compile(f)
    x = tracenn.ones(2)
    assert cm(x, _Value(3)).tolist() == [3.0, 3.0]
    assert cm(x, _Value(3)).tolist() == [3.0, 3.0]
    assert cm(x, _Value(4)).tolist() == [4.0, 4.0]
    assert len(traces) == 2


# ---- lists, dicts and arrays a module holds, or a function captures -----------------------------

class _Table(nn.Module):
    def __init__(self):
        super().__init__()
        self.arr = np.array([1.0, 2.0, 3.0], np.float32)
        self.lst = [1.0, 2.0, 3.0]
        self.cfg = {"scale": 2.0, "act": "none"}
        self.losses = []  # (a training loop's log, which forward never reads)

    def forward(self, x):
        y = x * tracenn.as_tensor(self.arr) + tracenn.tensor(self.lst)
        y = y * self.cfg["scale"]
        return tracenn.relu(y - 20) if self.cfg["act"] == "relu" else y


def _check(cm, m, x):
    got, want = cm(x), m(x)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    return got.tolist()


def test_module_lists_dicts_and_arrays_changed_in_place_or_rebound_are_seen():
    m = _Table()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    assert _check(cm, m, x) == [4.0, 8.0, 12.0]
    m.arr[:] = 10.0                    # in place
    assert _check(cm, m, x) == [22.0, 24.0, 26.0]
    m.lst[0] = 100.0
    assert _check(cm, m, x) == [220.0, 24.0, 26.0]
    m.cfg["act"] = "relu"
    assert _check(cm, m, x) == [200.0, 4.0, 6.0]
    m.lst = [0.0, 0.0, 0.0]            # rebound
    m.arr = np.ones(3, np.float32)
    assert _check(cm, m, x) == [0.0, 0.0, 0.0]
    log = cm.explain()
    assert "attribute 'lst' changed: [1.0, 2.0, 3.0] -> [100.0, 2.0, 3.0]" in log
    assert "attribute 'cfg' changed: {'scale': 2.0, 'act': 'none'} -> {'scale': 2.0, 'act': 'relu'}" in log
    assert "attribute 'arr' changed: float32 array (3,) [1., 2., 3.] -> float32 array (3,) [10., 10., 10.]" in log


def test_going_back_to_earlier_contents_reuses_their_program():
    m = _Table()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    for v in (5.0, 1.0, 5.0, 1.0):
        m.lst[0] = v
        _check(cm, m, x)
    assert len(cm._entries) == 2


def test_a_list_forward_does_not_read_is_not_guarded():
    m = _Table()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    for k in range(12):  # (past the recompile budget, were each append a recompile)
        cm(x)
        m.losses.append(float(k))
    assert len(cm._entries) == 1


def test_a_plain_module_watches_nothing_per_call():
    cm = tracenn.compile(nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    cm(tracenn.ones(2, 3))
    assert cm._watch is None


def test_a_large_list_is_guarded_by_identity():
    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.big = [1.0] * 1000  # (more than a call watches: assign a new one to change it)

        def forward(self, x):
            return x * tracenn.tensor(self.big[:3])

    m = Big()
    cm = tracenn.compile(m)
    x = tracenn.ones(3)
    assert cm(x).tolist() == [1.0, 1.0, 1.0]
    m.big = [2.0] * 1000
    assert cm(x).tolist() == [2.0, 2.0, 2.0]


WEIGHTS = [1.0, 2.0, 3.0]
TABLE = np.ones(3, np.float32)


def _weighted(x):
    return x * tracenn.tensor(WEIGHTS) * tracenn.from_numpy(TABLE)


def test_a_global_list_and_array_changed_in_place_or_rebound_are_seen():
    global WEIGHTS
    cf = tracenn.compile(_weighted)
    x = tracenn.ones(3)
    try:
        assert cf(x).tolist() == [1.0, 2.0, 3.0]
        WEIGHTS[0] = 9.0
        assert cf(x).tolist() == [9.0, 2.0, 3.0]
        WEIGHTS = [7.0, 7.0, 7.0]
        assert cf(x).tolist() == [7.0, 7.0, 7.0]
        TABLE[:] = 2.0
        assert cf(x).tolist() == [14.0, 14.0, 14.0]
    finally:
        WEIGHTS = [1.0, 2.0, 3.0]
        TABLE[:] = 1.0


def test_a_closure_dict_and_an_options_objects_list():
    cfg = {"bias": [1.0, 1.0]}
    opts = types.SimpleNamespace(sizes=[2.0, 3.0])

    def f(x):
        return x * tracenn.tensor(opts.sizes) + tracenn.tensor(cfg["bias"])

    cf = tracenn.compile(f)
    x = tracenn.ones(2)
    assert cf(x).tolist() == [3.0, 4.0]
    cfg["bias"][1] = 0.0
    assert cf(x).tolist() == [3.0, 3.0]
    opts.sizes.append(4.0)
    with pytest.raises(Exception):  # (eager too: 3 sizes against 2)
        f(x)
    opts.sizes.pop()
    opts.sizes[0] = 5.0
    assert cf(x).tolist() == [6.0, 3.0]
