"""Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict — run against tracenn and torch."""
from __future__ import annotations

from collections import OrderedDict

import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close


def _names(mods):
    return [type(m).__name__ for m in mods]


# ---- Sequential --------------------------------------------------------------------------------

def test_sequential_runs_modules_in_order(lib):
    seq = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.ReLU(), lib.nn.Linear(4, 2))
    x = lib.ones(5, 3)
    assert_close(seq(x), seq[2](seq[1](seq[0](x))))
    assert list(seq._modules) == ["0", "1", "2"]


def test_sequential_from_ordered_dict(lib):
    seq = lib.nn.Sequential(OrderedDict([("conv", lib.nn.Linear(1, 1)), ("act", lib.nn.ReLU())]))
    assert list(seq._modules) == ["conv", "act"]
    assert seq.act is seq[1] and seq[-1] is seq.act
    assert repr(seq) == ("Sequential(\n  (conv): Linear(in_features=1, out_features=1, bias=True)\n"
                         "  (act): ReLU()\n)")


def test_sequential_indexing_slicing_len_iter(lib):
    a, b, c = lib.nn.ReLU(), lib.nn.Tanh(), lib.nn.Sigmoid()
    seq = lib.nn.Sequential(a, b, c)
    assert seq[0] is a and seq[-1] is c and seq[-3] is a
    sub = seq[1:]
    assert type(sub) is lib.nn.Sequential and list(sub) == [b, c] and list(sub._modules) == ["1", "2"]
    assert list(seq[::-1]) == [c, b, a]
    assert len(seq) == 3 and list(seq) == [a, b, c]
    with pytest.raises(IndexError) as e:
        seq[5]
    assert str(e.value) == "index 5 is out of range"
    with pytest.raises(TypeError):
        seq["a"]


def test_sequential_setitem_delitem_pop_renumber(lib):
    a, b, c, d = lib.nn.ReLU(), lib.nn.Tanh(), lib.nn.Sigmoid(), lib.nn.Identity()
    seq = lib.nn.Sequential(a, b, c)
    seq[1] = d
    assert list(seq) == [a, d, c]
    del seq[0]
    assert list(seq) == [d, c] and list(seq._modules) == ["0", "1"]
    assert seq.pop(-1) is c and list(seq) == [d]
    seq = lib.nn.Sequential(a, b, c, d)
    del seq[1:3]
    assert list(seq) == [a, d] and list(seq._modules) == ["0", "1"]


def test_sequential_append_extend_insert(lib):
    a, b, c = lib.nn.ReLU(), lib.nn.Tanh(), lib.nn.Sigmoid()
    seq = lib.nn.Sequential()
    assert seq.append(a) is seq
    assert seq.extend([b, c]) is seq
    assert list(seq) == [a, b, c]
    d = lib.nn.Identity()
    assert seq.insert(1, d) is seq
    assert list(seq) == [a, d, b, c] and list(seq._modules) == ["0", "1", "2", "3"]
    seq.insert(-1, lib.nn.ReLU())
    assert _names(seq) == ["ReLU", "Identity", "Tanh", "ReLU", "Sigmoid"]
    seq.insert(len(seq), lib.nn.Tanh())
    assert _names(seq)[-1] == "Tanh"


def test_sequential_add_mul(lib):
    a, b = lib.nn.ReLU(), lib.nn.Tanh()
    s1, s2 = lib.nn.Sequential(a), lib.nn.Sequential(b)
    s3 = s1 + s2
    assert list(s3) == [a, b] and list(s1) == [a]
    s1 += s2
    assert list(s1) == [a, b]
    assert list(lib.nn.Sequential(a, b) * 2) == [a, b, a, b]
    assert list(2 * lib.nn.Sequential(a)) == [a, a]
    s4 = lib.nn.Sequential(a, b)
    s4 *= 3
    assert list(s4) == [a, b] * 3


SEQUENTIAL_ERRORS = [
    (lambda lib, s: s + 3, ValueError, "add operator supports only objects of Sequential class, but <class 'int'> is given."),
    (lambda lib, s: s.__iadd__(3), ValueError, "add operator supports only objects of Sequential class, but <class 'int'> is given."),
    (lambda lib, s: s * 0, ValueError,
     "Non-positive multiplication factor 0 for <class 'tracenn.nn.modules.container.Sequential'>"),
    (lambda lib, s: s * "a", TypeError,
     "unsupported operand type(s) for *: <class 'tracenn.nn.modules.container.Sequential'> and <class 'str'>"),
    (lambda lib, s: s.insert(5, lib.nn.ReLU()), IndexError, "Index out of range: 5"),
    (lambda lib, s: s.insert(0, 3), AssertionError,
     "module should be of type: <class 'tracenn.nn.modules.module.Module'>"),
]


@pytest.mark.parametrize("script,exc,text", SEQUENTIAL_ERRORS, ids=[f"err{i}" for i in range(len(SEQUENTIAL_ERRORS))])
def test_sequential_errors(lib, message, script, exc, text):
    s = lib.nn.Sequential(lib.nn.ReLU(), lib.nn.Tanh())
    with pytest.raises(exc) as e:
        script(lib, s)
    assert message(e) == text


def test_sequential_dir_hides_numeric_names(lib):
    seq = lib.nn.Sequential(lib.nn.ReLU())
    assert "0" not in dir(seq) and "append" in dir(seq)


def test_sequential_shared_module_state_dict_and_params(lib):
    l = lib.nn.Linear(2, 2)
    seq = lib.nn.Sequential(l, lib.nn.ReLU(), l)
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(seq.parameters())) == 2


# ---- ModuleList --------------------------------------------------------------------------------

def test_module_list(lib):
    mods = [lib.nn.Linear(2, 2) for _ in range(3)]
    ml = lib.nn.ModuleList(mods)
    assert len(ml) == 3 and list(ml) == mods and ml[-1] is mods[2]
    assert type(ml[1:]) is lib.nn.ModuleList and list(ml[1:]) == mods[1:]
    assert list(ml[1:]._modules) == ["0", "1"]  # a slice renumbers, unlike Sequential
    r = lib.nn.ReLU()
    assert ml.append(r) is ml and ml[3] is r
    assert ml.extend([lib.nn.Tanh()]) is ml and len(ml) == 5
    ml.insert(0, lib.nn.Sigmoid())
    assert _names(ml) == ["Sigmoid", "Linear", "Linear", "Linear", "ReLU", "Tanh"]
    ml += [lib.nn.Identity()]
    assert _names(ml)[-1] == "Identity"
    ml2 = ml + lib.nn.ModuleList([lib.nn.ReLU()])
    assert type(ml2) is lib.nn.ModuleList and len(ml2) == 8 and len(ml) == 7
    ml[0] = lib.nn.Tanh()
    assert _names(ml)[0] == "Tanh"
    del ml[0]
    assert list(ml._modules) == [str(i) for i in range(6)] and ml[0] is mods[0]
    assert ml.pop(0) is mods[0]
    del ml[:2]
    assert _names(ml) == ["ReLU", "Tanh", "Identity"]
    assert len(list(lib.nn.ModuleList(mods).parameters())) == 6
    with pytest.raises(IndexError) as e:
        ml[10]
    assert str(e.value) == "index 10 is out of range"
    with pytest.raises(TypeError) as e:
        lib.nn.ModuleList(3)
    assert str(e.value) == "ModuleList.extend should be called with an iterable, but got int"


def test_module_list_repr_compresses_repeats(lib):
    ml = lib.nn.ModuleList([lib.nn.Linear(2, 2)] * 3 + [lib.nn.ReLU(), lib.nn.ReLU(), lib.nn.Tanh()])
    assert repr(ml) == ("ModuleList(\n"
                        "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                        "  (3-4): 2 x ReLU()\n"
                        "  (5): Tanh()\n)")
    assert repr(lib.nn.ModuleList()) == "ModuleList()"
    nested = lib.nn.ModuleList([lib.nn.Sequential(lib.nn.ReLU())] * 2)
    assert repr(nested) == "ModuleList(\n  (0-1): 2 x Sequential(\n    (0): ReLU()\n  )\n)"


# ---- ModuleDict --------------------------------------------------------------------------------

def test_module_dict(lib):
    relu, tanh = lib.nn.ReLU(), lib.nn.Tanh()
    md = lib.nn.ModuleDict({"b": relu, "a": tanh})
    assert list(md.keys()) == ["b", "a"]  # insertion order, not sorted
    assert list(md.values()) == [relu, tanh] and list(md.items()) == [("b", relu), ("a", tanh)]
    assert md["a"] is tanh and "a" in md and "z" not in md and len(md) == 2 and list(md) == ["b", "a"]
    md2 = lib.nn.ModuleDict([["x", relu], ("y", tanh)])
    assert list(md2.keys()) == ["x", "y"]
    md.update([("c", lib.nn.Sigmoid())])
    md.update(OrderedDict([("d", lib.nn.Identity())]))
    md.update(md2)
    assert list(md.keys()) == ["b", "a", "c", "d", "x", "y"]
    md["e"] = lib.nn.ReLU()
    assert md.pop("e").__class__.__name__ == "ReLU" and "e" not in md
    del md["b"]
    assert list(md.keys())[0] == "a"
    assert repr(lib.nn.ModuleDict({"act": relu})) == "ModuleDict(\n  (act): ReLU()\n)"
    md.clear()
    assert len(md) == 0 and repr(md) == "ModuleDict()"


MODULE_DICT_ERRORS = [
    (lambda lib: lib.nn.ModuleDict([1]), TypeError, "ModuleDict update sequence element #0 should be Iterable; isint"),
    (lambda lib: lib.nn.ModuleDict([(1, 2, 3)]), ValueError, "ModuleDict update sequence element #0 has length 3; 2 is required"),
    (lambda lib: lib.nn.ModuleDict(3), TypeError,
     "ModuleDict.update should be called with an iterable of key/value pairs, but got int"),
    (lambda lib: lib.nn.ModuleDict({"a.b": lib.nn.ReLU()}), KeyError, "'module name can\\'t contain \".\", got: a.b'"),
    (lambda lib: lib.nn.ModuleDict({"a": 3}), TypeError, "int is not a Module subclass"),
]


@pytest.mark.parametrize("script,exc,text", MODULE_DICT_ERRORS, ids=[f"err{i}" for i in range(len(MODULE_DICT_ERRORS))])
def test_module_dict_errors(lib, message, script, exc, text):
    with pytest.raises(exc) as e:
        script(lib)
    assert message(e) == text


# ---- ParameterList / ParameterDict -------------------------------------------------------------

def test_parameter_list(lib):
    p = lib.nn.Parameter(lib.ones(2))
    pl = lib.nn.ParameterList([lib.zeros(2, 3), p, 3])
    assert len(pl) == 3 and pl[1] is p
    assert type(pl[0]) is lib.nn.Parameter and pl[0].requires_grad  # tensors become Parameters
    assert pl[2] == 3 and pl[-1] == 3
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    assert pl.append(lib.ones(1)) is pl and type(pl[3]) is lib.nn.Parameter
    pl.extend([lib.ones(4)])
    pl += [lib.ones(5)]
    assert len(pl) == 6 and len(list(pl)) == 6
    pl[0] = lib.ones(7)
    assert type(pl[0]) is lib.nn.Parameter and tuple(pl[0].shape) == (7,)
    sub = pl[1:3]
    assert type(sub) is lib.nn.ParameterList and sub[0] is p and len(sub) == 2
    assert list(pl.state_dict()) == ["0", "1", "3", "4", "5"]
    with pytest.raises(TypeError) as e:
        lib.nn.ParameterList(lib.ones(2))
    assert str(e.value) == "ParameterList.extend should be called with an iterable, but got Tensor"
    with pytest.raises(RuntimeError) as e:
        pl(1)
    assert str(e.value) == "ParameterList should not be called."
    with pytest.raises(IndexError):
        pl[10]


def test_parameter_list_repr(lib, message):
    pl = lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2, 3)), lib.ones(2, dtype=lib.float64), 3])
    assert message(repr(pl)) == ("ParameterList(\n"
                                 "    (0): Parameter containing: [tracenn.float32 of size 2x3]\n"
                                 "    (1): Parameter containing: [tracenn.float64 of size 2]\n"
                                 "    (2): Object of type: int\n)")
    assert repr(lib.nn.ParameterList()) == "ParameterList()"


def test_parameter_dict(lib):
    p = lib.nn.Parameter(lib.ones(1))
    pd = lib.nn.ParameterDict({"b": lib.zeros(2), "a": p})
    assert list(pd.keys()) == ["a", "b"]  # a plain dict's items are added sorted, as torch does
    assert pd["a"] is p and type(pd["b"]) is lib.nn.Parameter
    pd2 = lib.nn.ParameterDict(OrderedDict([("y", lib.ones(1)), ("x", lib.ones(1))]))
    assert list(pd2) == ["y", "x"]
    pd3 = lib.nn.ParameterDict([("k", lib.ones(1)), ("j", "not a tensor")])
    assert list(pd3.keys()) == ["k", "j"] and pd3["j"] == "not a tensor"
    assert [n for n, _ in pd3.named_parameters()] == ["k"]
    assert "a" in pd and len(pd) == 2 and list(reversed(pd)) == ["b", "a"]
    assert pd.get("zz", 5) == 5 and pd.get("a") is p
    assert pd.setdefault("c", lib.ones(3)) is pd["c"] and list(pd) == ["a", "b", "c"]
    assert [k for k, _ in pd.items()] == ["a", "b", "c"] and len(list(pd.values())) == 3
    k, v = pd.popitem()
    assert k == "c" and tuple(v.shape) == (3,) and "c" not in pd
    assert pd.pop("a") is p and list(pd) == ["b"]
    c = pd.copy()
    assert type(c) is lib.nn.ParameterDict and c["b"] is pd["b"]
    merged = pd | pd2
    assert list(merged) == ["b", "y", "x"]
    pd |= pd2
    assert list(pd) == ["b", "y", "x"]
    assert list(pd.fromkeys(["u", "v"], lib.ones(1))) == ["u", "v"]
    del pd["b"]
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == []


def test_parameter_dict_repr_and_errors(lib, message):
    pd = lib.nn.ParameterDict({"b": lib.nn.Parameter(lib.ones(2, 3)), "a": lib.ones(2, dtype=lib.float64)})
    assert message(repr(pd)) == ("ParameterDict(\n"
                                 "    (a): Parameter containing: [tracenn.DoubleTensor of size 2]\n"
                                 "    (b): Parameter containing: [tracenn.FloatTensor of size 2x3]\n)")
    with pytest.raises(TypeError) as e:
        pd[3]
    assert str(e.value) == ("Index given to ParameterDict cannot be used as a key as it is not a string "
                            "(type is 'int'). Open an issue on github if you need non-string keys.")
    with pytest.raises(RuntimeError) as e:
        pd(1)
    assert str(e.value) == "ParameterDict should not be called."
    with pytest.raises(ValueError) as e:
        lib.nn.ParameterDict([(1,)])
    assert str(e.value) == "ParameterDict update sequence element #0 has length 1; 2 is required"


def test_containers_inside_a_model_state_dict_and_repr(lib, message):
    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.nn.ModuleList([lib.nn.Linear(2, 2), lib.nn.Linear(2, 2)])
            self.heads = lib.nn.ModuleDict({"cls": lib.nn.Linear(2, 1)})
            self.scales = lib.nn.ParameterList([lib.ones(1)])
            self.extras = lib.nn.ParameterDict({"bias": lib.zeros(1)})

    net = Net()
    assert list(net.state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
                                      "heads.cls.weight", "heads.cls.bias", "scales.0", "extras.bias"]
    assert message(repr(net)) == (
        "Net(\n"
        "  (layers): ModuleList(\n"
        "    (0-1): 2 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  )\n"
        "  (heads): ModuleDict(\n"
        "    (cls): Linear(in_features=2, out_features=1, bias=True)\n"
        "  )\n"
        "  (scales): ParameterList(  (0): Parameter containing: [tracenn.float32 of size 1])\n"
        "  (extras): ParameterDict(  (bias): Parameter containing: [tracenn.FloatTensor of size 1])\n"
        ")")


def test_container_deprecated(lib):
    with pytest.warns(FutureWarning):
        c = lib.nn.Container(a=lib.nn.ReLU())
    assert list(c._modules) == ["a"]


def test_sequential_gradients_match_torch(torch):
    tracenn.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2), nn.Sigmoid())
    tseq = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    tseq.load_state_dict({k: torch.tensor(v.numpy()) for k, v in seq.state_dict().items()})
    x = [[0.1, -0.2, 0.3], [1.0, 2.0, -1.0]]
    out = seq(tracenn.tensor(x))
    tout = tseq(torch.tensor(x))
    assert_close(out, tout)
    out.sum().backward()
    tout.sum().backward()
    for (n, p), (_, tp) in zip(seq.named_parameters(), tseq.named_parameters()):
        assert_close(p.grad, tp.grad, rtol=1e-5, atol=1e-6)


def test_torch_doc_examples_of_the_containers(lib):
    # The examples in torch's docs for ModuleList, ModuleDict, ParameterList and ParameterDict.
    class MyModule(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.linears = lib.nn.ModuleList([lib.nn.Linear(10, 10) for i in range(10)])
            self.choices = lib.nn.ModuleDict({"conv": lib.nn.Linear(10, 10), "pool": lib.nn.Identity()})
            self.activations = lib.nn.ModuleDict([["lrelu", lib.nn.Tanh()], ["prelu", lib.nn.ReLU()]])
            self.params = lib.nn.ParameterList([lib.nn.Parameter(lib.randn(10, 10)) for i in range(10)])
            self.pdict = lib.nn.ParameterDict({"left": lib.nn.Parameter(lib.randn(5, 10)),
                                               "right": lib.nn.Parameter(lib.randn(5, 10))})

        def forward(self, x, choice, act):
            # ModuleList can act as an iterable, or be indexed using ints
            for i, l in enumerate(self.linears):
                x = self.linears[i // 2](x) + l(x)
            x = self.activations[act](self.choices[choice](x))
            y = x.t()
            for i, p in enumerate(self.params):
                y = self.params[i // 2].mm(y) + p.mm(y)
            return self.pdict["left"].mm(y)

    m = MyModule()
    out = m(lib.ones(3, 10) * 1e-3, "conv", "prelu")
    assert tuple(out.shape) == (5, 3)
    assert len(list(m.parameters())) == 10 * 2 + 2 + 10 + 2
    assert [n for n, _ in m.named_parameters()][-4:] == ["params.8", "params.9", "pdict.left", "pdict.right"]
