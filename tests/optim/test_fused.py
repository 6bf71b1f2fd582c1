"""The fused eager step: each optimizer's default ``step()`` runs one jitted program per param
group (torch's ``foreach``/``fused``); ``foreach=False`` runs the per-parameter loop of eager ops.

The two must agree (the program inlines the loop's kernels; XLA may contract a multiply and an add
into one FMA, so the last bit can differ), keep the same state, and the program must be traced once:
a scheduler changing ``lr`` (or the momentum) and the step count are inputs, not constants.
"""
from __future__ import annotations

import jax
import numpy as np
import pytest

import tracenn
from helpers import to_np
from optim.conftest import Problem, assert_float32_close
from tracenn.optim import _functional as F

STEPS = 8

# (optimizer, options): every term of every rule, and both forms of torch's lerp (weight >= 0.5).
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.3, 0.9), maximize=True)),
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.3, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.4, centered=True, weight_decay=0.1, maximize=True)),  # cancels: CANCEL_RTOL
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.05, betas=(0.3, 0.99), weight_decay=0.1)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.05)),  # rho_t crosses 5 at step 6: both programs
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1, decoupled_weight_decay=True)),
]
# Agreement, relative to the largest value (float32: 1 ulp is 1.2e-7). Where ``square_avg - grad_avg**2``
# cancels (a centered RMSprop with a small alpha), one contracted FMA's last bit grows with each step.
RTOL, RTOL64, CANCEL_RTOL = 5e-7, 1e-15, 2e-6
RULES = {"SGD": "sgd", "Adam": "adam", "AdamW": "adam", "RMSprop": "rmsprop", "Adagrad": "adagrad",
         "Adadelta": "adadelta", "Adamax": "adamax", "NAdam": "nadam", "RAdam": "radam"}


def _ids(case):
    return case[0] + "-" + "-".join(f"{k}={v}" for k, v in case[1].items())


def _assert_same_run(fused, loop, rtol=RTOL):
    """Two (trajectory, optimizer, params) runs agree step by step, and so do their states."""
    (t1, opt1, ps1), (t2, opt2, ps2) = fused, loop
    assert len(t1) == len(t2)
    for k, (a_step, b_step) in enumerate(zip(t1, t2)):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            assert_float32_close(a, b, rtol, err_msg=f"step {k + 1}, param {i}")
    for p, q in zip(ps1, ps2):
        s, t = opt1.state[p], opt2.state[q]
        assert set(s) == set(t)
        for key in t:
            assert s[key].dtype == t[key].dtype and s[key].shape == t[key].shape, key
            assert_float32_close(to_np(s[key]), to_np(t[key]), rtol, err_msg=key)


def _run(name, kw, foreach, steps=STEPS, skip_at=None, dtype=None):
    pb = Problem(tracenn, dtype=dtype)
    opt = getattr(tracenn.optim, name)(pb.params, foreach=foreach, **kw)
    return pb.run(opt, steps, skip_at=skip_at), opt, pb.params


class _CountCalls:
    """Stands in for ``_functional.<rule>_apply``: counts the calls made while jax traces (the
    fused program being built) apart from eager ones (the per-parameter loop)."""

    def __init__(self, rule):
        self.rule, self.traced, self.eager = rule, 0, 0

    def __call__(self, param, *args, **kwargs):
        if isinstance(param._value, jax.core.Tracer):
            self.traced += 1
        else:
            self.eager += 1
        return self.rule(param, *args, **kwargs)


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls("adam")``: count the calls of ``F.adam_apply``."""
    def patch(rule):
        counter = _CountCalls(getattr(F, rule + "_apply"))
        monkeypatch.setattr(F, rule + "_apply", counter)
        return counter
    return patch


# ---- the fused step computes the loop's numbers -----------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_fused_step_matches_the_loop(case, count_calls):
    name, kw = case
    counter = count_calls(RULES[name])
    fused = _run(name, kw, None)
    assert counter.eager == 0 and counter.traced > 0  # the default is the fused program
    traced = counter.traced
    loop = _run(name, kw, False)
    assert counter.traced == traced and counter.eager == STEPS * len(loop[2])  # foreach=False: the loop
    _assert_same_run(fused, loop, CANCEL_RTOL if kw.get("alpha") == 0.4 else RTOL)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] in ("SGD", "Adam", "NAdam", "RAdam")],
                         ids=[_ids(c) for c in CASES if c[0] in ("SGD", "Adam", "NAdam", "RAdam")])
def test_fused_step_matches_the_loop_in_float64(case):
    name, kw = case
    _assert_same_run(_run(name, kw, None, dtype=tracenn.float64),
                     _run(name, kw, False, dtype=tracenn.float64), rtol=RTOL64)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad", "NAdam", "RAdam"])
def test_missing_grads_and_per_group_options(name):
    """Parameters whose grad is None are skipped (their state and step count lag behind, so a
    group's parameters are at different steps), and each group uses its own options."""
    kw = dict(lr=0.02, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.02)
    skip = {0: (1,), 1: (0,), 2: (0,), 4: (1,)}
    runs = []
    for foreach in (None, False):
        pb = Problem(tracenn)
        opt = getattr(tracenn.optim, name)([{"params": [pb.params[0]]},
                                            {"params": [pb.params[1]], "lr": 0.1, "weight_decay": 0.05}],
                                           foreach=foreach, **kw)
        runs.append((pb.run(opt, STEPS, skip_at=skip), opt, pb.params))
    _assert_same_run(*runs)


def test_frozen_parameter_gets_no_state():
    a, b = tracenn.nn.Parameter(tracenn.ones(2)), tracenn.nn.Parameter(tracenn.ones(3))
    opt = tracenn.optim.SGD([a, b], lr=0.1, momentum=0.9)
    for _ in range(2):
        a.grad = tracenn.ones(2)
        opt.step()
    assert b not in opt.state and b.tolist() == [1.0] * 3
    assert a.tolist() == pytest.approx([0.71, 0.71])
    assert opt.state[a]["momentum_buffer"].tolist() == pytest.approx([1.9, 1.9])


def test_mixed_dtypes_in_a_group():
    """float32 and float64 parameters run as two programs; bfloat16 ones take the loop (lerp
    computes them in float32, which a cast coefficient would round twice)."""
    runs = []
    for foreach in (None, False):
        params = [tracenn.nn.Parameter(tracenn.tensor(v, dtype=d)) for v, d in
                  (([1.0, -2.0], tracenn.float32), ([0.5, 3.0, -1.0], tracenn.float64),
                   ([2.0, 0.25], tracenn.bfloat16), ([-1.5], tracenn.float32))]
        opt = tracenn.optim.Adam(params, lr=0.1, betas=(0.4, 0.9))
        opt.param_groups[0]["foreach"] = foreach
        traj = []
        for k in range(4):
            for p in params:
                p.grad = (p.detach().float() * 2 + 0.5 * k).to(p.dtype)
            opt.step()
            traj.append([to_np(p).astype(np.float64) for p in params])
        runs.append(traj)
    for k, (a_step, b_step) in enumerate(zip(*runs)):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            np.testing.assert_allclose(a, b, rtol=2e-6 if i != 2 else 0, err_msg=f"step {k + 1}, param {i}")


# ---- the program is compiled once -------------------------------------------------------------------

@pytest.mark.parametrize("name, kw, sched, programs", [
    ("SGD", dict(lr=0.1, momentum=0.9), lambda o: tracenn.optim.lr_scheduler.ExponentialLR(o, 0.5), 2),
    ("Adam", dict(lr=0.1), lambda o: tracenn.optim.lr_scheduler.StepLR(o, 1, 0.7), 1),
    ("SGD", dict(lr=0.1, momentum=0.9), lambda o: tracenn.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=20), 2),
    ("Adam", dict(lr=0.1), lambda o: tracenn.optim.lr_scheduler.OneCycleLR(o, 0.5, total_steps=20), 1),
    ("NAdam", dict(lr=0.1), lambda o: tracenn.optim.lr_scheduler.CosineAnnealingLR(o, 5), 1),
])
def test_a_scheduler_does_not_retrace(name, kw, sched, programs, count_calls):
    """lr (and, with OneCycleLR, the momentum or betas[0]) change every step, and so do the step
    counts: all are inputs of the program. SGD's first step (no momentum buffer yet) is a
    program of its own."""
    counter = count_calls(RULES[name])
    pb = Problem(tracenn)
    opt = getattr(tracenn.optim, name)(pb.params, **kw)
    scheduler = sched(opt)
    lrs = set()
    for _ in range(10):
        pb.run(opt, 1)
        scheduler.step()
        lrs.add(opt.param_groups[0]["lr"])
    assert len(lrs) == 10 and counter.eager == 0
    assert counter.traced == programs * len(pb.params)


def test_a_structural_option_change_compiles_another_program(count_calls):
    counter = count_calls("sgd")
    pb = Problem(tracenn)
    opt = tracenn.optim.SGD(pb.params, lr=0.1, momentum=0.9)
    pb.run(opt, 3)
    assert counter.traced == 2 * len(pb.params)
    opt.param_groups[0]["nesterov"] = True
    pb.run(opt, 2)
    assert counter.traced == 3 * len(pb.params)
    opt.param_groups[0]["momentum"] = 0.5  # a coefficient: no new program
    pb.run(opt, 2)
    assert counter.traced == 3 * len(pb.params) and counter.eager == 0


def test_tensor_lr_and_capturable_take_the_loop(count_calls):
    """Tensor coefficients stay tensors, as in the loop (their math is tensor math)."""
    counter = count_calls("adam")
    for kw in (dict(lr=tracenn.tensor(0.05)), dict(lr=0.05, capturable=True)):
        pb = Problem(tracenn)
        pb.run(tracenn.optim.Adam(pb.params, **kw), 2)
    assert counter.traced == 0 and counter.eager == 2 * 2 * len(pb.params)


# ---- the in-place semantics of the loop ---------------------------------------------------------------

@pytest.mark.parametrize("foreach", [None, False])
def test_writes_keep_identity_versions_and_aliases(foreach):
    p = tracenn.nn.Parameter(tracenn.ones(3))
    opt = tracenn.optim.SGD([p], lr=0.5, momentum=0.9, foreach=foreach)
    p.grad = tracenn.ones(3)
    opt.step()
    buf = opt.state[p]["momentum_buffer"]
    data, ver = p.data, p._version
    p.grad = tracenn.ones(3)
    opt.step()
    assert opt.state[p]["momentum_buffer"] is buf and buf.tolist() == pytest.approx([1.9] * 3)
    assert p._version == ver + 1 and p.is_leaf and p.grad_fn is None and p.requires_grad
    assert data.tolist() == p.tolist() == pytest.approx([-0.45] * 3)  # .data sees the update


@pytest.mark.parametrize("foreach", [None, False])
def test_a_step_between_forward_and_backward_is_caught(foreach):
    """The update is an in-place change of a tensor backward needs, as in torch."""
    p = tracenn.nn.Parameter(tracenn.ones(3))
    opt = tracenn.optim.Adam([p], lr=0.1, foreach=foreach)
    loss = (p * p).sum()
    p.grad = tracenn.ones(3)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_hooks_closure_and_synchronize():
    p = tracenn.nn.Parameter(tracenn.tensor([1.0, -1.0]))
    opt = tracenn.optim.Adam([p], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, a, k: calls.append("pre"))
    opt.register_step_post_hook(lambda o, a, k: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 2.0
    tracenn.synchronize()  # waits on the program's output (tracing left no tracer behind)
    assert calls == ["pre", "post"] and p.tolist() == pytest.approx([0.9, -0.9])


def test_state_dict_round_trip_between_fused_and_loop():
    """A state saved by a fused run resumes in a loop run (and back) on the same trajectory."""
    ref = _run("Adam", dict(lr=0.05, amsgrad=True), None, steps=6)
    pb = Problem(tracenn)
    opt = tracenn.optim.Adam(pb.params, lr=0.05, amsgrad=True)
    first = pb.run(opt, 3)
    opt2 = tracenn.optim.Adam(pb.params, lr=0.05, amsgrad=True, foreach=False)
    opt2.load_state_dict(opt.state_dict())
    second = pb.run(opt2, 2)
    opt3 = tracenn.optim.Adam(pb.params, lr=0.05, amsgrad=True)
    opt3.load_state_dict(opt2.state_dict())
    third = pb.run(opt3, 1)
    _assert_same_run(ref, (first + second + third, opt3, pb.params))
    assert opt3.state[pb.params[0]]["step"].item() == 6


def test_add_param_group_after_steps():
    runs = []
    for foreach in (None, False):
        pb = Problem(tracenn)
        opt = tracenn.optim.NAdam([pb.params[0]], lr=0.05, foreach=foreach)
        traj = pb.run(opt, 3, skip_at={k: (1,) for k in range(3)})
        opt.add_param_group({"params": [pb.params[1]], "lr": 0.1})
        traj += pb.run(opt, 3)
        runs.append((traj, opt, pb.params))
    _assert_same_run(*runs)


# ---- torch parity with the momentum cycled every step -------------------------------------------------

@pytest.mark.parametrize("name, kw", [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                                      ("Adam", dict(lr=0.1, weight_decay=0.01)),
                                      ("NAdam", dict(lr=0.05))])
def test_one_cycle_schedule_matches_torch(name, kw, torch):
    runs = []
    for lib in (tracenn, torch):
        pb = Problem(lib)
        opt = getattr(lib.optim, name)(pb.params, **kw)
        scheduler = lib.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=12,
                                                       cycle_momentum=name != "NAdam")
        traj = []
        for _ in range(12):
            traj += pb.run(opt, 1)
            scheduler.step()
        runs.append(traj)
    for k, (a_step, b_step) in enumerate(zip(*runs)):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            assert_float32_close(a, b, 2e-6, err_msg=f"step {k + 1}, param {i}")


# ---- donation: the update reuses the parameter and state buffers unless something else holds them ----

def _pointers(tensors):
    return [t._value.unsafe_buffer_pointer() for t in tensors]


def _trained_mlp(name, **kw):
    tracenn.manual_seed(0)
    model = tracenn.nn.Sequential(tracenn.nn.Linear(6, 8), tracenn.nn.ReLU(), tracenn.nn.Linear(8, 3))
    opt = getattr(tracenn.optim, name)(model.parameters(), **kw)
    x, y = tracenn.randn(5, 6), tracenn.tensor([0, 2, 1, 0, 1])
    return model, opt, x, y


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01))])
def test_the_fused_step_updates_parameters_and_state_in_place(name, kw):
    model, opt, x, y = _trained_mlp(name, **kw)
    cm = tracenn.compile(model)
    ref_model, ref_opt, _, _ = _trained_mlp(name, foreach=False, **kw)
    for step in range(3):
        for m, o in ((cm, opt), (ref_model, ref_opt)):
            o.zero_grad()
            tracenn.nn.functional.cross_entropy(m(x), y).backward()
        params = list(model.parameters())
        state = [t for p in params for t in opt.state[p].values() if isinstance(t, tracenn.Tensor) and t.dim()]
        before = _pointers(params + state)
        grads = [p.grad for p in params]
        opt.step()
        ref_opt.step()
        if step:  # (the first step creates the state)
            assert _pointers(params + state) == before  # donated: XLA wrote the new values in place
        for g in grads:  # gradients are never donated: still readable after the step
            assert np.isfinite(g.numpy()).all()
    for p, q in zip(model.parameters(), ref_model.parameters()):
        assert_float32_close(p.detach().numpy(), q.detach().numpy(), RTOL)


def test_an_array_held_elsewhere_is_not_donated_and_keeps_its_values():
    model, opt, x, y = _trained_mlp("SGD", lr=0.5, momentum=0.9)
    w = model[0].weight
    for _ in range(2):
        opt.zero_grad()
        tracenn.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    snapshot = w.detach().clone()     # shares w's array: JAX arrays are immutable
    as_numpy = w.detach().numpy()     # may view w's buffer
    old = as_numpy.copy()
    opt.zero_grad()
    tracenn.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    np.testing.assert_array_equal(snapshot.numpy(), old)
    np.testing.assert_array_equal(as_numpy, old)
    assert not np.array_equal(w.detach().numpy(), old)


def test_a_live_eager_graph_keeps_the_arrays_it_read():
    """An eager graph still alive at ``step()`` holds the arrays of its view and add nodes (they
    keep their inputs for the shapes): those are passed, not donated, and the values it holds
    stay readable (a second backward through it then raises torch's in-place error, as in torch)."""
    model, opt, x, y = _trained_mlp("SGD", lr=0.5, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        tracenn.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    opt.zero_grad()
    out = model(x)
    loss = tracenn.nn.functional.cross_entropy(out, y)
    loss.backward(retain_graph=True)
    w = model[0].weight
    before = w._value.unsafe_buffer_pointer()
    opt.step()
    assert w._value.unsafe_buffer_pointer() != before  # held by the graph: a new buffer
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_the_coefficients_are_placed_once_per_set_of_values():
    """SGD's coefficients stay the same from step to step: one device array serves them all (a
    host array would be copied to the device every step), and a new lr makes a new one."""
    from tracenn.optim._fused import _VALUES
    pb, ref = Problem(tracenn), Problem(tracenn)
    opt = tracenn.optim.SGD(pb.params, lr=0.1, momentum=0.9)
    ref_opt = tracenn.optim.SGD(ref.params, lr=0.1, momentum=0.9, foreach=False)
    pb.run(opt, 1), ref.run(ref_opt, 1)  # (the first step: no momentum buffer yet)
    _VALUES.clear()
    for lr in (0.1, 0.1, 0.1, 0.05, 0.05):
        for o in (opt, ref_opt):
            o.param_groups[0]["lr"] = lr
        pb.run(opt, 1), ref.run(ref_opt, 1)
        for a, b in zip(pb.values(), ref.values()):
            assert_float32_close(a, b, RTOL)
    assert len(_VALUES) == 2


def test_apply_rule_writes_fused_results_into_their_tensors():
    """A fused item's results are written back by apply_rule itself and are the destination
    tensors (a state tensor that was None comes back new), so the optimizer's own write is a
    no-op; each written tensor's version moves by one, as one copy_ would move it."""
    from tracenn.optim._fused import apply_rule
    p = tracenn.nn.Parameter(tracenn.ones(3))
    buf = tracenn.zeros(3)
    g = tracenn.ones(3)
    coefs = F.sgd_coefs(lr=0.5, weight_decay=0, momentum=0.9, dampening=0)
    vp, vb = p._version, buf._version
    with tracenn.no_grad():
        (new_p, new_buf), = apply_rule({}, F.sgd_apply, [((p, g, buf), coefs)], nesterov=False, maximize=False)
    assert new_p is p and new_buf is buf
    assert p._version == vp + 1 and buf._version == vb + 1 and g._version == 0
    assert p.tolist() == pytest.approx([0.5] * 3) and buf.tolist() == pytest.approx([1.0] * 3)
    with tracenn.no_grad():  # no state yet: the buffer is a new tensor
        (same_p, first_buf), = apply_rule({}, F.sgd_apply, [((p, g, None), coefs)], nesterov=False,
                                          maximize=False)
    assert same_p is p and first_buf is not None and first_buf.tolist() == pytest.approx([1.0] * 3)
