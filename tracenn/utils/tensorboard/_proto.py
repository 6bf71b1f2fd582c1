"""The two wire formats a TensorBoard event file is made of, written by hand so that
``tracenn.utils.tensorboard`` needs neither ``tensorboard`` nor ``protobuf``.

- Protocol buffers (https://protobuf.dev/programming-guides/encoding/): a message is a run of
  ``(field number << 3 | wire type)`` keys, each followed by its value: a varint (type 0), 8
  little-endian bytes (type 1, ``double``), a length and that many bytes (type 2: strings, bytes,
  sub-messages and packed repeated numbers) or 4 bytes (type 5, ``float``). Fields are written in
  field-number order, and proto3 fields that hold their default (0, "", empty) are left out, as
  protobuf's own serializer does; a field of a ``oneof`` is written even when it is 0.
- TFRecord framing (``tensorflow/core/lib/io/record_writer.cc``): each record is
  ``uint64 length, uint32 masked_crc32c(length), data, uint32 masked_crc32c(data)``, little-endian.
"""
from __future__ import annotations

import struct

import numpy as np

# ---------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven, one byte at a time.

def _make_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    """CRC32C of ``data`` (``crc32c(b"123456789") == 0xE3069283``)."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant (mod 2**32)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def record(data: bytes) -> bytes:
    """One TFRecord holding ``data``."""
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc32c(header)) + data
            + struct.pack("<I", masked_crc32c(data)))


# ---------------------------------------------------------------------------------------------
# Protocol buffer encoding. Each helper returns the bytes of one field (key and value); a message
# is the concatenation of its fields.

def varint(n: int) -> bytes:
    n = int(n)
    if n < 0:  # int32/int64 negatives are written as 64-bit two's complement (10 bytes)
        n += 1 << 64
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return varint(field << 3 | wire)


def int_field(field: int, value: int, *, always: bool = False) -> bytes:
    """An int32/int64/enum/bool field (wire type 0)."""
    if not value and not always:
        return b""
    return _key(field, 0) + varint(int(value))


def double_field(field: int, value: float, *, always: bool = False) -> bytes:
    if not value and not always:
        return b""
    return _key(field, 1) + struct.pack("<d", float(value))


def float_field(field: int, value: float, *, always: bool = False) -> bytes:
    if not value and not always:
        return b""
    # through numpy: a double beyond float32's range becomes inf, as protobuf writes it
    with np.errstate(over="ignore"):
        return _key(field, 5) + np.array(value, dtype=np.float64).astype("<f4").tobytes()


def bytes_field(field: int, value, *, always: bool = False) -> bytes:
    """A string, bytes or sub-message field (wire type 2). ``str`` is written as UTF-8."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not value and not always:
        return b""
    return _key(field, 2) + varint(len(value)) + value


def packed_doubles(field: int, values) -> bytes:
    return bytes_field(field, np.asarray(values, dtype="<f8").reshape(-1).tobytes())


def packed_floats(field: int, values) -> bytes:
    with np.errstate(over="ignore"):
        return bytes_field(field, np.asarray(values, dtype=np.float64).astype("<f4").reshape(-1).tobytes())


def packed_varints(field: int, values) -> bytes:
    return bytes_field(field, b"".join(varint(int(v)) for v in values))
