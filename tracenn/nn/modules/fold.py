"""``Fold`` (col2im) and ``Unfold`` (im2col): sliding local blocks to columns and back."""
from __future__ import annotations

from ...tensor import Tensor
from ..functional import _conv
from .module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    r"""Combine an array of sliding local blocks into a tensor, summing overlaps (col2im).

    Args:
        output_size: the spatial size :math:`(H, W)` of the result (int or pair).
        kernel_size: the block size (int or pair).
        dilation, padding, stride: as a convolution's (ints or pairs; defaults 1, 0, 1).

    Shape:
        - Input: :math:`(N, C \cdot kH \cdot kW, L)` or :math:`(C \cdot kH \cdot kW, L)`, with
          :math:`L` the number of blocks that fit in the (padded) output.
        - Output: :math:`(N, C, H, W)` or :math:`(C, H, W)`.

    >>> import tracenn
    >>> fold = tracenn.nn.Fold(output_size=(4, 5), kernel_size=(2, 2))
    >>> fold
    Fold(output_size=(4, 5), kernel_size=(2, 2), dilation=1, padding=0, stride=1)
    >>> fold(tracenn.zeros(1, 3 * 2 * 2, 12)).shape
    tracenn.Size([1, 3, 4, 5])
    """

    __constants__ = ["output_size", "kernel_size", "dilation", "padding", "stride"]

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size = output_size
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return _conv._fold(self, input, self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return ("output_size={output_size}, kernel_size={kernel_size}, dilation={dilation}, padding={padding}, "
                "stride={stride}".format(**self.__dict__))


class Unfold(Module):
    r"""Extract sliding local blocks of a batched tensor into columns (im2col).

    Args:
        kernel_size: the block size (int or pair).
        dilation, padding, stride: as a convolution's (ints or pairs; defaults 1, 0, 1).

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(N, C \cdot kH \cdot kW, L)` (channel-major rows), :math:`L` the number of
          blocks.

    >>> import tracenn
    >>> unfold = tracenn.nn.Unfold(kernel_size=(2, 3))
    >>> unfold
    Unfold(kernel_size=(2, 3), dilation=1, padding=0, stride=1)
    >>> unfold(tracenn.zeros(2, 5, 3, 4)).shape
    tracenn.Size([2, 30, 4])
    """

    __constants__ = ["kernel_size", "dilation", "padding", "stride"]

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.padding = padding
        self.stride = stride

    def forward(self, input: Tensor) -> Tensor:
        return _conv._unfold(self, input, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return ("kernel_size={kernel_size}, dilation={dilation}, padding={padding}, stride={stride}"
                .format(**self.__dict__))
