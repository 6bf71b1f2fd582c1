"""Dropout: dropout, dropout1d/2d/3d (whole channels), alpha_dropout, feature_alpha_dropout.

Masks are drawn from tracenn's generator (one uniform draw per call), so a seed reproduces them;
the streams are tracenn's, not torch's. Out of training mode, or with ``p == 0``, every function
returns its input itself, as torch does.
"""
from __future__ import annotations

import warnings

from ... import random as _random
from ..._api import math as _math
from ...tensor import Tensor

__all__ = ["dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"]

# SELU's saturation value -scale * alpha, negated (torch's constant in alpha dropout).
_ALPHA = 1.7580993408473766


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout(input: Tensor, p: float, training: bool, inplace: bool, *, alpha: bool, name: str,
             per: int | None = None) -> Tensor:
    """torch's ``_dropout_impl``: keep each element with probability ``1 - p`` — or, with ``per=k``,
    each slice ``input[i_0, ..., i_{k-1}]`` whole (feature dropout: one draw per channel). Kept
    values are scaled by ``1 / (1 - p)``, or for ``alpha`` dropout mapped so that the mean and variance
    of a SELU network's activations are kept."""
    if p == 0 or not training or input.numel() == 0:
        return input
    if p == 1:
        out = input * 0.0  # torch multiplies by zero: NaN stays NaN, and the gradient is 0
    else:
        shape = tuple(input.shape)
        if per is not None:
            if input.ndim < 2 and per == 2:
                raise RuntimeError(f"{name}: Feature dropout requires at least 2 dimensions in the input, "
                                   f"got a {input.ndim}D input of shape {shape}")
            shape = shape[:per] + (1,) * (input.ndim - per)
        keep = _math.ge(_random._draw("uniform", shape, input.dtype, (0.0, 1.0), None,
                                               _random.like_device(input)), p)
        if alpha:
            a = 1.0 / ((_ALPHA * _ALPHA * p + 1) * (1 - p)) ** 0.5
            out = _math.where(keep, input * a + _ALPHA * a * p, _ALPHA * a * (p - 1))
        else:
            out = _math.where(keep, input * (1.0 / (1 - p)), 0.0)
    return input._set_(out, name + "_") if inplace else out


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    r"""Zero each element with probability ``p`` and scale the rest by :math:`1/(1-p)` (training only).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.ones(4)
    >>> F.dropout(x, 0.5, training=False) is x
    True
    >>> sorted(set(F.dropout(tracenn.ones(100), 0.5).tolist()))
    [0.0, 2.0]
    """
    _check_p(p)
    return _dropout(input, p, training, inplace, alpha=False, name="dropout")


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    r"""Zero whole channels: input :math:`(N, C, L)` or :math:`(C, L)`, one draw per channel.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> y = F.dropout1d(tracenn.ones(2, 8, 3), 0.5)
    >>> bool((y.amin(-1) == y.amax(-1)).all())  # each channel kept or zeroed whole
    True
    """
    _check_p(p)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input. Note that dropout1d "
            "exists to provide channel-wise dropout on inputs with 1 spatial dimension, a channel "
            "dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")
    # (C, L) is one sample: one draw per channel (dim 0); (N, C, L): per sample and channel.
    return _dropout(input, p, training, inplace, alpha=False, name="dropout1d", per=input.ndim - 1)


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    r"""Zero whole channels of an :math:`(N, C, H, W)` input (a 3-D input is read as :math:`(N, C, L)`,
    with torch's warning).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> y = F.dropout2d(tracenn.ones(2, 8, 3, 3), 0.5)
    >>> bool((y.amin((-2, -1)) == y.amax((-2, -1))).all())
    True
    """
    _check_p(p)
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and will result in "
            "an error in a future release. To retain the behavior and silence this warning, please use "
            "dropout instead. Note that dropout2d exists to provide channel-wise dropout on inputs with 2 "
            "spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 3D or 4D "
            "inputs).", stacklevel=2)
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D dropout behavior "
            "is desired - input is interpreted as shape (N, C, L), where C is the channel dim. This behavior "
            "will change in a future release to interpret the input as one without a batch dimension, i.e. "
            "shape (C, H, W). To maintain the 1D channel-wise dropout behavior, please switch to using "
            "dropout1d instead.", stacklevel=2)
    return _dropout(input, p, training, inplace, alpha=False, name="dropout2d", per=2)


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    r"""Zero whole channels of an :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)` input.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.dropout3d(tracenn.ones(1, 2, 2, 2, 2), 0.5, training=False).sum()
    tensor(16.)
    """
    _check_p(p)
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and will result in "
            "an error in a future release. To retain the behavior and silence this warning, please use "
            "dropout instead. Note that dropout3d exists to provide channel-wise dropout on inputs with 3 "
            "spatial dimensions, a channel dimension, and an optional batch dimension (i.e. 4D or 5D "
            "inputs).", stacklevel=2)
    # Anything but a 5-D input is one unbatched sample (torch adds a batch dim): draws per dim 0.
    return _dropout(input, p, training, inplace, alpha=False, name="dropout3d", per=2 if input.ndim == 5 else 1)


def alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    r"""Dropout for SELU networks: dropped elements are set to SELU's negative saturation value and
    an affine map keeps the input's mean and variance (training only).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.randn(100000)
    >>> y = F.alpha_dropout(x, 0.2, training=True)
    >>> abs(float(y.mean())) < 0.02 and abs(float(y.std()) - 1) < 0.02
    True
    """
    _check_p(p)
    return _dropout(input, p, training, inplace, alpha=True, name="alpha_dropout")


def feature_alpha_dropout(input: Tensor, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    r"""Alpha dropout of whole channels (dim 1), one draw per (sample, channel).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> y = F.feature_alpha_dropout(tracenn.ones(2, 8, 3), 0.5, training=True)
    >>> bool((y.amin(-1) == y.amax(-1)).all())
    True
    """
    _check_p(p)
    return _dropout(input, p, training, inplace, alpha=True, name="feature_alpha_dropout", per=2)
