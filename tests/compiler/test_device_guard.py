"""A compiled call guards the device once several devices are in use (runtime/device_guard.py).

An input on another device than the model's parameters raises torch's "Expected all tensors to be on
the same device" as the eager model does (JAX would copy the arrays over silently); the model and its
inputs moved together compile a program for the new device, as torch.compile recompiles on a device
change. CPU-only programs (one device) leave the device out of the key. The multi-device cases run in
a subprocess with two simulated CPU devices, the second standing in for a GPU (both print as ``cpu``)."""
import sys
import textwrap

import jax
import pytest

import tracenn
from tracenn import _dispatch, nn
from helpers import run_on_simulated_devices

_device = sys.modules["tracenn.device"]  # (tracenn.device is torch's device class)

SCRIPT = textwrap.dedent('''
    import json, sys, jax
    import tracenn as torch
    from tracenn import nn
    device = sys.modules["tracenn.device"]
    device.SEVERAL[0] = True  # what asking for "cuda" does (before any compiled call, as there)
    d0, d1 = jax.devices("cpu")

    def there(t, d=d1):
        return torch.Tensor._wrap(jax.device_put(t._value, d))

    def error(f):
        try:
            f()
        except RuntimeError as e:
            return str(e)
        return None

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)
            self._traces = []  # (a list: an int the forward changes is guarded, so each call would trace)

        @property
        def traces(self):
            return len(self._traces)

        def forward(self, x):
            self._traces.append(1)
            return self.lin(x)

    out = {}
    m = M()
    cm = torch.compile(m)
    a = torch.randn(3, 4)
    ref = cm(a).detach().numpy().tolist()
    cm(a)
    out["d0_devices"] = [d.id for d in cm(a)._value.sharding.device_set]
    out["input_elsewhere"] = error(lambda: cm(there(a)))
    out["eager_input_elsewhere"] = error(lambda: m(there(a)))
    m.lin.weight.data = there(m.lin.weight.detach())
    m.lin.bias.data = there(m.lin.bias.detach())
    out["params_elsewhere"] = error(lambda: cm(a))
    y = cm(there(a))
    y = cm(there(a))  # (its program is found again)
    out["moved_devices"] = [d.id for d in y._value.sharding.device_set]
    out["moved_close"] = max(abs(p - q) for r, s in zip(ref, y.detach().numpy().tolist()) for p, q in zip(r, s))
    out["programs"] = len(cm._entries)
    out["explain"] = cm.explain()
    f = torch.compile(lambda x, y: x * 2 + y)
    out["two_inputs"] = error(lambda: f(a, there(a)))
    out["two_inputs_same"] = list(f(there(a), there(a)).shape)
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def two_devices():
    return run_on_simulated_devices(SCRIPT, 2, timeout=300)


def test_an_input_on_another_device_raises_torchs_error(two_devices):
    assert two_devices["d0_devices"] == [0]
    msg = two_devices["input_elsewhere"]
    assert msg is not None and msg.startswith(
        "Expected all tensors to be on the same device, but found at least two devices, cpu and cpu! "
        "(x is on cpu, lin.weight on cpu: move one with .to(device) first) (in tracenn.compile(M)")
    assert two_devices["eager_input_elsewhere"].startswith("Expected all tensors to be on the same device")


def test_parameters_on_another_device_raise_it_too(two_devices):
    assert two_devices["params_elsewhere"].startswith("Expected all tensors to be on the same device")


def test_moving_model_and_inputs_together_recompiles_there(two_devices):
    assert two_devices["moved_devices"] == [1]
    assert two_devices["moved_close"] < 1e-6
    assert two_devices["programs"] == 2
    text = two_devices["explain"]
    assert "each tensor input's device and the device of the parameters and buffers" in text
    assert "on cpu (JAX device 1)" in text
    assert ("input 'x' moved: cpu -> cpu (JAX device 1); the parameters and buffers moved: "
            "cpu -> cpu (JAX device 1)") in text


def test_two_inputs_on_two_devices_raise(two_devices):
    assert two_devices["two_inputs"].startswith("Expected all tensors to be on the same device")
    assert two_devices["two_inputs_same"] == [3, 4]


def test_cpu_only_programs_leave_the_device_out_of_the_key():
    assert _device.SEVERAL[0] is False or pytest.skip("a test in this process armed the multi-device checks")
    cm = tracenn.compile(nn.Linear(4, 2))
    cm(tracenn.randn(3, 4))
    cm(tracenn.randn(3, 4))
    (key,) = cm._entries
    assert isinstance(key[0], int)
    assert "device" not in cm.explain()
    assert len(cm._fast_entries) == 1  # (the one-lookup call path)


def test_asking_for_a_second_device_arms_the_guard_and_moves_the_epoch(monkeypatch):
    was = _device.SEVERAL[0]
    monkeypatch.setattr(_device, "gpu_devices", lambda: (jax.devices("cpu")[0],))
    _device.SEVERAL[0] = False
    try:
        epoch = _dispatch.EPOCH[0]
        _device.to_jax("cuda")
        assert _device.SEVERAL[0] is True and _dispatch.EPOCH[0] == epoch + 1
        _device.to_jax("cuda")
        assert _dispatch.EPOCH[0] == epoch + 1  # (armed once)
    finally:
        _device.SEVERAL[0] = was


def test_no_gpu_does_not_arm_it(monkeypatch):
    was = _device.SEVERAL[0]
    monkeypatch.setattr(_device, "gpu_devices", lambda: ())
    _device.SEVERAL[0] = False
    try:
        with pytest.raises(RuntimeError, match="CUDA device requested"):
            _device.to_jax("cuda")
        assert _device.SEVERAL[0] is False
    finally:
        _device.SEVERAL[0] = was
