"""``tracenn.vision``: image transforms and offline datasets for the classic MNIST recipe.

Named ``vision`` (not ``torchvision``) because it is a small subset: ``transforms`` has ``Compose``,
``ToTensor``, ``Normalize`` and ``Lambda`` on numpy images; ``datasets`` reads MNIST/Fashion-MNIST IDX
files you already have and scikit-learn's bundled 8x8 digits. Nothing here downloads.
"""
from . import datasets, transforms  # noqa: F401

__all__ = ["datasets", "transforms"]
