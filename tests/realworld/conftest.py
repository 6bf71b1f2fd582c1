"""Real PyTorch programs, written as PyTorch's tutorials and examples write them, run on tracenn.

Each test file holds one program as a function of the library, ``program(torch, init=None,
compiled=False)``, so the same source runs as ``import tracenn as torch`` and as real PyTorch.
It returns a dict: lists of per-step numbers (losses, accuracies, learning rates), arrays
(predictions, samples) and, under ``"model"``, the trained module. ``init(model)`` is called on
the freshly built model: with PyTorch as the oracle, the torch run records its initial state and
the tracenn run loads it, so both start from the same weights and see the same data (dropout is 0,
random draws are replaced by fixed ones). ``compiled=True`` runs the training step through
``tracenn.compile``.

The ``rw`` fixture gives the helpers: ``rw.with_torch(program, **kw)`` runs the pair (skipping
without torch) and ``rw.assert_runs_close(actual, expected, ...)`` compares two results.

Cold eager runs compile each op's kernel on first use (most of a program's first-run time on a
2-core machine); the heavier programs and the compiled-step comparisons are marked slow.
"""
from __future__ import annotations

import types

import numpy as np
import pytest

import tracenn


def _state_numpy(model) -> dict:
    return {k: np.array(v.detach().cpu().numpy()) for k, v in model.state_dict().items()}


def with_torch(program, compiled=False, **kw):
    """(tracenn's result, torch's result) of ``program`` from torch's initial weights
    (``compiled``: tracenn's training step through tracenn.compile)."""
    torch = pytest.importorskip("torch")
    initial = {}
    expected = program(torch, init=lambda m: initial.update(_state_numpy(m)), **kw)
    actual = program(tracenn, init=lambda m: m.load_state_dict({k: tracenn.tensor(v) for k, v in initial.items()}),
                     compiled=compiled, **kw)
    return actual, expected


def assert_runs_close(actual: dict, expected: dict, rtol=1e-4, atol=1e-5, loose=(), loose_atol=1e-3):
    """Every entry of two results agrees, and so does every tensor of the models' state_dicts.
    ``loose``: state_dict keys compared with ``loose_atol`` only (a parameter whose gradient is
    zero up to rounding, such as attention's key bias, moves by amplified rounding noise under Adam)."""
    assert sorted(actual) == sorted(expected)
    for key in expected:
        if key == "model":
            continue
        a, e = actual[key], expected[key]
        if hasattr(e, "detach"):
            a, e = a.detach().cpu().numpy(), e.detach().cpu().numpy()
        np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(e, dtype=np.float64),
                                   rtol=rtol, atol=atol, err_msg=key)
    got, want = _state_numpy(actual["model"]), _state_numpy(expected["model"])
    assert list(got) == list(want)
    for key in want:
        tol = dict(rtol=0, atol=loose_atol) if key in loose else dict(rtol=rtol, atol=atol)
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol)


def assert_learns(losses, factor=1.0):
    """The mean loss of the last third is below ``factor`` times that of the first third."""
    k = max(1, len(losses) // 3)
    first, last = np.mean(losses[:k]), np.mean(losses[-k:])
    assert np.all(np.isfinite(losses)), losses
    assert last < factor * first, f"the loss did not fall: {first:.4f} over the first steps, {last:.4f} over the last"


@pytest.fixture
def rw():
    return types.SimpleNamespace(with_torch=with_torch, assert_runs_close=assert_runs_close,
                                 assert_learns=assert_learns)
