"""tracenn.utils.tensorboard: the event files it writes, read back with a reader written here
(TFRecord framing with an independent bitwise CRC32C, a minimal protobuf decoder, a PNG decoder),
checked field by field against the protos' field numbers and against NumPy; and against the real
``tensorboard`` reader and torch's summary functions when ``tensorboard`` is installed."""
from __future__ import annotations

import glob
import io
import os
import re
import socket
import struct
import subprocess
import sys
import time
import wave
import zlib

import numpy as np
import pytest

import tracenn
from tracenn.utils.tensorboard import FileWriter, SummaryWriter
from tracenn.utils.tensorboard import _proto
from tracenn.utils.tensorboard import summary as tb_summary

# ---------------------------------------------------------------------------------------------
# A reader independent of the writer's helpers


def crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path):
    data = open(path, "rb").read()
    out, i = [], 0
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[i + 8:i + 12])
        assert hcrc == masked(crc32c_bitwise(header)), "bad length CRC"
        payload = data[i + 12:i + 12 + length]
        (dcrc,) = struct.unpack("<I", data[i + 12 + length:i + 16 + length])
        assert dcrc == masked(crc32c_bitwise(payload)), "bad data CRC"
        out.append(payload)
        i += 16 + length
    assert i == len(data)
    return out


def decode(buf: bytes) -> dict:
    """Protobuf message -> {field number: [raw values]} (int, bytes of 8 or 4, or bytes)."""
    fields, i = {}, 0

    def varint():
        nonlocal i
        shift = result = 0
        while True:
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < len(buf):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value = varint()
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n = varint()
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise AssertionError(f"wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def f64(raw) -> float:
    return struct.unpack("<d", raw)[0]


def f32(raw) -> float:
    return struct.unpack("<f", raw)[0]


def one(fields, number, default=None):
    values = fields.get(number)
    if not values:
        return default
    return values[-1]  # protobuf: the last one wins


def events(path):
    """[(wall_time, step, fields of the Event)]"""
    out = []
    for rec in read_records(path):
        ev = decode(rec)
        out.append((f64(one(ev, 1, struct.pack("<d", 0.0))), one(ev, 2, 0), ev))
    return out


def summary_values(path):
    """[(step, wall_time, Summary.Value fields)] of every summary event."""
    out = []
    for wall, step, ev in events(path):
        if 5 in ev:
            for v in decode(one(ev, 5)).get(1, []):
                out.append((step, wall, decode(v)))
    return out


def the_file(logdir):
    files = glob.glob(os.path.join(str(logdir), "events.out.tfevents.*"))
    assert len(files) == 1, files
    return files[0]


def plugin_name(value):
    md = decode(one(value, 9))
    return one(decode(one(md, 1)), 1).decode()


# ---------------------------------------------------------------------------------------------
# Encoding primitives


@pytest.mark.parametrize("data,crc", [
    (b"123456789", 0xE3069283),
    (b"", 0x00000000),
    (bytes(32), 0x8A9136AA),            # RFC 3720 B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
])
def test_crc32c_known_vectors(data, crc):
    assert _proto.crc32c(data) == crc
    assert crc32c_bitwise(data) == crc


def test_masked_crc_and_record_framing():
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, 1000, dtype=np.uint8).tobytes()
    assert _proto.masked_crc32c(data) == masked(crc32c_bitwise(data))
    rec = _proto.record(data)
    assert len(rec) == 16 + len(data)
    assert struct.unpack("<Q", rec[:8])[0] == len(data) and rec[12:-4] == data


def test_varint_and_fields():
    assert _proto.varint(0) == b"\x00"
    assert _proto.varint(300) == b"\xac\x02"
    assert _proto.varint(-1) == b"\xff" * 9 + b"\x01"
    assert _proto.int_field(2, 0) == b""                      # proto3 default left out
    assert _proto.float_field(2, 0.0, always=True) == b"\x15" + bytes(4)
    assert decode(_proto.bytes_field(3, "héllo"))[3] == ["héllo".encode()]
    assert _proto.float_field(2, 1e40) == b"\x15" + struct.pack("<f", float("inf"))


# ---------------------------------------------------------------------------------------------
# Files


def test_file_name_and_first_event(tmp_path):
    before = time.time()
    w = SummaryWriter(tmp_path, filename_suffix=".v2")
    path = the_file(tmp_path)
    name = os.path.basename(path)
    m = re.fullmatch(r"events\.out\.tfevents\.(\d{10})\.(.+)\.(\d+)\.(\d+)\.v2", name)
    assert m, name
    assert abs(int(m.group(1)) - before) <= 2
    assert m.group(2) == socket.gethostname() and int(m.group(3)) == os.getpid()
    # the first event is on disk before anything is added
    (wall, step, ev), = events(path)
    assert one(ev, 3) == b"brain.Event:2" and step == 0 and abs(wall - before) < 5
    assert w.get_logdir() == tmp_path
    w.close()


def test_default_log_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1")
    logdir = w.get_logdir()
    w.close()
    assert re.fullmatch(r"runs/[A-Z][a-z]{2}\d\d_\d\d-\d\d-\d\d_" + re.escape(socket.gethostname()) + "_lr0.1",
                        logdir), logdir
    assert os.path.isdir(tmp_path / logdir)


def test_two_writers_get_distinct_files(tmp_path):
    a, b = SummaryWriter(tmp_path), SummaryWriter(tmp_path)
    files = glob.glob(str(tmp_path / "events.out.tfevents.*"))
    a.close(), b.close()
    assert len(files) == 2


def test_queue_flush_close_and_reopen(tmp_path):
    w = SummaryWriter(tmp_path, max_queue=3, flush_secs=1000)
    path = the_file(tmp_path)
    w.add_scalar("x", 1.0, 0)
    w.add_scalar("x", 2.0, 1)
    assert len(read_records(path)) == 1          # queued, not written
    w.add_scalar("x", 3.0, 2)                    # the third fills the queue
    assert len(read_records(path)) == 4
    w.add_scalar("x", 4.0, 3)
    w.flush()
    assert [s for s, _, _ in summary_values(path)] == [0, 1, 2, 3]
    w.close()
    w.close()                                    # a second close does nothing
    w.add_scalar("x", 5.0, 4)                    # after close: a new file, as torch
    w.close()
    files = sorted(glob.glob(str(tmp_path / "events.out.tfevents.*")), key=lambda p: int(p.rsplit(".", 1)[1]))
    assert len(files) == 2 and [s for s, _, _ in summary_values(files[1])] == [4]


def test_flush_secs_zero_writes_each_event(tmp_path):
    w = SummaryWriter(tmp_path, flush_secs=0)
    w.add_scalar("x", 1.0, 0)
    assert len(summary_values(the_file(tmp_path))) == 1
    w.close()


def test_context_manager_closes(tmp_path):
    with SummaryWriter(tmp_path, max_queue=100) as w:
        w.add_scalar("x", 1.5, 7)
        w.add_text("note", "hi", 7)
    assert w.all_writers is None
    assert len(summary_values(the_file(tmp_path))) == 2


def test_atexit_writes_pending_events(tmp_path):
    code = ("from tracenn.utils.tensorboard import SummaryWriter\n"
            f"w = SummaryWriter({str(tmp_path)!r}, max_queue=1000)\n"
            "w.add_scalar('loss', 0.25, 3)\n")  # no close()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    ((step, _, value),) = summary_values(the_file(tmp_path))
    assert step == 3 and f32(one(value, 2)) == 0.25


def test_import_tracenn_does_not_load_tensorboard():
    code = "import sys, tracenn, tracenn.utils; print('tracenn.utils.tensorboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_purge_step(tmp_path):
    with SummaryWriter(tmp_path, purge_step=5) as w:
        w.add_scalar("x", 1.0, 5)
    evs = events(the_file(tmp_path))
    assert one(evs[1][2], 3) == b"brain.Event:2" and evs[1][1] == 5
    assert evs[2][1] == 5 and decode(one(evs[2][2], 7)) == {1: [1]}   # SessionLog{status: START}


def test_file_writer_add_event_stamps(tmp_path):
    fw = FileWriter(tmp_path)
    fw.add_event(_proto.bytes_field(3, "brain.Event:2"), step=9, walltime=12.5)
    fw.close()
    wall, step, ev = events(the_file(tmp_path))[1]
    assert (wall, step) == (12.5, 9)


# ---------------------------------------------------------------------------------------------
# Scalars


def test_scalars_values_steps_tags_walltimes(tmp_path):
    x = tracenn.tensor([2.0], requires_grad=True)
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss/train", 0.5, 0, walltime=100.0)
        w.add_scalar("loss/train", np.float32(0.25), 1, walltime=101.0)
        w.add_scalar("loss/train", tracenn.tensor(0.125), 2, walltime=102.0)
        w.add_scalar("acc", tracenn.tensor([[0.75]]), np.int64(3), walltime=103.0)
        w.add_scalar("grad", x * 3, 4, walltime=104.0)     # a tensor that requires grad
        w.add_scalar("int", 7, 5, walltime=105.0)
        w.add_scalar("zero", 0.0, 6, walltime=106.0)
        t0 = time.time()
        w.add_scalar("now", 1.0)
    got = [(s, wall, one(v, 1).decode(), f32(one(v, 2))) for s, wall, v in summary_values(the_file(tmp_path))]
    assert got[:-1] == [(0, 100.0, "loss/train", 0.5), (1, 101.0, "loss/train", 0.25), (2, 102.0, "loss/train", 0.125),
                        (3, 103.0, "acc", 0.75), (4, 104.0, "grad", 6.0), (5, 105.0, "int", 7.0),
                        (6, 106.0, "zero", 0.0)]
    step, wall, tag, value = got[-1]
    assert step == 0 and tag == "now" and abs(wall - t0) < 5


def test_scalar_new_style(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("s", 1.0 / 3, 1, new_style=True)
        w.add_scalar("d", 1.0 / 3, 1, new_style=True, double_precision=True)
    (_, _, s), (_, _, d) = summary_values(the_file(tmp_path))
    ts, td = decode(one(s, 8)), decode(one(d, 8))
    assert one(ts, 1) == 1 and np.frombuffer(one(ts, 5), "<f4").tolist() == [np.float32(1 / 3)]
    assert one(td, 1) == 2 and np.frombuffer(one(td, 6), "<f8").tolist() == [1 / 3]
    assert plugin_name(s) == plugin_name(d) == "scalars"
    assert 2 not in s                                        # no simple_value


def test_scalar_bad_input(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(AssertionError, match=r"Tensor should contain one element \(0 dimensions\). "
                                                 r"Was given size: 6 and 2 dimensions."):
            w.add_scalar("x", tracenn.ones(2, 3))
        with pytest.raises(NotImplementedError, match="Got <class 'list'>, but numpy array or torch tensor"):
            w.add_scalar("x", [1.0])


def test_add_scalars_layout(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalars("run/14h", {"xsinx": 1.0, "xcosx": tracenn.tensor(2.0)}, 3, walltime=50.0)
        w.add_scalars("run/14h", {"xsinx": 3.0, "xcosx": 4.0}, 4)
    assert sorted(os.listdir(tmp_path)) == sorted(["run_14h_xsinx", "run_14h_xcosx", os.path.basename(
        the_file(tmp_path))])
    assert summary_values(the_file(tmp_path)) == []           # nothing in the main run
    for sub, values in (("run_14h_xsinx", [1.0, 3.0]), ("run_14h_xcosx", [2.0, 4.0])):
        got = summary_values(the_file(tmp_path / sub))
        assert [(s, one(v, 1).decode(), f32(one(v, 2))) for s, _, v in got] == [
            (3, "run/14h", values[0]), (4, "run/14h", values[1])]
        assert got[0][1] == 50.0


# ---------------------------------------------------------------------------------------------
# Histograms


def _histo(value):
    h = decode(one(value, 5))
    get = lambda n: f64(one(h, n, struct.pack("<d", 0.0)))  # noqa: E731
    return dict(min=get(1), max=get(2), num=get(3), sum=get(4), sum_squares=get(5),
                limits=np.frombuffer(one(h, 6, b""), "<f8").tolist(),
                counts=np.frombuffer(one(h, 7, b""), "<f8").tolist())


def test_histogram_known_buckets(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("a", np.array([0.5, 1.5, 1.5, 3.5]), 0, bins=[0, 1, 2, 3, 4, 5])
        w.add_histogram("b", np.array([2.5, 3.5]), 1, bins=[0, 1, 2, 3, 4, 5])
        w.add_histogram("c", np.arange(8.0) + 0.5, 2, bins=list(range(9)), max_bins=3)
    (_, _, a), (_, _, b), (_, _, c) = summary_values(the_file(tmp_path))
    ha, hb, hc = _histo(a), _histo(b), _histo(c)
    # first bucket non-empty: an empty bucket is put on its left
    assert ha["limits"] == [0, 1, 2, 3, 4] and ha["counts"] == [0, 1, 2, 0, 1]
    assert (ha["min"], ha["max"], ha["num"], ha["sum"], ha["sum_squares"]) == (0.5, 3.5, 4, 7.0, 0.25 + 4.5 + 12.25)
    # leading empty buckets dropped but one
    assert hb["limits"] == [2, 3, 4] and hb["counts"] == [0, 1, 1]
    # 8 buckets, max_bins=3: merged 2 at a time (8 // 3), so 4 buckets of 2
    assert hc["limits"] == [0, 2, 4, 6, 8] and hc["counts"] == [0, 2, 2, 2, 2]


def test_histogram_default_bins_against_numpy(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 20)).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", tracenn.tensor(values), 5)
        bins = w.default_bins
    ((step, _, v),) = summary_values(the_file(tmp_path))
    h = _histo(v)
    flat = values.astype(np.float64).reshape(-1)
    assert step == 5 and one(v, 1) == b"w"
    assert h["num"] == flat.size and h["min"] == flat.min() and h["max"] == flat.max()
    np.testing.assert_allclose(h["sum"], flat.sum(), rtol=1e-12)
    np.testing.assert_allclose(h["sum_squares"], (flat ** 2).sum(), rtol=1e-12)
    counts, edges = np.histogram(flat, bins=bins)
    nz = np.nonzero(counts)[0]
    lo, hi = nz[0], nz[-1]
    assert h["limits"] == edges[lo:hi + 2].tolist()
    assert h["counts"] == [0.0] + counts[lo:hi + 1].tolist() if lo == 0 else counts[lo - 1:hi + 1].tolist()
    assert sum(h["counts"]) == flat.size
    assert len(bins) == 1 + 2 * int(np.ceil(np.log(1e32) / np.log(1.1)))  # +-1e-12 * 1.1**k < 1e20, and 0


def test_histogram_numpy_bins_and_errors(tmp_path):
    rng = np.random.default_rng(2)
    values = rng.uniform(size=1000)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("auto", values, 0, bins="auto")
        with pytest.raises(ValueError, match="The input has no element."):
            w.add_histogram("empty", np.zeros(0), 0)
        w.add_histogram_raw("raw", 0, 1, 3, 1.5, 1.0, [0.5, 1.0], [1, 2], global_step=2)
        with pytest.raises(ValueError, match=re.escape("len(bucket_limits) != len(bucket_counts)")):
            w.add_histogram_raw("raw", 0, 1, 3, 1.5, 1.0, [0.5, 1.0], [1])
    (_, _, auto), (_, _, raw) = summary_values(the_file(tmp_path))
    counts, edges = np.histogram(values, bins="auto")
    h = _histo(auto)
    assert h["limits"] == edges.tolist() and h["counts"] == [0.0] + counts.tolist()
    hr = _histo(raw)
    assert (hr["max"], hr["num"], hr["sum"], hr["limits"], hr["counts"]) == (1, 3, 1.5, [0.5, 1.0], [1, 2])


def test_histogram_against_torch_summary():
    pytest.importorskip("tensorboard")
    torch_summary = pytest.importorskip("torch.utils.tensorboard.summary")
    rng = np.random.default_rng(3)
    values = rng.normal(size=500)
    ours = decode(tb_summary.histogram("h", values, bins="auto"))
    theirs = decode(torch_summary.histogram("h", values, bins="auto").SerializeToString())
    assert _histo(decode(ours[1][0])) == _histo(decode(theirs[1][0]))


# ---------------------------------------------------------------------------------------------
# Text, tensors, audio


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "**héllo**", 3)
        w.add_text("empty", "", 4)
    (s1, _, v1), (_, _, v2) = summary_values(the_file(tmp_path))
    assert s1 == 3 and one(v1, 1) == b"notes/text_summary" and plugin_name(v1) == "text"
    t = decode(one(v1, 8))
    assert one(t, 1) == 7                                          # DT_STRING
    assert decode(one(t, 2)) == {2: [b"\x08\x01"]}                  # shape [1]
    assert t[8] == ["**héllo**".encode()]
    assert decode(one(v2, 8))[8] == [b""]


def test_add_tensor(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_tensor("ints", tracenn.arange(6).reshape(2, 3), 1)
        w.add_tensor("floats", tracenn.tensor([1.5, -2.0]), 2)
    (_, _, ints), (_, _, floats) = summary_values(the_file(tmp_path))
    ti, tf = decode(one(ints, 8)), decode(one(floats, 8))
    assert one(ti, 1) == 9 and [decode(d)[1] for d in decode(one(ti, 2))[2]] == [[2], [3]]
    assert decode(b"".join(b"\x08" + bytes([b]) for b in one(ti, 10)))[1] == [0, 1, 2, 3, 4, 5]  # 1-byte varints
    assert one(tf, 1) == 1 and np.frombuffer(one(tf, 5), "<f4").tolist() == [1.5, -2.0]
    assert plugin_name(ints) == "tensor"


def test_audio(tmp_path):
    clip = np.sin(np.linspace(0, 20, 800)) * 0.5
    with SummaryWriter(tmp_path) as w:
        w.add_audio("a", tracenn.tensor(clip), 0, sample_rate=8000)
    ((_, _, v),) = summary_values(the_file(tmp_path))
    a = decode(one(v, 6))
    assert f32(one(a, 1)) == 8000 and one(a, 2) == 1 and one(a, 3) == 800 and one(a, 5) == b"audio/wav"
    with wave.open(io.BytesIO(one(a, 4))) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
        frames = np.frombuffer(wav.readframes(800), "<i2")
    np.testing.assert_array_equal(frames, (clip.astype(np.float32) * 32767).astype(np.int16))


# ---------------------------------------------------------------------------------------------
# Images


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, chunks = 8, {}
    while i < len(data):
        (n,) = struct.unpack(">I", data[i:i + 4])
        kind, body = data[i + 4:i + 8], data[i + 8:i + 8 + n]
        assert struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        i += 12 + n
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and interlace == 0 and b"IEND" in chunks
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + w * channels)
    assert (raw[:, 0] == 0).all()                                   # filter type 0 on every row
    return raw[:, 1:].reshape(h, w, channels)


def _image(value):
    im = decode(one(value, 4))
    return one(im, 1), one(im, 2), one(im, 3), decode_png(one(im, 4))


def test_images_pixels(tmp_path):
    rng = np.random.default_rng(4)
    chw = rng.uniform(-0.2, 1.2, size=(3, 5, 7)).astype(np.float32)
    hwc_u8 = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    hw = rng.uniform(size=(2, 3))
    rgba = rng.uniform(size=(4, 3, 2)).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", tracenn.tensor(chw), 0)
        w.add_image("hwc", hwc_u8, 1, dataformats="HWC")
        w.add_image("hw", hw, 2, dataformats="HW")
        w.add_image("grey", tracenn.tensor(chw[:1]), 3)
        w.add_image("rgba", rgba, 4)
    vals = {one(v, 1).decode(): v for _, _, v in summary_values(the_file(tmp_path))}
    to_u8 = lambda a: (a.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)  # noqa: E731
    h, w_, c, px = _image(vals["chw"])
    assert (h, w_, c) == (5, 7, 3)
    np.testing.assert_array_equal(px, to_u8(chw.transpose(1, 2, 0)))
    h, w_, c, px = _image(vals["hwc"])
    assert (h, w_, c) == (4, 6, 3)
    np.testing.assert_array_equal(px, hwc_u8)
    np.testing.assert_array_equal(_image(vals["hw"])[3], np.repeat(to_u8(hw)[:, :, None], 3, 2))
    np.testing.assert_array_equal(_image(vals["grey"])[3], np.repeat(to_u8(chw[0])[:, :, None], 3, 2))
    h, w_, c, px = _image(vals["rgba"])
    assert c == 4
    np.testing.assert_array_equal(px, to_u8(rgba.transpose(1, 2, 0)))


def test_add_images_grid(tmp_path):
    rng = np.random.default_rng(5)
    batch = rng.uniform(size=(10, 1, 2, 3)).astype(np.float32)
    with SummaryWriter(tmp_path) as w:
        w.add_images("batch", tracenn.tensor(batch), 0)
    ((_, _, v),) = summary_values(the_file(tmp_path))
    h, w_, c, px = _image(v)
    assert (h, w_, c) == (4, 24, 3)                                  # 8 to a row, 2 rows
    expected = np.zeros((4, 24), np.float32)
    for i in range(10):
        r, col = divmod(i, 8)
        expected[r * 2:(r + 1) * 2, col * 3:(col + 1) * 3] = batch[i, 0]
    np.testing.assert_array_equal(px, np.repeat((expected * 255).clip(0, 255).astype(np.uint8)[:, :, None], 3, 2))


def test_image_bad_input(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(AssertionError, match="size of input tensor and input format are different"):
            w.add_image("x", np.zeros((2, 3)))
        with pytest.raises(AssertionError, match="You can not use the same dimension shorthand twice"):
            w.add_image("x", np.zeros((2, 3, 3)), dataformats="HHW")
        with pytest.raises(AssertionError, match="Input should be a 4D numpy array with 3 channels"):
            w.add_images("x", np.zeros((2, 4, 3, 3)))


# ---------------------------------------------------------------------------------------------
# hparams and what is not written


def test_add_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_hparams({"lr": 0.1, "bsize": 4, "opt": "adam", "skip": None}, {"hparam/acc": 0.9},
                      hparam_domain_discrete={"opt": ["adam", "sgd"]}, run_name="run0", global_step=2)
        with pytest.raises(TypeError, match="hparam_dict and metric_dict should be dictionary."):
            w.add_hparams([("lr", 0.1)], {})
        with pytest.raises(ValueError, match="value should be one of int, float, str, bool, or torch.Tensor"):
            w.add_hparams({"x": [1]}, {})
    values = summary_values(the_file(tmp_path / "run0"))
    tags = [one(v, 1).decode() for _, _, v in values]
    assert tags == ["_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info",
                    "hparam/acc"]
    assert all(s == 2 for s, _, _ in values)
    contents = [decode(one(decode(one(decode(one(v, 9)), 1)), 2)) for _, _, v in values[:3]]
    assert all(plugin_name(v) == "hparams" for _, _, v in values[:3])
    exp = decode(one(contents[0], 2))
    infos = [decode(i) for i in exp[4]]
    assert [(one(i, 1), one(i, 4)) for i in infos] == [(b"lr", 3), (b"bsize", 3), (b"opt", 1)]
    assert [decode(x)[3] for x in decode(one(infos[2], 5))[1]] == [[b"adam"], [b"sgd"]]
    assert [decode(one(decode(m), 1)) for m in exp[5]] == [{2: [b"hparam/acc"]}]
    ssi = {decode(e)[1][0]: decode(decode(e)[2][0]) for e in decode(one(contents[1], 3))[1]}
    assert f64(one(ssi[b"lr"], 2)) == 0.1 and f64(one(ssi[b"bsize"], 2)) == 4.0 and one(ssi[b"opt"], 3) == b"adam"
    assert decode(one(contents[2], 4)) == {1: [1]}                   # STATUS_SUCCESS
    assert f32(one(values[3][2], 2)) == np.float32(0.9)


def test_add_graph_warns_once_and_unsupported_raise(tmp_path, monkeypatch):
    from tracenn.utils.tensorboard import writer as writer_mod
    monkeypatch.setattr(writer_mod, "_graph_warned", False)
    with SummaryWriter(tmp_path) as w:
        with pytest.warns(UserWarning, match=r"print\(cm.graph\)"):
            w.add_graph(tracenn.nn.Linear(2, 2), tracenn.ones(1, 2))
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            w.add_graph(tracenn.nn.Linear(2, 2))
        with pytest.raises(NotImplementedError, match="add_embedding is not implemented"):
            w.add_embedding(np.zeros((3, 2)))
        with pytest.raises(NotImplementedError, match="add_video"):
            w.add_video("v", np.zeros((1, 2, 3, 4, 4)))
    assert len(events(the_file(tmp_path))) == 1


def test_tensorboard_reads_the_file(tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    with SummaryWriter(tmp_path) as w:
        for i in range(3):
            w.add_scalar("loss", 1.0 / (i + 1), i)
        w.add_histogram("h", np.arange(10.0), 0)
        w.add_image("img", np.ones((3, 2, 2)), 0)
        w.add_text("t", "hello", 0)
    acc = accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    acc.Reload()
    assert [e.value for e in acc.Scalars("loss")] == pytest.approx([1.0, 0.5, 1 / 3])
    assert acc.Histograms("h")[0].histogram_value.num == 10
    assert acc.Images("img")[0].width == 2
