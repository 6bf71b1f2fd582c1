"""Full backward (pre-)hooks inside compiled programs: they fire during backward() with the
gradients eager mode gives them, their replacements flow on, and a compiled training step runs
them in its traced backward."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn


def _np(t):
    return None if t is None else np.asarray(t.detach().numpy())


def _net():
    tracenn.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
W = np.arange(10.0, dtype=np.float32).reshape(5, 2)


def _run(f, m, hooks, x_grad=True):
    """Install ``hooks`` (list of (index, kind, fn)) on ``m``, run one backward through ``f``;
    returns (log, x.grad, every param grad)."""
    log = []
    handles = [getattr(m[i], f"register_full_backward_{kind}")(fn(log)) for i, kind, fn in hooks]
    x = tracenn.tensor(X, requires_grad=x_grad)
    (f(x) * tracenn.tensor(W)).sum().backward()
    grads = [_np(p.grad) for p in m.parameters()]
    m.zero_grad(set_to_none=True)
    for h in handles:
        h.remove()
    return log, _np(x.grad), grads


def _logging(tag):
    def make(log):
        def hook(mod, *grads):
            log.append((tag, [[None if g is None else _np(g) for g in gs] for gs in grads]))
        return hook
    return make


def _scaling(factor):
    def make(log):
        def hook(mod, gin, gout):
            log.append("scaled")
            return tuple(None if g is None else g * factor for g in gin)
        return hook
    return make


def _assert_same(a, b):
    (la, xa, ga), (lb, xb, gb) = a, b
    assert len(la) == len(lb)
    for ea, eb in zip(la, lb):
        if isinstance(ea, str):
            assert ea == eb
            continue
        assert ea[0] == eb[0]
        for ga_, gb_ in zip(ea[1], eb[1]):
            for u, v in zip(ga_, gb_):
                assert (u is None) == (v is None)
                if u is not None:
                    np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)
    if xa is None or xb is None:
        assert xa is None and xb is None
    else:
        np.testing.assert_allclose(xa, xb, rtol=1e-5, atol=1e-6)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hooks", [
    [(2, "hook", _logging("full"))],
    [(2, "pre_hook", _logging("pre"))],
    [(0, "hook", _logging("first")), (2, "pre_hook", _logging("pre")), (2, "hook", _logging("full"))],
    [(2, "hook", _scaling(3.0))],
    [(0, "hook", _scaling(-2.0)), (2, "hook", _scaling(0.5))],
], ids=["full", "pre", "several", "replace", "replace-twice"])
def test_compiled_backward_hooks_equal_eager(hooks):
    m = _net()
    eager = _run(m, m, hooks)
    cm = tracenn.compile(m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (compiled: no "running eagerly" warning)
        compiled = _run(cm, m, hooks)
    _assert_same(compiled, eager)
    assert compiled[0], "the hooks fired"


def test_a_pre_hook_that_replaces_grad_output():
    def make(log):
        def hook(mod, gout):
            log.append("pre")
            return (gout[0] * 0.0 + 1.0,)
        return hook

    m = _net()
    eager = _run(m, m, [(2, "pre_hook", make)])
    compiled = _run(tracenn.compile(m), m, [(2, "pre_hook", make)])
    _assert_same(compiled, eager)
    np.testing.assert_allclose(compiled[2][-1], np.ones(2) * 5)  # fc2.bias.grad: five rows of ones


def test_hooks_fire_when_no_input_requires_grad():
    m = _net()
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        eager = _run(m, m, [(0, "hook", _logging("first"))], x_grad=False)
    with pytest.warns(UserWarning, match="no inputs require gradients"):
        compiled = _run(tracenn.compile(m), m, [(0, "hook", _logging("first"))], x_grad=False)
    _assert_same(compiled, eager)
    assert compiled[0][0][1][0] == [None]  # grad_input: None for the input that needs no gradient


def test_each_call_of_a_module_fires_its_hook():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            return self.lin(self.lin(x))

    tracenn.manual_seed(0)
    m = Twice()
    logs = []
    for f in (m, tracenn.compile(m)):
        seen = []
        h = m.lin.register_full_backward_hook(lambda mod, gin, gout: seen.append(_np(gout[0])))
        f(tracenn.tensor(X, requires_grad=True)).sum().backward()
        h.remove()
        logs.append(seen)
    assert len(logs[0]) == len(logs[1]) == 2
    for a, b in zip(*logs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_removing_the_hook_recompiles_and_it_stops_firing():
    m = _net()
    cm = tracenn.compile(m)
    seen = []
    h = m[2].register_full_backward_hook(lambda mod, gin, gout: seen.append(1))
    x = tracenn.tensor(X, requires_grad=True)
    cm(x).sum().backward()
    h.remove()
    cm(x).sum().backward()
    assert seen == [1]
    assert "= backward_hook[" not in str(cm.graph)


def test_no_grad_calls_carry_no_hook_nodes():
    m = _net()
    m[2].register_full_backward_hook(lambda mod, gin, gout: None)
    cm = tracenn.compile(m)
    with tracenn.no_grad():
        cm(tracenn.tensor(X))
    assert "= backward_hook[" not in str(cm.graph)


def test_an_error_in_a_hook_reaches_the_caller():
    m = _net()
    cm = tracenn.compile(m)

    def bad(mod, gin, gout):
        raise KeyError("from the hook")

    m[2].register_full_backward_hook(bad)
    y = cm(tracenn.tensor(X, requires_grad=True)).sum()
    with pytest.raises(KeyError, match="from the hook"):
        y.backward()


def test_a_replacement_of_the_wrong_shape_is_an_error():
    m = _net()
    cm = tracenn.compile(m)
    m[2].register_full_backward_hook(lambda mod, gin, gout: (gin[0][:1],))
    y = cm(tracenn.tensor(X, requires_grad=True)).sum()
    with pytest.raises(RuntimeError, match=r"backward hook of module '2' returned a gradient of shape \[1, 4\]"):
        y.backward()


def test_hooks_in_a_compiled_training_step_equal_eager():
    def run(compiled):
        m = _net()
        opt = tracenn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
        seen = []
        m[2].register_full_backward_hook(lambda mod, gin, gout: (seen.append(_np(gout[0])), (gin[0] * 2,))[1])

        def step(x):
            opt.zero_grad()
            loss = (m(x) * tracenn.tensor(W)).sum()
            loss.backward()
            opt.step()
            return loss

        f = tracenn.compile(step) if compiled else step
        for _ in range(3):
            f(tracenn.tensor(X))
        return seen, [_np(p) for p in m.parameters()]

    (se, pe), (sc, pc) = run(False), run(True)
    assert len(sc) == len(se) == 3
    for a, b in zip(sc + pc, se + pe):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_the_graph_shows_where_the_hooks_fire():
    m = _net()
    m[2].register_full_backward_hook(lambda mod, gin, gout: None)
    cm = tracenn.compile(m)
    cm(tracenn.tensor(X))
    text = str(cm.graph)
    assert "= backward_hook[side=<backward hook inputs of '2'>] %" in text
    assert "= backward_hook[side=<backward hook outputs of '2'>] %" in text


def test_non_full_backward_hooks_still_run_eagerly():
    m = _net()
    m[2].register_backward_hook(lambda mod, gin, gout: None)
    with pytest.warns(UserWarning, match="non-full backward hook"):
        tracenn.compile(m)(tracenn.tensor(X, requires_grad=True))


def test_a_compiled_loss_fires_hooks_in_backward_with_its_cotangent():
    m = _net()
    seen = []
    m[2].register_full_backward_hook(lambda mod, gin, gout: seen.append(_np(gout[0])))
    loss_fn = tracenn.compile(lambda x: (m(x) * tracenn.tensor(W)).sum())
    x = tracenn.tensor(X, requires_grad=True)
    for _ in range(4):  # (a scalar loss whose gradients are taken: the runtime's value-and-grad mode)
        loss_fn(x).backward()
    assert len(seen) == 4
    loss = loss_fn(x)
    assert len(seen) == 4  # nothing fires before backward()
    (loss * 3).backward()
    np.testing.assert_allclose(seen[-1], 3 * W)
