"""DataLoader: batching, ordering, seeded shuffling, drop_last, samplers, iterable datasets, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
from tracenn.utils.data import (BatchSampler, DataLoader, Dataset, IterableDataset, SequentialSampler, Subset,
                                TensorDataset, default_collate)


class Squares(Dataset):
    def __init__(self, n=10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"x": np.array([i, i * i], dtype=np.float32), "label": i % 3, "name": f"s{i}"}


def _labels(loader):
    return [b[1].tolist() for b in loader]


def _ds(n=10):
    return TensorDataset(tracenn.arange(float(n)).view(n, 1), tracenn.arange(n))


def test_sequential_batches_and_len(lib, to_plain):
    data = lib.utils.data
    ds = data.TensorDataset(lib.arange(10.0).view(10, 1), lib.arange(10))
    loader = data.DataLoader(ds, batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert isinstance(batches[0], list) and tuple(batches[0][0].shape) == (4, 1)
    assert to_plain(batches[2][0]) == ("tensor", "float32", [2, 1], [[8.0], [9.0]])


@pytest.mark.parametrize("n, bs, drop, lens", [(10, 4, True, [4, 4]), (10, 4, False, [4, 4, 2]), (8, 4, True, [4, 4]),
                                               (3, 4, True, [])])
def test_drop_last(n, bs, drop, lens):
    loader = DataLoader(_ds(n), batch_size=bs, drop_last=drop)
    assert [len(y) for y in _labels(loader)] == lens and len(loader) == len(lens)


def test_shuffle_is_reproducible_with_a_seeded_generator():
    def epochs(seed, k=2):
        loader = DataLoader(_ds(20), batch_size=5, shuffle=True, generator=tracenn.Generator().manual_seed(seed))
        return [sum(_labels(loader), []) for _ in range(k)]

    a, b = epochs(0), epochs(0)
    assert a == b                                  # same seed, same epochs
    assert a[0] != a[1]                            # a new order each epoch
    assert sorted(a[0]) == list(range(20)) and a[0] != list(range(20))
    assert epochs(1)[0] != a[0]


def test_shuffle_without_generator_follows_manual_seed():
    loader = DataLoader(_ds(20), batch_size=5, shuffle=True)
    tracenn.manual_seed(11)
    first = sum(_labels(loader), [])
    tracenn.manual_seed(11)
    assert sum(_labels(loader), []) == first


def test_shuffle_order_comes_from_randperm():
    g = tracenn.Generator().manual_seed(7)
    order = sum(_labels(DataLoader(_ds(12), batch_size=12, shuffle=True, generator=g)), [])
    assert order == tracenn.randperm(12, generator=tracenn.Generator().manual_seed(7)).tolist()


def test_collates_structured_samples():
    (batch,) = list(DataLoader(Squares(3), batch_size=3))
    assert set(batch) == {"x", "label", "name"}
    assert batch["x"].dtype is tracenn.float32 and batch["x"].tolist() == [[0, 0], [1, 1], [2, 4]]
    assert batch["label"].dtype is tracenn.int64 and batch["name"] == ["s0", "s1", "s2"]


def test_tensor_dataset_fast_path_equals_per_sample_collation():
    x = tracenn.randn(8, 2)
    y = tracenn.arange(8)
    ds = Subset(TensorDataset(x, y), [7, 3, 5, 0])
    g = tracenn.Generator().manual_seed(0)
    fast = list(DataLoader(ds, batch_size=3, shuffle=True, generator=g))
    g = tracenn.Generator().manual_seed(0)
    slow = list(DataLoader(ds, batch_size=3, shuffle=True, generator=g, collate_fn=lambda b: default_collate(b)))
    assert len(fast) == len(slow) == 2
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert tracenn.equal(fx, sx) and tracenn.equal(fy, sy)


def test_custom_sampler_and_batch_sampler():
    ds = _ds(6)
    assert _labels(DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])) == [[5, 4], [3, 2], [1, 0]]
    bs = BatchSampler(SequentialSampler(ds), 4, drop_last=False)
    loader = DataLoader(ds, batch_sampler=bs)
    assert _labels(loader) == [[0, 1, 2, 3], [4, 5]] and len(loader) == 2
    assert _labels(DataLoader(ds, batch_sampler=[[1, 3], [5]])) == [[1, 3], [5]]


def test_batch_size_none_converts_samples():
    items = list(DataLoader(Squares(2), batch_size=None))
    assert items[1]["x"].tolist() == [1.0, 1.0] and items[1]["label"] == 1


def test_custom_collate_fn():
    loader = DataLoader(range(5), batch_size=2, collate_fn=lambda b: sum(b))
    assert list(loader) == [1, 5, 4]


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("drop, expect", [(False, [[0, 1, 2], [3, 4, 5], [6]]), (True, [[0, 1, 2], [3, 4, 5]])])
def test_iterable_dataset(lib, drop, expect):
    data = lib.utils.data

    class S(data.IterableDataset):
        def __iter__(self):
            return iter(range(7))

        def __len__(self):
            return 7

    loader = data.DataLoader(S(), batch_size=3, drop_last=drop)
    assert [b.tolist() for b in loader] == expect and len(loader) == len(expect)
    assert list(data.DataLoader(S(), batch_size=None))[:2] == [0, 1]


ERRORS = [
    (dict(batch_sampler=[[0]], batch_size=2), "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                              "sampler, and drop_last"),
    (dict(batch_sampler=[[0]], shuffle=True), "batch_sampler option is mutually exclusive"),
    (dict(batch_sampler=[[0]], drop_last=True), "batch_sampler option is mutually exclusive"),
    (dict(sampler=[0], shuffle=True), "sampler option is mutually exclusive with shuffle"),
    (dict(batch_size=None, drop_last=True), "batch_size=None option disables auto-batching and is mutually exclusive "
                                            "with drop_last"),
    (dict(num_workers=-1), "num_workers option should be non-negative; use num_workers=0 to disable multiprocessing."),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified in multiprocessing"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
]


@pytest.mark.parametrize("kwargs, msg", ERRORS, ids=[m[:30] for _, m in ERRORS])
def test_argument_errors_match_torch(lib, kwargs, msg):
    ds = lib.utils.data.TensorDataset(lib.arange(4))
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        lib.utils.data.DataLoader(ds, **kwargs)


def test_iterable_dataset_rejects_shuffle_and_samplers(lib):
    data = lib.utils.data

    class S(data.IterableDataset):
        def __iter__(self):
            return iter(range(3))

    with pytest.raises(ValueError, match="DataLoader with IterableDataset: expected unspecified shuffle option"):
        data.DataLoader(S(), shuffle=True)
    with pytest.raises(ValueError, match="expected unspecified sampler option"):
        data.DataLoader(S(), sampler=[0])


def test_num_workers_is_accepted_without_a_warning():
    # (loading in worker processes is tested in test_dataloader_workers.py)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loader = DataLoader(_ds(4), batch_size=2, num_workers=1)
    assert loader.num_workers == 1 and loader.prefetch_factor == 2


def test_more_workers_than_cpus_warns_as_torch():
    with pytest.warns(UserWarning, match=r"This DataLoader will create 100000 worker processes in total\. Our "
                                         r"suggested max number of worker in current system is \d+"):
        DataLoader(_ds(4), num_workers=100000)


def test_default_collate_is_importable_like_torch():
    from tracenn.utils.data import default_collate as a
    from tracenn.utils.data.dataloader import default_collate as b
    assert a is b
    assert DataLoader(_ds(2)).collate_fn is a
