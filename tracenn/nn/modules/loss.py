"""Loss modules: wrappers of ``tracenn.nn.functional``'s losses with torch's constructor arguments
(including the deprecated ``size_average``/``reduce``), attributes, buffers and reprs.

``weight`` (and ``BCEWithLogitsLoss``'s ``pos_weight``) are buffers, as in torch, so they move with
``.to()`` and appear in ``state_dict``. ``CrossEntropyLoss`` and ``NLLLoss`` name themselves in
their target errors (``CrossEntropyLoss: expected target of shape (64,) ...``).
"""
from __future__ import annotations

from typing import Callable

from ...tensor import Tensor
from .. import functional as F
from ..functional import _loss
from .distance import PairwiseDistance
from .module import Module

__all__ = ["L1Loss", "NLLLoss", "NLLLoss2d", "PoissonNLLLoss", "GaussianNLLLoss", "KLDivLoss", "MSELoss",
           "BCELoss", "BCEWithLogitsLoss", "HingeEmbeddingLoss", "MultiLabelMarginLoss", "SmoothL1Loss",
           "HuberLoss", "SoftMarginLoss", "CrossEntropyLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
           "MarginRankingLoss", "MultiMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss",
           "CTCLoss"]


class _Loss(Module):
    reduction: str

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = _loss._legacy_get_string(size_average, reduce)
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.weight: Tensor | None


class L1Loss(_Loss):
    r"""Mean absolute error :math:`|x - y|` (``reduction``: 'none' | 'mean' | 'sum').

    >>> import tracenn
    >>> loss = tracenn.nn.L1Loss()
    >>> loss(tracenn.tensor([1.0, 3.0]), tracenn.tensor([0.0, 0.0])), loss
    (tensor(2.), L1Loss())
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class NLLLoss(_WeightedLoss):
    r"""Negative log likelihood of class-index targets given log-probabilities (see ``F.nll_loss``).

    Args:
        weight: a rescaling weight per class, shape :math:`(C)`.
        ignore_index: a target value that counts for nothing (default: -100).
        reduction: 'none' | 'mean' (weighted mean over non-ignored targets) | 'sum'.

    >>> import tracenn
    >>> loss = tracenn.nn.NLLLoss()
    >>> loss(tracenn.tensor([[-0.5, -1.0]]), tracenn.tensor([1]))
    tensor(1.)
    """

    __constants__ = ["ignore_index", "reduction"]
    ignore_index: int

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        reduction = _loss._reduction(None, None, self.reduction)
        return _loss._class_index_loss(input, target, self.weight, self.ignore_index, reduction, 0.0,
                                       type(self).__name__, logits=False, probs_ok=False)


class NLLLoss2d(NLLLoss):
    """Deprecated alias of :class:`NLLLoss` (kept by torch for old code)."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


class PoissonNLLLoss(_Loss):
    r"""Poisson negative log likelihood (see ``F.poisson_nll_loss``).

    >>> import tracenn
    >>> tracenn.nn.PoissonNLLLoss()(tracenn.tensor([0.0]), tracenn.tensor([1.0]))
    tensor(1.)
    """

    __constants__ = ["log_input", "full", "eps", "reduction"]

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None, eps: float = 1e-8,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full, eps=self.eps,
                                  reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    r"""Gaussian negative log likelihood of ``target`` under :math:`\mathcal{N}(\text{input}, \text{var})`.

    >>> import tracenn
    >>> tracenn.nn.GaussianNLLLoss()(tracenn.tensor([1.0]), tracenn.tensor([0.0]), tracenn.tensor([1.0]))
    tensor(0.5000)
    """

    __constants__ = ["full", "eps", "reduction"]

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Tensor, target: Tensor, var: Tensor | float) -> Tensor:
        return F.gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps, reduction=self.reduction)


class KLDivLoss(_Loss):
    r"""KL divergence of ``target`` from ``input`` log-probabilities; use ``reduction='batchmean'``.

    >>> import tracenn
    >>> loss = tracenn.nn.KLDivLoss(reduction="batchmean", log_target=True)
    >>> loss(tracenn.tensor([[-0.7, -0.7]]), tracenn.tensor([[-0.7, -0.7]]))
    tensor(0.)
    """

    __constants__ = ["reduction"]

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MSELoss(_Loss):
    r"""Mean squared error :math:`(x - y)^2`.

    >>> import tracenn
    >>> loss = tracenn.nn.MSELoss(reduction="sum")
    >>> loss(tracenn.tensor([1.0, 3.0]), tracenn.tensor([0.0, 0.0])), loss
    (tensor(10.), MSELoss())
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class BCELoss(_WeightedLoss):
    r"""Binary cross entropy of probabilities (see ``F.binary_cross_entropy``).

    >>> import tracenn
    >>> tracenn.nn.BCELoss()(tracenn.tensor([0.5]), tracenn.tensor([1.0]))
    tensor(0.6931)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    r"""Sigmoid and binary cross entropy in one stable step (see ``F.binary_cross_entropy_with_logits``).

    Args:
        weight: a rescaling weight for each element (broadcast).
        pos_weight: a weight of the positive term per class (the last dimension), e.g.
            ``negatives / positives`` for an unbalanced class.

    >>> import tracenn
    >>> loss = tracenn.nn.BCEWithLogitsLoss(pos_weight=tracenn.tensor([3.0]))
    >>> loss(tracenn.tensor([0.0]), tracenn.tensor([1.0]))
    tensor(2.0794)
    """

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None, reduction: str = "mean",
                 pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)
        self.weight: Tensor | None
        self.pos_weight: Tensor | None

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    r""":math:`x` for :math:`y = 1`, :math:`\max(0, \text{margin} - x)` for :math:`y = -1`.

    >>> import tracenn
    >>> tracenn.nn.HingeEmbeddingLoss()(tracenn.tensor([0.25]), tracenn.tensor([-1.0]))
    tensor(0.7500)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(self, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.hinge_embedding_loss(input, target, margin=self.margin, reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    r"""Multi-label hinge loss; targets are class indices padded with -1 (see ``F.multilabel_margin_loss``).

    >>> import tracenn
    >>> loss = tracenn.nn.MultiLabelMarginLoss()
    >>> loss(tracenn.tensor([[0.1, 0.2, 0.4, 0.8]]), tracenn.tensor([[3, 0, -1, 1]]))
    tensor(0.8500)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_margin_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    r"""Squared error below ``beta``, absolute error above (see ``F.smooth_l1_loss``).

    >>> import tracenn
    >>> tracenn.nn.SmoothL1Loss()(tracenn.tensor([0.5, 3.0]), tracenn.zeros(2))
    tensor(1.3125)
    """

    __constants__ = ["reduction"]

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    r"""Squared error below ``delta``, ``delta``-scaled absolute error above (see ``F.huber_loss``).

    >>> import tracenn
    >>> tracenn.nn.HuberLoss(delta=2.0)(tracenn.tensor([0.5, 3.0]), tracenn.zeros(2))
    tensor(2.0625)
    """

    __constants__ = ["reduction", "delta"]

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            raise TypeError(f"delta must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SoftMarginLoss(_Loss):
    r""":math:`\log(1 + e^{-y x})` for targets :math:`y \in \{1, -1\}`.

    >>> import tracenn
    >>> tracenn.nn.SoftMarginLoss()(tracenn.tensor([0.0]), tracenn.tensor([1.0]))
    tensor(0.6931)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.soft_margin_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    r"""Cross entropy between logits and class targets (see ``F.cross_entropy``).

    Args:
        weight: a rescaling weight per class, shape :math:`(C)`.
        ignore_index: a class-index target value that counts for nothing (default: -100).
        reduction: 'none' | 'mean' | 'sum'.
        label_smoothing: in [0, 1]; mixes the target with the uniform distribution.

    Shape:
        - Input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)` logits.
        - Target: class indices of shape :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)`, or
          class probabilities of the input's shape.

    >>> import tracenn
    >>> loss = tracenn.nn.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss(tracenn.tensor([[2.0, 0.0]]), tracenn.tensor([0])), loss
    (tensor(0.2269), CrossEntropyLoss())
    """

    __constants__ = ["ignore_index", "reduction", "label_smoothing"]
    ignore_index: int
    label_smoothing: float

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        reduction = _loss._reduction(None, None, self.reduction)
        return _loss._cross_entropy(input, target, self.weight, self.ignore_index, reduction,
                                    self.label_smoothing, type(self).__name__)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    r"""Multi-label one-versus-all logistic loss (see ``F.multilabel_soft_margin_loss``).

    >>> import tracenn
    >>> tracenn.nn.MultiLabelSoftMarginLoss()(tracenn.tensor([[0.0, 0.0]]), tracenn.tensor([[1.0, 0.0]]))
    tensor(0.6931)
    """

    __constants__ = ["reduction"]

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_soft_margin_loss(input, target, weight=self.weight, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    r""":math:`1 - \cos(x_1, x_2)` for :math:`y = 1`, :math:`\max(0, \cos(x_1, x_2) - \text{margin})` for
    :math:`y = -1`.

    >>> import tracenn
    >>> loss = tracenn.nn.CosineEmbeddingLoss()
    >>> loss(tracenn.tensor([[1.0, 0.0]]), tracenn.tensor([[1.0, 0.0]]), tracenn.tensor([-1]))
    tensor(1.)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MarginRankingLoss(_Loss):
    r""":math:`\max(0, -y (x_1 - x_2) + \text{margin})`.

    >>> import tracenn
    >>> tracenn.nn.MarginRankingLoss(margin=0.5)(tracenn.tensor([1.0]), tracenn.tensor([1.0]), tracenn.tensor([1.0]))
    tensor(0.5000)
    """

    __constants__ = ["margin", "reduction"]

    def __init__(self, margin: float = 0.0, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin, reduction=self.reduction)


class MultiMarginLoss(_WeightedLoss):
    r"""Multi-class hinge loss (see ``F.multi_margin_loss``); ``p`` is 1 or 2.

    >>> import tracenn
    >>> tracenn.nn.MultiMarginLoss()(tracenn.tensor([[0.1, 0.2, 0.4, 0.8]]), tracenn.tensor([3]))
    tensor(0.3250)
    """

    __constants__ = ["p", "margin", "reduction"]
    margin: float
    p: int

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None, size_average=None,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError("only p == 1 and p == 2 supported")
        if weight is not None and weight.dim() != 1:
            raise ValueError(f"MultiMarginLoss: expected weight to be None or 1D tensor, got {weight.dim()}D "
                             "instead")
        self.p = p
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multi_margin_loss(input, target, p=self.p, margin=self.margin, weight=self.weight,
                                   reduction=self.reduction)


class TripletMarginLoss(_Loss):
    r""":math:`\max(d(a, p) - d(a, n) + \text{margin}, 0)` with the pairwise p-norm distance.

    >>> import tracenn
    >>> loss = tracenn.nn.TripletMarginLoss(eps=0.0)
    >>> loss(tracenn.tensor([[0.0]]), tracenn.tensor([[1.0]]), tracenn.tensor([[1.5]]))
    tensor(0.5000)
    """

    __constants__ = ["margin", "p", "eps", "swap", "reduction"]
    margin: float
    p: float
    eps: float
    swap: bool

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6, swap: bool = False,
                 size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got {margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p, eps=self.eps,
                                     swap=self.swap, reduction=self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    r"""Triplet loss with any distance function (default: a :class:`PairwiseDistance` submodule).

    >>> import tracenn
    >>> tracenn.nn.TripletMarginWithDistanceLoss()
    TripletMarginWithDistanceLoss(
      (distance_function): PairwiseDistance()
    )
    """

    __constants__ = ["margin", "swap", "reduction"]
    margin: float
    swap: bool

    def __init__(self, *, distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
                 margin: float = 1.0, swap: bool = False, reduction: str = "mean") -> None:
        super().__init__(size_average=None, reduce=None, reduction=reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater than 0, got {margin} "
                             "instead")
        self.distance_function = distance_function if distance_function is not None else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_with_distance_loss(anchor, positive, negative,
                                                   distance_function=self.distance_function, margin=self.margin,
                                                   swap=self.swap, reduction=self.reduction)


class CTCLoss(_Loss):
    r"""Connectionist Temporal Classification loss (see ``F.ctc_loss``).

    Args:
        blank: the blank label (default: 0).
        reduction: 'none' | 'mean' (each loss divided by its target length, then averaged) | 'sum'.
        zero_infinity: zero the loss (and its gradient) of impossible alignments.

    >>> import tracenn
    >>> loss = tracenn.nn.CTCLoss(reduction="sum")
    >>> loss(tracenn.zeros(2, 1, 2).log_softmax(2), tracenn.tensor([[1]]), [2], [1])
    tensor(0.2877)
    """

    __constants__ = ["blank", "reduction"]
    blank: int
    zero_infinity: bool

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths, target_lengths) -> Tensor:
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank, self.reduction,
                          self.zero_infinity)
