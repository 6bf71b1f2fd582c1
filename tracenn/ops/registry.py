"""The op registry: every primitive tracenn knows is one :class:`OpDef` in :data:`OPS`.

An OpDef holds everything any interpreter needs — eager dispatch, the tracer, graph passes and the
JAX lowering all read the same record:

- ``impl(*arrays, **static)``: the JAX implementation. Array inputs are positional; static
  parameters (shapes, axes, dtypes — hashable Python values) are keywords named in ``static``.
- ``vjp(g, out, *arrays, **static) -> tuple``: the gradient rule, one cotangent (or None) per array
  input, beside the forward it differentiates. Cotangents may have the broadcast shape of the
  output; the caller sums them back to each input's shape and casts to its dtype. ``None`` means
  "differentiate ``impl`` with ``jax.vjp``" (recomputes the forward inside the jitted backward).
- ``saves``: which inputs the vjp reads (indices; None: all), or a dict {input: indices it reads}
  when that depends on which inputs need a gradient (mul: d/dx reads y, d/dy reads x); and
  ``saves_out`` whether it reads the output. Autograd checks only these for in-place
  modification, as torch does.
- ``shape(*avals, **static)``: output shape/dtype; by default ``jax.eval_shape`` of ``impl``.
- ``with_grad(key) -> bool`` (or None): for a scalar loss, whether eager mode computes the input
  gradients for a cotangent of 1 in the forward's own program when an input needs one.
  ``loss.backward()`` then runs no program for it, where forward and gradient otherwise cost one
  each (see :meth:`OpDef.with_grad_kernel`).

This module imports nothing from the rest of tracenn.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

OPS: dict[str, "OpDef"] = {}


class OpDef:
    __slots__ = ("name", "impl", "vjp", "static", "saves", "saves_out", "nout", "differentiable",
                 "view", "doc", "with_grad", "_fwd", "_bwd")

    def __init__(self, name, impl, *, static=(), vjp=None, saves=None, saves_out=False, nout=1,
                 differentiable=True, view=False, with_grad=None):
        self.name = name
        self.impl = impl
        self.vjp = vjp
        self.static = tuple(static)
        self.saves = saves  # None: every input
        self.saves_out = saves_out
        self.nout = nout  # 1, a fixed count, or None when a static parameter decides (split)
        self.differentiable = differentiable
        self.view = view  # the output aliases the first input's memory in torch
        self.with_grad = with_grad  # key -> whether eager forward also computes unit gradients
        # Only our own docstrings: a jnp function registered directly carries JAX's (and its doctests).
        own = (getattr(impl, "__module__", None) or "").startswith("tracenn")
        self.doc = (impl.__doc__ or "").strip() if own else ""
        self._fwd: dict = {}
        self._bwd: dict = {}

    def __repr__(self):
        return f"OpDef({self.name}{', static=' + str(self.static) if self.static else ''})"

    def params(self, key: tuple) -> dict:
        return dict(zip(self.static, key))

    def call(self, arrays, key: tuple = ()):
        """Run ``impl`` un-jitted (used inside other traces: lowering, view write-back)."""
        return self.impl(*arrays, **dict(zip(self.static, key)))

    def forward_kernel(self, key: tuple) -> Callable:
        """The jitted forward for one set of static parameters (jit itself caches per input aval)."""
        fn = self._fwd.get(key)
        if fn is None:
            self._fwd[key] = jax.jit(functools.partial(self.impl, **dict(zip(self.static, key))))
            fn = self._fwd.get(key)  # (while a profile records, the table hands kernels out timed)
        return fn

    def with_grad_kernel(self, key: tuple, needs: tuple) -> Callable:
        """The jitted forward that also returns the input gradients for a cotangent of 1:
        ``kernel(*inputs) -> (out, cotangents)``, the cotangents as
        ``backward_kernel(key, needs)(1, out, *inputs)`` gives them (None where ``needs`` is False).
        It sits in the forward table, so a recording profile times it as the op."""
        k = ("with grad", key, needs)
        fn = self._fwd.get(k)
        if fn is None:
            impl = functools.partial(self.impl, **dict(zip(self.static, key)))

            def value_and_grad(*inputs):
                out = impl(*inputs)
                return out, _backward(self, key, needs, jnp.ones_like(out), out, *inputs)

            self._fwd[k] = jax.jit(value_and_grad)
            fn = self._fwd.get(k)
        return fn

    def backward_kernel(self, key: tuple, needs: tuple) -> Callable:
        """The jitted gradient for one set of static parameters and one input-needs-grad mask.

        Called as ``kernel(g, out, *inputs)``; returns one cotangent per input, None where
        ``needs`` is False (XLA drops that work).
        """
        k = (key, needs)
        fn = self._bwd.get(k)
        if fn is None:
            fn = jax.jit(functools.partial(_backward, self, key, needs))
            self._bwd[k] = fn
        return fn

    def shape(self, *avals, **static):
        """Output ShapeDtypeStruct(s) for input avals (the tracer's shape rule)."""
        return jax.eval_shape(functools.partial(self.impl, **static), *avals)


def _backward(op: OpDef, key, needs, g, out, *inputs):
    params = dict(zip(op.static, key))
    complex_ = _any_complex(out, inputs)
    if op.vjp is not None and not complex_:
        cts = op.vjp(g, out, *inputs, **params)
    else:
        idx = [i for i, n in enumerate(needs) if n]

        def f(*diff):
            args = list(inputs)
            for i, d in zip(idx, diff):
                args[i] = d
            return op.impl(*args, **params)

        _, pullback = jax.vjp(f, *[inputs[i] for i in idx])
        if complex_:
            # Hand-written rules assume real numbers. torch's cotangents are the conjugates of
            # JAX's: its input gradients are conj(jax_pullback(conj(g))) (a no-op on real arrays).
            got = [jnp.conj(c) for c in pullback(torch_to_jax_cotangent(g, out))]
        else:
            got = pullback(g)
        cts = [None] * len(inputs)
        for i, c in zip(idx, got):
            cts[i] = c
    result = []
    for x, need, ct in zip(inputs, needs, cts):
        if not need or ct is None:
            result.append(None)
            continue
        result.append(unbroadcast(ct, jnp.shape(x)).astype(jnp.result_type(x)))
    return tuple(result)


@jax.jit
def scale_cotangents(cts, g):
    """``g * ct`` for each cotangent computed for a unit cotangent (:meth:`OpDef.with_grad_kernel`),
    in each one's dtype: the gradients for the cotangent ``g`` that actually arrived."""
    return tuple(None if c is None else (opmath(c) * opmath(g)).astype(c.dtype) for c in cts)


def _any_complex(out, inputs) -> bool:
    leaves = jax.tree_util.tree_leaves((out, inputs))
    return any(jnp.issubdtype(jnp.result_type(x), jnp.complexfloating) for x in leaves
               if hasattr(x, "dtype"))


def torch_to_jax_cotangent(g, out):
    """A torch-convention cotangent ``g`` of ``out`` (an array, or a tuple with None for an output
    no gradient reached) as the cotangent ``jax.vjp``'s pullback takes: conjugated, in the
    output's dtype (float0 zeros for an integer output)."""
    def one(c, o):
        dt = jnp.result_type(o)
        if not jnp.issubdtype(dt, jnp.inexact):
            return np.zeros(jnp.shape(o), jax.dtypes.float0)
        if c is None:
            return jnp.zeros(jnp.shape(o), dt)
        return jnp.conj(c).astype(dt) if jnp.issubdtype(dt, jnp.complexfloating) else jnp.real(c).astype(dt)
    if isinstance(out, (tuple, list)):
        gs = g if isinstance(g, (tuple, list)) else (g,)
        return type(out)(one(c, o) for c, o in zip(gs, out))
    return one(g, out)


def unbroadcast(ct, shape):
    """Sum a cotangent of a broadcast result back to an input's shape."""
    if ct.shape == tuple(shape):
        return ct
    lead = ct.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and ct.shape[i + lead] != 1)
    if axes:
        ct = ct.sum(axis=axes, keepdims=True)
    return ct.reshape(shape)


def register(name: str, *, static=(), vjp=None, saves=None, saves_out=False, nout=1,
             differentiable=True, view=False, with_grad=None):
    """Decorator: register ``impl`` as primitive ``name``. Registering a name twice is an error."""

    def deco(impl):
        if name in OPS:
            raise ValueError(f"op {name!r} is registered twice")
        OPS[name] = OpDef(name, impl, static=static, vjp=vjp, saves=saves, saves_out=saves_out,
                          nout=nout, differentiable=differentiable, view=view, with_grad=with_grad)
        return impl

    return deco


def opmath(x):
    """float16/bfloat16 compute in float32 and round once, as torch's CPU kernels do."""
    return x.astype(jnp.float32) if x.dtype in (jnp.float16, jnp.bfloat16) else x


def zeros_like_out(aval):
    return jnp.zeros(aval.shape, aval.dtype)


def float0_free(x):
    """True for arrays that can carry a gradient (floating or complex)."""
    return jnp.issubdtype(np.dtype(x.dtype), jnp.inexact)


def jaxpr_reads(jaxpr) -> list:
    """For each input of ``jaxpr``: do its outputs depend on that input's value? (Reading only a
    shape or dtype is not a use: avals are static in a trace.) JAX's own dead-code pass, which
    also looks inside nested calls; it has no public name. Both the compiled backward (which
    residuals to save) and eager ``create_graph`` (which arguments need history) ask this of an
    op's gradient rule."""
    from jax._src.interpreters.partial_eval import dce_jaxpr
    _, used = dce_jaxpr(jaxpr, [True] * len(jaxpr.outvars))
    return used
