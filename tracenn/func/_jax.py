"""A module as a pure JAX function plus its state pytree, and the way back.

``fn, state = to_jax(model, example)`` traces ``model`` once (the compiler's tracer) and lowers the
graph with the registry's JAX implementations (the compiler's lowering), so ``fn`` is the same
program ``tracenn.compile`` runs, as a function of explicit state::

    fn(state, *inputs, rng=None) -> (outputs, new_state)
    state = {"params": {name: array}, "buffers": {name: array}}

``state_pytree(model)`` reads that pytree from a module and ``load_state_pytree(model, state)``
writes one back into its Parameters and buffers, in place, bit for bit.
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from ..autograd.grad_mode import no_grad
from ..dtypes import type_str
from ..tensor import Tensor
from ..utils._pytree import LEAF, _is_dataclass, dataclass_items, flatten, map_leaves, unflatten

_SECTIONS = ("params", "buffers")


# ---- the state pytree ------------------------------------------------------------------------------

def _named_state(module):
    """{"params": {name: tensor}, "buffers": {name: tensor}}: the tensors the pytree mirrors, under
    the names the tracer gives them (``named_parameters`` / ``named_buffers``: a tied tensor once)."""
    from ..runtime.compiled import Compiled
    if isinstance(module, Compiled):
        module = module._target
    return {"params": dict(module.named_parameters()), "buffers": dict(module.named_buffers())}


def _array(t: Tensor):
    return t._value if t._base is None else t._sync()


def state_pytree(module) -> dict:
    """The module's parameters and buffers as a pytree of JAX arrays.

    The arrays are the module's own (JAX arrays are immutable, so nothing is copied and nothing
    the pytree's user does changes the module; :func:`load_state_pytree` writes back).

    Args:
        module: an ``nn.Module`` (or what ``tracenn.compile(module)`` returned).

    Returns:
        ``{"params": {name: jax.Array}, "buffers": {name: jax.Array}}``, names as in
        ``named_parameters()`` and ``named_buffers()`` (a tied parameter appears once, under its
        first name; non-persistent buffers are included). Frozen parameters
        (``requires_grad=False``) are in ``"params"`` too.

    >>> from tracenn import nn
    >>> from tracenn.func import state_pytree
    >>> state = state_pytree(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)))
    >>> {k: list(v) for k, v in state.items()}
    {'params': ['0.weight', '0.bias', '1.weight', '1.bias'], 'buffers': ['1.running_mean', '1.running_var', '1.num_batches_tracked']}
    >>> state["params"]["0.weight"].shape, str(state["buffers"]["1.num_batches_tracked"].dtype)
    ((2, 3), 'int64')
    """
    return {sec: {n: _array(t) for n, t in ts.items()} for sec, ts in _named_state(module).items()}


def load_state_pytree(module, state: Mapping, strict: bool = True):
    """Write a state pytree (from :func:`state_pytree` or ``to_jax``'s function) into the module.

    Each array becomes the value of the Parameter or buffer of its name, in place: the tensor
    objects stay the same (optimizers, compiled calls and views keep seeing them), their version
    counters move on as after ``copy_``, and the values are bit-for-bit the pytree's. Nothing is
    cast: an array of another dtype (or shape) is an error, so round trips stay exact. Everything
    is checked before anything is written.

    Args:
        module: an ``nn.Module`` (or what ``tracenn.compile(module)`` returned).
        state: ``{"params": {...}, "buffers": {...}}`` of JAX arrays (numpy arrays and tracenn
            tensors are accepted too). With ``strict=False`` either section may be left out.
        strict: every parameter and buffer must be given, and nothing else.

    Returns:
        ``NamedTuple`` with ``missing_keys`` and ``unexpected_keys`` (as ``load_state_dict``).

    Raises:
        RuntimeError: listing every missing or unexpected key (when ``strict``) and every shape
            or dtype mismatch (always), as ``load_state_dict`` does.

    >>> import jax
    >>> from tracenn import nn
    >>> from tracenn.func import load_state_pytree, state_pytree
    >>> lin = nn.Linear(2, 2)
    >>> state = jax.tree_util.tree_map(lambda a: a * 0 + 1, state_pytree(lin))
    >>> load_state_pytree(lin, state)
    <All keys matched successfully>
    >>> lin.weight
    Parameter containing:
    tensor([[1., 1.],
            [1., 1.]], requires_grad=True)
    """
    from ..nn.modules._state_dict import _IncompatibleKeys
    if not isinstance(state, Mapping):
        raise TypeError(f"Expected the state pytree to be a dict like {{'params': ..., 'buffers': ...}}, "
                        f"got {type(state).__name__}.")
    name = type(getattr(module, "_target", module)).__name__
    targets = _named_state(module)
    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    writes = []
    extra = [k for k in state if k not in _SECTIONS]
    if extra:
        raise RuntimeError(f"Error(s) in loading state pytree for {name}:\n\tUnexpected section(s) "
                           f"{extra}: a state pytree is {{'params': {{...}}, 'buffers': {{...}}}} "
                           "(what state_pytree(model) returns).")
    for sec in _SECTIONS:
        tensors = targets[sec]
        given = state.get(sec)
        if given is None:
            if strict and tensors:
                missing += [f"{sec}/{n}" for n in tensors]
            continue
        if not isinstance(given, Mapping):
            raise TypeError(f"state[{sec!r}] must be a dict from names to arrays, got {type(given).__name__}")
        for n, t in tensors.items():
            if n not in given:
                if strict:
                    missing.append(f"{sec}/{n}")
                continue
            arr = _as_array(given[n], f"{sec}/{n}")
            cur = t._value
            if tuple(arr.shape) != tuple(cur.shape):
                errors.append(f"size mismatch for {sec}/{n}: copying an array with shape {list(arr.shape)} from "
                              f"the state pytree, the shape in current model is {list(cur.shape)}.")
            elif np.dtype(arr.dtype) != np.dtype(cur.dtype):
                errors.append(f"dtype mismatch for {sec}/{n}: the state pytree holds {np.dtype(arr.dtype).name}, "
                              f"the model {np.dtype(cur.dtype).name} (load_state_pytree never casts, so "
                              f"round trips are exact: cast it first, e.g. "
                              f"arr.astype(jnp.{np.dtype(cur.dtype).name})).")
            else:
                writes.append((t, arr))
        unexpected += [f"{sec}/{n}" for n in given if n not in tensors]
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state pytree: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
        if missing:
            errors.insert(0, "Missing key(s) in state pytree: {}. ".format(", ".join(f'"{k}"' for k in missing)))
    if errors:
        raise RuntimeError("Error(s) in loading state pytree for {}:\n\t{}".format(name, "\n\t".join(errors)))
    with no_grad():
        for t, arr in writes:
            dev = next(iter(t._value.devices()))
            if not isinstance(arr, jax.Array) or arr.devices() != {dev}:
                arr = jax.device_put(arr, dev)
            t._set_(Tensor._wrap(arr), "load_state_pytree")
    return _IncompatibleKeys(missing, unexpected)


def _as_array(x, where: str):
    if isinstance(x, Tensor):
        return _array(x)
    if isinstance(x, jax.core.Tracer):
        raise RuntimeError(f"load_state_pytree got a traced array for {where} ({x.aval}): it writes into "
                           "Python objects, so call it outside jax.jit/grad/vmap, on the arrays they return.")
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return x
    raise TypeError(f"state pytree leaf {where} must be an array, got {type(x).__name__}")


# ---- the module as a pure function ------------------------------------------------------------------

def to_jax(module, *example_args, **example_kwargs):
    """The module as a pure JAX function of its state, and that state.

    Traces ``module(*example_args, **example_kwargs)`` once, as ``tracenn.compile`` does, and
    returns ``(fn, state)``: ``state = state_pytree(module)`` and ::

        fn(state, *args, rng=None, **kwargs) -> (outputs, new_state)

    a pure function of JAX arrays, so ``jax.jit``, ``jax.grad``, ``jax.vmap``, optax and orbax
    apply to it as to any JAX function. ``args``/``kwargs`` have the example's structure with
    arrays where the example had tensors; ``outputs`` have forward's structure with arrays where
    it returned tensors; ``new_state`` is ``state`` with the buffers forward updated (BatchNorm's
    running statistics in training mode) replaced. ``fn`` is not jitted: wrap it in ``jax.jit``.

    **Static** (fixed when ``to_jax`` traces; trace again to change them): the input shapes and
    dtypes (checked on every call, so a wrong batch size fails clearly rather than silently), the
    non-tensor arguments, the train/eval mode of every submodule, hooks, the module's structure,
    and any tensor forward reads that is not a registered parameter or buffer (baked in as a
    constant). **Traced**: every array in ``state``, the array arguments, and ``rng``.
    ``jax.vmap`` adds batch dimensions on top of the traced shapes, so trace with one example
    to vmap over examples. Forward hooks run on every call, as host callbacks with real values
    (as under ``tracenn.compile``).

    Randomness: a module that draws random numbers (dropout in training mode) needs ``rng``, a
    JAX PRNG key (``jax.random.PRNGKey(0)`` or ``jax.random.key(0)``); split it yourself each
    step. ``fn(state, x, rng=jax.random.PRNGKey(s))`` draws what eager ``module(x)`` draws right
    after ``tracenn.manual_seed(s)``.

    Gradients come from the same rules as tracenn's autograd, e.g. ::

        grads = jax.grad(lambda p: loss(fn({"params": p, "buffers": b}, x)[0]))(state["params"])

    (differentiate the float ``"params"``; integer buffers such as ``num_batches_tracked`` have no
    gradient). What forward changes in place in its *inputs* is not returned.

    Args:
        module: the ``nn.Module`` (or what ``tracenn.compile(module)`` returned) to convert.
        *example_args, **example_kwargs: what forward is called with: tensors, JAX or numpy arrays,
            or ``jax.ShapeDtypeStruct`` (only shapes and dtypes are read), in any tuple/list/dict
            structure, and non-tensor values (static).

    Returns:
        ``(fn, state)``. ``fn.graph`` is the traced :class:`~tracenn.compiler.graph.Graph`
        (``print(fn.graph)``).

    >>> import jax, jax.numpy as jnp
    >>> import tracenn
    >>> from tracenn import nn
    >>> from tracenn.func import to_jax
    >>> _ = tracenn.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(3, 2), nn.Tanh())
    >>> x = jnp.ones((4, 3), jnp.float32)  # (tracenn enables jax_enable_x64: ask for float32)
    >>> fn, state = to_jax(model, x)
    >>> fn
    to_jax(Sequential): fn(state, input: f32[4,3], *, rng=None) -> (f32[4,2], new_state)    mode=train
    >>> y, new_state = jax.jit(fn)(state, x)
    >>> bool(jnp.allclose(y, model(tracenn.ones(4, 3)).detach().numpy()))
    True
    >>> g = jax.grad(lambda p: fn({"params": p, "buffers": {}}, x)[0].sum())(state["params"])
    >>> sorted(g), g["0.weight"].shape
    (['0.bias', '0.weight'], (2, 3))
    """
    from ..compiler.api import _module_source
    from ..compiler.trace import trace
    from ..nn.modules.module import Module
    from ..runtime.compiled import Compiled
    if isinstance(module, Compiled):
        module = module._target
    if not isinstance(module, Module):
        raise TypeError(f"to_jax expects an nn.Module, got {type(module).__name__} (for a function of "
                        "tensors, use tracenn.compile)")
    args, kwargs = _examples_as_tensors((example_args, example_kwargs))
    name, mode, modules, tensors = _module_source(module)[:4]  # (what tracenn.compile traces with)
    graph, _ = trace(module, args, kwargs, state=tensors, modules=modules, name=name, mode=mode)
    if graph.stores:
        from ..errors import UnsupportedError
        raise UnsupportedError(
            f"to_jax: {name}.forward stores tensors in Python lists or dicts "
            f"({', '.join(s.describe('...') for s in graph.stores[:3])}); a pure JAX function has no such side "
            "effects: return those tensors from forward instead")
    _, in_tree = flatten((args, kwargs))
    return JaxFunction(graph, in_tree), state_pytree(module)


def _examples_as_tensors(tree):
    """Arrays and ShapeDtypeStructs in the example become tensors (the tracer reads their shape
    and dtype only)."""
    def to_tensor(x):
        if isinstance(x, jax.core.Tracer):
            x = jax.ShapeDtypeStruct(x.shape, x.dtype)
        return Tensor._wrap(jnp.asarray(x) if isinstance(x, np.ndarray) else x)
    return map_leaves(tree, lambda x: isinstance(x, (jax.Array, np.ndarray, jax.ShapeDtypeStruct)), to_tensor)


class JaxFunction:
    """``fn(state, *args, rng=None, **kwargs) -> (outputs, new_state)``: what :func:`to_jax` returns.

    A pure function of JAX arrays (see :func:`to_jax`); ``graph`` is the traced graph, ``mode``
    the train/eval mode it was traced in.
    """

    def __init__(self, graph, in_tree):
        from ..compiler.lower import lower
        self.graph = graph
        self.mode = graph.mode
        self._in_tree = in_tree
        self._run = lower(graph)
        self._kinds = {n: v.kind for n, v in graph.state.items()}
        self._writes = [(n, "params" if self._kinds.get(n) == "param" else "buffers") for n in graph.writes]

    def __call__(self, state, *args, rng=None, **kwargs):
        g = self.graph
        flat_state = self._state_list(state)
        inputs = self._inputs(args, kwargs)
        outs, writes = self._run(flat_state, self._rng(rng), inputs)
        it = iter(outs)
        leaves = [next(it) if hasattr(v, "symbolic") else v for v in g.outputs]
        new_state = {sec: dict(state.get(sec) or {}) for sec in _SECTIONS}
        for (n, sec), w in zip(self._writes, writes):
            if n in self._kinds:  # (a write to an input is not returned: arrays are immutable)
                new_state[sec][n] = w
        return unflatten(g.out_tree, leaves), new_state

    # ---- checking what comes in -----------------------------------------------------------------

    def _state_list(self, state):
        if not isinstance(state, Mapping) or any(k not in _SECTIONS for k in state):
            raise TypeError("fn(state, ...): state must be {'params': {...}, 'buffers': {...}} as to_jax "
                            f"returned it, got {_describe(state)}")
        out = []
        missing = []
        for n, v in self.graph.state.items():
            sec = "params" if v.kind == "param" else "buffers"
            arr = (state.get(sec) or {}).get(n)
            if arr is None:
                missing.append(f"{sec}/{n}")
                continue
            if tuple(jnp.shape(arr)) != v.shape or _dtype(arr) != v.dtype:
                raise TypeError(f"fn(state, ...): state {sec}/{n} is {_type_of(arr)}, but the model was traced "
                                f"with {v.type}")
            out.append(arr)
        if missing:
            raise KeyError(f"fn(state, ...): state lacks {', '.join(missing)}")
        for sec in _SECTIONS:
            for n in state.get(sec) or {}:
                if n not in self.graph.state:
                    raise KeyError(f"fn(state, ...): state {sec}/{n} is not a parameter or buffer of the traced "
                                   f"{self.graph.name}")
        return out

    def _inputs(self, args, kwargs):
        leaves = []

        def walk(ref, x, where):
            if ref is LEAF:
                if isinstance(x, Tensor):
                    x = _array(x)
                if not isinstance(x, (jax.Array, np.ndarray)):
                    raise TypeError(f"fn: {where} must be an array (the example had a tensor there), "
                                    f"got {type(x).__name__}")
                leaves.append(x)
                return
            if isinstance(ref, (tuple, list)) and isinstance(x, (tuple, list)) and len(ref) == len(x) \
                    and (type(ref) is type(x) or not hasattr(ref, "_fields")):
                for i, (r, v) in enumerate(zip(ref, x)):
                    walk(r, v, f"{where}[{i}]")
                return
            if isinstance(ref, dict) and isinstance(x, dict) and set(ref) == set(x):
                for k in ref:
                    walk(ref[k], x[k], f"{where}[{k!r}]")
                return
            if _is_dataclass(ref) and type(x) is type(ref):
                for n, r in dataclass_items(ref):
                    walk(r, getattr(x, n, None), f"{where}.{n}")
                return
            if isinstance(ref, (tuple, list, dict)) or _is_dataclass(ref) or _is_arraylike(x) or not _same(ref, x):
                raise TypeError(f"fn: {where} is {_describe(x)}, but the model was traced with {_describe(ref)}; "
                                "non-tensor arguments and the argument structure are static: call to_jax again "
                                "to change them")

        ref_args, ref_kwargs = self._in_tree
        if len(args) != len(ref_args):
            raise TypeError(f"fn(state, *args): the model was traced with {len(ref_args)} positional "
                            f"argument(s), got {len(args)}")
        walk(tuple(ref_args), tuple(args), "args")
        if set(kwargs) != set(ref_kwargs):
            raise TypeError(f"fn: the model was traced with keyword arguments {sorted(ref_kwargs)}, "
                            f"got {sorted(kwargs)}")
        for k in ref_kwargs:
            walk(ref_kwargs[k], kwargs[k], k)
        for v, x in zip(self.graph.inputs, leaves):
            if tuple(jnp.shape(x)) != v.shape or _dtype(x) != v.dtype:
                raise TypeError(f"fn: input {v.name!r} is {_type_of(x)}, but the model was traced with {v.type}: "
                                "shapes and dtypes are static; call to_jax again with an example of this "
                                "shape (or jax.vmap over a leading batch axis)")
        return leaves

    def _rng(self, rng):
        pairs = self.graph.rng
        if not pairs:
            return []
        if rng is None:
            raise TypeError(f"fn: the traced {self.graph.name} draws random numbers (mode={self.mode}; dropout?), "
                            "so it needs a key: fn(state, x, rng=jax.random.PRNGKey(0)). Split a new key for "
                            "every step, or trace in eval mode (model.eval()) to draw nothing.")
        if not _is_arraylike(rng):
            raise TypeError(f"fn: rng must be a JAX PRNG key like jax.random.PRNGKey(0), got {_describe(rng)}")
        if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key):
            rng = jax.random.key_data(rng)
        key_v, counter_v = pairs[0]
        if tuple(jnp.shape(rng)) != key_v.shape or _dtype(rng) != key_v.dtype:
            raise TypeError(f"fn: rng must be a JAX PRNG key like jax.random.PRNGKey(0) ({key_v.type}), "
                            f"got {_type_of(rng)}")
        keys = [rng] if len(pairs) == 1 else list(jax.random.split(rng, len(pairs)))
        zero = jnp.zeros((), counter_v.dtype)
        return [x for k in keys for x in (k, zero)]

    def __repr__(self):
        g = self.graph
        ins = ", ".join(f"{v.name}: {v.type}" for v in g.inputs)
        outs = [v.type for v in g.outputs if hasattr(v, "symbolic")]
        out = outs[0] if g.out_tree is LEAF else "(" + ", ".join(outs) + ")"
        mode = f"    mode={self.mode}" if self.mode else ""
        return f"to_jax({g.name}): fn(state{', ' + ins if ins else ''}, *, rng=None) -> ({out}, new_state){mode}"


def _is_arraylike(x) -> bool:
    return isinstance(x, (Tensor, jax.Array, np.ndarray))


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return a is b


def _dtype(x):
    return np.dtype(x.dtype)


def _type_of(x) -> str:
    return type_str(jnp.shape(x), _dtype(x))


class _Tag(str):
    def __repr__(self):
        return str(self)


def _describe(x) -> str:
    """``x`` for an error message: arrays as their type (``f32[4,3]``), a traced tensor slot as ``array``."""
    def tag(t):
        return _Tag("array") if t is LEAF else _Tag(_type_of(_array(t) if isinstance(t, Tensor) else t))
    tree = map_leaves(x, lambda t: t is LEAF or _is_arraylike(t), tag)
    s = repr(tree)
    return s if len(s) < 100 else s[:97] + "..."
