"""``tracenn.compile(module)`` is an ``nn.Module`` (runtime/module_wrapper.py), as torch's OptimizedModule:
containers take it, ``isinstance(model, nn.Module)`` holds, ``_orig_mod`` unwraps it. Unlike torch, its
state has the model's keys (no ``_orig_mod.`` level), alone and as a child."""
import copy
import inspect
import pickle

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.runtime.compiled import Compiled
from helpers import assert_close

X = tracenn.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))


class _Counting(nn.Linear):
    """A Linear that counts how often its forward runs in Python (a compiled call that found its
    program runs none)."""

    def __init__(self, *a):
        super().__init__(*a)
        self._runs = []  # (a list: an int the forward changes is guarded, so each call would trace)

    @property
    def runs(self):
        return len(self._runs)

    def forward(self, x):
        self._runs.append(1)
        return super().forward(x)


def test_a_compiled_module_is_a_module_and_unwraps_with_orig_mod():
    lin = nn.Linear(3, 2)
    cm = tracenn.compile(lin)
    assert isinstance(cm, nn.Module) and isinstance(cm, Compiled)
    assert cm._orig_mod is lin and getattr(cm, "_orig_mod", cm) is lin
    fn = tracenn.compile(lambda x: x + 1)
    assert not isinstance(fn, nn.Module) and getattr(fn, "_orig_mod", None) is None  # (torch: a function)
    assert list(cm.state_dict()) == ["weight", "bias"] and cm.weight is lin.weight
    assert [n for n, _ in cm.named_parameters()] == ["weight", "bias"]
    assert cm.train() is cm and cm.eval() is cm and lin.training is False and cm.training is False
    assert cm.to("cpu") is cm and cm.requires_grad_(True) is cm


@pytest.mark.parametrize("wrap", ["sequential", "modulelist", "moduledict", "add_module", "register_module"])
def test_containers_take_it_and_call_the_compiled_object(wrap):
    inner = _Counting(3, 2)
    cm = tracenn.compile(inner)
    if wrap == "sequential":
        c = nn.Sequential(cm, nn.ReLU())
        run, prefix = c, "0"
    elif wrap == "modulelist":
        c = nn.ModuleList([cm])
        run, prefix = (lambda x: c[0](x)), "0"
    elif wrap == "moduledict":
        c = nn.ModuleDict({"a": cm})
        run, prefix = (lambda x: c["a"](x)), "a"
    else:
        c = nn.Module()
        getattr(c, wrap)("enc", cm)
        run, prefix = (lambda x: c.enc(x)), "enc"
    assert list(c.state_dict()) == [f"{prefix}.weight", f"{prefix}.bias"]
    assert [p for p in c.parameters()] == [inner.weight, inner.bias]
    want = tracenn.nn.functional.linear(X, inner.weight, inner.bias)
    for _ in range(3):
        assert_close(run(X)[..., :2].relu(), want.relu())
    assert inner.runs == 1  # (traced once; the other calls ran the program)
    assert c.get_submodule(prefix) is cm


class _Parent(nn.Module):
    def __init__(self, compiled=True):
        super().__init__()
        enc = nn.Linear(3, 4)
        self.enc = tracenn.compile(enc) if compiled else enc
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.enc(x).relu())


def test_as_a_child_its_state_has_the_models_keys_and_round_trips():
    tracenn.manual_seed(0)
    plain, comp = _Parent(compiled=False), _Parent()
    keys = ["enc.weight", "enc.bias", "head.weight", "head.bias"]
    assert list(comp.state_dict()) == list(plain.state_dict()) == keys
    assert [n for n, _ in comp.named_parameters()] == keys
    comp.load_state_dict(plain.state_dict())  # a plain checkpoint loads into the compiled model ...
    assert_close(comp(X), plain(X))
    other = _Parent(compiled=False)
    other.load_state_dict(comp.state_dict())  # ... and back
    assert_close(other(X), comp(X))
    assert isinstance(comp._modules["enc"], Compiled) and comp.enc is comp._modules["enc"]
    assert [type(m).__name__ for _, m in comp.named_children()] == ["CompiledModule", "Linear"]
    # named_modules / modules / apply reach the model itself where the compiled object is
    assert [(n, type(m).__name__) for n, m in comp.named_modules()] == [
        ("", "_Parent"), ("enc", "Linear"), ("head", "Linear")]
    seen = []
    comp.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Linear", "_Parent"]


def test_a_parent_with_a_compiled_child_compiles_and_trains():
    tracenn.manual_seed(0)
    m = _Parent()
    seq = nn.Sequential(tracenn.compile(nn.Linear(3, 3)), nn.ReLU(), m)
    eager = seq(X)
    assert_close(tracenn.compile(seq)(X), eager)
    opt = tracenn.optim.SGD(seq.parameters(), lr=0.1)
    before = m.enc.weight.detach().clone()
    seq(X).pow(2).mean().backward()
    opt.step()
    assert not np.allclose(m.enc.weight.detach().numpy(), before.numpy())


def test_forward_is_the_compiled_call_with_the_models_signature():
    inner = _Counting(3, 2)
    cm = tracenn.compile(inner)
    assert list(inspect.signature(cm.forward).parameters) == ["x"]
    cm.forward(X)
    cm.forward(X)
    assert inner.runs == 1


def test_attributes_hooks_copies_and_pickles_are_the_models():
    lin = nn.Linear(3, 2)
    cm = tracenn.compile(lin)
    cm.tag = "a"
    assert lin.tag == "a" and "tag" not in cm.__dict__
    del cm.tag
    assert not hasattr(lin, "tag")
    seen = []
    h = cm.register_forward_hook(lambda mod, i, o: seen.append(type(mod).__name__))
    cm(X)
    h.remove()
    assert seen == ["Linear"] and not lin._forward_hooks
    c = copy.deepcopy(cm)
    assert isinstance(c, Compiled) and c._orig_mod is not lin
    p = pickle.loads(pickle.dumps(cm))
    assert isinstance(p, nn.Module) and list(p.state_dict()) == ["weight", "bias"]
    assert_close(p(X), cm(X))


@pytest.mark.slow  # (importing torch._dynamo takes 10+ s; the known-value tests above check the same keys)
def test_the_keys_are_torchs_without_the_orig_mod_prefix():
    torch = pytest.importorskip("torch")
    t = torch.nn.Sequential(torch.compile(torch.nn.Linear(3, 4)), torch.nn.ReLU())
    m = nn.Sequential(tracenn.compile(nn.Linear(3, 4)), nn.ReLU())
    assert isinstance(t[0], torch.nn.Module) and isinstance(m[0], nn.Module)
    assert list(t.state_dict()) == ["0._orig_mod.weight", "0._orig_mod.bias"]
    assert [k.replace("_orig_mod.", "") for k in t.state_dict()] == list(m.state_dict())
    assert type(t[0]._orig_mod) is torch.nn.Linear and type(m[0]._orig_mod) is nn.Linear


def test_module_compile_in_place_keeps_the_modules_state():
    m = _Counting(3, 2)
    m.compile()
    assert list(m.state_dict()) == ["weight", "bias"] and not m._modules  # (it was a child of itself: recursion)
    m(X)
    m(X)
    assert m.runs == 1


def test_libraries_find_it_as_torch_dynamos_optimized_module():
    from tracenn._dynamo import OptimizedModule
    cm = tracenn.compile(nn.Linear(3, 2))
    assert isinstance(cm, OptimizedModule) and isinstance(cm, tracenn._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(nn.Linear(3, 2), OptimizedModule)


def test_len_is_the_models_and_a_compiled_layer_is_true():
    seq = tracenn.compile(nn.Sequential(nn.Linear(3, 2), nn.ReLU()))
    assert len(seq) == 2 and bool(seq)  # (torch's OptimizedModule proxies len too)
    assert bool(tracenn.compile(nn.Linear(3, 2)))
    with pytest.raises(TypeError):
        seq[0]  # (as torch's: index seq._orig_mod)
