"""Linear functional forms: ``linear`` and ``bilinear``."""
from __future__ import annotations

from ... import _dispatch
from ..._api import linalg as _linalg, math as _math
from ...tensor import Tensor

__all__ = ["linear", "bilinear"]


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
    _dispatch.same_device("linear", input=input, weight=weight, bias=bias)
    out = _linalg.matmul(input, weight.t() if weight.ndim == 2 else weight)
    if bias is not None:
        if bias._value.dtype != out._value.dtype and _dispatch.autocasting(input, weight, bias):
            bias = bias.to(out.dtype)  # (torch's autocast casts the bias too: the output stays low precision)
        out = _math.add(out, bias)
    return out



def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    r"""Applies a bilinear transformation: :math:`y = x_1^T A x_2 + b`.

    Shape:
        - input1: :math:`(*, H_{in1})`; input2: :math:`(*, H_{in2})`, the same leading dimensions.
        - weight: :math:`(H_{out}, H_{in1}, H_{in2})`; bias: :math:`(H_{out})`.
        - output: :math:`(*, H_{out})`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.bilinear(tracenn.tensor([[1.0, 2.0]]), tracenn.tensor([[3.0]]), tracenn.ones(2, 2, 1))
    tensor([[9., 9.]])
    """
    if input1.dim() != input2.dim():
        raise RuntimeError(f"bilinear(): input dimensions do not match: got {input1.dim()} and {input2.dim()}")
    for i in range(input1.dim() - 1):
        if input1.shape[i] != input2.shape[i]:
            raise RuntimeError(f"bilinear(): input batch dimensions do not match at dim {i}: got "
                               f"{input1.shape[i]} and {input2.shape[i]}")
    if weight.dim() != 3:
        raise IndexError(f"bilinear(): weight must have 3 dimensions (out_features, in1_features, in2_features), "
                         f"got {weight.dim()} (shape {tuple(weight.shape)})")
    if input1.shape[-1] != weight.shape[1]:
        raise RuntimeError(f"bilinear(): input1 size does not match weight size: got {input1.shape[-1]} but "
                           f"expected {weight.shape[1]}")
    if input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): input2 size does not match weight size: got {input2.shape[-1]} but "
                           f"expected {weight.shape[2]}")
    if bias is not None and bias.shape[0] != weight.shape[0]:
        raise RuntimeError(f"bilinear(): bias size does not match weight size: got {bias.shape[0]} but "
                           f"expected {weight.shape[0]}")
    out = _linalg.einsum("...i,oij,...j->...o", input1, weight, input2)
    if bias is not None:
        out = _math.add(out, bias)
    return out
