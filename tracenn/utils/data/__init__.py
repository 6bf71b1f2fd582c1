"""``tracenn.utils.data``: torch.utils.data's datasets, samplers, collation and ``DataLoader``.

The same classes and semantics as torch: map-style and iterable datasets, the samplers that order
them, ``default_collate`` that turns a list of samples into a batch, and a ``DataLoader`` that ties
them together. Random orders come from tracenn's generators, so a seed reproduces an epoch's order
(tracenn's random streams are not torch's: the same seed gives a different order than torch).
"""
from ._collate import collate, default_collate, default_collate_fn_map, default_convert  # noqa: F401
from . import distributed  # noqa: F401
from .dataloader import DataLoader, get_worker_info  # noqa: F401
from .dataset import (  # noqa: F401
    ChainDataset, ConcatDataset, Dataset, IterableDataset, StackDataset, Subset, TensorDataset, random_split)
from .distributed import DistributedSampler  # noqa: F401
from .sampler import (  # noqa: F401
    BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler, WeightedRandomSampler)

__all__ = [
    "BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "IterableDataset",
    "RandomSampler", "Sampler", "SequentialSampler", "StackDataset", "Subset", "SubsetRandomSampler",
    "TensorDataset", "WeightedRandomSampler", "collate", "default_collate", "default_collate_fn_map",
    "default_convert",
    "get_worker_info", "random_split",
]
