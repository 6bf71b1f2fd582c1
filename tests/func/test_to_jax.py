"""tracenn.func.to_jax: a module as a pure JAX function of its state pytree."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.func import load_state_pytree, state_pytree, to_jax
from tracenn.nn import functional as F
from helpers import assert_close, to_np

f32 = jnp.float32


def _mlp():
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


class Net(nn.Module):
    """Conv + BatchNorm + dropout + linear: buffers, RNG and several layer families."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(4 * 5 * 5, 3)

    def forward(self, x):
        x = self.drop(F.relu(self.bn(self.conv(x))))
        return self.fc(x.flatten(1))


def _eager_grads(model, x, loss):
    model.zero_grad()
    loss(model(x)).backward()
    return {n: p.grad for n, p in model.named_parameters()}


# ---- outputs, structure, repr ---------------------------------------------------------------------

def test_outputs_equal_eager_and_state_is_the_modules():
    model = _mlp()
    x = tracenn.randn(5, 4)
    fn, state = to_jax(model, x)
    assert list(state["params"]) == [n for n, _ in model.named_parameters()] and state["buffers"] == {}
    assert all(state["params"][n] is p._value for n, p in model.named_parameters())
    y, new_state = fn(state, x._value)
    assert_close(y, model(x), rtol=1e-6, atol=1e-6)
    assert new_state == state
    yj, _ = jax.jit(fn)(state, x._value)
    assert_close(yj, model(x), rtol=1e-6, atol=1e-6)


def test_repr_and_graph():
    fn, _ = to_jax(_mlp().eval(), jax.ShapeDtypeStruct((2, 4), f32))
    assert repr(fn) == ("to_jax(Sequential): fn(state, input: f32[2,4], *, rng=None) -> (f32[2,3], new_state)"
                        "    mode=eval")
    assert fn.mode == "eval" and "matmul" in str(fn.graph)


def test_structured_inputs_outputs_and_static_arguments():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 2)

        def forward(self, pair, *, scale, extra=None):
            x, y = pair
            out = self.a(x) * scale + y
            return {"out": out, "aux": (out.sum(), extra["z"] * 2)}

    m = Two()
    x, y, z = tracenn.randn(4, 3), tracenn.randn(4, 2), tracenn.randn(2)
    fn, state = to_jax(m, (x, y), scale=2.0, extra={"z": z})
    out, _ = fn(state, (x._value, y._value), scale=2.0, extra={"z": z._value})
    ref = m((x, y), scale=2.0, extra={"z": z})
    assert set(out) == {"out", "aux"} and isinstance(out["aux"], tuple)
    assert_close(out["out"], ref["out"], rtol=1e-6, atol=1e-6)
    assert_close(out["aux"][0], ref["aux"][0], rtol=1e-5, atol=1e-5)
    assert_close(out["aux"][1], ref["aux"][1])
    with pytest.raises(TypeError, match=r"scale is 3.0, but the model was traced with 2.0; non-tensor arguments"):
        fn(state, (x._value, y._value), scale=3.0, extra={"z": z._value})
    with pytest.raises(TypeError, match=r"args\[0\] is \(f32\[4,3\],\), but the model was traced with \(array, array\)"):
        fn(state, (x._value,), scale=2.0, extra={"z": z._value})
    with pytest.raises(TypeError, match=r"traced with keyword arguments \['extra', 'scale'\], got \['scale'\]"):
        fn(state, (x._value, y._value), scale=2.0)


@dataclasses.dataclass
class _Batch:
    x: object
    y: object
    scale: float = 1.0


def test_dataclass_examples_and_arguments():
    """A dataclass argument: its arrays are inputs, its other fields static, as for a tuple."""
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 2)

        def forward(self, b):
            return self.a(b.x) * b.scale + b.y

    m = Scaled()
    x, y = tracenn.randn(4, 3), tracenn.randn(4, 2)
    fn, state = to_jax(m, _Batch(jnp.zeros((4, 3), jnp.float32), jnp.zeros((4, 2), jnp.float32), 2.0))
    out, _ = fn(state, _Batch(x._value, y._value, 2.0))
    assert_close(out, m(_Batch(x, y, 2.0)), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match=r"args\[0\].scale is 3.0, but the model was traced with 2.0"):
        fn(state, _Batch(x._value, y._value, 3.0))
    with pytest.raises(TypeError, match=r"args\[0\] is \(f32\[4,3\],\), but the model was traced with "
                                        r"_Batch\(x=array, y=array, scale=2.0\)"):
        fn(state, (x._value,))


def test_wrong_shapes_dtypes_and_state_fail_clearly():
    model = _mlp()
    fn, state = to_jax(model, tracenn.randn(5, 4))
    with pytest.raises(TypeError, match=r"input 'input' is f32\[6,4\], but the model was traced with f32\[5,4\]"):
        fn(state, jnp.zeros((6, 4), f32))
    with pytest.raises(TypeError, match=r"input 'input' is f64\[5,4\]"):
        fn(state, jnp.zeros((5, 4)))
    with pytest.raises(TypeError, match="traced with 1 positional argument"):
        fn(state, jnp.zeros((5, 4), f32), jnp.zeros(1))
    with pytest.raises(KeyError, match="state lacks params/2.bias"):
        fn({"params": {k: v for k, v in state["params"].items() if k != "2.bias"}}, jnp.zeros((5, 4), f32))
    with pytest.raises(KeyError, match="params/nope is not a parameter or buffer"):
        fn({"params": {**state["params"], "nope": jnp.zeros(1)}, "buffers": {}}, jnp.zeros((5, 4), f32))
    with pytest.raises(TypeError, match=r"state params/0.weight is f32\[4,8\], but the model was traced with "
                                        r"f32\[8,4\]"):
        fn({"params": {**state["params"], "0.weight": jnp.zeros((4, 8), f32)}}, jnp.zeros((5, 4), f32))
    with pytest.raises(TypeError, match="state must be"):
        fn(state["params"], jnp.zeros((5, 4), f32))
    with pytest.raises(TypeError, match="to_jax expects an nn.Module"):
        to_jax(lambda x: x, jnp.zeros(1))


def test_example_kinds_and_compiled_models():
    model = _mlp()
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    for example in (x, jnp.asarray(x), tracenn.tensor(x), jax.ShapeDtypeStruct((2, 4), f32)):
        fn, state = to_jax(model, example)
        assert_close(fn(state, x)[0], model(tracenn.tensor(x)), rtol=1e-6, atol=1e-6)
    fn, state = to_jax(tracenn.compile(model), x)
    assert_close(fn(state, tracenn.tensor(x))[0], model(tracenn.tensor(x)), rtol=1e-6, atol=1e-6)


def test_tracing_leaves_the_module_untouched():
    model = Net()
    before = {k: (v, np.asarray(v._value)) for k, v in model.state_dict(keep_vars=True).items()}
    counter = tracenn.default_generator._counter
    to_jax(model, tracenn.randn(2, 2, 5, 5))
    for k, v in model.state_dict(keep_vars=True).items():
        assert v is before[k][0] and np.array_equal(np.asarray(v._value), before[k][1])
    assert tracenn.default_generator._counter == counter + 1  # only the example's randn drew


def test_tied_parameters_appear_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(3, 3, bias=False)
            self.dec = nn.Linear(3, 3, bias=False)
            self.dec.weight = self.enc.weight

        def forward(self, x):
            return self.dec(self.enc(x))

    m = Tied()
    fn, state = to_jax(m, jax.ShapeDtypeStruct((2, 3), f32))
    assert list(state["params"]) == ["enc.weight"]
    x = jnp.ones((2, 3), f32)
    g = jax.grad(lambda p: fn({"params": p}, x)[0].sum())(state["params"])
    assert_close(g["enc.weight"], _eager_grads(m, tracenn.tensor(np.ones((2, 3), np.float32)),
                                               lambda y: y.sum())["enc.weight"], rtol=1e-5, atol=1e-6)


# ---- transformations ----------------------------------------------------------------------------

def test_grad_equals_eager_gradients():
    model = Net()
    model.drop.p = 0.0  # deterministic; RNG is tested below
    x = tracenn.randn(3, 2, 5, 5)
    target = tracenn.randn(3, 3)
    fn, state = to_jax(model, x)

    def loss(params):
        y, new_state = fn({"params": params, "buffers": state["buffers"]}, x._value, rng=jax.random.PRNGKey(0))
        return jnp.mean((y - target._value) ** 2), new_state

    (value, new_state), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(state["params"])
    eager = _eager_grads(model, x, lambda y: F.mse_loss(y, target))
    assert set(grads) == set(eager)
    for n in grads:
        assert_close(grads[n], eager[n], rtol=1e-4, atol=1e-6)
    assert_close(value, F.mse_loss(model(x), target).detach() * 0 + value)  # a scalar f32
    assert int(new_state["buffers"]["bn.num_batches_tracked"]) == 1


def test_vmap_over_examples_and_over_parameters():
    model = _mlp()
    xs = tracenn.randn(6, 4)
    fn, state = to_jax(model, jax.ShapeDtypeStruct((4,), f32))  # one example
    ys = jax.vmap(lambda x: fn(state, x)[0])(xs._value)
    assert_close(ys, model(xs), rtol=1e-5, atol=1e-6)
    # per-example gradients: vmap of grad
    per_ex = jax.vmap(jax.grad(lambda p, x: fn({"params": p}, x)[0].sum()), in_axes=(None, 0))(state["params"], xs._value)
    for i in range(3):
        eager = _eager_grads(model, xs[i], lambda y: y.sum())
        for n in eager:
            assert_close(per_ex[n][i], eager[n], rtol=1e-5, atol=1e-6)
    # an ensemble: vmap over stacked parameters
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, a * 2]), state["params"])
    ens = jax.vmap(lambda p: fn({"params": p}, xs._value[0])[0])(stacked)
    assert_close(ens[0], model(xs[0]), rtol=1e-5, atol=1e-6)


def test_batchnorm_buffers_flow_through_new_state():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    x = tracenn.randn(8, 3)
    fn, state = to_jax(model, x)
    step = jax.jit(fn)
    for _ in range(3):
        y, state = step(state, x._value)
        ref = model(x)
        assert_close(y, ref, rtol=1e-5, atol=1e-5)
    for n, b in model.named_buffers():
        assert_close(state["buffers"][n], b, rtol=1e-6, atol=1e-6)
    assert int(state["buffers"]["1.num_batches_tracked"]) == 3
    model.eval()
    fn_eval, st = to_jax(model, x)
    assert not fn_eval.graph.writes
    y, new_st = fn_eval(state, x._value)
    assert new_st["buffers"] is not state["buffers"] and new_st["buffers"] == state["buffers"]
    load_state_pytree(model, state)
    assert_close(y, model(x), rtol=1e-5, atol=1e-6)


def test_dropout_with_an_rng_key():
    model = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.5))
    x = tracenn.randn(4, 16)
    fn, state = to_jax(model, x)
    y0, _ = fn(state, x._value, rng=jax.random.PRNGKey(7))
    tracenn.manual_seed(7)
    assert np.array_equal(np.asarray(y0), to_np(model(x)))  # the same mask as eager, same seed
    y1, _ = fn(state, x._value, rng=jax.random.PRNGKey(8))
    assert not np.array_equal(np.asarray(y0 == 0), np.asarray(y1 == 0))
    y2, _ = jax.jit(fn)(state, x._value, rng=jax.random.key(7))  # typed keys too
    assert np.array_equal(np.asarray(y0), np.asarray(y2))
    with pytest.raises(TypeError, match=r"draws random numbers \(mode=train; dropout\?\), so it needs a key"):
        fn(state, x._value)
    with pytest.raises(TypeError, match="rng must be a JAX PRNG key"):
        fn(state, x._value, rng=jnp.zeros(3, jnp.uint32))
    fn_eval, _ = to_jax(model.eval(), x)
    assert_close(fn_eval(state, x._value)[0], fn_eval(state, x._value, rng=jax.random.PRNGKey(1))[0])


def test_jitted_sgd_loop_then_load_back():
    tracenn.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 1))
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, (64, 2)).astype(np.float32)
    ys = (xs[:, :1] * xs[:, 1:]).astype(np.float32)
    fn, state = to_jax(model, xs)

    @jax.jit
    def step(state, x, y):
        def loss(p):
            out, new_state = fn({"params": p, "buffers": state["buffers"]}, x)
            return jnp.mean((out - y) ** 2), new_state
        (l, new_state), g = jax.value_and_grad(loss, has_aux=True)(state["params"])
        new_state["params"] = jax.tree_util.tree_map(lambda p, g: p - 0.1 * g, state["params"], g)
        return new_state, l

    losses = []
    for _ in range(60):
        state, l = step(state, xs, ys)
        losses.append(float(l))
    assert losses[-1] < 0.5 * losses[0]
    load_state_pytree(model, state)
    for n, p in model.named_parameters():
        assert np.array_equal(np.asarray(p._value), np.asarray(state["params"][n]))
    out_jax = jax.jit(fn)(state, xs)[0]
    assert_close(model(tracenn.tensor(xs)), out_jax, rtol=1e-6, atol=1e-6)
    assert_close(tracenn.compile(model)(tracenn.tensor(xs)), out_jax, rtol=1e-6, atol=1e-6)


# ---- PyTorch as the oracle ----------------------------------------------------------------------

def test_grads_match_torch(torch):
    tm = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    m = _mlp()
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    fn, state = to_jax(m, x)
    g = jax.grad(lambda p: jnp.sum(fn({"params": p}, x)[0] ** 2))(state["params"])
    params = {k: v.detach().requires_grad_() for k, v in tm.named_parameters()}
    tg = torch.autograd.grad(torch.func.functional_call(tm, params, torch.tensor(x)).square().sum(),
                             list(params.values()))
    for (n, _), t in zip(tm.named_parameters(), tg):
        assert_close(g[n], t, rtol=1e-4, atol=1e-5)


def test_forward_hooks_run_on_every_call_with_real_values():
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    seen = []
    m[0].register_forward_hook(lambda mod, inp, out: seen.append(to_np(out)))
    fn, state = to_jax(m, jax.ShapeDtypeStruct((4, 3), f32))
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 3)), f32)
    step = jax.jit(fn)
    for _ in range(2):
        jax.block_until_ready(step(state, x))
    assert len(seen) == 2
    np.testing.assert_allclose(seen[-1], to_np(m[0](tracenn.tensor(np.asarray(x)))), rtol=1e-6, atol=1e-6)
    # a hook that replaces the output: allowed for a function traced under no_grad
    m2 = nn.Linear(3, 2)
    m2.register_forward_hook(lambda mod, inp, out: out * 2)
    with tracenn.no_grad():
        fn2, state2 = to_jax(m2, x)
    assert_close(fn2(state2, x)[0], m2(tracenn.tensor(np.asarray(x))), rtol=1e-6, atol=1e-6)
    # a full backward hook fires with real gradients when JAX differentiates the function
    m3, grads_out = nn.Linear(3, 2), []
    m3.register_full_backward_hook(lambda mod, gin, gout: grads_out.append(to_np(gout[0])))
    fn3, state3 = to_jax(m3, x)
    with pytest.warns(UserWarning, match="no inputs require gradients"):  # (x does not: torch warns too)
        jax.grad(lambda p: fn3({"params": p, "buffers": state3["buffers"]}, x)[0].sum())(state3["params"])
    assert len(grads_out) == 1 and np.array_equal(grads_out[0], np.ones((4, 2), np.float32))


@pytest.mark.xfail(strict=False, reason="the tracer records no stop-gradient for detach()/no_grad, so the "
                                        "lowered graph differentiates through them (compiler issue, reported)")
def test_detach_in_forward_stops_the_gradient():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            y = self.lin(x)
            return y * y.detach()

    m = M()
    x = tracenn.ones(1, 2)
    fn, state = to_jax(m, x)
    g = jax.grad(lambda p: fn({"params": p}, x._value)[0].sum())(state["params"])
    assert_close(g["lin.bias"], _eager_grads(m, x, lambda y: y.sum())["lin.bias"], rtol=1e-5, atol=1e-6)
