"""tracenn.testing.assert_close: torch's tolerances and messages (PyTorch as the oracle for the
message text when installed; known strings otherwise)."""
import math

import pytest

import tracenn
from tracenn.testing import assert_close


def _message(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 (the type is part of what is compared)
        return type(e).__name__, str(e)
    return None


def _cases(lib):
    t = lib.tensor
    nan = float("nan")
    return [
        ((t([1.0, 2.0, 3.0]), t([1.0, 2.5, 3.0])), {}),
        ((t([1.0, 2.0]), t([1.0, 2.0, 3.0])), {}),
        ((t([1.0, 2.0]), t([1.0, 2.0], dtype=lib.float64)), {}),
        ((1.0, 1.5), {}),
        (([t(1.0), t(2.0)], [t(1.0), t(2.2)]), {}),
        (({"a": t([1, 2])}, {"a": t([1, 3])}), {}),
        ((t([[1.0, nan], [3.0, 4.0]]), t([[1.0, nan], [3.0, 4.0]])), {}),
        ((t([1.0, nan]), t([1.0, nan])), {"equal_nan": True}),
        ((t([1.0, 2.0]), [1.0, 2.0]), {}),
        ((t([1.0, 2.0]), t([1.0, 2.1])), {"msg": "custom"}),
        ((t([1.0, 2.0]), t([1.0, 2.0 + 1e-6])), {}),
        ((t([1.0, 2.0]), t([1.0, 2.05])), {"rtol": 0.1, "atol": 0.0}),
        ((t([1.0, 2.0], dtype=lib.float16), t([1.0, 2.001], dtype=lib.float16)), {}),
        ((t([True, False]), t([True, True])), {}),
        (([1, 2], [1, 2, 3]), {}),
        ((t([1.0, 2.0]), t([1.0, 2.0], dtype=lib.float64)), {"check_dtype": False}),
        ((t([1.0, math.inf]), t([1.0, math.inf])), {}),
        ((t([1.0, math.inf]), t([1.0, -math.inf])), {}),
    ]


def test_known_messages():
    out = [_message(assert_close, *args, **kw) for args, kw in _cases(tracenn)]
    assert out[0] == ("AssertionError", "Tensor-likes are not close!\n\nMismatched elements: 1 / 3 (33.3%)\n"
                      "Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)\n"
                      "Greatest relative difference: 0.20000000298023224 at index (1,) (up to 1.3e-06 allowed)")
    assert out[1] == ("AssertionError", "The values for attribute 'shape' do not match: tracenn.Size([2]) != "
                      "tracenn.Size([3]).")
    assert out[3][1].startswith("Scalars are not close!\n\nExpected 1.5 but got 1.0.")
    assert out[4][1].endswith("\n\nThe failure occurred for item [1]")
    assert out[7] is None and out[10] is None and out[11] is None and out[15] is None and out[16] is None
    assert out[8] == ("TypeError", "No comparison pair was able to handle inputs of type "
                      "<class 'tracenn.tensor.Tensor'> and <class 'list'>.")
    assert out[9] == ("AssertionError", "custom")
    with pytest.raises(ValueError, match="Both 'rtol' and 'atol' must be either specified or omitted"):
        assert_close(tracenn.tensor(1.0), tracenn.tensor(1.0), rtol=0.1)


def test_messages_match_torch():
    torch = pytest.importorskip("torch")
    for (args, kw), (targs, tkw) in zip(_cases(tracenn), _cases(torch)):
        ours = _message(assert_close, *args, **kw)
        theirs = _message(torch.testing.assert_close, *targs, **tkw)
        if ours is not None and theirs is not None:
            theirs = (theirs[0], theirs[1].replace("torch.Size", "tracenn.Size").replace("torch.", "tracenn.")
                      .replace("<class 'tracenn.Tensor'>", "<class 'tracenn.tensor.Tensor'>"))
        assert ours == theirs, (args, kw)
