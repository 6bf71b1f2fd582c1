"""Tensor creation: tensor/as_tensor/from_numpy, zeros/ones/full/empty (and *_like), arange,
linspace, logspace, eye — with torch's dtype inference (Python floats -> default dtype, ints ->
int64, numpy arrays keep their dtype) and devices."""
from __future__ import annotations

import collections.abc
import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dispatch, _meta
from .. import dtypes as _dt
from .._dispatch import apply
from ..device import to_jax
from ..errors import DtypeError
from ..ops import OPS
from ..tensor import Tensor
from ._common import _python_float, shape_arg, value_of


def _infer_python(data):
    """torch's dtype for nested Python data: the promotion (``promote_types``) of every element's
    dtype — bool, int -> int64, float -> default, complex -> default complex; tensors, numpy arrays
    and numpy scalars inside keep theirs (``[np.float32(1), 2.0]`` is float32, ``[t_f16, 2.5]``
    float32); an empty sequence is the default dtype. Any sequence counts (``range``, ``deque``)."""
    kinds = set()
    default = _dt.get_default_dtype()

    def walk(x):
        t = type(x)
        if t is float:  # (the common leaves first: the ABC checks below are slow)
            kinds.add(default)
        elif t is int:
            kinds.add(_dt.int64)
        elif t is list or t is tuple or isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        elif isinstance(x, Tensor):
            kinds.add(x.dtype)
        elif isinstance(x, np.generic):  # numpy scalars keep their dtype, as in torch
            kinds.add(_dt.from_np(x.dtype))
        elif isinstance(x, bool):
            kinds.add(_dt.bool)
        elif isinstance(x, numbers.Integral):
            kinds.add(_dt.int64)
        elif isinstance(x, numbers.Real):
            kinds.add(default)
        elif isinstance(x, numbers.Complex):
            kinds.add(default.to_complex())
        elif isinstance(x, np.ndarray):  # arrays inside a list keep their dtype too
            kinds.add(_dt.from_np(x.dtype))
        elif _is_sequence(x):
            for y in x:
                walk(y)
        else:
            raise DtypeError(f"Could not infer dtype of {type(x).__name__}: tracenn.tensor takes numbers, "
                             "(nested) sequences of numbers, numpy arrays and tensors")
    walk(data)
    if not kinds:
        return default
    r = None
    for k in kinds:
        r = k if r is None else _dt.promote_types(r, k)
    return r


def _is_sequence(x) -> bool:
    """A sequence torch walks into (``range``, ``deque``, ...); strings and bytes are not data."""
    return isinstance(x, collections.abc.Sequence) and not isinstance(x, (str, bytes, bytearray))


def _tolist(x):
    """``x`` with tensors as numpy arrays and every sequence as a list, for ``np.array``."""
    t = type(x)
    if t is float or t is int:
        return x
    if t is list or t is tuple or isinstance(x, (list, tuple)):
        return [_tolist(y) for y in x]
    if isinstance(x, Tensor):
        return np.asarray(value_of(x))
    if isinstance(x, (np.ndarray, np.generic, numbers.Number)) or not _is_sequence(x):
        return x
    return [_tolist(y) for y in x]


def _to_array(data, dtype=None, device=None):
    """A jax array for ``data`` with torch's dtype inference, placed on ``device``."""
    d = None if dtype is None else _dt.as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = value_of(data)
        if d is not None and arr.dtype != d.np:
            arr = arr.astype(d.np)
    elif isinstance(data, (jax.Array, np.ndarray, np.generic)):
        arr = data
        if d is None:
            d = _dt.from_np(np.asarray(data).dtype if isinstance(data, np.generic) else data.dtype)
        arr = jnp.array(arr, dtype=d.np, copy=True)  # torch.tensor copies: later numpy writes don't leak in
    else:
        if d is None:
            d = _infer_python(data)
        try:
            host = np.array(_tolist(data), dtype=d.np if d is not _dt.bfloat16 else np.float32)
        except (ValueError, TypeError) as e:
            raise ValueError(f"expected a (nested) sequence of numbers of one shape: {e}") from None
        arr = jnp.asarray(host, dtype=d.np)
    if device is not None:
        arr = place(arr, device)
    elif _meta.DEFAULT[0] and _dispatch.TRACE[0] is None:  # (with tracenn.device("meta"))
        arr = _meta.like(arr)
    return arr


def is_meta_device(device) -> bool:
    """Whether a device spec (a string, ``tracenn.device`` or ordinal) names the meta device."""
    return getattr(device, "type", None) == "meta" or isinstance(device, str) and device.partition(":")[0] == "meta"


def place(arr, device):
    """``arr`` on ``device``. The default device is left alone: an explicitly placed (committed)
    array would make every later op compile a second kernel for it. On ``meta``, only its shape
    and dtype are kept; a meta array has no data to place anywhere else."""
    if getattr(arr, "symbolic", False):  # while compiling: the program runs on its inputs' device
        return arr
    if is_meta_device(device):
        return arr if _meta.is_meta(arr) and arr.recipe is None else _meta.like(arr)
    if _meta.is_meta(arr):  # (a draw with device="cpu" inside `with tracenn.device("meta")`: its values)
        arr = _meta.materialize(arr)
    jd = to_jax(device)
    if jd == jax.config.jax_default_device:
        return arr
    return jax.device_put(arr, jd)


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """A new tensor holding a copy of ``data`` (list, number, numpy array or tensor).

    >>> import tracenn
    >>> tracenn.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> tracenn.tensor([1.5, 2.0]).dtype
    tracenn.float32
    """
    to = None
    if _dispatch.TRACE[0] is not None and isinstance(data, Tensor) and _python_float(data):
        # a compiled call's float input standing for a Python number (a float argument or attribute
        # that changes: runtime/floats.py): tensor(0.5) is a 0-d tensor of the default dtype, made from it
        # (not a float64 one: it would read as the number itself; that one is made from the number)
        to = _dt.as_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    if to is not None and to != _dt.float64:
        t = data.to(dtype=to)
    else:
        t = _new(_to_array(data, dtype, device))
    if requires_grad:
        t.requires_grad_()
    return t


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but returns ``data`` itself when it is already a tensor of that dtype/device."""
    if isinstance(data, Tensor):
        return data.to(dtype=dtype, device=device) if (dtype or device) else data
    return tensor(data, dtype=dtype, device=device)


asarray = as_tensor


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor with the values of a numpy array (a copy: JAX arrays do not share host memory)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    return _new(jnp.array(ndarray, copy=True))


def _new(arr) -> Tensor:
    """A new tensor holding ``arr``. While compiling, a tensor made from data inside the traced
    code is a constant of the graph (symbolic like every tensor made there, so it may be changed
    in place and flows through the program like any value)."""
    tracer = _dispatch.TRACE[0]
    if tracer is not None:
        return Tensor._wrap(tracer.const(arr))
    return Tensor._wrap(arr)


def _factory(device, make):
    """``make()`` (a factory's tensor) on ``device``. An explicit device overrides a meta default
    device (``with tracenn.device("meta")``) for the factory ops ``make`` applies; on ``meta`` they
    give meta tensors (shapes only: nothing is computed)."""
    if device is not None and (_meta.DEFAULT[0] or is_meta_device(device)):
        prev = _meta.DEFAULT[0]
        _meta.set_default(_meta.EXPLICIT if is_meta_device(device) else 0)
        try:
            t = make()
        finally:
            _meta.DEFAULT[0] = prev
    else:
        t = make()
    if device is not None:
        t._value = place(t._value, device)
    return t


def _make(shape, value, dtype, device, requires_grad):
    d = _dt.as_dtype(dtype) if dtype is not None else (
        _dt.scalar_dtype(value) if not isinstance(value, float) else _dt.get_default_dtype())
    for s in shape:
        if s < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    t = _factory(device, lambda: apply(OPS["full"], (value,), (shape, d.np)))
    if requires_grad:
        t.requires_grad_()
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False, out=None):
    """A tensor of zeros (default float dtype)."""
    return _make(shape_arg(size), 0.0, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False, out=None):
    return _make(shape_arg(size), 1.0, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False, memory_format=None, pin_memory=False):
    """Uninitialised in torch; zeros here (JAX has no uninitialised memory). ``memory_format`` sets
    the strides (``tracenn.channels_last`` for a 4-d size), not the values."""
    shape = shape_arg(size)
    st = None
    if memory_format is not None:
        from .formats import format_name, format_strides
        name = format_name(memory_format, "empty")
        if name == "preserve_format":
            raise RuntimeError("unsupported memory format Preserve")
        st = format_strides(shape, name)
    t = _make(shape, 0.0, dtype, device, requires_grad)
    if st is not None and st != t.stride():  # (contiguous: recorded as None)
        t._strides = st
    return t


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value``; the dtype follows the value (1 -> int64, 1. -> float)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    return _make(shape_arg((size,)), fill_value, dtype, device, requires_grad)


def _like(input, dtype, device):
    return (input.dtype if dtype is None else dtype), (input.device if device is None else device)


def _make_like(input, fill_value, dtype, device, requires_grad, memory_format, fn):
    """A new tensor shaped as ``input``, with the strides ``memory_format`` gives it (default
    preserve_format: ``input``'s own when dense, as torch's)."""
    st = None
    if memory_format is not None or getattr(input, "_strides", None) is not None:
        from .formats import copy_strides, format_name
        st = copy_strides(input, format_name(memory_format, fn))
    d, dev = _like(input, dtype, device)
    t = _make(tuple(input.shape), fill_value, d, dev, requires_grad)
    if st is not None:
        t._strides = st
    return t


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _make_like(input, 0, dtype, device, requires_grad, memory_format, "zeros_like")


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _make_like(input, 1, dtype, device, requires_grad, memory_format, "ones_like")


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _make_like(input, 0, dtype, device, requires_grad, memory_format, "empty_like")


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    return _make_like(input, fill_value, dtype, device, requires_grad, memory_format, "full_like")


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (exclusive) by ``step``; int64 unless a bound is a float.

    torch's rules for an integer ``dtype`` with float arguments: the bounds are checked as floats,
    the values are ``trunc(start) + i * trunc(step)``, and the length is
    ``ceil((end - start) / step)`` of the floats — except for int64, whose length comes from the
    truncated arguments (and whose truncated step must not be 0).

    >>> import tracenn
    >>> tracenn.arange(0, 5, 1.5)
    tensor([0.0000, 1.5000, 3.0000, 4.5000])
    >>> tracenn.arange(0, 5, 1.5, dtype=tracenn.int64), tracenn.arange(0, 5, 1.5, dtype=tracenn.int32)
    (tensor([0, 1, 2, 3, 4]), tensor([0, 1, 2, 3], dtype=tracenn.int32))
    """
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    fstart, fend, fstep = float(start), float(end), float(step)  # torch validates in double
    if not (fstep > 0 or fstep < 0):
        raise RuntimeError("step must be nonzero")
    if not (math.isfinite(fstart) and math.isfinite(fend)):
        raise RuntimeError(f"unsupported range: {start} -> {end}")
    if not (fstep > 0 and fend >= fstart or fstep < 0 and fend <= fstart):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    if dtype is None:
        d = _dt.int64 if all(isinstance(v, numbers.Integral) for v in (start, end, step)) else \
            _dt.get_default_dtype()
    else:
        d = _dt.as_dtype(dtype)
    if d.np.kind in "iu" and not all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        t = _factory(device, lambda: _int_arange(start, end, step, fstart, fend, fstep, d))
    else:
        t = _factory(device, lambda: apply(OPS["arange"], (), (start, end, step, d.np)))
    if requires_grad:
        t.requires_grad_()
    return t


def _int_arange(start, end, step, fstart, fend, fstep, d) -> Tensor:
    """An integer-dtype arange with a float argument, by torch's kernel: its int64 accumulator holds
    the truncated arguments; int64 sizes the range from them, the narrower dtypes from the floats."""
    xstart, xend, xstep = int(start), int(end), int(step)  # (int() truncates, as C++'s cast)
    if d is _dt.int64:
        if xstep == 0:
            raise ValueError("step must be nonzero")
        n = abs(xend - xstart + xstep - (1 if xstep > 0 else -1)) // abs(xstep)
    else:
        n = max(0, math.ceil((fend - fstart) / fstep))
    if xstep == 0:  # (a narrow dtype keeps a step that truncates to 0: every value is trunc(start))
        return apply(OPS["full"], (np.array(xstart).astype(d.np),), ((n,), d.np))
    return apply(OPS["arange"], (), (xstart, xstart + n * xstep, xstep, d.np))


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    d = _dt.as_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    traced = [isinstance(v, Tensor) and _dispatch.abstract(value_of(v)) for v in (start, end)]
    if any(traced):  # ends computed in a compiled or transformed function
        t = _factory(device, lambda: _linspace_in_program(start, end, int(steps), d))
    else:
        t = _factory(device, lambda: apply(OPS["linspace"], (), (float(start), float(end), int(steps), d.np)))
    if requires_grad:
        t.requires_grad_()
    return t


def _linspace_in_program(start, end, steps, d):
    """linspace between ends that are only known in the program: the linspace op's formula, in tensor
    ops (half from each end, products in float64). The step is divided in float64 and rounded to the
    dtype: XLA turns a division by a constant into a multiplication by its reciprocal, 1 ulp off."""
    from .math import where
    lo, hi = (v.detach().to(d) if isinstance(v, Tensor) else full((), v, dtype=d) for v in (start, end))
    if steps <= 1:
        return lo.reshape(1)[:steps]
    step = ((hi - lo).double() / (steps - 1)).to(d).double()
    i = arange(steps, dtype=_dt.float64)
    return where(i < steps // 2, lo.double() + step * i, hi.double() - step * (steps - 1 - i)).to(d)


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    lin = linspace(start, end, steps, dtype=_dt.float64, device=device)
    from .math import pow
    return pow(base, lin).to(dtype or _dt.get_default_dtype())


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    d = _dt.as_dtype(dtype) if dtype is not None else _dt.get_default_dtype()
    t = _factory(device, lambda: apply(OPS["eye"], (), (int(n), int(n if m is None else m), d.np)))
    if requires_grad:
        t.requires_grad_()
    return t


def tril_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.tril_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype, device=device)


def triu_indices(row, col, offset=0, *, dtype=None, device=None):
    r, c = np.triu_indices(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype, device=device)


def scalar_tensor(s, *, dtype=None, device=None):
    return tensor(s, dtype=dtype or _dt.get_default_dtype(), device=device)


def frombuffer(buffer, *, dtype, count=-1, offset=0, requires_grad=False):
    """A 1-d tensor of ``dtype`` read from the bytes of a Python buffer (``bytes``, ``bytearray``,
    ``array.array``, ``memoryview``...): ``count`` elements (-1: all) from byte ``offset``.

    torch's tensor shares the buffer's memory; tracenn's is a copy (a JAX array cannot alias
    Python memory), so later writes to the buffer do not show in it, nor the reverse.

    >>> import tracenn
    >>> tracenn.frombuffer(bytearray(b"\\x01\\x00\\x02\\x00"), dtype=tracenn.int16)
    tensor([1, 2], dtype=tracenn.int16)
    """
    d = _dt.as_dtype(dtype)
    try:
        view = memoryview(buffer)
    except TypeError:
        raise TypeError(f"object of type '{type(buffer).__name__}' does not implement the buffer protocol "
                        "(pass bytes, bytearray, array.array, memoryview or a numpy array)") from None
    length = view.nbytes
    item = np.dtype(d.np).itemsize
    if length <= 0 or count == 0:
        raise ValueError(f"both buffer length ({length}) and count ({count}) must not be 0")
    if not 0 <= offset < length:
        raise ValueError(f"offset ({offset} bytes) must be non-negative and no greater than buffer length "
                         f"({length} bytes) minus 1")
    if count < 0:
        if (length - offset) % item:
            raise ValueError(f"buffer length ({length - offset} bytes) after offset ({offset} bytes) must be a "
                             f"multiple of element size ({item})")
        count = (length - offset) // item
    elif offset + count * item > length:
        raise ValueError(f"requested buffer length ({count} * {item} bytes) after offset ({offset} bytes) must not "
                         f"be greater than actual buffer length ({length} bytes)")
    host = np.frombuffer(view.cast("B"), dtype=d.np, count=count, offset=offset)
    t = _new(jnp.array(host, copy=True))
    return t.requires_grad_() if requires_grad else t


def torch_range(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """``tracenn.range`` (torch's deprecated ``torch.range``; it warns): values from ``start`` to
    ``end`` *inclusive* by ``step``, of the default float dtype unless ``dtype`` is given. Use
    ``arange`` (end exclusive).

    >>> import warnings, tracenn
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     tracenn.range(1, 3)
    tensor([1., 2., 3.])
    """
    import warnings
    warnings.warn("torch.range is deprecated and will be removed in a future release because its behavior is "
                  "inconsistent with Python's range builtin. Instead, use torch.arange, which produces values in "
                  "[start, end).", UserWarning, stacklevel=2)
    if end is None:
        start, end = 0, start
    fstart, fend, fstep = float(start), float(end), float(step)
    if not (fstep > 0 or fstep < 0):
        raise RuntimeError("step must be nonzero")
    if not (fstep > 0 and fend >= fstart or fstep < 0 and fend <= fstart):
        raise RuntimeError("upper bound and lower bound inconsistent with step sign")
    d = _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)
    n = int(math.floor((fend - fstart) / fstep)) + 1
    t = _new(jnp.asarray(fstart + np.arange(n, dtype=np.float64) * fstep, dtype=d.np))
    if device is not None:
        t._value = place(t._value, device)
    return t.requires_grad_() if requires_grad else t


def from_file(filename, shared=None, size=0, *, dtype=None, layout=None, device=None, pin_memory=False):
    """A 1-d tensor of ``size`` elements of ``dtype`` (default: the default dtype) read from the start
    of a binary file. ``shared=True`` (torch maps the file, so writes to the tensor reach it) is not
    possible with JAX arrays and raises; read the file, and write it back with ``numpy().tofile``.
    """
    if shared:
        raise RuntimeError("from_file(shared=True) maps the file into the tensor's memory, which tracenn cannot "
                           "(JAX arrays are values): use shared=False to read a copy, and t.numpy().tofile(...) to "
                           "write changes back")
    d = _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)
    item = np.dtype(d.np).itemsize
    import os
    have = os.path.getsize(filename)
    if have < size * item:
        raise RuntimeError(f"file <{filename}> size <{have}> is smaller than the required mapping size "
                           f"<{size * item}>")
    host = np.fromfile(filename, dtype=d.np, count=size) if size else np.zeros(0, d.np)
    t = _new(jnp.asarray(host))
    if device is not None:
        t._value = place(t._value, device)
    return t
