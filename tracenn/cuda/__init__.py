"""``tracenn.cuda``: torch.cuda for the GPUs that JAX sees (``cuda:i`` is JAX's i-th GPU).

What each part maps to in JAX (details in each submodule's docstring):

- Devices (here): availability and properties from the ``jax.Device`` objects (``device_kind``,
  ``compute_capability``, ``core_count``, ``memory_stats()["bytes_limit"]``). tracenn places new
  tensors on the first GPU, so the current device is always 0.
- Memory (:mod:`tracenn.cuda.memory`): XLA's allocator figures from ``device.memory_stats()``
  under torch's names; ``empty_cache`` does nothing (XLA keeps its pool).
- Streams and events (:mod:`tracenn.cuda.streams`): XLA runs a GPU's work in one order, so
  streams are names for that one queue; timing events wait for the queued work and read the clock.
- Random state (:mod:`tracenn.cuda.random`): tracenn's one generator.
- ``nvtx`` ranges do nothing; CUDA graphs are ``tracenn.compile`` (``make_graphed_callables``).

Without a GPU every function answers as torch's CPU-only build does: queries give False, 0,
``[]`` or ``{}``, and what needs a GPU raises :class:`~tracenn.errors.CudaDeviceError` (both the
``AssertionError`` torch's CPU build raises and a ``RuntimeError``).

>>> import tracenn
>>> tracenn.cuda.is_available() == (tracenn.cuda.device_count() > 0)
True
"""
from __future__ import annotations

from ..errors import OutOfMemoryError  # noqa: F401  (torch.cuda.OutOfMemoryError is torch.OutOfMemoryError)
from . import _gpu, jiterator, nvtx  # noqa: F401
from .graphs import (CUDAGraph, graph, graph_pool_handle, is_current_stream_capturing,  # noqa: F401
                     make_graphed_callables)
from .memory import (MemPool, empty_cache, max_memory_allocated, max_memory_cached, max_memory_reserved,  # noqa: F401
                     mem_get_info, memory_allocated, memory_cached, memory_reserved, memory_stats, memory_summary,
                     reset_accumulated_memory_stats, reset_max_memory_allocated, reset_max_memory_cached,
                     reset_peak_memory_stats, set_per_process_memory_fraction, use_mem_pool)
from .random import (get_rng_state, get_rng_state_all, initial_seed, manual_seed, manual_seed_all,  # noqa: F401
                     seed, seed_all, set_rng_state, set_rng_state_all)
from .streams import Event, Stream, StreamContext, current_stream, default_stream, set_stream, stream  # noqa: F401


def is_available() -> bool:
    """True when JAX has a GPU backend with at least one device."""
    return len(_gpu.gpus()) > 0


def device_count() -> int:
    """The number of GPUs JAX sees."""
    return len(_gpu.gpus())


def is_initialized() -> bool:
    """Whether the GPU backend has started: JAX starts it when it first lists its GPUs, so this is
    :func:`is_available` (False without a GPU, as torch's CPU build)."""
    return is_available()


def init() -> None:
    """Nothing to start (JAX started its GPU backend already); raises without a GPU, as torch."""
    _gpu.require()


def current_device() -> int:
    """The index of the current GPU: always 0, where tracenn places new tensors."""
    _gpu.require()
    return 0


def set_device(device) -> None:
    """Select the current GPU. tracenn places new tensors on the first one, so only index 0 is
    accepted (a negative index does nothing, as in torch); move tensors to another GPU with
    ``.to("cuda:1")``."""
    i = _gpu.index(device)
    if i < 0:
        return
    _gpu.jax_device(i)
    if i != 0:
        raise ValueError(f"tracenn.cuda.set_device({device!r}): tracenn places new tensors on the first GPU "
                         f"(cuda:0); move tensors to another one with .to('cuda:{i}')")


class device:
    """``with tracenn.cuda.device(0):`` selects a GPU for the block (torch.cuda.device). Only the
    first GPU can be current (see :func:`set_device`); ``None`` or a negative index does nothing."""

    def __init__(self, device):
        self.idx = -1 if device is None else _gpu.index(device)
        self.prev_idx = -1

    def __enter__(self):
        if self.idx >= 0:
            set_device(self.idx)
            self.prev_idx = 0

    def __exit__(self, *exc):
        return False


class device_of(device):
    """``with tracenn.cuda.device_of(t):`` selects ``t``'s GPU; a CPU tensor selects nothing."""

    def __init__(self, obj):
        super().__init__(obj.get_device() if obj.is_cuda else -1)


def get_device_name(device=None) -> str:
    """The GPU's name (JAX's ``device_kind``, e.g. ``'NVIDIA H100 80GB HBM3'``)."""
    return _gpu.jax_device(device).device_kind


def _capability(d) -> tuple:
    major, _, minor = str(getattr(d, "compute_capability", "")).partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else (None, None)


class _CudaDeviceProperties:
    """What :func:`get_device_properties` gives: the properties JAX exposes, with torch's names.

    ``total_memory`` is XLA's memory limit for this process (``memory_stats()["bytes_limit"]``),
    not the card's physical size; ``multi_processor_count`` is JAX's ``core_count`` (SMs).
    """

    __slots__ = ("name", "major", "minor", "total_memory", "multi_processor_count")

    def __init__(self, d):
        self.name = d.device_kind
        self.major, self.minor = _capability(d)
        self.total_memory = (d.memory_stats() or {}).get("bytes_limit", 0)
        self.multi_processor_count = getattr(d, "core_count", None)

    def __getattr__(self, name):
        raise AttributeError(f"'_CudaDeviceProperties' has no attribute {name!r}: JAX exposes only name, major, "
                             "minor, total_memory and multi_processor_count of a GPU")

    def __repr__(self):
        return (f"_CudaDeviceProperties(name='{self.name}', major={self.major}, minor={self.minor}, "
                f"total_memory={self.total_memory // (1024 * 1024)}MB, "
                f"multi_processor_count={self.multi_processor_count})")


def get_device_properties(device=None) -> _CudaDeviceProperties:
    """The GPU's name, compute capability, memory limit and SM count (see :class:`_CudaDeviceProperties`)."""
    return _CudaDeviceProperties(_gpu.jax_device(device))


def get_device_capability(device=None) -> tuple:
    """The GPU's compute capability ``(major, minor)`` (JAX's ``compute_capability``)."""
    return _capability(_gpu.jax_device(device))


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """Whether the current GPU computes in bfloat16: natively from compute capability 8 (Ampere);
    on older GPUs XLA emulates it, which counts when ``including_emulation`` (as in torch).
    False without a GPU."""
    if not is_available():
        return False
    major = get_device_capability()[0]
    return (major is not None and major >= 8) or including_emulation


def is_tf32_supported() -> bool:
    """Whether the current GPU has TF32 matmuls (compute capability 8 or later; False without a GPU)."""
    return is_bf16_supported(including_emulation=False)


def get_arch_list() -> list:
    """The architectures XLA compiles for here: one ``sm_XY`` per kind of GPU JAX sees (torch lists
    those its binary was built for); [] without a GPU."""
    caps = sorted({_capability(d) for d in _gpu.gpus()} - {(None, None)})
    return [f"sm_{major}{minor}" for major, minor in caps]


def synchronize(device=None) -> None:
    """Wait until all queued work has finished (JAX dispatches asynchronously); raises without a
    GPU, as torch does."""
    _gpu.jax_device(device)
    from .. import synchronize as _sync
    _sync()


def __getattr__(name):
    """torch's legacy CUDA tensor types: ``tracenn.cuda.FloatTensor`` and the rest."""
    from .._api.legacy import CUDA_LEGACY_TYPES
    try:
        return CUDA_LEGACY_TYPES[name]
    except KeyError:
        raise AttributeError(f"module 'tracenn.cuda' has no attribute {name!r}") from None
