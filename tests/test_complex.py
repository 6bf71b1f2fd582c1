"""Complex basics: ``real``/``imag`` as writable views, ``view_as_real``/``view_as_complex``,
``complex``, ``polar``, ``angle``, ``is_complex``: values, dtypes, aliasing and torch's errors.
(Gradients: tests/autograd/test_complex_grad.py.)"""
import math

import numpy as np
import pytest

import tracenn
from helpers import to_np

Z = np.array([1 + 2j, 3 - 1j, -0.5 + 0j], np.complex64)


def test_parts_and_dtypes():
    z = tracenn.tensor(Z)
    assert z.real.dtype == tracenn.float32 and z.imag.dtype == tracenn.float32
    np.testing.assert_array_equal(to_np(z.real), Z.real)
    np.testing.assert_array_equal(to_np(tracenn.imag(z)), Z.imag)
    z128 = tracenn.tensor(Z.astype(np.complex128))
    assert tracenn.real(z128).dtype == tracenn.float64
    assert tracenn.view_as_real(z128).dtype == tracenn.float64
    assert tracenn.is_complex(z) and z.is_complex() and not tracenn.is_complex(z.real)


def test_real_of_a_real_tensor_is_itself():
    x = tracenn.tensor([1.0, -2.0])
    assert x.real is x and tracenn.real(x) is x


def test_real_and_imag_are_views():
    z = tracenn.tensor(Z)
    z.real.add_(10)
    z.imag[0] = 7
    np.testing.assert_array_equal(to_np(z), [11 + 7j, 13 - 1j, 9.5 + 0j])
    z.real = tracenn.tensor([0.0, 1.0, 2.0])  # torch's setter copies into the view
    z.imag = 5.0
    np.testing.assert_array_equal(to_np(z), [0 + 5j, 1 + 5j, 2 + 5j])
    r = z.real
    z.mul_(2)  # the view sees its base change
    np.testing.assert_array_equal(to_np(r), [0, 2, 4])
    assert not z.real.is_contiguous() and z.real.stride() == (2,)


def test_view_as_real_and_view_as_complex_alias():
    z = tracenn.tensor(Z)
    v = tracenn.view_as_real(z)
    assert v.shape == (3, 2) and v.stride() == (2, 1)
    v[1, 1] = -9
    assert complex(z[1]) == 3 - 9j
    a = tracenn.tensor([[1.0, 2.0], [3.0, 4.0]])
    c = tracenn.view_as_complex(a)
    np.testing.assert_array_equal(to_np(c), [1 + 2j, 3 + 4j])
    c.mul_(1j)
    np.testing.assert_array_equal(to_np(a), [[-2, 1], [-4, 3]])
    assert tracenn.view_as_real(tracenn.tensor(1 + 2j)).shape == (2,)


def test_writes_through_complex_views_compile():
    def f(z):
        w = z * 1
        w.imag.mul_(2)
        tracenn.view_as_real(w)[..., 0].add_(1)
        return w
    z = tracenn.tensor(Z)
    want = to_np(f(z))
    np.testing.assert_allclose(want, Z.real + 1 + 2j * Z.imag)
    compiled = tracenn.compile(f)
    for _ in range(2):
        np.testing.assert_array_equal(to_np(compiled(z)), want)


def test_complex_polar_angle_values():
    re, im = tracenn.tensor([1.0, 2.0]), tracenn.tensor([[3.0], [-4.0]])
    np.testing.assert_array_equal(to_np(tracenn.complex(re, im)), [[1 + 3j, 2 + 3j], [1 - 4j, 2 - 4j]])
    assert tracenn.complex(re.double(), re.double()).dtype == tracenn.complex128
    p = tracenn.polar(tracenn.tensor([2.0, 1.0]), tracenn.tensor([math.pi / 2, math.pi]))
    np.testing.assert_allclose(to_np(p), [2j, -1], atol=1e-6)
    np.testing.assert_allclose(to_np(tracenn.angle(tracenn.tensor(Z))), np.angle(Z), rtol=1e-6)
    a = tracenn.angle(tracenn.tensor([1, -2, 0]))
    assert a.dtype == tracenn.float32
    np.testing.assert_allclose(to_np(a), [0, math.pi, 0])
    n = to_np(tracenn.tensor([float("nan"), -1.0, 0.0]).angle())
    assert np.isnan(n[0]) and n[1] == np.float32(math.pi) and n[2] == 0


ERRORS = [
    (lambda T: T.tensor([1.0]).imag, RuntimeError, "imag is not implemented for tensors with non-complex dtypes."),
    (lambda T: T.imag(T.tensor([1.0])), RuntimeError, "imag is not implemented for tensors with non-complex"),
    (lambda T: T.view_as_real(T.tensor([1.0])), RuntimeError, "view_as_real is only supported for complex tensors"),
    (lambda T: T.view_as_complex(T.zeros(3, 3)), RuntimeError, "Tensor must have a last dimension of size 2"),
    (lambda T: T.view_as_complex(T.zeros(2, 3).t()), RuntimeError, "Tensor must have a last dimension with stride 1"),
    (lambda T: T.complex(T.ones(2), T.ones(2).double()), RuntimeError,
     "Expected object of scalar type Float but got scalar type Double for second argument"),
    (lambda T: T.complex(T.ones(2).int(), T.ones(2).int()), RuntimeError,
     "Expected both inputs to be Half, Float or Double tensors but got Int and Int"),
    (lambda T: T.polar(T.ones(2), T.ones(2).double()), RuntimeError, "Expected object of scalar type Float"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS)
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call(tracenn)


@pytest.mark.parametrize("call,exc,match", ERRORS)
def test_errors_match_torch(call, exc, match, torch):
    with pytest.raises(exc, match=match):
        call(torch)


def test_values_match_torch(torch):
    for T in (tracenn, torch):
        z = T.tensor(Z)
        z.real.add_(1)
        T.view_as_real(z)[2, 1] = 4.0
        z.imag[0] = -3
        out = [z, T.angle(z), T.polar(z.real, z.imag), T.complex(z.imag, z.real)]
        if T is torch:
            want = [to_np(o) for o in out]
        else:
            got = [to_np(o) for o in out]
    for g, w in zip(got, want):
        assert g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-6)
