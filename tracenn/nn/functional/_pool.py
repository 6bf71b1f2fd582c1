"""Pooling: max/avg/lp/adaptive pooling and max_unpool."""
from __future__ import annotations

__all__: list[str] = []
