"""``tracenn.utils``: torch.utils's data loading (``tracenn.utils.data``)."""
from . import data  # noqa: F401

__all__ = ["data"]
