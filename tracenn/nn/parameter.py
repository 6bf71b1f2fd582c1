"""``nn.Parameter`` and ``nn.Buffer``, as in torch.

A :class:`Parameter` is a leaf :class:`~tracenn.Tensor` subclass that a :class:`~tracenn.nn.Module`
registers as a parameter when it is assigned as an attribute. In-place changes (``p.add_()``,
``p.data.fill_()``, ``p.copy_()`` under ``no_grad``) rebind its value and keep the object, so an
optimizer holding ``p`` sees them.

One difference from torch: ``Parameter(t)`` starts from ``t``'s current values but does not share
later in-place changes with ``t`` (a tracenn tensor is a handle to an immutable JAX array, and a
Parameter must be a leaf, not a view of ``t``).

A :class:`Buffer` is not a class of its own: as in torch, ``Buffer(t)`` returns ``t.detach()`` marked
so that assigning it to a module attribute registers a buffer (``isinstance(b, Buffer)`` is True).
"""
from __future__ import annotations

from .. import dtypes as _dt
from ..tensor import Tensor

__all__ = ["Parameter", "Buffer"]


class Parameter(Tensor):
    """A kind of Tensor that is to be considered a module parameter.

    Assigning a Parameter as a Module attribute adds it to the module's ``parameters()`` (a plain
    Tensor attribute is not registered).

    Args:
        data (Tensor): parameter tensor (default: an empty float tensor).
        requires_grad (bool): whether the parameter requires gradient (default: True).

    >>> import tracenn
    >>> p = tracenn.nn.Parameter(tracenn.zeros(2))
    >>> p
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    >>> with tracenn.no_grad():
    ...     q = p.add_(1.0)
    >>> q is p, p.is_leaf
    (True, True)
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from .._api.creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"Parameter(data): data must be a tracenn.Tensor, got {type(data).__name__} "
                            "(wrap it first, e.g. Parameter(tracenn.tensor(data)))")
        p = Tensor.__new__(cls)
        p._value = data._value if data._base is None else data._sync()
        p._requires_grad = False
        p._node = None
        p._out_idx = 0
        if requires_grad:
            d = _dt.from_np(p._value.dtype)
            if not (d.is_floating_point or d.is_complex):
                raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
            p._requires_grad = True
        return p

    def __init__(self, data=None, requires_grad=True):
        pass  # all done in __new__ (Tensor.__init__ would rebuild the value)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + self._repr()

    def __deepcopy__(self, memo):
        # As torch: a fresh Parameter with cloned data and the same requires_grad; .grad is not copied.
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.data.clone(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        return (_rebuild_parameter, (self._host(), self._requires_grad))


def _rebuild_parameter(array, requires_grad):
    import jax.numpy as jnp
    return Parameter(Tensor._wrap(jnp.asarray(array)), requires_grad)


class _BufferMeta(type):
    # Buffer(...) returns a plain Tensor marked ``_is_buffer``; isinstance() looks at the mark.
    def __instancecheck__(self, instance) -> bool:
        if self is Buffer:
            if isinstance(instance, Tensor) and getattr(instance, "_is_buffer", False):
                return True
        return super().__instancecheck__(instance)


class Buffer(Tensor, metaclass=_BufferMeta):
    """A kind of Tensor that should not be considered a model parameter, e.g. BatchNorm's
    ``running_mean``. Assigning one as a Module attribute registers it as a buffer.

    Args:
        data (Tensor): buffer tensor (default: an empty float tensor).
        persistent (bool, keyword-only): whether the buffer is part of the module's
            ``state_dict`` (default: True).

    >>> import tracenn
    >>> m = tracenn.nn.Module()
    >>> m.steps = tracenn.nn.Buffer(tracenn.zeros(1))
    >>> m.scratch = tracenn.nn.Buffer(tracenn.zeros(1), persistent=False)
    >>> [name for name, _ in m.named_buffers()], list(m.state_dict())
    (['steps', 'scratch'], ['steps'])
    """

    def __new__(cls, data=None, *, persistent=True):
        if data is None:
            from .._api.creation import empty
            data = empty(0)
        t = data.detach().requires_grad_(data.requires_grad)
        t.persistent = persistent
        t._is_buffer = True
        return t
