"""Pooling layers: max, average, power-average (LP), adaptive and fractional max pooling in 1-3 d, and max
unpooling.

Constructor arguments, stored attributes and reprs are torch's (``MaxPool2d(2)`` keeps
``kernel_size=2``; ``AvgPool1d`` stores 1-tuples). Errors for a bad input name the layer, e.g.
``MaxPool2d(kernel_size=3, ...): Given input size: (3x2x2). Calculated output size: (3x0x0). Output
size is too small: ...``.
"""
from __future__ import annotations

from ...tensor import Tensor
from ..functional import _pool, _pool_fractional
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "AvgPool1d",
           "AvgPool2d", "AvgPool3d", "LPPool1d", "LPPool2d", "LPPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d",
           "AdaptiveMaxPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "FractionalMaxPool2d",
           "FractionalMaxPool3d"]


def _ntuple(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (v,) * n


class _MaxPoolNd(Module):
    __constants__ = ["kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"]
    _nd = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return ("kernel_size={kernel_size}, stride={stride}, padding={padding}, dilation={dilation}, "
                "ceil_mode={ceil_mode}".format(**self.__dict__))

    def forward(self, input: Tensor):
        return _pool._max_pool(self, self._nd, input, self.kernel_size, self.stride, self.padding, self.dilation,
                               self.ceil_mode, self.return_indices)


class MaxPool1d(_MaxPoolNd):
    r"""1-D max pooling.

    Args:
        kernel_size: the window size.
        stride: the window step (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on both sides (at most half the effective window).
        dilation: spacing between window elements.
        return_indices: also return the flat position of each max (for :class:`MaxUnpool1d`).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`L_{out} = \lfloor (L_{in} + 2p - d(k - 1) - 1) / s \rfloor + 1` (ceil with
          ``ceil_mode``).

    >>> import tracenn
    >>> m = tracenn.nn.MaxPool1d(3, stride=2)
    >>> m
    MaxPool1d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> m(tracenn.zeros(20, 16, 50)).shape
    tracenn.Size([20, 16, 24])
    """

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    r"""2-D max pooling.

    Args:
        kernel_size, stride, padding, dilation: ints or pairs (``stride`` defaults to ``kernel_size``).
        return_indices: also return flat :math:`H \times W` positions (for :class:`MaxUnpool2d`).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: each size as in :class:`MaxPool1d`.

    >>> import tracenn
    >>> m = tracenn.nn.MaxPool2d(2)
    >>> m
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> m(tracenn.arange(16.).reshape(1, 4, 4))
    tensor([[[ 5.,  7.],
             [13., 15.]]])
    """

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    r"""3-D max pooling.

    Args:
        kernel_size, stride, padding, dilation: ints or triples.
        return_indices: also return flat :math:`D H W` positions (for :class:`MaxUnpool3d`).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: each size as in :class:`MaxPool1d`.

    >>> import tracenn
    >>> tracenn.nn.MaxPool3d((1, 2, 2))(tracenn.zeros(2, 3, 4, 6, 6)).shape
    tracenn.Size([2, 3, 4, 3, 3])
    """

    _nd = 3


class _MaxUnpoolNd(Module):
    _nd = 0

    def __init__(self, kernel_size, stride=None, padding=0) -> None:
        super().__init__()
        n = self._nd
        self.kernel_size = _ntuple(kernel_size, n)
        self.stride = _ntuple(stride if (stride is not None) else kernel_size, n)
        self.padding = _ntuple(padding, n)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor, indices: Tensor, output_size: list | None = None) -> Tensor:
        return _pool._max_unpool(self, self._nd, input, indices, self.kernel_size, self.stride, self.padding,
                                 output_size)


class MaxUnpool1d(_MaxUnpoolNd):
    r"""Partial inverse of :class:`MaxPool1d`: each value goes back to its index, zeros elsewhere.

    Args:
        kernel_size, stride, padding: those of the pooling (``stride`` defaults to ``kernel_size``).

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`, and indices of the same shape.
        - Output: :math:`L_{out} = (L_{in} - 1) s - 2p + k`, or ``output_size`` given to forward.

    >>> import tracenn
    >>> pool, unpool = tracenn.nn.MaxPool1d(2, return_indices=True), tracenn.nn.MaxUnpool1d(2)
    >>> unpool(*pool(tracenn.tensor([[[1., 2., 3., 4., 5., 6., 7., 8.]]])))
    tensor([[[0., 2., 0., 4., 0., 6., 0., 8.]]])
    """

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    r"""Partial inverse of :class:`MaxPool2d` (see :class:`MaxUnpool1d`).

    Args:
        kernel_size, stride, padding: ints or pairs, those of the pooling.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`, and indices alike.
        - Output: each size :math:`(n - 1) s - 2p + k`, or ``output_size``.

    >>> import tracenn
    >>> m = tracenn.nn.MaxUnpool2d(2, stride=2)
    >>> m
    MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
    >>> m(tracenn.tensor([[[[4.]]]]), tracenn.tensor([[[[3]]]]))
    tensor([[[[0., 0.],
              [0., 4.]]]])
    """

    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    r"""Partial inverse of :class:`MaxPool3d` (see :class:`MaxUnpool1d`).

    Args:
        kernel_size, stride, padding: ints or triples, those of the pooling.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`, and indices alike.
        - Output: each size :math:`(n - 1) s - 2p + k`, or ``output_size``.

    >>> import tracenn
    >>> pool, unpool = tracenn.nn.MaxPool3d(2, return_indices=True), tracenn.nn.MaxUnpool3d(2)
    >>> unpool(*pool(tracenn.zeros(1, 2, 4, 4, 4))).shape
    tracenn.Size([1, 2, 4, 4, 4])
    """

    _nd = 3


class _AvgPoolNd(Module):
    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]
    _nd = 0

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    r"""1-D average pooling.

    Args:
        kernel_size: the window size.
        stride: the window step (default: ``kernel_size``).
        padding: implicit zero padding on both sides (at most half the window).
        ceil_mode: round the output size up instead of down.
        count_include_pad: count the zero padding in each average's divisor (default ``True``).

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`L_{out} = \lfloor (L_{in} + 2p - k) / s \rfloor + 1`.

    >>> import tracenn
    >>> m = tracenn.nn.AvgPool1d(3, stride=2)
    >>> m
    AvgPool1d(kernel_size=(3,), stride=(2,), padding=(0,))
    >>> m(tracenn.tensor([[[1., 2., 3., 4., 5., 6., 7.]]]))
    tensor([[[2., 4., 6.]]])
    """

    _nd = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _ntuple(kernel_size, 1)
        self.stride = _ntuple(stride if stride is not None else kernel_size, 1)
        self.padding = _ntuple(padding, 1)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        return _pool._avg_pool(self, 1, input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                               self.count_include_pad, None)


class _AvgPoolWithDivisor(_AvgPoolNd):
    __constants__ = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"]

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if (stride is not None) else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return _pool._avg_pool(self, self._nd, input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                               self.count_include_pad, self.divisor_override)


class AvgPool2d(_AvgPoolWithDivisor):
    r"""2-D average pooling.

    Args:
        kernel_size, stride, padding: ints or pairs (``stride`` defaults to ``kernel_size``).
        ceil_mode, count_include_pad: as :class:`AvgPool1d`.
        divisor_override: divide every window's sum by this instead of its size.

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: each size :math:`\lfloor (n + 2p - k) / s \rfloor + 1`.

    >>> import tracenn
    >>> m = tracenn.nn.AvgPool2d((3, 2), stride=(2, 1))
    >>> m
    AvgPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0)
    >>> m(tracenn.zeros(20, 16, 50, 32)).shape
    tracenn.Size([20, 16, 24, 31])
    """

    _nd = 2


class AvgPool3d(_AvgPoolWithDivisor):
    r"""3-D average pooling.

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as
            :class:`AvgPool2d`, with triples.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: each size as in :class:`AvgPool2d`.

    >>> import tracenn
    >>> tracenn.nn.AvgPool3d(2)(tracenn.ones(1, 2, 4, 4, 4)).shape
    tracenn.Size([1, 2, 2, 2, 2])
    """

    _nd = 3

    def __setstate__(self, d):
        super().__setstate__(d)
        self.__dict__.setdefault("padding", 0)
        self.__dict__.setdefault("ceil_mode", False)
        self.__dict__.setdefault("count_include_pad", True)


class _LPPoolNd(Module):
    __constants__ = ["norm_type", "kernel_size", "stride", "ceil_mode"]
    _nd = 0

    def __init__(self, norm_type: float, kernel_size, stride=None, ceil_mode: bool = False) -> None:
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return "norm_type={norm_type}, kernel_size={kernel_size}, stride={stride}, ceil_mode={ceil_mode}".format(
            **self.__dict__)

    def forward(self, input: Tensor) -> Tensor:
        return _pool._lp_pool(self, self._nd, input, float(self.norm_type), self.kernel_size, self.stride,
                              self.ceil_mode)


class LPPool1d(_LPPoolNd):
    r"""1-D power-average pooling: :math:`(\sum_{x \in \text{window}} x^p)^{1/p}`.

    Args:
        norm_type: the power :math:`p` (``inf`` gives max pooling of :math:`|x|`).
        kernel_size: the window size.
        stride: the window step (default: ``kernel_size``).
        ceil_mode: round the output size up instead of down.

    Shape:
        - Input: :math:`(N, C, L_{in})` or :math:`(C, L_{in})`.
        - Output: :math:`L_{out} = \lfloor (L_{in} - k) / s \rfloor + 1`.

    >>> import tracenn
    >>> m = tracenn.nn.LPPool1d(2, 3, stride=2)
    >>> m
    LPPool1d(norm_type=2, kernel_size=3, stride=2, ceil_mode=False)
    >>> m(tracenn.zeros(20, 16, 50)).shape
    tracenn.Size([20, 16, 24])
    """

    _nd = 1


class LPPool2d(_LPPoolNd):
    r"""2-D power-average pooling (see :class:`LPPool1d`).

    Args:
        norm_type, kernel_size, stride, ceil_mode: as :class:`LPPool1d`, with pairs.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: each size :math:`\lfloor (n - k) / s \rfloor + 1`.

    >>> import tracenn
    >>> tracenn.nn.LPPool2d(1, 2)(tracenn.ones(1, 1, 4, 4))
    tensor([[[[4., 4.],
              [4., 4.]]]])
    """

    _nd = 2


class LPPool3d(_LPPoolNd):
    r"""3-D power-average pooling (see :class:`LPPool1d`).

    Args:
        norm_type, kernel_size, stride, ceil_mode: as :class:`LPPool1d`, with triples.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: each size :math:`\lfloor (n - k) / s \rfloor + 1`.

    >>> import tracenn
    >>> tracenn.nn.LPPool3d(2, 2)(tracenn.ones(1, 2, 2, 2)).flatten()
    tensor([2.8284])
    """

    _nd = 3


class _AdaptiveMaxPoolNd(Module):
    __constants__ = ["output_size", "return_indices"]
    _nd = 0

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor):
        return _pool._adaptive_max(self, self._nd, input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    r"""1-D adaptive max pooling: ``output_size`` windows that tile the input, the max of each.

    Window :math:`i` covers :math:`[\lfloor iL/O \rfloor, \lceil (i+1)L/O \rceil)`.

    Args:
        output_size: the output length :math:`O`.
        return_indices: also return the position of each max.

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`.
        - Output: :math:`(N, C, O)` or :math:`(C, O)`.

    >>> import tracenn
    >>> m = tracenn.nn.AdaptiveMaxPool1d(2)
    >>> m
    AdaptiveMaxPool1d(output_size=2)
    >>> m(tracenn.tensor([[1., 5., 3., 4., 2.]]))
    tensor([[5., 4.]])
    """

    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    r"""2-D adaptive max pooling (see :class:`AdaptiveMaxPool1d`).

    Args:
        output_size: an int, a pair, or a pair with ``None`` (keep that input size).
        return_indices: also return the flat :math:`H W` position of each max.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`.

    >>> import tracenn
    >>> tracenn.nn.AdaptiveMaxPool2d((5, None))(tracenn.zeros(1, 64, 10, 9)).shape
    tracenn.Size([1, 64, 5, 9])
    """

    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    r"""3-D adaptive max pooling (see :class:`AdaptiveMaxPool1d`).

    Args:
        output_size: an int, a triple, or a triple with ``None`` entries.
        return_indices: also return the flat :math:`D H W` position of each max.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: the spatial dims replaced by ``output_size``.

    >>> import tracenn
    >>> tracenn.nn.AdaptiveMaxPool3d(1)(tracenn.zeros(2, 3, 3, 3)).shape
    tracenn.Size([2, 1, 1, 1])
    """

    _nd = 3


class _AdaptiveAvgPoolNd(Module):
    __constants__ = ["output_size"]
    _nd = 0

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Tensor:
        return _pool._adaptive_avg(self, self._nd, input, self.output_size)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    r"""1-D adaptive average pooling: ``output_size`` windows that tile the input, averaged.

    Window :math:`i` covers :math:`[\lfloor iL/O \rfloor, \lceil (i+1)L/O \rceil)`.

    Args:
        output_size: the output length :math:`O`.

    Shape:
        - Input: :math:`(N, C, L)` or :math:`(C, L)`.
        - Output: :math:`(N, C, O)` or :math:`(C, O)`.

    >>> import tracenn
    >>> m = tracenn.nn.AdaptiveAvgPool1d(2)
    >>> m
    AdaptiveAvgPool1d(output_size=2)
    >>> m(tracenn.tensor([[1., 2., 3., 4., 5.]]))
    tensor([[2., 4.]])
    """

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    r"""2-D adaptive average pooling (see :class:`AdaptiveAvgPool1d`); ``(1, 1)`` is global pooling.

    Args:
        output_size: an int, a pair, or a pair with ``None`` (keep that input size).

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`.

    >>> import tracenn
    >>> tracenn.nn.AdaptiveAvgPool2d((1, 1))(tracenn.arange(8.).reshape(1, 2, 2, 2)).flatten()
    tensor([1.5000, 5.5000])
    """

    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    r"""3-D adaptive average pooling (see :class:`AdaptiveAvgPool1d`).

    Args:
        output_size: an int, a triple, or a triple with ``None`` entries.

    Shape:
        - Input: :math:`(N, C, D, H, W)` or :math:`(C, D, H, W)`.
        - Output: the spatial dims replaced by ``output_size``.

    >>> import tracenn
    >>> tracenn.nn.AdaptiveAvgPool3d((5, 7, 9))(tracenn.zeros(1, 2, 10, 9, 8)).shape
    tracenn.Size([1, 2, 5, 7, 9])
    """

    _nd = 3


class _FractionalMaxPoolNd(Module):
    __constants__ = ["kernel_size", "return_indices", "output_size", "output_ratio"]
    _nd = 0

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None) -> None:
        super().__init__()
        nd, name = self._nd, type(self).__name__
        if nd == 3 and ((isinstance(kernel_size, int) and kernel_size <= 0) or (
                isinstance(kernel_size, (tuple, list)) and not all(k > 0 for k in kernel_size))):
            raise ValueError(f"kernel_size must be greater than 0, but got {kernel_size}")
        self.kernel_size = _ntuple(kernel_size, nd)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        self.output_size = _ntuple(output_size, nd) if output_size is not None else None
        self.output_ratio = _ntuple(output_ratio, nd) if output_ratio is not None else None
        if output_size is None and output_ratio is None:
            raise ValueError(f"{name} requires specifying either an output size, or a pooling ratio")
        if output_size is not None and output_ratio is not None:
            raise ValueError("only one of output_size and output_ratio may be specified")
        if self.output_ratio is not None and not all(0 < r < 1 for r in self.output_ratio):
            raise ValueError(f"output_ratio must be between 0 and 1 (got {output_ratio})")

    def forward(self, input: Tensor):
        out, idx = _pool_fractional._fractional_max_pool(
            self, self._nd, input, self.kernel_size, self.output_size, self.output_ratio, self._random_samples)
        return (out, idx) if self.return_indices else out


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    r"""2-D fractional max pooling: ``kernel_size`` windows at pseudo-random places that give the output
    ``output_size`` (or ``output_ratio`` of the input size); see
    :func:`~tracenn.nn.functional.fractional_max_pool2d`.

    Each call draws new window places from tracenn's generator, unless ``_random_samples``
    (:math:`(N, C, 2)`, registered as a buffer) fixes them.

    Args:
        kernel_size: the window size (an int or a pair).
        output_size: the output's :math:`(H_{out}, W_{out})`, or
        output_ratio: the output size as a fraction of the input size, in (0, 1).
        return_indices: also return the indices of the maxima (for :class:`MaxUnpool2d`).

    Shape:
        - Input: :math:`(N, C, H_{in}, W_{in})` or :math:`(C, H_{in}, W_{in})`.
        - Output: :math:`(N, C, H_{out}, W_{out})` or :math:`(C, H_{out}, W_{out})`.

    >>> import tracenn
    >>> m = tracenn.nn.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5))
    >>> m(tracenn.randn(20, 16, 50, 32)).shape, m
    (tracenn.Size([20, 16, 25, 16]), FractionalMaxPool2d())
    """

    _nd = 2

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None) -> None:
        super().__init__(kernel_size, output_size, output_ratio, return_indices, _random_samples)


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    r"""3-D fractional max pooling; see :class:`FractionalMaxPool2d` (``_random_samples`` is
    :math:`(N, C, 3)`).

    Shape:
        - Input: :math:`(N, C, T_{in}, H_{in}, W_{in})` or :math:`(C, T_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C, T_{out}, H_{out}, W_{out})` or :math:`(C, T_{out}, H_{out}, W_{out})`.

    >>> import tracenn
    >>> tracenn.nn.FractionalMaxPool3d(3, output_size=(13, 12, 11))(tracenn.randn(2, 4, 20, 16, 14)).shape
    tracenn.Size([2, 4, 13, 12, 11])
    """

    _nd = 3

    def __init__(self, kernel_size, output_size=None, output_ratio=None, return_indices: bool = False,
                 _random_samples=None) -> None:
        super().__init__(kernel_size, output_size, output_ratio, return_indices, _random_samples)
