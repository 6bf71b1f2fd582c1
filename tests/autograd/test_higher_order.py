"""Higher-order gradients: ``backward(create_graph=True)`` and ``autograd.grad(..., create_graph=True)``
record the gradient computation, so gradients can be differentiated again (Hessian-vector
products, gradient penalties, MAML inner loops), as in torch."""
from __future__ import annotations

import gc
import warnings

import jax
import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np
from tracenn.errors import BackwardError


def _f64(a, requires_grad=True):
    return tracenn.tensor(np.asarray(a, np.float64), requires_grad=requires_grad)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


X = np.array([-1.5, -0.3, 0.4, 2.0])

# (function of a tracenn tensor, its second derivative in NumPy)
SECOND = {
    "cube": (lambda x: x ** 3, lambda x: 6 * x),
    "poly": (lambda x: 2 * x * x * x - x * x + 5 * x, lambda x: 12 * x - 2),
    "exp": (lambda x: x.exp(), np.exp),
    "tanh": (lambda x: x.tanh(), lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x))),
    "softplus": (lambda x: tracenn.nn.functional.softplus(x), lambda x: _sigmoid(x) * (1 - _sigmoid(x))),
    "sin_div": (lambda x: x.sin() / (x * x + 1),
                lambda x: (-np.sin(x) * (x * x + 1) ** 2 - 4 * x * np.cos(x) * (x * x + 1)
                           - np.sin(x) * (2 * (x * x + 1) - 8 * x * x)) / (x * x + 1) ** 3),
}


@pytest.mark.parametrize("name", list(SECOND))
def test_second_derivative_known_values(name):
    f, d2 = SECOND[name]
    x = _f64(X)
    (g,) = tracenn.autograd.grad(f(x).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    (h,) = tracenn.autograd.grad(g.sum(), x)
    assert_close(h, d2(X), rtol=1e-10, atol=1e-12)


def test_third_and_fourth_order_of_a_scalar_function():
    x = _f64(0.7)
    y = x ** 4 + x.sin()
    (d1,) = tracenn.autograd.grad(y, x, create_graph=True)
    (d2,) = tracenn.autograd.grad(d1, x, create_graph=True)
    (d3,) = tracenn.autograd.grad(d2, x, create_graph=True)
    (d4,) = tracenn.autograd.grad(d3, x)
    v = 0.7
    assert_close(d1, np.float64(4 * v ** 3 + np.cos(v)), rtol=1e-12)
    assert_close(d2, np.float64(12 * v ** 2 - np.sin(v)), rtol=1e-12)
    assert_close(d3, np.float64(24 * v - np.cos(v)), rtol=1e-12)
    assert_close(d4, np.float64(24 + np.sin(v)), rtol=1e-12)


def test_linear_hessian_vector_product_known_values():
    """L = sum_n ||W x_n + b||^2: the Hessian-vector product with V (in W's space) is
    2 sum_n (V x_n) x_n^T."""
    rng = np.random.default_rng(0)
    lin = tracenn.nn.Linear(4, 3).double()
    xs = rng.standard_normal((5, 4))
    V = rng.standard_normal((3, 4))
    loss = (lin(_f64(xs, False)) ** 2).sum()
    (gw,) = tracenn.autograd.grad(loss, lin.weight, create_graph=True)
    (hv,) = tracenn.autograd.grad((gw * _f64(V, False)).sum(), lin.weight)
    assert_close(hv, 2 * (xs @ V.T).T @ xs, rtol=1e-10)


def test_matmul_hessian_vector_product_matches_torch(torch):
    rng = np.random.default_rng(1)
    a, w, v = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((4, 2))

    def hvp(T):
        W = T.tensor(w, requires_grad=True)
        loss = ((T.tensor(a) @ W).tanh() ** 2).sum()
        (g,) = T.autograd.grad(loss, W, create_graph=True)
        return T.autograd.grad(g, W, T.tensor(v))[0]

    assert_close(hvp(tracenn), hvp(torch), rtol=1e-10)


def _mlp_pair(torch):
    m = tracenn.nn.Sequential(tracenn.nn.Linear(3, 8), tracenn.nn.Tanh(), tracenn.nn.Linear(8, 8),
                              tracenn.nn.Softplus(), tracenn.nn.Linear(8, 1)).double()
    t = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                            torch.nn.Softplus(), torch.nn.Linear(8, 1)).double()
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    return m, t


def _gradient_penalty(T, model, x):
    """WGAN-GP's penalty: (||dD(x)/dx|| - 1)^2, backpropagated into D's weights."""
    x = T.tensor(x, requires_grad=True)
    (gx,) = T.autograd.grad(model(x).sum(), x, create_graph=True)
    gp = ((gx.norm(2, dim=1) - 1) ** 2).mean()
    gp.backward()
    return [gp] + [p.grad for p in model.parameters()]


def test_gradient_penalty_through_mlp_matches_torch(torch):
    m, t = _mlp_pair(torch)
    x = np.random.default_rng(2).standard_normal((6, 3))
    ours, theirs = _gradient_penalty(tracenn, m, x), _gradient_penalty(torch, t, x)
    assert ours[-1] is None and theirs[-1] is None  # the last bias does not change dD/dx
    for a, b in zip(ours[:-1], theirs[:-1]):
        assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert all(g.grad_fn is None for g in ours[1:-1])  # plain backward: plain .grad


def test_maml_inner_step_matches_torch(torch):
    """One MAML step: adapt w with a gradient step kept in the graph, differentiate the
    post-adaptation loss w.r.t. the original w (second order through the inner gradient)."""
    rng = np.random.default_rng(3)
    w0, xa, xb = rng.standard_normal((3, 2)), rng.standard_normal((4, 3)), rng.standard_normal((4, 3))

    def step(T):
        w = T.tensor(w0, requires_grad=True)
        inner = ((T.tensor(xa) @ w).sigmoid() ** 2).mean()
        (g,) = T.autograd.grad(inner, w, create_graph=True)
        adapted = w - 0.5 * g
        outer = ((T.tensor(xb) @ adapted).tanh() - 0.3).pow(2).sum()
        outer.backward()
        return w.grad

    assert_close(step(tracenn), step(torch), rtol=1e-10)


def _structural(T, x, y):
    z = (x[1:, ::2] * y[:2, 1::2]).reshape(-1).mean() + (x * y.sum(0)).sum(1).pow(2).mean()
    z = z + T.cat([x[:1], x.t()[:1] ** 2], 1).sum() + (x.unsqueeze(0) * y[0]).amax()
    return z


def test_double_backward_through_structural_ops_matches_torch(torch):
    """sum/mean/broadcasting/indexing/reshape/cat/transpose in the first-order graph."""
    rng = np.random.default_rng(4)
    xv, yv = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))

    def run(T):
        x, y = T.tensor(xv, requires_grad=True), T.tensor(yv, requires_grad=True)
        gx, gy = T.autograd.grad(_structural(T, x, y), [x, y], create_graph=True)
        penalty = (gx ** 2).sum() + (gx * gy).sum()
        return [gx, gy, *T.autograd.grad(penalty, [x, y])]

    for a, b in zip(run(tracenn), run(torch)):
        assert_close(a, b, rtol=1e-10, atol=1e-12)


COMPOSITES = {
    "gelu": lambda T, x: T.nn.functional.gelu(x),
    "softmax": lambda T, x: T.nn.functional.softmax(x, 1) * x,
    "log_softmax": lambda T, x: T.nn.functional.log_softmax(x, 1) ** 2,
    "layer_norm": lambda T, x: T.nn.functional.layer_norm(x, (4,)) ** 3,
    "batch_norm": lambda T, x: T.nn.functional.batch_norm(x, None, None, training=True) ** 3,
    "cross_entropy": lambda T, x: T.nn.functional.cross_entropy(x, T.tensor([0, 2, 1])),
    "conv2d": lambda T, x: T.nn.functional.conv2d(x.reshape(1, 1, 3, 4), x[:2, :2].reshape(1, 1, 2, 2),
                                                  padding=1) ** 2,
    "max_pool2d": lambda T, x: T.nn.functional.max_pool2d((x ** 2).reshape(1, 1, 3, 4), 2) ** 2,
    "sort_cumsum": lambda T, x: x.sort(1).values.cumsum(1) ** 2,
    "prod_norm": lambda T, x: x.prod(1) + x.norm(dim=1) ** 3,
    "where_abs": lambda T, x: T.where(x > 0, x ** 2, x.abs() ** 3),
    "max_dim": lambda T, x: x.max(1).values ** 2 * x.logsumexp(1),
}


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_double_backward_of_composites_matches_torch(name, torch):
    xv = np.random.default_rng(5).standard_normal((3, 4))

    def run(T):
        x = T.tensor(xv, requires_grad=True)
        (g,) = T.autograd.grad(COMPOSITES[name](T, x).sum(), x, create_graph=True)
        return [g, T.autograd.grad((g * g).sum(), x)[0]]

    for a, b in zip(run(tracenn), run(torch)):
        assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_backward_inputs_non_leaf_with_create_graph(fresh_cycle_warning):
    x = _f64([1.0, 2.0])
    h = x * x
    with pytest.warns(UserWarning):
        (h ** 2).sum().backward(inputs=[h], create_graph=True)
    assert x.grad is None
    assert_close(h.grad, 2 * np.array([1.0, 4.0]))  # 2h, whose history runs back to x
    (gx,) = tracenn.autograd.grad(h.grad.sum(), x)
    assert_close(gx, 4 * np.array([1.0, 2.0]))


def test_gradient_of_a_linear_function_has_no_history_as_in_torch():
    """d(2x + sum)/dx depends on nothing that requires grad: torch's has no grad_fn, and so does
    ours (the gradient ops of mul/sum/reshape/index do not read their inputs)."""
    x = tracenn.ones(2, 3, requires_grad=True)
    y = (2 * x).reshape(6)[1:].sum() + x.mean()
    (g,) = tracenn.autograd.grad(y, x, create_graph=True)
    assert not g.requires_grad and g.grad_fn is None
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        tracenn.autograd.grad(g.sum(), x)


def test_allow_unused_and_materialize_grads_in_second_order():
    x, z = _f64([1.0, 2.0]), _f64([3.0, 4.0])
    (g,) = tracenn.autograd.grad((x ** 2 + z.sum() * 0).sum(), [x], create_graph=True)
    with pytest.raises(RuntimeError, match="index 1 appears to not have been used in the graph"):
        tracenn.autograd.grad(g.sum(), [x, z], retain_graph=True)
    hx, hz = tracenn.autograd.grad(g.sum(), [x, z], allow_unused=True, retain_graph=True)
    assert_close(hx, np.array([2.0, 2.0]))
    assert hz is None
    _, hz = tracenn.autograd.grad(g.sum(), [x, z], materialize_grads=True)
    assert_close(hz, np.zeros(2))


def test_grad_outputs_with_history_take_part():
    """A grad_outputs tensor that requires grad is part of the recorded gradient (the double
    backward trick: d/dv of v . J gives J^T)."""
    x = _f64([1.0, -2.0])
    v = _f64([0.5, 0.25])
    (g,) = tracenn.autograd.grad(x ** 3, x, v, create_graph=True)  # 3 x^2 v
    gx, gv = tracenn.autograd.grad(g.sum(), [x, v])
    assert_close(gx, 6 * np.array([1.0, -2.0]) * np.array([0.5, 0.25]))
    assert_close(gv, 3 * np.array([1.0, -2.0]) ** 2)


@pytest.fixture
def fresh_cycle_warning(monkeypatch):
    """backward(create_graph=True) warns once per process, as torch: let this test see it."""
    from tracenn import autograd
    monkeypatch.setattr(autograd, "_warned_cycle", [False])


def test_backward_create_graph_on_leaves_warns_once_and_grad_has_history(fresh_cycle_warning):
    x = _f64([1.0, 2.0])
    with pytest.warns(UserWarning, match="create a reference cycle between the parameter and its gradient"):
        (x ** 3).sum().backward(create_graph=True)
    assert_close(x.grad, np.array([3.0, 12.0]))
    assert x.grad.grad_fn is not None
    first = x.grad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time: no warning
        (x ** 2).sum().backward(create_graph=True)
    assert x.grad is not first  # accumulation makes a new tensor (grad + g), as torch in grad mode
    assert_close(first, np.array([3.0, 12.0]))
    assert_close(x.grad, np.array([5.0, 16.0]))
    (h,) = tracenn.autograd.grad(x.grad.sum(), x)  # d/dx (3x^2 + 2x)
    assert_close(h, np.array([8.0, 14.0]))


def test_backward_create_graph_matches_torch(torch, fresh_cycle_warning):
    def run(T):
        x = T.tensor([0.5, -1.0], dtype=T.float64, requires_grad=True)
        y = T.tensor([2.0], dtype=T.float64, requires_grad=True)
        h = x * y
        h.retain_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ((h.exp() * x).sum()).backward(create_graph=True)
        (x.grad.sum() + y.grad.sum() + h.grad.pow(2).sum()).backward()
        return [x.grad, y.grad]

    for a, b in zip(run(tracenn), run(torch)):
        assert_close(a, b, rtol=1e-10)


def test_create_graph_retains_the_graph_by_default():
    x = _f64([1.0, 2.0])
    y = x.exp().sum()
    tracenn.autograd.grad(y, x, create_graph=True)
    (g,) = tracenn.autograd.grad(y, x)  # the graph is still there
    assert_close(g, np.exp([1.0, 2.0]))
    y = x.exp().sum()
    (g,) = tracenn.autograd.grad(y, x, create_graph=True, retain_graph=False)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        tracenn.autograd.grad(g.sum(), x)  # its history runs through the freed exp node


def test_tensor_hook_gets_a_gradient_with_history():
    x = _f64([1.0, 2.0])
    y = x ** 2
    seen = []

    def hook(g):
        seen.append(g.grad_fn is not None)
        return g * 3

    y.register_hook(hook)
    (g,) = tracenn.autograd.grad((y ** 2).sum(), x, create_graph=True)  # 3 * 2y * 2x = 12 x^3
    assert seen == [True]
    assert_close(g, 12 * np.array([1.0, 8.0]))
    # d/dx 12 x^3 = 36 x^2, but the second backward passes through y again and the hook triples
    # that part (2y * 2x of it): 84 x^2, as torch gives
    (h,) = tracenn.autograd.grad(g.sum(), x)
    assert_close(h, 84 * np.array([1.0, 4.0]))


class _Cube(tracenn.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


def test_custom_function_backward_is_recorded():
    x = _f64([1.0, -2.0])
    (g,) = tracenn.autograd.grad(_Cube.apply(x).sum(), x, create_graph=True)
    assert g.grad_fn is not None
    assert_close(g, 3 * np.array([1.0, 4.0]))
    (h,) = tracenn.autograd.grad(g.sum(), x)
    assert_close(h, 6 * np.array([1.0, -2.0]))


def test_custom_function_matches_torch(torch):
    class Cube(torch.autograd.Function):
        forward = _Cube.forward
        backward = _Cube.backward

    def run(T, fn):
        x = T.tensor([1.5, -0.5], dtype=T.float64, requires_grad=True)
        (g,) = T.autograd.grad((fn.apply(x.sin()) * x).sum(), x, create_graph=True)
        return [g, T.autograd.grad((g ** 2).sum(), x)[0]]

    for a, b in zip(run(tracenn, _Cube), run(torch, Cube)):
        assert_close(a, b, rtol=1e-10)


def _once(T):
    class Square(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @T.autograd.function.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x * g

    x = T.tensor([1.0, 2.0], requires_grad=True)
    v = T.ones(2, requires_grad=True)
    (g,) = T.autograd.grad(Square.apply(x * 1), x, v, create_graph=True)
    assert g.requires_grad
    g.sum().backward()


def test_once_differentiable_raises_when_differentiated_twice():
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked "
                                           "with @once_differentiable"):
        _once(tracenn)


def test_once_differentiable_matches_torch(torch):
    with pytest.raises(RuntimeError, match="trying to differentiate twice a function that was marked "
                                           "with @once_differentiable"):
        _once(torch)


def test_first_order_backward_runs_without_grad_mode():
    """As torch: without create_graph, hooks and Function.backward run with grad mode off."""
    x = tracenn.ones(2, requires_grad=True)
    modes = []
    y = x * 2
    y.register_hook(lambda g: modes.append(tracenn.is_grad_enabled()))
    y.sum().backward()
    z = x * 3
    z.register_hook(lambda g: modes.append(tracenn.is_grad_enabled()))
    tracenn.autograd.grad(z.sum(), x, create_graph=True)
    assert modes == [False, True]
    assert tracenn.is_grad_enabled()


@pytest.fixture
def forget_test_ops():
    """Drop the cached gradient ops (and so the test-only OpDef they hold) after the test:
    tests/ops/test_registry.py checks that no OpDef outside the registry stays alive."""
    yield
    from tracenn.ops.derived import gradient_op
    gradient_op.cache_clear()
    gc.collect()


def test_a_rule_jax_cannot_differentiate_names_the_op(forget_test_ops):
    """An op whose gradient rule calls back into Python: first order works, the second says which
    op's rule could not be differentiated."""
    from tracenn import _dispatch
    from tracenn.ops import OpDef

    def vjp(g, out, x):
        return (jax.pure_callback(lambda a: np.cos(a), jax.ShapeDtypeStruct(x.shape, x.dtype), x) * g,)

    op = OpDef("host_sin", lambda x: jax.numpy.sin(x), vjp=vjp)  # not registered: a test-only op
    x = _f64([0.5, 1.0])
    (g,) = tracenn.autograd.grad(_dispatch.apply(op, (x,)).sum(), x, create_graph=True)
    assert_close(g, np.cos([0.5, 1.0]))
    with pytest.raises(BackwardError, match=r"VjpHostSinBackward0: the gradient rule of host_sin cannot "
                                            r"be differentiated.*create_graph=True"):
        tracenn.autograd.grad(g.sum(), x)


def test_through_a_compiled_call_says_to_run_eagerly():
    lin = tracenn.nn.Linear(3, 1)
    cm = tracenn.compile(lin)
    x = tracenn.ones(2, 3, requires_grad=True)
    with pytest.raises(BackwardError, match="create_graph=True cannot differentiate through .*compiled"):
        tracenn.autograd.grad(cm(x).sum(), x, create_graph=True)


def test_create_graph_inside_a_compiled_function_compiles_it():
    """The traced reverse pass records differentiable gradients (tests/compiler/
    test_create_graph_compiled.py has more): one program, the eager numbers, no fallback."""
    w = tracenn.nn.Parameter(tracenn.tensor([0.5, -1.0]))

    def penalty(x):
        x = x.detach().requires_grad_()
        (g,) = tracenn.autograd.grad((x * w).tanh().sum(), x, create_graph=True)
        return (g ** 2).sum()

    eager = penalty(tracenn.tensor([1.0, 2.0]))
    (gw_eager,) = tracenn.autograd.grad(eager, w)
    cf = tracenn.compile(penalty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cf(tracenn.tensor([1.0, 2.0]))
    assert_close(got, eager)
    assert "vjp_tanh" in str(cf.graph)  # the gradient is part of the program
    (gw,) = tracenn.autograd.grad(got, w)  # the program's pullback: through the recorded gradient
    assert_close(gw, gw_eager)


def test_gradient_ops_stay_non_differentiable_in_graphs():
    """A traced backward's vjp nodes are constants to a later traced backward (as eager gradients
    without create_graph); the eager flavour is differentiable and returns a tuple."""
    from tracenn.ops import OPS
    from tracenn.ops.derived import gradient_op
    graph_op, eager_op = gradient_op(OPS["tanh"]), gradient_op(OPS["tanh"], True)
    assert not graph_op.differentiable and eager_op.differentiable
    assert eager_op is not graph_op and eager_op.name == graph_op.name == "vjp_tanh"
    assert gradient_op(eager_op, True).static[-4:] == ("needs", "nout", "needs2", "nout2")
    assert "vjp_tanh" not in OPS
