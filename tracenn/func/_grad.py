"""``torch.func``'s differentiation transforms: ``grad``, ``grad_and_value``, ``vjp``, ``jvp``,
``jacrev``, ``jacfwd``, ``hessian``, on the machinery of :mod:`._transforms` (frames, the tape,
programs traced once per call signature)."""
from __future__ import annotations

import contextlib
import functools
import weakref

import jax
import jax.numpy as jnp

from .. import _dispatch
from ..autograd.grad_mode import GRAD
from ..runtime.gradcall import conj_tree
from ..tensor import Tensor
from ._random import _DRAWS, _Draws, _drawing, rng_args
from ._transforms import (Frame, _INEXACT, _Running, _arrays, _call_key, _inputs, _ordered, _run, _tensor_leaves,
                          _tensors)

_JVP_CACHE = weakref.WeakKeyDictionary()  # func -> its jvp programs (jvp takes no transform object)


def _weakable(f) -> bool:
    try:
        weakref.ref(f)
        return True
    except TypeError:
        return False


# ---- grad and grad_and_value ------------------------------------------------------------------------

def _argnums(argnums, n, name):
    many = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if many else (argnums,)
    if not nums:
        raise RuntimeError(f"{name}: argnums must be non-empty")
    out = []
    for a in nums:
        if not isinstance(a, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(a)}")
        if not -n <= a < n:
            raise RuntimeError(f"Got argnum={a}, but only {n} positional inputs")
        out.append(a % n)
    if len(set(out)) != len(out):
        raise RuntimeError(f"argnums must be unique, got {argnums}")
    return tuple(out), many


def _scalar_check(out, has_aux, name):
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError(f"{name}(f)(*args): output of function f should be a tuple: (output, aux) "
                               "if has_aux is True")
        out, aux = out
    else:
        aux = None
    if not isinstance(out, Tensor):
        raise RuntimeError(f"{name}(f)(*args): Expected f(*args) to return a Tensor, got {type(out)}")
    if out.dim() != 0:
        raise RuntimeError(f"{name}(f)(*args): Expected f(*args) to return a scalar Tensor, got tensor with "
                           f"{out.dim()} dims. Maybe you wanted to use the vjp or jacrev APIs instead?")
    return out, aux


def grad_and_value(func, argnums=0, has_aux=False):
    """``torch.func.grad_and_value``: a function returning ``(gradients, value)`` of ``func``.

    ``func`` must return a scalar tensor (or ``(scalar, aux)`` with ``has_aux=True``, and then the
    result is ``(gradients, (value, aux))``). Gradients are taken with respect to the positional
    arguments in ``argnums`` (an int, or a tuple for a tuple of gradients); each may be a tensor or
    a tuple/list/dict of tensors, and its gradient has the same structure.

    >>> import tracenn
    >>> from tracenn.func import grad_and_value
    >>> g, v = grad_and_value(lambda x: (x ** 2).sum())(tracenn.tensor([1.0, 2.0]))
    >>> g, v
    (tensor([2., 4.]), tensor(5.))
    """
    cache: dict = {}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        args, kwargs = _ordered(args), _ordered(kwargs)
        nums, many = _argnums(argnums, len(args), "grad_and_value")
        for i in nums:
            for t in _tensor_leaves(args[i]):
                if t._value.dtype.kind not in _INEXACT:
                    raise RuntimeError("only Tensors of floating point dtype can require gradients")
        tensors, rebuild = _inputs((args, kwargs))

        def fn(arrays):
            a2, k2 = rebuild(arrays)

            def loss(*diff_args):
                new = list(a2)
                for i, d in zip(nums, diff_args):
                    new[i] = d
                with _Running(Frame("grad")):
                    out = func(*_tensors(new), **_tensors(k2))
                    out, aux = _scalar_check(out, has_aux, "grad_and_value")
                    res = (out._value, _arrays(aux))
                    del out, aux
                return res

            (value, aux), grads = jax.value_and_grad(loss, argnums=tuple(range(len(nums))), has_aux=True)(
                *[a2[i] for i in nums])
            grads = conj_tree(grads)  # torch's gradient of a complex argument: JAX's conjugated
            return (grads if many else grads[0]), value, aux

        key = _call_key(func, (args, kwargs), nums, has_aux)
        grads, value, aux = _run("grad", fn, tensors, cache, key, func)
        return (grads, (value, aux)) if has_aux else (grads, value)
    return wrapper


def grad(func, argnums=0, has_aux=False):
    """``torch.func.grad``: a function returning the gradient of ``func`` (a scalar tensor) with
    respect to the arguments in ``argnums``; ``(gradient, aux)`` with ``has_aux=True``.

    Composes with :func:`vmap` for per-sample gradients::

        per_sample = vmap(grad(loss_fn), in_dims=(None, 0, 0))(params, x, y)

    >>> import tracenn
    >>> from tracenn.func import grad
    >>> grad(lambda x: x.sin().sum())(tracenn.tensor([0.0, 1.0]))
    tensor([1.0000, 0.5403])
    """
    gv = grad_and_value(func, argnums, has_aux)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        g, v = gv(*args, **kwargs)
        return (g, v[1]) if has_aux else g
    return wrapper


# ---- vjp, jvp and Jacobians ----------------------------------------------------------------------------

def _flat_args(values):
    """(tensor leaves, [(structure, count)]) of several pytrees of tensors."""
    flat, parts = [], []
    for v in values:
        leaves = _tensor_leaves(v)
        flat += leaves
        parts.append((jax.tree_util.tree_structure(v), len(leaves)))
    return flat, parts


def _unflat(arrays, parts):
    out, k = [], 0
    for tree, n in parts:
        out.append(jax.tree_util.tree_unflatten(tree, arrays[k:k + n]))
        k += n
    return out


def _traced(func, name, has_aux, args=None, nums=None, kwargs=None):
    """``func`` as a JAX function of the arguments in ``nums`` (or of all arguments), returning
    ``(outputs, aux)`` as arrays; the other arguments are ``args``/``kwargs`` (arrays or tensors);
    it runs under a frame called ``name``."""
    def f(*diff):
        new = list(diff) if nums is None else list(args)
        if nums is not None:
            for i, d in zip(nums, diff):
                new[i] = d
        with _Running(Frame(name)):
            out = func(*_tensors(new), **_tensors(kwargs or {}))
            aux = None
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise RuntimeError(f"{name}(f, ...): output of function f should be a tuple: (output, aux) "
                                       "if has_aux is True")
                out, aux = out
            _tensor_leaves(out)
            res = (_arrays(out), _arrays(aux))
            del out, aux
        return res
    return f


def vjp(func, *primals, has_aux=False):
    """``torch.func.vjp``: ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with ``has_aux``), where
    ``vjp_fn(cotangents)`` returns a tuple with the vector-Jacobian product for each primal.

    >>> import tracenn
    >>> from tracenn.func import vjp
    >>> out, vjp_fn = vjp(lambda x: x ** 2, tracenn.tensor([1.0, 3.0]))
    >>> vjp_fn(tracenn.ones(2))
    (tensor([2., 6.]),)
    """
    primals = _ordered(primals)
    flat, parts = _flat_args(primals)
    f = _traced(func, "vjp", has_aux)
    first = {}

    def fn(arrays):
        out, pull, aux = jax.vjp(f, *_unflat(arrays, parts), has_aux=True)
        first.setdefault("pull", pull)  # (the first pass's: a later one under jax.vjp holds its tracers)
        draws = _DRAWS[0]
        if draws is not None and draws.rng is None and not compiling:  # (the generators before this call moves them)
            first.setdefault("rng", (list(draws.gens), rng_args(draws.gens)))
        return out, aux
    compiling = _dispatch.TRACE[0] is not None  # (then the pullback is recorded again when called)
    out, aux = _run("vjp", fn, flat, func=func, same_draws=first)
    out_tree = jax.tree_util.tree_structure(_ordered(out))

    def vjp_fn(cotangents):
        cotangents = _ordered(cotangents)
        cts = _tensor_leaves(cotangents)
        if jax.tree_util.tree_structure(cotangents) != out_tree:
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as pytree structure of "
                               f"outputs to the function. cotangents: {jax.tree_util.tree_structure(cotangents)}, "
                               f"primal output: {out_tree}")
        for c, o in zip(cts, jax.tree_util.tree_leaves(out)):
            if tuple(c.shape) != tuple(o.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[0] has a shape of {tuple(c.shape)} and "
                                   f"output[0] has a shape of {tuple(o.shape)}.")
        n = len(flat)
        if compiling or GRAD.enabled and _dispatch.FUNC[0] is None and any(t._requires_grad for t in flat + cts):
            def again(arrays):  # (the pullback on the tape: recomputed, so primals and cotangents get grads;
                # its random draws repeat the call's)
                with _drawing(_Draws(*first["rng"])) if "rng" in first else contextlib.nullcontext():
                    _, pull, _ = jax.vjp(f, *_unflat(arrays[:n], parts), has_aux=True)
                return tuple(conj_tree(pull(conj_tree(jax.tree_util.tree_unflatten(out_tree, arrays[n:])))))
            return _run("vjp", again, flat + cts, same_draws=first)  # (compiling: the forward's rng inputs)
        ct = conj_tree(jax.tree_util.tree_unflatten(out_tree, _arrays(cts)))
        return _tensors(tuple(conj_tree(first["pull"](ct))))

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """``torch.func.jvp``: ``(output, jvp_out)`` (``(output, jvp_out, aux)`` with ``has_aux``), the
    Jacobian of ``func`` at ``primals`` times ``tangents``.

    Computed as the transpose of the pullback (tracenn's gradient rules are reverse-mode rules):
    the values are torch's forward-mode ones, at about twice a backward's cost.

    >>> import tracenn
    >>> from tracenn.func import jvp
    >>> jvp(lambda x: x ** 2, (tracenn.tensor([1.0, 3.0]),), (tracenn.ones(2),))
    (tensor([1., 9.]), tensor([2., 6.]))
    """
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be tuples. E.g. "
                           "jvp(f, (x,), (t,))")
    primals, tangents = _ordered(primals), _ordered(tangents)
    pf, pparts = _flat_args(primals)
    tf, tparts = _flat_args(tangents)
    if [p[0] for p in pparts] != [t[0] for t in tparts]:
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have the same python "
                           "structure.")
    for p, t in zip(pf, tf):
        if tuple(p.shape) != tuple(t.shape):
            raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to have the same shape, "
                               f"got {tuple(p.shape)} and {tuple(t.shape)}.")
    f = _traced(func, "jvp", has_aux)
    n = len(pf)
    cache = _JVP_CACHE.setdefault(func, {}) if _weakable(func) else None

    def fn(arrays):
        out, pull, aux = jax.vjp(f, *_unflat(arrays[:n], pparts), has_aux=True)
        _, transpose = jax.vjp(pull, jax.tree_util.tree_map(jnp.zeros_like, out))
        (jout,) = transpose(tuple(_unflat(arrays[n:], tparts)))
        return out, jout, aux
    out, jout, aux = _run("jvp", fn, pf + tf, cache, _call_key(func, (primals, tangents), has_aux), func)
    return (out, jout, aux) if has_aux else (out, jout)


def _jacobian(name, func, argnums, has_aux):
    cache: dict = {}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        args, kwargs = _ordered(args), _ordered(kwargs)
        nums, many = _argnums(argnums, len(args), name)
        for i in nums:
            _tensor_leaves(args[i])
        tensors, rebuild = _inputs((args, kwargs))

        def fn(arrays):
            a2, k2 = rebuild(arrays)
            f = _traced(func, name, has_aux, a2, nums, k2)
            jac, aux = jax.jacrev(f, argnums=tuple(range(len(nums))) if many else 0, has_aux=True)(
                *[a2[i] for i in nums])
            return jac, aux
        jac, aux = _run(name, fn, tensors, cache, _call_key(func, (args, kwargs), nums, has_aux), func)
        return (jac, aux) if has_aux else jac
    return wrapper


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """``torch.func.jacrev``: the Jacobian of ``func`` with respect to the arguments in
    ``argnums``, by reverse mode. Each output's Jacobian has shape ``output.shape + input.shape``;
    with a tuple ``argnums``, a tuple of them per output. ``chunk_size`` is accepted for
    compatibility (tracenn computes all rows at once).

    >>> import tracenn
    >>> from tracenn.func import jacrev
    >>> jacrev(lambda x: x.sin())(tracenn.tensor([0.0, 0.0]))
    tensor([[1., 0.],
            [0., 1.]])
    """
    return _jacobian("jacrev", func, argnums, has_aux)


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """``torch.func.jacfwd``: the same Jacobian as :func:`jacrev` (tracenn computes it in reverse
    mode: its gradient rules are reverse-mode rules; the values are the same).

    >>> import tracenn
    >>> from tracenn.func import jacfwd
    >>> jacfwd(lambda x: x * 2)(tracenn.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 2.]])
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    return _jacobian("jacfwd", func, argnums, has_aux)


def hessian(func, argnums=0):
    """``torch.func.hessian``: ``jacfwd(jacrev(func, argnums), argnums)``.

    >>> import tracenn
    >>> from tracenn.func import hessian
    >>> hessian(lambda x: (x ** 3).sum())(tracenn.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    return jacfwd(jacrev(func, argnums), argnums)
