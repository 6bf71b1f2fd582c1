"""torch's _foreach_* functions (EMA and optimizer code in the wild): one op over a list of tensors."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def _lists(lib):
    rs = np.random.default_rng(0)
    a = [lib.tensor(rs.uniform(0.5, 2.0, s).astype(np.float32)) for s in ((3,), (2, 2))]
    b = [lib.tensor(rs.uniform(0.5, 2.0, s).astype(np.float32)) for s in ((3,), (2, 2))]
    return a, b


def _np(ts):
    return [np.asarray(t.detach().numpy()) for t in ts]


def test_known_values_without_torch():
    a = [tracenn.ones(2), tracenn.ones(3)]
    assert tracenn._foreach_add_(a, 1) is a and [t.tolist() for t in a] == [[2.0, 2.0], [2.0, 2.0, 2.0]]
    out = tracenn._foreach_add(a, [tracenn.ones(2), tracenn.ones(3)], alpha=2)
    assert isinstance(out, tuple) and [t.tolist() for t in out] == [[4.0, 4.0], [4.0, 4.0, 4.0]]
    assert [t.tolist() for t in tracenn._foreach_mul(a, [1.0, 3.0])] == [[2.0, 2.0], [6.0, 6.0, 6.0]]
    assert [t.item() for t in tracenn._foreach_norm(a)] == pytest.approx([8 ** 0.5, 12 ** 0.5])
    assert [t.item() for t in tracenn._foreach_powsum(a, 2)] == [8.0, 12.0]
    assert [t.tolist() for t in tracenn._foreach_pow(2.0, a)] == [[4.0, 4.0], [4.0, 4.0, 4.0]]
    assert [t.tolist() for t in tracenn._foreach_maximum(a, 3.0)] == [[3.0, 3.0], [3.0, 3.0, 3.0]]
    tracenn._foreach_zero_(a)
    assert [t.tolist() for t in a] == [[0.0, 0.0], [0.0, 0.0, 0.0]]


def test_ema_update_in_place():
    ema = [tracenn.zeros(2), tracenn.ones(2)]
    params = [tracenn.ones(2), tracenn.zeros(2)]
    tracenn._foreach_mul_(ema, 0.9)
    tracenn._foreach_add_(ema, params, alpha=0.1)
    np.testing.assert_allclose(_np(ema), [[0.1, 0.1], [0.9, 0.9]], rtol=1e-6)
    tracenn._foreach_lerp_(ema, params, 0.5)
    np.testing.assert_allclose(_np(ema), [[0.55, 0.55], [0.45, 0.45]], rtol=1e-6)


def test_errors_are_torchs():
    with pytest.raises(RuntimeError, match="Tensor lists must have the same number of tensors, got 2 and 1"):
        tracenn._foreach_add([tracenn.ones(1), tracenn.ones(1)], [tracenn.ones(1)])
    with pytest.raises(RuntimeError, match="Tensor list must have at least one tensor."):
        tracenn._foreach_add([], 1)


def test_gradients_flow_through_out_of_place_forms():
    a = [tracenn.tensor([1.0, 2.0], requires_grad=True)]
    (y,) = tracenn._foreach_mul(tracenn._foreach_exp(a), 3.0)
    y.sum().backward()
    np.testing.assert_allclose(a[0].grad.numpy(), 3 * np.exp([1.0, 2.0]), rtol=1e-6)


CASES = [
    ("_foreach_add", lambda lib, a, b: (a, b), {"alpha": 0.5}),
    ("_foreach_sub", lambda lib, a, b: (a, 1.5), {}),
    ("_foreach_mul", lambda lib, a, b: (a, lib.tensor(2.0)), {}),
    ("_foreach_div", lambda lib, a, b: (a, [2.0, 4.0]), {}),
    ("_foreach_maximum", lambda lib, a, b: (a, b), {}),
    ("_foreach_minimum", lambda lib, a, b: (a, 1.0), {}),
    ("_foreach_clamp_min", lambda lib, a, b: (a, 1.0), {}),
    ("_foreach_clamp_max", lambda lib, a, b: (a, b), {}),
    ("_foreach_pow", lambda lib, a, b: (a, 2.5), {}),
    ("_foreach_addcmul", lambda lib, a, b: (a, a, b), {"value": 0.3}),
    ("_foreach_addcdiv", lambda lib, a, b: (a, a, b, [0.5, 2.0]), {}),
    ("_foreach_lerp", lambda lib, a, b: (a, b, 0.25), {}),
    ("_foreach_sqrt", lambda lib, a, b: (a,), {}),
    ("_foreach_exp", lambda lib, a, b: (a,), {}),
    ("_foreach_log", lambda lib, a, b: (a,), {}),
    ("_foreach_sigmoid", lambda lib, a, b: (a,), {}),
    ("_foreach_reciprocal", lambda lib, a, b: (a,), {}),
    ("_foreach_neg", lambda lib, a, b: (a,), {}),
    ("_foreach_norm", lambda lib, a, b: (a, 1), {}),
    ("_foreach_max", lambda lib, a, b: (a,), {}),
    ("_foreach_powsum", lambda lib, a, b: (a, 3), {}),
]


@pytest.mark.parametrize("name, args, kwargs", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("inplace", [False, True])
def test_matches_torch(torch, name, args, kwargs, inplace):
    fname = name + ("_" if inplace else "")
    if inplace and not hasattr(torch, fname):
        pytest.skip(f"torch has no {fname}")
    got = []
    for lib in (torch, tracenn):
        a, b = _lists(lib)
        out = getattr(lib, fname)(*args(lib, a, b), **kwargs)
        got.append(_np(a if inplace else out))
    for u, v in zip(*got):
        np.testing.assert_allclose(v, u, rtol=1e-6)


def test_every_torch_foreach_name_exists(torch):
    missing = [n for n in dir(torch) if n.startswith("_foreach_") and not hasattr(tracenn, n)]
    assert missing == []
