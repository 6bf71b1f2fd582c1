"""Fixtures for the tracenn.utils.data tests: ``lib`` runs a test with tracenn, then with PyTorch
(skipped cleanly without torch); ``plain`` turns a batch into comparable Python data."""
from __future__ import annotations

import pytest

import tracenn


@pytest.fixture(params=["tracenn", "torch"])
def lib(request):
    if request.param == "torch":
        return request.getfixturevalue("torch")
    return tracenn


def plain(x):
    """A batch as nested Python data: tensors become ("tensor", dtype name, shape, values)."""
    if hasattr(x, "dtype") and hasattr(x, "tolist") and hasattr(x, "shape") and not isinstance(x, (list, tuple)):
        if type(x).__module__.startswith("numpy"):
            return ("ndarray", str(x.dtype), x.tolist())
        return ("tensor", str(x.dtype).split(".")[-1], list(x.shape), x.tolist())
    if isinstance(x, dict):
        return (type(x).__name__, [(k, plain(v)) for k, v in x.items()])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [plain(v) for v in x])
    return x


@pytest.fixture
def to_plain():
    return plain
