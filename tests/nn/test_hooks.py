"""Module hooks: forward (pre-)hooks, full backward (pre-)hooks, the old backward hook, global
hooks, registration hooks and handles. The call logs must be the same as torch's."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import to_np


class _Log(list):
    def hook(self, tag, ret=None):
        def fn(*args):
            self.append(tag)
            return ret
        return fn


# ---- forward hooks -----------------------------------------------------------------------------

def test_forward_hook_order_prepend_and_global(lib):
    import importlib
    mm = importlib.import_module(lib.__name__ + ".nn.modules.module")
    log = _Log()
    m = lib.nn.Identity()
    m.register_forward_pre_hook(log.hook("pre1"))
    m.register_forward_pre_hook(log.hook("pre0"), prepend=True)
    m.register_forward_hook(log.hook("post1"))
    m.register_forward_hook(log.hook("post0"), prepend=True)
    with mm.register_module_forward_pre_hook(log.hook("gpre")), mm.register_module_forward_hook(log.hook("gpost")):
        m(lib.ones(1))
    assert log == ["gpre", "pre0", "pre1", "gpost", "post0", "post1"]
    log.clear()
    m(lib.ones(1))
    assert log == ["pre0", "pre1", "post0", "post1"]


def test_forward_pre_hook_replaces_input_single_value_is_wrapped(lib):
    m = lib.nn.Identity()
    seen = []
    m.register_forward_pre_hook(lambda mod, args: args[0] + 1)  # not a tuple: wrapped
    m.register_forward_pre_hook(lambda mod, args: seen.append(type(args).__name__) or (args[0] * 10,))
    assert m(lib.ones(1)).tolist() == [20.0]
    assert seen == ["tuple"]


def test_forward_hook_sees_args_and_replaces_output(lib):
    m = lib.nn.Linear(2, 2)
    seen = {}

    def hook(mod, args, out):
        seen["mod"], seen["args"], seen["out"] = mod, args, out
        return out * 0

    h = m.register_forward_hook(hook)
    x = lib.ones(1, 2)
    out = m(x)
    assert seen["mod"] is m and seen["args"][0] is x and tuple(seen["out"].shape) == (1, 2)
    assert out.tolist() == [[0.0, 0.0]]
    h.remove()
    assert m(x).tolist() != [[0.0, 0.0]]


def test_hooks_with_kwargs(lib):
    class M(lib.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    m = M()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"scale": kwargs.get("scale", 1.0) * 2}),
                                with_kwargs=True)
    seen = []
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(dict(kwargs)) or out + 1, with_kwargs=True)
    assert m(lib.ones(1), scale=3.0).tolist() == [7.0]
    assert seen == [{"scale": 6.0}]


def test_forward_pre_hook_with_kwargs_bad_return(lib):
    m = lib.nn.Identity()
    m.register_forward_pre_hook(lambda mod, args, kwargs: 5, with_kwargs=True)
    with pytest.raises(RuntimeError) as e:
        m(lib.ones(1))
    assert str(e.value) == "forward pre-hook must return None or a tuple of (new_args, new_kwargs), but got 5."


def test_always_call_hook_runs_when_forward_raises(lib):
    class Boom(lib.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    log = _Log()
    m = Boom()
    m.register_forward_hook(log.hook("always"), always_call=True)
    m.register_forward_hook(log.hook("normal"))
    with pytest.raises(ValueError, match="boom"):
        m(lib.ones(1))
    assert log == ["always"]


def test_always_call_hook_errors_are_warned_not_raised(lib):
    class Boom(lib.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    def bad(mod, args, out):
        raise KeyError("hook")

    m = Boom()
    m.register_forward_hook(bad, always_call=True)
    with pytest.warns(UserWarning, match="module forward hook with ``always_call=True`` raised an exception"):
        with pytest.raises(ValueError, match="boom"):
            m(lib.ones(1))


def test_global_always_call_hook(lib):
    import importlib
    mm = importlib.import_module(lib.__name__ + ".nn.modules.module")

    class Boom(lib.nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    log = _Log()
    with mm.register_module_forward_hook(log.hook("g"), always_call=True):
        with pytest.raises(ValueError):
            Boom()(lib.ones(1))
    assert log == ["g"]


def test_calling_forward_directly_skips_hooks(lib):
    log = _Log()
    m = lib.nn.Identity()
    m.register_forward_pre_hook(log.hook("pre"))
    m.register_forward_hook(log.hook("post"))
    m.forward(lib.ones(1))
    assert log == []


def test_hooks_run_for_every_submodule_in_order(lib):
    log = []
    net = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Sequential(lib.nn.ReLU(), lib.nn.Tanh()))
    for name, mod in net.named_modules():
        mod.register_forward_pre_hook(lambda m, a, name=name: log.append("pre " + name))
        mod.register_forward_hook(lambda m, a, o, name=name: log.append("post " + name))
    net(lib.ones(1, 2))
    assert log == ["pre ", "pre 0", "post 0", "pre 1", "pre 1.0", "post 1.0", "pre 1.1", "post 1.1",
                   "post 1", "post "]


def test_handle_remove_and_context_manager(lib):
    log = _Log()
    m = lib.nn.Identity()
    h = m.register_forward_hook(log.hook("a"))
    h.remove()
    h.remove()  # twice is fine
    with m.register_forward_pre_hook(log.hook("b")) as h2:
        m(lib.ones(1))
    m(lib.ones(1))
    assert log == ["b"] and h2.id > h.id
    # removing a with_kwargs/always_call hook clears its flags too
    h3 = m.register_forward_hook(log.hook("c"), with_kwargs=True, always_call=True)
    h3.remove()
    assert h3.id not in m._forward_hooks_with_kwargs and h3.id not in m._forward_hooks_always_called


def test_removable_handle_pickles():
    import pickle
    m = nn.Identity()
    h = m.register_forward_hook(_noop_hook)
    h2 = pickle.loads(pickle.dumps(h))
    assert h2.id == h.id
    h2.remove()  # its dict is a copy: the original hook stays
    assert h.id in m._forward_hooks


def _noop_hook(*args):
    return None


# ---- full backward hooks -----------------------------------------------------------------------

def _two_layer(lib):
    lib.manual_seed(0)
    net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.Tanh(), lib.nn.Linear(4, 2))
    with lib.no_grad():
        for i, p in enumerate(net.parameters()):
            p.copy_(lib.linspace(-1.0, 1.0, p.numel()).reshape(p.shape) * (i + 1) / 3)
    return net


X = [[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]]


def _grads_seen(lib, x_requires_grad=True):
    net = _two_layer(lib)
    seen = []

    def hook(mod, gin, gout):
        seen.append(("full", type(mod).__name__, [None if g is None else to_np(g) for g in gin],
                     [None if g is None else to_np(g) for g in gout]))

    def pre(mod, gout):
        seen.append(("pre", type(mod).__name__, [None if g is None else to_np(g) for g in gout]))

    for m in net:
        m.register_full_backward_hook(hook)
        m.register_full_backward_pre_hook(pre)
    x = lib.tensor(X, requires_grad=x_requires_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (net(x) ** 2).sum().backward()
    return seen, x


def _assert_same_log(a, b):
    assert [e[:2] for e in a] == [e[:2] for e in b]
    for ea, eb in zip(a, b):
        for ga, gb in zip(ea[2:], eb[2:]):
            assert len(ga) == len(gb)
            for x, y in zip(ga, gb):
                assert (x is None) == (y is None)
                if x is not None:
                    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_full_backward_hooks_order_and_values_match_torch(torch):
    _assert_same_log(_grads_seen(tracenn)[0], _grads_seen(torch)[0])


def test_full_backward_hooks_when_input_needs_no_grad_match_torch(torch):
    got = _grads_seen(tracenn, x_requires_grad=False)[0]
    _assert_same_log(got, _grads_seen(torch, x_requires_grad=False)[0])
    assert got[-1][:2] == ("full", "Linear") and got[-1][2] == [None]


def test_full_backward_hook_order_within_a_module(lib):
    log = []
    net = _two_layer(lib)
    for name, m in net.named_modules():
        m.register_full_backward_pre_hook(lambda mod, go, name=name: log.append("pre " + name))
        m.register_full_backward_hook(lambda mod, gi, go, name=name: log.append("full " + name))
    x = lib.tensor(X, requires_grad=True)
    net(x).sum().backward()
    assert log == ["pre ", "pre 2", "full 2", "pre 1", "full 1", "pre 0", "full 0", "full "]


def test_full_backward_hook_replaces_grad_input(lib):
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 0 + 5,))
    x = lib.tensor(X, requires_grad=True)
    m(x).sum().backward()
    assert x.grad.tolist() == [[5.0] * 3] * 2
    assert m.weight.grad is not None  # parameter gradients are not affected


def test_full_backward_pre_hook_replaces_grad_output(lib):
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 0,))
    x = lib.tensor(X, requires_grad=True)
    m(x).sum().backward()
    assert x.grad.abs().sum().item() == 0.0 and m.weight.grad.abs().sum().item() == 0.0


def test_full_backward_hook_multiple_inputs_and_outputs(lib):
    class Two(lib.nn.Module):
        def forward(self, a, flag, b, c):
            return a * b, a + c, 3

    seen = {}

    def hook(mod, gin, gout):
        seen["gin"] = [None if g is None else g.tolist() for g in gin]
        seen["gout"] = [None if g is None else g.tolist() for g in gout]

    m = Two()
    m.register_full_backward_hook(hook)
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    b = lib.tensor([3.0, 4.0], requires_grad=True)
    c = lib.tensor([5.0, 6.0])  # a tensor needing no grad gets zeros in grad_input (torch's rule)
    p, q, _ = m(a, True, b, c)
    (p.sum() * 2 + q.sum()).backward()
    assert seen["gin"] == [[7.0, 9.0], None, [2.0, 4.0], [0.0, 0.0]]
    assert seen["gout"] == [[2.0, 2.0], [1.0, 1.0], None]


def test_grad_output_is_none_for_unused_and_non_differentiable_outputs(lib):
    class Three(lib.nn.Module):
        def forward(self, a, c):
            return a * 2, a * 3, c * 1

    log = []
    m = Three()
    m.register_full_backward_pre_hook(lambda mod, go: log.append([None if g is None else g.tolist() for g in go]))
    m.register_full_backward_hook(lambda mod, gi, go: log.append(
        ([None if g is None else g.tolist() for g in gi], [None if g is None else g.tolist() for g in go])))
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    p, q, r = m(a, lib.tensor([5.0, 6.0]))
    assert not r.requires_grad
    p.sum().backward()
    assert log == [[[1.0, 1.0], None, None],
                   ([[2.0, 2.0], [0.0, 0.0]], [[1.0, 1.0], None, None])]


def test_full_backward_hook_wrong_length_raises(lib):
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0], gin[0]))
    with pytest.raises(RuntimeError) as e:
        m(lib.tensor(X, requires_grad=True)).sum().backward()
    assert str(e.value) == "Backward hook returned an invalid number of grad_input, got 2, but expected 1"


def test_full_backward_pre_hook_wrong_length_raises(lib):
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_pre_hook(lambda mod, gout: (gout[0], gout[0]))
    with pytest.raises(RuntimeError) as e:
        m(lib.tensor(X, requires_grad=True)).sum().backward()
    assert str(e.value) == "Backward pre hook returned an invalid number of grad_output, got 2, but expected 1"


def test_full_backward_hook_without_input_grad_warns_and_must_return_none(lib):
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_hook(lambda mod, gin, gout: (lib.ones(2, 3),))
    with pytest.warns(UserWarning, match="Full backward hook is firing when gradients are computed with "
                                         "respect to module outputs since no inputs require gradients"):
        with pytest.raises(RuntimeError) as e:
            m(lib.tensor(X)).sum().backward()
    assert str(e.value) == ("Backward hook for Modules where no input requires gradient should always "
                            "return None or None for all gradients.")


def test_backward_hooks_are_not_set_up_under_no_grad(lib):
    log = _Log()
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_hook(log.hook("full"))
    x = lib.tensor(X, requires_grad=True)
    with lib.no_grad():
        out = m(x)
    assert not out.requires_grad and log == []


def test_full_backward_hook_on_a_module_called_twice(lib):
    log = []
    m = lib.nn.Linear(3, 3)
    m.register_full_backward_hook(lambda mod, gin, gout: log.append(gout[0].tolist()))
    x = lib.ones(1, 3, requires_grad=True)
    (m(m(x)) * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert len(log) == 2 and log[0] == [[1.0, 2.0, 3.0]]


def test_backward_hook_kinds_cannot_be_mixed(lib):
    m = lib.nn.Linear(1, 1)
    m.register_full_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError) as e:
        m.register_backward_hook(lambda *a: None)
    assert str(e.value) == ("Cannot use both regular backward hooks and full backward hooks on a single "
                            "Module. Please use only one of them.")
    m2 = lib.nn.Linear(1, 1)
    m2.register_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError):
        m2.register_full_backward_hook(lambda *a: None)


def test_global_backward_hook_kinds_cannot_be_mixed(lib):
    import importlib
    mm = importlib.import_module(lib.__name__ + ".nn.modules.module")
    with mm.register_module_full_backward_hook(lambda *a: None):
        with pytest.raises(RuntimeError) as e:
            mm.register_module_backward_hook(lambda *a: None)
    assert str(e.value) == ("Cannot use both regular backward hooks and full backward hooks as a global "
                            "Module hook. Please use only one of them.")


def test_global_full_backward_hooks_run_first(lib):
    import importlib
    mm = importlib.import_module(lib.__name__ + ".nn.modules.module")
    log = _Log()
    m = lib.nn.Linear(3, 2)
    m.register_full_backward_hook(log.hook("own"))
    m.register_full_backward_pre_hook(log.hook("own pre"))
    with mm.register_module_full_backward_hook(log.hook("global")), \
            mm.register_module_full_backward_pre_hook(log.hook("global pre")):
        m(lib.tensor(X, requires_grad=True)).sum().backward()
    assert log == ["global pre", "own pre", "global", "own"]


def test_old_backward_hook_gets_grads_of_the_last_op(lib):
    seen = []

    class Scale(lib.nn.Module):
        def forward(self, x):
            return x * 3.0

    m = Scale()
    m.register_backward_hook(lambda mod, gin, gout: seen.append(
        ([g.tolist() for g in gin if g is not None], [g.tolist() for g in gout])))
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(FutureWarning, match="non-full backward hook"):  # x is a leaf: torch warns too
        y = m(x)
    y.sum().backward()
    assert seen == [([[3.0, 3.0]], [[1.0, 1.0]])]


def test_old_backward_hook_warns_when_forward_has_several_nodes(lib):
    m = lib.nn.Linear(3, 2)  # tracenn: matmul then add; torch: one addmm but a transposed weight
    m.register_backward_hook(lambda *a: None)
    with pytest.warns(FutureWarning, match="Using a non-full backward hook when the forward contains multiple "
                                           "autograd Nodes"):
        m(lib.tensor(X, requires_grad=True))


def test_old_backward_hook_warns_on_non_tensor_output(lib):
    class Dict(lib.nn.Module):
        def forward(self, x):
            return {"y": x * 2}

    m = Dict()
    m.register_backward_hook(lambda *a: None)
    with pytest.warns(FutureWarning, match="does not return a single Tensor or a tuple of Tensors"):
        m(lib.ones(1, requires_grad=True))


def test_backward_hook_on_module_with_dict_output_warns(lib):
    class Dict(lib.nn.Module):
        def forward(self, x):
            return {"y": x * 2}

    m = Dict()
    m.register_full_backward_hook(lambda *a: None)
    with pytest.warns(UserWarning, match="For backward hooks to be called, module output should be a Tensor "
                                         "or a tuple of Tensors but received <class 'dict'>"):
        m(lib.ones(1, requires_grad=True))


# ---- registration hooks ------------------------------------------------------------------------

def test_registration_hooks_see_and_replace(lib):
    import importlib
    mm = importlib.import_module(lib.__name__ + ".nn.modules.module")
    log = []
    replacement = lib.nn.Parameter(lib.zeros(1))

    def on_param(mod, name, p):
        log.append(("param", name))
        return replacement

    with mm.register_module_parameter_registration_hook(on_param), \
            mm.register_module_buffer_registration_hook(lambda mod, name, b: log.append(("buffer", name))), \
            mm.register_module_module_registration_hook(lambda mod, name, sub: log.append(("module", name))):
        m = lib.nn.Module()
        m.p = lib.nn.Parameter(lib.ones(1))
        m.register_buffer("b", lib.ones(1))
        m.c = lib.nn.ReLU()
        m.add_module("d", lib.nn.ReLU())
    m.e = lib.nn.ReLU()
    assert log == [("param", "p"), ("buffer", "b"), ("module", "c"), ("module", "d")]
    assert m.p is replacement
