"""Autograd and Tensor APIs torch users reach for: Variable, post-accumulate-grad hooks, storage
offsets and data_ptr, resize_, fork_rng, and torch's grad_fn names (and classes)."""
import warnings

import numpy as np
import pytest

import tracenn
from helpers import sum_loss_step
import tracenn.nn.functional as F
from tracenn.autograd import Variable


# ---- Variable ---------------------------------------------------------------------------------

def test_variable_returns_an_aliasing_leaf_tensor():
    t = tracenn.ones(3)
    v = Variable(t, requires_grad=True)
    assert type(v) is tracenn.Tensor and v.requires_grad and v.is_leaf and v is not t
    assert not t.requires_grad
    assert isinstance(t, Variable) and isinstance(v, Variable) and not isinstance(3, Variable)
    w = Variable(t)
    w.add_(1)  # shares t's data, as torch's
    assert t.tolist() == [2.0, 2.0, 2.0] and not w.requires_grad
    (v * 2).sum().backward()
    assert v.grad.tolist() == [2.0, 2.0, 2.0]


def test_variable_of_a_non_leaf_is_detached():
    a = tracenn.ones(2, requires_grad=True)
    v = Variable(a * 2, requires_grad=True)
    assert v.is_leaf and v.grad_fn is None


def test_variable_errors():
    with pytest.raises(TypeError, match="Variable data has to be a tensor, but got list"):
        Variable([1.0, 2.0])
    with pytest.raises(RuntimeError, match="floating point and complex dtype"):
        Variable(tracenn.ones(2, dtype=tracenn.int64), requires_grad=True)
    with pytest.warns(UserWarning, match="volatile was removed"):
        Variable(tracenn.ones(2), volatile=True)


# ---- register_post_accumulate_grad_hook -------------------------------------------------------

def test_post_accumulate_hook_sees_accumulated_grad_after_tensor_hooks():
    x = tracenn.ones(3, requires_grad=True)
    log = []
    x.register_hook(lambda g: log.append(("pre", g.tolist())))
    h = x.register_post_accumulate_grad_hook(lambda t: log.append(("post", t.grad.tolist(), t is x)))
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    assert log == [("pre", [3.0] * 3), ("post", [3.0] * 3, True), ("pre", [3.0] * 3), ("post", [6.0] * 3, True)]
    log.clear()
    tracenn.autograd.grad((x * 3).sum(), x)  # no accumulation: no post hook
    w = tracenn.ones(2, requires_grad=True)
    (x.sum() + w.sum()).backward(inputs=[w])  # x not accumulated
    assert log == [("pre", [3.0] * 3)]
    log.clear()
    h.remove()
    (x * 3).sum().backward()
    assert log == [("pre", [3.0] * 3)]


def test_post_accumulate_hook_order_and_in_place_change():
    x = tracenn.ones(2, requires_grad=True)
    order = []
    x.register_post_accumulate_grad_hook(lambda t: order.append("A"))
    x.register_post_accumulate_grad_hook(lambda t: (order.append("B"), t.grad.mul_(10))[0])
    (x * 2).sum().backward()
    assert order == ["A", "B"] and x.grad.tolist() == [20.0, 20.0]


def test_post_accumulate_hook_as_optimizer_in_backward():
    # torch's "optimizer step in backward" recipe: each parameter steps as soon as its grad lands
    m = tracenn.nn.Linear(3, 2)
    ref = tracenn.nn.Linear(3, 2)
    ref.load_state_dict(m.state_dict())
    opts = {p: tracenn.optim.SGD([p], lr=0.1) for p in m.parameters()}

    def step(p):
        opts[p].step()
        opts[p].zero_grad()

    for p in m.parameters():
        p.register_post_accumulate_grad_hook(step)
    ref_opt = tracenn.optim.SGD(ref.parameters(), lr=0.1)
    x = tracenn.arange(12.0).reshape(4, 3) / 10
    for _ in range(3):
        (m(x) ** 2).sum().backward()
        ref_opt.zero_grad()
        (ref(x) ** 2).sum().backward()
        ref_opt.step()
    np.testing.assert_allclose(m.weight.detach().numpy(), ref.weight.detach().numpy(), rtol=1e-6)
    assert m.weight.grad is None


def test_post_accumulate_hook_errors():
    x = tracenn.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        tracenn.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    x.register_post_accumulate_grad_hook(lambda t: t.grad)
    with pytest.raises(RuntimeError, match="Tensor post accumulate grad hooks should return None"):
        (x * 2).sum().backward()
    y = tracenn.ones(2, requires_grad=True)
    y.register_post_accumulate_grad_hook(lambda t: 5)
    with pytest.raises(TypeError, match="hook returned 'int'"):
        (y * 2).sum().backward()


def test_post_accumulate_hook_on_a_leaf_view_and_create_graph():
    b = tracenn.ones(4)
    xv = b[:2].requires_grad_()
    got = []
    xv.register_post_accumulate_grad_hook(lambda t: got.append(t.grad.tolist()))
    (xv * 2).sum().backward()
    assert got == [[2.0, 2.0]]
    x = tracenn.ones(2, requires_grad=True)
    fns = []
    x.register_post_accumulate_grad_hook(lambda t: fns.append(t.grad.grad_fn is not None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (x ** 2).sum().backward(create_graph=True)
    assert fns == [True]


def test_post_accumulate_hook_through_a_compiled_forward():
    m = tracenn.nn.Linear(3, 2)
    cm = tracenn.compile(m)
    got = []
    m.weight.register_post_accumulate_grad_hook(lambda p: got.append(p.grad.clone()))
    x = tracenn.ones(4, 3)
    for _ in range(3):
        cm(x).sum().backward()
    assert len(got) == 3
    np.testing.assert_allclose(got[-1].numpy(), np.full((2, 3), 12.0))
    np.testing.assert_allclose(got[0].numpy(), np.full((2, 3), 4.0))


@pytest.mark.parametrize("kind", ["post", "pre"])
def test_compiled_training_step_runs_leaf_hooks_eagerly(kind):
    m = tracenn.nn.Linear(3, 2)
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    got = []
    if kind == "post":
        m.weight.register_post_accumulate_grad_hook(lambda p: got.append(p.grad.clone()))
    else:
        m.weight.register_hook(lambda g: got.append(g))

    step = tracenn.compile(sum_loss_step(m, opt))

    x = tracenn.ones(4, 3)
    with pytest.warns(UserWarning, match="'model.weight' has (post accumulate grad hooks|tensor hooks)"):
        for _ in range(3):
            step(x)
    assert len(got) == 3  # never dropped: the step ran eagerly


def test_register_post_accumulate_hook_inside_compiled_forward_runs_eagerly():
    seen = []

    class M(tracenn.nn.Module):
        def forward(self, x):
            x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
            return x * 2

    x = tracenn.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match="register_post_accumulate_grad_hook inside a compiled call: this call runs "
                                         "eagerly"):
        out = tracenn.compile(M())(x)
    out.sum().backward()
    assert seen == [[2.0, 2.0]]


# ---- storage_offset / data_ptr / untyped_storage ----------------------------------------------

_X = lambda: tracenn.arange(24.0).reshape(4, 6)  # noqa: E731
# (view, torch's storage_offset for a contiguous (4, 6) base)
OFFSETS = {
    "x[1]": (lambda x: x[1], 6), "x[1:]": (lambda x: x[1:], 6), "x[:, 2:]": (lambda x: x[:, 2:], 2),
    "x[1:, 2:]": (lambda x: x[1:, 2:], 8), "narrow": (lambda x: x.narrow(1, 2, 3), 2),
    "select": (lambda x: x.select(1, 3), 3), "diagonal": (lambda x: x.diagonal(), 0),
    "diagonal(1)": (lambda x: x.diagonal(1), 1), "diagonal(-1)": (lambda x: x.diagonal(-1), 6),
    "t()[1]": (lambda x: x.t()[1], 1), "x[1].view": (lambda x: x[1].view(2, 3), 6),
    "x[1::2]": (lambda x: x[1::2], 6), "expand": (lambda x: x[2].expand(3, 6), 12), "x[2, 3]": (lambda x: x[2, 3], 15),
    "detach": (lambda x: x[1].detach(), 6), "data": (lambda x: x[2].data, 12), "split": (lambda x: x.split(2, 1)[1], 2),
    "unbind": (lambda x: x.unbind(1)[4], 4), "x[None, 1]": (lambda x: x[None, 1], 6),
    "x[1][2:]": (lambda x: x[1][2:], 8), "flat": (lambda x: x.view(-1)[5:], 5), "empty": (lambda x: x[4:], 24),
    "empty cols": (lambda x: x[:, 6:], 6), "t().diagonal(1)": (lambda x: x.t().diagonal(1), 6),
    "permute select": (lambda x: x.view(2, 3, 4).permute(2, 0, 1)[1, 1], 13),
    "movedim": (lambda x: x.view(2, 3, 4).movedim(0, 2)[1:, 2], 6),
}


@pytest.mark.parametrize("name", list(OFFSETS))
def test_storage_offset_and_data_ptr(name):
    fn, want = OFFSETS[name]
    x = _X()
    v = fn(x)
    assert v.storage_offset() == want
    assert x.storage_offset() == 0
    if v.numel():
        assert v.data_ptr() == x.data_ptr() + 4 * want  # float32: 4 bytes an element
    else:
        assert v.data_ptr() == 0
    assert v.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()


@pytest.mark.parametrize("name", list(OFFSETS))
def test_storage_offset_matches_torch(name):
    torch = pytest.importorskip("torch")
    fn, _ = OFFSETS[name]
    assert fn(_X()).storage_offset() == fn(torch.arange(24.0).reshape(4, 6)).storage_offset()


def test_complex_view_offsets_and_identity():
    z = tracenn.view_as_complex(tracenn.arange(12.0).view(6, 2))
    assert z[1:].real.storage_offset() == 2 and z[2:].imag.storage_offset() == 5
    assert tracenn.view_as_real(z[3:]).storage_offset() == 6
    a, b = tracenn.ones(3), tracenn.ones(3)
    assert a.data_ptr() != b.data_ptr() and a.clone().data_ptr() != a.data_ptr()
    assert a.view(3, 1).data_ptr() == a.data_ptr() and tracenn.zeros(0).data_ptr() == 0
    assert a.untyped_storage().nbytes() == 12
    lin = tracenn.nn.Linear(2, 2)
    assert lin.weight.data.data_ptr() == lin.weight.data_ptr()


# ---- resize_ / resize_as_ ---------------------------------------------------------------------

def test_resize_same_numel_keeps_data_and_views():
    y = tracenn.arange(6.0).reshape(2, 3)
    p = y.data_ptr()
    v = y[1]
    assert y.resize_(3, 2) is y and y.shape == (3, 2) and y.data_ptr() == p
    assert y.tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]] and y.is_contiguous()
    y[2, 1] = 100.0
    assert v.tolist() == [3.0, 4.0, 100.0]
    t = tracenn.arange(6.0).reshape(2, 3).t()  # non-contiguous: storage order, as torch
    assert t.resize_(2, 3).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]] and t.stride() == (3, 1)
    r = tracenn.arange(6.0).reshape(2, 3)
    r.t_()
    assert r.resize_(2, 3).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_resize_views_stay_views():
    w = tracenn.arange(6.0)
    v = w[2:]
    v.resize_(2)
    assert v.tolist() == [2.0, 3.0] and v.storage_offset() == 2
    v.add_(10)
    assert w.tolist() == [0.0, 1.0, 12.0, 13.0, 4.0, 5.0]
    w = tracenn.arange(6.0)
    vv = w.view(2, 3)
    vv.resize_(3, 2)
    vv[0, 0] = -1
    assert w.tolist() == [-1.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    c = tracenn.arange(6.0)[1::2]
    assert c.resize_(2).tolist() == [1.0, 2.0] and c.storage_offset() == 1
    with pytest.raises(RuntimeError, match="past the end of its base's storage"):
        tracenn.arange(6.0)[4:].resize_(3)


def test_resize_grow_shrink_and_as():
    a = tracenn.ones(2)
    assert a.resize_(2, 2).tolist() == [[1.0, 1.0], [0.0, 0.0]]  # new elements: zeros (torch: uninitialised)
    assert a.resize_(3).tolist() == [1.0, 1.0, 0.0]
    assert a.resize_as_(tracenn.zeros(3, 1)).shape == (3, 1)
    assert a.resize_((1, 3)).shape == (1, 3) and a.resize_(tracenn.Size([3])).shape == (3,)
    b = tracenn.arange(4)
    assert b.resize_(1, 2).tolist() == [[0, 1]] and b.dtype == tracenn.int64


def test_resize_errors():
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        tracenn.ones(2, requires_grad=True).resize_(3)
    with pytest.raises(RuntimeError, match="cannot resize variables that require grad"):
        (tracenn.ones(2, requires_grad=True) * 2).resize_(2)
    with pytest.raises(RuntimeError, match="negative dimension -2"):
        tracenn.ones(2).resize_(2, -2)


def test_resize_matches_torch():
    torch = pytest.importorskip("torch")

    def run(lib):
        y = lib.arange(12.0).reshape(3, 4)
        v = y[1:].t()  # a non-contiguous view: resize_ reads its storage in order from its offset
        v.resize_(2, 3)
        v[0, 0] = -1.0
        return v.tolist(), v.storage_offset(), y.tolist()

    assert run(tracenn) == run(torch)


# ---- fork_rng ---------------------------------------------------------------------------------

def test_fork_rng_restores_the_global_state():
    tracenn.manual_seed(0)
    with tracenn.random.fork_rng():
        tracenn.rand(3)
        tracenn.manual_seed(5)
        tracenn.rand(3)
    a = tracenn.rand(2)
    tracenn.manual_seed(0)
    assert tracenn.rand(2).tolist() == a.tolist() and tracenn.initial_seed() == 0
    with tracenn.random.fork_rng(enabled=False):
        tracenn.rand(1)
    tracenn.manual_seed(0)
    tracenn.rand(2)
    b = tracenn.rand(1)
    assert b.tolist() != tracenn.rand(1).tolist()  # (the disabled fork let the stream advance)


def test_fork_rng_restores_on_error_and_takes_devices():
    tracenn.manual_seed(1)
    state = tracenn.get_rng_state()
    with pytest.raises(ValueError):
        with tracenn.random.fork_rng(devices=[]):
            tracenn.rand(4)
            raise ValueError
    assert tracenn.get_rng_state().tolist() == state.tolist()


def test_fork_rng_in_a_compiled_function_runs_eagerly():
    def f(x):
        with tracenn.random.fork_rng():
            noise = tracenn.rand(2)
        return x + noise

    cf = tracenn.compile(f)
    tracenn.manual_seed(3)
    with pytest.warns(UserWarning, match="fork_rng"):
        got = cf(tracenn.zeros(2))
    after = tracenn.rand(1).tolist()  # the fork left the stream where it was
    tracenn.manual_seed(3)
    assert got.tolist() == f(tracenn.zeros(2)).tolist()
    assert tracenn.rand(1).tolist() == after


# ---- grad_fn names ----------------------------------------------------------------------------

def _x():
    tracenn.manual_seed(0)
    return tracenn.randn(3, 4, requires_grad=True)


# (expression, torch's name): every name here is torch 2.13's
NAMES = {
    "add": (lambda x: x + x, "AddBackward0"), "mul": (lambda x: x * 2, "MulBackward0"),
    "mm": (lambda x: x @ x.t().detach(), "MmBackward0"),
    "mv": (lambda x: x @ tracenn.ones(4), "MvBackward0"), "dot": (lambda x: x[0] @ x[1], "DotBackward0"),
    "vecmat": (lambda x: tracenn.ones(3) @ x, "SqueezeBackward4"),
    "F.linear no bias": (lambda x: F.linear(x, tracenn.ones(5, 4)), "MmBackward0"),
    "relu": (lambda x: x.relu(), "ReluBackward0"), "sum": (lambda x: x.sum(), "SumBackward0"),
    "sum(dim)": (lambda x: x.sum(1), "SumBackward1"), "mean": (lambda x: x.mean(), "MeanBackward0"),
    "mean(dim)": (lambda x: x.mean(0), "MeanBackward1"), "view": (lambda x: x.view(12), "ViewBackward0"),
    "x[0]": (lambda x: x[0], "SelectBackward0"), "x[0, 1]": (lambda x: x[0, 1], "SelectBackward0"),
    "x[0, :]": (lambda x: x[0, :], "SelectBackward0"), "x[0, 1:]": (lambda x: x[0, 1:], "SliceBackward0"),
    "x[1:, 0]": (lambda x: x[1:, 0], "SelectBackward0"), "x[:, 1:]": (lambda x: x[:, 1:], "SliceBackward0"),
    "x[:]": (lambda x: x[:], "SliceBackward0"), "x[None]": (lambda x: x[None], "UnsqueezeBackward0"),
    "x[None, 0]": (lambda x: x[None, 0], "SelectBackward0"),
    "x[..., None]": (lambda x: x[..., None], "UnsqueezeBackward0"),
    "select": (lambda x: x.select(1, 2), "SelectBackward0"), "narrow": (lambda x: x.narrow(1, 1, 2), "SliceBackward0"),
    "permute": (lambda x: x.permute(1, 0), "PermuteBackward0"), "exp": (lambda x: x.exp(), "ExpBackward0"),
    "softmax": (lambda x: x.softmax(1), "SoftmaxBackward0"), "cat": (lambda x: tracenn.cat([x, x]), "CatBackward0"),
    "stack": (lambda x: tracenn.stack([x, x]), "StackBackward0"), "clone": (lambda x: x.clone(), "CloneBackward0"),
    "clamp": (lambda x: x.clamp(-0.5, 0.5), "ClampBackward1"),
    "clamp(min)": (lambda x: x.clamp(min=0), "ClampBackward1"),
    "repeat": (lambda x: x.repeat(2, 1), "RepeatBackward0"),
    "conv2d": (lambda x: F.conv2d(x.view(1, 1, 3, 4), tracenn.ones(2, 1, 2, 2)), "ConvolutionBackward0"),
    "conv_transpose2d": (lambda x: F.conv_transpose2d(x.view(1, 1, 3, 4), tracenn.ones(1, 2, 2, 2)),
                         "ConvolutionBackward0"),
    "max_pool2d": (lambda x: F.max_pool2d(x.view(1, 1, 3, 4), 2), "MaxPool2DWithIndicesBackward0"),
    "max_pool2d indices": (lambda x: F.max_pool2d(x.view(1, 1, 3, 4), 2, return_indices=True)[0],
                           "MaxPool2DWithIndicesBackward0"),
    "cross_entropy": (lambda x: F.cross_entropy(x, tracenn.tensor([0, 1, 2])), "NllLossBackward0"),
    "gather": (lambda x: x.gather(1, tracenn.tensor([[0], [1], [2]])), "GatherBackward0"),
}


@pytest.mark.parametrize("name", list(NAMES))
def test_grad_fn_names_and_classes(name):
    fn, want = NAMES[name]
    y = fn(_x())
    assert y.grad_fn.name() == want
    assert type(y.grad_fn).__name__ == want and isinstance(y.grad_fn, tracenn.autograd.Node)
    assert f"grad_fn=<{want}>" in repr(y)


@pytest.mark.parametrize("name", list(NAMES))
def test_grad_fn_names_match_torch(name):
    torch = pytest.importorskip("torch")
    fn, _ = NAMES[name]
    import torch.nn.functional as TF
    src = fn.__code__
    # the same expression on torch: tracenn's namespace swapped for torch's
    env = {"tracenn": torch, "F": TF, "__builtins__": __builtins__}
    tfn = type(fn)(src, env)
    x = torch.randn(3, 4, requires_grad=True)
    assert fn(_x()).grad_fn.name() == tfn(x).grad_fn.name()


def test_grad_fn_name_survives_backward_and_next_functions_are_named():
    x = _x()
    w = tracenn.ones(4, 5, requires_grad=True)
    y = x @ w
    loss = y.sum()
    loss.backward()  # frees the matmul's inputs; its name was fixed before
    assert y.grad_fn.name() == "MmBackward0" and type(y.grad_fn).__name__ == "MmBackward0"
    nxt = (x @ w).sum(1).grad_fn.next_functions[0][0]
    assert type(nxt).__name__ == "MmBackward0"
    assert type(nxt.next_functions[0][0]).__name__ == "AccumulateGrad"
    assert type(y.grad_fn) is type((x @ w).grad_fn)  # one class a name


def test_grad_fn_class_of_a_custom_function():
    class Double(tracenn.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    y = Double.apply(_x())
    assert type(y.grad_fn).__name__ == "DoubleBackward" == y.grad_fn.name()
