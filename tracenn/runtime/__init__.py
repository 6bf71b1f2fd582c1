"""The compiled-call runtime (see ARCHITECTURE.md): what runs on every call of a compiled module or
function, and never imports the tracer (the compiler hands it a ``build`` callback).

- :mod:`~tracenn.runtime.compiled`: :class:`~tracenn.runtime.compiled.Compiled` — guards, the
  program cache, recompile reasons and ``explain()``, state write-back, donation, and the
  autograd bridge (outputs whose ``grad_fn`` runs the program's jitted pullback).
- :mod:`~tracenn.runtime.refs`: state read at each call that is not a fixed tensor (a
  parameter's ``.grad``, a param group's learning rate).
"""
