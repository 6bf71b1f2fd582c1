"""torch's legacy tensor constructors: ``tracenn.FloatTensor(2, 3)``, ``tracenn.LongTensor([1, 2])``,
``tracenn.Tensor(...)`` and ``x.new(...)``, and the type objects that go with them
(``isinstance(x, tracenn.LongTensor)``, ``x.type(tracenn.LongTensor)``).

Older tutorials still write these. One rule serves them all (torch's ``legacy_tensor_ctor``): no
argument gives an empty tensor, ints or a ``Size`` give an uninitialised (here: zero) tensor of that
size, a sequence or array gives a tensor of that data, and a tensor of the same dtype is aliased.
The dtype is the type's (``x.new``: ``x``'s; ``Tensor``: the default float dtype), never inferred.
"""
from __future__ import annotations

import numbers

from .. import dtypes as _dt
from ..size import Size
from ..tensor import Tensor
from . import creation as _creation

__all__ = ["legacy_new", "tensortype", "LEGACY_TYPES", "CUDA_LEGACY_TYPES"]


def legacy_new(dtype: _dt.dtype, device, args: tuple, name: str = "new") -> Tensor:
    """A tensor of ``dtype`` from a legacy constructor's positional ``args`` (see the module doc)."""
    if not args:
        return _creation.empty(0, dtype=dtype, device=device)
    if len(args) == 1 and not _is_int(args[0]):
        data = args[0]
        if isinstance(data, Tensor):
            if data.dtype is not dtype:
                raise TypeError(f"{name}(): expected a tensor of dtype {dtype} (got {data.dtype}); "
                                f"convert it first with .to({dtype})")
            return data.view(data.shape)  # an alias, as torch's
        if isinstance(data, Size):
            return _creation.empty(*data, dtype=dtype, device=device)
        if isinstance(data, (numbers.Number, str)):
            raise TypeError(f"{name}(): data must be a sequence (got {type(data).__name__})")
        return _creation.tensor(data, dtype=dtype, device=device)
    for i, a in enumerate(args):
        if not _is_int(a):
            raise TypeError(f"{name}(): argument 'size' must be a tuple of ints, but got {type(a).__name__} at "
                            f"position {i}: pass the sizes as ints, or one sequence of data")
    return _creation.empty(*args, dtype=dtype, device=device)


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


class tensortype(type):
    """The metaclass of the legacy types (torch's ``torch.tensortype``): ``tracenn.FloatTensor`` is
    a CPU float32 tensor for ``isinstance``, a constructor when called, and a dtype for
    ``x.type(tracenn.FloatTensor)``.

    >>> import tracenn
    >>> tracenn.LongTensor([1, 2])
    tensor([1, 2])
    >>> tracenn.FloatTensor(2, 3).shape
    tracenn.Size([2, 3])
    >>> isinstance(tracenn.zeros(2), tracenn.FloatTensor), isinstance(tracenn.zeros(2), tracenn.LongTensor)
    (True, False)
    """

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == cls.device_type

    def __call__(cls, *args, device=None):
        if cls.is_cuda:
            from .. import cuda
            if not cuda.is_available():
                raise TypeError(f"type tracenn.cuda.{cls.__name__} not available: JAX sees no GPU. Use "
                                f"tracenn.{cls.__name__}, or tracenn.tensor(..., device='cuda') on a machine with one")
            device = "cuda" if device is None else device
        return legacy_new(cls.dtype, device, args, name=cls.__name__)


def _legacy_type(dtype: _dt.dtype, device_type: str) -> tensortype:
    name = _dt.TYPE_NAMES[dtype].split(".")[-1]
    where = "CUDA" if device_type == "cuda" else "CPU"
    return tensortype(name, (), {"dtype": dtype, "device_type": device_type, "is_cuda": device_type == "cuda",
                                 "is_sparse": False, "__module__": "tracenn.cuda" if device_type == "cuda" else "tracenn",
                                 "__doc__": f"Legacy constructor and ``isinstance`` type of {where} {dtype} tensors."})


def _legacy_types(device_type: str) -> dict:
    """torch's set: every dtype in TYPE_NAMES but the complex ones."""
    return {t.__name__: t for t in (_legacy_type(d, device_type) for d in _dt.TYPE_NAMES if not d.is_complex)}


LEGACY_TYPES = _legacy_types("cpu")
CUDA_LEGACY_TYPES = _legacy_types("cuda")  # tracenn.cuda.FloatTensor, ...
