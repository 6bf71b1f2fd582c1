"""How a grad-enabled compiled call hands gradients to eager autograd (runtime/compiled.py, runtime/gradcall.py):
residuals and a pullback (large programs), recomputation in the backward (small programs), and
value-and-grad for a scalar loss once its backward has been seen. Every mode must give eager's
gradients; these tests pin which mode runs, so a regression in the choice is seen too."""
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.runtime.gradcall as gradcall
from tracenn import nn
import tracenn.nn.functional as F
from helpers import assert_close


def _mlp(seed=0, width=32):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 3))


def _data(seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return tracenn.randn(16, 8, generator=g), tracenn.randint(0, 3, (16,), generator=g)


def _plan(cm):
    (plan,) = cm._last._plans.values()
    return plan


def _grads(model):
    return [p.grad.numpy().copy() for p in model.parameters()]


@pytest.fixture(params=["recompute", "residuals"])
def mode(request, monkeypatch):
    monkeypatch.setattr(gradcall, "RECOMPUTE_FLOPS", 10**12 if request.param == "recompute" else 0)
    return request.param


def test_model_output_gradients_equal_eager_in_both_modes(mode):
    eager, model = _mlp(), _mlp()
    cm = tracenn.compile(model)
    x, y = _data()
    for _ in range(2):
        F.cross_entropy(eager(x), y).backward()
        F.cross_entropy(cm(x), y).backward()
    assert cm._last.recompute == (mode == "recompute")
    for a, b in zip(_grads(eager), _grads(model)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_recompute_mode_redraws_the_same_dropout_mask(monkeypatch):
    monkeypatch.setattr(gradcall, "RECOMPUTE_FLOPS", 10**12)
    tracenn.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 1))
    eager = nn.Sequential(nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 1))
    eager.load_state_dict(model.state_dict())
    cm = tracenn.compile(model)
    x = tracenn.randn(16, 8)
    tracenn.manual_seed(5)
    out_e = eager(x)
    out_e.sum().backward()
    tracenn.manual_seed(5)
    out_c = cm(x)
    out_c.sum().backward()  # the backward re-runs the forward: it must see the forward's mask
    assert cm._last.recompute
    assert_close(out_c, out_e)
    for a, b in zip(_grads(eager), _grads(model)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def _loss_fn(model):
    def loss(x, y):
        return F.cross_entropy(model(x), y)
    return loss


def test_a_scalar_loss_switches_to_value_and_grad_after_its_first_backward(mode):
    eager, model = _mlp(), _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    for step in range(4):
        for m in (eager, model):
            m.zero_grad()
        le = _loss_fn(eager)(x, y)
        le.backward()
        lc = cl(x, y)
        assert _plan(cl).use_vg == (step > 0)  # the first call pulls back; later ones carry grads
        lc.backward()
        assert_close(lc, le)
        for a, b in zip(_grads(eager), _grads(model)):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_value_and_grad_mode_scales_by_the_cotangent_and_keeps_retain_graph():
    eager, model = _mlp(), _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    cl(x, y).backward()
    lc, le = cl(x, y), _loss_fn(eager)(x, y)
    assert _plan(cl).use_vg
    for m in (eager, model):
        m.zero_grad()
    (lc * 0.5).backward(retain_graph=True)
    (le * 0.5).backward(retain_graph=True)
    (lc * 3.0).backward()  # accumulates: 3.5 times the gradient
    (le * 3.0).backward()
    for a, b in zip(_grads(eager), _grads(model)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_value_and_grad_mode_knows_the_implicit_seed_without_reading_a_value():
    """``loss.backward()``'s cotangent is the seed array itself (graph.SEEDS): the gradients go on
    unscaled, with no program and no host read. A cotangent of 1 given explicitly is scaled (the
    same values): telling it apart would read it, a wait for the device on a GPU."""
    eager, model = _mlp(), _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    cl(x, y).backward()
    lc = cl(x, y)
    assert _plan(cl).use_vg
    op = lc.grad_fn.op
    scaled = []
    real = op._bwd
    op._bwd = lambda grads, g: scaled.append(g) or real(grads, g)
    model.zero_grad()
    lc.backward()
    assert scaled == []
    want = _grads(model)
    model.zero_grad()
    lc = cl(x, y)
    assert lc.grad_fn.op is op  # (one op per program: the patch above holds)
    lc.backward(tracenn.tensor(1.0))
    assert len(scaled) == 1
    for a, b in zip(want, _grads(model)):
        np.testing.assert_array_equal(b, a)
    _loss_fn(eager)(x, y).backward()
    for a, b in zip(_grads(eager), want):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_value_and_grad_mode_stops_when_outputs_are_not_differentiated():
    model = _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    cl(x, y).backward()
    for _ in range(3):  # a grad-enabled evaluation loop: nobody calls backward
        cl(x, y)
    assert not _plan(cl).use_vg
    cl(x, y).backward()
    assert _plan(cl).use_vg  # training resumed


def test_a_non_scalar_output_never_uses_value_and_grad():
    model = _mlp(width=8192)  # (a forward too large to recompute: calls take the planned path)
    cm = tracenn.compile(model)
    x, _ = _data()
    for _ in range(2):
        cm(x).sum().backward()
    assert _plan(cm).fwd_vg is None and not _plan(cm).use_vg


def test_a_parameter_changed_in_place_before_backward_raises_as_in_eager(mode):
    model = _mlp()
    cm = tracenn.compile(model)
    x, y = _data()
    loss = F.cross_entropy(cm(x), y)
    with tracenn.no_grad():
        model[0].weight.add_(1.0)  # an optimizer step before backward
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[tracenn\.FloatTensor "
                                           r"\[32, 8\]\] is at version 2; expected version 1 instead\. Hint: "
                                           r"CompiledFunctionBackward0 saved it \(input 0\)"):
        loss.backward()


def test_an_input_changed_in_place_before_backward_raises_as_in_eager(mode):
    model = _mlp()
    cm = tracenn.compile(model)
    x = _data()[0].requires_grad_()
    out = cm(x)
    with tracenn.no_grad():
        x.mul_(2.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation"):
        out.sum().backward()


# ---- the lean grad-enabled call (fastcall.recomputing): one input, one output, recompute ----------


def _fast_model(seed=0):
    tracenn.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 4))


def _linears(n, frozen=()):
    """``n`` Linear(4, 4) + Tanh layers (a parameter-free Tanh for 0); the biases of the layers in
    ``frozen`` do not require grad."""
    tracenn.manual_seed(0)
    model = nn.Sequential(*[m for _ in range(n) for m in (nn.Linear(4, 4), nn.Tanh())]) if n else nn.Tanh()
    for i in frozen:
        model[2 * i].bias.requires_grad_(False)
    return model


@pytest.mark.parametrize("n, frozen", [(0, ()), (1, ()), (3, ()), (3, (1,))])
@pytest.mark.parametrize("grad", [False, True])
def test_the_lean_calls_are_written_for_any_number_of_state_tensors(n, frozen, grad):
    """The lean calls are generated per state count and per set of parameters needing grad
    (runtime/fastcall.py): each must read every parameter's current array (an optimizer step
    between calls is seen) and send each gradient to its own parameter."""
    eager, model = _linears(n, frozen), _linears(n, frozen)
    cm = tracenn.compile(model)
    for k in range(3):
        x = tracenn.randn(2, 4)
        xe, xc = x.clone().requires_grad_(grad), x.clone().requires_grad_(grad)
        with tracenn.set_grad_enabled(grad):
            want, got = eager(xe), cm(xc)
        assert_close(got, want, rtol=1e-6, atol=1e-6)
        assert (got.grad_fn is None) == (not grad)
        if grad:
            (want * (k + 1)).sum().backward()
            (got * (k + 1)).sum().backward()
            assert_close(xc.grad, xe.grad, rtol=1e-5, atol=1e-6)
        with tracenn.no_grad():  # a step between calls: the next call reads the new arrays
            for pe, pc in zip(eager.parameters(), model.parameters()):
                pe.sub_(0.1 * k)
                pc.sub_(0.1 * k)
    assert cm._last.fast is not None and cm._last.calls == 3
    for (name, pe), pc in zip(eager.named_parameters(), model.parameters()):
        assert (pc.grad is None) == (pe.grad is None), name
        if pe.grad is not None:
            assert_close(pc.grad, pe.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("input_grad", [False, True])
def test_the_lean_grad_call_gives_eager_gradients_over_repeated_calls(input_grad):
    eager, model = _fast_model(), _fast_model()
    cm = tracenn.compile(model)
    x, _ = _data()
    xs = [x.clone().requires_grad_(input_grad) for _ in range(2)]
    xc = [x.clone().requires_grad_(input_grad) for _ in range(2)]
    for k in range(3):  # the first call builds the entry; later ones take the lean path
        (eager(xs[0]) * (k + 1)).sum().backward()
        (cm(xc[0]) * (k + 1)).sum().backward()
    assert cm._last.fast is not None and cm._last.recompute
    # two outputs of the lean call in one backward: their gradients add up
    (eager(xs[1]).pow(2).sum() + eager(xs[1]).sum()).backward()
    (cm(xc[1]).pow(2).sum() + cm(xc[1]).sum()).backward()
    for a, b in zip(_grads(eager), _grads(model)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    for a, b in zip(xs, xc):
        assert (a.grad is None) == (not input_grad) and (b.grad is None) == (not input_grad)
        if input_grad:
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_the_lean_grad_call_sets_every_slot_of_its_node_and_tensor():
    """fastcall's recomputing call writes Node.__init__ and Tensor._wrap out: a slot added to
    either must be added there too."""
    from tracenn.autograd import graph
    from tracenn.runtime import fastcall
    assert set(fastcall._NODE_SLOTS) == set(graph.Node.__slots__) - {"__weakref__"}
    assert set(fastcall._TENSOR_SLOTS) == set(tracenn.Tensor.__slots__) - {"__dict__", "__weakref__"}
    cm = tracenn.compile(_fast_model())
    x, _ = _data()
    first, second = cm(x), cm(x)
    assert cm._last.fast is not None
    for out in (first, second):
        node = out.grad_fn
        made = graph.Node(node.op, node.key, node.inputs, node.out, node.edges, node.needs, node.saved)
        for slot in fastcall._NODE_SLOTS:
            if slot != "seq":
                assert getattr(node, slot) is getattr(made, slot), slot
        assert out.requires_grad and out.is_leaf is False and out._out_idx == 0
    assert first.grad_fn.seq < second.grad_fn.seq < made.seq  # later nodes run first in backward
    with warnings.catch_warnings(), tracenn.autograd.detect_anomaly():
        warnings.simplefilter("ignore")  # (anomaly mode's "will increase the runtime")
        third = cm(x)
    assert third.grad_fn in graph.FORWARD_STACKS  # (under anomaly mode the constructor records the stack)
    with tracenn.no_grad():  # the no-grad lean call writes its tensor out too
        cm(x)
        plain = cm(x)
    assert cm._last.fast is not None
    assert plain.grad_fn is None and not plain.requires_grad and plain._out_idx == 0
    assert_close(plain, first.detach(), rtol=0, atol=0)


def test_the_lean_grad_call_checks_parameter_versions_at_each_call():
    model = _fast_model()
    cm = tracenn.compile(model)
    x, _ = _data()
    cm(x).sum().backward()
    out = cm(x)  # the lean path: its saved-version records are shared between calls
    assert cm._last.fast is not None
    with tracenn.no_grad():
        model[2].bias.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[tracenn\.FloatTensor \[4\]\] "
                                           r"is at version 2; expected version 1 instead\. Hint: "
                                           r"CompiledFunctionBackward0 saved it \(input 3\)"):
        out.sum().backward()
    model.zero_grad()
    cm(x).sum().backward()  # a call after the change records the new version: no false alarm
    assert model[2].bias.grad is not None


def test_the_lean_grad_call_takes_a_view_input_and_sends_its_gradient_to_the_base():
    eager, model = _fast_model(), _fast_model()
    cm = tracenn.compile(model)
    base_e = tracenn.randn(20, 8).requires_grad_()
    base_c = base_e.detach().clone().requires_grad_()
    for _ in range(2):
        eager(base_e[2:18]).sum().backward()
        cm(base_c[2:18]).sum().backward()
    assert cm._last.fast is not None
    np.testing.assert_allclose(base_c.grad.numpy(), base_e.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert base_c.grad[:2].abs().sum().item() == 0.0


# ---- value-and-grad or pullback: timed in the user's loop (gradcall.ModeChoice) -------------------------


class _Clock:
    now = 0.0

    def perf_counter(self):
        return self.now


def _costly(fn, clock, cost):
    def f(*args):
        clock.now += cost
        return fn(*args)
    return f


@pytest.mark.parametrize("faster", ["vg", "pullback"])
def test_the_faster_mode_is_kept_and_gradients_equal_eager_throughout(faster, monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(gradcall, "time", clock)
    eager, model = _mlp(), _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    modes = []
    for step in range(26):
        for m in (eager, model):
            m.zero_grad()
        le = _loss_fn(eager)(x, y)
        le.backward()
        if step == 1:  # the plan exists after the first call: make one mode's program cost more
            plan = _plan(cl)
            plan.fwd_vg = _costly(plan.fwd_vg, clock, 1.0 if faster == "pullback" else 0.1)
            plan.fwd = _costly(plan.fwd, clock, 1.0 if faster == "vg" else 0.1)
        lc = cl(x, y)
        modes.append("vg" if lc.grad_fn.name() == "CompiledFunctionBackward0" and isinstance(
            lc.grad_fn.op, gradcall._ScaledGrads) else "pullback")
        lc.backward()
        assert_close(lc, le)
        for a, b in zip(_grads(eager), _grads(model)):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    choice = _plan(cl).choice
    assert choice.pick == faster
    # call 1 pulls back; then blocks of 4 calls: vg (compiles, not timed), pullback, vg, pullback, vg
    assert modes[:21] == ["pullback"] + ["vg"] * 4 + ["pullback"] * 4 + ["vg"] * 4 + ["pullback"] * 4 + ["vg"] * 4
    assert set(modes[21:]) == {faster}
    assert (_plan(cl).fwd_vg is None) == (faster == "pullback")
    slow, fast = 4 * 1.0, 4 * 0.1
    vg_ms, pb_ms = (fast, slow) if faster == "vg" else (slow, fast)
    assert choice.describe() == (f"{'value-and-grad' if faster == 'vg' else 'pullback'} mode (measured per "
                                 f"iteration: value-and-grad {vg_ms / 4 * 1e3:.4g} ms, pullback {pb_ms / 4 * 1e3:.4g} ms)")
    assert "scalar output: " + choice.describe() in cl.explain()


def test_the_timing_pauses_while_outputs_are_not_differentiated():
    model = _mlp()
    cl = tracenn.compile(_loss_fn(model))
    x, y = _data()
    cl(x, y).backward()
    cl(x, y).backward()  # block 0, call 1
    for _ in range(3):
        cl(x, y)  # not differentiated: value-and-grad stops and the block restarts
    choice = _plan(cl).choice
    assert not _plan(cl).use_vg and choice.in_block == 0 and choice.block == 0
    for _ in range(25):
        cl(x, y).backward()
    assert choice.pick in ("vg", "pullback")


def test_detached_outputs_do_not_require_grad():
    """``return y.detach()`` (or a value made under no_grad) from a grad-enabled compiled call is a
    plain tensor, as in eager: ``.numpy()`` works and backward() through it raises."""
    def f(x):
        y = x * 2
        with tracenn.no_grad():
            z = y * 3
        return y.detach(), x * 3, (x * 4).sum().detach(), z

    x = tracenn.ones(2, requires_grad=True)
    got, want = tracenn.compile(f)(x), f(x)
    assert [t.requires_grad for t in got] == [t.requires_grad for t in want] == [False, True, False, False]
    assert got[0].numpy().tolist() == [2.0, 2.0] and got[3].tolist() == [6.0, 6.0]
