"""Normalisation: batch_norm, instance_norm, layer_norm, group_norm, local_response_norm, rms_norm, normalize.

All are composites of reductions and elementwise primitives. Statistics are biased (divide by n) for
normalising, as torch; the running variance that batch/instance norm keep is the unbiased one
(n / (n - 1) times the batch variance). Running statistics are updated in place (``lerp_``) under
``no_grad``, so a module's buffer objects stay the same tensors.
"""
from __future__ import annotations

import numbers
from typing import Sequence

from ... import dtypes as _dt
from ..._api import math as _math, reduce as _reduce, shape as _shape
from ..._dispatch import apply
from ...autograd.grad_mode import no_grad
from ...errors import DtypeError, ShapeError
from ...ops import OPS
from ...tensor import Tensor

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm", "local_response_norm", "rms_norm",
           "normalize"]


def _verify_batch_size(size) -> None:
    n = size[0]
    for s in size[2:]:
        n *= s
    if n == 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size {size}")


def _verify_spatial_size(size) -> None:
    n = 1
    for s in size[2:]:
        n *= s
    if n == 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input size {size}")


def _channel_shape(x: Tensor) -> tuple:
    """(1, C, 1, ..., 1): per-channel vectors broadcast against an (N, C, *) input."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _check_channel_vector(t: Tensor | None, name: str, channels: int) -> None:
    if t is not None and t.numel() != channels:
        raise ShapeError(f"{name} should contain {channels} elements not {t.numel()}")


_HALF = (_dt.bfloat16, _dt.float16)


def _compute_dtype(fn: str, input: Tensor, **others: Tensor | None):
    """The dtype ``fn`` normalises ``input`` in, after torch's check of its parameters' and running
    statistics' dtypes: the input's own, or float32 under a bfloat16/float16 input (torch's mixed
    type). A half-precision input is normalised in float32 and rounded once at the end, as torch's
    CPU kernels accumulate in float."""
    for name, t in others.items():
        if t is not None and t.dtype != input.dtype and not (input.dtype in _HALF and t.dtype == _dt.float32):
            raise DtypeError(f"mixed dtype (CPU): all inputs must share same datatype. {fn} got an input of dtype "
                             f"{input.dtype} and {name} of dtype {t.dtype}: give them one dtype, e.g. "
                             f"module.to({input.dtype}) or input.to({t.dtype})")
    return _dt.float32 if input.dtype in _HALF else input.dtype


def _as(t: Tensor | None, dtype) -> Tensor | None:
    return t if t is None or t.dtype == dtype else t.to(dtype)


def _normalize(x: Tensor, mean: Tensor, var: Tensor, eps: float) -> Tensor:
    """(x - mean) / sqrt(var + eps), with mean and var already broadcastable to x."""
    return _math.mul(_math.sub(x, mean), _math.rsqrt(_math.add(var, eps)))


def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None, shape: tuple | None) -> Tensor:
    if weight is not None:
        out = _math.mul(out, weight if shape is None else _shape.reshape(weight, shape))
    if bias is not None:
        out = _math.add(out, bias if shape is None else _shape.reshape(bias, shape))
    return out


def _update_running(running: Tensor, batch_stat: Tensor, momentum: float) -> None:
    """running <- (1 - momentum) * running + momentum * batch_stat, in place (same tensor object)."""
    with no_grad():
        running.lerp_(batch_stat.detach().to(running.dtype),
                      momentum.to(running.dtype) if isinstance(momentum, Tensor) else float(momentum))


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    r"""Batch normalisation over the channel dimension 1 of an :math:`(N, C, *)` input.

    In training mode the batch's mean and biased variance normalise the input, and
    ``running_mean``/``running_var`` (when given) move towards the batch mean and *unbiased*
    variance by ``momentum``, in place. In eval mode the running statistics normalise.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> x = tracenn.tensor([[1.0, 2.0], [3.0, 6.0]])
    >>> rm, rv = tracenn.zeros(2), tracenn.ones(2)
    >>> F.batch_norm(x, rm, rv, training=True)
    tensor([[-1.0000, -1.0000],
            [ 1.0000,  1.0000]])
    >>> rm, rv
    (tensor([0.2000, 0.4000]), tensor([1.1000, 1.7000]))
    """
    if training:
        _verify_batch_size(list(input.shape))
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    if input.ndim < 2:
        raise ValueError(f"batch_norm expects an input of shape (N, C, *), got shape {list(input.shape)}")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_channel_vector(t, name, channels)
    dtype = _compute_dtype("batch_norm", input, weight=weight, bias=bias, running_mean=running_mean,
                           running_var=running_var)
    shape, x = _channel_shape(input), _as(input, dtype)
    if training:
        dims = (0,) + tuple(range(2, input.ndim))
        mean = _reduce.mean(x, dims)
        var = _reduce.var(x, dims, correction=0)
        if running_mean is not None:
            n = input.numel() // channels
            _update_running(running_mean, mean, momentum)
            _update_running(running_var, _math.mul(var, n / (n - 1)), momentum)
    else:
        if running_mean is None:
            raise RuntimeError("running_mean must be defined in evaluation mode")
        mean, var = _as(running_mean, dtype), _as(running_var, dtype)
    out = _normalize(x, _shape.reshape(mean, shape), _shape.reshape(var, shape), eps)
    return _as(_affine(out, _as(weight, dtype), _as(bias, dtype), shape), input.dtype)


def instance_norm(input: Tensor, running_mean: Tensor | None = None, running_var: Tensor | None = None,
                  weight: Tensor | None = None, bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    r"""Instance normalisation: each (sample, channel) plane of an :math:`(N, C, *)` input is
    normalised by its own mean and biased variance (``use_input_stats=True``), or by the running
    statistics. Given running statistics move towards the mean over the batch of the per-instance
    mean and unbiased variance, in place.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.instance_norm(tracenn.tensor([[[1.0, 3.0], [0.0, 4.0]]]), eps=0.0)
    tensor([[[-1.,  1.],
             [-1.,  1.]]])
    """
    if use_input_stats:
        _verify_spatial_size(list(input.shape))
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or neither be None")
    channels = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        _check_channel_vector(t, name, channels)
    dtype = _compute_dtype("instance_norm", input, weight=weight, bias=bias, running_mean=running_mean,
                           running_var=running_var)
    shape, x = _channel_shape(input), _as(input, dtype)
    if use_input_stats:
        dims = tuple(range(2, input.ndim))
        mean = _reduce.mean(x, dims, keepdim=True)
        var = _reduce.var(x, dims, correction=0, keepdim=True)
        if running_mean is not None:
            n = input.numel() // (input.shape[0] * channels)
            flat = (input.shape[0], channels)
            _update_running(running_mean, _reduce.mean(_shape.reshape(mean, flat), 0), momentum)
            unbiased = _math.mul(_shape.reshape(var, flat), n / (n - 1))
            _update_running(running_var, _reduce.mean(unbiased, 0), momentum)
    else:
        if running_mean is None:
            raise RuntimeError("Expected running_mean and running_var to be defined when use_input_stats is false")
        mean, var = _shape.reshape(_as(running_mean, dtype), shape), _shape.reshape(_as(running_var, dtype), shape)
    return _as(_affine(_normalize(x, mean, var, eps), _as(weight, dtype), _as(bias, dtype), shape), input.dtype)


def _normalized_dims(input: Tensor, normalized_shape, fn: str) -> tuple:
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    ns = tuple(int(s) for s in normalized_shape)
    k = len(ns)
    if k == 0 or input.ndim < k or tuple(input.shape[input.ndim - k:]) != ns:
        sep = ", " if fn == "layer_norm" else ""
        raise ShapeError(f"Given normalized_shape={list(ns)}, expected input with shape "
                         f"[*{sep}{', '.join(map(str, ns))}], but got input of size{list(input.shape)}")
    return ns, tuple(range(input.ndim - k, input.ndim))


def _check_shaped(t: Tensor | None, name: str, ns: tuple) -> None:
    if t is not None and tuple(t.shape) != ns:
        raise ShapeError(f"Expected {name} to be of same shape as normalized_shape, but got {name} of shape "
                         f"{list(t.shape)} and normalized_shape = {list(ns)}")


def layer_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    r"""Layer normalisation over the trailing ``normalized_shape`` dimensions (biased variance).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.layer_norm(tracenn.tensor([[1.0, 3.0], [2.0, 2.0]]), [2], eps=0.0)
    tensor([[-1.,  1.],
            [nan, nan]])
    """
    ns, dims = _normalized_dims(input, normalized_shape, "layer_norm")
    _check_shaped(weight, "weight", ns)
    _check_shaped(bias, "bias", ns)
    dtype = _compute_dtype("layer_norm", input, weight=weight, bias=bias)
    x = _as(input, dtype)
    mean = _reduce.mean(x, dims, keepdim=True)
    var = _reduce.var(x, dims, correction=0, keepdim=True)
    return _as(_affine(_normalize(x, mean, var, eps), _as(weight, dtype), _as(bias, dtype), None), input.dtype)


def rms_norm(input: Tensor, normalized_shape: Sequence[int], weight: Tensor | None = None,
             eps: float | None = None) -> Tensor:
    r"""Root-mean-square normalisation: :math:`x / \sqrt{\mathrm{mean}(x^2) + \epsilon}` over the trailing
    ``normalized_shape`` dimensions, times ``weight``. ``eps=None`` is ``tracenn.finfo(input.dtype).eps``.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.rms_norm(tracenn.tensor([[3.0, 4.0]]), [2], eps=0.0) * (12.5 ** 0.5)
    tensor([[3., 4.]])
    """
    ns, dims = _normalized_dims(input, normalized_shape, "rms_norm")
    _check_shaped(weight, "weight", ns)
    # As torch: a bfloat16/float16 input is normalised in float32 (weight included) and rounded
    # once to its dtype, and eps=None is the eps of that float32 (not bfloat16's 2**-7).
    dtype = _dt.float32 if input.dtype in _HALF else input.dtype
    if eps is None:
        from ... import finfo
        eps = finfo(dtype if input.is_floating_point() else _dt.get_default_dtype()).eps
    x = _as(input, dtype)
    ms = _reduce.mean(_math.square(x), dims, keepdim=True)
    out = _math.mul(x, _math.rsqrt(_math.add(ms, eps)))
    return _as(out if weight is None else _math.mul(out, weight), input.dtype)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    r"""Group normalisation: the channels of an :math:`(N, C, *)` input split into ``num_groups``
    groups, each normalised over its channels and spatial positions; then a per-channel affine.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.group_norm(tracenn.tensor([[1.0, 3.0, 5.0, 5.0]]), 2, eps=0.0)
    tensor([[-1.,  1., nan, nan]])
    """
    if input.ndim < 2:
        raise RuntimeError(f"Expected at least 2 dimensions for input tensor but received {input.ndim}")
    n, c = input.shape[0], input.shape[1]
    if c % num_groups != 0:
        raise ShapeError(f"Expected number of channels in input to be divisible by num_groups, but got input "
                         f"of shape {list(input.shape)} and num_groups={num_groups}")
    _verify_batch_size([n * c // num_groups, num_groups] + list(input.shape[2:]))
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and (t.ndim != 1 or t.numel() != c):
            raise ShapeError(f"Expected {name} to be a vector of size equal to the number of channels in input, "
                             f"but got {name} of shape {list(t.shape)} and input of shape {list(input.shape)}")
    dtype = _compute_dtype("group_norm", input, weight=weight, bias=bias)
    grouped = _shape.reshape(_as(input, dtype), (n, num_groups, -1))
    mean = _reduce.mean(grouped, 2, keepdim=True)
    var = _reduce.var(grouped, 2, correction=0, keepdim=True)
    out = _shape.reshape(_normalize(grouped, mean, var, eps), tuple(input.shape))
    return _as(_affine(out, _as(weight, dtype), _as(bias, dtype), _channel_shape(input)), input.dtype)


def local_response_norm(input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    r"""Local response normalisation across channels (dim 1):
    :math:`b_c = a_c / (k + \frac{\alpha}{n}\sum_{c'} a_{c'}^2)^{\beta}`, the sum over a window of
    ``size`` neighbouring channels (zero-padded at the edges, as torch).

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.local_response_norm(tracenn.tensor([[[2.0], [0.0]]]), 2, alpha=1.0, beta=1.0, k=0.0)
    tensor([[[1.],
             [0.]]])
    """
    if input.ndim < 3:
        raise ValueError(f"Expected 3D or higher dimensionality input (got {input.ndim} dimensions)")
    if input.numel() == 0:
        return input
    c = input.shape[1]
    sq = _math.mul(input, input)
    widths = ((0, 0), (size // 2, (size - 1) // 2)) + ((0, 0),) * (input.ndim - 2)
    padded = apply(OPS["pad"], (sq, 0.0), (widths, "constant"))
    # The window sum of ``size`` shifted slices (size is small; torch's avg_pool sums the same way).
    total = None
    for i in range(size):
        part = _shape.narrow(padded, 1, i, c)
        total = part if total is None else _math.add(total, part)
    div = _math.pow(_math.add(_math.mul(total, alpha / size), k), beta)
    return _math.div(input, div)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None) -> Tensor:
    r"""Divide by the :math:`L_p` norm over ``dim``: :math:`v / \max(\lVert v \rVert_p, \epsilon)`.

    >>> import tracenn
    >>> import tracenn.nn.functional as F
    >>> F.normalize(tracenn.tensor([[3.0, 4.0], [0.0, 0.0]]))
    tensor([[0.6000, 0.8000],
            [0.0000, 0.0000]])
    """
    denom = _shape.expand_as(_math.clamp_min(_reduce.norm(input, p, dim, keepdim=True), eps), input)
    result = _math.div(input, denom)
    if out is not None:
        return out.copy_(result)
    return result
