"""The write-back and donation helpers of a compiled call (tracenn/runtime/writes.py)."""
import numpy as np

import tracenn
from tracenn.runtime.writes import batched_writer, plain_donated


def _fresh(*shapes):
    """Tensors on arrays nothing else holds (an eager op's latest result is also held by
    _dispatch.LAST, for synchronize(): a throwaway op moves that on)."""
    out = [tracenn.ones(*s) * 2 for s in shapes]
    tracenn.zeros(1) * 1
    return out


def test_plain_donated_takes_arrays_nobody_else_holds():
    ts = _fresh((3,), (2, 2))
    got = plain_donated(ts)
    assert [a is t._value for a, t in zip(got, ts)] == [True, True]


def test_plain_donated_declines_an_array_held_elsewhere():
    ts = _fresh((3,), (2,))
    held = ts[1]._value  # (a clone or deepcopy shares arrays so: donating it would delete these values)
    assert plain_donated(ts) is None
    del held
    assert plain_donated(ts) is not None
    same, = _fresh((4,))
    other = tracenn.zeros(4)
    other._value = same._value  # two tensors on one array
    assert plain_donated([same, other]) is None


def test_batched_writer_sets_values_versions_and_grads():
    a, b = tracenn.zeros(2), tracenn.zeros(3)
    p = tracenn.nn.Parameter(tracenn.zeros(2))
    va, vb = a._version, b._version
    w = [np.ones(2, np.float32), None, np.full(3, 2.0, np.float32), np.full(2, 5.0, np.float32)]
    write = batched_writer(([(0, a), (2, b)], [(3, p)]))
    write(w)
    assert (a._version, b._version) == (va + 1, vb + 1)
    np.testing.assert_array_equal(np.asarray(b._value), w[2])
    np.testing.assert_array_equal(p.grad.numpy(), w[3])
    write([w[0], None, w[2], None])  # a None grad write clears .grad, as zero_grad() does
    assert p.grad is None


def test_batched_writer_with_one_write_of_each_kind_and_none():
    a = tracenn.zeros(2)
    batched_writer(([(1, a)], []))([None, np.ones(2, np.float32)])
    np.testing.assert_array_equal(a.numpy(), [1.0, 1.0])
    batched_writer(([], []))([])  # nothing to write
