"""``tracenn.save`` / ``tracenn.load``: checkpoints that never run code when read.

This module holds ``save``/``load`` and tracenn's own format; PyTorch's format lives in
``torch_format.py`` beside it. Two formats, both uncompressed zip archives (a truncated or damaged file fails the zip's central
directory or CRC checks, so it is reported, never half-read):

* **tracenn** (the default). ``tracenn/header.json`` holds the object tree as tagged JSON
  (``{"dict": [[key, value], ...]}``, ``{"tuple": [...]}``, ``{"tensor": 0}``, ...) and a table of
  tensors (dtype, shape, byte count, device, ``requires_grad``, Parameter-ness);
  ``tracenn/data/N`` holds tensor N's values as raw little-endian C-order bytes. Readers reject a
  header with an unknown tag, a wrong byte count or a newer format version.
* **torch** (``save(..., format="torch")``; ``load`` detects it). PyTorch's own zip layout
  (``archive/data.pkl`` plus one ``archive/data/N`` per storage), readable by
  ``torch.load(path, weights_only=True)``. Reading one runs ``data.pkl`` through a small pickle
  interpreter written here that knows only the globals torch's weights-only format uses
  (``_rebuild_tensor_v2``, ``_rebuild_parameter``, ``OrderedDict``, the storage types, dtypes,
  ``Size``, ``device``, ...) and refuses anything else: neither torch nor ``pickle`` is needed or
  called.

Writes to a path are atomic: the archive goes to a temporary file in the same folder, is fsynced,
then renamed over the target, so a crash leaves either the old file or the new one.
"""
from __future__ import annotations

import base64
import collections
import io
import json
import math
import os
import pickle
import stat
import struct
import sys
import tempfile
import zipfile
import zlib

import numpy as np

from .. import dtypes as _dt
from ..device import device as _device
from ..errors import DeviceError, TracennError
from ..optim._state import StateDict
from ..size import Size
from ..tensor import Tensor

__all__ = ["save", "load", "SerializationError", "CorruptCheckpointError", "NotACheckpointError",
           "UnsafeCheckpointError"]

FORMAT_VERSION = 1
_HEADER = "tracenn/header.json"
_ZIP_MAGIC = b"PK\x03\x04"
_ALIGN = 64  # tensor bytes start at a multiple of this offset in the file (as torch's writer does)
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the same object always gives the same bytes


class SerializationError(TracennError, RuntimeError):
    """A checkpoint that cannot be written or read (torch raises ``RuntimeError`` in these cases)."""


class CorruptCheckpointError(SerializationError):
    """The file is a checkpoint but truncated or damaged."""


class NotACheckpointError(SerializationError, pickle.UnpicklingError):
    """The file is neither a tracenn checkpoint nor a PyTorch zip checkpoint."""


class UnsafeCheckpointError(SerializationError, pickle.UnpicklingError):
    """A PyTorch checkpoint whose pickle asks for something that could run code on load."""


# ---- save ---------------------------------------------------------------------------------------

def save(obj, f, pickle_module=None, pickle_protocol=2, *, format: str = "tracenn") -> None:
    """Save ``obj`` (tensors, state_dicts, optimizer state, nested containers) to ``f``.

    ``obj`` may nest ``dict`` (any storable keys), ``OrderedDict`` (a state_dict's ``_metadata`` is
    kept), ``Counter`` (``MultiStepLR``'s milestones), ``list``, ``tuple``, ``set`` of tensors,
    Parameters, numpy arrays and plain values
    (``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, dtypes, devices,
    ``Size``). A tensor that appears twice is stored once and comes back as one object. Modules and
    other objects are refused: save ``model.state_dict()`` and rebuild the model in code.

    Args:
        obj: what to save.
        f: a path (written atomically: temporary file, fsync, rename) or a binary file object.
        pickle_module, pickle_protocol: accepted for torch's signature; a ``pickle_module`` is refused
            (tracenn never pickles arbitrary objects).
        format: ``"tracenn"`` (default), or ``"torch"`` for a file ``torch.load(f, weights_only=True)``
            reads (tensors, containers, numbers, strings; no numpy arrays).

    Raises:
        TypeError: ``obj`` holds something that cannot be stored, with where it is.

    >>> import io, tracenn
    >>> buf = io.BytesIO()
    >>> tracenn.save({"w": tracenn.ones(2, dtype=tracenn.bfloat16), "step": 3}, buf)
    >>> _ = buf.seek(0)
    >>> tracenn.load(buf)
    {'w': tensor([1., 1.], dtype=tracenn.bfloat16), 'step': 3}
    """
    if pickle_module is not None:
        raise TypeError("tracenn.save(pickle_module=...) is not supported: tracenn checkpoints never pickle "
                        "arbitrary objects (they are read back without running code)")
    if format == "tracenn":
        entries = _TracennEncoder().encode(obj)
    elif format == "torch":
        from .torch_format import _TorchEncoder
        entries = _TorchEncoder().encode(obj)
    else:
        raise ValueError(f"tracenn.save(format={format!r}): expected 'tracenn' or 'torch'")
    if isinstance(f, (str, os.PathLike)):
        _atomic_write(os.path.realpath(os.fspath(f)), entries)  # through a symlink, as open() would
    else:
        _write_zip(f, entries)


def _write_zip(fileobj, entries) -> None:
    with zipfile.ZipFile(fileobj, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, payload in entries:
            _write_entry(zf, name, payload)


def _write_entry(zf: zipfile.ZipFile, name: str, payload) -> None:
    """One stored member, padded (an 'FB' extra field, as torch pads) so its bytes are aligned."""
    data = payload if isinstance(payload, bytes) else memoryview(payload.reshape(-1).view(np.uint8))
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = len(data)
    start = getattr(zf, "start_dir", None)
    if start is not None:
        pad = -(start + 30 + len(name.encode()) + 4) % _ALIGN
        info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    with zf.open(info, "w", force_zip64=len(data) > zipfile.ZIP64_LIMIT) as w:
        w.write(data)


def _atomic_write(path: str, entries) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SerializationError(f"Parent directory {folder} does not exist.")
    mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            _write_zip(fh, entries)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host_array(t: Tensor) -> np.ndarray:
    a = np.asarray(t.detach(), order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    return a if sys.byteorder == "little" else a.byteswap()


def _is_parameter(t) -> bool:
    from ..nn.parameter import Parameter
    return isinstance(t, Parameter)


def _where(path) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


def _refuse(x, path):
    hint = (" Save its state_dict() instead and rebuild the object in code."
            if hasattr(x, "state_dict") else "")
    raise TypeError(f"tracenn.save cannot store {type(x).__module__}.{type(x).__qualname__} at {_where(path)}: "
                    "checkpoints hold tensors, numpy arrays, dict/OrderedDict/Counter/list/tuple/set and plain values "
                    f"(None, bool, int, float, complex, str, bytes, dtype, device, Size).{hint}")


# the dict types a checkpoint keeps, by header tag (a Counter is in MultiStepLR's state_dict)
_DICT_TAGS = {dict: "dict", collections.OrderedDict: "odict", collections.Counter: "counter"}
_DICT_TYPES = {tag: t for t, tag in _DICT_TAGS.items()}
_DICT_TAGS[StateDict] = "dict"  # (an optimizer's per-parameter state: a dict that counts its changes)


class _TracennEncoder:
    """Object tree -> (header JSON, tensor blobs)."""

    def __init__(self):
        self.records: list = []
        self.blobs: list = []
        self.seen: dict = {}        # id(tensor or array) -> index
        self.keep: list = []        # keeps ids stable while encoding
        self.active: set = set()    # containers on the current path (cycle check)

    def encode(self, obj):
        tree = self.node(obj, ())
        header = {"format": "tracenn", "version": FORMAT_VERSION, "byteorder": "little",
                  "tensors": self.records, "object": tree}
        raw = json.dumps(header, allow_nan=False, separators=(",", ":")).encode()
        return [(_HEADER, raw)] + [(f"tracenn/data/{i}", b) for i, b in enumerate(self.blobs)]

    def blob(self, x, record, arr):
        i = self.seen.get(id(x))
        if i is None:
            i = self.seen[id(x)] = len(self.records)
            self.keep.append(x)
            record["nbytes"] = int(arr.nbytes)
            self.records.append(record)
            self.blobs.append(arr)
        return i

    def node(self, x, path):
        t = type(x)
        if x is None or t is bool or t is str:
            return x
        if t is int:
            return x
        if isinstance(x, Tensor):
            arr = _host_array(x)
            rec = {"kind": "tensor", "dtype": x.dtype.name, "shape": list(x.shape), "device": str(x.device),
                   "requires_grad": bool(x.requires_grad), "parameter": _is_parameter(x)}
            return {"tensor": self.blob(x, rec, arr)}
        if isinstance(x, np.ndarray):
            try:
                d = _dt.from_np(x.dtype)
            except TypeError:
                _refuse(x, path)
            arr = np.asarray(x, order="C")
            rec = {"kind": "ndarray", "dtype": d.name, "shape": list(x.shape)}
            return {"ndarray": self.blob(x, rec, arr if sys.byteorder == "little" else arr.byteswap())}
        if isinstance(x, np.generic):
            try:
                d = _dt.from_np(x.dtype)
            except TypeError:
                _refuse(x, path)
            return {"numpy": d.name, "value": self.node(x.item(), path)}
        if isinstance(x, float):  # Python floats (and np.float64, handled above)
            return x if math.isfinite(x) else {"float": repr(float(x))}
        if t is complex:
            return {"complex": [self.node(x.real, path), self.node(x.imag, path)]}
        if t is bytes or t is bytearray:
            return {t.__name__: base64.b64encode(x).decode("ascii")}
        if isinstance(x, _dt.dtype):
            return {"dtype": x.name}
        if isinstance(x, _device):
            return {"device": str(x)}
        if t is Size:
            return {"size": list(x)}
        if t in _DICT_TAGS or t in (list, tuple, set, frozenset):
            if id(x) in self.active:
                raise ValueError(f"tracenn.save: {_where(path)} contains itself; checkpoints must be trees")
            self.active.add(id(x))
            try:
                if t in _DICT_TAGS:
                    items = [[self.node(k, path + (k,)), self.node(v, path + (k,))] for k, v in x.items()]
                    out = {_DICT_TAGS[t]: items}
                    meta = getattr(x, "_metadata", None)
                    if meta is not None:
                        out["metadata"] = self.node(meta, path + ("_metadata",))
                    return out
                return {t.__name__: [self.node(v, path + (i,)) for i, v in enumerate(x)]}
            finally:
                self.active.discard(id(x))
        _refuse(x, path)


# ---- load ---------------------------------------------------------------------------------------

def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None, **pickle_load_args):
    """Load an object saved by :func:`save` or by PyTorch's ``torch.save`` (zip format).

    Nothing in the file is executed: tracenn checkpoints are JSON plus raw bytes, and a PyTorch
    pickle is read by an interpreter that only rebuilds tensors, Parameters and plain containers
    (what ``torch.load(weights_only=True)`` allows) and refuses any other global.

    Args:
        f: a path or a binary file object.
        map_location: where tensors go. ``None`` restores each to the device it was saved from;
            a device or string (``"cpu"``, ``"cuda:0"``) sends all there; a dict maps saved
            locations to new ones (``{"cuda:0": "cpu"}``); a callable ``fn(tensor, location)``
            gets each tensor on the CPU with its saved location and returns the tensor to use (or
            ``None`` for the default).
        pickle_module: must be None (accepted for torch's signature).
        weights_only, mmap: accepted for torch's signature; loading is always weights-only.

    Returns:
        the saved object: tensors and Parameters as saved (dtype, shape, ``requires_grad``),
        containers of the same types, a state_dict's ``_metadata`` restored.

    Raises:
        FileNotFoundError: no such file.
        CorruptCheckpointError: a truncated or damaged checkpoint (a ``RuntimeError``).
        NotACheckpointError: not a tracenn or PyTorch zip checkpoint (``RuntimeError`` and
            ``pickle.UnpicklingError``).
        UnsafeCheckpointError: a PyTorch pickle that needs a global outside the weights-only set.

    >>> import io, tracenn
    >>> buf = io.BytesIO()
    >>> m = tracenn.nn.Linear(2, 1)
    >>> tracenn.save(m.state_dict(), buf)
    >>> _ = buf.seek(0)
    >>> sd = tracenn.load(buf, map_location="cpu")
    >>> list(sd), tracenn.equal(sd["weight"], m.weight)
    (['weight', 'bias'], True)
    """
    if pickle_module is not None:
        raise TypeError("tracenn.load(pickle_module=...) is not supported: tracenn never unpickles arbitrary objects")
    unknown = set(pickle_load_args) - {"encoding"}
    if unknown:
        raise TypeError(f"tracenn.load() got unexpected keyword arguments {sorted(unknown)}")
    place = _Placer(map_location)
    if isinstance(f, (str, os.PathLike)):
        name = os.fspath(f)
        with open(name, "rb") as fh:
            return _load_from(fh, name, place)
    name = getattr(f, "name", None) or f"<{type(f).__name__}>"
    if not (hasattr(f, "seekable") and f.seekable()):
        f = io.BytesIO(f.read())
    return _load_from(f, str(name), place)


def _load_from(fh, name: str, place) -> object:
    start = fh.tell()
    head = fh.read(4)
    fh.seek(start)
    if not head:
        raise CorruptCheckpointError(f"{name} is empty (0 bytes): a truncated checkpoint, or not a checkpoint")
    if head != _ZIP_MAGIC:
        if head[:1] == b"\x80":
            raise NotACheckpointError(
                f"{name} is a pickle file (PyTorch's legacy format from before 1.6, or a plain pickle), not a "
                "zip checkpoint. tracenn never unpickles arbitrary data: re-save it with a current torch.save "
                "(the zip format is the default) or with tracenn.save.")
        raise NotACheckpointError(
            f"{name} is not a tracenn or PyTorch checkpoint: it starts with {head!r}, and a checkpoint is a "
            f"zip archive starting with {_ZIP_MAGIC!r}")
    try:
        zf = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise CorruptCheckpointError(f"{name} is a truncated or corrupt checkpoint (cannot read the zip "
                                     f"archive: {e})") from e
    with zf:
        names = zf.namelist()
        reader = _Members(zf, name)
        if _HEADER in names:
            return _TracennDecoder(reader, place).decode()
        pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if pkl:
            from .torch_format import _TorchDecoder
            return _TorchDecoder(reader, pkl[0][: -len("data.pkl")], place).decode()
    raise NotACheckpointError(f"{name} is a zip archive but not a tracenn checkpoint (no {_HEADER}) nor a "
                              "PyTorch one (no <archive>/data.pkl)")


class _Members:
    """Reads zip members, turning every zip-level failure into a CorruptCheckpointError."""

    def __init__(self, zf, name):
        self.zf, self.name = zf, name

    def read(self, member: str) -> bytes:
        try:
            return self.zf.read(member)
        except KeyError:
            raise CorruptCheckpointError(f"{self.name}: the checkpoint lacks its member {member!r}") from None
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as e:
            raise CorruptCheckpointError(f"{self.name} is a truncated or corrupt checkpoint (member {member!r}: "
                                         f"{e})") from e


class _Placer:
    """``map_location`` semantics: the device each loaded tensor ends up on."""

    def __init__(self, map_location):
        if map_location is not None and not (isinstance(map_location, (str, dict, _device)) or callable(map_location)):
            raise TypeError("map_location should be a str, device, dict or callable, got "
                            f"{type(map_location).__name__}")
        self.map_location = map_location

    def make(self, arr: np.ndarray, location: str) -> Tensor:
        from .._api.creation import from_numpy
        t = from_numpy(arr)
        m = self.map_location
        if callable(m) and not isinstance(m, (dict, _device)):
            out = m(t, location)
            if out is None:
                return self.move(t, location)
            if not isinstance(out, Tensor):
                raise TypeError(f"map_location callable must return a tensor or None, got {type(out).__name__}")
            return out
        if m is None:
            target = location
        elif isinstance(m, dict):
            target = m.get(location, location)
        else:
            target = m
        return self.move(t, target)

    @staticmethod
    def move(t: Tensor, target) -> Tensor:
        target = _device(target)
        if target.type == "cpu":
            return t
        try:
            return t.to(target)
        except DeviceError as e:
            raise DeviceError(
                f"Attempting to deserialize object on device {str(target)!r}, which this machine does not have "
                f"({e}). If you are running on a CPU-only machine, use tracenn.load(..., map_location='cpu') to "
                "map your tensors to the CPU.") from e


def _finish_tensor(t: Tensor, requires_grad: bool, parameter: bool) -> Tensor:
    if parameter:
        from ..nn.parameter import Parameter
        return Parameter(t, requires_grad=requires_grad)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _dtype_named(name, where) -> _dt.dtype:
    d = _dt._NAMES.get(name) if isinstance(name, str) else None
    if d is None:
        raise CorruptCheckpointError(f"{where}: unknown dtype {name!r}")
    return d


class _PassThrough(Exception):
    """Carries an error that is not the file's fault past the decoder's corrupt-header handlers."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class _TracennDecoder:
    def __init__(self, reader: _Members, place: _Placer):
        self.reader, self.place, self.name = reader, place, reader.name
        self.made: dict = {}

    def bad(self, what) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{self.name}: corrupt tracenn checkpoint header ({what})")

    def decode(self):
        try:
            header = json.loads(self.reader.read(_HEADER))
        except (ValueError, UnicodeDecodeError, RecursionError) as e:
            raise self.bad(f"not valid JSON: {e}") from e
        if not isinstance(header, dict) or header.get("format") != "tracenn":
            raise self.bad("no 'format': 'tracenn' entry")
        version = header.get("version")
        if not isinstance(version, int) or version < 1:
            raise self.bad(f"bad version {version!r}")
        if version > FORMAT_VERSION:
            raise SerializationError(f"{self.name} was written by a newer tracenn (checkpoint format version "
                                     f"{version}); this tracenn reads versions up to {FORMAT_VERSION}. "
                                     "Upgrade tracenn.")
        self.records = header.get("tensors")
        if not isinstance(self.records, list) or "object" not in header:
            raise self.bad("missing tensor table or object")
        try:
            return self.node(header["object"])
        except _PassThrough as p:
            raise p.error from None

    def blob(self, i, kind):
        if type(i) is not int or not 0 <= i < len(self.records):
            raise self.bad(f"tensor reference {i!r} out of range")
        key = (i, kind)
        if key in self.made:
            return self.made[key]
        rec = self.records[i]
        if not isinstance(rec, dict) or rec.get("kind") != kind:
            raise self.bad(f"record {i} is not a {kind}")
        d = _dtype_named(rec.get("dtype"), self.name)
        shape = rec.get("shape")
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            raise self.bad(f"record {i} has shape {shape!r}")
        raw = self.reader.read(f"tracenn/data/{i}")
        need = math.prod(shape) * d.itemsize
        if len(raw) != need or rec.get("nbytes") != need:
            raise CorruptCheckpointError(f"{self.name}: tensor {i} of shape {tuple(shape)} and dtype {d.name} "
                                         f"needs {need} bytes, the file holds {len(raw)}")
        arr = np.frombuffer(raw, dtype=d.np).reshape(shape)
        if sys.byteorder != "little":
            arr = arr.byteswap()
        if kind == "ndarray":
            out = arr.copy()
        else:
            location = rec.get("device", "cpu")
            try:
                _device(location)
            except (TypeError, RuntimeError) as e:
                raise self.bad(f"record {i} has device {location!r}") from e
            try:
                t = self.place.make(arr, location)
            except Exception as e:  # a missing device or the user's map_location: not a corrupt file
                raise _PassThrough(e) from None
            out = _finish_tensor(t, bool(rec.get("requires_grad")), bool(rec.get("parameter")))
        self.made[key] = out
        return out

    def node(self, n):
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, dict) and n:
            tag = next(iter(n))
            v = n[tag]
            if tag == "tensor" or tag == "ndarray":
                return self.blob(v, tag)
            try:
                if tag in ("list", "tuple", "set", "frozenset"):
                    items = [self.node(x) for x in v]
                    return {"list": list, "tuple": tuple, "set": set, "frozenset": frozenset}[tag](items)
                if tag in _DICT_TYPES:
                    out = _DICT_TYPES[tag]()
                    for k, val in v:
                        out[self.node(k)] = self.node(val)
                    if "metadata" in n:
                        out._metadata = self.node(n["metadata"])
                    return out
                if tag == "float":
                    return float(v)
                if tag == "complex":
                    return complex(self.node(v[0]), self.node(v[1]))
                if tag in ("bytes", "bytearray"):
                    raw = base64.b64decode(v, validate=True)
                    return raw if tag == "bytes" else bytearray(raw)
                if tag == "dtype":
                    return _dtype_named(v, self.name)
                if tag == "device":
                    return _device(v)
                if tag == "size":
                    return Size(int(s) for s in v)
                if tag == "numpy":
                    return _dtype_named(v, self.name).np.type(self.node(n["value"]))
            except (SerializationError, _PassThrough):
                raise
            except (TypeError, ValueError, KeyError, RuntimeError, RecursionError) as e:
                raise self.bad(f"bad {tag!r} node: {e}") from e
            raise self.bad(f"unknown node tag {tag!r}")
        raise self.bad(f"unexpected node {n!r:.80}")


