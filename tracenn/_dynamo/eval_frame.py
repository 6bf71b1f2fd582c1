"""``torch._dynamo.eval_frame``: ``OptimizedModule``, the class of a compiled module.

Libraries test for a compiled model with ``isinstance(model, torch._dynamo.eval_frame.OptimizedModule)``
(Accelerate) or ``from torch._dynamo import OptimizedModule`` (Lightning) and unwrap it with
``model._orig_mod``; here the class is :class:`~tracenn.runtime.module_wrapper.CompiledModule`.
"""
from __future__ import annotations

from ..runtime.module_wrapper import CompiledModule as OptimizedModule  # noqa: F401
