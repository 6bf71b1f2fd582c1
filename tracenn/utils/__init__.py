"""``tracenn.utils``: torch.utils's data loading (``tracenn.utils.data``) and activation
checkpointing (``tracenn.utils.checkpoint``), and ``swap_tensors``."""
from . import checkpoint, data, hooks  # noqa: F401
from ._swap_tensors import swap_tensors  # noqa: F401

__all__ = ["checkpoint", "data", "swap_tensors"]
