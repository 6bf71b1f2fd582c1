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

:class:`UninitializedParameter` and :class:`UninitializedBuffer` are the placeholders of the lazy
modules (``nn.LazyLinear`` ...): they know their dtype, device and ``requires_grad`` but not their
shape, until ``materialize(shape)`` gives them one and turns them into a :class:`Parameter` / a
plain Tensor (the same object). Using one in an op raises torch's ``ValueError``.
"""
from __future__ import annotations

from .. import dtypes as _dt
from .._pending_grad import PendingGrad
from ..tensor import Tensor

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]


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
            d = data.dtype
            if not (d.is_floating_point or d.is_complex):
                raise RuntimeError("Only Tensors of floating point and complex dtype can require gradients")
            p._requires_grad = True
        return p

    def __init__(self, data=None, requires_grad=True):
        pass  # all done in __new__ (Tensor.__init__ would rebuild the value)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + self._repr()

    @property
    def grad(self):
        """The gradient accumulated by ``backward()`` (None until then, and after ``zero_grad()``)."""
        d = self.__dict__
        g = d.get("grad")
        if g.__class__ is PendingGrad:  # returned by a compiled step inside one flat array
            g = d["grad"] = g.value()
        return g

    @grad.setter
    def grad(self, value):
        self.__dict__["grad"] = value

    @grad.deleter
    def grad(self):  # as torch: ``del p.grad`` leaves None
        self.__dict__.pop("grad", None)

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


# ---- uninitialized (lazy) parameters and buffers -------------------------------------------------

_VALUE = Tensor.__dict__["_value"]  # the slot itself, under the mixin's ``_value`` property


def _uninitialized_use(self):
    raise ValueError(
        f"Attempted to use an uninitialized parameter in an operation (a {type(self).__name__}). This error "
        "happens when you are using a `LazyModule` or explicitly manipulating "
        f"`tracenn.nn.parameter.{type(self).__name__}` objects. When using LazyModules Call `forward` with a "
        "dummy batch to initialize the parameters before calling tracenn functions")


def _conversion(name):
    """``t.float()``, ``t.to(...)``, ``t.cpu()``...: allowed on an uninitialized tensor (as in torch).

    A buffer stays an :class:`UninitializedBuffer`; a parameter gives a plain empty tensor, which
    ``Module._apply`` puts back into the parameter with ``param.data = ...`` (torch's behaviour).
    """
    method = getattr(Tensor, name)

    def convert(self, *args, **kwargs):
        out = method(Tensor._wrap(_VALUE.__get__(self)), *args, **kwargs)
        if not isinstance(out, Tensor):  # t.type() with no argument: the type string
            return out
        if out._value is _VALUE.__get__(self):  # nothing to change
            return self
        if not isinstance(self, UninitializedBuffer):
            return out
        return UninitializedBuffer(self._requires_grad, out.device, out.dtype,
                                   getattr(self, "persistent", True))

    convert.__name__ = name
    convert.__doc__ = f"``Tensor.{name}`` on the placeholder's dtype/device (allowed before materializing)."
    return convert


class UninitializedTensorMixin:
    """What :class:`UninitializedParameter` and :class:`UninitializedBuffer` share.

    The placeholder holds an empty array of its dtype on its device (under the ``_value`` slot);
    reading ``_value`` — which every op does — raises torch's ``ValueError``, and ``shape`` raises
    torch's ``RuntimeError``. dtype, device, ``size()``, ``requires_grad`` and the conversions
    (``to``, ``float`` ..., ``cpu``/``cuda``) work, so ``module.to(...)`` and ``module.double()``
    apply to a lazy module before its first call.
    """

    __slots__ = ()
    cls_to_become: type = Tensor

    _value = property(_uninitialized_use, _VALUE.__set__)

    def materialize(self, shape, device=None, dtype=None) -> None:
        r"""Give this placeholder ``shape`` (values uninitialised: zeros here) and turn it into its
        ``cls_to_become`` (:class:`Parameter` / Tensor), keeping the object.

        Args:
            shape (tuple): the shape of the materialized tensor.
            device: its device (default: the placeholder's).
            dtype: its dtype (default: the placeholder's).

        >>> import tracenn
        >>> p = tracenn.nn.UninitializedParameter()
        >>> p.materialize((2, 3))
        >>> type(p).__name__, p.shape
        ('Parameter', tracenn.Size([2, 3]))
        """
        from .._api.creation import empty
        if device is None:
            device = self.device
        if dtype is None:
            dtype = self.dtype
        _VALUE.__set__(self, empty(shape, device=device, dtype=dtype)._value)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError(
            "Can't access the shape of an uninitialized parameter or buffer. This error usually happens in "
            "`load_state_dict` when trying to load an uninitialized parameter into an initialized one. Call "
            "`forward` to initialize the parameters before accessing their attributes.")

    def size(self, dim=None):
        from ..size import Size
        return Size((0,)) if dim is None else (0,)[dim]

    @property
    def dtype(self):
        return _dt.from_np(_VALUE.__get__(self).dtype)

    @property
    def device(self):
        return Tensor.device.fget(Tensor._wrap(_VALUE.__get__(self)))

    @property
    def ndim(self) -> int:
        return 1

    @property
    def data(self):
        return Tensor._wrap(_VALUE.__get__(self))

    @data.setter
    def data(self, other):
        if not isinstance(other, Tensor):
            raise TypeError(f"data must be a Tensor, got {type(other).__name__}")
        _VALUE.__set__(self, _VALUE.__get__(other) if is_lazy(other) else other.detach()._value)

    to = _conversion("to")
    type = _conversion("type")
    float = _conversion("float")
    double = _conversion("double")
    half = _conversion("half")
    bfloat16 = _conversion("bfloat16")
    long = _conversion("long")
    int = _conversion("int")
    short = _conversion("short")
    char = _conversion("char")
    cpu = _conversion("cpu")
    cuda = _conversion("cuda")

    def share_memory_(self):
        raise RuntimeError("Can't share memory on an uninitialized parameter or buffer. Call `forward` to "
                           "initialize the parameters before calling `module.share_memory()`.")

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}>"

    def __reduce_ex__(self, proto):
        return (self.__class__, (self._requires_grad,))


def is_lazy(param) -> bool:
    """Whether ``param`` is an :class:`UninitializedParameter` or :class:`UninitializedBuffer`."""
    return isinstance(param, UninitializedTensorMixin)


class UninitializedParameter(UninitializedTensorMixin, Parameter):
    r"""A parameter whose shape is not known yet (a lazy module's, until its first call).

    It has a dtype, a device and ``requires_grad``; its shape and values do not exist, and using it
    in an op raises ``ValueError``. ``materialize(shape)`` turns it into a :class:`Parameter`.

    Args:
        requires_grad (bool): as :class:`Parameter`'s (default: True).
        device, dtype: what the materialized parameter gets (default: the default device/dtype).

    >>> import tracenn
    >>> p = tracenn.nn.UninitializedParameter(dtype=tracenn.float64)
    >>> p, p.dtype
    (<UninitializedParameter>, tracenn.float64)
    """

    cls_to_become = Parameter

    def __new__(cls, requires_grad=True, device=None, dtype=None):
        from .._api.creation import empty
        return Parameter.__new__(cls, empty(0, device=device, dtype=dtype), requires_grad)

    def __init__(self, requires_grad=True, device=None, dtype=None):
        pass  # all done in __new__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self._requires_grad, self.device, self.dtype)
        memo[id(self)] = result
        return result


class UninitializedBuffer(UninitializedTensorMixin, Tensor):
    r"""A buffer whose shape is not known yet (a lazy module's, until its first call); see
    :class:`UninitializedParameter`. ``materialize(shape)`` turns it into a plain Tensor.

    Args:
        requires_grad (bool): default False.
        device, dtype: what the materialized buffer gets.
        persistent (bool): whether it is part of the module's ``state_dict`` (default: True).

    >>> import tracenn
    >>> b = tracenn.nn.UninitializedBuffer()
    >>> b.materialize((2,))
    >>> type(b).__name__, b.shape, isinstance(b, tracenn.nn.Buffer)
    ('Tensor', tracenn.Size([2]), True)
    """

    cls_to_become = Tensor

    def __new__(cls, requires_grad=False, device=None, dtype=None, persistent=True):
        from .._api.creation import empty
        t = Tensor.__new__(cls)
        _VALUE.__set__(t, empty(0, device=device, dtype=dtype)._value)
        t._requires_grad = False
        t._node = None
        t._out_idx = 0
        if requires_grad:
            Tensor.requires_grad_(t, True)
        t.persistent = persistent
        t._is_buffer = True
        return t

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        pass  # all done in __new__

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self._requires_grad, self.device, self.dtype, getattr(self, "persistent", True))
        memo[id(self)] = result
        return result

    def __reduce_ex__(self, proto):
        return (self.__class__, (self._requires_grad, None, None, getattr(self, "persistent", True)))
