"""``tracenn.utils``: torch.utils's data loading (``tracenn.utils.data``) and activation
checkpointing (``tracenn.utils.checkpoint``)."""
from . import checkpoint, data  # noqa: F401

__all__ = ["checkpoint", "data"]
