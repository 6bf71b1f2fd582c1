"""The graph IR: :class:`Value` (a typed SSA name), :class:`Node` (one op applied to values) and
:class:`Graph` (a flat list of nodes with named inputs, state, outputs and state writes).

A graph prints one line per node::

    graph Net(%x: f32[64,1,28,28]) -> f32[64,10]    mode=train
      %0: f32[64,32,26,26] = conv[stride=(1,1), ...] %x, %conv1.weight   # conv1  net.py:12
      ...
      bn.running_mean <- %12
      return %9

The grammar is documented in ``docs/ir.md`` and pinned by golden tests. While tracing, a Value is
also what a symbolic tensor holds (``Tensor._value``): it has ``shape``, ``dtype`` and ``ndim``
like an array, and reading its numbers raises :class:`~tracenn.errors.DataDependentError`.
"""
from __future__ import annotations

import dataclasses

import os
import re
import sys
import warnings

import numpy as np

from .. import _dispatch
from ..dtypes import SHORT_NAMES as _SHORT, type_str
from ..errors import CompileError, DataDependentError
from .._meta import ShapedArray
from ..utils._pytree import LEAF, dataclass_items

class Value(ShapedArray):
    """A typed name in a graph: an input, parameter, buffer, constant, RNG state or op output.

    ``kind`` is one of ``"input"``, ``"param"``, ``"buffer"``, ``"capture"`` (a tensor a compiled
    function closes over), ``"const"``, ``"rng"`` or ``"op"``. For an op output, ``node`` is the
    node that makes it and ``index`` which of its outputs it is.
    """

    __slots__ = ("name", "shape", "dtype", "kind", "node", "index", "device")
    symbolic = True  # Tensor code tells a traced value from an array by this attribute
    aval = None      # (an array's type: a compiled call's table key, which no traced value matches)

    def __init__(self, name, shape, dtype, kind="op", node=None, index=0, device=None):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.kind = kind
        self.node = node
        self.index = index
        self.device = device

    def devices(self):
        return {self.device}

    @property
    def type(self) -> str:
        return type_str(self.shape, self.dtype)

    def __repr__(self):
        return f"{self.type} %{self.name}"

    def __array__(self, dtype=None, copy=None):
        # A value computed from constants alone is known while its trace runs (lengths and
        # permutations the code made from Python numbers: pack_padded_sequence's batch sizes), so
        # reading it is not data-dependent: it is evaluated now, as eager mode would.
        tracer = _dispatch.TRACE[0]
        arr = None if tracer is None else known_value(self, tracer.graph, _known(tracer))
        if arr is not None and tracer.graph.python_floats and tracer.graph.reads_float(self):
            # a branch on a float argument passed as an input (``if alpha > 0.5:``): the program
            # holds for the values on this side of it, a guard the runtime checks (as torch's)
            if self.dtype != np.bool_:
                raise DataDependentError(data_dependent_message())  # (float(alpha): guarded by value)
            from .float_guards import FloatGuard
            tracer.graph.float_guards.append(FloatGuard(tracer.graph, self, np.asarray(arr)))
        if arr is None:
            raise DataDependentError(data_dependent_message())
        arr = np.asarray(arr)
        return arr if dtype is None else arr.astype(dtype)

    def __jax_array__(self):
        raise CompileError(
            f"a symbolic tensor (%{self.name}: {self.type}) reached JAX outside a compiled call. "
            "It was made while tracing and kept (stored on a module or in a list by forward or a "
            "hook); tensors from inside tracenn.compile have no values. Return it from forward "
            "instead.")


class Node:
    """One op applied to values: ``outputs = op(*inputs, **static)``.

    ``inputs`` holds Values and Python scalars (literals); ``module`` is the dotted path of the
    module whose forward made it (``""`` at top level) and ``source`` the user's ``file:line``.
    """

    __slots__ = ("op", "key", "inputs", "outputs", "module", "source", "phase")
    seq = 0  # Tensor's in-place bookkeeping reads grad_fn.seq; graph nodes take no part in it

    def __init__(self, op, key, inputs, outputs=(), module="", source="", phase=""):
        self.op = op
        self.key = tuple(key)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.module = module
        self.source = source
        self.phase = phase  # "forward", "backward" or "update" in a traced training step; "" unknown

    @property
    def params(self) -> dict:
        return dict(zip(self.op.static, self.key))

    def name(self) -> str:  # what a traced tensor's grad_fn prints
        return f"{self.op.name} (traced)"

    def _add_pre(self, idx, fn):
        raise CompileError(
            "Tensor.register_hook inside a compiled forward is not supported: register the hook "
            "on the compiled call's output, or on a module (register_full_backward_hook).")

    def __repr__(self):
        return format_node(self)


# Which inputs of the graph being traced (by position) are Python float arguments that the runtime
# passes as 0-d float64 arrays (a float argument whose value changed between calls: see
# runtime/floats.py). api._build sets it around a trace; Graph.__init__ takes it.
PYTHON_FLOAT_INPUTS = [{}]  # (input position -> the float's value at this call)
_F64 = np.dtype(np.float64)


class Graph:
    """A traced program. See the module docstring for the printed form.

    Attributes:
        name: what was traced (the module's class name or the function's name).
        mode: ``"train"``, ``"eval"`` or ``""`` for a plain function.
        inputs: the user's tensor inputs, in flattened argument order.
        state: parameters, buffers and captured tensors, by ``state_dict`` name.
        consts: constant arrays the trace met (a tensor made outside and used inside).
        rng: per generator used, the (key, counter) input values; ``draws`` how many draws each.
        nodes: the ops, in execution order.
        outputs: the flattened outputs (Values, or Python values returned as they are);
            ``out_tree`` rebuilds the structure forward returned.
        writes: state and input writes, ``name -> Value`` (``bn.running_mean <- %12``).
        stores: what the call puts in Python lists and dicts (``history.append(%7)``), replayed
            after each call with its tensors; their values are the last outputs.
        modules: dotted module path -> class name (for the module-level view).
    """

    def __init__(self, name: str, mode: str = ""):
        self.name = name
        self.mode = mode
        self.inputs: list[Value] = []
        self.state: dict[str, Value] = {}
        self.consts: dict[str, object] = {}
        self.const_values: dict[str, Value] = {}
        self.rng: list[tuple[Value, Value]] = []
        self.draws: list[int] = []
        self.nodes: list[Node] = []
        self.outputs: list = []
        self.out_tree = None
        self.writes: dict[str, Value] = {}
        self.modules: dict[str, str] = {}
        self.deferred: list = []  # (fn, args, kwargs) the runtime calls after each call (scheduler.step)
        self.creates: dict = {}   # write name -> (optimizer, param, key): state the call makes
        self.aliases: dict = {}   # state name -> the earlier state name whose Value it reads (one array)
        self.stores: list = []    # escapes.Store: list appends and dict items replayed after each call
        self.out_views: dict = {}  # output index -> (0 input | 1 state, its index, (steps, strides, detached))
        self.python_floats = PYTHON_FLOAT_INPUTS[0]  # inputs that are Python floats (see python_float)
        self.float_guards: list = []  # FloatGuard: branches the trace took on them
        self._float_memo = None

    def python_float(self, v) -> bool:
        """Does ``v`` stand for a Python float: a float argument passed as a program input
        (:attr:`python_floats`), or a 0-d float64 value computed from such inputs and numbers only
        (``1 - alpha``)? Type promotion treats it as the Python number it stands for (torch's
        wrapped number), so ``loss * alpha`` keeps ``loss``'s dtype as in eager mode; its
        arithmetic stays in float64, as Python's does."""
        if not self.python_floats or v.shape != () or v.dtype != _F64:
            return False
        memo = self._float_memo
        if memo is None:  # (inputs by identity; the values' objects are kept, so ids stay unique)
            memo = self._float_memo = {id(x): (x, True) for _, x in self.float_values()}
        stack = [v]
        while stack:  # (no recursion: a long chain of 0-d float64 ops would be deep)
            x = stack[-1]
            if id(x) in memo:
                stack.pop()
                continue
            node = x.node if x.kind == "op" else None
            ins = [i for i in node.inputs if isinstance(i, Value)] if node is not None else []
            if not ins or x.shape != () or x.dtype != _F64 or any(not memo.get(id(i), (0, 1))[1] for i in ins):
                memo[id(x)] = (x, False)
                stack.pop()
                continue
            pending = [i for i in ins if id(i) not in memo]
            if pending:
                stack += pending
                continue
            memo[id(x)] = (x, True)
            stack.pop()
        return memo[id(v)][1]

    def float_values(self) -> list:
        """``(key, Value)`` of each Python float input (:attr:`python_floats`): an int key is a
        position in :attr:`inputs` (a float argument), a str key names :attr:`state` (a float
        attribute, global or closure cell passed as a program input: compiler/float_attrs.py)."""
        out = []
        for k in self.python_floats:
            if isinstance(k, str):
                if k in self.state:
                    out.append((k, self.state[k]))
            elif k < len(self.inputs):
                out.append((k, self.inputs[k]))
        return out

    def reads_float(self, v) -> bool:
        """Does ``v`` depend on a Python float input (:attr:`python_floats`)?"""
        floats = {id(x) for _, x in self.float_values()}
        stack, seen = [v], set()
        while stack:
            x = stack.pop()
            if id(x) in floats:
                return True
            if id(x) in seen or x.kind != "op" or x.node is None:
                continue
            seen.add(id(x))
            stack += [i for i in x.node.inputs if isinstance(i, Value)]
        return False

    # ---- structure ---------------------------------------------------------------------------

    def copy(self) -> "Graph":
        """A shallow copy with its own node list (passes rewrite copies, never their input)."""
        g = Graph(self.name, self.mode)
        g.inputs = list(self.inputs)
        g.python_floats = self.python_floats
        g.state = dict(self.state)
        g.consts = dict(self.consts)
        g.const_values = dict(self.const_values)
        g.rng = list(self.rng)
        g.draws = list(self.draws)
        g.nodes = [Node(n.op, n.key, n.inputs, n.outputs, n.module, n.source, n.phase) for n in self.nodes]
        g.outputs = list(self.outputs)
        g.out_tree = self.out_tree
        g.writes = dict(self.writes)
        g.modules = dict(self.modules)
        g.deferred = list(self.deferred)
        g.creates = dict(self.creates)
        g.aliases = dict(self.aliases)
        g.stores = list(self.stores)
        g.out_views = dict(self.out_views)
        return g

    def stored_values(self) -> list:
        """The values of the stores' tensors: the outputs after the user's."""
        n = sum(s.n for s in self.stores)
        return self.outputs[len(self.outputs) - n:] if n else []

    def leaves(self) -> list[Value]:
        """Every value not made by a node: inputs, state, constants, RNG state."""
        out = list(self.inputs) + list(self.state.values()) + list(self.const_values.values())
        for k, c in self.rng:
            out += [k, c]
        return out

    def users(self) -> dict:
        """Value -> list of nodes that read it."""
        got: dict = {}
        for n in self.nodes:
            for v in n.inputs:
                if isinstance(v, Value):
                    got.setdefault(v, []).append(n)
        return got

    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of ``old`` (nodes, outputs, writes) read ``new``."""
        for n in self.nodes:
            n.inputs = [new if v is old else v for v in n.inputs]
        self.outputs = [new if v is old else v for v in self.outputs]
        self.writes = {k: (new if v is old else v) for k, v in self.writes.items()}

    # ---- printing ----------------------------------------------------------------------------

    def __str__(self):
        return format_graph(self)

    def __repr__(self):
        return f"<Graph {self.name}: {len(self.nodes)} nodes>"

    def print(self, file=None) -> None:
        """Print the graph (``str(graph)``) through rich: code bold, comments dim.

        Args:
            file: a text stream (default ``sys.stdout``); no colour codes when it is not a terminal.
        """
        _rich_print(_graph_lines(self), file)

    def tabular(self) -> list[tuple]:
        """One row per node: (name, type, op, attributes, inputs, module, source)."""
        rows = []
        for n in self.nodes:
            rows.append((", ".join("%" + _name(o) for o in n.outputs), ", ".join(o.type for o in n.outputs),
                         n.op.name, _fmt_attrs(n), ", ".join(_fmt_arg(v, n) for v in n.inputs), n.module,
                         _short_source(n.source)))
        return rows

    def print_tabular(self, file=None, width: int = 200) -> None:
        """The graph as a rich table, one row per node (as torch.fx's ``print_tabular``); the
        header is the title and the constants, writes, RNG use and ``return`` are the caption.

        Args:
            file: a text stream (default ``sys.stdout``).
            width: the console width the table is laid out for.
        """
        from rich.console import Console
        from rich.table import Table
        tail = [text for text, _ in _tail_lines(self)]
        table = Table(title=_header(self), title_justify="left", caption="\n".join(tail),
                      caption_justify="left")
        for col in ("name", "type", "op", "attributes", "inputs", "module", "source"):
            table.add_column(col, overflow="fold")
        for row in self.tabular():
            table.add_row(*row)
        Console(file=file, highlight=False, width=width).print(table)

    def module_view(self, depth: int = 1) -> str:
        """The graph with each submodule call folded into one ``call_module`` line (as torch.fx
        shows a traced model).

        Args:
            depth: how many components of a module path are kept: ``1`` folds ``encoder.layers.0``
                into ``encoder``; ``2`` into ``encoder.layers``.
        """
        return format_module_view(self, depth)


# ---- the printed form (grammar: docs/ir.md) ------------------------------------------------------

# Comments (``# module  file:line``) start in one column per graph: just after the longest code
# part that is at most this wide. A longer line keeps its comment three spaces after the code
# rather than pushing every other comment to the right.
_COMMENT_MAX = 72
_SEP = "   # "
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+|\[[^\[\]\s]*\])*\Z")
_NARROW_FLOATS = frozenset({"float32", "float16", "bfloat16"})


def _name(v: Value) -> str:
    """How a value is spelled after ``%``. Op results are numbers (``%12``). Other names print
    as they are when they read as a Python path that starts with a name (``%conv1.weight``,
    ``%rng.key``, ``%opt.state[fc.weight].momentum_buffer``) and quoted otherwise
    (``%"0.weight"``), so a Sequential's parameter never reads as the result ``%0``."""
    if v.kind == "op" or _PLAIN.match(v.name):
        return v.name
    return '"' + v.name + '"'


def _ref(v) -> str:
    if isinstance(v, Value):
        return "%" + _name(v)
    return _fmt_static(v)


def _fmt_arg(v, n: Node) -> str:
    """An op input: a value, or a literal. A float literal of an op that computes in a narrower
    float (the ``dtype`` attribute) prints as that dtype's shortest decimal: the number it uses."""
    if isinstance(v, float):
        dt = n.params.get("dtype")
        try:
            dt = np.dtype(dt) if dt is not None else None
        except TypeError:
            dt = None
        if dt is not None and dt.name in _NARROW_FLOATS:
            return _shortest(v, dt.type)
    return _ref(v)


def _shortest(v: float, ftype) -> str:
    """The shortest decimal that rounds to the same ``ftype`` number as ``v``, spelled as Python
    spells floats (``1.3333334``, ``0.334`` for bf16, ``1e-05``)."""
    with np.errstate(over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a literal too big for ftype is inf there, and prints so
        target = ftype(v)
    exact = float(target)
    if not np.isfinite(exact):
        return repr(exact)
    for digits in range(1, 18):
        s = f"{exact:.{digits}g}"
        if ftype(float(s)) == target:
            return repr(float(s))
    return repr(exact)


def _fmt_static(v) -> str:
    if isinstance(v, (tuple, list)):
        inner = ",".join(_fmt_static(x) for x in v)
        return f"({inner},)" if isinstance(v, tuple) and len(v) == 1 else f"({inner})"
    if isinstance(v, np.dtype) or isinstance(v, type) and issubclass(v, np.generic):
        name = np.dtype(v).name
        return _SHORT.get(name, name)
    if isinstance(v, (float, str)):
        return repr(v)
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        return f"<{type_str(v.shape, v.dtype)}>"
    return str(v)


def _fmt_index(spec, shape, tensors=()) -> tuple[str, tuple | None]:
    """An index spec (``slice``/``index``/``index_put``, ``view_scatter`` steps) in Python's
    subscript notation — ``[:,0,1:3]``, ``[%idx]``, ``[None,::2]`` — and the shape it leaves
    (None when unknown). A slice over a whole dim prints ``:`` when ``shape`` is known; trailing
    ``:`` are dropped, as Python lets you drop them."""
    parts, out, d = [], [], 0
    for e in spec:
        tag = e[0]
        size = shape[d] if shape is not None and d < len(shape) else None
        if tag == "n":
            parts.append("None")
            out.append(1)
            continue
        d += 1
        if tag == "i":
            parts.append(str(e[1]))
        elif tag == "s":  # ("s", start, stop, step); None entries mean the whole dim
            _, start, stop, step = e
            s = ("" if start in (None, 0) else str(start)) + ":" + (
                "" if stop is None or stop == size else str(stop))
            parts.append(s + ("" if step in (None, 1) else f":{step}"))
            out.append(None if size is None else len(range(*slice(start, stop, step).indices(size))))
        elif tag in ("t", "d"):  # an index tensor over one dim; a 0-d int tensor (selects: no dim)
            parts.append(_ref(tensors[e[1]]) if e[1] < len(tensors) else f"<index {e[1]}>")
            if tag == "t":
                out.append(None)
        elif tag == "b":  # a 0-d bool: adds a dim of 1 (True) or 0 (False), its operand's length
            d -= 1
            n = getattr(tensors[e[1]], "shape", None) if e[1] < len(tensors) else None
            parts.append(f"<bool {e[1]}>" if n is None else str(n == (1,)))
            out.append(None if n is None else n[0])
        else:
            parts.append(repr(e))
            out.append(None)
    while len(parts) > 1 and parts[-1] == ":":
        parts.pop()
    known = shape is not None and None not in out
    return "[" + ",".join(parts) + "]", (tuple(out) + tuple(shape[d:]) if known else None)


def _fmt_chain(chain, shape) -> str:
    """A view chain (``view_scatter``'s ``chain``) as the Python that takes the view of the base:
    ``.permute(1,0)[1:,0]`` writes into ``base.permute(1,0)[1:,0]``."""
    from ..ops import OPS
    out = []
    for name, key in chain:
        if name == "slice":
            s, shape = _fmt_index(key[0], shape)
            out.append(s)
            continue
        static = getattr(OPS.get(name), "static", ())
        if len(key) == 1 and isinstance(key[0], tuple):
            out.append(f".{name}({','.join(_fmt_static(x) for x in key[0])})")
        else:
            out.append(f".{name}(" + ",".join(f"{k}={_fmt_static(x)}" if k else _fmt_static(x)
                                               for k, x in zip(list(static) + [""] * len(key), key)) + ")")
        if name in ("reshape", "expand"):
            shape = tuple(key[0])
        elif name == "permute" and shape is not None:
            shape = tuple(shape[i] for i in key[0])
        elif name in ("view_as_real", "view_as_complex") and shape is not None:
            shape = shape + (2,) if name == "view_as_real" else shape[:-1]
        elif name not in ("alias", "real", "imag"):
            shape = None
    return "".join(out) or "()"


def _fmt_attrs(n: Node) -> str:
    """``k=v, ...`` for the op's static attributes; None (an unset option) is left out."""
    first = n.inputs[0] if n.inputs else None
    shape = first.shape if isinstance(first, Value) else None
    parts = []
    for k, v in zip(n.op.static, n.key):
        if v is None:
            continue
        if k == "spec" and n.op.name in ("slice", "index", "index_put"):
            skip = 2 if n.op.name == "index_put" else 1
            s, _ = _fmt_index(v, shape, n.inputs[skip:])
        elif k == "chain" and n.op.name == "view_scatter":
            s = _fmt_chain(v, shape)
        else:
            s = _fmt_static(v)
        parts.append(f"{k}={s}")
    return ", ".join(parts)


def _short_source(src: str) -> str:
    if not src:
        return ""
    path, _, line = src.rpartition(":")
    return f"{os.path.basename(path)}:{line}"


def _node_code(n: Node) -> str:
    outs = ", ".join(f"%{_name(o)}: {o.type}" for o in n.outputs)
    attrs = _fmt_attrs(n)
    args = ", ".join(_fmt_arg(v, n) for v in n.inputs)
    return f"{outs} = {n.op.name}{'[' + attrs + ']' if attrs else ''}{' ' + args if args else ''}"


def _node_comment(n: Node) -> str:
    return "  ".join(x for x in (n.module, _short_source(n.source)) if x)


def format_node(n: Node) -> str:
    """One node as it prints in a graph (without the graph's comment alignment)."""
    comment = _node_comment(n)
    return _node_code(n) + (_SEP + comment if comment else "")


def _align(rows) -> list[tuple[str, int]]:
    """(code, comment) rows -> (line, where the comment starts or -1), comments in one column."""
    width = max((len(c) for c, m in rows if m and len(c) <= _COMMENT_MAX), default=0)
    out = []
    for code, comment in rows:
        if not comment:
            out.append(("  " + code, -1))
            continue
        line = "  " + code + " " * max(width - len(code), 0)
        out.append((line + _SEP + comment, len(line)))
    return out


def _fmt_tree(tree, leaves, fmt=_ref) -> str:
    """The output structure with its leaves formatted: ``%9``, ``(%9, %10)``, ``{'a': %1}``."""
    it = iter(leaves)

    def walk(t):
        if t is LEAF:
            return fmt(next(it))
        if isinstance(t, tuple) and not hasattr(t, "_fields"):
            parts = [walk(x) for x in t]
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        if isinstance(t, tuple):  # namedtuple
            return f"{type(t).__name__}(" + ", ".join(f"{k}={walk(x)}" for k, x in zip(t._fields, t)) + ")"
        if isinstance(t, list):
            return "[" + ", ".join(walk(x) for x in t) + "]"
        if isinstance(t, dict):
            return "{" + ", ".join(f"{k!r}: {walk(x)}" for k, x in t.items()) + "}"
        if dataclasses.is_dataclass(t) and not isinstance(t, type):
            return f"{type(t).__name__}(" + ", ".join(f"{k}={walk(x)}" for k, x in dataclass_items(t)) + ")"
        return repr(t)

    return walk(tree)


def _out_types(g: Graph) -> str:
    return _fmt_tree(g.out_tree, g.outputs, lambda v: v.type if isinstance(v, Value) else _fmt_static(v))


def _header(g: Graph) -> str:
    ins = ", ".join(f"%{_name(v)}: {v.type}" for v in g.inputs)
    mode = f"    mode={g.mode}" if g.mode else ""
    return f"graph {g.name}({ins}) -> {_out_types(g)}{mode}"


def _const_lines(g: Graph) -> list[tuple[str, str]]:
    return [(f"%{_name(c)}: {c.type} = constant{_const_preview(g.consts[name])}", "")
            for name, c in g.const_values.items()]


def _alias_lines(g: Graph) -> list[tuple[str, int]]:
    """One comment per group of state tensors that share one array (an optimizer's step counts):
    ``# opt.state[l1.bias].step, opt.state[l2.weight].step and 24 more = %opt.state[l1.weight].step
    (one array)``."""
    groups: dict = {}
    for name, same in g.aliases.items():
        groups.setdefault(same, []).append(name)
    out = []
    for same, names in groups.items():
        shown = ", ".join(names[:2]) + (f" and {len(names) - 2} more" if len(names) > 2 else "")
        out.append((f"  # {shown} = %{same} (one array)", -1))
    return out


def _tail_lines(g: Graph) -> list[tuple[str, int]]:
    """Writes, RNG advances, stores and ``return``: what follows the nodes."""
    rows = [(f"{name} <- {_ref(v)}", "") for name, v in g.writes.items()]
    rows += [(f"{counter.name} += {n}", "") for (_, counter), n in zip(g.rng, g.draws)]
    stored = iter(g.stored_values())
    rows += [(s.describe(_fmt_tree(s.tree, [next(stored) for _ in range(s.n)])), "") for s in g.stores]
    rows.append(("return " + _fmt_tree(g.out_tree, g.outputs), ""))
    return [(text.strip(), i) for text, i in _align(rows)]


def _blocks_of(n: Node) -> tuple:
    """The blocks (sub-graphs) of a control-flow node (``cond``, ``while_loop``); () for others."""
    for v in n.key:
        blocks = getattr(v, "blocks", None)
        if blocks is not None and not isinstance(v, (tuple, list, str)):
            return blocks
    return ()


def _node_rows(nodes, depth: int = 0) -> list[tuple[str, str, Node | None]]:
    """(code, comment, node) per node, each control-flow node followed by its blocks: a header
    ``true(%a: f32[3], %w: f32[4,3]):``, the block's nodes indented, and its ``return``."""
    pad = "  " * depth
    rows = []
    for n in nodes:
        rows.append((pad + _node_code(n), _node_comment(n), n))
        for b in _blocks_of(n):
            ins = ", ".join(f"%{_name(v)}: {v.type}" for v in b.inputs)
            rows.append((f"{pad}  {b.name}({ins}):", "", None))
            rows += _node_rows(b.nodes, depth + 2)
            rows.append((f"{pad}    return {_fmt_tree(b.tree, b.outputs)}", "", None))
    return rows


def _graph_lines(g: Graph) -> list[tuple[str, int]]:
    node_rows = _node_rows(g.nodes)
    lines = _align(_const_lines(g) + [(code, comment) for code, comment, _ in node_rows])
    if any(n.phase in ("backward", "update") for n in g.nodes):
        # a training step: mark where forward, backward and the update begin
        marked, cur = lines[:len(lines) - len(node_rows)], None
        for (_, _, n), line in zip(node_rows, lines[len(lines) - len(node_rows):]):
            if n is not None and n.phase and n.phase != cur:
                cur = n.phase
                marked.append((f"  # ---- {cur} ----", -1))
            marked.append(line)
        lines = marked
    return [(_header(g), -1)] + _alias_lines(g) + lines + [("  " + t, -1) for t, _ in _tail_lines(g)]


def format_graph(g: Graph) -> str:
    """``str(graph)``: the header, constants, one line per node, writes, RNG use, ``return``."""
    return "\n".join(text for text, _ in _graph_lines(g))


def _const_preview(arr) -> str:
    """The values of a small constant (at most 6 elements); a bigger one shows only its type."""
    a = np.asarray(arr)
    if a.ndim == 0:
        return " " + str(a[()])
    if a.size <= 6:
        return " " + np.array2string(a, separator=", ").replace("\n", "")
    return ""


def _rich_print(lines, file) -> None:
    from rich.console import Console
    from rich.text import Text
    console = Console(file=file, highlight=False)
    for i, (line, at) in enumerate(lines):
        text = Text(line)
        text.stylize("bold", 0, len(line) if i == 0 or at < 0 else at)
        if at >= 0:
            text.stylize("dim", at, len(line))
        console.print(text, soft_wrap=True)


def format_module_view(g: Graph, depth: int = 1) -> str:
    """See :meth:`Graph.module_view`."""
    def group(path):
        return ".".join(path.split(".")[:depth]) if path else ""

    readers: dict = {}
    for i, n in enumerate(g.nodes):
        for v in n.inputs:
            if isinstance(v, Value):
                readers.setdefault(v, []).append(i)
    live_out = {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
    rows = _const_lines(g)
    i = 0
    nodes = g.nodes
    while i < len(nodes):
        path = group(nodes[i].module)
        if not path:
            rows.append((_node_code(nodes[i]), _node_comment(nodes[i])))
            i += 1
            continue
        j = i
        while j < len(nodes) and group(nodes[j].module) == path:
            j += 1
        made = {o for n in nodes[i:j] for o in n.outputs}
        ins = []
        for n in nodes[i:j]:
            for v in n.inputs:
                if isinstance(v, Value) and v not in made and v not in ins and not (
                        v.kind in ("param", "buffer") and v.name.startswith(path + ".")):
                    ins.append(v)
        outs = [o for n in nodes[i:j] for o in n.outputs
                if o in live_out or any(k >= j for k in readers.get(o, ()))]
        lhs = ", ".join(f"%{_name(o)}: {o.type}" for o in outs) or "_"
        code = f"{lhs} = call_module {path}({', '.join(_ref(v) for v in ins)})"
        rows.append((code, "  ".join(x for x in (g.modules.get(path, ""), _short_source(nodes[i].source)) if x)))
        i = j
    lines = [_header(g)] + [t for t, _ in _align(rows)] + ["  " + t for t, _ in _tail_lines(g)]
    return "\n".join(lines)


# ---- where the user is ---------------------------------------------------------------------------

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_frame():
    """The innermost stack frame outside the tracenn package (the user's line), or None."""
    f = sys._getframe(1)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG) and not fn.startswith("<frozen"):
            return f
        f = f.f_back
    return None


def user_source() -> str:
    f = user_frame()
    return f"{f.f_code.co_filename}:{f.f_lineno}" if f is not None else ""


def _known(tracer) -> dict:
    """The arrays known while ``tracer`` runs (see known_value), with the values of its Python
    float inputs (graph.python_floats) among them."""
    known = tracer.__dict__.get("known")
    if known is None:
        known = tracer.__dict__["known"] = {}
        g = tracer.graph
        known.update((v, np.asarray(g.python_floats[k], np.float64)) for k, v in g.float_values())
    return known


def known_value(v: Value, graph: Graph, known: dict, depth: int = 0):
    """The array of ``v`` if it is a constant of ``graph`` or an op's output computed from
    constants alone (no inputs, state, random draws or callbacks), else None. ``known`` caches the
    arrays found, and may hold others to start from (a module's captured tensors)."""
    got = known.get(v)
    if got is not None or depth > 200:
        return got
    if v.kind == "const":
        got = graph.consts.get(v.name) if graph.const_values.get(v.name) is v else None
    elif v.kind == "op" and v.node is not None:
        from .passes import calls_back, is_random
        n = v.node
        if is_random(n) or calls_back(n):
            return None
        args = []
        for x in n.inputs:
            a = known_value(x, graph, known, depth + 1) if isinstance(x, Value) else x
            if a is None and isinstance(x, Value):
                return None
            args.append(a)
        import jax
        import jax.numpy as jnp
        with jax.ensure_compile_time_eval():
            out = n.op.call([jnp.asarray(a) if isinstance(x, Value) else a for a, x in zip(args, n.inputs)], n.key)
        for o, a in zip(n.outputs, out if isinstance(out, (tuple, list)) else (out,)):
            known[o] = a
        got = known.get(v)
    if got is not None:
        known[v] = got
    return got


def data_dependent_message() -> str:
    import linecache
    f = user_frame()
    where = ""
    if f is not None:
        line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
        where = f" at {f.f_code.co_filename}:{f.f_lineno} (in {f.f_code.co_name}: `{line}`)" if line else \
            f" at {f.f_code.co_filename}:{f.f_lineno} (in {f.f_code.co_name})"
    tracer = _dispatch.TRACE[0]
    mod = getattr(tracer, "module_path", "") if tracer is not None else ""
    if mod:
        where += f", module {mod!r}"
    eager = "or compile with tracenn.compile(model, fallback=\"eager\") to run such calls eagerly."
    if _dispatch.HOST_READ[0] is not None:  # an op whose output shape depends on values (_api.shape_values)
        what, fix = _dispatch.HOST_READ[0]
        return (f"tracenn.compile: {what}{where} depends on the values of a tensor, and a compiled "
                f"program has only shapes and dtypes while it is traced. Fix it: {fix}; move it out of the "
                f"compiled code; {eager}")
    return (
        f"tracenn.compile: Python code read a tensor's value{where} (.item(), bool(t), `if t > 0`, "
        ".tolist(), .numpy()). While compiling, tensors have only shapes and "
        "dtypes, so control flow on tensor values cannot be captured in one XLA program. Fix it "
        "by computing with tensor ops instead (tracenn.where(cond, a, b) in place of `if`, "
        "clamp/masks in place of value checks), with tracenn.cond(pred, true_fn, false_fn, operands) or "
        "tracenn.while_loop(cond_fn, body_fn, carried) for branches and loops, by moving the check out of "
        f"forward, {eager}")
