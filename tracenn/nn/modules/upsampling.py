"""``Upsample`` (and the deprecated ``UpsamplingNearest2d``/``UpsamplingBilinear2d``): a layer around
:func:`tracenn.nn.functional.interpolate`."""
from __future__ import annotations

from ...tensor import Tensor
from ..functional import _vision
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    r"""Resize 1-D, 2-D or 3-D spatial data (see :func:`~tracenn.nn.functional.interpolate`).

    Args:
        size: the output spatial size (an int or one per spatial dim).
        scale_factor: multiplier(s) for the spatial size (stored as floats).
        mode: ``'nearest'`` (default), ``'nearest-exact'``, ``'linear'``, ``'bilinear'``,
            ``'bicubic'``, ``'trilinear'`` or ``'area'``.
        align_corners: for the interpolating modes (default ``False`` there).
        recompute_scale_factor: compute the scale from the output size instead of ``scale_factor``.

    Shape:
        - Input: :math:`(N, C, W_{in})`, :math:`(N, C, H_{in}, W_{in})` or :math:`(N, C, D_{in}, H_{in}, W_{in})`.
        - Output: the spatial dims ``size``, or ``floor(in * scale_factor)``.

    >>> import tracenn
    >>> m = tracenn.nn.Upsample(scale_factor=2, mode="bilinear")
    >>> m
    Upsample(scale_factor=2.0, mode='bilinear')
    >>> m(tracenn.tensor([[[[1., 2.], [3., 4.]]]]))
    tensor([[[[1.0000, 1.2500, 1.7500, 2.0000],
              [1.5000, 1.7500, 2.2500, 2.5000],
              [2.5000, 2.7500, 3.2500, 3.5000],
              [3.0000, 3.2500, 3.7500, 4.0000]]]])
    """

    __constants__ = ["size", "scale_factor", "mode", "align_corners", "name", "recompute_scale_factor"]

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return _vision._interpolate(self, input, self.size, self.scale_factor, self.mode, self.align_corners,
                                    self.recompute_scale_factor, False)

    def __setstate__(self, state):
        if "recompute_scale_factor" not in state:
            state["recompute_scale_factor"] = True
        super().__setstate__(state)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = "scale_factor=" + repr(self.scale_factor)
        else:
            info = "size=" + repr(self.size)
        info += ", mode=" + repr(self.mode)
        return info


class UpsamplingNearest2d(Upsample):
    r"""Nearest-neighbour 2-D upsampling; prefer ``Upsample(..., mode='nearest')``.

    Args:
        size: the output size :math:`(H, W)`.
        scale_factor: multiplier(s) for height and width.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`; output :math:`(N, C, H_{out}, W_{out})`.

    >>> import tracenn
    >>> tracenn.nn.UpsamplingNearest2d(scale_factor=2)(tracenn.tensor([[[[1., 2.]]]]))
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.]]]])
    """

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    r"""Bilinear 2-D upsampling with ``align_corners=True``; prefer ``Upsample(..., mode='bilinear')``.

    Args:
        size: the output size :math:`(H, W)`.
        scale_factor: multiplier(s) for height and width.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})`; output :math:`(N, C, H_{out}, W_{out})`.

    >>> import tracenn
    >>> tracenn.nn.UpsamplingBilinear2d(size=(1, 3))(tracenn.tensor([[[[0., 2.]]]]))
    tensor([[[[0., 1., 2.]]]])
    """

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
