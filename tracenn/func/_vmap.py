"""``torch.func.vmap``, and model ensembles (``stack_module_state``,
``replace_all_batch_norm_modules_``). The machinery shared with the other transforms (frames,
the tape, trees) is in :mod:`._transforms`."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ..tensor import Tensor
from ._random import _DRAWS
from ._transforms import Frame, _Running, _arrays, _call_key, _inputs, _ordered, _run, _tensors


# ---- vmap -------------------------------------------------------------------------------------------

_AXES = [0]  # a counter naming vmap's axes (for randomness="different")


def _leaf_dims(in_dims, args, name):
    """One in_dim per leaf of ``args`` (JAX's flattening order), from the prefix tree ``in_dims``."""
    out = []

    def bad():
        return ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is not compatible with the "
                          f"structure of `inputs`. in_dims has structure {jax.tree_util.tree_structure(in_dims)} but "
                          f"inputs has structure {jax.tree_util.tree_structure(args)}.")

    def walk(spec, tree):
        if spec is None or (isinstance(spec, int) and not isinstance(spec, bool)):
            out.extend([spec] * len(jax.tree_util.tree_leaves(tree)))
        elif isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)) and len(spec) == len(tree):
            for s, t in zip(spec, tree):
                walk(s, t)
        elif isinstance(spec, dict) and isinstance(tree, dict) and set(spec) == set(tree):
            for k in tree:
                walk(spec[k], tree[k])
        else:
            raise bad()

    if not (in_dims is None or isinstance(in_dims, (int, tuple, list))) or isinstance(in_dims, bool):
        raise ValueError(f"vmap({name}, in_dims={in_dims}, ...): expected `in_dims` to be int or a (potentially "
                         f"nested) tuple matching the structure of inputs, got: {type(in_dims)}.")
    walk(in_dims if not isinstance(in_dims, (tuple, list)) else tuple(in_dims), tuple(args))
    return out


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """``torch.func.vmap``: ``func`` mapped over a dimension of its inputs.

    Args:
        func: a function of tensors (and of modules it calls).
        in_dims: which dimension of each positional argument to map over: an int or None for
            all, or a tuple with one entry per argument (nested as the arguments are); None
            passes that argument whole to every call. Keyword arguments are not mapped.
        out_dims: where the mapped dimension goes in each output (int, or a tuple per output).
        randomness: random ops inside raise (``"error"``, torch's default), draw the same
            numbers for every element (``"same"``) or different ones (``"different"``).
        chunk_size: map this many elements at a time (a loop inside the program over chunks,
            for memory); None maps the whole batch at once. Random numbers do not depend on it:
            under ``"different"`` each element draws what it draws unchunked.

    >>> import tracenn
    >>> from tracenn.func import vmap
    >>> x, y = tracenn.ones(3, 2), tracenn.arange(2.0)
    >>> vmap(lambda a, b: (a * b).sum(), in_dims=(0, None))(x, y)
    tensor([1., 1., 1.])
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
        raise ValueError(f"vmap: chunk_size should be None or greater than 0. (got {chunk_size})")
    name = getattr(func, "__name__", type(func).__name__)
    cache: dict = {}

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        args, kwargs = _ordered(args), _ordered(kwargs)
        dims = _leaf_dims(in_dims, args, name)
        leaves = jax.tree_util.tree_leaves(args)
        sizes = []
        for x, d in zip(leaves, dims):
            if d is None:
                continue
            if not isinstance(x, Tensor):
                raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for an input but "
                                 f"the input is of type {type(x)}. We cannot vmap over non-Tensor arguments, please "
                                 "use None as the respective in_dim")
            nd = x.dim()
            if not -nd <= d < nd:
                raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got in_dim={d} for some input, but "
                                 f"that input is a Tensor of dimensionality {nd} so expected in_dim to satisfy "
                                 f"{-nd} <= in_dim < {nd}.")
            sizes.append(x.shape[d])
        if not sizes:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): at least one input must be a Tensor "
                             "that is mapped over (in_dims not None)")
        if len(set(sizes)) > 1:
            raise ValueError("vmap: Expected all tensors to have the same size in the mapped dimension, got sizes "
                             f"{sizes} for the mapped dimension")
        # every tensor is an input (keyword arguments unmapped), so a later call's tensors reach the program
        tensors, rebuild = _inputs((args, kwargs))
        axes = [d for x, d in zip(leaves, dims) if isinstance(x, Tensor)]
        axes += [None] * (len(tensors) - len(axes))
        _AXES[0] += 1
        axis = f"tracenn_vmap_{_AXES[0]}"

        def inner(*arrays, offset=None):
            a2, k2 = rebuild(arrays)
            with _Running(Frame("vmap", randomness, axis, offset)):
                out = func(*_tensors(a2), **_tensors(k2))
                for leaf in jax.tree_util.tree_leaves(out):
                    if not isinstance(leaf, Tensor):
                        raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got type "
                                         f"{type(leaf)}. Did you mean to set out_dims= to None for output?")
                res = _arrays(out)
                del out
            return res

        def fn(arrays):
            if chunk_size is None or chunk_size >= sizes[0]:
                return jax.vmap(inner, in_axes=axes, out_axes=out_dims, axis_name=axis, axis_size=sizes[0])(*arrays)
            return _chunked(inner, arrays, axes, out_dims, axis, sizes[0], chunk_size, name)
        return _run("vmap", fn, tensors, cache, _call_key(func, (args, kwargs), in_dims, out_dims, randomness),
                    func)
    return wrapper


def _chunked(inner, arrays, axes, out_dims, axis, size, chunk, name):
    """``jax.vmap(inner)`` over ``size`` elements, ``chunk`` at a time: full chunks through
    ``lax.map`` (one loop in the program), the remainder after; outputs joined and moved to
    ``out_dims``.

    Every chunk draws the same counters (the remainder's trace rewinds the draws), and each
    chunk's batch offset goes to ``inner``: so ``randomness="different"`` gives each element the
    numbers it gets unchunked, and ``"same"`` every element one set, as torch's chunks do."""
    moved = [a if d is None else jnp.moveaxis(a, d, 0) for a, d in zip(arrays, axes)]
    mapped = [i for i, d in enumerate(axes) if d is not None]
    in_axes = [None if d is None else 0 for d in axes]

    def call(start, parts):
        full = list(moved)
        for i, x in zip(mapped, parts):
            full[i] = x
        return jax.vmap(functools.partial(inner, offset=start), in_axes=in_axes, out_axes=0, axis_name=axis)(*full)
    n_full = size // chunk
    pieces = []
    draws = _DRAWS[0]
    mark = draws.mark() if draws is not None else None
    if n_full:
        stacks = [moved[i][:n_full * chunk].reshape((n_full, chunk) + moved[i].shape[1:]) for i in mapped]
        out = jax.lax.map(lambda sp: call(*sp), (jnp.arange(n_full) * chunk, stacks))
        pieces.append(jax.tree_util.tree_map(lambda o: o.reshape((n_full * chunk,) + o.shape[2:]), out))
    if size - n_full * chunk:
        if n_full and draws is not None:
            draws.rewind(mark)
        pieces.append(call(n_full * chunk, [moved[i][n_full * chunk:] for i in mapped]))
    out = jax.tree_util.tree_map(lambda *p: jnp.concatenate(p, 0), *pieces) if len(pieces) > 1 else pieces[0]
    leaves, tree = jax.tree_util.tree_flatten(out)
    dims = _leaf_dims(out_dims, out if isinstance(out, tuple) else (out,), name) \
        if isinstance(out_dims, (tuple, list)) else [out_dims] * len(leaves)
    return jax.tree_util.tree_unflatten(tree, [o if d == 0 else jnp.moveaxis(o, 0, d) for o, d in zip(leaves, dims)])


# ---- model ensembles ----------------------------------------------------------------------------------

def stack_module_state(models):
    """``torch.func.stack_module_state``: the parameters and buffers of same-class ``models``,
    each stacked along a new first dimension, as ``(params, buffers)`` dicts. The stacked
    parameters are new leaves (they require grad where the models' did).

    >>> import tracenn
    >>> from tracenn import nn
    >>> from tracenn.func import stack_module_state
    >>> params, buffers = stack_module_state([nn.Linear(3, 2) for _ in range(4)])
    >>> params["weight"].shape, params["weight"].requires_grad
    (tracenn.Size([4, 2, 3]), True)
    """
    from .. import stack
    from ..autograd.grad_mode import no_grad
    models = list(models)
    if not models:
        raise RuntimeError("stack_module_state: Expected at least one model, got 0.")
    if not (all(m.training for m in models) or not any(m.training for m in models)):
        raise RuntimeError("stack_module_state: Expected all models to have the same training/eval mode.")
    if any(type(m) is not type(models[0]) for m in models):
        raise RuntimeError("stack_module_state: Expected all models to be of the same class.")

    def stacked(name, tensors):
        rg = [t.requires_grad for t in tensors]
        if any(rg) and not all(rg):
            raise RuntimeError(f"Expected {name} from each model to have the same .requires_grad")
        with no_grad():
            out = stack([t.detach() for t in tensors])
        return out.requires_grad_() if all(rg) else out

    named = [dict(m.named_parameters()) for m in models]
    params = {k: stacked(k, [p[k] for p in named]) for k in named[0]}
    named = [dict(m.named_buffers()) for m in models]
    buffers = {k: stacked(k, [b[k] for b in named]) for k in named[0]}
    return params, buffers


def replace_all_batch_norm_modules_(root):
    """``torch.func.replace_all_batch_norm_modules_``: every BatchNorm under ``root`` stops
    tracking running statistics (they become None), so it normalises with batch statistics and
    changes no buffer: what ``vmap`` over a model needs. Returns ``root``."""
    from ..nn.modules.batchnorm import _BatchNorm
    for m in root.modules():
        if isinstance(m, _BatchNorm) and m.track_running_stats:
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
            m.track_running_stats = False
    return root
