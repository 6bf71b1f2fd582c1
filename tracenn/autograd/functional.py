"""``torch.autograd.functional``: ``jacobian``, ``hessian``, ``vjp``, ``jvp``, ``hvp``, ``vhp``.

The same computations as :mod:`tracenn.func`'s transforms (which these call), with this API's
conventions: ``inputs`` is a tensor or a tuple of tensors, results mirror whether inputs and
outputs were tuples, and results carry no autograd history unless ``create_graph=True``.

>>> import tracenn
>>> from tracenn.autograd.functional import jacobian, hvp
>>> jacobian(lambda x: x ** 2, tracenn.tensor([1.0, 2.0]))
tensor([[2., 0.],
        [0., 4.]])
>>> hvp(lambda x: (x ** 3).sum(), tracenn.tensor([1.0, 2.0]), tracenn.ones(2))[1]
tensor([ 6., 12.])
"""
from __future__ import annotations

import contextlib
import weakref

from ..tensor import Tensor
from .grad_mode import no_grad

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]

_WRAPPERS = weakref.WeakKeyDictionary()  # func -> {what: its tracenn.func transform} (their programs are cached)


def _tuple_of_tensors(x, what, fn_name):
    """(was it a tuple, as a tuple): torch's check that ``x`` is a Tensor or a tuple of them."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    if not all(isinstance(t, Tensor) for t in items):
        raise TypeError(f"The {what} given to {fn_name} must be either a Tensor or a tuple of Tensors but the given "
                        f"{what} has type {type(x) if not is_tuple else type(next(t for t in items if not isinstance(t, Tensor)))}.")
    return is_tuple, items


def _checked(func, fn_name):
    """``func`` with torch's check on what it returns."""
    def f(*args):
        out = func(*args)
        _tuple_of_tensors(out, "outputs of the user-provided function", fn_name)
        return out
    return f


def _transform(func, what, make):
    """The tracenn.func transform ``make(f)`` of ``func`` for ``what``, kept per function so that
    calls with the same function reuse its programs."""
    try:
        per = _WRAPPERS.setdefault(func, {})
    except TypeError:  # (an object we cannot hold weakly: a new transform each call)
        return make()
    got = per.get(what)
    if got is None:
        got = per[what] = make()
    return got


def _options(strict, fn_name, strategy=None, vectorize=False, strategy_name="strategy"):
    if strategy is not None and strategy not in ("forward-mode", "reverse-mode"):
        raise RuntimeError(f'Expected {strategy_name} to be either "forward-mode" or "reverse-mode". Hint: If your '
                           "function has more outputs than inputs, \"forward-mode\" tends to be more performant. "
                           "Otherwise, prefer to use \"reverse-mode\".")
    if strict and vectorize:
        raise RuntimeError(f"torch.autograd.functional.{fn_name}: `strict=True` and `vectorized=True` are not "
                           "supported together. Please either set `strict=False` or `vectorize=False`.")
    if strategy == "forward-mode" and not vectorize:
        raise NotImplementedError("Computing Jacobian using forward-AD or forward-over-reverse Hessian isonly "
                                  "implemented for `vectorize=True`.")
    if strict:
        raise NotImplementedError(f"tracenn.autograd.functional.{fn_name}: strict=True is not supported (tracenn "
                                  "computes these with JAX, which does not track which outputs are independent of "
                                  "which inputs); leave strict=False (an independent output gives zeros).")


def _grad_ctx(create_graph):
    return contextlib.nullcontext() if create_graph else no_grad()


def jacobian(func, inputs, create_graph=False, strict=False, vectorize=False, strategy="reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``: for one input and one output a tensor of shape
    ``output.shape + input.shape``; a tuple per input and/or per output where those are tuples
    (outer index: output). ``vectorize`` and ``strategy`` are accepted (tracenn always builds the
    whole Jacobian in one vectorised program); ``strict=True`` is not supported."""
    from ..func import jacrev
    _options(strict, "jacobian", strategy, vectorize)
    in_tuple, ins = _tuple_of_tensors(inputs, "inputs", "jacobian")
    argnums = tuple(range(len(ins))) if in_tuple else 0
    jac = _transform(func, ("jacobian", argnums), lambda: jacrev(_checked(func, "jacobian"), argnums))
    with _grad_ctx(create_graph):
        return jac(*ins)


def hessian(func, inputs, create_graph=False, strict=False, vectorize=False, outer_jacobian_strategy="reverse-mode"):
    """The Hessian of ``func`` (which returns a one-element tensor) at ``inputs``: a tensor of shape
    ``input.shape + input.shape``, or for a tuple of inputs a tuple (per input) of tuples."""
    from ..func import hessian as _hessian
    _options(strict, "hessian", outer_jacobian_strategy, vectorize, "outer_jacobian_strategy")
    in_tuple, ins = _tuple_of_tensors(inputs, "inputs", "hessian")
    argnums = tuple(range(len(ins))) if in_tuple else 0

    def scalar(*args):
        out = func(*args)
        _tuple_of_tensors(out, "outputs of the user-provided function", "hessian")
        if isinstance(out, tuple) or out.numel() != 1:
            raise RuntimeError("The Tensor returned by the function given to hessian should contain a single element")
        return out.reshape(())
    h = _transform(func, ("hessian", argnums), lambda: _hessian(scalar, argnums))
    with _grad_ctx(create_graph):
        return h(*ins)


def _check_v(v, like, fn_name, what):
    is_tuple, vs = _tuple_of_tensors(v, "v", fn_name)
    if len(vs) != len(like):
        raise RuntimeError(f"v has invalid size: should be {len(like)} but got {len(vs)}")
    for i, (a, b) in enumerate(zip(vs, like)):
        if tuple(a.shape) != tuple(b.shape):
            raise RuntimeError(f"Entry {i} in v has invalid size: should be {tuple(b.shape)} but got {tuple(a.shape)}")
    return vs


def _default_v(outs, fn_name):
    if len(outs) != 1 or outs[0].numel() != 1:
        raise RuntimeError("The vector v can only be None if the user-provided function returns a single Tensor "
                           "with a single element.")
    return (outs[0].new_ones(()) if outs[0].dim() == 0 else outs[0].new_ones(tuple(outs[0].shape)),)


def vjp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T J)``: the vector-Jacobian product, structured as ``inputs``. ``v`` may
    be None only when ``func`` returns a single element."""
    from ..func import vjp as _vjp
    _options(strict, "vjp")
    in_tuple, ins = _tuple_of_tensors(inputs, "inputs", "vjp")
    with _grad_ctx(create_graph):
        out, pull = _vjp(_checked(func, "vjp"), *ins)
        out_tuple, outs = _tuple_of_tensors(out, "outputs of the user-provided function", "vjp")
        vs = _default_v(outs, "vjp") if v is None else _check_v(v, outs, "vjp", "outputs")
        got = pull(tuple(vs) if out_tuple else vs[0])
    return out, (got if in_tuple else got[0])


def jvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), J v)``: the Jacobian-vector product, structured as the outputs. ``v`` may
    be None only when there is one input with a single element."""
    from ..func import jvp as _jvp
    _options(strict, "jvp")
    in_tuple, ins = _tuple_of_tensors(inputs, "inputs", "jvp")
    vs = _default_v(ins, "jvp") if v is None else _check_v(v, ins, "jvp", "inputs")
    with _grad_ctx(create_graph):
        return _jvp(_checked(func, "jvp"), tuple(ins), tuple(vs))


def _hessian_product(name, func, inputs, v, create_graph, strict):
    from ..func import grad, jvp as _jvp
    _options(strict, name)
    in_tuple, ins = _tuple_of_tensors(inputs, "inputs", name)
    vs = _default_v(ins, name) if v is None else _check_v(v, ins, name, "inputs")

    def scalar(*args):
        out = func(*args)
        _tuple_of_tensors(out, "outputs of the user-provided function", name)
        if isinstance(out, tuple) or out.numel() != 1:
            raise RuntimeError(f"The Tensor returned by the function given to {name} should contain a single element")
        return out.reshape(())
    g = _transform(func, (name, len(ins)), lambda: grad(scalar, argnums=tuple(range(len(ins)))))
    with _grad_ctx(create_graph):
        out = func(*ins)
        _, prod = _jvp(g, tuple(ins), tuple(vs))  # H v (H is symmetric: v^T H is the same numbers)
    return out, (prod if in_tuple else prod[0])


def hvp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), H v)`` for a function returning a single element."""
    return _hessian_product("hvp", func, inputs, v, create_graph, strict)


def vhp(func, inputs, v=None, create_graph=False, strict=False):
    """``(func(*inputs), v^T H)`` for a function returning a single element."""
    return _hessian_product("vhp", func, inputs, v, create_graph, strict)
