"""torch's top-level names for errors, devices, determinism and multiprocessing that device-agnostic
training scripts use: OutOfMemoryError, GradScaler, xpu/mps/mtia, get_device_module,
(get|set)_deterministic_debug_mode, tracenn.multiprocessing, tracenn.distributed."""
from __future__ import annotations

import operator

import numpy as np

import pytest

import tracenn


def test_out_of_memory_is_torchs_error():
    assert tracenn.OutOfMemoryError is tracenn.cuda.OutOfMemoryError
    assert issubclass(tracenn.OutOfMemoryError, RuntimeError) and issubclass(tracenn.AcceleratorError, RuntimeError)
    with pytest.raises(tracenn.OutOfMemoryError) as e:
        tracenn.zeros(2 ** 44)  # 64 TiB
    assert str(e.value).startswith("out of memory: Out of memory allocating 70368744177664 bytes.")
    assert "smaller batch" in str(e.value)


def test_an_allocation_that_failed_in_a_compiled_call_surfaces_as_out_of_memory():
    f = tracenn.compile(lambda x: x.expand(2 ** 21, 2 ** 22) * 2)  # a 32 TiB result
    with tracenn.no_grad():
        y = f(tracenn.ones(1, 2 ** 22))  # (JAX runs it asynchronously: the failure shows when read)
        with pytest.raises(tracenn.OutOfMemoryError, match="Out of memory allocating 35184372088832 bytes"):
            repr(y)


def test_other_runtime_errors_are_left_alone():
    from tracenn.errors import out_of_memory
    assert out_of_memory(RuntimeError("INTERNAL: something else")) is None
    assert out_of_memory(ValueError("Out of memory")) is None
    assert isinstance(out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: too big")), tracenn.OutOfMemoryError)


def test_grad_scaler_and_device_namespaces():
    assert tracenn.GradScaler is tracenn.amp.GradScaler
    for mod in (tracenn.xpu, tracenn.mps, tracenn.mtia):
        assert mod.is_available() is False and mod.device_count() == 0
        mod.manual_seed(0)
        mod.synchronize()
        with pytest.raises(RuntimeError, match="no .* device is available"):
            mod.current_device()
    import tracenn.mps as mps  # importable as a module, as torch's
    assert mps is tracenn.mps
    assert tracenn.get_device_module("cpu") is tracenn.cpu
    assert tracenn.get_device_module(tracenn.device("cuda:0")) is tracenn.cuda
    assert tracenn.get_device_module() is (tracenn.cuda if tracenn.cuda.is_available() else tracenn.cpu)
    with pytest.raises(RuntimeError, match="does not have a corresponding module"):
        tracenn.get_device_module("meta")
    assert tracenn.distributed.is_available() in (True, False)


@pytest.mark.parametrize("mode, want", [("default", 0), ("warn", 1), ("error", 2), (0, 0), (1, 1), (2, 2)])
def test_deterministic_debug_mode(mode, want):
    try:
        tracenn.set_deterministic_debug_mode(mode)
        assert tracenn.get_deterministic_debug_mode() == want
        assert tracenn.are_deterministic_algorithms_enabled() is (want > 0)
        assert tracenn.is_deterministic_algorithms_warn_only_enabled() is (want == 1)
    finally:
        tracenn.use_deterministic_algorithms(False)


def test_deterministic_debug_mode_errors_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (torch, tracenn):
        with pytest.raises(RuntimeError, match="invalid value of debug_mode, expected one of `default`, `warn`"):
            lib.set_deterministic_debug_mode("loud")
        with pytest.raises(TypeError, match="debug_mode must be str or int"):
            lib.set_deterministic_debug_mode(1.5)


def test_multiprocessing_has_torchs_additions():
    mp = tracenn.multiprocessing
    assert mp.get_all_sharing_strategies() == {"file_descriptor", "file_system"}
    mp.set_sharing_strategy("file_system")
    assert mp.get_sharing_strategy() == "file_system"
    mp.set_sharing_strategy("file_descriptor")
    with pytest.raises(AssertionError):
        mp.set_sharing_strategy("shared_pipes")
    assert mp.Queue is not None and mp.cpu_count() >= 1


def test_spawn_runs_and_reports_a_failure():
    mp = tracenn.multiprocessing
    assert mp.spawn(operator.add, args=(1,), nprocs=2) is None  # fn(i, *args) in each process
    with pytest.raises(mp.ProcessRaisedException, match="ZeroDivisionError"):
        mp.spawn(operator.truediv, args=(0,), nprocs=1)
    ctx = mp.spawn(operator.add, args=(1,), nprocs=1, join=False)
    while not ctx.join():
        pass
    assert len(ctx.pids()) == 1


def test_process_group_queries_over_jax_processes():
    dist = tracenn.distributed
    assert dist.is_available() and not dist.is_initialized()
    for fn in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            fn()
    dist.init_process_group("gloo", world_size=1, rank=0)
    try:
        assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
        assert dist.get_backend() == "gloo" and dist.barrier() is None
        with pytest.raises(ValueError, match="twice"):
            dist.init_process_group()
    finally:
        dist.destroy_process_group()
    assert not dist.is_initialized()
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        dist.init_process_group(world_size=2, rank=0)


def test_process_group_errors_match_torch():
    pytest.importorskip("torch")
    import torch.distributed as tdist
    for d in (tdist, tracenn.distributed):
        assert d.is_available() and not d.is_initialized()
        with pytest.raises(ValueError) as e:
            d.get_rank()
        assert str(e.value) == ("Default process group has not been initialized, please make sure to call "
                                "init_process_group.")


def test_distributed_data_parallel_for_one_process(monkeypatch):
    nn, dist = tracenn.nn, tracenn.distributed
    with pytest.raises(ValueError, match="Default process group has not been initialized"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    dist.init_process_group("gloo", world_size=1, rank=0)
    try:
        tracenn.manual_seed(0)
        inner = nn.Linear(3, 2)
        ref = nn.Linear(3, 2)
        ref.load_state_dict(inner.state_dict())
        ddp = nn.parallel.DistributedDataParallel(inner, find_unused_parameters=True)
        assert list(ddp.state_dict()) == ["module.weight", "module.bias"] and ddp.module is inner
        x = tracenn.randn(4, 3)
        with ddp.no_sync():
            ddp(x).sum().backward()
        tracenn.compile(ddp)(x).sum().backward()  # (a compiled DDP is the module's program)
        ref(x).sum().backward()
        ref(x).sum().backward()
        np.testing.assert_allclose(inner.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-6)
        with pytest.raises(RuntimeError, match="doesn't have any parameter that requires a gradient"):
            nn.parallel.DistributedDataParallel(nn.ReLU())
        monkeypatch.setattr(dist, "get_world_size", lambda group=None: 2)
        with pytest.raises(NotImplementedError, match="mesh='auto'"):
            nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    finally:
        dist.destroy_process_group()


def test_distributed_data_parallel_state_dict_is_torchs(torch):
    import torch.distributed as tdist
    import tempfile, os
    path = os.path.join(tempfile.mkdtemp(), "store")
    tdist.init_process_group("gloo", init_method=f"file://{path}", world_size=1, rank=0)
    tracenn.distributed.init_process_group("gloo", world_size=1, rank=0)
    try:
        keys = [list(lib.nn.parallel.DistributedDataParallel(lib.nn.BatchNorm1d(3)).state_dict())
                for lib in (torch, tracenn)]
        assert keys[0] == keys[1]
    finally:
        tdist.destroy_process_group()
        tracenn.distributed.destroy_process_group()
