"""A layer's input and weights on two devices raise torch's error instead of being moved silently.

JAX copies an uncommitted array to the device of a committed one, so ``model.cuda()`` followed by
``model(x_cpu)`` would run where torch raises. linear, the convolutions and embedding check (not
every op: tracenn's own composites still let JAX move some constants they make). The check is
armed once a device other than the CPU is asked for; here it is armed by hand in a subprocess
with two simulated CPU devices (the second stands in for a GPU, so both print as ``cpu``)."""
import sys
import textwrap

import pytest

import tracenn
from helpers import run_on_simulated_devices

_device = sys.modules["tracenn.device"]  # (tracenn.device is torch's device class)

SCRIPT = textwrap.dedent('''
    import json, sys, jax
    import tracenn as torch
    from tracenn import nn
    device = sys.modules["tracenn.device"]
    assert len(jax.devices("cpu")) == 2
    device.SEVERAL[0] = True  # what asking for "cuda" does
    other = jax.devices("cpu")[1]

    def there(t):
        return torch.Tensor._wrap(jax.device_put(t._value, other))

    out = {}
    a = torch.randn(3, 4)
    lin = nn.Linear(4, 2)
    lin.weight.data = there(lin.weight.detach())
    lin.bias.data = there(lin.bias.detach())
    try:
        lin(a)
    except RuntimeError as e:
        out["linear"] = str(e)
    conv = nn.Conv2d(1, 2, 3)
    conv.weight.data = there(conv.weight.detach())
    try:
        conv(torch.randn(1, 1, 5, 5))
    except RuntimeError as e:
        out["conv"] = str(e)
    emb = nn.Embedding(10, 3)
    emb.weight.data = there(emb.weight.detach())
    try:
        emb(torch.tensor([1, 2]))
    except RuntimeError as e:
        out["embedding"] = str(e)
    out["same_ok"] = list(lin(there(a)).shape)
    out["scalar_bias_ok"] = list(torch.nn.functional.linear(there(a), lin.weight, there(torch.tensor(0.5))).shape)
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def two_devices():
    return run_on_simulated_devices(SCRIPT, 2, timeout=300)


def test_a_linear_layer_on_another_device_raises_torchs_error(two_devices):
    assert two_devices["linear"] == (
        "Expected all tensors to be on the same device, but found at least two devices, cpu and cpu! "
        "(input is on cpu, weight on cpu: move one with .to(device) first) (in linear)")


@pytest.mark.parametrize("layer", ["conv", "embedding"])
def test_conv_and_embedding_check_too(two_devices, layer):
    assert two_devices[layer].startswith("Expected all tensors to be on the same device")
    where = "(in Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1)))" if layer == "conv" else "(in embedding)"
    assert two_devices[layer].endswith(where)  # (a module's convolution names the module)


def test_same_device_and_zero_dim_operands_pass(two_devices):
    assert two_devices["same_ok"] == [3, 2]
    assert two_devices["scalar_bias_ok"] == [3, 2]  # a 0-d tensor may be anywhere, as in torch


def test_cpu_only_programs_do_not_arm_the_check():
    was = _device.SEVERAL[0]
    _device.SEVERAL[0] = False  # (tests that fake a GPU arm it in this process)
    try:
        assert (tracenn.randn(2, 2).to("cpu") + 1).device.type == "cpu"
        assert _device.SEVERAL[0] is False
    finally:
        _device.SEVERAL[0] = was
    assert _device.mismatch([("a", tracenn.randn(2)._value), ("b", tracenn.randn(3)._value)]) is None
