"""torch's dtypes on top of JAX's, and torch's type-promotion rules.

A :class:`dtype` is a small named handle around a numpy dtype (JAX arrays carry numpy dtypes; bfloat16
comes from ml_dtypes). Promotion follows torch, not JAX: tensors with dimensions decide the result,
zero-dim tensors and Python scalars only lift the *category* (bool < integer < floating < complex).
"""
from __future__ import annotations

import builtins

import jax.numpy as jnp
import numpy as np


class dtype:
    """A tensor element type, e.g. ``tracenn.float32``. Compare with ``is`` or ``==``."""

    __slots__ = ("name", "np", "is_floating_point", "is_complex", "is_signed", "itemsize", "_category")

    def __init__(self, name: str, np_dtype):
        self.name = name
        self.np = np.dtype(np_dtype)
        kind = self.np.kind
        self.is_complex = kind == "c"
        self.is_floating_point = kind == "f" or name == "bfloat16"
        self.is_signed = kind in "fic" or name == "bfloat16"
        self.itemsize = self.np.itemsize
        self._category = 0 if kind == "b" else 1 if kind in "iu" else 3 if kind == "c" else 2

    def __repr__(self) -> str:
        return f"tracenn.{self.name}"

    def __reduce__(self):
        return (_by_name, (self.name,))

    def to_real(self) -> "dtype":
        return {complex64: float32, complex128: float64}.get(self, self)

    def to_complex(self) -> "dtype":
        return {float64: complex128, complex128: complex128}.get(self, complex64)


float16 = half = dtype("float16", jnp.float16)
bfloat16 = dtype("bfloat16", jnp.bfloat16)
float32 = float = dtype("float32", jnp.float32)
float64 = double = dtype("float64", jnp.float64)
complex64 = cfloat = dtype("complex64", jnp.complex64)
complex128 = cdouble = dtype("complex128", jnp.complex128)
uint8 = dtype("uint8", jnp.uint8)
int8 = dtype("int8", jnp.int8)
int16 = short = dtype("int16", jnp.int16)
int32 = int = dtype("int32", jnp.int32)
int64 = long = dtype("int64", jnp.int64)
bool = dtype("bool", jnp.bool_)

ALL = (float16, bfloat16, float32, float64, complex64, complex128, uint8, int8, int16, int32, int64, bool)
_FROM_NP = {d.np: d for d in ALL}
_NAMES = {d.name: d for d in ALL}
# torch's legacy type strings, used by Tensor.type().
TYPE_NAMES = {
    float32: "torch.FloatTensor", float64: "torch.DoubleTensor", float16: "torch.HalfTensor",
    bfloat16: "torch.BFloat16Tensor", uint8: "torch.ByteTensor", int8: "torch.CharTensor",
    int16: "torch.ShortTensor", int32: "torch.IntTensor", int64: "torch.LongTensor",
    bool: "torch.BoolTensor", complex64: "torch.ComplexFloatTensor", complex128: "torch.ComplexDoubleTensor",
}
_FROM_TYPE_NAME = {v: k for k, v in TYPE_NAMES.items()}
_FROM_TYPE_NAME.update({v.replace("torch.", "tracenn."): k for k, v in TYPE_NAMES.items()})


def _by_name(name: str) -> dtype:
    return _NAMES[name]


def from_np(np_dtype) -> dtype:
    """The tracenn dtype of a numpy/JAX dtype."""
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        d = np.dtype(np_dtype)
        if d in _FROM_NP:
            return _FROM_NP[d]
        raise TypeError(f"tracenn has no dtype for numpy dtype {d}") from None


def from_type_name(name: str) -> dtype:
    try:
        return _FROM_TYPE_NAME[name]
    except KeyError:
        raise ValueError(f"invalid type: '{name}'") from None


_default = [float32]


def get_default_dtype() -> dtype:
    """The dtype of floating-point tensors created from Python floats (float32 unless changed)."""
    return _default[0]


def set_default_dtype(d: dtype) -> None:
    """Set the default floating-point dtype, like ``torch.set_default_dtype``."""
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default[0] = d


def as_dtype(d) -> dtype:
    """Accept a tracenn dtype, a numpy/JAX dtype, a Python type or a name; return a tracenn dtype."""
    if isinstance(d, dtype):
        return d
    if d is builtins.float:
        return _default[0]
    if d is builtins.int:
        return int64
    if d is builtins.bool:
        return bool
    if d is builtins.complex:
        return _default[0].to_complex()
    if isinstance(d, str):
        if d in _NAMES:
            return _NAMES[d]
        return from_type_name(d)
    return from_np(np.dtype(d))


_promote_cache: dict = {}


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both can be cast to without losing category."""
    if a is b:
        return a
    key = (a, b)
    r = _promote_cache.get(key)
    if r is None:
        # JAX's lattice agrees with torch's table for these dtypes (uint8+int8 -> int16,
        # bfloat16+float16 -> float32, int+float16 -> float16), but it is not strict about it:
        # compute with numpy-style kinds and check the result is a tracenn dtype.
        r = from_np(jnp.promote_types(a.np, b.np))
        _promote_cache[key] = r
    return r


def scalar_dtype(x) -> dtype:
    """The dtype torch gives a Python scalar on its own (tensor(3) is int64, tensor(3.) float32)."""
    t = type(x)
    if t is builtins.bool or isinstance(x, (np.bool_,)):
        return bool
    if t is builtins.int or isinstance(x, np.integer):
        return int64
    if t is builtins.float or isinstance(x, np.floating):
        return _default[0]
    if t is builtins.complex or isinstance(x, np.complexfloating):
        return _default[0].to_complex()
    raise TypeError(f"expected a Python number, got {type(x).__name__}")


def _combine(result: dtype | None, other: dtype | None) -> dtype | None:
    """Lift ``result`` by a lower-priority participant (zero-dim tensor or scalar): only its category counts."""
    if other is None:
        return result
    if result is None:
        return other
    if other._category > result._category:
        if result._category == 2 and other._category == 3:
            return result.to_complex()
        return other
    return result


def result_type(dim_dtypes, zero_dim_dtypes, scalars) -> dtype:
    """torch.result_type over tensors with dimensions, zero-dim tensors and Python scalars."""
    dim = None
    for d in dim_dtypes:
        dim = d if dim is None else promote_types(dim, d)
    zero = None
    for d in zero_dim_dtypes:
        zero = d if zero is None else promote_types(zero, d)
    wrapped = None
    for s in scalars:
        d = scalar_dtype(s)
        wrapped = d if wrapped is None else promote_types(wrapped, d)
    return _combine(_combine(dim, zero), wrapped)


# Short dtype names of the printed IR (as JAX's jaxprs spell them).
SHORT_NAMES = {"float32": "f32", "float64": "f64", "float16": "f16", "bfloat16": "bf16", "int64": "i64",
               "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "uint16": "u16",
               "uint32": "u32", "uint64": "u64", "bool": "bool", "complex64": "c64",
               "complex128": "c128"}


def type_str(shape, dtype) -> str:
    """``f32[64,10]``: how the printed IR and compile messages spell a shape and dtype."""
    name = np.dtype(dtype).name
    return f"{SHORT_NAMES.get(name, name)}[{','.join(str(builtins.int(s)) for s in shape)}]"


