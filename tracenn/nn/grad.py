"""``torch.nn.grad``: the gradients of a convolution with respect to its input or its weight, given the
gradient of its output — what custom ``autograd.Function`` backward passes and pruning/attribution code
call.

Each is the vector-Jacobian product of ``nn.functional.convNd`` through tracenn's own vjp machinery
(``tracenn.func.vjp``), so it uses the same gradient rule as ``loss.backward()`` and traces under
``tracenn.compile``.
"""
from __future__ import annotations

from .modules.utils import _pair, _single, _triple

__all__ = ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input", "conv3d_weight"]


def _conv(nd):
    from . import functional as F
    return (F.conv1d, F.conv2d, F.conv3d)[nd - 1]


def _input_grad(nd, tuple_, input_size, weight, grad_output, stride, padding, dilation, groups):
    from .. import func, zeros
    conv = _conv(nd)
    size = tuple(int(s) for s in input_size)
    if len(size) not in (nd + 1, nd + 2):
        raise ValueError(f"conv{nd}d_input: input_size must have {nd + 2} (or {nd + 1}, unbatched) entries, "
                         f"got {list(size)}")
    x = zeros(size, dtype=grad_output.dtype, device=grad_output.device)
    _, pullback = func.vjp(lambda x_: conv(x_, weight, None, tuple_(stride), tuple_(padding), tuple_(dilation),
                                           groups), x)
    return pullback(grad_output)[0]


def _weight_grad(nd, tuple_, input, weight_size, grad_output, stride, padding, dilation, groups):
    from .. import func, zeros
    conv = _conv(nd)
    size = tuple(int(s) for s in weight_size)
    if len(size) != nd + 2:
        raise ValueError(f"conv{nd}d_weight: weight_size must have {nd + 2} entries, got {list(size)}")
    w = zeros(size, dtype=grad_output.dtype, device=grad_output.device)
    _, pullback = func.vjp(lambda w_: conv(input, w_, None, tuple_(stride), tuple_(padding), tuple_(dilation),
                                           groups), w)
    return pullback(grad_output)[0]


def conv1d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv1d`` with respect to its input, of shape ``input_size``.

    Args:
        input_size: the shape of the input (and so of the result), e.g. ``input.shape``.
        weight: the weight, ``(out_channels, in_channels / groups, kW)``.
        grad_output: the gradient of the output, ``(minibatch, out_channels, oW)``.
        stride, padding, dilation, groups: as the ``conv1d`` that was differentiated. Defaults 1, 0, 1, 1.

    >>> import tracenn as torch
    >>> w = torch.ones(1, 1, 2)
    >>> torch.nn.grad.conv1d_input((1, 1, 3), w, torch.ones(1, 1, 2))
    tensor([[[1., 2., 1.]]])
    """
    return _input_grad(1, _single, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv1d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv1d`` with respect to its weight, of shape ``weight_size``.

    Args:
        input: the input, ``(minibatch, in_channels, iW)``.
        weight_size: the shape of the weight (and so of the result).
        grad_output: the gradient of the output, ``(minibatch, out_channels, oW)``.
        stride, padding, dilation, groups: as the ``conv1d`` that was differentiated.

    >>> import tracenn as torch
    >>> torch.nn.grad.conv1d_weight(torch.tensor([[[1., 2., 3.]]]), (1, 1, 2), torch.ones(1, 1, 2))
    tensor([[[3., 5.]]])
    """
    return _weight_grad(1, _single, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv2d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv2d`` with respect to its input (see :func:`conv1d_input`); ``weight`` is
    ``(out_channels, in_channels / groups, kH, kW)``, ``grad_output`` ``(minibatch, out_channels, oH, oW)``."""
    return _input_grad(2, _pair, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv2d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv2d`` with respect to its weight (see :func:`conv1d_weight`); ``input`` is
    ``(minibatch, in_channels, iH, iW)``."""
    return _weight_grad(2, _pair, input, weight_size, grad_output, stride, padding, dilation, groups)


def conv3d_input(input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv3d`` with respect to its input (see :func:`conv1d_input`); ``weight`` is
    ``(out_channels, in_channels / groups, kT, kH, kW)``."""
    return _input_grad(3, _triple, input_size, weight, grad_output, stride, padding, dilation, groups)


def conv3d_weight(input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1):
    r"""The gradient of ``conv3d`` with respect to its weight (see :func:`conv1d_weight`); ``input`` is
    ``(minibatch, in_channels, iT, iH, iW)``."""
    return _weight_grad(3, _triple, input, weight_size, grad_output, stride, padding, dilation, groups)
