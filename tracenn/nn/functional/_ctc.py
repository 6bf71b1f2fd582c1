"""``ctc_loss``: Connectionist Temporal Classification, the forward (alpha) recursion in log space.

One step per frame over the extended label sequence (blank, l1, blank, l2, ..., blank), all samples
at once; variable input lengths freeze a sample's alphas after its last frame. The target layout is
built on the host from the lengths (read once, as torch does on the CPU). Gradients come from
autograd through the recursion.
"""
from __future__ import annotations

import numpy as np

from ..._api import creation as _creation, math as _math, reduce as _reduce, shape as _shape
from ..._dispatch import apply
from ...errors import DataDependentError, ShapeError
from ...ops import OPS
from ...tensor import Tensor
from ._loss import _check_index_values, _concrete, _reduce_loss, _reduction

__all__ = ["ctc_loss"]


# ---- CTC -------------------------------------------------------------------------------------------

def _lengths(x, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        values = _concrete(x)
        if values is None:
            raise DataDependentError(f"ctc_loss: {what} must be concrete (they decide the target layout); pass "
                               "them as a list or compute them outside the traced code")
        return values.astype(np.int64).reshape(-1)
    return np.asarray(x, dtype=np.int64).reshape(-1)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    r"""Connectionist Temporal Classification loss: :math:`-\log` of the total probability of all
    alignments of each target sequence to its input frames (Graves et al., 2006).

    Args:
        log_probs: :math:`(T, N, C)` or :math:`(T, C)` log-probabilities (e.g. ``log_softmax(2)``).
        targets: :math:`(N, S)` padded, or the targets of all samples concatenated (1-D).
        input_lengths, target_lengths: :math:`(N)` tensors or sequences of ints.
        blank: the blank label. ``zero_infinity``: impossible alignments give 0 (and no gradient)
            instead of ``inf``.

    'mean' divides each loss by its target length, then averages over the batch (torch's rule).
    Computed by the forward (alpha) recursion in log space, one step per frame; the gradient comes
    from autograd through it and agrees with torch's gradient with respect to the logits.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> lp = tracenn.zeros(2, 1, 2).log_softmax(2)  # 2 frames, uniform over {blank, a}
    >>> F.ctc_loss(lp, tracenn.tensor([[1]]), [2], [1], reduction="sum")  # -log(3/4)
    tensor(0.2877)
    """
    reduction = _reduction(None, None, reduction)
    unbatched = log_probs.ndim == 2
    lp = _shape.unsqueeze(log_probs, 1) if unbatched else log_probs
    if lp.ndim != 3:
        raise ShapeError(f"ctc_loss: expected log_probs of shape (T, N, C) or (T, C), got {tuple(log_probs.shape)}")
    T, N, C = lp.shape
    in_len = _lengths(input_lengths, "input_lengths")
    tg_len = _lengths(target_lengths, "target_lengths")
    if in_len.size != N:
        raise RuntimeError(f"input_lengths must be of size batch_size (ctc_loss: {in_len.size} lengths for "
                           f"batch size {N})")
    if tg_len.size != N:
        raise RuntimeError(f"target_lengths must be of size batch_size (ctc_loss: {tg_len.size} lengths for "
                           f"batch size {N})")
    if not 0 <= blank < C:
        raise RuntimeError(f"blank must be in label range: ctc_loss got blank={blank} for {C} classes")
    if in_len.size and in_len.max() > T:
        raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {in_len.max()}")
    tv = _concrete(targets)
    if tv is None:
        raise DataDependentError("ctc_loss: targets must be concrete (their lengths decide the alignment layout)")
    tv = tv.astype(np.int64)
    s_max = int(tg_len.max()) if tg_len.size else 0
    if unbatched or targets.ndim == 2:
        tv = tv.reshape(N, -1)
        if tv.shape[1] < s_max:
            raise RuntimeError(f"Expected tensor to have size at least {s_max} at dimension 1, but got size "
                               f"{tv.shape[1]} for argument #2 'targets'")
        padded = tv[:, :s_max]
    else:
        if tv.size != tg_len.sum():
            raise RuntimeError(f"Expected tensor to have size {tg_len.sum()} at dimension 0, but got size "
                               f"{tv.size} for argument #2 'targets' (the concatenated targets)")
        padded = np.zeros((N, s_max), np.int64)
        for n, start in enumerate(np.concatenate([[0], np.cumsum(tg_len)[:-1]]).astype(np.int64)):
            padded[n, :tg_len[n]] = tv[start:start + tg_len[n]]
    used = np.arange(s_max) < tg_len[:, None]
    padded = np.where(used, padded, blank)
    _check_index_values(padded[used], C, "ctc_loss", "target")

    # extended labels: blank, l1, blank, l2, ..., blank; a label may skip the blank before it
    L = 2 * s_max + 1
    ext = np.full((N, L), blank, np.int64)
    ext[:, 1::2] = padded
    skip = np.zeros((N, L), bool)
    skip[:, 3::2] = padded[:, 1:] != padded[:, :-1]

    work = lp if lp._value.dtype.itemsize >= 4 else _math._cast(lp, np.dtype(np.float32))
    dt = work._value.dtype
    neg = -1e30  # log(0), finite: -inf would make the gradient of logsumexp NaN
    ext_t = _creation.tensor(ext)
    emit = apply(OPS["gather"], (work, _shape.expand(_shape.unsqueeze(ext_t, 0), (T, N, L))), (2,))  # (T, N, L)
    skip_t = _creation.tensor(skip)
    active = _creation.tensor((np.arange(T)[:, None] < in_len[None, :])[:, :, None])         # (T, N, 1)
    # before any frame only the empty prefix has probability 1 (what a sample with no frames keeps)
    empty = _creation.tensor(np.where(np.arange(L) == 0, 0.0, neg).astype(dt))
    if T == 0:
        alpha = _shape.expand(empty, (N, L))
    else:
        first = _math.where(_creation.tensor(np.arange(L) < 2), emit[0], neg)  # blank or the first label
        alpha = _math.where(active[0], first, empty)
    pad = _creation.tensor(np.full((N, 2), neg, dt))
    for t in range(1, T):
        a = _shape.cat([pad, alpha], 1)                                    # (N, L + 2)
        prev2 = _math.where(skip_t, a[:, :L], neg)
        step = _reduce.logsumexp(_shape.stack([a[:, 2:], a[:, 1:L + 1], prev2]), 0) + emit[t]
        alpha = _math.where(active[t], step, alpha)
    # end in the last label or the blank after it
    last = _creation.tensor(np.stack([2 * tg_len, np.maximum(2 * tg_len - 1, 0)], 1))
    ends = apply(OPS["gather"], (alpha, last), (1,))
    ends = _math.where(_creation.tensor(np.stack([np.ones(N, bool), tg_len > 0], 1)), ends, neg)
    ll = _reduce.logsumexp(ends, 1)
    impossible = _math.lt(ll, neg / 2)
    loss = _math.where(impossible, 0.0 if zero_infinity else float("inf"), -ll)
    if work is not lp:
        loss = _math._cast(loss, lp._value.dtype)
    if reduction == "mean":
        return _reduce.mean(loss / _creation.tensor(np.maximum(tg_len, 1)).to(loss.dtype))
    if unbatched:
        loss = _shape.reshape(loss, ())
    return _reduce_loss(loss, reduction)
