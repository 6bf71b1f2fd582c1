"""tracenn.autocast: which ops run in low precision, float32 master weights, nesting, compile."""
import numpy as np
import pytest

import tracenn
from tracenn import nn
from helpers import to_np


@pytest.fixture
def fake_gpu(monkeypatch):
    """autocast("cuda") without a GPU is off (as torch's): these tests of CUDA's lists pretend one."""
    monkeypatch.setattr(tracenn.cuda, "is_available", lambda: True)


def test_matmul_and_conv_run_in_the_autocast_dtype(fake_gpu):
    x, w = tracenn.randn(2, 4), tracenn.randn(4, 3)
    img, k = tracenn.randn(1, 1, 5, 5), tracenn.randn(2, 1, 3, 3)
    with tracenn.autocast("cpu"):
        assert (x @ w).dtype == tracenn.bfloat16
        assert tracenn.conv2d(img, k).dtype == tracenn.bfloat16
        assert x.exp().dtype == tracenn.float32                      # float32 in, float32 out
        assert (x @ w).exp().dtype == tracenn.bfloat16               # the CPU's list has no exp (torch's)
        assert (x @ w).prod().dtype == tracenn.float32               # ...but prod
        assert tracenn.nn.functional.mse_loss(x @ w, x @ w).dtype == tracenn.float32  # and the losses
        assert tracenn.relu(x @ w).dtype == tracenn.bfloat16         # others follow their inputs
    with tracenn.autocast("cuda", dtype=tracenn.bfloat16):  # (CUDA's lists: transcendentals, reductions)
        assert (x @ w).dtype == tracenn.bfloat16
        assert (x @ w).exp().dtype == tracenn.float32                # low precision in, float32 out
        assert tracenn.softmax(x @ w, -1).dtype == tracenn.float32
    assert (x @ w).dtype == tracenn.float32                          # outside: unchanged
    with tracenn.autocast("cuda" if False else "cpu", dtype=tracenn.float16):
        assert (x @ w).dtype == tracenn.float16


def test_values_are_the_low_precision_product():
    x, w = tracenn.randn(8, 16), tracenn.randn(16, 4)
    with tracenn.autocast("cpu"):
        y = x @ w
    ref = to_np(x.bfloat16().float()) @ to_np(w.bfloat16().float())
    np.testing.assert_allclose(to_np(y.float()), ref, rtol=2e-2, atol=2e-2)


def test_gradients_reach_float32_master_weights():
    lin = nn.Linear(4, 3)
    with tracenn.autocast("cpu"):
        out = lin(tracenn.randn(5, 4))
    out.float().sum().backward()
    assert lin.weight.dtype == tracenn.float32 and lin.weight.grad.dtype == tracenn.float32
    assert lin.bias.grad is not None


def test_nesting_decorator_and_state_queries():
    assert not tracenn.is_autocast_enabled("cpu")
    with tracenn.autocast("cpu"):
        assert tracenn.is_autocast_enabled("cpu") and tracenn.get_autocast_dtype("cpu") == tracenn.bfloat16
        with tracenn.autocast("cpu", enabled=False):
            assert not tracenn.is_autocast_enabled("cpu")
            assert (tracenn.randn(2, 2) @ tracenn.randn(2, 2)).dtype == tracenn.float32
        assert tracenn.is_autocast_enabled("cpu")
    assert not tracenn.is_autocast_enabled("cpu")

    @tracenn.autocast("cpu")
    def f(a, b):
        return a @ b
    assert f(tracenn.randn(2, 2), tracenn.randn(2, 2)).dtype == tracenn.bfloat16
    assert not tracenn.is_autocast_enabled("cpu")


def test_is_autocast_enabled_without_a_device_asks_about_cuda_as_torch(fake_gpu):
    with tracenn.autocast("cpu"):
        assert tracenn.is_autocast_enabled("cpu") and not tracenn.is_autocast_enabled()
    with tracenn.autocast("cuda"):
        assert tracenn.is_autocast_enabled() and tracenn.is_autocast_enabled("cuda")
    assert not tracenn.is_autocast_enabled()


@pytest.mark.skipif(tracenn.cuda.is_available(), reason="a GPU is visible to JAX")
def test_cuda_autocast_without_a_gpu_warns_and_stays_float32_as_torch():
    x = tracenn.randn(2, 4)
    for make in (lambda: tracenn.autocast("cuda"), lambda: tracenn.amp.autocast("cuda", dtype=tracenn.bfloat16)):
        with pytest.warns(UserWarning, match="CUDA is not available or torch_xla is imported. Disabling autocast."):
            ctx = make()
        with ctx:
            assert not tracenn.is_autocast_enabled("cuda")
            assert (x @ x.T).dtype == tracenn.float32
    with pytest.warns(FutureWarning), pytest.warns(UserWarning, match="Disabling autocast"):
        with tracenn.cuda.amp.autocast():
            assert (x @ x.T).dtype == tracenn.float32
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tracenn.autocast("cuda", enabled=False):  # (asking for no autocast: nothing to warn about)
            pass


def test_bad_arguments_are_torch_errors():
    with pytest.raises(RuntimeError, match="unsupported autocast device_type"):
        tracenn.autocast("tpu9")
    with pytest.raises(RuntimeError, match="not supported"):
        tracenn.autocast("cpu", dtype=tracenn.float64)
    with pytest.raises(ValueError, match="device_type"):
        tracenn.autocast(0)


def test_compiled_calls_keep_one_program_per_autocast_state():
    tracenn.manual_seed(0)
    m = nn.Linear(4, 3)
    cm = tracenn.compile(m)
    x = tracenn.randn(2, 4)
    full = cm(x)
    with tracenn.autocast("cpu"):
        low = cm(x)
        eager_low = m(x)
    again = cm(x)
    assert full.dtype == tracenn.float32 and again.dtype == tracenn.float32
    # bf16 precision: XLA may keep a fused product in float32 before the bias add (excess precision)
    np.testing.assert_allclose(to_np(low.float()), to_np(eager_low.float()), rtol=2e-2, atol=1e-2)
    assert len(cm._entries) == 2
    np.testing.assert_array_equal(to_np(full), to_np(again))


def test_torch_parity(torch):
    x, w = tracenn.randn(3, 8), tracenn.randn(8, 5)
    with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
        y = x @ w
    tx, tw = torch.tensor(to_np(x)), torch.tensor(to_np(w))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ty = tx @ tw
    assert str(ty.dtype) == "torch.bfloat16" and y.dtype == tracenn.bfloat16
    np.testing.assert_array_equal(to_np(y.float()), ty.float().numpy())


def test_a_low_precision_input_meets_float32_conv_weights_under_autocast():
    # (a resnet block under autocast: BatchNorm hands bf16 to the next conv, whose weight is float32)
    rs = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = tracenn.tensor(rs.standard_normal((2, 3, 5, 5)).astype(np.float32)).bfloat16()
    with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
        y = conv(x)
        yt = nn.ConvTranspose2d(3, 2, 3)(x)
    assert y.dtype == tracenn.bfloat16 and yt.dtype == tracenn.bfloat16  # (bias cast too, as torch's)
    want = tracenn.nn.functional.conv2d(x, conv.weight.bfloat16(), conv.bias.bfloat16(), padding=1)
    np.testing.assert_array_equal(to_np(y.float()), to_np(want.float()))
    with pytest.raises(RuntimeError, match="should be the same|same dtype"):
        conv(x)  # (outside autocast the dtypes must match, as torch's)


def test_mixed_conv_under_autocast_matches_torch(torch):
    rs = np.random.default_rng(1)
    w = rs.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rs.standard_normal(4).astype(np.float32)
    x = rs.standard_normal((2, 3, 6, 6)).astype(np.float32)
    outs = []
    for lib in (torch, tracenn):
        conv = lib.nn.Conv2d(3, 4, 3)
        with lib.no_grad():
            conv.weight.copy_(lib.tensor(w))
            conv.bias.copy_(lib.tensor(b))
        with lib.autocast("cpu", dtype=lib.bfloat16):
            y = conv(lib.tensor(x).bfloat16())
        assert str(y.dtype).endswith("bfloat16")
        outs.append(y.float().detach().numpy())
    np.testing.assert_allclose(outs[1], outs[0], rtol=2e-2, atol=2e-2)


_CPU_OPS = {  # op -> torch 2.13's output dtype for a bfloat16 input under autocast("cpu")
    "exp": "bfloat16", "log": "bfloat16", "sum": "bfloat16", "mean": "bfloat16", "prod": "float32",
    "softmax": "bfloat16", "log_softmax": "bfloat16", "layer_norm": "bfloat16", "mse": "float32",
    "cross_entropy": "float32", "nll": "float32", "bce_logits": "float32", "l1": "float32", "huber": "float32",
    "kl": "float32", "cdist": "float32", "max_pool3d": "float32", "avg_pool3d": "float32",
    "reflection_pad": "float32", "replication_pad": "float32", "constant_pad": "bfloat16", "fft": "float32",
    "grid_sample": "float32", "trace": "float32", "quantile": "float32", "gelu": "bfloat16", "topk": "bfloat16",
}


def _cpu_op(lib, name, t):
    F = lib.nn.functional
    five = t[None, None, None].expand(1, 1, 2, 4, 4)
    return {
        "exp": lambda: t.exp(), "log": lambda: t.log(), "sum": lambda: t.sum(), "mean": lambda: t.mean(),
        "prod": lambda: t.prod(), "softmax": lambda: t.softmax(-1), "log_softmax": lambda: t.log_softmax(-1),
        "layer_norm": lambda: F.layer_norm(t, (4,)), "mse": lambda: F.mse_loss(t, t),
        "cross_entropy": lambda: F.cross_entropy(t, lib.tensor([0, 1, 2, 3])),
        "nll": lambda: F.nll_loss(t, lib.tensor([0, 1, 2, 3])),
        "bce_logits": lambda: F.binary_cross_entropy_with_logits(t, t),
        "l1": lambda: F.l1_loss(t, t), "huber": lambda: F.huber_loss(t, t), "kl": lambda: F.kl_div(t, t),
        "cdist": lambda: lib.cdist(t, t), "max_pool3d": lambda: F.max_pool3d(five, 1),
        "avg_pool3d": lambda: F.avg_pool3d(five, 1),
        "reflection_pad": lambda: F.pad(t[None], (1, 1), mode="reflect"),
        "replication_pad": lambda: F.pad(t[None], (1, 1), mode="replicate"),
        "constant_pad": lambda: F.pad(t[None], (1, 1)), "fft": lambda: lib.fft.fft(t).real,
        "grid_sample": lambda: F.grid_sample(t[None, None], lib.zeros(1, 2, 2, 2), align_corners=False),
        "trace": lambda: lib.trace(t), "quantile": lambda: lib.quantile(t, 0.5), "gelu": lambda: F.gelu(t),
        "topk": lambda: lib.topk(t, 2)[0],
    }[name]()


@pytest.mark.parametrize("name", sorted(_CPU_OPS))
def test_cpu_autocast_runs_torchs_cpu_lists(name):
    t = (tracenn.rand(4, 4) + 0.5).bfloat16()
    with tracenn.autocast("cpu", dtype=tracenn.bfloat16):
        got = _cpu_op(tracenn, name, t)
    assert str(got.dtype) == f"tracenn.{_CPU_OPS[name]}"


def test_cpu_autocast_table_is_torchs(torch):
    t = (torch.rand(4, 4) + 0.5).bfloat16()
    for name, want in _CPU_OPS.items():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert str(_cpu_op(torch, name, t).dtype) == f"torch.{want}", name


def test_products_keep_their_added_input_in_low_precision(torch):
    rs = np.random.default_rng(2)
    a, b, c = (rs.standard_normal((3, 3)).astype(np.float32) for _ in range(3))
    for lib in (torch, tracenn):
        lin = lib.nn.Linear(3, 2)
        with lib.autocast("cpu", dtype=lib.bfloat16):
            got = [lib.addmm(lib.tensor(a), lib.tensor(b), lib.tensor(c)), lin(lib.tensor(a)),
                   lib.nn.functional.linear(lib.tensor(a).bfloat16(), lin.weight),
                   lib.baddbmm(lib.tensor(a)[None], lib.tensor(b)[None], lib.tensor(c)[None])]
        assert [str(g.dtype).split(".")[-1] for g in got] == ["bfloat16"] * 4
