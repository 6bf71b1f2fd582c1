"""Padding layers: ``ZeroPad``, ``ConstantPad``, ``ReflectionPad``, ``ReplicationPad`` and
``CircularPad`` in 1-3 d — each is :func:`tracenn.nn.functional.pad` with a fixed padding and mode.

``padding`` is stored as torch does: an int becomes ``(p, p)`` / ``(p,) * 4`` / ``(p,) * 6``, in F.pad's
order (last dim first: left, right, top, bottom, front, back). Negative widths crop.
"""
from __future__ import annotations

from ...tensor import Tensor
from ..functional import _vision
from ..functional._conv import _who
from .module import Module

__all__ = ["CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
           "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d", "ReplicationPad2d",
           "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"]


def _widths(padding, nd):
    """torch's ``_pair``/``_quadruple``/``_ntuple(6)`` of a padding argument."""
    return tuple(padding) if isinstance(padding, (list, tuple)) else (padding,) * (2 * nd)


class _PadNd(Module):
    __constants__ = ["padding"]
    _nd = 0
    _mode = "constant"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _widths(padding, self._nd)

    def extra_repr(self) -> str:
        return f"{self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return _vision._pad(self, input, self.padding, self._mode)


class _CircularPadNd(_PadNd):
    _mode = "circular"

    def _check_input_dim(self, input) -> None:
        n = self._nd
        if input.dim() not in (n + 1, n + 2):
            raise ValueError(f"{_who(self)}: expected {n + 1}D or {n + 2}D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        return _vision._pad(self, input, self.padding, "circular")


class CircularPad1d(_CircularPadNd):
    r"""Pad the last dim by wrapping around (the end continues at the start).

    Args:
        padding: an int for both sides, or ``(left, right)``.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`W_{out} = W_{in} + \text{left} + \text{right}`.

    >>> import tracenn
    >>> m = tracenn.nn.CircularPad1d((1, 2))
    >>> m
    CircularPad1d((1, 2))
    >>> m(tracenn.tensor([[1., 2., 3.]]))
    tensor([[3., 1., 2., 3., 1., 2.]])
    """

    _nd = 1


class CircularPad2d(_CircularPadNd):
    r"""Pad the last two dims by wrapping around.

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom)``.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`H_{out} = H_{in} + \text{top} + \text{bottom}`, likewise :math:`W`.

    >>> import tracenn
    >>> tracenn.nn.CircularPad2d(1)(tracenn.arange(4.).reshape(1, 2, 2))
    tensor([[[3., 2., 3., 2.],
             [1., 0., 1., 0.],
             [3., 2., 3., 2.],
             [1., 0., 1., 0.]]])
    """

    _nd = 2


class CircularPad3d(_CircularPadNd):
    r"""Pad the last three dims by wrapping around.

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom, front, back)``.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`; each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.CircularPad3d(1)(tracenn.ones(1, 1, 2, 2, 2)).shape
    tracenn.Size([1, 1, 4, 4, 4])
    """

    _nd = 3


class _ConstantPadNd(_PadNd):
    __constants__ = ["padding", "value"]

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return _vision._pad(self, input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    r"""Pad the last dim with a constant.

    Args:
        padding: an int for both sides, or ``(left, right)``; negative widths crop.
        value: the fill value.

    Shape:
        - Input: :math:`(*, W_{in})`.
        - Output: :math:`(*, W_{in} + \text{left} + \text{right})`.

    >>> import tracenn
    >>> m = tracenn.nn.ConstantPad1d((1, 2), 3.5)
    >>> m
    ConstantPad1d(padding=(1, 2), value=3.5)
    >>> m(tracenn.tensor([[1., 2.]]))
    tensor([[3.5000, 1.0000, 2.0000, 3.5000, 3.5000]])
    """

    _nd = 1


class ConstantPad2d(_ConstantPadNd):
    r"""Pad the last two dims with a constant.

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom)``.
        value: the fill value.

    Shape:
        - Input: :math:`(*, H_{in}, W_{in})`; each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.ConstantPad2d((1, 0, 0, 1), 9.0)(tracenn.ones(1, 1, 1))
    tensor([[[9., 1.],
             [9., 9.]]])
    """

    _nd = 2


class ConstantPad3d(_ConstantPadNd):
    r"""Pad the last three dims with a constant.

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom, front, back)``.
        value: the fill value.

    Shape:
        - Input: :math:`(*, D, H, W)`; each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.ConstantPad3d(1, 0.5)(tracenn.ones(1, 1, 1, 1)).shape
    tracenn.Size([1, 3, 3, 3])
    """

    _nd = 3


class ZeroPad1d(ConstantPad1d):
    r"""Pad the last dim with zeros (see :class:`ConstantPad1d`).

    Args:
        padding: an int for both sides, or ``(left, right)``.

    Shape:
        - Input: :math:`(*, W_{in})`; output :math:`(*, W_{in} + \text{left} + \text{right})`.

    >>> import tracenn
    >>> m = tracenn.nn.ZeroPad1d(1)
    >>> m, m(tracenn.tensor([[1., 2.]]))
    (ZeroPad1d((1, 1)), tensor([[0., 1., 2., 0.]]))
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    r"""Pad the last two dims with zeros (see :class:`ConstantPad2d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom)``.

    Shape:
        - Input: :math:`(*, H_{in}, W_{in})`; each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.ZeroPad2d((1, 1, 2, 0))(tracenn.ones(1, 1, 1))
    tensor([[[0., 0., 0.],
             [0., 0., 0.],
             [0., 1., 0.]]])
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    r"""Pad the last three dims with zeros (see :class:`ConstantPad3d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom, front, back)``.

    Shape:
        - Input: :math:`(*, D, H, W)`; each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.ZeroPad3d((1, 1, 0, 0, 0, 0))(tracenn.ones(1, 1, 1)).flatten()
    tensor([0., 1., 0.])
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ReflectionPadNd(_PadNd):
    _mode = "reflect"


class ReflectionPad1d(_ReflectionPadNd):
    r"""Pad the last dim with its mirror image (the edge itself is not repeated).

    Args:
        padding: an int for both sides, or ``(left, right)``; each smaller than the input size.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`W_{out} = W_{in} + \text{left} + \text{right}`.

    >>> import tracenn
    >>> m = tracenn.nn.ReflectionPad1d(2)
    >>> m
    ReflectionPad1d((2, 2))
    >>> m(tracenn.tensor([[0., 1., 2., 3.]]))
    tensor([[2., 1., 0., 1., 2., 3., 2., 1.]])
    """

    _nd = 1


class ReflectionPad2d(_ReflectionPadNd):
    r"""Pad the last two dims by reflection (see :class:`ReflectionPad1d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom)``.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: each padded size grows by its pair.

    >>> import tracenn
    >>> tracenn.nn.ReflectionPad2d((1, 0, 1, 0))(tracenn.arange(4.).reshape(1, 2, 2))
    tensor([[[3., 2., 3.],
             [1., 0., 1.],
             [3., 2., 3.]]])
    """

    _nd = 2


class ReflectionPad3d(_ReflectionPadNd):
    r"""Pad the last three dims by reflection (see :class:`ReflectionPad1d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom, front, back)``.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.

    >>> import tracenn
    >>> tracenn.nn.ReflectionPad3d(1)(tracenn.ones(1, 1, 2, 2, 2)).shape
    tracenn.Size([1, 1, 4, 4, 4])
    """

    _nd = 3


class _ReplicationPadNd(_PadNd):
    _mode = "replicate"


class ReplicationPad1d(_ReplicationPadNd):
    r"""Pad the last dim by repeating its edge values.

    Args:
        padding: an int for both sides, or ``(left, right)``.

    Shape:
        - Input: :math:`(N, C, W_{in})` or :math:`(C, W_{in})`.
        - Output: :math:`W_{out} = W_{in} + \text{left} + \text{right}`.

    >>> import tracenn
    >>> m = tracenn.nn.ReplicationPad1d((2, 1))
    >>> m
    ReplicationPad1d((2, 1))
    >>> m(tracenn.tensor([[1., 2., 3.]]))
    tensor([[1., 1., 1., 2., 3., 3.]])
    """

    _nd = 1


class ReplicationPad2d(_ReplicationPadNd):
    r"""Pad the last two dims by repeating their edges (see :class:`ReplicationPad1d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom)``.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.

    >>> import tracenn
    >>> tracenn.nn.ReplicationPad2d(1)(tracenn.tensor([[[1.]]]))
    tensor([[[1., 1., 1.],
             [1., 1., 1.],
             [1., 1., 1.]]])
    """

    _nd = 2


class ReplicationPad3d(_ReplicationPadNd):
    r"""Pad the last three dims by repeating their edges (see :class:`ReplicationPad1d`).

    Args:
        padding: an int for all sides, or ``(left, right, top, bottom, front, back)``.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.

    >>> import tracenn
    >>> tracenn.nn.ReplicationPad3d((1, 1, 0, 0, 0, 0))(tracenn.ones(1, 1, 1, 1)).shape
    tracenn.Size([1, 1, 1, 3])
    """

    _nd = 3
