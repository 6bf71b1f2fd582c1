"""``PixelShuffle`` and ``PixelUnshuffle`` (trade channels for spatial resolution and back) and
``ChannelShuffle`` (interleave channel groups)."""
from __future__ import annotations

from ...tensor import Tensor
from ..functional import _vision
from .module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class PixelShuffle(Module):
    r"""Rearrange :math:`(*, C r^2, H, W)` into :math:`(*, C, H r, W r)` (sub-pixel convolution).

    Args:
        upscale_factor: :math:`r`.

    Shape:
        - Input: :math:`(*, C_{in}, H_{in}, W_{in})`, :math:`C_{in}` divisible by :math:`r^2`.
        - Output: :math:`(*, C_{in} / r^2, H_{in} r, W_{in} r)`.

    >>> import tracenn
    >>> m = tracenn.nn.PixelShuffle(3)
    >>> m
    PixelShuffle(upscale_factor=3)
    >>> m(tracenn.zeros(1, 9, 4, 4)).shape
    tracenn.Size([1, 1, 12, 12])
    """

    __constants__ = ["upscale_factor"]

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _vision._pixel_shuffle(self, input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    r"""Rearrange :math:`(*, C, H r, W r)` into :math:`(*, C r^2, H, W)`: the inverse of :class:`PixelShuffle`.

    Args:
        downscale_factor: :math:`r`.

    Shape:
        - Input: :math:`(*, C_{in}, H_{in}, W_{in})`, :math:`H_{in}` and :math:`W_{in}` divisible by :math:`r`.
        - Output: :math:`(*, C_{in} r^2, H_{in} / r, W_{in} / r)`.

    >>> import tracenn
    >>> m = tracenn.nn.PixelUnshuffle(3)
    >>> m
    PixelUnshuffle(downscale_factor=3)
    >>> m(tracenn.zeros(1, 1, 12, 12)).shape
    tracenn.Size([1, 9, 4, 4])
    """

    __constants__ = ["downscale_factor"]

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _vision._pixel_unshuffle(self, input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    r"""Divide the channels of an :math:`(N, C, *)` input into ``groups`` groups and interleave them:
    :math:`(N, g, C/g, *)` becomes :math:`(N, C/g, g, *)`, flattened back to the input's shape.

    Args:
        groups: number of groups to divide the channels in (must divide :math:`C`).

    >>> import tracenn
    >>> m = tracenn.nn.ChannelShuffle(2)
    >>> m, m(tracenn.arange(1., 5.).view(1, 4, 1, 1)).flatten()
    (ChannelShuffle(groups=2), tensor([1., 3., 2., 4.]))
    """

    __constants__ = ["groups"]
    groups: int

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, input: Tensor) -> Tensor:
        return _vision._channel_shuffle("channel_shuffle", input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
