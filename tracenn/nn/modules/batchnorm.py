"""Batch normalisation: ``BatchNorm1d/2d/3d``, ``SyncBatchNorm`` (one device: batch norm over any rank) and
``LazyBatchNorm1d/2d/3d`` (``num_features`` from the first input).

Buffers follow torch: ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked``
(an int64 scalar) when ``track_running_stats``; all three are None otherwise. Training updates them
in place, so the buffer objects a user holds stay current.
"""
from __future__ import annotations

from typing import Any

from ... import _dispatch
from ... import dtypes as _dt
from ..._api.creation import empty, ones, tensor, zeros
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter, UninitializedBuffer, UninitializedParameter
from .lazy import LazyModuleMixin
from .module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LazyBatchNorm1d", "LazyBatchNorm2d",
           "LazyBatchNorm3d"]


class _NormBase(Module):
    """Parameters, buffers, reset and repr shared by batch and instance norm."""

    _version = 2  # version 2 added num_batches_tracked
    __constants__ = ["track_running_stats", "momentum", "eps", "num_features", "affine"]
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, device=None, dtype=None, *, bias: bool = True) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if self.affine:
            self.weight = Parameter(empty(num_features, **factory_kwargs))
            if bias:
                self.bias = Parameter(empty(num_features, **factory_kwargs))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, **factory_kwargs))
            self.register_buffer("running_var", ones(num_features, **factory_kwargs))
            self.register_buffer("num_batches_tracked", tensor(0, dtype=_dt.int64, device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to 0, running variance to 1, ``num_batches_tracked`` to 0 (in place)."""
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics; weight to ones and bias to zeros."""
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        version = local_metadata.get("version", None)
        if (version is None or version < 2) and self.track_running_stats:
            # Checkpoints from before num_batches_tracked existed (and plain dicts without metadata,
            # such as a converted torch state_dict missing the key) load with the current count.
            key = prefix + "num_batches_tracked"
            if key not in state_dict:
                state_dict[key] = (self.num_batches_tracked if self.num_batches_tracked is not None
                                   else tensor(0, dtype=_dt.int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class _BatchNorm(_NormBase):
    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        exponential_average_factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                if _dispatch.TRACE[0] is not None:  # compiling: the count is a program value
                    exponential_average_factor = 1.0 / self.num_batches_tracked.double()
                else:
                    exponential_average_factor = 1.0 / float(self.num_batches_tracked)
        # Batch statistics in training mode, and in eval mode when there are no running buffers.
        bn_training = self.training or (self.running_mean is None and self.running_var is None)
        # Buffers are passed only where they are updated (training and tracked) or used (eval).
        use_buffers = not self.training or self.track_running_stats
        return F.batch_norm(input, self.running_mean if use_buffers else None,
                            self.running_var if use_buffers else None, self.weight, self.bias, bn_training,
                            exponential_average_factor, self.eps)


class BatchNorm1d(_BatchNorm):
    r"""Batch normalisation over a 2-D :math:`(N, C)` or 3-D :math:`(N, C, L)` input.

    :math:`y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} * \gamma + \beta`, statistics per
    channel over the batch (and length). Training updates the running statistics
    (``momentum=None``: a cumulative average); eval mode normalises with them.

    Args:
        num_features: :math:`C`.
        eps: added to the variance. Default: 1e-5.
        momentum: weight of the new batch in the running statistics, or None for a cumulative
            moving average. Default: 0.1.
        affine: learnable ``weight`` (ones) and ``bias`` (zeros). Default: True.
        track_running_stats: keep ``running_mean``/``running_var``/``num_batches_tracked``; without
            them batch statistics are used in eval mode too. Default: True.
        bias: with ``affine``, whether to learn a bias. Default: True.

    Shape:
        - Input: :math:`(N, C)` or :math:`(N, C, L)`; Output: the same.

    >>> import tracenn
    >>> m = tracenn.nn.BatchNorm1d(2)
    >>> m
    BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> m(tracenn.tensor([[1.0, 2.0], [3.0, 6.0]]))
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]], grad_fn=<AddBackward0>)
    >>> m.running_mean, m.num_batches_tracked
    (tensor([0.2000, 0.4000]), tensor(1))
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class BatchNorm2d(_BatchNorm):
    r"""Batch normalisation over a 4-D :math:`(N, C, H, W)` input; see :class:`BatchNorm1d`.

    >>> import tracenn
    >>> m = tracenn.nn.BatchNorm2d(3, momentum=None, affine=False)
    >>> m(tracenn.randn(4, 3, 2, 2)).shape
    tracenn.Size([4, 3, 2, 2])
    >>> m
    BatchNorm2d(3, eps=1e-05, momentum=None, affine=False, bias=False, track_running_stats=True)
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


class BatchNorm3d(_BatchNorm):
    r"""Batch normalisation over a 5-D :math:`(N, C, D, H, W)` input; see :class:`BatchNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.BatchNorm3d(3)(tracenn.randn(2, 3, 2, 2, 2)).shape
    tracenn.Size([2, 3, 2, 2, 2])
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 5:
            raise ValueError(f"expected 5D input (got {input.dim()}D input)")


class SyncBatchNorm(_BatchNorm):
    r"""Batch normalisation over an :math:`(N, C, *)` input of any rank, as torch's ``SyncBatchNorm``.

    tracenn runs on one device, where torch's ``SyncBatchNorm`` (no process group initialised)
    computes exactly batch norm; ``process_group`` is kept for the constructor's signature.
    ``convert_sync_batchnorm`` swaps the ``BatchNorm*d`` layers of a model for it, sharing their
    parameters and buffers.

    >>> import tracenn
    >>> m = tracenn.nn.SyncBatchNorm(3)
    >>> m(tracenn.randn(2, 3, 4, 4, 4)).shape
    tracenn.Size([2, 3, 4, 4, 4])
    >>> tracenn.nn.SyncBatchNorm.convert_sync_batchnorm(tracenn.nn.Sequential(tracenn.nn.BatchNorm1d(2)))
    Sequential(
      (0): SyncBatchNorm(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    )
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group: Any | None = None, device=None, dtype=None,
                 *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype,
                         bias=bias)
        self.process_group = process_group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        if input.size(1) == 0:
            raise ValueError("SyncBatchNorm number of input channels should be non-zero")
        return super().forward(input)

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """Return ``module`` with every ``BatchNorm*d`` replaced by a ``SyncBatchNorm`` that shares its
        parameters and buffers (``module`` itself if it is not a batch norm)."""
        module_output = module
        if isinstance(module, _BatchNorm):
            module_output = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                          module.track_running_stats, process_group,
                                          bias=module.bias is not None)
            if module.affine:
                with no_grad():
                    module_output.weight = module.weight
                    module_output.bias = module.bias
            module_output.running_mean = module.running_mean
            module_output.running_var = module.running_var
            module_output.num_batches_tracked = module.num_batches_tracked
            module_output.training = module.training
            if hasattr(module, "qconfig"):
                module_output.qconfig = module.qconfig
        for name, child in module.named_children():
            module_output.add_module(name, cls.convert_sync_batchnorm(child, process_group))
        del module
        return module_output


# ---- lazy batch (and instance) norm ----------------------------------------------------------------

class _LazyNormBase(LazyModuleMixin, _NormBase):
    """``num_features`` from the first input's ``shape[1]``: materialize the affine parameters and the
    running statistics, then reset them (weight 1, bias 0, mean 0, variance 1)."""

    weight: UninitializedParameter
    bias: UninitializedParameter

    def __init__(self, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True, device=None, dtype=None, *,
                 bias=True) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        # affine, bias and track_running_stats off: no tensors that the placeholders replace at once
        super().__init__(0, eps, momentum, False, False, **factory_kwargs, bias=False)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if self.affine:
            self.weight = UninitializedParameter(**factory_kwargs)
            if bias:
                self.bias = UninitializedParameter(**factory_kwargs)
        if self.track_running_stats:
            self.running_mean = UninitializedBuffer(**factory_kwargs)
            self.running_var = UninitializedBuffer(**factory_kwargs)
            self.num_batches_tracked = tensor(0, dtype=_dt.int64, device=device)

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.num_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor) -> None:
        if self.has_uninitialized_params():
            self.num_features = input.shape[1]
            if self.affine:
                self.weight.materialize((self.num_features,))
                if self.bias is not None:
                    self.bias.materialize((self.num_features,))
            if self.track_running_stats:
                self.running_mean.materialize((self.num_features,))
                self.running_var.materialize((self.num_features,))
            self.reset_parameters()


class LazyBatchNorm1d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm1d` whose ``num_features`` is taken from the first input's ``size(1)``.

    Until the first call ``weight``/``bias`` are :class:`~tracenn.nn.UninitializedParameter` and
    ``running_mean``/``running_var`` :class:`~tracenn.nn.UninitializedBuffer`; the call materializes
    and resets them and the module becomes a :class:`BatchNorm1d`.

    Args:
        eps, momentum, affine, track_running_stats, bias: as :class:`BatchNorm1d`.

    >>> import tracenn
    >>> m = tracenn.nn.LazyBatchNorm1d()
    >>> m
    LazyBatchNorm1d(0, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> m(tracenn.randn(4, 3)).shape, m.running_mean.shape
    (tracenn.Size([4, 3]), tracenn.Size([3]))
    >>> m
    BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = BatchNorm1d

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 2 and input.dim() != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.dim()}D input)")


class LazyBatchNorm2d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm2d` whose ``num_features`` is taken from the first input; see
    :class:`LazyBatchNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyBatchNorm2d()(tracenn.randn(2, 3, 4, 4)).shape
    tracenn.Size([2, 3, 4, 4])
    """

    cls_to_become = BatchNorm2d

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"expected 4D input (got {input.dim()}D input)")


class LazyBatchNorm3d(_LazyNormBase, _BatchNorm):
    r"""A :class:`BatchNorm3d` whose ``num_features`` is taken from the first input; see
    :class:`LazyBatchNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyBatchNorm3d()(tracenn.randn(2, 3, 2, 2, 2)).shape
    tracenn.Size([2, 3, 2, 2, 2])
    """

    cls_to_become = BatchNorm3d

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() != 5:
            raise ValueError(f"expected 5D input (got {input.dim()}D input)")
