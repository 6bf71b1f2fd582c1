"""Gradients of complex tensors follow torch's convention: for a real loss L of z = x + iy,
``z.grad`` is dL/dx + i dL/dy (the conjugate of what ``jax.grad`` returns), eagerly and compiled.

References without torch: central finite differences along the real and imaginary parts, and
known values; with torch installed, the same cases against torch's autograd.
"""
import numpy as np
import pytest

import tracenn
from helpers import central_differences, to_np

_rng = np.random.default_rng(7)
Z = _rng.standard_normal((3, 4)) + 1j * _rng.standard_normal((3, 4))
W = _rng.standard_normal((4,)) + 1j * _rng.standard_normal((4,))
R = _rng.standard_normal((3, 4))

# name: loss(T, z, w, r) -> real scalar; z (3, 4) and w (4,) complex, r (3, 4) real
CASES = {
    "mul_abs": lambda T, z, w, r: (z * z).abs().sum(),
    "mul_broadcast": lambda T, z, w, r: (z * w).abs().sum(),
    "div": lambda T, z, w, r: (z / w).abs().sum(),
    "exp_real": lambda T, z, w, r: T.exp(z * 0.3).real.sum(),
    "log": lambda T, z, w, r: T.log(z).abs().sum(),
    "pow": lambda T, z, w, r: (z ** 2.5).abs().sum(),
    "pow_int": lambda T, z, w, r: (z ** 3).imag.sum(),
    "sum_then_abs": lambda T, z, w, r: (z.sum(0) * w).abs().sum(),
    "matmul": lambda T, z, w, r: (z @ w).abs().sum(),
    "matmul_2d": lambda T, z, w, r: (z.mT @ z).abs().sum(),
    "conj": lambda T, z, w, r: (z.conj() * w).imag.sum(),
    "real_times_complex": lambda T, z, w, r: (r * z * w).abs().sum(),
    "complex_plus_real": lambda T, z, w, r: ((z + r) ** 2).real.sum(),
    "sin_tanh": lambda T, z, w, r: (T.sin(z * 0.5) + T.tanh(z * 0.2)).abs().sum(),
    "sqrt_reciprocal": lambda T, z, w, r: (T.sqrt(z) + T.reciprocal(z)).abs().sum(),
    "view_as_real": lambda T, z, w, r: (T.view_as_real(z * w) ** 2).sum(),
    "angle": lambda T, z, w, r: T.angle(z * w).sum(),
    "mean_abs_sq": lambda T, z, w, r: (z.abs() ** 2).mean(),
    "sgn": lambda T, z, w, r: (T.sgn(z) * w).real.sum(),  # (JAX's sign rule is zero)
    "acosh": lambda T, z, w, r: T.acosh(z * w).imag.sum(),  # (JAX's rule has the wrong sign at Re < 0)
    "cumprod": lambda T, z, w, r: (z * 0.5).cumprod(1).abs().sum(),
    "det_inv": lambda T, z, w, r: (T.linalg.det(z[:, :3]) + T.linalg.inv(z[:, 1:] + 3 * T.eye(3)).sum()).abs(),
}
REAL_GRAD = {"real_times_complex", "complex_plus_real"}  # r gets a (real) gradient too


def _run(T, fn, arrays, wrap):
    z, w, r = (wrap(a) for a in arrays)
    for t in (z, w, r):
        t.requires_grad_(True)
    loss = fn(T, z, w, r)
    loss.backward()
    return float(loss), [None if t.grad is None else _np(t.grad) for t in (z, w, r)]


def _np(t):
    if hasattr(t, "resolve_conj"):
        t = t.resolve_conj()
    return to_np(t)


def _fd(fn, arrays, which, h=1e-6):
    """dL/dRe + i dL/dIm of argument ``which`` by central differences (float64 / complex128)."""
    def loss(args):
        with tracenn.no_grad():
            return float(fn(tracenn, *[tracenn.tensor(a) for a in args]))

    return central_differences(loss, arrays, which, h)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_grad_vs_finite_differences(name):
    fn = CASES[name]
    _, grads = _run(tracenn, fn, (Z, W, R), tracenn.tensor)
    for which in ((0, 1, 2) if name in REAL_GRAD else (0, 1)):
        if grads[which] is None:
            assert name in ("sum_then_abs",) or not np.any(_fd(fn, (Z, W, R), which))
            continue
        np.testing.assert_allclose(grads[which], _fd(fn, (Z, W, R), which), rtol=1e-5, atol=1e-6,
                                   err_msg=f"{name} d/d(arg {which})")
        assert grads[which].dtype == (Z, W, R)[which].dtype


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_grad_matches_eager(name):
    fn = CASES[name]
    want_loss, want = _run(tracenn, fn, (Z, W, R), tracenn.tensor)
    compiled = tracenn.compile(lambda z, w, r: fn(tracenn, z, w, r))
    for _ in range(2):  # the second call runs the cached program
        got_loss, got = _run(tracenn, lambda T, z, w, r: compiled(z, w, r), (Z, W, R), tracenn.tensor)
        assert got_loss == pytest.approx(want_loss, rel=1e-12)
        for g, e in zip(got, want):
            assert (g is None) == (e is None)
            if g is not None:
                np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_torch(name, torch):
    fn = CASES[name]
    got_loss, got = _run(tracenn, fn, (Z, W, R), tracenn.tensor)
    want_loss, want = _run(torch, fn, (Z, W, R), torch.tensor)
    assert got_loss == pytest.approx(want_loss, rel=1e-10)
    for g, e in zip(got, want):
        if e is None or g is None:  # (unused input)
            assert (e is None or not e.any()) and (g is None or not g.any())
            continue
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


def test_the_reported_case():
    z = tracenn.tensor([1 + 2j], requires_grad=True)
    (z * z).abs().sum().backward()
    np.testing.assert_allclose(to_np(z.grad), [2 + 4j])  # d|z|^2 = 2z (torch: tensor([2.+4.j]))


def test_known_values():
    w = tracenn.tensor([0.5 - 1j, 2 + 1j])
    z = tracenn.tensor([1 + 2j, 3 - 1j], requires_grad=True)
    (z * w).real.sum().backward()
    np.testing.assert_allclose(to_np(z.grad), np.conj(to_np(w)))  # d Re(wz) = conj(w)
    z.grad = None
    z.abs().sum().backward()
    zz = to_np(z.detach())
    np.testing.assert_allclose(to_np(z.grad), zz / np.abs(zz), rtol=1e-6)  # torch's sgn(z)


def test_backward_with_complex_gradient():
    w = np.array([0.5 - 1j, 2 + 1j], np.complex64)
    v = np.array([1 - 1j, 2j], np.complex64)
    z = tracenn.tensor([1 + 2j, 3 - 1j], requires_grad=True)
    (z * tracenn.tensor(w)).backward(gradient=tracenn.tensor(v))
    np.testing.assert_allclose(to_np(z.grad), v * np.conj(w), rtol=1e-6)  # torch: grad_out * conj(f')


def test_autograd_grad_and_hooks_see_torch_cotangents():
    z = tracenn.tensor([1 + 2j, 3 - 1j], requires_grad=True)
    sq = z * z
    seen = []
    sq.register_hook(lambda g: seen.append(to_np(g)))
    (gz,) = tracenn.autograd.grad(sq.abs().sum(), z)
    s = to_np(sq.detach())
    np.testing.assert_allclose(seen[0], s / np.abs(s), rtol=1e-6)
    np.testing.assert_allclose(to_np(gz), seen[0] * 2 * np.conj(to_np(z.detach())), rtol=1e-6)


def test_real_input_of_a_complex_op_gets_a_real_gradient():
    re = tracenn.tensor([1.0, 2.0], requires_grad=True)
    im = tracenn.tensor([3.0, -1.0], requires_grad=True)
    w = tracenn.tensor([0.5 - 1j, 2 + 1j])
    (tracenn.complex(re, im) * w).real.sum().backward()
    assert re.grad.dtype == tracenn.float32 and im.grad.dtype == tracenn.float32
    np.testing.assert_allclose(to_np(re.grad), [0.5, 2.0])  # Re(w)
    np.testing.assert_allclose(to_np(im.grad), [1.0, -1.0])  # -Im(w)
    x = tracenn.tensor([1.0, 2.0], requires_grad=True)
    (x.to(tracenn.complex64) * w).imag.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [-1.0, 1.0])  # Im(w)


class _ComplexLinear(tracenn.nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = tracenn.nn.Parameter(tracenn.tensor(W.astype(np.complex64)))

    def forward(self, x):
        return ((x * self.weight).abs() ** 2).sum()


def test_compiled_complex_parameter_over_many_steps():
    """A complex parameter's gradient is torch's in every mode a compiled scalar loss runs in
    (pullback, then value-and-grad once the output is being differentiated)."""
    x = tracenn.tensor((Z[:, :4]).astype(np.complex64))
    eager = _ComplexLinear()
    eager(x).backward()
    want = to_np(eager.weight.grad)
    m = _ComplexLinear()
    step = tracenn.compile(m)
    for _ in range(12):
        m.weight.grad = None
        step(x).backward()
        np.testing.assert_allclose(to_np(m.weight.grad), want, rtol=1e-5)


def test_compiled_complex_output_backward_with_gradient():
    w = tracenn.tensor(W)
    f = tracenn.compile(lambda z: z * w)
    v = (R[0] + 1j * R[1]).astype(np.complex128)
    for _ in range(2):
        z = tracenn.tensor(Z[0], requires_grad=True)
        f(z).backward(gradient=tracenn.tensor(v))
        np.testing.assert_allclose(to_np(z.grad), v * np.conj(W), rtol=1e-12)


def test_implicit_gradient_of_a_complex_output_is_an_error():
    z = tracenn.tensor([1 + 2j], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
        (z * z).sum().backward()


def test_implicit_gradient_error_matches_torch(torch):
    z = torch.tensor([1 + 2j], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
        (z * z).sum().backward()


def test_second_order_gradient():
    """create_graph=True through complex nodes: d/dz of Re<g(z), c> where g = 3|z| z is the
    gradient of sum |z|^3, against finite differences of that closed form."""
    z0 = np.array([1 + 2j, 0.5 - 1j])
    c = np.array([1 - 1j, 2 + 0j])
    z = tracenn.tensor(z0, requires_grad=True)
    (g,) = tracenn.autograd.grad((z * z * z).abs().sum(), z, create_graph=True)
    np.testing.assert_allclose(to_np(g.detach()), 3 * np.abs(z0) * z0, rtol=1e-12)
    (g * tracenn.tensor(c)).real.sum().backward()

    def second(zs):
        return float(np.sum(np.real(3 * np.abs(zs) * zs * c)))
    want = np.zeros(2, complex)
    for i in range(2):
        for unit in (1.0, 1j):
            e = np.zeros(2, complex)
            e[i] = 1e-6 * unit
            want[i] += unit * (second(z0 + e) - second(z0 - e)) / 2e-6
    np.testing.assert_allclose(to_np(z.grad), want, rtol=1e-6)


def test_compiled_training_step_with_a_complex_parameter():
    """loss.backward() and optimizer.step() inside the compiled step (a traced backward: the
    vjp nodes run the same rule as eager) give eager's parameters."""
    x = tracenn.tensor(Z.astype(np.complex64))

    def train(compiled):
        w = tracenn.nn.Parameter(tracenn.tensor(Z[0].astype(np.complex64)))
        opt = tracenn.optim.SGD([w], lr=0.05)

        def step(x):
            opt.zero_grad()
            loss = ((x * w).abs() ** 2).sum() + (x * w).imag.sum()
            loss.backward()
            opt.step()
            return loss
        f = tracenn.compile(step) if compiled else step
        for _ in range(3):
            f(x)
        return to_np(w.detach())

    np.testing.assert_allclose(train(True), train(False), rtol=1e-5)
