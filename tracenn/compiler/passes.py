"""Graph passes: plain ``Graph -> Graph`` functions, run in the order of :data:`DEFAULT_PASSES`.

A pass never changes the graph it is given: it works on ``graph.copy()`` and returns the result,
so the graph before and after can both be printed. Write your own the same way and pass it to
``tracenn.compile(model, passes=[...])``.
"""
from __future__ import annotations

from .graph import Graph, Value


def dead_code(graph: Graph) -> Graph:
    """Drop nodes whose outputs nobody reads (outputs, writes and other nodes are readers).
    Random draws stay dropped too: a draw nobody reads changes nothing but the counter, which
    the program advances by the traced count regardless."""
    g = graph.copy()
    live = {v for v in g.outputs if isinstance(v, Value)} | set(g.writes.values())
    kept = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outputs):
            kept.append(n)
            live.update(v for v in n.inputs if isinstance(v, Value))
    kept.reverse()
    g.nodes = kept
    for name in [k for k, v in g.const_values.items() if v not in live]:
        del g.const_values[name]
        del g.consts[name]
    return g


DEFAULT_PASSES = [dead_code]


def run_passes(graph: Graph, passes=None, *, check: bool = False) -> Graph:
    """Apply ``passes`` (default :data:`DEFAULT_PASSES`) in order; with ``check`` verify the
    graph after each one (the tests run with it on)."""
    from .check import verify
    for p in DEFAULT_PASSES if passes is None else passes:
        out = p(graph)
        if not isinstance(out, Graph):
            raise TypeError(f"graph pass {getattr(p, '__name__', p)!r} returned "
                            f"{type(out).__name__}, expected a Graph")
        if check:
            verify(out, after=getattr(p, "__name__", repr(p)))
        graph = out
    return graph
