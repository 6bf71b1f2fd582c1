"""Reading the values of a tensor computed from constants alone while compiling (``int(t)``,
``t.tolist()``, NumPy on it) evaluates it then, as eager mode would: the values cannot change
from call to call. What ``pack_padded_sequence`` with Python lengths does (batch sizes, the sort
permutation and its inverse are such tensors). A value that depends on an input, a parameter or a
random draw still raises the data-dependence error."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import DataDependentError
from tracenn.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from helpers import assert_close


class _Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out, h


def test_packed_sequences_with_python_lengths_compile():
    tracenn.manual_seed(0)
    m = _Encoder()
    cm = tracenn.compile(m)
    x = tracenn.tensor(np.random.default_rng(0).standard_normal((3, 6, 4)).astype(np.float32), requires_grad=True)
    for lengths in ([6, 2, 4], [5, 5, 1]):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (no fallback to eager)
            got = cm(x, lengths)
        want = m(x, lengths)
        for g, w in zip(got, want):
            assert_close(g, w, rtol=1e-5, atol=1e-6)
        gx = tracenn.autograd.grad(got[0].sum() + got[1].sum(), x)[0]
        wx = tracenn.autograd.grad(want[0].sum() + want[1].sum(), x)[0]
        assert_close(gx, wx, rtol=1e-5, atol=1e-6)
        assert (got[0][1, lengths[1]:] == 0).all()  # padding past each length
    assert cm.explain().count("compile ") == 2  # (the lengths are a static argument)


def test_a_branch_on_a_constant_computation_compiles():
    def f(x):
        table = tracenn.tensor([1.0, 2.0, 3.0]) * 2
        if table.sum() > 10:  # 12: known while tracing
            return x + int(table[1])
        return x

    cf = tracenn.compile(f)
    assert cf(tracenn.zeros(2)).tolist() == [4.0, 4.0]
    assert "add" in str(cf.graph) and "sum" not in str(cf.graph)  # (the branch was taken at compile time)


@pytest.mark.parametrize("source", ["input", "random"])
def test_a_branch_on_an_input_or_a_random_draw_still_raises(source):
    def f(x):
        v = x.sum() if source == "input" else tracenn.rand(()) + tracenn.tensor(1.0)
        if v > 0:
            return x * 2
        return x

    with pytest.raises(DataDependentError, match="read a tensor's value"):
        tracenn.compile(f)(tracenn.ones(2))


def test_packed_sequences_with_tensor_lengths_compile_once():
    """Lengths as a tensor input: the GRU runs the batch padded with masks built in-graph, so one
    program serves every lengths (tests/nn/test_packed_compiled.py has the rest)."""
    tracenn.manual_seed(0)
    m = _Encoder()
    cm = tracenn.compile(m)
    x = tracenn.randn(3, 6, 4)
    for lengths in ([6, 2, 4], [1, 6, 3]):
        got, want = cm(x, tracenn.tensor(lengths)), m(x, tracenn.tensor(lengths))
        for g, w in zip(got, want):
            assert_close(g.detach().numpy(), w.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert len(cm._entries) == 1
