"""torch.types' aliases (``torch.types``), for code that annotates with them.

``from torch.types import Number, _size, Device`` works unchanged under ``import tracenn as torch``;
the aliases name tracenn's :class:`~tracenn.Tensor`, :class:`~tracenn.Size`, ``device``, ``dtype``
and ``layout``. tracenn has no symbolic ints, floats or bools (a compiled call sees concrete shapes),
so ``IntLikeType`` is ``int``, ``FloatLikeType`` is ``float``, ``BoolLikeType`` is ``bool`` and
``py_sym_types`` is empty. torch's ``DispatchKey``, ``qscheme`` and autograd ``GradientEdge`` have no
counterpart and are left out, with the aliases built on them (``_dispatchkey``, ``_qscheme``,
``_TensorOrTensorsOrGradEdge``, ``PySymType``).

>>> import tracenn
>>> from tracenn.types import Number, _Number
>>> isinstance(2.5, _Number), isinstance(tracenn.zeros(1), _Number)
(True, False)
"""
import os
from builtins import (  # noqa: F401
    bool as _bool,
    bytes as _bytes,
    complex as _complex,
    float as _float,
    int as _int,
    str as _str,
)
from collections.abc import Sequence
from typing import IO, Any, TypeAlias

from ._api.query import layout as _layout  # noqa: F401
from .device import device as _device
from .dtypes import dtype as _dtype
from .size import Size
from .tensor import Tensor

__all__ = ["Number", "Device", "FileLike", "Storage"]

_TensorOrTensors: TypeAlias = Tensor | Sequence[Tensor]
_TensorOrOptionalTensors: TypeAlias = Tensor | Sequence[Tensor | None]

_size: TypeAlias = Size | list[int] | tuple[int, ...]
_symsize: TypeAlias = Size | Sequence[int]

# No symbolic values in tracenn: each "like" type is its plain Python type.
IntLikeType: TypeAlias = int
FloatLikeType: TypeAlias = float
BoolLikeType: TypeAlias = bool
py_sym_types: tuple = ()

# "Numeric" things, as torch's docs say; _Number is the tuple for isinstance checks.
Number: TypeAlias = int | float | bool
_Number = (int, float, bool)

FileLike: TypeAlias = str | os.PathLike[str] | IO[bytes]

# Anything that names a device (not a device object itself); None means the default device.
Device: TypeAlias = _device | str | int | None


class Storage:
    """torch's storage protocol: the methods a storage class implements (annotation only)."""

    _cdata: int
    device: _device
    dtype: _dtype
    _torch_load_uninitialized: bool

    def __deepcopy__(self, memo: dict[int, Any]) -> "Storage":
        raise NotImplementedError

    def _new_shared(self, size: int) -> "Storage":
        raise NotImplementedError

    def _write_file(self, f: Any, is_real_file: bool, save_size: bool, element_size: int) -> None:
        raise NotImplementedError

    def element_size(self) -> int:
        raise NotImplementedError

    def is_shared(self) -> bool:
        raise NotImplementedError

    def share_memory_(self) -> "Storage":
        raise NotImplementedError

    def nbytes(self) -> int:
        raise NotImplementedError

    def cpu(self) -> "Storage":
        raise NotImplementedError

    def data_ptr(self) -> int:
        raise NotImplementedError

    def from_file(self, filename: str, shared: bool = False, nbytes: int = 0) -> "Storage":
        raise NotImplementedError

    def _new_with_file(self, f: Any, element_size: int) -> "Storage":
        raise NotImplementedError
