"""Distances: pairwise_distance, cosine_similarity, pdist (and ``cdist``, torch's ``torch.cdist``).

Norms go through ``tracenn.norm``, whose gradient is 0 at a zero vector and, for ``p < 1``, at zero
entries (torch's rules), so equal points give a zero gradient rather than NaN.
"""
from __future__ import annotations

from ..._api import creation as _creation, index as _index, linalg as _linalg, math as _math
from ..._api import reduce as _reduce, shape as _shape
from ...autograd.grad_mode import no_grad
from ...errors import DtypeError, ShapeError
from ...tensor import Tensor
from ...amp import float32_under_autocast

__all__ = ["pairwise_distance", "cosine_similarity", "pdist"]


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    r""":math:`\|x_1 - x_2 + \epsilon\|_p` over the last dimension (inputs broadcast).

    Shape:
        - x1, x2: :math:`(N, D)` or :math:`(D)`; output :math:`(N)` or :math:`()` (``keepdim`` keeps
          the last dimension with size 1).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.pairwise_distance(tracenn.tensor([[0.0, 0.0]]), tracenn.tensor([[3.0, 4.0]]), eps=0.0)
    tensor([5.])
    """
    last = max(x1.ndim, x2.ndim) - 1
    return _reduce.norm(x1 - x2 + eps, p, last, keepdim)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    r""":math:`\frac{x_1 \cdot x_2}{\max(\|x_1\|, \epsilon) \max(\|x_2\|, \epsilon)}` along ``dim``.

    As torch, each input is divided by its (clamped) norm before the dot product, so the result stays
    within [-1, 1]; the clamp passes the gradient through unchanged.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.cosine_similarity(tracenn.tensor([[1.0, 0.0]]), tracenn.tensor([[1.0, 1.0]]))
    tensor([0.7071])
    """
    from ..._api._common import result_np_dtype
    dt = result_np_dtype(x1, x2)
    if dt.kind not in "fV":
        raise DtypeError(f"expected common dtype to be floating point, yet common dtype is "
                         f"{_math._torch_name(dt)}; convert the inputs first, e.g. x.float()")
    x1, x2 = _math._cast(x1, dt), _math._cast(x2, dt)
    x1, x2 = _shape.broadcast_tensors(x1, x2)
    n1 = _reduce.norm(x1, 2, dim, True).clone()
    n2 = _reduce.norm(x2, 2, dim, True).clone()
    with no_grad():  # torch clamps the norms without recording it: the gradient sees no clamp
        n1.clamp_min_(eps)
        n2.clamp_min_(eps)
    return _reduce.sum((x1 / n1) * (x2 / n2), dim)


def pdist(input: Tensor, p: float = 2) -> Tensor:
    r"""The p-norm distance between every pair of rows of an :math:`(N, M)` input: the upper triangle
    of the distance matrix, row by row, as a vector of :math:`N(N-1)/2` values.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.pdist(tracenn.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    tensor([5.0000, 1.0000, 4.2426])
    """
    if input.ndim != 2:
        raise ShapeError(f"pdist only supports 2D tensors, got: {input.ndim}D (shape {tuple(input.shape)}); "
                         "pass one row per point, e.g. x.reshape(n, -1)")
    if p < 0:
        raise RuntimeError(f"pdist only supports non-negative p values, got p={p}")
    n = input.shape[0]
    rows, cols = _creation.triu_indices(n, n, 1)
    diff = _index.index_select(input, 0, rows) - _index.index_select(input, 0, cols)
    return _reduce.norm(diff, p, 1)


@float32_under_autocast
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    r"""torch.cdist: the p-norm distance between each row of ``x1`` :math:`(*, P, M)` and each row of
    ``x2`` :math:`(*, R, M)`, shape :math:`(*, P, R)`.

    For ``p=2`` torch computes with a matrix product (:math:`\|a\|^2 + \|b\|^2 - 2ab`) when P or R
    exceeds 25 (``compute_mode``'s default); tracenn follows the same rule, so results agree.

    >>> import tracenn
    >>> from tracenn.nn.functional._distance import cdist
    >>> cdist(tracenn.tensor([[0.0, 0.0]]), tracenn.tensor([[3.0, 4.0], [0.0, 1.0]]))
    tensor([[5., 1.]])
    """
    if x1.ndim < 2 or x2.ndim < 2:
        raise ShapeError(f"cdist only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: {x2.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise ShapeError(f"X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError(f"cdist only supports non-negative p values, got p={p}")
    modes = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")
    if compute_mode not in modes:
        raise ValueError(f"{compute_mode} is not a valid value for compute_mode")
    r1, r2 = x1.shape[-2], x2.shape[-2]
    use_mm = p == 2 and (compute_mode == "use_mm_for_euclid_dist"
                         or compute_mode == modes[0] and (r1 > 25 or r2 > 25))
    if use_mm:
        # torch's _euclidean_dist: one matmul of [-2a, |a|^2, 1] and [b, 1, |b|^2].
        n1 = _reduce.sum(x1 * x1, -1, keepdim=True)
        n2 = _reduce.sum(x2 * x2, -1, keepdim=True)
        a = _shape.cat([x1 * -2, n1, _creation.ones_like(n1)], -1)
        b = _shape.cat([x2, _creation.ones_like(n2), n2], -1)
        return _math.sqrt(_math.clamp(_linalg.matmul(a, b.transpose(-1, -2)), min=0))
    return _reduce.norm(x1.unsqueeze(-2) - x2.unsqueeze(-3), p, -1)
