"""DataLoader(num_workers > 0): worker processes (spawned), order, sharding, seeds, errors, shutdown.

Each worker imports tracenn (seconds), so a few loaders are shared through module fixtures. The
datasets are defined at module level: workers receive them pickled and import this module.
"""
from __future__ import annotations

import gc
import importlib.util
import json
import os
import pickle
import random
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import tracenn
from tracenn.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset, get_worker_info
from tracenn.utils.data import _worker

_INIT = {}  # what worker_init_fn saw, in the worker process


def record_init(worker_id):
    # Runs in the worker after it is seeded: the first draws of each random source.
    info = get_worker_info()
    _INIT.update(worker_id=worker_id, info_id=info.id, py=random.random(), np=float(np.random.rand()),
                 tn=float(tracenn.rand(1).item()))


class Probe(Dataset):
    """Map-style: data fields (same in any process) plus what the worker process knows."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        info = get_worker_info()
        return {"x": np.array([i, i * i], dtype=np.float32), "t": tracenn.tensor([float(i)]), "label": i % 3,
                "name": f"s{i}",
                "pid": os.getpid(), "wid": -1 if info is None else info.id,
                "nw": -1 if info is None else info.num_workers, "seed": -1 if info is None else info.seed,
                "same_ds": info is not None and info.dataset is self, "init": dict(_INIT),
                "jax": f"{os.environ.get('JAX_PLATFORMS')}/{jax.default_backend()}"}


DATA_KEYS = ("x", "t", "label", "name")


class Shards(IterableDataset):
    """range(n), each worker taking every num_workers-th element from its id (torch's recipe)."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))


class Faulty(Dataset):
    """Index 2 raises ValueError, 3 KeyError, 4 returns something that cannot be pickled."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 2:
            raise ValueError(f"bad sample {i}")
        if i == 3:
            return {}["missing"]
        if i == 4:
            return lambda: i
        return i


class Slow(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        if i == 1:
            time.sleep(60)
        return i


def keep(sample):
    return sample


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) has gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    return True


def _wait_gone(pids, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _data(batch):
    return {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in batch.items() if k in DATA_KEYS}


# ---- a persistent, shuffled map-style loader (shared) -----------------------------------------

@pytest.fixture(scope="module")
def persistent():
    """Two epochs of a persistent 2-worker loader, and the same two epochs loaded in-process."""
    kwargs = dict(batch_size=3, shuffle=True)
    env_before = os.environ.get("JAX_PLATFORMS")
    g = tracenn.Generator().manual_seed(5)
    loader = DataLoader(Probe(11), num_workers=2, persistent_workers=True, worker_init_fn=record_init,
                        generator=g, **kwargs)
    epochs = [list(loader), list(loader)]
    g0 = tracenn.Generator().manual_seed(5)
    plain_loader = DataLoader(Probe(11), generator=g0, **kwargs)
    reference = [list(plain_loader), list(plain_loader)]
    state = dict(loader=loader, epochs=epochs, reference=reference, g=g, g0=g0,
                 pids=sorted(w.pid for w in loader._iterator._workers),
                 env=(env_before, os.environ.get("JAX_PLATFORMS")))
    del loader  # (the state holds the only reference: a test deletes it)
    yield state
    if "loader" in state:
        state.pop("loader")._iterator._shutdown_workers()


def test_map_style_order_and_content_equal_num_workers_0(persistent):
    for got, want in zip(persistent["epochs"], persistent["reference"]):
        assert [_data(b) for b in got] == [_data(b) for b in want]
        assert isinstance(got[0]["t"], tracenn.Tensor) and got[0]["t"].dtype == tracenn.float32
        assert got[0]["x"].dtype == tracenn.float32 and tuple(got[0]["x"].shape) == (3, 2)
    e1, e2 = ([b["label"].tolist() for b in e] for e in persistent["epochs"])
    assert e1 != e2  # a new order each epoch


def test_loading_with_workers_draws_nothing_from_the_generator(persistent):
    assert persistent["g"].get_state().tolist() == persistent["g0"].get_state().tolist()


def test_batches_are_round_robin_over_worker_processes(persistent):
    for epoch in persistent["epochs"]:
        assert [b["wid"].tolist() for b in epoch] == [[0] * 3, [1] * 3, [0] * 3, [1] * 2]
        assert {p for b in epoch for p in b["pid"].tolist()}.isdisjoint({os.getpid()})
        assert all(b["nw"].tolist() == [2] * len(b["nw"]) for b in epoch)
        # info.dataset is the dataset the worker indexes: its own copy (this process's is not there)
        assert all(v for b in epoch for v in b["same_ds"].tolist())


def test_workers_run_jax_on_the_cpu_only(persistent):
    # (set for the children only: this process's environment is as it was)
    assert {j for e in persistent["epochs"] for b in e for j in b["jax"]} == {"cpu/cpu"}
    assert persistent["env"][0] == persistent["env"][1]


def test_persistent_workers_keep_their_processes(persistent):
    pids = [sorted({p for b in e for p in b["pid"].tolist()}) for e in persistent["epochs"]]
    assert len(pids[0]) == 2 and pids[0] == pids[1]
    assert persistent["pids"] == pids[0]


def test_worker_init_fn_runs_in_each_worker_after_seeding(persistent):
    batch0, batch1 = persistent["epochs"][0][:2]
    seeds = [batch0["seed"].tolist()[0], batch1["seed"].tolist()[0]]
    base = seeds[0]
    assert seeds == [base, base + 1]  # seed = base_seed + worker_id
    for wid, batch in enumerate((batch0, batch1)):
        init = batch["init"]
        assert init["worker_id"].tolist()[0] == wid and init["info_id"].tolist()[0] == wid
        seed = base + wid
        assert init["py"].tolist()[0] == random.Random(seed).random()
        np_want = np.random.RandomState(_worker.numpy_seed(base, wid)).rand()
        assert init["np"].tolist()[0] == pytest.approx(float(np_want), abs=0, rel=1e-12)
        tn_want = tracenn.rand(1, generator=tracenn.Generator().manual_seed(seed)).item()
        assert init["tn"].tolist()[0] == pytest.approx(tn_want, abs=0, rel=1e-7)
    other = persistent["epochs"][1][0]["seed"].tolist()[0]
    assert other == base  # persistent workers keep their seeds


def test_base_seed_differs_per_epoch_and_follows_the_generator():
    ds = Probe(2)
    a = DataLoader(ds, num_workers=1, generator=tracenn.Generator().manual_seed(1))
    b = DataLoader(ds, num_workers=1, generator=tracenn.Generator().manual_seed(1))
    c = DataLoader(ds, num_workers=1, generator=tracenn.Generator().manual_seed(2))
    seeds_a = [a._base_seed(), a._base_seed()]
    assert seeds_a == [b._base_seed(), b._base_seed()]
    assert seeds_a[0] != seeds_a[1] and c._base_seed() != seeds_a[0]
    assert all(0 <= s < 2 ** 63 for s in seeds_a)


def test_deleting_the_loader_stops_persistent_workers(persistent):
    pids = persistent["pids"]
    assert all(_alive(p) for p in pids)
    del persistent["loader"]
    gc.collect()
    assert _wait_gone(pids) == []


def test_tensor_dataset_out_of_order_delivery_and_drop_last():
    ds = TensorDataset(tracenn.arange(20.0).view(10, 2), tracenn.arange(10))
    kwargs = dict(batch_size=3, drop_last=True)
    want = [[x.tolist(), y.tolist()] for x, y in DataLoader(ds, **kwargs)]
    got = list(DataLoader(ds, num_workers=2, in_order=False, prefetch_factor=1, **kwargs))
    assert sorted([x.tolist(), y.tolist()] for x, y in got) == want and len(want) == 3
    assert got[0][0].dtype == tracenn.float32 and got[0][1].dtype == tracenn.int64


# ---- iterable-style ---------------------------------------------------------------------------

ITERABLE_BATCHES = [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9]]


def test_iterable_sharding_round_robin_and_exhausted_workers():
    loader = DataLoader(Shards(11), batch_size=2, num_workers=2)
    it = iter(loader)
    # worker 0: 0 2 4 6 8 10 -> [0,2] [4,6] [8,10]; worker 1: 1 3 5 7 9 -> [1,3] [5,7] [9]; taken in turn
    assert [b.tolist() for b in it] == ITERABLE_BATCHES
    assert _wait_gone([w.pid for w in it._workers]) == []  # stopped at the end of the pass
    assert [b.tolist() for b in DataLoader(Shards(11), batch_size=2)] == [[0, 1], [2, 3], [4, 5], [6, 7],
                                                                          [8, 9], [10]]


# ---- errors ----------------------------------------------------------------------------------

def test_worker_errors_are_raised_with_worker_id_and_traceback():
    loader = DataLoader(Faulty(), batch_size=None, num_workers=1, collate_fn=keep)
    it = iter(loader)
    assert next(it) == 0 and next(it) == 1
    with pytest.raises(ValueError, match=r"Caught ValueError in DataLoader worker process 0\.\nOriginal "
                                         r"Traceback \(most recent call last\):") as e:
        next(it)
    assert 'raise ValueError(f"bad sample {i}")' in str(e.value) and "ValueError: bad sample 2" in str(e.value)
    with pytest.raises(KeyError, match="Caught KeyError in DataLoader worker process 0") as e:
        next(it)
    assert "KeyError: 'missing'" in str(e.value) and "\\n" not in str(e.value)  # readable, not repr'd
    with pytest.raises(Exception, match="could not be pickled to send it to the main process"):
        next(it)
    assert next(it) == 5  # the iterator goes on after an error
    with pytest.raises(StopIteration):
        next(it)
    assert _wait_gone([w.pid for w in it._workers]) == []


def test_timeout_and_garbage_collected_iterator_stops_a_busy_worker():
    loader = DataLoader(Slow(), batch_size=None, num_workers=1, timeout=1.0)
    it = iter(loader)
    assert next(it) == 0  # (the timeout counts once the worker has started)
    t = time.monotonic()
    with pytest.raises(RuntimeError, match=r"DataLoader timed out after 1\.0 seconds"):
        next(it)
    assert time.monotonic() - t < 10
    pids = [w.pid for w in it._workers]
    assert all(_alive(p) for p in pids)  # busy sleeping in __getitem__
    del it
    gc.collect()
    assert _wait_gone(pids) == []


def test_unpicklable_dataset_or_function_gets_a_clear_error():
    def local_init(worker_id):
        pass

    class LocalDataset(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return i

    with pytest.raises(Exception, match=r"could not send its dataset .* define its class or function at the "
                                        r"top level of a module") as e:
        iter(DataLoader(LocalDataset(), num_workers=1))
    assert isinstance(e.value, (AttributeError, pickle.PicklingError, TypeError))
    with pytest.raises(Exception, match="could not send its worker_init_fn"):
        iter(DataLoader(Probe(2), num_workers=1, worker_init_fn=local_init))
    with pytest.raises(Exception, match="could not send its collate_fn"):
        iter(DataLoader(Probe(2), num_workers=1, collate_fn=lambda b: b))


def test_multiprocessing_context_checks():
    with pytest.raises(ValueError, match=r"multiprocessing_context='fork'\) is not supported by tracenn: JAX"):
        DataLoader(Probe(2), num_workers=1, multiprocessing_context="fork")
    import multiprocessing
    with pytest.raises(ValueError, match="is not supported by tracenn"):
        DataLoader(Probe(2), num_workers=1, multiprocessing_context=multiprocessing.get_context("fork"))
    with pytest.raises(ValueError, match=r"should specify a valid start method in \[.*\], but got "
                                         r"multiprocessing_context='nope'"):
        DataLoader(Probe(2), num_workers=1, multiprocessing_context="nope")
    with pytest.raises(TypeError, match="should be a valid context object or a string"):
        DataLoader(Probe(2), num_workers=1, multiprocessing_context=3)
    with pytest.raises(ValueError, match=r"can only be used with multi-process loading \(num_workers > 0\), "
                                         r"but got num_workers=0"):
        DataLoader(Probe(2), multiprocessing_context="spawn")
    loader = DataLoader(Probe(2), num_workers=1, multiprocessing_context="forkserver")
    assert loader.multiprocessing_context.get_start_method() == "forkserver"
    assert DataLoader(Probe(2), num_workers=1).multiprocessing_context is None


def test_get_worker_info_is_none_in_the_main_process():
    assert get_worker_info() is None
    info = _worker.WorkerInfo(id=1, num_workers=2, seed=3, dataset=None)
    with pytest.raises(Exception):
        info.id = 2  # frozen, as torch's


# ---- against torch's DataLoader ---------------------------------------------------------------

# torch's side runs in a fresh interpreter without JAX (torch forks its workers, and JAX's threads
# do not survive fork), over the same datasets written against torch.utils.data.
_TORCH_SCRIPT = r"""
import json, sys
import numpy as np
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info
from torch.utils.data._utils.worker import _generate_state

class Probe(Dataset):
    def __len__(self):
        return 11
    def __getitem__(self, i):
        return {"x": np.array([i, i * i], dtype=np.float32), "label": i % 3, "name": f"s{i}",
                "wid": get_worker_info().id}

class Shards(IterableDataset):
    def __iter__(self):
        info = get_worker_info()
        return iter(range(info.id, 11, info.num_workers))

class Faulty(Dataset):
    def __len__(self):
        return 6
    def __getitem__(self, i):
        raise ValueError(f"bad sample {i}")

out = {"map": [{"x": b["x"].tolist(), "label": b["label"].tolist(), "name": b["name"], "wid": b["wid"].tolist()}
               for b in DataLoader(Probe(), batch_size=3, sampler=json.loads(sys.argv[1]), num_workers=2,
                                   multiprocessing_context="fork")],
       "iterable": [b.tolist() for b in DataLoader(Shards(), batch_size=2, num_workers=2,
                                                   multiprocessing_context="fork")]}
try:
    list(DataLoader(Faulty(), batch_size=None, sampler=[2], num_workers=1, multiprocessing_context="fork"))
except Exception as e:
    out["error"] = [type(e).__name__, str(e)]
out["np_seeds"] = [_generate_state(base, wid) for base, wid in json.loads(sys.argv[2])]
print(json.dumps(out))
"""

SEED_CASES = [(0, 0), (12345, 3), (2 ** 62 + 7, 1), (2 ** 63 - 1, 7)]


@pytest.fixture(scope="module")
def torch_side(persistent):
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    order = [int(n[1:]) for b in persistent["epochs"][0] for n in b["name"]]
    done = subprocess.run([sys.executable, "-c", _TORCH_SCRIPT, json.dumps(order), json.dumps(SEED_CASES)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_map_style_matches_torch(persistent, torch_side):
    got = persistent["epochs"][0]
    want = torch_side["map"]
    assert len(got) == len(want) == 4
    for g, w in zip(got, want):
        assert g["x"].tolist() == w["x"] and g["label"].tolist() == w["label"] and g["name"] == w["name"]
        assert g["wid"].tolist() == w["wid"]  # the same round-robin over workers


def test_iterable_sharding_matches_torch(torch_side):
    assert torch_side["iterable"] == ITERABLE_BATCHES


def test_worker_error_message_matches_torch(torch_side):
    kind, text = torch_side["error"]
    loader = DataLoader(Faulty(), batch_size=None, sampler=[2], num_workers=1, collate_fn=keep)
    with pytest.raises(ValueError) as e:
        list(loader)
    assert kind == "ValueError"
    assert str(e.value).splitlines()[:2] == text.splitlines()[:2] == [
        "Caught ValueError in DataLoader worker process 0.", "Original Traceback (most recent call last):"]
    assert str(e.value).rstrip().splitlines()[-1] == text.rstrip().splitlines()[-1] == "ValueError: bad sample 2"


def test_numpy_seed_is_torchs_generate_state(torch_side):
    assert [_worker.numpy_seed(base, wid) for base, wid in SEED_CASES] == torch_side["np_seeds"]
