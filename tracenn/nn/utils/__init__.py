"""Utilities for ``tracenn.nn`` (``hooks``: the handles hook registrations return)."""
from . import hooks  # noqa: F401
from . import rnn  # noqa: F401  (PackedSequence, pack_padded_sequence, pad_sequence, ...)
from .clip_grad import (  # noqa: F401
    clip_grad_norm, clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm)
from .convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401
from . import fusion, stateless  # noqa: F401
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights  # noqa: F401
from .init import skip_init  # noqa: F401
from ._memory_format import convert_conv2d_weight_memory_format, convert_conv3d_weight_memory_format  # noqa: F401

__all__ = ["hooks"]
__all__ += ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
            "parameters_to_vector", "vector_to_parameters", "fuse_conv_bn_eval", "fuse_conv_bn_weights",
            "fuse_linear_bn_eval", "fuse_linear_bn_weights", "skip_init", "stateless", "parametrize",
            "parametrizations", "prune"]
__all__ += ["convert_conv2d_weight_memory_format", "convert_conv3d_weight_memory_format"]


def __getattr__(name):
    # parametrize and parametrizations subclass Module, which imports this package, and prune
    # uses _computed, which does: loaded on use
    if name in ("parametrize", "parametrizations", "prune"):
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    if name in ("weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"):
        import importlib
        return getattr(importlib.import_module(f"{__name__}._computed"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
