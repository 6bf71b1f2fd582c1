"""LayerNorm, GroupNorm, LocalResponseNorm, RMSNorm."""
from __future__ import annotations

__all__: list[str] = []
