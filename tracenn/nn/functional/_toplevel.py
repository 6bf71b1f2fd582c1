"""torch's top-level (``torch.*``) forms of nn.functional ops, exported from ``tracenn``.

Where ``torch.X is torch.nn.functional.X`` the same function is exported (``tracenn/__init__.py``
imports it from ``nn.functional``). The functions here are the ones whose top-level form is ATen's
native signature, which differs from the functional one: ``torch.dropout(input, p, train)`` has no
defaults; ``torch.batch_norm`` takes ``weight, bias`` before the running statistics; the losses take
an int ``reduction`` (0 none, 1 mean, 2 sum) whose default in torch's Python binding is 0 (none),
so ``torch.kl_div(x, y)`` is elementwise; ``torch.embedding`` takes the weight first. Each one
forwards to its functional form.
"""
from __future__ import annotations

from ...tensor import Tensor
from . import _activation, _ctc, _dropout, _loss, _norm, _pool, _sparse

__all__ = ["dropout", "dropout_", "feature_dropout", "feature_dropout_", "alpha_dropout", "alpha_dropout_",
           "feature_alpha_dropout", "feature_alpha_dropout_", "batch_norm", "instance_norm", "layer_norm",
           "group_norm", "embedding", "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
           "adaptive_max_pool1d", "selu", "celu", "rrelu", "threshold", "binary_cross_entropy_with_logits",
           "cosine_embedding_loss", "hinge_embedding_loss", "kl_div", "margin_ranking_loss", "poisson_nll_loss",
           "triplet_margin_loss", "ctc_loss"]

_REDUCTIONS = ("none", "mean", "sum")  # ATen's Reduction enum: 0, 1, 2


def _reduction(reduction: int) -> str:
    if reduction not in (0, 1, 2):
        raise ValueError(f"{reduction} is not a valid value for reduction (0: none, 1: mean, 2: sum)")
    return _REDUCTIONS[reduction]


# ---- dropout: (input, p, train), no defaults ------------------------------------------------------

def dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.dropout``: :func:`tracenn.nn.functional.dropout` with ``train`` required."""
    return _dropout.dropout(input, p, train)


def dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """In-place :func:`dropout`."""
    return _dropout.dropout(input, p, train, inplace=True)


def feature_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_dropout``: drop whole ``input[n, c]`` slices (one draw per sample and channel)."""
    _dropout._check_p(p)
    return _dropout._dropout(input, p, train, False, alpha=False, name="feature_dropout", per=2)


def feature_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """In-place :func:`feature_dropout`."""
    _dropout._check_p(p)
    return _dropout._dropout(input, p, train, True, alpha=False, name="feature_dropout", per=2)


def alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.alpha_dropout``: :func:`tracenn.nn.functional.alpha_dropout` with ``train`` required."""
    return _dropout.alpha_dropout(input, p, train)


def alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """In-place :func:`alpha_dropout`."""
    return _dropout.alpha_dropout(input, p, train, inplace=True)


def feature_alpha_dropout(input: Tensor, p: float, train: bool) -> Tensor:
    """``torch.feature_alpha_dropout``: alpha dropout of whole channels, ``train`` required."""
    return _dropout.feature_alpha_dropout(input, p, train)


def feature_alpha_dropout_(input: Tensor, p: float, train: bool) -> Tensor:
    """In-place :func:`feature_alpha_dropout`."""
    return _dropout.feature_alpha_dropout(input, p, train, inplace=True)


# ---- normalisation: weight and bias first ---------------------------------------------------------

def batch_norm(input: Tensor, weight, bias, running_mean, running_var, training: bool, momentum: float,
               eps: float, cudnn_enabled: bool) -> Tensor:
    """``torch.batch_norm``: :func:`tracenn.nn.functional.batch_norm` in ATen's argument order."""
    return _norm.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input: Tensor, weight, bias, running_mean, running_var, use_input_stats: bool,
                  momentum: float, eps: float, cudnn_enabled: bool) -> Tensor:
    """``torch.instance_norm``: :func:`tracenn.nn.functional.instance_norm` in ATen's argument order."""
    return _norm.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None, eps: float = 1e-5,
               cudnn_enable: bool = True) -> Tensor:
    """``torch.layer_norm``: :func:`tracenn.nn.functional.layer_norm` (``cudnn_enable`` is ignored)."""
    return _norm.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input: Tensor, num_groups: int, weight=None, bias=None, eps: float = 1e-5,
               cudnn_enabled: bool = True) -> Tensor:
    """``torch.group_norm``: :func:`tracenn.nn.functional.group_norm` (``cudnn_enabled`` is ignored)."""
    return _norm.group_norm(input, num_groups, weight, bias, eps)


# ---- embedding: weight first; padding_idx -1 is "none" ---------------------------------------------

def embedding(weight: Tensor, indices: Tensor, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """``torch.embedding``: rows of ``weight`` at ``indices``; ``padding_idx`` (-1: none) gets no gradient."""
    return _sparse.embedding(indices, weight, None if padding_idx == -1 else padding_idx,
                             scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


# ---- pooling ------------------------------------------------------------------------------------

def _stride(stride):
    return None if stride is None or (not isinstance(stride, int) and len(stride) == 0) else stride


def max_pool1d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool1d``: ``stride=()`` means the kernel size."""
    return _pool.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool2d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool2d``: ``stride=()`` means the kernel size."""
    return _pool.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input: Tensor, kernel_size, stride=(), padding=0, dilation=1, ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool3d``: ``stride=()`` means the kernel size."""
    return _pool.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input: Tensor, kernel_size, stride=(), padding=0, dilation=1,
                            ceil_mode: bool = False):
    """``torch.max_pool1d_with_indices``: ``(output, indices)``."""
    return _pool.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d(input: Tensor, output_size):
    """``torch.adaptive_max_pool1d``: always ``(output, indices)``."""
    return _pool.adaptive_max_pool1d(input, output_size, return_indices=True)


# ---- activations without ``inplace`` --------------------------------------------------------------

def selu(input: Tensor) -> Tensor:
    """``torch.selu``."""
    return _activation.selu(input)


def celu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """``torch.celu``."""
    return _activation.celu(input, alpha)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          generator=None) -> Tensor:
    """``torch.rrelu`` (slopes come from tracenn's default generator; ``generator`` is not supported)."""
    if generator is not None:
        raise NotImplementedError("tracenn.rrelu: generator= is not supported; seed tracenn's default generator "
                                  "with tracenn.manual_seed instead")
    return _activation.rrelu(input, lower, upper, training)


def threshold(input: Tensor, threshold: float, value: float) -> Tensor:
    """``torch.threshold``."""
    return _activation.threshold(input, threshold, value)


# ---- losses: int reduction, default 0 (none) in torch's Python binding ------------------------------

def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight=None, pos_weight=None,
                                     reduction: int = 0) -> Tensor:
    """``torch.binary_cross_entropy_with_logits`` (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.binary_cross_entropy_with_logits(input, target, weight, reduction=_reduction(reduction),
                                                  pos_weight=pos_weight)


def cosine_embedding_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                          reduction: int = 0) -> Tensor:
    """``torch.cosine_embedding_loss`` (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.cosine_embedding_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def hinge_embedding_loss(input: Tensor, target: Tensor, margin: float = 1.0, reduction: int = 0) -> Tensor:
    """``torch.hinge_embedding_loss`` (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.hinge_embedding_loss(input, target, margin, reduction=_reduction(reduction))


def kl_div(input: Tensor, target: Tensor, reduction: int = 0, *, log_target: bool = False) -> Tensor:
    """``torch.kl_div`` (``reduction``: 0 none, 1 mean over all elements, 2 sum; no warning)."""
    r = _reduction(reduction)
    loss = _loss.kl_div(input, target, reduction="none", log_target=log_target)
    return loss if r == "none" else (loss.mean() if r == "mean" else loss.sum())


def margin_ranking_loss(input1: Tensor, input2: Tensor, target: Tensor, margin: float = 0.0,
                        reduction: int = 0) -> Tensor:
    """``torch.margin_ranking_loss`` (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.margin_ranking_loss(input1, input2, target, margin, reduction=_reduction(reduction))


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool, full: bool, eps: float,
                     reduction: int) -> Tensor:
    """``torch.poisson_nll_loss``: every argument required (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.poisson_nll_loss(input, target, log_input, full, eps=eps, reduction=_reduction(reduction))


def triplet_margin_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, p: float = 2.0,
                        eps: float = 1e-6, swap: bool = False, reduction: int = 0) -> Tensor:
    """``torch.triplet_margin_loss`` (``reduction``: 0 none, 1 mean, 2 sum)."""
    return _loss.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                     reduction=_reduction(reduction))


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: int = 0, zero_infinity: bool = False) -> Tensor:
    """``torch.ctc_loss`` (``reduction``: 0 none, 1 mean over target lengths, 2 sum)."""
    return _ctc.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _reduction(reduction),
                         zero_infinity)
