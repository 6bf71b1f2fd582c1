"""torch's add-and-multiply ops ignore ``input`` when ``beta=0`` ("nan and inf in it will not be
propagated"). Hugging Face's GPT-2 (``_upcast_and_reordered_attn``) relies on it:
``torch.baddbmm(torch.empty(bsz * heads, q, k), q, k, beta=0, alpha=scale)``, where the empty
buffer may hold anything."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

NAN, INF = float("nan"), float("inf")


def _cases(lib):
    ones = lib.ones
    return {
        "addmm": lambda i: lib.addmm(i, ones(2, 3), ones(3, 2), beta=0, alpha=2),
        "baddbmm": lambda i: lib.baddbmm(i, ones(2, 2, 3), ones(2, 3, 2), beta=0, alpha=0.5),
        "addmv": lambda i: lib.addmv(i[0], ones(2, 3), ones(3), beta=0),
        "addbmm": lambda i: lib.addbmm(i, ones(2, 2, 3), ones(2, 3, 2), beta=0),
        "addr": lambda i: lib.addr(i, ones(2), ones(2), beta=0, alpha=3),
    }


WANT = {"addmm": [[6.0, 6.0], [6.0, 6.0]], "baddbmm": [[[1.5, 1.5], [1.5, 1.5]]] * 2, "addmv": [3.0, 3.0],
        "addbmm": [[6.0, 6.0], [6.0, 6.0]], "addr": [[3.0, 3.0], [3.0, 3.0]]}


@pytest.mark.parametrize("op", sorted(WANT))
def test_beta_zero_does_not_read_nan_or_inf_and_gives_input_a_zero_gradient(op):
    inp = tracenn.tensor([[NAN, INF], [-INF, 1.0]], requires_grad=True)
    out = _cases(tracenn)[op](inp)
    np.testing.assert_array_equal(out.detach().numpy(), np.broadcast_to(WANT[op], out.shape))
    out.sum().backward()
    np.testing.assert_array_equal(inp.grad.numpy(), np.zeros((2, 2)))


def test_baddbmm_beta_zero_compiled_and_broadcasting():
    fn = tracenn.compile(lambda buf, q, k: tracenn.baddbmm(buf, q, k, beta=0, alpha=0.5))
    buf = tracenn.full((2, 2, 2), NAN)
    out = fn(buf, tracenn.ones(2, 2, 3), tracenn.ones(2, 3, 2))
    np.testing.assert_array_equal(out.numpy(), np.full((2, 2, 2), 1.5))
    small = tracenn.baddbmm(tracenn.full((1, 2), NAN), tracenn.ones(4, 2, 3), tracenn.ones(4, 3, 2), beta=0)
    assert tuple(small.shape) == (4, 2, 2) and not np.isnan(small.numpy()).any()


def test_against_torch():
    torch = pytest.importorskip("torch")
    for op in sorted(WANT):
        got = _cases(tracenn)[op](tracenn.tensor([[NAN, INF], [-INF, 1.0]]))
        want = _cases(torch)[op](torch.tensor([[NAN, INF], [-INF, 1.0]]))
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=op)
