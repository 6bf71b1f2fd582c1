"""tracenn.save / tracenn.load: round trips, file errors, atomic writes, map_location, and PyTorch's
zip format both ways (with torch when installed; a hand-built torch file without it)."""
from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import tracenn
from tracenn import serialization as S
from tracenn.serialization import (CorruptCheckpointError, NotACheckpointError, SerializationError,
                                   UnsafeCheckpointError)

DTYPES = [tracenn.float32, tracenn.float64, tracenn.float16, tracenn.bfloat16, tracenn.int64, tracenn.int32,
          tracenn.int16, tracenn.int8, tracenn.uint8, tracenn.bool, tracenn.complex64, tracenn.complex128]
SHAPES = [(), (0,), (2, 0, 3), (3,), (2, 3)]


def _sample(dtype, shape):
    n = math.prod(shape)
    vals = (np.arange(n) % 7 - 3).reshape(shape)
    if dtype is tracenn.bool:
        return tracenn.tensor(vals > 0)
    if dtype is tracenn.uint8:
        return tracenn.tensor(np.abs(vals).astype(np.uint8))
    return tracenn.tensor(vals.astype(np.float64) * (1.5 if dtype.is_floating_point or dtype.is_complex else 1),
                          dtype=dtype)


def _roundtrip(obj, fmt="tracenn", **load_kw):
    buf = io.BytesIO()
    tracenn.save(obj, buf, format=fmt)
    buf.seek(0)
    return tracenn.load(buf, **load_kw)


def _same(a, b):
    return (type(a) is type(b) and a.dtype is b.dtype and tuple(a.shape) == tuple(b.shape)
            and a.requires_grad == b.requires_grad and np.array_equal(np.asarray(a.detach()), np.asarray(b.detach())))


# ---- round trips ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_tensor_round_trip_keeps_dtype_and_shape(fmt, dtype):
    for shape in SHAPES:
        t = _sample(dtype, shape)
        assert _same(_roundtrip(t, fmt), t), (dtype, shape)


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_views_and_requires_grad(fmt):
    base = tracenn.arange(12.0).view(3, 4)
    view = base.t()[1:]  # non-contiguous view
    leaf = tracenn.ones(2, requires_grad=True)
    out = _roundtrip({"view": view, "leaf": leaf}, fmt)
    assert out["view"].tolist() == view.tolist() and out["view"].shape == (3, 3)
    assert out["leaf"].requires_grad and out["leaf"].is_leaf


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_parameters_stay_parameters(fmt):
    p = tracenn.nn.Parameter(tracenn.randn(2, 2))
    frozen = tracenn.nn.Parameter(tracenn.zeros(1), requires_grad=False)
    out = _roundtrip([p, frozen], fmt)
    assert type(out[0]) is tracenn.nn.Parameter and out[0].requires_grad and _same(out[0], p)
    assert type(out[1]) is tracenn.nn.Parameter and not out[1].requires_grad


def _checkpoint():
    model = tracenn.nn.Sequential(tracenn.nn.Linear(3, 4), tracenn.nn.ReLU(), tracenn.nn.Linear(4, 2))
    return model, {
        "model": model.state_dict(),
        "optimizer": {"state": {0: {"step": tracenn.tensor(3.0), "exp_avg": tracenn.zeros(4, 3)}, 1: {}},
                      "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "amsgrad": False,
                                        "foreach": None, "params": [0, 1, 2, 3]}]},
        "epoch": 7, "best": float("inf"), "loss": float("nan"), "big": 2 ** 80, "neg": -(2 ** 40),
        "name": "run-é✓", "blob": b"\x00\xff", "flags": (True, False, None), "empty": ([], (), {}),
        "dtype": tracenn.bfloat16, "device": tracenn.device("cpu"), "shape": tracenn.Size([2, 3]), "c": 1 - 2j,
        "set": {1, 2}, 3: "int key", (1, "a"): "tuple key",
    }


def _check_checkpoint(out, ref):
    assert list(out) == list(ref)
    assert type(out["model"]) is collections.OrderedDict and list(out["model"]) == list(ref["model"])
    assert out["model"]._metadata == ref["model"]._metadata
    for k in ref["model"]:
        assert _same(out["model"][k], ref["model"][k])
    opt = out["optimizer"]
    assert list(opt["state"]) == [0, 1] and _same(opt["state"][0]["exp_avg"], ref["optimizer"]["state"][0]["exp_avg"])
    assert opt["param_groups"] == ref["optimizer"]["param_groups"]
    assert type(opt["param_groups"][0]["betas"]) is tuple
    for k in ("epoch", "best", "big", "neg", "name", "blob", "flags", "empty", "dtype", "device", "shape", "c",
              "set", 3, (1, "a")):
        assert out[k] == ref[k] and type(out[k]) is type(ref[k]), k
    assert math.isnan(out["loss"])


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_training_checkpoint_round_trip(fmt, tmp_path):
    model, ckpt = _checkpoint()
    path = tmp_path / "ckpt.pt"
    tracenn.save(ckpt, path, format=fmt)
    out = tracenn.load(path)
    _check_checkpoint(out, ckpt)
    fresh = tracenn.nn.Sequential(tracenn.nn.Linear(3, 4), tracenn.nn.ReLU(), tracenn.nn.Linear(4, 2))
    fresh.load_state_dict(out["model"])
    x = tracenn.randn(5, 3)
    assert tracenn.equal(fresh(x), model(x))


def test_tracenn_format_extras():
    arr = np.arange(6, dtype=np.int16).reshape(2, 3)
    shared = tracenn.ones(3)
    out = _roundtrip({"np": arr, "np_scalar": np.float32(2.5), "a": shared, "b": shared, "fs": frozenset({1}),
                      "ba": bytearray(b"xy")})
    assert type(out["np"]) is np.ndarray and out["np"].dtype == np.int16 and np.array_equal(out["np"], arr)
    assert type(out["np_scalar"]) is np.float32 and out["np_scalar"] == 2.5
    assert out["a"] is out["b"]  # one tensor saved once, loaded as one object
    assert out["fs"] == frozenset({1}) and out["ba"] == bytearray(b"xy")


def test_same_object_gives_same_bytes():
    _, ckpt = _checkpoint()
    ckpt.pop("set")  # set order is not deterministic across processes, but is within one
    a, b = io.BytesIO(), io.BytesIO()
    tracenn.save(ckpt, a)
    tracenn.save(ckpt, b)
    assert a.getvalue() == b.getvalue()


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_tensor_bytes_are_64_byte_aligned(fmt):
    buf = io.BytesIO()
    tracenn.save({"a": tracenn.ones(3), "b": tracenn.zeros(5, dtype=tracenn.int64)}, buf, format=fmt)
    raw = buf.getvalue()
    with zipfile.ZipFile(buf) as zf:
        for info in zf.infolist():
            if "/data/" in info.filename:
                name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
                assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0


def test_file_objects_and_paths(tmp_path):
    t = tracenn.arange(4)
    tracenn.save(t, str(tmp_path / "a.pt"))
    assert tracenn.equal(tracenn.load(str(tmp_path / "a.pt")), t)
    with open(tmp_path / "b.pt", "wb") as f:
        tracenn.save(t, f)
    with open(tmp_path / "b.pt", "rb") as f:
        assert tracenn.equal(tracenn.load(f), t)

    class Stream:  # read-only, not seekable
        def __init__(self, data):
            self.data = io.BytesIO(data)

        def read(self, n=-1):
            return self.data.read(n)

    assert tracenn.equal(tracenn.load(Stream((tmp_path / "b.pt").read_bytes())), t)


def test_refuses_objects_it_cannot_store():
    with pytest.raises(TypeError, match=r"cannot store tracenn.nn.modules.linear.Linear at obj\['m'\].*state_dict"):
        tracenn.save({"m": tracenn.nn.Linear(1, 1)}, io.BytesIO())
    with pytest.raises(TypeError, match=r"at obj\['x'\]\[1\]"):
        tracenn.save({"x": [1, object()]}, io.BytesIO())
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        tracenn.save(loop, io.BytesIO())
    with pytest.raises(ValueError, match="expected 'tracenn' or 'torch'"):
        tracenn.save(1, io.BytesIO(), format="pickle")
    with pytest.raises(TypeError, match="pickle_module"):
        tracenn.save(1, io.BytesIO(), pickle)
    with pytest.raises(TypeError, match="at obj"):
        tracenn.save({"np": np.zeros(2)}, io.BytesIO(), format="torch")


# ---- bad files ----------------------------------------------------------------------------------

def _saved_bytes(obj=None, fmt="tracenn"):
    buf = io.BytesIO()
    tracenn.save({"w": tracenn.arange(64.0), "n": 1} if obj is None else obj, buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_truncated_files_raise_a_clear_error(fmt, tmp_path):
    raw = _saved_bytes(fmt=fmt)
    path = tmp_path / "cut.pt"
    for cut in (len(raw) - 1, len(raw) - 30, len(raw) // 2, 10, 4):
        path.write_bytes(raw[:cut])
        with pytest.raises(CorruptCheckpointError, match="truncated or corrupt"):
            tracenn.load(path)
    path.write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="is empty"):
        tracenn.load(path)


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_flipped_data_byte_is_caught_by_crc(fmt):
    raw = bytearray(_saved_bytes(fmt=fmt))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("/data/0"))
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26: info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + 5] ^= 0xFF
    with pytest.raises(CorruptCheckpointError, match="Bad CRC-32"):
        tracenn.load(io.BytesIO(bytes(raw)))


def _rewrite(raw: bytes, member: str, new: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, new if info.filename == member else src.read(info.filename))
    return out.getvalue()


def test_corrupt_header_and_sizes():
    raw = _saved_bytes()
    with pytest.raises(CorruptCheckpointError, match="not valid JSON"):
        tracenn.load(io.BytesIO(_rewrite(raw, "tracenn/header.json", b"{nope")))
    header = json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("tracenn/header.json"))
    header["tensors"][0]["shape"] = [65]
    with pytest.raises(CorruptCheckpointError, match=r"needs 260 bytes, the file holds 256"):
        tracenn.load(io.BytesIO(_rewrite(raw, "tracenn/header.json", json.dumps(header).encode())))
    header["tensors"][0]["shape"] = [64]
    header["object"] = {"evil": 1}
    with pytest.raises(CorruptCheckpointError, match="unknown node tag 'evil'"):
        tracenn.load(io.BytesIO(_rewrite(raw, "tracenn/header.json", json.dumps(header).encode())))
    header = json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("tracenn/header.json"))
    header["version"] = 99
    with pytest.raises(SerializationError, match="newer tracenn"):
        tracenn.load(io.BytesIO(_rewrite(raw, "tracenn/header.json", json.dumps(header).encode())))
    with pytest.raises(CorruptCheckpointError, match="lacks its member 'tracenn/data/0'"):
        tracenn.load(io.BytesIO(_rewrite(raw, "tracenn/data/0", b"").replace(b"tracenn/data/0", b"tracenn/data/X")))


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello world")
    with pytest.raises(NotACheckpointError, match=r"not a tracenn or PyTorch checkpoint: it starts with b'hell'"):
        tracenn.load(p)
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(NotACheckpointError, match="pickle file.*never unpickles"):
        tracenn.load(p)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(NotACheckpointError, match="zip archive but not a tracenn checkpoint"):
        tracenn.load(io.BytesIO(buf.getvalue()))
    with pytest.raises(FileNotFoundError):
        tracenn.load(tmp_path / "missing.pt")
    assert issubclass(NotACheckpointError, RuntimeError) and issubclass(NotACheckpointError, pickle.UnpicklingError)
    assert issubclass(CorruptCheckpointError, RuntimeError)


# ---- atomic writes ------------------------------------------------------------------------------

def test_crash_mid_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    tracenn.save({"version": 1}, path)
    before = path.read_bytes()
    os.chmod(path, 0o640)
    real = S._write_entry

    def crash(zf, name, payload):
        if "/data/" in name:
            data = bytes(memoryview(payload.reshape(-1).view(np.uint8)))
            zf.fp.write(data[: len(data) // 2])  # half the tensor reaches the disk, then the process "dies"
            raise KeyboardInterrupt("simulated crash")
        real(zf, name, payload)

    monkeypatch.setattr(S, "_write_entry", crash)
    with pytest.raises(KeyboardInterrupt):
        tracenn.save({"version": 2, "w": tracenn.ones(1000)}, path)
    assert path.read_bytes() == before and tracenn.load(path) == {"version": 1}
    assert os.listdir(tmp_path) == ["model.pt"]
    monkeypatch.setattr(S, "_write_entry", real)
    tracenn.save({"version": 3}, path)
    assert tracenn.load(path) == {"version": 3} and os.listdir(tmp_path) == ["model.pt"]
    assert (os.stat(path).st_mode & 0o777) == 0o640  # the replaced file keeps its permissions


def test_missing_parent_directory(tmp_path):
    with pytest.raises(SerializationError, match="Parent directory .* does not exist"):
        tracenn.save(1, tmp_path / "nope" / "x.pt")


# ---- map_location -------------------------------------------------------------------------------

def _fake_cuda_checkpoint() -> bytes:
    entries = S._TracennEncoder().encode({"w": tracenn.arange(3.0)})
    header = json.loads(entries[0][1])
    header["tensors"][0]["device"] = "cuda:0"
    entries[0] = (entries[0][0], json.dumps(header).encode())
    buf = io.BytesIO()
    S._write_zip(buf, entries)
    return buf.getvalue()


def test_map_location_forms():
    t = tracenn.arange(3.0)
    for loc in ("cpu", tracenn.device("cpu"), {"cpu": "cpu"}):
        out = _roundtrip(t, map_location=loc)
        assert tracenn.equal(out, t) and out.device == tracenn.device("cpu")
    seen = []

    def fn(tensor, location):
        seen.append(location)
        return tensor * 2

    assert _roundtrip({"a": t}, map_location=fn)["a"].tolist() == [0.0, 2.0, 4.0] and seen == ["cpu"]
    assert tracenn.equal(_roundtrip(t, map_location=lambda s, loc: None), t)
    with pytest.raises(TypeError, match="map_location"):
        _roundtrip(t, map_location=3)


@pytest.mark.skipif(tracenn.cuda.is_available(), reason="needs a machine without a GPU")
def test_map_location_moves_gpu_checkpoints_to_cpu():
    raw = _fake_cuda_checkpoint()
    with pytest.raises(tracenn.errors.DeviceError, match="Attempting to deserialize object on device 'cuda:0'.*"
                                                       "map_location='cpu'"):
        tracenn.load(io.BytesIO(raw))
    assert tracenn.load(io.BytesIO(raw), map_location="cpu")["w"].tolist() == [0.0, 1.0, 2.0]
    assert tracenn.load(io.BytesIO(raw), map_location={"cuda:0": "cpu"})["w"].device.type == "cpu"
    assert tracenn.load(io.BytesIO(raw), map_location=lambda s, loc: s)["w"].device.type == "cpu"


# ---- PyTorch's format without torch ---------------------------------------------------------------

def _op_global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def _op_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _hand_built_torch_zip() -> bytes:
    """The bytes torch.save writes for OrderedDict(weight=<2x2 float, stored transposed>,
    bias=<bfloat16[2]>, step=5) with a state_dict's _metadata, assembled opcode by opcode
    (with torch's memo puts and gets)."""
    def tensor(storage_global, key, numel, offset, size, stride, first=False):
        out = (_op_global("torch._utils", "_rebuild_tensor_v2") + b"q\x05") if first else b"h\x05"
        out += b"((" + _op_str("storage") + _op_global("torch", storage_global) + _op_str(key) + _op_str("cpu")
        out += b"K" + bytes([numel]) + b"tQ" + b"K" + bytes([offset])
        out += b"(" + b"".join(b"K" + bytes([s]) for s in size) + b"t"
        out += b"(" + b"".join(b"K" + bytes([s]) for s in stride) + b"t"
        out += b"\x89" + b"h\x02)R" + b"tR"
        return out

    pkl = b"\x80\x02" + _op_global("collections", "OrderedDict") + b"q\x02)R(" 
    pkl += _op_str("weight") + tensor("FloatStorage", "0", 4, 0, (2, 2), (1, 2), first=True)
    pkl += _op_str("bias") + tensor("BFloat16Storage", "1", 3, 1, (2,), (1,))
    pkl += _op_str("step") + b"K\x05" + b"u"
    pkl += b"}(" + _op_str("_metadata") + b"h\x02)R(" + _op_str("") + b"}(" + _op_str("version") + b"K\x01uuub"
    pkl += b"."
    weight = np.array([1.0, 3.0, 2.0, 4.0], dtype="<f4")  # w[i, j] = storage[i + 2 j] (stride (1, 2))
    import ml_dtypes
    bias = np.array([9.0, 0.5, -2.0], dtype=ml_dtypes.bfloat16)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mymodel/data.pkl", pkl)
        zf.writestr("mymodel/byteorder", "little")
        zf.writestr("mymodel/data/0", weight.tobytes())
        zf.writestr("mymodel/data/1", bias.tobytes())
        zf.writestr("mymodel/version", "3\n")
    return buf.getvalue()


def test_reads_a_hand_built_torch_zip_without_torch():
    sd = tracenn.load(io.BytesIO(_hand_built_torch_zip()))
    assert type(sd) is collections.OrderedDict and list(sd) == ["weight", "bias", "step"]
    assert sd["weight"].tolist() == [[1.0, 2.0], [3.0, 4.0]] and sd["weight"].dtype is tracenn.float32
    assert sd["bias"].dtype is tracenn.bfloat16 and sd["bias"].tolist() == [0.5, -2.0]
    assert sd["step"] == 5 and sd._metadata == {"": {"version": 1}}


def _torch_zip_with_pickle(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
    return buf.getvalue()


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_refuses_globals_outside_the_weights_only_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = _torch_zip_with_pickle(pickle.dumps({"x": _Evil()}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load the global posix.system|refusing to load "
                                                    r"the global os.system"):
        tracenn.load(io.BytesIO(raw))
    assert not (tmp_path / "pwned").exists()
    bad_build = b"\x80\x02]" + b"}(" + _op_str("__class__") + b"K\x01u" + b"b."
    with pytest.raises(UnsafeCheckpointError, match="BUILD is only allowed"):
        tracenn.load(io.BytesIO(_torch_zip_with_pickle(bad_build)))
    with pytest.raises(UnsafeCheckpointError, match="unsupported pickle opcode"):
        tracenn.load(io.BytesIO(_torch_zip_with_pickle(b"\x80\x02I1\n.")))
    with pytest.raises(CorruptCheckpointError, match="data.pkl is malformed"):
        tracenn.load(io.BytesIO(_torch_zip_with_pickle(b"\x80\x02(")))
    assert issubclass(UnsafeCheckpointError, pickle.UnpicklingError)


def test_torch_storage_size_mismatch_is_corrupt():
    raw = _hand_built_torch_zip()
    broken = _rewrite(raw, "mymodel/data/1", b"\x00\x00")
    with pytest.raises(CorruptCheckpointError, match="storage 1 should hold 3 bfloat16 elements"):
        tracenn.load(io.BytesIO(broken))


# ---- PyTorch interop (with torch) ---------------------------------------------------------------

def test_torch_reads_what_tracenn_writes(torch, tmp_path):
    _, ckpt = _checkpoint()
    ckpt["p"] = tracenn.nn.Parameter(tracenn.randn(3))
    ckpt["bf"] = tracenn.randn(2, 2).to(tracenn.bfloat16)
    ckpt["b"] = tracenn.tensor([True, False])
    ckpt["z"] = tracenn.tensor(3)
    ckpt["conv"] = tracenn.randn(2, 3, 1, 4)
    ckpt["four"] = (1, 2.5, "x", None)
    path = tmp_path / "for_torch.pt"
    tracenn.save(ckpt, path, format="torch")
    out = torch.load(path, weights_only=True)
    assert list(out) == list(ckpt)
    for k, v in ckpt["model"].items():
        t = out["model"][k]
        assert str(t.dtype) == f"torch.{v.dtype.name}" and np.array_equal(t.numpy(), np.asarray(v))
    assert out["model"]._metadata == ckpt["model"]._metadata
    assert isinstance(out["p"], torch.nn.Parameter) and out["p"].requires_grad
    assert out["bf"].dtype == torch.bfloat16 and out["bf"].float().tolist() == ckpt["bf"].float().tolist()
    assert out["b"].dtype == torch.bool and out["z"].shape == () and out["z"].dtype == torch.int64
    assert out["conv"].shape == (2, 3, 1, 4) and np.array_equal(out["conv"].numpy(), np.asarray(ckpt["conv"]))
    assert out["four"] == (1, 2.5, "x", None)
    assert out["dtype"] is torch.bfloat16 and out["device"] == torch.device("cpu")
    assert out["shape"] == torch.Size([2, 3])
    assert out["optimizer"]["param_groups"] == ckpt["optimizer"]["param_groups"]
    assert out["blob"] == b"\x00\xff" and out["big"] == 2 ** 80 and out["c"] == 1 - 2j and out["set"] == {1, 2}
    torch_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch_model.load_state_dict(out["model"])


def test_tracenn_reads_what_torch_writes(torch, tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    sd = model.state_dict()
    extra = {"view": torch.arange(12.0).view(3, 4).t()[1:], "bf": torch.randn(3).bfloat16(),
             "p": torch.nn.Parameter(torch.ones(2)), "empty": torch.zeros(0, 3), "scalar": torch.tensor(2.5),
             "half": torch.ones(2, dtype=torch.float16), "bytes": b"ab", "shape": torch.Size([1, 2]),
             "dt": torch.float64, "opt": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict()}
    path = tmp_path / "from_torch.pt"
    torch.save({"model": sd, **extra}, path)
    out = tracenn.load(path)
    assert list(out["model"]) == list(sd) and out["model"]._metadata == sd._metadata
    for k, v in sd.items():
        ours = out["model"][k]
        assert ours.dtype.name == str(v.dtype).split(".")[1] and np.array_equal(np.asarray(ours), v.numpy()), k
    assert out["view"].tolist() == extra["view"].tolist()
    assert out["bf"].dtype is tracenn.bfloat16 and out["bf"].float().tolist() == extra["bf"].float().tolist()
    assert type(out["p"]) is tracenn.nn.Parameter and out["p"].requires_grad
    assert out["empty"].shape == (0, 3) and out["scalar"].shape == () and out["scalar"].item() == 2.5
    assert out["half"].dtype is tracenn.float16 and out["bytes"] == b"ab"
    assert out["shape"] == tracenn.Size([1, 2]) and out["dt"] is tracenn.float64
    assert out["opt"]["param_groups"][0]["lr"] == 0.1 and out["opt"]["param_groups"][0]["momentum"] == 0.9
    # weights move into a tracenn model with the same key names
    lin = torch.nn.Linear(3, 2)
    buf = io.BytesIO()
    torch.save(lin.state_dict(), buf)
    buf.seek(0)
    ours = tracenn.nn.Linear(3, 2)
    ours.load_state_dict(tracenn.load(buf))
    x = np.random.RandomState(0).randn(4, 3).astype(np.float32)
    np.testing.assert_allclose(ours(tracenn.tensor(x)).detach().numpy(), lin(torch.tensor(x)).detach().numpy(),
                               rtol=1e-6, atol=1e-6)


def test_torch_round_trip_through_both(torch, tmp_path):
    t = torch.randn(4, 5)
    torch.save({"t": t}, tmp_path / "a.pt")
    tracenn.save(tracenn.load(tmp_path / "a.pt"), tmp_path / "b.pt", format="torch")
    assert torch.equal(torch.load(tmp_path / "b.pt", weights_only=True)["t"], t)


def test_torch_pickled_objects_are_refused(torch, tmp_path):
    torch.save({"model": torch.nn.Linear(1, 1)}, tmp_path / "whole.pt")
    with pytest.raises(UnsafeCheckpointError, match="refusing to load the global torch.nn.modules.linear.Linear"):
        tracenn.load(tmp_path / "whole.pt")
    torch.save({"t": torch.ones(1)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(NotACheckpointError, match="legacy format"):
        tracenn.load(tmp_path / "legacy.pt")


@pytest.mark.parametrize("fmt", ["tracenn", "torch"])
def test_map_location_errors_are_not_reported_as_corruption(fmt):
    def fn(tensor, location):
        raise TypeError("my map_location is broken")

    with pytest.raises(TypeError, match="my map_location is broken"):
        _roundtrip({"a": [tracenn.ones(1)]}, fmt, map_location=fn)
