"""``tracenn.utils.dlpack``: tensors to and from other array libraries through DLPack
(``tracenn.from_dlpack`` and ``tracenn.to_dlpack`` are the same functions, as in torch).

Any object with ``__dlpack__`` works (NumPy arrays, JAX arrays, torch tensors, CuPy arrays), and
so does a DLPack capsule (what ``to_dlpack`` and torch's ``to_dlpack`` return; it can be consumed
once). Going the other way, ``numpy.from_dlpack(t)`` and ``jax.dlpack.from_dlpack(t)`` read a
tracenn tensor directly.

How this differs from torch: torch's ``from_dlpack`` shares memory with the producer, both ways.
tracenn's tensors hold immutable JAX arrays, so ``from_dlpack`` *copies* what another library
made (a later write to the NumPy array does not show in the tensor, nor the reverse); a JAX array
is taken as it is (it cannot change). Exported tensors share the JAX buffer read-only; a tracenn
in-place op afterwards makes a new buffer, which the consumer does not see.

>>> import numpy as np
>>> import tracenn
>>> t = tracenn.from_dlpack(np.arange(3.0))
>>> t, np.from_dlpack(t * 2)
(tensor([0., 1., 2.], dtype=tracenn.float64), array([0., 2., 4.]))
"""
from __future__ import annotations

import ctypes
import enum

import jax
import jax.numpy as jnp

from ..tensor import Tensor

__all__ = ["DLDeviceType", "from_dlpack", "to_dlpack"]


class DLDeviceType(enum.IntEnum):
    """DLPack's device codes (torch.utils.dlpack.DLDeviceType)."""
    kDLCPU = 1
    kDLCUDA = 2
    kDLCUDAHost = 3
    kDLOpenCL = 4
    kDLVulkan = 7
    kDLMetal = 8
    kDLVPI = 9
    kDLROCM = 10
    kDLROCMHost = 11
    kDLExtDev = 12
    kDLCUDAManaged = 13
    kDLOneAPI = 14
    kDLWebGPU = 15
    kDLHexagon = 16
    kDLMAIA = 17


def to_dlpack(tensor: Tensor):
    """A DLPack capsule of ``tensor``'s values (consumed once, by ``from_dlpack`` of any library)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dlpack(): argument 'tensor' must be Tensor, not {type(tensor).__name__}")
    return tensor.__dlpack__()


class _Capsule:
    """A bare DLPack capsule dressed as a producer (JAX takes only objects with ``__dlpack__``)."""

    def __init__(self, capsule):
        self._capsule = capsule
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        valid = ctypes.pythonapi.PyCapsule_IsValid
        valid.restype, valid.argtypes = ctypes.c_int, [ctypes.py_object, ctypes.c_char_p]
        if not valid(capsule, b"dltensor"):
            raise RuntimeError("from_dlpack received an invalid capsule. Note that DLTensor capsules can be "
                               "consumed only once, so you might have already constructed a tensor from it once.")
        # DLManagedTensor begins with a DLTensor: {void* data; {int32 device_type; int32 device_id}; ...}
        head = (ctypes.c_int32 * 2).from_address(get(capsule, b"dltensor") + ctypes.sizeof(ctypes.c_void_p))
        self._device = (DLDeviceType(head[0]), int(head[1]))

    def __dlpack__(self, **kwargs):
        return self._capsule

    def __dlpack_device__(self):
        return self._device


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor with the values of ``ext_tensor``: an object with ``__dlpack__`` or a DLPack capsule
    (a copy, except for a JAX array: see the module docstring).

    >>> import jax.numpy as jnp
    >>> import tracenn
    >>> tracenn.from_dlpack(jnp.ones(2, dtype=jnp.int32))
    tensor([1, 1], dtype=tracenn.int32)
    """
    if isinstance(ext_tensor, Tensor):  # (torch's: an alias of it, refused if it requires grad)
        if ext_tensor.requires_grad:
            raise BufferError("Can't export tensors that require gradient, use tensor.detach()")
        return ext_tensor.detach()
    if isinstance(ext_tensor, jax.Array):
        return Tensor._wrap(ext_tensor)
    if type(ext_tensor).__name__ == "PyCapsule":
        ext_tensor = _Capsule(ext_tensor)
    elif not hasattr(ext_tensor, "__dlpack__"):
        raise TypeError(f"from_dlpack(): expected an object with __dlpack__ (a NumPy, JAX or torch array) or a "
                        f"DLPack capsule, got {type(ext_tensor).__name__}")
    try:
        shared = jax.dlpack.from_dlpack(ext_tensor)
    except (RuntimeError, TypeError, ValueError, BufferError) as e:
        raise RuntimeError(f"from_dlpack(): JAX could not import this {type(ext_tensor).__name__}: {e}") from None
    # JAX may alias the producer's memory (its copy=True does not always copy on the CPU): copy, and
    # finish copying before the producer can write again.
    return Tensor._wrap(jnp.array(shared, copy=True).block_until_ready())
