"""Losses (l1 ... triplet; ``ctc_loss`` is in ``_ctc.py``) and ``one_hot``, with torch's argument
names, reductions and checks.

Every loss takes ``reduction`` ('none' | 'mean' | 'sum'); the deprecated ``size_average``/``reduce``
pair is translated with torch's warning. Formulas follow torch's kernels term for term, so values
and gradients agree to rounding — including at the kinks, where the comparisons are torch's.

Class-index targets (``cross_entropy``, ``nll_loss``, ``multi_margin_loss``, ...) are checked on the
host in one read, as torch does on the CPU: an out-of-range index is an error that names the loss,
never a silently clamped gather. Under tracing (no concrete values) the check is skipped.

``one_hot`` is torch's sparse family; it lives here, beside the class-index losses that share its
index checks.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ... import _dispatch
from ..._api import creation as _creation, math as _math, reduce as _reduce, shape as _shape
from ..._api._common import host_values as _concrete, value_of
from ..._dispatch import apply
from ...autograd.grad_mode import is_grad_enabled, no_grad
from ...errors import DataDependentError, DtypeError, ShapeError
from ...ops import OPS
from ...tensor import Tensor
from ._activation import logsigmoid, softplus
from ...amp import float32_under_autocast

__all__ = ["l1_loss", "mse_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div", "smooth_l1_loss", "huber_loss", "soft_margin_loss",
           "multilabel_soft_margin_loss", "multilabel_margin_loss", "multi_margin_loss",
           "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss", "triplet_margin_loss",
           "triplet_margin_with_distance_loss", "poisson_nll_loss", "gaussian_nll_loss", "ctc_loss",
           "one_hot"]


# ---- reductions (torch.nn._reduction) -------------------------------------------------------------

def _legacy_get_string(size_average: bool | None, reduce: bool | None, emit_warning: bool = True) -> str:
    """The ``reduction`` string for torch's deprecated ``size_average``/``reduce`` pair."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{ret}' instead.",
                      stacklevel=3)
    return ret


def _reduction(size_average, reduce, reduction: str) -> str:
    """``reduction``, or the legacy pair's translation when either is given; always validated."""
    if size_average is not None or reduce is not None:
        return _legacy_get_string(size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' instead.",
                      stacklevel=3)
        return "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _reduce.mean(loss)
    if reduction == "sum":
        return _reduce.sum(loss)
    return loss


def _broadcast_pair(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """torch's elementwise losses warn on a size mismatch, then broadcast."""
    if input.shape != target.shape:
        warnings.warn(f"Using a target size ({_size(target.shape)}) that is different to the input size "
                      f"({_size(input.shape)}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=4)
        return _shape.broadcast_tensors(input, target)
    return input, target


def _size(shape) -> str:
    return f"tracenn.Size({list(shape)})"


# ---- elementwise regression losses ----------------------------------------------------------------

def _elementwise(name, input, target, size_average, reduce, reduction, weight, per_element,
                 weight_normalises=True):
    """A pointwise loss with optional per-element ``weight``; torch's l1/mse 'mean' divides the weighted
    sum by the summed weights (``weight_normalises``), huber's takes the plain mean."""
    reduction = _reduction(size_average, reduce, reduction)
    if not (input.is_floating_point() or input.is_complex() or target.is_floating_point()):
        raise DtypeError(f"{name}: expected floating point input or target, but both are "
                         f"{_math._torch_name(input._value.dtype)}/{_math._torch_name(target._value.dtype)}; "
                         "convert first, e.g. input.float()")
    x, t = _broadcast_pair(input, target)
    loss = per_element(x, t)
    if weight is None:
        return _reduce_loss(loss, reduction)
    if weight.shape != input.shape:
        raise ValueError(f"Weights and input must have the same size. ({name}: weight has shape "
                         f"{tuple(weight.shape)}, input {tuple(input.shape)})")
    loss = loss * weight
    if reduction == "mean" and weight_normalises:
        return _reduce.sum(loss) / _reduce.sum(weight)
    return _reduce_loss(loss, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
            weight: Tensor | None = None) -> Tensor:
    r"""Mean absolute error :math:`|x - y|` (``weight``: per-element weights; 'mean' divides by their sum).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.l1_loss(tracenn.tensor([1.0, 2.0]), tracenn.tensor([0.0, 0.0]))
    tensor(1.5000)
    """
    return _elementwise("l1_loss", input, target, size_average, reduce, reduction, weight,
                        lambda x, t: _math.abs(x - t))


def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
             weight: Tensor | None = None) -> Tensor:
    r"""Mean squared error :math:`(x - y)^2`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.mse_loss(tracenn.tensor([1.0, 2.0]), tracenn.tensor([0.0, 0.0]))
    tensor(2.5000)
    """
    if weight is None and reduction != "none" and _one_kernel(input, target, size_average, reduce, reduction):
        return apply(OPS["mse_loss"], (input, target), (reduction,))
    return _elementwise("mse_loss", input, target, size_average, reduce, reduction, weight,
                        lambda x, t: _math.square(x - t))


def _one_kernel(input, target, size_average, reduce, reduction) -> bool:
    """A pointwise loss's common case, one primitive: no legacy reduction arguments, a known
    reduction, same-shaped float32/float64 tensors (no broadcast, no cast)."""
    return size_average is None and reduce is None and reduction in ("none", "mean", "sum") \
        and isinstance(target, Tensor) and _same_float(input, target)


def _same_float(input: Tensor, target: Tensor) -> bool:
    """Same shape, same float32 or float64 dtype: a pointwise loss needs no broadcast or cast."""
    a, b = input._value, target._value
    return a.shape == b.shape and a.dtype == b.dtype and a.dtype in _CE_DTYPES


def _smooth_l1(x, t, beta):
    z = _math.abs(x - t)
    return _math.where(_math.lt(z, beta), z * z * (0.5 / beta), z - 0.5 * beta)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    r""":math:`0.5 (x-y)^2 / \beta` where :math:`|x - y| < \beta`, else :math:`|x - y| - 0.5\beta`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.smooth_l1_loss(tracenn.tensor([0.5, 3.0]), tracenn.zeros(2), reduction="none")
    tensor([0.1250, 2.5000])
    """
    if beta < 0:
        raise RuntimeError(f"smooth_l1_loss does not support negative values for beta (got beta={beta}).")
    if beta == 0.0:
        return l1_loss(input, target, size_average, reduce, reduction)
    if _one_kernel(input, target, size_average, reduce, reduction):
        return apply(OPS["smooth_l1_loss"], (input, target), (float(beta), reduction))
    return _elementwise("smooth_l1_loss", input, target, size_average, reduce, reduction, None,
                        lambda x, t: _smooth_l1(x, t, beta))


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    r""":math:`0.5 (x-y)^2` where :math:`|x - y| < \delta`, else :math:`\delta (|x - y| - 0.5\delta)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.huber_loss(tracenn.tensor([0.5, 3.0]), tracenn.zeros(2), reduction="none", delta=2.0)
    tensor([0.1250, 4.0000])
    """
    if delta <= 0:
        raise RuntimeError(f"huber_loss does not support non-positive values for delta (got delta={delta}).")

    if weight is None and _one_kernel(input, target, None, None, reduction):
        return apply(OPS["huber_loss"], (input, target), (float(delta), reduction))

    def per_element(x, t):
        z = _math.abs(x - t)
        return _math.where(_math.lt(z, delta), z * z * 0.5, (z - 0.5 * delta) * delta)
    return _elementwise("huber_loss", input, target, None, None, reduction, weight, per_element,
                        weight_normalises=False)


# ---- class-index targets: cross_entropy and nll_loss ------------------------------------------------

def _check_class_target(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int, who: str,
                        probs_ok: bool):
    """Validate an (input, class-index target) pair; return (class dim, C, any target ignored).

    ``any target ignored`` is None when the values are unknown (tracing): callers then mask.
    """
    shape = input._value.shape  # (the array's own tuple: this runs on every eager loss call)
    if not shape:
        raise ValueError(f"Expected 1 or more dimensions (got 0): {who} needs scores of shape (C,), (N, C) "
                         "or (N, C, d1, ...)")
    cd = 0 if len(shape) == 1 else 1
    c = shape[cd]
    expected = () if len(shape) == 1 else shape[:1] + shape[2:]
    if target._value.shape != expected:
        what = f"class indices in [0, {c})"
        if probs_ok:
            what += f" (or class probabilities of shape {tuple(input.shape)})"
        err = ValueError if input.ndim >= 2 and target.ndim >= 1 and target.shape[0] != input.shape[0] \
            else ShapeError
        raise err(f"{who}: expected target of shape {expected} with {what}, got shape {tuple(target.shape)}")
    if not input.is_floating_point():
        raise DtypeError(f"{who}: expected floating point scores, but got input of dtype "
                         f"{_math._torch_name(input._value.dtype)}; convert first, e.g. input.float()")
    if target._value.dtype not in (np.int64, np.uint8):
        raise DtypeError(f"{who}: expected target dtype to be Long or Byte, but got "
                         f"{_math._torch_name(target._value.dtype)}; class indices must be integers, e.g. "
                         "target.long()")
    if weight is not None and (weight.ndim != 1 or weight.numel() != c):
        raise ShapeError(f"{who}: weight tensor should be defined either for all {c} classes or no classes but "
                         f"got weight tensor of shape: {list(weight.shape)}")
    values = _concrete(target)
    if values is None:
        return cd, c, None
    if values.size and 0 <= values.min() and values.max() < c:  # (the usual case: two reductions)
        return cd, c, bool(0 <= ignore_index < c and (values == ignore_index).any())
    ignored = values == ignore_index
    bad = ~(ignored | ((values >= 0) & (values < c)))
    if bad.any():
        raise IndexError(f"{who}: Target {int(values[bad].flat[0])} is out of bounds: expected class indices "
                         f"in [0, {c}) or ignore_index={ignore_index}")
    return cd, c, bool(ignored.any())


_CE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _class_index_loss(scores: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
                      reduction: str, smoothing: float, who: str, logits: bool, probs_ok: bool) -> Tensor:
    """nll_loss (``logits=False``: ``scores`` are log-probabilities) or cross_entropy (``logits=True``)
    with class-index targets, torch's ignore_index/weight/label_smoothing semantics.

    Cross entropy without class weights or label smoothing, on float32/float64 logits (the common
    case), is one primitive (``cross_entropy``: one kernel each way), and so is nll_loss without
    class weights (``nll_loss``). Otherwise it is composed as ``logsumexp(x) - x[target]``:
    ``-log_softmax(x)[target]`` without materialising the
    log-softmax (one logsumexp, one gather). Targets equal to ``ignore_index`` are replaced by a
    valid index before the gather and masked after it, only when the host check saw one.
    """
    cd, c, any_ignored = _check_class_target(scores, target, weight, ignore_index, who, probs_ok)
    if weight is None and smoothing == 0 and scores._value.dtype in _CE_DTYPES:
        return apply(OPS["cross_entropy" if logits else "nll_loss"], (scores, target), (cd, ignore_index, reduction))
    # Every per-element tensor keeps the class dim with size 1 (N, 1, d...): the gather's index and
    # output shape, so no reshapes are needed until 'none' drops it at the end.
    idx = _shape.unsqueeze(target, cd) if scores.ndim > 1 else _shape.reshape(target, (1,))
    mask = None  # float 1/0 per element: not ignored
    if any_ignored is not False:
        keep = _math.ne(idx, ignore_index)
        mask = _math._cast(keep, scores._value.dtype)
        if not 0 <= ignore_index < c:  # an ignored entry would index out of range: point it at class 0
            idx = _math.where(keep, idx, 0)
    # indices were checked above: the primitives, not tracenn.gather (which would read them again)
    picked = apply(OPS["gather"], (scores, idx), (cd,))
    lse = _reduce.logsumexp(scores, cd, keepdim=True) if logits else None
    nll = lse - picked if logits else -picked
    # per-element class weight weight[target] (0 where ignored); None means all ones
    w = None
    if weight is not None:
        w = apply(OPS["index"], (weight, idx), ((("t", 0),),))
        if mask is not None:
            w = w * mask
    elif mask is not None:
        w = mask
    loss = nll if w is None else nll * w
    if smoothing > 0:
        # torch: (1 - eps) * nll + eps / C * (-sum_c weight_c * log_softmax(x)_c), ignored entries 0
        if weight is None:
            smooth = lse * c - _reduce.sum(scores, cd, keepdim=True)
        else:
            wb = _shape.reshape(weight, (c,) + (1,) * (scores.ndim - cd - 1))
            smooth = lse * _reduce.sum(weight) - _reduce.sum(scores * wb, cd, keepdim=True)
        if mask is not None:
            smooth = smooth * mask
        loss = loss * (1 - smoothing) + smooth * (smoothing / c)
    if reduction == "none":
        return _shape.squeeze(loss, cd) if scores.ndim > 1 else _shape.reshape(loss, ())
    if reduction == "sum":
        return _reduce.sum(loss)
    if w is None:
        return _reduce.mean(loss)
    # torch: NaN when no weight counts (every target ignored), but zero gradients, not NaN ones
    total = _reduce.sum(w)
    counted = _math.gt(total, 0)
    return _math.where(counted, _reduce.sum(loss) / _math.where(counted, total, 1.0), math.nan)


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Negative log likelihood of class-index targets given log-probabilities: :math:`-w_{y} x_{y}`.

    Shape:
        - input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)` log-probabilities.
        - target: :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)` class indices in
          :math:`[0, C)` (int64 or uint8), or ``ignore_index``.

    'mean' divides by the summed weights of the targets that are not ignored (NaN if all are).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> logp = tracenn.tensor([[-0.5, -1.0], [-2.0, -0.1]])
    >>> F.nll_loss(logp, tracenn.tensor([0, 1]))
    tensor(0.3000)
    """
    reduction = _reduction(size_average, reduce, reduction)
    return _class_index_loss(input, target, weight, ignore_index, reduction, 0.0, "nll_loss",
                             logits=False, probs_ok=False)


def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, who):
    if input.ndim >= 1 and tuple(target.shape) == tuple(input.shape) and target.is_floating_point():
        return _cross_entropy_probs(input, target, weight, ignore_index, reduction, label_smoothing, who)
    if label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    return _class_index_loss(input, target, weight, ignore_index, reduction, label_smoothing, who,
                             logits=True, probs_ok=True)


def _cross_entropy_probs(input, target, weight, ignore_index, reduction, label_smoothing, who):
    """Class-probability targets: ``-sum_c w_c t_c log_softmax(x)_c`` (torch's formula and 'mean')."""
    cd = 0 if input.ndim == 1 else 1
    c = input.shape[cd]
    if ignore_index >= 0:
        raise RuntimeError(f"ignore_index is not supported for floating point target ({who} got "
                           f"ignore_index={ignore_index} with class-probability targets)")
    if weight is not None and (weight.ndim != 1 or weight.numel() != c):
        raise ShapeError(f"{who}: weight tensor should be defined either for all {c} classes or no classes but "
                         f"got weight tensor of shape: {list(weight.shape)}")
    if label_smoothing > 0.0:
        if label_smoothing > 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
        target = target * (1 - label_smoothing) + label_smoothing / c
    logp = _reduce.log_softmax(input, cd)
    prod = logp * target
    if weight is not None:
        prod = prod * _shape.reshape(weight, (c,) + (1,) * (input.ndim - cd - 1))
    if reduction == "none":
        return -_reduce.sum(prod, cd)
    total = -_reduce.sum(prod)
    if reduction == "sum":
        return total
    if input.numel() == 0:
        return total * float("nan")
    return total / (input.numel() // c)


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                  ignore_index: int = -100, reduce=None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    r"""Cross entropy between unnormalised scores (logits) and class targets.

    The target is either class indices (int64 or uint8; entries equal to ``ignore_index`` count for
    nothing) or class probabilities with the input's shape. ``weight`` rescales each class;
    ``label_smoothing`` mixes the target with the uniform distribution, as torch.

    Computed as :math:`\text{logsumexp}(x) - x_y` (numerically stable; no log-softmax tensor is
    materialised for class indices).

    Shape:
        - input: :math:`(C)`, :math:`(N, C)` or :math:`(N, C, d_1, ..., d_K)`.
        - target: :math:`()`, :math:`(N)` or :math:`(N, d_1, ..., d_K)` indices in :math:`[0, C)`;
          or probabilities of the input's shape.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.cross_entropy(tracenn.tensor([[0.0, 0.0], [2.0, 0.0]]), tracenn.tensor([0, 0]))
    tensor(0.4100)
    """
    reduction = _reduction(size_average, reduce, reduction)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing, "cross_entropy")


# ---- binary targets --------------------------------------------------------------------------------

def _clamped_log(x: Tensor, fn, above: float) -> Tensor:
    """``max(fn(x), -100)`` (torch's BCE clamp), with a finite gradient where ``fn(x) = -inf``.

    ``fn``'s gradient at the pole is 0/0 = NaN even when the clamp drops it; only a graph that needs
    gradients pays for the two selects that keep the pole out.
    """
    if not (x.requires_grad and is_grad_enabled()):
        return _math.clamp(fn(x), min=-100.0)
    inside = _math.gt(x, above)
    return _math.where(inside, _math.clamp(fn(_math.where(inside, x, above + 1.0)), min=-100.0), -100.0)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
                         reduce=None, reduction: str = "mean") -> Tensor:
    r""":math:`-w (y \log x + (1 - y) \log(1 - x))` for probabilities :math:`x`; each log is clamped
    at -100, as torch.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.binary_cross_entropy(tracenn.tensor([0.5, 1.0]), tracenn.tensor([1.0, 1.0]))
    tensor(0.3466)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Using a target size ({_size(target.shape)}) that is different to the input size "
                         f"({_size(input.shape)}) is deprecated. Please ensure they have the same size.")
    if not input.is_floating_point() or not target.is_floating_point():
        bad = input if not input.is_floating_point() else target
        raise DtypeError(f"binary_cross_entropy: Found dtype {_math._torch_name(bad._value.dtype)} but expected "
                         "a floating dtype; convert first, e.g. target.float()")
    if weight is None and _one_kernel(input, target, None, None, reduction):
        return apply(OPS["binary_cross_entropy"], (input, target), (reduction,))  # (torch's kernel and gradient)
    log_x = _clamped_log(input, _math.log, 0.0)
    log_1mx = _clamped_log(-input, _math.log1p, -1.0)
    loss = (target - 1) * log_1mx - target * log_x
    if weight is not None:
        loss = loss * weight
    return _reduce_loss(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                     size_average=None, reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    r"""Binary cross entropy of logits: :math:`-w (p\, y \log\sigma(x) + (1 - y)\log(1 - \sigma(x)))`,
    computed stably as torch (:math:`(1 - y) x - (1 + (p - 1) y) \log\sigma(x)`).

    ``pos_weight`` (:math:`p`) weighs the positive term, broadcast over the last (class) dimension.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.binary_cross_entropy_with_logits(tracenn.tensor([0.0, 100.0]), tracenn.tensor([1.0, 1.0]))
    tensor(0.3466)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if target.shape != input.shape:
        raise ValueError(f"Target size ({_size(target.shape)}) must be the same as input size "
                         f"({_size(input.shape)})")
    if weight is None and pos_weight is None and reduction != "none" and _same_float(input, target):
        return apply(OPS["binary_cross_entropy_with_logits"], (input, target), (reduction,))  # (one primitive)
    log_sig = logsigmoid(input)
    if pos_weight is not None:
        log_sig = log_sig * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce_loss(loss, reduction)


def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    r"""Kullback-Leibler divergence of ``target`` from ``input`` (log-probabilities):
    :math:`y (\log y - x)` (``log_target``: :math:`e^y (y - x)`).

    ``reduction='batchmean'`` divides the sum by the batch size (the mathematical KL divergence);
    'mean' divides by the number of elements, with torch's warning.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.kl_div(tracenn.tensor([[-0.5, -1.0]]), tracenn.tensor([[0.5, 0.5]]), reduction="batchmean")
    tensor(0.0569)
    """
    if size_average is not None or reduce is not None:
        reduction = _legacy_get_string(size_average, reduce)
    else:
        if reduction == "mean":
            warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                          "'batchmean' divides only by the batch size, and aligns with the KL div math "
                          "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
                          "major release.", stacklevel=2)
        if reduction != "batchmean":
            reduction = _reduction(None, None, reduction)
    if log_target:
        loss = _math.exp(target) * (target - input)
    else:
        loss = _math.xlogy(target, target) - target * input
    if reduction == "batchmean":
        total = _reduce.sum(loss)
        return total / input.shape[0] if input.ndim != 0 else total
    return _reduce_loss(loss, reduction)


def poisson_nll_loss(input: Tensor, target: Tensor, log_input: bool = True, full: bool = False,
                     size_average=None, eps: float = 1e-8, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Poisson negative log likelihood: :math:`e^x - y x` (``log_input``) or :math:`x - y \log(x + \epsilon)`;
    ``full`` adds the Stirling term :math:`y \log y - y + \frac{1}{2}\log(2\pi y)` where :math:`y > 1`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.poisson_nll_loss(tracenn.tensor([0.0, 1.0]), tracenn.tensor([1.0, 2.0]))
    tensor(0.8591)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = _math.exp(input) - target * input
    else:
        loss = input - target * _math.log(input + eps)
    if full:
        stirling = target * _math.log(target) - target + _math.log(target * (2 * math.pi)) * 0.5
        loss = loss + _math.where(_math.le(target, 1), 0.0, stirling)
    return _reduce_loss(loss, reduction)


def gaussian_nll_loss(input: Tensor, target: Tensor, var: Tensor | float, full: bool = False,
                      eps: float = 1e-6, reduction: str = "mean") -> Tensor:
    r"""Gaussian negative log likelihood: :math:`\frac{1}{2}(\log \max(\sigma^2, \epsilon) +
    (x - y)^2 / \max(\sigma^2, \epsilon))` (+ :math:`\frac{1}{2}\log 2\pi` if ``full``).

    ``var`` has the input's shape, or one dimension fewer / one dimension of size 1 (one variance
    shared along it), or is a float.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.gaussian_nll_loss(tracenn.tensor([1.0]), tracenn.tensor([0.0]), tracenn.tensor([1.0]))
    tensor(0.5000)
    """
    if isinstance(var, float):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var = _creation.full(tuple(input.shape), var, dtype=input.dtype)
    elif not _dispatch.abstract(value_of(var)) and bool(_reduce.any(_math.lt(var, 0))):
        raise ValueError("var has negative entry/entries")
    if var.shape != input.shape:
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = _shape.unsqueeze(var, -1)
        elif not (input.ndim == var.ndim
                  and sum(y for x, y in zip(input.shape, var.shape) if x != y) == 1):
            raise ValueError(f"var is of incorrect size: got {tuple(var.shape)} for input of shape "
                             f"{tuple(input.shape)}; use the input's shape, or drop or set to 1 one dimension")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(reduction + " is not valid")
    var = var.clone()
    with no_grad():  # torch clamps without recording it: the gradient sees no clamp
        var.clamp_(min=eps)
    loss = (_math.log(var) + _math.square(input - target) / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce_loss(loss, reduction)


# ---- margin losses ---------------------------------------------------------------------------------

def soft_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                     reduction: str = "mean") -> Tensor:
    r""":math:`\log(1 + e^{-y x})` for targets :math:`y \in \{1, -1\}`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.soft_margin_loss(tracenn.tensor([0.0, 0.0]), tracenn.tensor([1.0, -1.0]))
    tensor(0.6931)
    """
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce_loss(softplus(-(input * target)), reduction)


def multilabel_soft_margin_loss(input: Tensor, target: Tensor, weight: Tensor | None = None,
                                size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    r"""Multi-label one-versus-all loss: the mean over classes of
    :math:`-(y \log\sigma(x) + (1 - y)\log\sigma(-x))`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.multilabel_soft_margin_loss(tracenn.tensor([[0.0, 0.0]]), tracenn.tensor([[1.0, 0.0]]))
    tensor(0.6931)
    """
    reduction = _reduction(size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = _reduce.sum(loss, class_dim) / input.shape[class_dim]
    return _reduce_loss(loss, reduction)


def _check_index_values(values, c: int, who: str, what: str = "target") -> None:
    if values is not None and values.size and (values.min() < 0 or values.max() >= c):
        bad = values[(values < 0) | (values >= c)].flat[0]
        raise IndexError(f"{who}: {what} {int(bad)} is out of range: expected class indices in [0, {c})")


def multi_margin_loss(input: Tensor, target: Tensor, p: int = 1, margin: float = 1.0,
                      weight: Tensor | None = None, size_average=None, reduce=None,
                      reduction: str = "mean") -> Tensor:
    r"""Multi-class hinge loss: :math:`\frac{1}{C}\sum_{j \ne y} w_y \max(0, \text{margin} - x_y + x_j)^p`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.multi_margin_loss(tracenn.tensor([[0.1, 0.2, 0.4, 0.8]]), tracenn.tensor([3]))
    tensor(0.3250)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if p != 1 and p != 2:
        raise ValueError("only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    if input.ndim > 2 or (input.ndim == 2 and input.shape[1] == 0):
        raise ShapeError(f"multi_margin_loss: Expected non-empty vector or matrix with optional 0-dim batch "
                         f"size, but got: {list(input.shape)}")
    x = input if input.ndim == 2 else _shape.reshape(input, (1, -1))
    n, c = x.shape
    if target.numel() != n or target.ndim > 1:
        raise ShapeError(f"multi_margin_loss: inconsistent target size: expected {n} class indices, got shape "
                         f"{tuple(target.shape)}")
    if weight is not None and weight.numel() != c:
        raise ShapeError(f"inconsistent weight size, expected {c} but got {list(weight.shape)}")
    _check_index_values(_concrete(target), c, "multi_margin_loss")
    t = _shape.reshape(target, (n, 1))
    x_y = apply(OPS["gather"], (x, t), (1,))
    z = _math.relu(x - x_y + margin)  # relu: no gradient at a zero margin, as torch
    if p == 2:
        z = z * z
    if weight is not None:
        z = z * _shape.reshape(apply(OPS["index_select"], (weight, _shape.reshape(t, (-1,))), (0,)), (n, 1))
    is_y = _math.eq(t, _creation.arange(c))
    loss = _reduce.sum(_math.where(is_y, 0.0, z), 1) / c
    if input.ndim < 2 and reduction == "none":
        loss = _shape.reshape(loss, tuple(target.shape) if input.ndim == 1 and target.ndim == 0 else (n,))
    return _reduce_loss(loss, reduction)


def multilabel_margin_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                           reduction: str = "mean") -> Tensor:
    r"""Multi-label hinge loss: for each target class :math:`y_j` (the indices before the first -1)
    and each non-target class :math:`k`, :math:`\max(0, 1 - (x_{y_j} - x_k)) / C`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.multilabel_margin_loss(tracenn.tensor([[0.1, 0.2, 0.4, 0.8]]), tracenn.tensor([[3, 0, -1, 1]]))
    tensor(0.8500)
    """
    reduction = _reduction(size_average, reduce, reduction)
    if input.ndim > 2 or target.shape != input.shape:
        raise ShapeError(f"multilabel_margin_loss: inconsistent target size: {list(target.shape)} for input of "
                         f"size: {list(input.shape)}; the target holds class indices padded with -1, in the "
                         "input's shape")
    x = input if input.ndim == 2 else _shape.reshape(input, (1, -1))
    t = target if target.ndim == 2 else _shape.reshape(target, (1, -1))
    values = _concrete(t)
    if values is not None and values.size and (values.min() < -1 or values.max() >= x.shape[1]):
        bad = values[(values < -1) | (values >= x.shape[1])].flat[0]
        raise IndexError(f"multilabel_margin_loss: target {int(bad)} is out of range: expected class "
                         f"indices in [0, {x.shape[1]}), padded with -1")
    c = x.shape[1]
    # the targets of a sample are its entries before the first -1
    valid = _math._cast(_reduce.cumprod(_math.ge(t, 0), -1), np.dtype(bool))
    safe = _math.where(valid, t, 0)
    classes = _creation.arange(c)
    is_target = _reduce.any(_math.logical_and(_math.eq(_shape.unsqueeze(safe, -1), classes),
                                              _shape.unsqueeze(valid, -1)), 1)           # (N, C)
    x_y = apply(OPS["gather"], (x, safe), (1,))                                           # (N, J)
    hinge = _math.relu(1 - _shape.unsqueeze(x_y, -1) + _shape.unsqueeze(x, 1))           # (N, J, C)
    pairs = _math.logical_and(_shape.unsqueeze(valid, -1),
                              _shape.unsqueeze(_math.logical_not(is_target), 1))
    loss = _reduce.sum(_math.where(pairs, hinge, 0.0), (1, 2)) / c
    if input.ndim < 2:
        loss = _shape.reshape(loss, ())
    return _reduce_loss(loss, reduction)



def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    r"""int64 one-hot encoding: ``out[..., k] = 1`` where ``tensor[...] == k``; shape ``(*, num_classes)``.

    ``num_classes=-1`` uses ``tensor.max() + 1`` (a host read, as torch).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.one_hot(tracenn.tensor([0, 2]), 3)
    tensor([[1, 0, 0],
            [0, 0, 1]])
    """
    if tensor._value.dtype != np.int64:
        raise DtypeError("one_hot is only applicable to index tensor of type LongTensor. (got "
                         f"{_math._torch_name(tensor._value.dtype)}; convert with x.long())")
    values = _concrete(tensor)
    if num_classes == -1:
        if tensor.numel() == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        if values is None:
            raise DataDependentError(
                "one_hot: num_classes=-1 reads the tensor's largest value, which a tensor being compiled or "
                "transformed does not have: pass num_classes (F.one_hot(t, num_classes=10)), or compile with "
                "tracenn.compile(..., fallback=\"eager\") to run such calls eagerly")
        num_classes = int(values.max()) + 1
    if values is not None and values.size:
        if values.min() < 0:
            raise RuntimeError(f"Class values must be non-negative. (one_hot got {int(values.min())})")
        if values.max() >= num_classes:
            raise RuntimeError(f"Class values must be smaller than num_classes. (one_hot got {int(values.max())} "
                               f"with num_classes={num_classes})")
    hot = _math.eq(_shape.unsqueeze(tensor, -1), _creation.arange(num_classes))
    return _math._cast(hot, np.dtype(np.int64))


from ._ctc import ctc_loss  # noqa: E402,F401  (its own file; exported with the other losses)


from ._loss_pairs import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,  # noqa: E402
                          triplet_margin_loss, triplet_margin_with_distance_loss)

# torch's autocast runs the losses in float32 (both device types' lists): cast at their entry
for _name in ("l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss", "nll_loss", "cross_entropy", "binary_cross_entropy",
              "binary_cross_entropy_with_logits", "kl_div", "poisson_nll_loss", "soft_margin_loss", "multi_margin_loss",
              "multilabel_margin_loss", "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
              "triplet_margin_loss"):
    globals()[_name] = float32_under_autocast(globals()[_name])

