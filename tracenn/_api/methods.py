"""Attach the API functions to ``Tensor`` as methods, in-place variants and Python operators.

Every in-place method ``f_`` is the out-of-place ``f`` followed by ``Tensor._set_`` (torch's
checks, cast to self's dtype, rebind, write-through for views) — one rule for all of them.
"""
from __future__ import annotations

from .. import random as _random
from .._dispatch import apply
from ..ops import OPS
from ..autograd.graph import SEQ as _NODE_SEQ
from ..tensor import Tensor
from . import complexnum, convert, index, linalg, math, misc, misc_math, misc_reduce, more, reduce, shape, storage
from ._common import as_operand

# name -> function taking the tensor first; the method has the same name.
_METHODS = {}
for _mod, _names in [
    (math, "add sub mul div true_divide divide multiply subtract floor_divide remainder fmod pow "
           "float_power maximum minimum fmax fmin atan2 arctan2 eq ne lt le gt ge greater greater_equal "
           "less less_equal not_equal equal logical_and logical_or logical_xor logical_not bitwise_and "
           "bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift neg negative abs "
           "absolute sign sgn floor ceil trunc fix frac relu square isnan isinf isfinite signbit exp exp2 "
           "expm1 log log2 log10 log1p sqrt rsqrt reciprocal sin cos tan asin acos atan arcsin arccos "
           "arctan sinh cosh tanh asinh acosh atanh arcsinh arccosh arctanh sigmoid erf erfc erfinv "
           "lgamma digamma round positive clamp clip clamp_min clamp_max lerp nan_to_num addcmul "
           "addcdiv hypot logaddexp xlogy rsub"),
    (reduce, "sum nansum mean nanmean var std prod max min amax amin aminmax argmax argmin all any "
             "count_nonzero logsumexp softmax log_softmax norm cumsum cumprod cummax cummin median dist"),
    (shape, "view reshape view_as reshape_as flatten unflatten squeeze unsqueeze permute transpose "
            "swapaxes swapdims t movedim moveaxis adjoint expand expand_as broadcast_to narrow select "
            "split split_with_sizes chunk tensor_split unbind diagonal contiguous clone flip fliplr "
            "flipud roll repeat tile repeat_interleave tril triu is_contiguous stride"),
    (index, "gather scatter scatter_add scatter_reduce index_select index_add index_fill take "
            "take_along_dim masked_fill masked_select masked_scatter nonzero argwhere sort argsort msort "
            "topk kthvalue unique bincount index_put"),
    (linalg, "matmul mm bmm mv dot inner outer ger addmm baddbmm addmv"),
    (convert, "to type type_as float double half bfloat16 long int short char byte bool cfloat cdouble "
              "cpu cuda"),
    (more, "trace diff kron diag_embed rot90 quantile nanquantile logcumsumexp histc histogram cov corrcoef"),
    (misc, "isclose allclose diag diagflat ravel unfold fill_diagonal_ index_copy select_scatter slice_scatter "
           "diagonal_scatter hsplit vsplit dsplit is_nonzero is_same_size is_signed sum_to_size"),
    (misc_math, "copysign deg2rad rad2deg heaviside gcd lcm logaddexp2 logit sinc i0 isneginf isposinf isreal "
                "frexp ldexp nextafter vdot cross addbmm addr renorm"),
    (misc_reduce, "nanmedian mode unique_consecutive"),
    (storage, "storage_offset data_ptr untyped_storage resize_ resize_as_"),
]:
    for _n in _names.split():
        _METHODS[_n] = getattr(_mod, _n)

for _n, _f in _METHODS.items():
    setattr(Tensor, _n, _f)

Tensor.__getitem__ = index.getitem
Tensor.__setitem__ = index.setitem
Tensor.where = lambda self, condition, other: math.where(condition, self, other)
Tensor.T = property(lambda self: shape.permute(self, tuple(range(self.ndim - 1, -1, -1))),
                    doc="All dims reversed (torch deprecates .T for ndim != 2; use .mT or permute).")
Tensor.mT = property(lambda self: shape.transpose(self, -2, -1), doc="Transpose of the last two dims.")
Tensor.H = property(lambda self: shape.t(self).conj() if self.is_complex() else shape.t(self))
Tensor.mH = property(lambda self: shape.transpose(self, -2, -1).conj())


def _set_part(part):
    def setter(self, value):  # torch: ``z.real = v`` copies v into the view
        getattr(complexnum, part)(self).copy_(value)
    return setter


Tensor.real = property(complexnum.real, _set_part("real"), doc=complexnum.real.__doc__)
Tensor.imag = property(complexnum.imag, _set_part("imag"), doc=complexnum.imag.__doc__)
Tensor.angle = complexnum.angle


def _conj(self):
    """The complex conjugate (a real tensor is its own, returned as is, as torch's)."""
    return apply(OPS["conj"], (self,)) if self.is_complex() else self


Tensor.conj = _conj
Tensor.conj_physical = _conj
Tensor.resolve_conj = lambda self: self
Tensor.is_conj = lambda self: False
Tensor.normal_ = _random.normal_
Tensor.uniform_ = _random.uniform_
Tensor.bernoulli_ = _random.bernoulli_
Tensor.random_ = _random.random_
Tensor.exponential_ = _random.exponential_
Tensor.multinomial = lambda self, num_samples, replacement=False, *, generator=None: \
    _random.multinomial(self, num_samples, replacement, generator=generator)


# (Tensor.prelu and Tensor.hardshrink are bound by tracenn.nn.functional: the core does not import nn.)
Tensor.bernoulli = lambda self, p=None, *, generator=None: _random.bernoulli(self, p, generator=generator)


def _inplace(name, fn):
    def method(self, *args, **kwargs):
        since = _NODE_SEQ[0]  # nodes made from here on belong to this in-place op (see Tensor._set_)
        return self._set_(fn(self, *args, **kwargs), name, since)
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: ``x.{name}(...)`` makes ``x`` the result (returns ``x``)."
    return method


for _n in ("add sub mul div true_divide divide multiply subtract floor_divide remainder fmod pow "
           "float_power maximum minimum atan2 logical_and logical_or logical_xor logical_not bitwise_and "
           "bitwise_or bitwise_xor bitwise_not bitwise_left_shift bitwise_right_shift neg negative abs "
           "absolute sign sgn floor ceil trunc fix frac relu square exp exp2 expm1 log log2 log10 log1p "
           "sqrt rsqrt reciprocal sin cos tan asin acos atan sinh cosh tanh asinh acosh atanh sigmoid "
           "erf erfc erfinv lgamma digamma round clamp clip clamp_min clamp_max lerp nan_to_num addcmul "
           "addcdiv hypot xlogy eq ne lt le gt ge masked_fill masked_scatter scatter scatter_add "
           "scatter_reduce index_add index_fill index_put tril triu cumsum cumprod addmm baddbmm "
           "addmv").split():
    setattr(Tensor, _n + "_", _inplace(_n + "_", _METHODS[_n]))
for _n in ("index_copy copysign deg2rad rad2deg heaviside gcd lcm logit sinc i0 ldexp nextafter addbmm addr "
           "renorm").split():
    setattr(Tensor, _n + "_", _inplace(_n + "_", _METHODS[_n]))
from .. import special as _special  # noqa: E402  (polygamma, mvlgamma, igamma, igammac; and their _ forms)
for _n, _f in _special.METHODS.items():
    setattr(Tensor, _n, _f)
    setattr(Tensor, _n + "_", _inplace(_n + "_", _f))


def fill_(self, value):
    """Set every element to ``value`` (a number or a 0-d tensor)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                               f"{value.ndim} dimensions.")
        from .shape import expand
        return self._set_(expand(value.to(self.dtype), self.shape), "fill_")
    return self._set_(apply(OPS["full"], (value,), (self._value.shape, self._value.dtype)), "fill_")


def zero_(self):
    """Set every element to zero."""
    return fill_(self, 0)


def copy_(self, src, non_blocking=False):
    """Copy ``src``'s values (broadcast, cast to self's dtype) into this tensor."""
    from .index import _broadcast_value
    src = as_operand(src)
    if isinstance(src, Tensor):
        sv, dv = src._value, self._value
        # (one device each: values spread over a mesh stay spread, as data-parallel updates need)
        if not getattr(sv, "symbolic", False) and not getattr(dv, "symbolic", False) \
                and len(sv.devices()) == 1 and len(dv.devices()) == 1 and sv.devices() != dv.devices():
            from .convert import _eager_transfer_kernels
            jd = min(dv.devices(), key=lambda d: d.id)
            _eager_transfer_kernels(jd)
            src = apply(OPS["to_device"], (src,), (jd,))  # the destination keeps its device, as torch
    return self._set_(_broadcast_value(src, self._value.shape, self._value.dtype), "copy_")


Tensor.fill_ = fill_
Tensor.zero_ = zero_
Tensor.copy_ = copy_


def _relayout(name, fn):
    def method(self, *args):
        return self._relayout_(fn(self, *args))
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: this tensor takes the new shape (views keep aliasing)."
    return method


for _n in ("t transpose squeeze unsqueeze swapaxes swapdims").split():
    setattr(Tensor, _n + "_", _relayout(_n + "_", _METHODS[_n]))


# ---- Python operators --------------------------------------------------------------------------

def _r(fn):
    return lambda self, other: fn(other, self)


def _invert(self):
    return math.logical_not(self) if self._value.dtype.kind == "b" else math.bitwise_not(self)


def _and(a, b):
    return math.logical_and(a, b) if _both_bool(a, b) else math.bitwise_and(a, b)


def _or(a, b):
    return math.logical_or(a, b) if _both_bool(a, b) else math.bitwise_or(a, b)


def _xor(a, b):
    return math.logical_xor(a, b) if _both_bool(a, b) else math.bitwise_xor(a, b)


def _both_bool(a, b):
    def isb(x):
        return isinstance(x, bool) or (isinstance(x, Tensor) and x._value.dtype.kind == "b")
    return isb(a) and isb(b)


_OPERATORS = {
    "add": math.add, "sub": math.sub, "mul": math.mul, "truediv": math.div,
    "floordiv": math.floor_divide, "mod": math.remainder, "pow": math.pow, "matmul": linalg.matmul,
    "and": _and, "or": _or, "xor": _xor, "lshift": math.bitwise_left_shift,
    "rshift": math.bitwise_right_shift,
}
for _n, _f in _OPERATORS.items():
    setattr(Tensor, f"__{_n}__", _f)
    setattr(Tensor, f"__r{_n}__", _r(_f))
    setattr(Tensor, f"__i{_n}__", _inplace(f"__i{_n}__", _f))

# A NumPy scalar or array on the left (``np.log(2) - x``, ``np.float32(0.99) * v``) defers to the
# tensor's reflected operator, as torch's Tensor makes it: without this NumPy converts the tensor
# with __array__ and returns an ndarray, silently cutting the autograd graph (and failing in a trace).
Tensor.__array_priority__ = 1000


def _rtruediv(self, other):
    """``other / x`` is ``x.reciprocal() * other``, as torch defines it (two roundings: its
    numbers differ from a division's in the last bit)."""
    return math.mul(math.reciprocal(self), other)


Tensor.__rtruediv__ = _rtruediv


def _comparison(fn):
    """``t == other`` and friends as torch's binding has them: an operand that is not a tensor, a
    number or an array (None, a string, a list) makes the operator return ``NotImplemented``, so
    Python answers ``==``/``!=`` by identity (``t == None`` is False, ``t in [None, 1]`` works) and
    ``<`` raises its own TypeError. (``t.eq(None)`` and ``tracenn.eq`` still raise, as torch's.)"""
    def op(self, other):
        if type(other) is list or type(other) is tuple:  # (torch compares no sequences: False)
            return NotImplemented
        try:
            return fn(self, other)
        except TypeError:
            return NotImplemented
    op.__name__ = op.__qualname__ = f"__{fn.__name__}__"
    op.__doc__ = fn.__doc__
    return op


for _n in ("eq", "ne", "lt", "le", "gt", "ge"):
    setattr(Tensor, f"__{_n}__", _comparison(getattr(math, _n)))
Tensor.__neg__ = math.neg
Tensor.__pos__ = math.positive
Tensor.__abs__ = math.abs
Tensor.__invert__ = _invert
Tensor.__hash__ = lambda self: id(self)  # defining __eq__ would otherwise drop hashing

del _mod, _names, _n, _f


# ---- new_* constructors: same dtype/device as self unless given -------------------------------

def _new_factory(fn):
    def method(self, *size, dtype=None, device=None, requires_grad=False, **kw):
        return fn(*size, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad, **kw)
    method.__name__ = "new_" + fn.__name__
    return method


from . import creation as _creation  # noqa: E402

Tensor.new_zeros = _new_factory(_creation.zeros)
Tensor.new_ones = _new_factory(_creation.ones)
Tensor.new_empty = _new_factory(_creation.empty)
Tensor.new_full = lambda self, size, fill_value, *, dtype=None, device=None, requires_grad=False: \
    _creation.full(size, fill_value, dtype=dtype or self.dtype, device=device or self.device,
                   requires_grad=requires_grad)
Tensor.new_tensor = lambda self, data, *, dtype=None, device=None, requires_grad=False: \
    _creation.tensor(data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad)


def _new(self, *args, device=None):
    """torch's legacy ``x.new(...)``: ``x.new(2, 3)`` (sizes) or ``x.new([1, 2])`` (data), of x's dtype."""
    from .legacy import legacy_new
    return legacy_new(self.dtype, self.device if device is None else device, args)


Tensor.new = _new
Tensor.get_device = lambda self: -1 if self.device.type == "cpu" else self.device.index or 0
Tensor.pin_memory = lambda self: self
Tensor.share_memory_ = lambda self: self
Tensor.is_pinned = lambda self: False
