"""rms_norm / nn.RMSNorm on bfloat16 and float16 inputs, as torch: normalised in float32 with the
weight, rounded once to the input's dtype, and ``eps=None`` is float32's eps (torch's computation
dtype), not the half dtype's (bfloat16's 2**-7 swamps the mean square of small activations)."""
import ml_dtypes
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn

X = np.array([[0.01, 0.02, -0.03, 0.015], [1.5, -2.0, 0.25, 3.0]], dtype=np.float32)
W = np.array([1.5, 0.7, 1.1, 0.9], dtype=np.float32)
HALF = {"bfloat16": ml_dtypes.bfloat16, "float16": np.float16}


def _reference(x, w, eps, half):
    """float64 maths on the half-rounded inputs, with the weight, rounded once to ``half``."""
    x = x.astype(half).astype(np.float64)
    out = x / np.sqrt((x * x).mean(-1, keepdims=True) + eps)
    if w is not None:
        out = out * w.astype(half).astype(np.float64)
    return out.astype(np.float32).astype(half).astype(np.float32)


@pytest.mark.parametrize("half", ["bfloat16", "float16"])
@pytest.mark.parametrize("eps", [None, 1e-6])
def test_half_input_matches_a_float32_computation(half, eps):
    dt = getattr(tracenn, half)
    out = F.rms_norm(tracenn.tensor(X).to(dt), (4,), tracenn.tensor(W).to(dt), eps=eps)
    assert out.dtype == dt
    want = _reference(X, W, np.finfo(np.float32).eps if eps is None else eps, HALF[half])
    np.testing.assert_array_equal(out.float().numpy(), want)


def test_module_default_eps_on_bfloat16():
    m = nn.RMSNorm(4).to(tracenn.bfloat16)
    with tracenn.no_grad():
        out = m(tracenn.tensor(X[:1]).to(tracenn.bfloat16))
    # mean(x^2) is 4e-4: with bfloat16's eps (0.0078) the output would be about 0.22 of this
    np.testing.assert_array_equal(out.float().numpy(), _reference(X[:1], None, np.finfo(np.float32).eps,
                                                                  ml_dtypes.bfloat16))


def test_output_dtype_is_the_inputs():
    xb, wf = tracenn.tensor(X).to(tracenn.bfloat16), tracenn.tensor(W)
    assert F.rms_norm(xb, (4,), wf).dtype == tracenn.bfloat16  # float32 weight: result still rounded to bf16
    assert F.rms_norm(tracenn.tensor(X), (4,), wf.to(tracenn.bfloat16)).dtype == tracenn.float32
    d = F.rms_norm(tracenn.tensor(np.array([[1e-9, 2e-9]])), (2,))  # float64: float64's eps
    np.testing.assert_allclose(d.numpy(), np.array([[1e-9, 2e-9]]) / np.sqrt(2.5e-18 + np.finfo(np.float64).eps))


def test_gradients_flow_in_half():
    x = tracenn.tensor(X).to(tracenn.bfloat16).requires_grad_()
    w = tracenn.tensor(W).to(tracenn.bfloat16).requires_grad_()
    F.rms_norm(x, (4,), w).float().pow(2).sum().backward()
    assert x.grad.dtype == w.grad.dtype == tracenn.bfloat16
    # d/dw sum((n*w)^2) = 2 w sum_rows(n^2), n the normalised rows
    xd = X.astype(ml_dtypes.bfloat16).astype(np.float64)
    n = xd / np.sqrt((xd * xd).mean(-1, keepdims=True) + np.finfo(np.float32).eps)
    wd = W.astype(ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_allclose(w.grad.float().numpy(), 2 * wd * (n * n).sum(0), rtol=2e-2)


def test_matches_torch_on_half():
    torch = pytest.importorskip("torch")
    for half in ("bfloat16", "float16"):
        for eps in (None, 1e-5):
            got = F.rms_norm(tracenn.tensor(X).to(getattr(tracenn, half)), (4,),
                             tracenn.tensor(W).to(getattr(tracenn, half)), eps=eps)
            want = torch.nn.functional.rms_norm(torch.tensor(X).to(getattr(torch, half)), (4,),
                                                torch.tensor(W).to(getattr(torch, half)), eps=eps)
            np.testing.assert_array_equal(got.float().numpy(), want.float().numpy())
