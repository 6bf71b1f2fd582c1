"""One op's tensors on two devices raise torch's error instead of being moved silently.

JAX copies an uncommitted array to the device of a committed one, so ``model.cuda()`` followed by
``model(x_cpu)`` would run where torch raises. The check is armed once a device other than the
CPU is asked for; here it is armed by hand in a subprocess with two simulated CPU devices (the
second stands in for a GPU, so both print as ``cpu``)."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import tracenn

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
    try:
        a @ there(torch.randn(4, 5))
    except RuntimeError as e:
        out["matmul"] = str(e)
    lin = nn.Linear(4, 2)
    lin.weight.data = there(lin.weight.detach())
    lin.bias.data = there(lin.bias.detach())
    try:
        lin(a)
    except RuntimeError as e:
        out["linear"] = str(e)
    out["scalar_ok"] = list((a * there(torch.tensor(2.0))).shape)  # a 0-d tensor may be anywhere
    b, c = there(torch.randn(3, 4)), there(torch.randn(3, 4))
    out["same_ok"] = list((b + c).shape)
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def two_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = dict(os.environ, XLA_FLAGS=flags.strip(),
               PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(tracenn.__file__)),
                                           os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_an_op_on_two_devices_raises_torchs_error(two_devices):
    assert two_devices["matmul"] == (
        "Expected all tensors to be on the same device, but found at least two devices, cpu and cpu! "
        "(input 0 is on cpu, input 1 on cpu: move one with .to(device) first) (in matmul)")


def test_a_module_on_another_device_raises(two_devices):
    assert two_devices["linear"].startswith("Expected all tensors to be on the same device")
    assert two_devices["linear"].endswith("(in matmul)")  # Linear runs as a matmul


def test_zero_dim_and_same_device_operands_pass(two_devices):
    assert two_devices["scalar_ok"] == [3, 4]
    assert two_devices["same_ok"] == [3, 4]


def test_cpu_only_programs_do_not_arm_the_check():
    was = _device.SEVERAL[0]
    _device.SEVERAL[0] = False  # (tests that fake a GPU arm it in this process)
    try:
        assert (tracenn.randn(2, 2).to("cpu") + 1).device.type == "cpu"
        assert _device.SEVERAL[0] is False
    finally:
        _device.SEVERAL[0] = was
    assert _device.mismatch([("a", tracenn.randn(2)._value), ("b", tracenn.randn(3)._value)]) is None
