"""torch.distributed's process-group queries, over JAX's processes.

A tracenn "process group" is JAX's distributed runtime: one process per host, started with
``jax.distributed.initialize`` (or :func:`init_process_group`, which calls it with torchrun's
environment). Code written for torch asks ``is_initialized()``, ``get_rank()`` and
``get_world_size()`` to pick its data shard and its logging process; those read JAX's process
index and count. Gradient all-reduce is not an eager call here: a compiled step on a mesh
(``tracenn.compile(step, mesh="auto")``) has XLA insert it (see ``docs/distributed.md``).
"""
from __future__ import annotations

import os

import jax

__all__ = ["is_available", "is_initialized", "init_process_group", "destroy_process_group", "get_rank",
           "get_world_size", "barrier", "get_backend"]

_STATE = {"initialized": False, "backend": None}
_NOT_INITIALIZED = "Default process group has not been initialized, please make sure to call init_process_group."


def is_available() -> bool:
    """True: the process-group queries are available (over JAX's processes)."""
    return True


def _jax_initialized() -> bool:
    try:
        from jax._src import distributed
        return distributed.global_state.client is not None
    except (ImportError, AttributeError):  # pragma: no cover
        return jax.process_count() > 1


def is_initialized() -> bool:
    """Whether :func:`init_process_group` (or ``jax.distributed.initialize``) has run."""
    return _STATE["initialized"] or _jax_initialized()


def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the process group. One process (``world_size`` 1, or torchrun's ``WORLD_SIZE`` unset or
    1) needs no runtime; several start JAX's distributed runtime with ``jax.distributed.initialize``:
    the coordinator at ``MASTER_ADDR:MASTER_PORT`` (or ``init_method="tcp://host:port"``), the
    process count ``world_size`` (``WORLD_SIZE``) and this process's id ``rank`` (``RANK``). Call it
    before tracenn touches a device. ``backend`` is recorded (XLA picks its own collectives)."""
    if is_initialized():
        raise ValueError("trying to initialize the default process group twice!")
    world = world_size if world_size != -1 else int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        me = rank if rank != -1 else int(os.environ.get("RANK", "-1"))
        if me < 0:
            raise ValueError("rank must be given (or the RANK environment variable set) when world_size > 1")
        if init_method and init_method.startswith("tcp://"):
            address = init_method[len("tcp://"):]
        elif "MASTER_ADDR" in os.environ and "MASTER_PORT" in os.environ:
            address = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
        else:
            raise ValueError("init_process_group: give init_method='tcp://host:port' or set MASTER_ADDR and "
                             "MASTER_PORT: the address of process 0, JAX's coordinator")
        jax.distributed.initialize(coordinator_address=address, num_processes=world, process_id=me)
    _STATE["initialized"], _STATE["backend"] = True, backend or ("nccl" if jax.default_backend() == "gpu" else "gloo")


def destroy_process_group(group=None) -> None:
    """Leave the process group (``jax.distributed.shutdown`` when several processes joined)."""
    if _jax_initialized():
        jax.distributed.shutdown()
    _STATE["initialized"], _STATE["backend"] = False, None


def _check() -> None:
    if not is_initialized():
        raise ValueError(_NOT_INITIALIZED)


def get_rank(group=None) -> int:
    """This process's index among JAX's processes (``jax.process_index()``)."""
    _check()
    return jax.process_index()


def get_world_size(group=None) -> int:
    """How many processes joined (``jax.process_count()``)."""
    _check()
    return jax.process_count()


def get_backend(group=None) -> str:
    _check()
    return _STATE["backend"] or ("nccl" if jax.default_backend() == "gpu" else "gloo")


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every process reaches this call (JAX's ``sync_global_devices``)."""
    _check()
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices("tracenn.distributed.barrier")
    return None
