"""torch's thread and determinism switches, as far as XLA has them.

XLA sizes its CPU thread pool when the backend starts, from the cores the process may use, so
``set_num_threads`` after that cannot change it: it warns once and says how (limit the process's
cores with ``taskset``, or start Python with fewer). ``get_num_threads`` reports the cores in use.
XLA's CPU programs are deterministic; on a GPU, determinism is the process flag
``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, read at start-up, so
``use_deterministic_algorithms(True)`` records the wish and warns once on a GPU without it.
"""
from __future__ import annotations

import os
import warnings

_STATE = {"deterministic": False, "warn_only": False, "warned_threads": False, "warned_gpu": False}


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on Linux)
        return os.cpu_count() or 1


def get_num_threads() -> int:
    """The threads XLA's CPU programs use: the cores this process may run on."""
    return _cores()


def set_num_threads(num: int) -> None:
    """torch.set_num_threads. XLA's pool is fixed once the backend starts: a different number warns
    once, with how to get it."""
    if not isinstance(num, int) or num <= 0:
        raise RuntimeError("set_num_threads expects a positive integer")
    if num != _cores() and not _STATE["warned_threads"]:
        _STATE["warned_threads"] = True
        warnings.warn(f"tracenn.set_num_threads({num}): XLA sizes its CPU thread pool when it starts "
                      f"({_cores()} threads: the cores this process may use) and cannot change it; to use "
                      f"{num}, start the process on {num} cores (e.g. `taskset -c 0-{num - 1} python ...`)",
                      stacklevel=2)


def get_num_interop_threads() -> int:
    return _cores()


def set_num_interop_threads(num: int) -> None:
    if not isinstance(num, int) or num <= 0:
        raise RuntimeError("set_num_interop_threads expects a positive integer")


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """torch.use_deterministic_algorithms. XLA on the CPU is deterministic already; on a GPU the
    process needs ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` from its start (warned once)."""
    _STATE["deterministic"], _STATE["warn_only"] = bool(mode), bool(warn_only)
    if mode and not _STATE["warned_gpu"] and "xla_gpu_deterministic_ops=true" not in os.environ.get("XLA_FLAGS", ""):
        from .cuda import is_available
        if is_available():
            _STATE["warned_gpu"] = True
            warnings.warn("tracenn.use_deterministic_algorithms(True): XLA's GPU programs are deterministic only "
                          "with XLA_FLAGS=--xla_gpu_deterministic_ops=true set before the process starts "
                          "computing; it is not set", stacklevel=2)


def are_deterministic_algorithms_enabled() -> bool:
    return _STATE["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _STATE["warn_only"]


def set_deterministic_debug_mode(debug_mode) -> None:
    """torch.set_deterministic_debug_mode: ``"default"``/0, ``"warn"``/1 or ``"error"``/2, another
    spelling of :func:`use_deterministic_algorithms` (off, warn only, on)."""
    import builtins
    if not isinstance(debug_mode, (builtins.int, str)):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode)}")
    if isinstance(debug_mode, str):
        modes = {"default": 0, "warn": 1, "error": 2}
        if debug_mode not in modes:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, `error`, "
                               f"but got {debug_mode}")
        debug_mode = modes[debug_mode]
    if debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode > 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    """0 (off), 1 (warn only) or 2 (on): torch.get_deterministic_debug_mode."""
    if not _STATE["deterministic"]:
        return 0
    return 1 if _STATE["warn_only"] else 2

