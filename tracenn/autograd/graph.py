"""Autograd graph records: :class:`Node` (a recorded op — the ``grad_fn`` of its outputs) and
:class:`AccumulateGrad` (where a leaf's gradient lands). Built by eager dispatch, walked by the
engine. Each Node keeps the op's inputs and output (JAX arrays are immutable, so keeping a
reference is saving) and the versions of the tensors its vjp reads."""
from __future__ import annotations

import traceback
import weakref


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


# grad_fn names torch prints where the primitive's name differs from torch's op name.
_TORCH_NAMES = {"copy": "CloneBackward0", "cast": "ToCopyBackward0", "max_dim": "MaxBackward0",
                "reshape": "ViewBackward0", "alias": "AliasBackward0", "view_scatter": "CopySlices",
                "dynamic_update_slice": "CopySlices", "conv": "ConvolutionBackward0",
                "conv_transpose": "ConvolutionBackward0", "tile": "RepeatBackward0",
                "cross_entropy": "NllLossBackward0", "clamp": "ClampBackward1"}


def _index_name(node) -> str:
    """torch applies basic indexing left to right and names the result by its last step that is
    not a whole-dim slice: ``x[0]`` Select, ``x[:, 1:]`` Slice, ``x[None]`` Unsqueeze."""
    shape = getattr(node.inputs[0], "shape", None) if node.inputs else None
    last, d = "Slice", 0
    for e in node.key[0]:
        if e[0] == "n":
            last = "Unsqueeze"
            continue
        if e[0] == "i":
            last = "Select"
        elif not (e[1] in (None, 0) and e[3] in (None, 1)
                  and (e[2] is None or shape is not None and d < len(shape) and e[2] >= shape[d])):
            last = "Slice"
        d += 1
    return f"{last}Backward0"


# Ops whose torch name depends on the ranks of inputs a backward frees (the engine names those
# nodes first).
NAME_FROM_INPUTS = frozenset({"matmul"})
# matmul's grad_fn by operand ranks, as torch dispatches it (batched matmul keeps tracenn's name).
_MATMUL_NAMES = {(2, 2): "MmBackward0", (2, 1): "MvBackward0", (1, 1): "DotBackward0",
                 (1, 2): "SqueezeBackward4"}


def _torch_name(node) -> str:
    """The name torch gives the grad_fn of the op ``node`` recorded (names that depend on how the
    op was called: its static key, or its operands' ranks)."""
    op = node.op
    n = op.name
    if n in ("slice", "dynamic_slice"):
        return _index_name(node)
    if n in ("sum", "mean") and node.key and node.key[0] is not None:
        return f"{_camel(n)}Backward1"  # torch: sum(dim=...) is SumBackward1, sum() SumBackward0
    if n == "matmul" and node.inputs:
        got = _MATMUL_NAMES.get(tuple(getattr(x, "ndim", 0) for x in node.inputs))
        if got:
            return got
    if n in ("reduce_window", "window_argmax"):
        window = node.key[1] if n == "reduce_window" else node.key[0]
        if (n == "window_argmax" or node.key[0] == "max") and len(window) in (2, 3):
            return f"MaxPool{len(window)}DWithIndicesBackward0"
    return getattr(op, "backward_name", None) or _TORCH_NAMES.get(n) or f"{_camel(n)}Backward0"


_CLASSES: dict = {}


def named(node):
    """Give ``node`` the class torch's grad_fn of that op has (``type(y.grad_fn).__name__`` is
    ``'MulBackward0'``, as in torch): a subclass of :class:`Node` per name, made once. Done when a
    user reaches the node (``grad_fn``, ``next_functions``) rather than when it is made, which is
    the hot path; the engine does it before freeing the inputs a name may depend on."""
    if type(node) is Node:
        name = node.name()
        cls = _CLASSES.get(name)
        if cls is None:
            ns = {"__slots__": (), "_name": name, "__module__": __name__}
            if hasattr(node.op, "backward_name"):  # a custom Function's: its ctx's attributes, as torch's
                ns["__getattr__"] = _ctx_attribute
            cls = _CLASSES[name] = type(name, (Node,), ns)
        node.__class__ = cls
    return node


def _ctx_attribute(node, attr):
    """A custom Function's grad_fn is its ctx in torch: ``grad_fn.saved_tensors``, ``grad_fn.x``
    (set in forward) and ``grad_fn.needs_input_grad`` read the ctx's."""
    try:
        return getattr(node.key, attr)
    except AttributeError:
        raise AttributeError(f"'{type(node).__name__}' object has no attribute '{attr}'") from None


# The sequence number of the latest Node made (a list, not a class attribute: writing a class
# attribute on every op invalidates CPython's attribute caches for the class, ~0.3 µs a node).
SEQ = [0]
# Anomaly detection (autograd/anomaly_mode.py): [on, check gradients for NaN]; while on, each
# Node's forward stack (a traceback.StackSummary) is kept here.
ANOMALY = [False, True]
FORWARD_STACKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# The recording profile (tracenn.profiler's Recorder), or None: the backward engine and compiled
# calls time themselves into it while one records.
PROFILER = [None]
# The implicit gradient of a scalar output (``loss.backward()``'s ones), one array per (shape, dtype):
# the engine knows it by identity, so a node whose forward computed its gradients for a cotangent
# of 1 (Node.unit) hands them on with no program and no read of the value.
SEEDS: dict = {}


def is_seed(g) -> bool:
    """Is ``g`` the implicit gradient of a scalar output (the array ``SEEDS`` holds)?"""
    return SEEDS.get((g.shape, g.dtype)) is g


class Node:
    """The ``grad_fn`` of a tensor made by a differentiable op."""

    __slots__ = ("op", "key", "inputs", "out", "edges", "needs", "saved", "seq", "pre_hooks",
                 "retains", "hooks", "unit", "__weakref__")

    def __init__(self, op, key, inputs, out, edges, needs, saved):
        self.op = op
        self.key = key
        self.inputs = inputs      # tuple of raw values (arrays / Python scalars); None once freed
        self.out = out            # raw output value(s); None once freed
        self.edges = edges        # per input: (Node | AccumulateGrad, output index) or None
        self.needs = needs        # per input: does it need a gradient
        self.saved = saved        # ((root tensor, version when saved, which), ...) to check in backward
        seq = SEQ[0] + 1
        SEQ[0] = seq
        self.seq = seq            # later nodes run first, as torch's engine orders them
        self.pre_hooks = None     # {output index: [tensor hooks]}
        self.retains = None       # {output index: weakref to a tensor that called retain_grad()}
        self.hooks = None         # post hooks: fn(grad_inputs, grad_outputs)
        self.unit = None          # the input gradients for a cotangent of 1, computed in forward (OpDef.with_grad)
        if ANOMALY[0]:
            FORWARD_STACKS[self] = traceback.extract_stack()[:-2]

    _name = None  # the torch name, on the per-name subclasses of named()

    def name(self) -> str:
        return self._name or _torch_name(self)

    @property
    def next_functions(self):
        return tuple((named(e[0]), e[1]) if e is not None else (None, 0) for e in self.edges)

    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` after this node computed its input gradients."""
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _Handle(self.hooks, fn)

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` before this node runs; may return replacement gradients."""
        return self._add_pre(-1, fn)

    def _add_pre(self, idx, fn):
        if self.pre_hooks is None:
            self.pre_hooks = {}
        lst = self.pre_hooks.setdefault(idx, [])
        lst.append(fn)
        return _Handle(lst, fn)

    def __repr__(self):
        where = "tracenn.autograd.function." if hasattr(self.op, "backward_name") else ""  # as torch's
        return f"<{where}{self.name()} object at {hex(id(self))}>"


class AccumulateGrad:
    """The sink for a leaf tensor's gradient (``x.grad_fn`` is None; this is its edge)."""

    __slots__ = ("variable", "pre_hooks", "seq", "hooks", "__weakref__")

    def __init__(self, variable):
        self.variable = weakref.ref(variable)
        self.pre_hooks = None
        self.seq = -1
        self.hooks = None  # the variable's post-accumulate-grad hooks: fn(variable) after .grad changed

    def _add_post_accumulate(self, fn):
        if self.hooks is None:
            self.hooks = []
        self.hooks.append(fn)
        return _Handle(self.hooks, fn)

    def name(self) -> str:
        return "AccumulateGrad"

    @property
    def next_functions(self):
        return ()

    def _add_pre(self, idx, fn):
        if self.pre_hooks is None:
            self.pre_hooks = {}
        lst = self.pre_hooks.setdefault(0, [])
        lst.append(fn)
        return _Handle(lst, fn)

    def __repr__(self):
        return f"<AccumulateGrad object at {hex(id(self))}>"


class _Handle:
    """What ``register_hook`` returns: ``remove()``, also usable as a context manager."""

    __slots__ = ("_list", "_fn")

    def __init__(self, lst, fn):
        self._list, self._fn = lst, fn

    def remove(self):
        try:
            self._list.remove(self._fn)
        except ValueError:
            return
        from .. import _dispatch
        _dispatch.EPOCH[0] += 1  # (a compiled step that ran eagerly for a leaf's hook compiles again)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False
