"""Random numbers inside tracenn.func transforms (tracenn/func/_random.py): a transform whose
function draws (dropout, rand, bernoulli) runs as one program traced once, whose generator key and
counter are arguments, so every call draws fresh numbers, the same ones the eager (op by op) path
draws from the same seed; vmap's randomness modes, chunks, nesting, grad around and inside vmap,
and inside tracenn.compile."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from tracenn.func import _transforms, functional_call, grad, jacrev, vjp, vmap
from helpers import assert_close, to_np


def _programs(transformed):
    """The transform's cache of programs (one per call signature), from its closure (grad's is in
    the grad_and_value it wraps)."""
    cells = dict(zip(transformed.__code__.co_freevars, transformed.__closure__))
    if "cache" not in cells:
        return _programs(cells["gv"].cell_contents)
    return [p for k, p in cells["cache"].cell_contents.items() if isinstance(k, tuple)]


def _eagerly(transformed, *args):
    """``transformed`` held on the eager (op by op) path: its first call, here, finds no program,
    and the transform's cache keeps that for calls with the same signature."""
    real = _transforms._Program.make
    _transforms._Program.make = classmethod(lambda cls, *a: None)
    try:
        transformed(*args)
    finally:
        _transforms._Program.make = real
    assert _programs(transformed) == [None]
    return transformed


def _counter():
    return tracenn.random.default_generator._counter


def _same_seed(fns, *args, seed=3):
    """Each of ``fns`` called twice from ``seed``: the outputs and the generator's counter after."""
    out = []
    for f in fns:
        tracenn.manual_seed(seed)
        vals = [to_np(f(*args)) for _ in range(2)]
        out.append((vals, _counter()))
    return out


# ---- vmap's randomness in one program ---------------------------------------------------------------

def test_different_masks_per_sample_fresh_per_call_one_trace():
    traces = [0]

    def f(r):
        traces[0] += 1  # (runs only while the function is traced)
        return F.dropout(r, 0.5)
    g = vmap(f, randomness="different")
    x = tracenn.ones(6, 32)
    start = _counter()
    outs = [to_np(g(x)) for _ in range(4)]
    assert traces[0] == 2 and len(_programs(g)) == 1 and _programs(g)[0] is not None  # (shapes, then jit)
    assert _counter() == start + 4  # one draw per call
    for out in outs:
        assert set(np.unique(out)) <= {0.0, 2.0}
        assert len({row.tobytes() for row in out}) == 6  # each sample its own mask
    assert len({out.tobytes() for out in outs}) == 4  # and a new one every call
    assert 0.3 < np.mean(np.stack(outs) == 0) < 0.7


def test_same_gives_every_sample_one_mask():
    g = vmap(lambda r: F.dropout(r, 0.5), randomness="same")
    x = tracenn.arange(6.0).reshape(6, 1).expand(6, 40) + 1
    a, b = to_np(g(x)), to_np(g(x))
    for out in (a, b):
        kept = out != 0
        assert (kept == kept[0:1]).all() and 0 < kept[0].sum() < 40
        np.testing.assert_allclose(out[kept.nonzero()], 2 * to_np(x)[kept.nonzero()])
    assert not np.array_equal(a != 0, b != 0)


def test_error_mode_still_raises_torchs_message():
    with pytest.raises(RuntimeError, match="vmap: called random operation while in randomness error mode"):
        vmap(lambda r: F.dropout(r, 0.5))(tracenn.ones(2, 3))


@pytest.mark.parametrize("randomness", ["same", "different"])
def test_program_draws_what_the_eager_path_draws_from_the_same_seed(randomness):
    def f(r):
        return F.dropout(r, 0.3) + tracenn.randn(3) * tracenn.bernoulli(tracenn.full((3,), 0.5))

    x = tracenn.ones(4, 3)
    program, eager = vmap(f, randomness=randomness), _eagerly(vmap(f, randomness=randomness), x)
    (p_vals, p_count), (e_vals, e_count) = _same_seed([program, eager], x)
    assert _programs(program)[0] is not None and _programs(eager) == [None]
    for a, b in zip(p_vals, e_vals):
        np.testing.assert_array_equal(a, b)
    assert p_count == e_count == 6  # three draws per call, two calls
    assert not np.array_equal(p_vals[0], p_vals[1])


def test_reseeding_changes_the_numbers_without_a_new_trace():
    traces = [0]

    def f(r):
        traces[0] += 1
        return r * tracenn.rand(5)
    g = vmap(f, randomness="different")
    x = tracenn.ones(3, 5)
    tracenn.manual_seed(1)
    a = to_np(g(x))
    tracenn.manual_seed(2)
    b = to_np(g(x))
    tracenn.manual_seed(1)
    c = to_np(g(x))
    n = traces[0]
    tracenn.random.default_generator.set_state(tracenn.random.default_generator.get_state())
    g(x)
    assert traces[0] == n == 2 and len(_programs(g)) == 1
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_a_generator_is_captured_by_identity():
    mine = tracenn.Generator().manual_seed(7)
    g = vmap(lambda r: r * tracenn.rand(4, generator=mine), randomness="different")
    x = tracenn.ones(2, 4)
    before = _counter()
    a = to_np(g(x))
    assert _counter() == before and mine._counter == 1  # the default generator does not move
    mine.manual_seed(7)
    np.testing.assert_array_equal(to_np(g(x)), a)
    other = tracenn.Generator().manual_seed(7)
    mine = other  # (the closure now names another generator: a new program, drawing from it)
    np.testing.assert_array_equal(to_np(g(x)), a)
    assert other._counter == 1 and len(_programs(g)) == 2


def test_a_generator_passed_as_an_argument():
    gen = tracenn.Generator().manual_seed(11)

    def f(r, gen):
        return r * tracenn.randn(3, generator=gen)
    g = vmap(f, in_dims=(0, None), randomness="same")
    x = tracenn.ones(2, 3)
    a = to_np(g(x, gen))
    gen.manual_seed(11)
    np.testing.assert_array_equal(to_np(g(x, gen)), a)
    np.testing.assert_array_equal(a[0], a[1])
    other = tracenn.Generator().manual_seed(11)
    np.testing.assert_array_equal(to_np(g(x, other)), a)
    assert gen._counter == other._counter == 1 and len(_programs(g)) == 2


# ---- chunks and nesting -------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 2, 3, 7])
def test_chunks_draw_what_the_whole_batch_draws(chunk):
    x = tracenn.ones(7, 16)
    whole = vmap(lambda r: F.dropout(r, 0.5), randomness="different")
    chunked = vmap(lambda r: F.dropout(r, 0.5), randomness="different", chunk_size=chunk)
    (w, wc), (c, cc) = _same_seed([whole, chunked], x)
    assert wc == cc == 2
    for a, b in zip(w, c):
        np.testing.assert_array_equal(a, b)
        assert len({row.tobytes() for row in b}) == 7  # no chunk repeats another
    same = vmap(lambda r: F.dropout(r, 0.5), randomness="same", chunk_size=chunk)
    out = to_np(same(x))
    assert (out == out[0:1]).all()  # every chunk one mask, as torch's chunks (rng state reset per chunk)


def test_chunks_on_the_eager_path_too():
    x = tracenn.ones(5, 8)

    def make():
        return vmap(lambda r: r * tracenn.rand(8), randomness="different", chunk_size=2)
    (p, pc), (e, ec) = _same_seed([make(), _eagerly(make(), x)], x)
    assert pc == ec == 2
    for a, b in zip(p, e):
        np.testing.assert_array_equal(a, b)


def test_nested_vmaps():
    x = tracenn.ones(3, 4, 5)

    def inner(mode):
        return vmap(lambda r: r * tracenn.rand(5), randomness=mode)

    def make(outer_mode, inner_mode):
        return lambda: vmap(inner(inner_mode), randomness=outer_mode)
    out = to_np(make("different", "different")()(x))
    assert len({v.tobytes() for v in out.reshape(12, 5)}) == 12
    out = to_np(make("same", "different")()(x))
    assert (out == out[0:1]).all() and len({v.tobytes() for v in out[0]}) == 4
    out = to_np(make("different", "same")()(x))
    assert (out == out[:, 0:1]).all() and len({v.tobytes() for v in out[:, 0]}) == 3
    m = make("different", "different")
    (p, _), (e, _) = _same_seed([m(), _eagerly(m(), x)], x)
    np.testing.assert_array_equal(p[1], e[1])
    with pytest.raises(RuntimeError, match="randomness error mode"):
        make("same", "error")()(x)


# ---- gradients ------------------------------------------------------------------------------------------

def test_grad_around_and_inside_vmap():
    x = tracenn.arange(1.0, 13.0).reshape(3, 4)
    w = tracenn.ones(4)

    def outside(w):  # grad of a vmapped dropout: the gradient is the masks' sum, scaled
        return vmap(lambda r: F.dropout(r * w, 0.5).sum(), randomness="different")(x).sum()

    tracenn.manual_seed(5)
    g = to_np(grad(outside)(w))
    tracenn.manual_seed(5)
    with tracenn.no_grad():
        y = to_np(vmap(lambda r: F.dropout(r * w, 0.5), randomness="different")(x))
    np.testing.assert_allclose(g, ((y != 0) * 2 * to_np(x)).sum(0), rtol=1e-6)
    (p, _), (e, _) = _same_seed([grad(outside), _eagerly(grad(outside), w)], w)
    np.testing.assert_array_equal(p[0], e[0])

    per = vmap(grad(lambda w, r: F.dropout(r * w, 0.5).sum()), in_dims=(None, 0), randomness="different")
    tracenn.manual_seed(5)
    np.testing.assert_allclose(to_np(per(w, x)), y, rtol=1e-6)  # (the same masks: one draw, the same key)
    jac = vmap(jacrev(lambda r: F.dropout(r, 0.5)), randomness="different")
    tracenn.manual_seed(5)
    j = to_np(jac(x))
    np.testing.assert_array_equal(np.diagonal(j, axis1=1, axis2=2), (y != 0) * 2.0)


def test_per_sample_gradients_through_dropout_match_per_sample_backward():
    """randomness="same" draws, for every sample, the mask one eager forward draws from the same seed."""
    tracenn.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    x, y = tracenn.randn(5, 6), tracenn.tensor([0, 1, 2, 1, 0])
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss(p, a, b):
        return F.cross_entropy(functional_call(model, p, (a.unsqueeze(0),)), b.unsqueeze(0))
    f = vmap(grad(loss), in_dims=(None, 0, 0), randomness="same")
    tracenn.manual_seed(9)
    got = f(params, x, y)
    assert _programs(f)[0] is not None
    for i in range(5):
        tracenn.manual_seed(9)
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]).backward()
        for k, p in model.named_parameters():
            assert_close(got[k][i], p.grad, atol=1e-6)


def test_a_program_on_the_tape_draws_once():
    """Parameters that require grad: the call's backward uses the masks of the output it returned."""
    w = tracenn.ones(8, requires_grad=True)
    g = vmap(lambda r: F.dropout(r * w, 0.5), randomness="different")
    x = tracenn.ones(4, 8)
    start = _counter()
    out = g(x)
    out.sum().backward()
    assert _counter() == start + 1 and _programs(g)[0] is not None
    np.testing.assert_array_equal(to_np(w.grad), (to_np(out) != 0).sum(0) * 2.0)


def test_reading_values_still_runs_eagerly_with_one_set_of_masks():
    """A function that reads a value (.item()) runs op by op; on the tape its second run (under
    jax.vjp) draws the same masks as the output's."""
    w, scale = tracenn.ones(8, requires_grad=True), tracenn.tensor(8.0)
    g = vmap(lambda r: F.dropout(r * w, 0.5) * ((scale * 1).item() / 8), randomness="different")
    x = tracenn.ones(4, 8)
    start = _counter()
    out = g(x)
    out.sum().backward()
    assert _programs(g) == [None] and _counter() == start + 1
    np.testing.assert_array_equal(to_np(w.grad), (to_np(out) != 0).sum(0) * 2.0)
    assert not np.array_equal(to_np(g(x)), to_np(out))


def test_vjp_on_the_tape_pulls_back_through_the_calls_masks():
    """vjp's pullback, recomputed on the tape (the primal requires grad), draws the forward's masks
    and moves no generator."""
    x = tracenn.ones(32, requires_grad=True)
    out, back = vjp(lambda a: F.dropout(a, 0.5), x)
    after = _counter()
    (g,) = back(tracenn.ones(32))
    assert _counter() == after
    assert g.grad_fn is not None
    np.testing.assert_array_equal(to_np(g), (to_np(out) != 0) * 2.0)


# ---- inside tracenn.compile ---------------------------------------------------------------------------------

def test_inside_compile_one_node_fresh_each_call_and_equal_to_eager():
    x = tracenn.ones(4, 6)

    def f(x):
        h = F.dropout(x, 0.5)  # a draw of the program's own before the transform's
        return vmap(lambda r: F.dropout(r, 0.5) * tracenn.rand(6), randomness="different")(h) + F.dropout(x, 0.2)
    cf = tracenn.compile(f)
    tracenn.manual_seed(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no eager fallback)
        got = [to_np(cf(x)) for _ in range(3)]
    after = _counter()
    tracenn.manual_seed(4)
    want = [to_np(f(x)) for _ in range(3)]
    assert _counter() == after == 12  # four draws per call
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert len({a.tobytes() for a in got}) == 3
    text = str(cf.graph)
    assert text.count("func_transform[fn=vmap(<lambda>)] %rng.key, %") == 1, text
    assert len(cf._entries) == 1


def test_vjp_pullback_inside_compile_uses_the_forwards_masks():
    """A vjp taken inside tracenn.compile: the pullback node takes the forward's rng inputs, so the
    gradient masks are the output's (it drew fresh ones before), each call draws new ones, and
    compiled equals eager under one seed, generator counter included."""
    def f(x):
        out, back = vjp(lambda a: F.dropout(a, 0.5) * 3, x)
        return out, back(tracenn.ones_like(out))[0]

    x, cf = tracenn.ones(64), tracenn.compile(f)
    tracenn.manual_seed(5)
    eager = [to_np(t) for t in f(x)] + [_counter()]
    tracenn.manual_seed(5)
    out, g = cf(x)
    np.testing.assert_array_equal(to_np(g), to_np(out))
    np.testing.assert_array_equal(to_np(out), eager[0])
    np.testing.assert_array_equal(to_np(g), eager[1])
    assert _counter() == eager[2]
    out2, g2 = cf(x)
    np.testing.assert_array_equal(to_np(g2), to_np(out2))
    assert not np.array_equal(to_np(out2), to_np(out))


def test_inside_compile_with_backward():
    """The node's backward recomputes it from the same rng inputs: the gradient follows the masks."""
    w = tracenn.ones(6, requires_grad=True)
    x = tracenn.arange(1.0, 25.0).reshape(4, 6)

    def step(x, w):
        out = vmap(lambda r: F.dropout(r * w, 0.5), randomness="different")(x)
        out.sum().backward()
        return out
    cstep = tracenn.compile(step)
    for fn in (step, cstep):
        tracenn.manual_seed(8)
        w.grad = None
        out = to_np(fn(x, w))
        np.testing.assert_allclose(to_np(w.grad), ((out != 0) * 2 * to_np(x)).sum(0), rtol=1e-6)
        if fn is step:
            want = out
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_reading_a_captured_tensor_value_is_fresh_each_call():
    """``w.item()`` on a tensor from outside, with no op on it first, reads a concrete array while
    the program is traced: the call runs eagerly (each call reads the current value), instead of a
    program keeping the first value."""
    w = tracenn.tensor(2.0)
    f = tracenn.func.vmap(lambda x: x * w.item())
    x = tracenn.ones(3)
    assert f(x).tolist() == [2.0, 2.0, 2.0]
    w.fill_(5.0)
    assert f(x).tolist() == [5.0, 5.0, 5.0]
