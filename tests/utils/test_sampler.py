"""Samplers: orders, lengths, seeding and torch's argument errors."""
from __future__ import annotations

import collections

import pytest

import tracenn
from tracenn.utils.data import (BatchSampler, RandomSampler, SequentialSampler, SubsetRandomSampler,
                                WeightedRandomSampler)


def _g(seed):
    return tracenn.Generator().manual_seed(seed)


def test_sequential():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    assert len(SequentialSampler(range(4))) == 4


def test_random_sampler_is_a_seeded_permutation():
    a = list(RandomSampler(range(50), generator=_g(0)))
    assert sorted(a) == list(range(50)) and a != list(range(50))
    assert a == list(RandomSampler(range(50), generator=_g(0)))
    assert a != list(RandomSampler(range(50), generator=_g(1)))


def test_random_sampler_epochs_differ_and_global_seed_reproduces():
    s = RandomSampler(range(30))
    tracenn.manual_seed(3)
    e1, e2 = list(s), list(s)
    tracenn.manual_seed(3)
    assert [list(s), list(s)] == [e1, e2] and e1 != e2


def test_random_sampler_num_samples_and_replacement():
    s = RandomSampler(range(5), num_samples=12, generator=_g(0))
    out = list(s)
    assert len(s) == 12 and len(out) == 12
    assert sorted(out[:5]) == list(range(5)) and sorted(out[5:10]) == list(range(5))  # whole permutations first
    r = RandomSampler(range(3), replacement=True, num_samples=70, generator=_g(0))
    out = list(r)
    assert len(out) == 70 and set(out) == {0, 1, 2}


def test_random_sampler_errors(lib):
    data = lib.utils.data
    with pytest.raises(TypeError, match="replacement should be a boolean value, but got replacement=1"):
        data.RandomSampler(range(3), replacement=1)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        data.RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=0"):
        data.RandomSampler([])


def test_subset_random_sampler():
    s = SubsetRandomSampler([10, 20, 30, 40], generator=_g(0))
    assert sorted(s) == [10, 20, 30, 40] and len(s) == 4
    a = list(SubsetRandomSampler([1, 2, 3], generator=_g(4)))
    assert a == list(SubsetRandomSampler([1, 2, 3], generator=_g(4)))


def test_weighted_random_sampler():
    s = WeightedRandomSampler([0.0, 3.0, 1.0], 400, generator=_g(0))
    counts = collections.Counter(s)
    assert len(s) == 400 and counts[0] == 0 and counts[1] > 2 * counts[2] > 0
    no_rep = list(WeightedRandomSampler([1.0, 1.0, 1.0, 1.0], 4, replacement=False, generator=_g(0)))
    assert sorted(no_rep) == [0, 1, 2, 3]


def test_weighted_random_sampler_errors(lib):
    data = lib.utils.data
    with pytest.raises(ValueError, match="num_samples should be a positive integer value, but got num_samples=True"):
        data.WeightedRandomSampler([1.0], True)
    with pytest.raises(ValueError, match="replacement should be a boolean value, but got replacement=0"):
        data.WeightedRandomSampler([1.0], 1, replacement=0)
    with pytest.raises(ValueError, match=r"weights should be a 1d sequence but given weights have shape \(1, 2\)"):
        data.WeightedRandomSampler([[1.0, 2.0]], 1)


@pytest.mark.parametrize("n, bs, drop, expect_len", [(10, 3, False, 4), (10, 3, True, 3), (9, 3, True, 3),
                                                     (2, 5, True, 0), (0, 2, False, 0)])
def test_batch_sampler(lib, n, bs, drop, expect_len):
    data = lib.utils.data
    bsamp = data.BatchSampler(data.SequentialSampler(range(n)), bs, drop)
    batches = list(bsamp)
    assert len(bsamp) == expect_len == len(batches)
    flat = [i for b in batches for i in b]
    assert flat == list(range(len(flat)))
    assert all(len(b) == bs for b in batches[:-1] if b)


def test_batch_sampler_errors(lib):
    data = lib.utils.data
    with pytest.raises(ValueError, match="batch_size should be a positive integer value, but got batch_size=0"):
        data.BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="drop_last should be a boolean value, but got drop_last=1"):
        data.BatchSampler(range(3), 2, 1)


def test_batch_sampler_over_plain_iterable():
    assert list(BatchSampler([5, 6, 7], 2, False)) == [[5, 6], [7]]
