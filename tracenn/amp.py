"""Automatic mixed precision: ``tracenn.autocast`` (as ``torch.autocast`` / ``torch.amp.autocast``).

Inside ``with tracenn.autocast("cpu", dtype=tracenn.bfloat16):`` the matrix products and
convolutions run in the low-precision dtype (their floating inputs are cast first, a recorded
``cast`` op, so gradients flow back to the float32 parameters: float32 master weights), while
ops that lose too much in low precision — exp, log, pow, sums, means, variances, logsumexp,
cumulative sums — run in float32. Other ops take their inputs' dtypes, by torch's promotion.

It works eagerly and under ``tracenn.compile``: a compiled call made inside an autocast region
is a different program from one made outside (the casts are in the graph), and both are kept.

The lists follow torch's autocast lists at the level of tracenn's primitives (tracenn has no
``layer_norm`` or ``softmax`` primitive: they are composites whose reductions run in float32).
float16 training also needs loss scaling: :class:`GradScaler` (``tracenn.amp.GradScaler``, as
torch's; also ``tracenn.cuda.amp.GradScaler``). bfloat16 (the CPU default) does not need it.

>>> import tracenn
>>> w = tracenn.randn(4, 4, requires_grad=True)
>>> with tracenn.autocast("cpu"):
...     y = tracenn.randn(2, 4) @ w
>>> y.dtype, w.dtype
(tracenn.bfloat16, tracenn.float32)
>>> y.float().sum().backward()
>>> w.grad.dtype
tracenn.float32
"""
from __future__ import annotations

import functools

from . import _dispatch
from . import dtypes as _dt

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "GradScaler"]

# torch's autocast lists, at the level of tracenn's primitives.
LOW_PRECISION_OPS = ("matmul", "conv", "conv_transpose", "einsum")
FLOAT32_OPS = ("exp", "expm1", "log", "log1p", "log2", "log10", "pow", "rsqrt", "reciprocal", "sum", "mean",
               "var", "prod", "cumsum", "cumprod", "logsumexp", "acos", "asin", "cosh", "sinh", "tan",
               "erfinv", "softmax", "log_softmax")
_dispatch.AUTOCAST_OPS.update({n: "low" for n in LOW_PRECISION_OPS})
_dispatch.AUTOCAST_OPS.update({n: "f32" for n in FLOAT32_OPS})

_DEFAULTS = {"cpu": _dt.bfloat16, "cuda": _dt.float16, "xla": _dt.bfloat16}


class autocast:
    """Run the ops in a region in mixed precision (see the module docstring).

    Args:
        device_type: ``"cpu"`` or ``"cuda"`` (torch's argument; tracenn's casts do not depend on
            it beyond the default dtype).
        dtype: the low-precision dtype; default bfloat16 on CPU, float16 on CUDA.
        enabled: False makes the region run at full precision (and turns off an outer one).
        cache_enabled: accepted for torch compatibility.

    Usable as a context manager or a decorator; regions nest.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True, cache_enabled=None):
        if not isinstance(device_type, str):
            raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
        kind = device_type.split(":")[0]
        if kind not in _DEFAULTS:
            raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}'")
        d = _DEFAULTS[kind] if dtype is None else _dt.as_dtype(dtype)
        if d not in (_dt.bfloat16, _dt.float16):
            raise RuntimeError(f"In autocast, but the target dtype is not supported: {d}. autocast runs in "
                               "tracenn.bfloat16 or tracenn.float16")
        self.device_type = kind
        self.fast_dtype = d
        self._enabled = bool(enabled)
        self._prev = []

    def __enter__(self):
        self._prev.append(_dispatch.AUTOCAST[0])
        new = self.fast_dtype.np if self._enabled else None
        if new != _dispatch.AUTOCAST[0]:
            _dispatch.EPOCH[0] += 1  # compiled calls keep one program per autocast state
        _dispatch.AUTOCAST[0] = new
        return self

    def __exit__(self, *exc):
        prev = self._prev.pop()
        if prev != _dispatch.AUTOCAST[0]:
            _dispatch.EPOCH[0] += 1
        _dispatch.AUTOCAST[0] = prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Is an autocast region active?"""
    return _dispatch.AUTOCAST[0] is not None


def get_autocast_dtype(device_type: str = "cpu"):
    """The active region's low-precision dtype (the default dtype for ``device_type`` outside one)."""
    cur = _dispatch.AUTOCAST[0]
    return _dt.from_np(cur) if cur is not None else _DEFAULTS[device_type.split(":")[0]]


from ._grad_scaler import GradScaler  # noqa: E402


def _device_namespace(device: str):
    """``tracenn.cuda.amp`` / ``tracenn.cpu.amp``: torch's older spellings, ``GradScaler`` and
    ``autocast`` with the device fixed, which warn (FutureWarning) as torch's do."""
    import sys
    import types
    import warnings
    name = f"tracenn.{device}.amp"
    mod = types.ModuleType(name, f"``torch.{device}.amp``: deprecated spellings of tracenn.amp's GradScaler and autocast.")

    class _Scaler(GradScaler):
        def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                     enabled=True):
            warnings.warn(f"`torch.{device}.amp.GradScaler(args...)` is deprecated. Please use "
                          f"`torch.amp.GradScaler('{device}', args...)` instead.", FutureWarning, stacklevel=2)
            super().__init__(device, init_scale, growth_factor, backoff_factor, growth_interval, enabled)

    class _Autocast(autocast):
        def __init__(self, enabled=True, dtype=None, cache_enabled=True):
            warnings.warn(f"`torch.{device}.amp.autocast(args...)` is deprecated. Please use "
                          f"`torch.amp.autocast('{device}', args...)` instead.", FutureWarning, stacklevel=2)
            super().__init__(device, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    _Scaler.__name__ = _Scaler.__qualname__ = "GradScaler"
    _Autocast.__name__ = _Autocast.__qualname__ = "autocast"
    _Scaler.__module__ = _Autocast.__module__ = name
    mod.GradScaler, mod.autocast = _Scaler, _Autocast
    sys.modules[name] = mod
    return mod
