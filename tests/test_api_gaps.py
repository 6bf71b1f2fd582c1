"""Small torch API names real scripts use: ``amp.custom_fwd``/``custom_bwd``/``is_autocast_available``,
``func.linearize``/``functionalize``, ``testing.make_tensor``/``assert_allclose``, conv weight memory
formats, ``nn.init``'s deprecated aliases, ``utils.checkpoint``'s selective-checkpoint API,
``utils.swap_tensors``, ``jit.freeze``/``fork``/..., ``autograd.set_multithreading_enabled``.
Known values and NumPy first; torch comparisons where torch is installed."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn


def _np(t):
    return np.asarray(t.detach().float().numpy())


# ---- amp.custom_fwd / custom_bwd / is_autocast_available ----------------------------------------

def _matmul_function(ns, cast_inputs, seen):
    class MatMul(ns.autograd.Function):
        @staticmethod
        @ns.amp.custom_fwd(device_type="cpu", cast_inputs=cast_inputs)
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            seen.append(("fwd", str(a.dtype).split(".")[-1], ns.is_autocast_enabled("cpu")))
            return a @ b

        @staticmethod
        @ns.amp.custom_bwd(device_type="cpu")
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            seen.append(("bwd", str((g @ b.t()).dtype).split(".")[-1], ns.is_autocast_enabled("cpu")))
            return g @ b.t(), a.t() @ g
    return MatMul


@pytest.mark.parametrize("cast_inputs", [None, "float32"])
def test_custom_fwd_bwd_autocast_state(cast_inputs):
    seen = []
    F = _matmul_function(tracenn, None if cast_inputs is None else tracenn.float32, seen)
    a = tracenn.randn(2, 3, dtype=tracenn.bfloat16, requires_grad=True)
    b = tracenn.randn(3, 2, requires_grad=True)
    with tracenn.autocast("cpu"):
        y = F.apply(a, b)
    y.float().sum().backward()
    if cast_inputs is None:   # forward under autocast (bf16 matmul), backward too
        assert y.dtype == tracenn.bfloat16
        assert seen == [("fwd", "bfloat16", True), ("bwd", "bfloat16", True)]
    else:                     # inputs cast to float32, forward and backward with autocast off
        assert y.dtype == tracenn.float32
        assert seen == [("fwd", "float32", False), ("bwd", "float32", False)]
    assert a.grad.dtype == tracenn.bfloat16 and b.grad.dtype == tracenn.float32
    seen.clear()
    F.apply(a, b.bfloat16())   # outside a region: custom_fwd changes nothing (no cast)
    assert seen == [("fwd", "bfloat16", False)]


@pytest.mark.parametrize("cast_inputs", [None, "float32"])
def test_custom_fwd_bwd_match_torch(cast_inputs):
    torch = pytest.importorskip("torch")
    got, want = [], []
    F = _matmul_function(tracenn, None if cast_inputs is None else tracenn.float32, got)
    T = _matmul_function(torch, None if cast_inputs is None else torch.float32, want)
    an, bn = np.random.RandomState(0).randn(2, 3), np.random.RandomState(1).randn(3, 2)
    a, b = (tracenn.tensor(an.astype(np.float32), requires_grad=True),
            tracenn.tensor(bn.astype(np.float32), requires_grad=True))
    ta, tb = torch.tensor(an, dtype=torch.float32, requires_grad=True), torch.tensor(bn, dtype=torch.float32,
                                                                                     requires_grad=True)
    with tracenn.autocast("cpu"):
        y = F.apply(a, b)
    with torch.autocast("cpu"):
        ty = T.apply(ta, tb)
    y.float().square().sum().backward()
    ty.float().square().sum().backward()
    assert got == want
    np.testing.assert_allclose(_np(y), ty.detach().float().numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(a.grad), ta.grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(_np(b.grad), tb.grad.numpy(), rtol=1e-6)


def test_custom_fwd_in_a_compiled_training_step():
    seen = []
    F = _matmul_function(tracenn, tracenn.float32, seen)

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(tracenn.randn(3, 2))

        def forward(self, x):
            with tracenn.autocast("cpu"):
                return F.apply(x.bfloat16(), self.w)    # F casts to float32 and runs with autocast off

    m, x = M(), tracenn.randn(4, 3)

    def step(x):
        loss = m(x).float().square().sum()
        loss.backward()
        return loss
    eager = step(x)
    g_eager, m.w.grad = m.w.grad.clone(), None
    compiled = tracenn.compile(step)(x)
    assert seen[:2] == [("fwd", "float32", False), ("bwd", "float32", False)]
    np.testing.assert_allclose(compiled.item(), eager.item(), rtol=1e-6)
    np.testing.assert_allclose(_np(m.w.grad), _np(g_eager), rtol=1e-5)


def test_custom_fwd_errors_and_cuda_amp_spellings():
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        tracenn.amp.custom_fwd(device_type=1)
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        tracenn.amp.custom_bwd(lambda ctx, g: g, device_type=None)
    with pytest.raises(TypeError, match="device_type"):
        tracenn.amp.custom_fwd(lambda ctx, x: x)
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.custom_fwd\(args...\)` is deprecated. Please use "
                                           r"`torch.amp.custom_fwd\(args..., device_type='cuda'\)"):
        dec = tracenn.cuda.amp.custom_fwd(cast_inputs=tracenn.float32)
    assert callable(dec)
    with pytest.warns(FutureWarning, match=r"torch.cuda.amp.custom_bwd\(args...\)` is deprecated"):
        tracenn.cuda.amp.custom_bwd(lambda ctx, g: g)
    assert not hasattr(tracenn.cpu.amp, "custom_fwd")   # as torch.cpu.amp


def test_is_autocast_available():
    assert tracenn.amp.is_autocast_available("cpu") and tracenn.amp.is_autocast_available("cuda:0")
    assert not tracenn.amp.is_autocast_available("meta")
    with pytest.raises(RuntimeError, match="device type at start of device string: foo"):
        tracenn.amp.is_autocast_available("foo")
