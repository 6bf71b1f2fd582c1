"""tracenn.autocast: which ops run in low precision, float32 master weights, nesting, compile."""
import numpy as np
import pytest

import tracenn
from tracenn import nn
from helpers import to_np


def test_matmul_and_conv_run_in_the_autocast_dtype():
    x, w = tracenn.randn(2, 4), tracenn.randn(4, 3)
    img, k = tracenn.randn(1, 1, 5, 5), tracenn.randn(2, 1, 3, 3)
    with tracenn.autocast("cpu"):
        assert (x @ w).dtype == tracenn.bfloat16
        assert tracenn.conv2d(img, k).dtype == tracenn.bfloat16
        assert x.exp().dtype == tracenn.float32                      # float32 list
        assert (x @ w).exp().dtype == tracenn.float32                # low precision in, float32 out
        assert tracenn.relu(x @ w).dtype == tracenn.bfloat16         # others follow their inputs
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


def test_is_autocast_enabled_without_a_device_asks_about_cuda_as_torch():
    with tracenn.autocast("cpu"):
        assert tracenn.is_autocast_enabled("cpu") and not tracenn.is_autocast_enabled()
    with tracenn.autocast("cuda"):
        assert tracenn.is_autocast_enabled() and tracenn.is_autocast_enabled("cuda")
    assert not tracenn.is_autocast_enabled()


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
