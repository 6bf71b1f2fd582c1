"""Tensor attributes scripts test (is_quantized, is_nested, is_mps, ...), as_subclass, the deprecated
non-inplace resize/resize_as, and autograd.is_multithreading_enabled."""
import threading

import pytest

import tracenn

FLAGS = ["is_quantized", "is_nested", "is_mkldnn", "is_xpu", "is_mps", "is_vulkan"]


@pytest.mark.parametrize("name", FLAGS)
def test_backend_flags_are_false(name):
    assert getattr(tracenn.ones(2), name) is False


class Tagged(tracenn.Tensor):
    def describe(self):
        return f"tagged{tuple(self.shape)}"


def test_as_subclass_aliases_and_keeps_autograd():
    w = tracenn.ones(3, requires_grad=True)
    t = w.as_subclass(Tagged)
    assert type(t) is Tagged and t.describe() == "tagged(3,)"
    assert t.requires_grad and not t.is_leaf and t.data_ptr() == w.data_ptr()
    (t * 2).sum().backward()
    assert w.grad.tolist() == [2.0, 2.0, 2.0]
    x = tracenn.zeros(2)
    x.as_subclass(Tagged).add_(1)  # an alias: writes through
    assert x.tolist() == [1.0, 1.0]
    with pytest.raises(TypeError, match="does not inherit from Tensor"):
        x.as_subclass(int)


def test_deprecated_resize_reshapes_and_warns():
    x = tracenn.arange(6.0, requires_grad=True)
    with pytest.warns(UserWarning, match="non-inplace resize is deprecated"):
        y = x.resize(2, 3)
    assert y.shape == (2, 3) and y[1].tolist() == [3.0, 4.0, 5.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0] * 6
    with pytest.warns(UserWarning, match="non-inplace resize_as is deprecated"):
        assert x.resize_as(tracenn.zeros(3, 2)).shape == (3, 2)
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match=r"requested resize to 4 \(4 elements in total\), "
                                                                      r"but the given tensor has a size of 2x3"):
        tracenn.zeros(2, 3).resize(4)


def test_is_multithreading_enabled():
    from tracenn.autograd import is_multithreading_enabled, set_multithreading_enabled
    assert is_multithreading_enabled()
    with set_multithreading_enabled(False):
        assert not is_multithreading_enabled()
        seen = []
        t = threading.Thread(target=lambda: seen.append(is_multithreading_enabled()))
        t.start()
        t.join()
        assert seen == [True]  # thread-local, as torch's
    assert is_multithreading_enabled()


def test_matches_torch():
    torch = pytest.importorskip("torch")
    for name in FLAGS:
        assert getattr(torch.ones(2), name) is getattr(tracenn.ones(2), name)
    assert torch.autograd.is_multithreading_enabled() == tracenn.autograd.is_multithreading_enabled()
    with pytest.warns(UserWarning):
        want = torch.arange(6.0).resize(3, 2)
    with pytest.warns(UserWarning):
        got = tracenn.arange(6.0).resize(3, 2)
    assert got.tolist() == want.tolist()
