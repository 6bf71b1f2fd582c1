"""``tracenn.multiprocessing``: Python's multiprocessing with torch.multiprocessing's additions
(sharing strategies, ``spawn``/``start_processes``).

tracenn's tensors are JAX arrays, which pickle by value: a tensor sent to another process is a
copy there, whatever the sharing strategy (torch shares CPU tensors' memory). JAX does not
survive ``fork`` once it has started threads, so ``spawn`` (the default here, as in torch's
``spawn``) is the start method to use with tensors.
"""
from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import *  # noqa: F401,F403
from multiprocessing import get_context

__all__ = [n for n in dir(_mp) if not n.startswith("_")] + [
    "get_all_sharing_strategies", "get_sharing_strategy", "set_sharing_strategy", "spawn", "start_processes",
    "ProcessRaisedException", "ProcessExitedException"]

_STRATEGIES = {"file_descriptor", "file_system"}
_STRATEGY = ["file_descriptor"]


def get_all_sharing_strategies() -> set:
    return set(_STRATEGIES)


def get_sharing_strategy() -> str:
    return _STRATEGY[0]


def set_sharing_strategy(new_strategy: str) -> None:
    """Recorded only: tensors are sent by value (see the module docstring)."""
    if new_strategy not in _STRATEGIES:
        raise AssertionError(f"invalid sharing strategy {new_strategy!r}: expected one of {sorted(_STRATEGIES)}")
    _STRATEGY[0] = new_strategy


class ProcessException(Exception):
    def __init__(self, msg: str, error_index: int, pid: int):
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """A spawned process raised: the message holds its traceback."""


class ProcessExitedException(ProcessException):
    """A spawned process exited with a non-zero code (or a signal)."""

    def __init__(self, msg: str, error_index: int, error_pid: int, exit_code: int, signal_name=None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid, self.exit_code, self.signal_name)


def _wrap(fn, i, args, queue):
    try:
        fn(i, *args)
    except KeyboardInterrupt:
        pass
    except Exception:
        import traceback
        queue.put(traceback.format_exc())
        raise SystemExit(1)


class ProcessContext:
    """The processes ``start_processes`` started; ``join()`` waits and raises the first failure."""

    def __init__(self, processes, queues):
        self.processes, self.error_queues = processes, queues

    def pids(self):
        return [p.pid for p in self.processes]

    def join(self, timeout=None) -> bool:
        """Wait for every process (True when all have exited). The first to fail terminates the
        rest and raises ProcessRaisedException (with its traceback) or ProcessExitedException."""
        for i, p in enumerate(self.processes):
            p.join(timeout)
            if p.exitcode is None:
                return False
            if p.exitcode != 0:
                for q in self.processes:
                    if q.is_alive():
                        q.terminate()
                if not self.error_queues[i].empty():
                    tb = self.error_queues[i].get()
                    raise ProcessRaisedException(f"\n\n-- Process {i} terminated with the following error:\n{tb}",
                                                 i, p.pid)
                raise ProcessExitedException(f"process {i} terminated with exit code {p.exitcode}", i, p.pid,
                                             p.exitcode)
        return True


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """Run ``fn(i, *args)`` in ``nprocs`` processes, ``i`` = 0..nprocs-1 (torch's). With ``join``
    waits for all of them and returns None; else returns their :class:`ProcessContext`."""
    ctx = get_context(start_method)
    processes, queues = [], []
    for i in range(nprocs):
        q = ctx.SimpleQueue()
        p = ctx.Process(target=_wrap, args=(fn, i, args, q), daemon=daemon)
        p.start()
        processes.append(p)
        queues.append(q)
    context = ProcessContext(processes, queues)
    if not join:
        return context
    while not context.join():
        pass
    return None


def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn"):
    """:func:`start_processes` (torch.multiprocessing.spawn)."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)
