"""``nn.DataParallel``: torch's spelling of batch-parallel execution (see tracenn.distributed)."""
from __future__ import annotations

from ..._dispatch import apply
from ...ops import OPS
from ...tensor import Tensor
from ...utils._pytree import map_leaves
from ..modules.module import Module

__all__ = ["DataParallel"]


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
