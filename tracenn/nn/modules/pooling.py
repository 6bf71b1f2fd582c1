"""Pooling layers: MaxPool, MaxUnpool, AvgPool, AdaptiveAvgPool, AdaptiveMaxPool, LPPool."""
from __future__ import annotations

__all__: list[str] = []
