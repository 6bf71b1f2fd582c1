"""torch.device on top of JAX devices: ``cpu`` is the host, ``cuda`` is JAX's GPU backend."""
from __future__ import annotations

import functools

import jax

from .errors import DeviceError


class device:
    """``tracenn.device("cpu")``, ``device("cuda", 0)``, ``device("cuda:1")`` — as torch.device."""

    __slots__ = ("type", "index")

    def __init__(self, type, index: int | None = None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int) and index is None:  # torch.device(0) means cuda:0
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device() expected a string or device, got {type!r}")
        if ":" in type:
            if index is not None:
                raise RuntimeError(
                    f"type (string) must not include an index because index was passed explicitly: {type}")
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}:{idx}'")
            index = int(idx)
        if type not in ("cpu", "cuda", "meta"):
            raise RuntimeError(
                f"Expected one of cpu, cuda, meta device type at start of device string: {type}")
        self.type, self.index = type, index

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __reduce__(self):
        return (device, (self.type, self.index))

    def __enter__(self):
        """``with tracenn.device("cuda"):`` / ``with tracenn.device("meta"):`` — the default device of
        factory functions and module construction inside the block (torch >= 2.0); nestable, and the
        previous default comes back on exit, also when the block raises.

        >>> import tracenn
        >>> with tracenn.device("meta"):
        ...     w = tracenn.empty(3, 2)
        >>> w.device, tracenn.get_default_device()
        (device(type='meta'), device(type='cpu'))
        """
        _STACK.append(_get_state())
        try:
            set_default(self)
        except BaseException:
            _STACK.pop()
            raise
        return self

    def __exit__(self, *exc):
        _set_state(_STACK.pop())
        return False


@functools.lru_cache(maxsize=None)
def _backend_devices(platform: str) -> tuple:
    try:
        return tuple(jax.devices(platform))
    except RuntimeError:
        return ()


def gpu_devices() -> tuple:
    return _backend_devices("gpu")


# Whether a device other than the CPU was ever asked for: only then can one op's tensors be on two
# devices, and only then does eager dispatch (and tracing) check that they are not (see
# mismatch below), so a CPU-only program pays nothing for the check.
SEVERAL = [False]


def _arm() -> None:
    """A second device is in use: from now on eager ops check their tensors' devices, and compiled
    calls guard them (runtime/device_guard.py); moving the epoch makes every compiled call re-read
    its state and leave the calls it kept without that guard."""
    SEVERAL[0] = True
    from . import _dispatch
    _dispatch.EPOCH[0] += 1


def to_jax(d) -> jax.Device:
    """The JAX device for a torch-style device spec; a missing one raises torch's kind of error."""
    d = device(d) if not isinstance(d, device) else d
    if d.type == "cpu":
        return _backend_devices("cpu")[0]
    if d.type == "cuda":
        gpus = gpu_devices()
        if not gpus:
            raise DeviceError(
                "CUDA device requested but JAX sees no GPU on this machine "
                "(tracenn.cuda.is_available() is False). Use device='cpu', or install jax[cuda12] "
                "on a machine with an NVIDIA GPU.")
        if not SEVERAL[0]:
            _arm()
        i = 0 if d.index is None else d.index
        if i >= len(gpus):
            raise DeviceError(f"CUDA error: invalid device ordinal: cuda:{i} requested, "
                              f"but only {len(gpus)} GPU(s) are visible")
        return gpus[i]
    raise DeviceError(f"device '{d}' is not supported by tracenn")


def mismatch(named):
    """torch's message for one computation's tensors on two devices, or None when they share one.

    ``named``: (name, array) pairs. A 0-d tensor may live anywhere (torch lets a CPU scalar tensor
    join a CUDA op); JAX would copy the rest between devices silently, where torch refuses."""
    first = None
    for name, v in named:
        if not isinstance(v, jax.Array) or v.ndim == 0:
            continue
        devs = v.sharding.device_set
        if first is None:
            first = (name, devs)
        elif devs != first[1]:
            a, b = (from_jax(min(ds, key=lambda x: x.id)) for ds in (first[1], devs))
            return (f"Expected all tensors to be on the same device, but found at least two devices, {a} and "
                    f"{b}! ({first[0]} is on {a}, {name} on {b}: move one with .to(device) first)")
    return None


def from_jax(jd) -> device:
    """The torch-style device of a JAX device (cpu devices all map to ``cpu``; a meta array's
    stand-in device to ``meta``)."""
    if jd.platform == "cpu":
        return _CPU
    if jd.platform == "meta":
        return _META
    return device("cuda", gpus_index(jd))


def gpus_index(jd) -> int:
    return gpu_devices().index(jd)


_CPU = device("cpu")
_META = device("meta")
_STACK: list = []  # the defaults that ``with device(...)`` blocks replaced, innermost last


def _get_state():
    from . import _meta
    return jax.config.jax_default_device, _meta.DEFAULT[0]


def _set_state(state) -> None:
    from . import _meta
    jax.config.update("jax_default_device", state[0])
    _meta.set_default(state[1])


def set_default(d) -> None:
    """Make ``d`` the default device (torch.set_default_device; None: the CPU). A meta default makes
    factory functions give meta tensors; the JAX default device stays where it was."""
    from . import _meta
    d = _CPU if d is None else d if isinstance(d, device) else device(d)
    if d.type == "meta":
        _meta.set_default(True)
        return
    jd = to_jax(d)
    jax.config.update("jax_default_device", jd)
    _meta.set_default(False)


def get_default() -> device:
    """The default device (torch.get_default_device)."""
    from . import _meta
    if _meta.DEFAULT[0]:
        return _META
    d = jax.config.jax_default_device
    return from_jax(d) if d is not None else _CPU


def put_beside(value, array):
    """``value`` (a host scalar or numpy array) as a JAX array on the device that holds ``array``,
    uncommitted (a jitted program may still move it, as it moves a host value): a value passed to
    a program as a host number is copied to the device on every call, on a GPU a host-to-device
    transfer per call. (For an ``array`` over several devices, on the default device.)"""
    devices = array.sharding.device_set
    if len(devices) == 1:
        with jax.default_device(next(iter(devices))):
            return jax.numpy.asarray(value)
    return jax.numpy.asarray(value)


def put_like(value, array):
    """``value`` (host data) as a JAX array placed like ``array``: committed to its placement when
    ``array`` is committed, else uncommitted on its device (a jitted program's outputs are
    committed exactly when one of its arguments is; matching that keeps one compiled program for
    both)."""
    if array.committed and array.sharding.is_fully_replicated:
        return jax.device_put(value, array.sharding)
    return put_beside(value, array)
