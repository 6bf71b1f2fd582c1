"""``DataLoader``: iterate over a dataset in batches, as ``torch.utils.data.DataLoader``.

``num_workers=0`` (the default) loads in the calling process. ``num_workers > 0`` loads in that many
worker processes, started with ``spawn`` (``_worker_iter.py`` is the main-process side, ``_worker.py``
what runs in a worker); ``fork`` is refused, because JAX's runtime does not survive it.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import warnings

import numpy as np

from . import _collate
from ._fetch import IterableFetcher, fetch_map
from ._worker import get_worker_info
from ._worker_iter import WorkerIter, worker_context
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "get_worker_info", "default_collate", "default_convert"]

# torch exposes these here too (``from torch.utils.data.dataloader import default_collate``).
default_collate = _collate.default_collate
default_convert = _collate.default_convert


class _InfiniteConstantSampler(Sampler):
    # The "sampler" of an iterable dataset: it only says how many samples to take per batch.
    def __iter__(self):
        while True:
            yield None


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
        num_workers: how many worker processes load batches (default 0: load in this process).
            See "Worker processes" below.
        collate_fn: merges a list of samples into a batch (default :func:`default_collate`).
        pin_memory: accepted, no effect.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        timeout: with workers, seconds to wait for a batch before ``RuntimeError("DataLoader timed
            out after ... seconds")`` (0: wait for ever), counted once every worker has started.
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker after it is seeded.
        multiprocessing_context: how workers start: ``"spawn"`` (the default, whatever
            multiprocessing's global start method is) or ``"forkserver"``,
            or a context object; ``"fork"`` raises ``ValueError`` (JAX does not survive fork, and a
            forkserver that imported tracenn with your main module forks a running JAX too: prefer
            spawn).
        generator: the :class:`tracenn.Generator` the default ``RandomSampler`` draws from; the
            workers' seeds derive from it too.
        prefetch_factor: batches in flight per worker (default 2 with workers).
        persistent_workers: keep the workers alive between epochs (passes over the loader).
        pin_memory_device: accepted, no effect.
        in_order: with workers, return batches in sampler order (default); ``False`` returns
            each batch as soon as it arrives.

    Worker processes: each worker is a fresh Python process that imports tracenn (a few seconds)
    with JAX on the CPU only, receives a pickled copy of the dataset, ``collate_fn`` and
    ``worker_init_fn`` (define them at the top level of a module), and answers index batches handed
    out round-robin; batches come back pickled (tensors as NumPy arrays) and in order. In a worker,
    :func:`get_worker_info` gives its ``id``, ``num_workers``, ``seed`` and ``dataset`` (an
    :class:`IterableDataset` shards itself with it); Python's ``random`` and tracenn's global
    generator are seeded with ``seed = base_seed + id`` and NumPy's from (``base_seed``, ``id``), as
    torch does. ``base_seed`` derives from the state of ``generator`` (or of the global generator)
    and the epoch, without drawing from it, so ``num_workers`` changes neither the shuffled order nor
    later random numbers. An exception in a worker is raised here as the same type, with the message
    ``Caught ValueError in DataLoader worker process 1.`` and the worker's traceback. Workers stop
    when the epoch ends (unless ``persistent_workers``), when the iterator is garbage-collected, and at
    exit.

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

        self.dataset = dataset
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.in_order = in_order
        self._iterator = None  # the persistent workers' iterator
        self._epochs = 0  # iterators made so far (each gets its own worker seeds)

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
        if num_workers > 0:
            _check_worker_number(num_workers)

    @property
    def multiprocessing_context(self):
        return self._multiprocessing_context

    @multiprocessing_context.setter
    def multiprocessing_context(self, value):
        self._multiprocessing_context = worker_context(value, self.num_workers)

    def _worker_context(self):
        return self._multiprocessing_context or multiprocessing.get_context("spawn")

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        # What the iterator draws from: index lists when batching, single indices otherwise.
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self):
        if self.num_workers > 0:
            if not self.persistent_workers:
                return WorkerIter(self, self._base_seed())
            if self._iterator is None:
                self._iterator = WorkerIter(self, self._base_seed())
            else:
                self._iterator._reset()
            return self._iterator
        if self._iterable:
            return self._iter_iterable()
        return self._iter_map()

    def _base_seed(self) -> int:
        # torch draws the workers' base seed from the generator; tracenn derives it from the
        # generator's state and the epoch instead, so loading with workers neither changes the
        # shuffled order (the sampler draws next) nor the numbers drawn after the epoch.
        from ...random import default_generator
        g = self.generator if self.generator is not None else default_generator
        self._epochs += 1
        words = [g._seed & 0xFFFFFFFFFFFFFFFF, g._counter, self._epochs]
        return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0] >> np.uint64(1))

    def _iter_map(self):
        dataset, collate_fn, auto_collation = self.dataset, self.collate_fn, self._auto_collation
        for index in self._index_sampler:
            yield fetch_map(dataset, collate_fn, auto_collation, index)

    def _iter_iterable(self):
        fetch = IterableFetcher(self.dataset, self._auto_collation, self.collate_fn, self.drop_last).fetch
        for slots in self._index_sampler:
            try:
                batch = fetch(slots)
            except StopIteration:
                return
            yield batch

    def __len__(self) -> int:
        if self._iterable:
            length = len(self.dataset)
            if self.batch_size is not None:
                length = length // self.batch_size if self.drop_last else math.ceil(length / self.batch_size)
            return length
        return len(self._index_sampler)


def _check_worker_number(num_workers: int) -> None:
    # torch's warning when a loader starts more workers than this process may use CPUs.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if cpus is None or num_workers > cpus:
        suggest = ("DataLoader is not able to compute a suggested max number of worker in current system."
                   if cpus is None else
                   f"Our suggested max number of worker in current system is {cpus}"
                   f"{'' if hasattr(os, 'sched_getaffinity') else ' (`cpuset` is not taken into account)'}, "
                   "which is smaller than what this DataLoader is going to create.")
        warnings.warn(
            f"This DataLoader will create {num_workers} worker processes in total. {suggest} Please be aware "
            "that excessive worker creation might get DataLoader running slow or even freeze, lower the worker "
            "number to avoid potential slowness/freeze if necessary.", UserWarning, stacklevel=3)
