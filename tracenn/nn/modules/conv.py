"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``, with torch's constructor
arguments, attributes, parameter shapes, default initialisation and reprs; and their lazy forms
(``LazyConv1d`` ...), which take ``in_channels`` from the first input.

Errors raised for a bad input name the layer as its repr shows it, e.g.
``Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1)): input of spatial size (2, 2) is smaller than
the kernel (3, 3); ...``.
"""
from __future__ import annotations

import math

from ..._api.creation import empty
from ...tensor import Tensor
from .. import init
from ..functional import _conv, _vision
from ..parameter import Parameter, UninitializedParameter
from .lazy import LazyModuleMixin
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d", "LazyConv1d",
           "LazyConv2d", "LazyConv3d", "LazyConvTranspose1d", "LazyConvTranspose2d", "LazyConvTranspose3d"]

_PADDING_MODES = {"zeros", "reflect", "replicate", "circular"}


def _ntuple(v, n):
    """torch's ``_single``/``_pair``/``_triple``: an iterable becomes a tuple, a scalar repeats."""
    if isinstance(v, (list, tuple)):
        return tuple(v)
    return (v,) * n


class _ConvNd(Module):
    """Shared state of the convolution layers (torch's ``_ConvNd``)."""

    __constants__ = ["stride", "padding", "dilation", "groups", "padding_mode", "output_padding", "in_channels",
                     "out_channels", "kernel_size"]
    _nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed, output_padding,
                 groups, bias, padding_mode, device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        valid_padding_strings = {"same", "valid"}
        if isinstance(padding, str):
            if padding not in valid_padding_strings:
                raise ValueError(f"Invalid padding string {padding!r}, should be one of {valid_padding_strings}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.transposed = transposed
        self.output_padding = output_padding
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's order (last dim first) of this layer's padding, for the non-zeros padding modes.
        if isinstance(self.padding, str):
            self._reversed_padding_repeated_twice = [0, 0] * len(kernel_size)
            if padding == "same":
                for d, k, i in zip(dilation, kernel_size, range(len(kernel_size) - 1, -1, -1)):
                    total_padding = d * (k - 1)
                    left_pad = total_padding // 2
                    self._reversed_padding_repeated_twice[2 * i] = left_pad
                    self._reversed_padding_repeated_twice[2 * i + 1] = total_padding - left_pad
        else:
            self._reversed_padding_repeated_twice = tuple(p for p in reversed(self.padding) for _ in range(2))
        if transposed:
            shape = (in_channels, out_channels // groups, *kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *kernel_size)
        self.weight = Parameter(empty(shape, **factory_kwargs))
        if bias:
            self.bias = Parameter(empty(out_channels, **factory_kwargs))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weight (``kaiming_uniform_(a=sqrt(5))``) and bias (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        s = "{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}"
        if self.padding != (0,) * len(self.padding):
            s += ", padding={padding}"
        if self.dilation != (1,) * len(self.dilation):
            s += ", dilation={dilation}"
        if self.output_padding != (0,) * len(self.output_padding):
            s += ", output_padding={output_padding}"
        if self.groups != 1:
            s += ", groups={groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += ", padding_mode={padding_mode}"
        return s.format(**self.__dict__)

    def __setstate__(self, state):
        super().__setstate__(state)
        if not hasattr(self, "padding_mode"):
            self.padding_mode = "zeros"

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        nd = self._nd
        if self.padding_mode != "zeros":
            padded = _vision._pad(self, input, self._reversed_padding_repeated_twice, self.padding_mode)
            return _conv._conv(self, nd, padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return _conv._conv(self, nd, input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input: Tensor) -> Tensor:
        return self._conv_forward(input, self.weight, self.bias)


class _ConvFactory(_ConvNd):
    """The ``ConvNd(in, out, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
    padding_mode='zeros')`` constructor shared by Conv1d/2d/3d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        n = self._nd
        super().__init__(in_channels, out_channels, _ntuple(kernel_size, n), _ntuple(stride, n),
                         padding if isinstance(padding, str) else _ntuple(padding, n), _ntuple(dilation, n), False,
                         _ntuple(0, n), groups, bias, padding_mode, device=device, dtype=dtype)


class Conv1d(_ConvFactory):
    r"""1-D convolution over an input of shape :math:`(N, C_{in}, L)`.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: the window size (int or 1-tuple).
        stride: window step (default 1).
        padding: an int, a 1-tuple, ``'valid'`` or ``'same'`` (default 0).
        dilation: spacing between kernel elements (default 1).
        groups: independent channel groups; both channel counts must divide by it (default 1).
        bias: learn an additive bias (default ``True``).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: :math:`(N, C_{in}, L_{in})` or :math:`(C_{in}, L_{in})`.
        - Output: :math:`(N, C_{out}, L_{out})`,
          :math:`L_{out} = \lfloor (L_{in} + 2p - d(k - 1) - 1) / s \rfloor + 1`.

    Attributes:
        weight: :math:`(C_{out}, C_{in}/\text{groups}, k)`, from :math:`\mathcal{U}(-\sqrt{b}, \sqrt{b})`,
            :math:`b = \text{groups} / (C_{in} k)` (torch's ``kaiming_uniform_(a=sqrt(5))``).
        bias: :math:`(C_{out})`, from the same distribution.

    >>> import tracenn
    >>> m = tracenn.nn.Conv1d(2, 4, 3, stride=2, padding=1, groups=2)
    >>> m
    Conv1d(2, 4, kernel_size=(3,), stride=(2,), padding=(1,), groups=2)
    >>> m(tracenn.zeros(20, 2, 50)).shape
    tracenn.Size([20, 4, 25])
    """

    _nd = 1


class Conv2d(_ConvFactory):
    r"""2-D convolution over an input of shape :math:`(N, C_{in}, H, W)`.

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel_size, stride, dilation: ints or pairs (defaults: stride 1, dilation 1).
        padding: an int, a pair, ``'valid'`` or ``'same'`` (default 0).
        groups: independent channel groups (default 1).
        bias: learn an additive bias (default ``True``).
        padding_mode: ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: :math:`(N, C_{out}, H_{out}, W_{out})`, each size
          :math:`\lfloor (n + 2p - d(k - 1) - 1) / s \rfloor + 1`.

    Attributes:
        weight: :math:`(C_{out}, C_{in}/\text{groups}, kH, kW)`, from
            :math:`\mathcal{U}(-\sqrt{b}, \sqrt{b})`, :math:`b = \text{groups} / (C_{in} kH kW)`.
        bias: :math:`(C_{out})`, from the same distribution.

    >>> import tracenn
    >>> m = tracenn.nn.Conv2d(2, 4, 3, stride=(2, 1), padding=(4, 2), dilation=(3, 1))
    >>> m
    Conv2d(2, 4, kernel_size=(3, 3), stride=(2, 1), padding=(4, 2), dilation=(3, 1))
    >>> m(tracenn.zeros(2, 2, 10, 12)).shape
    tracenn.Size([2, 4, 6, 14])
    """

    _nd = 2


class Conv3d(_ConvFactory):
    r"""3-D convolution over an input of shape :math:`(N, C_{in}, D, H, W)`.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode:
            as :class:`Conv2d`, with triples.

    Shape:
        - Input: :math:`(N, C_{in}, D, H, W)` or :math:`(C_{in}, D, H, W)`.
        - Output: :math:`(N, C_{out}, D_{out}, H_{out}, W_{out})`, each size as in :class:`Conv2d`.

    Attributes:
        weight: :math:`(C_{out}, C_{in}/\text{groups}, kD, kH, kW)`.
        bias: :math:`(C_{out})`.

    >>> import tracenn
    >>> m = tracenn.nn.Conv3d(2, 4, 3, padding="same", bias=False)
    >>> m
    Conv3d(2, 4, kernel_size=(3, 3, 3), stride=(1, 1, 1), padding=same, bias=False)
    >>> m(tracenn.zeros(2, 5, 5, 5)).shape
    tracenn.Size([4, 5, 5, 5])
    """

    _nd = 3


class _ConvTransposeNd(_ConvNd):
    """Shared state of the transposed convolutions (torch's ``_ConvTransposeNd``)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                 output_padding, groups, bias, padding_mode, device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {self.__class__.__name__}')
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, transposed,
                         output_padding, groups, bias, padding_mode, device=device, dtype=dtype)

    def _output_padding(self, input, output_size, stride, padding, kernel_size, num_spatial_dims,
                        dilation=None) -> list:
        """The output_padding that makes the output ``output_size`` (torch's rule and range check)."""
        if output_size is None:
            return list(_ntuple(self.output_padding, 1))
        has_batch_dim = input.dim() == num_spatial_dims + 2
        num_non_spatial_dims = 2 if has_batch_dim else 1
        output_size = list(output_size)
        if len(output_size) == num_non_spatial_dims + num_spatial_dims:
            output_size = output_size[num_non_spatial_dims:]
        if len(output_size) != num_spatial_dims:
            raise ValueError(f"{_conv._who(self)}: for {input.dim()}D input, output_size must have "
                             f"{num_spatial_dims} or {num_non_spatial_dims + num_spatial_dims} elements "
                             f"(got {len(output_size)})")
        min_sizes, max_sizes = [], []
        for d in range(num_spatial_dims):
            dim_size = ((input.size(d + num_non_spatial_dims) - 1) * stride[d] - 2 * padding[d]
                        + (dilation[d] if dilation is not None else 1) * (kernel_size[d] - 1) + 1)
            min_sizes.append(dim_size)
            max_sizes.append(min_sizes[d] + stride[d] - 1)
        for size, lo, hi in zip(output_size, min_sizes, max_sizes):
            if size < lo or size > hi:
                raise ValueError(f"{_conv._who(self)}: requested an output size of {output_size}, but valid sizes "
                                 f"range from {min_sizes} to {max_sizes} (for an input of "
                                 f"{list(input.shape[num_non_spatial_dims:])})")
        return [output_size[d] - min_sizes[d] for d in range(num_spatial_dims)]

    def forward(self, input: Tensor, output_size: list | None = None) -> Tensor:
        nd = self._nd
        if not (input.ndim in (nd + 1, nd + 2)):
            _conv._batched(self, input, nd)  # raises the rank error naming this layer
        output_padding = self._output_padding(input, output_size, self.stride, self.padding, self.kernel_size, nd,
                                              self.dilation)
        return _conv._conv_transpose(self, nd, input, self.weight, self.bias, self.stride, self.padding,
                                     output_padding, self.groups, self.dilation)


class _ConvTransposeFactory(_ConvTransposeNd):
    """The ``ConvTransposeNd(in, out, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
    bias=True, dilation=1, padding_mode='zeros')`` constructor shared by ConvTranspose1d/2d/3d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 groups: int = 1, bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        n = self._nd
        super().__init__(in_channels, out_channels, _ntuple(kernel_size, n), _ntuple(stride, n), _ntuple(padding, n),
                         _ntuple(dilation, n), True, _ntuple(output_padding, n), groups, bias, padding_mode,
                         device=device, dtype=dtype)


class ConvTranspose1d(_ConvTransposeFactory):
    r"""1-D transposed convolution ("deconvolution"): the gradient of :class:`Conv1d` w.r.t. its input.

    Args:
        in_channels, out_channels: channels of the input and output.
        kernel_size, stride, padding, dilation: as the convolution this transposes.
        output_padding: extra size on one side of the output (smaller than stride or dilation);
            ``forward(input, output_size=...)`` picks it for a wanted size instead.
        groups: independent channel groups (default 1).
        bias: learn an additive bias (default ``True``).
        padding_mode: only ``'zeros'``.

    Shape:
        - Input: :math:`(N, C_{in}, L_{in})` or :math:`(C_{in}, L_{in})`.
        - Output: :math:`L_{out} = (L_{in} - 1) s - 2p + d(k - 1) + \text{output\_padding} + 1`.

    Attributes:
        weight: :math:`(C_{in}, C_{out}/\text{groups}, k)` (in-channels first), from
            :math:`\mathcal{U}(-\sqrt{b}, \sqrt{b})`, :math:`b = \text{groups} / (C_{out} k)`.
        bias: :math:`(C_{out})`, from the same distribution.

    >>> import tracenn
    >>> m = tracenn.nn.ConvTranspose1d(2, 4, 3, stride=2, groups=2)
    >>> m
    ConvTranspose1d(2, 4, kernel_size=(3,), stride=(2,), groups=2)
    >>> m(tracenn.zeros(1, 2, 5)).shape, m(tracenn.zeros(1, 2, 5), output_size=[12]).shape
    (tracenn.Size([1, 4, 11]), tracenn.Size([1, 4, 12]))
    """

    _nd = 1


class ConvTranspose2d(_ConvTransposeFactory):
    r"""2-D transposed convolution: the gradient of :class:`Conv2d` w.r.t. its input.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
        dilation, padding_mode: as :class:`ConvTranspose1d`, with pairs.

    Shape:
        - Input: :math:`(N, C_{in}, H_{in}, W_{in})` or :math:`(C_{in}, H_{in}, W_{in})`.
        - Output: each size as in :class:`ConvTranspose1d`.

    Attributes:
        weight: :math:`(C_{in}, C_{out}/\text{groups}, kH, kW)`.
        bias: :math:`(C_{out})`.

    >>> import tracenn
    >>> down = tracenn.nn.Conv2d(2, 4, 3, stride=2, padding=1)
    >>> up = tracenn.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    >>> x = tracenn.zeros(1, 2, 12, 12)
    >>> h = down(x)
    >>> up(h).shape, up(h, output_size=x.size()).shape
    (tracenn.Size([1, 2, 11, 11]), tracenn.Size([1, 2, 12, 12]))
    """

    _nd = 2


class ConvTranspose3d(_ConvTransposeFactory):
    r"""3-D transposed convolution: the gradient of :class:`Conv3d` w.r.t. its input.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, output_padding, groups, bias,
        dilation, padding_mode: as :class:`ConvTranspose1d`, with triples.

    Shape:
        - Input: :math:`(N, C_{in}, D, H, W)` or :math:`(C_{in}, D, H, W)`.
        - Output: each size as in :class:`ConvTranspose1d`.

    Attributes:
        weight: :math:`(C_{in}, C_{out}/\text{groups}, kD, kH, kW)`.
        bias: :math:`(C_{out})`.

    >>> import tracenn
    >>> m = tracenn.nn.ConvTranspose3d(4, 2, 3, stride=2, bias=False)
    >>> m
    ConvTranspose3d(4, 2, kernel_size=(3, 3, 3), stride=(2, 2, 2), bias=False)
    >>> m(tracenn.zeros(4, 1, 2, 2)).shape
    tracenn.Size([2, 3, 5, 5])
    """

    _nd = 3


# ---- lazy convolutions ---------------------------------------------------------------------------

class _LazyConvXdMixin(LazyModuleMixin):
    """``in_channels`` from the first input: materialize ``weight``/``bias`` and initialise them."""

    def reset_parameters(self) -> None:
        if not self.has_uninitialized_params() and self.in_channels != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor, *args, **kwargs) -> None:
        if self.has_uninitialized_params():
            self.in_channels = self._get_in_channels(input)
            if self.in_channels % self.groups != 0:
                raise ValueError("in_channels must be divisible by groups")
            if self.transposed:
                self.weight.materialize((self.in_channels, self.out_channels // self.groups, *self.kernel_size))
            else:
                self.weight.materialize((self.out_channels, self.in_channels // self.groups, *self.kernel_size))
            if self.bias is not None:
                self.bias.materialize((self.out_channels,))
            self.reset_parameters()

    def _get_in_channels(self, input: Tensor) -> int:
        num_spatial_dims = self._get_num_spatial_dims()
        num_dims_no_batch = num_spatial_dims + 1  # +1 for the channels
        num_dims_batch = num_dims_no_batch + 1
        if input.dim() not in (num_dims_no_batch, num_dims_batch):
            raise RuntimeError(f"Expected {num_dims_no_batch}D (unbatched) or {num_dims_batch}D (batched) input to "
                               f"{self.__class__.__name__}, but got input of size: {input.shape}")
        return input.shape[1] if input.dim() == num_dims_batch else input.shape[0]

    def _get_num_spatial_dims(self) -> int:
        return self._nd


class _LazyConvFactory(_LazyConvXdMixin):
    """The ``LazyConvNd(out_channels, kernel_size, ...)`` constructor: ConvNd's without ``in_channels``."""

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, dilation=1, groups: int = 1,
                 bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        # bias=False: no tensor that the placeholders replace at once
        super().__init__(0, 0, kernel_size, stride, padding, dilation, groups, False, padding_mode, **factory_kwargs)
        self.weight = UninitializedParameter(**factory_kwargs)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(**factory_kwargs)


class _LazyConvTransposeFactory(_LazyConvXdMixin):
    """The ``LazyConvTransposeNd(out_channels, kernel_size, ...)`` constructor."""

    def __init__(self, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0, groups: int = 1,
                 bias: bool = True, dilation=1, padding_mode: str = "zeros", device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__(0, 0, kernel_size, stride, padding, output_padding, groups, False, dilation, padding_mode,
                         **factory_kwargs)
        self.weight = UninitializedParameter(**factory_kwargs)
        self.out_channels = out_channels
        if bias:
            self.bias = UninitializedParameter(**factory_kwargs)


class LazyConv1d(_LazyConvFactory, Conv1d):
    r"""A :class:`Conv1d` whose ``in_channels`` is taken from the first input (``input.size(1)``, or
    ``size(0)`` unbatched); the call materializes ``weight``/``bias`` with Conv1d's initialisation and
    the module becomes a :class:`Conv1d`. See :class:`~tracenn.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode: as
            :class:`Conv1d`.

    >>> import tracenn
    >>> m = tracenn.nn.LazyConv1d(4, 3)
    >>> m
    LazyConv1d(0, 4, kernel_size=(3,), stride=(1,))
    >>> m(tracenn.zeros(2, 6, 10)).shape, m.weight.shape
    (tracenn.Size([2, 4, 8]), tracenn.Size([4, 6, 3]))
    >>> type(m).__name__
    'Conv1d'
    """

    cls_to_become = Conv1d


class LazyConv2d(_LazyConvFactory, Conv2d):
    r"""A :class:`Conv2d` whose ``in_channels`` is taken from the first input; see :class:`LazyConv1d`.

    >>> import tracenn
    >>> m = tracenn.nn.LazyConv2d(4, 3, padding=1)
    >>> m(tracenn.zeros(3, 5, 5)).shape, m
    (tracenn.Size([4, 5, 5]), Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)))
    """

    cls_to_become = Conv2d


class LazyConv3d(_LazyConvFactory, Conv3d):
    r"""A :class:`Conv3d` whose ``in_channels`` is taken from the first input; see :class:`LazyConv1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyConv3d(4, 2)(tracenn.zeros(1, 2, 3, 3, 3)).shape
    tracenn.Size([1, 4, 2, 2, 2])
    """

    cls_to_become = Conv3d


class LazyConvTranspose1d(_LazyConvTransposeFactory, ConvTranspose1d):
    r"""A :class:`ConvTranspose1d` whose ``in_channels`` is taken from the first input; the call
    materializes ``weight`` (:math:`(C_{in}, C_{out}/\text{groups}, k)`) and ``bias`` and the module
    becomes a :class:`ConvTranspose1d`. See :class:`LazyConv1d`.

    Args:
        out_channels, kernel_size, stride, padding, output_padding, groups, bias, dilation,
        padding_mode: as :class:`ConvTranspose1d`.

    >>> import tracenn
    >>> m = tracenn.nn.LazyConvTranspose1d(4, 3, stride=2)
    >>> m(tracenn.zeros(1, 2, 5)).shape, m.weight.shape
    (tracenn.Size([1, 4, 11]), tracenn.Size([2, 4, 3]))
    """

    cls_to_become = ConvTranspose1d


class LazyConvTranspose2d(_LazyConvTransposeFactory, ConvTranspose2d):
    r"""A :class:`ConvTranspose2d` whose ``in_channels`` is taken from the first input; see
    :class:`LazyConvTranspose1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyConvTranspose2d(2, 3)(tracenn.zeros(4, 3, 3)).shape
    tracenn.Size([2, 5, 5])
    """

    cls_to_become = ConvTranspose2d


class LazyConvTranspose3d(_LazyConvTransposeFactory, ConvTranspose3d):
    r"""A :class:`ConvTranspose3d` whose ``in_channels`` is taken from the first input; see
    :class:`LazyConvTranspose1d`.

    >>> import tracenn
    >>> tracenn.nn.LazyConvTranspose3d(2, 2)(tracenn.zeros(1, 4, 2, 2, 2)).shape
    tracenn.Size([1, 2, 3, 3, 3])
    """

    cls_to_become = ConvTranspose3d
