"""The tracer: run a module's ``__call__`` (or a function) on symbolic tensors and record a Graph.

While a :class:`Tracer` is active (``_dispatch.TRACE``), every op from the registry records a
:class:`~tracenn.compiler.graph.Node` instead of running, and returns tensors whose ``_value`` is a
:class:`~tracenn.compiler.graph.Value` (shape and dtype, no numbers). The same user code, the same
``_api`` functions and the same op records run as in eager mode: only ``apply`` differs.

State enters under its ``state_dict`` name: for the duration of the trace each parameter and
buffer tensor holds a Value named ``conv1.weight``; after it, whatever a buffer holds that is not
its own Value is a write (``bn.running_mean <- %12``), and every tensor gets its array back.
"""
from __future__ import annotations

import functools
import inspect

import jax
import numpy as np

from .. import _dispatch, _meta
from ..autograd.grad_mode import GRAD, no_grad
from ..errors import CompileError
from ..ops import OPS
from ..tensor import Tensor
from ..utils._pytree import check_no_hidden_tensors, flatten, unflatten
from ..dtypes import type_str
from .escapes import Containers, settle_module_tensors, view_sources
from .graph import Graph, Node, Value, user_source
from ..errors import DataDependentError, UnsupportedError

_INEXACT = frozenset("fcV")
_STOP = None  # OPS['stop_gradient'], set below


@functools.lru_cache(maxsize=4096)
def _out_avals(op, key, in_sig):
    """Output ShapeDtypeStructs of ``op`` for input signature ``in_sig`` (the op's shape rule)."""
    args = [jax.ShapeDtypeStruct(s[1], s[2]) if s[0] == "a" else s[2] for s in in_sig]
    return op.shape(*args, **dict(zip(op.static, key)))


def _sig(x):
    if isinstance(x, Value):
        return ("a", x.shape, x.dtype)
    try:
        hash(x)
    except TypeError:
        return ("p", type(x).__name__, repr(x))
    return ("p", type(x).__name__, x)


class Tracer:
    """Records ops into ``graph``. Made and installed by :func:`trace`."""

    def __init__(self, graph: Graph, names: dict[int, str], device):
        self.graph = graph
        self.names = names          # id(module) -> dotted path
        self.path = [""]
        self.device = device
        self.count = 0
        self.const_ids: dict[int, Value] = {}
        self.kept: list = []            # the arrays behind const_ids (so their ids stay valid)
        self.gens: dict[int, int] = {}  # id(generator) -> index into graph.rng
        self.rg: set = set()            # values that require grad (what backward() flows into)
        self.leaves: dict = {}          # leaf Value -> its tensor (parameters, inputs): .grad lands there
        self.deferred: list = []        # scheduler.step() calls, run after each compiled call
        self.mutated: dict = {}         # id -> (tensor, array, version, writes): outside tensors changed
        self.stopped: dict = {}         # value -> its stop_gradient value
        self.phase = "forward"          # set to "backward"/"update" by backward() and optimizer.step()
        self.customs: list = []         # custom autograd.Function calls (see custom_function)
        self.custom_names: dict = {}    # the node making a custom call's output -> its eager node's name
        self.copied_views: list = []    # x[i] copies (i a 0-d int tensor) changed in place (_api/index.py)
        self.blocks: list = []          # what is being traced into a block (control.py), innermost last
        self.saved: dict = {}           # node -> eager's saved-tensor records; see autodiff.save
        self.seqs: dict = {}            # node -> its autograd sequence number (a node with a gradient)
        self.freed: set = set()         # nodes a backward without retain_graph freed
        # A graph traced under no_grad is never differentiated: it needs no stop_gradient nodes.
        self.differentiated = GRAD.enabled

    @property
    def module_path(self) -> str:
        return self.path[-1]

    def fresh(self, shape, dtype, kind="op", node=None, index=0, name=None) -> Value:
        if name is None:
            name = str(self.count)
            self.count += 1
        return Value(name, shape, dtype, kind, node, index, self.device)

    def const(self, arr) -> Value:
        """A concrete array met while tracing: a named constant of the graph."""
        v = self.const_ids.get(id(arr))
        if v is None:
            # A scalar is also found by value: the step counts a first optimizer step makes are
            # equal arrays, and as one Value they become one output that every parameter shares.
            by_value = ("0-d", arr.dtype, np.asarray(arr).tobytes()) if np.ndim(arr) == 0 else None
            v = self.const_ids.get(by_value)
            if v is None:
                name = f"c{len(self.graph.consts)}"
                v = Value(name, np.shape(arr), arr.dtype, "const", device=self.device)
                self.graph.consts[name] = arr
                self.graph.const_values[name] = v
                if by_value is not None:
                    self.const_ids[by_value] = v
            self.const_ids[id(arr)] = v
            self.kept.append(arr)  # ids stay unique while we trace
        return v

    def value_of(self, t: Tensor) -> Value:
        v = t._value if t._base is None else t._sync()
        if not isinstance(v, Value):
            if hasattr(type(v), "_sparse_refuse"):  # a sparse COO tensor read by a dense op (tracenn/sparse)
                v._sparse_refuse(f"an op at {user_source() or '?'}")
            if _meta.is_meta(v):
                raise CompileError(f"the traced code reads a meta tensor (at {user_source() or '?'}): "
                                   + _meta.needs_values(v))
            if "_stored" in t.__dict__:  # (escapes.Store: an attribute a compiled call sets)
                raise UnsupportedError(
                    "the traced code reads a tensor attribute that a compiled call stored (at "
                    f"{user_source() or '?'}); it would be baked in as a constant, so this call runs eagerly. "
                    "Register it as a buffer "
                    "(self.register_buffer(name, tensor)) to carry it from one call to the next")
            if t._requires_grad:  # a parameter the compiled call does not know as state
                raise CompileError(
                    f"the traced code reads a tensor that requires grad ({type_str(v.shape, v.dtype)}, "
                    f"at {user_source() or '?'}) but is not part of the compiled call's state, so it "
                    "would be baked in as a constant and never train. tracenn.compile finds modules, "
                    "optimizers and tensors through closures, globals, default arguments and a "
                    "method's self (not inside arguments: a module or optimizer passed as an argument "
                    "is not searched); reach the model one of those ways.")
            v = self.const(v)
        return v

    def record(self, op, args, key):
        ins = []
        rg = False
        grad_on = GRAD.enabled
        for a in args:
            if isinstance(a, Tensor):
                ins.append(self.output_value(a, grad_on))  # (no_grad / detach(): the gradient stops here)
                rg = rg or a._requires_grad
            elif isinstance(a, Value):
                ins.append(a)
            elif isinstance(a, (jax.Array, np.ndarray)):
                ins.append(self.const(a))
            else:
                ins.append(a)
        try:
            avals = _out_avals(op, key, tuple(_sig(v) for v in ins))
        except Exception as e:  # the op rejected these shapes/dtypes: say where
            raise CompileError(
                f"{op.name} cannot take inputs {', '.join(v.type if isinstance(v, Value) else repr(v) for v in ins)}"
                f" (at {user_source() or '?'}): {e}") from e
        node = Node(op, key, ins, (), self.module_path, user_source(), self.phase)
        multi = isinstance(avals, (tuple, list))
        outs = []
        for i, av in enumerate(avals if multi else (avals,)):
            outs.append(self.fresh(av.shape, av.dtype, node=node, index=i))
        node.outputs = outs
        self.graph.nodes.append(node)
        grad = rg and GRAD.enabled and op.differentiable
        result = []
        for o in outs:
            g = grad and o.dtype.kind in _INEXACT
            if g:
                self.rg.add(o)
            result.append(Tensor._wrap(o, g, node if g else None, o.index))
        if grad and any(t._requires_grad for t in result):
            from .autodiff import save
            save(self, node, args, result)
        return tuple(result) if multi else result[0]

    # ---- autograd while tracing ----------------------------------------------------------------

    def output_value(self, t: Tensor, grad_on: bool = True) -> Value:
        """The Value an op reads, or a returned (or stored) tensor leaves the program as, for ``t``:
        through ``stop_gradient`` when ``t`` was detached (or is read under no_grad: ``grad_on``
        False) from a value that carries a gradient, so no gradient flows there and a returned
        tensor does not require grad after the call, as in eager."""
        v = self.value_of(t)
        if self.differentiated and (not grad_on or not t._requires_grad) and v in self.rg:
            v = self.stop_gradient(v)
        return v

    def stop_gradient(self, v: Value) -> Value:
        """``v`` through a ``stop_gradient`` node (one per value): where a value that carries a
        gradient is read under ``no_grad`` or through ``detach()``, the graph says so, and both
        the traced backward and JAX's differentiation of the lowered graph stop there."""
        got = self.stopped.get(v)
        if got is None:
            node = Node(_STOP, (), [v], (), self.module_path, user_source(), self.phase)
            got = self.fresh(v.shape, v.dtype, node=node)
            node.outputs = [got]
            self.graph.nodes.append(node)
            self.stopped[v] = got
        return got

    def backward(self, outs, seeds, *, inputs=None, create_graph=False, retain_graph=None):
        """``loss.backward()`` inside a traced function: the reverse pass becomes graph nodes and
        each leaf's ``.grad`` a graph value (``inputs``: accumulate only into these;
        ``create_graph``: the gradients can be differentiated again; ``retain_graph``: as eager,
        else a later backward through the same nodes raises)."""
        from .._api.math import add
        self._not_in_block("runs backward()")
        from .autodiff import reverse
        only = None if inputs is None else {id(t) for t in inputs}
        targets = None if inputs is None else self._targets(inputs)
        prev, self.phase = self.phase, "backward"
        try:
            ct = reverse(self, [self.value_of(t) for t in outs], [self._seed(s) for s in seeds], create_graph,
                         retain_graph, targets)
        finally:
            self.phase = prev
        for v, t in self.leaves.items():
            g = ct.get(v)
            if g is None or not t._requires_grad or (only is not None and id(t) not in only):
                continue
            gt = self.tensor_of(g) if create_graph else Tensor._wrap(g)
            t.grad = gt if t.grad is None else add(t.grad, gt)

    def custom_function(self, cls, ctx, args, forward):
        """A custom ``autograd.Function`` call differentiated inside the trace: ``forward()`` runs
        (recorded) under no_grad, and its floating outputs are fresh values that require grad; a
        traced backward reaching them runs ``cls.backward`` there (:func:`autodiff.reverse`). The
        trace refuses the call (the call then runs eagerly) if no traced backward does."""
        with no_grad():
            out = forward()
            outs = out if isinstance(out, tuple) else (out,)
            fresh = [o if not isinstance(o, Tensor) or not o.is_floating_point() or id(o) in ctx._non_diff
                     else self.record(OPS["alias"], (o,), ()) for o in outs]
        for o in fresh:
            if o is not None and isinstance(o, Tensor) and o.is_floating_point() and id(o) not in ctx._non_diff:
                self.rg.add(o._value)
                o._requires_grad = True
        ins = [self.value_of(a) if isinstance(a, Tensor) else None for a in args]
        call = CustomCall(len(self.graph.nodes), cls, ctx, [
            o._value if isinstance(o, Tensor) and o._requires_grad else None for o in fresh], ins)
        self.customs.append(call)
        from .autodiff import save_custom
        fresh = save_custom(self, call, args, outs, fresh)
        return tuple(fresh) if isinstance(out, tuple) else fresh[0]

    def grad(self, outs, seeds, inputs, create_graph=False, retain_graph=None):
        """``autograd.grad`` inside a traced function: cotangents of ``inputs`` (None if unused);
        with ``create_graph`` they carry a gradient (a gradient penalty's backward goes through them)."""
        from .autodiff import reverse
        self._not_in_block("runs autograd.grad()")
        ct = reverse(self, [self.value_of(t) for t in outs], [self._seed(s) for s in seeds], create_graph,
                     retain_graph, self._targets(inputs))
        wrap = self.tensor_of if create_graph else Tensor._wrap
        return [None if ct.get(self.value_of(t)) is None else wrap(ct[self.value_of(t)]) for t in inputs]

    def _targets(self, inputs) -> set:
        """The values whose gradients ``inputs=`` asks for: a leaf's own (its value when it became
        a leaf), or a non-leaf's current value."""
        ids = {id(t) for t in inputs}
        vals = {v for v, t in self.leaves.items() if id(t) in ids}
        for t in inputs:
            if isinstance((t if t._base is None else t._base)._value, Value):  # (else no backward reaches it)
                vals.add(self.value_of(t))
        return vals

    def restamp(self, nodes, since, root, old, made) -> None:
        """An in-place op changed ``root`` (see ``tensor._restamp`` and autodiff.restamp)."""
        from .autodiff import restamp
        restamp(self, nodes, since, root, old, made)

    def new_leaf(self, t: Tensor) -> None:
        """``t.requires_grad_()`` while tracing (a gradient penalty's interpolate, a parameter a
        GAN step unfreezes): ``t`` is a leaf that backward() and autograd.grad reach, as in eager.
        A value shared with a tensor that carries a gradient (``y.detach().requires_grad_()``)
        is cut from it by a ``stop_gradient``, as detach() cuts it."""
        v = self.value_of(t)
        if v in self.rg:
            v = self.stop_gradient(v)
        t._value = v  # (a view's value is re-read from its root only after the root changes)
        self.rg.add(v)
        self.leaves[v] = t

    def tensor_of(self, v: Value) -> Tensor:
        """A tensor over graph value ``v`` that requires grad if ``v`` does (its node as grad_fn)."""
        if v in self.rg:
            return Tensor._wrap(v, True, v.node, v.index)
        return Tensor._wrap(v)

    def mutating(self, t):
        """An in-place op is about to change ``t``. A tensor that still holds a concrete array is
        not part of the program's state (not a parameter, buffer, input or optimizer state): its
        change could not be written back, so tracing stops with :class:`UnsupportedError` and the
        call runs eagerly (after the values are restored)."""
        root = t if t._base is None else t._base
        if self.blocks:  # (a tensor made inside the block may change: its nodes are the block's)
            v = root._value
            if not (isinstance(v, Value) and v.node is not None and any(v.node is n for n in self.graph.nodes)):
                self._not_in_block("changes a tensor from outside it in place")
        if not isinstance(root._value, Value) and id(root) not in self.mutated:
            self.mutated[id(root)] = (root, root._value, root._ver, root._writes)

    def keep_history(self, t: Tensor, new: Tensor) -> Tensor:
        """``t`` changed in place under ``no_grad`` to ``new``: in eager mode it keeps its history
        (autograd did not see the change), so in the graph its new value is
        ``old + stop_gradient(new - old)``: ``new``'s numbers, ``old``'s gradient path."""
        from .._api.math import add, sub
        old = self.value_of(t)
        if not self.differentiated or old not in self.rg:
            return new
        diff = sub(new, t)  # under no_grad: reads old through stop_gradient, carries no gradient
        prev = GRAD.enabled
        GRAD.enabled = True
        try:
            return add(t, diff)
        finally:
            GRAD.enabled = prev

    def _not_in_block(self, did: str) -> None:
        if self.blocks:
            from .control import refused
            raise refused(self.blocks[-1], did)

    def cond(self, pred, true_fn, false_fn, operands):
        """``tracenn.cond`` with a traced predicate (see control.py)."""
        from .control import trace_cond
        return trace_cond(self, pred, true_fn, false_fn, operands)

    def while_loop(self, cond_fn, body_fn, carried):
        """``tracenn.while_loop`` while tracing (see control.py)."""
        from .control import trace_while
        return trace_while(self, cond_fn, body_fn, carried)

    def defer(self, fn, *args, **kwargs):
        """``scheduler.step()`` inside a traced step: it changes Python floats (the learning
        rate, an input of the program), so the runtime calls it after every compiled call."""
        self.deferred.append((fn, args, kwargs))

    def _seed(self, s):
        """A backward's starting cotangent as a Value: a graph value, a concrete array, or (with
        create_graph) a tensor, whose gradient takes part only if it requires grad."""
        if isinstance(s, Tensor):
            return self.output_value(s)
        return s if isinstance(s, Value) else self.const(s)

    # ---- modules and randomness --------------------------------------------------------------

    def call_module(self, module, args, kwargs):
        name = self.names.get(id(module))
        if name is None:  # a module made inside forward, or not a submodule: no state_dict name
            name = f"{self.module_path + '.' if self.module_path else ''}<{type(module).__name__}>"
        self.graph.modules.setdefault(name, type(module).__name__)
        self.path.append(name)
        try:
            if not _has_hooks(module):
                return module.forward(*args, **kwargs)
            return self._call_with_hooks(module, name, args, kwargs)
        finally:
            self.path.pop()

    def _call_with_hooks(self, module, name, args, kwargs):
        """``Module._call_impl`` with each forward (pre-)hook as a ``hook`` node (see hooks.py)."""
        from ..nn.modules import _hooks as h
        site = None
        if (module._backward_hooks or module._backward_pre_hooks or h._global_backward_hooks
                or h._global_backward_pre_hooks):
            full, non_full = module._get_backward_hooks()
            if non_full:
                raise UnsupportedError(
                    f"module {name!r} ({type(module).__name__}) has a non-full backward hook "
                    "(register_backward_hook, deprecated), which sees the gradients of the last op of forward: "
                    "there is no such op in a compiled program. Use register_full_backward_hook")
            if self.differentiated and GRAD.enabled:  # (else no backward reaches them, as in eager)
                self._not_in_block(f"calls module {name!r}, which has backward hooks,")
                from .hooks import BackwardSite
                site = BackwardSite(module, name, full, module._get_backward_pre_hooks())
        for hid, hook in (*h._global_forward_pre_hooks.items(), *module._forward_pre_hooks.items()):
            kw = hid in module._forward_pre_hooks_with_kwargs
            if getattr(hook, "_tracenn_traceable", False):  # traced inline: its ops join the graph
                args, kwargs = _pre_hook_result(hook(module, args, kwargs) if kw else hook(module, args),
                                                args, kwargs, kw)
                continue
            leaves, tree = flatten((args, kwargs))
            new = self._hook_node(hook, module, name, "forward_pre", kw, tree, leaves, leaves)
            args, kwargs = unflatten(tree, new)
        if site is not None:
            args = site.route_inputs(self, args)
        result = module.forward(*args, **kwargs)
        for hid, hook in (*h._global_forward_hooks.items(), *module._forward_hooks.items()):
            kw = hid in module._forward_hooks_with_kwargs or hid in h._global_forward_hooks_with_kwargs
            if getattr(hook, "_tracenn_traceable", False):
                r = hook(module, args, kwargs, result) if kw else hook(module, args, result)
                result = result if r is None else r
                continue
            in_leaves, _ = flatten((args, kwargs))
            out_leaves, out_tree = flatten(result)
            _, tree = flatten((args, kwargs, result))
            new = self._hook_node(hook, module, name, "forward", kw, tree, in_leaves + out_leaves, out_leaves)
            result = unflatten(out_tree, new)
        if site is not None:
            result = site.route_outputs(self, result)
        return result

    def _hook_node(self, hook, module, name, kind, with_kwargs, tree, leaves, passed):
        from .hooks import HOOK_OP, hook_call
        if not passed:
            return []
        self._not_in_block(f"calls a {kind.replace('_', ' ')} hook of module {name!r}")
        avals = [(tuple(t.shape), t._value.dtype) for t in passed]
        fn = hook_call(hook, module, name, kind, with_kwargs, tree, len(leaves) - len(passed), avals,
                       self.differentiated and GRAD.enabled)
        outs = self.record(HOOK_OP, leaves, (fn,))
        outs = outs if isinstance(outs, tuple) else (outs,)
        return [o if not t._requires_grad or o._requires_grad else o for o, t in zip(outs, passed)]

    def rng(self, gen, n=1):
        """(key, counter) tensors for one draw from ``gen`` (the first of ``n``: a tracenn.func
        transform's node draws its own from there): inputs of the program, so each call draws
        fresh numbers, the same ones eager mode draws from the same generator state."""
        self._not_in_block("draws random numbers")
        i = self.gens.get(id(gen))
        if i is None:
            i = len(self.graph.rng)
            self.gens[id(gen)] = i
            base = "rng" if i == 0 else f"rng{i}"
            key = self.fresh(np.shape(gen._key), gen._key.dtype, "rng", name=f"{base}.key")
            counter = self.fresh((), np.int64, "rng", name=f"{base}.counter")
            self.graph.rng.append((key, counter))
            self.graph.draws.append(0)
            self.generators.append(gen)
        key, counter = self.graph.rng[i]
        k = self.graph.draws[i]
        self.graph.draws[i] = k + n
        c = Tensor._wrap(counter)
        if k:
            from .._api.math import add
            c = add(c, k)
        return Tensor._wrap(key), c


class CustomCall:
    """A custom ``autograd.Function`` call in the trace: where its forward ended (a node index),
    the class and ctx, its outputs' values (None: not differentiable) and its arguments' values."""

    def __init__(self, position, cls, ctx, outs, ins):
        self.position, self.cls, self.ctx, self.outs, self.ins = position, cls, ctx, outs, ins
        self.reached = False  # a traced backward ran its backward


def _pre_hook_result(r, args, kwargs, with_kwargs):
    """The arguments after a forward pre-hook returned ``r``, by torch's rules: None keeps them;
    with kwargs, an ``(args, kwargs)`` pair; else new args (a non-tuple is the one argument)."""
    if r is None:
        return args, kwargs
    if with_kwargs:
        if not (isinstance(r, tuple) and len(r) == 2):
            raise RuntimeError("forward pre-hook must return None or a tuple of (new_args, new_kwargs), "
                               f"but got {r}.")
        return r
    return (r if isinstance(r, tuple) else (r,)), kwargs


def _arg_names(fn, n: int) -> list[str]:
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = []
    names = []
    for i in range(n):
        if i < len(params) and params[i].kind != params[i].VAR_POSITIONAL:
            names.append(params[i].name)
        elif params and params[-1].kind == params[-1].VAR_POSITIONAL:
            names.append(f"{params[-1].name}{i - len(params) + 1}")
        else:
            names.append(f"arg{i}")
    return names


def trace(fn, args, kwargs, *, state: dict[str, Tensor], modules: list, name: str,
          mode: str = "", grad_params: dict | None = None, optimizers=(),
          aliases: dict | None = None, scalers=()) -> tuple[Graph, list]:
    """Trace ``fn(*args, **kwargs)`` into a Graph.

    ``state``: the tensors that enter under a name (parameters, buffers, captured tensors), in
    order; ``modules``: (dotted path, module) pairs, for module paths and buffer writes. Returns
    the graph and the generators it draws from (in ``graph.rng`` order).

    A training step also passes ``grad_params`` (name -> parameter: whose ``.grad`` the step may
    set, written back as ``name.grad``) and the ``optimizers`` it steps (their state must exist
    made in the traced step becomes a write that creates it after the call). ``aliases`` maps
    state names to an earlier name whose tensor holds the same array (an optimizer's shared step
    counts, see api._shared_scalars): such a tensor reads the earlier name's Value, so the program
    takes that array once and the passes merge the computations on it; the runtime checks that the
    arrays are still shared before every call. ``scalers``: the GradScalers the step uses (their
    scale and growth tracker are in ``state``); each must end the step with its iteration done.
    """
    names = {id(m): p for p, m in modules}
    from ..device import to_jax
    graph = Graph(name, mode)
    leaves, in_tree = flatten((args, kwargs))
    check_no_hidden_tensors(in_tree, {id(t) for t in state.values()})  # (else baked in as a constant)
    device = None
    for t in leaves:
        v = t._value
        device = next(iter(v.devices())) if hasattr(v, "devices") else None
        break
    if device is None:
        device = to_jax("cpu") if jax.config.jax_default_device is None else jax.config.jax_default_device
    tracer = Tracer(graph, names, device)
    tracer.generators = []
    tracer.optimizers = {id(o) for _, o in optimizers}  # the step's: whose state the program carries

    # Inputs: fresh symbolic tensors (the caller's tensors are never touched while tracing).
    arg_leaves, _ = flatten(args)
    arg_names = _arg_names(getattr(fn, "forward", fn), len(args))
    sym_inputs = []
    input_names = []
    for i, t in enumerate(leaves):
        if i < len(arg_leaves):
            # name by position: the parameter name for a plain argument, name.i inside a structure
            base = _leaf_name(args, arg_names, i)
        else:
            base = _kw_leaf_name(kwargs, i - len(arg_leaves))
        base = _unique(base, input_names)
        input_names.append(base)
        v = t._value if t._base is None else t._sync()
        val = Value(base, v.shape, v.dtype, "input", device=device)
        graph.inputs.append(val)
        s = Tensor._wrap(val, t._requires_grad)
        if t._inference:  # (an op whose gradient reads it raises, as in eager: autodiff.save)
            s._inference = True
        sym_inputs.append(s)
        if t._requires_grad:
            tracer.rg.add(val)
            tracer.leaves[val] = s
    sym_args, sym_kwargs = unflatten(in_tree, sym_inputs)

    # State: swap each tensor's array for its named Value, and put it all back afterwards.
    saved = []
    for sname, t in state.items():
        if hasattr(t, "trace_in"):
            continue
        saved.append((t, t._value, t._ver, t._writes, t._node, t._requires_grad, t.grad))
    owners = _buffer_owners(modules)
    buffer_ids = {id(b) for b in owners.values()}
    from .api import _captures  # (api imports this module)
    containers = Containers(modules, _captures(fn))
    prev = _dispatch.TRACE[0]
    grad_params = grad_params or {}
    orig_grads = {n: p.grad for n, p in grad_params.items()}
    opt_keys = [((oname, o), {id(p): set(st) for p, st in o.state.items()}) for oname, o in optimizers]
    undos = []
    saved_values = {}  # state name -> its array, to check aliases
    try:
        for sname, t in state.items():
            if hasattr(t, "trace_in"):  # a ref (a .grad, a learning rate): see runtime/refs.py
                shape, dtype = t.aval
                val = Value(sname, shape, dtype, t.kind, device=device)
                graph.state[sname] = val
                undos.append(t.trace_in(val))
                continue
            kind = "param" if _is_param(t) else "buffer" if id(t) in buffer_ids else "capture"
            v = t._value
            val = Value(sname, v.shape, v.dtype, kind, device=device)
            graph.state[sname] = val
            same = aliases.get(sname) if aliases else None
            if same is not None and v.ndim == 0 and t._base is None and state[same]._value is graph.state[same] \
                    and saved_values.get(same) is v:
                graph.aliases[sname] = same  # the tensor reads the earlier name's Value
                val = graph.state[same]
            saved_values[sname] = v
            t._value = val
            if t._requires_grad and t._node is None:
                tracer.rg.add(val)
                tracer.leaves[val] = t
        _dispatch.TRACE[0] = tracer
        try:
            out = fn(*sym_args, **sym_kwargs)
            unwritten = [c for c in tracer.copied_views if c.__dict__["_copied_view"][2]]
            if unwritten:
                raise UnsupportedError(
                    "an in-place change of x[i], i a 0-d integer tensor, that is not written back with "
                    "x[i] = ...: in eager mode x[i] is a view of x and the change reaches x, but while "
                    "compiling i has no value and x[i] is a copy, so this call runs eagerly. To compile "
                    "it, write x[i] = new_value (x[i] += v also works) instead")
            out_leaves, out_tree = flatten(out)
            graph.outputs = [tracer.output_value(t) for t in out_leaves]  # (views re-read while tracing)
            graph.out_tree = out_tree
        except Exception as e:
            if not isinstance(e, (DataDependentError, UnsupportedError)):
                _note_user_line(e)
            raise
        finally:
            _dispatch.TRACE[0] = prev
            for t, value, ver, writes in tracer.mutated.values():
                t._value, t._ver, t._writes = value, ver, writes
            pending = [sc._trace_done() for sc in scalers]  # (no traced value stays on them)
        if any(pending):
            raise UnsupportedError(
                "GradScaler: the compiled step called scaler.step(optimizer) (or unscale_) but not "
                "scaler.update(); a compiled program replays the whole step, so call scaler.update() "
                "inside the compiled function, after scaler.step(optimizer)")
        if tracer.mutated:
            shapes = ", ".join(f"{type_str(t.shape, value.dtype)}" for t, value, _, _ in tracer.mutated.values())
            raise UnsupportedError(
                f"the traced code changed {len(tracer.mutated)} tensor(s) in place ({shapes}) that are not "
                "parameters, buffers, inputs or optimizer state of the compiled call, so the program "
                "could not write the change back. Make such a tensor a buffer (register_buffer), pass it "
                "as an argument, or keep it out of the compiled code")
        # Writes: state tensors (and inputs) whose value is no longer their own Value.
        for sname, t in state.items():
            if hasattr(t, "trace_in"):
                continue
            v = t._value
            if v is not graph.state[graph.aliases.get(sname, sname)]:
                graph.writes[sname] = tracer.value_of(t) if isinstance(v, Value) else tracer.const(v)
        for (mod, bname, sname), orig in owners.items():
            now = mod._buffers.get(bname)
            if now is not orig and isinstance(now, Tensor):  # reassigned: self.buf = new tensor
                graph.writes[sname] = tracer.value_of(now)
                mod._buffers[bname] = orig
        for val, s in zip(graph.inputs, sym_inputs):
            if s._value is not val:
                graph.writes[val.name] = tracer.value_of(s)
            if s.grad is not None:  # backward() inside the traced code reached an input
                graph.writes[f"{val.name}.grad"] = tracer.value_of(s.grad)
        for pname, p in grad_params.items():  # .grad set, replaced, accumulated or cleared
            gname = f"{pname}.grad"
            cur, orig = p.grad, orig_grads[pname]
            if cur is orig:
                if cur is not None and cur._value is not graph.state.get(gname):
                    graph.writes[gname] = tracer.value_of(cur)
            else:
                graph.writes[gname] = None if cur is None else tracer.value_of(cur)
        pnames = {id(p): n for n, p in grad_params.items()}
        for (oname, o), keys in opt_keys:  # state the step made (its first step): created after the call
            for p, st in list(o.state.items()):
                for k in [k for k in st if k not in keys.get(id(p), ())]:
                    v = st.pop(k)
                    if not isinstance(v, Tensor):
                        raise UnsupportedError(
                            f"{type(o).__name__}.step() made non-tensor state {k!r} while tracing")
                    name = f"{oname}.state[{pnames.get(id(p), '?')}].{k}"
                    graph.writes[name] = tracer.value_of(v)
                    graph.creates[name] = (o, p, k)
                if not st and id(p) not in keys:
                    del o.state[p]
        for t, *_, rg, _ in saved:  # requires_grad_() on state: set again after each call, as eagerly
            if t._requires_grad != rg:
                tracer.defer(t.requires_grad_, t._requires_grad)
        graph.deferred = list(tracer.deferred)
        settle_module_tensors(graph, modules, state, saved_values)
        graph.stores = containers.stores(graph)
        escaping = list(out_leaves)
        for st in graph.stores:  # (after the user's outputs: the runtime replays them with these)
            graph.outputs += [tracer.output_value(t) for t in st.leaves]
            escaping += st.leaves
            st.leaves = None
        graph.out_views = view_sources(escaping, sym_inputs, state)
        unreached = [c.cls.__name__ for c in tracer.customs if not c.reached]
        if unreached:
            raise UnsupportedError(
                f"the custom autograd.Function {unreached[0]} is differentiated inside a compiled call, but "
                "its backward() is not part of the program (the gradient is taken after the call, by "
                "autograd); this call runs eagerly instead (a compiled training step that calls "
                "loss.backward() inside, or the call under no_grad, compiles it).")
    except BaseException:
        _drop_created_state(opt_keys)  # (symbolic: no later step, eager or compiled, could read it)
        raise
    finally:
        containers.restore()
        for undo in reversed(undos):
            undo()
        for pname, p in grad_params.items():
            p.grad = orig_grads[pname]
        for t, value, ver, writes, node, rg, grad in saved:
            t._value, t._ver, t._writes, t._node, t._requires_grad, t.grad = value, ver, writes, node, rg, grad
    return graph, tracer.generators


def _drop_created_state(opt_keys) -> None:
    """Remove the optimizer state a failed trace's ``step()`` made (it holds symbolic values), so
    the optimizer is as before the call: its next step, eager or compiled, makes the state anew."""
    for (_, o), keys in opt_keys:
        for p, st in list(o.state.items()):
            for k in [k for k in st if k not in keys.get(id(p), ())]:
                del st[k]
            if not st and id(p) not in keys:
                del o.state[p]


def _note_user_line(e: BaseException) -> None:
    """Add where in the user's code an error raised while tracing came from (the innermost frame
    outside tracenn), as an exception note: tracenn's own checks do not know the user's line."""
    import os
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
    tb, where = e.__traceback__, None
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if not fn.startswith(pkg) and not fn.startswith("<frozen"):
            where = (fn, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    if where is not None and hasattr(e, "add_note"):
        e.add_note(f"(raised while tracenn.compile traced {where[2]} at {where[0]}:{where[1]})")


def _has_hooks(module) -> bool:
    from ..nn.modules import _hooks as h
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or h._global_forward_hooks or h._global_forward_pre_hooks
                or h._global_backward_hooks or h._global_backward_pre_hooks)


def _is_param(t) -> bool:
    from ..nn.parameter import Parameter
    return isinstance(t, Parameter)


def _buffer_owners(modules):
    """(module, buffer name, state name) -> buffer tensor, to notice ``self.buf = new`` in forward."""
    owners = {}
    for path, mod in modules:
        for bname, b in getattr(mod, "_buffers", {}).items():
            if b is not None:
                owners[(mod, bname, f"{path}.{bname}" if path else bname)] = b
    return owners


def _unique(name, taken):
    if name not in taken:
        return name
    i = 1
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _leaf_name(args, names, i):
    """A readable name for the i-th tensor leaf of ``args``: ``x`` or ``x.0`` inside a tuple."""
    k = 0
    for a, n in zip(args, names):
        leaves, _ = flatten(a)
        if i < k + len(leaves):
            return n if isinstance(a, Tensor) else f"{n}.{i - k}"
        k += len(leaves)
    return f"arg{i}"


def _kw_leaf_name(kwargs, i):
    k = 0
    for n, a in kwargs.items():
        leaves, _ = flatten(a)
        if i < k + len(leaves):
            return n if isinstance(a, Tensor) else f"{n}.{i - k}"
        k += len(leaves)
    return f"kwarg{i}"


_STOP = OPS["stop_gradient"]
