"""``Identity``, ``Linear``, ``Bilinear`` and ``LazyLinear``, with torch's parameter names, shapes, init and
reprs."""
from __future__ import annotations

import math
from typing import Any

from ..._api.creation import empty
from ...autograd.grad_mode import no_grad
from ...errors import ShapeError
from ...tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter, UninitializedParameter
from .lazy import LazyModuleMixin
from .module import Module

__all__ = ["Identity", "Linear", "Bilinear", "LazyLinear"]


class Identity(Module):
    r"""A placeholder identity operator; any constructor arguments are ignored.

    >>> import tracenn
    >>> m = tracenn.nn.Identity(54, unused_argument1=0.1)
    >>> m(tracenn.ones(2)), m
    (tensor([1., 1.]), Identity())
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    r"""Applies an affine transformation: :math:`y = xA^T + b`.

    Args:
        in_features: size of each input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias (``self.bias`` is None).

    Shape:
        - Input: :math:`(*, H_{in})`, :math:`H_{in} = \text{in\_features}`.
        - Output: :math:`(*, H_{out})`, :math:`H_{out} = \text{out\_features}`.

    Attributes:
        weight: shape ``(out_features, in_features)``, drawn from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{in\_features}` (torch's
            ``kaiming_uniform_(a=sqrt(5))``), from tracenn's generator.
        bias: shape ``(out_features,)``, drawn from the same distribution.

    >>> import tracenn
    >>> m = tracenn.nn.Linear(20, 30)
    >>> m(tracenn.randn(128, 20)).size()
    tracenn.Size([128, 30])
    >>> m
    Linear(in_features=20, out_features=30, bias=True)
    """

    __constants__ = ["in_features", "out_features"]
    in_features: int
    out_features: int
    weight: Tensor

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in_features), **factory_kwargs))
        if bias:
            self.bias = Parameter(empty(out_features, **factory_kwargs))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from the default distributions."""
        # kaiming_uniform_ with a=sqrt(5) is U(-1/sqrt(in_features), 1/sqrt(in_features)).
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        # One read of self.weight: under nn.utils.spectral_norm each read runs a power iteration.
        weight = self.weight
        if input.dim() == 0 or input.shape[-1] != weight.shape[-1]:
            raise ShapeError(
                f"Linear(in_features={self.in_features}, out_features={self.out_features}): expected input "
                f"with {self.in_features} features in the last dimension, got input of shape "
                f"{tuple(input.shape)}")
        return F.linear(input, weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    r"""Applies a bilinear transformation: :math:`y = x_1^T A x_2 + b`.

    Args:
        in1_features: size of each first input sample.
        in2_features: size of each second input sample.
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias (``self.bias`` is None).

    Shape:
        - Input1: :math:`(*, H_{in1})`; Input2: :math:`(*, H_{in2})`, the same :math:`*`.
        - Output: :math:`(*, H_{out})`.

    Attributes:
        weight: shape ``(out_features, in1_features, in2_features)``, drawn from
            :math:`\mathcal{U}(-\sqrt{k}, \sqrt{k})`, :math:`k = 1/\text{in1\_features}`.
        bias: shape ``(out_features,)``, from the same distribution.

    >>> import tracenn
    >>> m = tracenn.nn.Bilinear(20, 30, 40)
    >>> m(tracenn.randn(128, 20), tracenn.randn(128, 30)).size()
    tracenn.Size([128, 40])
    >>> m
    Bilinear(in1_features=20, in2_features=30, out_features=40, bias=True)
    """

    __constants__ = ["in1_features", "in2_features", "out_features"]
    in1_features: int
    in2_features: int
    out_features: int
    weight: Tensor

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in1_features, in2_features), **factory_kwargs))
        if bias:
            self.bias = Parameter(empty(out_features, **factory_kwargs))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw weight and bias from U(-1/sqrt(in1_features), 1/sqrt(in1_features))."""
        bound = 1 / math.sqrt(self.weight.size(1))
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")


class LazyLinear(LazyModuleMixin, Linear):
    r"""A :class:`Linear` whose ``in_features`` is taken from its first input's last dimension.

    Until the first call, ``weight`` and ``bias`` are :class:`~tracenn.nn.UninitializedParameter`;
    the call materializes them (``(out_features, in_features)`` and ``(out_features,)``), draws
    :class:`Linear`'s default initialisation, and the module becomes a :class:`Linear`. See
    :class:`~tracenn.nn.modules.lazy.LazyModuleMixin`.

    Args:
        out_features: size of each output sample.
        bias: if ``False``, the layer has no additive bias.

    >>> import tracenn
    >>> m = tracenn.nn.LazyLinear(3)
    >>> m, m.weight
    (LazyLinear(in_features=0, out_features=3, bias=True), <UninitializedParameter>)
    >>> m(tracenn.ones(2, 5)).shape, m.weight.shape
    (tracenn.Size([2, 3]), tracenn.Size([3, 5]))
    >>> m
    Linear(in_features=5, out_features=3, bias=True)
    """

    cls_to_become = Linear
    weight: UninitializedParameter
    bias: UninitializedParameter

    def __init__(self, out_features: int, bias: bool = True, device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        # bias=False: no tensor that the placeholders replace at once
        super().__init__(0, 0, False)
        self.weight = UninitializedParameter(**factory_kwargs)
        self.out_features = out_features
        if bias:
            self.bias = UninitializedParameter(**factory_kwargs)

    def reset_parameters(self) -> None:
        """Linear's initialisation, once the parameters have shapes."""
        if not self.has_uninitialized_params() and self.in_features != 0:
            super().reset_parameters()

    def initialize_parameters(self, input: Tensor) -> None:
        """Materialize ``weight``/``bias`` for ``in_features = input.shape[-1]`` and initialise them."""
        if self.has_uninitialized_params():
            with no_grad():
                self.in_features = input.shape[-1]
                self.weight.materialize((self.out_features, self.in_features))
                if self.bias is not None:
                    self.bias.materialize((self.out_features,))
                self.reset_parameters()
        if self.in_features == 0:  # parameters loaded from a state_dict: take in_features from them
            if input.shape[-1] != self.weight.shape[-1]:
                raise AssertionError(f"The in_features inferred from input: {input.shape[-1]} is not equal to "
                                     f"in_features from self.weight: {self.weight.shape[-1]}")
            self.in_features = input.shape[-1]
