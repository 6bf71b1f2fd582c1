"""Data parallelism over the devices JAX sees (``jax.sharding``).

A :class:`DataParallelMesh` is a one-axis device mesh: a batch is split along its first dimension
across the devices, parameters and everything else are replicated, and XLA inserts the gradient
all-reduce when a compiled training step runs on it::

    mesh = tracenn.distributed.DataParallelMesh()        # every device JAX sees
    step = tracenn.compile(train_step, mesh=mesh)        # the same step, batch-parallel

or ``nn.DataParallel(model)``, the torch-familiar spelling for a module. After N steps the
parameters equal single-device training's within float tolerance (the batch mean is the same
sum, added in a different order). Multi-host use is in ``docs/distributed.md``.
"""
from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._process_group import (barrier, destroy_process_group, get_backend, get_rank,  # noqa: F401
                             get_world_size, init_process_group, is_available, is_initialized)

__all__ = ["DataParallelMesh", "as_mesh", "device_count", "barrier", "destroy_process_group", "get_backend",
           "get_rank", "get_world_size", "init_process_group", "is_available", "is_initialized"]


def device_count() -> int:
    """How many devices of the default kind JAX sees (``jax.device_count()``)."""
    return jax.device_count()


class DataParallelMesh:
    """A 1-D mesh of ``devices`` (default: all of JAX's devices) with axis ``axis``.

    Args:
        devices: JAX devices, tracenn devices or indices into ``jax.devices()``; or a
            ``jax.sharding.Mesh`` (its first axis carries the batch).
        axis: the mesh axis name.

    >>> mesh = DataParallelMesh()
    >>> mesh.size == len(jax.devices())
    True
    """

    def __init__(self, devices=None, axis: str = "data"):
        if isinstance(devices, Mesh):
            self.mesh = devices
            axis = devices.axis_names[0]
        else:
            devs = jax.devices() if devices is None else [_device(d) for d in devices]
            if not devs:
                raise ValueError("DataParallelMesh needs at least one device")
            self.mesh = Mesh(np.array(devs), (axis,))
        self.axis = axis
        self.size = self.mesh.shape[axis]
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self._by_dim = {}

    def batch_sharding(self, dim: int = 0, ndim: int = 1) -> NamedSharding:
        """The sharding that splits dimension ``dim`` of an ``ndim``-d array over the mesh."""
        key = (dim, ndim)
        s = self._by_dim.get(key)
        if s is None:
            spec = [None] * ndim
            spec[dim] = self.axis
            s = self._by_dim[key] = NamedSharding(self.mesh, PartitionSpec(*spec))
        return s

    def shard(self, a, dim: int = 0):
        """``a`` split along ``dim`` over the mesh (replicated when that size does not divide).

        With several processes (``jax.distributed.initialize``), ``a`` is this process's part of
        the batch and the result is the global array made of every process's part.
        """
        if a.ndim == 0 or a.shape[dim] % (self.size // jax.process_count()):
            return self.replicate(a)
        s = self.batch_sharding(dim, a.ndim)
        if getattr(a, "sharding", None) == s:
            return a
        if jax.process_count() > 1:
            return jax.make_array_from_process_local_data(s, np.asarray(a))
        return jax.device_put(a, s)

    def replicate(self, a):
        """``a`` copied to every device of the mesh (every process holds the same value)."""
        if isinstance(a, (int, float)):
            return a
        if getattr(a, "sharding", None) == self.replicated:
            return a
        if jax.process_count() > 1:
            return jax.make_array_from_process_local_data(self.replicated, np.asarray(a))
        return jax.device_put(a, self.replicated)

    def __repr__(self):
        return f"DataParallelMesh({self.size} x {self.mesh.devices.flat[0].platform}, axis={self.axis!r})"


def _device(d):
    if isinstance(d, int):
        return jax.devices()[d]
    if hasattr(d, "platform") and hasattr(d, "id"):
        return d
    from ..device import to_jax
    return to_jax(d)


def as_mesh(mesh) -> DataParallelMesh | None:
    """What ``tracenn.compile(..., mesh=...)`` accepts: a DataParallelMesh, a jax Mesh, a number
    of devices, ``True``/``"auto"`` (all devices) or None (no data parallelism)."""
    if mesh is None or mesh is False:
        return None
    if isinstance(mesh, DataParallelMesh):
        return mesh
    if mesh is True or mesh == "auto":
        return DataParallelMesh()
    if isinstance(mesh, int):
        devs = jax.devices()
        if not 1 <= mesh <= len(devs):
            raise ValueError(f"mesh={mesh}: JAX sees {len(devs)} device(s)")
        return DataParallelMesh(devs[:mesh])
    if isinstance(mesh, Mesh):
        return DataParallelMesh(mesh)
    raise TypeError(f"mesh must be a tracenn.distributed.DataParallelMesh, a jax.sharding.Mesh, a device "
                    f"count or 'auto', got {type(mesh).__name__}")
