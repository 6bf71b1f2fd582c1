"""PyTorch's zip checkpoint format: read without pickle (only the weights-only globals are allowed)
and written opcode by opcode, so ``torch.load(weights_only=True)`` reads what tracenn writes."""
from __future__ import annotations

import _compat_pickle
import collections
import math
import pickle
import struct
import sys

import numpy as np

from .. import dtypes as _dt
from ..device import device as _device
from ..optim._state import StateDict
from ..size import Size
from ..tensor import Tensor
from . import (CorruptCheckpointError, SerializationError, UnsafeCheckpointError, _finish_tensor,
               _host_array, _is_parameter, _Members, _PassThrough, _Placer, _refuse, _where)

# ---- PyTorch's zip format -----------------------------------------------------------------------

# torch's legacy storage class names <-> dtypes (what torch.save writes in data.pkl).
_STORAGE_NAMES = {
    _dt.float32: "FloatStorage", _dt.float64: "DoubleStorage", _dt.float16: "HalfStorage",
    _dt.bfloat16: "BFloat16Storage", _dt.int64: "LongStorage", _dt.int32: "IntStorage",
    _dt.int16: "ShortStorage", _dt.int8: "CharStorage", _dt.uint8: "ByteStorage", _dt.bool: "BoolStorage",
    _dt.complex64: "ComplexFloatStorage", _dt.complex128: "ComplexDoubleStorage",
}
_STORAGE_DTYPES = {name: d for d, name in _STORAGE_NAMES.items()}
# torch dtypes tracenn lacks, which a checkpoint may name (torch._utils._rebuild_tensor_v3's dtype)
_MISSING_DTYPES = ("uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                   "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn_x2", "complex32", "chalf",
                   *(f"int{n}" for n in range(1, 8)), *(f"uint{n}" for n in range(1, 8)))


def _contiguous_strides(shape) -> tuple:
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= max(s, 1)
    return tuple(reversed(strides))


class _PickleWriter:
    """Emits the protocol-2 opcodes torch.save writes, for the values torch's weights-only reader allows."""

    def __init__(self):
        self.out = bytearray(b"\x80\x02")

    def glob(self, module: str, name: str) -> None:
        self.out += b"c" + f"{module}\n{name}\n".encode()

    def str_(self, s: str) -> None:
        b = s.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(b)) + b

    def int_(self, x: int) -> None:
        if -2 ** 31 <= x < 2 ** 31:
            self.out += b"J" + struct.pack("<i", x)
        else:
            b = pickle.encode_long(x)
            self.out += (b"\x8a" + bytes([len(b)]) if len(b) < 256 else b"\x8b" + struct.pack("<i", len(b))) + b

    def tuple_(self, items, emit) -> None:
        if not items:
            self.out += b")"
            return
        if len(items) > 3:
            self.out += b"("
        for x in items:
            emit(x)
        self.out += b"t" if len(items) > 3 else b"\x85\x86\x87"[len(items) - 1: len(items)]

    def empty_odict(self) -> None:
        self.glob("collections", "OrderedDict")
        self.out += b")R"


class _TorchEncoder:
    """Object tree -> torch's zip members: ``archive/data.pkl`` and ``archive/data/N``."""

    def __init__(self):
        self.w = _PickleWriter()
        self.blobs: list = []
        self.keys: dict = {}
        self.keep: list = []
        self.active: set = set()

    def encode(self, obj):
        self.emit(obj, ())
        self.w.out += b"."
        entries = [("archive/data.pkl", bytes(self.w.out)), ("archive/byteorder", b"little")]
        entries += [(f"archive/data/{i}", b) for i, b in enumerate(self.blobs)]
        entries += [("archive/version", b"3\n"), ("archive/.data/version", b"3\n")]
        return entries

    def tensor(self, t: Tensor, requires_grad: bool) -> None:
        w = self.w
        key = self.keys.get(id(t))
        if key is None:
            key = self.keys[id(t)] = len(self.blobs)
            self.keep.append(t)
            self.blobs.append(_host_array(t))
        shape = tuple(t.shape)
        w.glob("torch._utils", "_rebuild_tensor_v2")
        w.out += b"(("  # the argument tuple, then the persistent id tuple
        w.str_("storage")
        w.glob("torch", _STORAGE_NAMES[t.dtype])
        w.str_(str(key))
        w.str_(str(t.device))
        w.int_(math.prod(shape))
        w.out += b"tQ"
        w.int_(0)
        w.tuple_(shape, w.int_)
        w.tuple_(_contiguous_strides(shape), w.int_)
        w.out += b"\x88" if requires_grad else b"\x89"
        w.empty_odict()
        w.out += b"tR"

    def emit(self, x, path) -> None:
        w, t = self.w, type(x)
        if isinstance(x, np.generic) and x.dtype.kind in "biuf":
            x = x.item()  # torch's weights-only reader has no numpy scalars: store the Python number
            t = type(x)
        if x is None:
            w.out += b"N"
        elif t is bool:
            w.out += b"\x88" if x else b"\x89"
        elif t is int:
            w.int_(x)
        elif t is float:
            w.out += b"G" + struct.pack(">d", x)
        elif t is str:
            w.str_(x)
        elif t is bytes:
            w.glob("_codecs", "encode")
            w.tuple_((x.decode("latin1"), "latin1"), w.str_)
            w.out += b"R"
        elif isinstance(x, Tensor):
            if x.dtype not in _STORAGE_NAMES:
                _refuse(x, path)
            if _is_parameter(x):
                w.glob("torch._utils", "_rebuild_parameter")
                w.out += b"("
                self.tensor(x, False)
                w.out += b"\x88" if x.requires_grad else b"\x89"
                w.empty_odict()
                w.out += b"tR"
            else:
                self.tensor(x, x.requires_grad)
        elif isinstance(x, _dt.dtype):
            w.glob("torch", x.name)
        elif isinstance(x, _device):
            w.glob("torch", "device")
            w.tuple_((x.type,) if x.index is None else (x.type, x.index),
                     lambda v: w.str_(v) if isinstance(v, str) else w.int_(v))
            w.out += b"R"
        elif t is Size:
            w.glob("torch", "Size")
            w.out += b"("
            w.tuple_(tuple(x), w.int_)
            w.out += b"tR"
        elif t is complex:
            w.glob("builtins", "complex")
            w.out += b"(" + b"G" + struct.pack(">d", x.real) + b"G" + struct.pack(">d", x.imag) + b"tR"
        elif t in (list, tuple, dict, StateDict, collections.OrderedDict, collections.Counter, set):
            if id(x) in self.active:
                raise ValueError(f"tracenn.save: {_where(path)} contains itself; checkpoints must be trees")
            self.active.add(id(x))
            try:
                self.container(x, path)
            finally:
                self.active.discard(id(x))
        else:
            _refuse(x, path)

    def container(self, x, path) -> None:
        w, t = self.w, type(x)
        if t is tuple:
            w.tuple_(list(enumerate(x)), lambda iv: self.emit(iv[1], path + (iv[0],)))
        elif t is list:
            w.out += b"]"
            if x:
                w.out += b"("
                for i, v in enumerate(x):
                    self.emit(v, path + (i,))
                w.out += b"e"
        elif t is collections.Counter:  # pickled as Counter.__reduce__ gives it: Counter(dict)
            w.glob("collections", "Counter")
            w.out += b"("
            self.container(dict(x), path)
            w.out += b"tR"
        elif t is set:
            w.glob("builtins", "set")
            w.out += b"(]"
            if x:
                w.out += b"("
                for v in x:
                    self.emit(v, path)
                w.out += b"e"
            w.out += b"tR"
        else:
            if t is dict or t is StateDict:  # (an optimizer's per-parameter state: written as the dict it is)
                w.out += b"}"
            else:
                w.empty_odict()
            if x:
                w.out += b"("
                for k, v in x.items():
                    self.emit(k, path + (k,))
                    self.emit(v, path + (k,))
                w.out += b"u"
            meta = getattr(x, "_metadata", None)
            if t is collections.OrderedDict and meta is not None:
                w.out += b"}("
                w.str_("_metadata")
                self.emit(meta, path + ("_metadata",))
                w.out += b"ub"


class _StorageType:
    """What a ``torch.FloatStorage``-style GLOBAL stands for: only its dtype."""

    def __init__(self, dtype):
        self.dtype = dtype


class _TorchMarker:
    """Stand-in for an allowed torch class that is only compared against (``torch.Tensor``)."""

    def __init__(self, name):
        self.name = name


_TORCH_TENSOR = _TorchMarker("torch.Tensor")


class _TorchDecoder:
    """Reads ``<prefix>data.pkl`` with a pickle interpreter that knows only weights-only globals."""

    def __init__(self, reader: _Members, prefix: str, place: _Placer):
        self.reader, self.prefix, self.place, self.name = reader, prefix, place, reader.name
        self.storages: dict = {}
        try:
            order = reader.read(prefix + "byteorder").decode().strip()
        except CorruptCheckpointError:
            order = "little"  # files written before torch recorded it are little-endian
        if order not in ("little", "big"):
            raise CorruptCheckpointError(f"{self.name}: unknown byteorder record {order!r}")
        self.swap = order != sys.byteorder
        self.globals = self._allowed()

    def _allowed(self) -> dict:
        from ..nn.parameter import Parameter

        def rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                              metadata=None):
            return self.rebuild(storage, storage_offset, tuple(size), tuple(stride), requires_grad)

        def rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                              metadata=None):
            # torch writes v3 (an untyped byte storage and a dtype) for dtypes without a legacy
            # storage class: uint16/32/64, the float8s, ... none of which tracenn has.
            if not isinstance(dtype, _dt.dtype):
                name = getattr(dtype, "name", repr(dtype))
                raise SerializationError(
                    f"{self.name} holds a tensor of dtype {name}, which tracenn does not have (it has "
                    "bool, uint8, int8/16/32/64, float16/32/64, bfloat16, complex64/128): convert it in torch "
                    "before saving (t.to(torch.int64) for unsigned integers, t.float() for float8)")
            arr, location = storage
            if arr.size % dtype.itemsize:
                raise CorruptCheckpointError(f"{self.name}: a {dtype.name} storage of {arr.size} bytes")
            return self.rebuild((arr.view(dtype.np), location), storage_offset, tuple(size), tuple(stride),
                                requires_grad)

        def rebuild_parameter(data, requires_grad, backward_hooks=None, state=None):
            if not isinstance(data, Tensor):
                raise TypeError("_rebuild_parameter expects a tensor")
            return Parameter(data.detach(), requires_grad=bool(requires_grad))

        def rebuild_from_type_v2(func, new_type, args, state):
            if new_type is not _TORCH_TENSOR or func not in (rebuild_tensor_v2, rebuild_parameter):
                raise UnsafeCheckpointError(f"{self.name}: a tensor subclass ({getattr(new_type, 'name', new_type)}) "
                                            "cannot be rebuilt without running its code")
            return func(*args)

        def codecs_encode(s, encoding="utf-8"):
            if not isinstance(s, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
                raise TypeError("_codecs.encode is only allowed on strings with latin1/utf-8")
            return s.encode(encoding)

        def size(dims=()):
            return Size(int(d) for d in dims)

        def device(kind, index=None):
            return _device(kind, index)

        table = {
            "torch._utils._rebuild_tensor_v2": rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": rebuild_parameter,
            "torch._tensor._rebuild_from_type_v2": rebuild_from_type_v2,
            "torch.Tensor": _TORCH_TENSOR,
            "collections.OrderedDict": collections.OrderedDict,
            "collections.Counter": collections.Counter,
            "torch.Size": size,
            "torch.device": device,
            "_codecs.encode": codecs_encode,
            "builtins.set": set,
            "builtins.frozenset": frozenset,
            "builtins.complex": complex,
            "builtins.bytearray": bytearray,
            "torch.storage.UntypedStorage": _StorageType(_dt.uint8),
        }
        for name in _MISSING_DTYPES:  # (named only so that the error says which dtype it is)
            table[f"torch.{name}"] = _TorchMarker(f"torch.{name}")
        for d, name in _STORAGE_NAMES.items():
            table[f"torch.{name}"] = _StorageType(d)
            table[f"torch.{d.name}"] = d
        for alias, d in (("float", _dt.float32), ("double", _dt.float64), ("half", _dt.float16),
                         ("long", _dt.int64), ("int", _dt.int32), ("short", _dt.int16),
                         ("cfloat", _dt.complex64), ("cdouble", _dt.complex128)):
            table[f"torch.{alias}"] = d
        return table

    def storage(self, pid):
        if type(pid) is not tuple or len(pid) != 5 or pid[0] != "storage":
            raise UnsafeCheckpointError(f"{self.name}: only storage persistent ids are allowed, got {pid!r:.80}")
        _, stype, key, location, numel = pid
        if not isinstance(stype, _StorageType) or not isinstance(key, str) or not isinstance(location, str):
            raise CorruptCheckpointError(f"{self.name}: malformed storage id {pid!r:.120}")
        hit = self.storages.get(key)
        if hit is None:
            raw = self.reader.read(f"{self.prefix}data/{key}")
            d = stype.dtype
            if type(numel) is not int or len(raw) != numel * d.itemsize:
                raise CorruptCheckpointError(f"{self.name}: storage {key} should hold {numel} {d.name} elements "
                                             f"({numel * d.itemsize if type(numel) is int else '?'} bytes), the "
                                             f"file holds {len(raw)} bytes")
            arr = np.frombuffer(raw, dtype=d.np)
            hit = self.storages[key] = (arr.byteswap() if self.swap else arr, location)
        return hit

    def rebuild(self, storage, offset, size, stride, requires_grad):
        arr, location = storage
        if (type(offset) is not int or len(size) != len(stride) or offset < 0
                or any(type(s) is not int or s < 0 for s in size) or any(type(s) is not int or s < 0 for s in stride)):
            raise CorruptCheckpointError(f"{self.name}: bad tensor geometry offset={offset} size={size} "
                                         f"stride={stride}")
        if math.prod(size) > 0:
            last = offset + sum((s - 1) * st for s, st in zip(size, stride))
            if last >= arr.size:
                raise CorruptCheckpointError(f"{self.name}: a tensor of size {size} reads past the end of its "
                                             f"storage ({arr.size} elements)")
            view = np.lib.stride_tricks.as_strided(arr[offset:], shape=size,
                                                   strides=tuple(s * arr.itemsize for s in stride), writeable=False)
        else:
            view = np.zeros(size, dtype=arr.dtype)
        try:
            t = self.place.make(np.array(view, order="C"), location)
        except Exception as e:  # a missing device or the user's map_location: not a corrupt file
            raise _PassThrough(e) from None
        return _finish_tensor(t, bool(requires_grad), False)

    def decode(self):
        data = self.reader.read(self.prefix + "data.pkl")
        try:
            return _WeightsOnlyUnpickler(data, self).load()
        except _PassThrough as p:
            raise p.error from None
        except SerializationError:
            raise
        except (IndexError, KeyError, struct.error, ValueError, TypeError, UnicodeDecodeError, EOFError) as e:
            raise CorruptCheckpointError(f"{self.name}: data.pkl is malformed ({type(e).__name__}: {e})") from e


class _WeightsOnlyUnpickler:
    """A pickle interpreter for the opcodes torch.save emits; calls only the allowed globals' stand-ins."""

    def __init__(self, data: bytes, owner: _TorchDecoder):
        self.data, self.pos, self.owner = data, 0, owner
        self.stack: list = []
        self.metastack: list = []
        self.memo: dict = {}

    def read(self, n: int) -> bytes:
        b = self.data[self.pos: self.pos + n]
        if len(b) != n:
            raise EOFError("data.pkl ends in the middle of an instruction")
        self.pos += n
        return b

    def readline(self) -> bytes:
        end = self.data.find(b"\n", self.pos)
        if end < 0:
            raise EOFError("data.pkl ends in the middle of a GLOBAL")
        line, self.pos = self.data[self.pos: end], end + 1
        return line

    def pop_mark(self) -> list:
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def find(self, module: str, name: str):
        # torch.save writes pickle protocol 2, which names builtins by their Python 2 module
        # (``__builtin__.set``, ``__builtin__.complex``): map them as pickle's fix_imports does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        hit = self.owner.globals.get(full)
        if hit is None:
            raise UnsafeCheckpointError(
                f"{self.owner.name}: refusing to load the global {full}: loading it could run code. tracenn.load "
                "reads weights only (tensors, Parameters, containers, numbers, strings), like "
                "torch.load(weights_only=True). Save a state_dict (model.state_dict()) instead of whole objects.")
        return hit

    def load(self):
        read, stack = self.read, None
        while True:
            op = read(1)[0]
            stack = self.stack
            if op == 0x80:    # PROTO
                read(1)
            elif op == 0x95:  # FRAME
                read(8)
            elif op == 0x2E:  # STOP
                return stack.pop()
            elif op == 0x28:  # MARK
                self.metastack.append(stack)
                self.stack = []
            elif op == 0x4E:  # NONE
                stack.append(None)
            elif op == 0x88:  # NEWTRUE
                stack.append(True)
            elif op == 0x89:  # NEWFALSE
                stack.append(False)
            elif op == 0x4A:  # BININT
                stack.append(struct.unpack("<i", read(4))[0])
            elif op == 0x4B:  # BININT1
                stack.append(read(1)[0])
            elif op == 0x4D:  # BININT2
                stack.append(struct.unpack("<H", read(2))[0])
            elif op == 0x8A:  # LONG1
                stack.append(pickle.decode_long(read(read(1)[0])))
            elif op == 0x8B:  # LONG4
                n = struct.unpack("<i", read(4))[0]
                if n < 0:
                    raise ValueError("negative LONG4 length")
                stack.append(pickle.decode_long(read(n)))
            elif op == 0x47:  # BINFLOAT
                stack.append(struct.unpack(">d", read(8))[0])
            elif op == 0x58:  # BINUNICODE
                stack.append(str(read(struct.unpack("<I", read(4))[0]), "utf-8", "surrogatepass"))
            elif op == 0x8C:  # SHORT_BINUNICODE
                stack.append(str(read(read(1)[0]), "utf-8", "surrogatepass"))
            elif op == 0x8D:  # BINUNICODE8
                stack.append(str(read(struct.unpack("<Q", read(8))[0]), "utf-8", "surrogatepass"))
            elif op == 0x55:  # SHORT_BINSTRING (protocol-2 str of Python 2)
                stack.append(read(read(1)[0]).decode("ascii"))
            elif op == 0x42:  # BINBYTES
                stack.append(bytes(read(struct.unpack("<I", read(4))[0])))
            elif op == 0x43:  # SHORT_BINBYTES
                stack.append(bytes(read(read(1)[0])))
            elif op == 0x8E:  # BINBYTES8
                stack.append(bytes(read(struct.unpack("<Q", read(8))[0])))
            elif op == 0x29:  # EMPTY_TUPLE
                stack.append(())
            elif op == 0x5D:  # EMPTY_LIST
                stack.append([])
            elif op == 0x7D:  # EMPTY_DICT
                stack.append({})
            elif op == 0x8F:  # EMPTY_SET
                stack.append(set())
            elif op == 0x74:  # TUPLE
                items = self.pop_mark()
                self.stack.append(tuple(items))
            elif op == 0x85:  # TUPLE1
                stack[-1] = (stack[-1],)
            elif op == 0x86:  # TUPLE2
                stack[-2:] = [(stack[-2], stack[-1])]
            elif op == 0x87:  # TUPLE3
                stack[-3:] = [(stack[-3], stack[-2], stack[-1])]
            elif op == 0x6C:  # LIST
                items = self.pop_mark()
                self.stack.append(list(items))
            elif op == 0x64:  # DICT
                items = self.pop_mark()
                self.stack.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})
            elif op == 0x91:  # FROZENSET
                items = self.pop_mark()
                self.stack.append(frozenset(items))
            elif op == 0x61:  # APPEND
                item = stack.pop()
                self.target(list, "APPEND").append(item)
            elif op == 0x65:  # APPENDS
                items = self.pop_mark()
                self.target(list, "APPENDS").extend(items)
            elif op == 0x73:  # SETITEM
                v, k = stack.pop(), stack.pop()
                self.target(dict, "SETITEM")[k] = v
            elif op == 0x75:  # SETITEMS
                items = self.pop_mark()
                d = self.target(dict, "SETITEMS")
                for i in range(0, len(items), 2):
                    d[items[i]] = items[i + 1]
            elif op == 0x90:  # ADDITEMS
                items = self.pop_mark()
                self.target(set, "ADDITEMS").update(items)
            elif op == 0x63:  # GLOBAL
                module = self.readline().decode("utf-8")
                name = self.readline().decode("utf-8")
                stack.append(self.find(module, name))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = stack.pop(), stack.pop()
                if not (isinstance(module, str) and isinstance(name, str)):
                    raise TypeError("STACK_GLOBAL needs two strings")
                stack.append(self.find(module, name))
            elif op == 0x52:  # REDUCE
                args = stack.pop()
                func = stack[-1]
                if not callable(func) or not any(func is g for g in self.owner.globals.values()):
                    raise UnsafeCheckpointError(f"{self.owner.name}: REDUCE on {func!r:.60}, which is not an "
                                                "allowed function")
                if type(args) is not tuple:
                    raise TypeError("REDUCE arguments must be a tuple")
                stack[-1] = func(*args)
            elif op == 0x62:  # BUILD
                state = stack.pop()
                inst = stack[-1]
                if type(inst) is not collections.OrderedDict or not isinstance(state, dict) or not all(
                        isinstance(k, str) and not k.startswith("__") for k in state):
                    raise UnsafeCheckpointError(f"{self.owner.name}: BUILD is only allowed to set a state_dict's "
                                                f"attributes (e.g. _metadata), not on {type(inst).__name__}")
                inst.__dict__.update(state)
            elif op == 0x51:  # BINPERSID
                stack.append(self.owner.storage(stack.pop()))
            elif op == 0x71:  # BINPUT
                self.memo[read(1)[0]] = stack[-1]
            elif op == 0x72:  # LONG_BINPUT
                self.memo[struct.unpack("<I", read(4))[0]] = stack[-1]
            elif op == 0x94:  # MEMOIZE
                self.memo[len(self.memo)] = stack[-1]
            elif op == 0x68:  # BINGET
                stack.append(self.memo[read(1)[0]])
            elif op == 0x6A:  # LONG_BINGET
                stack.append(self.memo[struct.unpack("<I", read(4))[0]])
            elif op == 0x30:  # POP
                if stack:
                    stack.pop()
                else:
                    self.pop_mark()
            elif op == 0x31:  # POP_MARK
                self.pop_mark()
            elif op == 0x32:  # DUP
                stack.append(stack[-1])
            else:
                raise UnsafeCheckpointError(f"{self.owner.name}: unsupported pickle opcode {bytes([op])!r} at byte "
                                            f"{self.pos - 1} of data.pkl (tracenn reads torch's weights-only subset)")

    def target(self, kind, opname):
        obj = self.stack[-1]
        if type(obj) is not kind and not (kind is dict and type(obj) is collections.OrderedDict):
            raise UnsafeCheckpointError(f"{self.owner.name}: {opname} on a {type(obj).__name__}, expected a "
                                        f"{kind.__name__}")
        return obj
