"""Normalisation layers and functions: BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm1d/2d/3d, LayerNorm,
GroupNorm, RMSNorm, LocalResponseNorm, F.normalize — NumPy references, running statistics, reprs,
errors, and parity with torch (forward, gradients, buffers) when it is installed."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
X3 = RNG.standard_normal((4, 3, 5)).astype(np.float32)       # (N, C, L): shared by most tests
X4 = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)    # (N, C, H, W)


def near(actual, expected, rtol=1e-5, atol=1e-6):
    """assert_close against a NumPy reference (which may be float64)."""
    assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=False)


def np_batch_norm(x, eps=1e-5):
    dims = (0,) + tuple(range(2, x.ndim))
    mean, var = x.mean(dims, keepdims=True), x.var(dims, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def state_from_torch(tm):
    # .copy(): tracenn.tensor(ndarray) may alias the array (a core bug, see the report), and torch
    # updates its buffers in place.
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


# ---- NumPy references ------------------------------------------------------------------------------

def test_batch_norm_training_normalises_and_updates_running_stats():
    m = nn.BatchNorm1d(3)
    rm, rv = m.running_mean, m.running_var
    out = m(tracenn.tensor(X3))
    near(out, np_batch_norm(X3), atol=1e-5)
    n = X3.shape[0] * X3.shape[2]
    mean, var = X3.mean((0, 2)), X3.var((0, 2)) * n / (n - 1)  # running_var is the unbiased variance
    near(m.running_mean, 0.1 * mean, atol=1e-6)
    near(m.running_var, 0.9 + 0.1 * var, atol=1e-6)
    assert m.running_mean is rm and m.running_var is rv  # updated in place
    assert m.num_batches_tracked.item() == 1 and m.num_batches_tracked.dtype == tracenn.int64


def test_batch_norm_momentum_none_is_a_cumulative_average():
    m = nn.BatchNorm1d(3, momentum=None)
    batches = [X3, X3 * 2 + 1, X3 - 3]
    for x in batches:
        m(tracenn.tensor(x))
    assert m.num_batches_tracked.item() == 3
    near(m.running_mean, np.mean([b.mean((0, 2)) for b in batches], 0), atol=1e-5)
    unbiased = [b.var((0, 2)) * 20 / 19 for b in batches]
    near(m.running_var, np.mean(unbiased, 0), atol=1e-5)


def test_batch_norm_eval_uses_running_stats_and_affine():
    m = nn.BatchNorm1d(3)
    with tracenn.no_grad():
        m.running_mean.copy_(tracenn.tensor([1.0, 2.0, 3.0]))
        m.running_var.copy_(tracenn.tensor([4.0, 1.0, 0.25]))
        m.weight.fill_(2.0)
        m.bias.fill_(0.5)
    m.eval()
    out = m(tracenn.tensor(X3))
    ref = (X3 - np.array([1, 2, 3.0]).reshape(1, 3, 1)) / np.sqrt(np.array([4, 1, 0.25]).reshape(1, 3, 1) + 1e-5)
    near(out, 2 * ref + 0.5, atol=1e-5)
    assert m.num_batches_tracked.item() == 0  # eval mode leaves the buffers alone


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    m = nn.BatchNorm1d(3, affine=False, track_running_stats=False).eval()
    assert m.running_mean is None and m.num_batches_tracked is None and m.weight is None
    near(m(tracenn.tensor(X3)), np_batch_norm(X3), atol=1e-5)
    assert list(m.state_dict()) == []


@pytest.mark.slow
def test_batch_norm_gradient_matches_finite_differences():
    x = tracenn.tensor(X3[:2, :, :3].astype(np.float64), requires_grad=True)
    w = tracenn.tensor([0.5, 1.5, -1.0], dtype=tracenn.float64, requires_grad=True)
    coef = tracenn.tensor(RNG.standard_normal((2, 3, 3)))
    f = lambda x_: (F.batch_norm(x_, None, None, w, None, training=True) * coef).sum()  # noqa: E731
    f(x).backward()
    xv, eps, num = to_np(x).copy(), 1e-6, np.zeros_like(to_np(x))
    for i in np.ndindex(xv.shape):
        for sign in (1, -1):
            xp = xv.copy()
            xp[i] += sign * eps
            num[i] += sign * f(tracenn.tensor(xp)).item() / (2 * eps)
    near(x.grad, num, rtol=1e-5, atol=1e-6)


def test_layer_norm_matches_numpy():
    x = X3
    w, b = RNG.standard_normal((3, 5)).astype(np.float32), RNG.standard_normal((3, 5)).astype(np.float32)
    out = F.layer_norm(tracenn.tensor(x), (3, 5), tracenn.tensor(w), tracenn.tensor(b), eps=1e-3)
    mean, var = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    near(out, (x - mean) / np.sqrt(var + 1e-3) * w + b, atol=1e-5)


def test_group_norm_instance_norm_rms_norm_match_numpy():
    x = X3
    g = x.reshape(4, 3, -1)
    near(F.group_norm(tracenn.tensor(x), 1), ((g - g.mean((1, 2), keepdims=True))
                                                     / np.sqrt(g.var((1, 2), keepdims=True) + 1e-5)).reshape(x.shape),
                 atol=1e-5)
    inst = (x - x.mean(2, keepdims=True)) / np.sqrt(x.var(2, keepdims=True) + 1e-5)
    near(F.instance_norm(tracenn.tensor(x)), inst, atol=1e-5)
    eps = np.finfo(np.float32).eps
    near(F.rms_norm(tracenn.tensor(x), (5,)), x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps), atol=1e-5)
    xd = x.astype(np.float64)  # eps=None is the input dtype's eps
    near(F.rms_norm(tracenn.tensor(xd), [5]),
                 xd / np.sqrt((xd ** 2).mean(-1, keepdims=True) + np.finfo(np.float64).eps), rtol=1e-12)


def test_local_response_norm_matches_numpy_window_sum():
    x, size, alpha, beta, k = X3, 2, 0.5, 0.75, 2.0
    sq = np.pad(x ** 2, ((0, 0), (size // 2, (size - 1) // 2), (0, 0)))
    window = sum(sq[:, i:i + 3] for i in range(size))
    near(F.local_response_norm(tracenn.tensor(x), size, alpha, beta, k), x / (k + alpha / size * window) ** beta,
                 atol=1e-6)


def test_normalize_known_values():
    x = tracenn.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]])
    near(F.normalize(x), [[0.6, 0.8], [0.0, 0.0], [1 / 2 ** 0.5, -1 / 2 ** 0.5]])
    near(F.normalize(x, p=1, dim=0), [[0.75, 0.8], [0.0, 0.0], [0.25, -0.2]])


def test_instance_norm_running_stats_are_batch_means_of_instance_stats():
    m = nn.InstanceNorm1d(3, track_running_stats=True, affine=True)
    m(tracenn.tensor(X3))
    near(m.running_mean, 0.1 * X3.mean(2).mean(0), atol=1e-6)
    near(m.running_var, 0.9 + 0.1 * (X3.var(2) * 5 / 4).mean(0), atol=1e-6)
    m.eval()  # eval normalises with the running statistics
    rm, rv = to_np(m.running_mean).reshape(1, 3, 1), to_np(m.running_var).reshape(1, 3, 1)
    near(m(tracenn.tensor(X3)), (X3 - rm) / np.sqrt(rv + 1e-5), atol=1e-5)


def test_instance_norm_unbatched_equals_batched():
    m = nn.InstanceNorm1d(3)
    near(m(tracenn.tensor(X3[0])), to_np(m(tracenn.tensor(X3)))[0], atol=1e-6)


# ---- modules: parameters, buffers, reprs, state_dict -----------------------------------------------

def test_reprs():
    assert repr(nn.BatchNorm1d(3)) == "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert repr(nn.BatchNorm2d(4, momentum=None, affine=False)) == \
        "BatchNorm2d(4, eps=1e-05, momentum=None, affine=False, bias=False, track_running_stats=True)"
    assert repr(nn.BatchNorm3d(2, eps=1e-3, bias=False)) == \
        "BatchNorm3d(2, eps=0.001, momentum=0.1, affine=True, bias=False, track_running_stats=True)"
    assert repr(nn.SyncBatchNorm(2)) == \
        "SyncBatchNorm(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)"
    assert repr(nn.InstanceNorm2d(3, affine=True)) == \
        "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=False)"
    assert repr(nn.LayerNorm([2, 3], elementwise_affine=False)) == \
        "LayerNorm((2, 3), eps=1e-05, elementwise_affine=False, bias=False)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)"
    assert repr(nn.RMSNorm(4, eps=1e-6)) == "RMSNorm((4,), eps=1e-06, elementwise_affine=True)"
    assert repr(nn.LocalResponseNorm(2)) == "LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)"


def test_reprs_match_torch(torch):
    for name, args, kw in [("BatchNorm1d", (3,), {}), ("BatchNorm2d", (4,), dict(momentum=None, affine=False)),
                           ("InstanceNorm3d", (3,), dict(track_running_stats=True)), ("LayerNorm", ([2, 3],), {}),
                           ("GroupNorm", (2, 4), dict(affine=False)), ("RMSNorm", ([4],), {}),
                           ("LocalResponseNorm", (3,), dict(k=2)), ("SyncBatchNorm", (3,), dict(bias=False))]:
        assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


def test_parameter_and_buffer_names(lib):
    m = lib.nn.BatchNorm2d(3)
    assert list(m.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert m.weight.tolist() == [1.0] * 3 and m.bias.tolist() == [0.0] * 3
    assert list(lib.nn.InstanceNorm1d(3).state_dict()) == []
    assert list(lib.nn.LayerNorm(3, bias=False).state_dict()) == ["weight"]
    assert list(lib.nn.GroupNorm(1, 3).state_dict()) == ["weight", "bias"]


def test_load_state_dict_without_num_batches_tracked():
    m = nn.BatchNorm1d(3)
    m(tracenn.tensor(X3))
    sd = {k: to_np(v) for k, v in m.state_dict().items() if k != "num_batches_tracked"}
    m2 = nn.BatchNorm1d(3)
    assert m2.load_state_dict(sd).missing_keys == []  # old checkpoints: the count is kept at 0
    assert m2.num_batches_tracked.item() == 0
    near(m2.running_mean, m.running_mean)


def test_instance_norm_rejects_running_stats_when_not_tracking():
    m = nn.InstanceNorm1d(3)
    with pytest.raises(RuntimeError, match='Unexpected running stats buffer\\(s\\) "running_mean" and "running_var"'):
        m.load_state_dict({"running_mean": np.zeros(3, np.float32), "running_var": np.ones(3, np.float32)})


def test_reset_running_stats_and_parameters():
    m = nn.BatchNorm1d(3)
    m(tracenn.tensor(X3))
    rm = m.running_mean
    m.reset_running_stats()
    assert m.running_mean is rm and rm.tolist() == [0.0] * 3 and m.running_var.tolist() == [1.0] * 3
    assert m.num_batches_tracked.item() == 0


def test_convert_sync_batchnorm_shares_parameters_and_buffers():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    bn = net[1]
    out = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert type(out[1]) is nn.SyncBatchNorm and type(out[0]) is nn.Linear
    assert out[1].weight is bn.weight and out[1].running_mean is bn.running_mean
    x = tracenn.tensor(X3[:, :, 0])
    near(out(x), net(x))


def test_sync_batch_norm_takes_any_rank():
    m = nn.SyncBatchNorm(3)
    near(m(tracenn.tensor(X3)), np_batch_norm(X3), atol=1e-5)
    near(m(tracenn.tensor(X3[:, :, 0])), np_batch_norm(X3[:, :, 0]), atol=1e-5)
    assert m.num_batches_tracked.item() == 2


# ---- errors -------------------------------------------------------------------------------------------

def test_errors(lib):
    with pytest.raises(ValueError, match=r"expected 2D or 3D input \(got 4D input\)"):
        lib.nn.BatchNorm1d(3)(lib.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        lib.nn.BatchNorm2d(3)(lib.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input size "):
        lib.nn.BatchNorm1d(3)(lib.zeros(1, 3))
    with pytest.raises(ValueError, match=r"Expected more than 1 spatial element when training"):
        lib.nn.InstanceNorm1d(3)(lib.zeros(2, 3, 1))
    with pytest.raises(ValueError, match=r"num_channels \(5\) must be divisible by num_groups \(2\)"):
        lib.nn.GroupNorm(2, 5)
    with pytest.raises(RuntimeError, match=r"Given normalized_shape=\[4\], expected input with shape \[\*, 4\], "
                                           r"but got input of size\[2, 5\]"):
        lib.nn.LayerNorm(4)(lib.zeros(2, 5))
    with pytest.raises(ValueError, match=r"expected input's size at dim=1 to match num_features \(3\), but got: 4."):
        lib.nn.InstanceNorm1d(3, affine=True)(lib.zeros(2, 4, 5))
    with pytest.warns(UserWarning, match="input's size at dim=0 does not match num_features"):
        lib.nn.InstanceNorm1d(3)(lib.zeros(4, 5))
    with pytest.raises(RuntimeError, match="running_mean should contain 5 elements not 4"):
        lib.nn.functional.batch_norm(lib.zeros(2, 5), lib.zeros(4), lib.ones(4))
    with pytest.raises(RuntimeError, match="running_mean must be defined in evaluation mode"):
        lib.nn.functional.batch_norm(lib.zeros(2, 5), None, None)
    with pytest.raises(RuntimeError, match="Expected number of channels in input to be divisible by num_groups"):
        lib.nn.functional.group_norm(lib.zeros(2, 6, 3), 4)
    with pytest.raises(ValueError, match="Expected 3D or higher dimensionality"):
        lib.nn.functional.local_response_norm(lib.zeros(2, 3), 2)


# ---- parity with torch --------------------------------------------------------------------------------

def _parity(torch, name, args, kw, x, steps=2, rtol=1e-5, atol=1e-5):
    """Same weights, same input: train for ``steps`` forward/backward passes, then eval. Compares
    outputs, input and parameter gradients, and every buffer after each step."""
    tm = getattr(torch.nn, name)(*args, **kw)
    m = getattr(nn, name)(*args, **kw)
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn(p.shape))
    m.load_state_dict(state_from_torch(tm))
    for step in range(steps + 1):
        training = step < steps
        tm.train(training)
        m.train(training)
        xs = x * (step + 1) + step
        tx, nx = torch.tensor(xs, requires_grad=True), tracenn.tensor(xs, requires_grad=True)
        tout, out = tm(tx), m(nx)
        assert_close(out, tout, rtol=rtol, atol=atol)
        coef = np.linspace(-1, 1, xs.size, dtype=np.float32).reshape(xs.shape)
        (tout * torch.tensor(coef)).sum().backward()
        (out * tracenn.tensor(coef)).sum().backward()
        assert_close(nx.grad, tx.grad, rtol=rtol, atol=atol)
        for (tn, tp), (n, p) in zip(tm.named_parameters(), m.named_parameters()):
            assert tn == n
            assert_close(p.grad, tp.grad, rtol=rtol, atol=atol)
        for (tn, tb), (n, b) in zip(tm.named_buffers(), m.named_buffers()):
            assert tn == n
            assert_close(b, tb, rtol=rtol, atol=atol)


_slow = pytest.mark.slow


@pytest.mark.parametrize("name,args,kw,x", [
    ("BatchNorm1d", (3,), {}, X3),
    ("InstanceNorm1d", (3,), dict(affine=True, track_running_stats=True), X3),
    ("LayerNorm", ((5,),), {}, X3),
    ("GroupNorm", (3, 3), {}, X3),
    ("RMSNorm", ((5,),), {}, X3),
    ("LocalResponseNorm", (2,), {}, X3),
    pytest.param("BatchNorm1d", (3,), dict(momentum=None), X3[:, :, 0], marks=_slow),
    pytest.param("BatchNorm2d", (3,), dict(momentum=0.3, eps=1e-3, bias=False), X4, marks=_slow),
    pytest.param("InstanceNorm1d", (3,), {}, X3[0], marks=_slow),  # unbatched
    pytest.param("BatchNorm1d", (3,), dict(affine=False, track_running_stats=False), X3, marks=_slow),
    pytest.param("BatchNorm3d", (3,), {}, X4[..., None], marks=_slow),
    pytest.param("SyncBatchNorm", (3,), {}, X4, marks=_slow),
    pytest.param("InstanceNorm2d", (3,), dict(affine=True), X4, marks=_slow),
    pytest.param("InstanceNorm3d", (3,), dict(track_running_stats=True, momentum=None), X4[..., None].repeat(2, -1),
                 marks=_slow),
    pytest.param("LayerNorm", ((3, 5),), dict(bias=False, eps=1e-3), X3, marks=_slow),
    pytest.param("GroupNorm", (1, 3), dict(affine=False), X4, marks=_slow),
    pytest.param("RMSNorm", ((4, 4),), dict(eps=1e-3), X4, marks=_slow),
    pytest.param("LocalResponseNorm", (3,), dict(alpha=0.1, beta=0.5, k=2.0), X4, marks=_slow),
])
def test_parity_with_torch(torch, name, args, kw, x):
    _parity(torch, name, args, kw, x)


@pytest.mark.slow
def test_functional_parity_with_torch(torch):
    x = X4
    for fn, args, kw in [("normalize", (), {}), ("normalize", (), dict(p=1.0, dim=-1)),
                         ("layer_norm", ((4, 4),), {}), ("rms_norm", ((4,),), dict(eps=None)),
                         ("group_norm", (3,), dict(eps=1e-2)), ("instance_norm", (), {})]:
        tx, nx = torch.tensor(x, requires_grad=True), tracenn.tensor(x, requires_grad=True)
        tout, out = getattr(torch.nn.functional, fn)(tx, *args, **kw), getattr(F, fn)(nx, *args, **kw)
        assert_close(out, tout, atol=1e-5)
        tout.pow(2).sum().backward()
        out.pow(2).sum().backward()
        assert_close(nx.grad, tx.grad, atol=1e-5)


@pytest.mark.parametrize("size,channels", [(1, 3), (2, 3), (3, 7), (4, 1), (5, 7)])
def test_cross_map_lrn2d_forward_matches_torch_and_gradient_is_the_derivative(size, channels):
    x = np.random.default_rng(size * 10 + channels).standard_normal((2, channels, 3, 3))
    m = tracenn.nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.5)
    a = tracenn.tensor(x, requires_grad=True)
    out = m(a)
    np.testing.assert_allclose(to_np(tracenn.compile(m)(a)), to_np(out), rtol=1e-6)
    w = np.random.default_rng(1).standard_normal(x.shape)
    (out * tracenn.tensor(w)).sum().backward()
    f = lambda v: float((m(tracenn.tensor(v)) * tracenn.tensor(w)).sum())  # noqa: E731
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):  # central differences in float64
        e = np.zeros_like(x)
        e[idx] = 1e-6
        num[idx] = (f(x + e) - f(x - e)) / 2e-6
    np.testing.assert_allclose(to_np(a.grad), num, rtol=1e-5, atol=1e-7)
    torch = pytest.importorskip("torch")  # torch's forward (its legacy backward is not this derivative)
    t = torch.nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.5)
    np.testing.assert_allclose(to_np(out), t(torch.tensor(x)).numpy(), rtol=1e-6, atol=1e-9)
    assert repr(m) == repr(t)


def test_cross_map_lrn2d_needs_4d_input():
    with pytest.raises(ValueError, match="CrossMapLRN2d: Expected input to be 4D, got 3D instead."):
        tracenn.nn.CrossMapLRN2d(3)(tracenn.ones(2, 3, 4))
