"""``tracenn.backends``: torch.backends' switches, for scripts that set them.

``backends.cuda.matmul.allow_tf32`` and ``backends.cudnn.allow_tf32`` are one setting in XLA: the
precision of float32 matrix products and convolutions (``tracenn.set_float32_matmul_precision``).
The others are kept so that code reading them back sees what it set, but change nothing: XLA
picks its GPU algorithms itself (``cudnn.benchmark``), runs the CPU deterministically, and its
GPU determinism is a process-wide flag (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, set before
the first computation).
"""
from __future__ import annotations

import types

from .. import _precision

__all__ = ["cuda", "cudnn", "mps", "mkldnn", "cpu", "opt_einsum"]


def _get_tf32(self) -> bool:
    return _precision.get() != "highest"


def _set_tf32(self, value: bool) -> None:
    _precision.set("high" if value else "highest")


# ``allow_tf32`` of cuda.matmul and of cudnn: get_float32_matmul_precision() != "highest"
_ALLOW_TF32 = property(_get_tf32, _set_tf32)


class _Matmul:
    """``backends.cuda.matmul``."""
    allow_tf32 = _ALLOW_TF32
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


class _Cuda(types.ModuleType):
    matmul = _Matmul()

    @staticmethod
    def is_built() -> bool:
        """Whether JAX has a GPU backend installed (torch: built with CUDA)."""
        from ..cuda import is_available
        return is_available()

    @staticmethod
    def preferred_linalg_library(backend=None):
        return "default"


class _Cudnn(types.ModuleType):
    """``backends.cudnn``: ``allow_tf32`` shares the float32 precision with ``cuda.matmul``."""
    enabled = True
    benchmark = False
    deterministic = False
    benchmark_limit = 10
    allow_tf32 = _ALLOW_TF32

    @staticmethod
    def is_available() -> bool:
        from ..cuda import is_available
        return is_available()

    @staticmethod
    def version():
        return None


def _module(name, cls=types.ModuleType, **attrs):
    mod = cls(f"tracenn.backends.{name}")
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


cuda = _module("cuda", _Cuda)
cudnn = _module("cudnn", _Cudnn)
mps = _module("mps", is_available=lambda: False, is_built=lambda: False)
mkldnn = _module("mkldnn", is_available=lambda: False, enabled=False)
cpu = _module("cpu", get_cpu_capability=lambda: "DEFAULT")
opt_einsum = _module("opt_einsum", is_available=lambda: False, enabled=False, strategy=None)
