"""Instance normalisation: ``InstanceNorm1d/2d/3d`` (batched and unbatched inputs) and their lazy forms
``LazyInstanceNorm1d/2d/3d``.

Unlike batch norm, ``affine`` and ``track_running_stats`` default to False. With
``track_running_stats`` the running statistics are updated in training and used in eval mode.
"""
from __future__ import annotations

import warnings

from ...tensor import Tensor
from .. import functional as F
from .batchnorm import _LazyNormBase, _NormBase

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LazyInstanceNorm1d", "LazyInstanceNorm2d",
           "LazyInstanceNorm3d"]


class _InstanceNorm(_NormBase):
    _no_batch_dim: int  # the rank of an unbatched input

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = False,
                 track_running_stats: bool = False, device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device=device, dtype=dtype,
                         bias=bias)

    def _check_input_dim(self, input: Tensor) -> None:
        lo = self._no_batch_dim
        if input.dim() not in (lo, lo + 1):
            raise ValueError(f"expected {lo}D or {lo + 1}D input (got {input.dim()}D input)")

    def _apply_instance_norm(self, input: Tensor) -> Tensor:
        return F.instance_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                               self.training or not self.track_running_stats,
                               self.momentum if self.momentum is not None else 0.0, self.eps)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs) -> None:
        version = local_metadata.get("version", None)
        # Version 1 dropped running_mean/var when track_running_stats=False (the default).
        if version is None and not self.track_running_stats:
            keys = [prefix + name for name in ("running_mean", "running_var") if prefix + name in state_dict]
            if keys:
                klass = self.__class__.__name__
                error_msgs.append(
                    "Unexpected running stats buffer(s) {names} for {klass} with track_running_stats=False. If "
                    "state_dict is a checkpoint saved before 0.4.0, this may be expected because {klass} does not "
                    "track running stats by default since 0.4.0. Please remove these keys from state_dict. If the "
                    "running stats are actually needed, instead set track_running_stats=True in {klass} to enable "
                    "them. See the documentation of {klass} for details.".format(
                        names=" and ".join(f'"{k}"' for k in keys), klass=klass))
                for key in keys:
                    state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        feature_dim = input.dim() - self._no_batch_dim
        if input.size(feature_dim) != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match num_features "
                                 f"({self.num_features}), but got: {input.size(feature_dim)}.")
            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. You can silence this "
                          "warning by not passing in num_features, which is not used because affine=False",
                          stacklevel=2)
        if input.dim() == self._no_batch_dim:
            return self._apply_instance_norm(input.unsqueeze(0)).squeeze(0)
        return self._apply_instance_norm(input)


class InstanceNorm1d(_InstanceNorm):
    r"""Instance normalisation over a :math:`(N, C, L)` or unbatched :math:`(C, L)` input: each
    channel of each sample is normalised over its length.

    Args:
        num_features: :math:`C`.
        eps: added to the variance. Default: 1e-5.
        momentum: for the running statistics (None: no update). Default: 0.1.
        affine: learnable per-channel ``weight``/``bias``. Default: False.
        track_running_stats: keep running statistics, used in eval mode. Default: False.

    >>> import tracenn
    >>> m = tracenn.nn.InstanceNorm1d(2)
    >>> m
    InstanceNorm1d(2, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    >>> m(tracenn.tensor([[1.0, 3.0], [0.0, 4.0]]))
    tensor([[-1.0000,  1.0000],
            [-1.0000,  1.0000]])
    """

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    r"""Instance normalisation over an :math:`(N, C, H, W)` or :math:`(C, H, W)` input; see
    :class:`InstanceNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.InstanceNorm2d(3, affine=True)(tracenn.randn(2, 3, 4, 4)).shape
    tracenn.Size([2, 3, 4, 4])
    """

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    r"""Instance normalisation over an :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)` input; see
    :class:`InstanceNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.InstanceNorm3d(3)(tracenn.randn(3, 2, 2, 2)).shape
    tracenn.Size([3, 2, 2, 2])
    """

    _no_batch_dim = 4


class LazyInstanceNorm1d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm1d` whose ``num_features`` is taken from the first input's ``size(1)``.

    As torch's, the lazy form defaults to ``affine=True`` and ``track_running_stats=True`` (the
    defaults of the lazy base), and reads ``size(1)`` also for an unbatched input. The call
    materializes the parameters and buffers and the module becomes an :class:`InstanceNorm1d`.

    Args:
        eps, momentum, affine, track_running_stats, bias: as :class:`InstanceNorm1d`.

    >>> import tracenn
    >>> m = tracenn.nn.LazyInstanceNorm1d()
    >>> m(tracenn.randn(2, 3, 5)).shape, m.weight.shape
    (tracenn.Size([2, 3, 5]), tracenn.Size([3]))
    >>> m
    InstanceNorm1d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    """

    cls_to_become = InstanceNorm1d
    _no_batch_dim = 2


class LazyInstanceNorm2d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm2d` whose ``num_features`` is taken from the first input; see
    :class:`LazyInstanceNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyInstanceNorm2d()(tracenn.randn(2, 3, 4, 4)).shape
    tracenn.Size([2, 3, 4, 4])
    """

    cls_to_become = InstanceNorm2d
    _no_batch_dim = 3


class LazyInstanceNorm3d(_LazyNormBase, _InstanceNorm):
    r"""An :class:`InstanceNorm3d` whose ``num_features`` is taken from the first input; see
    :class:`LazyInstanceNorm1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyInstanceNorm3d()(tracenn.randn(2, 3, 2, 2, 2)).shape
    tracenn.Size([2, 3, 2, 2, 2])
    """

    cls_to_become = InstanceNorm3d
    _no_batch_dim = 4
