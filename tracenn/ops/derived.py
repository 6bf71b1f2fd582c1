"""Op records derived from the registry:

- :func:`gradient_op` — the gradient of a registered op as an op of its own (``vjp_relu``), so a
  traced ``backward()`` is graph nodes that run the op's own gradient rule, and an eager
  ``backward(create_graph=True)`` records its gradient computation as ops that can be
  differentiated again;
- :data:`CALLBACK` — a call back into Python with real arrays (a module hook inside a compiled
  program), lowered to an ordered host callback;
- :data:`TRANSFORM` — a ``tracenn.func`` transform (``vmap``, ``grad``, ...) inside a compiled
  program: a pure JAX function of its inputs;
- :data:`COND` and :data:`WHILE` — ``tracenn.cond`` and ``tracenn.while_loop`` inside a compiled
  program: ``lax.cond`` / ``lax.while_loop`` over blocks (sub-graphs) the compiler traced;
- :data:`BACKWARD_HOOK` — where a module's full backward (pre-)hooks fire: the identity forward,
  and a gradient rule that calls the hooks back on the host with the real gradients.

They live here, beside the registry, so that every OpDef is defined in ``tracenn/ops/``; they are
not in :data:`OPS` (``derived = True``): each gradient op stands for a registered op, and the
callback for Python code, not for a computation of its own.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .registry import OpDef, _backward, jaxpr_reads


class GradientOp(OpDef):
    """``vjp_<op>``: inputs ``(*cotangents, *outputs, *inputs)``, outputs the cotangents of the
    inputs marked in the static ``needs`` (``nout`` is the forward op's output count).

    Two flavours, cached apart by :func:`gradient_op`:

    - the graph one (``differentiable=False``) is what a traced ``backward()`` records: one value
      when one cotangent is asked for. Gradients a traced backward made are constants to a later
      traced backward, as eager gradients are without ``create_graph``.
    - the eager one (``differentiable=True``) is what eager autograd dispatches for
      ``create_graph=True``: it always returns a tuple (eager dispatch reads the output count from
      the result) and is differentiable by JAX's vjp of its impl, so a gradient of it is
      ``vjp_vjp_<op>``, and so on to any order.
    """

    derived = True

    def __init__(self, fwd: OpDef, differentiable: bool = False):
        self.fwd = fwd
        # Its own static names must differ from those of the op it differentiates: vjp_vjp_relu
        # keeps both needs masks (needs, needs2).
        self.order = getattr(fwd, "order", 0) + 1
        suffix = "" if self.order == 1 else str(self.order)
        needs_name, nout_name = "needs" + suffix, "nout" + suffix

        def impl(*args, **params):
            needs = params.pop(needs_name)
            nout = params.pop(nout_name)
            key = tuple(params[s] for s in fwd.static)
            gs, outs, ins = args[:nout], args[nout:2 * nout], args[2 * nout:]
            single = fwd.nout == 1  # else a tuple, even of one (a gradient op's own result)
            g = gs[0] if single else tuple(gs)
            out = outs[0] if single else tuple(outs)
            cts = _backward(fwd, key, needs, g, out, *ins)
            # a rule may return None for an input whose gradient is zero: give it its zeros
            got = tuple(jnp.zeros(jnp.shape(x), jnp.result_type(x)) if c is None else c
                        for c, n, x in zip(cts, needs, ins) if n)
            return got if differentiable or len(got) != 1 else got[0]

        super().__init__(f"vjp_{fwd.name}", impl, static=fwd.static + (needs_name, nout_name),
                         differentiable=differentiable, nout=None)
        self._reads: dict = {}

    def reads(self, key: tuple, args: tuple) -> tuple:
        """For each of ``args`` (raw cotangents, outputs and inputs): does the result depend on its
        value? A rule reads only some (add's reads neither input, mul's d/dx reads only y), and an
        argument it does not read needs no autograd history when ``create_graph=True`` records
        this op. Found from the rule's jaxpr, once per key and input types. (``OpDef.saves`` is
        not this: it lists what the in-place check guards, and div's rule reads its output
        unguarded.)"""
        sig = (key, tuple((a.shape, a.dtype) if hasattr(a, "dtype") else type(a) for a in args))
        got = self._reads.get(sig)
        if got is None:
            jaxpr = jax.make_jaxpr(functools.partial(self.impl, **self.params(key)))(*args).jaxpr
            used = iter(jaxpr_reads(jaxpr))  # one per argument; None has none
            got = self._reads[sig] = tuple(a is not None and next(used) for a in args)
        return got


@functools.lru_cache(maxsize=None)
def gradient_op(op: OpDef, differentiable: bool = False) -> GradientOp:
    """The (cached) gradient op of registered op ``op``; ``differentiable=True``: the eager
    flavour used by ``create_graph=True`` (see :class:`GradientOp`)."""
    return GradientOp(op, differentiable)


class CallbackOp(OpDef):
    """``hook[fn=...]``: calls ``fn(*arrays)`` on the host with real arrays, in program order; its
    outputs (typed by ``fn.out_avals``) replace the last ``len(fn.out_avals)`` inputs, and for
    gradients it is the identity on them."""

    derived = True

    def shape(self, *avals, fn):
        return tuple(jax.ShapeDtypeStruct(s, d) for s, d in fn.out_avals)


def _callback(*arrays, fn):
    from jax.experimental import io_callback
    shapes = tuple(jax.ShapeDtypeStruct(s, d) for s, d in fn.out_avals)
    return tuple(io_callback(fn, shapes, *arrays, ordered=True))


def _callback_vjp(g, out, *arrays, fn):
    return (None,) * (len(arrays) - len(fn.out_avals)) + tuple(g)


CALLBACK = CallbackOp("hook", _callback, static=("fn",), vjp=_callback_vjp, nout=None)


class TransformOp(OpDef):
    """``func_transform[fn=vmap(f)]``: a ``tracenn.func`` transform inside a compiled program.
    ``fn(*arrays)`` is a pure JAX function (the transform of the user's function, with the
    tensors that function reads from outside as its first arguments) returning its output leaves,
    typed by ``fn.out_avals``. Without a rule of its own, it is differentiated by JAX (the ops
    inside keep theirs)."""

    derived = True

    def shape(self, *avals, fn):
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in fn.out_avals)


def _transform(*arrays, fn):
    return tuple(fn(*arrays))


TRANSFORM = TransformOp("func_transform", _transform, static=("fn",), nout=None)


class ControlOp(OpDef):
    """``cond[blocks=(true,false)]`` and ``while_loop[blocks=(cond,body)]``: structured control
    flow over traced blocks. ``blocks`` (built by tracenn/compiler/control.py) holds the blocks'
    JAX functions (``fns``), what they return (``out_avals``) and, for a loop, how many leading
    inputs are carried (``n_carry``). Without a rule of its own, a cond is differentiated by JAX
    (the ops inside keep theirs); XLA's while loops have no reverse-mode derivative."""

    derived = True

    def shape(self, *avals, blocks):
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in blocks.out_avals)


def _scalar_bool(p):
    p = jnp.reshape(p, ())
    return p if p.dtype == jnp.bool_ else p != 0


def _cond(pred, *args, blocks):
    true_fn, false_fn = blocks.fns
    return tuple(jax.lax.cond(_scalar_bool(pred), true_fn, false_fn, *args))


def _while(*args, blocks):
    cond_fn, body_fn = blocks.fns
    carry, free = tuple(args[:blocks.n_carry]), args[blocks.n_carry:]
    return tuple(jax.lax.while_loop(lambda c: _scalar_bool(cond_fn(*c, *free)[0]),
                                    lambda c: tuple(body_fn(*c, *free)), carry))


COND = ControlOp("cond", _cond, static=("blocks",), nout=None)
WHILE = ControlOp("while_loop", _while, static=("blocks",), nout=None, differentiable=False)


class BackwardHookOp(OpDef):
    """``backward_hook[side=...]``: the identity on its inputs; its gradient rule hands the
    cotangents to ``side`` (tracenn/compiler/hooks.py: a module's full backward hooks, on the
    module's outputs or inputs) on the host, in program order, and passes on what it returns."""

    derived = True

    def shape(self, *avals, side):
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in avals)


def _identity_all(*arrays, side):
    return tuple(arrays)


def _backward_hook_vjp(g, out, *arrays, side):
    from jax.experimental import io_callback
    shapes = tuple(jax.ShapeDtypeStruct(jnp.shape(a), jnp.result_type(a)) for a in arrays)
    return tuple(io_callback(side, shapes, *g))


BACKWARD_HOOK = BackwardHookOp("backward_hook", _identity_all, static=("side",), vjp=_backward_hook_vjp, nout=None)
