"""tracenn.func's transforms (vmap, grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian) and
model ensembles: known values and NumPy/eager references, then torch.func as the oracle."""
from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from tracenn.func import (functional_call, grad, grad_and_value, hessian, jacfwd, jacrev, jvp,
                          replace_all_batch_norm_modules_, stack_module_state, vjp, vmap)
from helpers import assert_close, to_np


def T(a, **kw):
    return tracenn.tensor(np.asarray(a, np.float32), **kw)


# ---- grad -------------------------------------------------------------------------------------------

def test_grad_uses_torchs_rules_at_kinks():
    x = T([1.0, -2.0, 0.0])
    assert_close(grad(lambda x: x.relu().sum())(x), T([1.0, 0.0, 0.0]))  # relu'(0) = 0, as torch
    assert_close(grad(lambda x: x.clamp(-1, 1).sum())(T([1.0, 0.5, -1.0])), T([1.0, 1.0, 1.0]))
    assert_close(grad(lambda x: x.abs().sum())(x), T([1.0, -1.0, 0.0]))


def test_grad_argnums_structures_and_aux():
    x, y = T([1.0, 2.0]), T([3.0, 4.0])
    gx, gy = grad(lambda x, y: (x * y).sum(), argnums=(0, 1))(x, y)
    assert_close(gx, y)
    assert_close(gy, x)
    assert_close(grad(lambda x, y: (x * y).sum(), argnums=-1)(x, y), x)
    params = {"w": T([2.0]), "b": T([1.0]), "a": T([0.5])}
    g = grad(lambda p, x: (p["w"] * x + p["b"] * p["a"]).sum())(params, x)
    assert list(g) == ["w", "b", "a"]  # the dict's own order (JAX would sort it)
    assert_close(g["w"], T([3.0]))
    assert_close(g["a"], T([2.0]))
    g, aux = grad(lambda x: ((x ** 2).sum(), {"y": x * 2}), has_aux=True)(x)
    assert_close(g, T([2.0, 4.0]))
    assert_close(aux["y"], T([2.0, 4.0]))
    g, (v, aux) = grad_and_value(lambda x: ((x ** 2).sum(), x.mean()), has_aux=True)(x)
    assert_close(v, T(5.0))
    assert_close(aux, T(1.5))


def test_grad_of_grad_and_closures():
    w = T([3.0])
    d2 = grad(grad(lambda x: (w * x ** 3).sum()))  # 6 w x: the inner gradient summed is a scalar again
    assert_close(d2(T(2.0)), T(36.0))
    assert not w.requires_grad


@pytest.mark.parametrize("call, err, msg", [
    (lambda: grad(lambda x: x * 2)(T([1.0, 2.0])), RuntimeError,
     "Expected f(*args) to return a scalar Tensor, got tensor with 1 dims"),
    (lambda: grad(lambda x: 1.0)(T([1.0])), RuntimeError, "Expected f(*args) to return a Tensor, got <class 'float'>"),
    (lambda: grad(lambda x: x.sum())(3.0), ValueError, "Thing passed to transform API must be Tensor"),
    (lambda: grad(lambda x: x.sum(), argnums=2)(T([1.0])), RuntimeError, "Got argnum=2, but only 1 positional inputs"),
    (lambda: grad(lambda x: x.sum(), has_aux=True)(T([1.0])), RuntimeError,
     "output of function f should be a tuple: (output, aux) if has_aux is True"),
    (lambda: grad(lambda x: x.sum())(tracenn.arange(3)), RuntimeError,
     "only Tensors of floating point dtype can require gradients"),
])
def test_grad_errors(call, err, msg):
    with pytest.raises(err, match=re.escape(msg)):
        call()


# ---- vmap -------------------------------------------------------------------------------------------

def test_vmap_in_dims_out_dims_and_nesting():
    x = T(np.arange(6).reshape(2, 3))
    y = T([1.0, 2.0, 3.0])
    assert_close(vmap(lambda a, b: a * b, in_dims=(0, None))(x, y), x * y)
    assert_close(vmap(lambda a: a.sum())(x), x.sum(1))
    assert_close(vmap(lambda a: a.sum(), in_dims=1)(x), x.sum(0))
    assert_close(vmap(lambda a: a.sum(), in_dims=-1)(x), x.sum(0))
    assert_close(vmap(lambda a: a * 2, out_dims=1)(x), (x * 2).T)
    a, b = vmap(lambda r: (r.sum(), r * 0))(x)
    assert_close(a, x.sum(1))
    assert_close(vmap(vmap(lambda v: v * v))(x), x * x)
    outer = vmap(vmap(lambda u, v: u * v, in_dims=(None, 0)), in_dims=(0, None))(y, y)
    assert_close(outer, y[:, None] * y[None, :])
    d = vmap(lambda p, k: p["a"] + p["b"] * k, in_dims=({"a": 0, "b": None}, None))(
        {"a": x, "b": T(2.0)}, 3.0)
    assert_close(d, x + 6)
    assert_close(vmap(lambda r, scale=1.0: r * scale)(x, scale=2.0), x * 2)


def test_vmap_randomness():
    x = tracenn.ones(4, 3)
    with pytest.raises(RuntimeError, match="vmap: called random operation while in randomness error mode"):
        vmap(lambda r: r * tracenn.rand(3))(x)
    same = vmap(lambda r: r * tracenn.rand(3), randomness="same")(x)
    assert np.allclose(to_np(same), to_np(same)[0:1])
    diff = vmap(lambda r: r * tracenn.rand(3), randomness="different")(x)
    assert len({tuple(row) for row in to_np(diff).round(6)}) == 4
    with pytest.raises(RuntimeError, match="Only allowed values for randomness are 'error', 'different', or 'same'"):
        vmap(lambda r: r, randomness="foo")


@pytest.mark.parametrize("call, msg", [
    (lambda: vmap(lambda a: a, in_dims=(0, 0))(T([1.0])), "in_dims is not compatible with the structure of `inputs`"),
    (lambda: vmap(lambda a, b: a + b)(T([1.0, 2.0]), T([1.0, 2.0, 3.0])),
     "vmap: Expected all tensors to have the same size in the mapped dimension, got sizes [2, 3]"),
    (lambda: vmap(lambda a, b: a * b, in_dims=(0, 0))(T([1.0]), 2.0),
     "Got in_dim=0 for an input but the input is of type <class 'float'>"),
    (lambda: vmap(lambda a: a, in_dims=1)(T([1.0])),
     "Got in_dim=1 for some input, but that input is a Tensor of dimensionality 1 so expected in_dim to satisfy -1 <= in_dim < 1."),
    (lambda: vmap(lambda a: 1.0)(T([1.0])), "must only return Tensors, got type <class 'float'>"),
])
def test_vmap_errors(call, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        call()


def test_reading_values_inside_a_transform_is_a_clear_error():
    x = T([1.0, -1.0])
    with pytest.raises(RuntimeError, match=r"vmap: It looks like you're reading a Tensor's value.*test_transforms\.py"):
        vmap(lambda a: a * a.item())(x)
    with pytest.raises(RuntimeError, match=r"vmap: It looks like you're attempting to use a Tensor in some "
                                           r"data-dependent control flow at .*test_transforms\.py:\d+"):
        vmap(lambda a: a if a.sum() > 0 else -a)(x)
    # grad, as torch.func.grad, runs on values: Python control flow on them works
    assert_close(grad(lambda a: (a ** 2).sum() if a.sum() > 0 else -a.sum())(T([1.0, 2.0])), T([2.0, 4.0]))
    assert_close(grad(lambda a: a.sum() * float(a[0]))(T([3.0, 1.0])), T([3.0, 3.0]))


def test_in_place_change_of_a_captured_tensor_is_an_error_and_leaves_it_unchanged():
    buf = T([0.0, 0.0])
    with pytest.raises(RuntimeError, match="would mutate a captured Tensor"):
        grad(lambda x: buf.add_(x).sum())(T([1.0, 2.0]))
    assert_close(buf, T([0.0, 0.0]))
    assert buf._version == 0

    def local(x):  # a tensor made inside the function may change in place
        acc = tracenn.zeros(2)
        acc.add_(x * 2)
        return acc.sum()
    assert_close(grad(local)(T([1.0, 2.0])), T([2.0, 2.0]))

    bn = nn.BatchNorm1d(3)
    with pytest.raises(RuntimeError, match="would mutate a captured Tensor"):
        vmap(bn)(tracenn.randn(5, 4, 3))
    assert_close(bn.running_mean, tracenn.zeros(3))
    assert int(bn.num_batches_tracked) == 0
    replace_all_batch_norm_modules_(bn)
    assert bn.running_mean is None and not bn.track_running_stats
    x = tracenn.randn(5, 4, 3)
    assert_close(vmap(bn)(x), tracenn.stack([bn(r) for r in x]), atol=1e-5)


# ---- per-sample gradients, ensembles --------------------------------------------------------------

def _mlp():
    tracenn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def test_per_sample_gradients_equal_a_loop_of_backward():
    model = _mlp()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = tracenn.randn(6, 4), tracenn.tensor([0, 1, 2, 0, 1, 2])

    def loss_fn(p, xb, yb):
        return F.cross_entropy(functional_call(model, p, (xb.unsqueeze(0),)), yb.unsqueeze(0))
    per = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x, y)
    assert list(per) == list(params)
    for i in range(6):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for k, p in model.named_parameters():
            assert_close(per[k][i], p.grad, atol=1e-6)


def test_stack_module_state_ensemble():
    models = [_mlp() for _ in range(3)]
    for i, m in enumerate(models):
        with tracenn.no_grad():
            m[0].weight.mul_(i + 1)
    params, buffers = stack_module_state(models)
    assert params["0.weight"].shape == (3, 8, 4) and params["0.weight"].requires_grad
    assert params["0.weight"].is_leaf
    x = tracenn.randn(5, 4)
    out = vmap(lambda p, b, x: functional_call(models[0], (p, b), (x,)), in_dims=(0, 0, None))(params, buffers, x)
    for i, m in enumerate(models):
        assert_close(out[i].detach(), m(x).detach(), atol=1e-6)
    with pytest.raises(RuntimeError, match="Expected all models to be of the same class"):
        stack_module_state([nn.Linear(2, 2), nn.Conv1d(2, 2, 1)])
    with pytest.raises(RuntimeError, match="Expected at least one model, got 0"):
        stack_module_state([])


# ---- Jacobians, vjp, jvp -----------------------------------------------------------------------------

def test_jacobians_and_products_known_values():
    x = T([0.5, -1.0, 2.0])
    jac = np.diag(np.cos(to_np(x)))
    assert_close(jacrev(lambda v: v.sin())(x), T(jac))
    assert_close(jacfwd(lambda v: v.sin())(x), T(jac))
    A = T(np.arange(6).reshape(2, 3))
    ja, jv = jacrev(lambda a, v: a @ v, argnums=(0, 1))(A, x)
    assert ja.shape == (2, 2, 3)
    assert_close(jv, A)
    assert_close(hessian(lambda v: (v ** 3).sum())(x), T(np.diag(6 * to_np(x))))
    out, f = vjp(lambda v: v ** 2, x)
    assert_close(out, x ** 2)
    (g,) = f(T([1.0, 2.0, 3.0]))
    assert_close(g, 2 * x * T([1.0, 2.0, 3.0]))
    out, t = jvp(lambda v: v ** 2, (x,), (T([1.0, 0.0, 1.0]),))
    assert_close(t, 2 * x * T([1.0, 0.0, 1.0]))
    out, t, aux = jvp(lambda v: (v.exp(), v.sum()), (x,), (tracenn.ones(3),), has_aux=True)
    assert_close(t, x.exp())
    with pytest.raises(RuntimeError, match="Expected primals and tangents to have the same shape"):
        jvp(lambda v: v, (x,), (tracenn.ones(2),))
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        f(tracenn.ones(2))


# ---- joining the autograd tape ------------------------------------------------------------------------

def test_gradient_penalty_reaches_the_parameters():
    """loss = |d/dx (w x^3)|^2 summed: its gradient in w goes through grad's output."""
    w = tracenn.tensor([1.5], requires_grad=True)
    x = T([1.0, 2.0])
    gx = grad(lambda x: (w * x ** 3).sum())(x)  # 3 w x^2
    assert gx.requires_grad
    (gx ** 2).sum().backward()  # d/dw sum 9 w^2 x^4 = 18 w sum x^4
    assert_close(w.grad, T([18 * 1.5 * (1 + 16)]))


def test_vmap_of_a_model_backward_equals_eager():
    model = _mlp()
    x = tracenn.randn(5, 4, requires_grad=True)
    out = vmap(model)(x)
    out.pow(2).sum().backward()
    got = {k: p.grad.clone() for k, p in model.named_parameters()}
    gx = x.grad.clone()
    model.zero_grad()
    x.grad = None
    model(x).pow(2).sum().backward()
    for k, p in model.named_parameters():
        assert_close(got[k], p.grad, atol=1e-5)
    assert_close(gx, x.grad, atol=1e-6)
    with tracenn.no_grad():
        assert not vmap(model)(x).requires_grad


# ---- inside tracenn.compile ----------------------------------------------------------------------

def test_compiled_transform_is_one_node_equal_to_eager():
    model = _mlp()
    x = tracenn.randn(5, 4)

    def f(x):
        return vmap(model)(x).pow(2).sum()
    cf = tracenn.compile(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no eager fallback)
        got = cf(x)
    assert_close(got.detach(), f(x).detach(), atol=1e-6)
    line = str(cf.graph).splitlines()[1]
    assert re.match(r"  %0: f32\[5,3\] = func_transform\[fn=vmap\(Sequential\)\] %model\.0\.weight, "
                    r"%model\.0\.bias, %model\.2\.weight, %model\.2\.bias, %x   # test_transforms\.py:\d+$", line), line
    cf(x).backward()
    g = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    f(x).backward()
    for a, p in zip(g, model.parameters()):
        assert_close(a, p.grad, atol=1e-6)


def test_compiled_per_sample_gradients_and_vjp():
    model = _mlp()
    params = {k: v.detach() for k, v in model.named_parameters()}
    x, y = tracenn.randn(6, 4), tracenn.tensor([0, 1, 2, 0, 1, 2])

    def loss(p, a, b):
        return F.cross_entropy(functional_call(model, p, (a.unsqueeze(0),)), b.unsqueeze(0))
    f = lambda p, x, y: vmap(grad(loss), in_dims=(None, 0, 0))(p, x, y)  # noqa: E731
    got, want = tracenn.compile(f)(params, x, y), f(params, x, y)
    for k in params:
        assert_close(got[k], want[k], atol=1e-6)
    ct = tracenn.randn(6, 3)

    def pulled(x):
        out, back = vjp(model, x)
        return back(ct)[0]
    assert_close(tracenn.compile(pulled)(x).detach(), pulled(x).detach(), atol=1e-6)


def test_compiled_ensemble_training_step_equals_eager():
    def setup():
        models = [_mlp() for _ in range(3)]
        params, buffers = stack_module_state(models)
        opt = tracenn.optim.Adam(params.values(), lr=0.01)
        return models[0], params, buffers, opt
    x = tracenn.randn(5, 4)
    runs = []
    for compiled in (False, True):
        base, params, buffers, opt = setup()

        def step(x):
            opt.zero_grad()
            out = vmap(lambda p, b, a: functional_call(base, (p, b), (a,)), in_dims=(0, 0, None))(params, buffers, x)
            loss = out.pow(2).mean()
            loss.backward()
            opt.step()
            return loss
        fn = tracenn.compile(step) if compiled else step
        losses = [float(fn(x)) for _ in range(3)]
        runs.append((losses, {k: v.detach().clone() for k, v in params.items()}))
    (l0, p0), (l1, p1) = runs
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    for k in p0:
        assert_close(p1[k], p0[k], atol=1e-5)


def test_compiled_value_reading_transform_runs_eagerly_with_a_warning():
    scale = T([2.0])

    def f(x):
        return vmap(lambda r: r * (scale * 1).item())(x)
    cf = tracenn.compile(f)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = cf(tracenn.ones(3, 2))
    assert_close(out, tracenn.ones(3, 2) * 2)
    assert any("reads tensor values" in str(m.message) for m in w)


# ---- torch.func as the oracle ----------------------------------------------------------------------

def test_against_torch_func():
    torch = pytest.importorskip("torch")
    tf = torch.func
    model = _mlp()
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    tm.load_state_dict({k: torch.tensor(to_np(v)) for k, v in model.state_dict().items()})
    x_np = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    y_np = np.array([0, 1, 2, 0, 1, 2])
    x, y, tx, ty = tracenn.tensor(x_np), tracenn.tensor(y_np), torch.tensor(x_np), torch.tensor(y_np)
    params = {k: v.detach() for k, v in model.named_parameters()}
    tparams = {k: v.detach() for k, v in tm.named_parameters()}

    def loss(p, a, b):
        return F.cross_entropy(functional_call(model, p, (a.unsqueeze(0),)), b.unsqueeze(0))

    def tloss(p, a, b):
        return torch.nn.functional.cross_entropy(tf.functional_call(tm, p, (a.unsqueeze(0),)), b.unsqueeze(0))
    got = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    want = tf.vmap(tf.grad(tloss), in_dims=(None, 0, 0))(tparams, tx, ty)
    for k in params:
        assert_close(got[k], want[k], atol=1e-6)
    v = np.array([0.3, -0.7, 1.1], np.float32)
    f = lambda a: (a.sin() * a.relu()).sum()  # noqa: E731
    assert_close(hessian(f)(tracenn.tensor(v)), tf.hessian(f)(torch.tensor(v)), atol=1e-6)
    g = lambda a: a.tanh() * a[0]  # noqa: E731
    assert_close(jacrev(g)(tracenn.tensor(v)), tf.jacrev(g)(torch.tensor(v)), atol=1e-6)
    assert_close(jacfwd(g)(tracenn.tensor(v)), tf.jacfwd(g)(torch.tensor(v)), atol=1e-6)
    t = np.array([1.0, 2.0, -1.0], np.float32)
    assert_close(jvp(g, (tracenn.tensor(v),), (tracenn.tensor(t),))[1],
                 tf.jvp(g, (torch.tensor(v),), (torch.tensor(t),))[1], atol=1e-6)
    assert_close(vjp(g, tracenn.tensor(v))[1](tracenn.tensor(t))[0],
                 tf.vjp(g, torch.tensor(v))[1](torch.tensor(t))[0], atol=1e-6)


def test_complex_arguments_get_torchs_gradients():
    z = tracenn.tensor(np.array([1 + 2j, -0.5 + 0.3j], np.complex64))
    assert_close(grad(lambda a: (a * a.conj()).real.sum())(z), 2 * z)  # torch: d|z|^2 = 2z (JAX: 2 conj z)
    torch = pytest.importorskip("torch")
    tz = torch.tensor(to_np(z))
    f = lambda a: (a * a).abs().sum()  # noqa: E731
    assert_close(grad(f)(z), torch.func.grad(f)(tz))
    g = lambda a: a * a.conj() * 2j + a  # noqa: E731
    ct = np.array([0.3 - 1j, 2 + 0.5j], np.complex64)
    assert_close(vjp(g, z)[1](tracenn.tensor(ct))[0], torch.func.vjp(g, tz)[1](torch.tensor(ct))[0])
    w, tw = z.clone().requires_grad_(), tz.clone().requires_grad_()
    vmap(lambda x: (x * w).abs())(tracenn.ones(3, 2, dtype=tracenn.complex64)).sum().backward()
    torch.func.vmap(lambda x: (x * tw).abs())(torch.ones(3, 2, dtype=torch.complex64)).sum().backward()
    assert_close(w.grad, tw.grad)


# ---- traced once per call signature -------------------------------------------------------------

def _programs(transformed):
    """The transform's cache of programs (one per call signature), from its closure."""
    for cell in transformed.__closure__:
        if isinstance(cell.cell_contents, dict):
            return [p for k, p in cell.cell_contents.items() if isinstance(k, tuple)]
    raise AssertionError("no cache")


def test_calls_reuse_one_program_and_see_new_values():
    model = _mlp()
    f = vmap(model)
    x = tracenn.randn(5, 4)
    with tracenn.no_grad():
        f(x)
        f(tracenn.randn(5, 4))
        assert len(_programs(f)) == 1 and _programs(f)[0] is not None
        opt = tracenn.optim.SGD(model.parameters(), lr=0.1)
    model(x).sum().backward()
    opt.step()  # new parameter values: read by the same program
    with tracenn.no_grad():
        assert_close(f(x), model(x), atol=1e-6)
        f(tracenn.randn(7, 4))  # a new batch size: a new program
    assert len(_programs(f)) == 2


def test_a_rebound_global_or_a_mode_change_gives_a_new_program():
    global _SCALE
    _SCALE = T([2.0, 3.0])
    f = vmap(lambda r: r * _SCALE)
    x = tracenn.ones(4, 2)
    assert_close(f(x)[0], T([2.0, 3.0]))
    _SCALE = T([5.0, 7.0])  # a new tensor under the same global name
    assert_close(f(x)[0], T([5.0, 7.0]))

    class Mode(nn.Module):
        def forward(self, r):
            return r * 2 if self.training else r
    m = Mode()
    g = vmap(m)
    assert_close(g(x), x * 2)
    m.eval()
    assert_close(g(x), x)
    m.train()
    assert_close(g(x), x * 2)


def test_untraceable_functions_run_eagerly_each_call():
    x = tracenn.ones(3, 2)
    scale = T([2.0])
    f = vmap(lambda r: r * (scale * 1).item())
    assert_close(f(x), x * 2)
    with tracenn.no_grad():
        scale.fill_(3.0)
    assert_close(f(x), x * 3)  # the value read on every call, not baked into a program
    assert _programs(f) == [None]
    w = T([1.0, 2.0, 3.0, 4.0]).reshape(2, 2)
    wt = w.t()  # a view made outside: its values are read every call
    g = vmap(lambda r: r @ wt)
    assert_close(g(x), x @ w.t())
    with tracenn.no_grad():
        w.mul_(2)
    assert_close(g(x), x @ w.t())


_SCALE = None


def test_vmap_chunk_size_gives_the_same_results():
    model = _mlp()
    x = tracenn.randn(7, 4)
    with tracenn.no_grad():
        want = model(x)
        for chunk in (1, 2, 3, 7, 100):
            assert_close(vmap(model, chunk_size=chunk)(x), want, atol=1e-6)
        assert_close(vmap(model, in_dims=1, out_dims=1, chunk_size=3)(x.T), want.T, atol=1e-6)
        a, b = vmap(lambda r: (r.sum(), r * 2), out_dims=(0, 1), chunk_size=2)(x)
        assert_close(a, x.sum(1))
        assert_close(b, (x * 2).T)
    params = {k: v.detach() for k, v in model.named_parameters()}
    y = tracenn.tensor([0, 1, 2, 0, 1, 2, 0])

    def loss(p, a, b):
        return F.cross_entropy(functional_call(model, p, (a.unsqueeze(0),)), b.unsqueeze(0))
    full = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)
    chunked = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=3)(params, x, y)
    for k in params:
        assert_close(chunked[k], full[k], atol=1e-6)
    with pytest.raises(ValueError, match=r"chunk_size should be None or greater than 0. \(got 0\)"):
        vmap(model, chunk_size=0)


def test_functional_call_between_calls_keeps_the_program():
    """functional_call swaps a module's tensors and back (the modules' epoch moves): the
    modules are compared again, found unchanged, and the program is kept."""
    model = _mlp()
    f = vmap(model)
    x = tracenn.randn(3, 4)
    with tracenn.no_grad():
        f(x)
        first = _programs(f)[0]
        functional_call(model, {k: v.detach() for k, v in model.named_parameters()}, (x,))
        f(x)
        assert _programs(f) == [first]
        model.add_module("3", nn.ReLU())  # a real change: traced again
        assert_close(f(x), model(x))
        assert _programs(f)[0] is not first
