"""MNIST-style IDX reading on small files the tests write, and scikit-learn's bundled digits."""
from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest

import tracenn
from tracenn.utils.data import DataLoader
from tracenn.vision import transforms as T
from tracenn.vision.datasets import Digits, FashionMNIST, MNIST, DatasetNotFoundError, IDXFormatError, read_idx

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, _CODES[arr.dtype.type], arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write(path, arr, gz=False):
    data = idx_bytes(arr)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gz):
    arr = (np.arange(24).reshape(2, 3, 4) % 100).astype(dtype)
    write(tmp_path / "x-idx3-ubyte", arr, gz)
    out = read_idx(tmp_path / ("x-idx3-ubyte" + (".gz" if gz else "")))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_read_idx_errors(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(IDXFormatError, match="not an IDX file"):
        read_idx(bad)
    full = idx_bytes(np.zeros((4, 4), np.uint8))
    bad.write_bytes(full[:-3])
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(bad)
    bad.write_bytes(full[:6])
    with pytest.raises(IDXFormatError, match="truncated IDX header"):
        read_idx(bad)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(IDXFormatError, match="cannot read the file as gzip"):
        read_idx(tmp_path / "bad.gz")
    assert issubclass(IDXFormatError, ValueError)


def _mnist_files(folder, n=5, train=True, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if train else "t10k"
    images = (np.arange(n * 28 * 28).reshape(n, 28, 28) % 256).astype(np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    write(folder / f"{prefix}-images-idx3-ubyte", images, gz)
    write(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return images, labels


@pytest.mark.parametrize("layout", ["raw", "flat"])
def test_mnist_reads_idx_files(tmp_path, layout):
    folder = tmp_path / "MNIST" / "raw" if layout == "raw" else tmp_path
    images, labels = _mnist_files(folder, gz=layout == "flat")
    ds = MNIST(tmp_path, train=True)
    assert len(ds) == 5 and ds.data.shape == (5, 28, 28) and ds.data.dtype is tracenn.uint8
    assert ds.targets.dtype is tracenn.int64 and ds.targets.tolist() == [0, 1, 2, 3, 4]
    img, target = ds[3]
    assert target == 3 and isinstance(target, int)
    np.testing.assert_array_equal(img, images[3])


def test_mnist_classic_recipe_through_a_dataloader(tmp_path):
    _mnist_files(tmp_path, n=6, train=False)
    tf = T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))])
    ds = MNIST(tmp_path, train=False, transform=tf, target_transform=lambda y: y + 100)
    x, y = next(iter(DataLoader(ds, batch_size=4)))
    assert x.shape == (4, 1, 28, 28) and x.dtype is tracenn.float32
    assert y.tolist() == [100, 101, 102, 103]
    assert "Dataset MNIST" in repr(ds) and "Split: Test" in repr(ds) and "Normalize(" in repr(ds)


def test_mnist_missing_file_error_names_it_and_never_downloads(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"file 'train-images-idx3-ubyte' \(or train-images-idx3-ubyte.gz\) "
                                                   r"not found.*tracenn never downloads"):
        MNIST(tmp_path)
    assert issubclass(DatasetNotFoundError, RuntimeError) and issubclass(DatasetNotFoundError, FileNotFoundError)
    with pytest.raises(RuntimeError, match="never downloads"):
        MNIST(tmp_path, download=True)


def test_fashion_mnist_uses_its_folder(tmp_path):
    _mnist_files(tmp_path / "FashionMNIST" / "raw", n=2, train=False)
    ds = FashionMNIST(tmp_path, train=False)
    assert len(ds) == 2 and ds.classes[9] == "Ankle boot"
    with pytest.raises(DatasetNotFoundError):
        MNIST(tmp_path, train=False)  # MNIST does not look in FashionMNIST/


def test_mnist_mismatched_counts(tmp_path):
    write(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), np.uint8))
    write(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(IDXFormatError, match="expected images N x H x W and N labels"):
        MNIST(tmp_path)


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        Digits()


def test_digits_split_is_deterministic():
    if "torch" in sys.modules and sys.modules["torch"] is None:
        pytest.skip("scikit-learn's scipy breaks when torch is blocked through sys.modules")
    pytest.importorskip("sklearn")
    train, test = Digits(train=True), Digits(train=False)
    assert len(train) == 1437 and len(test) == 360
    assert train.data.shape == (1437, 8, 8) and train.data.dtype is tracenn.uint8
    assert int(train.data.max().item()) == 255
    again = Digits(train=False, transform=T.ToTensor(), target_transform=lambda y: -y)
    assert tracenn.equal(again.targets, test.targets) and tracenn.equal(again.data, test.data)
    img, y = again[0]
    assert img.shape == (1, 8, 8) and y == -test.targets[0].item()
    assert sorted(set(test.targets.tolist())) == list(range(10))
    # the two splits hold different images (no test image is also a training image)
    train_rows = {bytes(r) for r in train.data.numpy().reshape(len(train), -1)}
    test_rows = [bytes(r) for r in test.data.numpy().reshape(len(test), -1)]
    assert sum(r in train_rows for r in test_rows) < 5  # (a few digits are pixel-identical in the source data)
