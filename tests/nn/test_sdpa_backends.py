"""tracenn.nn.attention.sdpa_kernel/SDPBackend and the sdp switches of tracenn.backends.cuda: kept
settings that read back what was set and are restored as torch restores them (XLA chooses its own
attention kernel, so no number changes); parity with torch's flag sequences when it is installed."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from helpers import assert_close
from tracenn.backends import cuda
from tracenn.nn.attention import SDPBackend, sdpa_kernel

SWITCHES = ("flash_sdp_enabled", "mem_efficient_sdp_enabled", "math_sdp_enabled", "cudnn_sdp_enabled")


def flags(lib):
    return tuple(getattr(lib.backends.cuda, name)() for name in SWITCHES)


@pytest.fixture(autouse=True)
def _restore_switches():
    """Every test starts and ends with all sdp kernels enabled (the default)."""
    from tracenn import backends
    saved, priority = dict(backends._SDP_ENABLED), list(backends._SDP_PRIORITY)
    yield
    backends._SDP_ENABLED.update(saved)
    backends._SDP_PRIORITY[:] = priority


def test_defaults_and_enable_read_back():
    assert flags(tracenn) == (True, True, True, True)
    cuda.enable_flash_sdp(False)
    cuda.enable_cudnn_sdp(False)
    assert flags(tracenn) == (False, True, True, False)
    cuda.enable_flash_sdp(True)
    assert cuda.flash_sdp_enabled() is True
    with pytest.raises(RuntimeError, match="expects a bool, but got int"):
        cuda.enable_math_sdp(0)


def test_sdpa_kernel_sets_and_restores():
    with sdpa_kernel(SDPBackend.MATH) as ctx:
        assert ctx == {}
        assert flags(tracenn) == (False, False, True, False)
    assert flags(tracenn) == (True, True, True, True)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION]):
        assert flags(tracenn) == (True, True, False, False)
        with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
            assert flags(tracenn) == (False, False, False, True)
        assert flags(tracenn) == (True, True, False, False)
    with pytest.raises(KeyError):
        with sdpa_kernel(SDPBackend.MATH):
            raise KeyError("restored on error too")
    assert flags(tracenn) == (True, True, True, True)


def test_set_priority_and_its_restore():
    from tracenn import backends
    before = list(backends._SDP_PRIORITY)
    assert before == [1, 2, 0, 3, 4]
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH], set_priority=True):
        assert backends._SDP_PRIORITY[:2] == [3, 0] and sorted(backends._SDP_PRIORITY) == [0, 1, 2, 3, 4]
    assert sorted(backends._SDP_PRIORITY) == [0, 1, 2, 3, 4]
    assert flags(tracenn) == (True, True, True, True)


def test_bad_backends_argument():
    with pytest.raises(AssertionError, match="got str"):
        with sdpa_kernel("math"):
            pass


def test_deprecated_sdp_kernel():
    with pytest.warns(FutureWarning, match="sdp_kernel\\(\\)` is deprecated"):
        with cuda.sdp_kernel(enable_flash=False, enable_mem_efficient=False) as ctx:
            assert ctx == {}
            assert flags(tracenn) == (False, False, True, True)
    assert flags(tracenn) == (True, True, True, True)


def test_sdp_backend_enum():
    assert [m.name for m in SDPBackend] == ["ERROR", "MATH", "FLASH_ATTENTION", "EFFICIENT_ATTENTION",
                                            "CUDNN_ATTENTION", "OVERRIDEABLE"]
    assert [int(m) for m in SDPBackend] == [-1, 0, 1, 2, 3, 4]
    assert repr(SDPBackend.MATH) == "<SDPBackend.MATH: 0>" and str(SDPBackend.MATH) == "SDPBackend.MATH"
    assert cuda.SDPBackend is SDPBackend


def test_can_use_fused_kernels_is_false_and_numbers_do_not_change():
    q = tracenn.tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 4)).astype(np.float32))
    params = cuda.SDPAParams(q, q, q, None, 0.0, True, False)
    assert params.is_causal and not cuda.can_use_flash_attention(params)
    assert not cuda.can_use_efficient_attention(params) and not cuda.is_flash_attention_available()
    from tracenn.nn.attention import can_use_flash_attention
    assert can_use_flash_attention(params) is False
    eager = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        assert_close(F.scaled_dot_product_attention(q, q, q, is_causal=True), eager, rtol=0, atol=0)
    compiled = tracenn.compile(lambda x: F.scaled_dot_product_attention(x, x, x, is_causal=True))
    with sdpa_kernel([SDPBackend.MATH]):
        assert_close(compiled(q), eager, rtol=1e-6, atol=1e-6)


def test_flash_attention_impl_registry():
    import tracenn.nn.attention as A
    assert A.current_flash_attention_impl() is None and A.list_flash_attention_impls() == []
    removed = []

    class Handle:
        def remove(self):
            removed.append(True)

    A.register_flash_attention_impl("FAX", register_fn=Handle)
    try:
        A.activate_flash_attention_impl("FAX")
        assert A.current_flash_attention_impl() == "FAX"
        A.restore_flash_attention_impl()
        assert removed == [True] and A.current_flash_attention_impl() is None
        with pytest.raises(ValueError, match="Unknown flash attention impl 'FA9'"):
            A.activate_flash_attention_impl("FA9")
    finally:
        A._FLASH_ATTENTION_IMPLS.pop("FAX")


# ---- parity with torch ---------------------------------------------------------------------------------

def _priority(lib):
    if lib is tracenn:
        from tracenn import backends
        return list(backends._SDP_PRIORITY)
    return list(lib._C._get_sdp_priority_order())


def _script(lib, nn_attention):
    """One sequence of switch changes and contexts; the flags (and priority order) seen at each step."""
    S = nn_attention.SDPBackend
    seen = [flags(lib), _priority(lib)]
    lib.backends.cuda.enable_mem_efficient_sdp(False)
    seen.append(flags(lib))
    with nn_attention.sdpa_kernel([S.MATH, S.CUDNN_ATTENTION]):
        seen.append(flags(lib))
        with nn_attention.sdpa_kernel([S.CUDNN_ATTENTION, S.FLASH_ATTENTION], set_priority=True):
            seen += [flags(lib), _priority(lib)]
        seen += [flags(lib), _priority(lib)]
    seen.append(flags(lib))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with lib.backends.cuda.sdp_kernel(enable_math=False):
            seen.append(flags(lib))
    seen.append(flags(lib))
    lib.backends.cuda.enable_mem_efficient_sdp(True)
    seen.append(flags(lib))
    return seen


def test_flag_sequence_matches_torch(torch):
    import torch.nn.attention as tna

    import tracenn.nn.attention as na
    before, order = flags(torch), _priority(torch)
    try:
        assert _script(tracenn, na) == _script(torch, tna)
    finally:
        torch._C._set_sdp_priority_order(order)
        for name, on in zip(SWITCHES, before):
            getattr(torch.backends.cuda, "enable_" + name.replace("_enabled", ""))(on)
    assert [(m.name, int(m)) for m in SDPBackend] == [(m.name, int(m)) for m in tna.SDPBackend.__members__.values()]
    assert set(tna.__all__) <= set(dir(na))
