"""``DataLoader``: iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

Loading runs in the calling process. ``num_workers > 0`` is accepted (so torch code runs unchanged)
but loads in-process too, with a one-time warning: tracenn's tensors live in JAX, whose runtime does
not survive ``fork``, and the usual datasets here are in memory already.

A batch of a plain :class:`TensorDataset` (or a :class:`Subset` of one) with the default collation
is fetched with one gather per tensor instead of one index op per sample; the result is the same
as stacking the samples.
"""
from __future__ import annotations

import math
import warnings

from . import _collate
from .dataset import IterableDataset, Subset, TensorDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info", "default_collate", "default_convert"]

# torch exposes these here too (``from torch.utils.data.dataloader import default_collate``).
default_collate = _collate.default_collate
default_convert = _collate.default_convert


def get_worker_info():
    """Information about the current loader worker: always ``None`` (loading is in-process)."""
    return None


class _InfiniteConstantSampler(Sampler):
    # The "sampler" of an iterable dataset: it only says how many samples to take per batch.
    def __iter__(self):
        while True:
            yield None


_warned_workers = [False]


class DataLoader:
    """Combines a dataset and a sampler, and iterates over batches of samples.

    Args:
        dataset: a map-style :class:`Dataset` (``__getitem__``/``__len__``) or an
            :class:`IterableDataset`.
        batch_size: samples per batch (default 1); ``None`` turns automatic batching off (each
            sample is passed through :func:`default_convert`).
        shuffle: reshuffle the order every epoch (a :class:`RandomSampler`; seed it with
            ``generator``).
        sampler: an iterable of indices (mutually exclusive with ``shuffle``).
        batch_sampler: an iterable of index lists (mutually exclusive with ``batch_size``,
            ``shuffle``, ``sampler`` and ``drop_last``).
        num_workers: accepted for compatibility; loading runs in-process (a warning says so once).
        collate_fn: merges a list of samples into a batch (default :func:`default_collate`).
        pin_memory: accepted, no effect.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        timeout, worker_init_fn, multiprocessing_context, prefetch_factor, persistent_workers,
            pin_memory_device, in_order: accepted for compatibility (checked as torch checks them).
        generator: the :class:`tracenn.Generator` the default ``RandomSampler`` draws from.

    >>> import tracenn
    >>> from tracenn.utils.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(tracenn.arange(10.0), tracenn.arange(10))
    >>> loader = DataLoader(ds, batch_size=4)
    >>> len(loader)
    3
    >>> [y.tolist() for _, y in loader]
    [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    >>> g = tracenn.Generator().manual_seed(0)
    >>> epoch = [y.tolist() for _, y in DataLoader(ds, batch_size=4, shuffle=True, generator=g)]
    >>> sorted(sum(epoch, []))
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None,
                 multiprocessing_context=None, generator=None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True):
        if num_workers < 0:
            raise ValueError("num_workers option should be non-negative; "
                             "use num_workers=0 to disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None.")
        elif num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        elif prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        if num_workers > 0 and not _warned_workers[0]:
            _warned_workers[0] = True
            warnings.warn(
                f"DataLoader(num_workers={num_workers}): tracenn loads batches in the main process "
                "(JAX does not survive fork into worker processes); num_workers is ignored. "
                "Pass num_workers=0 to silence this warning.", UserWarning, stacklevel=2)

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order

        if isinstance(dataset, IterableDataset):
            self._iterable = True
            if shuffle not in {False, None}:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified shuffle option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError(
                    f"DataLoader with IterableDataset: expected unspecified sampler option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        else:
            shuffle = bool(shuffle)
            self._iterable = False

        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                             "with drop_last")

        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = _collate.default_collate if self._auto_collation else _collate.default_convert
        self.collate_fn = collate_fn
        self.persistent_workers = persistent_workers

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        # What the iterator draws from: index lists when batching, single indices otherwise.
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self._iterable:
            return self._iter_iterable()
        return self._iter_map()

    def _iter_map(self):
        fetch = self._fetch_batch if self._auto_collation else self._fetch_one
        for index in self._index_sampler:
            yield fetch(index)

    def _fetch_one(self, index):
        return self.collate_fn(self.dataset[index])

    def _fetch_batch(self, indices):
        if self.collate_fn is _collate.default_collate:
            fast = _gather_tensor_dataset(self.dataset, indices)
            if fast is not None:
                return fast
        getitems = getattr(self.dataset, "__getitems__", None)
        data = getitems(indices) if callable(getitems) else [self.dataset[i] for i in indices]
        return self.collate_fn(data)

    def _iter_iterable(self):
        it = iter(self.dataset)
        if not self._auto_collation:
            for sample in it:
                yield self.collate_fn(sample)
            return
        for slots in self._index_sampler:
            data = []
            for _ in slots:
                try:
                    data.append(next(it))
                except StopIteration:
                    break
            if not data or (self.drop_last and len(data) < len(slots)):
                return
            yield self.collate_fn(data)
            if len(data) < len(slots):
                return

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
            return length
        return len(self._index_sampler)


def _gather_tensor_dataset(dataset, indices):
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
