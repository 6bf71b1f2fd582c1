"""Lazy modules (LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*):
placeholders, the first call's shapes, init and class change, state_dict round trips — against torch."""
from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close, to_np

# (lazy class, constructor args, input shape, class it becomes, expected parameter/buffer shapes)
LAZY = [
    ("LazyLinear", (3,), (2, 5), "Linear", {"weight": (3, 5), "bias": (3,)}),
    ("LazyLinear", (3,), (5,), "Linear", {"weight": (3, 5), "bias": (3,)}),
    ("LazyConv1d", (4, 3), (2, 6, 9), "Conv1d", {"weight": (4, 6, 3), "bias": (4,)}),
    ("LazyConv1d", (4, 3), (6, 9), "Conv1d", {"weight": (4, 6, 3), "bias": (4,)}),
    ("LazyConv2d", (4, 3), (2, 6, 7, 7), "Conv2d", {"weight": (4, 6, 3, 3), "bias": (4,)}),
    ("LazyConv3d", (4, 2), (1, 2, 3, 3, 3), "Conv3d", {"weight": (4, 2, 2, 2, 2), "bias": (4,)}),
    ("LazyConvTranspose1d", (4, 3), (2, 6, 5), "ConvTranspose1d", {"weight": (6, 4, 3), "bias": (4,)}),
    ("LazyConvTranspose2d", (4, 3), (6, 5, 5), "ConvTranspose2d", {"weight": (6, 4, 3, 3), "bias": (4,)}),
    ("LazyConvTranspose3d", (4, 2), (1, 2, 2, 2, 2), "ConvTranspose3d", {"weight": (2, 4, 2, 2, 2), "bias": (4,)}),
    ("LazyBatchNorm1d", (), (4, 3), "BatchNorm1d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    ("LazyBatchNorm2d", (), (2, 3, 4, 4), "BatchNorm2d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    ("LazyBatchNorm3d", (), (2, 3, 2, 2, 2), "BatchNorm3d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    ("LazyInstanceNorm1d", (), (2, 3, 5), "InstanceNorm1d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    ("LazyInstanceNorm2d", (), (2, 3, 4, 4), "InstanceNorm2d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
    ("LazyInstanceNorm3d", (), (2, 3, 2, 2, 2), "InstanceNorm3d",
     {"weight": (3,), "bias": (3,), "running_mean": (3,), "running_var": (3,), "num_batches_tracked": ()}),
]
IDS = [f"{c}-{len(s)}d" for c, _, s, _, _ in LAZY]


@pytest.mark.parametrize("name,args,shape,becomes,shapes", LAZY, ids=IDS)
def test_first_call_materializes_and_becomes_the_plain_layer(lib, name, args, shape, becomes, shapes):
    m = getattr(lib.nn, name)(*args)
    assert m.has_uninitialized_params()
    state = m.state_dict()
    assert list(state) == list(shapes)
    assert [repr(v) for k, v in state.items() if k != "num_batches_tracked"] == [
        "<UninitializedParameter>" if k in ("weight", "bias") else "<UninitializedBuffer>"
        for k in shapes if k != "num_batches_tracked"]
    out = m(lib.ones(*shape))
    assert type(m) is getattr(lib.nn, becomes)
    assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == shapes
    assert all(type(p) is lib.nn.Parameter for p in m.parameters())
    assert not m._forward_pre_hooks and not m._load_state_dict_pre_hooks
    assert not hasattr(m, "_initialize_hook") and not hasattr(m, "_load_hook")
    assert out.shape == m(lib.ones(*shape)).shape


@pytest.mark.parametrize("name,args,shape,becomes,shapes", LAZY, ids=IDS)
def test_reprs_before_and_after_match_torch(torch, name, args, shape, becomes, shapes):
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(m) == repr(tm)
    m(tracenn.ones(*shape))
    tm(torch.ones(*shape))
    assert repr(m) == repr(tm)


@pytest.mark.parametrize("name,args,shape,becomes,shapes", LAZY, ids=IDS)
def test_materialized_module_computes_torchs_numbers(torch, name, args, shape, becomes, shapes):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    m, tm = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    m(tracenn.tensor(x))
    tm(torch.tensor(x))
    m.load_state_dict(tm.state_dict())  # same weights, and the running stats after one call
    for k, v in tm.state_dict().items():
        assert_close(m.state_dict()[k], v, rtol=1e-5, atol=1e-6)
    xt, tx = tracenn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, tout = m(xt), tm(tx)
    assert_close(out, tout, rtol=1e-4, atol=1e-5)
    (out * out).sum().backward()
    (tout * tout).sum().backward()
    assert_close(xt.grad, tx.grad, rtol=1e-4, atol=1e-4)
    for (n, p), tp in zip(m.named_parameters(), tm.parameters()):
        assert_close(p.grad, tp.grad, rtol=1e-4, atol=1e-4)


def test_lazy_linear_init_is_linears_distribution_drawn_at_the_first_call():
    m = nn.LazyLinear(300)
    m(tracenn.ones(1, 400))
    bound = 1 / math.sqrt(400)
    w, b = to_np(m.weight), to_np(m.bias)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound
    assert np.abs(b).max() <= bound and len(np.unique(w)) > 0.99 * w.size
    # the draw happens at the first call: a seed before it reproduces a plain Linear's init
    tracenn.manual_seed(5)
    lazy = nn.LazyLinear(4)
    tracenn.manual_seed(5)
    lazy(tracenn.ones(2, 3))
    tracenn.manual_seed(5)
    plain = nn.Linear(3, 4)
    assert_close(lazy.weight, plain.weight) and assert_close(lazy.bias, plain.bias)


def test_lazy_conv_and_norm_inits():
    conv = nn.LazyConv2d(8, 3)
    conv(tracenn.ones(1, 16, 5, 5))
    bound = 1 / math.sqrt(16 * 9)
    w = to_np(conv.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(to_np(conv.bias)).max() <= bound
    bn = nn.LazyBatchNorm1d()
    bn.eval()  # eval: the running statistics stay as reset
    bn(tracenn.ones(2, 3))
    assert bn.weight.tolist() == [1.0] * 3 and bn.bias.tolist() == [0.0] * 3
    assert bn.running_mean.tolist() == [0.0] * 3 and bn.running_var.tolist() == [1.0] * 3


def test_constructor_options(lib):
    m = lib.nn.LazyLinear(3, bias=False)
    assert m.bias is None and list(m.state_dict()) == ["weight"]
    m(lib.ones(2, 4))
    assert m.bias is None and tuple(m.weight.shape) == (3, 4)
    c = lib.nn.LazyConv2d(4, 3, stride=2, padding=1, groups=2, bias=False, padding_mode="reflect")
    c(lib.ones(1, 6, 8, 8))
    assert (c.in_channels, c.groups, tuple(c.weight.shape), c.bias) == (6, 2, (4, 3, 3, 3), None)
    t = lib.nn.LazyConvTranspose1d(4, 3, stride=2, output_padding=1, groups=2, dilation=2)
    assert tuple(t(lib.ones(1, 2, 5)).shape) == (1, 4, 14)
    bn = lib.nn.LazyBatchNorm1d(affine=False, track_running_stats=False)
    assert list(bn.state_dict()) == [] and not bn.has_uninitialized_params()
    bn(lib.ones(2, 3))  # nothing to infer: num_features stays 0, as in torch
    assert type(bn) is lib.nn.BatchNorm1d and bn.num_features == 0 and bn.weight is None
    bn = lib.nn.LazyBatchNorm2d(bias=False)
    bn(lib.ones(2, 3, 2, 2))
    assert bn.bias is None and tuple(bn.weight.shape) == (3,)
    inorm = lib.nn.LazyInstanceNorm1d(affine=False, track_running_stats=False)
    with pytest.warns(UserWarning, match="input's size at dim=1 does not match num_features"):
        inorm(lib.ones(2, 3, 4))
    assert type(inorm) is lib.nn.InstanceNorm1d and inorm.num_features == 0


def test_dtype_and_device_arguments_and_casts_before_the_first_call(lib):
    m = lib.nn.LazyLinear(2, dtype=lib.float64, device="cpu")
    assert m.weight.dtype == lib.float64
    m(lib.ones(1, 3, dtype=lib.float64))
    assert m.weight.dtype == lib.float64 and m.bias.dtype == lib.float64
    m = lib.nn.LazyBatchNorm1d().double()
    assert type(m.weight) is lib.nn.UninitializedParameter and type(m.running_mean) is lib.nn.UninitializedBuffer
    assert m.weight.dtype == lib.float64 and m.running_mean.dtype == lib.float64
    assert m.num_batches_tracked.dtype == lib.int64
    m(lib.ones(4, 3, dtype=lib.float64))
    assert m.weight.dtype == lib.float64 and m.running_var.dtype == lib.float64
    m = lib.nn.LazyConv1d(2, 1).to(lib.float16)
    assert m.weight.dtype == lib.float16


def test_input_errors(lib, message):
    with pytest.raises(RuntimeError) as e:
        lib.nn.LazyConv2d(4, 3)(lib.ones(3, 5))
    assert message(e) == ("Expected 3D (unbatched) or 4D (batched) input to LazyConv2d, but got input of size: "
                          "tracenn.Size([3, 5])")
    m = lib.nn.LazyConv2d(4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels must be divisible by groups"):
        m(lib.ones(3, 5, 5))
    assert type(m) is lib.nn.LazyConv2d and m.has_uninitialized_params()  # still lazy
    # torch reads size(1) also for an unbatched instance-norm input, then the affine check fails
    m = lib.nn.LazyInstanceNorm1d()
    with pytest.raises(ValueError) as e:
        m(lib.ones(3, 5))
    assert message(e) == "expected input's size at dim=0 to match num_features (5), but got: 3."


class _Half(nn.modules.lazy.LazyModuleMixin, nn.Module):
    """A lazy module that forgets one of its placeholders."""

    def __init__(self):
        super().__init__()
        self.a = nn.UninitializedParameter()
        self.b = nn.UninitializedParameter()

    def initialize_parameters(self, x):
        self.a.materialize(x.shape)

    def forward(self, x):
        return x * self.a


def test_a_module_left_half_initialized_raises():
    with pytest.raises(RuntimeError, match="module _Half has not been fully initialized"):
        _Half()(tracenn.ones(2))
    with pytest.raises(NotImplementedError, match="initialize_parameters is not implemented for Bare"):
        type("Bare", (nn.modules.lazy.LazyModuleMixin, nn.Module), {})()(tracenn.ones(1))


# ---- state_dict ---------------------------------------------------------------------------------

def test_loading_an_initialized_state_dict_into_a_lazy_module(lib):
    src = lib.nn.Linear(5, 3)
    m = lib.nn.LazyLinear(3)
    assert repr(m.load_state_dict(src.state_dict())) == "<All keys matched successfully>"
    assert type(m) is lib.nn.LazyLinear and not m.has_uninitialized_params()  # lazy until its first call
    assert type(m.weight) is lib.nn.Parameter and tuple(m.weight.shape) == (3, 5)
    assert np.array_equal(to_np(m.weight), to_np(src.weight)) and np.array_equal(to_np(m.bias), to_np(src.bias))
    w = m.weight
    m(lib.ones(2, 5))  # the call keeps the loaded values: no re-initialisation
    assert type(m) is lib.nn.Linear and m.weight is w and np.array_equal(to_np(w), to_np(src.weight))


def test_loading_into_lazy_batchnorm_and_assign(lib):
    src = lib.nn.BatchNorm1d(3)
    src(lib.randn(4, 3))
    m = lib.nn.LazyBatchNorm1d()
    m.load_state_dict(src.state_dict())
    for k, v in src.state_dict().items():
        assert np.array_equal(to_np(m.state_dict()[k]), to_np(v)), k
    m2 = lib.nn.LazyLinear(3)
    m2.load_state_dict(lib.nn.Linear(2, 3).state_dict(), assign=True)
    assert tuple(m2.weight.shape) == (3, 2) and m2.weight.requires_grad


def test_lazy_into_lazy_and_lazy_into_initialized(lib, message):
    m = lib.nn.LazyLinear(3)
    m.load_state_dict(lib.nn.LazyLinear(3).state_dict())
    assert type(m.weight) is lib.nn.UninitializedParameter
    with pytest.raises(RuntimeError) as e:
        lib.nn.Linear(5, 3).load_state_dict(lib.nn.LazyLinear(3).state_dict())
    assert message(e).startswith("Can't access the shape of an uninitialized parameter or buffer.")


def test_missing_keys_still_reported(lib):
    m = lib.nn.LazyLinear(3)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "bias"'):
        m.load_state_dict({"weight": lib.ones(3, 2)})


def test_keep_vars_and_torch_checkpoint_into_lazy_model(torch):
    m = nn.LazyLinear(3)
    assert m.state_dict(keep_vars=True)["weight"] is m.weight and m.state_dict()["weight"] is m.weight
    net = nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    tnet = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(16, 2))
    net.load_state_dict(tnet.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 4)).astype(np.float32)
    assert_close(net(tracenn.tensor(x)), tnet(torch.tensor(x)), rtol=1e-5, atol=1e-6)
    # loaded parameters are not re-inferred, so in_channels/in_features stay 0 (torch's behaviour)
    lazy = torch.nn.Sequential(torch.nn.LazyConv2d(4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    lazy.load_state_dict(tnet.state_dict())
    lazy(torch.tensor(x))
    assert repr(net) == repr(lazy) and "Conv2d(0, 4" in repr(net)


def test_copies_and_pickles_of_a_lazy_module_are_independent():
    m = nn.LazyLinear(3)
    c = copy.deepcopy(m)
    assert type(c.weight) is nn.UninitializedParameter and c.weight is not m.weight
    c(tracenn.ones(1, 4))
    assert type(c) is nn.Linear and type(m) is nn.LazyLinear and m._forward_pre_hooks
    m(tracenn.ones(1, 6))
    assert tuple(m.weight.shape) == (3, 6)
    p = pickle.loads(pickle.dumps(nn.LazyBatchNorm2d()))
    p(tracenn.ones(2, 5, 2, 2))
    assert type(p) is nn.BatchNorm2d and p.num_features == 5


def test_optimizer_after_the_dry_run_trains():
    net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.LazyLinear(1))
    x, y = tracenn.randn(16, 4), tracenn.randn(16, 1)
    net(x)
    opt = tracenn.optim.SGD(net.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
