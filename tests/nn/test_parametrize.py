"""torch.nn.utils.parametrize, parametrizations.weight_norm / spectral_norm and the old
nn.utils.weight_norm: values, state dicts, errors, gradients, eager and compiled."""
import copy
import pickle

import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn import nn
from tracenn.nn.utils import parametrize, parametrizations
from helpers import to_np


class Symmetric(nn.Module):
    def forward(self, x):
        return x.triu() + x.triu(1).transpose(-1, -2)

    def right_inverse(self, a):
        return a.triu()


class Scale(nn.Module):
    def forward(self, x):
        return 2 * x


def _compiled_step_equals_eager(make, out_features, steps, atol):
    """Train two copies from ``make()`` (module, optimizer) on one batch, eagerly and as one compiled
    step; the losses and every state_dict entry (parameters and buffers) agree."""
    (me, oe), (mc, oc) = make(), make()
    x, y = tracenn.randn(6, 4), tracenn.randn(6, out_features)

    def body(m, o):
        o.zero_grad()
        loss = F.mse_loss(m(x), y)
        loss.backward()
        o.step()
        return loss

    step = tracenn.compile(lambda: body(mc, oc))
    for _ in range(steps):
        np.testing.assert_allclose(to_np(step()), to_np(body(me, oe)), rtol=1e-5)
    for (k, a), b in zip(me.state_dict().items(), mc.state_dict().values()):
        np.testing.assert_allclose(to_np(b), to_np(a), rtol=1e-5, atol=atol, err_msg=k)
    assert not step._last.eager


def test_register_parametrization_makes_a_computed_attribute():
    tracenn.manual_seed(0)
    m = nn.Linear(3, 3)
    weight = m.weight
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and parametrize.type_before_parametrizations(m) is nn.Linear
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert m.parametrizations.weight.original is weight  # the Parameter object is kept (optimizers hold it)
    w = to_np(m.weight)
    np.testing.assert_array_equal(w, w.T)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    np.testing.assert_array_equal(to_np(m.parametrizations.weight.original), np.triu(w))
    # assignment stores right_inverse(value)
    target = tracenn.tensor([[1.0, 2.0, 3.0], [2.0, 4.0, 5.0], [3.0, 5.0, 6.0]])
    m.weight = target
    np.testing.assert_array_equal(to_np(m.weight), to_np(target))
    # a second parametrization applies after the first
    parametrize.register_parametrization(m, "weight", Scale())
    np.testing.assert_array_equal(to_np(m.weight), 2 * to_np(target))
    # gradients reach the stored original
    x = tracenn.randn(2, 3)
    m(x).sum().backward()
    assert weight.grad is not None and weight.grad.shape == (3, 3)


def test_remove_parametrizations_restores_the_module():
    m = nn.Linear(3, 3)
    parametrize.register_parametrization(m, "weight", Symmetric())
    value = to_np(m.weight)
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and not hasattr(m, "parametrizations")
    assert isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(to_np(m.weight), value)
    parametrize.register_parametrization(m, "weight", Symmetric())
    stored = to_np(m.parametrizations.weight.original)
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_array_equal(to_np(m.weight), stored)


def test_errors():
    m = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="does not have a parameter, a buffer, or a parametrized element with name 'w'"):
        parametrize.register_parametrization(m, "w", Symmetric())

    class Flatten(nn.Module):
        def forward(self, x):
            return x.flatten()

    with pytest.raises(ValueError, match="may not change the shape of the tensor, unless `unsafe` flag is enabled"):
        parametrize.register_parametrization(m, "weight", Flatten())
    assert type(m) is nn.Linear  # nothing half-done
    with pytest.raises(ValueError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(m, "weight")
    parametrize.register_parametrization(m, "weight", Scale())
    with pytest.raises(RuntimeError, match="parametrization Scale does not implement right_inverse."):
        m.weight = tracenn.zeros(3, 3)
    with pytest.raises(RuntimeError, match="Serialization of parametrized modules is only supported through state_dict"):
        pickle.dumps(m)
    m2 = copy.deepcopy(m)  # deepcopy works, and the copy is independent
    np.testing.assert_array_equal(to_np(m2.weight), to_np(m.weight))
    assert m2.parametrizations.weight.original is not m.parametrizations.weight.original


def test_cached_computes_once():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(1)
            return x * 1.0

    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Counting())
    calls.clear()
    with parametrize.cached():
        a, b = m.weight, m.weight
    assert len(calls) == 1 and a is b
    m.weight, m.weight
    assert len(calls) == 3


def test_weight_norm_matches_torch_and_loads_old_state_dicts():
    torch = pytest.importorskip("torch")
    tracenn.manual_seed(0)
    for dim in (0, 1, None):
        m = nn.Conv2d(3, 4, 3)
        t = torch.nn.Conv2d(3, 4, 3)
        t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
        parametrizations.weight_norm(m, dim=dim)
        torch.nn.utils.parametrizations.weight_norm(t, dim=dim)
        assert list(m.state_dict()) == list(t.state_dict())
        for k, v in t.state_dict().items():
            np.testing.assert_allclose(to_np(m.state_dict()[k]), v.detach().numpy(), rtol=1e-6, err_msg=k)
        np.testing.assert_allclose(to_np(m.weight), t.weight.detach().numpy(), rtol=1e-5, atol=1e-7)
    # an old-style state dict (weight_g, weight_v) loads into the parametrized module
    old = nn.Linear(3, 2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tracenn.nn.utils.weight_norm(old)
    new = parametrizations.weight_norm(nn.Linear(3, 2))
    new.load_state_dict(old.state_dict())
    np.testing.assert_allclose(to_np(new.weight), to_np(old.weight), rtol=1e-6)


def test_weight_norm_gradients_equal_torch():
    torch = pytest.importorskip("torch")
    tracenn.manual_seed(1)
    m = nn.Linear(4, 3)
    t = torch.nn.Linear(4, 3)
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    parametrizations.weight_norm(m)
    torch.nn.utils.parametrizations.weight_norm(t)
    x = tracenn.randn(5, 4)
    (m(x) ** 2).sum().backward()
    (t(torch.tensor(to_np(x))) ** 2).sum().backward()
    for (name, p), tp in zip(m.named_parameters(), t.parameters()):
        np.testing.assert_allclose(to_np(p.grad), tp.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_spectral_norm_normalises_the_largest_singular_value():
    tracenn.manual_seed(2)
    m = parametrizations.spectral_norm(nn.Linear(6, 5))
    assert sorted(m.state_dict()) == ["bias", "parametrizations.weight.0._u", "parametrizations.weight.0._v",
                                      "parametrizations.weight.original"]
    for _ in range(30):  # power iterations happen on each training-mode read
        m.weight
    m.eval()
    s = np.linalg.svd(to_np(m.weight), compute_uv=False)
    assert abs(s[0] - 1.0) < 1e-4
    u = to_np(m.parametrizations.weight[0]._u).copy()
    m.weight  # eval: no iteration
    np.testing.assert_array_equal(to_np(m.parametrizations.weight[0]._u), u)
    convt = parametrizations.spectral_norm(nn.ConvTranspose2d(3, 4, 2))
    assert convt.parametrizations.weight[0].dim == 1
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'w'"):
        parametrizations.spectral_norm(nn.Linear(2, 2), name="w")
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive"):
        parametrizations.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "old_weight_norm", "old_spectral_norm"])
def test_compiled_training_step_equals_eager(kind):
    import warnings

    def make():
        tracenn.manual_seed(3)
        m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            if kind.startswith("old_"):
                getattr(tracenn.nn.utils, kind[4:])(m[0])
            else:
                getattr(parametrizations, kind)(m[0])
        return m, tracenn.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)

    _compiled_step_equals_eager(make, 2, 4, 1e-6)  # (spectral_norm's _u, _v too)


def test_old_weight_norm():
    import warnings
    m = nn.Linear(3, 2)
    w = to_np(m.weight).copy()
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated in favor of"):
        tracenn.nn.utils.weight_norm(m)
    assert type(m).__name__ == "Linear" and list(m.state_dict()) == ["bias", "weight_g", "weight_v"]
    np.testing.assert_allclose(to_np(m.weight), w, rtol=1e-6)
    np.testing.assert_allclose(to_np(m.weight_g), np.linalg.norm(w, axis=1, keepdims=True), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
            tracenn.nn.utils.weight_norm(m)
    with tracenn.no_grad():
        m.weight_g.mul_(2.0)
    np.testing.assert_allclose(to_np(m.weight), 2 * w, rtol=1e-6)  # always current
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        np.testing.assert_allclose(to_np(clone.weight), 2 * w, rtol=1e-6)
    tracenn.nn.utils.remove_weight_norm(m)
    assert type(m) is nn.Linear and list(m.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(to_np(m.weight), 2 * w, rtol=1e-6)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in Linear"):
        tracenn.nn.utils.remove_weight_norm(m)


def test_old_weight_norm_matches_torch():
    torch = pytest.importorskip("torch")
    import warnings
    m = nn.Conv1d(3, 4, 3)
    t = torch.nn.Conv1d(3, 4, 3)
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tracenn.nn.utils.weight_norm(m, dim=1)
        torch.nn.utils.weight_norm(t, dim=1)
    assert list(m.state_dict()) == list(t.state_dict())
    for k, v in t.state_dict().items():
        np.testing.assert_allclose(to_np(m.state_dict()[k]), v.detach().numpy(), rtol=1e-6, err_msg=k)


def test_old_spectral_norm_matches_torch():
    torch = pytest.importorskip("torch")
    tracenn.manual_seed(4)
    m = nn.Conv2d(3, 4, 3)
    t = torch.nn.Conv2d(3, 4, 3)
    t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
    tracenn.nn.utils.spectral_norm(m, n_power_iterations=2)
    torch.nn.utils.spectral_norm(t, n_power_iterations=2)
    assert list(m.state_dict()) == list(t.state_dict()) == ["bias", "weight_orig", "weight_u", "weight_v"]
    with tracenn.no_grad():  # torch's random start vectors
        m.weight_u.copy_(tracenn.tensor(t.weight_u.numpy()))
        m.weight_v.copy_(tracenn.tensor(t.weight_v.numpy()))
    x = tracenn.randn(2, 3, 5, 5)
    tx = torch.tensor(to_np(x))
    for _ in range(3):  # training-mode forwards: one power iteration each
        np.testing.assert_allclose(to_np(m(x)), t(tx).detach().numpy(), rtol=1e-4, atol=1e-5)
    for k in ("weight_u", "weight_v"):
        np.testing.assert_allclose(to_np(getattr(m, k)), getattr(t, k).numpy(), rtol=1e-5, atol=1e-6)
    m.eval(), t.eval()
    u = to_np(m.weight_u).copy()
    np.testing.assert_allclose(to_np(m(x)), t(tx).detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(to_np(m.weight_u), u)  # eval: no iteration
    tracenn.nn.utils.remove_spectral_norm(m)
    torch.nn.utils.remove_spectral_norm(t)
    assert type(m) is nn.Conv2d and list(m.state_dict()) == list(t.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(to_np(m.weight), t.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_old_spectral_norm_errors_and_copies():
    m = tracenn.nn.utils.spectral_norm(nn.Linear(3, 2))
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
        tracenn.nn.utils.spectral_norm(m)
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive"):
        tracenn.nn.utils.spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in Linear"):
        tracenn.nn.utils.remove_spectral_norm(nn.Linear(3, 2))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        tracenn.nn.utils.weight_norm(m, name="bias", dim=None)  # two computed attributes on one module
    m.eval()
    w, b = to_np(m.weight), to_np(m.bias)
    for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
        np.testing.assert_allclose(to_np(clone.weight), w, rtol=1e-6)
        np.testing.assert_allclose(to_np(clone.bias), b, rtol=1e-6)
    tracenn.nn.utils.remove_spectral_norm(m)
    assert type(m).__name__ == "Linear" and type(m) is not nn.Linear  # bias is still weight-normed
    tracenn.nn.utils.remove_weight_norm(m, "bias")
    assert type(m) is nn.Linear


@pytest.mark.parametrize("shape,omap,triv", [((5, 5), None, True), ((6, 3), None, True), ((3, 6), "cayley", True),
                                             ((6, 3), "householder", False), ((4, 4), "matrix_exp", False),
                                             ((3, 6), "householder", True)])
def test_orthogonal_stays_orthogonal_through_training(shape, omap, triv):
    tracenn.manual_seed(0)
    m = parametrizations.orthogonal(nn.Linear(shape[1], shape[0]), orthogonal_map=omap, use_trivialization=triv)
    assert ("parametrizations.weight.0.base" in m.state_dict()) == triv
    opt = tracenn.optim.SGD(m.parameters(), lr=0.1)
    x, y = tracenn.randn(8, shape[1]), tracenn.randn(8, shape[0])
    before = to_np(m.weight).copy()
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(m(x), y).backward()
        opt.step()
    w = to_np(m.weight)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, np.eye(min(shape)), atol=2e-6)
    assert np.abs(w - before).max() > 1e-3, "training moved the weight"


def test_orthogonal_matches_torch_and_errors():
    torch = pytest.importorskip("torch")
    for shape, triv in (((5, 5), True), ((6, 3), False), ((3, 6), False)):
        m = nn.Linear(shape[1], shape[0])
        t = torch.nn.Linear(shape[1], shape[0])
        t.load_state_dict({k: torch.tensor(to_np(v)) for k, v in m.state_dict().items()})
        parametrizations.orthogonal(m, use_trivialization=triv)
        torch.nn.utils.parametrizations.orthogonal(t, use_trivialization=triv)
        assert list(m.state_dict()) == list(t.state_dict())
        for k, v in t.state_dict().items():
            np.testing.assert_allclose(to_np(m.state_dict()[k]), v.detach().numpy(), atol=1e-5, err_msg=k)
        np.testing.assert_allclose(to_np(m.weight), t.weight.detach().numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."):
        parametrizations.orthogonal(nn.Linear(2, 2), name="bias")
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder"'):
        parametrizations.orthogonal(nn.Linear(2, 2), orthogonal_map="qr")
    m = parametrizations.orthogonal(nn.Linear(3, 3), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="It is not possible to assign to the matrix exponential"):
        m.weight = tracenn.eye(3)
    m = parametrizations.orthogonal(nn.Linear(3, 3))
    q = to_np(parametrizations._make_orthogonal(tracenn.randn(3, 3)))
    m.weight = tracenn.tensor(q)  # assignment: the new base
    np.testing.assert_allclose(to_np(m.weight), q, atol=1e-5)


def test_orthogonal_compiled_step_equals_eager():
    def make():
        tracenn.manual_seed(5)
        m = parametrizations.orthogonal(nn.Linear(4, 4))
        return m, tracenn.optim.Adam(m.parameters(), lr=0.01)

    _compiled_step_equals_eager(make, 4, 3, 1e-5)
