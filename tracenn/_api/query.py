"""Questions about tensors and global switches: ``is_conj``/``is_neg``/``resolve_*``, ``is_signed``,
``is_inference``, ``get_device``, ``typename``, ``set_warn_always``, ``set_flush_denormal``, the
``layout``/``memory_format`` constants, and torch's host callbacks ``apply_``/``map_``/``map2_``.

tracenn never keeps a lazy conjugate or negation bit (``x.conj()`` computes the conjugate), so
``is_conj``/``is_neg`` are False and ``resolve_conj``/``resolve_neg`` return their input, which is
what torch's give for a tensor whose bit is not set.
"""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from ._common import tensor_arg, value_of

__all__ = ["is_conj", "is_neg", "resolve_conj", "resolve_neg", "is_signed", "is_inference", "get_device",
           "typename", "set_warn_always", "is_warn_always_enabled", "set_flush_denormal", "set_default_tensor_type",
           "layout", "strided", "memory_format", "contiguous_format", "preserve_format", "legacy_contiguous_format",
           "channels_last", "channels_last_3d"]


def _unary(name: str, method):
    def fn(input):
        tensor_arg(name, "input", 1, input)
        return method(input)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = "tracenn"
    fn.__doc__ = f"``input.{name}()``."
    return fn


def _is_false(self) -> bool:
    return False


def _same(self) -> Tensor:
    return self


def as_subclass(self, cls):
    """This tensor's data as an instance of ``cls``, a subclass of Tensor (an alias: it shares the
    data and takes part in autograd as a view). ``cls.__init__`` is not called, as in torch.

    >>> import tracenn
    >>> class Tagged(tracenn.Tensor):
    ...     pass
    >>> type(tracenn.ones(2).as_subclass(Tagged)).__name__
    'Tagged'
    """
    if not (isinstance(cls, type) and issubclass(cls, Tensor)):
        raise TypeError("Creating a Tensor subclass from a class that does not inherit from Tensor is not "
                        "possible. Make sure your class inherits from Tensor.")
    out = self.view_as(self)
    out.__class__ = cls
    return out


is_conj = _unary("is_conj", _is_false)
is_neg = _unary("is_neg", _is_false)
resolve_conj = _unary("resolve_conj", _same)
resolve_neg = _unary("resolve_neg", _same)
is_signed = _unary("is_signed", lambda t: t.dtype.is_signed)
is_inference = _unary("is_inference", Tensor.is_inference)


def _get_device(self) -> int:
    """The device index: -1 on the CPU (torch's), the GPU's ordinal otherwise."""
    return -1 if self.device.type == "cpu" else self.device.index or 0


get_device = _unary("get_device", _get_device)


def typename(obj) -> str:
    """A tensor's type string (``'torch.FloatTensor'``), or any object's ``module.qualname``.

    >>> import tracenn
    >>> tracenn.typename(tracenn.zeros(1, dtype=tracenn.int64)), tracenn.typename(1)
    ('torch.LongTensor', 'int')
    """
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(obj, "__module__", "") or ""
    if hasattr(obj, "__qualname__"):
        qualname = obj.__qualname__
    elif hasattr(obj, "__name__"):
        qualname = obj.__name__
    else:
        module, qualname = obj.__class__.__module__ or "", obj.__class__.__qualname__
    return qualname if module in ("", "builtins") else f"{module}.{qualname}"


_WARN_ALWAYS = [False]


def set_warn_always(b: bool) -> None:
    """torch's switch for warnings torch gives once per process (tracenn's own warn-once messages
    go through Python's ``warnings``, whose filters decide instead); the flag is kept and read back."""
    _WARN_ALWAYS[0] = bool(b)


def is_warn_always_enabled() -> bool:
    return _WARN_ALWAYS[0]


def set_flush_denormal(mode: bool) -> bool:
    """Whether denormal floats can be set to flush to zero (torch's contract: True when the mode is
    now ``mode``). XLA's CPU backend always flushes denormals (``1e-40 * 1.5`` is 0 in float32), so
    asking for ``True`` succeeds and asking for ``False`` cannot: it returns False and nothing changes.
    """
    return bool(mode)


def set_default_tensor_type(t) -> None:
    """torch's deprecated way to set the default dtype (and device, for ``cuda`` types): a legacy type
    (``tracenn.DoubleTensor``) or its name (``"torch.DoubleTensor"``). It warns, as torch's."""
    import warnings
    from .. import dtypes as _dt
    from ..dtypes import set_default_dtype
    warnings.warn("torch.set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
                  "torch.set_default_dtype() and torch.set_default_device() as alternatives.", UserWarning,
                  stacklevel=2)
    if isinstance(t, str):
        cuda = ".cuda." in t
        d = _dt._FROM_TYPE_NAME.get(t.replace(".cuda.", "."))
        if d is None:
            raise TypeError(f"invalid type: '{t}'")
    elif hasattr(t, "dtype") and hasattr(t, "device_type"):  # a legacy type
        cuda, d = t.device_type == "cuda", t.dtype
    else:
        raise TypeError(f"invalid type: '{t}'")
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    set_default_dtype(d)
    if cuda:
        from .. import set_default_device
        set_default_device("cuda")


class layout:
    """A tensor's memory layout (``tracenn.strided`` is the only one tracenn has)."""

    def __init__(self, name: str):
        self._name = name

    def __repr__(self):
        return f"tracenn.{self._name}"

    def __reduce__(self):
        return self._name


class memory_format:
    """A memory format, accepted where torch takes ``memory_format=``. XLA lays out the values, so a
    format sets only the strides a tensor reports (``stride()``, ``is_contiguous()``) and which
    ``view()`` calls alias, as torch's would (see ``_api/formats.py``)."""

    def __init__(self, name: str):
        self._name = name

    def __repr__(self):
        return f"tracenn.{self._name}"

    def __reduce__(self):
        return self._name


strided = layout("strided")
contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
legacy_contiguous_format = memory_format("legacy_contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")


def _is_set_to(self, tensor) -> bool:
    """Whether both tensors view the same elements of one storage the same way (torch's)."""
    from .shape import strides_of
    return (self.data_ptr() == tensor.data_ptr() and tuple(self.shape) == tuple(tensor.shape)
            and strides_of(self) == strides_of(tensor) and self.dtype == tensor.dtype)


def _chalf(self, memory_format=None):
    raise TypeError("chalf(): complex32 (torch.chalf) has no JAX dtype, so tracenn has no complex32 tensors; use "
                    "x.to(tracenn.complex64) (x.cfloat())")


# ---- host callbacks ---------------------------------------------------------------------------

def _host_update(name: str, self: Tensor, others, callable) -> Tensor:
    if self.requires_grad:
        raise RuntimeError(f"Can't call {name}() on Variable that requires grad. Use var.detach().{name}() instead.")
    if self.device.type != "cpu":
        raise TypeError(f"{name} is only implemented on CPU tensors")
    from .._dispatch import abstract
    from ..errors import DataDependentError
    from .creation import tensor
    from .shape import broadcast_to
    if abstract(value_of(self)):
        raise DataDependentError(f"{name}() runs a Python function on each value, which a compiled or transformed "
                                 f"function does not have; call it outside, or write the function with tensor ops")
    arrays = [np.asarray(value_of(self))]
    for o in others:
        if not isinstance(o, Tensor):
            raise TypeError(f"{name}(): expected a Tensor, got {type(o).__name__}")
        arrays.append(np.asarray(value_of(broadcast_to(o, tuple(self.shape)))))
    kind = self.dtype
    cast = bool if kind.name == "bool" else (complex if kind.is_complex else (
        float if kind.is_floating_point else int))
    flat = [a.reshape(-1).tolist() for a in arrays]
    out = np.array([cast(callable(*vals)) for vals in zip(*flat)], dtype=arrays[0].dtype)
    return self._set_(tensor(out.reshape(arrays[0].shape), dtype=self.dtype), name)


def apply_(self, callable) -> Tensor:
    """Replace each element ``v`` by ``callable(v)``, in Python on the host (slow; CPU tensors only,
    not under tracenn.compile; as torch's).

    >>> import tracenn
    >>> tracenn.tensor([1, 2]).apply_(lambda v: v * 10)
    tensor([10, 20])
    """
    return _host_update("apply_", self, (), callable)


def map_(self, tensor, callable) -> Tensor:
    """Replace each element ``a`` by ``callable(a, b)``, ``b`` the matching element of ``tensor``
    (broadcast to this shape); in Python on the host, as ``apply_``."""
    return _host_update("map_", self, (tensor,), callable)


def map2_(self, x, y, callable) -> Tensor:
    """``map_`` with two other tensors: ``callable(a, b, c)``."""
    return _host_update("map2_", self, (x, y), callable)
