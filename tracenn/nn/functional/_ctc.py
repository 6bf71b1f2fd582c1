"""``ctc_loss``: Connectionist Temporal Classification, the forward (alpha) recursion in log space.

One step per frame over the extended label sequence (blank, l1, blank, l2, ..., blank), all samples
at once; variable input lengths freeze a sample's alphas after its last frame. The extended labels
and the masks are tensor ops on the targets and lengths, so inside ``tracenn.compile`` they may be
inputs of the compiled call (a batch from a DataLoader); only the concatenated (1-D) target layout
needs the target lengths on the host, as it is cut by them. Values that are known are checked as
torch checks them. Gradients come from autograd through the recursion.
"""
from __future__ import annotations

import numpy as np

from ..._api import creation as _creation, math as _math, reduce as _reduce, shape as _shape
from ..._api._common import shape_values, value_of
from ..._dispatch import apply
from ...errors import DataDependentError, ShapeError
from ...ops import OPS
from ...tensor import Tensor
from ._loss import _check_index_values, _concrete, _reduce_loss, _reduction

__all__ = ["ctc_loss"]

_INT64 = np.dtype(np.int64)


# ---- CTC -------------------------------------------------------------------------------------------

def _lengths(x, what: str, batch: int) -> tuple[Tensor, np.ndarray | None]:
    """``x`` as an int64 ``(N,)`` tensor, and its values when they are known (None when ``x`` is a
    value of the compiled call)."""
    if isinstance(x, Tensor):
        values = _concrete(x)
        t = _math._cast(_shape.reshape(x, (-1,)), _INT64)
    else:
        values = np.asarray(x, dtype=np.int64)
        t = _creation.tensor(values.reshape(-1))
    if t.shape[0] != batch:
        raise RuntimeError(f"{what} must be of size batch_size (ctc_loss: {t.shape[0]} lengths for batch size "
                           f"{batch})")
    return t, None if values is None else values.astype(np.int64).reshape(-1)


def _interleave(fill: Tensor, x: Tensor, last: Tensor) -> Tensor:
    """(N, S) ``fill`` and ``x`` -> (N, 2S + 1): fill0, x0, fill1, x1, ..., last."""
    n, s = x.shape
    pairs = _shape.reshape(_shape.stack([fill, x], 2), (n, 2 * s))
    return _shape.cat([pairs, last], 1)


_CONCATENATED_FIX = "pass target_lengths as a Python list, or pass padded (N, S) targets"


def _padded_targets(targets: Tensor, n: int, s_max: int, tg_values, concatenated: bool) -> Tensor:
    """The targets as (N, s_max) int64, each row padded past its length (the pad is masked later)."""
    if concatenated:
        if tg_values is None:
            raise DataDependentError("ctc_loss: with the targets of all samples concatenated (1-D), the target "
                                     "lengths decide where each sample's labels are, so inside tracenn.compile "
                                     f"they must be known: {_CONCATENATED_FIX}")
        if targets.shape[0] != tg_values.sum():
            raise RuntimeError(f"Expected tensor to have size {tg_values.sum()} at dimension 0, but got size "
                               f"{targets.shape[0]} for argument #2 'targets' (the concatenated targets)")
        if s_max == 0:
            return _creation.zeros((n, 0), dtype=_INT64)
        starts = np.concatenate([[0], np.cumsum(tg_values)[:-1]])
        rows = np.minimum(starts[:, None] + np.arange(s_max)[None, :], targets.shape[0] - 1)
        flat = apply(OPS["index_select"], (targets, _creation.tensor(rows.reshape(-1))), (0,))
        return _math._cast(_shape.reshape(flat, (n, s_max)), _INT64)
    rows = _shape.reshape(targets, (n, -1))
    if rows.shape[1] < s_max:
        raise RuntimeError(f"Expected tensor to have size at least {s_max} at dimension 1, but got size "
                           f"{rows.shape[1]} for argument #2 'targets'")
    return _math._cast(_shape.narrow(rows, 1, 0, s_max), _INT64)


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    r"""Connectionist Temporal Classification loss: :math:`-\log` of the total probability of all
    alignments of each target sequence to its input frames (Graves et al., 2006).

    Args:
        log_probs: :math:`(T, N, C)` or :math:`(T, C)` log-probabilities (e.g. ``log_softmax(2)``).
        targets: :math:`(N, S)` padded, or the targets of all samples concatenated (1-D).
        input_lengths, target_lengths: :math:`(N)` tensors or sequences of ints.
        blank: the blank label. ``zero_infinity``: impossible alignments give 0 (and no gradient)
            instead of ``inf`` (whose gradient is NaN at the sample's frames, as torch's).

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
    in_len, in_values = _lengths(input_lengths, "input_lengths", N)
    tg_len, tg_values = _lengths(target_lengths, "target_lengths", N)
    if not 0 <= blank < C:
        raise RuntimeError(f"blank must be in label range: ctc_loss got blank={blank} for {C} classes")
    if in_values is not None and in_values.size and in_values.max() > T:
        raise RuntimeError(f"Expected input_lengths to have value at most {T}, but got value {in_values.max()}")
    concatenated = not unbatched and targets.ndim == 1
    if tg_values is not None:
        s_max = int(tg_values.max()) if tg_values.size else 0
    else:  # (lengths of the compiled call: the padded targets' width bounds them)
        s_max = targets.shape[-1] if not concatenated else 0
    if concatenated and tg_values is None and getattr(value_of(tg_len), "symbolic", False):
        # (a compiled trace: its DataDependentError names the user's line and fallback="eager")
        shape_values(tg_len, "ctc_loss with the targets of all samples concatenated (1-D), whose target "
                     "lengths decide where each sample's labels are,", _CONCATENATED_FIX)
    padded = _padded_targets(targets, N, s_max, tg_values, concatenated)
    used = _creation.tensor(np.arange(s_max)[None, :]) < _shape.unsqueeze(tg_len, 1)
    padded = _math.where(used, padded, blank)
    _check_index_values(_concrete(padded), C, "ctc_loss", "target")

    # extended labels: blank, l1, blank, l2, ..., blank; a label may skip the blank before it
    L = 2 * s_max + 1
    blanks = _creation.full((N, s_max + 1), blank, dtype=_INT64)
    ext = _interleave(blanks[:, :s_max], padded, blanks[:, s_max:])
    no = _creation.zeros((N, s_max + 1), dtype=np.bool_)
    changed = _shape.cat([no[:, :1], padded[:, 1:] != padded[:, :-1]], 1) if s_max else no[:, :0]
    skip = _interleave(no[:, :s_max], changed, no[:, s_max:])

    work = lp if lp._value.dtype.itemsize >= 4 else _math._cast(lp, np.dtype(np.float32))
    dt = work._value.dtype
    neg = -1e30  # log(0), finite: -inf would make the gradient of logsumexp NaN
    emit = apply(OPS["gather"], (work, _shape.expand(_shape.unsqueeze(ext, 0), (T, N, L))), (2,))  # (T, N, L)
    active = _shape.unsqueeze(_creation.tensor(np.arange(T)[:, None]) < _shape.unsqueeze(in_len, 0), 2)  # (T, N, 1)
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
        prev2 = _math.where(skip, a[:, :L], neg)
        step = _reduce.logsumexp(_shape.stack([a[:, 2:], a[:, 1:L + 1], prev2]), 0) + emit[t]
        alpha = _math.where(active[t], step, alpha)
    # end in the last label or the blank after it
    last = _shape.stack([2 * tg_len, _math.clamp(2 * tg_len - 1, min=0)], 1)
    ends = apply(OPS["gather"], (alpha, last), (1,))
    ends = _math.where(_shape.stack([_creation.ones(N, dtype=np.bool_), tg_len > 0], 1), ends, neg)
    ll = _reduce.logsumexp(ends, 1)
    impossible = _math.lt(ll, neg / 2)
    if zero_infinity:
        loss = _math.where(impossible, 0.0, -ll)
    else:
        # inf, with torch's NaN gradient at the impossible sample's frames (inf * (1 + 0 * s): the
        # derivative is inf * 0); the select keeps the NaN off every other sample
        frames = _math.where(active & _shape.reshape(impossible, (1, N, 1)), work, 0.0)
        loss = _math.where(impossible, (_reduce.sum(frames, (0, 2)) * 0.0 + 1.0) * float("inf"), -ll)
    if work is not lp:
        loss = _math._cast(loss, lp._value.dtype)
    if reduction == "mean":
        return _reduce.mean(loss / _math.clamp(tg_len, min=1).to(loss.dtype))
    if unbatched:
        loss = _shape.reshape(loss, ())
    return _reduce_loss(loss, reduction)
