"""``tracenn.autograd.Variable``: torch's legacy name for a tensor that takes part in autograd.

Since torch 0.4 a Variable *is* a Tensor: ``Variable(t, requires_grad=True)`` returns a tensor (an
alias of ``t``'s data, outside ``t``'s history) and ``isinstance(t, Variable)`` holds for every
tensor. Kept for old code; new code uses tensors directly.
"""
from __future__ import annotations

import warnings


class _VariableMeta(type):
    def __instancecheck__(cls, other):
        from ..tensor import Tensor
        return isinstance(other, Tensor)

    def __call__(cls, data, requires_grad=False, volatile=False):
        from ..tensor import Tensor
        if not isinstance(data, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__} "
                            "(make one first: Variable(tracenn.tensor(data)), or just use the tensor)")
        if volatile:
            warnings.warn("volatile was removed and now has no effect. Use `with tracenn.no_grad():` "
                          "instead.", UserWarning, stacklevel=2)
        return data.detach().requires_grad_(bool(requires_grad))


class Variable(metaclass=_VariableMeta):
    """``Variable(tensor, requires_grad=False)``: a tensor sharing ``tensor``'s data, a leaf of
    autograd (torch's legacy wrapper; every tensor is a Variable).

    >>> import tracenn
    >>> from tracenn.autograd import Variable
    >>> v = Variable(tracenn.ones(2), requires_grad=True)
    >>> v.requires_grad, isinstance(v, Variable), type(v).__name__
    (True, True, 'Tensor')
    """
