"""A compiled object assigned as a module's attribute (``model.encoder = tracenn.compile(model.encoder)``,
or ``self.block = tracenn.compile(Block())`` in ``__init__``): the compiled object is the child (an
nn.Module, as torch's OptimizedModule), whose parameters are the wrapped module's, so they are trained and
saved under the names they had (torch adds ``_orig_mod.``), and ``model.encoder(x)`` calls it."""
import copy

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.runtime.compiled import Compiled
from helpers import assert_close


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(3, 4)
        self.head = nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.enc(x).relu())


X = tracenn.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3))


def test_compiling_a_child_keeps_its_parameters_in_the_model():
    tracenn.manual_seed(0)
    m = _Net()
    keys, ref = list(m.state_dict()), m(X)
    m.enc = tracenn.compile(m.enc)
    assert list(m.state_dict()) == keys == ["enc.weight", "enc.bias", "head.weight", "head.bias"]
    assert [n for n, _ in m.named_parameters()] == keys
    assert isinstance(m.enc, Compiled) and m._modules["enc"] is m.enc and m.enc.weight is m.enc._orig_mod.weight
    assert_close(m(X), ref)
    assert m.enc._last is not None  # the forward called the compiled object
    assert "enc" in str(m) and "Linear(in_features=3, out_features=4" in str(m)


def test_a_compiled_child_trains_like_the_plain_one():
    def train(compiled):
        tracenn.manual_seed(0)
        m = _Net()
        if compiled:
            m.enc = tracenn.compile(m.enc)
        opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            m(X).pow(2).mean().backward()
            opt.step()
        return m.state_dict()

    plain, comp = train(False), train(True)
    for k in plain:
        assert_close(comp[k], plain[k], rtol=1e-6)
    assert not np.allclose(comp["enc.weight"].numpy(), train_init_weight())  # (it did train)


def train_init_weight():
    tracenn.manual_seed(0)
    return _Net().enc.weight.detach().numpy()


def test_assigned_in_init_and_whole_model_compiled():
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = tracenn.compile(nn.Linear(3, 3))
            self.out = nn.Linear(3, 1)

        def forward(self, x):
            return self.out(self.inner(x).relu())

    o = Outer()
    assert [n for n, _ in o.named_parameters()] == ["inner.weight", "inner.bias", "out.weight", "out.bias"]
    x = X.clone().requires_grad_(True)
    eager = o(x)
    eager.sum().backward()
    grads = [p.grad.clone() for p in o.parameters()]
    o.zero_grad()
    compiled = tracenn.compile(o)(x)  # (the inner compiled call is inlined into the outer program)
    compiled.sum().backward()
    assert_close(compiled, eager)
    for p, g in zip(o.parameters(), grads):
        assert_close(p.grad, g)


def test_replacing_deleting_and_copying_a_compiled_child():
    m = _Net()
    m.enc = tracenn.compile(m.enc)
    c = copy.deepcopy(m)
    assert isinstance(c.enc, Compiled) and c._modules["enc"] is c.enc
    assert c.enc.weight is not m.enc.weight
    assert_close(c(X), m(X))
    m.enc = nn.Linear(3, 4)
    assert type(m.enc) is nn.Linear and m._modules["enc"] is m.enc
    del m.enc
    assert not hasattr(m, "enc") and "enc" not in m._modules


def test_the_parameter_count_matches_torch():
    torch = pytest.importorskip("torch")
    t = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 1))
    t[0] = torch.compile(t[0])
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    m[0] = tracenn.compile(m[0])
    assert len(list(m.parameters())) == len(list(t.parameters())) == 4
    assert [k.replace("_orig_mod.", "") for k in t.state_dict()] == list(m.state_dict())
