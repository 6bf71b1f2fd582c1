"""``torch.autograd.profiler``'s ``record_function`` (the same as ``tracenn.profiler``'s)."""
from ..profiler import record_function  # noqa: F401

__all__ = ["record_function"]
