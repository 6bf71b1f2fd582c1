"""Dropout modules: active in training mode only (``model.eval()`` makes them the identity), drawing
their masks from tracenn's generator."""
from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout"]


class _DropoutNd(Module):
    __constants__ = ["p", "inplace"]
    p: float
    inplace: bool

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    r"""In training, zero each element with probability ``p`` and scale the rest by :math:`1/(1-p)`.

    Args:
        p: probability of an element to be zeroed (default: 0.5).
        inplace: do the operation in place (default: False).

    >>> import tracenn
    >>> m = tracenn.nn.Dropout(p=0.2)
    >>> m
    Dropout(p=0.2, inplace=False)
    >>> x = tracenn.ones(3)
    >>> m.eval()(x) is x
    True
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    r"""Zero whole channels of :math:`(N, C, L)` or :math:`(C, L)` inputs (training only).

    >>> import tracenn
    >>> tracenn.nn.Dropout1d(0.5)(tracenn.ones(2, 4, 3)).shape
    tracenn.Size([2, 4, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    r"""Zero whole channels of :math:`(N, C, H, W)` inputs (training only).

    >>> import tracenn
    >>> tracenn.nn.Dropout2d(0.5)(tracenn.ones(2, 4, 3, 3)).shape
    tracenn.Size([2, 4, 3, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout2d(input, self.p, self.training, self.inplace)


class Dropout3d(_DropoutNd):
    r"""Zero whole channels of :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)` inputs (training only).

    >>> import tracenn
    >>> tracenn.nn.Dropout3d(0.5)(tracenn.ones(2, 4, 2, 2, 2)).shape
    tracenn.Size([2, 4, 2, 2, 2])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout3d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    r"""Dropout that keeps the self-normalising property of SELU networks (training only).

    >>> import tracenn
    >>> m = tracenn.nn.AlphaDropout(0.2)
    >>> m
    AlphaDropout(p=0.2, inplace=False)
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.alpha_dropout(input, self.p, self.training)


class FeatureAlphaDropout(_DropoutNd):
    r"""Alpha dropout of whole channels (dim 1) (training only).

    >>> import tracenn
    >>> tracenn.nn.FeatureAlphaDropout(0.2)(tracenn.ones(2, 4, 3)).shape
    tracenn.Size([2, 4, 3])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.feature_alpha_dropout(input, self.p, self.training)
