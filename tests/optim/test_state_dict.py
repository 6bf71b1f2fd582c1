"""Optimizer state dicts: torch's layout, resuming a run exactly, moving state between tracenn and
torch, and load_state_dict's checks."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import tracenn
from helpers import state_to_lib as _to_lib, to_np, two_groups as _two_groups

CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.05, amsgrad=True)),
    ("AdamW", dict(lr=0.05)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adadelta", dict(lr=0.5)),
    ("Adamax", dict(lr=0.05)),
    ("NAdam", dict(lr=0.05)),
    ("RAdam", dict(lr=0.05)),
]
IDS = [c[0] for c in CONFIGS]


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_layout_matches_torch(name, kw, torch, problem):
    dicts = []
    for lib in (tracenn, torch):
        pb = problem(lib)
        opt = _two_groups(lib, pb, name, kw)
        pb.run(opt, 2)
        dicts.append(opt.state_dict())
    ours, theirs = dicts
    assert list(ours) == list(theirs) == ["state", "param_groups"]
    assert list(ours["state"]) == list(theirs["state"]) == [0, 1]
    for i in (0, 1):
        assert list(ours["state"][i]) == list(theirs["state"][i])
        for key, t in theirs["state"][i].items():
            s = ours["state"][i][key]
            assert tuple(s.shape) == tuple(t.shape) and s.dtype.name == str(t.dtype)[6:], key
    assert ours["param_groups"] == theirs["param_groups"]  # every option, and 'params': [0] / [1]
    assert [g["params"] for g in ours["param_groups"]] == [[0], [1]]


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_resume_equals_an_uninterrupted_run(name, kw, problem):
    """Save after 3 steps, rebuild everything, load, run 4 more: bit-identical to 7 steps."""
    full = problem(tracenn)
    expected = full.run(_two_groups(tracenn, full, name, kw), 7)

    first = problem(tracenn)
    opt = _two_groups(tracenn, first, name, kw)
    first.run(opt, 3)
    saved = pickle.dumps((first.values(), opt.state_dict()))  # a checkpoint, as bytes

    values, state = pickle.loads(saved)
    second = problem(tracenn, init=values)
    second.k = 3
    opt2 = _two_groups(tracenn, second, name, kw)
    opt2.load_state_dict(state)
    got = second.run(opt2, 4)
    for a_step, b_step in zip(got, expected[3:]):
        for a, b in zip(a_step, b_step):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, kw", CONFIGS, ids=IDS)
def test_resume_from_a_torch_state_dict(name, kw, torch, problem, traj_close):
    """torch runs 3 steps; its state (converted to tracenn tensors) resumes in tracenn, and the
    rest of the run matches torch continuing on its own. And the other way round."""
    ref = problem(torch)
    ref_opt = _two_groups(torch, ref, name, kw)
    ref.run(ref_opt, 3)
    ours = problem(tracenn, init=ref.values())
    ours.k = 3
    opt = _two_groups(tracenn, ours, name, kw)
    opt.load_state_dict(_to_lib(tracenn, ref_opt.state_dict()))
    traj_close(ours.run(opt, 4), ref.run(ref_opt, 4))

    back = problem(torch, init=ours.values())
    back.k = ours.k
    back_opt = _two_groups(torch, back, name, kw)
    back_opt.load_state_dict(_to_lib(torch, opt.state_dict()))
    traj_close(back.run(back_opt, 2), ours.run(opt, 2))


def test_load_restores_options_keeps_params_and_copies_state(problem):
    pb = problem(tracenn)
    opt = tracenn.optim.Adam(pb.params, lr=0.1)
    pb.run(opt, 2)
    sd = opt.state_dict()
    assert sd["state"][0]["exp_avg"] is opt.state[pb.params[0]]["exp_avg"]  # live, as torch

    other = problem(tracenn)
    opt2 = tracenn.optim.Adam(other.params, lr=0.5, betas=(0.5, 0.6))
    opt2.load_state_dict(sd)
    g = opt2.param_groups[0]
    assert g["lr"] == 0.1 and g["betas"] == (0.9, 0.999) and g["params"][0] is other.params[0]
    st = opt2.state[other.params[0]]
    assert st["exp_avg"] is not sd["state"][0]["exp_avg"]  # a copy: the optimizers never share state
    np.testing.assert_array_equal(to_np(st["exp_avg"]), to_np(sd["state"][0]["exp_avg"]))
    assert st["step"].item() == 2.0


def test_load_casts_state_to_the_parameter_dtype_but_not_step(problem):
    pb = problem(tracenn)
    opt = tracenn.optim.Adam(pb.params, lr=0.1)
    pb.run(opt, 1)
    sd = copy.deepcopy(opt.state_dict())
    sd["state"][0]["exp_avg"] = sd["state"][0]["exp_avg"].double()
    sd["state"][0]["step"] = sd["state"][0]["step"].double()
    opt.load_state_dict(sd)
    st = opt.state[pb.params[0]]
    assert st["exp_avg"].dtype == tracenn.float32 and st["step"].dtype == tracenn.float64


def test_old_state_dicts_with_number_steps_are_upgraded(problem):
    pb = problem(tracenn)
    opt = tracenn.optim.Adam(pb.params, lr=0.1)
    pb.run(opt, 2)
    sd = copy.deepcopy(opt.state_dict())
    for s in sd["state"].values():
        s["step"] = 2
    opt.load_state_dict(sd)
    step = opt.state[pb.params[0]]["step"]
    assert isinstance(step, tracenn.Tensor) and step.dtype == tracenn.float32 and step.item() == 2.0
    pb.run(opt, 1)
    assert step.item() == 3.0


def test_editing_step_in_place_is_seen_by_the_next_step():
    """The host mirror of ``step`` notices in-place changes (it checks the version counter)."""
    p = tracenn.nn.Parameter(tracenn.ones(1))
    opt = tracenn.optim.Adam([p], lr=0.1)
    p.grad = tracenn.ones(1)
    opt.step()
    opt.state[p]["step"].fill_(10.0)
    p.grad = tracenn.ones(1)
    opt.step()
    assert opt.state[p]["step"].item() == 11.0


def test_lbfgs_state_round_trip(torch):
    def closure_for(lib, x, opt):
        def closure():
            opt.zero_grad()
            loss = ((x - 1.0) ** 2 * lib.tensor([1.0, 4.0], dtype=x.dtype)).sum() + x.prod()
            loss.backward()
            return loss
        return closure

    x = tracenn.nn.Parameter(tracenn.tensor([2.0, -1.0], dtype=tracenn.float64))
    opt = tracenn.optim.LBFGS([x], max_iter=3)
    opt.step(closure_for(tracenn, x, opt))
    sd = opt.state_dict()
    assert list(sd["state"]) == [0] and {"d", "t", "old_dirs", "old_stps", "ro", "H_diag", "prev_flat_grad",
                                          "prev_loss", "func_evals", "n_iter"} <= set(sd["state"][0])
    y = torch.nn.Parameter(torch.tensor(to_np(x).copy()))
    ref = torch.optim.LBFGS([y], max_iter=3)
    ref.load_state_dict(_to_lib(torch, sd))
    opt.step(closure_for(tracenn, x, opt))
    ref.step(closure_for(torch, y, ref))
    np.testing.assert_allclose(to_np(x), to_np(y), rtol=1e-9)


def test_load_errors(lib):
    a, b = lib.nn.Parameter(lib.ones(1)), lib.nn.Parameter(lib.ones(1))
    one = lib.optim.SGD([a, b], lr=0.1)
    two = lib.optim.SGD([{"params": [a]}, {"params": [b]}], lr=0.1)
    with pytest.raises(ValueError, match="^loaded state dict has a different number of parameter groups$"):
        one.load_state_dict(two.state_dict())
    three = lib.optim.SGD([{"params": [a, b]}, {"params": [lib.nn.Parameter(lib.ones(1))]}], lr=0.1)
    four = lib.optim.SGD([{"params": [a]}, {"params": [b, lib.nn.Parameter(lib.ones(1))]}], lr=0.1)
    with pytest.raises(ValueError, match="^loaded state dict contains a parameter group that doesn't match the "
                                         "size of optimizer's group$"):
        three.load_state_dict(four.state_dict())
