"""Guards of a compiled call (tracenn/runtime/compiled.py): trace-counting tests for every guard.

``forward`` runs only while tracing (a compiled call runs the program), so a Python counter bumped
in ``forward`` counts traces. Each test checks the count, ``len(cm._entries)`` (the cached
programs) and the reason ``cm.explain()`` gives for each compile. No test calls the model eagerly
while counting, since that would run ``forward`` too.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
from helpers import to_np
from tracenn import nn
from tracenn.runtime.compiled import RecompileWarning


class Counted(nn.Module):
    """Linear -> activation; ``traces`` counts how often forward ran."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.counter = [0]

    def forward(self, x, scale=1.0):
        self.counter[0] += 1
        return self.act(self.fc(x)) * scale


def traces(model) -> int:
    return model.counter[0]


def eager(model, *args, **kwargs):
    """The model run eagerly, without counting."""
    before = model.counter[0]
    out = model(*args, **kwargs)
    model.counter[0] = before
    return out


def close(a, b):
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-5, atol=1e-6)


def reasons(cm) -> list[str]:
    """The 'compiled because' reason of each cached program, in order."""
    return [line.split("compiled because: ", 1)[1] for line in cm.explain().splitlines()
            if "compiled because: " in line]


@pytest.fixture
def model():
    return Counted()


@pytest.fixture
def x():
    return tracenn.randn(2, 4)


# ---- inputs --------------------------------------------------------------------------------------

def test_same_shapes_do_not_retrace(model, x):
    cm = tracenn.compile(model)
    for _ in range(3):
        cm(x)
        cm(tracenn.randn(2, 4))
    assert traces(model) == 1 and len(cm._entries) == 1
    assert reasons(cm) == ["first call"]
    assert "1. inputs (f32[2,4]); grad on;" in cm.explain() and "6 call(s)" in cm.explain()


def test_new_input_shape_recompiles_once(model, x):
    cm = tracenn.compile(model)
    cm(x)
    cm(tracenn.randn(5, 4))
    assert traces(model) == 2 and len(cm._entries) == 2
    assert reasons(cm)[1] == "input 'x' shape changed: [2, 4] -> [5, 4]"
    cm(x)
    cm(tracenn.randn(5, 4))  # both programs are kept
    assert traces(model) == 2


def test_new_input_dtype_recompiles():
    count = [0]

    def f(x):
        count[0] += 1
        return x * 2 + 1

    cm = tracenn.compile(f)
    x = tracenn.randn(3)
    cm(x)
    out = cm(x.double())
    assert out.dtype == tracenn.float64 and count[0] == 2
    assert reasons(cm)[1] == "input 'x' dtype changed: float32 -> float64"
    cm(x)
    cm(x.double())
    assert count[0] == 2 and len(cm._entries) == 2


def test_input_requires_grad_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    xg = x.clone().requires_grad_()
    cm(xg).sum().backward()
    assert traces(model) == 2
    assert reasons(cm)[1] == "input 'x' requires_grad changed: False -> True"
    assert xg.grad is not None and xg.grad.shape == (2, 4)
    cm(xg)
    cm(x)
    assert traces(model) == 2


def test_non_tensor_argument_change_recompiles(model, x):
    cm = tracenn.compile(model)
    a = cm(x, 2.0)
    b = cm(x, 3.0)
    assert traces(model) == 2
    assert reasons(cm)[1].startswith("non-tensor argument args[1] changed: 2.0 -> 3.0 (args[1] is now a program "
                                     "input (dynamic)")  # (tests/compiler/test_dynamic_floats.py)
    close(b, to_np(a) * 1.5)
    cm(x, 2.0)
    cm(x, 3.0)
    assert traces(model) == 2
    cm(x, scale=2.0)  # the same value passed by keyword is another argument structure
    assert traces(model) == 3


def test_number_of_tensor_inputs():
    count = [0]

    def f(*xs):
        count[0] += 1
        return sum(xs)

    cm = tracenn.compile(f)
    cm(tracenn.ones(2), tracenn.ones(2))
    cm(tracenn.ones(2), tracenn.ones(2), tracenn.ones(2))
    assert count[0] == 2 and "number of tensor inputs changed: 2 -> 3" in reasons(cm)[1]


# ---- modes ---------------------------------------------------------------------------------------

class Body(nn.Module):
    """BatchNorm and Dropout, which act differently in train and eval mode, with a trace counter."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Dropout(0.5))
        self.counter = [0]

    def forward(self, x):
        self.counter[0] += 1
        return self.body(x)


def test_train_eval_toggling_traces_twice_in_total(x):
    model = Body()
    cm = tracenn.compile(model)
    for _ in range(3):
        cm.train()
        cm(x)
        cm.eval()
        cm(x)
    assert traces(model) == 2 and len(cm._entries) == 2
    assert reasons(cm)[1].startswith("mode changed: train -> eval")
    assert [e.graph.mode for e in cm._entries.values()] == ["train", "eval"]
    assert int(model.body[1].num_batches_tracked) == 3  # every train call updated the buffers


def test_changing_one_submodules_mode_recompiles(x):
    model = Body()
    cm = tracenn.compile(model)
    cm(x)
    model.body[2].eval()  # dropout off, batchnorm still training
    cm(x)
    assert traces(model) == 2 and "module 'body.2' mode changed: train -> eval" in reasons(cm)[1]
    assert cm._entries[cm._last_key].graph.mode == "mixed"


def test_eval_program_matches_eager_after_training_steps(x):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    cm = tracenn.compile(model)
    for _ in range(3):
        cm(tracenn.randn(8, 4))
    model.eval()
    close(cm(x), model(x))


def test_grad_mode_has_its_own_program(model, x):
    cm = tracenn.compile(model)
    cm(x)
    with tracenn.no_grad():
        out = cm(x)
        cm(x)
    assert not out.requires_grad and traces(model) == 2
    assert reasons(cm)[1] == "grad mode changed: enabled -> no_grad"
    assert cm(x).requires_grad and traces(model) == 2


# ---- the module: hooks, structure, parameters ----------------------------------------------------

def test_adding_and_removing_a_forward_hook_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    seen = []
    handle = model.fc.register_forward_hook(lambda m, inp, out: seen.append(to_np(out)))
    out = cm(x)
    assert traces(model) == 2 and reasons(cm)[1] == "hooks on module 'fc' changed"
    cm(x)
    assert len(seen) == 2  # the hook runs on every compiled call, with real values
    np.testing.assert_allclose(seen[0], to_np(model.fc.weight @ x.T).T + to_np(model.fc.bias), rtol=1e-5,
                               atol=1e-6)
    handle.remove()
    cm(x)
    assert traces(model) == 2 and len(seen) == 2  # back to the first program, without the hook
    close(cm(x), out)


def test_forward_pre_hook_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    handle = model.act.register_forward_pre_hook(lambda m, inp: None)
    cm(x)
    assert traces(model) == 2 and reasons(cm)[1] == "hooks on module 'act' changed"
    handle.remove()
    cm(x)
    assert traces(model) == 2


def test_replacing_a_submodule_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    model.act = nn.Tanh()
    out = cm(x)
    assert traces(model) == 2 and reasons(cm)[1] == "module 'act' was replaced: ReLU -> Tanh"
    close(out, eager(model, x))
    model.fc = nn.Linear(4, 3)
    out = cm(x)
    assert traces(model) == 3 and "'fc.weight', 'fc.bias' were replaced by other tensors" == reasons(cm)[2]
    close(out, eager(model, x))


def test_adding_a_submodule_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    model.extra = nn.Linear(2, 2)  # not used by forward, but part of the structure
    cm(x)
    assert traces(model) == 2 and "module 'extra' was added" in reasons(cm)[1]


def test_replacing_a_parameter_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    model.fc.weight = nn.Parameter(tracenn.randn(3, 4))
    out = cm(x)
    assert traces(model) == 2 and reasons(cm)[1] == "'fc.weight' was replaced by another tensor"
    close(out, eager(model, x))


def test_requires_grad_false_on_a_parameter_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    model.fc.bias.requires_grad_(False)
    cm(x).sum().backward()
    assert traces(model) == 2 and reasons(cm)[1] == "'fc.bias' requires_grad changed: True -> False"
    assert model.fc.bias.grad is None and model.fc.weight.grad is not None


def test_optimizer_step_is_seen_without_retrace(model, x):
    model.act = nn.Tanh()  # never a dead ReLU: every step changes the output
    cm = tracenn.compile(model)
    opt = tracenn.optim.SGD(cm.parameters(), lr=0.5)
    for _ in range(3):
        opt.zero_grad()
        before = to_np(cm(x))
        cm(x).sum().backward()
        opt.step()
        after = cm(x)
        assert not np.allclose(before, to_np(after))
        close(after, eager(model, x))
    assert traces(model) == 1 and len(cm._entries) == 1


def test_in_place_parameter_change_is_seen_without_retrace(model, x):
    cm = tracenn.compile(model)
    cm(x)
    with tracenn.no_grad():
        model.fc.weight.mul_(0.5)
        model.fc.bias.zero_()
    close(cm(x), eager(model, x))
    model.fc.weight.data = tracenn.ones(3, 4)  # .data = with the same type: no recompile
    close(cm(x), eager(model, x))
    assert traces(model) == 1


def test_data_assignment_with_a_new_shape_recompiles(model, x):
    cm = tracenn.compile(model)
    cm(x)
    model.fc.weight.data = tracenn.ones(3, 4).double()
    with pytest.raises(RuntimeError, match="same dtype"):  # torch's error for the mixed matmul
        cm(x)
    assert traces(model) == 2


def test_load_state_dict_through_the_compiled_object(model, x):
    cm = tracenn.compile(model)
    cm(x)
    sd = {k: tracenn.full_like(v, 0.25) for k, v in model.state_dict().items()}
    cm.load_state_dict(sd)
    out = cm(x)
    assert traces(model) == 1
    close(out, eager(model, x))
    assert float(model.fc.weight[0, 0]) == 0.25


def test_buffers_written_back_equal_eager(x):
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    twin = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    twin.load_state_dict(model.state_dict())
    cm = tracenn.compile(model)
    for _ in range(2):
        cm(x)
        twin(x)
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        close(a, b)
    assert int(model[1].num_batches_tracked) == 2


# ---- the compiled object acts as the module ------------------------------------------------------

def test_compiled_object_behaves_like_the_module(model, x):
    cm = tracenn.compile(model)
    assert [p is q for p, q in zip(cm.parameters(), model.parameters())] == [True, True]
    assert list(cm.state_dict()) == list(model.state_dict()) == ["fc.weight", "fc.bias"]
    assert [n for n, _ in cm.named_parameters()] == ["fc.weight", "fc.bias"]
    assert cm.fc is model.fc and cm.training
    assert cm.eval() is cm and not model.training and not model.fc.training
    assert cm.train() is cm and model.training
    cm.tag = "set through cm"
    assert model.tag == "set through cm"
    model.fc.weight.requires_grad_(False)
    assert not cm.fc.weight.requires_grad
    assert "Linear(in_features=4, out_features=3, bias=True)" in repr(cm)


# ---- the recompile budget and explain() ----------------------------------------------------------

def test_recompile_budget_warns_past_the_limit(model):
    cm = tracenn.compile(model, cache_size_limit=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecompileWarning)
        cm(tracenn.randn(1, 4))
        cm(tracenn.randn(2, 4))
    with pytest.warns(RecompileWarning, match=r"past cache_size_limit=2 \(last reason: input 'x' shape "
                                              r"changed: \[2, 4\] -> \[3, 4\]\): this and later new input "
                                              r"signatures run eagerly \(the programs compiled so far"):
        out = cm(x3 := tracenn.randn(3, 4))
    # as torch.compile past its limit: the new signature runs eagerly (not traced), the old ones
    # keep their programs, and the warning is not repeated
    assert traces(model) == 3 and len(cm._entries) == 3 and cm._last.eager  # (the third: one eager run)
    np.testing.assert_allclose(to_np(out), to_np(eager(model, x3)), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecompileWarning)
        cm(tracenn.randn(5, 4))  # eager: forward runs
        assert traces(model) == 4 and cm._last.eager
        cm(tracenn.randn(1, 4))  # the first program
    assert traces(model) == 4 and not cm._last.eager
    # the log says which signatures run eagerly, naming inputs as the programs do (an eager entry
    # has no graph to read the names from)
    assert cm.explain().endswith(
        "log:\n  compile 1: first call\n  compile 2: input 'x' shape changed: [1, 4] -> [2, 4]\n"
        "  eager 3: input 'x' shape changed: [2, 4] -> [3, 4] (runs eagerly: past cache_size_limit)\n"
        "  eager 4: input 'x' shape changed: [3, 4] -> [5, 4] (runs eagerly: past cache_size_limit)")


def test_signatures_past_the_limit_are_not_all_kept(model):
    # a growing KV cache makes a new input shape at every call: past the limit each runs eagerly,
    # and only the latest few stay in the table (it grew by one entry per call, for ever)
    cm = tracenn.compile(model, cache_size_limit=2)
    with pytest.warns(RecompileWarning):
        for n in range(1, 21):
            x = tracenn.randn(n, 4)
            np.testing.assert_allclose(to_np(cm(x)), to_np(eager(model, x)), rtol=1e-6)
    from tracenn.runtime.compiled import _PAST_LIMIT_KEPT
    assert len(cm._entries) == 2 + _PAST_LIMIT_KEPT and traces(model) == 20
    text = cm.explain()
    assert f"  ... and {18 - _PAST_LIMIT_KEPT} more signature(s) past cache_size_limit ran eagerly" in text
    assert text.endswith("  eager 20: input 'x' shape changed: [19, 4] -> [20, 4] (runs eagerly: past "
                         "cache_size_limit)")
    cm(tracenn.randn(1, 4))  # the first program is still used
    assert traces(model) == 20 and not cm._last.eager


def test_fullgraph_compiles_on_past_the_limit_and_warns_each_time():
    cm = tracenn.compile(lambda x: x + 1, cache_size_limit=1, fullgraph=True)
    cm(tracenn.randn(1))
    for n in (2, 3):
        with pytest.warns(RecompileWarning, match="compiling it anyway"):
            cm(tracenn.randn(n))
        assert not cm._last.eager


def test_default_budget_is_eight():
    cm = tracenn.compile(lambda x: x + 1)
    assert cm.cache_size_limit == 8
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecompileWarning)
        for n in range(1, 9):
            cm(tracenn.randn(n))
    with pytest.warns(RecompileWarning, match="recompiled 9 times, past cache_size_limit=8.*cm.explain"):
        cm(tracenn.randn(9))


def test_explain_lists_guards_programs_and_reasons(model, x):
    cm = tracenn.compile(model)
    cm(x)
    cm(x)
    cm(tracenn.randn(3, 4))
    with tracenn.no_grad():
        cm(x)
    text = cm.explain()
    assert text.startswith("tracenn.compile(Counted): 3 cached program(s), cache_size_limit=8\n")
    for phrase in ("guards (a change in any of them compiles a new program):",
                   "each tensor input's shape, dtype and requires_grad", "grad mode (enabled or no_grad)",
                   "module structure: 3 module(s), their classes, train/eval flags and hooks",
                   "state identity, shape, dtype, requires_grad and gradient hooks: 2 parameter(s)/buffer(s)",
                   "programs:\n",
                   "  1. inputs (f32[2,4]); grad on; ",
                   "with backward; 2 call(s) — compiled because: first call",
                   "  2. inputs (f32[3,4]); grad on; ",
                   "compiled because: input 'x' shape changed: [2, 4] -> [3, 4]",
                   "  3. inputs (f32[2,4]); grad off; ",
                   "log:\n  compile 1: first call\n  compile 2: input 'x' shape changed"):
        assert phrase in text, phrase
    assert reasons(cm)[2] == "grad mode changed: enabled -> no_grad; input 'x' shape changed: [3, 4] -> [2, 4]"


# ---- cm.graph and recompile reasons follow the latest call ------------------------------------


def test_graph_is_the_latest_calls_program(x):
    model = Body()
    cm = tracenn.compile(model)
    cm(x)
    cm.eval()
    cm(x)
    cm.train()
    cm(x)  # a cache hit of the first program
    assert cm.graph.mode == "train"


def test_recompile_reason_compares_with_the_latest_call(x):
    model = Body()
    cm = tracenn.compile(model)
    cm(x)
    cm.eval()
    cm(x)
    cm.train()
    cm(x)  # a cache hit of the first program
    cm(tracenn.randn(3, 4))
    assert reasons(cm)[2] == "input 'x' shape changed: [2, 4] -> [3, 4]"


def test_recompile_reasons_name_optimizer_options_and_autocast(x):
    """Each part of a step's structure key has its own words (these once all read "global module
    hooks changed")."""
    import tracenn.nn.functional as F
    lin = nn.Linear(4, 2)
    opt = tracenn.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)

    @tracenn.compile
    def step(x):
        opt.zero_grad()
        loss = F.mse_loss(lin(x), tracenn.zeros(2, 2))
        loss.backward()
        opt.step()
        return loss

    step(x), step(x)
    opt.param_groups[0]["momentum"] = 0.5  # a program input (schedulers cycle it): no recompile
    step(x)
    n = len(step._entries)
    opt.param_groups[0]["dampening"] = 0.1
    step(x)
    assert len(step._entries) == n + 1
    assert reasons(step)[-1] == "optimizer options changed"
    with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
        step(x)
    assert reasons(step)[-1].startswith("autocast changed: ")

    model = Body()
    cm = tracenn.compile(model)
    cm(x)
    with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
        cm(x)
    assert reasons(cm)[-1] == "autocast changed: off -> to bfloat16"
