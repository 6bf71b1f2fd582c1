"""A parameter's ``.grad`` not yet made a tensor.

A compiled training step off the CPU returns the ``.grad`` arrays it replaces unread as one flat
array (:mod:`tracenn.runtime.flatgrads`). Each parameter's ``.grad`` then holds a
:class:`PendingGrad` until something reads it: :attr:`tracenn.nn.Parameter.grad` turns it into a
tensor on that first read (the step's grads all at once). A step that drops its grads unread, as
one starting with ``zero_grad()`` does, never makes them tensors.
"""
from __future__ import annotations


class PendingGrad:
    """Gradient ``k`` of ``bucket`` (a :class:`~tracenn.runtime.flatgrads.GradBucket`)."""

    __slots__ = ("bucket", "k")

    def __init__(self, bucket, k):
        self.bucket = bucket
        self.k = k

    def value(self):
        """The gradient as a tensor (the same tensor on every read)."""
        return self.bucket.tensor(self.k)

    @property
    def aval(self):
        """(shape, dtype), without making the tensor."""
        return self.bucket.aval(self.k)
