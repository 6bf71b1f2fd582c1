"""Automatic mixed precision: ``tracenn.autocast`` (as ``torch.autocast`` / ``torch.amp.autocast``).

Inside ``with tracenn.autocast("cpu", dtype=tracenn.bfloat16):`` the matrix products and
convolutions run in the low-precision dtype (their floating inputs, a bias included, are cast
first, a recorded ``cast`` op, so gradients flow back to the float32 parameters: float32 master
weights), and the losses and ``cdist`` run in float32. What else runs in float32 is the device
type's list, as torch's: under ``autocast("cuda")`` the ops that lose too much in low precision
(exp, log, pow, sums, means, variances, softmax, logsumexp, cumulative sums); under
``autocast("cpu")`` only prod, the FFTs, 3-d pooling, reflection/replication padding,
grid_sample, trace and quantiles. Other ops take their inputs' dtypes, by torch's promotion.

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
import warnings

from . import _dispatch
from . import dtypes as _dt

__all__ = ["autocast", "is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
           "GradScaler", "custom_fwd", "custom_bwd", "is_autocast_available"]

# torch's autocast lists, at the level of tracenn's primitives. torch has one per device type:
# CUDA's (also used for the other accelerators) runs transcendental ops and reductions in float32;
# the CPU's is short: among tracenn's primitives only prod and the FFTs. Both run the losses in
# float32: those are composites here, cast at their entry (float32_under_autocast).
LOW_PRECISION_OPS = ("matmul", "conv", "conv_transpose", "einsum")
FLOAT32_OPS = ("exp", "expm1", "log", "log1p", "log2", "log10", "pow", "rsqrt", "reciprocal", "sum", "mean",
               "var", "prod", "cumsum", "cumprod", "logsumexp", "acos", "asin", "cosh", "sinh", "tan",
               "erfinv", "softmax", "log_softmax")
CPU_FLOAT32_OPS = ("prod", "fft")
_OPS = {"cuda": {**{n: "low" for n in LOW_PRECISION_OPS}, **{n: "f32" for n in FLOAT32_OPS}},
        "cpu": {**{n: "low" for n in LOW_PRECISION_OPS}, **{n: "f32" for n in CPU_FLOAT32_OPS}}}
_dispatch.AUTOCAST_OPS = _OPS["cpu"]


def float32_under_autocast(fn):
    """``fn`` (a loss, ``cdist``) with its half-precision floating tensor arguments cast to float32
    inside an autocast region, as torch's autocast runs it (both device types' lists)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _dispatch.AUTOCAST[0] is None:
            return fn(*args, **kwargs)
        return fn(*[_to_float32(a) for a in args], **{k: _to_float32(v) for k, v in kwargs.items()})
    return wrapper


_HALF = frozenset({_dt.float16.np, _dt.bfloat16.np})


def float32_under_cpu_autocast(fn):
    """As :func:`float32_under_autocast`, for what only torch's CPU list runs in float32 (3-d
    pooling, reflection/replication padding, grid_sample, trace, quantiles)."""
    f32 = float32_under_autocast(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _dispatch.AUTOCAST[0] is None or _dispatch.AUTOCAST_KIND[0] != "cpu":
            return fn(*args, **kwargs)
        return f32(*args, **kwargs)
    return wrapper


def to_float32(x):
    """``x`` in float32 if it is a half-precision tensor inside an autocast region (else ``x``)."""
    return _to_float32(x) if _dispatch.AUTOCAST[0] is not None else x


def _to_float32(x):
    from .tensor import Tensor
    if isinstance(x, Tensor) and x._value.dtype in _HALF:
        return x.float()
    return x

_DEFAULTS = {"cpu": _dt.bfloat16, "cuda": _dt.float16, "xla": _dt.bfloat16, "ipu": _dt.float16}

# torch keeps an enabled flag and a dtype per device type; an autocast region sets them on entry
# and puts them back on exit. tracenn's casts do not depend on a tensor's device: they follow the
# state of the device type entered (or set) last, which is the innermost region's.
_ENABLED = {k: False for k in _DEFAULTS}
_DTYPES = dict(_DEFAULTS)
_CURRENT = ["cpu"]
_CACHE = [True]


def _kind(device_type) -> str:
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    kind = device_type.split(":")[0]
    if kind not in _DEFAULTS:
        raise RuntimeError(f"User specified an unsupported autocast device_type '{device_type}' (tracenn's autocast "
                           f"device types: {', '.join(_DEFAULTS)})")
    return kind


def _apply_state() -> None:
    kind = _CURRENT[0]
    new = _DTYPES[kind].np if _ENABLED[kind] else None
    lists = "cpu" if kind == "cpu" else "cuda"
    if new != _dispatch.AUTOCAST[0] or lists != _dispatch.AUTOCAST_KIND[0]:
        _dispatch.EPOCH[0] += 1  # compiled calls keep one program per autocast state
    _dispatch.AUTOCAST[0] = new
    _dispatch.AUTOCAST_OPS, _dispatch.AUTOCAST_KIND[0] = _OPS[lists], lists


class autocast:
    """Run the ops in a region in mixed precision (see the module docstring).

    Args:
        device_type: ``"cpu"`` or ``"cuda"``: whose op lists apply (torch's per-device-type
            lists) and the default dtype. ``"cuda"`` where JAX sees no GPU warns and leaves the
            region in full precision, as torch does without CUDA.
        dtype: the low-precision dtype; default ``get_autocast_dtype(device_type)`` (bfloat16 on
            CPU, float16 on CUDA unless set with ``set_autocast_dtype``).
        enabled: False makes the region run at full precision (and turns off an outer one).
        cache_enabled: accepted for torch compatibility.

    Usable as a context manager or a decorator; regions nest.
    """

    def __init__(self, device_type: str = "cpu", dtype=None, enabled: bool = True, cache_enabled=None):
        kind = _kind(device_type)
        d = _DTYPES[kind] if dtype is None else _dt.as_dtype(dtype)
        if d not in (_dt.bfloat16, _dt.float16):
            raise RuntimeError(f"In autocast, but the target dtype is not supported: {d}. autocast runs in "
                               "tracenn.bfloat16 or tracenn.float16")
        self.device_type = kind
        self.fast_dtype = d
        self._enabled = bool(enabled)
        if self._enabled and kind == "cuda":
            from . import cuda
            if not cuda.is_available():  # as torch: a GPU script on a CPU machine runs in float32
                warnings.warn("CUDA is not available or torch_xla is imported. Disabling autocast.", UserWarning,
                              stacklevel=2)
                self._enabled = False
        self._prev = []

    def __enter__(self):
        kind = self.device_type
        self._prev.append((_CURRENT[0], _ENABLED[kind], _DTYPES[kind]))
        _CURRENT[0], _ENABLED[kind], _DTYPES[kind] = kind, self._enabled, self.fast_dtype
        _apply_state()
        return self

    def __exit__(self, *exc):
        _CURRENT[0], _ENABLED[self.device_type], _DTYPES[self.device_type] = self._prev.pop()
        _apply_state()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with autocast(self.device_type, self.fast_dtype, self._enabled):
                return fn(*args, **kwargs)
        return wrapper


def is_autocast_enabled(device_type: str | None = None) -> bool:
    """Is autocast on for ``device_type``? Without one, as torch's: is it on for CUDA (so inside
    ``autocast("cpu")`` the no-argument form is False; ask ``is_autocast_enabled("cpu")``)."""
    return _ENABLED[_kind("cuda" if device_type is None else device_type)]


def get_autocast_dtype(device_type: str = "cpu"):
    """The low-precision dtype autocast uses for ``device_type`` (the region's inside one)."""
    return _DTYPES[_kind(device_type)]


def set_autocast_enabled(device_type, enabled=None) -> None:
    """Turn autocast on or off for ``device_type`` (what entering a region does; prefer ``autocast``).
    ``set_autocast_enabled(flag)`` is torch's deprecated CUDA-only form."""
    if enabled is None:
        _deprecated("set_autocast_enabled(enabled)", "set_autocast_enabled('cuda', enabled)")
        device_type, enabled = "cuda", device_type
    kind = _kind(device_type)
    _CURRENT[0], _ENABLED[kind] = kind, bool(enabled)
    _apply_state()


def set_autocast_dtype(device_type: str, dtype) -> None:
    """Set the low-precision dtype autocast uses for ``device_type``."""
    kind, d = _kind(device_type), _dt.as_dtype(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"autocast's dtype must be a floating dtype, got {d}")
    _DTYPES[kind] = d
    _apply_state()


# torch's device types (the start of a device string); autocast is available on those in _DEFAULTS.
_TORCH_DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                       "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


def is_autocast_available(device_type: str) -> bool:
    """Whether ``tracenn.autocast(device_type)`` can be entered: True for ``"cpu"``, ``"cuda"``,
    ``"xla"``, ``"ipu"`` (tracenn's autocast device types); False for torch's other device types
    (torch also has ``"mps"``, ``"xpu"``, ``"hpu"``: tracenn does not). An unknown device type is
    torch's RuntimeError.

    >>> import tracenn
    >>> tracenn.amp.is_autocast_available("cpu"), tracenn.amp.is_autocast_available("meta")
    (True, False)
    """
    kind = str(device_type).split(":")[0]
    if kind not in _TORCH_DEVICE_TYPES:
        raise RuntimeError(f"Expected one of {', '.join(_TORCH_DEVICE_TYPES)} device type at start of device "
                           f"string: {device_type}")
    return kind in _DEFAULTS


def _cast_floating(value, device_type: str, dtype):
    """torch's ``amp._cast``: floating tensors on ``device_type`` (float64 excepted) in ``dtype``,
    through lists, tuples and dicts; everything else unchanged."""
    import collections.abc

    import numpy as np

    from .tensor import Tensor
    if isinstance(value, Tensor):
        eligible = value.is_floating_point() and value.device.type == device_type and value.dtype != _dt.float64
        return value.to(dtype) if eligible else value
    if isinstance(value, (str, bytes, np.ndarray)):
        return value
    if isinstance(value, collections.abc.Mapping):
        return {_cast_floating(k, device_type, dtype): _cast_floating(v, device_type, dtype) for k, v in value.items()}
    if isinstance(value, collections.abc.Iterable):
        items = (_cast_floating(v, device_type, dtype) for v in value)
        return type(value)(items) if isinstance(value, (list, tuple)) else items
    return value


def custom_fwd(fwd=None, *, device_type: str, cast_inputs=None):
    """Decorate the ``forward`` of a custom ``tracenn.autograd.Function`` for autocast, as torch's.

    It records the autocast state ``forward`` ran under (on ``ctx``) for :func:`custom_bwd`. With
    ``cast_inputs`` (a dtype), inside an autocast region of ``device_type`` the floating tensors
    among the arguments (float64 excepted) are cast to it and ``forward`` runs with autocast off;
    outside a region it changes nothing.

    Args:
        fwd: the ``forward`` (or None, to use ``custom_fwd(device_type=...)`` as a decorator factory).
        device_type: ``"cpu"``, ``"cuda"``, ...: the autocast state to read.
        cast_inputs: the dtype to run ``forward`` in, or None to run it under the current state.

    >>> import tracenn
    >>> class MatMul(tracenn.autograd.Function):
    ...     @staticmethod
    ...     @tracenn.amp.custom_fwd(device_type="cpu", cast_inputs=tracenn.float32)
    ...     def forward(ctx, a, b):
    ...         ctx.save_for_backward(a, b)
    ...         return a @ b
    ...     @staticmethod
    ...     @tracenn.amp.custom_bwd(device_type="cpu")
    ...     def backward(ctx, g):
    ...         a, b = ctx.saved_tensors
    ...         return g @ b.t(), a.t() @ g
    >>> with tracenn.autocast("cpu"):
    ...     MatMul.apply(tracenn.randn(2, 3), tracenn.randn(3, 2)).dtype
    tracenn.float32
    """
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if fwd is None:
        return functools.partial(custom_fwd, device_type=device_type, cast_inputs=cast_inputs)

    @functools.wraps(fwd)
    def decorate_fwd(*args, **kwargs):
        args[0]._dtype = get_autocast_dtype(device_type)
        if cast_inputs is None:
            args[0]._fwd_used_autocast = is_autocast_enabled(device_type)
            return fwd(*args, **kwargs)
        args[0]._fwd_used_autocast = False
        if not is_autocast_enabled(device_type):
            return fwd(*args, **kwargs)
        with autocast(device_type=device_type, enabled=False):
            return fwd(*_cast_floating(args, device_type, cast_inputs),
                       **_cast_floating(kwargs, device_type, cast_inputs))
    return decorate_fwd


def custom_bwd(bwd=None, *, device_type: str):
    """Decorate the ``backward`` of a custom ``tracenn.autograd.Function`` so that it runs under the
    autocast state its ``forward`` (decorated with :func:`custom_fwd`) ran under, as torch's."""
    if not isinstance(device_type, str):
        raise ValueError(f"Expected `device_type` of type `str`, got: `{type(device_type)}`")
    if bwd is None:
        return functools.partial(custom_bwd, device_type=device_type)

    @functools.wraps(bwd)
    def decorate_bwd(*args, **kwargs):
        with autocast(device_type=device_type, enabled=args[0]._fwd_used_autocast, dtype=args[0]._dtype):
            return bwd(*args, **kwargs)
    return decorate_bwd


def is_autocast_cache_enabled() -> bool:
    """torch's cast-weight cache flag (tracenn has no cache to turn off; the flag is kept)."""
    return _CACHE[0]


def set_autocast_cache_enabled(enabled: bool) -> None:
    _CACHE[0] = bool(enabled)


def clear_autocast_cache() -> None:
    """Nothing to clear: tracenn caches no cast weights."""


_NESTING = [0]


def autocast_increment_nesting() -> int:
    _NESTING[0] += 1
    return _NESTING[0]


def autocast_decrement_nesting() -> int:
    _NESTING[0] -= 1
    return _NESTING[0]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"torch.{old} is deprecated. Please use torch.{new} instead.", DeprecationWarning, stacklevel=3)


def _legacy_queries() -> dict:
    """torch's deprecated per-device spellings (``get_autocast_cpu_dtype()``...), warning as torch's."""
    out = {}
    for kind, dev in (("cpu", "cpu"), ("gpu", "cuda"), ("ipu", "ipu"), ("xla", "xla")):
        def get(dev=dev, kind=kind):
            _deprecated(f"get_autocast_{kind}_dtype()", f"get_autocast_dtype('{dev}')")
            return _DTYPES[dev]

        def set_dtype(dtype, dev=dev, kind=kind):
            _deprecated(f"set_autocast_{kind}_dtype(dtype)", f"set_autocast_dtype('{dev}', dtype)")
            set_autocast_dtype(dev, dtype)
        out[f"get_autocast_{kind}_dtype"], out[f"set_autocast_{kind}_dtype"] = get, set_dtype
        if kind != "gpu":
            def enabled(dev=dev):
                _deprecated(f"is_autocast_{dev}_enabled()", f"is_autocast_enabled('{dev}')")
                return _ENABLED[dev]

            def set_enabled(flag, dev=dev):
                _deprecated(f"set_autocast_{dev}_enabled(enabled)", f"set_autocast_enabled('{dev}', enabled)")
                set_autocast_enabled(dev, flag)
            out[f"is_autocast_{dev}_enabled"], out[f"set_autocast_{dev}_enabled"] = enabled, set_enabled
    for name, fn in out.items():
        fn.__name__ = fn.__qualname__ = name
    return out


LEGACY = _legacy_queries()
TOPLEVEL = ("is_autocast_enabled", "get_autocast_dtype", "set_autocast_enabled", "set_autocast_dtype",
            "is_autocast_cache_enabled", "set_autocast_cache_enabled", "clear_autocast_cache",
            "autocast_increment_nesting", "autocast_decrement_nesting")


from ._grad_scaler import GradScaler  # noqa: E402


def _device_namespace(device: str):
    """``tracenn.cuda.amp`` / ``tracenn.cpu.amp``: torch's older spellings, ``GradScaler`` and
    ``autocast`` with the device fixed, which warn (FutureWarning) as torch's do."""
    import sys
    import types
    name = f"tracenn.{device}.amp"
    mod = types.ModuleType(name, f"``torch.{device}.amp``: deprecated spellings of tracenn.amp's GradScaler and "
                                 "autocast.")

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

    def _custom_fwd(fwd=None, *, cast_inputs=None):
        warnings.warn(f"`torch.{device}.amp.custom_fwd(args...)` is deprecated. Please use "
                      f"`torch.amp.custom_fwd(args..., device_type='{device}')` instead.", FutureWarning, stacklevel=2)
        return custom_fwd(fwd, device_type=device, cast_inputs=cast_inputs)

    def _custom_bwd(bwd):
        warnings.warn(f"`torch.{device}.amp.custom_bwd(args...)` is deprecated. Please use "
                      f"`torch.amp.custom_bwd(args..., device_type='{device}')` instead.", FutureWarning, stacklevel=2)
        return custom_bwd(bwd, device_type=device)

    if device == "cuda":  # (torch.cpu.amp has no custom_fwd/custom_bwd)
        _custom_fwd.__name__ = _custom_fwd.__qualname__ = "custom_fwd"
        _custom_bwd.__name__ = _custom_bwd.__qualname__ = "custom_bwd"
        _custom_fwd.__module__ = _custom_bwd.__module__ = name
        mod.custom_fwd, mod.custom_bwd = _custom_fwd, _custom_bwd
    _Scaler.__name__ = _Scaler.__qualname__ = "GradScaler"
    _Autocast.__name__ = _Autocast.__qualname__ = "autocast"
    _Scaler.__module__ = _Autocast.__module__ = name
    mod.GradScaler, mod.autocast = _Scaler, _Autocast
    sys.modules[name] = mod
    return mod
