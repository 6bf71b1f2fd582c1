"""Recompile reasons (``cm.explain()``, the cache-limit warning) say one change once: a growing KV
cache changes every past key/value input the same way, an optimizer's first step adds state for
every parameter, and a changed non-tensor argument is named by its path with its values."""
import math
import warnings

import numpy as np

import tracenn
from tracenn import nn
from tracenn.runtime.reasons import describe_change


def _reasons(cm):
    return [line.split("compiled because: ", 1)[1] for line in cm.explain().splitlines() if "compiled because" in line]


def test_inputs_that_change_alike_are_named_together():
    def step(tok, past):  # a dynamic KV cache: every past key/value grows by one position
        return tok.float().sum() + sum(k.sum() + v.sum() for k, v in past)

    cm = tracenn.compile(step)
    tok = tracenn.zeros(1, 1, dtype=tracenn.long)
    for n in (3, 4):
        past = [(tracenn.ones(1, 2, n, 4), tracenn.ones(1, 2, n, 4)) for _ in range(3)]
        out = cm(tok, past)
    assert float(out) == 3 * 2 * 2 * 4 * 4
    assert _reasons(cm)[1] == ("inputs 'past.0', 'past.1', 'past.2' and 3 more shape changed: "
                               "[1, 2, 3, 4] -> [1, 2, 4, 4]")


def test_inputs_with_different_changes_stay_apart():
    prev = (0, False, (((2, 3), "float32", False), ((2, 3), "float32", False), ((5,), "int64", False)))
    key = (0, False, (((2, 4), "float32", False), ((2, 4), "float32", False), ((5,), "int32", False)))
    text = describe_change(prev, key, {}, ["a", "b", "c"])
    assert text == "inputs 'a', 'b' shape changed: [2, 3] -> [2, 4]; input 'c' dtype changed: int64 -> int32"


def test_optimizer_first_step_is_said_per_optimizer():
    tracenn.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = tracenn.optim.AdamW(m.parameters(), lr=1e-2)

    def step(x):
        loss = m(x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    cm = tracenn.compile(step)
    x = tracenn.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    losses = [float(cm(x)) for _ in range(3)]
    assert losses[2] < losses[0]
    reason = _reasons(cm)[1]
    assert reason.startswith("'opt' state (step, exp_avg, exp_avg_sq) was added for 4 parameter(s): "
                             "an optimizer creates its state in its first step()")
    assert "exp_avg_sq' was added" not in reason  # (not one clause per state tensor)


def test_state_changes_alike_are_grouped():
    def skey(state):
        return ((), tuple(state), ())
    t = ((2,), "float32", False, False)
    prev = skey([("a", 1) + t])
    key = skey([("a", 1) + t] + [(f"buf{i}", 10 + i) + t for i in range(6)])
    text = describe_change((0, False, ()), (1, False, ()), {0: prev, 1: key}, [])
    assert text == "'buf0', 'buf1', 'buf2' and 3 more were added"
    key2 = skey([("a", 2) + t])
    text = describe_change((0, False, ()), (1, False, ()), {0: prev, 1: key2}, [])
    assert text == "'a' was replaced by another tensor"


def test_a_changed_number_argument_is_named_with_its_values_and_a_hint():
    cm = tracenn.compile(lambda x, lr: x * lr)
    x = tracenn.ones(2)
    cm(x, 0.5)
    cm(x, 0.25)  # a float whose value changes becomes a program input (tests/compiler/test_dynamic_floats.py)
    assert _reasons(cm)[1] == (
        "non-tensor argument args[1] changed: 0.5 -> 0.25 (args[1] is now a program input (dynamic): a Python "
        "float argument whose value changes is passed as a 0-d float64 array, as torch.compile does, so later "
        "values reuse this program)")

    cb = tracenn.compile(lambda x, lr: x * math.sqrt(lr))
    cb(x, 0.5)
    cb(x, 0.25)  # the traced code needs the number (float(lr)): guarded by value, with the hint
    assert _reasons(cb)[1] == (
        "non-tensor argument args[1] changed: 0.5 -> 0.25 (a float argument that the traced code needs as a "
        "Python number, with float(), math, an op that takes only a number, or by returning or storing it, is a "
        "constant of the program, so each new value compiles a new one: pass it as a tensor, tracenn.tensor(value), "
        "to make it a program input)")
    out = tracenn.compile(lambda x, lr: x * lr)(x, tracenn.tensor(0.25))  # the advice works
    np.testing.assert_allclose(out.numpy(), [0.25, 0.25])
    ck = tracenn.compile(lambda x, k: tracenn.topk(x, k).values)
    ck(tracenn.arange(4.0), 1)
    ck(tracenn.arange(4.0), 2)  # an int is often a size (topk's k): no advice to make it a tensor
    assert _reasons(ck)[1] == "non-tensor argument args[1] changed: 1 -> 2"


def test_a_changed_numpy_argument_shows_its_values_and_a_hint():
    cm = tracenn.compile(lambda x, a: x * tracenn.from_numpy(a))
    x = tracenn.ones(4)
    cm(x, np.zeros(4, np.float32))
    cm(x, np.arange(4, dtype=np.float32))
    assert _reasons(cm)[1] == (
        "non-tensor argument args[1] changed: array([0., 0., 0., 0.], dtype=float32) -> "
        "array([0., 1., 2., 3.], dtype=float32) (a NumPy array argument is guarded by its values, which the traced "
        "code may read as constants, so each new array compiles a new program: pass it as a tensor, "
        "tracenn.from_numpy(array), to make it a program input)")
    big = np.zeros((64, 64), np.float32)  # (past 4 KiB the guard keeps a digest of the bytes, not the values)
    cm(tracenn.ones(64, 64), big)
    cm(tracenn.ones(64, 64), big + 1)
    assert _reasons(cm)[3].startswith(
        "non-tensor argument args[1] changed: a NumPy float32 array of shape (64, 64) -> "
        "a NumPy float32 array of shape (64, 64) (a NumPy array argument")
    out = tracenn.compile(lambda x, a: x * a)(x, tracenn.from_numpy(np.arange(4, dtype=np.float32)))  # the advice
    np.testing.assert_array_equal(out.numpy(), [0, 1, 2, 3])


def test_the_cache_limit_warning_advises_by_the_last_reason():
    ct = tracenn.compile(lambda x, t: x * t, cache_size_limit=2)
    x = tracenn.ones(2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for t in range(3):
            ct(x, t)  # an int timestep: each value its own program
    (msg,) = [str(r.message) for r in w]
    assert "(last reason: non-tensor argument args[1] changed: 1 -> 2)" in msg
    assert ("Every new value of a non-tensor argument compiles a new program: a number or a NumPy array the code "
            "uses as data (a timestep, a step count, a table of values) is a program input when passed as a "
            "tensor, tracenn.tensor(value); an int that sets a size stays a constant, as an XLA program fixes "
            "shapes, so keep to a few sizes or raise cache_size_limit. cm.explain() lists the reasons.") in msg
    cs = tracenn.compile(lambda x: x * 2, cache_size_limit=2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for n in (1, 2, 3):
            cs(tracenn.ones(n))
    (msg,) = [str(r.message) for r in w]
    assert msg.endswith("Every new input shape, dtype or module change compiles a new program; pad inputs to a "
                        "few fixed shapes, or raise cache_size_limit. cm.explain() lists the reasons.")


def test_argument_structure_changes_name_the_argument():
    def f(x, past=None, mode="a"):
        return x if past is None else x + past[0][0]

    cm = tracenn.compile(f)
    x = tracenn.ones(2)
    cm(x, None)
    cm(x, [(x, x)])
    cm(x, [(x, x)], mode="b")
    cm(x, [(x, x)], mode="c")
    cm(x)
    r = _reasons(cm)
    assert r[1] == "number of tensor inputs changed: 1 -> 3; non-tensor argument args[1] changed: None -> a list of 1"
    assert r[2] == "keyword arguments changed: none -> mode"
    assert r[3] == "non-tensor argument kwargs['mode'] changed: 'b' -> 'c'"
    assert r[4] == ("number of tensor inputs changed: 3 -> 1; number of positional arguments changed: 2 -> 1; "
                    "keyword arguments changed: mode -> none")


def test_the_cache_limit_warning_carries_the_grouped_reason():
    cm = tracenn.compile(lambda a, b: a + b, cache_size_limit=1)
    cm(tracenn.ones(2), tracenn.ones(2))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        cm(tracenn.ones(3), tracenn.ones(3))
    msg = str(w[0].message)
    assert "(last reason: inputs 'a', 'b' shape changed: [2] -> [3])" in msg
