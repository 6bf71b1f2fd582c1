"""``tracenn.version``: what scripts read from ``torch.version`` (build information).

- ``__version__``: the torch API level tracenn implements, with tracenn's own version as the local
  label: ``2.13.0+tracenn.0.1.0``, a :class:`~tracenn.torch_version.TorchVersion` (a ``str`` that
  compares as a version). Scripts and libraries pick code paths by ``torch.__version__`` (``>= "2.0"``
  for ``torch.compile`` and ``scaled_dot_product_attention``); tracenn implements torch 2.13's API
  (the release it is tested against), so those checks must take the 2.x path. tracenn's own version
  is ``tracenn_version`` (``0.1.0``, the package's; also ``__version__.local``).
- ``cuda``: ``None`` unless JAX sees a GPU (as torch's CPU build). With a GPU it is the CUDA version
  JAX's CUDA plugin was built with (``"12.8"``), or the runtime's when the plugin does not say; ``None``
  when the plugin reports neither. Worked out on first access, so ``import tracenn`` does not ask JAX
  for devices.
- ``hip``, ``rocm``, ``xpu``: ``None`` (no ROCm or XPU builds); ``debug``: ``False``.
- ``git_version``: the commit tracenn was built from, or ``"Unknown"`` (torch's value when a build
  does not know it).

>>> import tracenn
>>> tracenn.version.__version__ == tracenn.__version__, tracenn.version.hip
(True, None)
"""
from __future__ import annotations

from .torch_version import TorchVersion

__all__ = ["__version__", "debug", "cuda", "git_version", "hip", "rocm", "xpu", "tracenn_version"]

tracenn_version = "0.1.0"  # the package version (pyproject.toml)
TORCH_API = "2.13.0"  # the torch release whose API tracenn implements and is tested against
__version__ = TorchVersion(f"{TORCH_API}+tracenn.{tracenn_version}")
debug = False
git_version = "Unknown"
hip: str | None = None
rocm: str | None = None
xpu: str | None = None


def _format(v: int) -> str:
    # CUDA encodes 12.8 as 12080 (major * 1000 + minor * 10).
    return f"{v // 1000}.{(v % 1000) // 10}"


def _cuda_version() -> str | None:
    """The CUDA version of JAX's GPU backend, None without a GPU (see the module docstring)."""
    from .cuda import _gpu
    if not _gpu.gpus():
        return None
    try:
        from jax._src.lib import cuda_versions
    except ImportError:
        return None
    if cuda_versions is None:
        return None
    for name in ("cuda_runtime_build_version", "cuda_runtime_get_version"):
        fn = getattr(cuda_versions, name, None)
        if fn is None:
            continue
        try:
            v = fn()
        except Exception:  # a plugin that cannot answer: no version, as when there is none
            continue
        if isinstance(v, int) and v > 0:
            return _format(v)
    return None


def __getattr__(name: str):
    if name == "cuda":
        globals()["cuda"] = value = _cuda_version()
        return value
    raise AttributeError(f"module 'tracenn.version' has no attribute {name!r}")
