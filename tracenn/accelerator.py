"""``tracenn.accelerator``: torch's device-generic accelerator queries, as PyTorch's current
tutorials pick their device::

    device = torch.accelerator.current_accelerator().type if torch.accelerator.is_available() else "cpu"

The accelerator is a GPU that JAX sees (``cuda``); without one there is none, as in torch.

>>> import tracenn
>>> tracenn.accelerator.is_available() == tracenn.cuda.is_available()
True
"""
from __future__ import annotations

from . import cuda as _cuda
from .device import device as _device
from .errors import DeviceError


def is_available() -> bool:
    """Whether an accelerator (a GPU that JAX sees) is available."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False) -> _device | None:
    """``device('cuda')`` when JAX sees a GPU, else None (torch's index-less device)."""
    return _device("cuda") if _cuda.is_available() else None


def device_count() -> int:
    """The number of accelerator devices (0 without one)."""
    return _cuda.device_count()


def current_device_index() -> int:
    """The index of the current accelerator device (tracenn places new tensors on the first)."""
    _require()
    return 0


def set_device_index(device) -> None:
    """Only the first accelerator device is the default one in tracenn; other indices are refused."""
    _require()
    index = device if isinstance(device, int) or device is None else _device(device).index
    if index not in (None, -1, 0):
        raise ValueError(f"tracenn.accelerator.set_device_index({device!r}): tracenn places new tensors on the "
                         f"first accelerator; move tensors to another one with .to('cuda:{index}')")


def _require() -> None:
    if not _cuda.is_available():
        raise DeviceError("Cannot access accelerator device when none is available. "
                          "Check tracenn.accelerator.is_available() first.")


current_device_idx, set_device_idx = current_device_index, set_device_index


def synchronize(device=None) -> None:
    """Wait until all queued work has finished."""
    _cuda.synchronize(device)
