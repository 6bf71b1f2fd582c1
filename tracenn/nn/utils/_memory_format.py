"""``torch.nn.utils.convert_conv2d_weight_memory_format`` / ``convert_conv3d_weight_memory_format``.

torch uses them to give only the convolution weights the channels-last layout (cuDNN's fast
NHWC kernels). tracenn keeps torch's strides on a tensor (``is_contiguous(memory_format=...)``
answers as torch's), while XLA picks the physical layout itself: the conversion sets what torch
would report and changes no values or results.
"""
from __future__ import annotations

__all__ = ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def _convert(module, memory_format, kinds):
    if isinstance(module, kinds):
        module.weight.data = module.weight.detach().clone(memory_format=memory_format)
    for child in module.children():
        _convert(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """Give the weights of the ``Conv2d``/``ConvTranspose2d`` layers in ``module`` (itself
    included, recursively) ``memory_format``; returns ``module``. Only the weights change (unlike
    ``module.to(memory_format=...)``, which converts every 4-d parameter and buffer).

    >>> import tracenn
    >>> net = tracenn.nn.Sequential(tracenn.nn.Conv2d(3, 8, 3))
    >>> net = tracenn.nn.utils.convert_conv2d_weight_memory_format(net, tracenn.channels_last)
    >>> net[0].weight.is_contiguous(memory_format=tracenn.channels_last)
    True
    """
    from ..modules.conv import Conv2d, ConvTranspose2d
    return _convert(module, memory_format, (Conv2d, ConvTranspose2d))


def convert_conv3d_weight_memory_format(module, memory_format):
    """As :func:`convert_conv2d_weight_memory_format`, for ``Conv3d``/``ConvTranspose3d`` weights
    (``tracenn.channels_last_3d``)."""
    from ..modules.conv import Conv3d, ConvTranspose3d
    return _convert(module, memory_format, (Conv3d, ConvTranspose3d))
