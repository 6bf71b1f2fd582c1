"""``torch.signal``: signal-processing helpers; so far its ``windows`` (scipy.signal-style windows)."""
from . import windows  # noqa: F401

__all__ = ["windows"]
