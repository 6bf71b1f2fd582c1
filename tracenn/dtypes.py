"""torch's dtypes on top of JAX's, and torch's type-promotion rules.

A :class:`dtype` is a small named handle around a numpy dtype (JAX arrays carry numpy dtypes; bfloat16
comes from ml_dtypes). Promotion follows torch, not JAX: tensors with dimensions decide the result,
zero-dim tensors and Python scalars only lift the *category* (bool < integer < floating < complex).
"""
from __future__ import annotations

import builtins
import math

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
        # bfloat16 and the float8 types are ml_dtypes' (numpy kind "V"): ask JAX's type lattice
        self.is_floating_point = builtins.bool(jnp.issubdtype(self.np, jnp.floating))
        self.is_signed = kind in "fic" or self.is_floating_point
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
# torch's "limited support" dtypes (torch >= 2.3): creation, casts, copies, printing, comparisons with
# their own kind; torch refuses to promote them with other dtypes (see promote_types).
uint16 = dtype("uint16", jnp.uint16)
uint32 = dtype("uint32", jnp.uint32)
uint64 = dtype("uint64", jnp.uint64)
float8_e4m3fn = dtype("float8_e4m3fn", jnp.float8_e4m3fn)
float8_e5m2 = dtype("float8_e5m2", jnp.float8_e5m2)
float8_e4m3fnuz = dtype("float8_e4m3fnuz", jnp.float8_e4m3fnuz)
float8_e5m2fnuz = dtype("float8_e5m2fnuz", jnp.float8_e5m2fnuz)
_WIDE_UNSIGNED = (uint16, uint32, uint64)
FLOAT8 = (float8_e4m3fn, float8_e5m2, float8_e4m3fnuz, float8_e5m2fnuz)

ALL = (float16, bfloat16, float32, float64, complex64, complex128, uint8, int8, int16, int32, int64, bool,
       *_WIDE_UNSIGNED, *FLOAT8)
_FROM_NP = {d.np: d for d in ALL}
_NAMES = {d.name: d for d in ALL}
# torch's legacy type strings, used by Tensor.type().
TYPE_NAMES = {
    float32: "torch.FloatTensor", float64: "torch.DoubleTensor", float16: "torch.HalfTensor",
    bfloat16: "torch.BFloat16Tensor", uint8: "torch.ByteTensor", int8: "torch.CharTensor",
    int16: "torch.ShortTensor", int32: "torch.IntTensor", int64: "torch.LongTensor",
    bool: "torch.BoolTensor", complex64: "torch.ComplexFloatTensor", complex128: "torch.ComplexDoubleTensor",
    uint16: "torch.UInt16Tensor", uint32: "torch.UInt32Tensor", uint64: "torch.UInt64Tensor",
    float8_e4m3fn: "torch.Float8_e4m3fnTensor", float8_e5m2: "torch.Float8_e5m2Tensor",
    float8_e4m3fnuz: "torch.Float8_e4m3fnuzTensor", float8_e5m2fnuz: "torch.Float8_e5m2fnuzTensor",
}
_FROM_TYPE_NAME = {v: k for k, v in TYPE_NAMES.items()}
_FROM_TYPE_NAME.update({v.replace("torch.", "tracenn."): k for k, v in TYPE_NAMES.items()})


def scalar_type_name(d: dtype) -> str:
    """torch's C++ ScalarType name of a dtype, as its kernel errors spell it: 'Float', 'Long', 'UInt16'."""
    return TYPE_NAMES[d][len("torch."):-len("Tensor")]


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
        _check_limited_promotion(a, b)
        # JAX's lattice agrees with torch's table for these dtypes (uint8+int8 -> int16,
        # bfloat16+float16 -> float32, int+float16 -> float16), but it is not strict about it:
        # compute with numpy-style kinds and check the result is a tracenn dtype.
        r = from_np(jnp.promote_types(a.np, b.np))
        _promote_cache[key] = r
    return r


def _check_limited_promotion(a: dtype, b: dtype) -> None:
    """torch promotes the float8 types with nothing else, and uint16/32/64 only with real floating
    dtypes (which win): raise its error otherwise."""
    from .errors import DtypeError
    if a in FLOAT8 or b in FLOAT8:
        raise DtypeError("Promotion for Float8 Types is not supported, attempted to promote "
                         f"{scalar_type_name(a)} and {scalar_type_name(b)}; cast with .to(tracenn.float32) first")
    for x, y in ((a, b), (b, a)):
        if x in _WIDE_UNSIGNED and not (y.is_floating_point and not y.is_complex):
            raise DtypeError("Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
                             f"{scalar_type_name(a)} and {scalar_type_name(b)}; cast one of them with .to(...) first")


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




def _g(x) -> str:
    """A number as torch's info reprs print it (C++ stream, 6 significant digits)."""
    return f"{builtins.float(x):g}"


class finfo:
    """Machine limits of a floating dtype, as ``torch.finfo`` (``tracenn.finfo(tracenn.float32).eps``).

    Attributes: ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``), ``resolution``
    and ``dtype`` (the dtype's name). A complex dtype gives its real part's limits; no argument, the
    default dtype's.

    >>> import tracenn
    >>> tracenn.finfo(tracenn.float8_e4m3fn).max
    448.0
    """

    def __init__(self, type=None):
        import ml_dtypes
        d = _default[0] if type is None else as_dtype(type)
        if d.is_complex:
            d = d.to_real()
        if not d.is_floating_point:
            raise TypeError("torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                            "'torch.finfo'")
        info = ml_dtypes.finfo(d.np)  # numpy's limits for numpy's floats; bfloat16 and float8 too
        f = builtins.float
        # torch's c10 reports 2**-3 for float8_e5m2fnuz's epsilon (the spacing at 1 is 2**-2): keep its number
        eps = 0.125 if d is float8_e5m2fnuz else f(info.eps)
        self.bits, self.eps, self.max, self.min = builtins.int(info.bits), eps, f(info.max), f(info.min)
        self.tiny = self.smallest_normal = f(info.smallest_normal)
        # as torch: 10**-(decimal digits of precision), computed in double (ml_dtypes rounds it to the dtype)
        self.resolution, self.dtype = 10.0 ** -math.floor(-math.log10(eps)), d.name

    def __eq__(self, other):
        return isinstance(other, finfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("finfo", self.dtype))

    def __repr__(self) -> str:
        return (f"finfo(resolution={_g(self.resolution)}, min={_g(self.min)}, max={_g(self.max)}, "
                f"eps={_g(self.eps)}, smallest_normal={_g(self.smallest_normal)}, tiny={_g(self.tiny)}, "
                f"dtype={self.dtype})")


class iinfo:
    """Limits of an integer dtype, as ``torch.iinfo``: ``bits``, ``min``, ``max`` and ``dtype``.

    >>> import tracenn
    >>> tracenn.iinfo(tracenn.uint16).max
    65535
    """

    def __init__(self, type):
        d = as_dtype(type)
        if d is bool:
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if d._category != 1:
            raise TypeError("torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                            "'torch.iinfo'")
        info = np.iinfo(d.np)
        i = builtins.int
        self.bits, self.max, self.min, self.dtype = i(info.bits), i(info.max), i(info.min), d.name

    def __eq__(self, other):
        return isinstance(other, iinfo) and self.dtype == other.dtype

    def __hash__(self):
        return hash(("iinfo", self.dtype))

    def __repr__(self) -> str:
        return f"iinfo(min={_g(self.min)}, max={_g(self.max)}, dtype={self.dtype})"
