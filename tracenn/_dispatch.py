"""Eager dispatch: run an op's cached jitted kernel on tensors and record autograd history.

This is the hot path of eager mode. An op call costs: unwrapping the inputs, one dict lookup for the
kernel, one jitted-call dispatch (jit's C++ fast path caches by input shape/dtype), and wrapping
the output; a Node is made only when an input requires grad and grad mode is on.
"""
from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp

from .autograd.graph import Node
from .autograd.grad_mode import GRAD
from .device import SEVERAL, mismatch, put_beside
from .ops import OPS

_INEXACT_KINDS = frozenset("fcV")  # V: bfloat16 (ml_dtypes)
LAST = [None]  # the latest result: synchronize() waits on it (XLA runs a device's work in order)
# The active tracer (tracenn.compiler), or None in eager mode. While tracing, every op is recorded
# into a graph instead of run: the tracer's record() returns tensors holding symbolic values.
TRACE = [None]
# The innermost running tracenn.func transform (vmap, grad, ...: a func._transforms.Frame), or None.
# While one runs, every op goes through its apply: no tape, and gradient rules JAX can use.
FUNC = [None]
# Bumped by every change a compiled call must re-check: module structure, train/eval flags, hooks,
# parameters' requires_grad and .data. Compiled calls compare it instead of walking the modules.
EPOCH = [0]
# Automatic mixed precision (tracenn.autocast): None, or the low-precision numpy dtype. Ops in
# AUTOCAST_OPS cast their floating inputs first: "low" ops (matmul, convolutions) to that dtype,
# "f32" ops (exp, log, sums, norms: where low precision loses too much) to float32.
AUTOCAST = [None]
AUTOCAST_OPS = {}
# An exception raised by Python code a compiled program called back into (a module hook): JAX
# reports it as an opaque runtime error, so the runtime re-raises the original from here, with its
# traceback from the hook down (the second item: as eager's ends, without JAX's callback frames).
CALLBACK_ERROR = [None, None]
# What an API function is reading values on the host for, while it does (an op whose output shape
# depends on its input's values: nonzero, x[mask], bincount): (what, fix) or None. A compiled trace
# cannot give the values, and its DataDependentError then names the op and its shape-static form.
HOST_READ = [None]
# Whether a meta tensor was ever made (or the default device set to meta): only then does apply look
# for meta arguments (tracenn/_meta.py), so eager dispatch pays nothing for the meta device until used.
META = [False]
_INPUT_NAMES = tuple(f"input {i}" for i in range(8))  # what a saved-tensor record says it was
Tensor = None  # set by tracenn.tensor once the class exists (avoids an import on every call)
try:  # a concrete JAX array's class (Tensor._host waits on one before reading it)
    from jax._src.array import ArrayImpl as ARRAY
except ImportError:  # pragma: no cover
    ARRAY = jax.Array


def apply(op, args, key=()):
    """Run primitive ``op`` on ``args`` (Tensors and Python scalars) with static ``key``.

    Returns a Tensor, or a tuple of Tensors for multi-output ops.
    """
    if AUTOCAST[0] is not None and op.name in AUTOCAST_OPS:
        args, key = _autocast(op, args, key)
    if TRACE[0] is not None:
        if META[0]:
            _meta.refuse(args)
        return TRACE[0].record(op, args, key)
    if FUNC[0] is not None:
        if META[0]:
            _meta.refuse(args)
        return FUNC[0].apply(op, args, key)
    vals = []
    rg = False
    for a in args:
        if isinstance(a, Tensor):
            vals.append(a._value if a._base is None else a._sync())
            if a._requires_grad:
                rg = True
        else:
            vals.append(a)
    unit = None
    if META[0] and _meta.involved(op, key, args):  # shapes and dtypes only: the op's shape rule
        out = _meta.run(op, key, args, vals)
    else:
        # A scalar loss computes its gradients for a cotangent of 1 in the same program (one
        # program, not two, for a loss.backward() through it: OpDef.with_grad).
        with_grad = rg and op.with_grad is not None and GRAD.enabled and op.with_grad(key)
        if with_grad:
            fn = op.with_grad_kernel(key, tuple(isinstance(a, Tensor) and a._requires_grad for a in args))
        else:
            fn = op._fwd.get(key)
            if fn is None:
                fn = op.forward_kernel(key)
        try:
            out = fn(*vals)
        except Exception as e:
            _leaked(op, vals)
            _sparse(op, vals)
            _broadcast_error(e, vals)
            _out_of_memory(e)
            raise
        if with_grad:
            out, unit = out
        LAST[0] = out
    if not (rg and GRAD.enabled and op.differentiable) or (op.nout == 1 and out.dtype.kind not in _INEXACT_KINDS):
        if op.nout == 1:
            return Tensor._wrap(out)
        return tuple(Tensor._wrap(o) for o in out)
    edges = []
    needs = []
    saved = []
    saves = op.saves
    if type(saves) is dict:  # which inputs are read depends on which need a gradient
        saves = {j for i, a in enumerate(args) if isinstance(a, Tensor) and a._requires_grad
                 for j in saves.get(i, ())}
    for i, a in enumerate(args):
        if isinstance(a, Tensor) and a._requires_grad:
            edges.append((a._node, a._out_idx) if a._node is not None else (a._grad_accumulator(), 0))
            needs.append(True)
        else:
            edges.append(None)
            needs.append(False)
        if isinstance(a, Tensor) and (saves is None or i in saves):
            if a._inference and saves is not None:  # (None: "all", broader than torch's for some ops)
                _saved_inference()
            root = a if a._base is None else a._base
            saved.append((root, root._ver, _INPUT_NAMES[i] if i < 8 else f"input {i}"))
    node = Node(op, key, tuple(vals), out, tuple(edges), tuple(needs), saved)
    if unit is not None:
        node.unit = unit
    if op.nout == 1:
        t = Tensor._wrap(out, True, node, 0)
        if op.saves_out:
            node.saved.append((weakref.ref(t), 0, "output 0"))  # weak: no cycle
        return t
    outs = []
    for i, o in enumerate(out):
        grad_ok = o.dtype.kind in _INEXACT_KINDS
        t = Tensor._wrap(o, grad_ok, node if grad_ok else None, i)
        if op.saves_out:
            node.saved.append((weakref.ref(t), 0, f"output {i}"))
        outs.append(t)
    return tuple(outs)


def _saved_inference():
    from .errors import BackwardError
    raise BackwardError(
        "Inference tensors cannot be saved for backward. Please do not use Tensors created in inference mode "
        "in computation tracked by autograd. To work around this, you can make a clone to get a normal tensor "
        "and use it in autograd.")


_SCALARS: dict = {}  # (type, value) -> a weakly typed 0-d array of that value (see scalar_operand)
_CACHED_SCALAR_TYPES = frozenset((int, float))


def scalar_operand(v, like):
    """``v``, a Python int or float operand of a kernel taking ``like`` (an array), as a cached array.

    A jitted call converts each Python number it is given into a device array, every call: ~1.2 µs
    here, as much as a whole small op's dispatch. A cached 0-d array of the same value is passed
    as is, and since ``jnp.asarray`` keeps a Python number's weak type, the kernel traces and
    computes exactly as with the number. For an array committed to a device (``.to("cuda")``) the
    cached array is made on that device, once: a number would be copied host-to-device at every
    op there. Not cached: float zeros and NaN (a dict cannot tell -0.0 from 0.0, nor find a NaN),
    ints beyond int64, and operands of arrays spread over several devices. While tracing, numbers
    stay numbers (literals in the graph).
    """
    if type(v) not in _CACHED_SCALAR_TYPES or TRACE[0] is not None:
        return v
    committed = getattr(like, "_committed", None)
    if committed is None:  # not a JAX array
        return v
    key = (type(v), v, like.sharding) if committed else (type(v), v)
    a = _SCALARS.get(key)
    if a is None:
        if v != v or v == 0 and type(v) is float or type(v) is int and not -2 ** 63 <= v < 2 ** 63:
            return v
        if committed and len(like.sharding.device_set) != 1:
            return v
        if len(_SCALARS) >= 4096:  # a loop over many values: start over rather than grow
            _SCALARS.clear()
        a = _SCALARS[key] = put_beside(v, like) if committed else jnp.asarray(v)
    return a


def same_device(who: str, **tensors) -> None:
    """torch's error when a layer's input and weights are on two devices: ``model.cuda()`` then
    ``model(x_cpu)``, where JAX would copy the input over silently. Checked by the functional
    forms whose torch kernels refuse it (linear, convolutions, embedding), not by every op:
    tracenn's own composites still make some constants on the default device and let JAX move
    them. Armed once a GPU is asked for (device.SEVERAL); tracing (symbolic values) is not checked."""
    if not SEVERAL[0]:
        return
    msg = mismatch((name, t._value) for name, t in tensors.items()
                   if isinstance(t, Tensor) and isinstance(t._value, ARRAY))
    if msg is not None:
        raise RuntimeError(f"{msg} (in {who})")


def _leaked(op, vals) -> None:
    """A kernel failed: if an input is a symbolic value kept from a compiled trace, say so."""
    for v in vals:
        if getattr(v, "symbolic", False):
            from .errors import CompileError
            raise CompileError(
                f"{op.name}: an input is a symbolic tensor ({v!r}) made while tracenn.compile traced a "
                "call, and kept after it (stored on a module, in a list, or by a hook). Tensors from "
                "inside a compiled call have no values; return it from the compiled function instead.") from None


def _sparse(op, vals) -> None:
    """A kernel failed: if an input is a sparse COO tensor's value (tracenn/sparse), raise its error
    (the op is not one sparse tensors support) instead of JAX's."""
    for v in vals:
        if hasattr(type(v), "_sparse_refuse"):
            v._sparse_refuse(op.name)


def _out_of_memory(e) -> None:
    """XLA's RESOURCE_EXHAUSTED as torch's OutOfMemoryError (a RuntimeError, as on torch's CPU)."""
    from .errors import out_of_memory
    err = out_of_memory(e)
    if err is not None:
        raise err from e


def _broadcast_error(e, vals) -> None:
    """A kernel failed on inputs that do not broadcast (JAX's TypeError or ValueError): raise
    torch's RuntimeError, which names the first pair of sizes that differ (tensor a is the first
    input with that dimension, b the next) and the dimension of the broadcast result."""
    if not isinstance(e, (TypeError, ValueError)) or "broadcast" not in str(e):
        return
    shapes = [tuple(v.shape) for v in vals if hasattr(v, "shape")]
    ndim = max((len(s) for s in shapes), default=0)
    for k in range(1, ndim + 1):  # from the last dimension, as broadcasting aligns shapes
        sizes = [s[-k] for s in shapes if len(s) >= k and s[-k] != 1]
        if len(set(sizes)) > 1:
            raise RuntimeError(f"The size of tensor a ({sizes[0]}) must match the size of tensor b "
                               f"({next(n for n in sizes if n != sizes[0])}) at non-singleton dimension "
                               f"{ndim - k}") from None


AUTOCAST_KIND = ["cpu"]  # whose op lists AUTOCAST_OPS holds: "cpu" or "cuda" (tracenn/amp.py)


def autocast_key():
    """The autocast state a compiled program depends on: None when off, else the dtype and which
    device type's op lists apply."""
    return None if AUTOCAST[0] is None else (AUTOCAST[0], AUTOCAST_KIND[0])


def autocasting(*tensors) -> bool:
    """Whether autocast is on and every one of ``tensors`` is floating: a low-precision op (matmul,
    convolution) will cast them all, so a check that their dtypes match does not apply, and a bias
    added after it is cast to the op's result (torch's autocast casts every input)."""
    return AUTOCAST[0] is not None and all(t._value.dtype.kind in "fV" for t in tensors)


def _autocast(op, args, key):
    """``args`` with floating tensors cast as ``AUTOCAST_OPS[op.name]`` says (see AUTOCAST), and
    the op's ``dtype`` parameter (its computation dtype) set to match."""
    import numpy as np
    target = AUTOCAST[0] if AUTOCAST_OPS[op.name] == "low" else np.dtype(np.float32)
    cast = OPS["cast"]
    out = []
    changed = False
    for a in args:
        if isinstance(a, Tensor) and a._value.dtype.kind in "fV" and a._value.dtype != target:
            a = apply(cast, (a,), (target,))
            changed = True
        out.append(a)
    if changed and "dtype" in op.static:
        i = op.static.index("dtype")
        d = key[i]
        if d is not None and np.dtype(d).kind in "fV":
            key = key[:i] + (target,) + key[i + 1:]
    return out, key


def abstract(v) -> bool:
    """Whether array ``v`` has no numbers to read: a compiled trace's symbolic Value, a JAX
    tracer (inside tracenn.func's transforms, or a user's own jax.jit), or a meta array. Checks that read values
    (index bounds, targets of a loss) skip such arrays."""
    return getattr(v, "symbolic", False) or isinstance(v, (jax.core.Tracer, _meta.MetaArray))


try:  # (JAX's own test for a tracer that carries its value; absent, such values are not read)
    from jax._src.core import to_concrete_value as _to_concrete
except ImportError:  # pragma: no cover
    _to_concrete = None
try:  # (vmap's tracer and its "no batch dimension" mark: None in JAX 0.10, a sentinel before)
    from jax._src.interpreters import batching as _batching
    _BatchTracer, _NOT_MAPPED = _batching.BatchTracer, getattr(_batching, "not_mapped", None)
except (ImportError, AttributeError):  # pragma: no cover
    _BatchTracer, _NOT_MAPPED = (), None


def host_value(v):
    """``v`` ready to read on the host: a JAX tracer that carries its value (under tracenn.func.grad,
    which runs on values as torch.func.grad does) gives that value; other tracers stay as they are
    (reading them fails, and the transform reports where)."""
    if isinstance(v, jax.core.Tracer) and _to_concrete is not None:
        # vmap's tracer of a value with no batch dimension (computed inside vmap from tensors from
        # outside only, as `scale * 2`) holds that value
        while isinstance(v, _BatchTracer) and v.batch_dim is _NOT_MAPPED:
            v = v.val
        c = _to_concrete(v)
        if c is not None:
            return c
    elif FUNC[0] is not None:  # a concrete array read inside a transform: it may say so (see Frame.reading)
        FUNC[0].reading(v)
    return v


def _identity(x):
    return x


# Identity ops need no kernel: JAX arrays are immutable, so a clone can share its input's array
# (an in-place change later rebinds the clone's handle, never the array).
OPS["copy"]._fwd[()] = _identity
OPS["alias"]._fwd[()] = _identity


from . import _meta  # noqa: E402  (it reads META and Tensor from here)


def op(name: str):
    """The OpDef called ``name`` (a KeyError names the missing op)."""
    return OPS[name]
