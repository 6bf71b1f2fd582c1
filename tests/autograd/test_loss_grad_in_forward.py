"""A reduced loss (cross_entropy, nll_loss, mse_loss, binary_cross_entropy(_with_logits),
smooth_l1_loss, huber_loss in their one-primitive forms) whose input needs a gradient computes that
gradient in its forward's own program (``OpDef.with_grad``), and ``loss.backward()`` then runs no
program for the loss: the gradients for a cotangent of 1 are handed on as they are, any other
cotangent scales them.

References without torch: the gradients' formulas in NumPy (``(softmax(x) - one_hot(y)) * g / n``
and the like); with torch installed, torch's autograd on the same values.
"""
import numpy as np
import pytest

import tracenn
import tracenn.nn.functional as F
from tracenn.ops import OPS
from tracenn.ops.registry import OpDef
from helpers import to_np

_rng = np.random.default_rng(3)
X = _rng.standard_normal((8, 5)).astype(np.float32)
Y = np.array([0, 1, 2, 3, 4, 0, 1, 2])


def _reference(x, y, *, reduction="mean", ignore_index=-100, g=1.0):
    e = np.exp(x - x.max(1, keepdims=True))
    d = e / e.sum(1, keepdims=True) - np.eye(x.shape[1])[np.where(y == ignore_index, 0, y)]
    keep = (y != ignore_index)[:, None]
    d = np.where(keep, d, 0)
    return d * g / (keep.sum() if reduction == "mean" else 1)


@pytest.fixture
def no_backward_kernel(monkeypatch):
    """Make the losses' own backward programs unreachable: a test passes only if backward() takes
    the gradients the forward computed."""
    real = OpDef.backward_kernel

    def refuse(op, key, needs):
        assert op.name not in ("cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits",
                               "smooth_l1_loss", "huber_loss", "binary_cross_entropy"), \
            f"{op.name}'s backward kernel ran"
        return real(op, key, needs)
    monkeypatch.setattr(OpDef, "backward_kernel", refuse)  # (OpDef has slots: patch the class)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_backward_of_a_loss_runs_no_program_of_its_own(no_backward_kernel, reduction):
    x = tracenn.tensor(X, requires_grad=True)
    loss = F.cross_entropy(x, tracenn.tensor(Y), reduction=reduction)
    assert loss.grad_fn.unit is not None
    loss.backward()
    np.testing.assert_allclose(to_np(x.grad), _reference(X, Y, reduction=reduction), rtol=1e-5, atol=1e-7)
    assert loss.grad_fn.unit is None  # freed with the graph's other saved values


def test_gradient_equals_the_ops_own_backward():
    x = tracenn.tensor(X, requires_grad=True)
    y = tracenn.tensor(Y)
    F.cross_entropy(x, y).backward()
    fused = to_np(x.grad)
    op = OPS["cross_entropy"]
    (own,) = [c for c in op.backward_kernel((1, -100, "mean"), (True, False))(
        np.float32(1), None, X, Y) if c is not None]
    np.testing.assert_array_equal(fused, np.asarray(own))


def test_other_cotangents_scale_the_gradients(no_backward_kernel):
    x = tracenn.tensor(X, requires_grad=True)
    y = tracenn.tensor(Y)
    (F.cross_entropy(x, y) * 3.0).backward()
    np.testing.assert_allclose(to_np(x.grad), _reference(X, Y, g=3.0), rtol=1e-5, atol=1e-7)
    loss = F.cross_entropy(x, y)
    (g,) = tracenn.autograd.grad(loss, x, grad_outputs=tracenn.tensor(-0.5))
    np.testing.assert_allclose(to_np(g), _reference(X, Y, g=-0.5), rtol=1e-5, atol=1e-7)


def test_ignored_targets_get_no_gradient(no_backward_kernel):
    y = Y.copy()
    y[[1, 4]] = -100
    x = tracenn.tensor(X, requires_grad=True)
    F.cross_entropy(x, tracenn.tensor(y)).backward()
    np.testing.assert_allclose(to_np(x.grad), _reference(X, y), rtol=1e-5, atol=1e-7)
    assert not to_np(x.grad)[[1, 4]].any()


def test_unreduced_losses_and_no_grad_compute_no_gradient_in_forward(monkeypatch):
    calls = []
    real = OpDef.with_grad_kernel
    monkeypatch.setattr(OpDef, "with_grad_kernel", lambda op, key, needs: calls.append(key) or real(op, key, needs))
    x = tracenn.tensor(X, requires_grad=True)
    y = tracenn.tensor(Y)
    per_sample = F.cross_entropy(x, y, reduction="none")
    assert per_sample.grad_fn.unit is None
    per_sample.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), _reference(X, Y, reduction="sum"), rtol=1e-5, atol=1e-7)
    with tracenn.no_grad():
        F.cross_entropy(x, y)
    F.cross_entropy(x.detach(), y)
    assert calls == []
    F.cross_entropy(x, y)
    assert calls == [(1, -100, "mean")]


def test_retain_graph_and_freed_graph():
    x = tracenn.tensor(X, requires_grad=True)
    loss = F.cross_entropy(x, tracenn.tensor(Y))
    loss.backward(retain_graph=True)
    first = to_np(x.grad).copy()
    loss.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * first, rtol=1e-6)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_logits_changed_in_place_after_the_loss_still_raise():
    """The gradient is already computed, but torch raises here, and so does tracenn."""
    w = tracenn.tensor(X, requires_grad=True)
    x = w * 1.0
    loss = F.cross_entropy(x, tracenn.tensor(Y))
    x.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_double_backward_uses_the_gradient_op():
    x = tracenn.tensor(X, requires_grad=True)
    (g,) = tracenn.autograd.grad(F.cross_entropy(x, tracenn.tensor(Y)), x, create_graph=True)
    np.testing.assert_allclose(to_np(g), _reference(X, Y), rtol=1e-5, atol=1e-7)
    (g * g).sum().backward()
    # d/dx sum(((s - t) / n)^2) = 2/n^2 * J_softmax^T (s - t), J_softmax = diag(s) - s s^T per row
    e = np.exp(X - X.max(1, keepdims=True))
    s = e / e.sum(1, keepdims=True)
    d = s - np.eye(5)[Y]
    want = 2 / 64 * (s * d - s * (s * d).sum(1, keepdims=True))
    np.testing.assert_allclose(to_np(x.grad), want, rtol=1e-4, atol=1e-7)


def test_compiled_model_with_eager_loss_matches_eager(no_backward_kernel):
    tracenn.manual_seed(0)
    model = tracenn.nn.Sequential(tracenn.nn.Linear(5, 7), tracenn.nn.ReLU(), tracenn.nn.Linear(7, 5))
    cm = tracenn.compile(model)
    x, y = tracenn.tensor(X), tracenn.tensor(Y)
    F.cross_entropy(cm(x), y).backward()
    compiled = [to_np(p.grad).copy() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for c, e in zip(compiled, (to_np(p.grad) for p in model.parameters())):
        np.testing.assert_allclose(c, e, rtol=1e-5, atol=1e-7)


def test_matches_torch(torch):
    x = tracenn.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    for scale in (1.0, 0.25):
        loss = F.cross_entropy(x, tracenn.tensor(Y), label_smoothing=0.0)
        tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(Y))
        (loss * scale).backward()
        (tloss * scale).backward()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-6)
        np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-7)


# ---- mse_loss: one primitive for same-shaped float32/float64 tensors -----------------------------

T = _rng.standard_normal((8, 5)).astype(np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_loss_gradients_come_from_its_forward(no_backward_kernel, reduction):
    x, t = tracenn.tensor(X, requires_grad=True), tracenn.tensor(T, requires_grad=True)
    loss = F.mse_loss(x, t, reduction=reduction)
    assert type(loss.grad_fn).__name__ == "MseLossBackward0"  # torch's name
    loss.backward()
    norm = 2.0 / X.size if reduction == "mean" else 2.0
    np.testing.assert_allclose(loss.item(), ((X - T) ** 2).mean() if reduction == "mean" else ((X - T) ** 2).sum(),
                               rtol=1e-6)
    np.testing.assert_allclose(to_np(x.grad), norm * (X - T), rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(to_np(t.grad), -to_np(x.grad))
    assert F.mse_loss(x.detach(), t.detach(), reduction=reduction).grad_fn is None


def test_mse_loss_other_forms_stay_composite():
    x, t = tracenn.tensor(X, requires_grad=True), tracenn.tensor(T)
    per_element = F.mse_loss(x, t, reduction="none")
    assert per_element.shape == (8, 5) and type(per_element.grad_fn).__name__ != "MseLossBackward0"
    with pytest.warns(UserWarning, match="target size .* different to the input size"):
        broadcast = F.mse_loss(x, t[:1])
    np.testing.assert_allclose(broadcast.item(), ((X - T[:1]) ** 2).mean(), rtol=1e-6)
    mixed = F.mse_loss(x, t.double())  # float32 input, float64 target: promoted as torch does
    assert mixed.dtype == tracenn.float64


def test_mse_loss_matches_torch(torch):
    x, t = tracenn.tensor(X, requires_grad=True), tracenn.tensor(T, requires_grad=True)
    tx, tt = torch.tensor(X, requires_grad=True), torch.tensor(T, requires_grad=True)
    for scale in (1.0, 0.3):
        (F.mse_loss(x, t) * scale).backward()
        (torch.nn.functional.mse_loss(tx, tt) * scale).backward()
    np.testing.assert_allclose(F.mse_loss(x, t).item(), torch.nn.functional.mse_loss(tx, tt).item(), rtol=1e-6)
    np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(to_np(t.grad), tt.grad.numpy(), rtol=1e-6, atol=1e-8)


# ---- binary_cross_entropy_with_logits: one primitive without weights -----------------------------

P = _rng.random((8, 5)).astype(np.float32)  # targets in [0, 1]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits_gradients_come_from_its_forward(no_backward_kernel, reduction):
    x, t = tracenn.tensor(X * 4, requires_grad=True), tracenn.tensor(P, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, t, reduction=reduction)
    assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyWithLogitsBackward0"  # torch's name
    loss.backward()
    n = X.size if reduction == "mean" else 1
    want = (1 - P) * X * 4 + np.log1p(np.exp(-X * 4))
    np.testing.assert_allclose(loss.item(), want.sum() / n, rtol=1e-6)
    np.testing.assert_allclose(to_np(x.grad), (1 / (1 + np.exp(-X * 4)) - P) / n, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(to_np(t.grad), -X * 4 / n, rtol=1e-6)


def test_bce_with_logits_weighted_forms_stay_composite():
    x, t = tracenn.tensor(X, requires_grad=True), tracenn.tensor(P)
    w = tracenn.tensor(np.full(5, 2.0, np.float32))
    for loss in (F.binary_cross_entropy_with_logits(x, t, pos_weight=w),
                 F.binary_cross_entropy_with_logits(x, t, weight=w),
                 F.binary_cross_entropy_with_logits(x, t, reduction="none").sum()):
        assert type(loss.grad_fn).__name__ != "BinaryCrossEntropyWithLogitsBackward0"
    plain = F.binary_cross_entropy_with_logits(x, t, reduction="sum").item()
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, t, weight=w / 2, reduction="sum").item(), plain,
                               rtol=1e-6)


def test_bce_with_logits_matches_torch(torch):
    x, t = tracenn.tensor(X * 4, requires_grad=True), tracenn.tensor(P, requires_grad=True)
    tx, tt = torch.tensor(X * 4, requires_grad=True), torch.tensor(P, requires_grad=True)
    for scale in (1.0, 0.3):
        (F.binary_cross_entropy_with_logits(x, t) * scale).backward()
        (torch.nn.functional.binary_cross_entropy_with_logits(tx, tt) * scale).backward()
    np.testing.assert_allclose(F.binary_cross_entropy_with_logits(x, t).item(),
                               torch.nn.functional.binary_cross_entropy_with_logits(tx, tt).item(), rtol=1e-6)
    np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(to_np(t.grad), tt.grad.numpy(), rtol=1e-5, atol=1e-8)


def test_nll_loss_after_log_softmax(no_backward_kernel):
    """torch's MNIST example: log_softmax in the model, nll_loss as the loss."""
    x = tracenn.tensor(X, requires_grad=True)
    y = Y.copy()
    y[3] = -100
    loss = F.nll_loss(F.log_softmax(x, dim=1), tracenn.tensor(y))
    assert type(loss.grad_fn).__name__ == "NllLossBackward0"
    loss.backward()
    np.testing.assert_allclose(to_np(x.grad), _reference(X, y), rtol=1e-5, atol=1e-7)


# ---- smooth_l1_loss and huber_loss: one primitive each -------------------------------------------

@pytest.mark.parametrize("name, option", [("smooth_l1_loss", "beta"), ("huber_loss", "delta")])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_pointwise_losses_gradients_come_from_their_forward(no_backward_kernel, name, option, reduction):
    x, t = tracenn.tensor(X * 2, requires_grad=True), tracenn.tensor(T, requires_grad=True)
    loss = getattr(F, name)(x, t, reduction=reduction, **{option: 0.5})
    assert type(loss.grad_fn).__name__ == {"smooth_l1_loss": "SmoothL1LossBackward0",
                                           "huber_loss": "HuberLossBackward0"}[name]  # torch's names
    loss.backward()
    d, norm = X * 2 - T, 1 / X.size if reduction == "mean" else 1.0
    slope = np.clip(d / 0.5, -1, 1) if name == "smooth_l1_loss" else np.clip(d, -0.5, 0.5)
    np.testing.assert_allclose(to_np(x.grad), norm * slope, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(to_np(t.grad), -to_np(x.grad))


@pytest.mark.parametrize("name", ["smooth_l1_loss", "huber_loss"])
def test_pointwise_losses_match_torch(torch, name):
    x, t = tracenn.tensor(X * 2, requires_grad=True), tracenn.tensor(T, requires_grad=True)
    tx, tt = torch.tensor(X * 2, requires_grad=True), torch.tensor(T, requires_grad=True)
    for reduction in ("mean", "sum", "none"):
        a = getattr(F, name)(x, t, reduction=reduction)
        b = getattr(torch.nn.functional, name)(tx, tt, reduction=reduction)
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), rtol=1e-6)
        (a.sum() * 0.3).backward()
        (b.sum() * 0.3).backward()
    np.testing.assert_array_equal(to_np(x.grad), tx.grad.numpy())
    np.testing.assert_array_equal(to_np(t.grad), tt.grad.numpy())


# ---- binary_cross_entropy: one primitive without weights, torch's gradient -----------------------

SATURATED = np.array([1e-30, 0.3, 0.0, 1.0, 0.5, 0.999, 0.0], np.float32)
LABELS = np.array([0.5, 0.2, 1.0, 0.0, 1.0, 0.0, 0.0], np.float32)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_gradient_is_torchs_formula_at_saturated_probabilities(no_backward_kernel, reduction):
    """``(x - t) / max((1 - x) x, 1e-12)``: huge but finite where a probability is exactly 0 or 1
    and the label disagrees (the clamped logs' own derivative would be 0 there)."""
    x, t = tracenn.tensor(SATURATED, requires_grad=True), tracenn.tensor(LABELS)
    loss = F.binary_cross_entropy(x, t, reduction=reduction)
    assert type(loss.grad_fn).__name__ == "BinaryCrossEntropyBackward0"  # torch's name
    loss.backward()
    n = SATURATED.size if reduction == "mean" else 1
    want = (SATURATED - LABELS) / np.maximum((1 - SATURATED) * SATURATED, np.float32(1e-12)) / np.float32(n)
    np.testing.assert_allclose(to_np(x.grad), want, rtol=1e-6)
    assert to_np(x.grad)[2] < -1e10 and to_np(x.grad)[6] == 0  # (0 against 1: steep; 0 against 0: none)
    with np.errstate(divide="ignore"):  # (log(0) = -inf, clamped to -100 as torch's)
        per = (LABELS - 1) * np.maximum(np.log1p(-SATURATED.astype(np.float64)), -100) \
            - LABELS * np.maximum(np.log(SATURATED.astype(np.float64)), -100)
    assert loss.item() == pytest.approx(per.mean() if reduction == "mean" else per.sum(), rel=1e-5)


def test_bce_matches_torch_bit_for_bit(torch):
    for reduction in ("mean", "sum", "none"):
        x, t = tracenn.tensor(SATURATED, requires_grad=True), tracenn.tensor(LABELS, requires_grad=True)
        tx, tt = torch.tensor(SATURATED, requires_grad=True), torch.tensor(LABELS, requires_grad=True)
        a = F.binary_cross_entropy(x, t, reduction=reduction)
        b = torch.nn.functional.binary_cross_entropy(tx, tt, reduction=reduction)
        np.testing.assert_allclose(to_np(a), b.detach().numpy(), rtol=1e-6)
        (a if reduction != "none" else a.sum()).backward()
        (b if reduction != "none" else b.sum()).backward()
        np.testing.assert_array_equal(to_np(x.grad), tx.grad.numpy())
        np.testing.assert_array_equal(to_np(t.grad), tt.grad.numpy())  # (-logit(x): infinite at 0 and 1, as torch's)
