"""``create_graph=True`` inside a compiled function: the traced reverse pass is recorded with the
ops' differentiable gradient ops, so a later traced backward goes through it (``vjp_vjp_<op>``
nodes) and the whole step is one program — gradient penalties (WGAN-GP, R1), MAML's inner loop,
Hessian-vector products. References are NumPy closed forms and eager tracenn."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.nn import functional as F


@pytest.fixture(autouse=True)
def _no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a call that falls back to eager warns: fail instead
        yield


def _close(a, b, rtol=1e-5, atol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)


def test_second_and_third_derivatives_of_a_scalar_function():
    def f(x):
        x = x.requires_grad_()
        (g,) = tracenn.autograd.grad((x ** 4).sum(), x, create_graph=True)
        (h,) = tracenn.autograd.grad(g.sum(), x, create_graph=True)
        (t,) = tracenn.autograd.grad(h.sum(), x)
        return g.detach(), h.detach(), t

    x = np.array([0.5, -1.0, 2.0], np.float32)
    cf = tracenn.compile(f)
    g, h, t = cf(tracenn.tensor(x))
    _close(g.numpy(), 4 * x ** 3)
    _close(h.numpy(), 12 * x ** 2)
    _close(t.numpy(), 24 * x)
    assert "vjp_vjp_vjp_pow" in str(cf.graph)


def test_hessian_vector_product_with_grad_outputs():
    def hvp(x, v):
        x = x.requires_grad_()
        (g,) = tracenn.autograd.grad((x.sin() * x).sum(), x, create_graph=True)
        (hv,) = tracenn.autograd.grad(g, x, grad_outputs=v)
        return hv

    x = np.array([0.3, 1.1, -0.7], np.float32)
    v = np.array([1.0, -2.0, 0.5], np.float32)
    want = (2 * np.cos(x) - x * np.sin(x)) * v  # d2/dx2 of x sin x, diagonal Hessian
    _close(tracenn.compile(hvp)(tracenn.tensor(x), tracenn.tensor(v)).numpy(), want, rtol=1e-5)


def test_gradient_of_a_linear_function_does_not_require_grad():
    def f(x):
        x = x.requires_grad_()
        (g,) = tracenn.autograd.grad((3 * x).sum(), x, create_graph=True)
        return g, g.requires_grad

    g, rg = tracenn.compile(f)(tracenn.ones(2))
    _close(g.numpy(), [3.0, 3.0])
    assert rg is False  # as eager (and torch): nothing it depends on requires grad


def _critic(seed):
    rng = np.random.RandomState(seed)
    c = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))
    with tracenn.no_grad():
        for p in c.parameters():
            p.copy_(tracenn.tensor((rng.randn(*p.shape) * 0.5).astype(np.float32)))
    return c


def _gp(critic, real, fake, alpha):
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    out = critic(x)
    (g,) = tracenn.autograd.grad(out, x, grad_outputs=tracenn.ones_like(out), create_graph=True,
                                 retain_graph=True)
    return ((g.norm(2, dim=1) - 1) ** 2).mean()


def test_wgan_gp_penalty_gradient_matches_numpy():
    """A one-layer critic c(x) = x @ w: the gradient w.r.t. x is w, so the penalty is
    (|w| - 1)^2 and its gradient w.r.t. w is 2 (|w| - 1) w / |w|."""
    lin = nn.Linear(3, 1, bias=False)
    w = np.array([0.6, -0.8, 1.2], np.float32)
    with tracenn.no_grad():
        lin.weight.copy_(tracenn.tensor(w[None]))
    real, fake = tracenn.ones(4, 3), tracenn.zeros(4, 3)
    alpha = tracenn.tensor(np.linspace(0, 1, 4, dtype=np.float32)[:, None])

    def step():
        lin.zero_grad()
        gp = _gp(lin, real, fake, alpha)
        gp.backward()
        return gp.detach()

    gp = tracenn.compile(step)()
    n = np.linalg.norm(w)
    _close(gp.item(), (n - 1) ** 2)
    _close(lin.weight.grad.numpy()[0], 2 * (n - 1) * w / n)


def test_penalty_alone_leaves_a_bias_it_does_not_depend_on_without_grad():
    """A bias only shifts the critic's output, so the gradient penalty does not depend on it:
    its ``.grad`` stays None after ``gp.backward()`` inside a compiled step, as eagerly."""
    grads = []
    for compiled in (False, True):
        critic = _critic(4)

        def step(real, fake, alpha):
            critic.zero_grad()
            _gp(critic, real, fake, alpha).backward()

        (tracenn.compile(step) if compiled else step)(tracenn.ones(2, 3), tracenn.zeros(2, 3),
                                                       tracenn.tensor([[0.25], [0.75]]))
        grads.append([None if p.grad is None else p.grad.numpy().copy() for p in critic.parameters()])
    assert [g is None for g in grads[1]] == [g is None for g in grads[0]] == [False, False, False, True]
    for a, b in zip(grads[1][:3], grads[0][:3]):
        _close(a, b, rtol=1e-5)


def test_wgan_gp_critic_step_matches_eager():
    rng = np.random.RandomState(0)
    real = tracenn.tensor(rng.randn(5, 3).astype(np.float32))
    fakes = [tracenn.tensor(rng.randn(5, 3).astype(np.float32)) for _ in range(3)]
    alphas = [tracenn.tensor(rng.rand(5, 1).astype(np.float32)) for _ in range(3)]
    results = []
    for compiled in (False, True):
        critic = _critic(1)
        opt = tracenn.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.0, 0.9))

        def step(real, fake, alpha):
            opt.zero_grad()
            gp = _gp(critic, real, fake, alpha)
            loss = critic(fake).mean() - critic(real).mean() + 10.0 * gp
            loss.backward()
            opt.step()
            return loss.detach(), gp.detach()

        fn = tracenn.compile(step) if compiled else step
        losses = [[t.item() for t in fn(real, f, a)] for f, a in zip(fakes, alphas)]
        results.append((losses, [p.detach().numpy().copy() for p in critic.parameters()]))
    _close(results[1][0], results[0][0], rtol=1e-5)
    for a, b in zip(results[1][1], results[0][1]):
        _close(a, b, rtol=1e-5)


def test_random_interpolation_matches_eager_under_the_same_seed():
    critic = _critic(2)
    real, fake = tracenn.ones(4, 3), tracenn.zeros(4, 3)

    def penalty(real, fake):
        alpha = tracenn.rand(real.size(0), 1)
        return _gp(critic, real, fake, alpha)

    tracenn.manual_seed(7)
    eager = [penalty(real, fake).item() for _ in range(2)]
    tracenn.manual_seed(7)
    cf = tracenn.compile(penalty)
    _close([cf(real, fake).item() for _ in range(2)], eager)


def test_compiled_penalty_output_joins_eager_autograd():
    """The penalty computed by a compiled function, differentiated after the call."""
    critic = _critic(3)
    real, fake = tracenn.ones(4, 3), tracenn.zeros(4, 3)
    alpha = tracenn.tensor([[0.1], [0.4], [0.6], [0.9]])
    def penalty(real, fake, alpha):
        return _gp(critic, real, fake, alpha)

    grads = []
    for fn in (penalty, tracenn.compile(penalty)):
        critic.zero_grad()
        fn(real, fake, alpha).backward()
        grads.append([None if p.grad is None else p.grad.numpy().copy() for p in critic.parameters()])
    # the penalty does not depend on the last bias: no gradient reaches it (None), as eagerly
    assert [g is None for g in grads[1]] == [g is None for g in grads[0]] == [False, False, False, True]
    for a, b in zip(grads[1][:3], grads[0][:3]):
        _close(a, b, rtol=1e-5)


def test_backward_create_graph_then_penalty_on_grad():
    """``loss.backward(create_graph=True)`` inside the step: ``.grad`` carries a gradient, and a
    penalty on it differentiates back into the weights: for l = sum((x @ w)^2) / 2, l's gradient
    is X^T X w, the penalty |X^T X w|^2 and its gradient 2 (X^T X)^2 w."""
    w = nn.Parameter(tracenn.tensor([0.5, -1.0]))
    xn = np.array([[1.0, 2.0], [0.0, 1.0], [3.0, -1.0]], np.float32)
    x = tracenn.tensor(xn)

    def f(x):
        w.grad = None
        ((x @ w) ** 2).sum().div(2).backward(create_graph=True)
        pen = (w.grad ** 2).sum()
        (g,) = tracenn.autograd.grad(pen, w)
        w.grad = None
        return pen.detach(), g

    pen, g = tracenn.compile(f)(x)
    a = xn.T @ xn
    wn = np.array([0.5, -1.0], np.float32)
    _close(pen.item(), np.sum((a @ wn) ** 2), rtol=1e-5)
    _close(g.numpy(), 2 * a @ a @ wn, rtol=1e-5)


def test_maml_inner_loop_matches_eager():
    rng = np.random.RandomState(4)
    xs = tracenn.tensor(rng.randn(3, 4, 2).astype(np.float32))
    ys = tracenn.tensor(rng.randn(3, 4, 1).astype(np.float32))
    results = []
    for compiled in (False, True):
        net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
        r = np.random.RandomState(6)
        with tracenn.no_grad():
            for p in net.parameters():
                p.copy_(tracenn.tensor((r.randn(*p.shape) * 0.5).astype(np.float32)))
        opt = tracenn.optim.SGD(net.parameters(), lr=0.05)

        def step(xs, ys):
            opt.zero_grad()
            params = dict(net.named_parameters())
            total = 0.0
            for t in range(xs.shape[0]):
                loss = F.mse_loss(tracenn.func.functional_call(net, params, (xs[t],)), ys[t])
                gs = tracenn.autograd.grad(loss, list(params.values()), create_graph=True)
                fast = {k: v - 0.1 * g for (k, v), g in zip(params.items(), gs)}
                total = total + F.mse_loss(tracenn.func.functional_call(net, fast, (xs[t],)), ys[t])
            total.backward()
            opt.step()
            return total.detach()

        fn = tracenn.compile(step) if compiled else step
        results.append(([fn(xs, ys).item() for _ in range(2)], net[0].weight.detach().numpy().copy()))
    _close(results[1][0], results[0][0], rtol=1e-5)
    _close(results[1][1], results[0][1], rtol=1e-5)


def test_custom_function_backward_is_differentiated_again():
    class Cube(tracenn.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 3 * x ** 2

    def f(x):
        x = x.requires_grad_()
        (g,) = tracenn.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
        (h,) = tracenn.autograd.grad(g.sum(), x)
        return h

    x = np.array([1.0, -2.0], np.float32)
    _close(tracenn.compile(f)(tracenn.tensor(x)).numpy(), 6 * x)
