"""tracenn/compiler/api.py: the per-call watch of a compiled function (what it captures, by identity;
a training step's grads, optimizer state and options). ``_step_watcher`` is the fast form the
runtime calls; it must read exactly what ``_step_watch`` reads."""
import copy

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import to_np
from tracenn.compiler.api import _capture_reader, _captures, _step_watch, _step_watcher

MODEL = nn.Linear(3, 2)


def _step_parts():
    tracenn.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = tracenn.randn(4, 3), tracenn.randn(4, 2)
    return model, opt, x, y


def _global_fn(x):
    return MODEL(x)


def _defaults_fn(x, scale=2.0, *, bias=MODEL):
    return bias(x) * scale


class Trainer:
    def __init__(self, model, opt):
        self.model, self.opt = model, opt

    def step(self, x, y):
        self.opt.zero_grad()
        loss = F.mse_loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        return loss


class CallableStep:
    def __call__(self, x):
        return MODEL(x)


def _closure_fn():
    model, opt, x, y = _step_parts()

    def step(x, y):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step, opt, x, y


@pytest.mark.parametrize("make", ["closure", "global", "defaults", "method", "callable object"])
def test_the_watcher_reads_what_the_function_captures(make):
    """The key is the captured objects' ids (in _captures' order: the object's attributes, the
    closure, the globals named, the defaults), then each optimizer's grads, options and state."""
    if make == "closure":
        fn, opt, x, y = _closure_fn()
        fn(x, y)  # optimizer state now exists: it is part of the key
        cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__)))
        objs = [cells[n] for n in fn.__code__.co_freevars] + [F]
    elif make == "global":
        fn, objs = _global_fn, [MODEL]
    elif make == "defaults":
        fn, objs = _defaults_fn, [2.0, MODEL]
    elif make == "method":
        model, opt, x, y = _step_parts()
        trainer = Trainer(model, opt)
        fn, objs = trainer.step, [model, opt, F]
        fn(x, y)
    else:
        fn, objs = CallableStep(), []  # no code of its own to read captures from (__call__ is not inspected)
    watch = _step_watcher(fn)
    key = watch()
    assert key[:len(objs)] == tuple(map(id, objs))
    assert key == _step_watch(fn)
    # the reader's two forms (names for the compile, values for the per-call watch) agree
    assert _capture_reader(fn, named=False)() == [v for _, v in _captures(fn)]
    opts = [o for o in objs if isinstance(o, tracenn.optim.Optimizer)]
    # grads and options of one group, then the state's structure and the shared scalar states
    assert len(key) == len(objs) + 4 * len(opts)


def test_the_key_moves_with_what_a_step_reads():
    fn, opt, x, y = _closure_fn()
    watch = _step_watcher(fn)
    fn(x, y)
    before = watch()
    assert watch() == before  # nothing changed
    opt.param_groups[0]["lr"] = 0.05  # an input of the program: no re-read
    assert watch() == before
    opt.param_groups[0]["weight_decay"] = 0.1  # baked into the program: re-read
    changed = watch()
    assert changed != before
    opt.zero_grad()  # the grads become None
    assert watch() != changed
    p = opt.param_groups[0]["params"][0]
    fn(x, y)
    after_step = watch()
    opt.state[p]["momentum_buffer"] = opt.state[p]["momentum_buffer"].clone()  # state replaced
    assert watch() != after_step


@pytest.mark.parametrize("change", ["set", "del", "pop", "update", "setdefault", "clear", "ior", "outer_set",
                                    "outer_pop", "missing", "plain_inner", "replaced_state"])
def test_every_change_to_the_optimizer_state_moves_the_key(change):
    """The state's structure is read out only after a change (optim/_state.py): each way to change
    a state dict is seen, and a state made of plain dicts is read out on every call."""
    fn, opt, x, y = _closure_fn()
    watch = _step_watcher(fn)
    fn(x, y)
    fn(x, y)
    p = opt.param_groups[0]["params"][0]
    d = opt.state[p]
    before = watch()
    assert watch() == before
    buf = d["momentum_buffer"]
    if change == "set":
        d["momentum_buffer"] = buf.clone()
    elif change == "del":
        del d["momentum_buffer"]
    elif change == "pop":
        d.pop("momentum_buffer")
    elif change == "update":
        d.update(momentum_buffer=buf.clone())
    elif change == "setdefault":
        d.setdefault("extra", buf.clone())
    elif change == "clear":
        d.clear()
    elif change == "ior":
        d |= {"momentum_buffer": buf.clone()}
    elif change == "outer_set":
        opt.state[p] = {"momentum_buffer": buf.clone()}
    elif change == "outer_pop":
        opt.state.pop(p)
    elif change == "missing":
        opt.state[tracenn.zeros(1)]  # (a defaultdict: reading a new key makes an entry)
    elif change == "plain_inner":  # a plain dict put in: read out on every call from now on
        opt.state[p] = {"momentum_buffer": buf}
        mid = watch()
        dict.__setitem__(opt.state[p], "momentum_buffer", buf.clone())
        assert watch() != mid
        return
    else:
        from collections import defaultdict
        opt.state = defaultdict(dict, {k: dict(v) for k, v in opt.state.items()})
        mid = watch()
        dict.__setitem__(opt.state[p], "momentum_buffer", buf.clone())
        assert watch() != mid
        return
    assert watch() != before


def test_the_optimizer_state_is_torch_s_defaultdict_of_dicts():
    p = nn.Parameter(tracenn.ones(2))
    opt = tracenn.optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = tracenn.ones(2)
    opt.step()
    from collections import defaultdict
    assert isinstance(opt.state, defaultdict) and isinstance(opt.state[p], dict)
    assert repr(opt.state) == "defaultdict(<class 'dict'>, {" + repr(p) + ": {'momentum_buffer': " + \
        repr(opt.state[p]["momentum_buffer"]) + "}})"
    copied = copy.deepcopy(opt.state)
    assert type(copied) is type(opt.state) and list(copied.values())[0].keys() == {"momentum_buffer"}
    sd = opt.state_dict()
    opt2 = tracenn.optim.SGD([p], lr=0.1, momentum=0.9)
    opt2.load_state_dict(sd)
    assert type(opt2.state) is type(opt.state) and type(opt2.state[p]) is type(opt.state[p])


def test_rebinding_a_global_or_an_attribute_moves_the_key():
    global MODEL
    watch = _step_watcher(_global_fn)
    before = watch()
    old = MODEL
    try:
        MODEL = nn.Linear(3, 2)
        assert watch() != before
    finally:
        MODEL = old
    assert watch() == before

    model, opt, x, y = _step_parts()
    trainer = Trainer(model, opt)
    watch = _step_watcher(trainer.step)
    before = watch()
    trainer.model = nn.Linear(3, 2)
    assert watch() != before


def test_a_compiled_function_follows_a_rebound_global():
    global MODEL
    old = MODEL
    x = tracenn.randn(4, 3)
    cf = tracenn.compile(_global_fn)
    try:
        np.testing.assert_allclose(cf(x).detach().numpy(), MODEL(x).detach().numpy(), rtol=1e-6)
        MODEL = nn.Linear(3, 2)
        np.testing.assert_allclose(cf(x).detach().numpy(), MODEL(x).detach().numpy(), rtol=1e-6)
    finally:
        MODEL = old


def test_a_decorated_function_reads_what_the_wrapped_function_captures():
    import functools
    m = nn.Linear(2, 2)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.5)

    @tracenn.no_grad()
    def predict(x):
        return m(x)

    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*a):
            return fn(*a)
        return wrapper

    @logged
    def step(x):
        opt.zero_grad()
        m(x).sum().backward()
        opt.step()

    x = tracenn.randn(3, 2)
    cp, cs = tracenn.compile(predict), tracenn.compile(step)
    out = cp(x)
    assert not out.requires_grad
    np.testing.assert_allclose(to_np(out), to_np(m(x).detach()), rtol=1e-6, atol=1e-6)
    before = to_np(m.bias.detach()).copy()
    cs(x)
    np.testing.assert_allclose(to_np(m.bias.detach()), before - 0.5 * 3, rtol=1e-6)  # d(sum)/d(bias) = 3
    with tracenn.no_grad():
        m.weight.zero_()
    np.testing.assert_allclose(to_np(cp(x)), np.broadcast_to(to_np(m.bias.detach()), (3, 2)), rtol=1e-6)
