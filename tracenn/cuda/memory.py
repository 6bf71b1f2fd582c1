"""``tracenn.cuda.memory``: torch's CUDA memory queries, answered from XLA's allocator.

XLA owns GPU memory, not torch's caching allocator; JAX reports its allocator's figures through
``jax.Device.memory_stats()``, and these functions give them torch's names:

====================================  =============================================================
torch                                 XLA (``device.memory_stats()``)
====================================  =============================================================
``memory_allocated``                  ``bytes_in_use``: bytes of live arrays
``max_memory_allocated``              ``peak_bytes_in_use`` (see :func:`reset_peak_memory_stats`)
``memory_reserved``                   ``pool_bytes``: bytes XLA's allocator holds from the driver
                                      (by default it takes ``XLA_PYTHON_CLIENT_MEM_FRACTION``, 75%,
                                      of the GPU at start); ``bytes_in_use`` when it keeps no pool
``max_memory_reserved``               ``peak_pool_bytes`` (likewise)
``mem_get_info``                      ``(bytes_limit - bytes_in_use, bytes_limit)``: what XLA may
                                      still hand out, and its limit (not the card's physical size)
``memory_stats()["allocation.all.     ``num_allocs`` since :func:`reset_accumulated_memory_stats`
allocated"]``
====================================  =============================================================

Without a GPU the queries answer as torch's CPU-only build does: 0 and an empty dict.

>>> import tracenn
>>> tracenn.cuda.memory_allocated() if not tracenn.cuda.is_available() else 0
0
"""
from __future__ import annotations

import collections
import warnings

from ..errors import CudaDeviceError, CudaUnsupportedError
from . import _gpu

# What the reset functions recorded, per GPU index: XLA's counters cannot be reset, so a reset
# remembers them and later answers are taken relative to them.
_PEAK_AT_RESET: dict[int, dict] = {}
_ALLOCS_AT_RESET: dict[int, int] = {}


def _xla_stats(device) -> tuple[int, dict]:
    """The GPU index and JAX's ``memory_stats()`` for ``device`` ({} where JAX reports none)."""
    d = _gpu.jax_device(device)
    return _gpu.gpus().index(d), (d.memory_stats() or {})


def _reserved(raw: dict) -> tuple[int, int]:
    """(current, all-time peak) bytes XLA's allocator holds: its pool, else what is in use."""
    if "pool_bytes" in raw:
        return raw["pool_bytes"], raw.get("peak_pool_bytes", raw["pool_bytes"])
    return raw.get("bytes_in_use", 0), raw.get("peak_bytes_in_use", raw.get("bytes_in_use", 0))


def _peak_since_reset(key: str, current: int, all_time: int, at_reset: dict | None) -> int:
    """The peak since the last :func:`reset_peak_memory_stats`, as far as XLA's figures tell."""
    if at_reset is None or all_time > at_reset[key + ".all_time"]:
        return all_time  # (no reset, or a new all-time peak since it: that peak came after the reset)
    at_reset[key + ".seen"] = max(current, at_reset[key + ".seen"])
    return at_reset[key + ".seen"]


def memory_stats(device=None) -> dict:
    """XLA's allocator statistics for ``device`` under torch's key names, sorted as torch's.

    Only the figures XLA reports are there: ``allocated_bytes.all.current`` / ``.peak``
    (``bytes_in_use`` / ``peak_bytes_in_use``), ``reserved_bytes.all.current`` / ``.peak``
    (``pool_bytes`` / ``peak_pool_bytes``) and ``allocation.all.allocated`` (``num_allocs``);
    torch's per-pool, segment and fragmentation keys have no XLA counterpart and are left out.
    Without a GPU: an empty dict, as torch's CPU-only build gives.
    """
    if not _gpu.gpus():
        return collections.OrderedDict()
    i, raw = _xla_stats(device)
    at_reset = _PEAK_AT_RESET.get(i)
    in_use = raw.get("bytes_in_use", 0)
    reserved, reserved_peak = _reserved(raw)
    stats = {
        "allocated_bytes.all.current": in_use,
        "allocated_bytes.all.peak": _peak_since_reset(
            "allocated", in_use, raw.get("peak_bytes_in_use", in_use), at_reset),
        "reserved_bytes.all.current": reserved,
        "reserved_bytes.all.peak": _peak_since_reset("reserved", reserved, reserved_peak, at_reset),
    }
    if "num_allocs" in raw:
        stats["allocation.all.allocated"] = raw["num_allocs"] - _ALLOCS_AT_RESET.get(i, 0)
    return collections.OrderedDict(sorted(stats.items()))


def memory_allocated(device=None) -> int:
    """Bytes of GPU memory held by live arrays (XLA's ``bytes_in_use``); 0 without a GPU."""
    return memory_stats(device).get("allocated_bytes.all.current", 0)


def max_memory_allocated(device=None) -> int:
    """The peak of :func:`memory_allocated` since the start or the last :func:`reset_peak_memory_stats`."""
    return memory_stats(device).get("allocated_bytes.all.peak", 0)


def memory_reserved(device=None) -> int:
    """Bytes XLA's allocator holds from the driver (``pool_bytes``); 0 without a GPU."""
    return memory_stats(device).get("reserved_bytes.all.current", 0)


def max_memory_reserved(device=None) -> int:
    """The peak of :func:`memory_reserved` since the start or the last :func:`reset_peak_memory_stats`."""
    return memory_stats(device).get("reserved_bytes.all.peak", 0)


def memory_cached(device=None) -> int:
    """Deprecated: :func:`memory_reserved` (torch renamed it)."""
    warnings.warn("`torch.cuda.memory_cached` has been renamed to `torch.cuda.memory_reserved`", FutureWarning,
                  stacklevel=2)
    return memory_reserved(device)


def max_memory_cached(device=None) -> int:
    """Deprecated: :func:`max_memory_reserved` (torch renamed it)."""
    warnings.warn("`torch.cuda.max_memory_cached` has been renamed to `torch.cuda.max_memory_reserved`",
                  FutureWarning, stacklevel=2)
    return max_memory_reserved(device)


def reset_peak_memory_stats(device=None) -> None:
    """Start the peaks (:func:`max_memory_allocated`, :func:`max_memory_reserved`) again from now.

    XLA keeps one all-time peak and cannot reset it, so this records the figures of the moment.
    Afterwards a peak reads as XLA's all-time peak once that has grown past what it was at the
    reset (the new peak was reached after the reset, so it is the peak since the reset, exactly);
    until then it reads as the most bytes in use seen since the reset (at the reset and at each
    memory query after it), which is a lower bound: a rise and fall between two queries that stays
    under the old all-time peak is not seen.
    """
    i, raw = _xla_stats(device)
    in_use = raw.get("bytes_in_use", 0)
    reserved, reserved_peak = _reserved(raw)
    _PEAK_AT_RESET[i] = {"allocated.seen": in_use, "allocated.all_time": raw.get("peak_bytes_in_use", in_use),
                         "reserved.seen": reserved, "reserved.all_time": reserved_peak}


def reset_max_memory_allocated(device=None) -> None:
    """Deprecated: :func:`reset_peak_memory_stats`, which resets every peak (as in torch)."""
    warnings.warn("torch.cuda.reset_max_memory_allocated now calls torch.cuda.reset_peak_memory_stats, "
                  "which resets /all/ peak memory stats.", FutureWarning, stacklevel=2)
    reset_peak_memory_stats(device)


def reset_max_memory_cached(device=None) -> None:
    """Deprecated: :func:`reset_peak_memory_stats`, which resets every peak (as in torch)."""
    warnings.warn("torch.cuda.reset_max_memory_cached now calls torch.cuda.reset_peak_memory_stats, "
                  "which resets /all/ peak memory stats.", FutureWarning, stacklevel=2)
    reset_peak_memory_stats(device)


def reset_accumulated_memory_stats(device=None) -> None:
    """Count ``memory_stats()["allocation.all.allocated"]`` (XLA's ``num_allocs``) from zero again."""
    i, raw = _xla_stats(device)
    _ALLOCS_AT_RESET[i] = raw.get("num_allocs", 0)


def mem_get_info(device=None) -> tuple[int, int]:
    """``(free, total)`` bytes: what XLA's allocator may still hand out (``bytes_limit - bytes_in_use``)
    and its limit ``bytes_limit``. XLA takes its share of the GPU at start
    (``XLA_PYTHON_CLIENT_MEM_FRACTION``, 75% by default), so ``total`` is that share, not the card's
    size, and ``free`` is what this process can still allocate."""
    i, raw = _xla_stats(device)
    if "bytes_limit" not in raw:
        raise CudaDeviceError(f"mem_get_info: JAX reports no memory limit for cuda:{i} "
                                   f"(its memory_stats() has {sorted(raw)})")
    return raw["bytes_limit"] - raw.get("bytes_in_use", 0), raw["bytes_limit"]


def empty_cache() -> None:
    """Does nothing: the memory is XLA's allocator's, which keeps its pool for the life of the
    process (torch's releases its cache of unused blocks to the driver). Deleting arrays frees
    their memory for XLA's next allocations (``del x``; ``gc.collect()``)."""
    return None


def set_per_process_memory_fraction(fraction, device=None) -> None:
    """Cannot take effect: XLA fixed its share of the GPU when JAX started, from the environment
    variable ``XLA_PYTHON_CLIENT_MEM_FRACTION`` (or ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` to
    allocate on demand). The fraction is checked as torch checks it, then a warning says to set the
    variable before ``import tracenn`` instead; the limit stays XLA's."""
    if not isinstance(fraction, float):
        raise TypeError("Invalid type for fraction argument, must be `float`")
    if not 0 <= fraction <= 1:
        raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
    _gpu.jax_device(device)
    warnings.warn(f"tracenn.cuda.set_per_process_memory_fraction({fraction}) has no effect: XLA fixed its GPU "
                  f"memory limit at start. Set XLA_PYTHON_CLIENT_MEM_FRACTION={fraction} in the environment "
                  "before importing tracenn instead.", UserWarning, stacklevel=2)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return ""  # (unreachable)


def memory_summary(device=None, abbreviated: bool = False) -> str:
    """A readable table of :func:`memory_stats` and XLA's memory limit for ``device``.

    ``abbreviated`` is accepted for torch's signature; the table is short either way.
    """
    i, raw = _xla_stats(device)
    s = memory_stats(i)
    lines = [f"tracenn CUDA memory summary, device {i} ({_gpu.gpus()[i].device_kind}), from XLA's allocator",
             f"{'':<22}{'current':>14}{'peak':>14}",
             f"{'Allocated memory':<22}{_size(s['allocated_bytes.all.current']):>14}"
             f"{_size(s['allocated_bytes.all.peak']):>14}",
             f"{'Reserved memory':<22}{_size(s['reserved_bytes.all.current']):>14}"
             f"{_size(s['reserved_bytes.all.peak']):>14}"]
    if "bytes_limit" in raw:
        lines.append(f"{'XLA memory limit':<22}{_size(raw['bytes_limit']):>14}")
    if "allocation.all.allocated" in s:
        lines.append(f"{'Allocations':<22}{s['allocation.all.allocated']:>14}")
    return "\n".join(lines) + "\n"


class _NoMemPools:
    """torch's memory pools (``MemPool``, ``use_mem_pool``) belong to its caching allocator; XLA
    has one allocator and no pools to choose between."""

    def __init__(self, *args, **kwargs):
        raise _unsupported(type(self).__name__)


def _unsupported(name: str) -> Exception:
    return CudaUnsupportedError(
        f"tracenn.cuda.{name} is not supported: GPU memory belongs to XLA's allocator, which has no pools "
        "to choose between. Leave it out; XLA plans each compiled program's buffers itself.")


class MemPool(_NoMemPools):
    pass


def use_mem_pool(pool, device=None):
    raise _unsupported("use_mem_pool")
