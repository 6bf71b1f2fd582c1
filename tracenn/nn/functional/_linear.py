"""Linear functional forms: ``linear``."""
from __future__ import annotations

from ..._api import linalg as _linalg, math as _math
from ...tensor import Tensor

__all__ = ["linear"]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Applies an affine transformation: :math:`y = xA^T + b`.

    Shape:
        - input: :math:`(*, in\_features)`; weight: :math:`(out\_features, in\_features)` or
          :math:`(in\_features)`; bias: :math:`(out\_features)` or :math:`()`.
        - output: :math:`(*, out\_features)` (or :math:`(*)` for a 1-D weight).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.linear(tracenn.ones(2, 3), tracenn.ones(4, 3), tracenn.zeros(4))
    tensor([[3., 3., 3., 3.],
            [3., 3., 3., 3.]])
    """
    out = _linalg.matmul(input, weight.t() if weight.ndim == 2 else weight)
    if bias is not None:
        out = _math.add(out, bias)
    return out

