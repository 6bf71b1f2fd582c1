"""Activation modules: ``ReLU``, ``Tanh``, ``Sigmoid`` (reprs as torch's)."""
from __future__ import annotations

from ..._api import math as _math
from ...tensor import Tensor
from .. import functional as F
from .module import Module

__all__ = ["ReLU", "Tanh", "Sigmoid"]


class ReLU(Module):
    r"""Applies the rectified linear unit function element-wise: :math:`\max(0, x)`.

    Args:
        inplace: do the operation in place (default: False).

    >>> import tracenn
    >>> m = tracenn.nn.ReLU()
    >>> m(tracenn.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 0., 2.])
    >>> tracenn.nn.ReLU(inplace=True)
    ReLU(inplace=True)
    """

    __constants__ = ["inplace"]
    inplace: bool

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    r"""Applies the hyperbolic tangent element-wise.

    >>> import tracenn
    >>> tracenn.nn.Tanh()(tracenn.zeros(2))
    tensor([0., 0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _math.tanh(input)


class Sigmoid(Module):
    r"""Applies :math:`\sigma(x) = 1 / (1 + e^{-x})` element-wise.

    >>> import tracenn
    >>> tracenn.nn.Sigmoid()(tracenn.zeros(2))
    tensor([0.5000, 0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _math.sigmoid(input)
