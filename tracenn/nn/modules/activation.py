"""Activation modules: thin wrappers over ``tracenn.nn.functional`` with torch's constructor
arguments, attributes and ``repr`` (``extra_repr`` strings copied from torch).

``MultiheadAttention`` lives in ``attention.py``.
"""
from __future__ import annotations

import warnings

from ..._api import math as _math
from ..._api.creation import empty
from ...tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter
from .module import Module

__all__ = ["Threshold", "ReLU", "RReLU", "Hardtanh", "ReLU6", "Sigmoid", "Hardsigmoid", "Tanh", "SiLU",
           "Mish", "Hardswish", "ELU", "CELU", "SELU", "GLU", "GELU", "Hardshrink", "LeakyReLU",
           "LogSigmoid", "Softplus", "Softshrink", "PReLU", "Softsign", "Tanhshrink", "Softmin",
           "Softmax", "Softmax2d", "LogSoftmax"]


def _inplace_repr(inplace: bool, first: bool = False) -> str:
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class Threshold(Module):
    r"""``input`` where it is greater than ``threshold``, else ``value``.

    >>> import tracenn
    >>> m = tracenn.nn.Threshold(0.1, 20.0)
    >>> m(tracenn.tensor([0.0, 0.5])), m
    (tensor([20.0000,  0.5000]), Threshold(threshold=0.1, value=20.0))
    """

    __constants__ = ["threshold", "value", "inplace"]

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace_repr(self.inplace)}"


class ReLU(Module):
    r"""Applies the rectified linear unit function element-wise: :math:`\max(0, x)`.

    Args:
        inplace: do the operation in place (default: False).

    >>> import tracenn
    >>> m = tracenn.nn.ReLU()
    >>> m(tracenn.tensor([-1.0, 0.0, 2.0]))
    tensor([0., 0., 2.])
    >>> tracenn.nn.ReLU(inplace=True)
    ReLU(inplace=True)
    """

    __constants__ = ["inplace"]
    inplace: bool

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class RReLU(Module):
    r"""Randomized leaky ReLU: negative inputs are scaled by a slope drawn from
    :math:`\mathcal{U}(\text{lower}, \text{upper})` in training mode, by its mean in eval mode.

    >>> import tracenn
    >>> m = tracenn.nn.RReLU(0.1, 0.3).eval()
    >>> m(tracenn.tensor([-1.0, 2.0])), m
    (tensor([-0.2000,  2.0000]), RReLU(lower=0.1, upper=0.3))
    """

    __constants__ = ["lower", "upper", "inplace"]

    def __init__(self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False) -> None:
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace_repr(self.inplace)}"


class Hardtanh(Module):
    r"""Clamp to ``[min_val, max_val]`` (no gradient at or beyond the bounds).

    >>> import tracenn
    >>> m = tracenn.nn.Hardtanh(-2, 2)
    >>> m(tracenn.tensor([-3.0, 1.0])), m
    (tensor([-2.,  1.]), Hardtanh(min_val=-2, max_val=2))
    """

    __constants__ = ["min_val", "max_val", "inplace"]

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False,
                 min_value: float | None = None, max_value: float | None = None) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`",
                          FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`",
                          FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise AssertionError(f"max_val ({self.max_val}) must be greater than min_val ({self.min_val})")

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_repr(self.inplace)}"


class ReLU6(Hardtanh):
    r""":math:`\min(\max(0, x), 6)`.

    >>> import tracenn
    >>> tracenn.nn.ReLU6()(tracenn.tensor([-1.0, 7.0]))
    tensor([0., 6.])
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Sigmoid(Module):
    r"""Applies :math:`\sigma(x) = 1 / (1 + e^{-x})` element-wise.

    >>> import tracenn
    >>> tracenn.nn.Sigmoid()(tracenn.zeros(2))
    tensor([0.5000, 0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _math.sigmoid(input)


class Hardsigmoid(Module):
    r""":math:`\text{relu6}(x + 3) / 6`.

    >>> import tracenn
    >>> tracenn.nn.Hardsigmoid()(tracenn.tensor([-4.0, 0.0, 4.0]))
    tensor([0.0000, 0.5000, 1.0000])
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardsigmoid(input, self.inplace)


class Tanh(Module):
    r"""Applies the hyperbolic tangent element-wise.

    >>> import tracenn
    >>> tracenn.nn.Tanh()(tracenn.zeros(2))
    tensor([0., 0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return _math.tanh(input)


class SiLU(Module):
    r""":math:`x \sigma(x)`.

    >>> import tracenn
    >>> tracenn.nn.SiLU()(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 0.7311])
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Mish(Module):
    r""":math:`x \tanh(\text{softplus}(x))`.

    >>> import tracenn
    >>> tracenn.nn.Mish()(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 0.8651])
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input, inplace=self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Hardswish(Module):
    r""":math:`x \cdot \text{relu6}(x + 3) / 6`.

    >>> import tracenn
    >>> tracenn.nn.Hardswish()(tracenn.tensor([-1.5, 4.0]))
    tensor([-0.3750,  4.0000])
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardswish(input, self.inplace)


class ELU(Module):
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    >>> import tracenn
    >>> m = tracenn.nn.ELU(alpha=0.5)
    >>> m(tracenn.tensor([-1.0, 1.0])), m
    (tensor([-0.3161,  1.0000]), ELU(alpha=0.5))
    """

    __constants__ = ["alpha", "inplace"]

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class CELU(Module):
    r""":math:`\max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    >>> import tracenn
    >>> m = tracenn.nn.CELU()
    >>> m(tracenn.tensor([-1.0, 1.0])), m
    (tensor([-0.6321,  1.0000]), CELU(alpha=1.0))
    """

    __constants__ = ["alpha", "inplace"]

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class SELU(Module):
    r"""Scaled ELU with torch's constants (self-normalising networks).

    >>> import tracenn
    >>> tracenn.nn.SELU()(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 1.0507])
    """

    __constants__ = ["inplace"]

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class GLU(Module):
    r"""Gated linear unit: :math:`a \otimes \sigma(b)` for the two halves of the input along ``dim``.

    Shape:
        - Input: :math:`(*_1, N, *_2)`; Output: :math:`(*_1, N/2, *_2)`.

    >>> import tracenn
    >>> m = tracenn.nn.GLU()
    >>> m(tracenn.tensor([[2.0, 0.0]])), m
    (tensor([[1.]]), GLU(dim=-1))
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    r"""Gaussian error linear unit; ``approximate='tanh'`` uses the tanh approximation.

    >>> import tracenn
    >>> m = tracenn.nn.GELU(approximate="tanh")
    >>> m(tracenn.tensor([0.0, 1.0])), m
    (tensor([0.0000, 0.8412]), GELU(approximate='tanh'))
    """

    __constants__ = ["approximate"]

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Hardshrink(Module):
    r""":math:`x` where :math:`|x| > \lambda`, else 0.

    >>> import tracenn
    >>> m = tracenn.nn.Hardshrink()
    >>> m(tracenn.tensor([0.25, 1.0])), m
    (tensor([0., 1.]), Hardshrink(0.5))
    """

    __constants__ = ["lambd"]

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return F.hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class LeakyReLU(Module):
    r""":math:`x` for :math:`x > 0`, else :math:`\text{negative\_slope} \cdot x`.

    >>> import tracenn
    >>> m = tracenn.nn.LeakyReLU(0.1)
    >>> m(tracenn.tensor([-1.0, 1.0])), m
    (tensor([-0.1000,  1.0000]), LeakyReLU(negative_slope=0.1))
    """

    __constants__ = ["inplace", "negative_slope"]

    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_repr(self.inplace)}"


class LogSigmoid(Module):
    r""":math:`\log \sigma(x)`, stable for large inputs of either sign.

    >>> import tracenn
    >>> tracenn.nn.LogSigmoid()(tracenn.tensor([0.0]))
    tensor([-0.6931])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softplus(Module):
    r""":math:`\frac{1}{\beta}\log(1 + e^{\beta x})`; linear where :math:`\beta x > \text{threshold}`.

    >>> import tracenn
    >>> m = tracenn.nn.Softplus()
    >>> m(tracenn.tensor([0.0])), m
    (tensor([0.6931]), Softplus(beta=1.0, threshold=20.0))
    """

    __constants__ = ["beta", "threshold"]

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softshrink(Module):
    r"""Shrink toward zero by :math:`\lambda` (0 inside :math:`[-\lambda, \lambda]`).

    >>> import tracenn
    >>> m = tracenn.nn.Softshrink()
    >>> m(tracenn.tensor([0.25, 1.0])), m
    (tensor([0.0000, 0.5000]), Softshrink(0.5))
    """

    __constants__ = ["lambd"]

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class PReLU(Module):
    r""":math:`x` for :math:`x > 0`, else :math:`a x` with a learned slope :math:`a`.

    Args:
        num_parameters: 1 (one slope shared by all channels) or the number of input channels
            (dim 1 of the input).
        init: the initial value of every slope.

    Attributes:
        weight: shape ``(num_parameters,)``, filled with ``init``.

    >>> import tracenn
    >>> m = tracenn.nn.PReLU(num_parameters=2)
    >>> m(tracenn.tensor([[-4.0, 1.0]])), m
    (tensor([[-1.,  1.]], grad_fn=<WhereBackward0>), PReLU(num_parameters=2))
    """

    __constants__ = ["num_parameters"]

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None) -> None:
        self.num_parameters = num_parameters
        super().__init__()
        self.init = init
        self.weight = Parameter(empty(num_parameters, device=device, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fill the slopes with ``init``."""
        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Softsign(Module):
    r""":math:`x / (1 + |x|)`.

    >>> import tracenn
    >>> tracenn.nn.Softsign()(tracenn.tensor([1.0]))
    tensor([0.5000])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(Module):
    r""":math:`x - \tanh(x)`.

    >>> import tracenn
    >>> tracenn.nn.Tanhshrink()(tracenn.tensor([0.0]))
    tensor([0.])
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)


class Softmin(Module):
    r"""``softmax(-x)`` along ``dim``.

    >>> import tracenn
    >>> m = tracenn.nn.Softmin(dim=1)
    >>> m(tracenn.tensor([[0.0, 0.0]])), m
    (tensor([[0.5000, 0.5000]]), Softmin(dim=1))
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state):
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(Module):
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``dim`` (values in [0, 1] that sum to 1).

    >>> import tracenn
    >>> m = tracenn.nn.Softmax(dim=-1)
    >>> m(tracenn.tensor([[0.0, 0.0]])), m
    (tensor([[0.5000, 0.5000]]), Softmax(dim=-1))
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state):
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(Module):
    r"""Softmax over the channels at every spatial location.

    Shape:
        - Input: :math:`(N, C, H, W)` or :math:`(C, H, W)`; Output: the same.

    >>> import tracenn
    >>> tracenn.nn.Softmax2d()(tracenn.zeros(2, 1, 1))
    tensor([[[0.5000]],
    <BLANKLINE>
            [[0.5000]]])
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (3, 4):
            raise ValueError(f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D instead")
        return F.softmax(input, -3, _stacklevel=5)


class LogSoftmax(Module):
    r""":math:`\log(\text{softmax}(x))` along ``dim``, computed stably.

    >>> import tracenn
    >>> m = tracenn.nn.LogSoftmax(dim=1)
    >>> m(tracenn.tensor([[0.0, 0.0]])), m
    (tensor([[-0.6931, -0.6931]]), LogSoftmax(dim=1))
    """

    __constants__ = ["dim"]

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state):
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
