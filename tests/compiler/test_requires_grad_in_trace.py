"""``requires_grad_()`` inside a compiled function, as GAN and gradient-penalty code calls it.

- a tensor the traced code makes and then marks (``interp.requires_grad_()``,
  ``x.detach().requires_grad_()``) is a leaf that ``autograd.grad`` and ``backward()`` reach;
- a parameter the step unfreezes (``for p in D.parameters(): p.requires_grad = True``) gets its
  gradient, and the flags the step leaves behind stay set after the call, as eagerly.
"""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn


@pytest.fixture(autouse=True)
def _no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a call that falls back to eager warns: fail instead
        yield


def _linear(w, b):
    lin = nn.Linear(len(w[0]), len(w))
    with tracenn.no_grad():
        lin.weight.copy_(tracenn.tensor(w))
        lin.bias.copy_(tracenn.tensor(b))
    return lin


def test_grad_wrt_a_tensor_made_inside_and_marked():
    lin = _linear([[1.0, -2.0, 0.5]], [0.1])

    def f(x):
        xi = (x * 2).requires_grad_(True)
        (g,) = tracenn.autograd.grad(lin(xi).tanh().sum(), xi)
        return g

    x = tracenn.tensor([[0.1, 0.2, 0.3], [-0.3, 0.0, 0.4]])
    xs = 2 * x.numpy()
    t = 1 - np.tanh(xs @ np.array([1.0, -2.0, 0.5]) + 0.1) ** 2
    want = t[:, None] * np.array([[1.0, -2.0, 0.5]])
    np.testing.assert_allclose(f(x).numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(tracenn.compile(f)(x).numpy(), want, rtol=1e-5)


def test_detached_view_marked_cuts_the_history():
    """``y.detach().requires_grad_()`` of a y that carries a gradient: gradients stop at it."""
    lin = _linear([[1.0, 2.0]], [0.0])
    w0 = lin.weight.detach().clone()

    def f(x):
        y = lin(x)                             # requires grad (lin's parameters)
        z = y.detach().requires_grad_()
        (z * z).sum().backward()
        return z.grad

    x = tracenn.tensor([[1.0, 1.0], [2.0, 0.0]])
    got = tracenn.compile(f)(x)
    np.testing.assert_allclose(got.numpy(), [[6.0], [4.0]])  # 2 * y
    assert lin.weight.grad is None  # nothing flowed past the detach
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w0.numpy())


def test_tensor_created_inside_with_requires_grad_gets_grad():
    def f(x):
        w = tracenn.zeros(3, requires_grad=True)
        v = tracenn.ones(3).requires_grad_()
        (w * x + v * x * x).sum().backward()
        return w.grad, v.grad

    x = tracenn.tensor([1.0, 2.0, 3.0])
    gw, gv = tracenn.compile(f)(x)
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0, 3.0])
    np.testing.assert_allclose(gv.numpy(), [1.0, 4.0, 9.0])


def test_parameter_unfrozen_inside_a_step_trains():
    lin = _linear([[1.0, 1.0]], [0.0])
    opt = tracenn.optim.SGD(lin.parameters(), lr=0.1)
    lin.weight.requires_grad_(False)

    def step(x):
        lin.weight.requires_grad_(True)
        opt.zero_grad()
        lin(x).sum().backward()
        opt.step()
        lin.weight.requires_grad_(False)
        return lin.weight.grad

    cs = tracenn.compile(step)
    x = tracenn.ones(1, 2)
    for i in range(3):
        g = cs(x)
        np.testing.assert_allclose(g.numpy(), [[1.0, 1.0]])
        np.testing.assert_allclose(lin.weight.detach().numpy(), [[0.9 - 0.1 * i] * 2], rtol=1e-6)
        assert lin.weight.requires_grad is False


def test_requires_grad_change_in_a_compiled_call_persists():
    lin = _linear([[1.0, 1.0]], [0.5])

    def f(x):
        lin.bias.requires_grad_(False)
        return lin(x)

    cf = tracenn.compile(f)
    cf(tracenn.ones(1, 2))
    assert lin.bias.requires_grad is False
    lin.bias.requires_grad_(True)
    cf(tracenn.ones(1, 2))  # the same program: the flag is set again after the call
    assert lin.bias.requires_grad is False


def test_gan_style_freeze_and_unfreeze_matches_eager():
    """D trained with its parameters unfrozen at the start of the step and frozen for G's turn
    (pix2pix's set_requires_grad): compiled steps match eager ones, and D ends frozen."""
    def build():
        g = _linear([[0.5, -0.3], [0.2, 0.1]], [0.0, 0.1])
        d = _linear([[0.7, -0.4]], [0.2])
        return g, d, tracenn.optim.SGD(g.parameters(), lr=0.1), tracenn.optim.SGD(d.parameters(), lr=0.1)

    def make_step(G, D, optG, optD):
        def step(z, real):
            for p in D.parameters():
                p.requires_grad = True
            optD.zero_grad()
            ld = nn.functional.softplus(-D(real)).mean() + nn.functional.softplus(D(G(z).detach())).mean()
            ld.backward()
            optD.step()
            for p in D.parameters():
                p.requires_grad = False
            optG.zero_grad()
            lg = nn.functional.softplus(-D(G(z))).mean()
            lg.backward()
            optG.step()
            return ld.detach(), lg.detach()
        return step

    z = tracenn.tensor([[0.3, -1.0], [1.2, 0.4], [0.0, 0.5]])
    real = tracenn.tensor([[1.0, 2.0], [0.5, -0.5], [2.0, 1.0]])
    eager = build()
    compiled = build()
    es, cs = make_step(*eager), tracenn.compile(make_step(*compiled))
    for _ in range(3):
        a, b = es(z, real), cs(z, real)
        np.testing.assert_allclose([t.item() for t in b], [t.item() for t in a], rtol=1e-5)
    for m_e, m_c in zip(eager[:2], compiled[:2]):
        for pe, pc in zip(m_e.parameters(), m_c.parameters()):
            np.testing.assert_allclose(pc.detach().numpy(), pe.detach().numpy(), rtol=1e-5)
            assert pc.requires_grad == pe.requires_grad
    assert not any(p.requires_grad for p in compiled[1].parameters())
