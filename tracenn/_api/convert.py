"""dtype and device conversions: ``to``, ``type``, ``float()``/``long()``/..., ``cpu()``/``cuda()``."""
from __future__ import annotations

import builtins
import functools

import jax

from .. import _dispatch, _meta, dtypes as _dt
from .._dispatch import apply
from ..device import device as _device, from_jax, to_jax
from ..ops import OPS
from ..tensor import Tensor
from .creation import is_meta_device
from .formats import copy_strides, format_name, restride, to_keeps


def _parse_to(args, kwargs):
    dtype = kwargs.pop("dtype", None)
    dev = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    memory_format = kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dtype, dev = a.dtype, a.device
        elif isinstance(a, _dt.dtype):
            dtype = a
        elif isinstance(a, (str, _device, builtins.int)) and not isinstance(a, builtins.bool):
            dev = a
        elif isinstance(a, builtins.bool):
            pass  # non_blocking / copy passed positionally
        else:
            dtype = _dt.as_dtype(a)
    return dtype, dev, copy, format_name(memory_format, "to")


def to(self, *args, **kwargs):
    """Cast and/or move: ``x.to(tracenn.float64)``, ``x.to("cuda")``, ``x.to(other)``,
    ``x.to(memory_format=tracenn.channels_last)`` (new strides, same values).
    Returns ``self`` when nothing changes (as torch), else a new tensor recorded by autograd, laid
    out as ``memory_format`` says (default ``preserve_format``: ``self``'s strides when dense)."""
    dtype, dev, copy, fmt = _parse_to(args, dict(kwargs))
    if fmt is not None or self._strides is not None:
        return _to_format(self, dtype, dev, copy, fmt)
    return _to(self, dtype, dev, copy)


def _to_format(self, dtype, dev, copy, fmt):
    """``to`` of a tensor with strides of its own, or into a memory format: the copy's strides follow
    torch's rules (checked before anything is copied: a wrong rank raises first)."""
    st = copy_strides(self, fmt)
    r = _to(self, dtype, dev, copy or not to_keeps(self, fmt))
    return self if r is self else restride(r, st)


def _to(self, dtype, dev, copy):
    r = self
    if dtype is not None:
        d = _dt.as_dtype(dtype)
        if d.np != self._value.dtype:
            r = apply(OPS["cast"], (r,), (d.np,))
    if dev is not None:
        if is_meta_device(dev):  # (shape and dtype only; autograd records the move, as torch)
            if r.is_meta:
                return r
            _dispatch.META[0] = True  # (apply now looks for meta: this may be the first meta tensor)
            return apply(OPS["to_device"], (r,), (_meta.META_DEVICE,))
        if self.is_meta:
            raise NotImplementedError(_meta.NO_DATA)
        jd = to_jax(dev)
        if from_jax(jd) != self.device:
            _eager_transfer_kernels(jd)
            r = apply(OPS["to_device"], (r,), (jd,))
    if copy and r is self:
        r = apply(OPS["copy"], (self,))
    return r


def type(self, dtype=None, non_blocking=False, **kwargs):
    """With no argument, torch's type string ('torch.FloatTensor'); else a cast."""
    if dtype is None:
        name = _dt.TYPE_NAMES[self.dtype]
        return name.replace("torch.", "torch.cuda.") if self.device.type == "cuda" else name
    if hasattr(dtype, "device_type"):  # a legacy type (tracenn.LongTensor, tracenn.cuda.FloatTensor): its device too
        return to(self, dtype.device_type, dtype.dtype)
    return to(self, _dt.as_dtype(dtype))


def type_as(self, other):
    return to(self, other.dtype)


# NB: below, ``float``/``int``/``bool``... become Tensor-method functions; use ``builtins.*``.
def _caster(d):
    def f(self, memory_format=None):
        return to(self, d, memory_format=memory_format)
    f.__name__ = d.name
    f.__doc__ = f"``self.to({d!r})``"
    return f


float = _caster(_dt.float32)
double = _caster(_dt.float64)
half = _caster(_dt.float16)
bfloat16 = _caster(_dt.bfloat16)
long = _caster(_dt.int64)
int = _caster(_dt.int32)
short = _caster(_dt.int16)
char = _caster(_dt.int8)
byte = _caster(_dt.uint8)
bool = _caster(_dt.bool)
cfloat = _caster(_dt.complex64)
cdouble = _caster(_dt.complex128)


def cpu(self, memory_format=None):
    return to(self, "cpu", memory_format=memory_format)


def cuda(self, device=None, non_blocking=False, memory_format=None):
    if device is None:
        device = "cuda"
    elif isinstance(device, builtins.int):
        device = f"cuda:{device}"
    return to(self, device, memory_format=memory_format)


def _eager_transfer_kernels(jd) -> None:
    """Eager kernels for moving to device ``jd``, un-jitted: inside ``jax.jit`` a ``device_put``
    to another device is ignored (the computation runs where its inputs are), so the move and
    its gradient (moving back to where the input was) must be plain ``device_put`` calls."""
    op = OPS["to_device"]
    if (jd,) in op._fwd:
        return
    op._fwd[(jd,)] = functools.partial(jax.device_put, device=jd)

    def back(g, out, x):
        return (jax.device_put(g, next(iter(x.devices()))),)

    op._bwd[((jd,), (True,))] = back
