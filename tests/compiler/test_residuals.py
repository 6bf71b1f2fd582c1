"""What a grad-enabled compiled program keeps for its backward (``compiler/lower.py``).

The lowering saves, per op with a gradient rule, only the arguments the rule reads for the inputs
that need a gradient (``rule_reads``); the backward stands in zeros for the rest. A wrong "not
read" would silently corrupt gradients, so every op's rule runs on the op table's samples with the
unread arguments replaced by NaN (integers: their largest value, bools: flipped) and must give the
same gradients. The residual counts of small models are pinned: each residual is an output buffer
of the forward program, so a regression here is a per-call cost.
"""
from __future__ import annotations

import itertools
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tracenn
from helpers import load_by_path
from tracenn import nn
from tracenn.compiler.lower import rule_reads
from tracenn.func import to_jax
from tracenn.ops import OPS

_OPS = pathlib.Path(__file__).resolve().parent.parent / "ops"




R = load_by_path("_tracenn_op_records", _OPS / "op_records.py")
REG = load_by_path("_tracenn_test_registry", _OPS / "test_registry.py")  # its dispatch recorder and extra calls

RULED = sorted(n for n, op in OPS.items() if op.vjp is not None and op.differentiable)


@pytest.fixture(scope="module")
def rule_calls():
    """{op name: [(key, args, out), ...]}: one eager dispatch per distinct (key, argument avals) of
    every op with a gradient rule, from the first sample and the first float64 gradient sample of
    each op-table record, and the registry test's extra calls."""
    log = []
    saved = {name: op._fwd for name, op in OPS.items()}
    for name, op in OPS.items():
        op._fwd = REG._Recording(op, {}, log)
    to_t = lambda a: tracenn.tensor(a) if isinstance(a, np.ndarray) else (  # noqa: E731
        type(a)(to_t(x) for x in a) if isinstance(a, (list, tuple)) else a)
    try:
        for rec in R.RECORDS:
            fast = rec.fast or rec.samples[:1]
            grad = [s for s in fast if s.is_grad_sample()][:1] if rec.grad else []
            for s in fast[:1] + [s for s in grad if s is not fast[0]]:
                try:
                    rec.op(tracenn, *to_t(s.args), **{k: to_t(v) for k, v in s.kwargs.items()})
                except Exception:  # noqa: BLE001 - the op table reports failures; only dispatches matter
                    pass
        for call in list(REG._api_calls()) + list(REG._primitive_only()):
            call()
    finally:
        for name, op in OPS.items():
            op._fwd = saved[name]
    calls, seen = {}, set()
    for op, key, vals, out in log:
        sig = (op.name, key, tuple((v.shape, str(v.dtype)) if isinstance(v, jax.Array) else repr(v) for v in vals))
        if op.name in RULED and sig not in seen:
            seen.add(sig)
            calls.setdefault(op.name, []).append((key, list(vals), out))
    return calls


def _spoil(x):
    """An array of ``x``'s shape and dtype that no gradient may depend on."""
    dt = np.dtype(x.dtype)
    if dt == np.bool_:
        return jnp.logical_not(x)
    if dt.kind in "iu":
        return jnp.full(x.shape, np.iinfo(dt).max, dt)
    return jnp.full(x.shape, jnp.nan, x.dtype)


def _cotangent(o, rng):
    if jnp.issubdtype(o.dtype, jnp.inexact):
        return jnp.asarray(rng.standard_normal(o.shape), o.dtype)
    return np.zeros(o.shape, jax.dtypes.float0)


def _masks(arrays):
    """The needs-grad masks to check: all float inputs, and each float input alone."""
    floats = [jnp.issubdtype(a.dtype, jnp.inexact) for a in arrays]
    if any(floats):
        yield tuple(floats)
    if sum(floats) > 1:
        for i, f in enumerate(floats):
            if f:
                yield tuple(j == i for j in range(len(arrays)))


# The two property tests over every rule share rule_calls, whose setup dispatches every op-table
# sample (70 s on a 2-core machine): they run with -m slow. The known-answer tests below run
# by default.
@pytest.mark.slow
def test_every_rule_is_exercised(rule_calls):
    assert sorted(rule_calls) == RULED, f"no sample reaches {sorted(set(RULED) - set(rule_calls))}"


@pytest.mark.slow
@pytest.mark.parametrize("name", RULED)
def test_unread_arguments_do_not_change_gradients(rule_calls, name):
    op = OPS[name]
    rng = np.random.default_rng(0)
    for key, vals, out in rule_calls.get(name, []):
        params = op.params(key)
        pos = [i for i, v in enumerate(vals) if isinstance(v, jax.Array)]
        avals = [jax.ShapeDtypeStruct(v.shape, v.dtype) if i in pos else v for i, v in enumerate(vals)]
        outs, tree = jax.tree_util.tree_flatten(out)
        g = jax.tree_util.tree_unflatten(tree, [_cotangent(o, rng) for o in outs])
        for needs in _masks([vals[i] for i in pos]):
            reads = rule_reads(op, key, avals, needs)
            assert len(reads) == len(outs) + len(pos)
            spoiled_out = jax.tree_util.tree_unflatten(
                tree, [o if r else _spoil(o) for o, r in zip(outs, reads)])
            spoiled = list(vals)
            for i, r in zip(pos, reads[len(outs):]):
                if not r:
                    spoiled[i] = _spoil(vals[i])
            want = op.vjp(g, out, *vals, **params)
            got = op.vjp(g, spoiled_out, *spoiled, **params)
            for i, need in zip(pos, needs):
                if need and want[i] is not None:
                    np.testing.assert_array_equal(
                        np.asarray(got[i]), np.asarray(want[i]),
                        err_msg=f"{name}{key}: gradient of input {i} with needs={needs}, reads={reads}")


# ---- known answers -----------------------------------------------------------------------------

F32 = np.dtype("float32")


def _reads(name, key, *args, needs):
    return rule_reads(OPS[name], key, [jax.ShapeDtypeStruct(a, F32) if isinstance(a, tuple) else a
                                       for a in args], needs)


def test_rule_reads_known_answers():
    # (out, x, y): d/dx of x*y reads y only, d/dy reads x only; both read both
    assert _reads("mul", (F32,), (3,), (3,), needs=(True, False)) == (False, False, True)
    assert _reads("mul", (F32,), (3,), (3,), needs=(False, True)) == (False, True, False)
    assert _reads("mul", (F32,), (3,), (3,), needs=(True, True)) == (False, True, True)
    assert _reads("add", (F32,), (3,), (3,), needs=(True, True)) == (False, False, False)
    # x / y: d/dx reads y; d/dy reads y and the output
    assert _reads("div", (F32,), (3,), (3,), needs=(False, True)) == (True, False, True)
    assert _reads("permute", ((1, 0),), (2, 3), needs=(True,)) == (False, False)
    # a Python scalar operand is a literal, not an argument
    assert _reads("mul", (F32,), (3,), 2.0, needs=(True,)) == (False, False)


def test_rule_reads_is_cached():
    args = [jax.ShapeDtypeStruct((5,), F32)] * 2
    first = rule_reads(OPS["sub"], (F32,), args, (True, True))
    assert rule_reads(OPS["sub"], (F32,), args, (True, True)) is first


# ---- residual counts ---------------------------------------------------------------------------

def _residuals(model, x, *, x_grad=False):
    """The arrays a jitted ``jax.vjp`` of the model's lowered program returns for its backward."""
    fn, state = to_jax(model, x)
    b = state["buffers"]

    def fwd(p, x):
        if x_grad:
            return jax.vjp(lambda p, x: fn({"params": p, "buffers": b}, x)[0], p, x)
        return jax.vjp(lambda p: fn({"params": p, "buffers": b}, x)[0], p)

    _, pull = jax.jit(fwd)(state["params"], x)
    return jax.tree_util.tree_leaves(pull)


def test_linear_keeps_only_its_input():
    tracenn.manual_seed(0)
    model = nn.Linear(16, 16)
    x = jnp.ones((1, 16), jnp.float32)
    # dW = g^T x needs x; db needs nothing; the weight and its transpose are not kept
    assert [r.shape for r in _residuals(model, x)] == [(1, 16)]
    # with dx = g W also wanted: the (transposed) weight as well
    assert sorted(r.shape for r in _residuals(model, x, x_grad=True)) == [(1, 16), (16, 16)]


def test_mlp_residual_count():
    tracenn.manual_seed(0)
    model = nn.Sequential(*itertools.chain.from_iterable((nn.Linear(64, 64), nn.ReLU()) for _ in range(8)))
    res = _residuals(model, jnp.ones((1, 64), jnp.float32))
    # the input; per later layer its input (the ReLU output, which the ReLU's gradient reads too)
    # and its transposed weight; the last ReLU's output. Saving every input and output: 49.
    assert len(res) == 16
    assert sorted(r.shape for r in res) == [(1, 64)] * 9 + [(64, 64)] * 7


def test_gradients_match_eager_after_pruning():
    tracenn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4), nn.Sigmoid())
    x = tracenn.randn(5, 8, requires_grad=True)
    model(x).square().sum().backward()
    want = [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]
    model.zero_grad()
    x.grad = None
    tracenn.compile(model)(x).square().sum().backward()
    got = [p.grad.numpy() for p in model.parameters()] + [x.grad.numpy()]
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_unused_outputs_of_a_two_output_op():
    # max's indices (an integer output) get a symbolic zero cotangent, and so do the values when
    # only the indices are used further: the backward must instantiate them as JAX would
    def values_only(x):
        return tracenn.max(x, 1).values.sum()

    def indices_only(x):
        return (x * tracenn.max(x, 1).indices.unsqueeze(1).to(x.dtype)).sum()

    for fn in (values_only, indices_only):
        x = tracenn.tensor(np.arange(12.0).reshape(3, 4) % 5, requires_grad=True)
        fn(x).backward()
        want = x.grad.numpy().copy()
        x.grad = None
        tracenn.compile(fn)(x).backward()
        np.testing.assert_array_equal(x.grad.numpy(), want)
