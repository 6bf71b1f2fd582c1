"""``tracenn.cuda``: whether JAX sees a GPU, and waiting for pending GPU work."""
from __future__ import annotations

from .device import gpu_devices


def is_available() -> bool:
    """True when JAX has a GPU backend with at least one device."""
    return len(gpu_devices()) > 0


def device_count() -> int:
    return len(gpu_devices())


def current_device() -> int:
    if not is_available():
        from .errors import DeviceError
        raise DeviceError("no CUDA GPUs are available")
    return 0


def get_device_name(device=None) -> str:
    gpus = gpu_devices()
    i = 0 if device is None else (device if isinstance(device, int) else (device.index or 0))
    return gpus[i].device_kind


def synchronize(device=None) -> None:
    """Wait until all queued work has finished (JAX dispatches asynchronously)."""
    from . import synchronize as _sync
    _sync()


def manual_seed(seed: int) -> None:
    from .random import manual_seed as _seed
    _seed(seed)


manual_seed_all = manual_seed
from .errors import OutOfMemoryError  # noqa: E402,F401  (torch.cuda.OutOfMemoryError is torch.OutOfMemoryError)


def __getattr__(name):
    """torch's legacy CUDA tensor types: ``tracenn.cuda.FloatTensor`` and the rest."""
    from ._api.legacy import CUDA_LEGACY_TYPES
    try:
        return CUDA_LEGACY_TYPES[name]
    except KeyError:
        raise AttributeError(f"module 'tracenn.cuda' has no attribute {name!r}") from None
