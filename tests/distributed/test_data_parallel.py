"""Data parallelism on 8 simulated CPU devices (a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``): N training steps on the mesh equal N
single-device steps within float tolerance."""
import textwrap

import pytest

import tracenn
from helpers import run_on_simulated_devices
from tracenn.distributed import DataParallelMesh, as_mesh

SCRIPT = textwrap.dedent('''
    import json, numpy as np, jax
    import tracenn as torch
    from tracenn import nn
    import tracenn.nn.functional as F
    assert jax.device_count() == 8, jax.devices()

    def make():
        torch.manual_seed(0)
        # (no bias straight into BatchNorm: its gradient is zero up to rounding, and Adam would
        # turn rounding noise into full-size steps that differ with the summation order)
        return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.BatchNorm1d(32), nn.Dropout(0.2), nn.Linear(32, 4))

    def train(mesh=None, wrap=False, compiled=True, steps=4):
        m = make()
        net = nn.DataParallel(m) if wrap else m
        opt = torch.optim.Adam(m.parameters(), lr=0.01)
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss
        run = torch.compile(step, mesh=mesh) if compiled else step
        torch.manual_seed(1)
        data = [(torch.randn(16, 8), torch.randint(0, 4, (16,))) for _ in range(steps)]
        losses = [float(run(x, y)) for x, y in data]
        params = [np.asarray(p._value) for p in m.parameters()]
        stats = np.asarray(m[2].running_mean._value)
        sharding = str(m[0].weight._value.sharding)
        return losses, params, stats, sharding

    ref = train()
    out = {}
    for name, kw in {"compile_mesh": dict(mesh=8), "dataparallel_compiled": dict(wrap=True),
                     "dataparallel_eager": dict(wrap=True, compiled=False)}.items():
        losses, params, stats, sharding = train(**kw)
        out[name] = dict(
            loss=max(abs(a - b) for a, b in zip(losses, ref[0])),
            param=max(float(np.abs(a - b).max()) for a, b in zip(params, ref[1])),
            stats=float(np.abs(stats - ref[2]).max()), sharding=sharding)
    print(json.dumps(out))
''')


@pytest.fixture(scope="module")
def eight_devices():
    return run_on_simulated_devices(SCRIPT, 8, timeout=600)


@pytest.mark.parametrize("variant", ["compile_mesh", "dataparallel_compiled", "dataparallel_eager"])
def test_eight_devices_match_one(eight_devices, variant):
    got = eight_devices[variant]
    assert got["loss"] < 1e-5 and got["param"] < 1e-5 and got["stats"] < 1e-5, got


def test_compiled_mesh_keeps_parameters_replicated(eight_devices):
    assert "'data': 8" in eight_devices["compile_mesh"]["sharding"]
    assert "spec=P()" in eight_devices["compile_mesh"]["sharding"]


def test_as_mesh_accepts_the_documented_forms():
    assert as_mesh(None) is None
    m = as_mesh("auto")
    assert isinstance(m, DataParallelMesh) and m.size == len(__import__("jax").devices())
    assert as_mesh(m) is m
    assert as_mesh(1).size == 1
    with pytest.raises(ValueError, match="JAX sees"):
        as_mesh(10_000)
    with pytest.raises(TypeError, match="mesh must be"):
        as_mesh("everything")


def test_dataparallel_on_one_device_is_the_module():
    tracenn.manual_seed(0)
    inner = tracenn.nn.Linear(4, 3)
    dp = tracenn.nn.DataParallel(inner)
    x = tracenn.randn(6, 4)
    assert bool((dp(x) == inner(x)).all())
    assert list(dp.state_dict()) == ["module.weight", "module.bias"]
    assert dp.module is inner
