"""tracenn.jit (what TorchScript-annotated model code calls) and profiler.record_function."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from helpers import to_np


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    @tracenn.jit.ignore
    def debug(self):
        return "ignored"

    @tracenn.jit.export
    def scaled(self, x):
        return self.lin(x) * 2

    def forward(self, x):
        if tracenn.jit.is_scripting() or tracenn.jit.is_tracing():
            return x
        with tracenn.profiler.record_function("block"):
            return tracenn.jit.annotate(tracenn.Tensor, self.lin(x))


def test_annotated_model_code_runs_eager_and_compiled():
    m = Block()
    x = tracenn.randn(2, 3)
    ref = to_np(m.lin(x))
    np.testing.assert_allclose(to_np(m(x)), ref, rtol=1e-6)
    np.testing.assert_allclose(to_np(tracenn.compile(m)(x)), ref, rtol=1e-6)
    assert m.debug() == "ignored"
    with pytest.warns(UserWarning, match="tracenn.jit.script returns its argument unchanged"):
        tracenn.jit._NOTED[0] = False
        assert tracenn.jit.script(m) is m
    traced = tracenn.jit.trace(m, x)
    np.testing.assert_allclose(to_np(traced(x)), ref, rtol=1e-6)
    assert traced._entries, "trace ran the example once"
    with pytest.raises(NotImplementedError, match="tracenn.jit.save: tracenn has no TorchScript archives"):
        tracenn.jit.save(m, "m.pt")


def test_record_function_as_context_and_decorator():
    from tracenn.autograd.profiler import record_function

    @record_function("double")
    def double(x):
        return x * 2

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with record_function("outer"):
            assert to_np(double(tracenn.tensor([1.0]))).tolist() == [2.0]
