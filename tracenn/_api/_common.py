"""Helpers shared by the API modules: operand dtypes, dim normalisation, scalar checks."""
from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np

from .. import dtypes as _dt
from .._dispatch import TRACE as _TRACE
from ..tensor import Tensor, _wrap_dim

_np_default = lambda: _dt.get_default_dtype().np  # noqa: E731
_INT_KINDS = frozenset("iub")


def as_operand(x):
    """A Tensor stays; Python/numpy scalars stay scalars; arrays and sequences become tensors."""
    if isinstance(x, Tensor) or isinstance(x, (bool, int, float, complex)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, (np.ndarray, list, tuple)) or hasattr(x, "__jax_array__") or isinstance(x, jnp.ndarray):
        from .creation import tensor
        return tensor(x)
    raise TypeError(f"unsupported operand type: {type(x).__name__} (expected a Tensor or a number)")


def result_np_dtype(*args) -> np.dtype:
    """torch.result_type of tensors and scalars, as a numpy dtype (a static kernel parameter)."""
    if len(args) == 2:
        a, b = args
        ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
        if ta and tb:
            da, db = a._value.dtype, b._value.dtype
            if da == db:
                return da
        elif ta and (type(b) is float and a._value.dtype.kind in "fcV"
                     or type(b) is int and a._value.dtype.kind in "fcViu"):
            return a._value.dtype
        elif tb and (type(a) is float and b._value.dtype.kind in "fcV"
                     or type(a) is int and b._value.dtype.kind in "fcViu"):
            return b._value.dtype
    dims, zeros, scalars = [], [], []
    for x in args:
        if isinstance(x, Tensor):
            if _TRACE[0] is not None and _python_float(x):
                scalars.append(1.0)  # (a float argument passed as a program input: a Python number)
                continue
            (dims if x._value.ndim else zeros).append(_dt.from_np(x._value.dtype))
        else:
            scalars.append(x)
    return _dt.result_type(dims, zeros, scalars).np


def _python_float(t) -> bool:
    """While tracing: does ``t`` stand for a Python float (a float argument a compiled call passes
    as a 0-d float64 input, or a number computed from such; see Graph.python_float)?"""
    v = t._value
    graph = getattr(_TRACE[0], "graph", None)
    return getattr(v, "symbolic", False) and v.ndim == 0 and graph is not None \
        and getattr(graph, "python_floats", None) and graph.python_float(v)


def float_np_dtype(d: np.dtype) -> np.dtype:
    """Integer/bool dtypes compute in the default float dtype (torch's int-to-float promotion)."""
    return d if d.kind in "fcV" else _np_default()


def dims_arg(dim, ndim):
    """Normalise a reduction ``dim`` argument (None, int, or sequence) to None or a sorted tuple."""
    if dim is None:
        return None
    if isinstance(dim, (list, tuple)):
        if len(dim) == 0:
            return None
        out = tuple(sorted(_wrap_dim(d, ndim) for d in dim))
        if len(set(out)) != len(out):
            raise RuntimeError(f"dim {out} appears multiple times in the list of dims")
        return out
    return (_wrap_dim(dim, ndim),)


def numpy_names(name, dim, keepdim, axis, keepdims, default=None):
    """``dim`` and ``keepdim`` given by NumPy's names, which torch's argument parser takes too
    (``x.sum(axis=1, keepdims=True)``). Callers test ``axis``/``keepdims`` for None first, so the
    usual call pays nothing. Both spellings of one argument is a TypeError, as in torch."""
    if axis is not None:
        if dim is not default and dim != default:
            raise TypeError(f"{name}() got both 'dim' and its NumPy alias 'axis'; pass one of them")
        dim = axis
    if keepdims is not None:
        if keepdim:
            raise TypeError(f"{name}() got both 'keepdim' and its NumPy alias 'keepdims'; pass one of them")
        keepdim = keepdims
    return dim, keepdim


def check_int(x, what):
    if not isinstance(x, numbers.Integral):
        raise TypeError(f"{what} must be an int, got {type(x).__name__}")
    return int(x)


def shape_arg(size) -> tuple:
    """Accept f(2, 3), f((2, 3)), f([2, 3]), f(Size) — torch's varargs shape convention."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    for s in size:
        if type(s) is not int:
            break
    else:
        return tuple(size)  # the common case: plain ints (no abc isinstance per element)
    out = []
    for s in size:
        if isinstance(s, Tensor):
            s = int(s)
        if not isinstance(s, numbers.Integral):
            raise TypeError(f"size must be a tuple of ints, but got element of type {type(s).__name__}")
        out.append(int(s))
    return tuple(out)


def value_of(t: Tensor):
    return t._value if t._base is None else t._sync()


def tensor_arg(name, arg, pos, x) -> None:
    """torch's TypeError for a number where ``name`` takes only a tensor (argument ``arg`` at ``pos``)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}; wrap the number, e.g. tracenn.tensor({x!r})")


def shape_values(t: Tensor, what: str, fix: str) -> np.ndarray:
    """The values of ``t`` as numpy, read for an op whose output shape depends on them. Inside
    ``tracenn.compile`` they are unknown: the DataDependentError says ``what`` the op is (its name
    and what its size counts) and how to ``fix`` it (a form whose shape does not depend on values)."""
    from .. import _dispatch
    _dispatch.HOST_READ[0] = (what, fix)
    try:
        return np.asarray(value_of(t))
    finally:
        _dispatch.HOST_READ[0] = None


def host_values(t: Tensor):
    """The values of ``t`` as numpy (one host read), or None when ``t`` has none to read (a
    compiled trace's symbolic value, or a JAX tracer): for checks that need the values."""
    from .._dispatch import abstract
    from ..errors import DataDependentError
    v = value_of(t)
    if getattr(v, "symbolic", False):  # (a trace's value made from constants alone is known: read it)
        try:
            return np.asarray(v)
        except DataDependentError:
            return None
    return None if abstract(v) else np.asarray(v)
