"""Vision: pad, pixel_shuffle/unshuffle, interpolate/upsample, grid_sample, affine_grid."""
from __future__ import annotations

__all__: list[str] = []
