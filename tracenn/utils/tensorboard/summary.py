"""Summary builders, as ``torch.utils.tensorboard.summary``, returning serialized bytes.

torch's functions return ``tensorboard`` protobuf objects; these return the bytes of the same
``Summary`` message (``tensorboard/compat/proto/summary.proto``), encoded by hand (``_proto.py``),
so nothing here needs ``tensorboard``, ``protobuf`` or PIL. The numbers follow torch's code:
the histogram bucketing of ``make_histogram``, the image scaling of ``image`` (float times 255,
uint8 as is, clipped, truncated to uint8) and the layouts of ``convert_to_HWC``/``make_grid``.
Images are PNG-encoded with ``zlib`` (filter 0, no resampling), so the bytes differ from PIL's but
decode to the same pixels.
"""
from __future__ import annotations

import io
import logging
import struct
import wave
import zlib

import numpy as np

from ._proto import bytes_field, double_field, float_field, int_field, packed_doubles, packed_floats, packed_varints

__all__ = ["scalar", "histogram_raw", "histogram", "make_histogram", "image", "make_image", "audio", "text",
           "tensor_proto", "hparams", "make_np", "convert_to_HWC", "make_grid"]

logger = logging.getLogger(__name__)

# tensorboard/compat/proto/types.proto
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_COMPLEX64, DT_INT64, DT_BOOL, DT_BFLOAT16, DT_COMPLEX128, DT_HALF = 8, 9, 10, 14, 18, 19


def make_np(x) -> np.ndarray:
    """A NumPy array of ``x``: an array as is, a Python/NumPy scalar as a 1-element array, a tracenn
    ``Tensor`` detached and copied to the host (bfloat16 through float16, as torch's ``make_np``)."""
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    from ...tensor import Tensor
    if isinstance(x, Tensor):
        from ... import dtypes
        if x.dtype == dtypes.bfloat16:
            x = x.to(dtypes.float16)
        return x.detach().cpu().numpy()
    raise NotImplementedError(f"Got {type(x)}, but numpy array or torch tensor are expected.")


# ---------------------------------------------------------------------------------------------
# Messages (field numbers from tensorboard/compat/proto/summary.proto and tensor.proto)

def _metadata(plugin_name: str, content: bytes = b"") -> bytes:
    """SummaryMetadata{plugin_data: PluginData{plugin_name, content}}."""
    return bytes_field(1, bytes_field(1, plugin_name) + bytes_field(2, content), always=True)


def _summary(tag: str, *, simple_value=None, image=None, histo=None, audio=None, tensor=None,
             metadata=None) -> bytes:
    """A Summary with one Value. The value fields form a ``oneof``, so a given one is written even
    when it is 0 or empty."""
    value = bytes_field(1, tag)
    if simple_value is not None:
        value += float_field(2, simple_value, always=True)
    for number, field in ((4, image), (5, histo), (6, audio), (8, tensor), (9, metadata)):
        if field is not None:
            value += bytes_field(number, field, always=True)
    return bytes_field(1, value, always=True)


def _tensor(dtype: int, shape=None, values: bytes = b"") -> bytes:
    """TensorProto{dtype, tensor_shape: TensorShapeProto{dim: [Dim{size}]}, <values>}; ``values`` is
    the already-encoded value field."""
    shape_msg = b"" if shape is None else b"".join(bytes_field(2, int_field(1, d), always=True) for d in shape)
    return int_field(1, dtype) + bytes_field(2, shape_msg) + values


# ---------------------------------------------------------------------------------------------
# Scalars, tensors, text

def scalar(name, tensor, collections=None, new_style=False, double_precision=False) -> bytes:
    """A Summary holding one scalar: ``simple_value`` (float32), or with ``new_style`` a 0-d tensor
    for the ``scalars`` plugin (float32, or float64 with ``double_precision``)."""
    arr = make_np(tensor).squeeze()
    if arr.ndim != 0:
        raise AssertionError(f"Tensor should contain one element (0 dimensions). Was given size: "
                             f"{arr.size} and {arr.ndim} dimensions.")
    value = float(arr)  # a Python float is double precision
    if new_style:
        if double_precision:
            tensor_msg = _tensor(DT_DOUBLE, values=packed_doubles(6, [value]))
        else:
            tensor_msg = _tensor(DT_FLOAT, values=packed_floats(5, [value]))
        return _summary(name, tensor=tensor_msg, metadata=_metadata("scalars"))
    return _summary(name, simple_value=value)


def _half_to_int(f: float) -> int:
    # torch's half_to_int: the float32 bit pattern read as an int32, kept so files match torch's
    return struct.unpack("i", struct.pack("f", f))[0]


def _tensor_values(arr: np.ndarray, dtype_name: str):
    """(DataType, encoded value field) for a tensor of ``dtype_name``, as torch's _TENSOR_TYPE_MAP."""
    flat = arr.reshape(-1)
    if dtype_name in ("float16", "bfloat16"):
        ints = [_half_to_int(v) for v in flat.astype(np.float64).tolist()]
        return (DT_HALF if dtype_name == "float16" else DT_BFLOAT16), packed_varints(13, ints)
    if dtype_name == "float32":
        return DT_FLOAT, packed_floats(5, flat)
    if dtype_name == "float64":
        return DT_DOUBLE, packed_doubles(6, flat)
    ints = {"int8": DT_INT8, "int16": DT_INT16, "int32": DT_INT32}
    if dtype_name in ints:
        return ints[dtype_name], packed_varints(7, flat.tolist())
    if dtype_name == "uint8":
        return DT_UINT8, packed_varints(16, flat.tolist())
    if dtype_name == "int64":
        return DT_INT64, packed_varints(10, flat.tolist())
    if dtype_name == "bool":
        return DT_BOOL, packed_varints(11, flat.astype(np.int64).tolist())
    if dtype_name in ("complex64", "complex128"):
        pairs = np.stack([flat.real, flat.imag], -1).reshape(-1)
        if dtype_name == "complex64":
            return DT_COMPLEX64, packed_floats(9, pairs)
        return DT_COMPLEX128, packed_doubles(12, pairs)
    return None


def tensor_proto(tag, tensor) -> bytes:
    """A Summary holding the whole tensor (plugin ``tensor``), as torch's ``tensor_proto``."""
    if tensor.numel() * tensor.itemsize >= (1 << 31):
        raise ValueError("tensor is bigger than protocol buffer's hard limit of 2GB in size")
    dtype_name = str(tensor.dtype).rsplit(".", 1)[-1]
    arr = tensor.detach().float().cpu().numpy() if dtype_name == "bfloat16" else make_np(tensor)
    encoded = _tensor_values(np.asarray(arr), dtype_name)
    if encoded is None:
        raise ValueError(f"{tag} has unsupported tensor dtype {tensor.dtype}")
    dtype, values = encoded
    return _summary(tag, tensor=_tensor(dtype, tuple(tensor.shape), values), metadata=_metadata("tensor"))


def text(tag, text) -> bytes:
    """A Summary for the ``text`` plugin: a 1-element string tensor under ``<tag>/text_summary``."""
    tensor_msg = _tensor(DT_STRING, (1,), bytes_field(8, text.encode(encoding="utf_8"), always=True))
    # TextPluginData(version=0) serializes to no bytes
    return _summary(tag + "/text_summary", metadata=_metadata("text"), tensor=tensor_msg)


# ---------------------------------------------------------------------------------------------
# Histograms

def _histogram_proto(min, max, num, sum, sum_squares, bucket_limits, bucket_counts) -> bytes:
    """HistogramProto (tensorboard/compat/proto/histogram.proto)."""
    return (double_field(1, min) + double_field(2, max) + double_field(3, num) + double_field(4, sum)
            + double_field(5, sum_squares) + packed_doubles(6, bucket_limits) + packed_doubles(7, bucket_counts))


def histogram_raw(name, min, max, num, sum, sum_squares, bucket_limits, bucket_counts) -> bytes:
    """A Summary with a histogram given by its statistics and buckets."""
    return _summary(name, histo=_histogram_proto(min, max, num, sum, sum_squares, bucket_limits, bucket_counts))


def histogram(name, values, bins, max_bins=None) -> bytes:
    """A Summary with the histogram of ``values`` (any shape), bucketed by ``np.histogram(bins)``."""
    values = make_np(values)
    return _summary(name, histo=make_histogram(values.astype(float), bins, max_bins))


def make_histogram(values, bins, max_bins=None) -> bytes:
    """HistogramProto bytes of ``values``, with torch's (and TensorBoard's histogram.cc) rules: only the
    buckets from the first to the last non-empty one, plus one empty bucket on the left, are kept."""
    if values.size == 0:
        raise ValueError("The input has no element.")
    values = values.reshape(-1)
    counts, limits = np.histogram(values, bins=bins)
    num_bins = len(counts)
    if max_bins is not None and num_bins > max_bins:
        subsampling = num_bins // max_bins
        subsampling_remainder = num_bins % subsampling
        if subsampling_remainder != 0:
            counts = np.pad(counts, pad_width=[[0, subsampling - subsampling_remainder]], mode="constant",
                            constant_values=0)
        counts = counts.reshape(-1, subsampling).sum(axis=-1)
        new_limits = np.empty((counts.size + 1,), limits.dtype)
        new_limits[:-1] = limits[:-1:subsampling]
        new_limits[-1] = limits[-1]
        limits = new_limits

    cum_counts = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(cum_counts, [0, cum_counts[-1] - 1], side="right")
    start = int(start)
    end = int(end) + 1
    # TensorBoard reads only right bucket limits: keep one empty bucket on the left
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    return _histogram_proto(values.min(), values.max(), len(values), values.sum(), values.dot(values),
                            limits.tolist(), counts.tolist())


# ---------------------------------------------------------------------------------------------
# Images and audio

def make_grid(I, ncols=8):
    """N1HW or N3HW images tiled into one 3HW canvas, ``ncols`` to a row (torch's layout)."""
    if not isinstance(I, np.ndarray):
        raise AssertionError("plugin error, should pass numpy array here")
    if I.shape[1] == 1:
        I = np.concatenate([I, I, I], 1)
    if I.ndim != 4 or I.shape[1] != 3:
        raise AssertionError("Input should be a 4D numpy array with 3 channels")
    nimg, H, W = I.shape[0], I.shape[2], I.shape[3]
    ncols = min(nimg, ncols)
    nrows = int(np.ceil(float(nimg) / ncols))
    canvas = np.zeros((3, H * nrows, W * ncols), dtype=I.dtype)
    for i in range(nimg):
        y, x = divmod(i, ncols)
        canvas[:, y * H:(y + 1) * H, x * W:(x + 1) * W] = I[i]
    return canvas


def convert_to_HWC(tensor, input_format):
    """A NumPy image in ``input_format`` (NCHW, CHW, HWC, HW or any order of those letters) as HWC."""
    if len(set(input_format)) != len(input_format):
        raise AssertionError(f"You can not use the same dimension shorthand twice. input_format: {input_format}")
    if len(tensor.shape) != len(input_format):
        raise AssertionError(f"size of input tensor and input format are different. tensor shape: {tensor.shape}, "
                             f"input_format: {input_format}")
    input_format = input_format.upper()
    if len(input_format) == 4:
        index = [input_format.find(c) for c in "NCHW"]
        return make_grid(tensor.transpose(index)).transpose(1, 2, 0)
    if len(input_format) == 3:
        index = [input_format.find(c) for c in "HWC"]
        tensor_HWC = tensor.transpose(index)
        if tensor_HWC.shape[2] == 1:
            tensor_HWC = np.concatenate([tensor_HWC, tensor_HWC, tensor_HWC], 2)
        return tensor_HWC
    if len(input_format) == 2:
        index = [input_format.find(c) for c in "HW"]
        tensor = tensor.transpose(index)
        return np.stack([tensor, tensor, tensor], 2)
    return None  # torch returns None too; image() then fails on it


def _png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an HWC uint8 array with 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) channels."""
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = np.zeros((height, 1 + width * channels), dtype=np.uint8)  # each row: filter byte 0, then pixels
    rows[:, 1:] = pixels.reshape(height, width * channels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def make_image(tensor, rescale=1, rois=None, labels=None) -> bytes:
    """Summary.Image bytes (height, width, colorspace, PNG) of an HWC uint8 array."""
    if rescale != 1 or rois is not None:
        raise NotImplementedError("tracenn.utils.tensorboard writes images at their own size without boxes "
                                  "(rescale=1, no rois): resizing and drawing boxes need PIL, which tracenn "
                                  "does not depend on")
    height, width, channel = tensor.shape
    if channel not in (1, 2, 3, 4):
        raise ValueError(f"an image needs 1, 2, 3 or 4 channels, got {channel} (image shape HWC "
                         f"{tuple(tensor.shape)}); pass dataformats= to say which dimension holds the channels")
    return (int_field(1, height) + int_field(2, width) + int_field(3, channel)
            + bytes_field(4, _png(np.ascontiguousarray(tensor, dtype=np.uint8))))


def _calc_scale_factor(tensor) -> int:
    return 1 if tensor.dtype == np.uint8 else 255


def image(tag, tensor, rescale=1, dataformats="NCHW") -> bytes:
    """A Summary with one image: uint8 values are taken as is, any other dtype is multiplied by 255;
    then clipped to [0, 255] and truncated to uint8 (torch's rule). Batches are tiled 8 to a row."""
    tensor = make_np(tensor)
    tensor = convert_to_HWC(tensor, dataformats)
    scale_factor = _calc_scale_factor(tensor)
    tensor = tensor.astype(np.float32)
    tensor = (tensor * scale_factor).clip(0, 255).astype(np.uint8)
    return _summary(tag, image=make_image(tensor, rescale=rescale))


def audio(tag, tensor, sample_rate=44100) -> bytes:
    """A Summary with one mono clip, as 16-bit WAV (values clipped to [-1, 1])."""
    array = make_np(tensor).squeeze()
    if abs(array).max() > 1:
        print("warning: audio amplitude out of range, auto clipped.")
        array = array.clip(-1, 1)
    if array.ndim != 1:
        raise AssertionError("input tensor should be 1 dimensional.")
    array = (array * np.iinfo(np.int16).max).astype("<i2")
    fio = io.BytesIO()
    with wave.open(fio, "wb") as wave_write:
        wave_write.setnchannels(1)
        wave_write.setsampwidth(2)
        wave_write.setframerate(sample_rate)
        wave_write.writeframes(array.data)
    audio_msg = (float_field(1, sample_rate) + int_field(2, 1) + int_field(3, array.shape[-1])
                 + bytes_field(4, fio.getvalue()) + bytes_field(5, "audio/wav"))
    return _summary(tag, audio=audio_msg)


# ---------------------------------------------------------------------------------------------
# Hyperparameters (tensorboard/plugins/hparams/{api,plugin_data}.proto, google/protobuf/struct.proto)

_HPARAMS_PLUGIN = "hparams"
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"
_DATA_TYPE_STRING, _DATA_TYPE_BOOL, _DATA_TYPE_FLOAT64 = 1, 2, 3
_STATUS_SUCCESS = 1


def _struct_value(v) -> bytes:
    """google.protobuf.Value: number_value = 2 (double) or string_value = 3 (bool_value = 4 is never
    written: torch tests ``isinstance(v, (int, float))`` first, and a bool is an int)."""
    if isinstance(v, str):
        return bytes_field(3, v, always=True)
    return double_field(2, v, always=True)


def _hparams_summary(tag: str, data_field: int, message: bytes) -> bytes:
    content = bytes_field(data_field, message, always=True)  # HParamsPluginData, version 0 (not written)
    return _summary(tag, metadata=_metadata(_HPARAMS_PLUGIN, content))


def hparams(hparam_dict=None, metric_dict=None, hparam_domain_discrete=None):
    """The three Summaries (experiment, session start, session end) of the hparams plugin, as torch's
    ``hparams``. As in torch, a ``bool`` is an ``int``, so booleans are logged as numbers (0/1)."""
    if not isinstance(hparam_dict, dict):
        logger.warning("parameter: hparam_dict should be a dictionary, nothing logged.")
        raise TypeError("parameter: hparam_dict should be a dictionary, nothing logged.")
    if not isinstance(metric_dict, dict):
        logger.warning("parameter: metric_dict should be a dictionary, nothing logged.")
        raise TypeError("parameter: metric_dict should be a dictionary, nothing logged.")
    hparam_domain_discrete = hparam_domain_discrete or {}
    if not isinstance(hparam_domain_discrete, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in hparam_domain_discrete.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as "
                            f"hparam_dict[{k}].")
    from ...tensor import Tensor

    hps, ssi_entries = [], []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, (int, float)):
            value, data_type, encode = _struct_value(float(v)), _DATA_TYPE_FLOAT64, lambda d: _struct_value(float(d))
        elif isinstance(v, str):
            value, data_type, encode = _struct_value(v), _DATA_TYPE_STRING, _struct_value
        elif isinstance(v, Tensor):
            value, data_type, encode = _struct_value(float(make_np(v)[0])), _DATA_TYPE_FLOAT64, None
        else:
            raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
        ssi_entries.append(bytes_field(1, bytes_field(1, k) + bytes_field(2, value, always=True), always=True))
        info = bytes_field(1, k) + int_field(4, data_type)
        if encode is not None and k in hparam_domain_discrete:
            list_value = b"".join(bytes_field(1, encode(d), always=True) for d in hparam_domain_discrete[k])
            info += bytes_field(5, list_value, always=True)
        hps.append(bytes_field(4, info, always=True))

    ssi = _hparams_summary(SESSION_START_INFO_TAG, 3, b"".join(ssi_entries))
    metric_infos = b"".join(bytes_field(5, bytes_field(1, bytes_field(2, k), always=True), always=True)
                            for k in metric_dict)
    exp = _hparams_summary(EXPERIMENT_TAG, 2, b"".join(hps) + metric_infos)
    sei = _hparams_summary(SESSION_END_INFO_TAG, 4, int_field(1, _STATUS_SUCCESS))
    return exp, ssi, sei
