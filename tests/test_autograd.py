"""Eager autograd semantics pinned to torch's: .grad accumulation, retain_graph, grad modes,
detach, retain_grad, grad_fn, backward(gradient=/inputs=), autograd.grad, hooks, the saved-tensor
version check, in-place rules, multi-output ops, gradients through views and in-place writes, and
one eager MLP training step.

Scenarios are functions of the library module ``T`` (tracenn, or torch when installed): each is
checked against values worked out by hand (no torch needed) and against PyTorch.
"""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np


def _values(out):
    out = out if isinstance(out, tuple) else (out,)
    return [to_np(o) if hasattr(o, "detach") else o for o in out]


def _check(got, want, tol=1e-6):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        if isinstance(w, (np.ndarray, list, float)) and not isinstance(g, (bool, str, type(None))):
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64), rtol=tol, atol=tol)
        else:
            assert g == w, (g, w)


# ---- value scenarios: known values + torch parity ----------------------------------------------

def _accumulate(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    first = x.grad.clone()
    (x * 3).sum().backward()
    return first, x.grad


def _retain_graph_twice(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return x.grad


def _grad_none_then_zero(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    x.grad = None
    (x * 5).sum().backward()
    a = x.grad.clone()
    x.grad.zero_()
    (x * 7).sum().backward()
    return a, x.grad


def _add_graph_twice(T):
    """A graph that saved no tensors (add, sum, slicing) can be walked again, as in torch."""
    x = T.ones(3, requires_grad=True)
    y = (x[1:] + 1).sum()
    y.backward()
    y.backward()
    return x.grad


def _gradient_arg(T):
    x = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(T.tensor([1.0, 0.5, -1.0]))
    return x.grad


def _inputs_arg(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    w = T.tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    (h * h).sum().backward(inputs=[x])
    gx, gw = x.grad, w.grad
    (h * h).sum().backward(inputs=[h]) if False else None
    return gx, gw is None


def _inputs_nonleaf(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    h = x * 2
    (h * h).sum().backward(inputs=[h])
    return h.grad, x.grad is None


def _retain_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    z = x * 4
    y.retain_grad()
    (y * z).sum().backward()
    return y.grad, z.grad is None, y.retains_grad, z.retains_grad, x.grad


def _autograd_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    w = T.tensor([3.0, -1.0], requires_grad=True)
    gx, gw = T.autograd.grad((x * x * w).sum(), [x, w])
    return gx, gw, x.grad is None, w.grad is None


def _autograd_grad_nonleaf(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    h = x.exp()
    (g,) = T.autograd.grad((h * h).sum(), h)
    return g, x.grad is None


def _allow_unused(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    u = T.tensor([5.0], requires_grad=True)
    gx, gu = T.autograd.grad((x * 3).sum(), [x, u], allow_unused=True, retain_graph=True)
    mx, mu = T.autograd.grad((x * 3).sum(), [x, u], materialize_grads=True)
    return gx, gu is None, mx, mu


def _grad_outputs(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    (g,) = T.autograd.grad(x * x, x, grad_outputs=T.tensor([10.0, 1.0]))
    return g


def _leaf_hook(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.clone()) or g * 10)
    (x * 3).sum().backward()
    first = x.grad.clone()
    h.remove()
    x.grad = None
    (x * 3).sum().backward()
    return seen[0], first, x.grad, len(seen)


def _nonleaf_hook(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    seen = []
    y.register_hook(lambda g: seen.append(g.clone()))          # observe only
    y.register_hook(lambda g: g + 1)                           # replace
    y.retain_grad()                                            # sees the replaced gradient
    (y * 3).sum().backward()
    return seen[0], y.grad, x.grad


def _hook_in_autograd_grad(T):
    x = T.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g * 0.5)
    return T.autograd.grad((x * 4).sum(), x)[0]


def _no_grad_optimizer_step(T):
    p = T.tensor([1.0, 2.0], requires_grad=True)
    (p * p).sum().backward()
    with T.no_grad():
        p.add_(p.grad, alpha=-0.1)
        p -= 0.5 * p.grad
        p.mul_(2)
    return p, p.is_leaf, p.requires_grad, p.grad_fn is None


def _max_dim(T):
    a = T.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    v, i = a.max(1)
    (v * T.tensor([1.0, 10.0])).sum().backward()
    return a.grad, i, i.requires_grad


def _min_dim_indices_only(T):
    a = T.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]], requires_grad=True)
    v, _ = a.min(1, keepdim=True)
    (v * 2).sum().backward()
    return a.grad


def _sort(T):
    a = T.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = a.sort(descending=True)
    (v * T.tensor([1.0, 2.0, 3.0])).sum().backward()
    return a.grad, i


def _topk(T):
    a = T.tensor([3.0, 1.0, 2.0, 5.0], requires_grad=True)
    v, i = a.topk(2)
    (v * T.tensor([1.0, 2.0])).sum().backward()
    return a.grad, i


def _split(T):
    a = T.arange(6.0).requires_grad_()
    p = a.split(2)
    (p[1] * 3).sum().backward()
    return a.grad


def _chunk(T):
    a = T.arange(6.0).reshape(3, 2).requires_grad_()
    p = a.chunk(3)
    (p[0] * p[2]).sum().backward()
    return a.grad


def _unbind(T):
    a = T.arange(6.0).reshape(3, 2).requires_grad_()
    r = a.unbind(1)
    (r[1] ** 2).sum().backward()
    return a.grad


def _setitem_into_clone(T):
    """The brief's example: a.grad is 0 in the overwritten row, b gets 2 per element."""
    a = T.ones(3, 2, requires_grad=True)
    b = T.tensor(3.0, requires_grad=True)
    x = a.clone()
    x[0] = b * 2
    x.sum().backward()
    return a.grad, b.grad, x


def _inplace_through_view(T):
    a = T.ones(3, 2, requires_grad=True)
    b = T.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1
    x[1].mul_(b * 3)
    (x * x).sum().backward()
    return a.grad, b.grad, x


def _inplace_through_transpose(T):
    a = T.ones(3, 2, requires_grad=True)
    x = a * 2
    x.t()[0].mul_(5)
    (x * T.tensor([1.0, 2.0])).sum().backward()
    return a.grad, x


def _view_after_base_inplace(T):
    """A view taken before its base was changed in place follows the base's new history."""
    a = T.ones(3, 2, requires_grad=True)
    x = a * 2
    v = x[0]
    x.mul_(3)
    v.sum().backward()
    return a.grad, v


def _view_read_under_no_grad(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    v = x[0]
    x.mul_(3)
    with T.no_grad():
        float(v)  # reading the view inside no_grad must not cut it off the graph
    v.backward()
    return a.grad


def _view_gains_grad(T):
    """A view of a tensor that starts requiring grad through an in-place write requires grad."""
    x = T.zeros(3)
    v = x[:2]
    a = T.ones(2, requires_grad=True)
    x[1:] = a * 5
    (v * T.tensor([1.0, 10.0])).sum().backward()
    return v.requires_grad, a.grad


def _detach_shares_data(T):
    a = T.tensor([1.0, 2.0], requires_grad=True)
    d = a.detach()
    y = a * 1
    with T.no_grad():
        d[0] = 10.0
    return a, d.requires_grad, d.is_leaf, y


def _inplace_on_nonleaf_sequence(T):
    """Each in-place op's own saved values are its inputs' old values: chains are fine."""
    a = T.tensor([0.5, 1.0], requires_grad=True)
    x = a * 1
    x.sin_()
    x.mul_(a)
    x.pow_(2)
    x.sum().backward()
    return a.grad


def _setitem_from_self(T):
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = a * 1
    x[0] = x[2] + x[1]  # add saves nothing: overwriting x afterwards is fine
    x.sum().backward()
    return a.grad, x


def _multi_use(T):
    """A tensor used by several consumers gets the sum of their gradients."""
    a = T.tensor([1.0, -2.0], requires_grad=True)
    h = a * 3
    y = h.relu() + h.exp() * 0 + h * h
    y.sum().backward()
    return a.grad


def _detach_cuts_graph(T):
    a = T.tensor([2.0], requires_grad=True)
    y = a * a.detach()
    y.backward()
    return a.grad


SCENARIOS = {
    "accumulate": (_accumulate, ([2.0, 4.0], [5.0, 7.0])),
    "retain_graph_twice": (_retain_graph_twice, ([4.0, 8.0],)),
    "grad_none_then_zero": (_grad_none_then_zero, ([5.0, 5.0], [7.0, 7.0])),
    "add_graph_twice": (_add_graph_twice, ([0.0, 2.0, 2.0],)),
    "gradient_arg": (_gradient_arg, ([2.0, 2.0, -6.0],)),
    "inputs_arg": (_inputs_arg, ([18.0, 64.0], True)),
    "inputs_nonleaf": (_inputs_nonleaf, ([4.0, 8.0], True)),
    "retain_grad": (_retain_grad, ([4.0, 8.0], True, True, False, [24.0, 48.0])),
    "autograd_grad": (_autograd_grad, ([6.0, -4.0], [1.0, 4.0], True, True)),
    "autograd_grad_nonleaf": (_autograd_grad_nonleaf, ([2 * np.e, 2 * np.e ** 2], True)),
    "allow_unused": (_allow_unused, ([3.0, 3.0], True, [3.0, 3.0], [0.0])),
    "grad_outputs": (_grad_outputs, ([20.0, 4.0],)),
    "leaf_hook": (_leaf_hook, ([3.0, 3.0], [30.0, 30.0], [3.0, 3.0], 1)),
    "nonleaf_hook": (_nonleaf_hook, ([3.0, 3.0], [4.0, 4.0], [8.0, 8.0])),
    "hook_in_autograd_grad": (_hook_in_autograd_grad, ([2.0, 2.0],)),
    "no_grad_optimizer_step": (_no_grad_optimizer_step, ([-0.4, -0.8], True, True, True)),
    "max_dim": (_max_dim, ([[0, 1, 0], [10, 0, 0]], [1, 0], False)),
    "min_dim": (_min_dim_indices_only, ([[2, 0, 0], [0, 2, 0]],)),
    "sort": (_sort, ([1.0, 3.0, 2.0], [0, 2, 1])),
    "topk": (_topk, ([2.0, 0.0, 0.0, 1.0], [3, 0])),
    "split": (_split, ([0, 0, 3, 3, 0, 0],)),
    "chunk": (_chunk, ([[4, 5], [0, 0], [0, 1]],)),
    "unbind": (_unbind, ([[0, 2], [0, 6], [0, 10]],)),
    "setitem_into_clone": (_setitem_into_clone, ([[0, 0], [1, 1], [1, 1]], 4.0, [[6, 6], [1, 1], [1, 1]])),
    "inplace_through_view": (_inplace_through_view, (
        [[2, 2], [18, 72], [2, 2]], [18.0, 36.0], [[1, 1], [3, 6], [1, 1]])),
    "inplace_through_transpose": (_inplace_through_transpose, ([[10, 4]] * 3, [[10, 2]] * 3)),
    "view_after_base_inplace": (_view_after_base_inplace, ([[6, 6], [0, 0], [0, 0]], [6.0, 6.0])),
    "view_read_under_no_grad": (_view_read_under_no_grad, ([3.0, 0.0, 0.0],)),
    "view_gains_grad": (_view_gains_grad, (True, [50.0, 0.0])),
    "detach_shares_data": (_detach_shares_data, ([10.0, 2.0], False, True, [1.0, 2.0])),
    "inplace_on_nonleaf_sequence": (_inplace_on_nonleaf_sequence, (
        [2 * np.sin(0.5) * 0.5 * (np.cos(0.5) * 0.5 + np.sin(0.5)),
         2 * np.sin(1.0) * (np.cos(1.0) + np.sin(1.0))],)),
    "setitem_from_self": (_setitem_from_self, ([0.0, 2.0, 2.0], [5.0, 2.0, 3.0])),
    "multi_use": (_multi_use, ([3 + 18, -36.0],)),
    "detach_cuts_graph": (_detach_cuts_graph, ([2.0],)),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_known_values(name):
    fn, want = SCENARIOS[name]
    _check(_values(fn(tracenn)), list(want), tol=1e-5)


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_matches_torch(name, torch):
    fn, _ = SCENARIOS[name]
    _check(_values(fn(tracenn)), _values(fn(torch)), tol=1e-5)


def test_grad_accumulates_into_the_same_tensor(torch):
    for T in (tracenn, torch):
        x = T.ones(2, requires_grad=True)
        (x * 2).sum().backward()
        g = x.grad
        (x * 2).sum().backward()
        assert x.grad is g and g.tolist() == [4.0, 4.0]


# ---- graph structure ---------------------------------------------------------------------------

def test_leaf_and_requires_grad_propagation():
    a = tracenn.ones(2, requires_grad=True)
    b = tracenn.ones(2)
    assert a.is_leaf and b.is_leaf and a.grad_fn is None
    y = a * b
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = b * 2
    assert not z.requires_grad and z.is_leaf and z.grad_fn is None
    assert not a.argmax().requires_grad and not (a > 0).requires_grad
    assert not a.max(0)[1].requires_grad
    assert a.detach().is_leaf and not a.detach().requires_grad
    with tracenn.no_grad():
        w = a * 2
    assert w.is_leaf and not w.requires_grad


GRAD_FN_NAMES = {
    "mul": (lambda x: x * 2, "MulBackward0"),
    "add": (lambda x: x + 1, "AddBackward0"),
    "sub": (lambda x: x - 1, "SubBackward0"),
    "div": (lambda x: x / 2, "DivBackward0"),
    "neg": (lambda x: -x, "NegBackward0"),
    "pow": (lambda x: x ** 2, "PowBackward0"),
    "sum": (lambda x: x.sum(), "SumBackward0"),
    "mean": (lambda x: x.mean(), "MeanBackward0"),
    "exp": (lambda x: x.exp(), "ExpBackward0"),
    "relu": (lambda x: x.relu(), "ReluBackward0"),
    "sigmoid": (lambda x: x.sigmoid(), "SigmoidBackward0"),
    "tanh": (lambda x: x.tanh(), "TanhBackward0"),
    "clone": (lambda x: x.clone(), "CloneBackward0"),
    "view": (lambda x: x.view(6), "ViewBackward0"),
    "slice": (lambda x: x[:, 1:], "SliceBackward0"),
    "expand": (lambda x: x[:1].expand(3, 3), "ExpandBackward0"),
    "permute": (lambda x: x.permute(1, 0), "PermuteBackward0"),
    "index": (lambda x: x[[0, 1]], "IndexBackward0"),
    "cast": (lambda x: x.double(), "ToCopyBackward0"),
    "max_dim": (lambda x: x.max(1)[0], "MaxBackward0"),
    "amax": (lambda x: x.amax(1), "AmaxBackward0"),
    "cat": (lambda x: tracenn.cat([x, x]) if isinstance(x, tracenn.Tensor) else __import__("torch").cat([x, x]),
            "CatBackward0"),
    "gather": (lambda x: x.gather(1, (x[:, :1] * 0).long()), "GatherBackward0"),
}


@pytest.mark.parametrize("name", list(GRAD_FN_NAMES))
def test_grad_fn_names(name):
    fn, want = GRAD_FN_NAMES[name]
    assert fn(tracenn.ones(2, 3, requires_grad=True)).grad_fn.name() == want


@pytest.mark.parametrize("name", list(GRAD_FN_NAMES))
def test_grad_fn_names_match_torch(name, torch):
    fn, _ = GRAD_FN_NAMES[name]
    assert fn(tracenn.ones(2, 3, requires_grad=True)).grad_fn.name() == \
        fn(torch.ones(2, 3, requires_grad=True)).grad_fn.name()


def test_next_functions():
    a = tracenn.ones(2, requires_grad=True)
    b = tracenn.ones(2)
    y = (a * b).sum()
    assert y.grad_fn.name() == "SumBackward0"
    ((mul, idx),) = y.grad_fn.next_functions
    assert mul.name() == "MulBackward0" and idx == 0
    (acc, i0), (none, i1) = mul.next_functions
    assert acc.name() == "AccumulateGrad" and acc.variable() is a and i0 == 0
    assert none is None and i1 == 0
    assert a._grad_accumulator() is acc  # one accumulator per leaf


def test_copy_slices_name(torch):
    x = tracenn.ones(2, requires_grad=True) * 1
    x[0] = 3.0
    assert x.grad_fn.name() == "CopySlices"
    t = torch.ones(2, requires_grad=True) * 1
    t[0] = 3.0
    assert t.grad_fn.name().endswith("CopySlices")


def test_multi_output_grad_fn_shared():
    a = tracenn.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = a.sort()
    assert v.grad_fn is not None and i.grad_fn is None and not i.requires_grad
    parts = a.split(1)
    assert all(p.grad_fn.name() == "SliceBackward0" for p in parts)


# ---- errors ------------------------------------------------------------------------------------

def _second_backward(T):
    x = T.ones(3, requires_grad=True)
    y = (x.exp()).sum()
    y.backward()
    y.backward()


def _second_autograd_grad(T):
    x = T.ones(3, requires_grad=True)
    y = (x * x).sum()
    T.autograd.grad(y, x)
    T.autograd.grad(y, x)


def _nonscalar(T):
    (T.ones(2, requires_grad=True) * 2).backward()


def _gradient_shape(T):
    (T.ones(3, requires_grad=True) * 2).backward(T.ones(2))


def _no_grad_backward(T):
    (T.ones(3) * 2).sum().backward()


def _backward_under_no_grad_graph(T):
    x = T.ones(3, requires_grad=True)
    with T.no_grad():
        y = (x * 2).sum()
    y.backward()


def _int_requires_grad(T):
    T.ones(3, dtype=T.int64).requires_grad_()


def _int_tensor_requires_grad(T):
    T.tensor([1, 2], requires_grad=True)


def _nonleaf_requires_grad_false(T):
    (T.ones(3, requires_grad=True) * 2).requires_grad_(False)


def _retain_grad_no_grad(T):
    T.ones(3).retain_grad()


def _hook_no_grad(T):
    T.ones(3).register_hook(lambda g: g)


def _unused_input(T):
    x = T.ones(2, requires_grad=True)
    T.autograd.grad((x * 2).sum(), [x, T.ones(2, requires_grad=True)])


def _grad_of_no_grad_input(T):
    x = T.ones(2, requires_grad=True)
    T.autograd.grad((x * 2).sum(), [T.ones(2)])


def _empty_inputs(T):
    (T.ones(2, requires_grad=True) * 2).sum().backward(inputs=[])


def _detach_view_inplace(T):
    ((T.ones(3, requires_grad=True) * 2)[:2]).detach_()


def _saved_output_modified(T):
    a = T.ones(3, requires_grad=True)
    y = (a * 1).exp()
    y.add_(1)
    y.sum().backward()


def _saved_input_modified(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    y = x.sin()
    x.add_(1)
    y.sum().backward()


def _saved_modified_through_view(T):
    a = T.ones(2, 2, requires_grad=True)
    x = a * 1
    y = x @ x
    x.t()[0].add_(1)
    y.sum().backward()


def _saved_view_base_modified(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    y = x[:2].sin()
    x.add_(1)
    y.sum().backward()


def _saved_nograd_operand_modified(T):
    a = T.ones(3, requires_grad=True)
    b = T.ones(3)
    y = a * b
    b.add_(1)
    y.sum().backward()


def _saved_relu_output_modified(T):
    a = T.ones(3, requires_grad=True)
    y = (a * 1).relu()
    y.add_(1)
    y.sum().backward()


def _saved_modified_via_detach(T):
    a = T.ones(3, requires_grad=True)
    y = (a * a).sum()
    a.detach().add_(1)
    y.backward()


def _inplace_result_then_modified(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    x.exp_()      # saves its result (x) for backward
    x.add_(1)     # ... which is then modified
    x.sum().backward()


def _setitem_from_saved_views(T):
    """``x[2] * x[1]`` saved views of x; writing into x then invalidates them."""
    a = T.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = a * 1
    x[0] = x[2] * x[1]
    x.sum().backward()


def _optimizer_step_before_backward(T):
    w = T.ones(3, requires_grad=True)
    loss = (w * w).sum()
    with T.no_grad():
        w.sub_(0.1)
    loss.backward()


SAVED = r"one of the variables needed for gradient computation has been modified by an inplace operation"
FREED = (r"Trying to backward through the graph a second time \(or directly access saved tensors after "
         r"they have already been freed\).*Specify retain_graph=True")
ERRORS = {
    "second_backward": (_second_backward, FREED),
    "second_autograd_grad": (_second_autograd_grad, FREED),
    "nonscalar": (_nonscalar, "grad can be implicitly created only for scalar outputs"),
    "gradient_shape": (_gradient_shape, r"Mismatch in shape: grad_output\[0\] has a shape of .*\[2\]\) and "
                                        r"output\[0\] has a shape of .*\[3\]\)"),
    "no_grad_backward": (_no_grad_backward, "element 0 of tensors does not require grad and does not have a grad_fn"),
    "graph_built_under_no_grad": (_backward_under_no_grad_graph,
                                  "element 0 of tensors does not require grad and does not have a grad_fn"),
    "int_requires_grad": (_int_requires_grad, "(?i)only Tensors of floating point .*dtype can require gradients"),
    "int_tensor_requires_grad": (_int_tensor_requires_grad,
                                 "(?i)only Tensors of floating point .*dtype can require gradients"),
    "nonleaf_requires_grad_false": (_nonleaf_requires_grad_false,
                                    "you can only change requires_grad flags of leaf variables"),
    "retain_grad_no_grad": (_retain_grad_no_grad, "can't retain_grad on Tensor that has requires_grad=False"),
    "hook_no_grad": (_hook_no_grad, "cannot register a hook on a tensor that doesn't require gradient"),
    "unused_input": (_unused_input, "The differentiated Tensor at index 1 appears to not have been used in the "
                                    "graph. Set allow_unused=True if this is the desired behavior."),
    "grad_of_no_grad_input": (_grad_of_no_grad_input, "One of the differentiated Tensors does not require grad"),
    "empty_inputs": (_empty_inputs, "`inputs` argument to `backward\\(\\)` cannot be empty."),
    "detach_view_inplace": (_detach_view_inplace, r"Can't detach views in-place. Use detach\(\) instead."),
    "saved_output_modified": (_saved_output_modified, SAVED + r": \[\w+\.FloatTensor \[3\]\], which is output 0 "
                                                      r"of Exp, is at version 1; expected version 0 instead"),
    "saved_input_modified": (_saved_input_modified, SAVED + r".*is at version 1; expected version 0 instead"),
    "saved_modified_through_view": (_saved_modified_through_view, SAVED),
    "saved_view_base_modified": (_saved_view_base_modified, SAVED),
    "saved_nograd_operand_modified": (_saved_nograd_operand_modified,
                                      SAVED + r": \[\w+\.FloatTensor \[3\]\] is at version 1"),
    "saved_relu_output_modified": (_saved_relu_output_modified, SAVED),
    "saved_modified_via_detach": (_saved_modified_via_detach, SAVED),
    "inplace_result_then_modified": (_inplace_result_then_modified, SAVED + r".*is at version 2; expected version 1"),
    "optimizer_step_before_backward": (_optimizer_step_before_backward, SAVED),
    "setitem_from_saved_views": (_setitem_from_saved_views, SAVED),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors(name):
    fn, match = ERRORS[name]
    with pytest.raises(RuntimeError, match=match):
        fn(tracenn)


@pytest.mark.parametrize("name", list(ERRORS))
def test_errors_match_torch(name, torch):
    """torch raises in the same places with a message the same regex matches."""
    fn, match = ERRORS[name]
    with pytest.raises(RuntimeError, match=match):
        fn(torch)


def test_saved_tensor_error_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"SinBackward0 saved it \(input 0\).*\.clone\(\)"):
        _saved_input_modified(tracenn)


# ---- in-place ops that must NOT raise -----------------------------------------------------------

def _ok_add_input_modified(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    y = x + 2           # add saves nothing
    x.add_(1)
    z = x[1:] - 1       # slicing and sub save nothing either
    x.mul_(2)
    (y.sum() + z.sum()).backward()
    return a.grad


def _ok_unrelated_output_modified(T):
    a = T.ones(3, requires_grad=True)
    x = a * 1
    y = x.exp()
    y.add_(1)
    x.sum().backward()  # ExpBackward0 is not on this path
    return a.grad


def _ok_saved_other_operand_modified(T):
    """``y = b * a`` with only ``a`` requiring grad saves ``b`` only: ``a`` may change."""
    a = T.ones(3, requires_grad=True)
    b = T.full((3,), 2.0)
    y = b * a
    with T.no_grad():
        a.add_(1)
    y.sum().backward()
    return a.grad


@pytest.mark.parametrize("fn, want", [
    (_ok_add_input_modified, [1.0, 2.0, 2.0]),
    (_ok_unrelated_output_modified, [1.0, 1.0, 1.0]),
])
def test_inplace_does_not_raise_where_torch_does_not(fn, want, request):
    _check(_values(fn(tracenn)), [want])
    try:
        torch = request.getfixturevalue("torch")
    except pytest.skip.Exception:
        return
    _check(_values(fn(torch)), [want])


def _ok_mul_by_constant_input_modified(T):
    a = T.ones(3, requires_grad=True)
    b = a * 1
    y = b * 2       # torch saves only the scalar 2 here
    b.add_(1)
    y.sum().backward()
    return a.grad


@pytest.mark.parametrize("fn", [_ok_saved_other_operand_modified, _ok_mul_by_constant_input_modified])
def test_operand_not_needed_for_grad_is_not_saved(fn):
    assert fn(tracenn).tolist() == [2.0, 2.0, 2.0]


def test_operand_not_needed_for_grad_is_not_saved_in_torch(torch):
    for fn in (_ok_saved_other_operand_modified, _ok_mul_by_constant_input_modified):
        assert fn(torch).tolist() == [2.0, 2.0, 2.0]


# Every in-place method, applied to a non-leaf, backpropagates like its out-of-place form
# (its own version bump must not trip the saved-tensor check).
INPLACE = {
    "add_": lambda x, o: x.add_(o, alpha=2),
    "sub_": lambda x, o: x.sub_(o),
    "mul_": lambda x, o: x.mul_(o),
    "mul_scalar": lambda x, o: x.mul_(3),
    "div_": lambda x, o: x.div_(o),
    "pow_": lambda x, o: x.pow_(2),
    "pow_tensor": lambda x, o: x.pow_(o),
    "sin_": lambda x, o: x.sin_(),
    "exp_": lambda x, o: x.exp_(),
    "log_": lambda x, o: x.log_(),
    "sqrt_": lambda x, o: x.sqrt_(),
    "sigmoid_": lambda x, o: x.sigmoid_(),
    "tanh_": lambda x, o: x.tanh_(),
    "relu_": lambda x, o: x.relu_(),
    "abs_": lambda x, o: x.abs_(),
    "neg_": lambda x, o: x.neg_(),
    "square_": lambda x, o: x.square_(),
    "reciprocal_": lambda x, o: x.reciprocal_(),
    "clamp_": lambda x, o: x.clamp_(0.6, 1.5),
    "clamp_min_": lambda x, o: x.clamp_min_(0.75),
    "lerp_": lambda x, o: x.lerp_(o, 0.3),
    "addcmul_": lambda x, o: x.addcmul_(o, o, value=0.5),
    "addcdiv_": lambda x, o: x.addcdiv_(o, o + 1, value=2),
    "hypot_": lambda x, o: x.hypot_(o),
    "atan2_": lambda x, o: x.atan2_(o),
    "masked_fill_": lambda x, o: x.masked_fill_(o > 1.5, 0.0),
    "tril_": lambda x, o: x.tril_(),
    "cumsum_": lambda x, o: x.cumsum_(1),
    "copy_": lambda x, o: x.copy_(o * 2),
    "fill_": lambda x, o: x.fill_(2.0),
    "zero_": lambda x, o: x.zero_(),
    "iadd": lambda x, o: x.__iadd__(o),
    "imul": lambda x, o: x.__imul__(o),
    "itruediv": lambda x, o: x.__itruediv__(o),
    "ipow": lambda x, o: x.__ipow__(2),
    "setitem_row": lambda x, o: x.__setitem__(0, o[1] * 2),
    "setitem_mask": lambda x, o: x.__setitem__(o > 1.5, 7.0),
    "row_mul_": lambda x, o: x[1].mul_(o[0]),
    "twice": lambda x, o: x.mul_(o).sin_(),
}

_XFAIL = {}
_A = [[0.7, 1.2, 0.9], [1.6, 0.8, 1.1]]
_O = [[1.3, 0.4, 1.7], [0.9, 2.0, 0.6]]
_W = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]


def _inplace_grads(T, name, dtype=None):
    dtype = dtype or T.float32
    a = T.tensor(_A, dtype=dtype, requires_grad=True)
    o = T.tensor(_O, dtype=dtype, requires_grad=True)
    x = a * 1
    INPLACE[name](x, o)
    (x * T.tensor(_W, dtype=dtype)).sum().backward()
    return x, a.grad, o.grad


def _inplace_value(name, a, o):
    with tracenn.no_grad():
        x = tracenn.tensor(a) * 1
        INPLACE[name](x, tracenn.tensor(o))
        return float((x * tracenn.tensor(_W, dtype=tracenn.float64)).sum())


def _inplace_params():
    return [pytest.param(n, marks=_XFAIL[n]) if n in _XFAIL else n for n in INPLACE]


@pytest.mark.parametrize("name", _inplace_params())
def test_inplace_method_backward(name):
    """In-place on a non-leaf then backward: no error, and the gradients of both operands match
    central finite differences (float64)."""
    _, ga, go = _inplace_grads(tracenn, name, tracenn.float64)
    a, o, eps = np.array(_A), np.array(_O), 1e-6
    for arr, got in ((a, ga), (o, go)):
        fd = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            old = arr[i]
            arr[i] = old + eps
            up = _inplace_value(name, a, o)
            arr[i] = old - eps
            down = _inplace_value(name, a, o)
            arr[i] = old
            fd[i] = (up - down) / (2 * eps)
        if got is None:
            assert not fd.any()
        else:
            np.testing.assert_allclose(to_np(got), fd, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", _inplace_params())
def test_inplace_method_backward_matches_torch(name, torch):
    got, want = _inplace_grads(tracenn, name), _inplace_grads(torch, name)
    for g, w in zip(got, want):
        if g is None or w is None:  # torch's copy_ sends zeros where tracenn sends nothing
            assert not to_np(g if w is None else w).any()
        else:
            assert_close(g, w, rtol=1e-5, atol=1e-6)


# ---- grad modes -------------------------------------------------------------------------------

def test_no_grad_context_and_decorators():
    x = tracenn.ones(2, requires_grad=True)
    with tracenn.no_grad():
        assert not tracenn.is_grad_enabled()
        y = x * 2
        with tracenn.enable_grad():
            z = x * 2
        assert not tracenn.is_grad_enabled()
    assert tracenn.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad

    @tracenn.no_grad()
    def f():
        return x * 2

    @tracenn.no_grad
    def g():
        return x * 2

    @tracenn.enable_grad()
    def h():
        return x * 2

    @tracenn.enable_grad
    def k():
        return x * 2

    assert not f().requires_grad and not g().requires_grad
    with tracenn.no_grad():
        assert h().requires_grad and k().requires_grad
        assert not tracenn.is_grad_enabled()
    assert f.__name__ == "f" and tracenn.is_grad_enabled()


def test_set_grad_enabled_function_context_decorator():
    x = tracenn.ones(2, requires_grad=True)
    tracenn.set_grad_enabled(False)
    assert not tracenn.is_grad_enabled() and not (x * 2).requires_grad
    tracenn.set_grad_enabled(True)
    assert (x * 2).requires_grad
    with tracenn.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tracenn.is_grad_enabled()
    with tracenn.no_grad():
        with tracenn.set_grad_enabled(True):
            assert (x * 2).requires_grad
        assert not tracenn.is_grad_enabled()

    @tracenn.set_grad_enabled(False)
    def f():
        return x * 2

    assert tracenn.is_grad_enabled()  # decorating does not switch the mode
    assert not f().requires_grad
    assert tracenn.is_grad_enabled()


def test_inference_mode():
    x = tracenn.ones(2, requires_grad=True)
    with tracenn.inference_mode():
        assert tracenn.is_inference_mode_enabled() and not tracenn.is_grad_enabled()
        y = x * 2
    assert not y.requires_grad
    assert not tracenn.is_inference_mode_enabled() and tracenn.is_grad_enabled()
    with tracenn.inference_mode(False):
        assert (x * 2).requires_grad

    @tracenn.inference_mode()
    def f():
        return x * 2, tracenn.is_inference_mode_enabled()

    @tracenn.inference_mode
    def g():
        return x * 2

    r, inside = f()
    assert not r.requires_grad and inside and not g().requires_grad
    assert tracenn.is_grad_enabled() and not tracenn.is_inference_mode_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with tracenn.no_grad():
            raise ValueError

    @tracenn.no_grad()
    def boom():
        raise KeyError

    with pytest.raises(KeyError):
        boom()
    assert tracenn.is_grad_enabled()


def test_grad_modes_match_torch(torch):
    for T in (tracenn, torch):
        x = T.ones(2, requires_grad=True)

        @T.set_grad_enabled(False)
        def f():
            return x * 2

        @T.no_grad
        def g():
            return x * 2

        assert T.is_grad_enabled()
        assert not f().requires_grad and not g().requires_grad
        assert T.is_grad_enabled()


# ---- hooks on grad_fn ---------------------------------------------------------------------------

def test_grad_fn_prehook_and_hook(torch):
    for T in (tracenn, torch):
        a = T.ones(3, requires_grad=True)
        y = a * 2
        seen = []
        h1 = y.grad_fn.register_prehook(lambda go: seen.append(to_np(go[0]).tolist()) or (go[0] * 10,))
        y.grad_fn.register_hook(lambda gi, go: seen.append((to_np(gi[0]).tolist(), to_np(go[0]).tolist())))
        y.sum().backward(retain_graph=True)
        assert a.grad.tolist() == [20.0] * 3, T
        assert seen == [[1.0] * 3, ([20.0] * 3, [10.0] * 3)], (T, seen)
        h1.remove()
        a.grad = None
        y.sum().backward()
        assert a.grad.tolist() == [2.0] * 3


def test_hook_handle_context_manager():
    x = tracenn.ones(2, requires_grad=True)
    with x.register_hook(lambda g: g * 0):
        (x * 1).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


# ---- an eager MLP training step --------------------------------------------------------------

def _mlp_data():
    rng = np.random.default_rng(0)
    b = 16
    return {
        "x": rng.standard_normal((b, 784)).astype(np.float32),
        "y": rng.integers(0, 10, b).astype(np.int64),
        "w1": (rng.standard_normal((784, 512)) * 0.05).astype(np.float32),
        "b1": (rng.standard_normal(512) * 0.05).astype(np.float32),
        "w2": (rng.standard_normal((512, 10)) * 0.05).astype(np.float32),
        "b2": (rng.standard_normal(10) * 0.05).astype(np.float32),
    }


def _mlp_train(T, data, steps=2, lr=0.1, momentum=0.9):
    """784->512->10 MLP, log_softmax NLL, hand-written SGD with momentum under no_grad."""
    x, y = T.tensor(data["x"]), T.tensor(data["y"])
    params = [T.tensor(data[k]).requires_grad_() for k in ("w1", "b1", "w2", "b2")]
    bufs = [T.zeros_like(p) for p in params]
    losses, grads = [], []
    for _ in range(steps):
        w1, b1, w2, b2 = params
        h = (x @ w1 + b1).relu()
        logits = h @ w2 + b2
        logp = logits.log_softmax(dim=1)
        loss = -logp[T.arange(x.shape[0]), y].mean()
        for p in params:
            p.grad = None
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.clone() for p in params])
        with T.no_grad():
            for p, buf in zip(params, bufs):
                buf.mul_(momentum).add_(p.grad)
                p.add_(buf, alpha=-lr)
    return losses, grads, params


def _jax_mlp_grads(data):
    import jax
    import jax.numpy as jnp

    def loss_fn(ps):
        w1, b1, w2, b2 = ps
        h = jax.nn.relu(data["x"] @ w1 + b1)
        logp = jax.nn.log_softmax(h @ w2 + b2, axis=1)
        return -jnp.mean(logp[jnp.arange(len(data["y"])), data["y"]])

    ps = [jnp.asarray(data[k]) for k in ("w1", "b1", "w2", "b2")]
    return jax.value_and_grad(loss_fn)(ps)


def test_mlp_step_matches_jax():
    data = _mlp_data()
    losses, grads, params = _mlp_train(tracenn, data, steps=1)
    loss, want = _jax_mlp_grads(data)
    assert losses[0] == pytest.approx(float(loss), rel=1e-5)
    for g, w in zip(grads[0], want):
        assert_close(g, np.asarray(w), rtol=1e-4, atol=1e-6)
    for p, g, k in zip(params, grads[0], ("w1", "b1", "w2", "b2")):
        assert p.is_leaf and p.requires_grad
        assert_close(p, data[k] - 0.1 * to_np(g), rtol=1e-5, atol=1e-6)


def test_mlp_steps_match_torch(torch):
    data = _mlp_data()
    got = _mlp_train(tracenn, data, steps=3)
    want = _mlp_train(torch, data, steps=3)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4)
    for gs, ws in zip(got[1], want[1]):
        for g, w in zip(gs, ws):
            assert_close(g, w, rtol=1e-4, atol=1e-6)
    for p, w in zip(got[2], want[2]):
        assert_close(p, w, rtol=1e-4, atol=1e-6)
