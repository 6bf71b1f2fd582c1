"""Guards on Python float inputs: a trace that branches on a float argument passed as a program
input (``if alpha > 0.5:``, see runtime/floats.py) records the branch it took; the program is
used for the float values that take the same branch, as torch.compile's guard on ``alpha > 0.5``."""
from __future__ import annotations

import operator
import os

import numpy as np

from .graph import _F64, Value, known_value, user_frame


class FloatGuard:
    """A branch a trace took on Python float inputs (``if alpha > 0.5:``): the program is valid for
    float values that give ``value`` the same result, :meth:`holds` (the runtime checks it before
    using the program; a value on the other side compiles a program of its own)."""

    def __init__(self, graph, value, expected):
        self.graph, self.value, self.expected, self.where = graph, value, expected, _where()
        pos = {id(x): k for k, x in graph.float_values()}
        self._fast = _python_eval(value, graph, pos, 0)  # (known_value runs JAX ops: ~250 µs a guard)
        self.reads = _reads(value, pos)  # the float keys it depends on (positions, state names)

    def holds(self, floats: dict) -> bool:
        """``floats``: input position (or state name, for a float attribute) -> this call's value."""
        if self._fast is not None:
            with np.errstate(all="ignore"):
                return bool(self._fast(floats)) == bool(self.expected)
        g = self.graph
        known = {x: np.asarray(floats[k], np.float64) for k, x in g.float_values() if k in floats}
        got = known_value(self.value, g, known)
        return got is not None and np.array_equal(np.asarray(got), self.expected)


_PY_OPS = {"gt": operator.gt, "lt": operator.lt, "ge": operator.ge, "le": operator.le, "eq": operator.eq,
           "ne": operator.ne, "add": operator.add, "sub": operator.sub, "mul": operator.mul,
           "div": operator.truediv, "neg": operator.neg, "abs": abs, "logical_not": np.logical_not,
           "logical_and": np.logical_and, "logical_or": np.logical_or}


def _python_eval(v, graph, pos, depth):
    """``v`` as a function of the float inputs' values (position -> float), computed with NumPy
    float64 scalars (the graph's float64 arithmetic and comparisons, exactly), or None when it
    takes another op or dtype."""
    if id(v) in pos:
        i = pos[id(v)]
        return lambda f: np.float64(f[i])
    if v.kind == "const" and v.shape == () and graph.const_values.get(v.name) is v:
        c = np.asarray(graph.consts[v.name])[()]
        return lambda f: c
    node = v.node if v.kind == "op" else None
    op = _PY_OPS.get(node.op.name) if node is not None and depth < 32 else None
    if op is None or v.shape != () or any(isinstance(k, np.dtype) and k not in (_F64, np.bool_) for k in node.key):
        return None
    args = []
    for x in node.inputs:
        if isinstance(x, Value):
            a = _python_eval(x, graph, pos, depth + 1)
            if a is None:
                return None
            args.append(a)
        elif isinstance(x, (bool, int, float)):
            args.append(lambda f, x=x: x)
        else:
            return None
    return lambda f: op(*[a(f) for a in args])


def _reads(v, pos) -> frozenset:
    """The keys of ``pos`` (id of a float input's Value -> its key) that ``v`` depends on."""
    out, stack, seen = set(), [v], set()
    while stack:
        x = stack.pop()
        if id(x) in pos:
            out.add(pos[id(x)])
            continue
        if id(x) in seen or x.kind != "op" or x.node is None:
            continue
        seen.add(id(x))
        stack += [i for i in x.node.inputs if isinstance(i, Value)]
    return frozenset(out)


def _where() -> str:
    import linecache
    f = user_frame()
    if f is None:
        return "?"
    line = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f"`{line}` at {os.path.basename(f.f_code.co_filename)}:{f.f_lineno}" if line else \
        f"{f.f_code.co_filename}:{f.f_lineno}"
