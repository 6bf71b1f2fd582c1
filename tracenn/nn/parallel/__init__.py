"""``nn.DataParallel``: torch's spelling of batch-parallel execution (see tracenn.distributed)."""
from __future__ import annotations

from ..._dispatch import apply
from ...ops import OPS
from ...tensor import Tensor
from ...utils._pytree import map_leaves
from ..modules.module import Module

__all__ = ["DataParallel", "DistributedDataParallel"]


class DataParallel(Module):
    r"""Run ``module`` with its inputs split along ``dim`` over several devices.

    As torch's ``nn.DataParallel``: the wrapped model is ``.module`` (so ``state_dict`` keys start
    with ``module.``), inputs are scattered over ``device_ids`` and parameters are used on every
    device. Here the split is a ``jax.sharding`` placement: one SPMD program per op eagerly, or one
    for the whole step under ``tracenn.compile``, with XLA adding the gradient all-reduce. Outputs
    stay split over the devices (their values are the whole batch's; reading them gathers).

    Args:
        module: the model.
        device_ids: devices to use (JAX devices, ``"cuda:1"``-style names or indices); default all.
        output_device: accepted for torch compatibility (outputs stay sharded).
        dim: the batch dimension of the inputs. Default: 0.

    >>> import tracenn
    >>> dp = tracenn.nn.DataParallel(tracenn.nn.Linear(4, 2))
    >>> dp(tracenn.randn(8, 4)).shape
    tracenn.Size([8, 2])
    >>> list(dp.state_dict())
    ['module.weight', 'module.bias']
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        from ...distributed import DataParallelMesh
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self._mesh = DataParallelMesh(device_ids)

    def forward(self, *inputs, **kwargs):
        mesh = self._mesh

        def scatter(x):
            if x.dim() > self.dim and x.shape[self.dim] % mesh.size == 0:
                return apply(OPS["to_device"], (x,), (mesh.batch_sharding(self.dim, x.dim()),))
            return x

        inputs, kwargs = map_leaves((inputs, kwargs), lambda t: isinstance(t, Tensor), scatter)
        return self.module(*inputs, **kwargs)

    def extra_repr(self) -> str:
        return f"devices={self._mesh.size}"


class DistributedDataParallel(Module):
    r"""torch's ``nn.parallel.DistributedDataParallel``, for scripts launched as one process.

    The wrapped model is ``.module`` (``state_dict`` keys start with ``module.``, as torch's, so
    checkpoints move between the two), ``no_sync()`` and ``join()`` are accepted, and the call is the
    module's. It needs the process group (``tracenn.distributed.init_process_group``), as torch's.
    With one process there is nothing to all-reduce: gradients are the module's own. With several
    processes tracenn's data parallelism is a compiled step on a mesh spanning them,
    ``tracenn.compile(train_step, mesh="auto")`` with a ``DistributedSampler`` (``docs/distributed.md``),
    where XLA adds the all-reduce; this wrapper then raises and says so, rather than train each
    process on its own gradients.

    >>> import tracenn
    >>> tracenn.distributed.init_process_group("gloo", world_size=1, rank=0)
    >>> ddp = tracenn.nn.parallel.DistributedDataParallel(tracenn.nn.Linear(4, 2))
    >>> list(ddp.state_dict())
    ['module.weight', 'module.bias']
    >>> tracenn.distributed.destroy_process_group()
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0, broadcast_buffers=None,
                 init_sync=True, process_group=None, bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False, static_graph=False, **kwargs):
        super().__init__()
        from ... import distributed as dist
        world = dist.get_world_size()  # (torch's ValueError when no process group was initialized)
        if world > 1:
            raise NotImplementedError(
                f"DistributedDataParallel over {world} processes: tracenn has no eager gradient all-reduce. "
                "Compile the training step over a mesh that spans the processes instead: "
                "tracenn.compile(train_step, mesh='auto'), each process loading its share with "
                "DistributedSampler; XLA adds the all-reduce (docs/distributed.md)")
        if not any(p.requires_grad for p in module.parameters()):
            raise RuntimeError("DistributedDataParallel is not needed when a module doesn't have any parameter "
                               "that requires a gradient.")
        self.module = module
        self.device_ids = device_ids
        self.output_device = output_device
        self.dim = dim
        self.broadcast_buffers = True if broadcast_buffers is None else broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)

    def no_sync(self):
        """A context in which gradients are not all-reduced (one process: nothing to skip)."""
        import contextlib
        return contextlib.nullcontext()

    def join(self, divide_by_initial_world_size=True, enable=True, throw_on_early_termination=False):
        """torch's context for uneven inputs across processes (one process: nothing to join)."""
        import contextlib
        return contextlib.nullcontext()

    def register_comm_hook(self, state, hook):
        raise NotImplementedError("DistributedDataParallel.register_comm_hook: tracenn has no eager gradient "
                                  "communication to hook (one process; several run a compiled step on a mesh)")

