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


def synchronize(device=None, /) -> None:
    """Wait until all queued work has finished."""
    _require()
    _cuda.synchronize(device)


class device_index:
    """``with tracenn.accelerator.device_index(0):`` selects the device for the block; ``None`` does
    nothing. Only the first device can be current (see :func:`set_device_index`)."""

    def __init__(self, device, /) -> None:
        self.idx = device
        self.prev_idx = -1

    def __enter__(self) -> None:
        if self.idx is not None:
            set_device_index(self.idx)
            self.prev_idx = 0

    def __exit__(self, *exc_info) -> None:
        return None


def current_stream(device=None, /):
    """The current stream of the accelerator (see ``tracenn.cuda.Stream``: XLA's one ordered queue)."""
    _require()
    return _cuda.current_stream(device)


def set_stream(stream, /) -> None:
    """Select ``stream`` as the current stream of its device."""
    _require()
    _cuda.set_stream(stream)


# Memory: tracenn.cuda's figures from XLA's allocator (see tracenn/cuda/memory.py).

def memory_stats(device_index=None, /) -> dict:
    """XLA's allocator statistics under torch's key names (``tracenn.cuda.memory_stats``)."""
    _require()
    return _cuda.memory_stats(device_index)


def memory_allocated(device_index=None, /) -> int:
    """Bytes held by live arrays (``tracenn.cuda.memory_allocated``)."""
    _require()
    return _cuda.memory_allocated(device_index)


def max_memory_allocated(device_index=None, /) -> int:
    """The peak of :func:`memory_allocated` since the last reset (``tracenn.cuda.max_memory_allocated``)."""
    _require()
    return _cuda.max_memory_allocated(device_index)


def memory_reserved(device_index=None, /) -> int:
    """Bytes XLA's allocator holds (``tracenn.cuda.memory_reserved``)."""
    _require()
    return _cuda.memory_reserved(device_index)


def max_memory_reserved(device_index=None, /) -> int:
    """The peak of :func:`memory_reserved` since the last reset (``tracenn.cuda.max_memory_reserved``)."""
    _require()
    return _cuda.max_memory_reserved(device_index)


def reset_peak_memory_stats(device_index=None, /) -> None:
    """Start the peaks again from now (what that can mean with XLA: ``tracenn.cuda.reset_peak_memory_stats``)."""
    _require()
    _cuda.reset_peak_memory_stats(device_index)


def reset_accumulated_memory_stats(device_index=None, /) -> None:
    """Count allocations from zero again (``tracenn.cuda.reset_accumulated_memory_stats``)."""
    _require()
    _cuda.reset_accumulated_memory_stats(device_index)


def get_memory_info(device_index=None, /) -> tuple:
    """``(free, total)`` bytes of XLA's allocator (``tracenn.cuda.mem_get_info``)."""
    _require()
    return _cuda.mem_get_info(device_index)


def empty_cache() -> None:
    """Does nothing: XLA's allocator keeps its memory (``tracenn.cuda.empty_cache``)."""
    _require()
    _cuda.empty_cache()


def empty_host_cache() -> None:
    """Does nothing: tracenn keeps no cache of pinned host memory."""
    _require()
