"""A compiled call: guards, the executable cache, state sync and the autograd bridge.

:class:`Compiled` is what ``tracenn.compile(model_or_fn)`` returns. A call:

1. re-reads the module tree only when the global epoch moved (``_dispatch.EPOCH``: bumped by
   structure changes, ``train()/eval()``, hooks, ``requires_grad_``, ``.data =``);
2. builds the guard key from the inputs' shapes, dtypes and ``requires_grad``, the non-tensor
   arguments, the structure key and grad mode, and looks up the executable;
3. on a miss, asks the compiler (``build``, passed in: the runtime never imports the tracer) for
   a program, recording the reason in plain words;
4. calls the jitted program with the parameter and buffer arrays, writes new buffer values and
   the RNG counter back onto the Python objects, and wraps the outputs as Tensors. When gradients
   are needed the program is ``jax.vjp`` of the graph, and the outputs' ``grad_fn`` runs its
   jitted pullback, so ``loss.backward()`` fills ``param.grad`` as in eager mode.
"""
from __future__ import annotations

import copy
import functools
import os
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dispatch, _malloc
from ..autograd.engine import _edge_of
from ..autograd.graph import PROFILER as _PROFILER
from ..autograd.graph import Node as _TapeNode
from ..autograd.grad_mode import GRAD, no_grad
from ..device import put_like
from ..errors import CompileError, DataDependentError, UnsupportedError
from ..tensor import Tensor
from ..utils._pytree import LEAF, flatten, signature, unflatten
from . import fastcall, gradcall
from .fastcall import reraise_callback_error
from .gradcall import (_CompiledOp, _complex_boundary, _depends_on, _flops, _GradPlan, _largest_bytes, _merge,
                       _reaching, _saved_by_ops, _ScaledGrads, conj_tree)
from .reasons import _type, describe_change
from .writes import (alias_outputs, apply_stores, batched_writes, donated_state, grad_setter, output_aliases,
                     unique_writes, unread_grads, write_targets)

_INEXACT = frozenset("fcV")
_EPOCH, _TRACE = _dispatch.EPOCH, _dispatch.TRACE  # (read on every call: one global load each)


def _outside_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this file: a warning issued anywhere on a
    compiled call's path points at the user's call."""
    f, level = sys._getframe(1), 1
    while f is not None and f.f_code.co_filename == __file__:
        f, level = f.f_back, level + 1
    return level


class RecompileWarning(UserWarning):
    """A compiled call recompiled more often than its ``cache_size_limit`` allows."""


def debug_level() -> int:
    try:
        return int(os.environ.get("TRACENN_DEBUG", "0") or 0)
    except ValueError:
        return 0


class Entry:
    """One executable: the graph it came from and everything a call needs, for one guard key."""

    def __init__(self, built, key, reason, state_tensors, grad, grad_params=None, mesh=None):
        self.built = built
        self.mesh = mesh
        self.fast = None        # the bound lean call (see fastcall), once a Compiled took it ...
        self.bind_fast = None   # ... from this, where the entry has one
        self.donate = []
        self.dropped = []
        self.key = key
        self.reason = reason
        self.calls = 0
        self.eager = built is None
        if self.eager:
            return
        g = built.graph
        self.graph = g
        self.captured = built.captured
        self.gens = built.generators
        self.draws = list(g.draws)
        self.state_tensors = state_tensors
        state_names = list(g.state)
        self.deferred = list(g.deferred)
        self.write_targets = write_targets(g, state_tensors, grad_params or {})
        run, self.write_index = unique_writes(built.run, g)
        self.batched_writes = batched_writes(self.write_targets, self.write_index)
        self.clears = [grad_setter(grad_params, name) for name, v in g.writes.items() if v is None]
        self.out_is_value = [hasattr(v, "symbolic") for v in g.outputs]
        outs = [v for v in g.outputs if hasattr(v, "symbolic")]
        self.float_out = [i for i, v in enumerate(outs) if v.dtype.kind in _INEXACT]
        self.n_out = len(outs)
        self.out_aliases = output_aliases(g, outs, self.out_is_value)
        # Off the CPU, the program also returns each generator's next counter (see rng_args).
        platform = _platform(state_tensors)
        self.device_counters = bool(g.rng) and platform in DEVICE_COUNTER_PLATFORMS
        # On the CPU, temporaries in blocks glibc's thread arenas keep between calls (_malloc)
        options = _malloc.program_options(_largest_bytes(g)) if platform == "cpu" else {}
        self.jit = functools.partial(jax.jit, compiler_options=options or None)
        if self.device_counters:
            run = _with_next_counters(run, g)
        self._keys: dict = {}      # id(generator) -> (its key, that key beside the program's arrays)
        self._counters: dict = {}  # id(generator) -> (its counter after the last call, as a device array)
        self.grad = grad
        if not grad:
            # Donation: the arrays of state tensors the program rewrites (parameters and optimizer
            # state of a training step, running statistics) are given to XLA to reuse, so a step
            # needs no second copy of them. See writes.donated_state for when one is copied first.
            # (Not 0-d state, such as step counts: a scalar's buffer is not worth reusing, and XLA
            # copies a donated input it still reads after the write.)
            written = set(g.writes)
            self.donate = [i for i, (n, t) in enumerate(zip(state_names, state_tensors))
                           if n in written and not hasattr(t, "trace_in") and t._base is None
                           and g.state[n].shape != ()]
            # A step that starts with zero_grad() replaces every .grad without reading it: the old
            # grads are dropped before the call (as zero_grad() drops them) and not passed, so
            # their memory is free for the new ones.
            unread = unread_grads(g)
            self.dropped = [i for i, n in enumerate(state_names) if n in unread]
            # State that reads another name's Value (graph.aliases) is not passed at all. (That the
            # arrays are still shared is a guard: api._shared_scalars, in the step's watch key.)
            aliased = [i for i, n in enumerate(state_names) if n in g.aliases]
            if self.donate or self.dropped or aliased:
                skip = set(self.donate) | set(self.dropped) | set(aliased)
                keep_idx = [i for i in range(len(state_tensors)) if i not in skip]
                donate_idx = self.donate
                n_state = len(state_tensors)

                def split_run(dstate, kstate, rng, ins):
                    state = [None] * n_state  # (a dropped grad stays None: nothing reads it)
                    for i, x in zip(donate_idx, dstate):
                        state[i] = x
                    for i, x in zip(keep_idx, kstate):
                        state[i] = x
                    return run(state, rng, ins)

                self.keep = keep_idx
                self.fwd_donating = self.jit(split_run, donate_argnums=0)
            self.fwd = self.jit(run)
            if mesh is None and not self.gens and not g.writes and not g.deferred and not self.out_aliases \
                    and all(t._base is None for t in state_tensors) \
                    and self.out_is_value == [True]:
                self.bind_fast = fastcall.plain(run, state_tensors, self.jit)
            return
        read = _reaching(g, [outs[i] for i in self.float_out])
        # only state and inputs a differentiable path joins to an output get a gradient (an unused
        # parameter's .grad stays None, as does an input read only by a comparison)
        self.grad_inputs = {i for i, v in enumerate(g.inputs) if v in read}
        saved = _saved_by_ops(g)
        self.saved_inputs = {i for i, v in enumerate(g.inputs) if v in saved}
        self.d_state = [i for i, t in enumerate(state_tensors)
                        if t._requires_grad and g.state[state_names[i]].dtype.kind in _INEXACT
                        and g.state[state_names[i]] in read]
        self.other_out = [i for i in range(self.n_out) if i not in set(self.float_out)]
        self.state_values = list(g.state.values())
        self.float_values = [outs[i] for i in self.float_out]
        self._run_fn = run
        self._plans = {}
        # Small programs recompute their forward inside the backward instead of returning
        # residuals: on XLA:CPU every output buffer of a call costs microseconds, more than
        # re-running a forward this small (see docs/performance.md, "Per-call, grad enabled").
        # (Not with hooks: their host callbacks would run again in the backward.)
        self.recompute = _flops(g) < gradcall.RECOMPUTE_FLOPS and not any(n.op.name == "hook" for n in g.nodes)
        if self.recompute and mesh is None and not self.gens and not g.writes and not g.deferred \
                and not self.clears and not self.out_aliases and self.out_is_value == [True] \
                and self.float_out == [0] and outs[0].shape != () and len(key) == 3 and len(key[2]) == 1 \
                and all(t._base is None and t._node is None for t in state_tensors) \
                and not _complex_boundary(g):  # (the fast path does not conjugate: see _plan)
            (_, dtype, rg), = key[2]
            d_in = (0,) if rg and dtype.kind in _INEXACT and 0 in self.grad_inputs else ()
            if self.d_state or d_in:
                self.bind_fast = fastcall.recomputing(run, state_tensors, self.d_state, d_in, 0 in self.saved_inputs,
                                                      self.jit)

    def _plan(self, d_in, n_in):
        """What a grad-enabled call with inputs ``d_in`` needing grad runs: the forward program,
        the index lists that split state and inputs, and the tape op whose backward pulls back."""
        run, float_out, other_out = self._run_fn, self.float_out, self.other_out
        d_state, n_state = self.d_state, len(self.state_tensors)

        def f(dstate, ndstate, rng, dins, ndins):
            state = _merge(dstate, ndstate, d_state, n_state)
            ins = _merge(dins, ndins, d_in, n_in)
            outs, writes = run(state, rng, ins)
            return [outs[i] for i in float_out], ([outs[i] for i in other_out], writes)

        if self.recompute:
            def fwd(*args):  # (the call keeps its arguments for the backward: see run)
                fouts, (oouts, writes) = f(*args)
                return fouts, oouts, writes, None

            def bwd(args, cts):  # the forward again, differentiated (its outputs are dropped)
                dstate, ndstate, rng, dins, ndins = args
                _, pull, _ = jax.vjp(lambda ds, di: f(ds, ndstate, rng, di, ndins), dstate, dins, has_aux=True)
                return conj_tree(pull(conj_tree(cts)))
        else:
            def fwd(dstate, ndstate, rng, dins, ndins):
                fouts, pull, (oouts, writes) = jax.vjp(
                    lambda ds, di: f(ds, ndstate, rng, di, ndins), dstate, dins, has_aux=True)
                return fouts, oouts, writes, pull

            def bwd(pull, cts):  # torch's cotangents are the conjugates of JAX's (real: a no-op)
                return conj_tree(pull(conj_tree(cts)))
        dset, dins_set = set(d_state), set(d_in)
        dep = _depends_on(self.graph, [self.state_values[i] for i in d_state] +
                          [self.graph.inputs[i] for i in d_in], self.float_values)
        plan = _GradPlan(self.jit(fwd), None, [i for i in range(n_state) if i not in dset],
                         [i for i in range(n_in) if i not in dins_set], dep,
                         [self.state_tensors[i] for i in d_state])
        plan.op = _CompiledOp(len(float_out), self.jit(bwd), plan)
        if len(float_out) == 1 and self.float_values[0].shape == () and dep[0] \
                and self.float_values[0].dtype.kind != "c":
            def fwd_vg(dstate, ndstate, rng, dins, ndins):
                def loss(ds, di):
                    fouts, aux = f(ds, ndstate, rng, di, ndins)
                    return fouts[0], aux
                (value, (oouts, writes)), grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(dstate, dins)
                return [value], oouts, writes, conj_tree(grads)  # torch's gradient of a complex parameter

            def scale(grads, g):
                return jax.tree_util.tree_map(lambda x: x * g.astype(x.dtype), grads)
            plan.fwd_vg = self.jit(fwd_vg)
            plan.op_vg = _ScaledGrads(1, jax.jit(scale), plan)
            roots = plan.state_roots

            def finished():  # the previous iteration's work: its backward (grads) and update (values)
                jax.block_until_ready([t._value for t in roots] +
                                      [t.grad._value for t in roots if t.grad is not None])
            plan.choice = gradcall.ModeChoice(finished)
        return plan

    # ---- running -------------------------------------------------------------------------------

    def rng_args(self):
        """[key, counter] per generator, as arrays on the program's device where possible: a host
        value passed to the program is copied to the device on every call (on a GPU, ~80 µs per
        scalar, see docs/performance.md). The key is placed once per key (a generator's key was
        made on the CPU); the counter is the device array this entry's previous call returned, while
        nothing else (an eager draw, a reseed, another program) has moved the generator's own
        counter, a Python int, since."""
        rng = []
        for gen in self.gens:
            key = gen._key
            cached = self._keys.get(id(gen))
            if cached is None or cached[0] is not key:
                cached = self._keys[id(gen)] = (key, self._beside_state(key))
            rng.append(cached[1])
            if not self.device_counters:
                rng.append(gen._counter)
                continue
            dev = self._counters.get(id(gen))
            if dev is None or dev[0] != gen._counter:
                dev = self._counters[id(gen)] = (gen._counter, self._beside_state(np.int64(gen._counter)))
            rng.append(dev[1])
        return rng

    def _beside_state(self, value):
        """``value`` as an array placed (and committed or not) like the program's first state array,
        as the program's own outputs are: so a host value and an array the program returned reach
        it as the same argument type, with no second compile."""
        for t in self.state_tensors:
            if isinstance(t, Tensor):
                return put_like(np.asarray(value), t._value)
        return jnp.asarray(value)

    def advance_rng(self, writes):
        """Move each generator's counter past this call's draws; keep the next counter the program
        returned (the tail of ``writes``) for the next call."""
        if not self.device_counters:
            for gen, n in zip(self.gens, self.draws):
                gen._counter += n
            return
        tail = writes[len(writes) - len(self.gens):]
        for gen, n, nxt in zip(self.gens, self.draws, tail):
            gen._counter += n
            self._counters[id(gen)] = (gen._counter, nxt)

    def run(self, in_tensors):
        st = self.state_tensors
        ins = [t._value if t._base is None else t._sync() for t in in_tensors]
        rng = self.rng_args() if self.gens else []
        mesh = self.mesh
        if mesh is not None:  # data parallel: the batch split over the mesh, state replicated
            ins = [mesh.shard(a) for a in ins]
        if not self.grad:
            if self.donate or self.dropped:  # (no list of all state arrays first: it would hold a reference)
                for i in self.dropped:
                    st[i].param.grad = None
                donated = donated_state(st, self.donate)
                kept = [st[i]._value if st[i]._base is None else st[i]._sync() for i in self.keep]
                if mesh is not None:
                    donated = [mesh.replicate(a) for a in donated]
                    kept = [mesh.replicate(a) for a in kept]
                outs, writes = self.fwd_donating(donated, kept, rng, ins)
                del donated
            else:
                state = [t._value if t._base is None else t._sync() for t in st]
                if mesh is not None:
                    state = [mesh.replicate(a) for a in state]
                outs, writes = self.fwd(state, rng, ins)
            if self.gens:
                self.advance_rng(writes)
            self._write_back(writes, in_tensors)
            return [Tensor._wrap(o) for o in outs]
        state = [t._value if t._base is None else t._sync() for t in st]
        if mesh is not None:
            state = [mesh.replicate(a) for a in state]
        d_in = tuple(i for i, t in enumerate(in_tensors)
                     if t._requires_grad and t._value.dtype.kind in _INEXACT and i in self.grad_inputs)
        plan = self._plans.get(d_in)
        if plan is None:
            plan = self._plans[d_in] = self._plan(d_in, len(in_tensors))
        ds = self.d_state
        args = ([state[i] for i in ds], [state[i] for i in plan.nd_state], rng,
                [ins[i] for i in d_in], [ins[i] for i in plan.nd_in])
        op = plan.op
        vg = plan.use_vg
        if vg and plan.choice is not None and plan.choice.pick is None:  # still timing the two modes
            vg = plan.choice.mode() != "pullback"
            if plan.choice.pick == "pullback":
                plan.fwd_vg, plan.use_vg, vg = None, False, False
        if vg:  # gradients computed with the value; the backward only scales them
            fouts, oouts, writes, pull = plan.fwd_vg(*args)
            op = plan.op_vg
        else:
            fouts, oouts, writes, pull = plan.fwd(*args)
            if pull is None:  # recompute mode: the backward runs the forward again on the same arrays
                pull = args
        if plan.use_vg:
            plan.unclaimed += 1
            if plan.unclaimed > 2:  # outputs made but not differentiated: back to the pullback
                plan.use_vg = False
                if plan.choice is not None:
                    plan.choice.pause()
        if self.gens:
            self.advance_rng(writes)
        if writes or self.clears or self.deferred:
            self._write_back(writes, in_tensors)
        outs = [None] * self.n_out
        for i, o in zip(self.other_out, oouts):
            outs[i] = Tensor._wrap(o)
        if not ds and not d_in:
            for i, o in zip(self.float_out, fouts):
                outs[i] = Tensor._wrap(o)
            return outs
        # The parameters' edges (their AccumulateGrad, made once per tensor) and saved-version
        # records, then the inputs' (their history changes from call to call).
        edges = plan.state_edges
        if edges is None:
            edges = tuple(_edge_of(st[i]) for i in ds)
            if all(st[i]._base is None and st[i]._node is None for i in ds):
                plan.state_edges = edges  # leaves stay leaves (torch forbids in-place on them)
        saved = [(t, t._ver, label) for t, label in zip(plan.state_roots, plan.labels)] if plan.state_edges \
            else [((t if t._base is None else t._base), t._version, label)
                  for t, label in zip(plan.state_roots, plan.labels)]
        if d_in:
            edges += tuple(_edge_of(in_tensors[i]) for i in d_in)
            for k, i in enumerate(d_in, len(ds)):
                if i not in self.saved_inputs:
                    continue
                t = in_tensors[i]
                root = t if t._base is None else t._base
                saved.append((root, root._version, f"input {k}"))
        node = _TapeNode(op, (), (pull,), fouts[0] if len(fouts) == 1 else tuple(fouts), edges,
                         (True,) * len(edges), saved)
        dep = plan.depends
        for k, (i, o) in enumerate(zip(self.float_out, fouts)):
            # an output no gradient reaches is a plain tensor, as in eager mode
            outs[i] = Tensor._wrap(o, True, node, k) if dep[k] else Tensor._wrap(o)
        return outs

    def _write_back(self, writes, in_tensors):
        batched = self.batched_writes
        if batched is not None:
            for i, t in batched[0]:
                t._value = writes[i]
                t._ver += 1
            wrap = Tensor._wrap
            for i, p in batched[1]:
                w = writes[i]
                p.grad = None if w is None else wrap(w)
        else:
            index = self.write_index or range(len(self.write_targets))
            for i, target in zip(index, self.write_targets):
                target(writes[i], in_tensors)
        for clear in self.clears:
            clear(None, in_tensors)
        for fn, a, k in self.deferred:  # scheduler.step() of a compiled training step
            fn(*a, **k)


# Where a compiled call's RNG counter stays on the device between calls. Not the CPU: there the
# extra output is a second independent computation, which XLA:CPU hands to another thread (a
# dropout Linear(16,16) call went from 9 to 30 µs), while a host number costs ~1 µs to pass.
DEVICE_COUNTER_PLATFORMS = frozenset(("gpu", "cuda", "rocm", "tpu"))


def _platform(state_tensors) -> str:
    """The platform of the program's first state array (the CPU when it has none)."""
    for t in state_tensors:
        if isinstance(t, Tensor):
            return next(iter(t._value.sharding.device_set)).platform
    return "cpu"


def _with_next_counters(run, g):
    """``run`` returning, after its writes, each generator's counter advanced past the call's draws
    (so the next call passes that device array instead of a host number)."""
    def run_rng(state, rng, inputs):
        outs, writes = run(state, rng, inputs)
        return outs, list(writes) + [jnp.asarray(rng[2 * i + 1], jnp.int64) + n for i, n in enumerate(g.draws)]
    return run_rng


class Compiled:
    """A compiled module or function (see :func:`tracenn.compile`).

    Calls run one jitted program per guard key; the model's parameters, buffers, modes and hooks
    stay on the model, so everything else (``parameters()``, ``state_dict()``, ``train()``...)
    is the model's own, reached through this object.
    """

    def __init__(self, target, build, *, source, watch=None, fallback=None, check=False,
                 cache_size_limit=8, mesh=None, values=None):
        self.__dict__["_target"] = target
        self._build = build
        self._values = values          # the plain values the structure key guards (api.ValueGuards) ...
        self._volatile = set()         # ... and those the traced code itself changes: not guarded
        self._mesh = mesh              # a DataParallelMesh (tracenn.distributed), or None
        self._source = source          # () -> (name, mode, modules, state dict, structure key)
        self._watch = watch            # () -> what a function reads from closures/globals, by identity
        self._watched = None
        self._fallback = fallback
        self._check = check
        self.cache_size_limit = cache_size_limit
        self._epoch = -1
        self._skey = None
        self._skey_ids: dict = {}
        self._entries: dict = {}
        self._last = None
        self._last_key = None
        self._log: list[str] = []
        self._warned_fallback = False
        self._warned_limit = False
        self._extra = {}
        self._fast_entries: dict = {}  # a module's one-tensor calls by input array type (_one_tensor_call)
        self._fast_watched: dict = {}  # a function's

    # ---- the call path -------------------------------------------------------------------------

    def __call__(self, *args, **kwargs):
        # The common call — one tensor, a module (a function's calls are kept apart: each call
        # re-reads its closures first), no trace running — is one lookup of a call made for its
        # input type and the current epoch (see _one_tensor_call). Every Python step here costs
        # on each call: keep it this short.
        if not kwargs and len(args) == 1:
            a = args[0]
            if type(a) is Tensor:
                call = self._fast_entries.get((_EPOCH[0], GRAD.enabled, a._value.aval, a._requires_grad))
                if call is not None and _TRACE[0] is None:
                    return call(a)
        return self._call(args, kwargs)

    def _call(self, args, kwargs):
        if _EPOCH[0] != self._epoch or (self._watch is not None and self._watch() != self._watched):
            self._refresh()
        if _TRACE[0] is not None:  # called inside another compiled trace: inline it
            return self._target(*args, **kwargs)
        if not kwargs:
            for a in args:
                if type(a) is not Tensor:
                    break
            else:
                if len(args) == 1:
                    return self._one_tensor_call(args[0])
                key = (self._sid, GRAD.enabled,
                       tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in args))
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._miss(key, args, kwargs, list(args), None)
                return self._run(entry, list(args), args, kwargs)
        leaves, tree = flatten((args, kwargs))
        key = (self._sid, GRAD.enabled,
               tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in leaves), signature(tree))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._miss(key, args, kwargs, leaves, tree)
        return self._run(entry, leaves, args, kwargs)

    def _one_tensor_call(self, a):
        """Call with the one tensor ``a``, keeping the call for its array type in
        ``_fast_entries`` (keyed by the epoch of the structure key it was found under: _refresh
        empties the table) so the next such call skips everything else. The call is the entry's
        lean one (fastcall) where it has one, else ``_run``. None are kept while a profile
        records: its calls go through _run, which times them."""
        fkey = (self._epoch, GRAD.enabled, a._value.aval, a._requires_grad)
        table = self._fast_entries if self._watch is None else self._fast_watched
        call = table.get(fkey)
        if call is None:
            key = (self._sid, GRAD.enabled, ((a._value.shape, a._value.dtype, a._requires_grad),))
            entry = self._entries.get(key)
            if entry is None:
                entry = self._miss(key, (a,), {}, [a], LEAF)
            if entry.fast is None and entry.bind_fast is not None:
                entry.fast = entry.bind_fast(entry, self.__dict__)
            if entry.fast is not None and _PROFILER[0] is None:
                call = entry.fast
            else:
                run = self._run

                def call(t):
                    return run(entry, [t], (t,), {})
            if _PROFILER[0] is None:
                table[fkey] = call
        return call(a)

    def _run(self, entry, leaves, args, kwargs):
        d = self.__dict__  # (not through __setattr__: every call passes here)
        d["_last"], d["_last_key"] = entry, entry.key  # cm.graph and reasons follow the latest call
        entry.calls += 1
        if entry.eager:
            return self._target(*args, **kwargs)
        if self._check and entry.calls <= self._check_calls:
            return self._checked(entry, leaves, args, kwargs)
        try:
            if _PROFILER[0] is None:
                outs = entry.run(leaves)
            else:
                outs = _PROFILER[0].time(f"tracenn.compile: {self._name}", lambda *ls: entry.run(list(ls)), leaves,
                                         "compiled")
        except Exception as e:
            try:
                reraise_callback_error(e)
            except CompileError as err:
                if not getattr(err, "eager_instead", False):
                    raise
                return self._eager_instead(entry, err, args, kwargs)
            raise
        if entry.out_aliases:
            alias_outputs(entry, outs, leaves)
        g = entry.graph
        if g.stores:
            apply_stores(g, entry.out_is_value, outs)
        if g.out_tree is LEAF:
            return outs[0]
        it = iter(outs)
        return unflatten(g.out_tree, [next(it) if is_v else v for is_v, v in zip(entry.out_is_value, g.outputs)])

    def _eager_instead(self, entry, err, args, kwargs):
        """A hook replaced a value inside a grad-enabled program: its derivative cannot be in the
        program, so this entry runs eagerly from now on (the call is re-run: the program's writes,
        RNG draws and donations happen only after a successful call, so nothing is lost)."""
        entry.eager, entry.fast, entry.bind_fast = True, None, None
        self._fast_entries.clear()  # (they may hold this entry's lean call)
        self._fast_watched.clear()
        warnings.warn(f"tracenn.compile({self._name}): {err.what}; its derivative cannot be part of the "
                      "compiled program, so grad-enabled calls with these inputs now run eagerly "
                      "(this call ran the hook twice). Under tracenn.no_grad() the compiled program "
                      "applies the replacement.", stacklevel=_outside_stacklevel())
        self._log.append(f"entry {self._index(entry)} runs eagerly from call {entry.calls}: {err.what}")
        return self._target(*args, **kwargs)

    _check_calls = 1

    def _checked(self, entry, leaves, args, kwargs):
        """check=True: run eager and compiled on the same state and compare (see tracenn.compile).
        Not for a training step: running it eagerly first would step the parameters, gradients
        and optimizer state (and it ran under no_grad, where its backward() fails); the step then
        runs compiled, unchecked, with a one-time warning that says how to check it."""
        if self._extra:
            if not getattr(self, "_warned_step_check", False):
                self.__dict__["_warned_step_check"] = True
                warnings.warn(f"tracenn.compile({self._name}, check=True): a training step is not checked "
                              "against eager mode (running it twice would step the model twice); compile the "
                              "model or the loss function with check=True to check the forward and its "
                              "gradients", stacklevel=_outside_stacklevel())
                self._log.append("check: skipped (a training step)")
            report = None
        else:
            report = entry.built.check(self, entry, leaves, args, kwargs)
            if report:
                warnings.warn(report, stacklevel=_outside_stacklevel())
            self._log.append(report or f"check: call {entry.calls} of entry {self._index(entry)} matched eager")
        outs = entry.run(leaves)
        if entry.out_aliases:
            alias_outputs(entry, outs, leaves)
        g = entry.graph
        if g.stores and self._extra:  # (a checked call's eager run did them already)
            apply_stores(g, entry.out_is_value, outs)
        it = iter(outs)
        return unflatten(g.out_tree, [next(it) if is_v else v for is_v, v in zip(entry.out_is_value, g.outputs)])

    # ---- guards and recompiles ----------------------------------------------------------------

    def _refresh(self):
        name, mode, modules, state, skey, extra = self._source()
        self._name, self._mode, self._modules, self._state, self._extra = name, mode, modules, state, extra
        ckey = skey if self._values is None else self._values.canon(skey, self._volatile)
        sid = self._skey_ids.get(ckey)
        if sid is None:
            sid = self._skey_ids[ckey] = len(self._skey_ids)
        self._skeys_by_id = getattr(self, "_skeys_by_id", {})
        self._skeys_by_id[sid] = skey
        self._sid = sid
        self._epoch = _dispatch.EPOCH[0]
        if self._watch is not None:
            self._watched = self._watch()
        self._fast_entries.clear()  # (keyed by the previous epoch, or calls for the previous closures)
        self._fast_watched.clear()

    def _miss(self, key, args, kwargs, leaves, tree):
        reason = self._reason(key)
        n = len(self._entries)
        if n >= self.cache_size_limit:
            # As torch.compile past its limit: this and later new signatures run eagerly (the
            # programs compiled so far stay in use), with one warning; fullgraph=True compiles on.
            eager = self._fallback != "never"
            if not eager or not self._warned_limit:
                self._warned_limit = True
                then = ("this and later new input signatures run eagerly (the programs compiled so far are "
                        "still used)") if eager else "compiling it anyway (fullgraph=True)"
                warnings.warn(
                    f"tracenn.compile({self._name}): recompiled {n + 1} times, past cache_size_limit="
                    f"{self.cache_size_limit} (last reason: {reason}): {then}. Every new input shape, dtype "
                    "or module change compiles a new program; pad inputs to a few fixed shapes, or raise "
                    "cache_size_limit. cm.explain() lists the reasons.", RecompileWarning,
                    stacklevel=_outside_stacklevel())
            if eager:
                return self._keep(Entry(None, key, reason + " (runs eagerly: past cache_size_limit)",
                                        list(self._state.values()), False), key, reason)
        step = bool(self._extra)
        before = None if self._values is None else self._values.snapshot(self._modules)
        built = None
        try:
            try:
                built = self._build(self._target, args, kwargs, state=self._state, modules=self._modules,
                                    name=self._name, mode=self._mode, **self._extra)
            finally:
                if before is not None:
                    self._note_changes(before, built)
        except (DataDependentError, UnsupportedError) as e:
            if self._fallback != "eager" and not isinstance(e, UnsupportedError) \
                    or self._fallback == "never" and not getattr(e, "quiet", False):  # (fullgraph=True)
                raise
            if getattr(e, "quiet", False):  # planned (GradScaler: an optimizer's first step)
                pass
            elif not self._warned_fallback:
                how = "fallback='eager'" if isinstance(e, DataDependentError) else "unsupported in a program"
                warnings.warn(f"tracenn.compile({how}): running {self._name} eagerly for this "
                              f"input signature. {e}", stacklevel=_outside_stacklevel())
                self._warned_fallback = True
            built = None
            reason += f" (runs eagerly: {e})" if getattr(e, "quiet", False) else f" (runs eagerly: {type(e).__name__})"
        entry = Entry(built, key, reason, list(self._state.values()), key[1] and built is not None and not step,
                      self._extra.get("grad_params"), self._mesh)
        if entry.eager or self._check:
            entry.bind_fast = None
        self._keep(entry, key, reason)
        if built is not None and debug_level() >= 3:
            print(self._stablehlo(entry, leaves))
        return entry

    def _keep(self, entry, key, reason):
        self._entries[key] = entry
        self._log.append(f"compile {len(self._entries)}: {reason}")
        self._last, self._last_key = entry, key
        return entry

    def _note_changes(self, before, built=None):
        """Plain values the trace itself changed (``self.calls += 1`` in a forward) stop being
        guarded: guarding them would compile anew at every call. Structure keys that differ only in
        them now name one program."""
        changed = self._values.changed(before, self._modules) - self._volatile
        if built is not None:  # attributes the call sets (a store) change after every call too
            paths = {id(m): p for p, m in self._modules}
            changed |= {(paths.get(id(s.target)), s.key) for s in built.graph.stores if s.kind == "attr"}
            changed -= self._volatile
        if changed:
            self._volatile |= changed
            ids = {}
            for sid, skey in sorted(self._skeys_by_id.items()):
                ids.setdefault(self._values.canon(skey, self._volatile), sid)
            self._skey_ids = ids

    def _reason(self, key) -> str:
        if not self._entries:
            return "first call"
        prev = self._last_key
        if prev is None:
            return "first call"
        return describe_change(prev, key, self._skeys_by_id, self._input_names())

    def _input_names(self):
        if self._last is not None and not self._last.eager:
            return [v.name for v in self._last.graph.inputs]
        return []

    def _index(self, entry):
        return list(self._entries.values()).index(entry) + 1

    # ---- what users look at ---------------------------------------------------------------------

    @property
    def graph(self):
        """The graph that runs for the latest call (after passes); None before the first call."""
        e = self._last
        return None if e is None or e.eager else e.graph

    @property
    def captured_graph(self):
        """The graph as traced, before passes."""
        e = self._last
        return None if e is None or e.eager else e.captured

    def explain(self) -> str:
        """The guards, the cached programs and why each was compiled, in plain words."""
        if _dispatch.EPOCH[0] != self._epoch:
            self._refresh()
        lines = [f"tracenn.compile({self._name}): {len(self._entries)} cached program(s), "
                 f"cache_size_limit={self.cache_size_limit}"]
        lines.append("guards (a change in any of them compiles a new program):")
        lines.append("  - each tensor input's shape, dtype and requires_grad; the structure of the "
                     "arguments and the value of every non-tensor argument")
        lines.append("  - grad mode (enabled or no_grad)")
        if self._modules:
            lines.append(f"  - module structure: {len(self._modules)} module(s), their classes, "
                         "train/eval flags and hooks")
            lines.append(f"  - state identity, shape, dtype, requires_grad and gradient hooks: {len(self._state)} "
                         "parameter(s)/buffer(s)")
        lines.append("programs:")
        for i, e in enumerate(self._entries.values(), 1):
            _, grad, ins = e.key[:3]
            shapes = ", ".join(f"{_type(s, d)}{' (requires_grad)' if r else ''}" for s, d, r in ins)
            how = "eager fallback" if e.eager else (f"{len(e.graph.nodes)} nodes" + (
                ", with backward" if e.grad else ""))
            for plan in getattr(e, "_plans", {}).values():
                if plan.choice is not None and plan.choice.pick is not None:
                    how += f"; scalar output: {plan.choice.describe()}"
            lines.append(f"  {i}. inputs ({shapes}); grad {'on' if grad else 'off'}; {how}; "
                         f"{e.calls} call(s) — compiled because: {e.reason}")
        if self._log:
            lines.append("log:")
            lines += [f"  {x}" for x in self._log[-20:]]
        return "\n".join(lines)

    def lower(self, *args, **kwargs):
        """The ``jax.stages.Lowered`` program for these arguments (``.as_text()`` is StableHLO)."""
        if _dispatch.EPOCH[0] != self._epoch:
            self._refresh()
        with no_grad():
            leaves, tree = flatten((args, kwargs))
            key = (self._sid, False, tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in leaves),
                   signature(tree))
            entry = self._entries.get(key) or self._miss(key, args, kwargs, leaves, tree)
        if entry.eager:
            raise RuntimeError("this call runs eagerly (fallback='eager'): there is no program to lower")
        return self._lowered(entry, leaves)

    def _lowered(self, entry, leaves):
        state = [t._value for t in entry.state_tensors]
        ins = [t._value for t in leaves]
        fwd = entry.fwd if not entry.grad else entry.jit(entry.built.run)
        return fwd.lower(state, entry.rng_args(), ins)

    def _stablehlo(self, entry, leaves) -> str:
        return self._lowered(entry, leaves).as_text()

    # ---- behaving like the module ---------------------------------------------------------------

    def __getattr__(self, name):
        target = self.__dict__["_target"]
        attr = getattr(target, name)
        if callable(attr) and not isinstance(attr, type) and getattr(attr, "__self__", None) is target:
            def method(*a, **k):
                r = attr(*a, **k)
                return self if r is target else r
            method.__name__ = name
            method.__doc__ = attr.__doc__
            return method
        return attr

    def __setattr__(self, name, value):
        if name in Compiled.__dict__ or name.startswith("_") or name == "cache_size_limit" \
                or not hasattr(self.__dict__["_target"], "__dict__"):
            object.__setattr__(self, name, value)
        else:
            setattr(self.__dict__["_target"], name, value)

    def __repr__(self):
        return f"Compiled({self._target!r})"

    def __deepcopy__(self, memo):
        """A compiled copy of a deep copy of the model (``copy.deepcopy(model)`` of a model with a
        compiled child); its programs are compiled anew. A function is not copied."""
        target = self.__dict__["_target"]
        if not hasattr(target, "_modules") or "_recompile" not in self.__dict__:
            return self
        return self.__dict__["_recompile"](copy.deepcopy(target, memo))

    def __dir__(self):
        return sorted(set(dir(type(self))) | set(dir(self.__dict__["_target"])))
