"""The machinery of ``torch.func``'s transforms (``vmap`` in :mod:`._vmap`; ``grad``, ``vjp``,
``jvp``, ``jacrev``... in :mod:`._grad`).

Each transform calls the user's function with tensors that hold JAX tracers and applies JAX's transform
of the same kind to it. While the function runs (``_dispatch.FUNC`` holds a :class:`Frame`), every
op goes through :meth:`Frame.apply` instead of eager dispatch: no autograd tape is recorded, and an
op that sees a tracer runs as a ``jax.custom_vjp`` made from the op's own gradient rule
(:func:`tracenn.compiler.lower.differentiable`, what compiled programs use), so gradients follow
torch's conventions (``relu'(0) = 0``, ties of ``max``) exactly as ``loss.backward()`` does.

Forward mode (``jvp``, ``jacfwd``) is computed in reverse mode, because JAX cannot push tangents
through a ``custom_vjp``: ``jvp`` is the transpose of the pullback (the "double vjp"), ``jacfwd``
builds the same Jacobian as ``jacrev``. The values are torch's; only the cost differs.

The results join tracenn's autograd tape: when grad mode is on and a tensor that requires grad
takes part (an argument, or a parameter the function reads), the call runs once more under
``jax.vjp`` and its outputs get a ``grad_fn`` whose backward is that pullback, so
``loss.backward()`` through, say, a gradient penalty reaches the parameters.

What torch.func forbids is an error here too, with torch's messages: reading a tensor's value
(``.item()``, ``if x > 0``), random numbers under ``vmap(randomness="error")``, and an in-place
change of a tensor the function did not create (BatchNorm's running statistics: call
``replace_all_batch_norm_modules_`` or use eval mode).
"""
from __future__ import annotations

import functools
import linecache
import os
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .. import _dispatch
from ..autograd.engine import _edge_of
from ..autograd.grad_mode import GRAD
from ..autograd.graph import Node as _TapeNode
from ..runtime.gradcall import conj_tree
from ..tensor import Tensor
from ._random import _DRAWS, _Draws, _drawing, rng_args

_Tracer = jax.core.Tracer
_READ_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError,
                jax.errors.TracerIntegerConversionError)
_INEXACT = frozenset("fcV")


# ---- running the user's function ----------------------------------------------------------------

class Frame:
    """One active transform while the user's function runs inside it (``_dispatch.FUNC``)."""

    def __init__(self, name, randomness="same", axis=None, offset=None):
        self.name = name              # "vmap", "grad", ... (for messages)
        self.randomness = randomness  # vmap's: "error", "same" or "different"
        self.axis = axis              # vmap's axis name, for "different" randomness
        self.offset = offset          # vmap's chunk: the batch index of its first element (or None)
        self.parent = None
        self.captured = None          # {id: tensor} of tensors from outside read inside (while probed)
        self.mutated = []             # (weakref to a root tensor, its value, its version) changed in place

    def reading(self, value):
        """Python code reads ``value``, a concrete array (a tensor from outside: ``w.item()``), while a
        program is being traced: the program would keep the number it read, so the call runs
        eagerly instead, reading it afresh each time."""
        if _TRACING[0]:
            raise _NotTraceable

    def apply(self, op, args, key):
        """``_dispatch.apply`` while a transform runs: no tape; a custom_vjp kernel on tracers."""
        vals = []
        traced = False
        captured = self.captured
        for a in args:
            if isinstance(a, Tensor):
                v = a._value if a._base is None else a._sync()
                if captured is not None and not isinstance(v, _Tracer):  # a tensor from outside
                    if a._base is not None and _TRACING[0]:  # (a view keeps its own copy of the values:
                        raise _NotTraceable                   # a program traced once would keep them)
                    captured[id(a if a._base is None else a._base)] = a if a._base is None else a._base
                    if _STAND_INS[0] is not None and getattr(v, "symbolic", False):  # (see _record)
                        v = _stand_in(a, v)
            else:
                v = a
            traced = traced or isinstance(v, _Tracer)
            vals.append(v)
        if traced:
            out = _kernel(op, key, vals)(*[v for v in vals if isinstance(v, (jax.Array, np.ndarray))])
        else:
            fn = op._fwd.get(key)
            out = (fn or op.forward_kernel(key))(*vals)
        if op.nout == 1:
            return Tensor._wrap(out)
        return tuple(Tensor._wrap(o) for o in out)

    def random(self, gen):
        """The key and counter a random op draws with from ``gen`` (``Generator._next``) under this
        stack of transforms: the call's next draw (see :mod:`._random`), with vmap's randomness
        applied: ``"different"`` folds each element's index into the key (``offset`` + its index in
        the chunk, so chunks do not repeat each other), ``"same"`` leaves it."""
        f = self
        while f is not None:
            if f.name == "vmap" and f.randomness == "error":
                raise RuntimeError(
                    "vmap: called random operation while in randomness error mode. Please either use the "
                    "'same' or 'different' randomness flags on vmap or perform the randomness operation "
                    "out of vmap")
            f = f.parent
        draws = _DRAWS[0]
        if draws is None:  # (a Frame entered by hand, outside _run: the generator moves now)
            draws = _Draws()
            key, counter = draws.next(gen)
            draws.advance()
        else:
            key, counter = draws.next(gen)
        f = self
        while f is not None:
            if f.name == "vmap" and f.randomness == "different":
                i = jax.lax.axis_index(f.axis)
                key = jax.random.fold_in(key, i if f.offset is None else i + f.offset)
            f = f.parent
        return key, counter

    def mutating(self, t):
        """``Tensor._set_`` is about to change ``t`` (or its root) in place: note the old value, so
        that a tensor from outside left holding a tracer is restored and reported on exit."""
        root = t if t._base is None else t._base
        if isinstance(root._value, _Tracer) or any(r() is root for r, _, _ in self.mutated):
            return
        self.mutated.append((weakref.ref(root), root._value, root._ver))


class _Running:
    """``with _Running(frame):`` the user's function runs under ``frame``, grad mode off."""

    def __init__(self, frame):
        self.frame = frame

    def __enter__(self):
        f = self.frame
        f.parent = _dispatch.FUNC[0]
        f.captured = _PROBE[0] if f.parent is None else f.parent.captured
        f.mutated = []
        self.grad = GRAD.enabled
        GRAD.enabled = False
        _dispatch.FUNC[0] = f
        return f

    def __exit__(self, kind, err, tb):
        f = self.frame
        _dispatch.FUNC[0] = f.parent
        GRAD.enabled = self.grad
        live = [(t, value, ver) for t, value, ver in ((r(), v, n) for r, v, n in f.mutated) if t is not None]
        leaked = any(isinstance(t._value, _Tracer) for t, _, _ in live)  # a live one from outside holds a tracer
        if leaked or kind is not None:  # roll back every change to tensors from outside
            for t, value, ver in live:
                t._value, t._ver = value, ver
        if leaked and kind is None:
            raise RuntimeError(
                f"During a {f.name} transform, the function provided attempted to call an in-place operation "
                "that would mutate a captured Tensor (one created outside the function, such as a module's "
                "buffer). This is not supported; please rewrite the function being transformed to explicitly "
                "accept the mutated Tensor(s) as inputs. (For BatchNorm's running statistics: use eval mode, or "
                "tracenn.func.replace_all_batch_norm_modules_(model).)")
        return False


def _read_message(name, err) -> str:
    where = _user_line(err.__traceback__)
    tb, control = err.__traceback__, isinstance(err, jax.errors.TracerBoolConversionError)
    while tb is not None:  # bool(t) reads the value through item(): it is control flow all the same
        control = control or tb.tb_frame.f_code.co_name == "__bool__"
        tb = tb.tb_next
    if control:
        what = "It looks like you're attempting to use a Tensor in some data-dependent control flow"
    else:
        what = "It looks like you're reading a Tensor's value (.item(), .tolist(), .numpy(), int(t), float(t))"
    return (f"{name}: {what}{where}. We don't support that: inside tracenn.func transforms tensors hold "
            "JAX tracers, which have shapes and dtypes but no values. Compute with tensor ops instead "
            "(tracenn.where(cond, a, b) in place of `if`), or move the read out of the transformed function.")


_PKGS = tuple(os.path.dirname(m.__file__) + os.sep for m in (jax,)) + \
    (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,)


def _user_line(tb) -> str:
    """`` at file:line (in fn: `code`)`` for the innermost traceback frame outside tracenn and JAX."""
    where = None
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if not fn.startswith(_PKGS) and "/jaxlib/" not in fn and not fn.startswith("<frozen"):
            where = (fn, tb.tb_lineno, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    if where is None:
        return ""
    code = linecache.getline(where[0], where[1]).strip()
    return f" at {where[0]}:{where[1]} (in {where[2]}" + (f": `{code}`)" if code else ")")


_MARK = None  # a placeholder Value: where an op's argument is an array (see _kernel)
_KERNELS: dict = {}


def _kernel(op, key, vals):
    """``op`` as a function of its array arguments with its own gradient rule (a custom_vjp)."""
    global _MARK
    from ..compiler.graph import Value
    from ..compiler.lower import differentiable
    if _MARK is None:
        _MARK = Value("array", (), np.float32)
    inputs = [_MARK if isinstance(v, (jax.Array, np.ndarray)) else v for v in vals]
    try:
        k = (op.name, key, tuple(None if x is _MARK else (type(x), x) for x in inputs))
        fn = _KERNELS.get(k)
    except TypeError:  # an unhashable literal
        return differentiable(op, key, inputs)
    if fn is None:
        if len(_KERNELS) > 4096:
            _KERNELS.clear()
        fn = _KERNELS[k] = differentiable(op, key, inputs)
    return fn


# ---- trees of tensors and arrays ----------------------------------------------------------------

class _Dict(dict):
    """A dict inside a transform: a JAX pytree whose keys keep their order (JAX sorts a plain
    dict's), so ``grad`` of a parameter dict comes back in the dict's own order, as in torch."""


jax.tree_util.register_pytree_node(
    _Dict, lambda d: (list(d.values()), list(d.keys())), lambda keys, values: _Dict(zip(keys, values)))


def _ordered(tree):
    """``tree`` with its plain dicts (at any depth) as :class:`_Dict`."""
    if type(tree) is dict:
        return _Dict((k, _ordered(v)) for k, v in tree.items())
    if isinstance(tree, list):
        return [_ordered(x) for x in tree]
    if isinstance(tree, tuple):
        items = [_ordered(x) for x in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return tree


def _plain(tree):
    """``tree`` with its :class:`_Dict` back as plain dicts (what the user gets)."""
    if isinstance(tree, _Dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_plain(x) for x in tree]
    if isinstance(tree, tuple):
        items = [_plain(x) for x in tree]
        return type(tree)(*items) if hasattr(tree, "_fields") else tuple(items)
    return tree


def _arrays(tree):
    """``tree`` with each tensor's array in its place (and its dicts ordered: :class:`_Dict`)."""
    return jax.tree_util.tree_map(lambda t: (t._value if t._base is None else t._sync())
                                  if isinstance(t, Tensor) else t, _ordered(tree))


def _tensors(tree):
    """``tree`` with tensors in place of arrays, and plain dicts (what user code sees)."""
    return _plain(jax.tree_util.tree_map(lambda a: Tensor._wrap(a) if isinstance(a, (jax.Array, np.ndarray)) else a,
                                         tree))


# ---- joining the autograd tape --------------------------------------------------------------------

class _PullbackOp:
    """The op record of a transformed call's ``grad_fn``: its backward runs the call's pullback."""

    differentiable = True
    pullback_only = True
    static = ()
    name = "func_transform"

    def __init__(self, nout, bwd):
        self.nout = nout
        self.bwd = bwd  # bwd(pull, cts) -> (cts of the captured tensors, cts of the inputs)

    def backward_kernel(self, key, needs):
        nout, bwd = self.nout, self.bwd

        def kernel(g, out, pull):
            cts = bwd(pull, list(g) if nout > 1 else [g])
            return tuple(cts[0]) + tuple(cts[1])
        return kernel


def _pullback(pull, cts):  # (torch's cotangents are the conjugates of JAX's: see conj_tree)
    return conj_tree(pull(conj_tree(cts)))


_JIT_PULLBACK = jax.jit(_pullback)


def _run(name, fn, tensors, cache=None, key=None, func=None, same_draws=None):
    """``fn(arrays)`` (a JAX function of the arrays of ``tensors``) as a call on the tape.

    Returns the output tree with tensors at the leaves. With grad mode on, tensors needing grad
    that ``fn`` reads (``tensors`` themselves, or tensors captured by the user's function) get
    gradients through the outputs (the call runs under ``jax.vjp``).

    With a ``cache`` (the transform's) and a hashable ``key`` (what the call's program depends
    on: see :func:`_call_key`), the call runs as jitted programs (:class:`_Program`), traced once
    per key, its random draws taken from program arguments (:mod:`._random`); without, or when
    the function cannot be traced once for all calls (it reads values), it runs eagerly, op by op,
    under JAX's transform. ``same_draws``: see :func:`_record`."""
    if _dispatch.TRACE[0] is not None:
        return _record(name, fn, tensors, func, same_draws)
    arrays = [t._value if t._base is None else t._sync() for t in tensors]
    if _dispatch.FUNC[0] is not None:  # inside another transform: that one differentiates, and reports
        return _tensors(fn(arrays))
    prog = None
    if cache is not None and key is not None:
        # A module change (structure, modes, hooks, parameters) means new programs. The modules'
        # epoch moves with any of them, and with functional_call's swaps too (which undo
        # themselves): when it moved, the modules the function reaches are compared as
        # tracenn.compile compares them.
        if cache.get(_EPOCH) != _dispatch.EPOCH[0]:
            structure = _modules_key(func, tensors)
            if cache.get(_STRUCTURE) != structure:
                cache.clear()
                cache[_STRUCTURE] = structure
        prog = cache.get(key, False)
        if prog is False:
            if len(cache) >= 64:  # (a new key per call: stop keeping them)
                cache.clear()
            prog = cache[key] = _Program.make(name, fn, arrays)
    try:
        if prog is not None:
            return prog(tensors, arrays)
        return _eager(fn, tensors, arrays)
    except _READ_ERRORS as e:
        raise RuntimeError(_read_message(name, e)) from None
    finally:
        if cache is not None:
            cache[_EPOCH] = _dispatch.EPOCH[0]


_EPOCH = object()      # a transform's cache: the modules' epoch at the end of its last call,
_STRUCTURE = object()  # and the structure of the modules its function reaches (_modules_key)


def _modules_key(func, tensors) -> tuple:
    """What ``tracenn.compile`` guards of each module ``func`` reaches (itself, its captures and
    theirs, as :func:`_captured` walks them): submodules, their classes, modes and hooks, and the
    parameters' and buffers' identity, shapes, dtypes and requires_grad."""
    from ..compiler.api import _is_module, _module_source
    seen, out = set(), []
    for obj in [func, getattr(func, "__self__", None), *_captured(func)]:
        if _is_module(obj) and id(obj) not in seen:
            seen.add(id(obj))
            out.append((id(obj), _module_source(obj)[4]))
    return tuple(out)


def _eager(fn, tensors, arrays):
    """The call run op by op under JAX's transforms (a function that reads values). Its random
    draws use the generators' state (:class:`._random._Draws`), which moves once, after the call:
    the run under ``jax.vjp`` for the tape draws the same numbers as the first."""
    seen: dict = {}
    draws = _Draws()
    _PROBE[0] = seen if GRAD.enabled else None
    try:
        with _drawing(draws):
            out = fn(arrays)
    finally:
        _PROBE[0] = None
    caps = [t for t in seen.values() if t._requires_grad and t._value.dtype.kind in _INEXACT]
    leaves, tree = jax.tree_util.tree_flatten(out)
    floats = [i for i, x in enumerate(leaves) if jnp.result_type(x).kind in _INEXACT]
    d_in = [i for i, t in enumerate(tensors) if t._requires_grad and t._value.dtype.kind in _INEXACT]
    if not GRAD.enabled or not (d_in or caps) or not floats:
        draws.advance()
        return _tensors(out)

    def pure(cap_arrays, d_arrays):
        full = list(arrays)
        for i, a in zip(d_in, d_arrays):
            full[i] = a
        with _swapped(caps, cap_arrays), _drawing(_Draws()):
            res = jax.tree_util.tree_leaves(fn(full))
        return [res[i] for i in floats]

    fouts, pull = jax.vjp(pure, [t._value for t in caps], [arrays[i] for i in d_in])
    draws.advance()
    return _on_tape(tree, leaves, floats, fouts, pull, _pullback, caps + [tensors[i] for i in d_in])


def _record(name, fn, tensors, func=None, same_draws=None):
    """While ``tracenn.compile`` traces: the transformed call as one graph node,
    ``func_transform[fn=vmap(f)]``, whose inputs are the tensors the user's function reads from
    outside (parameters: graph state), the key and first counter of each generator it draws from
    (the graph's rng inputs, ``Tracer.rng``: each compiled call draws fresh numbers), and the
    call's tensors.

    The function runs once here, abstractly (``jax.eval_shape``, the compile trace paused), to
    find them and the output types; the program runs it again when it is lowered. A function that
    reads values cannot be one program: that call runs eagerly.

    ``same_draws`` (a dict; vjp's pullback): the first node recorded with it keeps its rng inputs
    there, and later ones take those instead of fresh ones, so they draw the same numbers."""
    from ..errors import UnsupportedError
    from ..ops.derived import TRANSFORM
    tracer = _dispatch.TRACE[0]
    values = [t._value if t._base is None else t._sync() for t in tensors]
    avals = [jax.ShapeDtypeStruct(v.shape, v.dtype) for v in values]
    seen: dict = {}
    draws = _Draws()
    _dispatch.TRACE[0] = None
    _PROBE[0], _TRACING[0], _STAND_INS[0] = seen, True, {}
    try:
        with _drawing(draws):
            shapes = jax.eval_shape(fn, avals)
    except (_NotTraceable,) + _READ_ERRORS:
        raise UnsupportedError(
            f"tracenn.func.{name} inside tracenn.compile: the transformed function reads tensor values (.item(), "
            "`if x > 0`, or a view of a tensor from outside), so it cannot be part of one program") from None
    finally:
        _dispatch.TRACE[0] = tracer
        _PROBE[0], _TRACING[0], _STAND_INS[0] = None, False, None
    leaves, tree = jax.tree_util.tree_flatten(shapes)
    caps = list(seen.values())
    if same_draws is not None and "traced" in same_draws and same_draws["traced"][0] == draws.gens:
        rng = same_draws["traced"][1]
    else:
        rng = [t for gen, n in zip(draws.gens, draws.counts) for t in tracer.rng(gen, n)]
        if same_draws is not None:
            same_draws["traced"] = (list(draws.gens), rng)
    what = getattr(func, "__name__", type(func).__name__) if func is not None else "f"
    spec = _Lowered(f"{name}({what})", fn, caps, draws.gens, leaves)
    outs = tracer.record(TRANSFORM, caps + rng + list(tensors), (spec,))
    return _plain(jax.tree_util.tree_unflatten(tree, list(outs)))


class _Lowered:
    """The ``fn`` of a ``func_transform`` node: the transformed call as a pure JAX function of
    (the captured tensors' arrays, ``[key, counter]`` per generator in ``gens``, the call's
    arrays), returning the output leaves."""

    def __init__(self, name, fn, caps, gens, out_avals):
        self.name, self.fn, self.caps, self.gens, self.out_avals = name, fn, caps, gens, out_avals

    def __call__(self, *arrays):
        n, m = len(self.caps), len(self.caps) + 2 * len(self.gens)
        tracer = _dispatch.TRACE[0]  # (a shape rule may run this while the compile trace is on: pause it)
        _dispatch.TRACE[0] = None
        try:
            with _swapped(self.caps, arrays[:n]), _drawing(_Draws(self.gens, arrays[n:m])):
                return jax.tree_util.tree_leaves(self.fn(list(arrays[m:])))
        finally:
            _dispatch.TRACE[0] = tracer

    def __repr__(self):
        return self.name


def _stand_in(t, v):
    """A traced stand-in for a graph value ``v`` that ``t`` holds while :func:`_record` runs the
    function abstractly (one per tensor)."""
    got = _STAND_INS[0].get(id(t))
    if got is None:
        got = _STAND_INS[0][id(t)] = jnp.zeros(v.shape, v.dtype)
    return got


class _swapped:
    """``with _swapped(tensors, arrays):`` the tensors hold those arrays (tracers of a transform of
    the whole call) for the duration; their own values come back after."""

    def __init__(self, tensors, arrays):
        self.tensors, self.arrays = tensors, arrays

    def __enter__(self):
        self.old = [t._value for t in self.tensors]
        for t, a in zip(self.tensors, self.arrays):
            t._value = a

    def __exit__(self, *exc):
        for t, v in zip(self.tensors, self.old):
            t._value = v
        return False


def _on_tape(tree, leaves, floats, fouts, pull, bwd, roots):
    """The call's outputs: ``leaves`` with the floating ones (``floats``) replaced by ``fouts`` on
    one tape node whose backward is ``bwd(pull, cts)``, its edges into ``roots``."""
    saved = [((t if t._base is None else t._base), t._version, f"input {k}") for k, t in enumerate(roots)]
    edges = tuple(_edge_of(t) for t in roots)
    node = _TapeNode(_PullbackOp(len(fouts), bwd), (), (pull,), fouts[0] if len(fouts) == 1 else tuple(fouts),
                     edges, (True,) * len(edges), saved)
    result = [Tensor._wrap(x) for x in leaves]
    for k, i in enumerate(floats):
        result[i] = Tensor._wrap(fouts[k], True, node, k)
    return _plain(jax.tree_util.tree_unflatten(tree, result))


class _NotTraceable(Exception):
    """The user's function cannot be traced once for all calls (it reads a view of a tensor from
    outside, whose values are copied when the view is taken)."""


class _Program:
    """A transformed call for one key, as jitted programs: the user's function traced once, with
    the tensors it reads from outside (a module's parameters and buffers: the captures) as
    arguments, so new values of those reach the next call without tracing again, and with the key
    and counter of each generator it draws from (:mod:`._random`), so each call draws fresh numbers:
    those eager code draws from the same generator state."""

    @classmethod
    def make(cls, name, fn, arrays):
        """The program, or None where the function must run eagerly (it reads tensor values: they
        need a fresh run per call)."""
        seen: dict = {}
        draws = _Draws()
        _PROBE[0] = seen
        _TRACING[0] = True
        try:
            with _drawing(draws):
                shapes = jax.eval_shape(fn, arrays)
        except (_NotTraceable,) + _READ_ERRORS:
            return None
        finally:
            _PROBE[0] = None
            _TRACING[0] = False
        return cls(fn, list(seen.values()), shapes, draws)

    def __init__(self, fn, caps, shapes, draws):
        self.caps = caps
        self.draws = draws  # the generators the function draws from, and how many times per call
        leaves, self.tree = jax.tree_util.tree_flatten(shapes)
        self.floats = [i for i, x in enumerate(leaves) if np.dtype(x.dtype).kind in _INEXACT]
        gens = draws.gens

        def run(cap_arrays, rng, arrays):
            with _swapped(caps, cap_arrays), _drawing(_Draws(gens, rng)):
                return jax.tree_util.tree_leaves(fn(arrays))
        self.run = jax.jit(run)
        floats = self.floats

        def fwd(dcap, d_in, cap_arrays, rng, arrays):  # with its pullback, for the tape
            def pure(c, d):
                ca, a = list(cap_arrays), list(arrays)
                for i, x in zip(dcap, c):
                    ca[i] = x
                for i, x in zip(d_in, d):
                    a[i] = x
                res = run(ca, rng, a)
                return [res[i] for i in floats], [x for i, x in enumerate(res) if i not in set(floats)]
            fouts, pull, others = jax.vjp(pure, [cap_arrays[i] for i in dcap], [arrays[i] for i in d_in],
                                          has_aux=True)
            return fouts, others, pull
        self.fwd = jax.jit(fwd, static_argnums=(0, 1))

    def __call__(self, tensors, arrays):
        caps = self.caps
        cap_arrays = [t._value if t._base is None else t._sync() for t in caps]
        rng = rng_args(self.draws.gens)
        if GRAD.enabled and self.floats:
            dcap = tuple(i for i, t in enumerate(caps) if t._requires_grad and t._value.dtype.kind in _INEXACT)
            d_in = tuple(i for i, t in enumerate(tensors) if t._requires_grad and t._value.dtype.kind in _INEXACT)
            if dcap or d_in:
                fouts, others, pull = self.fwd(dcap, d_in, cap_arrays, rng, arrays)
                self.draws.advance()
                it = iter(others)
                leaves = [fouts[self.floats.index(i)] if i in self.floats else next(it)
                          for i in range(self.tree.num_leaves)]
                return _on_tape(self.tree, leaves, self.floats, fouts, pull, _JIT_PULLBACK,
                                [caps[i] for i in dcap] + [tensors[i] for i in d_in])
        out = self.run(cap_arrays, rng, arrays)
        self.draws.advance()
        return _tensors(jax.tree_util.tree_unflatten(self.tree, out))


# {id: tensor} of the tensors the running transforms read from outside (not tracers), while _run
# or _Program.make looks for them (None otherwise).
_PROBE = [None]
_TRACING = [False]  # _Program.make or _record is tracing (see Frame.apply)
_STAND_INS = [None]  # {id(tensor): stand-in} while _record runs a function abstractly
def _tensor_leaves(tree):
    """The leaves of ``tree``, which must all be tensors (torch.func's rule for the arguments it
    differentiates)."""
    leaves = jax.tree_util.tree_leaves(tree)
    for x in leaves:
        if not isinstance(x, Tensor):
            raise ValueError(f"Thing passed to transform API must be Tensor, got {type(x)}")
    return leaves


def _inputs(tree):
    """(the tensors at the leaves of ``tree``, ``rebuild``): ``rebuild(arrays)`` is ``tree`` with
    those arrays in the tensors' places (a transform's program takes every tensor argument as an
    array, so a later call's tensors reach it)."""
    leaves, structure = jax.tree_util.tree_flatten(tree)
    where = [i for i, x in enumerate(leaves) if isinstance(x, Tensor)]

    def rebuild(arrays):
        full = list(leaves)
        for i, a in zip(where, arrays):
            full[i] = a
        return jax.tree_util.tree_unflatten(structure, full)
    return [leaves[i] for i in where], rebuild


def _call_key(func, tree, *config):
    """What a transformed call's program depends on besides array values: the transform's
    ``config``, the arguments' structure with their non-tensor values, the tensors' shapes and
    dtypes, what ``func`` (and functions it holds) reads from closures and globals, by identity,
    and grad mode (the modules' epoch is checked in :func:`_run`). None when it cannot be hashed
    (the call then runs eagerly)."""
    leaves, structure = jax.tree_util.tree_flatten(tree)
    parts = [structure, GRAD.enabled, _captured_ids(func), *config]
    for x in leaves:
        parts.append((x._value.shape, x._value.dtype) if isinstance(x, Tensor) else (type(x), x))
    key = tuple(parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _captured_ids(func, depth=3) -> tuple:
    """The ids of what ``func`` captures (:func:`_captured`): a rebound global tensor is a new key."""
    return tuple(map(id, _captured(func, depth)))


def _captured(func, depth=3) -> list:
    """What ``func`` captures (closure, globals it names, defaults), and what the functions among
    those capture, ``depth`` levels down."""
    from ..compiler.api import _capture_reader
    out = []

    def walk(f, d):
        if isinstance(f, functools.partial):
            vals = [f.func, *f.args, *f.keywords.values()]
        else:
            try:
                vals = _capture_reader(f, named=False)()
            except Exception:  # noqa: BLE001 - an object we cannot look into: its identity only
                return
        for v in vals:
            out.append(v)
            if d > 0 and callable(v) and not isinstance(v, type) and hasattr(v, "__code__") \
                    or isinstance(v, functools.partial):
                walk(v, d - 1)
    walk(func, depth)
    return tuple(out)
