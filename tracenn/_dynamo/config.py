"""``tracenn._dynamo.config``: torch._dynamo's settings that training scripts set.

Two of them change what ``tracenn.compile`` does, read when ``tracenn.compile`` is called:

- ``cache_size_limit`` (torch's newer name: ``recompile_limit``; one setting): the default
  ``cache_size_limit`` of compiled calls, the programs one compiled call keeps before new input
  signatures run eagerly;
- ``suppress_errors``: True makes ``fallback="eager"`` the default, so a call that cannot be one
  program runs eagerly (with one warning) instead of raising, as torch falls back to eager.

The others are kept so that code reading them back sees what it set, and change nothing: tracenn
has no dynamo (it traces by running the Python code with symbolic tensors), compiles one program
per input shape and captures data-dependent code with ``tracenn.cond``/``tracenn.while_loop``.
Setting a name torch does not have raises torch's AttributeError.
"""
from __future__ import annotations

import sys
import types

_DEFAULTS = {
    "cache_size_limit": 8, "accumulated_cache_size_limit": 256, "suppress_errors": False, "verbose": False,
    "capture_scalar_outputs": False, "capture_dynamic_output_shape_ops": False, "optimize_ddp": True,
    "automatic_dynamic_shapes": True, "assume_static_by_default": True, "specialize_int": False,
    "specialize_float": False, "inline_inbuilt_nn_modules": True, "force_parameter_static_shapes": True,
    "allow_unspec_int_on_nn_module": False, "error_on_recompile": False, "guard_nn_modules": True,
    "use_numpy_random_stream": False, "dynamic_shapes": True,
    "skip_nnmodule_hook_guards": True, "replay_record_enabled": False, "raise_on_ctx_manager_usage": True,
    "compiled_autograd": False, "allow_rnn": False, "prefer_deferred_runtime_asserts_over_guards": False,
}
_ALIASES = {"recompile_limit": "cache_size_limit", "accumulated_recompile_limit": "accumulated_cache_size_limit"}


class _Config(types.ModuleType):
    def __getattr__(self, name):
        values = self.__dict__["_values"]
        key = _ALIASES.get(name, name)
        if key in values:
            return values[key]
        raise AttributeError(f"tracenn._dynamo.config.{name} does not exist")

    def __setattr__(self, name, value):
        key = _ALIASES.get(name, name)
        if key not in _DEFAULTS:
            raise AttributeError(f"tracenn._dynamo.config.{name} does not exist")
        self.__dict__["_values"][key] = value

    def __dir__(self):
        return sorted(set(_DEFAULTS) | set(_ALIASES))

    def patch(self, changes=None, **kwargs):
        """Set some settings for a ``with`` block (or a decorated function), then restore them."""
        return _Patch(self, {**(changes or {}), **kwargs})


class _Patch:
    def __init__(self, config, changes):
        self.config, self.changes, self.saved = config, changes, []

    def __enter__(self):
        self.saved.append({k: getattr(self.config, k) for k in self.changes})
        for k, v in self.changes.items():
            setattr(self.config, k, v)

    def __exit__(self, *exc):
        for k, v in self.saved.pop().items():
            setattr(self.config, k, v)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapper


_self = _Config(__name__, __doc__)
_self.__dict__["_values"] = dict(_DEFAULTS)
sys.modules[__name__] = _self
