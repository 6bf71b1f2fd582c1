"""BatchNorm1d/2d/3d, SyncBatchNorm."""
from __future__ import annotations

__all__: list[str] = []
