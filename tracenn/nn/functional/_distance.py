"""Distances: cosine_similarity, pairwise_distance, pdist; and one_hot."""
from __future__ import annotations

__all__: list[str] = []
