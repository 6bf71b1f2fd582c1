"""Device namespaces torch has for accelerators tracenn does not run on (``tracenn.xpu``,
``tracenn.mps``, ``tracenn.mtia``): device-selection code asks them ``is_available()`` (False)
and ``device_count()`` (0); anything that needs a device raises as torch does without one."""
from __future__ import annotations

import sys
import types


def _namespace(name: str, title: str) -> types.ModuleType:
    mod = types.ModuleType(f"tracenn.{name}", f"``tracenn.{name}``: no {title} device (see tracenn/_accelerators.py).")

    def unavailable(*args, **kwargs):
        from .errors import DeviceError
        raise DeviceError(f"no {title} device is available: tracenn runs on the devices JAX sees (CPU, GPU, TPU)")

    def manual_seed(seed: int) -> None:  # (torch seeds the device's generator; there is none)
        return None

    mod.is_available = lambda: False
    mod.device_count = lambda: 0
    mod.is_initialized = lambda: False
    mod.synchronize = lambda device=None: None
    mod.empty_cache = lambda: None
    mod.manual_seed = mod.manual_seed_all = mod.seed = mod.seed_all = manual_seed
    mod.current_device = mod.get_device_name = mod.set_device = mod.get_device_properties = unavailable
    mod.memory_allocated = mod.max_memory_allocated = lambda device=None: 0
    sys.modules[mod.__name__] = mod
    return mod


xpu = _namespace("xpu", "XPU")
mps = _namespace("mps", "MPS")
mtia = _namespace("mtia", "MTIA")


def get_device_module(device=None):
    """The namespace of ``device``'s type (``tracenn.cuda`` for ``"cuda:0"``); with no device, that
    of the accelerator JAX sees, or ``tracenn.cpu`` (torch.get_device_module)."""
    import tracenn
    if device is None:
        return tracenn.cuda if tracenn.cuda.is_available() else tracenn.cpu
    kind = device.type if hasattr(device, "type") else str(device).split(":")[0]
    mod = getattr(tracenn, kind, None) if kind in ("cpu", "cuda", "xpu", "mps", "mtia") else None
    if mod is None:
        raise RuntimeError(f"Device '{kind}' does not have a corresponding module registered as 'torch.{kind}'.")
    return mod
