"""tracenn.accelerator: the device-generic queries PyTorch's current tutorials pick their device with."""
import pytest

import tracenn


def test_tutorial_device_line_runs():
    device = tracenn.accelerator.current_accelerator().type if tracenn.accelerator.is_available() else "cpu"
    assert tracenn.ones(2, device=device).device.type == device
    assert tracenn.accelerator.device_count() == tracenn.cuda.device_count()


def test_without_an_accelerator_matches_torch(torch):
    if tracenn.accelerator.is_available() or torch.accelerator.is_available():
        pytest.skip("compares the no-accelerator answers")
    for lib in (tracenn, torch):
        assert lib.accelerator.current_accelerator() is None
        assert lib.accelerator.current_accelerator(check_available=True) is None
        assert lib.accelerator.device_count() == 0
        with pytest.raises(RuntimeError, match="Cannot access accelerator device when none is available"):
            lib.accelerator.current_device_index()


def test_with_an_accelerator():
    if not tracenn.accelerator.is_available():
        pytest.skip("needs a GPU that JAX sees")
    assert tracenn.accelerator.current_accelerator() == tracenn.device("cuda")
    assert tracenn.accelerator.current_device_index() == 0
    tracenn.accelerator.set_device_index(0)
    with pytest.raises(ValueError, match="places new tensors on the first accelerator"):
        tracenn.accelerator.set_device_index(1)
    tracenn.accelerator.synchronize()
