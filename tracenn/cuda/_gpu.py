"""The one place ``tracenn.cuda`` asks JAX for GPUs (tests replace :func:`gpus` with fake devices),
and the device-argument rules every ``tracenn.cuda`` function shares."""
from __future__ import annotations

from ..device import device as _device, gpu_devices
from ..errors import CudaDeviceError


NO_GPU = ("CUDA is not available: JAX sees no GPU on this machine (tracenn.cuda.is_available() is False). "
          "Use device='cpu', or install jax[cuda12] on a machine with an NVIDIA GPU.")


def gpus() -> tuple:
    """The GPUs JAX sees, as ``jax.Device`` objects (``cuda:i`` is ``gpus()[i]``)."""
    return gpu_devices()


def require() -> tuple:
    """:func:`gpus`, or :class:`CudaDeviceError` when there is none."""
    found = gpus()
    if not found:
        raise CudaDeviceError(NO_GPU)
    return found


def index(device, optional: bool = True) -> int:
    """The GPU index ``device`` names (an int, ``"cuda:1"``, a ``tracenn.device``), as torch's
    ``_get_device_index``: ``None`` is the current device (0); a non-cuda device is a ValueError."""
    if device is None:
        if not optional:
            raise ValueError(f"Expected a torch.device with a specified index or an integer, but got:{device}")
        return 0
    if isinstance(device, bool) or not isinstance(device, (int, str, _device)):
        raise ValueError(f"Expected a cuda device, but got: {device!r}")
    if isinstance(device, int):
        return device
    d = _device(device)
    if d.type != "cuda":
        raise ValueError(f"Expected a cuda device, but got: {d}")
    return 0 if d.index is None else d.index


def jax_device(device=None):
    """The JAX GPU for ``device`` (see :func:`index`); a missing one raises :class:`CudaDeviceError`."""
    found = require()
    i = index(device)
    if not 0 <= i < len(found):
        raise CudaDeviceError(f"Invalid device id: cuda:{i} requested, but JAX sees {len(found)} GPU(s) "
                              f"(cuda:0 to cuda:{len(found) - 1})")
    return found[i]
