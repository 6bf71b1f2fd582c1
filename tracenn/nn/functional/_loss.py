"""Losses: l1, mse, cross_entropy, nll, binary_cross_entropy(_with_logits), kl_div, huber, ... ctc."""
from __future__ import annotations

__all__: list[str] = []
