"""What runs inside a DataLoader worker process: its loop, its seeds, and ``get_worker_info``.

A worker is a fresh Python process (started with ``spawn`` or ``forkserver``, never ``fork``: JAX's
runtime does not survive fork). The main process starts it with JAX limited to the CPU, so a worker
never takes a GPU. The worker receives the dataset, ``collate_fn`` and ``worker_init_fn`` once, then
``(task index, index list)`` messages, and answers each with ``(task index, pickled batch)``;
tracenn tensors pickle by value as NumPy arrays and are rebuilt as tensors in the main process.
Protocol and semantics follow torch 2.13's ``torch/utils/data/_utils/worker.py``.
"""
from __future__ import annotations

import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass

# How often a waiting worker checks that the main process still lives (seconds).
CHECK_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """Information about the current DataLoader worker process (torch's fields).

    Attributes:
        id: this worker's id, ``0 .. num_workers - 1``.
        num_workers: how many workers the loader runs.
        seed: this worker's seed (``base_seed + id``); Python's ``random`` and tracenn's global
            generator are seeded with it, NumPy's global ``RandomState`` from it.
        dataset: this process's copy of the dataset.
        rng: torch's per-thread RNG container (thread workers only): always ``None``.
        worker_method: ``"multiprocessing"``.
    """

    id: int
    num_workers: int
    seed: int
    dataset: object
    rng: object = None
    worker_method: str | None = "multiprocessing"


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """In a DataLoader worker process, a :class:`WorkerInfo` (``id``, ``num_workers``, ``seed``,
    ``dataset``); ``None`` in the main process.

    An :class:`IterableDataset` uses it to shard itself, so that each worker yields a different
    part of the stream (without it every worker yields the whole stream):

    >>> from tracenn.utils.data import IterableDataset, get_worker_info
    >>> class Range(IterableDataset):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         info = get_worker_info()
    ...         if info is None:  # loading in the main process: the whole stream
    ...             return iter(range(self.n))
    ...         return iter(range(info.id, self.n, info.num_workers))
    >>> get_worker_info() is None
    True
    """
    return _worker_info


@dataclass(frozen=True)
class IterableDatasetStopIteration:
    """A worker's answer once its copy of an iterable dataset is exhausted."""
    worker_id: int


@dataclass(frozen=True)
class WorkerReady:
    """A worker's first message, once it is seeded and ``worker_init_fn`` has run."""
    worker_id: int


@dataclass(frozen=True)
class ResumeIteration:
    """Starts a new epoch in a persistent worker (it answers with the same object)."""


class _KeyErrorMessage(str):
    # KeyError shows repr() of its argument; this keeps the traceback text readable.
    def __repr__(self):
        return self


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process as its type and traceback text."""

    def __init__(self, where: str, note: str = ""):
        exc_type, exc, tb = sys.exc_info()
        self.exc_msg = "".join(traceback.format_exception(exc_type, exc, tb)) + note
        try:
            pickle.dumps(exc_type)
            self.exc_type = exc_type
        except Exception:  # a class defined inside a function cannot travel: say what it was
            self.exc_type = RuntimeError
            self.exc_msg = f"(a {exc_type.__qualname__}, which cannot be pickled, was raised)\n{self.exc_msg}"
        self.where = where

    def reraise(self):
        """Raise ``exc_type("Caught X in DataLoader worker process N.\\nOriginal Traceback ...")``."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:
            msg = _KeyErrorMessage(msg)
        elif getattr(self.exc_type, "message", None):
            raise self.exc_type(message=msg)
        try:
            exception = self.exc_type(msg)
        except Exception:
            raise RuntimeError(msg) from None
        raise exception


def numpy_seed(base_seed: int, worker_id: int) -> list[int]:
    """The seed words for a worker's NumPy ``RandomState``: NumPy's SeedSequence over
    ``[worker_id, low 32 bits, high 32 bits, 0]``, which is the state torch's ``_generate_state``
    computes, so NumPy's stream differs from the ``random`` and tracenn streams seeded with
    ``base_seed + worker_id``."""
    import numpy as np
    entropy = [worker_id, base_seed & 0xFFFFFFFF, base_seed >> 32, 0]
    return [int(w) for w in np.random.SeedSequence(entropy).generate_state(4)]


def _make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last):
    from ._fetch import IterableFetcher, fetch_map
    if iterable:
        return IterableFetcher(dataset, auto_collation, collate_fn, drop_last).fetch
    return lambda index: fetch_map(dataset, collate_fn, auto_collation, index)


def _dump(data, where: str) -> bytes:
    # Pickled here, not in the queue's feeder thread, so a batch that cannot be pickled becomes an
    # error the main process raises instead of a message on stderr and a loader that waits forever.
    try:
        return pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
    except Exception:
        note = ("\nThe batch (what collate_fn returned) could not be pickled to send it to the main "
                "process: return tensors, arrays, numbers, strings and lists/dicts of them.")
        return pickle.dumps(ExceptionWrapper(where, note), pickle.HIGHEST_PROTOCOL)


def worker_loop(iterable, dataset, index_queue, data_queue, done_event, auto_collation, collate_fn,
                drop_last, base_seed, init_fn, worker_id, num_workers):
    """The body of worker ``worker_id``: fetch the batches the main process asks for, until told
    to stop (``None``), the main process has gone, or ``done_event`` is set."""
    global _worker_info
    manager_pid = os.getppid()  # (read first: the main process may die while this one starts)
    try:
        import numpy as np

        from ...random import manual_seed
        seed = base_seed + worker_id
        random.seed(seed)
        manual_seed(seed)
        np.random.seed(numpy_seed(base_seed, worker_id))
        _worker_info = WorkerInfo(id=worker_id, num_workers=num_workers, seed=seed, dataset=dataset)
        where = f"in DataLoader worker process {worker_id}"

        # A failing worker_init_fn (or dataset iter()) answers every task with its error.
        init_error = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetch = _make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
        except Exception:
            init_error = pickle.dumps(ExceptionWrapper(where))
        data_queue.put((WorkerReady(worker_id), None))

        # An exhausted iterable worker answers nothing more until it is told to stop or resume.
        iteration_end = False
        while os.getppid() == manager_pid:
            try:
                r = index_queue.get(timeout=CHECK_INTERVAL)
            except queue.Empty:
                continue
            if isinstance(r, ResumeIteration):
                data_queue.put((r, None))
                iteration_end = False
                if init_error is None:
                    try:
                        fetch = _make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last)
                    except Exception:
                        init_error = pickle.dumps(ExceptionWrapper(where))
                continue
            if r is None:
                break
            if done_event.is_set() or iteration_end:
                continue
            idx, index = r
            if init_error is not None:
                data = init_error
            else:
                try:
                    data = _dump(fetch(index), where)
                except StopIteration:
                    if not iterable:
                        data = pickle.dumps(ExceptionWrapper(where))
                    else:
                        data = IterableDatasetStopIteration(worker_id)
                        iteration_end = True
                except Exception:
                    data = pickle.dumps(ExceptionWrapper(where))
            data_queue.put((idx, data))
            del data, idx, index, r
    except KeyboardInterrupt:  # the main process raises it too
        pass
    if done_event.is_set():
        data_queue.cancel_join_thread()
        data_queue.close()
