"""Optimizers: trajectories against torch (one row per configuration), hand-computed steps, the
Optimizer base class's behaviour and its error messages."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest

import tracenn
from helpers import to_np

STEPS = 8

# (optimizer, options): every row runs STEPS steps in tracenn and torch on the same problem.
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.1)),
    ("Adam", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.3, 0.9), maximize=True)),  # lerp weight >= 0.5
    ("Adam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("AdamW", dict(lr=0.1)),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.3, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1, momentum=0.5, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.1)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.5, weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=0.05)),
    ("Adamax", dict(lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
    ("NAdam", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01)),
    ("NAdam", dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.05)),  # rho_t crosses 5 at step 6: both branches
    ("RAdam", dict(lr=0.05, betas=(0.9, 0.99), weight_decay=0.1, decoupled_weight_decay=True)),
]
STATE_KEYS = {
    "SGD": {"momentum_buffer"}, "Adam": {"step", "exp_avg", "exp_avg_sq"}, "AdamW": {"step", "exp_avg", "exp_avg_sq"},
    "RMSprop": {"step", "square_avg"}, "Adagrad": {"step", "sum"}, "Adadelta": {"step", "square_avg", "acc_delta"},
    "Adamax": {"step", "exp_avg", "exp_inf"}, "NAdam": {"step", "mu_product", "exp_avg", "exp_avg_sq"},
    "RAdam": {"step", "exp_avg", "exp_avg_sq"},
}


def _ids(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_matches_torch(case, torch, problem, traj_close, float32_close):
    name, kw = case
    ours, theirs = problem(tracenn), problem(torch)
    opt = getattr(tracenn.optim, name)(ours.params, **kw)
    ref = getattr(torch.optim, name)(theirs.params, **kw)
    traj_close(ours.run(opt, STEPS), theirs.run(ref, STEPS))
    # the state too, key by key
    for p, q in zip(ours.params, theirs.params):
        s, t = opt.state[p], ref.state[q]
        assert set(s) == set(t)
        for key in t:
            float32_close(to_np(s[key]), to_np(t[key]), err_msg=key)
            assert tuple(s[key].shape) == tuple(t[key].shape) and str(s[key].dtype)[8:] == str(t[key].dtype)[6:]


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "NAdam", "RAdam"])
def test_param_groups_with_own_options_and_missing_grads(name, torch, problem, traj_close):
    """Per-group options, and a parameter whose grad is None on some steps (skipped, its state
    and step count lag behind, as torch)."""
    kw = dict(lr=0.02, momentum=0.9) if name in ("SGD", "RMSprop") else dict(lr=0.02)
    skip = {1: (0,), 2: (0,), 4: (1,)}
    runs = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        opt = getattr(lib.optim, name)([{"params": [pb.params[0]]},
                                        {"params": [pb.params[1]], "lr": 0.1, "weight_decay": 0.05}], **kw)
        runs.append(pb.run(opt, STEPS, skip_at=skip))
    traj_close(*runs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "NAdam", "Adagrad", "Rprop", "ASGD", "Adafactor"])
def test_tensor_lr_and_changing_lr(name, torch, problem, traj_close):
    """A tensor lr, changed between steps in place, gives torch's trajectory."""
    runs = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        lr = lib.tensor(0.05)
        opt = getattr(lib.optim, name)(pb.params, lr=lr)
        traj = []
        for k in range(5):
            traj += pb.run(opt, 1)
            lr.fill_(0.05 / (k + 2))
        runs.append(traj)
    traj_close(*runs)


def test_one_element_lr_tensor_is_squeezed(torch):
    outs = []
    for lib in (tracenn, torch):
        p = lib.nn.Parameter(lib.tensor(2.0))
        opt = lib.optim.Adam([p], lr=lib.tensor([0.1]))
        p.grad = lib.tensor(1.0)
        opt.step()
        outs.append((tuple(p.shape), p.item()))
    assert outs[0][0] == outs[1][0] == () and outs[0][1] == pytest.approx(outs[1][1], rel=1e-6)


def test_a_user_defined_optimizer():
    """The base class serves custom optimizers as torch's does: param_groups, state, state_dict."""
    class SignSGD(tracenn.optim.Optimizer):
        def __init__(self, params, lr=0.1):
            super().__init__(params, {"lr": lr})

        @tracenn.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        state = self.state[p]
                        state["steps"] = state.get("steps", 0) + 1
                        p.sub_(p.grad.sign() * group["lr"])

    p = tracenn.nn.Parameter(tracenn.tensor([1.0, -1.0]))
    opt = SignSGD([p], lr=0.25)
    for _ in range(2):
        p.grad = tracenn.tensor([3.0, -0.5])
        opt.step()
    assert p.tolist() == [0.5, -0.5]
    assert opt.state_dict() == {"state": {0: {"steps": 2}}, "param_groups": [{"lr": 0.25, "params": [0]}]}


@pytest.mark.parametrize("name, kw", [("Adam", dict(lr=0.05, amsgrad=True)), ("NAdam", dict(lr=0.05)),
                                      ("RAdam", dict(lr=0.05)), ("Adamax", dict(lr=0.05)),
                                      ("RMSprop", dict(lr=0.01, centered=True))])
def test_capturable_runs_the_tensor_form(name, kw, torch, problem, traj_close, monkeypatch):
    """capturable=True keeps step (and mu_product) as tensors: the scalar math becomes tensor
    ops in float32 (torch's capturable form), still close to torch's default run."""
    ours, theirs = problem(tracenn), problem(torch)
    opt = getattr(tracenn.optim, name)(ours.params, capturable=True, **kw)
    ref = getattr(torch.optim, name)(theirs.params, **kw)
    expected = theirs.run(ref, STEPS)

    def no_host_reads(*args):
        raise AssertionError("a capturable step read a value back from the device")

    monkeypatch.setattr(tracenn.Tensor, "item", no_host_reads)
    got = ours.run(opt, STEPS)
    monkeypatch.undo()
    traj_close(got, expected, rtol=2e-5)
    assert opt.state[ours.params[0]]["step"].item() == STEPS


def test_sgd_on_a_linear_model_with_autograd(torch):
    """The usual loop (zero_grad, forward, backward, step) on nn.Linear, against torch."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 2)).astype(np.float32)
    w0, b0 = rng.standard_normal((2, 4)).astype(np.float32), rng.standard_normal(2).astype(np.float32)
    losses = []
    for lib in (tracenn, torch):
        m = lib.nn.Linear(4, 2)
        with lib.no_grad():
            m.weight.copy_(lib.tensor(w0))
            m.bias.copy_(lib.tensor(b0))
        opt = lib.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, nesterov=True)
        X, Y = lib.tensor(x), lib.tensor(y)
        run = []
        for _ in range(5):
            opt.zero_grad()
            loss = ((m(X) - Y) ** 2).mean()
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses.append((run, to_np(m.weight)))
    np.testing.assert_allclose(losses[0][0], losses[1][0], rtol=1e-5)
    np.testing.assert_allclose(losses[0][1], losses[1][1], rtol=1e-5, atol=1e-6)
    assert losses[0][0][-1] < losses[0][0][0]


# ---- LBFGS ----------------------------------------------------------------------------------------

def _lbfgs_run(lib, dtype, rosenbrock=True, **kw):
    x = lib.nn.Parameter(lib.tensor([-1.5, 2.0], dtype=getattr(lib, dtype)))
    opt = lib.optim.LBFGS([x], **kw)

    def closure():
        opt.zero_grad()
        if rosenbrock:
            loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        else:
            loss = (x[0] - 1) ** 2 + 3 * (x[1] + 0.5) ** 2 + x[0] * x[1]
        loss.backward()
        return loss

    out = []
    for _ in range(3):
        loss = opt.step(closure)
        out.append((loss.item(), to_np(x).copy()))
    return out, opt


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe", history_size=5),
                                dict(lr=0.5, max_iter=5)])
def test_lbfgs_matches_torch(kw, torch):
    """Rosenbrock in float64: torch's iterates, 60 evaluations deep. (This ill-conditioned problem
    amplifies last-bit differences of dot products: ~1e-7 after 60 float64 evaluations, and too
    much in float32, which the next test covers on a well-conditioned problem.)"""
    ours, opt = _lbfgs_run(tracenn, "float64", **kw)
    theirs, ref = _lbfgs_run(torch, "float64", **kw)
    for (la, xa), (lb, xb) in zip(ours, theirs):
        assert la == pytest.approx(lb, rel=1e-6, abs=1e-12)
        np.testing.assert_allclose(xa, xb, rtol=1e-6, atol=1e-12)
    s, t = opt.state[opt._params[0]], ref.state[ref._params[0]]
    assert set(s) == set(t) and s["func_evals"] == t["func_evals"] and s["n_iter"] == t["n_iter"]


@pytest.mark.parametrize("kw", [dict(), dict(line_search_fn="strong_wolfe")])
def test_lbfgs_float32_matches_torch(kw, torch):
    ours, _ = _lbfgs_run(tracenn, "float32", rosenbrock=False, **kw)
    theirs, _ = _lbfgs_run(torch, "float32", rosenbrock=False, **kw)
    for (la, xa), (lb, xb) in zip(ours, theirs):
        assert la == pytest.approx(lb, rel=1e-5, abs=1e-6)
        np.testing.assert_allclose(xa, xb, rtol=1e-5, atol=1e-6)


def test_lbfgs_converges_on_a_quadratic():
    w = tracenn.nn.Parameter(tracenn.tensor([3.0, -1.0, 0.5]))
    opt = tracenn.optim.LBFGS([w], line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((w - tracenn.tensor([1.0, 2.0, 3.0])) ** 2 * tracenn.tensor([1.0, 10.0, 100.0])).sum()
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(to_np(w), [1.0, 2.0, 3.0], atol=1e-4)


def test_lbfgs_rejects_param_groups():
    a, b = tracenn.nn.Parameter(tracenn.zeros(1)), tracenn.nn.Parameter(tracenn.zeros(1))
    with pytest.raises(ValueError, match=r"LBFGS doesn't support per-parameter options \(parameter groups\)"):
        tracenn.optim.LBFGS([{"params": [a]}, {"params": [b]}])


# ---- hand-computed values (no torch needed) -------------------------------------------------------

def test_sgd_momentum_by_hand():
    """p=1, grad = 2p (loss p^2), lr=0.1, momentum=0.9, dampening=0.5:
    step 1: b = 2;              p = 1 - 0.2 = 0.8
    step 2: b = 1.8 + 0.5*1.6 = 2.6;  p = 0.8 - 0.26 = 0.54
    step 3: b = 2.34 + 0.5*1.08 = 2.88; p = 0.54 - 0.288 = 0.252"""
    p = tracenn.nn.Parameter(tracenn.tensor([1.0]))
    opt = tracenn.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
    got = []
    for _ in range(3):
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()
        got.append((p.item(), opt.state[p]["momentum_buffer"].item()))
    np.testing.assert_allclose(got, [(0.8, 2.0), (0.54, 2.6), (0.252, 2.88)], rtol=1e-6)


def test_adam_by_hand():
    """Adam with lr=0.1, betas=(0.5, 0.75), eps=0, constant grad g:
    step t: m_t = g (1 - 0.5^t), v_t = g^2 (1 - 0.75^t): the bias corrections make
    m_hat / sqrt(v_hat) = sign(g), so every step moves p by exactly -lr * sign(g)."""
    p = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    opt = tracenn.optim.Adam([p], lr=0.1, betas=(0.5, 0.75), eps=0.0)
    for t in (1, 2, 3):
        p.grad = tracenn.tensor([0.5, -4.0])
        opt.step()
        np.testing.assert_allclose(to_np(p), [1.0 - 0.1 * t, -2.0 + 0.1 * t], rtol=1e-6)
        st = opt.state[p]
        assert st["step"].item() == t
        np.testing.assert_allclose(to_np(st["exp_avg"]), np.array([0.5, -4.0]) * (1 - 0.5 ** t), rtol=1e-6)
        np.testing.assert_allclose(to_np(st["exp_avg_sq"]), np.array([0.25, 16.0]) * (1 - 0.75 ** t), rtol=1e-6)


def test_adam_first_step_with_eps_by_hand():
    """First Adam step: m = 0.1 g, v = 0.001 g^2; p -= lr * g / (|g| + eps)."""
    p = tracenn.nn.Parameter(tracenn.tensor([0.0]))
    opt = tracenn.optim.Adam([p], lr=1.0, eps=0.5)
    p.grad = tracenn.tensor([2.0])
    opt.step()
    assert p.item() == pytest.approx(-2.0 / 2.5, rel=1e-6)


# ---- Optimizer base class -------------------------------------------------------------------------

def test_step_keeps_parameter_and_state_identity():
    p = tracenn.nn.Parameter(tracenn.ones(3))
    opt = tracenn.optim.Adam([p], lr=0.1)
    p.grad = tracenn.ones(3)
    opt.step()
    st = dict(opt.state[p])
    ver = p._version
    p.grad = tracenn.ones(3)
    opt.step()
    assert all(opt.state[p][k] is v for k, v in st.items())
    assert opt.param_groups[0]["params"][0] is p and p.is_leaf and p.requires_grad and p._version > ver
    assert p.grad_fn is None


def test_params_without_grad_are_skipped_and_get_no_state():
    a, b = tracenn.nn.Parameter(tracenn.ones(2)), tracenn.nn.Parameter(tracenn.ones(2))
    opt = tracenn.optim.Adam([a, b])
    a.grad = tracenn.ones(2)
    opt.step()
    assert b not in opt.state and b.tolist() == [1.0, 1.0] and a.tolist() != [1.0, 1.0]


def test_zero_grad(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    (p * 3).sum().backward()
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and p.grad.tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert p.grad is None


def test_zero_grad_detaches_a_grad_with_history(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.1)
    q = lib.ones(2, requires_grad=True)
    p.grad = q * 2
    opt.zero_grad(set_to_none=False)
    assert not p.grad.requires_grad and p.grad.grad_fn is None and p.grad.tolist() == [0.0, 0.0]


def test_step_with_closure_runs_it_with_grad_enabled(lib):
    p = lib.nn.Parameter(lib.ones(2))
    opt = lib.optim.SGD([p], lr=0.5)
    seen = []

    def closure():
        seen.append(lib.is_grad_enabled())
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with lib.no_grad():
        loss = opt.step(closure)
    assert seen == [True] and loss.item() == 2.0 and p.tolist() == [0.0, 0.0]


def test_named_parameters_give_param_names(lib):
    m = lib.nn.Linear(2, 1)
    opt = lib.optim.SGD(m.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight", "bias"]
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without names. "
                                         "cannot add param group without names to the optimizer"):
        opt.add_param_group({"params": [lib.nn.Parameter(lib.ones(1))]})


def test_add_param_group_takes_defaults(lib):
    a, b = lib.nn.Parameter(lib.ones(1)), lib.nn.Parameter(lib.ones(1))
    opt = lib.optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    g = opt.param_groups[1]
    assert g["params"][0] is b and g["lr"] == 0.5 and g["momentum"] == 0.9 and g["nesterov"] is False


def test_repr_matches_torch(torch):
    reprs = []
    for lib in (tracenn, torch):
        opt = lib.optim.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1, momentum=0.9)
        opt.add_param_group({"params": [lib.nn.Parameter(lib.ones(1))], "lr": 0.2})
        reprs.append(repr(opt) + repr(lib.optim.Adam([lib.nn.Parameter(lib.ones(1))])))
    assert reprs[0] == reprs[1]


def test_step_hooks(lib):
    p = lib.nn.Parameter(lib.ones(1))
    opt = lib.optim.SGD([p], lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    import importlib
    optimizer_module = importlib.import_module(lib.__name__ + ".optim.optimizer")
    h3 = optimizer_module.register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre"))
    p.grad = lib.ones(1)
    opt.step()
    h1.remove(), h2.remove(), h3.remove()
    opt.step()
    assert calls == ["global pre", "pre", "post"]


def test_state_dict_hooks(lib):
    p = lib.nn.Parameter(lib.ones(1))
    opt = lib.optim.SGD([p], lr=0.1)
    opt.register_state_dict_post_hook(lambda o, sd: {**sd, "extra": 1})
    assert opt.state_dict()["extra"] == 1
    seen = []
    opt.register_load_state_dict_pre_hook(lambda o, sd: seen.append(sorted(sd)))
    opt.register_load_state_dict_post_hook(lambda o: seen.append("post"))
    opt.load_state_dict(opt.state_dict())
    assert seen == [["extra", "param_groups", "state"], "post"]


def test_duplicate_parameters_warn(lib):
    p = lib.nn.Parameter(lib.ones(1))
    with pytest.warns(UserWarning, match="optimizer contains a parameter group with duplicate parameters"):
        lib.optim.SGD([p, p], lr=0.1)


def test_deepcopy_and_pickle_of_an_optimizer():
    import pickle
    p = tracenn.nn.Parameter(tracenn.ones(2))
    opt = tracenn.optim.Adam([p], lr=0.1)
    p.grad = tracenn.ones(2)
    opt.step()
    opt2 = pickle.loads(pickle.dumps(opt))
    assert opt2.param_groups[0]["lr"] == 0.1 and float(next(iter(opt2.state.values()))["step"]) == 1.0
    opt3 = copy.deepcopy(opt)
    assert opt3.state_dict()["state"][0]["step"].item() == 1.0


def test_pure_update_rules_trace_under_jax_jit():
    """The update rules are pure tensor functions: they run inside ``jax.jit`` on tracer-backed
    tensors (a stand-in for the whole-step compiler) and give the eager numbers."""
    import jax
    from tracenn._dispatch import LAST
    from tracenn.optim import _functional as F

    W = tracenn.Tensor._wrap

    traces = []

    def step(p, g, m, v, t, lr):
        traces.append(1)  # runs only while jax traces
        with tracenn.no_grad():
            out = F.adam(W(p), W(g), W(m), W(v), None, W(t), lr=W(lr), beta1=0.9, beta2=0.999, eps=1e-8,
                         weight_decay=0.1, amsgrad=False, maximize=False)
        return [o._value for o in out[:3]]

    p, g = tracenn.tensor([1.0, -2.0]), tracenn.tensor([0.5, 0.25])
    m, v = tracenn.zeros(2), tracenn.zeros(2)
    last = LAST[0]
    try:
        jitted = jax.jit(step)
        outs = [jitted(p._value, g._value, m._value, v._value, tracenn.tensor(float(t))._value, 0.1 / t)
                for t in (1, 2)]
    finally:
        LAST[0] = last  # the traced run left a tracer there
    eager = F.adam(p, g, m, v, None, 2, lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1,
                   amsgrad=False, maximize=False)
    np.testing.assert_allclose(np.asarray(outs[1][0]), to_np(eager[0]), rtol=1e-6)
    assert len(traces) == 1  # lr and step changed, the trace did not


# ---- errors ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kw, err, msg", [
    ("SGD", dict(lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    ("SGD", dict(lr=0.1, momentum=-1), ValueError, "Invalid momentum value: -1"),
    ("SGD", dict(lr=0.1, weight_decay=-1), ValueError, "Invalid weight_decay value: -1"),
    ("SGD", dict(lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires a momentum and zero dampening"),
    ("Adam", dict(lr=-1.0), ValueError, "Invalid learning rate: -1.0"),
    ("Adam", dict(eps=-1.0), ValueError, "Invalid epsilon value: -1.0"),
    ("Adam", dict(betas=(1.0, 0.9)), ValueError, "Invalid beta parameter at index 0: 1.0"),
    ("Adam", dict(betas=(0.9, -0.1)), ValueError, "Invalid beta parameter at index 1: -0.1"),
    ("Adam", dict(betas=(0.9, 0)), ValueError, "betas must be either both floats or both Tensors"),
    ("AdamW", dict(weight_decay=-0.1), ValueError, "Invalid weight_decay value: -0.1"),
    ("RMSprop", dict(alpha=-0.1), ValueError, "Invalid alpha value: -0.1"),
    ("Adagrad", dict(lr_decay=-0.1), ValueError, "Invalid lr_decay value: -0.1"),
    ("Adagrad", dict(initial_accumulator_value=-0.1), ValueError,
     "Invalid initial_accumulator_value value: -0.1"),
    ("Adadelta", dict(rho=1.5), ValueError, "Invalid rho value: 1.5"),
    ("NAdam", dict(momentum_decay=-0.1), ValueError, "Invalid momentum_decay value: -0.1"),
])
def test_argument_errors(lib, name, kw, err, msg):
    p = lib.nn.Parameter(lib.ones(1))
    with pytest.raises(err, match="^" + msg.replace("(", r"\(").replace(")", r"\)") + "$"):
        getattr(lib.optim, name)([p], **kw)


def test_construction_errors(lib):
    p = lib.nn.Parameter(lib.ones(1))
    with pytest.raises(ValueError, match="^optimizer got an empty parameter list$"):
        lib.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="^params argument given to the optimizer should be an iterable of Tensors "
                                        "or dicts, but got torch.FloatTensor$"):
        lib.optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="optimizer parameters need to be organized in ordered collections"):
        lib.optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(TypeError, match="^optimizer can only optimize Tensors, but one of the params is int$"):
        lib.optim.SGD([p, 3], lr=0.1)
    with pytest.raises(ValueError, match="^can't optimize a non-leaf Tensor$"):
        lib.optim.SGD([p * 2], lr=0.1)
    with pytest.raises(ValueError, match="^some parameters appear in more than one parameter group$"):
        lib.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="^param_group must be a dict, but got <class 'list'>$"):
        lib.optim.SGD([p], lr=0.1).add_param_group([p])


def test_required_option_error():
    class Opt(tracenn.optim.Optimizer):
        def __init__(self, params, lr=tracenn.optim.optimizer.required):
            super().__init__(params, {"lr": lr})

    with pytest.raises(ValueError, match="parameter group didn't specify a value of required optimization "
                                         "parameter lr"):
        Opt([tracenn.nn.Parameter(tracenn.ones(1))])
    assert repr(tracenn.optim.optimizer.required) == "<required parameter>"


def test_differentiable_is_refused():
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        tracenn.optim.Adam([tracenn.nn.Parameter(tracenn.ones(1))], differentiable=True)


def test_base_step_is_abstract():
    opt = tracenn.optim.Optimizer([tracenn.nn.Parameter(tracenn.ones(1))], {})
    with pytest.raises(NotImplementedError):
        opt.step()


def test_no_warnings_in_a_normal_loop():
    p = tracenn.nn.Parameter(tracenn.ones(2))
    opt = tracenn.optim.AdamW([p], lr=0.1)
    sched = tracenn.optim.lr_scheduler.StepLR(opt, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            opt.zero_grad()
            (p * p).sum().backward()
            opt.step()
            sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.001)
