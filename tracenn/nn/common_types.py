"""torch.nn's type aliases (``torch.nn.common_types``), for layer code that annotates with them.

``from torch.nn.common_types import _size_2_t`` works unchanged under ``import tracenn as torch``.
The aliases are torch's, with tracenn's :class:`~tracenn.Tensor`: an argument that may be a scalar
or a tuple (``kernel_size=3`` or ``(3, 5)``), in variants of any length and of length 1 to 6.

>>> from tracenn.nn.common_types import _size_2_t
>>> def kernel(k: _size_2_t) -> _size_2_t:
...     return k
>>> kernel((3, 5))
(3, 5)
"""
from typing import TypeAlias as _TypeAlias, TypeVar

from ..tensor import Tensor

# Scalars PyTorch broadcasts to a tuple: a tuple of any size, or of fixed size for 1d..6d operations.
T = TypeVar("T")
_scalar_or_tuple_any_t: _TypeAlias = T | tuple[T, ...]
_scalar_or_tuple_1_t: _TypeAlias = T | tuple[T]
_scalar_or_tuple_2_t: _TypeAlias = T | tuple[T, T]
_scalar_or_tuple_3_t: _TypeAlias = T | tuple[T, T, T]
_scalar_or_tuple_4_t: _TypeAlias = T | tuple[T, T, T, T]
_scalar_or_tuple_5_t: _TypeAlias = T | tuple[T, T, T, T, T]
_scalar_or_tuple_6_t: _TypeAlias = T | tuple[T, T, T, T, T, T]

# Size arguments (kernel size, padding, ...).
_size_any_t: _TypeAlias = _scalar_or_tuple_any_t[int]
_size_1_t: _TypeAlias = _scalar_or_tuple_1_t[int]
_size_2_t: _TypeAlias = _scalar_or_tuple_2_t[int]
_size_3_t: _TypeAlias = _scalar_or_tuple_3_t[int]
_size_4_t: _TypeAlias = _scalar_or_tuple_4_t[int]
_size_5_t: _TypeAlias = _scalar_or_tuple_5_t[int]
_size_6_t: _TypeAlias = _scalar_or_tuple_6_t[int]

# Optional sizes (adaptive pools' output_size, where None keeps the input's size).
_size_any_opt_t: _TypeAlias = _scalar_or_tuple_any_t[int | None]
_size_2_opt_t: _TypeAlias = _scalar_or_tuple_2_t[int | None]
_size_3_opt_t: _TypeAlias = _scalar_or_tuple_3_t[int | None]

# Per-dimension ratios (upsampling's scale_factor).
_ratio_2_t: _TypeAlias = _scalar_or_tuple_2_t[float]
_ratio_3_t: _TypeAlias = _scalar_or_tuple_3_t[float]
_ratio_any_t: _TypeAlias = _scalar_or_tuple_any_t[float]

_tensor_list_t: _TypeAlias = _scalar_or_tuple_any_t[Tensor]

# What max pooling returns: the output, or (output, indices).
_maybe_indices_t: _TypeAlias = _scalar_or_tuple_2_t[Tensor]
