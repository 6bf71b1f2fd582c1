"""Fixtures for the nn tests.

``lib`` runs a test once with tracenn and once with PyTorch (skipped cleanly without torch): the
same script must give the same keys, orders, reprs and errors. ``message`` normalises an error text:
tracenn's messages are torch's with ``torch`` replaced by ``tracenn`` (the rule stated in
``tracenn/nn/modules/module.py``), so expected strings are written with tracenn's names.
"""
from __future__ import annotations

import pytest

import tracenn


@pytest.fixture(params=["tracenn", "torch"])
def lib(request):
    """tracenn, or the real torch (skips without it)."""
    if request.param == "torch":
        return request.getfixturevalue("torch")
    return tracenn


def _message(exc) -> str:
    return str(exc).replace("torch", "tracenn")


@pytest.fixture
def message():
    """``message(x)``: the text of an excinfo, exception or string, with torch's names as tracenn's."""
    def get(e):
        return _message(e.value if hasattr(e, "value") else e)
    return get


@pytest.fixture(autouse=True)
def _reset_global_backward_hook_kind():
    """torch never resets the 'full or not' kind of global backward hooks; tests must not leak it."""
    yield
    from tracenn.nn.modules import _hooks
    _hooks._global_is_full_backward_hook = None
    try:
        import torch.nn.modules.module as tm
    except ImportError:
        return
    tm._global_is_full_backward_hook = None
