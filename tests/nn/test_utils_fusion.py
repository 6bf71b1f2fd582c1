"""torch.nn.utils: BatchNorm fusion (fuse_conv_bn_*/fuse_linear_bn_*), skip_init and the deprecated
stateless.functional_call."""
import numpy as np
import pytest

import tracenn
from tracenn import nn
from helpers import to_np


def _trained_bn(bn, seed=0):
    """A BatchNorm with non-trivial running statistics and affine parameters."""
    g = tracenn.Generator().manual_seed(seed)
    with tracenn.no_grad():
        bn.running_mean.copy_(tracenn.randn(bn.num_features, generator=g))
        bn.running_var.copy_(tracenn.rand(bn.num_features, generator=g) + 0.5)
        if bn.affine:
            bn.weight.copy_(tracenn.randn(bn.num_features, generator=g))
            bn.bias.copy_(tracenn.randn(bn.num_features, generator=g))
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fused_conv_equals_conv_then_batchnorm(bias, affine):
    tracenn.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, bias=bias).eval()
    bn = _trained_bn(nn.BatchNorm2d(4, affine=affine))
    fused = tracenn.nn.utils.fuse_conv_bn_eval(conv, bn)
    x = tracenn.randn(2, 3, 6, 6)
    np.testing.assert_allclose(to_np(fused(x)), to_np(bn(conv(x))), rtol=1e-5, atol=1e-5)
    assert fused is not conv and isinstance(fused.weight, nn.Parameter) and fused.bias is not None
    assert conv.bias is None if not bias else True  # the original is left alone


def test_fused_conv_transpose_and_linear():
    tracenn.manual_seed(1)
    convt = nn.ConvTranspose2d(3, 4, 3, stride=2).eval()
    bn = _trained_bn(nn.BatchNorm2d(4))
    fused = tracenn.nn.utils.fuse_conv_bn_eval(convt, bn, transpose=True)
    x = tracenn.randn(2, 3, 5, 5)
    np.testing.assert_allclose(to_np(fused(x)), to_np(bn(convt(x))), rtol=1e-5, atol=1e-5)
    lin = nn.Linear(5, 4).eval()
    bn1 = _trained_bn(nn.BatchNorm1d(4))
    fl = tracenn.nn.utils.fuse_linear_bn_eval(lin, bn1)
    x = tracenn.randn(3, 5)
    np.testing.assert_allclose(to_np(fl(x)), to_np(bn1(lin(x))), rtol=1e-5, atol=1e-5)


def test_fusion_errors():
    conv, bn = nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3)
    with pytest.raises(AssertionError, match="Fusion only for eval!"):
        tracenn.nn.utils.fuse_conv_bn_eval(conv, bn)
    with pytest.raises(AssertionError, match="To fuse, linear.out_features == bn.num_features"):
        tracenn.nn.utils.fuse_linear_bn_eval(nn.Linear(2, 3).eval(), nn.BatchNorm1d(4).eval())
    with pytest.raises(AssertionError, match="bn.running_mean and bn.running_var must not be None"):
        tracenn.nn.utils.fuse_conv_bn_eval(conv.eval(), nn.BatchNorm2d(3, track_running_stats=False).eval())


def test_fusion_matches_torch():
    torch = pytest.importorskip("torch")
    tracenn.manual_seed(2)
    conv = nn.Conv2d(3, 4, 3).eval()
    bn = _trained_bn(nn.BatchNorm2d(4))
    tconv, tbn = torch.nn.Conv2d(3, 4, 3).eval(), torch.nn.BatchNorm2d(4).eval()
    tconv.load_state_dict({k: torch.tensor(to_np(v)) for k, v in conv.state_dict().items()})
    tbn.load_state_dict({k: torch.tensor(to_np(v)) for k, v in bn.state_dict().items()})
    ours = tracenn.nn.utils.fuse_conv_bn_eval(conv, bn)
    theirs = torch.nn.utils.fuse_conv_bn_eval(tconv, tbn)
    np.testing.assert_allclose(to_np(ours.weight), theirs.weight.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(to_np(ours.bias), theirs.bias.detach().numpy(), rtol=1e-6, atol=1e-7)


def test_skip_init():
    m = tracenn.nn.utils.skip_init(nn.Linear, 5, 1)
    assert m.weight.shape == (1, 5) and m.weight.device.type == "cpu"
    m = tracenn.nn.utils.skip_init(nn.Conv2d, in_channels=2, out_channels=3, kernel_size=3, dtype=tracenn.float64)
    assert m.weight.dtype == tracenn.float64
    with pytest.raises(RuntimeError, match="Expected a Module; got"):
        tracenn.nn.utils.skip_init(int)

    class NoDevice(nn.Module):
        def __init__(self):
            super().__init__()

    with pytest.raises(RuntimeError, match="Module must support a 'device' arg to skip initialization"):
        tracenn.nn.utils.skip_init(NoDevice)


def test_stateless_functional_call_is_deprecated_and_works():
    lin = nn.Linear(2, 2)
    with pytest.warns(FutureWarning, match="`torch.nn.utils.stateless.functional_call` is deprecated"):
        out = tracenn.nn.utils.stateless.functional_call(
            lin, {"weight": tracenn.eye(2), "bias": tracenn.zeros(2)}, (tracenn.tensor([[1.0, 2.0]]),))
    np.testing.assert_array_equal(to_np(out), [[1.0, 2.0]])
