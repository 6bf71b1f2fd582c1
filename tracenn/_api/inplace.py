"""torch's other spellings of in-place ops: the Tensor aliases (``x.arccos_()`` is ``x.acos_()``,
``x.greater_(y)`` is ``x.gt_(y)``) and the torch-level in-place functions (``tracenn.abs_(x)`` is
``x.abs_()``), made in one place from the Tensor methods so that each has one definition.

>>> import tracenn
>>> x = tracenn.tensor([-1.0, 4.0])
>>> tracenn.abs_(x) is x, x.sqrt_()
(True, tensor([1., 2.]))
"""
from __future__ import annotations

from ..tensor import Tensor
from ._common import tensor_arg

# Tensor in-place aliases torch has: alias -> the method it is.
ALIASES = {
    "arccos_": "acos_", "arcsin_": "asin_", "arctan_": "atan_", "arccosh_": "acosh_", "arcsinh_": "asinh_",
    "arctanh_": "atanh_", "arctan2_": "atan2_", "greater_": "gt_", "greater_equal_": "ge_", "less_": "lt_",
    "less_equal_": "le_", "not_equal_": "ne_",
}

# torch's top-level in-place functions whose Tensor method tracenn has (torch.relu_, dropout_ and the
# other nn ones are tracenn.nn.functional's; as_strided_ is in _api/strided.py).
TOPLEVEL = ("abs_ acos_ acosh_ addmv_ arccos_ arccosh_ arcsin_ arcsinh_ arctan_ arctanh_ asin_ asinh_ atan_ atanh_ "
            "ceil_ clamp_ clamp_max_ clamp_min_ clip_ conj_physical_ cos_ cosh_ deg2rad_ detach_ erf_ erfc_ exp2_ "
            "exp_ expm1_ fill_ fix_ floor_ frac_ gcd_ i0_ index_put_ lcm_ ldexp_ log10_ log1p_ log2_ log_ logit_ "
            "nan_to_num_ neg_ negative_ rad2deg_ reciprocal_ resize_as_ round_ rsqrt_ sigmoid_ sin_ sinc_ sinh_ "
            "sqrt_ square_ tan_ tanh_ trunc_ xlogy_ zero_").split()


def _alias(name: str, target: str):
    def method(self, *args, **kwargs):
        return getattr(self, target)(*args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place ``{name[:-1]}``: the same as ``x.{target}(...)``."
    return method


def _conj_physical_(self):
    """In-place complex conjugate (a real tensor is left as it is, as torch's)."""
    return self._set_(self.conj(), "conj_physical_") if self.is_complex() else self


def _toplevel(name: str):
    def fn(input, *args, **kwargs):
        tensor_arg(name, "input", 1, input)
        return getattr(input, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = "tracenn"
    fn.__doc__ = f"``tracenn.{name}(input, ...)`` is ``input.{name}(...)``: changes ``input`` and returns it."
    return fn


def attach() -> dict:
    """Bind the Tensor aliases; return the torch-level functions, by name, for ``tracenn``'s namespace."""
    for name, target in ALIASES.items():
        setattr(Tensor, name, _alias(name, target))
    Tensor.conj_physical_ = _conj_physical_
    missing = [n for n in TOPLEVEL if not hasattr(Tensor, n)]
    if missing:  # a name above whose method is gone: say so here, not at a user's call
        raise AttributeError(f"tracenn._api.inplace: Tensor has no method {missing}")
    return {n: _toplevel(n) for n in TOPLEVEL}
