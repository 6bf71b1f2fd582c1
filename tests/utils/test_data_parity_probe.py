"""Regression tests for torch.utils.data differences found by parity probes.

* ``DistributedSampler`` (``torch.utils.data.distributed`` / ``torch.utils.data``) was missing.
"""
import pytest

import tracenn
from tracenn.utils.data import DataLoader, DistributedSampler, TensorDataset

CASES = [(10, 3, False), (10, 3, True), (9, 3, False), (9, 3, True), (2, 4, False), (7, 1, True), (1, 3, False)]


@pytest.mark.parametrize("n,replicas,drop_last", CASES)
def test_distributed_sampler_unshuffled_known_values(n, replicas, drop_last):
    """Replica r takes every replicas-th index from r of the padded (or cut) order."""
    shares = [list(DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last))
              for r in range(replicas)]
    per = (n // replicas) if drop_last else -(-n // replicas)
    order = list(range(n))
    order = order[: per * replicas] if drop_last else (order * (replicas + 1))[: per * replicas]
    assert shares == [order[r::replicas] for r in range(replicas)]
    assert all(len(DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)) == per
               for r in range(replicas))


def test_distributed_sampler_documented_example():
    assert list(DistributedSampler(range(10), num_replicas=3, rank=1, shuffle=False)) == [1, 4, 7, 0]
    assert list(DistributedSampler(range(10), num_replicas=3, rank=2, shuffle=False, drop_last=True)) == [2, 5, 8]


def test_distributed_sampler_shuffle_partitions_and_follows_the_epoch():
    shares = [DistributedSampler(range(12), num_replicas=3, rank=r, seed=4) for r in range(3)]
    epoch0 = [list(s) for s in shares]
    assert sorted(sum(epoch0, [])) == list(range(12))  # the replicas split one shared permutation
    assert epoch0 == [list(s) for s in shares]  # the same epoch: the same order
    for s in shares:
        s.set_epoch(1)
    epoch1 = [list(s) for s in shares]
    assert sorted(sum(epoch1, [])) == list(range(12)) and epoch1 != epoch0
    assert shares[0].epoch == 1


def test_distributed_sampler_defaults_and_errors():
    s = DistributedSampler(range(5))  # one JAX process: the whole dataset
    assert (s.num_replicas, s.rank, len(s)) == (1, 0, 5)
    assert sorted(s) == list(range(5))
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(5), num_replicas=3, rank=3)
    with pytest.raises(ValueError, match="Invalid rank -1"):
        DistributedSampler(range(5), num_replicas=3, rank=-1)
    assert tracenn.utils.data.distributed.DistributedSampler is DistributedSampler


def test_distributed_sampler_in_a_dataloader():
    ds = TensorDataset(tracenn.arange(10))
    loader = DataLoader(ds, batch_size=2, sampler=DistributedSampler(ds, 2, 1, shuffle=False))
    assert len(loader) == 3
    assert [b[0].tolist() for b in loader] == [[1, 3], [5, 7], [9]]


@pytest.mark.parametrize("n,replicas,drop_last", CASES)
def test_distributed_sampler_matches_torch_unshuffled(n, replicas, drop_last, torch):
    from torch.utils.data.distributed import DistributedSampler as TorchSampler
    for r in range(replicas):
        ours = DistributedSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        theirs = TorchSampler(range(n), replicas, r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
