"""``tracenn.Size``: the tuple subclass ``Tensor.shape`` returns, printed as torch prints it."""
from __future__ import annotations


class Size(tuple):
    """A tensor shape: a tuple of ints with ``numel()``.

    >>> import tracenn
    >>> tracenn.zeros(2, 3).shape
    tracenn.Size([2, 3])
    """

    __slots__ = ()

    def __repr__(self):
        return f"tracenn.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __getitem__(self, i):
        r = tuple.__getitem__(self, i)
        return Size(r) if isinstance(i, slice) else r

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __reduce__(self):
        return (Size, (tuple(self),))
