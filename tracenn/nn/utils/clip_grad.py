"""Gradient clipping: ``clip_grad_norm_``, ``clip_grad_value_``, ``get_total_norm`` and
``clip_grads_with_norm_`` (torch's ``torch.nn.utils.clip_grad``).

Gradients are scaled in place (``p.grad.mul_``), under ``no_grad``. The ``foreach`` argument is
accepted for compatibility: tracenn has one implementation (a per-tensor norm, then the norm of the
norms), which is what torch's foreach path computes.
"""
from __future__ import annotations

import types
import warnings
from typing import Iterable

from ..._api import creation as _creation, math as _math, reduce as _reduce, shape as _shape
from ...autograd.grad_mode import no_grad
from ...tensor import Tensor

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]

_tensor_or_tensors = Tensor | Iterable[Tensor]


@no_grad()
def get_total_norm(tensors: _tensor_or_tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> Tensor:
    r"""The ``norm_type``-norm of ``tensors`` viewed as one vector (the norm of their norms).

    >>> import tracenn
    >>> from tracenn.nn.utils import get_total_norm
    >>> get_total_norm([tracenn.tensor([3.0]), tracenn.tensor([4.0])])
    tensor(5.)
    """
    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    norm_type = float(norm_type)
    if len(tensors) == 0:
        return _creation.tensor(0.0)
    norms = [_reduce.norm(t, norm_type) for t in tensors]
    total = _reduce.norm(_shape.stack(norms), norm_type)
    if error_if_nonfinite and not bool(_math.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be "
            "clipped. To disable this error and scale the gradients by the non-finite norm anyway, set "
            "`error_if_nonfinite=False`")
    return total


@no_grad()
def clip_grads_with_norm_(parameters: _tensor_or_tensors, max_norm: float, total_norm: Tensor,
                          foreach: bool | None = None) -> None:
    r"""Scale the gradients in place by :math:`\min(\text{max\_norm} / (\text{total\_norm} + 10^{-6}), 1)`.

    >>> import tracenn
    >>> from tracenn.nn.utils import clip_grads_with_norm_
    >>> p = tracenn.nn.Parameter(tracenn.zeros(2))
    >>> p.grad = tracenn.tensor([3.0, 4.0])
    >>> clip_grads_with_norm_([p], 1.0, tracenn.tensor(5.0))
    >>> p.grad
    tensor([0.6000, 0.8000])
    """
    parameters = [parameters] if isinstance(parameters, Tensor) else parameters
    grads = [p.grad for p in parameters if p.grad is not None]
    if len(grads) == 0:
        return
    coef = _math.clamp(float(max_norm) / (total_norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef)


@no_grad()
def clip_grad_norm_(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    r"""Rescale the gradients of ``parameters`` so that their total norm is at most ``max_norm``.

    Args:
        parameters: tensors (or one tensor) whose ``.grad`` is scaled in place.
        max_norm: the largest total norm allowed.
        norm_type: the p of the p-norm (``float('inf')`` for the largest absolute value).
        error_if_nonfinite: raise if the total norm is NaN or infinite (one host read).
        foreach: accepted for compatibility; ignored.

    Returns:
        The total norm of the gradients before clipping.

    >>> import tracenn
    >>> p = tracenn.nn.Parameter(tracenn.zeros(2))
    >>> p.grad = tracenn.tensor([3.0, 4.0])
    >>> tracenn.nn.utils.clip_grad_norm_([p], max_norm=1.0), p.grad
    (tensor(5.), tensor([0.6000, 0.8000]))
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        parameters = list(parameters)
        if is_generator and len(parameters) == 0:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_norm(parameters: _tensor_or_tensors, max_norm: float, norm_type: float = 2.0,
                   error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """Deprecated: use :func:`clip_grad_norm_`."""
    warnings.warn("`tracenn.nn.utils.clip_grad_norm` is now deprecated in favor of `tracenn.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


@no_grad()
def clip_grad_value_(parameters: _tensor_or_tensors, clip_value: float, foreach: bool | None = None) -> None:
    r"""Clamp every gradient element to :math:`[-\text{clip\_value}, \text{clip\_value}]`, in place.

    >>> import tracenn
    >>> p = tracenn.nn.Parameter(tracenn.zeros(2))
    >>> p.grad = tracenn.tensor([-3.0, 0.5])
    >>> tracenn.nn.utils.clip_grad_value_(p, 1.0)
    >>> p.grad
    tensor([-1.0000,  0.5000])
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    clip_value = float(clip_value)
    for p in parameters:
        if p.grad is not None:
            p.grad.clamp_(min=-clip_value, max=clip_value)
