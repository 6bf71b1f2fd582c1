"""``tracenn.backends``: torch.backends' switches, for scripts that set them.

``backends.cuda.matmul.allow_tf32`` and ``backends.cudnn.allow_tf32`` are one setting in XLA: the
precision of float32 matrix products and convolutions (``tracenn.set_float32_matmul_precision``).
The others are kept so that code reading them back sees what it set, but change nothing: XLA
picks its GPU algorithms itself (``cudnn.benchmark``), runs the CPU deterministically, and its
GPU determinism is a process-wide flag (``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, set before
the first computation).

The scaled-dot-product-attention switches (``cuda.enable_flash_sdp`` and the rest, set together by
``tracenn.nn.attention.sdpa_kernel``) are kept settings too: XLA chooses its own attention kernel, so
they read back what was set and change no numbers.
"""
from __future__ import annotations

import contextlib
import enum
import types
import warnings

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


class SDPBackend(enum.Enum):
    """The kernels of ``scaled_dot_product_attention`` (torch's names and values), for
    :func:`tracenn.nn.attention.sdpa_kernel`. ``int(backend)`` gives the value, as torch's."""
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4

    def __int__(self) -> int:
        return self.value

    __index__ = __int__


SDPBackend.__module__ = "tracenn.nn.attention"

# The sdp switches by torch's short names (``_get_{name}_sdp_enabled``), all on by default, and the
# priority order (SDPBackend values) that ``sdpa_kernel(..., set_priority=True)`` rewrites.
_SDP_ENABLED = {"cudnn": True, "flash": True, "mem_efficient": True, "math": True, "overrideable": True}
_SDP_PRIORITY = [1, 2, 0, 3, 4]
_SDP_MATH_FP16_BF16_REDUCTION = [False]


def _sdp_switch(name: str, setter: str):
    """The getter and setter (``flash_sdp_enabled``, ``enable_flash_sdp``) of one kept sdp switch."""
    def is_enabled() -> bool:
        return _SDP_ENABLED[name]

    def enable(enabled: bool) -> None:
        if not isinstance(enabled, bool):
            raise RuntimeError(f"{setter} expects a bool, but got {type(enabled).__name__}")
        _SDP_ENABLED[name] = enabled
    is_enabled.__name__, enable.__name__ = f"{setter.replace('enable_', '')}_enabled", setter
    is_enabled.__doc__ = f"Whether the {name} kernel of scaled_dot_product_attention is enabled (a kept setting)."
    enable.__doc__ = (f"Enable or disable the {name} kernel of scaled_dot_product_attention: a kept setting that "
                      "reads back; XLA chooses its own attention kernel.")
    return staticmethod(is_enabled), staticmethod(enable)


class SDPAParams:
    """``backends.cuda.SDPAParams``: the arguments ``can_use_*_attention`` are asked about."""

    def __init__(self, query, key, value, attn_mask, dropout, is_causal, enable_gqa):
        self.query, self.key, self.value, self.attn_mask = query, key, value, attn_mask
        self.dropout, self.is_causal, self.enable_gqa = float(dropout), bool(is_causal), bool(enable_gqa)


def _no_fused_kernel(params: SDPAParams, debug: bool = False) -> bool:
    """False: tracenn never runs torch's fused attention kernels (XLA picks its own), as torch answers
    on a machine without CUDA."""
    if debug:
        warnings.warn("tracenn runs attention through XLA, which chooses its own kernel; torch's fused "
                      "kernels are not available", stacklevel=2)
    return False


@contextlib.contextmanager
def _sdp_kernel(enable_flash: bool = True, enable_math: bool = True, enable_mem_efficient: bool = True,
                enable_cudnn: bool = True):
    """Deprecated: set the sdp switches inside the block and restore them after (use
    ``tracenn.nn.attention.sdpa_kernel``)."""
    warnings.warn("`tracenn.backends.cuda.sdp_kernel()` is deprecated. In the future, this context manager will be "
                  "removed. Please see `tracenn.nn.attention.sdpa_kernel()` for the new context manager, with "
                  "updated signature.", FutureWarning, stacklevel=3)
    from ..nn.attention import sdpa_kernel
    chosen = [b for b, on in ((SDPBackend.FLASH_ATTENTION, enable_flash),
                              (SDPBackend.EFFICIENT_ATTENTION, enable_mem_efficient),
                              (SDPBackend.MATH, enable_math), (SDPBackend.CUDNN_ATTENTION, enable_cudnn)) if on]
    with sdpa_kernel(chosen) as context:
        yield context


class _Cuda(types.ModuleType):
    matmul = _Matmul()
    SDPBackend = SDPBackend
    SDPAParams = SDPAParams
    flash_sdp_enabled, enable_flash_sdp = _sdp_switch("flash", "enable_flash_sdp")
    mem_efficient_sdp_enabled, enable_mem_efficient_sdp = _sdp_switch("mem_efficient", "enable_mem_efficient_sdp")
    math_sdp_enabled, enable_math_sdp = _sdp_switch("math", "enable_math_sdp")
    cudnn_sdp_enabled, enable_cudnn_sdp = _sdp_switch("cudnn", "enable_cudnn_sdp")
    can_use_flash_attention = can_use_efficient_attention = can_use_cudnn_attention = staticmethod(_no_fused_kernel)
    sdp_kernel = staticmethod(_sdp_kernel)

    @staticmethod
    def allow_fp16_bf16_reduction_math_sdp(enabled: bool) -> None:
        """A kept setting: tracenn's attention reduces low-precision inputs as its softmax does."""
        _SDP_MATH_FP16_BF16_REDUCTION[0] = bool(enabled)

    @staticmethod
    def fp16_bf16_reduction_math_sdp_allowed() -> bool:
        return _SDP_MATH_FP16_BF16_REDUCTION[0]

    @staticmethod
    def is_flash_attention_available() -> bool:
        """False: torch's FlashAttention build is not part of tracenn (XLA chooses its own kernel)."""
        return False

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
