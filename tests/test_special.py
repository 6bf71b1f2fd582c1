"""tracenn.special: values against NumPy-free known values and PyTorch, gradients against PyTorch,
compiled equal to eager."""
import numpy as np
import pytest

import tracenn
from tracenn import special as S
from helpers import to_np

X = np.array([0.1, 0.5, 1.5, 3.0], np.float32)
P = np.array([0.05, 0.3, 0.5, 0.9], np.float32)

CASES = {  # name: (tracenn call, torch call, input)
    "expit": (S.expit, "expit", X), "logit": (S.logit, "logit", P),
    "logit_eps": (lambda x: S.logit(x, eps=0.1), lambda t, x: t.special.logit(x, eps=0.1), np.array([0.01, 0.5, 0.99], np.float32)),
    "erf": (S.erf, "erf", X), "erfc": (S.erfc, "erfc", X), "erfcx": (S.erfcx, "erfcx", np.array([0.1, 2.0, 10.0, 30.0], np.float32)),
    "erfinv": (S.erfinv, "erfinv", P), "exp2": (S.exp2, "exp2", X), "expm1": (S.expm1, "expm1", X),
    "log1p": (S.log1p, "log1p", X), "gammaln": (S.gammaln, "gammaln", X), "digamma": (S.digamma, "digamma", X),
    "polygamma1": (lambda x: S.polygamma(1, x), lambda t, x: t.special.polygamma(1, x), X),
    "multigammaln": (lambda x: S.multigammaln(x, 3), lambda t, x: t.special.multigammaln(x, 3), X + 2),
    "i0": (S.i0, "i0", X), "i0e": (S.i0e, "i0e", X), "i1": (S.i1, "i1", X), "i1e": (S.i1e, "i1e", X),
    "ndtr": (S.ndtr, "ndtr", X - 1), "ndtri": (S.ndtri, "ndtri", P), "log_ndtr": (S.log_ndtr, "log_ndtr", X - 2),
    "sinc": (S.sinc, "sinc", X), "entr": (S.entr, "entr", np.array([0.0, 0.5, 2.0], np.float32)),
    "xlog1py": (lambda x: S.xlog1py(x, x * 2), lambda t, x: t.special.xlog1py(x, x * 2), X),
    "zeta": (lambda x: S.zeta(x + 1.5, 2.0), lambda t, x: t.special.zeta(x + 1.5, t.tensor(2.0)), X),
    "gammainc": (lambda x: S.gammainc(x, x + 0.5), lambda t, x: t.special.gammainc(x, x + 0.5), X),
}
GRADLESS = {"zeta", "gammainc", "i1e"}  # (torch or JAX has no derivative in the variable used)


@pytest.mark.parametrize("name", list(CASES))
def test_values(name):
    fn, tname, x = CASES[name]
    out = fn(tracenn.tensor(x))
    np.testing.assert_allclose(to_np(tracenn.compile(lambda a: fn(a))(tracenn.tensor(x))), to_np(out), rtol=1e-5)
    torch = pytest.importorskip("torch")
    tfn = (lambda t, a: getattr(t.special, tname)(a)) if isinstance(tname, str) else tname
    np.testing.assert_allclose(to_np(out), tfn(torch, torch.tensor(x)).numpy(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("name", [n for n in CASES if n not in GRADLESS])
def test_gradients(name):
    torch = pytest.importorskip("torch")
    fn, tname, x = CASES[name]
    a = tracenn.tensor(x, requires_grad=True)
    fn(a).sum().backward()
    ta = torch.tensor(x, requires_grad=True)
    tfn = (lambda t, v: getattr(t.special, tname)(v)) if isinstance(tname, str) else tname
    tfn(torch, ta).sum().backward()
    np.testing.assert_allclose(to_np(a.grad), ta.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_known_values_and_integer_inputs():
    np.testing.assert_allclose(to_np(S.ndtr(tracenn.tensor([0.0]))), [0.5])
    assert S.expit(tracenn.tensor([0, 1])).dtype == tracenn.float32  # integers: the default float dtype
    np.testing.assert_allclose(to_np(S.entr(tracenn.tensor([-1.0, 0.0]))), [-np.inf, 0.0])
    with pytest.raises(RuntimeError, match="polygamma"):
        S.polygamma(-1, tracenn.tensor([1.0]))
