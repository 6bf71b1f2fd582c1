"""torch.backends switches, float32 matmul precision, thread and determinism settings."""
import warnings

import jax
import pytest

import tracenn
from tracenn import nn


@pytest.fixture(autouse=True)
def _restore_precision():
    before = jax.config.jax_default_matmul_precision
    yield
    jax.config.update("jax_default_matmul_precision", before)


def test_precision_setting_round_trips_and_reaches_programs():
    assert tracenn.get_float32_matmul_precision() == "highest"  # CPU: full float32 unless set
    lin = nn.Linear(4, 4)
    cm = tracenn.compile(lin)
    x = tracenn.randn(2, 4)
    for name, hlo in (("medium", "DEFAULT"), ("high", "HIGH"), ("highest", "HIGHEST")):
        tracenn.set_float32_matmul_precision(name)
        assert tracenn.get_float32_matmul_precision() == name
        cm(x)  # a new setting is a new program, whose dot carries it
        assert f"precision = [{hlo}, {hlo}]" in cm.lower(x).as_text()
    with pytest.raises(RuntimeError, match="Invalid float32 matmul precision: 'low'"):
        tracenn.set_float32_matmul_precision("low")


def test_tf32_switches_are_the_precision_setting():
    tracenn.backends.cuda.matmul.allow_tf32 = True
    assert tracenn.get_float32_matmul_precision() == "high" and tracenn.backends.cudnn.allow_tf32
    tracenn.backends.cudnn.allow_tf32 = False
    assert tracenn.get_float32_matmul_precision() == "highest" and not tracenn.backends.cuda.matmul.allow_tf32


def test_settings_scripts_write_are_kept():
    tracenn.backends.cudnn.benchmark = True
    tracenn.backends.cudnn.deterministic = True
    assert tracenn.backends.cudnn.benchmark and tracenn.backends.cudnn.deterministic
    tracenn.backends.cudnn.benchmark = tracenn.backends.cudnn.deterministic = False
    assert tracenn.backends.cudnn.is_available() == tracenn.cuda.is_available()
    assert tracenn.backends.mps.is_available() is False
    from tracenn.backends import cudnn  # importable as torch's
    assert cudnn is tracenn.backends.cudnn


def test_threads_and_determinism():
    n = tracenn.get_num_threads()
    assert n >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tracenn.set_num_threads(n)  # what it is already: silent
    if n > 1:
        from tracenn import _threads
        _threads._STATE["warned_threads"] = False
        with pytest.warns(UserWarning, match=r"XLA sizes its CPU thread pool when it starts .*`taskset -c 0-0"):
            tracenn.set_num_threads(1)
    with pytest.raises(RuntimeError, match="set_num_threads expects a positive integer"):
        tracenn.set_num_threads(0)
    tracenn.use_deterministic_algorithms(True, warn_only=True)
    assert tracenn.are_deterministic_algorithms_enabled() and tracenn.is_deterministic_algorithms_warn_only_enabled()
    tracenn.use_deterministic_algorithms(False)
    assert not tracenn.are_deterministic_algorithms_enabled()
