"""The compiler: trace a module or function to a printable graph IR, run graph passes, and lower
the graph to one ``jax.jit`` program (see ARCHITECTURE.md and docs/ir.md).

- :mod:`~tracenn.compiler.graph`: the IR (``Value``, ``Node``, ``Graph``) and its printed form.
- :mod:`~tracenn.compiler.trace`: the tracer (symbolic tensors through the op registry).
- :mod:`~tracenn.compiler.passes`: ``Graph -> Graph`` passes and the default pipeline.
- :mod:`~tracenn.compiler.lower`: the ``Interpreter`` base and the lowering to JAX.
- :mod:`~tracenn.compiler.check`: the graph checker and ``check=True`` comparison with eager.
- :mod:`~tracenn.compiler.api`: ``tracenn.compile``.
"""
from .graph import Graph, Node, Value  # noqa: F401
from .lower import Interpreter  # noqa: F401
from .passes import DEFAULT_PASSES, run_passes  # noqa: F401
from .api import compile  # noqa: F401,E402  (torch.compiler.compile is torch.compile)
from .torch_names import (  # noqa: F401,E402  (torch.compiler's functions)
    allow_in_graph, assume_constant_result, cudagraph_mark_step_begin, disable, get_default_backend,
    is_compiling, is_dynamo_compiling, is_exporting, list_backends, nested_compile_region, reset)
