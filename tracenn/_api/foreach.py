"""torch's ``_foreach_*`` functions: one op applied to every tensor of a list.

Private in torch but used by EMA and optimizer code in the wild (``torch._foreach_mul_(ema, d)``).
Each is a loop over the tensors with the ordinary op (so autograd and compiled traces see the
ordinary ops); torch fuses them into multi-tensor kernels, which inside ``tracenn.compile`` XLA
does. Out-of-place forms return a tuple, in-place forms the list they changed, as torch's.
"""
from __future__ import annotations

import numbers

from ..tensor import Tensor

_UNARY = ("abs", "acos", "asin", "atan", "ceil", "cos", "cosh", "erf", "erfc", "exp", "expm1", "floor", "frac",
          "lgamma", "log", "log10", "log1p", "log2", "neg", "reciprocal", "round", "rsqrt", "sigmoid", "sign", "sin",
          "sinh", "sqrt", "tan", "tanh", "trunc")
_BINARY = ("add", "sub", "mul", "div", "clamp_min", "clamp_max", "maximum", "minimum", "pow")
_INPLACE_METHOD = {"clamp_min": "clamp_min_", "clamp_max": "clamp_max_", "maximum": None, "minimum": None}


def _check(*lists) -> None:
    for ts in lists:
        if not isinstance(ts, (list, tuple)):
            raise TypeError(f"expected a list of tensors, got {type(ts).__name__}")
    if len(lists[0]) == 0:
        raise RuntimeError("Tensor list must have at least one tensor.")
    for ts in lists[1:]:
        if len(ts) != len(lists[0]):
            raise RuntimeError(f"Tensor lists must have the same number of tensors, got {len(lists[0])} and {len(ts)}")


def _others(other, n: int) -> list:
    """``other`` per tensor: a list (of tensors or numbers) as it is, a number or a tensor for all."""
    if isinstance(other, (list, tuple)):
        if len(other) != n:
            raise RuntimeError(f"Tensor lists must have the same number of tensors, got {n} and {len(other)}")
        return list(other)
    return [other] * n


def _binary(name: str, inplace: bool):
    def fn(self, other, *, alpha=None):
        if isinstance(self, numbers.Number) and name == "pow":  # _foreach_pow(scalar, tensors)
            from .math import pow as pow_
            _check(other)
            return tuple(pow_(self, t) for t in other)
        _check(self)
        out = []
        for t, o in zip(self, _others(other, len(self))):
            if alpha is not None:
                o = o * alpha
            if name in ("maximum", "minimum") and isinstance(o, numbers.Number):  # (a scalar: a clamp)
                o_name = "clamp_min" if name == "maximum" else "clamp_max"
                if inplace:
                    getattr(t, f"{o_name}_")(o)
                else:
                    out.append(getattr(t, o_name)(o))
                continue
            if inplace:
                method = _INPLACE_METHOD.get(name, f"{name}_")
                if method is None:  # (no in-place method: compute, then copy in)
                    t.copy_(getattr(t, name)(o))
                else:
                    getattr(t, method)(o)
            else:
                out.append(getattr(t, name)(o))
        return self if inplace else tuple(out)
    fn.__name__ = f"_foreach_{name}{'_' if inplace else ''}"
    fn.__doc__ = f"``{name}`` of every tensor of ``self`` with ``other`` (a number, a tensor, or a list of either)."
    return fn


def _unary(name: str, inplace: bool):
    def fn(self):
        _check(self)
        if inplace:
            for t in self:
                getattr(t, f"{name}_")()
            return self
        return tuple(getattr(t, name)() for t in self)
    fn.__name__ = f"_foreach_{name}{'_' if inplace else ''}"
    fn.__doc__ = f"``{name}`` of every tensor of ``self``."
    return fn


def _pointwise(name: str, inplace: bool):
    def fn(self, tensor1, tensor2, value=1):
        _check(self, tensor1, tensor2)
        out = []
        for t, a, b, v in zip(self, tensor1, tensor2, _values(value, len(self))):
            if inplace:
                getattr(t, f"{name}_")(a, b, value=v)
            else:
                out.append(getattr(t, name)(a, b, value=v))
        return self if inplace else tuple(out)
    fn.__name__ = f"_foreach_{name}{'_' if inplace else ''}"
    fn.__doc__ = f"``{name}(self[i], tensor1[i], tensor2[i], value)`` for every i (``value``: a number, a list of " \
                 "numbers or a 1-d tensor of them)."
    return fn


def _values(value, n: int) -> list:
    if isinstance(value, Tensor):
        return [float(v) for v in value.tolist()] if value.ndim else [value.item()] * n
    return _others(value, n)


def _lerp(inplace: bool):
    def fn(self, tensors1, weight):
        _check(self, tensors1)
        out = []
        for t, e, w in zip(self, tensors1, _others(weight, len(self))):
            if inplace:
                t.lerp_(e, w)
            else:
                out.append(t.lerp(e, w))
        return self if inplace else tuple(out)
    fn.__name__ = f"_foreach_lerp{'_' if inplace else ''}"
    return fn


def _foreach_norm(self, ord=2, dtype=None):
    """The vector norm of every tensor (``ord``: a number, inf or -inf)."""
    from ..linalg import vector_norm
    _check(self)
    return tuple(vector_norm(t, ord, dtype=dtype) for t in self)


def _foreach_powsum(self, ord=2, dtype=None):
    """``sum(|t| ** ord)`` of every tensor (a norm before its root)."""
    _check(self)
    return tuple((t.abs() ** ord).sum(dtype=dtype) for t in self)


def _foreach_max(self):
    """The largest element of every tensor."""
    _check(self)
    return tuple(t.max() for t in self)


def _foreach_mm(self, mat2):
    _check(self, mat2)
    return tuple(a.mm(b) for a, b in zip(self, mat2))


def _foreach_copy_(self, src, non_blocking=False):
    _check(self, src)
    for t, s in zip(self, src):
        t.copy_(s)
    return self


def _foreach_zero_(self):
    _check(self)
    for t in self:
        t.zero_()
    return self


def _foreach_clone(self):
    _check(self)
    return tuple(t.clone() for t in self)


def _all() -> dict:
    got = {}
    for name in _BINARY:
        for inplace in (False, True):
            f = _binary(name, inplace)
            got[f.__name__] = f
    for name in _UNARY:
        for inplace in (False, True):
            f = _unary(name, inplace)
            got[f.__name__] = f
    for name in ("addcmul", "addcdiv"):
        for inplace in (False, True):
            f = _pointwise(name, inplace)
            got[f.__name__] = f
    for inplace in (False, True):
        f = _lerp(inplace)
        got[f.__name__] = f
    for f in (_foreach_norm, _foreach_powsum, _foreach_max, _foreach_mm, _foreach_copy_, _foreach_zero_,
              _foreach_clone):
        got[f.__name__] = f
    return got


FOREACH = _all()
