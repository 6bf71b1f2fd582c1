"""Python numbers in binary ops and int indices reach kernels as cached arrays (``scalar_operand``):
results must be exactly those of passing the number itself."""
from __future__ import annotations

import math

import numpy as np

import tracenn
from tracenn import _dispatch


def test_signed_zero_and_nan_are_not_confused():
    x = tracenn.tensor([-0.0, 1.0])
    assert math.copysign(1.0, (x + 0.0)[0].item()) == 1.0  # -0.0 + 0.0 == +0.0
    assert math.copysign(1.0, (x + -0.0)[0].item()) == -1.0  # -0.0 + -0.0 == -0.0
    assert math.copysign(1.0, (tracenn.tensor([1.0]) * -0.0).item()) == -1.0
    assert np.isnan((x * float("nan")).numpy()).all()


def test_equal_numbers_of_different_types_keep_their_type():
    x = tracenn.tensor([1, 2])
    assert (x + 1).dtype == tracenn.int64
    assert (x + True).dtype == tracenn.int64
    assert (x + 1.0).dtype == tracenn.float32
    assert (x + 1.0).tolist() == [2.0, 3.0]
    b = tracenn.tensor([True, False])
    assert (b & True).dtype == tracenn.bool


def test_weak_typing_is_kept():
    h = tracenn.ones(2, dtype=tracenn.float16)
    assert (h * 0.1).dtype == tracenn.float16
    np.testing.assert_array_equal((h * 0.1).numpy(), np.float16(1) * np.float16(0.1))
    big = tracenn.tensor([2 ** 62])
    assert (big + 2 ** 62 - 1).tolist() == [2 ** 63 - 1]


def test_cached_operands_are_reused_and_bounded():
    x = tracenn.ones(3)
    x + 0.25
    before = len(_dispatch._SCALARS)
    for _ in range(3):
        x + 0.25
    assert len(_dispatch._SCALARS) == before
    for i in range(5000):
        x * (i + 0.5)
    assert len(_dispatch._SCALARS) <= 4096


def test_scalar_values_compile_one_kernel():
    from tracenn.ops import OPS
    op = OPS["mul"]
    traces = []
    impl, saved = op.impl, op._fwd
    op.impl, op._fwd = (lambda *a, **k: traces.append(1) or impl(*a, **k)), {}
    try:
        x = tracenn.ones(4)
        for i in range(50):
            assert (x * (i + 0.5)).tolist() == [i + 0.5] * 4
    finally:
        op.impl, op._fwd = impl, saved
    assert len(traces) == 1


def test_an_array_committed_to_a_device_gets_operands_made_on_that_device():
    """(On a GPU, ``model.to("cuda")``: a number would be copied host-to-device at every op.)"""
    import jax
    dev = jax.devices()[-1]
    h = tracenn.Tensor._wrap(jax.device_put(np.ones(2, np.float16), dev))
    assert h._value.committed
    a = _dispatch.scalar_operand(0.1, h._value)
    assert not isinstance(a, float) and a.devices() == {dev} and a.weak_type and not a.committed
    assert _dispatch.scalar_operand(0.1, h._value) is a  # made once
    out = h * 0.1
    assert out.dtype == tracenn.float16 and out._value.devices() == {dev}
    np.testing.assert_array_equal(out.numpy(), np.float16(1) * np.float16(0.1))
