"""``tracenn.compile``: trace a module or function, run the passes, lower, and hand the result to
the runtime's :class:`~tracenn.runtime.compiled.Compiled`, which calls back here on a cache miss."""
from __future__ import annotations

import functools
import inspect
import operator
import os
import re
import warnings
from collections import OrderedDict
from itertools import repeat

from .. import _dispatch
from ..errors import UnsupportedError
from ..runtime.compiled import Compiled, debug_level
from ..tensor import Tensor
from ..utils._pytree import LEAF, tensor_parts
from . import graph as _graph
from .check import compare_with_eager, verify
from .lower import lower
from .passes import DEFAULT_PASSES, run_passes
from .trace import trace
from .values import (ValueGuards, _attrs_key, _capture_reader, _captures, _classes,  # noqa: F401 (re-exported)
                     _is_module, _plain_captures, _positional_names)


class Built:
    """What the compiler hands the runtime for one guard key."""

    def __init__(self, captured, graph, generators, passes=None):
        self.captured = captured
        self.graph = graph
        self.generators = generators
        self.passes = passes
        self.run = lower(graph)

    def check(self, compiled, entry, leaves, args, kwargs):
        return compare_with_eager(self.graph, self.run, compiled, entry, leaves, args, kwargs,
                                  captured=self.captured, passes=self.passes)


def compile(model=None, *, fallback: str | None = None, check: bool = False, passes=None,
            cache_size_limit: int | None = None, verify_passes: bool = False, mesh=None, fullgraph: bool = False,
            dynamic: bool | None = None, backend="inductor", mode: str | None = None, options: dict | None = None,
            disable: bool = False, **unknown):
    """Compile a module or a function of tensors into one XLA program per input signature.

    ``cm = tracenn.compile(model)`` then ``cm(x)`` gives the same outputs and gradients as
    ``model(x)``. The first call traces ``model.__call__`` with symbolic tensors into a
    :class:`~tracenn.compiler.graph.Graph` (``print(cm.graph)``), runs the graph passes, lowers
    it to a pure function and ``jax.jit``s it. Later calls with the same guards (input shapes,
    dtypes, requires_grad, non-tensor arguments, module structure, train/eval flags, hooks, grad
    mode) reuse the program; ``cm.explain()`` says what was compiled and why. A Python float
    argument whose value changes (a temperature, a mixing coefficient) becomes a program input at
    its first recompile, as torch.compile makes it dynamic, so later values reuse that program
    (a branch on it, ``if alpha > 0.5:``, compiles a program per side; code that needs the number
    itself, ``float(alpha)``, keeps it guarded by value). So does a float the call reads outside
    its arguments: a module attribute (``self.temperature``), a global, a closure cell, an
    attribute of an object a function captures (compiler/float_attrs.py).

    The compiled object acts on the model itself: ``cm.parameters()``, ``cm.state_dict()``,
    ``cm.train()``, ``cm.load_state_dict(...)`` are the model's. Buffers updated in training mode
    (BatchNorm's running statistics) and the random generator's state are written back after
    each call. Outputs take part in eager autograd: ``loss.backward()`` fills ``param.grad``.

    Args:
        model: an ``nn.Module`` or a function of tensors (modules and tensors it reads through
            closures or globals are state, read at every call). Without it, returns a decorator.
        fallback: ``"eager"`` runs a call eagerly (warning once) when its forward reads tensor
            values (``.item()``, ``if t > 0``); by default that raises
            :class:`~tracenn.errors.DataDependentError` pointing at the line.
        check: run eager and compiled side by side on each program's first call and warn with
            the first node whose value differs (or, when a graph pass changed the result, the
            first such pass and the nodes it changed). A training step (a function that steps an
            optimizer) is not checked: it would step twice; it warns once and runs compiled.
        passes: the graph passes, in order (default :data:`~tracenn.compiler.passes.DEFAULT_PASSES`).
        cache_size_limit: programs to compile (default ``tracenn._dynamo.config.cache_size_limit``:
            8, like torch's); past it, new input signatures run eagerly, with one warning (with
            ``fullgraph=True``: compiled, with a warning each time).
        verify_passes: check the graph after every pass (the tests turn it on).
        mesh: data parallelism: a :class:`~tracenn.distributed.DataParallelMesh`, a
            ``jax.sharding.Mesh``, a device count or ``"auto"``. Tensor inputs are split along
            their first dimension over the devices, state is replicated, and XLA adds the
            gradient all-reduce of a compiled training step.

    ``torch.compile``'s own arguments are accepted, so scripts run unchanged: ``fullgraph=True``
    makes a call that cannot be one program raise instead of running eagerly; ``mode`` (any of
    torch's) and ``options`` change nothing (every call is one XLA program, which XLA tunes
    itself); ``dynamic=True`` warns that shapes stay static (each new input shape compiles a
    program, as ``dynamic=False``) and makes float arguments inputs from the first call,
    ``dynamic=False`` never (a program per value, as torch); ``backend`` may be ``"inductor"`` (torch's default) or
    ``"openxla"``, both meaning tracenn's XLA program; ``disable=True`` returns ``model`` itself.

    Returns:
        a :class:`~tracenn.runtime.compiled.Compiled` that is called like ``model``.

    >>> import tracenn
    >>> from tracenn import nn
    >>> _ = tracenn.manual_seed(0)
    >>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    >>> cm = tracenn.compile(model)
    >>> x = tracenn.randn(2, 4)
    >>> bool((cm(x) - model(x)).abs().max() < 1e-6)
    True
    >>> print(cm.graph)  # doctest: +NORMALIZE_WHITESPACE
    graph Sequential(%input: f32[2,4]) -> f32[2,3]    mode=train
      %0: f32[4,3] = permute[dims=(1,0)] %"0.weight"   # 0  <doctest tracenn.compiler.api.compile[6]>:1
      %1: f32[2,3] = matmul %input, %0                 # 0  <doctest tracenn.compiler.api.compile[6]>:1
      %2: f32[2,3] = add[dtype=f32] %1, %"0.bias"      # 0  <doctest tracenn.compiler.api.compile[6]>:1
      %3: f32[2,3] = relu %2                           # 1  <doctest tracenn.compiler.api.compile[6]>:1
      return %3
    """
    if unknown:
        raise TypeError(f"tracenn.compile got unexpected options {sorted(unknown)}")
    if fallback not in (None, "eager"):
        raise ValueError(f"fallback must be None or 'eager', got {fallback!r}")
    _check_torch_options(fallback, fullgraph, dynamic, backend, mode)
    if model is None:
        return functools.partial(compile, fallback=fallback, check=check, passes=passes,
                                 cache_size_limit=cache_size_limit, verify_passes=verify_passes, mesh=mesh,
                                 fullgraph=fullgraph, dynamic=dynamic, backend=backend, mode=mode,
                                 options=options, disable=disable)
    if disable or getattr(model, "_tracenn_disabled", False):  # (tracenn.compiler.disable)
        return model
    if isinstance(model, Compiled):
        return model
    from .. import _dynamo
    if cache_size_limit is None:
        cache_size_limit = _dynamo.config.cache_size_limit
    if fallback is None and _dynamo.config.suppress_errors and not fullgraph:
        fallback = "eager"
    from ..nn.modules.module import Module
    watch = None
    values = ValueGuards(None if isinstance(model, Module) else model, dynamic, floats=mesh is None) \
        if isinstance(model, Module) or callable(model) else None
    if isinstance(model, Module):
        source = functools.partial(_module_source, model, values)
    elif callable(model):
        source = functools.partial(_function_source, model, values)
        watch = _step_watcher(model)
    else:
        raise TypeError(f"tracenn.compile expects an nn.Module or a function, got {type(model).__name__}")
    build = functools.partial(_build, passes=passes, verify_passes=verify_passes, values=values)
    from ..distributed import as_mesh
    cm = Compiled(model, build, source=source, watch=watch, fallback="never" if fullgraph else fallback, check=check,
                  cache_size_limit=cache_size_limit, mesh=as_mesh(mesh),
                  values=values,
                  bind_modules=None if isinstance(model, Module) else _bind_module_arguments, dynamic=dynamic)
    if values is not None and values.floats is not None:
        values.floats.log = cm._log  # (where a float guarded by value again says why)
    cm.__dict__["_recompile"] = functools.partial(  # (Compiled.__deepcopy__: the copy, compiled the same way)
        compile, fallback=fallback, check=check, passes=passes, cache_size_limit=cache_size_limit,
        verify_passes=verify_passes, mesh=mesh, fullgraph=fullgraph, dynamic=dynamic)
    if not isinstance(model, Module):
        for attr in ("__name__", "__qualname__", "__doc__", "__module__"):
            if hasattr(model, attr):
                object.__setattr__(cm, attr, getattr(model, attr))
        object.__setattr__(cm, "__wrapped__", model)
    return cm


def _bind_module_arguments(cm, args, kwargs):
    """A compiled function called with modules among its arguments (gpt-fast's
    ``decode_one_token(model, x, input_pos)``, ``step(model, batch)``): the call runs a compiled
    function of its own with those modules bound, as ``tracenn.compile(functools.partial(fn,
    model))`` would, so their parameters and buffers are its state (read at every call, named
    ``model.weight``) and a call with other modules compiles its own. None when no argument is a
    module. Only top-level positional and keyword arguments are bound; a module inside a tuple or
    list still makes the call run eagerly (``check_no_hidden_tensors``)."""
    Module = _classes()[0]
    pos = [i for i, a in enumerate(args) if isinstance(a, Module)]
    kws = [k for k, v in kwargs.items() if isinstance(v, Module)]
    if not pos and not kws:
        return None
    fn = cm._target
    params = _positional_names(fn)
    names = [params[i] if i < len(params) else f"args{i}" for i in pos]
    key = (tuple(names) + tuple(kws), tuple(id(args[i]) for i in pos) + tuple(id(kwargs[k]) for k in kws))
    inner = cm._bound.get(key)
    if inner is None:
        slots = list(zip(pos, names))

        def bound(*rest, **kw):
            full = list(rest)
            for i, name in slots:
                full.insert(i, kw.pop(name))
            return fn(*full, **kw)
        bound.__wrapped__ = fn  # (its captures are read too: an optimizer it closes over)
        bound.__name__ = getattr(fn, "__name__", "fn")
        modules = {n: args[i] for i, n in slots}
        modules.update((k, kwargs[k]) for k in kws)
        inner = cm._recompile(functools.partial(bound, **modules))
        inner.cache_size_limit = cm.cache_size_limit
        cm._bound[key] = inner
    rest = [a for i, a in enumerate(args) if i not in pos]
    return inner, rest, {k: v for k, v in kwargs.items() if k not in kws}


def _build(target, args, kwargs, *, state, modules, name, mode, passes, verify_passes, python_floats=None,
           values=None, **extra):
    """``python_floats``: which tensor leaves of ``(args, kwargs)`` (position -> value) are Python
    float arguments passed as 0-d float64 arrays (runtime/floats.py); the trace treats them as
    numbers, and records the branches it takes on them (``captured.float_guards``). Float
    attributes, globals and closure cells that are program inputs (FloatSlots in ``state``:
    float_attrs.py) are treated the same; if the trace fails with them as inputs (the code needs
    the number), it is done again with them by value, and they stay guarded by value (pinned)."""
    floats = values.floats if values is not None else None
    slots = floats.live(state) if floats is not None else {}
    kw = dict(state=state, modules=modules, name=name, mode=mode, **extra)
    try:
        captured, gens = _traced(target, args, kwargs, python_floats, slots, floats, kw)
    except Exception as e:
        if not slots:
            raise
        for s in slots.values():
            s.pinned = True
        try:
            captured, gens = _traced(target, args, kwargs, python_floats, {}, floats, kw)
        except Exception:
            for s in slots.values():  # (not the floats' doing: they stay program inputs)
                s.pinned = False
            raise
        floats.pin(slots, _first_line(e))
    level = debug_level()
    if verify_passes:
        verify(captured, after="trace")
    if level >= 1:
        print(f"[tracenn] captured graph:\n{captured}")
    graph = run_passes(captured, passes, check=verify_passes)
    if level >= 2:
        print(f"[tracenn] graph after passes:\n{graph}")
    return Built(captured, graph, gens, DEFAULT_PASSES if passes is None else passes)


def _traced(target, args, kwargs, python_floats, slots, floats, kw):
    """Trace with the float arguments ``python_floats`` and the float ``slots`` as numbers."""
    inputs = dict(python_floats or {})
    inputs.update((n, s.read()) for n, s in slots.items())
    _graph.PYTHON_FLOAT_INPUTS[0] = inputs
    try:
        captured, gens = trace(target, args, kwargs, **kw)
    finally:
        _graph.PYTHON_FLOAT_INPUTS[0] = {}
    if inputs and any(isinstance(v, _graph.Value) and captured.python_float(v) for v in _number_outputs(captured)):
        # (eagerly a Python float: the runtime guards that argument by value again)
        raise UnsupportedError("the traced code returns or stores a number computed from a float argument"
                               + (" or attribute" if slots else ""))
    if slots:  # branches on float attributes: the runtime's structure key holds their side (float_attrs.py)
        mine = [g for g in captured.float_guards if any(isinstance(k, str) for k in g.reads)]
        if any(not isinstance(k, str) for g in mine for k in g.reads):
            raise UnsupportedError("a branch reads both a float argument and a float attribute or global")
        captured.float_guards = [g for g in captured.float_guards if not any(isinstance(k, str) for k in g.reads)]
        floats.learned(mine)
    return captured, gens


def _number_outputs(g) -> list:
    """The outputs of ``g`` but those of module attributes set to a number computed from float
    inputs (``self.t = self.t * 0.5``): those stores write a Python float back (escapes.Store)."""
    k = len(g.outputs) - sum(s.n for s in g.stores)
    out = g.outputs[:k]
    for s in g.stores:
        vs = g.outputs[k:k + s.n]
        k += s.n
        if s.kind == "attr" and s.n == 1 and s.tree is LEAF and isinstance(vs[0], _graph.Value) \
                and g.python_float(vs[0]):
            s.as_float = True
        else:
            out += vs
    return out


def _first_line(e) -> str:
    """Why a trace with float inputs failed, short: the line that read the number, where known."""
    text = str(e).strip()
    m = re.search(r"value at (\S+?):(\d+) \(in \w+: `(.*?)`\)", text)
    if m:
        return f"`{m.group(3)}` at {os.path.basename(m.group(1))}:{m.group(2)}"
    return (text.splitlines()[0] if text else type(e).__name__)[:160]


# ---- what a compiled call reads: modules, state, and the structure key that guards them -----------

def _hooks_key(m):
    return (tuple(m._forward_pre_hooks), tuple(m._forward_hooks), tuple(m._backward_pre_hooks),
            tuple(m._backward_hooks))


def _global_hooks_key():
    from ..nn.modules import _hooks as h
    return (tuple(h._global_forward_pre_hooks), tuple(h._global_forward_hooks),
            tuple(h._global_backward_pre_hooks), tuple(h._global_backward_hooks))


def _state_key(state):
    key = []
    for n, t in state.items():
        if hasattr(t, "aval"):  # a ref (.grad, lr): its shape and dtype, read now
            key.append((n, type(t), *t.aval, False, False))
        else:
            key.append((n, id(t), tuple(t._value.shape), t._value.dtype, t._requires_grad, _leaf_hooks(t)))
    return tuple(key)


def _leaf_hooks(t) -> bool:
    """Has the leaf ``t`` gradient hooks (``register_hook``, ``register_post_accumulate_grad_hook``)?
    A training step whose backward would reach them runs eagerly (trace.py), so adding one after
    the step compiled must compile anew (registering one moves the epoch)."""
    acc = t._acc
    return acc is not None and bool(acc.hooks or any((acc.pre_hooks or {}).values()))


def _mode(modules) -> str:
    flags = {m.training for _, m in modules}
    return ("train" if flags.pop() else "eval") if len(flags) == 1 else "mixed"


def _mods_key(modules) -> tuple:
    return tuple((p, type(m), m.training, _hooks_key(m), _attrs_key(m)) for p, m in modules)


def _attribute_tensors(modules, state, seen) -> None:
    """Add to ``state`` the tensors ``modules`` hold as plain attributes (``self.c = tensor``, not a
    parameter or buffer): read at every call like a function's captured tensors, so an in-place
    change is seen, and guarded by identity (a new tensor compiles anew). Not one a compiled call
    set (``self.attn = w`` in its forward, replayed: compiler/escapes.py): that is an output."""
    for path, m in modules:
        for k, v in vars(m).items():
            if isinstance(v, Tensor) and id(v) not in seen and "_stored" not in v.__dict__:
                for n, part in tensor_parts(f"{path}.{k}" if path else k, v):  # (a sparse tensor: its parts)
                    state[n] = part
                    seen.add(id(part))
                seen.add(id(v))


def _module_source(model, values=None):
    modules = list(model.named_modules())
    state = OrderedDict()
    for n, p in model.named_parameters():
        state[n] = p
    for n, b in model.named_buffers():
        state[n] = b
    _attribute_tensors(modules, state, {id(t) for t in state.values()})
    skey = (_mods_key(modules), _state_key(state), _global_hooks_key(), _dispatch.autocast_key())
    if values is not None:  # (floats that changed value: program inputs, see float_attrs.py)
        skey = values.dynamize(skey, modules, state)
    return type(model).__name__, _mode(modules), modules, state, skey, {}


def _function_source(fn, values=None):
    from ..nn.modules.module import Module
    modules = []
    state = OrderedDict()
    target = fn
    if inspect.ismethod(fn) and isinstance(fn.__self__, Module):
        modules += list(fn.__self__.named_modules())
        for n, p in fn.__self__.named_parameters():
            state[n] = p
        for n, b in fn.__self__.named_buffers():
            state[n] = b
        target = fn.__func__  # (a module's own attributes are its state already)
    seen = {id(t) for t in state.values()}
    for name, obj in _captures(target):
        if isinstance(obj, Module):
            modules += list(obj.named_modules(prefix=name))
            # (a meta module's tensors have no values to pass: the base of functional_call, which
            # replaces them; code that reads one raises when traced, see Tracer.value_of)
            for n, p in obj.named_parameters(prefix=name):
                if id(p) not in seen and not p.is_meta:
                    state[n] = p
                    seen.add(id(p))
            for n, b in obj.named_buffers(prefix=name):
                if id(b) not in seen and not b.is_meta:
                    state[n] = b
                    seen.add(id(b))
        elif isinstance(obj, Tensor) and id(obj) not in seen:
            for n, part in tensor_parts(name, obj):  # (a sparse tensor: its indices and values)
                state[n] = part
                seen.add(id(part))
            seen.add(id(obj))
    _attribute_tensors(modules, state, seen)
    extra = {}
    captured = _captures(target)
    optimizers = [(name, obj) for name, obj in captured if _is_optimizer(obj)]
    scalers = [(name, obj) for name, obj in captured if isinstance(obj, _classes()[3])]
    code = getattr(inspect.unwrap(getattr(target, "func", target)), "__code__", None)  # (a partial's function's)
    if optimizers or scalers or "backward" in getattr(code, "co_names", ()):
        extra = _step_state(state, optimizers, scalers)
    skey = (_mods_key(modules), _state_key(state), _global_hooks_key(),
            (_options_key([o for _, o in extra.get("optimizers", ())]),
             tuple(sc._compile_key() for sc in extra.get("scalers", ()))),
            _dispatch.autocast_key(), tuple(extra.get("aliases", {}).items()),
            _plain_captures(target, captured))  # a global scale, a flag, an option object's attributes: by value
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", type(fn).__name__)
    if values is not None:
        skey = values.dynamize(skey, modules, state)
    return name, _mode(modules) if modules else "", modules, state, skey, extra


def _is_optimizer(obj) -> bool:
    return isinstance(obj, _classes()[1])


def _step_state(state, optimizers, scalers=()) -> dict:
    """A training step's extra state: every parameter's ``.grad`` (a ref, when set), each
    optimizer's state tensors, each param group's learning rate (an input, so schedulers never
    force a recompile) and each GradScaler's scale and growth tracker. Parameters the step
    optimizes but no captured module holds enter as ``<optimizer>.param_groups[i].params[j]``."""
    from ..runtime.refs import GradRef, OptionRef
    names = {id(t): n for n, t in state.items()}
    for oname, opt in optimizers:
        for gi, group in enumerate(opt.param_groups):
            for pi, p in enumerate(group["params"]):
                if id(p) not in names:
                    n = f"{oname}.param_groups[{gi}].params[{pi}]"
                    state[n] = p
                    names[id(p)] = n
    # Whose .grad the step reads and writes: Parameters, the plain leaf tensors an optimizer
    # steps (functional_call's parameter dicts, stack_module_state's stacks) and any other leaf
    # that requires grad (``w = tensor(..., requires_grad=True)`` read by the step: backward()
    # accumulates into its .grad as eagerly). Their names also name the optimizer state made
    # inside the step.
    stepped = {id(p) for _, opt in optimizers for group in opt.param_groups for p in group["params"]}
    grad_params = {n: t for n, t in list(state.items())
                   if _is_param(t) or id(t) in stepped or t.requires_grad and t.is_leaf}
    for n, p in grad_params.items():
        if p.grad is not None:
            state[f"{n}.grad"] = GradRef(p)
    aliases = {}
    for oname, opt in optimizers:
        first = {}
        shared = dict(zip(opt._scalar_state, _shared_scalars(opt)))
        for p, st in opt.state.items():
            pname = names.get(id(p), f"{oname}.state[?]")
            for k, v in st.items():
                if isinstance(v, Tensor):
                    n = f"{oname}.state[{pname}].{k}"
                    state[n] = v
                    if shared.get(k):
                        aliases[n] = first.setdefault(k, n)
        for gi, group in enumerate(opt.param_groups):
            for key, index in _option_inputs(group):
                where = key if index is None else f"{key}[{index}]"
                state[f"{oname}.param_groups[{gi}].{where}"] = OptionRef(group, key, index)
            for key, v in group.items():  # a tensor option (lr=tensor(0.01)): read at each call, so
                if key != "params" and isinstance(v, Tensor):  # lr.fill_() (a scheduler) is seen
                    state[f"{oname}.param_groups[{gi}].{key}"] = v
    for sname, sc in scalers:
        for attr, t in sc._compile_state().items():
            state[f"{sname}.{attr}"] = t
    aliases = {n: f for n, f in aliases.items() if n != f}
    return {"grad_params": grad_params, "optimizers": list(optimizers), "aliases": aliases,
            "scalers": [sc for _, sc in scalers]}


_VALUE = operator.attrgetter("_value")


def _shared_scalars(opt) -> tuple:
    """Per scalar state key of ``opt`` (``_scalar_state``: Adam's ``step``...), whether two or more
    parameters have that 0-d tensor and all of them hold one array. Eager steps write one shared
    array into every parameter's ``step`` (optimizer.set_host_value) and a compiled step returns
    one (writes.unique_writes), so a step's counts enter its program once instead of once per
    parameter: 26 inputs, outputs and bias-correction chains fewer for the transformer benchmark.
    Part of the watch key (this runs on every call of a compiled step)."""
    states = opt.state.values()
    if len(states) < 2:
        return (False,) * len(opt._scalar_state)
    out = []
    for k in opt._scalar_state:
        try:
            ids = set(map(id, map(_VALUE, map(operator.itemgetter(k), states))))
        except (KeyError, AttributeError):  # a parameter without it, or a plain-number state
            out.append(False)
            continue
        out.append(len(ids) == 1)
    return tuple(out)


def _is_param(t) -> bool:
    return isinstance(t, _classes()[2])


_TORCH_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
_BACKENDS = ("inductor", "openxla", "xla", "tracenn")


def _check_torch_options(fallback, fullgraph, dynamic, backend, mode) -> None:
    """torch.compile's arguments, checked as torch checks them (see :func:`compile`)."""
    if mode not in _TORCH_MODES:
        raise RuntimeError(f"Unrecognized mode={mode}, should be one of: "
                           f"{', '.join(m for m in _TORCH_MODES if m)}")
    if backend not in _BACKENDS:
        raise ValueError(f"tracenn.compile(backend={backend!r}): tracenn compiles to one XLA program; pass "
                         f"backend='inductor' (torch's default) or 'openxla', or leave it out")
    if fullgraph and fallback == "eager":
        raise ValueError("tracenn.compile: fullgraph=True asks that every call be one program, and "
                         "fallback='eager' that some run eagerly; pass one of them")
    if dynamic:
        warnings.warn("tracenn.compile(dynamic=True): shapes stay static in an XLA program, so each new input "
                      "shape compiles its own program (as dynamic=False); pad inputs to a few shapes to "
                      "limit recompiles (float arguments are program inputs from the first call)", UserWarning,
                      stacklevel=3)


def _option_inputs(group) -> list:
    """The float options of a param group that are program inputs, as ``(key, index)``: ``lr``;
    a nonzero ``momentum`` and the first of ``betas`` (which OneCycleLR and CyclicLR cycle with
    the learning rate). Their values are not guarded (:func:`_group_key`); whether momentum is
    zero is (it decides whether the update keeps a momentum buffer)."""
    out = []
    if isinstance(group.get("lr"), (int, float)):
        out.append(("lr", None))
    m = group.get("momentum")
    if isinstance(m, (int, float)) and not isinstance(m, bool) and m != 0:
        out.append(("momentum", None))
    b = group.get("betas")
    if isinstance(b, tuple) and len(b) == 2 and isinstance(b[0], (int, float)):
        out.append(("betas", 0))
    return out


def _group_key(g) -> tuple:
    """What a param group's options bake into a compiled step: every option but the program
    inputs' values (:func:`_option_inputs`). Runs on every call of a compiled step."""
    out = []
    for k, v in g.items():
        if k == "params":
            continue
        if k == "lr":
            if isinstance(v, Tensor):  # (its value is an input: see _step_state)
                out.append((k, id(v)))
            continue
        if k == "momentum" and isinstance(v, (int, float)):
            out.append((k, v != 0))
        elif k == "betas" and isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], (int, float)):
            out.append((k, _hashable(v[1])))
        else:
            out.append((k, _hashable(v)))
    return tuple(out)


def _options_key(optimizers):
    """Every param-group option but those that are program inputs (the others are baked in)."""
    return tuple(tuple(_group_key(g) for g in o.param_groups) for o in optimizers)


def _hashable(v):
    try:
        hash(v)
        return v
    except TypeError:
        return repr(v)


def _step_watch(fn):
    """Per call for a compiled function: what it captures (by identity); for a training step (it
    captures an optimizer) also which grads are set and the optimizers' state tensors and
    options (a change re-reads the state and may recompile)."""
    return _step_watcher(fn)()


def _step_watcher(fn):
    """``_step_watch`` for ``fn`` as a function of no arguments, reading the captures through one
    :func:`_capture_reader`. It runs on every call of a compiled function: MLP step 4.5 -> 3.9 µs,
    transformer 8.8 -> 8.3 µs against the lookups per call (one process)."""
    target = fn.__func__ if inspect.ismethod(fn) and _is_module(fn.__self__) else fn
    read = _capture_reader(target, named=False)
    return lambda: _watch_key(read())


def _watch_key(objs) -> tuple:
    key = list(map(id, objs))
    _, optimizer, _, scaler, _ = _classes()
    for obj in objs:
        if isinstance(obj, scaler):
            key.append(obj._compile_key())
        elif isinstance(obj, optimizer):  # (map over C functions: this runs for every tensor, every call)
            for g in obj.param_groups:
                key.append(tuple(map(_IS_NONE, map(dict.get, map(_DICT, g["params"]), repeat("grad")))))
                key.append(_group_key(g))
            key.append(obj._structure_key())  # (its state's parameters, entries and tensors: optim/_state.py)
            key.append(_shared_scalars(obj))
    return tuple(key)


_DICT = operator.attrgetter("__dict__")  # (.grad read raw: a parameter's pending grad stays pending, see flatgrads)
_IS_NONE = functools.partial(operator.is_, None)
