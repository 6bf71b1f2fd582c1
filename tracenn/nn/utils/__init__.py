"""Utilities for ``tracenn.nn`` (``hooks``: the handles hook registrations return)."""
from . import hooks  # noqa: F401

__all__ = ["hooks"]
