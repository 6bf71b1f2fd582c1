"""The main-process side of ``DataLoader(num_workers > 0)``: start the workers, hand out index
batches round-robin, return the batches in order, and stop the workers.

Semantics follow torch 2.13's ``_MultiProcessingDataLoaderIter``: at most ``prefetch_factor`` tasks
in flight per worker; batch ``i`` goes to worker ``i % num_workers`` (skipping exhausted iterable
workers) and results are returned in task order (a reorder buffer), or as they arrive with
``in_order=False``; an iterable worker's end skips its outstanding tasks; ``timeout`` bounds each
wait; an error in a worker is raised here with the worker id and its traceback text.
Workers are stopped when the pass ends (unless ``persistent_workers``), when the iterator is
garbage-collected, and at interpreter exit.
"""
from __future__ import annotations

import atexit
import itertools
import multiprocessing
import os
import pickle
import queue
import threading
import time
import weakref

from . import _worker

_LIVE = weakref.WeakSet()  # iterators whose workers may be running (stopped at exit)
_EXITING = [False]
_ENV_LOCK = threading.Lock()
_JOIN_TIMEOUT = 2.0  # seconds stopping workers may take before they are terminated


def _stop_all_at_exit():
    for it in list(_LIVE):
        it._shutdown_workers()
    _EXITING[0] = True


atexit.register(_stop_all_at_exit)


def _start_on_cpu(processes):
    # The child reads JAX_PLATFORMS when it imports jax: with "cpu" it never initialises (and
    # reserves memory on) a GPU. Set in this process only while the children start.
    with _ENV_LOCK:
        old = os.environ.get("JAX_PLATFORMS")
        os.environ["JAX_PLATFORMS"] = "cpu"
        try:
            for p in processes:
                p.start()
                yield p
        finally:
            if old is None:
                del os.environ["JAX_PLATFORMS"]
            else:
                os.environ["JAX_PLATFORMS"] = old


def _unpicklable(parts):
    """The first of ``parts`` (name, object) that pickle refuses, with the error, or None."""
    for name, obj in parts:
        try:
            pickle.dumps(obj)
        except Exception as e:  # noqa: BLE001 - any pickling failure is reported the same way
            return name, obj, e
    return None


class WorkerIter:
    """Iterator over a DataLoader's batches, loaded by ``loader.num_workers`` worker processes."""

    def __init__(self, loader, base_seed: int):
        self._shutdown = True  # (until the workers run: __del__ after a failed start does nothing)
        self._iterable = loader._iterable
        self._auto_collation = loader._auto_collation
        self._index_sampler = loader._index_sampler
        self._num_workers = loader.num_workers
        self._prefetch_factor = loader.prefetch_factor
        self._timeout = loader.timeout
        self._in_order = loader.in_order
        self._persistent_workers = loader.persistent_workers
        ctx = loader._worker_context()

        self._result_queue = ctx.Queue()
        self._done_event = ctx.Event()
        self._index_queues = []
        self._workers = []
        self._workers_status = [True] * self._num_workers
        self._ready = set()  # workers that have started (sent WorkerReady)
        procs = []
        for i in range(self._num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()  # (a stopped worker never drains it: do not wait on exit)
            args = (self._iterable, loader.dataset, index_queue, self._result_queue, self._done_event,
                    self._auto_collation, loader.collate_fn, loader.drop_last, base_seed,
                    loader.worker_init_fn, i, self._num_workers)
            p = ctx.Process(target=_worker.worker_loop, args=args, daemon=True)
            procs.append(p)
            self._index_queues.append(index_queue)
        self._shutdown = False
        try:
            for p in _start_on_cpu(procs):
                self._workers.append(p)
        except Exception as e:
            self._shutdown_workers()
            bad = _unpicklable([("dataset", loader.dataset), ("collate_fn", loader.collate_fn),
                                ("worker_init_fn", loader.worker_init_fn)])
            if bad is None:
                raise
            name, obj, err = bad
            msg = (f"DataLoader(num_workers={self._num_workers}) could not send its {name} ({obj!r}) to a "
                   f"worker process: {type(err).__name__}: {err}. Worker processes are started with "
                   f"'{ctx.get_start_method()}', so the {name} is pickled: define its class or function at "
                   "the top level of a module (not inside a function, not a lambda), or pass "
                   "num_workers=0 to load in the main process.")
            try:
                new = type(e)(msg)
            except Exception:  # noqa: BLE001
                new = pickle.PicklingError(msg)
            raise new from e
        _LIVE.add(self)
        self._reset(first=True)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._index_sampler)

    def __getstate__(self):
        raise NotImplementedError(f"{type(self).__name__} cannot be pickled")

    # ---- epochs ----------------------------------------------------------------------------

    def _reset(self, first=False):
        self._sampler_iter = iter(self._index_sampler)
        self._send_idx = 0  # the next task to hand out
        self._rcvd_idx = 0  # the next task to return
        # task -> (worker,) while outstanding, (worker, batch) once it arrived out of order
        self._task_info = {}
        self._tasks_outstanding = 0
        # False for an iterable worker whose copy of the dataset is exhausted (this epoch)
        self._workers_status = [True] * self._num_workers
        self._ready = set()  # workers that have started (sent WorkerReady)
        self._workers_num_tasks = [0] * self._num_workers
        self._worker_cycle = itertools.cycle(range(self._num_workers))
        if not first:
            # A persistent worker starts a new pass; what it still sends of the last one is dropped.
            for q in self._index_queues:
                q.put(_worker.ResumeIteration())
            waiting = self._num_workers
            while waiting > 0:
                idx, _ = self._get_data()
                if isinstance(idx, _worker.ResumeIteration):
                    waiting -= 1
        for _ in range(self._prefetch_factor * self._num_workers):
            self._try_put_index()

    # ---- handing out and collecting tasks --------------------------------------------------

    def _try_put_index(self):
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        max_tasks = self._prefetch_factor * self._num_workers
        for _ in range(self._num_workers):  # the next active worker, if any
            worker = next(self._worker_cycle)
            if not self._workers_status[worker]:
                continue
            if self._in_order or self._workers_num_tasks[worker] < max_tasks // sum(self._workers_status):
                break
        else:
            return
        self._index_queues[worker].put((self._send_idx, index))
        self._task_info[self._send_idx] = (worker,)
        self._workers_num_tasks[worker] += 1
        self._tasks_outstanding += 1
        self._send_idx += 1

    def _try_get_data(self, timeout):
        try:
            return True, self._result_queue.get(timeout=timeout)
        except Exception as e:
            dead = [(i, w) for i, w in enumerate(self._workers) if self._workers_status[i] and not w.is_alive()]
            if dead:
                for i, _ in dead:
                    self._mark_worker_unavailable(i)
                pids = ", ".join(str(w.pid) for _, w in dead)
                codes = ", ".join(str(w.exitcode) for _, w in dead)
                raise RuntimeError(
                    f"DataLoader worker (pid(s) {pids}) exited unexpectedly (exit code(s) {codes}); its "
                    "error, if it printed one, is above on stderr") from e
            if isinstance(e, queue.Empty):
                return False, None
            raise

    def _get_data(self):
        # ``timeout`` counts once every worker has started: importing tracenn in a fresh process
        # takes seconds, which a timeout meant for the dataset's work should not include.
        while True:
            starting = len(self._ready) < self._num_workers
            timed = self._timeout > 0 and not starting
            ok, data = self._try_get_data(self._timeout if timed else _worker.CHECK_INTERVAL)
            if not ok:
                if timed:
                    raise RuntimeError(f"DataLoader timed out after {self._timeout} seconds")
                continue
            if isinstance(data[0], _worker.WorkerReady):
                self._ready.add(data[0].worker_id)
                continue
            return data

    def __next__(self):
        while True:
            # Skip tasks of iterable workers that ended before answering them.
            while self._rcvd_idx < self._send_idx:
                info = self._task_info.get(self._rcvd_idx)
                if info:
                    if len(info) == 2 or self._workers_status[info[0]]:
                        break
                    del self._task_info[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent_workers:
                    self._shutdown_workers()
                raise StopIteration

            if len(self._task_info[self._rcvd_idx]) == 2:  # arrived earlier, out of order
                worker, data = self._task_info.pop(self._rcvd_idx)
                self._rcvd_idx += 1
                return self._process_data(data, worker)

            idx, data = self._get_data()
            self._tasks_outstanding -= 1
            if isinstance(data, _worker.IterableDatasetStopIteration):
                if self._persistent_workers:
                    self._workers_status[data.worker_id] = False
                else:
                    self._mark_worker_unavailable(data.worker_id)
                self._try_put_index()
                continue
            if idx != self._rcvd_idx:
                if not self._in_order:
                    worker = self._task_info.pop(idx)[0]
                    return self._process_data(data, worker)
                self._task_info[idx] += (data,)
            else:
                worker = self._task_info.pop(idx)[0]
                self._rcvd_idx += 1
                return self._process_data(data, worker)

    def _process_data(self, data, worker):
        self._workers_num_tasks[worker] -= 1
        self._try_put_index()
        data = pickle.loads(data)
        if isinstance(data, _worker.ExceptionWrapper):
            data.reraise()
        return data

    # ---- stopping --------------------------------------------------------------------------

    def _mark_worker_unavailable(self, worker):
        # Tell one worker to exit (it is joined in _shutdown_workers).
        self._index_queues[worker].put(None)
        self._workers_status[worker] = False

    def _shutdown_workers(self):
        if _EXITING[0] or self._shutdown:
            return
        self._shutdown = True
        _LIVE.discard(self)
        try:
            self._done_event.set()
            for i in range(len(self._workers)):
                if self._persistent_workers or self._workers_status[i]:
                    self._mark_worker_unavailable(i)
            deadline = time.monotonic() + _JOIN_TIMEOUT
            for w in self._workers:
                w.join(timeout=max(0.0, deadline - time.monotonic()))
            for q in self._index_queues:
                q.cancel_join_thread()
                q.close()
            self._result_queue.cancel_join_thread()
            self._result_queue.close()
        finally:
            for w in self._workers:
                if w.is_alive():
                    w.terminate()
                    w.join(timeout=_worker.CHECK_INTERVAL)

    def __del__(self):
        self._shutdown_workers()


def worker_context(value, num_workers: int):
    """The multiprocessing context for ``multiprocessing_context=value`` (``None``: spawn), with
    torch's checks, refusing fork."""
    if value is None:
        return None
    if num_workers <= 0:
        raise ValueError("multiprocessing_context can only be used with multi-process loading "
                         f"(num_workers > 0), but got num_workers={num_workers}")
    if isinstance(value, str):
        methods = multiprocessing.get_all_start_methods()
        if value not in methods:
            raise ValueError(f"multiprocessing_context option should specify a valid start method in {methods!r}, "
                             f"but got multiprocessing_context={value!r}")
        value = multiprocessing.get_context(value)
    if not isinstance(value, multiprocessing.context.BaseContext):
        raise TypeError("multiprocessing_context option should be a valid context object or a string "
                        f"specifying the start method, but got multiprocessing_context={value}")
    if value.get_start_method() == "fork":
        raise ValueError(
            "DataLoader(multiprocessing_context='fork') is not supported by tracenn: JAX's runtime (its "
            "threads and device state) does not survive fork, so a forked worker can hang or crash. Use "
            "'spawn' (the default) or 'forkserver'; the dataset, collate_fn and worker_init_fn are then "
            "pickled, so define them at the top level of a module.")
    return value
