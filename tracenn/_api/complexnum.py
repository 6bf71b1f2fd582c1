"""Complex numbers: ``real``/``imag`` (writable views of a complex tensor, as torch's),
``view_as_real``/``view_as_complex``, ``complex``, ``polar`` and ``angle``.

Gradients follow torch's convention (the conjugate of JAX's): see ``ops/registry.py::_backward``
and docs/design.md, "Complex numbers".
"""
from __future__ import annotations

import numpy as np

from .._dispatch import apply
from ..errors import DtypeError, ShapeError
from ..ops import OPS
from ..tensor import Tensor
from ._common import float_np_dtype
from .math import _out
from .shape import contiguous_strides


def _strides_of(x: Tensor) -> tuple:
    return x._strides if x._strides is not None else contiguous_strides(x._value.shape)


def _complex_view(x: Tensor, name: str, strides) -> Tensor:
    r = apply(OPS[name], (x,))
    return x._make_view(r._value, (name, ()), node=r._node, requires_grad=r._requires_grad, strides=strides)


def real(input: Tensor) -> Tensor:
    """The real part of ``input``: for a complex tensor a view (writing to it changes ``input``);
    a real tensor is returned as it is, as torch's.

    >>> import tracenn
    >>> z = tracenn.tensor([1 + 2j, 3 - 1j])
    >>> _ = z.real.add_(10)
    >>> z
    tensor([11.+2.j, 13.-1.j])
    """
    if not input.is_complex():
        return input
    return _complex_view(input, "real", tuple(2 * s for s in _strides_of(input)))


def imag(input: Tensor) -> Tensor:
    """The imaginary part of a complex tensor, as a view (writing to it changes ``input``).

    Raises RuntimeError for a real tensor, as torch does.

    >>> import tracenn
    >>> tracenn.tensor([1 + 2j, 3 - 1j]).imag
    tensor([ 2., -1.])
    """
    if not input.is_complex():
        raise DtypeError("imag is not implemented for tensors with non-complex dtypes.")
    return _complex_view(input, "imag", tuple(2 * s for s in _strides_of(input)))


def view_as_real(input: Tensor) -> Tensor:
    """A complex tensor as a real view with a last dimension of size 2 (real, imaginary).

    >>> import tracenn
    >>> tracenn.view_as_real(tracenn.tensor([1 + 2j]))
    tensor([[1., 2.]])
    """
    if not input.is_complex():
        raise DtypeError("view_as_real is only supported for complex tensors")
    return _complex_view(input, "view_as_real", tuple(2 * s for s in _strides_of(input)) + (1,))


def view_as_complex(input: Tensor) -> Tensor:
    """A float32/float64 tensor whose last dimension has size 2 as a complex view of it.

    >>> import tracenn
    >>> tracenn.view_as_complex(tracenn.tensor([[1.0, 2.0], [3.0, -4.0]]))
    tensor([1.+2.j, 3.-4.j])
    """
    d = input._value.dtype
    if d not in (np.float32, np.float64):
        raise DtypeError("view_as_complex is only supported for float and double tensors, but got a "
                         f"tensor of scalar type: {_scalar_name(d)}")
    if input.ndim == 0 or input.shape[-1] != 2:
        raise ShapeError("Tensor must have a last dimension of size 2")
    st = _strides_of(input)
    if st[-1] != 1:
        raise ShapeError("Tensor must have a last dimension with stride 1")
    return _complex_view(input, "view_as_complex", tuple(s // 2 for s in st[:-1]))


def _scalar_name(d) -> str:
    """torch's scalar type name (Float, Long, ComplexDouble...) of numpy dtype ``d``."""
    from .. import dtypes as _dt
    from ..tensor import _TORCH_NAMES
    return _TORCH_NAMES[_dt.from_np(np.dtype(d))]


def _check_parts(re: Tensor, im: Tensor, what: str):
    """torch's checks on the two real parts of ``complex``/``polar``."""
    a, b = re._value.dtype, im._value.dtype
    if a.kind != "f" or b.kind != "f":
        raise DtypeError(f"Expected both inputs to be Half, Float or Double tensors but got "
                         f"{_scalar_name(a)} and {_scalar_name(b)}")
    if a != b:
        raise DtypeError(f"Expected object of scalar type {_scalar_name(a)} but got scalar type "
                         f"{_scalar_name(b)} for second argument")
    if a.itemsize < 4:
        raise DtypeError(f"{what}: {_scalar_name(a)} parts would make a complex32 tensor, which "
                         "tracenn does not have; use float32 or float64 parts")


def complex(real: Tensor, imag: Tensor, *, out=None) -> Tensor:
    """The complex tensor ``real + imag * 1j`` (both float32, or both float64; they broadcast).

    >>> import tracenn
    >>> tracenn.complex(tracenn.tensor([1.0, 2.0]), tracenn.tensor([3.0, -4.0]))
    tensor([1.+3.j, 2.-4.j])
    """
    _check_parts(real, imag, "complex")
    return _out(apply(OPS["complex"], (real, imag)), out)


def polar(abs: Tensor, angle: Tensor, *, out=None) -> Tensor:
    """The complex tensor with absolute value ``abs`` and angle ``angle``:
    ``abs * (cos(angle) + 1j * sin(angle))``.

    >>> import math, tracenn
    >>> tracenn.polar(tracenn.tensor([2.0]), tracenn.tensor([math.pi / 2])).imag
    tensor([2.])
    """
    _check_parts(abs, angle, "polar")
    return _out(apply(OPS["polar"], (abs, angle)), out)


def angle(input: Tensor, *, out=None) -> Tensor:
    """The argument of each element in radians: of a complex tensor ``atan2(imag, real)``, of a
    real one 0 (x >= 0) or pi (x < 0), with NaN kept; integers give the default float dtype.

    >>> import tracenn
    >>> tracenn.angle(tracenn.tensor([1.0, -2.0]))
    tensor([0.0000, 3.1416])
    """
    d = input._value.dtype
    dt = np.dtype(d.type(0).real.dtype) if d.kind == "c" else float_np_dtype(d)
    return _out(apply(OPS["angle"], (input,), (dt,)), out)
