"""``DistributedSampler``: each process's share of a dataset, as ``torch.utils.data.distributed``.

tracenn runs several hosts as JAX processes (``jax.distributed.initialize()``; see
``docs/distributed.md``), so the defaults of ``num_replicas`` and ``rank`` are
``jax.process_count()`` and ``jax.process_index()`` where torch asks its process group.
"""
from __future__ import annotations

import math
from collections.abc import Iterator

from ...random import Generator, randperm
from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """The indices of ``dataset`` that replica ``rank`` of ``num_replicas`` loads.

    Every replica gets ``ceil(len(dataset) / num_replicas)`` indices: the (shuffled) order is
    padded by repeating its start (or, with ``drop_last``, cut) to a multiple of
    ``num_replicas``, and replica ``rank`` takes every ``num_replicas``-th index from ``rank``.

    Args:
        dataset: the dataset (only its length is used).
        num_replicas: how many replicas share it (default: ``jax.process_count()``).
        rank: this replica's index (default: ``jax.process_index()``).
        shuffle: shuffle the order, the same way on every replica (default True).
        seed: the shuffle's seed, the same on every replica; the order of an epoch comes from
            ``seed + epoch`` (tracenn's random stream: not torch's order).
        drop_last: drop the tail instead of padding, so no index appears twice.

    Call :meth:`set_epoch` before each epoch for a new order.

    >>> from tracenn.utils.data import DistributedSampler
    >>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False))
    [1, 4, 7, 0]
    >>> list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False, drop_last=True))
    [1, 4, 7]
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            import jax
            if num_replicas is None:
                num_replicas = jax.process_count()
            if rank is None:
                rank = jax.process_index()
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if self.drop_last and len(self.dataset) % self.num_replicas != 0:
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = Generator().manual_seed(self.seed + self.epoch)
            indices = randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding_size = self.total_size - len(indices)
            if padding_size <= len(indices):
                indices += indices[:padding_size]
            else:
                indices += (indices * math.ceil(padding_size / len(indices)))[:padding_size]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank: self.total_size: self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch, so that ``shuffle`` gives each epoch its own order (the same on every
        replica)."""
        self.epoch = epoch
