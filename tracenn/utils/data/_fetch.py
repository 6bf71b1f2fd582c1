"""Fetching one batch from a dataset: what the DataLoader runs in its own process (``num_workers=0``)
and in each worker process alike, as torch's ``_utils/fetch.py``.

A batch of a plain :class:`TensorDataset` (or a :class:`Subset` of one) with the default collation
is fetched with one gather per tensor instead of one index op per sample; the result is the same
as stacking the samples.
"""
from __future__ import annotations

from . import _collate
from .dataset import Subset, TensorDataset


def fetch_map(dataset, collate_fn, auto_collation: bool, index):
    """The batch for one index list (``auto_collation``) or one sample for one index."""
    if not auto_collation:
        return collate_fn(dataset[index])
    if collate_fn is _collate.default_collate:
        fast = gather_tensor_dataset(dataset, index)
        if fast is not None:
            return fast
    getitems = getattr(dataset, "__getitems__", None)
    data = getitems(index) if callable(getitems) else [dataset[i] for i in index]
    return collate_fn(data)


class IterableFetcher:
    """Pulls batches from one pass over an iterable dataset; ``fetch`` raises StopIteration at the end.

    With ``auto_collation`` a fetch takes ``len(slots)`` samples; a short last batch ends the pass
    (and is dropped with ``drop_last``). Without it, each fetch converts one sample.
    """

    def __init__(self, dataset, auto_collation: bool, collate_fn, drop_last: bool):
        self.dataset_iter = iter(dataset)
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self.ended = False

    def fetch(self, slots):
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate_fn(next(self.dataset_iter))
        data = []
        for _ in slots:
            try:
                data.append(next(self.dataset_iter))
            except StopIteration:
                self.ended = True
                break
        if not data or (self.drop_last and len(data) < len(slots)):
            self.ended = True
            raise StopIteration
        return self.collate_fn(data)


def gather_tensor_dataset(dataset, indices):
    """One gather per tensor for a plain TensorDataset (or Subset chain over one); None otherwise."""
    while type(dataset) is Subset:
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset or not indices:
        return None
    from ..._api.creation import tensor
    idx = tensor(indices)
    # default_collate of a list of tuples is a list of stacked fields.
    return [t[idx] for t in dataset.tensors]
