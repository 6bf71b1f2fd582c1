"""Distance modules: ``PairwiseDistance`` and ``CosineSimilarity`` (wrappers of the functionals)."""
from __future__ import annotations

from ...tensor import Tensor
from .. import functional as F
from .module import Module

__all__ = ["PairwiseDistance", "CosineSimilarity"]


class PairwiseDistance(Module):
    r""":math:`\|x_1 - x_2 + \epsilon\|_p` over the last dimension.

    Args:
        p: the norm degree (default: 2; may be negative or ``inf``).
        eps: added to the difference to avoid division by zero (default: 1e-6).
        keepdim: keep the last dimension with size 1 (default: False).

    Shape:
        - x1, x2: :math:`(N, D)` or :math:`(D)`; output :math:`(N)` or :math:`()`.

    >>> import tracenn
    >>> m = tracenn.nn.PairwiseDistance(eps=0.0)
    >>> m(tracenn.tensor([[0.0, 0.0]]), tracenn.tensor([[3.0, 4.0]]))
    tensor([5.])
    """

    __constants__ = ["norm", "eps", "keepdim"]
    norm: float
    eps: float
    keepdim: bool

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)


class CosineSimilarity(Module):
    r"""Cosine similarity of ``x1`` and ``x2`` along ``dim``.

    Args:
        dim: the dimension to compute it over (default: 1).
        eps: lower bound of each norm, to avoid division by zero (default: 1e-8).

    >>> import tracenn
    >>> m = tracenn.nn.CosineSimilarity(dim=0)
    >>> m(tracenn.tensor([1.0, 0.0]), tracenn.tensor([0.0, 2.0]))
    tensor(0.)
    """

    __constants__ = ["dim", "eps"]
    dim: int
    eps: float

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return F.cosine_similarity(x1, x2, self.dim, self.eps)
