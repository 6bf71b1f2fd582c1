"""One compiled program of a :class:`~tracenn.runtime.compiled.Compiled` call and how it runs:
the jitted program (with donation, or its gradient plans when gradients are recorded), its RNG
keys and counters, the state it writes back, and the outputs it wraps as Tensors. ``Compiled``
keeps one per guard key."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import _malloc
from ..autograd.engine import _edge_of
from ..autograd.graph import Node as _TapeNode
from ..device import put_like
from ..tensor import Tensor
from ..utils._pytree import LEAF
from . import fastcall, gradcall
from .gradcall import (_CompiledOp, _complex_boundary, _depends_on, _flops, _GradPlan, _largest_bytes, _merge,
                       _reaching, _saved_by_ops, _ScaledGrads, conj_tree)
from .flatgrads import FlatGrads
from .flatstate import FlatState, array_of
from .writes import (batched_writer, batched_writes, donated_state, grad_setter, output_aliases, plain_donated,
                     unique_writes, unread_grads, write_positions, write_targets)

_INEXACT = frozenset("fcV")
_OFF_CPU = frozenset(("gpu", "cuda", "rocm", "tpu"))
# Where a step that replaces its .grad unread writes the new grads into the old grads' arrays
# (see Entry). Not on the CPU: XLA:CPU ran the MNIST CNN step 1.4-1.8x slower with its grads
# aliased so (less of it in parallel). benchmarks/gpu_pipeline.py measures it on a GPU.
RECYCLE_GRAD_PLATFORMS = _OFF_CPU
# Where those grads leave the program as one flat array (flatgrads.py). Not on the CPU: XLA:CPU
# copies each into the concatenation (the MLP step took 1.8x as long).
FLAT_GRAD_PLATFORMS = _OFF_CPU
# Where the state a step donates enters and leaves its program as one flat array (flatstate.py).
# Not on the CPU, for the reason above.
FLAT_STATE_PLATFORMS = _OFF_CPU


class Entry:
    """One executable: the graph it came from and everything a call needs, for one guard key."""

    def __init__(self, built, key, reason, state_tensors, grad, grad_params=None, mesh=None):
        self.built = built
        self.mesh = mesh
        self.fast = None        # the bound lean call (see fastcall), once a Compiled took it ...
        self.bind_fast = None   # ... from this, where the entry has one
        self.donate = []
        self.dropped = []
        self.donate_all = []
        self.recycled = frozenset()
        self.released = []
        self.flat = None
        self.fstate = None          # the donated state as one flat array, off the CPU (flatstate.py)
        self.donate_rest = []       # the donated state indices not in it
        self.write_batched = None   # the batched writes as one function (writes.batched_writer)
        self.donated_plain = None   # the donated state tensors, where writes.plain_donated may take them
        self.key = key
        self.reason = reason
        self.calls = 0
        self.eager = built is None
        self.past_limit = False  # an eager entry made past cache_size_limit (Compiled keeps the latest few)
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
        self.out_aliases = output_aliases(g, self.out_is_value)
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
            # grads are dropped before the call (as zero_grad() drops them), and their arrays
            # donated for the new grads (below).
            unread = unread_grads(g)
            self.dropped = [i for i, n in enumerate(state_names) if n in unread]
            recycle = self.dropped if platform in RECYCLE_GRAD_PLATFORMS else []
            pos = write_positions(g, self.write_index)
            # One donated buffer per written array: state written with another name's Value (an
            # AveragedModel's first update copies the parameters) is passed, not donated (JAX
            # would warn that the second buffer is not usable).
            self.donate, recycle = _one_per_write(self.donate, pos, state_names), \
                _one_per_write(recycle, pos, state_names, self.donate)
            donated_grads = set(recycle)
            # dropped, not donated: each as its parameter's instance dict, where .grad lives (a
            # Parameter's property and a plain tensor's attribute both keep it there), for a
            # plain item write per call
            self.released = [state_tensors[i].param.__dict__ for i in self.dropped if i not in donated_grads]
            # Off the CPU those grads leave the program as one flat array (flatgrads.py).
            self.flat = FlatGrads.plan(g, state_names, state_tensors, recycle, pos) \
                if mesh is None and platform in FLAT_GRAD_PLATFORMS else None
            if self.flat is not None:
                self.flat_at = len(set(pos.values()))  # after the written state, before any RNG counters
                run = self.flat.wrap(run, self.flat_at)
                recycle = []
                if self.batched_writes is not None:
                    flat = set(map(id, self.flat.params))
                    self.batched_writes = (self.batched_writes[0],
                                           [(i, p) for i, p in self.batched_writes[1] if id(p) not in flat])
            # State that reads another name's Value (graph.aliases) is not passed at all. (That the
            # arrays are still shared is a guard: api._shared_scalars, in the step's watch key.)
            aliased = [i for i, n in enumerate(state_names) if n in g.aliases]
            if self.donate or self.dropped or aliased:
                skip = set(self.donate) | set(self.dropped) | set(aliased)
                keep_idx = [i for i in range(len(state_tensors)) if i not in skip]
                # The dropped grads' arrays are donated too, unread: the new grads are written into
                # them, so every output of a step lands where its input was (on a GPU, XLA then
                # replays its CUDA graph as recorded; see docs/performance.md). Donated arrays go
                # in the order of the writes that take them: JAX pairs a donated input with the
                # first output of its shape and dtype still unpaired.
                self.donate_all = sorted(self.donate + recycle, key=lambda i: pos[state_names[i]])
                self.recycled = frozenset(recycle)
                donate_idx = self.donate_all
                n_state = len(state_tensors)

                def split_run(dstate, kstate, rng, ins):
                    state = [None] * n_state
                    for i, x in zip(donate_idx, dstate):
                        state[i] = x
                    for i, x in zip(keep_idx, kstate):
                        state[i] = x
                    return run(state, rng, ins)

                self.keep = keep_idx
                self.donate_rest = donate_idx
                if mesh is None and not recycle and platform in FLAT_STATE_PLATFORMS:
                    split_run = self._flat_state(split_run, pos, state_names)
                if not recycle and all(isinstance(state_tensors[i], Tensor) for i in self.donate_rest):
                    self.donated_plain = tuple(state_tensors[i] for i in self.donate_rest)
                # (keep_unused: JAX would otherwise prune the unread grads, and their donation with them;
                # the old flat array is the last donated argument: zip above leaves it out)
                self.fwd_donating = self.jit(split_run, donate_argnums=0,
                                             keep_unused=bool(recycle) or self.flat is not None)
            self.fwd = self.jit(run)
            if mesh is None and not self.gens and not g.writes and not g.deferred and not self.out_aliases \
                    and all(t._base is None for t in state_tensors) \
                    and self.out_is_value == [True] and g.out_tree is LEAF:  # (not `(out, None)`)
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
                and not self.clears and not self.out_aliases and self.out_is_value == [True] and g.out_tree is LEAF \
                and self.float_out == [0] and outs[0].shape != () and len(key) == 3 and len(key[2]) == 1 \
                and all(t._base is None and t._node is None for t in state_tensors) \
                and not _complex_boundary(g):  # (the fast path does not conjugate: see _plan)
            (_, dtype, rg), = key[2]
            d_in = (0,) if rg and dtype.kind in _INEXACT and 0 in self.grad_inputs else ()
            if self.d_state or d_in:
                self.bind_fast = fastcall.recomputing(run, state_tensors, self.d_state, d_in, 0 in self.saved_inputs,
                                                      self.jit)

    def _flat_state(self, split_run, pos, state_names):
        """``split_run`` taking the donated state of one dtype as one flat array, where a
        :class:`FlatState` can hold it (see flatstate.py); else ``split_run`` itself."""
        if self.batched_writes is None:
            return split_run
        fs = FlatState.plan(self.state_tensors, self.donate_all,
                            {i: pos[state_names[i]] for i in self.donate_all})
        if fs is None:
            return split_run
        states, grads = self.batched_writes
        mine = set(map(id, fs.members))
        rest = [(i, t) for i, t in states if id(t) not in mine]
        if set(fs.positions) & ({i for i, _ in rest} | {i for i, _ in grads}):  # (a Value written twice)
            return split_run
        self.fstate, self.batched_writes = fs, (rest, grads)
        members = set(fs.index)
        self.donate_rest = [i for i in self.donate_all if i not in members]
        return fs.wrap(split_run, self.donate_all)

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
                and self.float_values[0].dtype.kind != "c" \
                and not any(n.op.name == "backward_hook" for n in self.graph.nodes):
            # (value-and-grad computes the gradients during the call: a module's backward hooks
            # must fire in backward(), with its cotangent)
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
                return put_like(np.asarray(value), array_of(t))
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
                for d in self.released:
                    d["grad"] = None
                donated = None if self.donated_plain is None else plain_donated(self.donated_plain)
                if donated is None:
                    donated = donated_state(st, self.donate_rest, self.recycled)
                if self.fstate is not None:
                    donated.insert(0, self.fstate.take())
                if self.flat is not None:
                    donated.append(self.flat.take_old())
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
        write = self.write_batched
        if write is None and self.batched_writes is not None:  # (made at the first call: the batch is final)
            write = self.write_batched = batched_writer(self.batched_writes)
        if write is not None:
            write(writes)
        else:
            index = self.write_index or range(len(self.write_targets))
            for i, target in zip(index, self.write_targets):
                target(writes[i], in_tensors)
        if self.fstate is not None:
            self.fstate.write_back(writes[self.fstate.at])
        if self.flat is not None:
            self.flat.write_back(writes[self.flat_at])
        for clear in self.clears:
            clear(None, in_tensors)
        for fn, a, k in self.deferred:  # scheduler.step() of a compiled training step
            fn(*a, **k)


# Where a compiled call's RNG counter stays on the device between calls. Not the CPU: there the
# extra output is a second independent computation, which XLA:CPU hands to another thread (a
# dropout Linear(16,16) call went from 9 to 30 µs), while a host number costs ~1 µs to pass.
DEVICE_COUNTER_PLATFORMS = _OFF_CPU


def _one_per_write(idx, pos, names, taken=()) -> list:
    """The state indices ``idx`` less those whose write position (``pos``, by name) an earlier one,
    or one of ``taken``, already has."""
    seen = {pos[names[i]] for i in taken}
    out = []
    for i in idx:
        p = pos[names[i]]
        if p not in seen:
            seen.add(p)
            out.append(i)
    return out


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
