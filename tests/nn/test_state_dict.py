"""state_dict / load_state_dict: keys, order, metadata, strictness, errors, assign, hooks."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close


def _doc_module(lib):
    # torch's documentation example: a Linear, a Parameter and a buffer.
    class Module(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = lib.nn.Linear(2, 2)
            self.param = lib.nn.Parameter(lib.zeros(1))
            self.register_buffer("buffer", lib.zeros(1))
            self.register_buffer("scratch", lib.zeros(1), persistent=False)

    return Module()


def _net(lib):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = lib.nn.Linear(2, 2)
            self.w = lib.nn.Parameter(lib.ones(1))
            self.register_buffer("b", lib.zeros(1))
            self.register_buffer("steps", lib.zeros((), dtype=lib.int64))

    return Net()


def test_state_dict_keys_of_the_doc_example(lib):
    sd = _doc_module(lib).state_dict()
    assert type(sd) is OrderedDict
    assert list(sd.keys()) == ["param", "buffer", "linear.weight", "linear.bias"]


def test_state_dict_metadata(lib):
    net = lib.nn.Sequential(lib.nn.Linear(1, 1), lib.nn.Sequential(lib.nn.ReLU()))
    sd = net.state_dict()
    assert sd._metadata == OrderedDict([("", {"version": 1}), ("0", {"version": 1}),
                                        ("1", {"version": 1}), ("1.0", {"version": 1})])


def test_state_dict_values_are_detached_aliases(lib):
    m = _net(lib)
    sd = m.state_dict()
    assert type(sd["w"]) is lib.Tensor and not sd["w"].requires_grad
    with lib.no_grad():
        m.w.add_(1.0)  # an optimizer step
    assert sd["w"].tolist() == [2.0]
    kv = m.state_dict(keep_vars=True)
    assert kv["w"] is m.w and kv["fc.weight"] is m.fc.weight and kv["b"] is m.b


def test_state_dict_prefix_and_destination(lib):
    m = _net(lib)
    dest = OrderedDict()
    out = m.state_dict(destination=dest, prefix="model.")
    assert out is dest and list(dest) == ["model.w", "model.b", "model.steps", "model.fc.weight", "model.fc.bias"]
    with pytest.warns(FutureWarning, match="Positional args are being deprecated, use kwargs instead"):
        out = m.state_dict(OrderedDict(), "p.")
    assert list(out)[0] == "p.w"


def test_none_entries_and_non_persistent_buffers_are_left_out(lib):
    m = lib.nn.Linear(2, 2, bias=False)
    m.register_buffer("tmp", lib.zeros(1), persistent=False)
    m.register_buffer("nothing", None)
    assert list(m.state_dict()) == ["weight"]
    assert [n for n, _ in m.named_buffers()] == ["tmp"]


def test_load_copies_in_place_keeping_objects_and_dtypes(lib):
    src, dst = _net(lib), _net(lib)
    with lib.no_grad():
        for p in src.parameters():
            p.fill_(3.0)
    src.steps.fill_(7)
    params = list(dst.parameters())
    sd = src.state_dict()
    sd["w"] = lib.tensor([5.0], dtype=lib.float64)
    res = dst.load_state_dict(sd)
    assert repr(res) == str(res) == "<All keys matched successfully>"
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert all(a is b for a, b in zip(params, dst.parameters()))
    assert dst.w.dtype == lib.float32 and dst.w.tolist() == [5.0] and dst.w.requires_grad
    assert dst.fc.weight.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert dst.steps.item() == 7 and dst.steps.dtype == lib.int64


def test_load_strict_error_lists_every_problem(lib, message):
    m = _net(lib)
    sd = dict(m.state_dict())
    sd["extra"] = lib.ones(1)
    sd["fc.extra"] = lib.ones(1)
    sd["nosuch.child"] = lib.ones(1)
    del sd["fc.bias"], sd["b"]
    sd["w"] = lib.ones(3)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    assert message(e) == (
        "Error(s) in loading state_dict for Net:\n"
        '\tMissing key(s) in state_dict: "b", "fc.bias". \n'
        '\tUnexpected key(s) in state_dict: "extra", "nosuch.child", "fc.extra". \n'
        "\tsize mismatch for w: copying a param with shape tracenn.Size([3]) from checkpoint, the shape in "
        "current model is tracenn.Size([1]).")


def test_load_non_strict_returns_the_keys(lib):
    m = _net(lib)
    sd = dict(m.state_dict())
    sd["fc.extra"] = lib.ones(1)
    del sd["w"]
    res = m.load_state_dict(sd, strict=False)
    missing, unexpected = res
    assert missing == ["w"] and unexpected == ["fc.extra"]
    assert repr(res) == "_IncompatibleKeys(missing_keys=['w'], unexpected_keys=['fc.extra'])"


def test_size_mismatch_raises_even_when_not_strict(lib, message):
    m = lib.nn.Linear(2, 2)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict({"weight": lib.ones(3, 2)}, strict=False)
    assert message(e) == (
        "Error(s) in loading state_dict for Linear:\n\tsize mismatch for weight: copying a param with shape "
        "tracenn.Size([3, 2]) from checkpoint, the shape in current model is tracenn.Size([2, 2]).")


def test_load_rejects_non_tensors_and_non_mappings(lib, message):
    m = _net(lib)
    sd = dict(m.state_dict())
    sd["w"] = 3
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    assert message(e) == ("Error(s) in loading state_dict for Net:\n\tWhile copying the parameter named \"w\", "
                          "expected tracenn.Tensor or Tensor-like object from checkpoint but received <class 'int'>")
    with pytest.raises(TypeError) as e:
        m.load_state_dict([1])
    assert str(e.value) == "Expected state_dict to be dict-like, got <class 'list'>."


def test_zero_dim_parameter_loads_from_one_element_vector(lib):
    m = lib.nn.Module()
    m.s = lib.nn.Parameter(lib.tensor(1.0))
    m.load_state_dict({"s": lib.tensor([4.0])})
    assert m.s.shape == () and m.s.item() == 4.0


def test_load_assign(lib):
    m = _net(lib)
    m.w.requires_grad_(False)
    new_w = lib.tensor([9.0], dtype=lib.float64)
    new_b = lib.tensor([2.0], dtype=lib.float64)
    sd = dict(m.state_dict())
    sd.update(w=new_w, b=new_b)
    m.load_state_dict(sd, assign=True)
    assert type(m.w) is lib.nn.Parameter and m.w.dtype == lib.float64 and not m.w.requires_grad
    assert m.b is new_b  # buffers are assigned as they are
    assert m.fc.weight.requires_grad
    p = lib.nn.Parameter(lib.ones(2, 2), requires_grad=False)
    m.load_state_dict({**sd, "fc.weight": p}, assign=True)
    assert m.fc.weight is p and m.fc.weight.requires_grad  # takes the module's flag


def test_roundtrip_between_models(lib):
    lib.manual_seed(1)
    a = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))
    b = lib.nn.Sequential(lib.nn.Linear(3, 3), lib.nn.ReLU(), lib.nn.Linear(3, 1))
    b.load_state_dict(a.state_dict())
    x = lib.ones(2, 3)
    assert a(x).tolist() == b(x).tolist()


# ---- extra state -------------------------------------------------------------------------------

def test_extra_state(lib):
    class WithExtra(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lib.nn.Linear(1, 1)
            self.config = {"k": 1}

        def get_extra_state(self):
            return dict(self.config)

        def set_extra_state(self, state):
            self.config = state

    net = lib.nn.Sequential(WithExtra())
    sd = net.state_dict()
    assert list(sd) == ["0._extra_state", "0.lin.weight", "0.lin.bias"] and sd["0._extra_state"] == {"k": 1}
    sd["0._extra_state"] = {"k": 2}
    net.load_state_dict(sd)
    assert net[0].config == {"k": 2}
    del sd["0._extra_state"]
    missing, _ = net.load_state_dict(sd, strict=False)
    assert missing == ["0._extra_state"]
    plain = lib.nn.Sequential(lib.nn.Linear(1, 1))
    _, unexpected = plain.load_state_dict({**plain.state_dict(), "0._extra_state": 1}, strict=False)
    assert unexpected == ["0._extra_state"]


# ---- hooks -------------------------------------------------------------------------------------

def test_state_dict_pre_and_post_hooks(lib):
    log = []
    m = lib.nn.Sequential(lib.nn.Linear(1, 1))
    m.register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(("pre", prefix, keep_vars)))
    m[0].register_state_dict_pre_hook(lambda mod, prefix, keep_vars: log.append(("pre child", prefix)))

    def post(mod, sd, prefix, local_metadata):
        log.append(("post", prefix, list(sd), local_metadata))
        sd["added"] = 1

    h = m.register_state_dict_post_hook(post)
    sd = m.state_dict()
    assert log == [("pre", "", False), ("pre child", "0."),
                   ("post", "", ["0.weight", "0.bias"], {"version": 1})]
    assert list(sd) == ["0.weight", "0.bias", "added"]
    h.remove()
    assert "added" not in m.state_dict()


def test_state_dict_post_hook_must_return_none(lib):
    m = lib.nn.Linear(1, 1)
    m.register_state_dict_post_hook(lambda mod, sd, prefix, meta: {})
    with pytest.raises(RuntimeError) as e:
        m.state_dict()
    assert str(e.value) == "state_dict post-hook must return None"


def test_private_state_dict_hook_may_replace_the_dict(lib):
    m = lib.nn.Linear(1, 1)
    m._register_state_dict_hook(lambda mod, sd, prefix, meta: OrderedDict(only=1))
    assert m.state_dict() == OrderedDict(only=1)

    def public(mod, sd, prefix, meta):
        return None

    m.register_state_dict_post_hook(public)
    with pytest.raises(RuntimeError) as e:
        m._register_state_dict_hook(public)
    assert str(e.value) == ("Cannot register the same function as the state dict post hook that was "
                            "previously registered via register_state_dict_post_hook")


def test_load_state_dict_pre_and_post_hooks(lib):
    log = []
    m = lib.nn.Sequential(lib.nn.Linear(1, 1))

    def pre(mod, sd, prefix, local_metadata, strict, missing, unexpected, errors):
        log.append(("pre", type(mod).__name__, prefix, sorted(sd), strict))
        sd[prefix + "weight"] = lib.full((1, 1), 6.0)  # a pre-hook may rewrite the checkpoint

    def post(mod, keys):
        log.append(("post", type(mod).__name__, list(keys.missing_keys)))
        keys.missing_keys.clear()  # ... and a post-hook may forgive missing keys, in place

    m[0].register_load_state_dict_pre_hook(pre)
    m.register_load_state_dict_post_hook(post)
    res = m.load_state_dict({"0.bias": lib.zeros(1)})
    assert log == [("pre", "Linear", "0.", ["0.bias"], True), ("post", "Sequential", [])]
    assert res.missing_keys == [] and m[0].weight.item() == 6.0


def test_load_state_dict_post_hook_must_return_none(lib):
    m = lib.nn.Linear(1, 1)
    m.register_load_state_dict_post_hook(lambda mod, keys: keys)
    with pytest.raises(AssertionError, match="are not expected to return new values"):
        m.load_state_dict(m.state_dict())


# ---- loading from other frameworks (tracenn extension) -----------------------------------------

def test_load_numpy_and_jax_arrays():
    import jax.numpy as jnp
    m = nn.Linear(2, 2)
    m.load_state_dict({"weight": np.full((2, 2), 2.0), "bias": jnp.array([1.0, -1.0])})
    assert m.weight.dtype == tracenn.float32 and m.weight.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    assert m.bias.tolist() == [1.0, -1.0]


def test_load_a_torch_state_dict_directly(torch):
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert list(m.state_dict()) == list(tm.state_dict())
    assert [tuple(v.shape) for v in m.state_dict().values()] == [tuple(v.shape) for v in tm.state_dict().values()]
    m.load_state_dict(tm.state_dict())
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    assert_close(m(tracenn.tensor(x)), tm(torch.tensor(x)))
    bf = torch.nn.Linear(2, 2).to(torch.bfloat16)
    m2 = nn.Linear(2, 2).bfloat16()
    m2.load_state_dict(bf.state_dict())
    assert m2.weight.float().tolist() == bf.weight.float().tolist()
