"""tracenn.nn.utils.prune: masks, reparametrisation and state dicts against torch, iterative
pruning (PruningContainer), remove, torch's argument errors, and pruned models under
tracenn.compile (inference and a whole training step)."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.nn.utils import prune
from helpers import to_np

_rng = np.random.default_rng(3)
# distinct magnitudes (no ties, so topk picks the same entries as torch's)
W_LIN = (_rng.permutation(24).reshape(6, 4) + 1).astype(np.float32) * np.float32(0.05) * \
    _rng.choice([-1, 1], (6, 4)).astype(np.float32)
W_CONV = _rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
X = _rng.standard_normal((5, 4)).astype(np.float32)


def _linear(lib):
    m = lib.nn.Linear(4, 6)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(W_LIN))
        m.bias.copy_(lib.tensor(np.linspace(-1, 1, 6, dtype=np.float32)))
    return m


def _conv(lib):
    m = lib.nn.Conv2d(3, 4, 2)
    with lib.no_grad():
        m.weight.copy_(lib.tensor(W_CONV))
        m.bias.zero_()
    return m


def _both(make, apply):
    """``apply(lib, module)`` on the same module in tracenn and torch (skips without torch)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("torch.nn.utils.prune")  # (a submodule torch.nn.utils does not import)
    out = []
    for lib in (tracenn, torch):
        m = make(lib)
        apply(lib, m)
        out.append(m)
    return out


def _assert_same_pruning(ours, theirs, names=("weight",)):
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    for key, t in theirs.state_dict().items():
        np.testing.assert_array_equal(to_np(ours.state_dict()[key]), to_np(t), err_msg=key)
    for name in names:
        np.testing.assert_array_equal(to_np(getattr(ours, name)), to_np(getattr(theirs, name)), err_msg=name)


PRUNINGS = {
    "l1_count": lambda lib, m: lib.nn.utils.prune.l1_unstructured(m, "weight", amount=7),
    "l1_fraction": lambda lib, m: lib.nn.utils.prune.l1_unstructured(m, "weight", amount=0.4),
    "l1_bias": lambda lib, m: lib.nn.utils.prune.l1_unstructured(m, "bias", amount=2),
    "ln2_rows": lambda lib, m: lib.nn.utils.prune.ln_structured(m, "weight", amount=2, n=2, dim=0),
    "ln1_cols": lambda lib, m: lib.nn.utils.prune.ln_structured(m, "weight", amount=0.5, n=1, dim=1),
    "lninf_last": lambda lib, m: lib.nn.utils.prune.ln_structured(m, "weight", amount=1, n=float("inf"), dim=-1),
    "identity": lambda lib, m: lib.nn.utils.prune.identity(m, "weight"),
    "custom": lambda lib, m: lib.nn.utils.prune.custom_from_mask(
        m, "weight", mask=lib.tensor((np.arange(24).reshape(6, 4) % 3 != 0).astype(np.float32))),
    "importance": lambda lib, m: lib.nn.utils.prune.l1_unstructured(
        m, "weight", amount=5, importance_scores=lib.tensor(np.arange(24, 0, -1, dtype=np.float32).reshape(6, 4))),
}


@pytest.mark.parametrize("name", list(PRUNINGS))
def test_masks_state_dict_and_forward_match_torch(name):
    ours, theirs = _both(_linear, lambda lib, m: PRUNINGS[name](lib, m))
    pruned = "bias" if name == "l1_bias" else "weight"
    _assert_same_pruning(ours, theirs, names=(pruned,))
    torch = pytest.importorskip("torch")
    a, b = ours(tracenn.tensor(X)), theirs(torch.tensor(X))
    np.testing.assert_allclose(to_np(a), to_np(b), rtol=1e-6, atol=1e-6)
    a.sum().backward()
    b.sum().backward()
    g_ours, g_theirs = getattr(ours, pruned + "_orig").grad, getattr(theirs, pruned + "_orig").grad
    np.testing.assert_allclose(to_np(g_ours), to_np(g_theirs), rtol=1e-6, atol=1e-6)  # zero where pruned


def test_conv_structured_pruning_matches_torch():
    ours, theirs = _both(_conv, lambda lib, m: lib.nn.utils.prune.ln_structured(m, "weight", amount=2, n=2, dim=0))
    _assert_same_pruning(ours, theirs)
    per_channel = to_np(ours.weight_mask).reshape(4, -1)
    assert (per_channel.min(1) == per_channel.max(1)).all()  # whole output channels


def test_iterative_pruning_combines_masks_as_torch():
    def apply(lib, m):
        p = lib.nn.utils.prune
        p.l1_unstructured(m, "weight", amount=5)
        p.ln_structured(m, "weight", amount=1, n=2, dim=0)
        p.l1_unstructured(m, "weight", amount=0.25)  # a quarter of what is left
        p.ln_structured(m, "weight", amount=1, n=1, dim=1)
    ours, theirs = _both(_linear, apply)
    _assert_same_pruning(ours, theirs)
    hooks = list(ours._forward_pre_hooks.values())
    assert len(hooks) == 1 and isinstance(hooks[0], prune.PruningContainer) and len(hooks[0]) == 4
    assert [type(h).__name__ for h in hooks[0]] == ["L1Unstructured", "LnStructured", "L1Unstructured", "LnStructured"]


def test_global_unstructured_matches_torch():
    def make(lib):
        torch_like = lib.nn.Sequential(_linear(lib), lib.nn.ReLU(), lib.nn.Linear(6, 3))
        with lib.no_grad():
            torch_like[2].weight.copy_(lib.tensor(np.linspace(-0.7, 0.9, 18, dtype=np.float32).reshape(3, 6)))
            torch_like[2].bias.zero_()
        return torch_like

    def apply(lib, m):
        lib.nn.utils.prune.l1_unstructured(m[0], "weight", amount=3)  # an earlier mask is kept
        lib.nn.utils.prune.global_unstructured([(m[0], "weight"), (m[2], "weight")],
                                               pruning_method=lib.nn.utils.prune.L1Unstructured, amount=0.3)
    ours, theirs = _both(make, apply)
    for i in (0, 2):
        _assert_same_pruning(ours[i], theirs[i])
    total = sum(int(to_np(getattr(ours[i], "weight_mask")).size - to_np(ours[i].weight_mask).sum()) for i in (0, 2))
    assert total == 3 + round(0.3 * (42 - 3))  # 30% of the entries the earlier mask kept


def test_remove_makes_the_pruning_permanent_as_torch():
    def apply(lib, m):
        lib.nn.utils.prune.l1_unstructured(m, "weight", amount=6)
        lib.nn.utils.prune.ln_structured(m, "weight", amount=1, n=2, dim=1)
        lib.nn.utils.prune.remove(m, "weight")
    ours, theirs = _both(_linear, apply)
    _assert_same_pruning(ours, theirs)
    assert isinstance(ours.weight, nn.Parameter) and not prune.is_pruned(ours)
    assert list(ours.state_dict()) == ["bias", "weight"] and not ours._forward_pre_hooks  # (re-registered last)
    assert int((to_np(ours.weight) == 0).sum()) >= 6


def test_torch_state_dict_of_a_pruned_model_loads_into_a_pruned_model(torch):
    pytest.importorskip("torch.nn.utils.prune")
    theirs = _linear(torch)
    torch.nn.utils.prune.l1_unstructured(theirs, "weight", amount=9)
    ours = prune.identity(nn.Linear(4, 6), "weight")
    ours.load_state_dict({k: tracenn.tensor(to_np(v)) for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(to_np(ours(tracenn.tensor(X))), to_np(theirs(torch.tensor(X))), rtol=1e-6, atol=1e-6)


# ---- without torch -----------------------------------------------------------------------------------

def test_reparametrisation_by_hand():
    m = _linear(tracenn)
    method = prune.l1_unstructured(m, "weight", amount=3)._forward_pre_hooks
    assert [type(h) for h in method.values()] == [prune.L1Unstructured]
    smallest = np.argsort(np.abs(W_LIN).ravel())[:3]
    expected_mask = np.ones(24, np.float32)
    expected_mask[smallest] = 0
    np.testing.assert_array_equal(to_np(m.weight_mask).ravel(), expected_mask)
    assert isinstance(m.weight_orig, nn.Parameter) and not isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(to_np(m.weight), W_LIN * expected_mask.reshape(6, 4))
    assert sorted(dict(m.named_parameters())) == ["bias", "weight_orig"]
    assert list(m.state_dict()) == ["bias", "weight_orig", "weight_mask"]
    assert prune.is_pruned(nn.Sequential(m)) and not prune.is_pruned(nn.Linear(2, 2))


def test_pruned_weight_follows_the_parameter_and_stays_pruned_through_training():
    m = _linear(tracenn)
    prune.l1_unstructured(m, "weight", amount=0.5)
    mask = to_np(m.weight_mask)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        m(tracenn.tensor(X)).pow(2).sum().backward()
        np.testing.assert_array_equal(to_np(m.weight_orig.grad)[mask == 0], 0)
        opt.step()
    np.testing.assert_array_equal(to_np(m.weight_orig)[mask == 0], W_LIN[mask == 0])  # untouched
    np.testing.assert_array_equal(to_np(m.weight), to_np(m.weight_orig) * mask)      # current (torch: at forward)


def test_random_methods_prune_the_right_counts():
    m = nn.Linear(10, 8)
    prune.random_unstructured(m, "weight", amount=0.25)
    assert int(to_np(m.weight_mask).sum()) == 80 - 20
    prune.random_unstructured(m, "weight", amount=30)  # from the 60 left
    assert int(to_np(m.weight_mask).sum()) == 30
    c = nn.Conv2d(2, 6, 3)
    prune.random_structured(c, "weight", amount=2, dim=0)
    kept = to_np(c.weight_mask).reshape(6, -1)
    assert (kept.min(1) == kept.max(1)).all() and int(kept[:, 0].sum()) == 4


def test_prune_method_on_a_tensor():
    t = tracenn.tensor([[0.5, -0.1], [2.0, 0.05]])
    pruned = prune.L1Unstructured(amount=2).prune(t)
    assert pruned.tolist() == [[0.5, 0.0], [2.0, 0.0]]


def test_pickle_and_deepcopy_keep_the_pruning():
    m = prune.l1_unstructured(_linear(tracenn), "weight", amount=4)
    for other in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        np.testing.assert_array_equal(to_np(other.weight), to_np(m.weight))
        assert prune.is_pruned(other)
        with tracenn.no_grad():
            other.weight_orig.fill_(1.0)
        assert to_np(other.weight).sum() == 20 and to_np(m.weight).sum() != 20
        prune.remove(other, "weight")
        assert isinstance(other.weight, nn.Parameter)


@pytest.mark.parametrize("call, error, message", [
    (lambda m: prune.l1_unstructured(m, "weight", amount=-1), ValueError,
     r"amount=-1 should either be a float in the range \[0, 1\] or a non-negative integer"),
    (lambda m: prune.l1_unstructured(m, "weight", amount=1.5), ValueError,
     r"amount=1.5 should either be a float in the range \[0, 1\] or a non-negative integer"),
    (lambda m: prune.l1_unstructured(m, "weight", amount="a"), TypeError,
     "Invalid type for amount: a. Must be int or float."),
    (lambda m: prune.l1_unstructured(m, "weight", amount=25), ValueError,
     "amount=25 should be smaller than the number of parameters to prune=24"),
    (lambda m: prune.ln_structured(m, "bias", amount=1, n=2, dim=0), ValueError,
     "Structured pruning can only be applied to multidimensional tensors. Found tensor of shape"),
    (lambda m: prune.ln_structured(m, "weight", amount=1, n=2, dim=2), IndexError,
     "Invalid index 2 for tensor of size"),
    (lambda m: prune.remove(m, "weight"), ValueError, "Parameter 'weight' of module Linear.* has to be pruned before "
                                                      "pruning can be removed"),
    (lambda m: prune.l1_unstructured(m, "weight", amount=1, importance_scores=tracenn.ones(3)), AssertionError,
     "importance_scores should have the same shape as parameter weight"),
    (lambda m: prune.global_unstructured([(m, "weight")], prune.LnStructured, amount=1, n=2, dim=0), TypeError,
     'Only "unstructured" PRUNING_TYPE supported for the `pruning_method`'),
    (lambda m: prune.global_unstructured([(m, "weight")], prune.L1Unstructured, importance_scores=[1], amount=1),
     TypeError, "global_unstructured\\(\\): importance_scores must be of type dict"),
])
def test_torchs_errors(call, error, message):
    m = _linear(tracenn)
    with pytest.raises(error, match=message):
        call(m)
    if error is not AssertionError and "remove" not in message:
        # a failed first pruning leaves the module as it was
        assert sorted(n for n, _ in m.named_parameters()) == ["bias", "weight"] and not prune.is_pruned(m)
        assert isinstance(m.weight, nn.Parameter)


def test_container_refuses_a_method_for_another_tensor():
    first = prune.Identity()
    first._tensor_name = "weight"
    other = prune.Identity()
    other._tensor_name = "bias"
    with pytest.raises(ValueError, match="Can only add pruning methods acting on the parameter named 'weight'"):
        prune.PruningContainer(first).add_pruning_method(other)
    with pytest.raises(TypeError, match="is not a BasePruningMethod subclass"):
        prune.PruningContainer(first).add_pruning_method(3)


# ---- under tracenn.compile ---------------------------------------------------------------------------

def _net():
    tracenn.manual_seed(0)
    net = nn.Sequential(_linear(tracenn), nn.ReLU(), nn.Linear(6, 3))
    prune.l1_unstructured(net[0], "weight", amount=0.5)
    prune.ln_structured(net[2], "weight", amount=1, n=2, dim=0)
    return net


def test_a_compiled_pruned_model_equals_eager_and_sees_mask_changes():
    net = _net()
    compiled = tracenn.compile(net)
    x = tracenn.tensor(X)
    np.testing.assert_allclose(to_np(compiled(x)), to_np(net(x)), rtol=1e-6, atol=1e-6)
    with tracenn.no_grad():
        net[0].weight_mask.fill_(1.0)  # un-prune in place: a buffer the program reads
    np.testing.assert_allclose(to_np(compiled(x)), to_np(net(x)), rtol=1e-6, atol=1e-6)
    assert isinstance(net[0].weight._value, type(net[0].weight_orig._value))  # no traced value left behind


def test_a_compiled_training_step_on_a_pruned_model_equals_eager():
    nets = [_net(), _net()]
    opts = [tracenn.optim.Adam(n.parameters(), lr=0.05) for n in nets]

    def make_step(net, opt):
        def step(x):
            opt.zero_grad()
            loss = net(x).pow(2).mean()
            loss.backward()
            opt.step()
            return loss
        return step

    eager, compiled = make_step(nets[0], opts[0]), tracenn.compile(make_step(nets[1], opts[1]))
    x = tracenn.tensor(X)
    for _ in range(4):
        np.testing.assert_allclose(to_np(compiled(x)), to_np(eager(x)), rtol=2e-5, atol=1e-6)
    for (name, a), b in zip(nets[0].state_dict().items(), nets[1].state_dict().values()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-4, atol=2e-6, err_msg=name)
    pruned = to_np(nets[1][0].weight_mask) == 0
    np.testing.assert_array_equal(to_np(nets[1][0].weight)[pruned], 0)


def test_pruning_and_removing_between_compiled_calls():
    tracenn.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    compiled, x = tracenn.compile(net), tracenn.tensor(X)
    compiled(x)
    prune.l1_unstructured(net[0], "weight", amount=0.5)  # the module changed: a new program
    np.testing.assert_array_equal(to_np(compiled(x)), to_np(net(x)))
    prune.remove(net[0], "weight")
    with tracenn.no_grad():
        net[0].weight.add_(1.0)
    np.testing.assert_array_equal(to_np(compiled(x)), to_np(net(x)))


def test_the_pruning_hooks_add_no_host_callbacks_to_a_compiled_program():
    net = _net()
    compiled = tracenn.compile(net)
    compiled(tracenn.tensor(X))
    assert "hook[" not in str(compiled.graph)
