"""torch.autograd.functional (jacobian, hessian, vjp, jvp, hvp, vhp), gradcheck/gradgradcheck and
anomaly detection: known values and finite differences, then torch as the oracle."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tracenn
from tracenn.autograd import GradcheckError, detect_anomaly, gradcheck, gradgradcheck, set_detect_anomaly
from tracenn.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from helpers import assert_close, to_np


def T(a, **kw):
    return tracenn.tensor(np.asarray(a, np.float64), **kw)


# ---- torch.autograd.functional ------------------------------------------------------------------

def test_jacobian_structures_and_values():
    x, y = T([1.0, -2.0, 0.5]), T([3.0, 4.0])
    assert_close(jacobian(lambda a: a ** 2, x), T(np.diag(2 * to_np(x))))
    j = jacobian(lambda a, b: (a.sum() * b, a * 2), (x, y))  # outer: outputs, inner: inputs
    assert isinstance(j, tuple) and all(isinstance(r, tuple) for r in j)
    assert [[tuple(u.shape) for u in r] for r in j] == [[(2, 3), (2, 2)], [(3, 3), (3, 2)]]
    assert_close(j[0][1], T(np.eye(2) * to_np(x).sum()))
    j = jacobian(lambda a: (a, a.sum()), x)
    assert isinstance(j, tuple) and j[1].shape == (3,)
    j = jacobian(lambda a: (a,), (x,))
    assert isinstance(j, tuple) and isinstance(j[0], tuple)


def test_hessian_and_products():
    x, y = T([1.0, 2.0, -1.0]), T([0.5, 2.0])
    f = lambda a: (a ** 3).sum()  # noqa: E731
    assert_close(hessian(f, x), T(np.diag(6 * to_np(x))))
    h = hessian(lambda a, b: (a ** 2).sum() * b.sum(), (x, y))
    assert [[tuple(u.shape) for u in r] for r in h] == [[(3, 3), (3, 2)], [(2, 3), (2, 2)]]
    assert_close(h[0][1], T(np.stack([2 * to_np(x)] * 2, 1)))
    v = T([1.0, 0.0, 2.0])
    out, hv = hvp(f, x, v)
    assert_close(out, f(x))
    assert_close(hv, 6 * x * v)
    assert_close(vhp(f, x, v)[1], 6 * x * v)
    out, g = vjp(lambda a: a ** 2, x, v)
    assert_close(g, 2 * x * v)
    out, g = vjp(lambda a: (a ** 2).sum(), x)  # v may be left out for a one-element output
    assert_close(g, 2 * x)
    out, t = jvp(lambda a: a.exp(), x, v)
    assert_close(t, x.exp() * v)
    out, g = vjp(lambda a, b: a * b.sum(), (x, y), v)
    assert isinstance(g, tuple) and len(g) == 2
    assert_close(g[1], T([(to_np(x) * to_np(v)).sum()] * 2))


def test_create_graph_keeps_history_and_default_drops_it():
    x = T([1.0, 2.0], requires_grad=True)
    assert not jacobian(lambda a: a ** 2, x).requires_grad
    j = jacobian(lambda a: a ** 3, x, create_graph=True)
    assert j.requires_grad
    j.sum().backward()  # d/dx sum(diag(3x^2)) = 6x
    assert_close(x.grad, 6 * x.detach())


@pytest.mark.parametrize("call, err, msg", [
    (lambda: vjp(lambda a: a ** 2, T([1.0, 2.0])), RuntimeError,
     "The vector v can only be None if the user-provided function returns a single Tensor with a single element."),
    (lambda: jacobian(lambda a: a, T([1.0]), strict=True, vectorize=True), RuntimeError,
     "`strict=True` and `vectorized=True` are not supported together"),
    (lambda: jacobian(lambda a: a, T([1.0]), strategy="forward-mode"), NotImplementedError,
     "only implemented for `vectorize=True`"),
    (lambda: jacobian(lambda a: 3.0, T([1.0])), TypeError,
     "The outputs of the user-provided function given to jacobian must be either a Tensor or a tuple of Tensors"),
    (lambda: jacobian(lambda a: a, 3.0), TypeError,
     "The inputs given to jacobian must be either a Tensor or a tuple of Tensors but the given inputs has type "
     "<class 'float'>."),
    (lambda: hessian(lambda a: a * 2, T([1.0, 2.0])), RuntimeError,
     "The Tensor returned by the function given to hessian should contain a single element"),
    (lambda: vjp(lambda a: a, T([1.0, 2.0]), T([1.0])), RuntimeError, "Entry 0 in v has invalid size"),
])
def test_functional_errors(call, err, msg):
    with pytest.raises(err, match=re.escape(msg)):
        call()


def test_functional_against_torch():
    torch = pytest.importorskip("torch")
    from torch.autograd import functional as TFn
    x_np = np.array([0.3, -0.7, 1.1])
    v_np = np.array([1.0, -2.0, 0.5])
    f = lambda a: (a.sin() * a.relu()).sum()  # noqa: E731
    g = lambda a: a.tanh() * a[0]  # noqa: E731
    x, v, tx, tv = T(x_np), T(v_np), torch.tensor(x_np), torch.tensor(v_np)
    assert_close(jacobian(g, x), TFn.jacobian(g, tx))
    assert_close(hessian(f, x), TFn.hessian(f, tx))
    assert_close(hvp(f, x, v)[1], TFn.hvp(f, tx, tv)[1])
    assert_close(vhp(f, x, v)[1], TFn.vhp(f, tx, tv)[1])
    assert_close(vjp(g, x, v)[1], TFn.vjp(g, tx, tv)[1])
    assert_close(jvp(g, x, v)[1], TFn.jvp(g, tx, tv)[1])


# ---- gradcheck ------------------------------------------------------------------------------------

class _Square(tracenn.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return 2 * g * a


class _WrongSquare(_Square):
    @staticmethod
    def backward(ctx, g):
        (a,) = ctx.saved_tensors
        return g * a  # half the true gradient


def test_gradcheck_passes_true_gradients_and_catches_wrong_ones():
    x = tracenn.randn(3, dtype=tracenn.float64, requires_grad=True)
    y = tracenn.randn(2, 3, dtype=tracenn.float64, requires_grad=True)
    assert gradcheck(lambda a, b: (a * b).sin(), (x, y))
    assert gradcheck(_Square.apply, (x,))
    assert gradgradcheck(lambda a: a.sin() * a, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(_WrongSquare.apply, (x,))
    assert gradcheck(_WrongSquare.apply, (x,), raise_exception=False) is False
    assert isinstance(GradcheckError("x"), RuntimeError)
    with pytest.warns(UserWarning, match="Input #0 requires gradient and is not a double precision"):
        gradcheck(lambda a: a * 2, (tracenn.randn(2, requires_grad=True),), raise_exception=False)
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda a: a * 2, (tracenn.randn(2, dtype=tracenn.float64),))


# ---- anomaly detection ----------------------------------------------------------------------------

def test_anomaly_detection_names_the_backward_that_made_a_nan_and_the_forward_line():
    x = tracenn.zeros(1, requires_grad=True)
    assert not tracenn.autograd.is_anomaly_enabled()
    with pytest.warns(UserWarning, match="Anomaly Detection has been enabled"):
        mode = detect_anomaly()
    with mode:
        assert tracenn.autograd.is_anomaly_enabled()
        y = (x / x).sum()  # the forward line the warning shows
        with pytest.warns(UserWarning, match=r"Error detected in DivBackward0\. Traceback of forward call that "
                                             r"caused the error:\n(.|\n)*test_functional_and_checks\.py"):
            with pytest.raises(RuntimeError, match=re.escape("Function 'DivBackward0' returned nan values in its "
                                                             "1th output.")):  # (d(x/y)/dy = -x/y^2: 0/0)
                y.backward()
    assert not tracenn.autograd.is_anomaly_enabled()
    (x / x).sum().backward()  # off again: a NaN gradient, no error (as torch)
    assert np.isnan(to_np(x.grad)).all()
    set_detect_anomaly(True, check_nan=False)
    try:
        assert tracenn.autograd.is_anomaly_enabled() and not tracenn.autograd.is_anomaly_check_nan_enabled()
        x.grad = None
        (x / x).sum().backward()  # check_nan=False: stacks are kept, nothing is checked
    finally:
        set_detect_anomaly(False)
    with set_detect_anomaly(True):
        assert tracenn.autograd.is_anomaly_enabled()
    assert not tracenn.autograd.is_anomaly_enabled()


def test_anomaly_against_torch_message():
    torch = pytest.importorskip("torch")
    tx = torch.zeros(1, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.autograd.detect_anomaly():
            with pytest.raises(RuntimeError) as want:
                (tx / tx).sum().backward()
        x = tracenn.zeros(1, requires_grad=True)
        with detect_anomaly():
            with pytest.raises(RuntimeError) as got:
                (x / x).sum().backward()
    assert str(got.value) == str(want.value)
