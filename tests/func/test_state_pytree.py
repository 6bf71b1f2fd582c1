"""tracenn.func.state_pytree / load_state_pytree: the module's state as JAX arrays, and back, exactly."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.func import load_state_pytree, state_pytree
from helpers import to_np


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _perturbed(state, seed=0):
    rng = np.random.default_rng(seed)

    def change(a):
        if np.dtype(a.dtype).kind == "f":
            return jnp.asarray(rng.standard_normal(a.shape).astype(a.dtype))
        return a + 5
    return jax.tree_util.tree_map(change, state)


def test_state_pytree_mirrors_named_parameters_and_buffers():
    m = _net()
    m.register_buffer("scratch", tracenn.zeros(2), persistent=False)
    st = state_pytree(m)
    assert list(st["params"]) == [n for n, _ in m.named_parameters()]
    assert list(st["buffers"]) == [n for n, _ in m.named_buffers()] and "scratch" in st["buffers"]
    for n, p in m.named_parameters():
        assert st["params"][n] is p._value
    assert st == state_pytree(tracenn.compile(m))


def test_round_trip_is_bit_exact_and_keeps_the_tensor_objects():
    m = _net()
    before = {n: t for n, t in m.state_dict(keep_vars=True).items()}
    versions = {n: t._version for n, t in before.items()}
    new = _perturbed(state_pytree(m))
    assert repr(load_state_pytree(m, new)) == "<All keys matched successfully>"
    got = state_pytree(m)
    for sec in new:
        for n in new[sec]:
            a, b = np.asarray(got[sec][n]), np.asarray(new[sec][n])
            assert a.dtype == b.dtype and np.array_equal(a, b)
    for n, t in m.state_dict(keep_vars=True).items():
        assert t is before[n] and t._version == versions[n] + 1
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in m.parameters())
    # and back again
    load_state_pytree(m, jax.tree_util.tree_map(np.asarray, got))
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: np.array_equal(a, b), state_pytree(m), got))


def test_optimizers_views_and_compiled_calls_see_loaded_values():
    m = nn.Linear(3, 2)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    cm = tracenn.compile(m)
    x = tracenn.randn(4, 3)
    cm(x)
    view = m.weight.data
    new = _perturbed(state_pytree(m))
    load_state_pytree(m, new)
    assert np.array_equal(to_np(view), np.asarray(new["params"]["weight"]))
    assert np.allclose(to_np(cm(x)), to_np(m(x)), atol=1e-6)
    assert len(cm._entries) == 1
    m(x).sum().backward()
    opt.step()
    assert not np.array_equal(to_np(m.weight), np.asarray(new["params"]["weight"]))


def test_tied_parameters_load_once():
    m = nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False))
    m[1].weight = m[0].weight
    st = state_pytree(m)
    assert list(st["params"]) == ["0.weight"]
    load_state_pytree(m, {"params": {"0.weight": jnp.ones((3, 3), jnp.float32)}, "buffers": {}})
    assert m[1].weight is m[0].weight and to_np(m[1].weight).sum() == 9


def test_key_errors_list_everything_and_write_nothing():
    m = _net()
    st = state_pytree(m)
    bad = {"params": {**{k: v for k, v in st["params"].items() if k != "0.bias"}, "9.weight": jnp.zeros(1)},
           "buffers": st["buffers"]}
    with pytest.raises(RuntimeError) as e:
        load_state_pytree(m, _perturbed(bad))
    assert str(e.value) == ('Error(s) in loading state pytree for Sequential:\n\tMissing key(s) in state pytree: '
                            '"params/0.bias". \n\tUnexpected key(s) in state pytree: "params/9.weight". ')
    assert jax.tree_util.tree_all(jax.tree_util.tree_map(lambda a, b: a is b, state_pytree(m), st))
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state pytree: "buffers/1.running_mean", '):
        load_state_pytree(m, {"params": st["params"]})
    with pytest.raises(RuntimeError, match="Unexpected section\\(s\\) \\['opt_state'\\]"):
        load_state_pytree(m, {**st, "opt_state": {}})
    with pytest.raises(TypeError, match="Expected the state pytree to be a dict"):
        load_state_pytree(m, [st])


def test_not_strict_loads_what_is_given():
    m = _net()
    st = state_pytree(m)
    new = _perturbed({"params": {"0.weight": st["params"]["0.weight"], "extra": jnp.zeros(1)}})
    result = load_state_pytree(m, new, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == ["params/extra"]
    assert np.array_equal(to_np(m[0].weight), np.asarray(new["params"]["0.weight"]))
    assert state_pytree(m)["params"]["0.bias"] is st["params"]["0.bias"]


def test_shape_and_dtype_mismatches_raise_even_when_not_strict():
    m = nn.Linear(3, 2)
    st = state_pytree(m)
    with pytest.raises(RuntimeError, match=r"size mismatch for params/weight: copying an array with shape \[3, 2\] "
                                           r"from the state pytree, the shape in current model is \[2, 3\]\."):
        load_state_pytree(m, {"params": {"weight": jnp.zeros((3, 2), jnp.float32)}}, strict=False)
    with pytest.raises(RuntimeError, match=r"dtype mismatch for params/bias: the state pytree holds float64, the "
                                           r"model float32 \(load_state_pytree never casts"):
        load_state_pytree(m, {"params": {**st["params"], "bias": jnp.zeros(2)}})
    with pytest.raises(TypeError, match="state pytree leaf params/bias must be an array, got list"):
        load_state_pytree(m, {"params": {**st["params"], "bias": [0.0, 0.0]}}, strict=False)


def test_traced_arrays_are_refused():
    m = nn.Linear(2, 2)

    @jax.jit
    def inside(state):
        load_state_pytree(m, state)
        return 0

    with pytest.raises(RuntimeError, match="call it outside jax.jit"):
        inside(state_pytree(m))


def test_dtypes_survive():
    m = nn.Linear(2, 2).double()
    st = state_pytree(m)
    assert st["params"]["weight"].dtype == jnp.float64
    load_state_pytree(m, _perturbed(st))
    assert m.weight.dtype == tracenn.float64
    h = nn.Linear(2, 2).to(tracenn.bfloat16)
    new = _perturbed(state_pytree(h))
    load_state_pytree(h, new)
    assert np.array_equal(np.asarray(h.weight._value), np.asarray(new["params"]["weight"]))


def test_compiled_calls_never_delete_arrays_a_pytree_holds():
    m = _net()
    cm = tracenn.compile(m)
    x = tracenn.randn(8, 3)
    held = state_pytree(m)
    snapshot = jax.tree_util.tree_map(np.array, held)
    with tracenn.no_grad():  # a train-mode call rewrites (and may donate) the running statistics
        cm(x)
    loaded = _perturbed(held)
    load_state_pytree(m, loaded)
    with tracenn.no_grad():
        cm(x)
    for tree, ref in ((held, snapshot), (loaded, None)):
        for sec in tree:
            for n, a in tree[sec].items():
                assert not a.is_deleted()
                if ref is not None:
                    assert np.array_equal(np.asarray(a), ref[sec][n])
    assert int(m[1].num_batches_tracked) == int(loaded["buffers"]["1.num_batches_tracked"]) + 1
