"""``tracenn.utils.tensorboard``: ``torch.utils.tensorboard``'s ``SummaryWriter`` without the
``tensorboard`` package. Event files (TFRecord-framed ``Event`` protobufs) are encoded by hand, so
TensorBoard reads what this writes, and nothing beyond NumPy is needed to write it.

Imported on demand (``from tracenn.utils.tensorboard import SummaryWriter``), as in torch;
``import tracenn`` does not load it.
"""
from .writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter"]
