"""Rprop, ASGD, Adafactor (and SparseAdam's refusal): trajectories and state against torch (one
row per configuration), steps computed by hand in NumPy, state dicts both ways, torch's argument
errors, and a compiled whole training step equal to the eager one, step for step."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from helpers import state_to_lib as _to_lib, to_np, two_groups as _two_groups

STEPS = 8

CASES = [
    ("Rprop", dict()),
    ("Rprop", dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.2))),
    ("Rprop", dict(lr=0.05, maximize=True)),
    ("ASGD", dict()),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.5, t0=3, weight_decay=0.1)),  # averaging from step 4
    ("ASGD", dict(lr=0.05, t0=0, maximize=True)),
    ("Adafactor", dict()),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-6, 1e-2), d=1.5, weight_decay=0.1)),
    ("Adafactor", dict(lr=0.05, maximize=True)),
]
STATE_KEYS = {"Rprop": [["step", "prev", "step_size"]] * 2,
              "ASGD": [["step", "eta", "mu", "ax"]] * 2,
              "Adafactor": [["step", "row_var", "col_var"], ["step", "variance"]]}


def _ids(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("foreach", [None, False], ids=["fused", "loop"])
@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trajectory_and_state_match_torch(case, foreach, torch, problem, traj_close, float32_close):
    name, kw = case
    ours, theirs = problem(tracenn), problem(torch)
    opt = getattr(tracenn.optim, name)(ours.params, foreach=foreach, **kw)
    ref = getattr(torch.optim, name)(theirs.params, **kw)
    traj_close(ours.run(opt, STEPS), theirs.run(ref, STEPS))
    for i, (p, q) in enumerate(zip(ours.params, theirs.params)):
        s, t = opt.state[p], ref.state[q]
        assert list(s) == list(t) == STATE_KEYS[name][i]
        for key in t:
            float32_close(to_np(s[key]), to_np(t[key]), err_msg=key)
            assert tuple(s[key].shape) == tuple(t[key].shape) and str(s[key].dtype)[8:] == str(t[key].dtype)[6:]


@pytest.mark.parametrize("name", ["Rprop", "ASGD", "Adafactor"])
def test_param_groups_with_own_options_and_missing_grads(name, torch, problem, traj_close):
    kw = dict(t0=2) if name == "ASGD" else {}
    group_kw = dict(lr=0.1, weight_decay=0.05) if name != "Rprop" else dict(lr=0.1, etas=(0.4, 1.1))
    skip = {1: (0,), 2: (0,), 4: (1,)}
    runs = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        opt = getattr(lib.optim, name)([{"params": [pb.params[0]]}, {"params": [pb.params[1]], **group_kw}],
                                       lr=0.02, **kw)
        runs.append(pb.run(opt, STEPS, skip_at=skip))
    traj_close(*runs)


@pytest.mark.parametrize("name", ["Rprop", "ASGD"])
def test_capturable_runs_the_tensor_form(name, torch, problem, traj_close):
    """capturable=True keeps the scalar state as tensors and does its math as tensor ops."""
    kw = dict(t0=3, lambd=0.01) if name == "ASGD" else {}
    ours, theirs = problem(tracenn), problem(torch)
    opt = getattr(tracenn.optim, name)(ours.params, capturable=True, **kw)
    ref = getattr(torch.optim, name)(theirs.params, **kw)
    traj_close(ours.run(opt, STEPS), theirs.run(ref, STEPS), rtol=1e-5)
    for p, q in zip(ours.params, theirs.params):
        for key, t in ref.state[q].items():
            np.testing.assert_allclose(to_np(opt.state[p][key]), to_np(t), rtol=1e-5, atol=1e-6, err_msg=key)


# ---- steps by hand (no torch needed) -----------------------------------------------------------------

def test_rprop_grows_shrinks_and_clamps_the_step_size():
    w = nn.Parameter(tracenn.tensor([1.0, -2.0, 0.5, 3.0]))
    opt = tracenn.optim.Rprop([w], lr=0.1, etas=(0.5, 2.0), step_sizes=(0.04, 0.3))
    grads = [[1.0, 1.0, 0.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, -1.0]]
    p, prev, size = np.array([1.0, -2.0, 0.5, 3.0]), np.zeros(4), np.full(4, 0.1)
    for g in grads:
        w.grad = tracenn.tensor(g)
        opt.step()
        g = np.array(g)
        s = np.sign(g * prev)
        size = np.clip(size * np.where(s > 0, 2.0, np.where(s < 0, 0.5, 1.0)), 0.04, 0.3)
        g = np.where(s < 0, 0.0, g)
        p, prev = p - np.sign(g) * size, g
        np.testing.assert_allclose(w.tolist(), p, rtol=1e-6)
        np.testing.assert_allclose(opt.state[w]["step_size"].tolist(), size, rtol=1e-6)
        np.testing.assert_allclose(opt.state[w]["prev"].tolist(), prev)
    assert opt.state[w]["step_size"].tolist() == pytest.approx([0.3, 0.04, 0.3, 0.3])  # clamped to [0.04, 0.3]
    assert opt.state[w]["step"].item() == 4.0


def test_asgd_averages_the_iterates_after_t0():
    """lambd = 0 keeps eta = lr; ax is the last iterate until step t0 + 1, then the mean of the
    iterates from step t0 + 2 on (mu = 1 / max(1, t - t0) is the weight of the next one)."""
    w = nn.Parameter(tracenn.tensor([1.0, -2.0]))
    opt = tracenn.optim.ASGD([w], lr=0.1, lambd=0.0, t0=2)
    iterates = []
    for k in range(6):
        w.grad = tracenn.tensor([1.0, -0.5]) * (k + 1)
        opt.step()
        iterates.append(np.array(w.tolist()))
    np.testing.assert_allclose(opt.state[w]["ax"].tolist(), np.mean(iterates[3:], axis=0), rtol=1e-6)
    assert opt.state[w]["mu"].item() == pytest.approx(1 / 4)   # 1 / max(1, t - t0), t = 6
    assert opt.state[w]["eta"].item() == pytest.approx(0.1)


def test_asgd_eta_decays_as_lr_over_a_power_of_the_step():
    w = nn.Parameter(tracenn.tensor([1.0]))
    opt = tracenn.optim.ASGD([w], lr=0.5, lambd=0.2, alpha=0.75)
    p = 1.0
    for t in range(1, 4):
        eta = opt.state[w]["eta"].item() if t > 1 else 0.5
        w.grad = tracenn.tensor([2.0])
        opt.step()
        p = p * (1 - 0.2 * eta) - eta * 2.0
        assert w.item() == pytest.approx(p, rel=1e-6)
        assert opt.state[w]["eta"].item() == pytest.approx(0.5 / (1 + 0.2 * 0.5 * t) ** 0.75, rel=1e-6)


def _adafactor_numpy(p, grads, lr, beta2_decay=-0.8, eps1=np.finfo(np.float32).eps, eps2=1e-3, d=1.0):
    """Adafactor's rule in float64 NumPy (a 2-D parameter: factored second moment)."""
    row, col = np.zeros((p.shape[0], 1)), np.zeros((1, p.shape[1]))
    for t, g in enumerate(grads, 1):
        w = t ** beta2_decay
        rho = min(lr, 1 / np.sqrt(t))
        alpha = max(eps2, np.sqrt(np.mean(p * p))) * rho
        row += w * ((g * g).mean(-1, keepdims=True) - row)
        col += w * ((g * g).mean(-2, keepdims=True) - col)
        v = row @ col / max(row.mean(), eps1)
        u = g / np.sqrt(np.maximum(v, eps1 * eps1))
        p = p - alpha / max(1.0, np.sqrt(np.mean(u * u)) / d) * u
    return p, row, col


def test_adafactor_matches_its_formula_in_numpy():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(4)]
    w = nn.Parameter(tracenn.tensor(p0))
    opt = tracenn.optim.Adafactor([w], lr=0.3, d=1.2)
    for g in grads:
        w.grad = tracenn.tensor(g)
        opt.step()
    p, row, col = _adafactor_numpy(p0.astype(np.float64), [g.astype(np.float64) for g in grads], lr=0.3, d=1.2)
    np.testing.assert_allclose(to_np(w), p, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_np(opt.state[w]["row_var"]), row, rtol=1e-5)
    np.testing.assert_allclose(to_np(opt.state[w]["col_var"]), col, rtol=1e-5)


def test_adafactor_first_step_on_a_vector_is_rms_times_rho_times_sign():
    w = nn.Parameter(tracenn.tensor([3.0, -4.0, 0.0, 1.0]))
    opt = tracenn.optim.Adafactor([w], lr=0.1)
    w.grad = tracenn.tensor([2.0, -0.5, 1.0, 0.25])
    opt.step()
    rms = np.sqrt((9 + 16 + 0 + 1) / 4)
    np.testing.assert_allclose(w.tolist(), [3.0 - 0.1 * rms, -4.0 + 0.1 * rms, -0.1 * rms, 1.0 - 0.1 * rms], rtol=1e-6)
    np.testing.assert_allclose(opt.state[w]["variance"].tolist(), [4.0, 0.25, 1.0, 0.0625])


# ---- state dicts -------------------------------------------------------------------------------------

CONFIGS = [("Rprop", dict(lr=0.05)), ("ASGD", dict(lr=0.05, t0=2)), ("Adafactor", dict(lr=0.05))]


@pytest.mark.parametrize("name, kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_state_dict_layout_matches_torch(name, kw, torch, problem):
    dicts = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        opt = _two_groups(lib, pb, name, kw)
        pb.run(opt, 2)
        dicts.append(opt.state_dict())
    ours, theirs = dicts
    assert list(ours["state"]) == list(theirs["state"]) == [0, 1]
    for i in (0, 1):
        assert list(ours["state"][i]) == list(theirs["state"][i])
        for key, t in theirs["state"][i].items():
            s = ours["state"][i][key]
            assert tuple(s.shape) == tuple(t.shape) and s.dtype.name == str(t.dtype)[6:], key
    assert ours["param_groups"] == theirs["param_groups"]


@pytest.mark.parametrize("name, kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_torch_state_dict_loads_and_continues_as_torch(name, kw, torch, problem, traj_close):
    """Three steps in torch, its state dict loaded into tracenn: the next steps are torch's."""
    theirs = problem(torch)
    ref = _two_groups(torch, theirs, name, kw)
    theirs.run(ref, 3)
    ours = problem(tracenn, init=theirs.values())
    ours.k = 3
    opt = _two_groups(tracenn, ours, name, kw)
    opt.load_state_dict(_to_lib(tracenn, ref.state_dict()))
    traj_close(ours.run(opt, 4), theirs.run(ref, 4))


@pytest.mark.parametrize("name, kw", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_resume_equals_an_uninterrupted_run(name, kw, problem):
    full = problem(tracenn)
    expected = full.run(_two_groups(tracenn, full, name, kw), 7)
    first = problem(tracenn)
    opt = _two_groups(tracenn, first, name, kw)
    first.run(opt, 3)
    values, state = pickle.loads(pickle.dumps((first.values(), opt.state_dict())))
    second = problem(tracenn, init=values)
    second.k = 3
    opt2 = _two_groups(tracenn, second, name, kw)
    opt2.load_state_dict(state)
    for a_step, b_step in zip(second.run(opt2, 4), expected[3:]):
        for a, b in zip(a_step, b_step):
            np.testing.assert_array_equal(a, b)


# ---- errors ------------------------------------------------------------------------------------------

def _p():
    return [nn.Parameter(tracenn.ones(2))]


@pytest.mark.parametrize("make, message", [
    (lambda: tracenn.optim.Rprop(_p(), lr=-1.0), "Invalid learning rate: -1.0"),
    (lambda: tracenn.optim.Rprop(_p(), etas=(1.2, 0.5)), "Invalid eta values: 1.2, 0.5"),
    (lambda: tracenn.optim.Rprop(_p(), lr=tracenn.tensor([0.1, 0.2])), "Tensor lr must be 1-element"),
    (lambda: tracenn.optim.ASGD(_p(), lr=-0.5), "Invalid learning rate: -0.5"),
    (lambda: tracenn.optim.ASGD(_p(), weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda: tracenn.optim.Adafactor(_p(), lr=-1), "Learning rate should be >= 0 but is: -1"),
    (lambda: tracenn.optim.Adafactor(_p(), beta2_decay=0.5), "beta2_decay should be <= 0 but is: 0.5"),
    (lambda: tracenn.optim.Adafactor(_p(), eps=(-1.0, 1e-3)), "epsilon1 should be >= 0 but is: -1.0"),
    (lambda: tracenn.optim.Adafactor(_p(), eps=(None, -1.0)), "epsilon2 should be >= 0 but is: -1.0"),
    (lambda: tracenn.optim.Adafactor(_p(), d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
    (lambda: tracenn.optim.Adafactor(_p(), weight_decay=-0.1), "weight_decay should be >= 0 but is: -0.1"),
    (lambda: tracenn.optim.SparseAdam(_p(), lr=0.0), "Invalid learning rate: 0.0"),
    (lambda: tracenn.optim.SparseAdam(_p(), eps=0.0), "Invalid epsilon value: 0.0"),
    (lambda: tracenn.optim.SparseAdam(_p(), betas=(0.9, 1.0)), "Invalid beta parameter at index 1: 1.0"),
])
def test_bad_arguments_raise_torchs_errors(make, message):
    with pytest.raises(ValueError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        make()


def test_bad_arguments_raise_as_in_torch(torch):
    """The same bad arguments, in torch: the same error types and messages."""
    q = [torch.nn.Parameter(torch.ones(2))]
    for make, message in [(lambda: torch.optim.Rprop(q, etas=(1.2, 0.5)), "Invalid eta values: 1.2, 0.5"),
                          (lambda: torch.optim.Adafactor(q, d=0.5), "Clipping threshold d should be >= 1 but is: 0.5"),
                          (lambda: torch.optim.SparseAdam(q, lr=0.0), "Invalid learning rate: 0.0")]:
        with pytest.raises(ValueError, match=message):
            make()


def test_differentiable_is_refused():
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        tracenn.optim.Rprop(_p(), differentiable=True)
    with pytest.raises(NotImplementedError, match="differentiable=True is not supported"):
        tracenn.optim.ASGD(_p(), differentiable=True)


def test_adafactor_refuses_complex_parameters():
    w = nn.Parameter(tracenn.ones(2, dtype=tracenn.complex64))
    opt = tracenn.optim.Adafactor([w])
    w.grad = tracenn.ones(2, dtype=tracenn.complex64)
    with pytest.raises(RuntimeError, match="Adafactor does not support complex parameters"):
        opt.step()


def test_sparse_adam_refuses_dense_gradients_as_torch():
    emb = nn.Embedding(10, 3)  # (sparse=False: a dense gradient; tests/sparse/test_embedding_grads.py steps sparse ones)
    opt = tracenn.optim.SparseAdam(emb.parameters(), lr=0.01)
    before = emb.weight.tolist()
    opt.step()  # no gradient yet: nothing to refuse
    emb(tracenn.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="^SparseAdam does not support dense gradients, please consider Adam "
                                           "instead$"):
        opt.step()
    assert emb.weight.tolist() == before
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["maximize"] is False


def test_sparse_adam_in_torch_refuses_a_dense_gradient_too(torch):
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SparseAdam([w])
    w.grad = torch.ones(3)
    message = "^SparseAdam does not support dense gradients, please consider Adam instead$"
    with pytest.raises(RuntimeError, match=message):
        opt.step()


# ---- a compiled whole training step ----------------------------------------------------------------

def _net():
    tracenn.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.LayerNorm(16), nn.Linear(16, 3))


def _step_fn(m, o):
    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss
    return step


def _data(n=5, seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(8, 6, generator=g), tracenn.randint(0, 3, (8,), generator=g)) for _ in range(n)]


COMPILED = {
    "rprop": lambda p: tracenn.optim.Rprop(p, lr=0.01),
    "rprop_maximize": lambda p: tracenn.optim.Rprop(p, lr=0.01, etas=(0.4, 1.3), maximize=True),
    "asgd": lambda p: tracenn.optim.ASGD(p, lr=0.05, lambd=0.01, t0=2, weight_decay=0.01),
    "asgd_capturable": lambda p: tracenn.optim.ASGD(p, lr=0.05, t0=2, capturable=True),
    "adafactor": lambda p: tracenn.optim.Adafactor(p, lr=0.05, weight_decay=0.01),
}


@pytest.mark.parametrize("name", list(COMPILED))
def test_compiled_step_equals_eager_step_for_step(name):
    (me, mc) = _net(), _net()
    oe, oc = COMPILED[name](me.parameters()), COMPILED[name](mc.parameters())
    eager, compiled = _step_fn(me, oe), tracenn.compile(_step_fn(mc, oc))
    for x, y in _data():
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-5, atol=1e-6)
    for (n, a), b in zip(me.named_parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=n)
        assert list(oc.state[b]) == list(oe.state[a])
        for k, v in oe.state[a].items():
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(v), rtol=1e-4, atol=2e-6, err_msg=f"{n} {k}")
    assert len(compiled._entries) <= 2  # the first step (it makes the state), then every later one
    # the 0-d states hold one array for all parameters, as eager steps leave them
    for key in type(oc)._scalar_state:
        assert len({id(st[key]._value) for st in oc.state.values()}) == 1, key


def test_compiled_asgd_follows_a_scheduled_learning_rate_without_recompiling():
    """ASGD reads lr when it makes eta at each step: a scheduler's new lr is a program input."""
    pair = []
    for _ in range(2):
        m = _net()
        o = tracenn.optim.ASGD(m.parameters(), lr=0.1, lambd=0.05, t0=1)
        pair.append((m, o, tracenn.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)))
    (me, oe, se), (mc, oc, sc) = pair

    def with_sched(m, o, s):
        def step(x, y):
            o.zero_grad()
            loss = F.cross_entropy(m(x), y)
            loss.backward()
            o.step()
            s.step()
            return loss
        return step

    eager, compiled = with_sched(me, oe, se), tracenn.compile(with_sched(mc, oc, sc))
    for x, y in _data(5):
        eager(x, y), compiled(x, y)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6)
        for k in ("eta", "mu", "ax"):
            np.testing.assert_allclose(to_np(oc.state[b][k]), to_np(oe.state[a][k]), rtol=1e-4, atol=2e-6, err_msg=k)
    assert len(compiled._entries) == 2
