"""``x[i]`` with ``i`` a 0-d integer tensor inside a compiled call: eager mode reads ``i`` and takes
a view; while compiling ``i`` has no value, so the index is an operand of the program (one program
serves every ``i``) and ``x[i]`` is a copy. Reads, writes (``x[i] = v``, ``x[i] += v``) and
gradients equal eager's; an in-place change of the copy that is not written back would not reach
``x`` as eager's would, so that call runs eagerly, with a warning."""
import warnings

import numpy as np
import pytest

import tracenn
from helpers import assert_close


def _reads(x, i):
    return x[i] * 2, x[i, 1:3], x[1:, i], x[..., i], x[None, i]


def _writes(x, i):
    y = x.clone()
    y[i] = 0.0
    y[i, 1:] += 1
    y[:, i] *= 3
    return y


X = np.arange(12, dtype=np.float32).reshape(3, 4)


@pytest.mark.parametrize("fn", [_reads, _writes])
def test_compiled_equals_eager_for_every_index_with_one_program(fn):
    cf = tracenn.compile(fn)
    x = tracenn.tensor(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no fallback to eager)
        for i in (0, 2, -1):
            got, want = cf(x, tracenn.tensor(i)), fn(x, tracenn.tensor(i))
            for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
                assert_close(g, w)
    assert cf.explain().count("compile ") == 1


def test_known_values():
    y = tracenn.compile(_writes)(tracenn.tensor(X), tracenn.tensor(1))
    want = X.copy()
    want[1] = 0
    want[1, 1:] += 1
    want[:, 1] *= 3
    np.testing.assert_array_equal(y.numpy(), want)
    assert tracenn.compile(lambda x, i: x[i])(tracenn.tensor(X), tracenn.tensor(2)).tolist() == [8.0, 9.0, 10.0, 11.0]


def test_gradients_equal_eager():
    def f(x, i):
        return (x[i] * x[:, i].sum()).sum()

    grads = []
    for fn in (f, tracenn.compile(f)):
        x = tracenn.tensor(X, requires_grad=True)
        fn(x, tracenn.tensor(1)).backward()
        grads.append(x.grad)
    assert_close(grads[1], grads[0])


def test_the_ir_names_the_index_operand():
    cf = tracenn.compile(lambda x, i: x[i, 1:])
    cf(tracenn.tensor(X), tracenn.tensor(1))
    assert "= index[spec=[%i,1:]] %x, %i" in str(cf.graph)


@pytest.mark.parametrize("how", ["method", "alias"])
def test_an_in_place_change_not_written_back_runs_eagerly(how):
    def f(x, i):
        y = x.clone()
        if how == "method":
            y[i].add_(1)  # eager: a view, so y changes
        else:
            z = y[i]
            z += 1
            y[tracenn.tensor(0)] = z  # written elsewhere: y[i] must change too
        return y

    x, i = tracenn.tensor(X), tracenn.tensor(1)
    with pytest.warns(UserWarning, match=r"running f eagerly.*in-place change of x\[i\], i a 0-d integer tensor, "
                                         r"that is not written back"):
        got = tracenn.compile(f)(x, i)
    assert_close(got, f(x, i))
    assert got[1].tolist() == [5.0, 6.0, 7.0, 8.0]
