"""The text of ``cm.explain()`` (user interface: pinned exactly): the root module is named once
("the root module mode changed", not "module the root module"), an attribute the forward itself
changes (``self.calls += 1``: still guarded, so the count stays right) is a reason that says why, and
the header counts the compiled programs apart from the calls that ran eagerly."""
from __future__ import annotations

import types
import warnings

import pytest

import tracenn
from tracenn import nn
from tracenn.runtime import compiled as _compiled
from tracenn.runtime.reasons import describe_change, explain_header

# The end-to-end cases marked so need runtime/compiled.py to pass the cache's canonical structure
# key and the header to reasons.py (the change is in helper "hooks"' report of session 29); until
# then they fail as expected, and they run as plain tests once it is in.
needs_runtime = pytest.mark.xfail(not hasattr(_compiled, "explain_header"), strict=True,
                                  reason="runtime/compiled.py does not yet use reasons.explain_header / canon")

GUARDS = """\
guards (a change in any of them compiles a new program):
  - each tensor input's shape, dtype and requires_grad; the structure of the arguments and the value of every \
non-tensor argument
  - grad mode (enabled or no_grad)
  - module structure: {n} module(s), their classes, train/eval flags and hooks
  - the value of each plain attribute (int, float, bool, str...) of the modules and of the option objects they \
hold (self.config.output_hidden_states)
  - state identity, shape, dtype, requires_grad and gradient hooks: 2 parameter(s)/buffer(s)
"""


class Counted(nn.Module):
    def __init__(self, count=True):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.calls = 0
        self.count = count

    def forward(self, x):
        if self.count:
            self.calls += 1
        return self.fc(x)


def _log(cm) -> str:
    return cm.explain().split("log:\n", 1)[1]


MODE = "the root module mode changed: train -> eval; module 'fc' mode changed: train -> eval"


def test_the_root_module_is_named_once():
    m = Counted(count=False)
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    cm(x)
    m.eval()
    cm(x)
    assert cm.explain() == (
        "tracenn.compile(Counted): 2 cached program(s), cache_size_limit=8\n" + GUARDS.format(n=2) +
        "programs:\n"
        "  1. inputs (f32[1,2]); grad on; 3 nodes, with backward; 1 call(s) — compiled because: first call\n"
        f"  2. inputs (f32[1,2]); grad on; 3 nodes, with backward; 1 call(s) — compiled because: {MODE}\n"
        "log:\n"
        "  compile 1: first call\n"
        f"  compile 2: {MODE}")


def test_hooks_on_the_root_module():
    m = nn.Linear(2, 2)
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    cm(x)
    m.register_forward_pre_hook(lambda mod, args: None)
    cm(x)
    assert _log(cm) == "  compile 1: first call\n  compile 2: hooks on the root module changed"


HINT = ("(the call changes it itself, and a program cannot repeat a Python side effect: each new value is "
        "traced again. Keep a counter in a buffer tensor, or outside the compiled call)")


@needs_runtime
def test_an_attribute_the_forward_changes_is_traced_again_and_says_why():
    """``self.calls += 1`` in a forward: a program cannot repeat it, so each new value is traced
    again and the count stays what eager code (and torch.compile) gives; the reason says why."""
    m = Counted()
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    for _ in range(3):
        cm(x)
    assert m.calls == 3
    assert _log(cm) == ("  compile 1: first call\n"
                        f"  compile 2: attribute 'calls' changed: 0 -> 1 {HINT}\n"
                        f"  compile 3: attribute 'calls' changed: 1 -> 2 {HINT}")


@needs_runtime
def test_a_guarded_attribute_and_the_changed_one_are_both_reasons():
    m = Counted()
    m.scale = 2
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 2)
    cm(x)
    m.calls = 100
    cm(x)
    m.scale = 3
    cm(x)
    m.eval()
    cm(x)
    assert m.calls == 103  # (as eager: 1, then 101, 102, 103)
    assert _log(cm) == ("  compile 1: first call\n"
                        f"  compile 2: attribute 'calls' changed: 0 -> 100 {HINT}\n"
                        f"  compile 3: attribute 'calls' changed: 100 -> 101 {HINT}; "
                        "attribute 'scale' changed: 2 -> 3\n"
                        f"  compile 4: {MODE}; attribute 'calls' changed: 101 -> 102 {HINT}")


def double(x):
    return x * 2


@needs_runtime
def test_the_header_counts_programs_and_eager_calls_apart():
    cm = tracenn.compile(double, cache_size_limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in (1, 2, 3, 4, 3, 1):
            cm(tracenn.ones(n))
    reason = "compiled because: input 'x' shape changed: "
    assert cm.explain() == (
        "tracenn.compile(double): 2 cached program(s), cache_size_limit=2; 3 call(s) ran eagerly "
        "(2 input signature(s) with no program)\n"
        "guards (a change in any of them compiles a new program):\n"
        "  - each tensor input's shape, dtype and requires_grad; the structure of the arguments and the value of "
        "every non-tensor argument\n"
        "  - grad mode (enabled or no_grad)\n"
        "programs:\n"
        "  1. inputs (f32[1]); grad on; 1 nodes, with backward; 2 call(s) — compiled because: first call\n"
        f"  2. inputs (f32[2]); grad on; 1 nodes, with backward; 1 call(s) — {reason}[1] -> [2]\n"
        f"  3. inputs (f32[3]); grad on; eager fallback; 2 call(s) — {reason}[2] -> [3] (runs eagerly: "
        "past cache_size_limit)\n"
        f"  4. inputs (f32[4]); grad on; eager fallback; 1 call(s) — {reason}[3] -> [4] (runs eagerly: "
        "past cache_size_limit)\n"
        "log:\n"
        "  compile 1: first call\n"
        "  compile 2: input 'x' shape changed: [1] -> [2]\n"
        "  eager 3: input 'x' shape changed: [2] -> [3] (runs eagerly: past cache_size_limit)\n"
        "  eager 4: input 'x' shape changed: [3] -> [4] (runs eagerly: past cache_size_limit)")


@needs_runtime
def test_the_header_counts_the_eager_calls_no_longer_listed(monkeypatch):
    monkeypatch.setattr(_compiled, "_PAST_LIMIT_KEPT", 2)
    cm = tracenn.compile(double, cache_size_limit=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in (1, 2, 2, 3, 4, 5, 5):  # 4 signatures past the limit: the latest 2 are kept
            cm(tracenn.ones(n))
    lines = cm.explain().splitlines()
    assert lines[0] == ("tracenn.compile(double): 1 cached program(s), cache_size_limit=1; 6 call(s) ran "
                        "eagerly (4 input signature(s) with no program)")
    assert "  ... and 2 more signature(s) past cache_size_limit ran eagerly (the latest 2 are listed)" in lines


@needs_runtime
def test_a_fallback_has_no_program():
    def f(x):
        return x * 2 if float(x.sum()) > 0 else x

    cf = tracenn.compile(f, fallback="eager")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cf(tracenn.ones(2))
    assert cf.explain().splitlines()[0] == ("tracenn.compile(f): 0 cached program(s), cache_size_limit=8; 1 call(s) "
                                            "ran eagerly (1 input signature(s) with no program)")


# ---- reasons.py directly (no compile) --------------------------------------------------------------

def _skey(training, attrs):
    """A module's structure key as reasons.py reads it: ((path, type, training, hooks, attrs), ...)
    and the state, global hooks and autocast parts."""
    return (((("", nn.Module, training, (), attrs)), ("fc", nn.Linear, training, (), ())), (), (), None)


def _canon(skey):  # (what the cache compares: without the attribute the forward changes)
    mods = tuple(row[:4] + (tuple((k, v) for k, v in row[4] if k != "calls"),) for row in skey[0])
    return (mods,) + skey[1:]


def test_describe_change_names_only_what_the_canonical_key_guards():
    skeys = {0: _skey(True, (("calls", 0), ("scale", 2))), 1: _skey(False, (("calls", 1), ("scale", 3)))}
    prev, key = (0, True, ()), (1, True, ())
    assert describe_change(prev, key, skeys, []) == (
        f"{MODE}; attribute 'calls' changed: 0 -> 1; attribute 'scale' changed: 2 -> 3")
    assert describe_change(prev, key, skeys, [], canon=_canon) == f"{MODE}; attribute 'scale' changed: 2 -> 3"


def test_describe_change_labels():
    a = ((("", nn.Module, True, (), ()), ("fc", nn.Linear, True, (), ())), (), (), None)
    b = ((("", nn.Module, True, ("h",), ()), ("fc", nn.ReLU, True, (), ()), ("new", nn.ReLU, True, (), ())),
         (), (), None)
    assert describe_change((0, True, ()), (1, True, ()), {0: a, 1: b}, []) == (
        "hooks on the root module changed; module 'fc' was replaced: Linear -> ReLU; module 'new' was added")
    many = tuple((p, nn.Linear, False, (), ()) for p in ("", "a", "b"))
    was = tuple((p, nn.Linear, True, (), ()) for p in ("", "a", "b"))
    assert describe_change((0, True, ()), (1, True, ()), {0: (was, (), (), None), 1: (many, (), (), None)}, []) == (
        "mode changed: train -> eval (the root module and 2 more module(s))")


def test_explain_header():
    def e(eager, calls):
        return types.SimpleNamespace(eager=eager, calls=calls)

    assert explain_header("M", [e(False, 3), e(False, 1)], 8) == (
        "tracenn.compile(M): 2 cached program(s), cache_size_limit=8")
    assert explain_header("M", [e(False, 3), e(True, 2), e(True, 1)], 2, dropped=3, dropped_calls=4) == (
        "tracenn.compile(M): 1 cached program(s), cache_size_limit=2; 7 call(s) ran eagerly "
        "(5 input signature(s) with no program)")
    assert explain_header("f", [e(True, 1)], 8) == (
        "tracenn.compile(f): 0 cached program(s), cache_size_limit=8; 1 call(s) ran eagerly "
        "(1 input signature(s) with no program)")
