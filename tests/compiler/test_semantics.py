"""What a compiled call promises beyond its numbers: hooks, buffers, randomness, autograd, compiled
functions and decorators, ``check=True`` and in-place writes to inputs — each against eager mode.

Traces are counted with a module whose ``forward`` bumps a Python counter: Python code in
``forward`` runs when a call is traced, not when a cached program runs.
"""
from __future__ import annotations

import copy
import re
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)

# A call that cannot be compiled (a non-full backward hook) runs eagerly, warning once (compiler/hooks.py).
pytestmark = pytest.mark.filterwarnings("ignore:tracenn.compile\\(unsupported in a program\\):UserWarning")


def x_(*shape, grad=False):
    t = tracenn.tensor(RNG.standard_normal(shape).astype(np.float32))
    return t.requires_grad_() if grad else t


class Counted(nn.Module):
    """Linear -> ReLU -> Linear that counts how often its forward is traced/run."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(5, 3)
        self._traces = []  # (a list: an int the forward changes is guarded, so each call would trace)

    @property
    def traces(self):
        return len(self._traces)

    def forward(self, x):
        self._traces.append(1)
        return self.fc2(self.act(self.fc1(x)))


def pair(make=Counted):
    """(eager model, compiled copy, the copy) built from one seed."""
    tracenn.manual_seed(0)
    m = make()
    c = copy.deepcopy(m)
    return m, tracenn.compile(c, verify_passes=True), c


def grads(m):
    return {n: p.grad for n, p in m.named_parameters()}


def assert_grads_equal(model, ref, rtol=1e-5, atol=1e-6):
    gm, gr = grads(model), grads(ref)
    assert list(gm) == list(gr)
    for n in gr:
        if gr[n] is None:
            assert gm[n] is None, f"{n}.grad is set, eager leaves it None"
        else:
            assert gm[n] is not None, f"{n}.grad was not filled through the compiled call"
            assert_close(gm[n], gr[n], rtol=rtol, atol=atol)


# ---- forward hooks and pre-hooks --------------------------------------------------------------------

@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("kind", ["forward", "forward_pre"])
def test_hook_runs_on_every_compiled_call_with_real_values(kind, when):
    _, cm, model = pair()
    seen = []

    def hook(mod, args, *out):
        seen.append(to_np(out[0] if out else args[0]))  # reads values: only a real tensor has them

    register = getattr(model.fc1, f"register_{kind}_hook")
    if when == "before":
        register(hook)
    xs = [x_(2, 4) for _ in range(3)]
    if when == "after":
        cm(xs[0])
        register(hook)
        xs = xs[1:]
    for x in xs:
        cm(x)
    assert len(seen) == len(xs)
    with tracenn.no_grad():
        for x, got in zip(xs, seen):
            want = x if kind == "forward_pre" else model.fc1(x)
            assert_close(got, want)


def test_hook_added_after_compile_is_seen_and_recompiles():
    """A hook registered after the first call changes the guard (the hook set): the next call
    recompiles once, and the hook then runs on every call."""
    _, cm, model = pair()
    x = x_(2, 4)
    cm(x)
    calls = []
    model.fc1.register_forward_hook(lambda mod, args, out: calls.append(1))
    cm(x)
    cm(x)
    assert len(calls) == 2 and model.traces == 2
    assert "hooks on module 'fc1' changed" in cm.explain()


def _replace_out(mod, args, out):
    return out * 2 + 1


def _replace_in(mod, args):
    return (args[0] - 1,)


def _replace_in_kw(mod, args, kwargs):
    return (args[0] * 3,), kwargs


def _register(model, where):
    if where == "forward":
        model.act.register_forward_hook(_replace_out)
    else:
        model.fc2.register_forward_pre_hook(_replace_in)
        model.register_forward_pre_hook(_replace_in_kw, with_kwargs=True)


@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("where", ["forward", "forward_pre"])
def test_hook_replacement_changes_the_result_as_in_eager(where, when, grad):
    m, cm, model = pair()
    x = x_(3, 4)
    _register(m, where)
    if when == "before":
        _register(model, where)
    with tracenn.set_grad_enabled(grad), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cm(x)
        if when == "after":
            _register(model, where)
        for _ in range(2):
            got, want = cm(x), m(x)
            assert_close(got, want)
    # under grad the replacement's derivative cannot be in the program: one warning, then eager
    warned = [str(w.message) for w in caught if "returned a replacement" in str(w.message)]
    assert len(warned) == int(grad), warned
    if grad:
        got.sum().backward()
        want.sum().backward()
        assert_grads_equal(model, m)


def test_a_replacement_under_grad_warns_once_then_the_call_runs_eagerly():
    m, cm, model = pair()
    x = x_(3, 4)
    for mod in (m, model):
        mod.act.register_forward_hook(_replace_out)
    with pytest.warns(UserWarning, match=(
            r"^tracenn\.compile\(Counted\): the forward hook _replace_out on module ReLU returned a "
            r"replacement while gradients are recorded; its derivative cannot be part of the compiled "
            r"program, so grad-enabled calls with these inputs now run eagerly \(this call ran the hook "
            r"twice\)\. Under tracenn\.no_grad\(\) the compiled program applies the replacement\.$")):
        got = cm(x)
    assert_close(got, m(x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning: the entry now runs eagerly
        got = cm(x)
    got.sum().backward()
    m(x).sum().backward()
    assert_grads_equal(model, m)
    assert "entry 1 runs eagerly from call 1: the forward hook _replace_out" in cm.explain()


def test_removing_the_handle_removes_the_hook():
    m, cm, model = pair()
    handle = model.fc2.register_forward_hook(lambda mod, args, out: out + 100)
    x = x_(2, 4)
    with tracenn.no_grad():
        assert_close(cm(x), m(x) + 100)
        handle.remove()
        assert_close(cm(x), m(x))
        assert model.traces == 2  # the hook set is a guard: removing it recompiled once
        assert_close(cm(x), m(x))
        assert model.traces == 2


def test_forward_hook_with_kwargs_and_global_hook():
    m, cm, model = pair()
    for mod in (m, model):
        mod.fc1.register_forward_hook(lambda mod, args, kwargs, out: out.clamp(min=0.1), with_kwargs=True)
    x = x_(2, 4)
    handle = nn.modules.module.register_module_forward_hook(
        lambda mod, args, out: out * 0.5 if isinstance(mod, nn.Linear) else None)
    with tracenn.no_grad():
        try:
            assert_close(cm(x), m(x))
        finally:
            handle.remove()
        assert_close(cm(x), m(x))


def test_observing_hooks_leave_gradients_alone():
    """Hooks that only look (return None) are fine with gradients: backward equals eager."""
    m, cm, model = pair()
    seen = []
    for mod in (m, model):
        mod.fc1.register_forward_hook(lambda mod, args, out: seen.append(to_np(out).sum()))
        mod.fc2.register_forward_pre_hook(lambda mod, args: seen.append(to_np(args[0]).sum()))
    x = x_(2, 4)
    m(x).sum().backward()
    cm(x).sum().backward()
    assert len(seen) == 4
    np.testing.assert_allclose(seen[2:], seen[:2], rtol=1e-5, atol=1e-5)
    assert_grads_equal(model, m)


# ---- backward hooks ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["full_backward", "full_backward_pre"])
def test_module_backward_hook_fires_through_compiled_call(kind):
    m, cm, model = pair()
    seen = {"eager": [], "compiled": []}

    def hook_for(name):
        def hook(mod, *grads):
            seen[name].append([None if g is None else to_np(g) for g in grads[-1]])
        return hook

    getattr(m.fc2, f"register_{kind}_hook")(hook_for("eager"))
    getattr(model.fc2, f"register_{kind}_hook")(hook_for("compiled"))
    x = x_(2, 4)
    for _ in range(2):
        m(x).sum().backward()
        cm(x).sum().backward()
    assert len(seen["compiled"]) == len(seen["eager"]) == 2
    for a, b in zip(seen["compiled"], seen["eager"]):
        for ga, gb in zip(a, b):
            np.testing.assert_allclose(ga, gb, rtol=1e-5, atol=1e-6)


def test_backward_hooks_are_compiled_not_dropped():
    _, cm, model = pair()
    model.fc2.register_full_backward_hook(lambda mod, gin, gout: None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "running ... eagerly" warning: the call is compiled)
        cm(x_(2, 4))
    names = [n.op.name for n in cm.graph.nodes]
    assert names.count("backward_hook") == 2  # fc2's inputs and outputs


def test_backward_hook_replacing_grad_input_changes_param_grads():
    """A full backward hook that scales grad_input changes what flows upstream, as in eager."""
    m, cm, model = pair()
    for mod in (m, model):
        mod.fc2.register_full_backward_hook(lambda mod, gin, gout: tuple(None if g is None else g * 3 for g in gin))
    x = x_(2, 4)
    m(x).sum().backward()
    cm(x).sum().backward()
    assert_grads_equal(model, m)


def test_tensor_hook_on_compiled_output_fires():
    """Tensor.register_hook on a compiled call's output is an ordinary eager-tape hook."""
    _, cm, model = pair()
    x = x_(2, 4)
    out = cm(x)
    seen = []
    out.register_hook(lambda g: seen.append(to_np(g)) or g * 2)
    out.sum().backward()
    assert len(seen) == 1 and np.array_equal(seen[0], np.ones((2, 3), np.float32))
    model2 = copy.deepcopy(model)
    for p in model2.parameters():
        p.grad = None
    (model2(x) * 2).sum().backward()
    assert_grads_equal(model, model2)


# ---- buffers ----------------------------------------------------------------------------------------

class BNNet(nn.Module):
    def __init__(self, momentum=0.1):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3, momentum=momentum)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu().mean((2, 3)))


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_buffers_equal_eager_after_several_train_calls(momentum):
    m, cm, model = pair(lambda: BNNet(momentum))
    rm, nbt = model.bn.running_mean, model.bn.num_batches_tracked
    for i in range(4):
        x = x_(4, 2, 5, 5) * (i + 1) + i
        assert_close(cm(x), m(x))
    for name in ("bn.running_mean", "bn.running_var", "bn.num_batches_tracked"):
        assert_close(model.get_buffer(name), m.get_buffer(name))
    assert model.bn.num_batches_tracked.item() == 4
    assert model.bn.running_mean is rm and model.bn.num_batches_tracked is nbt  # updated in place, as torch
    assert cm.state_dict()["bn.num_batches_tracked"].item() == 4


def test_batchnorm_eval_calls_leave_buffers_and_use_them():
    m, cm, model = pair(BNNet)
    x = x_(4, 2, 5, 5)
    cm(x), m(x)  # one train step: non-trivial statistics
    m.eval()
    cm.eval()
    before = {k: to_np(v).copy() for k, v in model.named_buffers()}
    for _ in range(2):
        assert_close(cm(x), m(x))
    for k, v in model.named_buffers():
        np.testing.assert_array_equal(to_np(v), before[k])
    cm.train()
    m.train()
    assert_close(cm(x), m(x))
    assert model.bn.num_batches_tracked.item() == 2


def test_toggling_train_eval_never_retraces_after_the_first_time():
    m, cm, model = pair(Counted)
    x = x_(2, 4)
    for mode in ["train", "eval", "train", "eval", "train"]:
        getattr(cm, mode)()
        cm(x)
    assert model.traces == 2


# ---- randomness -------------------------------------------------------------------------------------

class Drop(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.fc(x)) + self.drop(x)  # two draws per call


def test_dropout_masks_are_fresh_every_call():
    _, cm, _ = pair(Drop)
    x = x_(4, 8)
    outs = [to_np(cm(x)) for _ in range(3)]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])


def test_same_seed_same_masks_as_eager_and_same_generator_state():
    m, cm, _ = pair(Drop)
    x = x_(4, 8)
    tracenn.manual_seed(42)
    eager = [to_np(m(x)) for _ in range(3)]
    state = tracenn.get_rng_state()
    tracenn.manual_seed(42)
    compiled = [to_np(cm(x)) for _ in range(3)]
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert tracenn.get_rng_state().tolist() == state.tolist()


def test_eager_and_compiled_calls_interleave_on_one_generator():
    """Compiled calls draw from the global generator like eager ones: mixing them matches pure eager."""
    m, cm, _ = pair(Drop)
    x = x_(4, 8)
    tracenn.manual_seed(3)
    eager = [to_np(m(x)), to_np(tracenn.rand(3)), to_np(m(x))]
    tracenn.manual_seed(3)
    mixed = [to_np(cm(x)), to_np(tracenn.rand(3)), to_np(cm(x))]
    for a, b in zip(mixed, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("grad", [False, True])
def test_the_rng_counter_stays_on_the_device_between_calls(grad, monkeypatch):
    """Off the CPU (here forced on it), the program returns the generator's next counter and the
    next call passes that array (a host number is copied to the device on every call); after a
    reseed or an eager draw the generator's own counter is placed again, as the same kind of
    array. Masks match pure eager, with one compile."""
    import jax
    from tracenn.runtime import entry
    monkeypatch.setattr(entry, "DEVICE_COUNTER_PLATFORMS", frozenset(("cpu",)))
    traces = []  # each time JAX traces the program (jit's C++ cache size can drop entries under load)
    wrap = entry._with_next_counters

    def counting(run, g):
        program = wrap(run, g)

        def traced(*args):
            traces.append(1)
            return program(*args)
        return traced
    monkeypatch.setattr(entry, "_with_next_counters", counting)
    m, cm, _ = pair(Drop)
    x = x_(4, 8)

    def calls(f):
        tracenn.manual_seed(5)
        out = [to_np(f(x)) for _ in range(2)]
        out.append(to_np(tracenn.rand(3)))
        out += [to_np(f(x)) for _ in range(2)]
        tracenn.manual_seed(6)
        return out + [to_np(f(x))]

    with tracenn.set_grad_enabled(grad):
        eager = calls(m)
        compiled = calls(cm)
        for a, b in zip(compiled, eager):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        entry = cm._last
        gen = tracenn.random.default_generator
        counter = entry.rng_args()[1]
        assert isinstance(counter, jax.Array) and int(counter) == gen._counter == 2
        assert entry.rng_args()[1] is counter  # the array the last call returned, no new one
        tracenn.rand(1)  # an eager draw moves the generator: its own counter is placed again
        moved = entry.rng_args()[1]
        assert moved is not counter and int(moved) == gen._counter == 3
    assert len(cm._entries) == 1
    if not grad:
        assert len(traces) == 1  # host-made and returned counters match: one trace


def test_eval_mode_dropout_is_identity_and_draws_nothing():
    m, cm, _ = pair(Drop)
    cm.eval()
    m.eval()
    x = x_(4, 8)
    state = tracenn.get_rng_state()
    assert_close(cm(x), m(x))
    assert tracenn.get_rng_state().tolist() == state.tolist()


# ---- autograd ---------------------------------------------------------------------------------------

def test_backward_fills_param_and_input_grads_like_eager():
    m, cm, model = pair()
    xe, xc = x_(3, 4, grad=True), None
    xc = xe.detach().clone().requires_grad_()
    m(xe).pow(2).sum().backward()
    cm(xc).pow(2).sum().backward()
    assert_grads_equal(model, m)
    assert_close(xc.grad, xe.grad)


def test_compiled_output_grad_fn():
    _, cm, _ = pair()
    out = cm(x_(2, 4))
    assert out.requires_grad and out.grad_fn is not None
    assert out.grad_fn.name() == "CompiledFunctionBackward0"
    with tracenn.no_grad():
        out = cm(x_(2, 4))
    assert not out.requires_grad and out.grad_fn is None


def test_gradients_accumulate_over_two_calls():
    m, cm, model = pair()
    for _ in range(2):
        x = x_(3, 4)
        m(x).sum().backward()
        cm(x).sum().backward()
    assert_grads_equal(model, m)


def test_optimizer_step_between_calls_is_seen_without_retrace():
    m, cm, model = pair()
    opt_m = tracenn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    opt_c = tracenn.optim.SGD(cm.parameters(), lr=0.1, momentum=0.9)
    x = x_(6, 4)
    for _ in range(3):
        for opt, f in ((opt_m, m), (opt_c, cm)):
            opt.zero_grad()
            f(x).pow(2).mean().backward()
            opt.step()
    assert_close(cm(x), m(x), rtol=1e-4, atol=1e-5)
    for (n, p), (_, q) in zip(model.named_parameters(), m.named_parameters()):
        assert_close(p, q, rtol=1e-4, atol=1e-5)
    assert model.traces == 1, cm.explain()


def test_retain_graph_backward_twice_doubles_grads():
    m, cm, model = pair()
    x = x_(2, 4)
    for f in (m, cm):
        loss = f(x).sum()
        loss.backward(retain_graph=True)
        loss.backward()
    assert_grads_equal(model, m)


def test_backward_twice_without_retain_graph_raises_like_eager():
    m, cm, _ = pair()
    x = x_(2, 4)
    loss = m(x).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="second time") as eager:
        loss.backward()
    loss = cm(x).sum()
    loss.backward()
    with pytest.raises(type(eager.value), match="second time"):
        loss.backward()


def test_outputs_of_no_grad_and_frozen_params():
    m, cm, model = pair()
    for mod in (m, model):
        mod.fc1.requires_grad_(False)
    x = x_(2, 4)
    m(x).sum().backward()
    cm(x).sum().backward()
    assert model.fc1.weight.grad is None
    assert_grads_equal(model, m)


class Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Linear(3, 2)
        self.unused = nn.Linear(3, 2)

    def forward(self, x, mask):
        return self.used(x) * (mask > 0)  # mask reaches the output through a comparison only


def test_unused_parameter_grad_stays_none():
    """Parameters the output does not depend on keep ``.grad is None``, as in eager (torch users
    rely on it, e.g. to find unused parameters)."""
    m, cm, model = pair(Unused)
    x, mask = x_(4, 3), x_(4, 2)
    m(x, mask).sum().backward()
    cm(x, mask).sum().backward()
    assert m.unused.weight.grad is None
    assert model.unused.weight.grad is None, "compiled call filled an unused parameter's grad (eager: None)"
    assert_grads_equal(model, m)




def test_input_used_only_in_a_comparison_gets_no_grad():
    m, cm, _ = pair(Unused)
    x, mask = x_(4, 3), x_(4, 2, grad=True)
    m(x, mask).sum().backward()
    mc = mask.detach().clone().requires_grad_()
    cm(x, mc).sum().backward()
    assert mask.grad is None
    assert mc.grad is None, "compiled call filled the grad of an input used only in a comparison (eager: None)"




def _clamp_intermediate(lin, x):
    n = (x * 2).sum().clone()
    with tracenn.no_grad():
        n.clamp_min_(1e-8)  # as F.cosine_similarity clamps its norms
    return x * n


def _scale_parameter(lin, x):
    with tracenn.no_grad():
        lin.weight.mul_(0.5)  # as Embedding(max_norm=...) renormalises its weight
    return lin(x)


@pytest.mark.parametrize("body", [_clamp_intermediate, _scale_parameter], ids=["intermediate", "parameter"])
def test_in_place_change_under_no_grad_keeps_history_like_eager(body):
    tracenn.manual_seed(0)
    lin_e = nn.Linear(3, 3)
    lin_c = copy.deepcopy(lin_e)
    xe = tracenn.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    xc = tracenn.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    body(lin_e, xe).sum().backward()
    tracenn.compile(lambda x: body(lin_c, x))(xc).sum().backward()
    assert_close(xc.grad, xe.grad)
    assert_close(lin_c.weight, lin_e.weight)
    if lin_e.weight.grad is not None:
        assert lin_c.weight.grad is not None, "the parameter's gradient was cut"
        assert_close(lin_c.weight.grad, lin_e.weight.grad)


def test_autograd_grad_through_compiled_call_and_double_use():
    """autograd.grad on a graph that uses a compiled output twice, and mixes eager ops after it."""
    m, cm, _ = pair()
    xe = x_(3, 4, grad=True)
    xc = xe.detach().clone().requires_grad_()
    ye, yc = m(xe), cm(xc)
    ge = tracenn.autograd.grad((ye * ye.sin()).sum(), [xe])
    gc = tracenn.autograd.grad((yc * yc.sin()).sum(), [xc])
    assert_close(gc[0], ge[0])


# ---- compiling functions ----------------------------------------------------------------------------

def test_compile_function_closing_over_a_module_and_a_tensor():
    tracenn.manual_seed(0)
    lin = nn.Linear(3, 2)
    scale = tracenn.tensor([2.0, -1.0])

    def f(x):
        return lin(x) * scale

    cf = tracenn.compile(f, verify_passes=True)
    x = x_(4, 3)
    assert_close(cf(x), f(x))
    assert {"lin.weight", "lin.bias", "scale"} <= set(cf.graph.state)
    cf(x).sum().backward()
    g = lin.weight.grad.clone()
    lin.weight.grad = None
    f(x).sum().backward()
    assert_close(g, lin.weight.grad)
    with tracenn.no_grad():
        scale.fill_(3.0)  # state is read at every call: an in-place change is seen
        lin.bias.zero_()
    assert_close(cf(x), f(x))


def test_compile_decorator_without_and_with_arguments():
    @tracenn.compile
    def f(a, b):
        """Doc."""
        return a * b + 1

    @tracenn.compile(fallback="eager")
    def g(a):
        return a.relu() if a.sum() > 0 else -a  # reads a value: runs eagerly

    a, b = x_(3), x_(3)
    assert_close(f(a, b), a * b + 1)
    assert f.__name__ == "f" and f.__doc__ == "Doc." and f.__wrapped__(a, b) is not None
    with pytest.warns(UserWarning, match="fallback='eager'"):
        out = g(a)
    assert_close(out, a.relu() if a.sum() > 0 else -a)


def test_data_dependent_control_flow_raises_pointing_at_the_line():
    @tracenn.compile
    def g(a):
        if a.sum() > 0:
            return a
        return -a

    with pytest.raises(tracenn.errors.DataDependentError, match=r"test_semantics\.py:\d+.*if a\.sum\(\) > 0"):
        g(x_(3))


def test_module_compile_in_place():
    m, _, model = pair()
    model.compile()
    x = x_(2, 4)
    assert_close(model(x), m(x))
    assert_close(model(x), m(x))
    assert model.traces == 1


# ---- check=True -------------------------------------------------------------------------------------

def test_check_passes_quietly_for_a_correct_model():
    m, _, model = pair(BNNet)
    cm = tracenn.compile(model, check=True)
    x = x_(4, 2, 5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = cm(x)
    assert_close(out, m(x))
    assert "matched eager" in cm.explain()
    assert_close(model.bn.running_mean, m.bn.running_mean)  # the check's eager run left no trace
    assert model.bn.num_batches_tracked.item() == 1


def test_check_on_a_training_step_warns_once_and_steps_once():
    """A training step is not run twice (eagerly to compare, then compiled): it would step the model
    twice. It used to fail inside the check (an AttributeError, and backward() under no_grad)."""
    import tracenn.nn.functional as TF
    _, _, model = pair()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = x_(2, 4), x_(2, 3)

    def step():
        opt.zero_grad()
        loss = TF.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    cm = tracenn.compile(step, check=True)
    with pytest.warns(UserWarning, match=r"check=True\): a training step is not checked against eager mode"):
        cm()
    cm(), cm()
    assert sum("check: skipped (a training step)" in line for line in cm._log) == 1
    _, _, twin = pair()
    twin_opt = tracenn.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):  # three steps, not six: each call stepped once
        twin_opt.zero_grad()
        TF.mse_loss(twin(x), y).backward()
        twin_opt.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        assert_close(a, b)


def _swap_op(name, replacement):
    """A user pass that replaces every ``name`` node's op with ``replacement`` (same shape rule)."""
    from tracenn.ops.registry import OPS

    def swap(graph):
        g = graph.copy()
        for n in g.nodes:
            if n.op.name == name:
                n.op = OPS[replacement]
        return g
    return swap


def test_check_reports_a_user_pass_divergence_naming_the_pass_and_node():
    m, _, model = pair()
    cm = tracenn.compile(model, check=True, passes=[_swap_op("relu", "neg")])
    with pytest.warns(UserWarning, match=r"does not match eager") as rec:
        cm(x_(2, 4))
    msg = str(rec[0].message)
    assert re.search(r"a graph pass changed the result \(the first pass after which it no longer matches: "
                     r"'swap'; it changed %\w+ \(neg, module 'act', .*test_semantics\.py:\d+\)\)", msg), msg


def test_check_reports_a_user_pass_divergence():
    m, _, model = pair()
    cm = tracenn.compile(model, check=True, passes=[_swap_op("relu", "neg")])
    with pytest.warns(UserWarning, match=r"does not match eager.*output 0"):
        cm(x_(2, 4))


def test_check_names_the_node_whose_lowering_diverges(monkeypatch):
    """A bug in one op's lowering (here: relu's JAX impl, patched after eager kernels are cached)
    is reported at that node: op, module path and the user's line."""
    m, _, model = pair()
    x = x_(2, 4)
    m(x)  # eager kernels are cached now
    from tracenn.ops.registry import OPS
    relu = OPS["relu"]
    impl = relu.impl
    monkeypatch.setattr(relu, "impl", lambda a, **k: impl(a, **k) + 1.0)
    cm = tracenn.compile(model, check=True)
    where = r"first value that differs .* \(relu, module 'act', .*test_semantics\.py:\d+\)"
    with pytest.warns(UserWarning, match=where):
        cm(x)


# ---- inputs written in place ------------------------------------------------------------------------

class AddInPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, y):
        x.add_(1)
        y[0].mul_(2)  # through a view
        return self.fc(x) + y.sum()


def test_inputs_modified_in_place_are_written_back_like_eager():
    m, cm, _ = pair(AddInPlace)
    xe, ye = x_(2, 3), x_(2, 3)
    xc, yc = xe.clone(), ye.clone()
    for _ in range(2):
        assert_close(cm(xc, yc), m(xe, ye))
        assert_close(xc, xe)
        assert_close(yc, ye)
    assert xc._version == xe._version > 0


class _LazyMask(nn.Module):
    """Caches a tensor it makes in forward on itself, as word_language_model's TransformerModel
    caches ``self.src_mask``."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.mask = None

    def forward(self, x):
        if self.mask is None or self.mask.size(0) != x.size(1):
            self.mask = tracenn.ones(x.size(1), x.size(1)).tril()
        return self.lin(x @ self.mask)


def test_a_tensor_cached_on_the_module_during_tracing_is_usable_by_later_programs():
    eager_model, model = _LazyMask(), _LazyMask()
    model.load_state_dict(eager_model.state_dict())
    compiled = tracenn.compile(model)
    for n in (2, 3):  # a new input shape: a second program reads the cached mask
        x = tracenn.tensor(RNG.standard_normal((n, 3)).astype(np.float32))
        assert_close(compiled(x), eager_model(x), rtol=1e-6)


def test_the_cached_tensor_is_a_real_value_after_compiling():
    """The cache built while tracing (torch's word_language_model keeps its causal mask on the
    model this way) holds numbers afterwards: eager calls and later programs read it."""
    model = _LazyMask()
    compiled = tracenn.compile(model)
    x = tracenn.tensor(RNG.standard_normal((2, 3)).astype(np.float32))
    compiled(x)
    assert model.mask.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]
    assert_close(model(x), compiled(x), rtol=1e-6)


class _InputCache(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.last = None

    def forward(self, x):
        self.last = x.sum(0)  # computed from the input: no program can leave it behind
        return self.lin(x)


def test_a_tensor_stored_from_the_inputs_is_replayed_after_each_call():
    """``self.last = x.sum(0)``: the program returns it and the call sets the attribute to the
    real tensor (compiler/escapes.py), with no eager fallback; a new shape compiles anew."""
    model = _InputCache()
    compiled = tracenn.compile(model)
    for n in (2, 2, 4):
        x = tracenn.tensor(RNG.standard_normal((n, 3)).astype(np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = compiled(x)
        assert_close(out, model.lin(x), rtol=1e-6)
        assert_close(model.last, x.sum(0), rtol=1e-6)
    assert "self.last = %" in str(compiled.graph)
    assert compiled.explain().count("compile ") == 2  # (one per shape: the stored tensor is not an input)
