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

import os
import sys

import numpy as np

from .. import _dispatch
from ..dtypes import SHORT_NAMES as _SHORT, type_str
from ..errors import CompileError, DataDependentError
from ..utils._pytree import LEAF

class Value:
    """A typed name in a graph: an input, parameter, buffer, constant, RNG state or op output.

    ``kind`` is one of ``"input"``, ``"param"``, ``"buffer"``, ``"capture"`` (a tensor a compiled
    function closes over), ``"const"``, ``"rng"`` or ``"op"``. For an op output, ``node`` is the
    node that makes it and ``index`` which of its outputs it is.
    """

    __slots__ = ("name", "shape", "dtype", "kind", "node", "index", "device")
    symbolic = True  # Tensor code tells a traced value from an array by this attribute

    def __init__(self, name, shape, dtype, kind="op", node=None, index=0, device=None):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.kind = kind
        self.node = node
        self.index = index
        self.device = device

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def devices(self):
        return {self.device}

    @property
    def type(self) -> str:
        return type_str(self.shape, self.dtype)

    def __repr__(self):
        return f"{self.type} %{self.name}"

    def __array__(self, *args, **kwargs):
        raise DataDependentError(data_dependent_message())

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

    __slots__ = ("op", "key", "inputs", "outputs", "module", "source")
    seq = 0  # Tensor's in-place bookkeeping reads grad_fn.seq; graph nodes take no part in it

    def __init__(self, op, key, inputs, outputs=(), module="", source=""):
        self.op = op
        self.key = tuple(key)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.module = module
        self.source = source

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

    # ---- structure ---------------------------------------------------------------------------

    def copy(self) -> "Graph":
        """A shallow copy with its own node list (passes rewrite copies, never their input)."""
        g = Graph(self.name, self.mode)
        g.inputs = list(self.inputs)
        g.state = dict(self.state)
        g.consts = dict(self.consts)
        g.const_values = dict(self.const_values)
        g.rng = list(self.rng)
        g.draws = list(self.draws)
        g.nodes = [Node(n.op, n.key, n.inputs, n.outputs, n.module, n.source) for n in self.nodes]
        g.outputs = list(self.outputs)
        g.out_tree = self.out_tree
        g.writes = dict(self.writes)
        g.modules = dict(self.modules)
        return g

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
        """Print the graph with rich highlighting (plain text when not a terminal)."""
        from rich.console import Console
        from rich.text import Text
        console = Console(file=file, highlight=False)
        for line in format_graph(self).split("\n"):
            text = Text(line)
            code, _, comment = line.partition("   # ")
            text.stylize("bold", 0, len(code))
            if comment:
                text.stylize("dim", len(code), len(line))
            console.print(text, soft_wrap=True)

    def tabular(self) -> list[tuple]:
        """One row per node: (name, type, op, attributes, inputs, module, source)."""
        rows = []
        for n in self.nodes:
            rows.append((", ".join("%" + o.name for o in n.outputs), ", ".join(o.type for o in n.outputs),
                         n.op.name, _fmt_attrs(n), ", ".join(_ref(v) for v in n.inputs), n.module,
                         n.source))
        return rows

    def print_tabular(self, file=None) -> None:
        """The graph as a rich table (as torch.fx's ``print_tabular``)."""
        from rich.console import Console
        from rich.table import Table
        table = Table(title=_header(self), title_justify="left")
        for col in ("name", "type", "op", "attributes", "inputs", "module", "source"):
            table.add_column(col, overflow="fold")
        for row in self.tabular():
            table.add_row(*row)
        Console(file=file, highlight=False, width=200).print(table)

    def module_view(self, depth: int = 1) -> str:
        """The graph with each submodule call folded into one ``call_module`` line (as torch.fx
        shows a traced model); ``depth`` says how deep a module path is kept."""
        return format_module_view(self, depth)


# ---- the printed form ----------------------------------------------------------------------------

_COMMENT_COL = 72


def _ref(v) -> str:
    if isinstance(v, Value):
        return "%" + v.name
    return _fmt_static(v)


def _fmt_static(v) -> str:
    if isinstance(v, (tuple, list)):
        inner = ",".join(_fmt_static(x) for x in v)
        return f"({inner},)" if isinstance(v, tuple) and len(v) == 1 else f"({inner})"
    if isinstance(v, np.dtype) or isinstance(v, type) and issubclass(v, np.generic):
        name = np.dtype(v).name
        return _SHORT.get(name, name)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return repr(v)
    if hasattr(v, "dtype") and hasattr(v, "shape"):
        return f"<{type_str(v.shape, v.dtype)}>"
    return str(v)


def _fmt_attrs(n: Node) -> str:
    return ", ".join(f"{k}={_fmt_static(v)}" for k, v in zip(n.op.static, n.key))


def _short_source(src: str) -> str:
    if not src:
        return ""
    path, _, line = src.rpartition(":")
    return f"{os.path.basename(path)}:{line}"


def _with_comment(code: str, comment: str) -> str:
    if not comment:
        return code
    pad = max(_COMMENT_COL - len(code), 1)
    return f"{code}{' ' * pad}   # {comment}"


def format_node(n: Node) -> str:
    outs = ", ".join(f"%{o.name}: {o.type}" for o in n.outputs)
    attrs = _fmt_attrs(n)
    args = ", ".join(_ref(v) for v in n.inputs)
    code = f"{outs} = {n.op.name}{'[' + attrs + ']' if attrs else ''}{' ' + args if args else ''}"
    comment = "  ".join(x for x in (n.module, _short_source(n.source)) if x)
    return _with_comment(code, comment)


def _fmt_tree(tree, leaves) -> str:
    """The output structure with values named: ``%9``, ``(%9, %10)``, ``{'a': %1}``."""
    it = iter(leaves)

    def walk(t):
        if t is LEAF:
            return _ref(next(it))
        if isinstance(t, tuple) and not hasattr(t, "_fields"):
            parts = [walk(x) for x in t]
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        if isinstance(t, tuple):  # namedtuple
            return f"{type(t).__name__}(" + ", ".join(f"{k}={walk(x)}" for k, x in zip(t._fields, t)) + ")"
        if isinstance(t, list):
            return "[" + ", ".join(walk(x) for x in t) + "]"
        if isinstance(t, dict):
            return "{" + ", ".join(f"{k!r}: {walk(x)}" for k, x in t.items()) + "}"
        return repr(t)

    return walk(tree)


def _out_types(g: Graph) -> str:
    if g.out_tree is LEAF:
        v = g.outputs[0]
        return v.type if isinstance(v, Value) else _fmt_static(v)
    return _fmt_tree(g.out_tree, [v.type if isinstance(v, Value) else _fmt_static(v)
                                  for v in g.outputs]).replace("%", "")


def _header(g: Graph) -> str:
    ins = ", ".join(f"%{v.name}: {v.type}" for v in g.inputs)
    extra = []
    if g.mode:
        extra.append(f"mode={g.mode}")
    return f"graph {g.name}({ins}) -> {_out_types(g)}" + ("    " + "  ".join(extra) if extra else "")


def format_graph(g: Graph) -> str:
    lines = [_header(g)]
    for name, c in g.const_values.items():
        lines.append(f"  %{name}: {c.type} = constant{_const_preview(g.consts[name])}")
    for n in g.nodes:
        lines.append("  " + format_node(n))
    for name, v in g.writes.items():
        lines.append(f"  {name} <- {_ref(v)}")
    for (key, counter), n in zip(g.rng, g.draws):
        lines.append(f"  {counter.name} += {n}")
    lines.append("  return " + _fmt_tree(g.out_tree, g.outputs))
    return "\n".join(lines)


def _const_preview(arr) -> str:
    a = np.asarray(arr)
    if a.size <= 6:
        return " " + np.array2string(a, separator=", ").replace("\n", "")
    return ""


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
    lines = [_header(g)]
    i = 0
    nodes = g.nodes
    while i < len(nodes):
        path = group(nodes[i].module)
        if not path:
            lines.append("  " + format_node(nodes[i]))
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
        lhs = ", ".join(f"%{o.name}: {o.type}" for o in outs) or "_"
        code = f"{lhs} = call_module {path}({', '.join('%' + v.name for v in ins)})"
        lines.append("  " + _with_comment(code, "  ".join(
            x for x in (g.modules.get(path, ""), _short_source(nodes[i].source)) if x)))
        i = j
    for name, v in g.writes.items():
        lines.append(f"  {name} <- {_ref(v)}")
    lines.append("  return " + _fmt_tree(g.out_tree, g.outputs))
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


def data_dependent_message() -> str:
    f = user_frame()
    where = ""
    if f is not None:
        where = f" at {f.f_code.co_filename}:{f.f_lineno} (in {f.f_code.co_name})"
    tracer = _dispatch.TRACE[0]
    mod = getattr(tracer, "module_path", "") if tracer is not None else ""
    if mod:
        where += f", module {mod!r}"
    return (
        f"tracenn.compile: Python code read a tensor's value{where} (.item(), bool(t), `if t > 0`, "
        ".tolist(), .numpy() or printing a tensor). While compiling, tensors have only shapes and "
        "dtypes, so control flow on tensor values cannot be captured in one XLA program. Fix it "
        "by computing with tensor ops instead (tracenn.where(cond, a, b) in place of `if`, "
        "clamp/masks in place of value checks), by moving the check out of forward, or compile "
        "with tracenn.compile(model, fallback=\"eager\") to run such calls eagerly.")
