"""A compiled call: guards, the executable cache, state sync and the autograd bridge.

:class:`Compiled` is what ``tracenn.compile(model_or_fn)`` returns. A call:

1. re-reads the module tree only when the global epoch moved (``_dispatch.EPOCH``: bumped by
   structure changes, ``train()/eval()``, hooks, ``requires_grad_``, ``.data =``);
2. builds the guard key from the inputs' shapes, dtypes and ``requires_grad``, the non-tensor
   arguments, the structure key and grad mode (and, with several devices in use, the inputs' and
   the parameters' devices: runtime/device_guard.py), and looks up the executable;
3. on a miss, asks the compiler (``build``, passed in: the runtime never imports the tracer) for
   a program, recording the reason in plain words;
4. calls the jitted program with the parameter and buffer arrays, writes new buffer values and
   the RNG counter back onto the Python objects, and wraps the outputs as Tensors. When gradients
   are needed the program is ``jax.vjp`` of the graph, and the outputs' ``grad_fn`` runs its
   jitted pullback, so ``loss.backward()`` fills ``param.grad`` as in eager mode.
"""
from __future__ import annotations

import copy
import os
import random
import sys
import warnings
import weakref

import numpy as np

from .. import _dispatch
from ..autograd.graph import PROFILER as _PROFILER
from ..autograd.grad_mode import GRAD, no_grad
from ..errors import CompileError, DataDependentError, UnsupportedError
from ..tensor import Tensor
from ..utils._pytree import LEAF, flatten, signature, unflatten
from ..device import SEVERAL as _SEVERAL
from .device_guard import check_devices, device_change, device_name, device_of, keyed_sid, skeys_with_devices, \
    state_device
from .entry import Entry
from .fastcall import reraise_callback_error
from .floats import FloatArgs, float_paths
from .reasons import _type, describe_change, explain_header
from .writes import alias_outputs, apply_stores

_EPOCH, _TRACE = _dispatch.EPOCH, _dispatch.TRACE  # (read on every call: one global load each)


def _avals(leaves) -> tuple:
    """The guard key's part for the tensor inputs: each one's shape, dtype and requires_grad."""
    return tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in leaves)


def _outside_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside this file: a warning issued anywhere on a
    compiled call's path points at the user's call."""
    f, level = sys._getframe(1), 1
    while f is not None and f.f_code.co_filename == __file__:
        f, level = f.f_back, level + 1
    return level


def _replay_mode_changes(built, flags) -> None:
    """``model.train()`` / ``model.eval()`` inside a compiled function: the trace ran them, and the
    program runs in the mode they set, but a later call runs only the program; so after every call
    the runtime sets the modules' ``training`` flags the trace left changed (as torch.compile
    replays such side effects), and code after the call sees the mode it set."""
    changed = tuple((m, m.training) for m, was in flags if m.training != was)
    if built is not None and changed:
        built.graph.deferred.append((_set_training, (changed,), {}))


def _set_training(changed) -> None:
    for m, flag in changed:
        if m.training is not flag:
            m.training = flag  # (moves the epoch, as Module.train does)


def _host_rng_states():
    """Python's and NumPy's global random states (read only when a call traces)."""
    return random.getstate(), np.random.get_state()


def _restore_host_rng(before):
    """A trace that drew from ``random`` or ``numpy.random`` (``lam = np.random.beta(a, a)`` for
    mixup in a compiled step) would bake the numbers it drew into the program, the same at every
    call: put the states back, so the eager run that replaces it draws what the trace drew, and
    say which one was drawn from (None if neither)."""
    py, (alg, keys, *rest) = before
    now_py, (now_alg, now_keys, *now_rest) = _host_rng_states()
    if py == now_py and alg == now_alg and rest == now_rest and np.array_equal(keys, now_keys):
        return None
    random.setstate(py)
    np.random.set_state(before[1])
    return "Python's random module" if py != now_py else "numpy.random"


# Past cache_size_limit each new signature runs eagerly; the latest few are kept (so alternating
# between them looks nothing up again), not every one: a growing KV cache makes one per token.
_PAST_LIMIT_KEPT = 8
_LOG_KEPT = 200  # explain() prints the last 20 lines


_REBOUND = (" (the call changes it itself, and a program cannot repeat a Python side effect: each new value is "
            "traced again. Keep a counter in a buffer tensor, or outside the compiled call)")


def _limit_advice(reason: str) -> str:
    """What to do about recompiles past the cache size limit, for the latest one's ``reason``."""
    if "non-tensor argument" in reason:
        return ("Every new value of a non-tensor argument compiles a new program: a number or a NumPy array the "
                "code uses as data (a timestep, a step count, a table of values) is a program input when passed "
                "as a tensor, tracenn.tensor(value); an int that sets a size stays a constant, as an XLA program "
                "fixes shapes, so keep to a few sizes or raise cache_size_limit.")
    return ("Every new input shape, dtype or module change compiles a new program; pad inputs to a few fixed "
            "shapes, or raise cache_size_limit.")


class _NeedsNumber(Exception):
    """A trace with float arguments as inputs failed (``error``): guard them by value instead."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def _first_line(e) -> str:
    """``Type: message`` of ``e``, its first line, shortened (a DataDependentError's says where)."""
    text = str(e).strip().splitlines()
    line = text[0] if text else ""
    if isinstance(e, DataDependentError) and ") (" in line:  # (its location, then the advice)
        line = line[:line.index(") (") + 1]
    return f"{type(e).__name__}: {line if len(line) <= 200 else line[:197] + '...'}"


class RecompileWarning(UserWarning):
    """A compiled call recompiled more often than its ``cache_size_limit`` allows."""


_LIVE: "weakref.WeakSet[Compiled]" = weakref.WeakSet()  # every compiled call, for forget_all


def forget_all() -> None:
    """Drop the programs of every compiled call (``tracenn.compiler.reset()``)."""
    for cm in list(_LIVE):
        cm._forget()


def debug_level() -> int:
    try:
        return int(os.environ.get("TRACENN_DEBUG", "0") or 0)
    except ValueError:
        return 0


class Compiled:
    """A compiled module or function (see :func:`tracenn.compile`).

    Calls run one jitted program per guard key; the model's parameters, buffers, modes and hooks
    stay on the model, so everything else (``parameters()``, ``state_dict()``, ``train()``...)
    is the model's own, reached through this object. A module's compiled object is of the subclass
    :class:`~tracenn.runtime.module_wrapper.CompiledModule`, an ``nn.Module``; a function's is not.
    """

    def __new__(cls, target, *args, **kwargs):
        # A module's compiled object is an nn.Module (runtime/module_wrapper.py); a function's is not
        # (torch.compile(fn) is a function).
        if cls is Compiled:
            from .module_wrapper import CompiledModule, Module
            if isinstance(target, Module):
                cls = CompiledModule
        return object.__new__(cls)

    def __init__(self, target, build, *, source, watch=None, fallback=None, check=False,
                 cache_size_limit=8, mesh=None, values=None, bind_modules=None, dynamic=None):
        self.__dict__["_target"] = target
        self._build = build
        self._values = values          # the plain values the structure key guards (api.ValueGuards) ...
        self._volatile = set()         # ... and those the traced code itself changes: not guarded
        self._rebound = set()          # (labels of the values the traced code changes that stay guarded)
        self._mesh = mesh              # a DataParallelMesh (tracenn.distributed), or None
        self._source = source          # () -> (name, mode, modules, state dict, structure key)
        self._step_watch = watch       # () -> what a function reads from closures/globals, by identity
        self._watch = watch            # ... and the option objects' attributes (_refresh; None: neither)
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
        self._dropped = 0              # signatures past cache_size_limit no longer kept (_PAST_LIMIT_KEPT)
        self._dropped_calls = 0        # ... and their calls (they ran eagerly)
        self._warned_fallback = False
        self._warned_limit = False
        self._extra = {}
        self._fast_entries: dict = {}  # a module's one-tensor calls by input array type (_one_tensor_call)
        self._fast_watched: dict = {}  # a function's, and with several devices in use (keyed by device too)
        self._state_dev = None         # the parameters' device, with several devices in use (runtime/device_guard.py)
        self._bind_modules = bind_modules  # a function's: (self, args, kwargs) -> the call with modules bound
        self._bound: dict = {}         # ... the compiled function per set of module arguments
        self._last_bound = None
        self._grad_leaves = ()         # a step's: leaves whose .grad it reads that no optimizer steps
        self._grads_were = ()
        self._floats = FloatArgs(dynamic)  # float arguments that are program inputs, or pinned (runtime/floats.py)
        _LIVE.add(self)

    def _forget(self):
        """Drop every program (tracenn.compiler.reset): the next call traces and compiles anew."""
        self._entries.clear()
        self._fast_entries.clear()
        self._fast_watched.clear()
        self._last = self._last_key = None
        self._warned_limit = self._warned_fallback = False
        self._dropped = self._dropped_calls = 0
        self._epoch = -1
        self._floats = FloatArgs(self._floats.mode)
        self._log.append("reset: tracenn.compiler.reset() dropped the programs")

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
        if self._bind_modules is not None and _TRACE[0] is None and (
                kwargs or not all(type(a) is Tensor for a in args)):
            bound = self._bind_modules(self, args, kwargs)  # a function given a module argument
            if bound is not None:
                inner, args, kwargs = bound
                self.__dict__["_last_bound"] = inner
                return inner(*args, **kwargs)
        if _EPOCH[0] != self._epoch or (self._watch is not None and self._watch() != self._watched) \
                or self._grad_leaves and self._grads_set() != self._grads_were:
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
                key = (self._sid if not _SEVERAL[0] else self._keyed_sid(args), GRAD.enabled,
                       tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in args))
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._miss(key, args, kwargs, list(args), None)
                return self._run(entry, list(args), args, kwargs)
        leaves, tree = flatten((args, kwargs))
        floats = None
        if self._floats.dynamic:  # float arguments passed as inputs (runtime/floats.py)
            leaves, tree, floats = self._floats.as_inputs(leaves, tree)
        key = (self._sid if not _SEVERAL[0] else self._keyed_sid(leaves), GRAD.enabled,
               tuple((a._value.shape, a._value.dtype, a._requires_grad) for a in leaves), signature(tree))
        entry = self._entries.get(key)
        if entry is None:
            entry, leaves = self._structured_miss(key, args, kwargs, leaves, tree, floats)
        return self._run(entry, leaves, args, kwargs)

    def _structured_miss(self, key, args, kwargs, leaves, tree, floats):
        """A cache miss of a call with non-tensor arguments: ``(entry, leaves)``. A Python float
        argument whose value differs from the first one seen there becomes a program input from
        now on, as torch.compile makes it dynamic at such a recompile (runtime/floats.py), so the
        call looks its program up again with the float among its tensor leaves. A program traced
        through a branch on such a float (``if alpha > 0.5:``) is used while its guards hold
        (FloatArgs.pick). If the trace with float inputs fails (the code needs the number:
        ``float(alpha)``), those arguments are guarded by value again (pinned) and the call
        compiles as before."""
        fa = self._floats
        dynamic = ()
        if self._mesh is None:  # (a mesh splits every input along its first dimension)
            changed = fa.changed(tree)
            if changed:
                dynamic = fa.mark(changed)
                spec_key = key
                leaves, tree, floats = fa.as_inputs(leaves, tree)
                key = (self._keyed_sid(leaves), key[1], _avals(leaves), signature(tree))
                entry = self._entries.get(key)
                if entry is not None:
                    return entry, leaves
        if floats is None:
            return self._miss(key, args, kwargs, leaves, tree), leaves
        reason = self._reason(spec_key, dynamic) if dynamic else None
        if key in fa.guarded:  # programs traced through a branch on a float: the one whose side this is
            full, failed = fa.pick(key, floats)
            if full is not None and full in self._entries:
                return self._entries[full], leaves
            reason = reason or ("a float argument is on the other side of a branch that the program(s) for these "
                                f"inputs were traced through ({'; '.join(sorted({g.where for g in failed}))}): a "
                                "program for this side, the float still an input (torch.compile guards the branch "
                                "too)")
        targs, tkwargs = unflatten(tree, leaves)
        try:
            entry = self._miss(key, targs, tkwargs, leaves, tree, reason=reason, python_floats=floats)
            return self._guard_keyed(entry, key), leaves
        except _NeedsNumber as e:
            paths = [p for p, _ in float_paths(flatten((args, kwargs))[1]) if p in fa.dynamic]
            why = _first_line(e.error)
            for p in paths:
                del fa.dynamic[p]
                fa.pinned[p] = why
            self._log.append(f"{', '.join(paths)}: guarded by value again, not a program input: the traced code "
                             f"needs the number ({why})")
        leaves, tree = flatten((args, kwargs))
        leaves, tree, floats = fa.as_inputs(leaves, tree)
        key = (self._keyed_sid(leaves), key[1], _avals(leaves), signature(tree))
        entry = self._entries.get(key)
        return (entry or self._miss(key, args, kwargs, leaves, tree)), leaves

    def _keyed_sid(self, leaves):
        """The guard key's first element: the structure key's number, and, with several devices in
        use, the inputs' devices and the parameters' (runtime/device_guard.py)."""
        if _SEVERAL[0] and self._mesh is None:
            return keyed_sid(self._sid, leaves, self._state_dev)
        return self._sid

    def _one_tensor_call(self, a):
        """Call with the one tensor ``a``, keeping the call for its array type in
        ``_fast_entries`` (keyed by the epoch of the structure key it was found under: _refresh
        empties the table) so the next such call skips everything else. The call is the entry's
        lean one (fastcall) where it has one, else ``_run``. None are kept while a profile
        records: its calls go through _run, which times them."""
        fkey = (self._epoch, GRAD.enabled, a._value.aval, a._requires_grad)
        table = self._fast_entries if self._watch is None else self._fast_watched
        if _SEVERAL[0] and self._mesh is None:  # (keyed by device too: __call__'s lookup never finds these)
            fkey += (device_of(a._value),)
            table = self._fast_watched
        call = table.get(fkey)
        if call is None:
            key = (self._keyed_sid((a,)), GRAD.enabled, ((a._value.shape, a._value.dtype, a._requires_grad),))
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
        self._name, self._mode, self._walked, self._state, self._extra = name, mode, modules, state, extra
        ckey = skey if self._values is None else self._values.canon(skey, self._volatile)
        sid = self._skey_ids.get(ckey)
        if sid is None:
            sid = self._skey_ids[ckey] = len(self._skey_ids)
        self._skeys_by_id = getattr(self, "_skeys_by_id", {})
        self._skeys_by_id[sid] = skey
        self._sid = sid
        self._state_dev = state_device(state) if _SEVERAL[0] and self._mesh is None else None
        self._epoch = _dispatch.EPOCH[0]
        # The option objects the modules hold (``self.config``) change without moving the epoch:
        # their attributes are watched at every call (a module with none keeps the one-lookup path).
        options = None if self._values is None else self._values.watcher(modules)
        step = self._step_watch
        self._watch = step if options is None else options if step is None else (lambda: (step(), options()))
        if self._watch is not None:
            self._watched = self._watch()
        # Which grads are set is part of a step's state (a set .grad is read and accumulated into).
        # The watch sees an optimizer's parameters; the others (a step with no optimizer, as in
        # gradient accumulation, or a leaf no optimizer steps) are checked here at every call.
        stepped = {id(p) for _, o in extra.get("optimizers", ()) for g in o.param_groups for p in g["params"]}
        self._grad_leaves = [p for p in extra.get("grad_params", {}).values() if id(p) not in stepped]
        self._grads_were = self._grads_set()
        self._fast_entries.clear()  # (keyed by the previous epoch, or calls for the previous closures)
        self._fast_watched.clear()

    def _grads_set(self) -> tuple:
        return tuple(p.grad is not None for p in self._grad_leaves)

    def _guard_keyed(self, entry, key):
        """An entry traced through a branch on a float input (its graph's ``float_guards``) is kept
        under ``key`` plus its number among such programs, and found by its guards (FloatArgs.pick)."""
        guards = None if entry.eager else getattr(entry.captured, "float_guards", None)
        if not guards:
            return entry
        programs = self._floats.guarded.setdefault(key, [])
        full = key + (("float guards", len(programs)),)
        programs.append((full, guards))
        del self._entries[key]
        entry.key = self._last_key = full
        self._entries[full] = entry
        return entry

    def _miss(self, key, args, kwargs, leaves, tree, reason=None, python_floats=None):
        """Compile (or fall back) for ``key``. ``python_floats``: the leaves that are float
        arguments passed as inputs, position -> value (``args`` holds them as tensors); a failed
        trace then raises ``_NeedsNumber`` (see _structured_miss)."""
        if _SEVERAL[0] and self._mesh is None:  # (a key is new: its devices have not been checked)
            check_devices(self._name, leaves, self._input_names(), self._state, state_device(self._state))
        if reason is None:
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
                    f"{self.cache_size_limit} (last reason: {reason}): {then}. {_limit_advice(reason)} "
                    "cm.explain() lists the reasons.", RecompileWarning, stacklevel=_outside_stacklevel())
            if eager:
                past = [k for k, e in self._entries.items() if e.past_limit]
                if len(past) >= _PAST_LIMIT_KEPT:  # (a growing KV cache: a new shape at every call)
                    self._dropped_calls += self._entries.pop(past[0]).calls
                    self._dropped += 1
                entry = Entry(None, key, reason + " (runs eagerly: past cache_size_limit)", (), False)
                entry.past_limit = True
                return self._keep(entry, key)
        step = bool(self._extra)
        before = None if self._values is None else self._values.snapshot(self._walked)
        flags = [(m, m.training) for _, m in self._walked]
        host_rng = _host_rng_states()
        built = None
        try:
            try:
                floats = {"python_floats": python_floats} if python_floats else {}
                built = self._build(self._target, args, kwargs, state=self._state, modules=self._walked,
                                    name=self._name, mode=self._mode, **self._extra, **floats)
            finally:
                if before is not None:
                    self._note_changes(before, built)
                drew = _restore_host_rng(host_rng)
            if drew:
                raise UnsupportedError(
                    f"the traced code of {self._name} drew numbers from {drew}; a program would keep the "
                    "numbers drawn while tracing and use them at every call. Draw them with tracenn instead "
                    "(tracenn.rand, tracenn.randperm, tracenn.distributions.Beta(a, b).sample()), which a "
                    "compiled program draws anew at each call, or draw them outside and pass them in as "
                    "tensor arguments")
            _replay_mode_changes(built, flags)
        except Exception as e:
            if python_floats:
                raise _NeedsNumber(e) from e
            if not isinstance(e, (DataDependentError, UnsupportedError)):
                raise
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
        self._keep(entry, key)
        if built is not None and debug_level() >= 3:
            print(f"[tracenn] StableHLO:\n{self._stablehlo(entry, leaves)}")
        return entry

    def _keep(self, entry, key):
        self._entries[key] = entry
        self._log.append(f"{'eager' if entry.eager else 'compile'} {len(self._entries) + self._dropped}: "
                         f"{entry.reason}")
        del self._log[:-_LOG_KEPT]
        self._last, self._last_key = entry, key
        return entry

    def _note_changes(self, before, built=None):
        """Values the trace itself changed that every call keeps right without re-running the
        Python (a module's float attribute, written back after each call; a tensor a forward
        stores) stop being guarded: guarding them would compile anew at every call. Structure keys
        that differ only in them now name one program. The others (``self.calls += 1``) stay
        guarded: see ``ValueGuards.replayed``."""
        changed = self._values.changed(before, self._walked) - self._volatile
        stored = set()
        if built is not None:  # attributes the call sets to a tensor (a store, replayed after every call)
            paths = {id(m): p for p, m in self._walked}
            stored = {(paths.get(id(s.target)), s.key) for s in built.graph.stores if s.kind == "attr"}
            stored -= self._volatile
        changed, kept = self._values.replayed(changed - stored, self._walked)
        changed |= stored
        self._rebound |= kept
        if changed:
            self._volatile |= changed
            ids = {}
            for sid, skey in sorted(self._skeys_by_id.items()):
                ids.setdefault(self._values.canon(skey, self._volatile), sid)
            self._skey_ids = ids

    def _reason(self, key, dynamic=frozenset()) -> str:
        if not self._entries:
            return "first call"
        prev = self._last_key
        if prev is None:
            return "first call"
        canon = None if self._values is None else (lambda skey: self._values.canon(skey, self._volatile))
        why = describe_change(prev, key, skeys_with_devices(self._skeys_by_id, prev[0], key[0]), self._input_names(),
                              dynamic, canon)
        moved = device_change(prev, key, self._input_names())
        if moved:
            why = moved if why == "a new combination of previously seen guards" else f"{moved}; {why}"
        if self._rebound:  # (after each value the call changes itself, why that recompiles)
            why = "; ".join(part + _REBOUND if any(part.startswith(f"{label} changed: ") for label in self._rebound)
                            else part for part in why.split("; "))
        return why

    def _input_names(self):
        """The latest program's input names (the user's parameter names): an entry that runs
        eagerly has no graph, so the one compiled before it names them."""
        for e in reversed(self._entries.values()):
            if not e.eager:
                return [v.name for v in e.graph.inputs]
        return []

    def _index(self, entry):
        return list(self._entries.values()).index(entry) + 1

    # ---- what users look at ---------------------------------------------------------------------

    @property
    def graph(self):
        """The graph that runs for the latest call (after passes); None before the first call."""
        if self._last_bound is not None and self._last is None:
            return self._last_bound.graph
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
        lines = [explain_header(self._name, self._entries.values(), self.cache_size_limit, self._dropped,
                                self._dropped_calls)]
        lines.append("guards (a change in any of them compiles a new program):")
        lines.append("  - each tensor input's shape, dtype and requires_grad; the structure of the "
                     "arguments and the value of every non-tensor argument")
        for path, change in self._floats.dynamic.items():
            lines.append(f"  - but float argument {path} is a program input (dynamic), not guarded: "
                         + (f"its value changed between calls ({change})" if " -> " in change else change)
                         + ", so it is passed as a 0-d float64 array and a new value reuses the program")
        for path, why in self._floats.pinned.items():
            lines.append(f"  - float argument {path} stays guarded by value: its value changed, but the traced code "
                         f"needs it as a Python number ({why})")
        floats = getattr(self._values, "floats", None)  # float attributes, globals (compiler/float_attrs.py)
        if floats is not None:
            lines += floats.describe()
        if _SEVERAL[0] and self._mesh is None:
            lines.append("  - each tensor input's device and the device of the parameters and buffers (several devices "
                         "are in use); inputs on another device than the parameters raise torch's error")
        lines.append("  - grad mode (enabled or no_grad)")
        if self._walked:
            lines.append(f"  - module structure: {len(self._walked)} module(s), their classes, "
                         "train/eval flags and hooks")
            lines.append("  - the value of each plain attribute (int, float, bool, str...) of the modules and of "
                         "the option objects they hold (self.config.output_hidden_states)")
            lines.append(f"  - state identity, shape, dtype, requires_grad and gradient hooks: {len(self._state)} "
                         "parameter(s)/buffer(s)")
        lines.append("programs:")
        branches = {full: guards for programs in self._floats.guarded.values() for full, guards in programs}
        for i, e in enumerate(self._entries.values(), 1):
            _, grad, ins = e.key[:3]
            devs = e.key[0][1] if isinstance(e.key[0], tuple) else ()
            shapes = ", ".join(f"{_type(s, d)}{' (requires_grad)' if r else ''}"
                               f"{f' on {device_name(devs[i])}' if i < len(devs) else ''}"
                               for i, (s, d, r) in enumerate(ins))
            how = "eager fallback" if e.eager else (f"{len(e.graph.nodes)} nodes" + (
                ", with backward" if e.grad else ""))
            if e.key in branches:  # traced through a branch on a float input
                how += "; used while " + ", ".join(f"{g.where} is {bool(g.expected)}" for g in branches[e.key])
            for plan in getattr(e, "_plans", {}).values():
                if plan.choice is not None and plan.choice.pick is not None:
                    how += f"; scalar output: {plan.choice.describe()}"
            lines.append(f"  {i}. inputs ({shapes}); grad {'on' if grad else 'off'}; {how}; "
                         f"{e.calls} call(s) — compiled because: {e.reason}")
        for i, (key, inner) in enumerate(self._bound.items(), 1):
            lines.append(f"  module argument(s) {', '.join(key[0])}, set {i}: a compiled function of its own "
                         f"(its state: their parameters and buffers); {len(inner._entries)} program(s)")
        if self._dropped:
            lines.append(f"  ... and {self._dropped} more signature(s) past cache_size_limit ran eagerly "
                         f"(the latest {_PAST_LIMIT_KEPT} are listed)")
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
            key = (self._keyed_sid(leaves), False, _avals(leaves))
            if kwargs or not all(type(a) is Tensor for a in args):  # (tensors alone: the key a call makes has no tree)
                key += (signature(tree),)
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
