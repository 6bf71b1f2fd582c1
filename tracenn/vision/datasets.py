"""Offline image datasets: MNIST / Fashion-MNIST from IDX files you already have, and the 8x8
handwritten digits that scikit-learn ships inside its package.

tracenn never downloads anything. Samples are ``(image, target)`` with ``image`` a ``uint8`` numpy
array ``H x W`` (torchvision gives a PIL image there) passed through ``transform``, and ``target`` an
``int`` passed through ``target_transform``; ``.data`` and ``.targets`` hold the whole split as
tensors, as in torchvision.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from ..errors import TracennError
from ..utils.data import Dataset

__all__ = ["Digits", "FashionMNIST", "MNIST", "read_idx"]


class DatasetNotFoundError(TracennError, RuntimeError, FileNotFoundError):
    """A dataset file is not where it was looked for (tracenn never downloads)."""


class IDXFormatError(TracennError, ValueError):
    """A file that is not a well-formed IDX file (bad magic, truncated, wrong size)."""


# IDX type codes -> big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/ "FILE FORMATS").
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``.gz`` compressed or not) into a numpy array in native byte order.

    The layout: two zero bytes, a type code, the number of dimensions, each dimension as a
    big-endian uint32, then the values in big-endian order.

    Raises:
        IDXFormatError: (a ``ValueError``) for a file that is not a complete IDX file.

    >>> import gzip, os, tempfile
    >>> import numpy as np
    >>> from tracenn.vision.datasets import read_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # gzip raises these for a damaged archive
        raise IDXFormatError(f"{path}: cannot read the file as {'gzip' if opener is gzip.open else 'IDX'}: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise IDXFormatError(f"{path}: not an IDX file (the first bytes are {raw[:4]!r}, expected "
                             "b'\\x00\\x00' then a type code such as 0x08 and a dimension count)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dimensions need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != need:
        raise IDXFormatError(f"{path}: an IDX file of shape {shape} and dtype {dtype.str[1:]} has {need} bytes, "
                             f"this one has {len(raw)} ({'truncated' if len(raw) < need else 'trailing data'})")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


class _ImageDataset(Dataset):
    """Shared parts: numpy images/labels inside, tensors outside, torchvision's repr."""

    classes: list = []
    _images: np.ndarray
    _labels: np.ndarray

    def __init__(self, root, train, transform, target_transform):
        self.root = None if root is None else os.fspath(os.path.expanduser(root))
        self.train = train
        self.transform = transform
        self.target_transform = target_transform

    def _finish(self, images: np.ndarray, labels: np.ndarray) -> None:
        from .._api.creation import from_numpy
        self._images = np.ascontiguousarray(images, dtype=np.uint8)
        self._labels = np.asarray(labels, dtype=np.int64)
        self.data = from_numpy(self._images)
        self.targets = from_numpy(self._labels)

    def __getitem__(self, index):
        img, target = self._images[index], int(self._labels[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def __len__(self) -> int:
        return len(self._labels)

    @property
    def class_to_idx(self) -> dict:
        return {c: i for i, c in enumerate(self.classes)}

    def __repr__(self) -> str:
        lines = [f"Dataset {self.__class__.__name__}", f"    Number of datapoints: {len(self)}"]
        if self.root is not None:
            lines.append(f"    Root location: {self.root}")
        lines.append(f"    Split: {'Train' if self.train else 'Test'}")
        for name, t in (("Transform", self.transform), ("Target transform", self.target_transform)):
            if t is not None:
                body = repr(t).splitlines()
                lines.append(f"    {name}: {body[0]}")
                lines += ["    " + b for b in body[1:]]
        return "\n".join(lines)


class MNIST(_ImageDataset):
    """MNIST from its four IDX files, which you already have (tracenn never downloads).

    Looks for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (``train=True``) or
    ``t10k-images-idx3-ubyte`` / ``t10k-labels-idx1-ubyte``, each optionally ``.gz`` (and with
    ``.idx`` in place of ``-idx`` as some mirrors name them), in ``root/MNIST/raw`` (torchvision's
    layout), ``root/MNIST`` and ``root``.

    Args:
        root: the folder that holds the files.
        train: the 60,000 training images, or else the 10,000 test images.
        transform: applied to each ``uint8`` ``28 x 28`` numpy image (e.g. ``transforms.ToTensor()``).
        target_transform: applied to each ``int`` label.
        download: must be False: tracenn never downloads.

    Raises:
        DatasetNotFoundError: (a ``RuntimeError`` and ``FileNotFoundError``) naming the missing file
            and the places searched.

    >>> import gzip, os, tempfile
    >>> from tracenn.vision.datasets import MNIST
    >>> root = tempfile.mkdtemp()
    >>> with gzip.open(os.path.join(root, "t10k-images-idx3-ubyte.gz"), "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 255, 128, 1]))
    >>> with open(os.path.join(root, "t10k-labels-idx1-ubyte"), "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 1, 7]))
    >>> ds = MNIST(root, train=False)
    >>> len(ds), ds[0]
    (1, (array([[  0, 255],
           [128,   1]], dtype=uint8), 7))
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root, train: bool = True, transform=None, target_transform=None, download: bool = False):
        super().__init__(root, train, transform, target_transform)
        if download:
            raise RuntimeError(
                f"{type(self).__name__}(download=True): tracenn never downloads data. Fetch the four IDX "
                f"files yourself, put them in {os.path.join(self.root, type(self).__name__, 'raw')}, and pass "
                "download=False.")
        prefix = "train" if train else "t10k"
        images = read_idx(self._find(f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(self._find(f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise IDXFormatError(f"{type(self).__name__}: expected images N x H x W and N labels, got images "
                                 f"{images.shape} and labels {labels.shape}")
        self._finish(images, labels)

    def _find(self, name: str) -> str:
        folders = [os.path.join(self.root, type(self).__name__, "raw"), os.path.join(self.root, type(self).__name__),
                   self.root]
        names = [name, name.replace("-idx", ".idx")]
        tried = []
        for folder in folders:
            for n in names:
                for ext in ("", ".gz"):
                    p = os.path.join(folder, n + ext)
                    if os.path.isfile(p):
                        return p
                    tried.append(p)
        raise DatasetNotFoundError(
            f"{type(self).__name__}: file {name!r} (or {name}.gz) not found; looked in "
            f"{', '.join(repr(f) for f in folders)}. tracenn never downloads data: copy the IDX files you "
            f"have into {folders[0]!r} (or pass root= the folder that holds them).")


class FashionMNIST(MNIST):
    """Fashion-MNIST from its IDX files (the same file names and layout as :class:`MNIST`, under
    ``root/FashionMNIST/raw``)."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


class Digits(_ImageDataset):
    """The 1,797 8x8 handwritten digits that scikit-learn ships inside its package (no download).

    Images are ``uint8`` ``8 x 8`` numpy arrays: scikit-learn's 0..16 intensities scaled to 0..255
    (``round(v * 255 / 16)``), so the MNIST recipe (``ToTensor()`` then ``Normalize``) applies
    unchanged. The split is fixed: a permutation from ``numpy.random.RandomState(0)`` (a stream numpy
    keeps stable) puts 360 images in the test split and 1,437 in the training split.

    Needs the optional extra: ``pip install tracenn[digits]`` (or ``pip install scikit-learn``).

    Args:
        root: ignored (the data comes from the scikit-learn package); kept for torchvision's signature.
        train: the training split, or else the test split.
        transform: applied to each image.
        target_transform: applied to each ``int`` label.
    """

    classes = [str(i) for i in range(10)]
    n_test = 360

    def __init__(self, root=None, train: bool = True, transform=None, target_transform=None):
        super().__init__(root, train, transform, target_transform)
        try:
            from sklearn.datasets import load_digits
        except ImportError as e:
            raise ImportError(
                "tracenn.vision.datasets.Digits reads the handwritten digits bundled with scikit-learn, "
                "which is not installed: run `pip install scikit-learn` (or `pip install tracenn[digits]`).") from e
        bunch = load_digits()
        images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
        labels = np.asarray(bunch.target, dtype=np.int64)
        order = np.random.RandomState(0).permutation(len(labels))
        keep = order[self.n_test:] if train else order[: self.n_test]
        self._finish(images[keep], labels[keep])
