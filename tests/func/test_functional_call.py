"""tracenn.func.functional_call: torch.func.functional_call's semantics, eagerly and compiled."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.func import functional_call
from helpers import assert_close, to_np


def _lin():
    lin = nn.Linear(2, 1)
    with tracenn.no_grad():
        lin.weight.fill_(5.0)
        lin.bias.fill_(-1.0)
    return lin


X = [[1.0, 2.0], [3.0, -1.0]]


# ---- eager semantics, known values ------------------------------------------------------------

def test_replaces_given_tensors_and_leaves_the_module_alone():
    lin = _lin()
    w, b = lin.weight, lin.bias
    params = {"weight": tracenn.tensor([[1.0, 1.0]]), "bias": tracenn.tensor([0.5])}
    y = functional_call(lin, params, tracenn.tensor(X))
    assert to_np(y).tolist() == [[3.5], [2.5]]
    assert lin.weight is w and lin.bias is b
    assert lin._parameters["weight"] is w
    assert to_np(lin.weight).tolist() == [[5.0, 5.0]]
    assert to_np(lin(tracenn.tensor(X))).tolist() == [[14.0], [9.0]]


def test_missing_names_keep_the_modules_own():
    lin = _lin()
    y = functional_call(lin, {"bias": tracenn.tensor([0.0])}, tracenn.tensor(X))
    assert to_np(y).tolist() == [[15.0], [10.0]]


def test_autograd_reaches_the_given_tensors_only():
    lin = _lin()
    params = {k: v.detach().clone().requires_grad_() for k, v in lin.named_parameters()}
    loss = functional_call(lin, params, (tracenn.tensor(X),)).sum()
    gw, gb = tracenn.autograd.grad(loss, list(params.values()))
    assert to_np(gw).tolist() == [[4.0, 1.0]] and to_np(gb).tolist() == [2.0]
    loss = functional_call(lin, params, tracenn.tensor(X)).sum()
    loss.backward()
    assert to_np(params["weight"].grad).tolist() == [[4.0, 1.0]]
    assert lin.weight.grad is None and lin.bias.grad is None


def test_args_and_kwargs():
    class Affine(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(tracenn.tensor(2.0))

        def forward(self, x, y, *, shift=0.0):
            return self.scale * x + y + shift

    m = Affine()
    p = {"scale": tracenn.tensor(10.0)}
    assert functional_call(m, p, (tracenn.tensor(1.0), tracenn.tensor(2.0)), {"shift": 3.0}).item() == 15.0
    assert functional_call(m, p, tracenn.tensor(1.0), {"y": tracenn.tensor(0.0)}).item() == 10.0
    assert m.scale.item() == 2.0


def test_tuple_of_dicts():
    lin = _lin()
    dicts = ({"weight": tracenn.tensor([[1.0, 1.0]])}, {"bias": tracenn.tensor([0.0])})
    assert to_np(functional_call(lin, dicts, tracenn.tensor(X))).tolist() == [[3.0], [2.0]]
    with pytest.raises(ValueError, match=r"\['bias'\] appeared in multiple dictionaries"):
        functional_call(lin, ({"bias": tracenn.zeros(1)}, {"bias": tracenn.ones(1)}), tracenn.tensor(X))
    with pytest.raises(ValueError, match="Expected all elements of parameter_and_buffer_dicts to be dictionaries"):
        functional_call(lin, ({"bias": tracenn.zeros(1)}, 3), tracenn.tensor(X))
    with pytest.raises(ValueError, match="to be a dict, or a list/tuple of dicts"):
        functional_call(lin, 3, tracenn.tensor(X))


def test_strict_lists_unexpected_then_missing_keys():
    lin = _lin()
    with pytest.raises(RuntimeError) as e:
        functional_call(lin, {"weight": lin.weight, "extra": tracenn.zeros(1)}, tracenn.tensor(X), strict=True)
    assert str(e.value) == ("Error(s) in reparametrizing for Linear:\n\tUnexpected key(s): 'extra'.\n"
                            "\tMissing key(s): 'bias'.")
    assert "extra" not in lin.__dict__
    full = dict(lin.named_parameters())
    assert functional_call(lin, full, tracenn.tensor(X), strict=True).shape == (2, 1)


def test_module_restored_when_forward_raises():
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.register_buffer("count", tracenn.zeros(()))

        def forward(self, x):
            self.lin(x)
            raise ValueError("boom")

    m = Boom()
    before = {n: t for n, t in m.state_dict(keep_vars=True).items()}
    with pytest.raises(ValueError, match="boom"):
        functional_call(m, {"lin.weight": tracenn.ones(2, 2), "count": tracenn.ones(()),
                            "new_attr": tracenn.ones(1)}, tracenn.ones(1, 2))
    assert m.state_dict(keep_vars=True) == before
    assert all(m.state_dict(keep_vars=True)[k] is v for k, v in before.items())
    assert not hasattr(m, "new_attr")


def test_unknown_names_are_attributes_for_the_call_and_bad_paths_raise():
    class UsesExtra(nn.Module):
        def forward(self, x):
            return x + getattr(self, "extra", 0.0)

    m = UsesExtra()
    assert functional_call(m, {"extra": tracenn.tensor(2.0)}, tracenn.tensor(1.0)).item() == 3.0
    assert not hasattr(m, "extra")
    with pytest.raises(AttributeError, match="UsesExtra has no attribute `nothere`"):
        functional_call(m, {"nothere.weight": tracenn.zeros(1)}, tracenn.tensor(1.0))
    with pytest.raises(TypeError, match="is not an instance of tracenn.Tensor"):
        functional_call(nn.Linear(2, 1), {"weight": [[1.0, 2.0]]}, tracenn.ones(1, 2))


def test_batchnorm_updates_land_in_the_given_buffers():
    bn = nn.BatchNorm1d(2)
    bufs = {k: v.clone() for k, v in bn.named_buffers()}
    x = tracenn.tensor([[1.0, 2.0], [3.0, 6.0]])
    functional_call(bn, bufs, x)
    assert to_np(bufs["running_mean"]).tolist() == pytest.approx([0.2, 0.4])
    assert to_np(bufs["running_var"]).tolist() == pytest.approx([0.9 + 0.1 * 2.0, 0.9 + 0.1 * 8.0])
    assert bufs["num_batches_tracked"].item() == 1
    assert to_np(bn.running_mean).tolist() == [0.0, 0.0] and bn.num_batches_tracked.item() == 0


def test_a_reassigned_buffer_is_written_back_into_the_dict():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("foo", tracenn.zeros(()))

        def forward(self, x):
            self.foo = self.foo + 1
            return x + self.foo

    m = Counter()
    a = {"foo": tracenn.zeros(())}
    assert functional_call(m, a, tracenn.ones(())).item() == 2.0
    assert a["foo"].item() == 1.0 and m.foo.item() == 0.0


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.foo = nn.Parameter(tracenn.tensor(1.0))
        self.register_buffer("foo_tied", self.foo)

    def forward(self, x):
        return x + self.foo + self.foo_tied


def test_tied_weights():
    m = Tied()
    x = tracenn.zeros(())
    assert m(x).item() == 2.0
    assert functional_call(m, {"foo": tracenn.zeros(())}, x).item() == 0.0
    assert functional_call(m, {"foo": tracenn.zeros(())}, x, tie_weights=False).item() == 1.0
    z = tracenn.zeros(())
    assert functional_call(m, {"foo": z, "foo_tied": z}, x).item() == 0.0
    with pytest.raises(ValueError, match=r"multiple values for keys \['foo', 'foo_tied'\], which are tied"):
        functional_call(m, {"foo": tracenn.zeros(()), "foo_tied": tracenn.zeros(())}, x)
    assert functional_call(m, {"foo": tracenn.zeros(()), "foo_tied": tracenn.ones(())}, x,
                           tie_weights=False).item() == 1.0
    assert m.foo_tied is m.foo


def test_compiled_module_runs_its_module():
    lin = _lin()
    cm = tracenn.compile(lin)
    cm(tracenn.tensor(X))
    y = functional_call(cm, {"weight": tracenn.tensor([[1.0, 1.0]])}, tracenn.tensor(X))
    assert to_np(y).tolist() == [[2.0], [1.0]]
    assert to_np(cm(tracenn.tensor(X))).tolist() == [[14.0], [9.0]]


def test_a_compiled_call_of_the_same_model_inside_sees_the_swap():
    lin = _lin()
    cm = tracenn.compile(lin)
    cm(tracenn.tensor(X))

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = lin

        def forward(self, x):
            return cm(x)

    y = functional_call(Outer(), {"inner.weight": tracenn.tensor([[1.0, 1.0]])}, tracenn.tensor(X))
    assert to_np(y).tolist() == [[2.0], [1.0]]
    assert to_np(cm(tracenn.tensor(X))).tolist() == [[14.0], [9.0]]


# ---- under tracenn.compile ----------------------------------------------------------------------

def test_inside_compile_params_are_inputs():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = tracenn.randn(5, 3)

    def f(params, x):
        return functional_call(model, params, (x,))

    cm = tracenn.compile(f)
    params = {k: v.detach().clone().requires_grad_() for k, v in model.named_parameters()}
    out = cm(params, x)
    assert_close(out, f(params, x))
    out.pow(2).sum().backward()
    grads = {k: v.grad.clone() for k, v in params.items()}
    for v in params.values():
        v.grad = None
    f(params, x).pow(2).sum().backward()
    for k, v in params.items():
        assert_close(grads[k], v.grad, rtol=1e-5, atol=1e-6)
    # (the compiled backward gives the model's own, unused parameters a zero .grad where eager
    # leaves None: a runtime divergence, reported; the values are what matters here)
    assert all(p.grad is None or not to_np(p.grad).any() for p in model.parameters())
    # new parameter values are new inputs, not a new program
    params2 = {k: (v.detach() * 2).requires_grad_() for k, v in params.items()}
    assert_close(cm(params2, x), f(params2, x))
    assert len(cm._entries) == 1
    # the model's own parameters are back after tracing
    assert all(isinstance(p, nn.Parameter) for p in model.parameters())


def test_inside_compile_buffer_updates_reach_the_given_tensors():
    bn = nn.BatchNorm1d(3)
    x = tracenn.randn(8, 3)
    cm = tracenn.compile(lambda bufs, x: functional_call(bn, bufs, x))
    eager = {k: v.clone() for k, v in bn.named_buffers()}
    compiled = {k: v.clone() for k, v in bn.named_buffers()}
    for _ in range(2):
        assert_close(cm(compiled, x), functional_call(bn, eager, x))
    for k in eager:
        assert_close(compiled[k], eager[k])
    assert compiled["num_batches_tracked"].item() == 2
    assert bn.num_batches_tracked.item() == 0


# ---- PyTorch as the oracle ----------------------------------------------------------------------

def _pair(torch):
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, m


def test_matches_torch_outputs_grads_and_buffers(torch):
    tm, m = _pair(torch)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    new = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in tm.named_parameters()}
    tparams = {k: torch.tensor(v, requires_grad=True) for k, v in new.items()}
    tbufs = {k: v.clone() for k, v in tm.named_buffers()}
    params = {k: tracenn.tensor(v, requires_grad=True) for k, v in new.items()}
    bufs = {k: tracenn.tensor(v.numpy()) for k, v in tm.named_buffers()}
    ty = torch.func.functional_call(tm, (tparams, tbufs), torch.tensor(x))
    y = functional_call(m, (params, bufs), tracenn.tensor(x))
    assert_close(y, ty, rtol=1e-5, atol=1e-5)
    tg = torch.autograd.grad(ty.square().sum(), list(tparams.values()))
    g = tracenn.autograd.grad(y.square().sum(), list(params.values()))
    for a, b in zip(g, tg):
        assert_close(a, b, rtol=1e-4, atol=1e-5)
    for k in tbufs:
        assert_close(bufs[k], tbufs[k], rtol=1e-6, atol=1e-6)
    for k, v in tm.state_dict().items():  # both modules untouched
        assert_close(m.state_dict()[k], v)


def test_error_messages_match_torch(torch):
    tm, m = _pair(torch)

    def message(fn, *a, **k):
        with pytest.raises(Exception) as e:
            fn(*a, **k)
        return type(e.value).__name__, str(e.value)

    cases = [
        ({"0.weight": 1, "bogus": 2}, {"strict": True}),
        (({"0.bias": 1}, {"0.bias": 2}), {}),
        ([{"0.bias": 1}, 5], {}),
        ("x", {}),
    ]
    for given, kw in cases:
        def conv(d, lib, like):
            if isinstance(d, dict):
                return {k: like for k in d}
            if isinstance(d, (list, tuple)):
                return type(d)(conv(i, lib, like) for i in d)
            return d
        t_msg = message(torch.func.functional_call, tm, conv(given, torch, torch.zeros(1)), torch.zeros(2, 3), **kw)
        msg = message(functional_call, m, conv(given, tracenn, tracenn.zeros(1)), tracenn.zeros(2, 3), **kw)
        assert msg == t_msg
