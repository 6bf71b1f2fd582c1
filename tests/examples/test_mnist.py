"""examples/mnist.py, run in-process with few steps: it learns, and its checkpoint reloads exactly.

The MNIST path runs on small synthetic IDX files written here (each digit class a distinct stroke
plus noise), so these tests need neither downloads nor scikit-learn; the run on scikit-learn's
digits is skipped without it. The synthetic images have the digits' size (8x8) and held-out count
(360), so all runs share the same batch shapes and eager mode compiles each op's kernel only once.
"""
from __future__ import annotations

import importlib.util
import pathlib
import struct
import sys

import numpy as np
import pytest

import tracenn

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mnist.py"


@pytest.fixture(scope="module")
def mnist():
    spec = importlib.util.spec_from_file_location("examples_mnist", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_idx(path, arr: np.ndarray) -> None:
    """An uncompressed uint8 IDX file, the format of MNIST's files."""
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def stroke_digits(n: int, rng: np.random.Generator):
    """``n`` 8x8 images over uniform noise: classes 0-3 are a 2-pixel horizontal bar at rows 0, 2,
    4, 6; classes 4-7 the same bar vertical; 8 and 9 the two diagonals. Bars vary in length."""
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 80, (n, 8, 8))
    diagonal = np.eye(8, dtype=bool) | np.eye(8, k=1, dtype=bool)
    for img, k in zip(images, labels):
        lo, hi = rng.integers(0, 2), 8 - rng.integers(0, 2)
        if k < 4:
            img[2 * k:2 * k + 2, lo:hi] = 255
        elif k < 8:
            img[lo:hi, 2 * (k - 4):2 * (k - 4) + 2] = 255
        else:
            img[diagonal if k == 8 else diagonal[::-1]] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist_idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 1024), ("t10k", 360)):
        images, labels = stroke_digits(n, rng)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def assert_learned(result: dict, min_accuracy: float) -> None:
    losses = result["losses"]
    k = max(1, len(losses) // 5)
    first, last = np.mean(losses[:k]), np.mean(losses[-k:])
    assert last < 0.7 * first, f"the loss did not fall: {first:.3f} over the first steps, {last:.3f} over the last"
    assert result["accuracy"] >= min_accuracy, f"held-out accuracy {result['accuracy']:.2%} (chance is 10%)"
    assert result["reloaded_accuracy"] == result["accuracy"]


def test_learns_synthetic_mnist_idx_files(mnist, idx_dir, tmp_path, capsys):
    ckpt = tmp_path / "cnn.pt"
    result = mnist.main(["--data", str(idx_dir), "--epochs", "2", "--max-steps", "8", "--checkpoint", str(ckpt)])
    assert len(result["losses"]) == 16 and len(result["epoch_seconds"]) == 2
    assert_learned(result, min_accuracy=0.6)
    assert ckpt.is_file() and result["checkpoint"] == str(ckpt)
    assert sorted(tracenn.load(ckpt)) == sorted(mnist.Net(8).state_dict())
    out = capsys.readouterr().out
    assert "epoch 2" in out and "8/8" in out and "samples/s" in out  # the progress bar
    assert "MNIST: 1024 training and 360 held-out images, eager mode" in out and "scores the same" in out


def test_flatten_size_follows_the_image_size(mnist):
    for size, features in ((28, 64 * 12 * 12), (8, 64 * 2 * 2)):
        net = mnist.Net(size)
        assert net.fc1.in_features == features
        assert net(tracenn.zeros(2, 1, size, size)).shape == (2, 10)


def test_learns_the_digits_to_95_percent_with_defaults(mnist, tmp_path, capsys):
    pytest.importorskip("sklearn")
    result = mnist.main(["--quiet", "--checkpoint", str(tmp_path / "cnn.pt")])
    assert_learned(result, min_accuracy=0.95)
    assert "digits (scikit-learn, 8x8): 1437 training and 360 held-out images" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(tracenn, "compile"), reason="tracenn.compile does not exist yet")
def test_compiled_mode_learns(mnist, idx_dir, tmp_path):
    result = mnist.main(["--data", str(idx_dir), "--mode", "compiled", "--epochs", "2", "--max-steps", "8",
                         "--checkpoint", str(tmp_path / "cnn.pt"), "--quiet"])
    assert_learned(result, min_accuracy=0.6)


def test_a_checkpoint_that_reloads_differently_is_an_error(mnist, idx_dir, tmp_path, monkeypatch):
    real_load = tracenn.load

    def load_and_spoil(path):
        state = real_load(path)
        state["fc2.bias"] = state["fc2.bias"] + tracenn.arange(10.0) * 100  # every image now says "9"
        return state

    monkeypatch.setattr(mnist.torch, "load", load_and_spoil)
    with pytest.raises(RuntimeError, match=r"reloaded from .* scores \d+\.\d\d%, the trained model \d+\.\d\d%"):
        mnist.main(["--data", str(idx_dir), "--epochs", "1", "--max-steps", "2",
                    "--checkpoint", str(tmp_path / "cnn.pt"), "--quiet"])


def run_error(mnist, capsys, argv) -> str:
    """Run the example expecting argparse's error exit; return what it printed to stderr."""
    with pytest.raises(SystemExit) as info:
        mnist.main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_bad_flags_are_rejected_clearly(mnist, capsys):
    assert "invalid choice: 'fast'" in run_error(mnist, capsys, ["--mode", "fast"])
    assert "--epochs must be at least 1, got 0" in run_error(mnist, capsys, ["--epochs", "0"])
    assert "unrecognized arguments: --bogus" in run_error(mnist, capsys, ["--bogus"])


def test_missing_data_folder_or_files(mnist, capsys, tmp_path):
    err = run_error(mnist, capsys, ["--data", str(tmp_path / "nowhere")])
    assert "nowhere: no such folder" in err
    err = run_error(mnist, capsys, ["--data", str(tmp_path)])
    assert "file 'train-images-idx3-ubyte' (or train-images-idx3-ubyte.gz) not found" in err
    assert "never downloads" in err


def test_batch_larger_than_the_data(mnist, capsys, idx_dir):
    err = run_error(mnist, capsys, ["--data", str(idx_dir), "--batch-size", "4096", "--quiet"])
    assert "--batch-size 4096 is larger than the training set (1024 images)" in err


def test_without_scikit_learn_says_what_to_install(mnist, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    assert "pip install -e '.[digits]' or pass --data DIR" in run_error(mnist, capsys, ["--quiet"])


def test_compiled_mode_without_the_compiler(mnist, capsys, monkeypatch):
    monkeypatch.delattr(tracenn, "compile", raising=False)
    err = run_error(mnist, capsys, ["--mode", "compiled"])
    assert "--mode compiled needs tracenn.compile" in err and "--mode eager" in err
