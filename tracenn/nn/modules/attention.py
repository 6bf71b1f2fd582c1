"""MultiheadAttention (torch keeps it in activation.py; here it has its own file)."""
from __future__ import annotations

__all__: list[str] = []
