"""Muon (torch.optim.Muon): trajectories against torch for each option, steps by hand in NumPy
(the Newton–Schulz iteration in bfloat16, rounded as torch rounds it), torch's argument errors,
state dicts both ways, and a compiled whole training step equal to the eager one, step for step.

torch orthogonalises in bfloat16: each matrix product is summed in float32 and rounded once to
bfloat16. A different float32 summation order (XLA's, oneDNN's) can flip a rounding now and then,
and the iteration spreads a flip over the matrix as one-ulp bfloat16 changes. So the comparisons
ask that nearly every element agree to float32 rounding and that the rest differ by at most a few
bfloat16 ulps of the update (``_assert_muon_close``).
"""
from __future__ import annotations

import math
import pickle

import ml_dtypes
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from helpers import state_to_lib as _to_lib, to_np

STEPS = 5
SHAPES = ((6, 10), (10, 6), (8, 8), (3, 12))  # wide, tall (transposed inside), square
_rng = np.random.default_rng(7)
P0 = [_rng.standard_normal(s).astype(np.float32) for s in SHAPES]
GRADS = [[_rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(STEPS + 4)]
NS = (3.4445, -4.7750, 2.0315)
BF16 = ml_dtypes.bfloat16


# ---- a NumPy reference of torch's rule -----------------------------------------------------------

def _np_lerp(start, end, w):
    """torch.lerp on float32 arrays (its two formulas, switching at |w| = 0.5)."""
    w = np.float32(w)
    if abs(w) < 0.5:
        return (start + w * (end - start)).astype(np.float32)
    return (end - (end - start) * (np.float32(1) - w)).astype(np.float32)


def np_newton_schulz(g, coefs=NS, steps=5, eps=1e-7):
    """torch's bfloat16 iteration: every op computes in float32 and rounds to bfloat16 once."""
    a, b, c = (np.float32(v) for v in coefs)
    tall = g.shape[0] > g.shape[1]
    x = g.astype(BF16).T if tall else g.astype(BF16)
    norm = np.sqrt(np.sum(np.square(x.astype(np.float32)), dtype=np.float32))
    norm = np.float32(max(norm, np.float32(eps))).astype(BF16)
    x = (x.astype(np.float32) / norm.astype(np.float32)).astype(BF16)
    for _ in range(steps):
        xf = x.astype(np.float32)
        gram = (xf @ xf.T).astype(BF16).astype(np.float32)
        update = (b * gram + c * (gram @ gram)).astype(BF16).astype(np.float32)
        x = (a * xf + update @ xf).astype(BF16)
    return (x.T if tall else x).astype(np.float32)


def np_muon_step(p, g, buf, *, lr, weight_decay=0.1, momentum=0.95, nesterov=True, adjust_lr_fn=None, **ns):
    """One step of torch's Muon on float32 arrays: returns ``(new_p, new_buf)``."""
    buf = _np_lerp(buf, g, 1 - momentum)
    update = _np_lerp(g, buf, momentum) if nesterov else buf
    o = np_newton_schulz(update, **ns)
    rows, cols = p.shape
    ratio = 0.2 * math.sqrt(max(rows, cols)) if adjust_lr_fn == "match_rms_adamw" else math.sqrt(max(1, rows / cols))
    p = (p * np.float32(1 - lr * weight_decay)).astype(np.float32)
    return (p - np.float32(lr * ratio) * o).astype(np.float32), buf


def _assert_muon_close(got, want, lr_adj, err_msg=""):
    """Nearly every element equal to float32 rounding; the others within a few bfloat16 ulps of
    an orthogonalised update (whose entries stay below 1.5) times the adjusted learning rate."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff = np.abs(got - want)
    close = diff <= 2e-6 * max(1.0, float(np.abs(want).max()))
    assert close.mean() >= 0.9, f"{err_msg}: only {close.mean():.0%} of the elements agree, max diff {diff.max()}"
    assert diff.max() <= lr_adj * 1.5 * 2 ** -5, f"{err_msg}: max diff {diff.max()}"


def _lr_adj(kw, shape):
    rows, cols = shape
    lr = float(kw.get("lr", 1e-3))
    if kw.get("adjust_lr_fn") == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr * math.sqrt(max(1, rows / cols))


def _run(lib, kw, steps=STEPS, dtype="float32", shapes=SHAPES, lr_tensor=False):
    """``steps`` Muon steps on the SHAPES parameters with the fixed GRADS; returns the parameter
    values after each step and the optimizer."""
    params = [lib.nn.Parameter(lib.tensor(p.copy(), dtype=getattr(lib, dtype))) for p in P0[:len(shapes)]]
    if lr_tensor:
        kw = dict(kw, lr=lib.tensor(kw["lr"]))
    opt = lib.optim.Muon(params, **kw)
    traj = []
    for k in range(steps):
        for p, g in zip(params, GRADS[k]):
            p.grad = lib.tensor(g.copy(), dtype=getattr(lib, dtype))
        opt.step()
        traj.append([to_np(p).astype(np.float32) for p in params])
    return traj, opt, params


# ---- against torch ------------------------------------------------------------------------------

CASES = [
    dict(lr=0.02),
    dict(lr=0.02, nesterov=False),
    dict(lr=0.05, weight_decay=0.0, adjust_lr_fn="match_rms_adamw"),
    dict(lr=0.05, weight_decay=0.01, adjust_lr_fn="original"),
    dict(lr=0.03, momentum=0.5),    # torch's lerp switches formula at weight 0.5
    dict(lr=0.03, momentum=0.0, nesterov=False),
    dict(lr=0.03, momentum=0.9, ns_steps=3, ns_coefficients=(2.0, -1.5, 0.5), eps=1e-3),
]


@pytest.mark.parametrize("kw", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in CASES])
def test_trajectory_matches_torch(kw, torch):
    ours, opt, params = _run(tracenn, kw)
    want, ref, ref_params = _run(torch, kw)
    for k, (a_step, b_step) in enumerate(zip(ours, want)):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            _assert_muon_close(a, b, _lr_adj(kw, SHAPES[i]), err_msg=f"step {k + 1}, param {i}")
    for p, q in zip(params, ref_params):
        np.testing.assert_allclose(to_np(opt.state[p]["momentum_buffer"]), to_np(ref.state[q]["momentum_buffer"]),
                                   rtol=1e-5, atol=1e-6)


def test_a_larger_matrix_matches_torch_to_bfloat16_rounding(torch):
    """(48, 32): float32 summation orders differ more often over longer sums, and the
    differences stay a bfloat16 ulp or two of the update."""
    rng = np.random.default_rng(3)
    p0, grads = rng.standard_normal((48, 32)).astype(np.float32), rng.standard_normal((3, 48, 32)).astype(np.float32)
    out = []
    for lib in (tracenn, torch):
        p = lib.nn.Parameter(lib.tensor(p0.copy()))
        opt = lib.optim.Muon([p], lr=0.02)
        for g in grads:
            p.grad = lib.tensor(g.copy())
            opt.step()
        out.append(to_np(p))
    diff = np.abs(out[0] - out[1])
    assert diff.max() <= 0.02 * math.sqrt(48 / 32) * 1.5 * 2 ** -5 * 3


def test_newton_schulz_matches_torch_bit_for_bit_on_small_matrices(torch):
    from torch.optim._muon import _zeropower_via_newtonschulz as torch_ns
    from tracenn.optim.muon import zeropower_via_newtonschulz
    rng = np.random.default_rng(0)
    for shape in ((4, 4), (3, 7), (7, 3), (8, 12)):
        g = rng.standard_normal(shape).astype(np.float32)
        got = zeropower_via_newtonschulz(tracenn.tensor(g), NS, 5, 1e-7)
        assert got.dtype == tracenn.bfloat16
        want = torch_ns(torch.tensor(g), NS, 5, 1e-7)
        np.testing.assert_array_equal(to_np(got.float()), want.float().numpy())


def test_tensor_lr_matches_torch(torch):
    kw = dict(lr=0.02, weight_decay=0.05)
    ours, _, _ = _run(tracenn, kw, lr_tensor=True)
    want, _, _ = _run(torch, kw, lr_tensor=True)
    for a_step, b_step in zip(ours, want):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            _assert_muon_close(a, b, _lr_adj(kw, SHAPES[i]))


def test_changing_lr_between_steps_matches_torch(torch):
    out = []
    for lib in (tracenn, torch):
        p = lib.nn.Parameter(lib.tensor(P0[0].copy()))
        opt = lib.optim.Muon([p], lr=0.05)
        for k in range(4):
            opt.param_groups[0]["lr"] = 0.05 / (k + 1)
            p.grad = lib.tensor(GRADS[k][0].copy())
            opt.step()
        out.append(to_np(p))
    _assert_muon_close(out[0], out[1], 0.05)


@pytest.mark.parametrize("dtype", ["float64", "bfloat16"])
def test_other_parameter_dtypes_match_torch(dtype, torch):
    """The iteration is bfloat16 whatever the parameter's dtype; the buffer and the update keep
    the parameter's."""
    kw = dict(lr=0.02)
    ours, opt, params = _run(tracenn, kw, steps=3, dtype=dtype)
    want, _, _ = _run(torch, kw, steps=3, dtype=dtype)
    assert opt.state[params[0]]["momentum_buffer"].dtype == getattr(tracenn, dtype)
    for a_step, b_step in zip(ours, want):
        for i, (a, b) in enumerate(zip(a_step, b_step)):
            if dtype == "bfloat16":  # a bfloat16 parameter rounds each step: a flip is one ulp of p
                np.testing.assert_allclose(a, b, rtol=2 ** -7, atol=_lr_adj(kw, SHAPES[i]) * 2 ** -4)
            else:
                _assert_muon_close(a, b, _lr_adj(kw, SHAPES[i]))


def test_repr_and_state_dict_layout_match_torch(torch):
    kw = dict(lr=0.02, adjust_lr_fn="match_rms_adamw")
    _, ours, _ = _run(tracenn, kw, steps=2)
    _, theirs, _ = _run(torch, kw, steps=2)
    assert repr(ours) == repr(theirs)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert list(a["state"]) == list(b["state"]) == [0, 1, 2, 3]
    for i in a["state"]:
        assert list(a["state"][i]) == list(b["state"][i]) == ["momentum_buffer"]
        assert tuple(a["state"][i]["momentum_buffer"].shape) == tuple(b["state"][i]["momentum_buffer"].shape)


def test_resume_from_a_torch_state_dict_and_back(torch):
    """torch runs 2 steps; its state resumes in tracenn, which matches torch continuing on its
    own; tracenn's state then resumes in torch."""
    kw = dict(lr=0.02, momentum=0.9)
    ref_params = [torch.nn.Parameter(torch.tensor(p.copy())) for p in P0]
    ref = torch.optim.Muon(ref_params, **kw)

    def run(params, opt, ks):
        lib = tracenn if isinstance(params[0], tracenn.Tensor) else torch
        for k in ks:
            for p, g in zip(params, GRADS[k]):
                p.grad = lib.tensor(g.copy())
            opt.step()

    run(ref_params, ref, range(2))
    params = [tracenn.nn.Parameter(tracenn.tensor(to_np(p).copy())) for p in ref_params]
    opt = tracenn.optim.Muon(params, lr=0.5)
    opt.load_state_dict(_to_lib(tracenn, ref.state_dict()))
    assert opt.param_groups[0]["lr"] == 0.02
    run(params, opt, range(2, 4))
    run(ref_params, ref, range(2, 4))
    for i, (p, q) in enumerate(zip(params, ref_params)):
        _assert_muon_close(to_np(p), to_np(q), _lr_adj(kw, SHAPES[i]) * 2)
        np.testing.assert_allclose(to_np(opt.state[p]["momentum_buffer"]), to_np(ref.state[q]["momentum_buffer"]),
                                   rtol=1e-5, atol=1e-6)

    back_params = [torch.nn.Parameter(torch.tensor(to_np(p).copy())) for p in params]
    back = torch.optim.Muon(back_params, **kw)
    back.load_state_dict(_to_lib(torch, opt.state_dict()))
    run(back_params, back, range(4, 6))
    run(params, opt, range(4, 6))
    for i, (p, q) in enumerate(zip(params, back_params)):
        _assert_muon_close(to_np(p), to_np(q), _lr_adj(kw, SHAPES[i]) * 2)


ERRORS = [
    (dict(lr=-0.1), ValueError, "Learning rate should be >= 0 but is: -0.1"),
    (dict(momentum=-0.5), ValueError, "momentum should be >= 0 but is: -0.5"),
    (dict(weight_decay=-1.0), ValueError, "weight decay should be >= 0 but is: -1.0"),
    (dict(adjust_lr_fn="sqrt"), ValueError, "Adjust learning rate function sqrt is not supported"),
    (dict(maximize=True), TypeError, "unexpected keyword argument 'maximize'"),
    (dict(foreach=True), TypeError, "unexpected keyword argument 'foreach'"),
]


@pytest.mark.parametrize("kw, err, msg", ERRORS, ids=[next(iter(e[0])) for e in ERRORS])
def test_constructor_errors_as_torch(kw, err, msg, lib):
    with pytest.raises(err, match=msg.replace("(", r"\(")):
        lib.optim.Muon([lib.nn.Parameter(lib.ones(2, 2))], **kw)


def test_tensor_lr_must_have_one_element(lib):
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        lib.optim.Muon([lib.nn.Parameter(lib.ones(2, 2))], lr=lib.tensor([0.1, 0.2]))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()])
def test_only_2d_parameters(shape, lib):
    with pytest.raises(ValueError, match=r"Muon only supports 2D parameters whereas we found a parameter "
                                         r"with size: \w+\.Size\(\[" + ", ".join(map(str, shape))):
        lib.optim.Muon([lib.nn.Parameter(lib.ones(2, 2)), lib.nn.Parameter(lib.ones(shape))])


@pytest.mark.parametrize("kw, msg", [(dict(ns_steps=100), "Number of steps must be less than 100"),
                                     (dict(ns_coefficients=(1.0, 2.0)), "Coefficients must be a tuple of exactly 3")])
def test_bad_newton_schulz_options_fail_at_step(kw, msg, lib):
    p = lib.nn.Parameter(lib.ones(2, 3))
    opt = lib.optim.Muon([p], **kw)  # accepted here, as torch does
    p.grad = lib.ones(2, 3)
    with pytest.raises(ValueError, match=msg):
        opt.step()


def test_a_1d_parameter_added_later_fails_at_step(lib):
    opt = lib.optim.Muon([lib.nn.Parameter(lib.ones(2, 2))])
    b = lib.nn.Parameter(lib.ones(3))
    opt.add_param_group({"params": [b]})
    b.grad = lib.ones(3)
    with pytest.raises(ValueError, match="Param gradient must be a 2D matrix"):
        opt.step()


def test_complex_parameters_fail_at_step(lib):
    p = lib.nn.Parameter(lib.ones(2, 2, dtype=lib.complex64))
    opt = lib.optim.Muon([p])
    p.grad = lib.ones(2, 2, dtype=lib.complex64)
    with pytest.raises(RuntimeError, match="Muon does not support complex parameters"):
        opt.step()


# ---- without torch: NumPy by hand, known values --------------------------------------------------

@pytest.mark.parametrize("kw", [dict(lr=0.02), dict(lr=0.05, nesterov=False, weight_decay=0.0),
                                dict(lr=0.05, momentum=0.5, adjust_lr_fn="match_rms_adamw"),
                                dict(lr=0.05, ns_steps=2, ns_coefficients=(1.5, -0.5, 0.0))])
def test_two_steps_by_hand(kw):
    ours, opt, params = _run(tracenn, kw, steps=2)
    ns = {k: kw[k] for k in ("ns_steps", "ns_coefficients") if k in kw}
    ns = {"steps": ns.get("ns_steps", 5), "coefs": ns.get("ns_coefficients", NS)}
    rule = {k: v for k, v in kw.items() if k not in ("ns_steps", "ns_coefficients")}
    for i, shape in enumerate(SHAPES):
        p, buf = P0[i], np.zeros(shape, np.float32)
        for k in range(2):
            p, buf = np_muon_step(p, GRADS[k][i], buf, **rule, **ns)
            _assert_muon_close(ours[k][i], p, _lr_adj(kw, shape), err_msg=f"step {k + 1}, param {i}")
        np.testing.assert_allclose(to_np(opt.state[params[i]]["momentum_buffer"]), buf, rtol=1e-6, atol=1e-7)


def test_newton_schulz_by_hand_bit_for_bit():
    from tracenn.optim.muon import zeropower_via_newtonschulz
    rng = np.random.default_rng(1)
    for shape in ((4, 4), (3, 7), (7, 3)):
        g = rng.standard_normal(shape).astype(np.float32)
        got = to_np(zeropower_via_newtonschulz(tracenn.tensor(g), NS, 5, 1e-7).float())
        np.testing.assert_array_equal(got, np_newton_schulz(g))


def test_newton_schulz_is_nearly_orthogonal():
    """Its singular values land near 1 (Keller Jordan's coefficients: roughly in [0.5, 1.5])."""
    from tracenn.optim.muon import zeropower_via_newtonschulz
    g = np.random.default_rng(2).standard_normal((16, 24)).astype(np.float32)
    o = to_np(zeropower_via_newtonschulz(tracenn.tensor(g), NS, 5, 1e-7).float())
    s = np.linalg.svd(o, compute_uv=False)
    assert s.min() > 0.5 and s.max() < 1.5
    # the singular vectors are g's: o = U f(S) V^T
    u, _, vt = np.linalg.svd(g, full_matrices=False)
    np.testing.assert_allclose(u @ np.diag(s) @ vt, o, atol=0.35)
    assert np.abs(np.diag(u.T @ o @ vt.T)).min() > 0.5


def test_a_zero_gradient_only_decays():
    """norm 0 is clamped to eps: the update is zero and the weight decay alone acts."""
    p = tracenn.nn.Parameter(tracenn.ones(2, 3))
    opt = tracenn.optim.Muon([p], lr=0.1)
    p.grad = tracenn.zeros(2, 3)
    opt.step()
    np.testing.assert_allclose(to_np(p), np.full((2, 3), 0.99, np.float32), rtol=1e-7)


def test_an_orthogonal_gradient_gives_lr_times_its_nearly_fixed_point():
    """For g = I (all singular values 1) the iteration maps 1 -> f(f(...)) on the diagonal, a
    number NumPy computes in a line: the step is -lr * that on the diagonal and 0 elsewhere."""
    p = tracenn.nn.Parameter(tracenn.zeros(3, 3))
    opt = tracenn.optim.Muon([p], lr=0.1, weight_decay=0.0, nesterov=False, momentum=0.0)
    p.grad = tracenn.eye(3)
    opt.step()
    s = np_newton_schulz(np.eye(3, dtype=np.float32))[0, 0]
    assert 0.6 < s < 1.2
    np.testing.assert_array_equal(to_np(p), np.float32(-0.1) * np.float32(s) * np.eye(3, dtype=np.float32))


def test_state_is_made_on_the_first_step_and_params_without_grad_are_skipped():
    a, b = tracenn.nn.Parameter(tracenn.ones(2, 2)), tracenn.nn.Parameter(tracenn.ones(2, 2))
    opt = tracenn.optim.Muon([a, b])
    assert opt.defaults == {"lr": 1e-3, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
                            "ns_coefficients": NS, "eps": 1e-7, "ns_steps": 5, "adjust_lr_fn": None}
    a.grad = tracenn.ones(2, 2)
    opt.step()
    assert list(opt.state) == [a] and list(opt.state[a]) == ["momentum_buffer"]
    np.testing.assert_array_equal(to_np(b), np.ones((2, 2), np.float32))


def test_resume_equals_an_uninterrupted_run():
    """Save after 2 steps (pickled), rebuild, load, run 3 more: bit-identical to 5 steps."""
    kw = dict(lr=0.02)
    full, _, _ = _run(tracenn, kw, steps=5)
    first, opt, params = _run(tracenn, kw, steps=2)
    values, state = pickle.loads(pickle.dumps(([to_np(p) for p in params], opt.state_dict())))
    params2 = [tracenn.nn.Parameter(tracenn.tensor(v.copy())) for v in values]
    opt2 = tracenn.optim.Muon(params2, lr=0.3)
    opt2.load_state_dict(state)
    for k in range(2, 5):
        for p, g in zip(params2, GRADS[k]):
            p.grad = tracenn.tensor(g.copy())
        opt2.step()
        for a, b in zip(params2, full[k]):
            np.testing.assert_array_equal(to_np(a), b)


# ---- a compiled training step ---------------------------------------------------------------------

def _net():
    tracenn.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False))


def _data(n=5, seed=1):
    g = tracenn.Generator().manual_seed(seed)
    return [(tracenn.randn(8, 6, generator=g), tracenn.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def _step_fn(m, o, sched=None):
    def step(x, y):
        o.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        if sched is not None:
            sched.step()
        return loss
    return step


@pytest.mark.parametrize("kw", [dict(lr=0.05), dict(lr=0.05, nesterov=False, adjust_lr_fn="match_rms_adamw"),
                                dict(lr=0.05, momentum=0.0, weight_decay=0.0)])
@pytest.mark.parametrize("scheduled", [False, True], ids=["", "StepLR"])
def test_compiled_step_equals_eager_step_for_step(kw, scheduled):
    """zero_grad, forward, backward and Muon's step in one compiled program: the same losses,
    weights and momentum buffers as eager steps; with a StepLR halving lr every 2 steps, the new
    lr is an input (no recompile)."""
    (me, mc) = _net(), _net()
    oe, oc = tracenn.optim.Muon(me.parameters(), **kw), tracenn.optim.Muon(mc.parameters(), **kw)
    se, sc = ((tracenn.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in (oe, oc)) if scheduled
              else (None, None))
    eager, compiled = _step_fn(me, oe, se), tracenn.compile(_step_fn(mc, oc, sc))
    for x, y in _data():
        le, lc = eager(x, y), compiled(x, y)
        np.testing.assert_allclose(to_np(lc), to_np(le), rtol=2e-5, atol=1e-6)
        for (n, a), b in zip(me.named_parameters(), mc.parameters()):
            np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=1e-6, err_msg=n)
            np.testing.assert_allclose(to_np(oc.state[b]["momentum_buffer"]), to_np(oe.state[a]["momentum_buffer"]),
                                       rtol=1e-5, atol=1e-7, err_msg=n)
    assert oc.param_groups[0]["lr"] == oe.param_groups[0]["lr"] == (0.05 / 4 if scheduled else 0.05)
    assert len(compiled._entries) <= 2  # the first step (it makes the state), then every later one


def test_compiled_step_matches_torch(torch):
    """The compiled step against torch's eager Muon on the same net, weights and data."""
    mc = _net()
    oc = tracenn.optim.Muon(mc.parameters(), lr=0.05)
    compiled = tracenn.compile(_step_fn(mc, oc))
    tm = torch.nn.Sequential(torch.nn.Linear(6, 16, bias=False), torch.nn.ReLU(), torch.nn.Linear(16, 3, bias=False))
    with torch.no_grad():
        for q, p in zip(tm.parameters(), mc.parameters()):
            q.copy_(torch.tensor(to_np(p).copy()))
    to = torch.optim.Muon(tm.parameters(), lr=0.05)
    for x, y in _data(3):
        compiled(x, y)
        to.zero_grad()
        torch.nn.functional.cross_entropy(tm(torch.tensor(to_np(x))), torch.tensor(to_np(y))).backward()
        to.step()
    for p, q in zip(mc.parameters(), tm.parameters()):
        _assert_muon_close(to_np(p), to_np(q), 0.05 * 4 * 3)
