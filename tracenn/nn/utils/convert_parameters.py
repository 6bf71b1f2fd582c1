"""``parameters_to_vector`` / ``vector_to_parameters``: a model's parameters as one flat vector and back."""
from __future__ import annotations

from typing import Iterable

from ..._api import shape as _shape
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _check_param_device(param: Tensor, old_param_device: int | None) -> int:
    """The device index of the first parameter (-1 for the CPU); raise if ``param`` is elsewhere."""
    device = param.get_device() if param.device.type != "cpu" else -1
    if old_param_device is None:
        return device
    if device != old_param_device:
        raise TypeError("Found two parameters on different devices, this is currently not supported.")
    return old_param_device


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    r"""Flatten ``parameters`` into one vector (in iteration order).

    >>> import tracenn
    >>> m = tracenn.nn.Linear(3, 2)
    >>> tracenn.nn.utils.parameters_to_vector(m.parameters()).shape
    tracenn.Size([8])
    """
    param_device = None
    vec = []
    for param in parameters:
        param_device = _check_param_device(param, param_device)
        vec.append(_shape.reshape(param, (-1,)))
    return _shape.cat(vec)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    r"""Copy consecutive slices of ``vec`` into ``parameters`` (their ``.data``, as torch).

    >>> import tracenn
    >>> m = tracenn.nn.Linear(2, 1)
    >>> tracenn.nn.utils.vector_to_parameters(tracenn.arange(3.0), m.parameters())
    >>> m.weight.data, m.bias.data
    (tensor([[0., 1.]]), tensor([2.]))
    """
    if not isinstance(vec, Tensor):
        from ..modules.module import _typename
        raise TypeError(f"expected tracenn.Tensor, but got: {_typename(vec)}")
    param_device = None
    pointer = 0
    for param in parameters:
        param_device = _check_param_device(param, param_device)
        num_param = param.numel()
        param.data = _shape.reshape(vec[pointer:pointer + num_param], tuple(param.shape)).data
        pointer += num_param
