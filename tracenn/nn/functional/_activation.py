"""Activations: relu6, elu, selu, celu, gelu, silu, mish, leaky_relu, prelu, rrelu, hard*, soft*, glu, softmax family, ..."""
from __future__ import annotations

__all__: list[str] = []
