"""``Flatten`` and ``Unflatten``: merge a range of dims into one, or split one dim into several."""
from __future__ import annotations

from ...tensor import Tensor
from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    r"""Flatten dims ``start_dim`` through ``end_dim`` into one (by default, all but the batch dim).

    Args:
        start_dim: the first dim to flatten (default 1).
        end_dim: the last dim to flatten (default -1).

    Shape:
        - Input: :math:`(*, S_{start}, ..., S_{end}, *)`.
        - Output: :math:`(*, \prod_{i=start}^{end} S_i, *)`.

    >>> import tracenn
    >>> m = tracenn.nn.Flatten()
    >>> m
    Flatten(start_dim=1, end_dim=-1)
    >>> m(tracenn.zeros(32, 1, 5, 5)).shape
    tracenn.Size([32, 25])
    """

    __constants__ = ["start_dim", "end_dim"]

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    r"""Split dim ``dim`` into ``unflattened_size`` (one entry may be -1).

    Args:
        dim: the dim to split.
        unflattened_size: the new sizes; their product must equal the size of ``dim``.

    Shape:
        - Input: :math:`(*, S_{dim}, *)`.
        - Output: :math:`(*, U_1, ..., U_n, *)` with :math:`\prod U_i = S_{dim}`.

    >>> import tracenn
    >>> m = tracenn.nn.Unflatten(1, (2, 5, 5))
    >>> m
    Unflatten(dim=1, unflattened_size=(2, 5, 5))
    >>> m(tracenn.zeros(2, 50)).shape
    tracenn.Size([2, 2, 5, 5])
    """

    __constants__ = ["dim", "unflattened_size"]

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self._require_tuple_int(unflattened_size)
        self.dim = dim
        self.unflattened_size = unflattened_size

    def _require_tuple_int(self, input) -> None:
        if isinstance(input, (tuple, list)):
            for idx, elem in enumerate(input):
                if not isinstance(elem, int):
                    raise TypeError("unflattened_size must be tuple of ints, "
                                    + f"but found element of type {type(elem).__name__} at pos {idx}")
            return
        raise TypeError(f"unflattened_size must be a tuple of ints, but found type {type(input).__name__}")

    def forward(self, input: Tensor) -> Tensor:
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
