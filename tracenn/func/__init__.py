"""``tracenn.func``: functional access to modules, as ``torch.func``, and JAX interop.

- :func:`vmap`, :func:`grad`, :func:`grad_and_value`, :func:`vjp`, :func:`jvp`, :func:`jacrev`,
  :func:`jacfwd`, :func:`hessian`: torch.func's transforms, on JAX's (see ``_transforms.py``);
  :func:`stack_module_state` and :func:`replace_all_batch_norm_modules_` for model ensembles;
  :func:`linearize` (on ``jvp``) and :func:`functionalize` (see ``_linearize.py``).
- :func:`functional_call` runs a module with some parameters/buffers replaced (``torch.func``'s).
- :func:`to_jax` turns a module into a pure JAX function ``fn(state, *inputs, rng=None) ->
  (outputs, new_state)`` plus its state pytree, for ``jax.jit``/``grad``/``vmap``, optax, orbax.
- :func:`state_pytree` reads a module's state as that pytree; :func:`load_state_pytree` writes
  one back, exactly.

See ``docs/jax_interop.md``.
"""
from ._functional_call import functional_call
from ._jax import JaxFunction, load_state_pytree, state_pytree, to_jax
from ._grad import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp
from ._linearize import functionalize, linearize
from ._vmap import replace_all_batch_norm_modules_, stack_module_state, vmap

__all__ = ["functional_call", "to_jax", "state_pytree", "load_state_pytree", "JaxFunction", "vmap", "grad",
           "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "stack_module_state",
           "replace_all_batch_norm_modules_", "linearize", "functionalize"]
