"""Optimizer step counts shared across parameters enter a compiled step once.

Every parameter of an Adam-family optimizer has its own 0-d ``step`` tensor (as in torch), and
they normally hold the same count. Eager steps and compiled steps leave them holding one array,
so a compiled step takes that array as one input, computes the count and its bias corrections
once, and returns one array (the transformer benchmark: 26 inputs and outputs and 25 scalar
chains fewer). That the arrays are still shared is a guard: a count changed on its own
recompiles, and its parameter then gets its own count, as in eager mode.
"""
import numpy as np
import pytest

import tracenn
from tracenn import nn
import tracenn.nn.functional as F
from tracenn.compiler.graph import Graph, Value
from tracenn.runtime.writes import unique_writes
from helpers import to_np


def _model(seed=0):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))


def _step(m, o):
    def step(x, y):
        o.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        o.step()
        return loss
    return step


def _data(n, seed=3):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(6, 4, generator=g), tracenn.randn(6, 3, generator=g)) for _ in range(n)]


def _counts(o, key="step"):
    return [float(st[key]) for st in o.state.values()]


def _arrays(o, key="step"):
    return {id(st[key]._value) for st in o.state.values()}


def _assert_same_training(me, oe, mc, oc):
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
        for k, v in oe.state[a].items():
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(v), rtol=1e-4, atol=2e-6, err_msg=f"{n} {k}")


OPTIMIZERS = {
    "adam": lambda p: tracenn.optim.Adam(p, lr=0.01),
    "adamw_amsgrad": lambda p: tracenn.optim.AdamW(p, lr=0.01, amsgrad=True),
    "nadam": lambda p: tracenn.optim.NAdam(p, lr=0.01),  # two scalar states: step and mu_product
    "radam": lambda p: tracenn.optim.RAdam(p, lr=0.01),
    "rmsprop": lambda p: tracenn.optim.RMSprop(p, lr=0.01),
    "adagrad": lambda p: tracenn.optim.Adagrad(p, lr=0.05),
}


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_step_counts_enter_the_program_once_and_train_as_eager(name):
    me, mc = _model(), _model()
    oe, oc = OPTIMIZERS[name](me.parameters()), OPTIMIZERS[name](mc.parameters())
    eager, compiled = _step(me, oe), tracenn.compile(_step(mc, oc))
    for x, y in _data(4):
        eager(x, y), compiled(x, y)
    _assert_same_training(me, oe, mc, oc)
    assert _counts(oc) == _counts(oe) == [4.0] * 4
    g = compiled.graph
    for key in type(oc)._scalar_state:
        assert len(_arrays(oc, key)) == 1, f"the compiled step returns one {key} array for all parameters"
        names = [n for n in g.state if n.endswith(f".{key}")]
        assert [g.aliases.get(n) for n in names] == [None] + [names[0]] * 3
        # one node reads the shared count: the other parameters' counts are not inputs at all
        readers = [nd for nd in g.nodes if g.state[names[0]] in nd.inputs]
        assert len(readers) == 1
        assert not any(g.state[n] in nd.inputs for n in names[1:] for nd in g.nodes)
        assert len({id(g.writes[n]) for n in names}) == 1
    entry = compiled._last
    passed = set(entry.donate) | set(entry.keep)
    names = list(g.state)
    assert not any(names[i] in g.aliases for i in passed)
    assert not any(g.state[names[i]].shape == () for i in entry.donate), "0-d state is not donated"
    assert len(compiled._entries) == 2  # the first step (it makes the state), then every later one


def _adam_steps(n):
    """A model, its Adam and its compiled step, after ``n`` compiled steps."""
    m = _model()
    o = tracenn.optim.Adam(m.parameters(), lr=0.01)
    step = tracenn.compile(_step(m, o))
    for x, y in _data(n):
        step(x, y)
    return m, o, step


def test_the_shared_count_prints_once():
    m, o, step = _adam_steps(2)
    lines = str(step.graph).splitlines()
    assert lines[1] == "  # o.state[m.0.bias].step, o.state[m.2.weight].step and 1 more = %o.state[m.0.weight].step (one array)"
    assert sum(" = add[dtype=f32] %o.state[m.0.weight].step, 1" in ln for ln in lines) == 1
    steps = [ln.strip() for ln in lines if ln.strip().startswith("o.state[") and ".step <-" in ln]
    assert len(steps) == 4 and len({s.split("<- ")[1] for s in steps}) == 1


def test_a_count_changed_on_its_own_recompiles_and_keeps_its_value():
    me, mc = _model(), _model()
    oe, oc = tracenn.optim.Adam(me.parameters(), lr=0.05), tracenn.optim.Adam(mc.parameters(), lr=0.05)
    eager, compiled = _step(me, oe), tracenn.compile(_step(mc, oc))
    data = _data(6)
    for x, y in data[:3]:
        eager(x, y), compiled(x, y)
    for o in (oe, oc):
        list(o.state.values())[1]["step"].fill_(10.0)
    for x, y in data[3:]:
        eager(x, y), compiled(x, y)
    assert _counts(oc) == _counts(oe) == [6.0, 13.0, 6.0, 6.0]
    _assert_same_training(me, oe, mc, oc)
    assert compiled.graph.aliases == {}
    assert len(compiled._entries) == 3
    assert ("optimizer state 'o.state[m.0.bias].step' and 2 more no longer share one array with "
            "'o.state[m.0.weight].step' (one was changed apart from the others): each now enters the "
            "program on its own") in compiled.explain()


def test_counts_shared_again_reuse_the_first_program():
    m = _model()
    o = tracenn.optim.Adam(m.parameters(), lr=0.01)
    step = tracenn.compile(_step(m, o))
    data = _data(3)
    step(*data[0]), step(*data[1])
    entries = len(step._entries)
    list(o.state.values())[2]["step"].fill_(2.0)  # the same count, but its own array: apart
    step(*data[2])
    assert len(step._entries) == entries + 1 and len(_arrays(o)) == 4 and not step.graph.aliases
    _step(m, o)(*data[1])  # an eager step writes one shared array again...
    step(*data[2])  # ...and the earlier program runs, with no compile
    assert len(step._entries) == entries + 1 and step.graph.aliases
    assert _counts(o) == [5.0] * 4 and len(_arrays(o)) == 1


def test_eager_steps_before_compiling_share_their_counts():
    me, mc = _model(), _model()
    oe, oc = tracenn.optim.RMSprop(me.parameters(), lr=0.01), tracenn.optim.RMSprop(mc.parameters(), lr=0.01)
    eager, compiled = _step(me, oe), _step(mc, oc)
    data = _data(5)
    for x, y in data[:2]:
        eager(x, y), compiled(x, y)  # both eager so far
    assert len(_arrays(oc)) == 1, "an eager step writes one shared array"
    compiled = tracenn.compile(compiled)
    for x, y in data[2:]:
        eager(x, y), compiled(x, y)
    assert compiled.graph.aliases and len(compiled._entries) == 1
    _assert_same_training(me, oe, mc, oc)


def test_load_state_dict_shares_equal_counts():
    m, o, step = _adam_steps(2)
    list(o.state.values())[3]["step"].fill_(7.0)
    sd = o.state_dict()
    m2 = _model()
    m2.load_state_dict(m.state_dict())
    o2 = tracenn.optim.Adam(m2.parameters(), lr=0.01)
    o2.load_state_dict(sd)
    assert _counts(o2) == [2.0, 2.0, 2.0, 7.0]
    states = list(o2.state.values())
    assert states[0]["step"]._value is states[1]["step"]._value is states[2]["step"]._value
    assert states[3]["step"]._value is not states[0]["step"]._value
    assert states[0]["step"] is not sd["state"][0]["step"]  # loaded copies, as torch
    states[0]["step"].fill_(1.0)  # one tensor's in-place change leaves the others alone
    assert _counts(o2) == [1.0, 2.0, 2.0, 7.0]


def test_unique_writes_returns_a_value_written_twice_once():
    g = Graph("f")
    a, b = Value("a", (), np.float32, "param"), Value("b", (2,), np.float32, "param")
    g.state = {"a": a, "b": b}
    g.writes = {"x": a, "y": b, "z": a, "w": None}
    calls = []

    def run(state, rng, inputs):
        calls.append(1)
        return ["out"], ["A", "B", "A"]

    run2, index = unique_writes(run, g)
    assert index == [0, 1, 0]
    assert run2([], [], []) == (["out"], ["A", "B"])
    g.writes = {"x": a, "y": b}
    assert unique_writes(run, g) == (run, None)


def test_equal_scalar_constants_are_one_graph_constant():
    """A trace meets the optimizer's fresh step counts as separate arrays of equal value."""
    import jax.numpy as jnp
    from tracenn.compiler.trace import Tracer
    g = Graph("f")
    t = Tracer(g, {}, None)
    zero_a, zero_b = jnp.float32(0.0), jnp.float32(0.0)
    assert zero_a is not zero_b and t.const(zero_a) is t.const(zero_b)
    assert t.const(jnp.float32(-0.0)) is not t.const(zero_a)  # equal by ==, not the same number
    assert t.const(jnp.float64(0.0)) is not t.const(zero_a)
    assert t.const(jnp.zeros(2)) is not t.const(jnp.zeros(2))  # arrays: by identity only
    assert len(g.consts) == 5
