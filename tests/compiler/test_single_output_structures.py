"""A compiled call whose one tensor output sits inside a structure (``(logits, None)``, ``(y,)``,
``[y]``, ``{"logits": y}``) returns that structure, as eager does: the lean one-input calls
(runtime/fastcall.py) return a bare tensor and must not be used for them."""
import numpy as np
import pytest

import tracenn
from tracenn import nn


class Wrapped(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.lin = nn.Linear(3, 2)

    def forward(self, x, targets=None):
        y = self.lin(x)
        if self.kind == "pair":  # nanoGPT's forward without targets: (logits, None)
            return y, None
        if self.kind == "tuple":
            return (y,)
        if self.kind == "list":
            return [y]
        return {"logits": y}


def _same_structure(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        a, b = list(a.values()), list(b.values())
    assert len(a) == len(b)
    for u, v in zip(a, b):
        if u is None:
            assert v is None
        else:
            np.testing.assert_allclose(u.detach().numpy(), v.detach().numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["pair", "tuple", "list", "dict"])
@pytest.mark.parametrize("grad", [False, True])
def test_one_output_in_a_structure_keeps_the_structure(kind, grad):
    tracenn.manual_seed(0)
    m = Wrapped(kind)
    cm = tracenn.compile(m)
    x = tracenn.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    with tracenn.set_grad_enabled(grad):
        want = m(x)
        for _ in range(3):  # the first call builds the program, later ones take the cached call
            got = cm(x)
            _same_structure(want, got)
    if grad:
        out = got["logits"] if kind == "dict" else got[0]
        out.sum().backward()
        np.testing.assert_allclose(m.lin.bias.grad.numpy(), [2.0, 2.0])  # d(sum)/d(bias): 2 rows


def test_bare_tensor_output_stays_a_tensor():
    m = nn.Linear(3, 2)
    cm = tracenn.compile(m)
    x = tracenn.ones(1, 3)
    with tracenn.no_grad():
        for _ in range(2):
            assert isinstance(cm(x), tracenn.Tensor)
