"""Datasets and random_split: the same script under tracenn and torch gives the same results."""
from __future__ import annotations

import pytest

import tracenn
from tracenn.utils.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split


class Range(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return i


def test_tensor_dataset(lib):
    ds = lib.utils.data.TensorDataset(lib.arange(6).view(3, 2), lib.tensor([7, 8, 9]))
    assert len(ds) == 3
    x, y = ds[1]
    assert x.tolist() == [2, 3] and y.item() == 8
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):
        lib.utils.data.TensorDataset(lib.zeros(3), lib.zeros(4))


def test_concat_and_subset(lib):
    data = lib.utils.data
    ds = data.ConcatDataset([[1, 2], [3, 4, 5]])
    assert len(ds) == 5 and [ds[i] for i in range(5)] == [1, 2, 3, 4, 5]
    assert ds[-1] == 5 and ds.cumulative_sizes == [2, 5]
    with pytest.raises(ValueError, match="absolute value of index should not exceed dataset length"):
        ds[-6]
    with pytest.raises(AssertionError, match="datasets should not be an empty iterable"):
        data.ConcatDataset([])
    sub = data.Subset(["a", "b", "c"], [2, 0])
    assert len(sub) == 2 and sub[0] == "c" and sub.__getitems__([1, 0]) == ["a", "c"]


def test_dataset_add_and_iterable_chain(lib):
    data = lib.utils.data

    class It(data.IterableDataset):
        def __iter__(self):
            return iter([1, 2])

    assert list(It() + It()) == [1, 2, 1, 2]
    with pytest.raises(AssertionError, match="ConcatDataset does not support IterableDataset"):
        data.ConcatDataset([It()])


def test_stack_dataset(lib):
    data = lib.utils.data
    assert data.StackDataset([1, 2], ["a", "b"])[1] == (2, "b")
    assert data.StackDataset(x=[1, 2], y=["a", "b"])[0] == {"x": 1, "y": "a"}
    with pytest.raises(ValueError, match="Size mismatch between datasets"):
        data.StackDataset([1], [1, 2])


@pytest.mark.parametrize("n, fracs, sizes", [
    (10, [0.5, 0.5], [5, 5]),
    (10, [0.3, 0.3, 0.4], [3, 3, 4]),
    (11, [0.5, 0.5], [6, 5]),
    (7, [0.1, 0.2, 0.7], [1, 2, 4]),
    (5, [1 / 3, 1 / 3, 1 / 3], [2, 2, 1]),
])
def test_random_split_fraction_rounding(lib, n, fracs, sizes):
    splits = lib.utils.data.random_split(range(n), fracs, generator=lib.Generator().manual_seed(0))
    assert [len(s) for s in splits] == sizes
    assert sorted(i for s in splits for i in s) == list(range(n))


def test_random_split_is_seeded_and_disjoint():
    a = random_split(Range(20), [15, 5], generator=tracenn.Generator().manual_seed(1))
    b = random_split(Range(20), [15, 5], generator=tracenn.Generator().manual_seed(1))
    c = random_split(Range(20), [15, 5], generator=tracenn.Generator().manual_seed(2))
    assert a[0].indices == b[0].indices and a[0].indices != c[0].indices
    assert sorted(a[0].indices + a[1].indices) == list(range(20))
    tracenn.manual_seed(5)
    d = random_split(Range(20), [10, 10])  # default: the global generator
    tracenn.manual_seed(5)
    assert random_split(Range(20), [10, 10])[0].indices == d[0].indices


def test_random_split_errors(lib):
    data = lib.utils.data
    with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the input dataset!"):
        data.random_split(range(10), [3, 3])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        data.random_split(range(1), [0.5, 0.5])


def test_subset_overriding_getitem_needs_getitems():
    class Bad(Subset):
        def __getitem__(self, i):
            return 0

    with pytest.raises(NotImplementedError, match="overrides __getitem__ but not __getitems__"):
        Bad([1], [0])


def test_tensor_dataset_is_a_dataset():
    assert isinstance(TensorDataset(tracenn.zeros(1)), Dataset)
    assert isinstance(ConcatDataset([[1]]), Dataset)
