"""Activations: relu, relu6, elu, selu, celu, gelu, silu, mish, leaky_relu, prelu, rrelu, threshold,
hardtanh, hardswish, hardsigmoid, hard/soft/tanh shrink, logsigmoid, softplus, softsign, glu and the
softmax family (with ``gumbel_softmax``).

Every function is a composite of primitives, so it differentiates, traces and lowers for free. Two
rules shape the formulas:

- **torch's gradient at the kinks.** A piecewise function's gradient at a breakpoint is torch's
  (``hardtanh``/``relu6``/``hardsigmoid`` pass none at their bounds, ``elu`` uses its negative branch
  at 0), so the selects below are written with the comparison torch's kernel uses.
- **No inf in a discarded branch.** ``where`` sends a zero cotangent to the branch it drops, but
  ``0 * inf`` is NaN: a branch that would overflow (``exp`` of a large input) is fed a clamped input.

``inplace=True`` computes out of place and rebinds the input (``Tensor._set_``), as every in-place
method does; it returns the input, as torch.
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from ... import random as _random
from ..._api import math as _math, reduce as _reduce, shape as _shape
from ...autograd.graph import SEQ as _NODE_SEQ
from ...errors import DtypeError, ShapeError
from ...tensor import Tensor, _wrap_dim

__all__ = ["threshold", "threshold_", "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "elu", "elu_",
           "selu", "selu_", "celu", "celu_", "gelu", "silu", "mish", "hardswish", "hardsigmoid",
           "leaky_relu", "leaky_relu_", "prelu", "rrelu", "rrelu_", "hardshrink", "softshrink",
           "tanhshrink", "logsigmoid", "softplus", "softsign", "sigmoid", "tanh", "glu", "softmax",
           "softmin", "log_softmax", "gumbel_softmax"]

# torch's SELU constants (Klambauer et al., 2017), as its kernel spells them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _result(input: Tensor, inplace: bool, name: str, fn, *args) -> Tensor:
    """``fn(input, *args)``, or — for ``inplace=True`` — ``input`` rebound to it (torch returns the input).

    The in-place op's nodes are all those made while ``fn`` runs (``since``), not just the last one:
    a composite such as ``elu`` saves ``input`` in an inner node, and rebinding ``input`` must not
    invalidate that record (the node holds the old value, as torch's in-place kernels save it).
    """
    if not inplace:
        return fn(input, *args)
    since = _NODE_SEQ[0]
    return input._set_(fn(input, *args), name, since)


def _floating(input: Tensor, kernel: str, name: str) -> None:
    """torch has no integer kernel for these activations: refuse with its message, and say why."""
    if input._value.dtype.kind not in "fcV":
        raise DtypeError(f"\"{kernel}\" not implemented for '{_math._torch_name(input._value.dtype)}': "
                         f"{name} takes floating-point tensors; convert first, e.g. x.float()")


def _opmath(fn):
    """Compute a composite in float32 for float16/bfloat16 inputs and round once at the end, as
    torch's kernels do (each primitive of the composite would otherwise round to 8 or 11 bits)."""
    @functools.wraps(fn)
    def wrapped(input, *args):
        dt = input._value.dtype
        if dt.itemsize >= 4 or dt.kind not in "fV":
            return fn(input, *args)
        return _math._cast(fn(_math._cast(input, np.dtype(np.float32)), *args), dt)
    return wrapped


# ---- rectifiers and clamps ------------------------------------------------------------------------

def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    r"""``input`` where it is greater than ``threshold``, else ``value``.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.threshold(tracenn.tensor([-1.0, 0.5, 2.0]), 0.5, 9.0)
    tensor([9., 9., 2.])
    """
    return _result(input, inplace, "threshold_", _threshold_out, threshold, value)


def _threshold_out(input: Tensor, threshold: float, value: float) -> Tensor:
    return _math.where(_math.gt(input, threshold), input, value)


_threshold = threshold  # (the argument named ``threshold`` hides the function inside threshold_)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold`."""
    return _threshold(input, threshold, value, inplace=True)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Applies the rectified linear unit function element-wise: :math:`\max(0, x)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.relu(tracenn.tensor([-1.0, 2.0]))
    tensor([0., 2.])
    """
    if inplace:
        return input.relu_()
    return _math.relu(input)


def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`."""
    return input.relu_()


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:
    r"""Clamp to ``[min_val, max_val]``; no gradient flows at or beyond the bounds (torch's rule).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.hardtanh(tracenn.tensor([-2.0, 0.5, 2.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _result(input, inplace, "hardtanh_", _hardtanh, min_val, max_val)


def _hardtanh(input: Tensor, min_val: float, max_val: float) -> Tensor:
    if input._value.dtype.kind in "iu":  # torch keeps the integer dtype (bounds cast to it)
        return _math.clamp(input, int(min_val), int(max_val))
    # Two selects, not clamp: clamp passes the gradient at a bound, hardtanh does not.
    return _math.where(_math.le(input, min_val), min_val, _math.where(_math.ge(input, max_val), max_val, input))


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`\min(\max(0, x), 6)` (``hardtanh(x, 0, 6)``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.relu6(tracenn.tensor([-1.0, 3.0, 7.0]))
    tensor([0., 3., 6.])
    """
    return hardtanh(input, 0.0, 6.0, inplace)


@_opmath
def _elu(input: Tensor, alpha: float, scale: float, input_scale: float) -> Tensor:
    """torch's ELU kernel: ``x * scale`` for x > 0, else ``expm1(x * input_scale) * alpha * scale``."""
    neg = _math.clamp(input, max=0.0)  # exp of a large positive x would be inf in the dropped branch
    if input_scale != 1:
        neg = neg * input_scale
    neg = _math.expm1(neg) * (alpha * scale)
    pos = input if scale == 1 else input * scale
    return _math.where(_math.gt(input, 0), pos, neg)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.elu(tracenn.tensor([-1.0, 0.0, 2.0]))
    tensor([-0.6321,  0.0000,  2.0000])
    """
    _floating(input, "elu_cpu", "elu")
    return _result(input, inplace, "elu_", _elu, alpha, 1.0, 1.0)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    r"""Scaled ELU: :math:`\text{scale} \cdot \text{elu}(x, \alpha)` with torch's constants
    (:math:`\alpha \approx 1.6733`, :math:`\text{scale} \approx 1.0507`).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.selu(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 1.0507])
    """
    _floating(input, "elu_cpu", "selu")
    return _result(input, inplace, "selu_", _elu, _SELU_ALPHA, _SELU_SCALE, 1.0)


def selu_(input: Tensor) -> Tensor:
    """In-place :func:`selu`."""
    return selu(input, inplace=True)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    r""":math:`\max(0, x) + \min(0, \alpha (e^{x/\alpha} - 1))`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.celu(tracenn.tensor([-1.0, 2.0]), alpha=2.0)
    tensor([-0.7869,  2.0000])
    """
    _floating(input, "elu_cpu", "celu")
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: celu's alpha must not be 0 (it divides the input)")
    return _result(input, inplace, "celu_", _elu, alpha, 1.0, 1.0 / alpha)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`celu`."""
    return celu(input, alpha, inplace=True)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`\text{negative\_slope} \cdot x`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.leaky_relu(tracenn.tensor([-2.0, 3.0]), 0.1)
    tensor([-0.2000,  3.0000])
    """
    _floating(input, "leaky_relu_cpu", "leaky_relu")
    return _result(input, inplace, "leaky_relu_", _leaky_relu, negative_slope)


def _leaky_relu(input: Tensor, slope) -> Tensor:
    """``slope``: a number or a tensor of slopes (rrelu's draw)."""
    return _math.where(_math.gt(input, 0), input, input * slope)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, inplace=True)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    r""":math:`x` for :math:`x > 0`, else :math:`a x` with a learned slope ``weight``: one value, or
    one per channel (dim 1 of the input).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.prelu(tracenn.tensor([[-1.0, 2.0], [-4.0, -1.0]]), tracenn.tensor([0.5, 0.25]))
    tensor([[-0.5000,  2.0000],
            [-2.0000, -0.2500]])
    """
    if weight.ndim > 1:
        raise ShapeError(f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {weight.ndim}")
    n = weight.numel()
    if n == 1:
        w = _shape.reshape(weight, ())
    else:
        channels = input.shape[1] if input.ndim >= 2 else 1
        if n != channels:
            raise ShapeError(
                f"Mismatch of parameter numbers and input channel size. Found parameter numbers = {n} "
                f"and channel size = {channels}. Make num_parameters 1 or the size of dim 1 of the input.")
        w = _shape.reshape(weight, (n,) + (1,) * (input.ndim - 2))
    return _math.where(_math.gt(input, 0), input, w * input)


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    r"""Randomized leaky ReLU: in training, each negative element is scaled by a slope drawn from
    :math:`\mathcal{U}(\text{lower}, \text{upper})` (tracenn's generator); in eval, by their mean.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.rrelu(tracenn.tensor([-3.0, 1.0]), 0.1, 0.3)
    tensor([-0.6000,  1.0000])
    """
    if lower > upper:
        raise RuntimeError(f"Lower bound should be less than or equal to the upper bound (got lower={lower}, "
                           f"upper={upper})")
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    _floating(input, "rrelu_with_noise_cpu", "rrelu")
    slope = _random._draw("uniform", tuple(input.shape), input.dtype, (float(lower), float(upper)), None,
                          _random.like_device(input))
    return _result(input, inplace, "rrelu_", _leaky_relu, slope)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False) -> Tensor:
    """In-place :func:`rrelu`."""
    return rrelu(input, lower, upper, training, inplace=True)


# ---- smooth activations ---------------------------------------------------------------------------

def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    r"""Gaussian error linear unit: :math:`x \Phi(x)`; ``approximate='tanh'`` uses
    :math:`0.5x(1 + \tanh(\sqrt{2/\pi}(x + 0.044715x^3)))`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.gelu(tracenn.tensor([-1.0, 0.0, 1.0]))
    tensor([-0.1587,  0.0000,  0.8413])
    """
    _floating(input, "GeluKernelImpl", "gelu")
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh. (got {approximate!r})")
    return _gelu(input, approximate)


@_opmath
def _gelu(x: Tensor, approximate: str) -> Tensor:
    if approximate == "none":
        return x * 0.5 * (_math.erf(x * math.sqrt(0.5)) + 1)
    inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
    return x * 0.5 * (_math.tanh(inner) + 1)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`x \sigma(x)` (also called swish).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.silu(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 0.7311])
    """
    _floating(input, "silu_cpu", "silu")
    return _result(input, inplace, "silu_", _silu)


@_opmath
def _silu(x: Tensor) -> Tensor:
    return x * _math.sigmoid(x)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`x \tanh(\text{softplus}(x))`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.mish(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 0.8651])
    """
    _floating(input, "mish_cpu", "mish")
    return _result(input, inplace, "mish_", _mish)


@_opmath
def _mish(x: Tensor) -> Tensor:
    return x * _math.tanh(_softplus(x, 1.0, 20.0))


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`\text{relu6}(x + 3) / 6`; the gradient is 1/6 strictly inside (-3, 3), else 0.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.hardsigmoid(tracenn.tensor([-4.0, 0.0, 1.5, 4.0]))
    tensor([0.0000, 0.5000, 0.7500, 1.0000])
    """
    _floating(input, "hardsigmoid_cpu", "hardsigmoid")
    return _result(input, inplace, "hardsigmoid_", _hardsigmoid)


@_opmath
def _hardsigmoid(x: Tensor) -> Tensor:
    # relu's gradient is 0 at 0 (x = -3) and the select drops it from 3 up: torch's open interval.
    return _math.where(_math.ge(x, 3.0), 1.0, _math.relu(x + 3.0) / 6.0)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    r""":math:`x \cdot \text{hardsigmoid}(x)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.hardswish(tracenn.tensor([-1.5, 1.5, 4.0]))
    tensor([-0.3750,  1.1250,  4.0000])
    """
    _floating(input, "hardswish_cpu", "hardswish")
    return _result(input, inplace, "hardswish_", _hardswish)


@_opmath
def _hardswish(x: Tensor) -> Tensor:
    return x * _hardsigmoid(x)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    r""":math:`x` where :math:`|x| > \lambda`, else 0.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.hardshrink(tracenn.tensor([-1.0, 0.25, 0.75]))
    tensor([-1.0000,  0.0000,  0.7500])
    """
    _floating(input, "hardshrink_cpu", "hardshrink")
    return _math.where(_math.gt(_math.abs(input), lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    r""":math:`x - \lambda` above :math:`\lambda`, :math:`x + \lambda` below :math:`-\lambda`, else 0.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.softshrink(tracenn.tensor([-1.0, 0.25, 0.75]))
    tensor([-0.5000,  0.0000,  0.2500])
    """
    if lambd < 0:
        raise RuntimeError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    _floating(input, "softshrink_cpu", "softshrink")
    # x - clamp(x): the clamp passes the gradient at the bounds, so the difference has none there.
    return input - _math.clamp(input, -lambd, lambd)


def tanhshrink(input: Tensor) -> Tensor:
    r""":math:`x - \tanh(x)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.tanhshrink(tracenn.tensor([0.0, 1.0]))
    tensor([0.0000, 0.2384])
    """
    return input - _math.tanh(input)


def softsign(input: Tensor) -> Tensor:
    r""":math:`x / (1 + |x|)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.softsign(tracenn.tensor([-1.0, 3.0]))
    tensor([-0.5000,  0.7500])
    """
    return input / (_math.abs(input) + 1)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    r""":math:`\frac{1}{\beta}\log(1 + e^{\beta x})`, and :math:`x` itself where :math:`\beta x >
    \text{threshold}` (torch's switch to the linear function for numerical stability).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.softplus(tracenn.tensor([0.0, 30.0]))
    tensor([ 0.6931, 30.0000])
    """
    _floating(input, "softplus_cpu", "softplus")
    return _softplus(input, beta, threshold)


@_opmath
def _softplus(x: Tensor, beta: float, threshold: float) -> Tensor:
    bx = x if beta == 1 else x * beta
    soft = _math.log1p(_math.exp(_math.clamp(bx, max=threshold)))  # clamped: no inf where x is used
    if beta != 1:
        soft = soft / beta
    return _math.where(_math.gt(bx, threshold), x, soft)


def logsigmoid(input: Tensor) -> Tensor:
    r""":math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`, stable for inputs of any size.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.logsigmoid(tracenn.tensor([-200.0, 0.0]))
    tensor([-200.0000,   -0.6931])
    """
    _floating(input, "log_sigmoid_cpu", "logsigmoid")
    return _logsigmoid(input)


@_opmath
def _logsigmoid(x: Tensor) -> Tensor:
    # -|x| and min(x, 0) as selects on one mask, so that x = 0 takes the x >= 0 branch in both and
    # the gradient there is sigma(-0) = 0.5 (abs's gradient at 0 is 0, which would give 1).
    neg = _math.lt(x, 0)
    minus_abs = _math.where(neg, x, -x)
    return _math.where(neg, x, 0.0) - _math.log1p(_math.exp(minus_abs))


def sigmoid(input: Tensor) -> Tensor:
    r""":math:`1 / (1 + e^{-x})` (``tracenn.sigmoid``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.sigmoid(tracenn.zeros(1))
    tensor([0.5000])
    """
    return _math.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    r"""The hyperbolic tangent (``tracenn.tanh``).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.tanh(tracenn.zeros(1))
    tensor([0.])
    """
    return _math.tanh(input)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    r"""Gated linear unit: split ``input`` in halves :math:`a, b` along ``dim``; :math:`a \otimes \sigma(b)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.glu(tracenn.tensor([[1.0, 2.0, 0.0, 0.0]]))
    tensor([[0.5000, 1.0000]])
    """
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    d = _wrap_dim(dim, input.ndim)
    n = input.shape[d]
    if n % 2:
        raise ShapeError(f"Halving dimension must be even, but dimension {d} is size {n}")
    return _shape.narrow(input, d, 0, n // 2) * _math.sigmoid(_shape.narrow(input, d, n // 2, n // 2))


# ---- the softmax family ---------------------------------------------------------------------------

def _softmax_dim(name: str, ndim: int, stacklevel: int) -> int:
    """torch's deprecated implicit dim: 0 for 0-, 1- and 3-d inputs, else 1 (with its warning)."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    r""":math:`e^{x_i} / \sum_j e^{x_j}` along ``dim`` (``dtype`` casts the input first).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.softmax(tracenn.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    if dim is None:
        dim = _softmax_dim("softmax", input.ndim, _stacklevel)
    return _reduce.softmax(input, dim, dtype=dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    r"""``softmax(-input)`` along ``dim``.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.softmin(tracenn.tensor([0.0, 0.0]), dim=0)
    tensor([0.5000, 0.5000])
    """
    if dim is None:
        dim = _softmax_dim("softmin", input.ndim, _stacklevel)
    return _reduce.softmin(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    r""":math:`x_i - \log \sum_j e^{x_j}` along ``dim``, computed stably.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.log_softmax(tracenn.tensor([0.0, 0.0]), dim=0)
    tensor([-0.6931, -0.6931])
    """
    if dim is None:
        dim = _softmax_dim("log_softmax", input.ndim, _stacklevel)
    return _reduce.log_softmax(input, dim, dtype=dtype)


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1) -> Tensor:
    r"""A sample of the Gumbel-softmax (concrete) distribution: :math:`\mathrm{softmax}((l + g) / \tau)`
    with Gumbel(0, 1) noise :math:`g = -\log E`, :math:`E \sim \mathrm{Exp}(1)` drawn from tracenn's
    generator (torch's recipe; the stream is tracenn's).

    Args:
        logits: :math:`(*, \text{num\_features})` unnormalized log-probabilities.
        tau: the temperature (> 0).
        hard: return one-hot vectors (the argmax of the soft sample along ``dim``) whose gradient is the
            soft sample's (straight-through).
        eps: deprecated, has no effect.
        dim: the dimension the softmax runs over.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> y = F.gumbel_softmax(tracenn.randn(4, 5), tau=0.5, hard=True)
    >>> y.sum(-1), sorted(set(y.flatten().tolist()))
    (tensor([1., 1., 1., 1.]), [0.0, 1.0])
    """
    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    from ..._api import creation as _creation, index as _index
    gumbels = _math.neg(_math.log(_creation.empty_like(logits).exponential_()))  # ~Gumbel(0, 1)
    gumbels = (logits + gumbels) / tau  # ~Gumbel(logits, tau)
    y_soft = _reduce.softmax(gumbels, dim)
    if not hard:
        return y_soft
    # straight through: the one-hot forward, the soft sample's gradient
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = _index.scatter(_creation.zeros_like(logits), dim, index, value=1.0)
    return y_hard - y_soft.detach() + y_soft
