"""The precision of float32 matrix products and convolutions: torch's
``set_float32_matmul_precision`` as JAX's ``jax_default_matmul_precision``.

torch's names and JAX's: "highest" -> "float32" (full float32), "high" -> "tensorfloat32" (TF32
on GPUs that have it; XLA's CPU ignores it), "medium" -> "bfloat16". Unset, JAX's default applies:
full float32 on the CPU, TF32 on recent NVIDIA GPUs and one-pass bfloat16 on TPUs, so the getter
reports "highest" on the CPU and "high" elsewhere (torch's default is "highest" everywhere).
Compiled programs and eager kernels are traced under the setting in force, and recompile when it
changes.
"""
from __future__ import annotations

import jax

_TO_JAX = {"highest": "float32", "high": "tensorfloat32", "medium": "bfloat16"}
_FROM_JAX = {"float32": "highest", "highest": "highest", "tensorfloat32": "high", "high": "high",
             "bfloat16": "medium", "default": None}


def set(precision: str) -> None:  # noqa: A001 (torch's name, used as _precision.set)
    if precision not in _TO_JAX:
        raise RuntimeError(f"Invalid float32 matmul precision: {precision!r}; expected one of "
                           "'highest', 'high', 'medium'")
    jax.config.update("jax_default_matmul_precision", _TO_JAX[precision])


def get() -> str:
    current = jax.config.jax_default_matmul_precision
    name = _FROM_JAX.get(current) if current is not None else None
    if name is not None:
        return name
    platform = jax.config.jax_default_device.platform if jax.config.jax_default_device is not None \
        else jax.default_backend()
    return "highest" if platform == "cpu" else "high"


def set_float32_matmul_precision(precision: str) -> None:
    """torch.set_float32_matmul_precision: "highest" (full float32), "high" (TF32 where the GPU has
    it) or "medium" (bfloat16) for float32 matrix products and convolutions."""
    set(precision)


def get_float32_matmul_precision() -> str:
    """The precision in force (see :func:`set_float32_matmul_precision`)."""
    return get()
