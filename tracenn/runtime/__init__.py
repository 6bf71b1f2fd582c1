"""The compiled-call runtime (see ARCHITECTURE.md): what runs on every call of a compiled module or
function, and never imports the tracer (the compiler hands it a ``build`` callback).

- :mod:`~tracenn.runtime.compiled`: :class:`~tracenn.runtime.compiled.Compiled` — guards, the
  program cache, ``explain()``.
- :mod:`~tracenn.runtime.module_wrapper`: :class:`~tracenn.runtime.module_wrapper.CompiledModule` —
  a compiled module is an ``nn.Module`` (containers, ``_orig_mod``) whose state is the model's.
- :mod:`~tracenn.runtime.device_guard`: the devices in the guard key, once several are in use.
- :mod:`~tracenn.runtime.entry`: :class:`~tracenn.runtime.entry.Entry` — one cached program and
  its call paths (donation, gradient plans, RNG counters, write-back, the outputs).
- :mod:`~tracenn.runtime.fastcall`: the two cheapest calls (one tensor in, one out, no RNG or
  writes; no grad, or grad with the forward recomputed), generated per state count.
- :mod:`~tracenn.runtime.writes`: state in and out of a call — donation, old grads dropped
  unread, and the setters that write results back into tensors, grads and optimizer state.
- :mod:`~tracenn.runtime.gradcall`: the autograd bridge of grad-enabled calls (outputs whose
  ``grad_fn`` runs the program's jitted pullback, recomputes a small forward, or scales the
  gradients a value-and-grad program returned).
- :mod:`~tracenn.runtime.reasons`: why a call recompiled, in plain words.
- :mod:`~tracenn.runtime.refs`: state read at each call that is not a fixed tensor (a
  parameter's ``.grad``, a param group's learning rate).
"""
