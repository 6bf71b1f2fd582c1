"""The losses on pairs and triplets of inputs (cosine embedding, margin ranking, hinge embedding,
triplet margin), split from ``_loss.py``, which re-exports them."""
from __future__ import annotations

from ..._api import math as _math, reduce as _reduce
from ...errors import ShapeError
from ...tensor import Tensor
from ._distance import pairwise_distance
from ._loss import _reduce_loss, _reduction, _size

def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                          size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r""":math:`1 - \cos(x_1, x_2)` for :math:`y = 1`, :math:`\max(0, \cos(x_1, x_2) - \text{margin})`
    for :math:`y = -1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> a, b = tracenn.tensor([[1.0, 0.0]]), tracenn.tensor([[0.0, 1.0]])
    >>> F.cosine_embedding_loss(a, b, tracenn.tensor([1]))
    tensor(1.)
    """
    reduction = _reduction(size_average, reduce, reduction)
    td = target.ndim
    if td not in (0, 1):
        raise ShapeError("0D or 1D target tensor expected, multi-target not supported "
                         f"(cosine_embedding_loss got a target of shape {tuple(target.shape)})")
    want = 2 if td == 1 else 1
    if input1.ndim != want or input2.ndim != want:
        raise ShapeError(f"{td}D target tensor expects {want}D input tensors, but found inputs with sizes "
                         f"{list(input1.shape)} and {list(input2.shape)}.")
    eps = 1e-12  # torch's EPSILON
    prod = _reduce.sum(input1 * input2, td)
    mag1 = _reduce.sum(input1 * input1, td) + eps
    mag2 = _reduce.sum(input2 * input2, td) + eps
    cos = prod / _math.sqrt(mag1 * mag2)
    pos = _math.where(_math.eq(target, 1), 1 - cos, 0.0)
    neg = _math.where(_math.eq(target, -1), _math.clamp(cos - margin, min=0), 0.0)
    return _reduce_loss(pos + neg, reduction)


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0,
                        size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r""":math:`\max(0, -y (x_1 - x_2) + \text{margin})`: ``input1`` should rank higher for :math:`y = 1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.margin_ranking_loss(tracenn.tensor([1.0, 1.0]), tracenn.tensor([0.0, 0.0]), tracenn.tensor([1.0, -1.0]))
    tensor(0.5000)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise ShapeError("margin_ranking_loss : All input tensors should have same dimension but got sizes: "
                         f"input1: {_size(input1.shape)}, input2: {_size(input2.shape)}, "
                         f"target: {_size(target.shape)} ")
    return _reduce_loss(_math.clamp(-target * (input1 - input2) + margin, min=0), reduction)


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    r""":math:`x` for :math:`y = 1`, :math:`\max(0, \text{margin} - x)` for :math:`y = -1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.hinge_embedding_loss(tracenn.tensor([0.3, 0.3]), tracenn.tensor([1.0, -1.0]), reduction="none")
    tensor([0.3000, 0.7000])
    """
    reduction = _reduction(size_average, reduce, reduction)
    below = _math.where(_math.ne(target, 1), _math.clamp(margin - input, min=0), 0.0)
    above = _math.where(_math.ne(target, -1), input, 0.0)
    return _reduce_loss(below + above, reduction)


def _check_triplet_dims(anchor, positive, negative):
    a, p, n = anchor.ndim, positive.ndim, negative.ndim
    if not (a == p and p == n):
        raise ShapeError(f"The anchor, positive, and negative tensors are expected to have the same number of "
                         f"dimensions, but got: anchor {a}D, positive {p}D, and negative {n}D inputs")


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, size_average=None, reduce=None,
                        reduction: str = "mean") -> Tensor:
    r""":math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with the pairwise p-norm distance :math:`d`
    (``swap``: use :math:`\min(d(a, n), d(p, n))`).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> a, p, n = tracenn.tensor([[0.0]]), tracenn.tensor([[1.0]]), tracenn.tensor([[1.5]])
    >>> F.triplet_margin_loss(a, p, n, eps=0.0)
    tensor(0.5000)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _check_triplet_dims(anchor, positive, negative)
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _math.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    return _reduce_loss(_math.clamp(d_pos - d_neg + margin, min=0), reduction)


def triplet_margin_with_distance_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *,
                                      distance_function=None, margin: float = 1.0, swap: bool = False,
                                      reduction: str = "mean") -> Tensor:
    r"""Triplet loss with any ``distance_function(x1, x2)`` (default: ``pairwise_distance``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> a, p, n = tracenn.tensor([[0.0]]), tracenn.tensor([[1.0]]), tracenn.tensor([[1.5]])
    >>> F.triplet_margin_with_distance_loss(a, p, n, distance_function=lambda x, y: (x - y).abs().sum(-1))
    tensor(0.5000)
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    _check_triplet_dims(anchor, positive, negative)
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos = dist(anchor, positive)
    d_neg = dist(anchor, negative)
    if swap:
        d_neg = _math.minimum(d_neg, dist(positive, negative))
    return _reduce_loss(_math.clamp(d_pos - d_neg + margin, min=0), reduction)


# ---- one_hot -----------------------------------------------------------------------------------------
