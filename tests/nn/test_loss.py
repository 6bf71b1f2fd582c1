"""Losses and one_hot: every functional loss against torch (values and gradients, all reductions),
NumPy references that need no torch (cross entropy, BCE, CTC by brute force), module reprs, buffers,
legacy arguments and error messages."""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
N, C, D = 4, 5, 3
X = RNG.standard_normal((N, C)).astype(np.float32)               # scores / predictions
Y = RNG.standard_normal((N, C)).astype(np.float32)               # regression targets
XL = RNG.standard_normal((N, C, D)).astype(np.float32)           # scores with an extra dim
T = np.array([1, 0, 4, 2])                                       # class indices
T_IGN = np.array([1, -100, 4, 2])                                # one ignored (out of range)
TL = np.array([[1, 0, 4], [2, 2, -100], [0, 3, 1], [4, 4, 4]])  # (N, D) with one ignored
W = np.array([0.2, 1.0, 0.5, 2.0, 0.7], np.float32)             # class weights
P = np.exp(X) / np.exp(X).sum(1, keepdims=True)                  # class probabilities
PROB = (1 / (1 + np.exp(-X))).astype(np.float32)                 # probabilities for BCE
BIN = (RNG.random((N, C)) > 0.5).astype(np.float32)              # binary targets
SIGN = np.where(BIN > 0, 1.0, -1.0).astype(np.float32)           # +-1 targets
POS = np.abs(Y) + 0.1                                            # positive values (counts, variances)
MLT = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [4, -1, 0, 0, 0], [-1, 1, 1, 1, 1]])  # multilabel


def _t(lib, a, grad=False):
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return lib.tensor(a, requires_grad=grad)
    return lib.tensor(a)


# name -> (functional, [(array, needs grad)], kwargs); each row runs with every reduction.
CASES = {
    "l1": ("l1_loss", [(X, True), (Y, True)], {}),
    "l1-weight": ("l1_loss", [(X, True), (Y, False)], {"weight": POS}),
    "mse": ("mse_loss", [(X, True), (Y, True)], {}),
    "mse-weight": ("mse_loss", [(X, True), (Y, False)], {"weight": POS}),
    "smooth_l1": ("smooth_l1_loss", [(X, True), (Y, True)], {"beta": 0.5}),
    "smooth_l1-beta0": ("smooth_l1_loss", [(X, True), (Y, False)], {"beta": 0.0}),
    "huber": ("huber_loss", [(X, True), (Y, True)], {"delta": 0.7}),
    "huber-weight": ("huber_loss", [(X, True), (Y, False)], {"weight": POS}),
    "ce": ("cross_entropy", [(X, True), (T, False)], {}),
    "ce-weight-ignored": ("cross_entropy", [(X, True), (T_IGN, False)], {"weight": W}),
    "ce-ignore-in-range": ("cross_entropy", [(X, True), (T, False)], {"weight": W, "ignore_index": 4}),
    "ce-smoothing": ("cross_entropy", [(X, True), (T_IGN, False)], {"label_smoothing": 0.2}),
    "ce-nd-weight-smoothing": ("cross_entropy", [(XL, True), (TL, False)], {"weight": W, "label_smoothing": 0.3}),
    "ce-probs": ("cross_entropy", [(X, True), (P.astype(np.float32), True)], {"weight": W, "label_smoothing": 0.1}),
    "ce-1d": ("cross_entropy", [(X[0], True), (np.array(3), False)], {}),
    "nll": ("nll_loss", [(X, True), (T_IGN, False)], {"weight": W}),
    "nll-nd": ("nll_loss", [(XL, True), (TL, False)], {}),
    "bce": ("binary_cross_entropy", [(PROB, True), (BIN, False)], {"weight": W}),
    "bce-logits": ("binary_cross_entropy_with_logits", [(X * 4, True), (BIN, True)],
                   {"weight": W, "pos_weight": POS[0]}),
    "kl": ("kl_div", [(X, True), (P.astype(np.float32), True)], {}),
    "kl-log-target": ("kl_div", [(X, True), (Y, True)], {"log_target": True}),
    "soft_margin": ("soft_margin_loss", [(X * 4, True), (SIGN, False)], {}),
    "multilabel_soft_margin": ("multilabel_soft_margin_loss", [(X, True), (BIN, False)], {"weight": W}),
    "multilabel_margin": ("multilabel_margin_loss", [(X, True), (MLT, False)], {}),
    "multi_margin": ("multi_margin_loss", [(X, True), (T, False)], {}),
    "multi_margin-p2-weight": ("multi_margin_loss", [(X, True), (T, False)], {"p": 2, "margin": 0.7, "weight": W}),
    "cosine_embedding": ("cosine_embedding_loss", [(X, True), (Y, True), (SIGN[:, 0], False)], {"margin": 0.1}),
    "margin_ranking": ("margin_ranking_loss", [(X, True), (Y, True), (SIGN, False)], {"margin": 0.2}),
    "hinge_embedding": ("hinge_embedding_loss", [(X, True), (SIGN, False)], {"margin": 0.5}),
    "triplet": ("triplet_margin_loss", [(X, True), (Y, True), (XL[:, :, 0], True)], {}),
    "triplet-p1-swap": ("triplet_margin_loss", [(X, True), (Y, True), (XL[:, :, 0], True)], {"p": 1.0, "swap": True}),
    "triplet_distance": ("triplet_margin_with_distance_loss", [(X, True), (Y, True), (XL[:, :, 0], True)],
                         {"swap": True}),
    "poisson": ("poisson_nll_loss", [(X, True), (POS, False)], {}),
    "poisson-full": ("poisson_nll_loss", [(POS, True), (POS * 3, False)], {"log_input": False, "full": True}),
    "gaussian": ("gaussian_nll_loss", [(X, True), (Y, True), (POS, True)], {"full": True}),
    "gaussian-shared-var": ("gaussian_nll_loss", [(X, True), (Y, True), (POS[:, 0], True)], {}),
}


def _run(lib, name, reduction):
    fname, arrays, kwargs = CASES[name]
    inputs = [_t(lib, a, g) for a, g in arrays]
    kw = {k: (_t(lib, v) if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean' warning
        out = getattr(lib.nn.functional, fname)(*inputs, reduction=reduction, **kw)
    out.backward(lib.ones_like(out) * lib.linspace(0.5, 1.5, out.numel()).reshape(tuple(out.shape)))
    return out, [x.grad for x, (_, g) in zip(inputs, arrays) if g]


@pytest.mark.parametrize("name", list(CASES))
def test_loss_matches_torch(torch, name):
    for reduction in ("none", "mean", "sum"):
        out, grads = _run(tracenn, name, reduction)
        tout, tgrads = _run(torch, name, reduction)
        assert_close(out, tout, rtol=2e-5, atol=2e-6)
        for g, tg in zip(grads, tgrads):
            assert_close(g, tg, rtol=2e-5, atol=2e-6)


def test_kl_div_batchmean_matches_torch(torch):
    a = F.kl_div(tracenn.tensor(X), tracenn.tensor(P.astype(np.float32)), reduction="batchmean")
    b = torch.nn.functional.kl_div(torch.tensor(X), torch.tensor(P.astype(np.float32)), reduction="batchmean")
    assert_close(a, b)


# ---- references that need no torch ------------------------------------------------------------------

def _log_softmax(x, axis=1):
    x = x.astype(np.float64)
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


def test_cross_entropy_numpy_reference():
    """weight, an ignored target and label smoothing, against torch's formula written in NumPy."""
    eps, logp = 0.2, _log_softmax(X)
    keep = T_IGN != -100
    t = np.where(keep, T_IGN, 0)
    w_t = W[t] * keep
    nll = -logp[np.arange(N), t] * w_t
    smooth = -(logp * W).sum(1) * keep
    per = (1 - eps) * nll + eps / C * smooth
    got = F.cross_entropy(tracenn.tensor(X), tracenn.tensor(T_IGN), tracenn.tensor(W), label_smoothing=eps,
                          reduction="none")
    assert_close(got, per.astype(np.float32), rtol=1e-5)
    mean = F.cross_entropy(tracenn.tensor(X), tracenn.tensor(T_IGN), tracenn.tensor(W), label_smoothing=eps)
    assert float(mean) == pytest.approx(per.sum() / w_t.sum(), rel=1e-5)


def test_cross_entropy_gradient_is_softmax_minus_one_hot():
    x = tracenn.tensor(X, requires_grad=True)
    F.cross_entropy(x, tracenn.tensor(T), reduction="sum").backward()
    expected = np.exp(_log_softmax(X)) - np.eye(C)[T]
    assert_close(x.grad, expected.astype(np.float32), rtol=1e-5, atol=1e-6)


def test_cross_entropy_large_logits_are_stable():
    x = tracenn.tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    loss = F.cross_entropy(x, tracenn.tensor([2]))
    loss.backward()
    assert float(loss) == pytest.approx(2000.0) and np.isfinite(to_np(x.grad)).all()


def test_cross_entropy_all_ignored_mean_is_nan_and_sum_is_zero():
    t = tracenn.tensor([-100] * N)
    assert math.isnan(float(F.cross_entropy(tracenn.tensor(X), t)))
    assert float(F.cross_entropy(tracenn.tensor(X), t, reduction="sum")) == 0.0


def test_bce_saturated_inputs_give_finite_gradients():
    x = tracenn.tensor([0.0, 1.0, 0.5, 1e-30], requires_grad=True)
    t = tracenn.tensor([0.0, 1.0, 1.0, 1.0])
    loss = F.binary_cross_entropy(x, t, reduction="none")
    assert_close(loss, np.float32([0.0, 0.0, math.log(2), 69.0776]), rtol=1e-5)
    loss.sum().backward()
    assert np.isfinite(to_np(x.grad)).all()
    assert float(F.binary_cross_entropy(tracenn.tensor([0.0]), tracenn.tensor([1.0]))) == 100.0  # log clamped


def test_bce_with_logits_zero_logits_gradient():
    """Zero logits (a zero-initialised head) get sigmoid(0) - t, not the -t of abs's gradient at 0."""
    x = tracenn.zeros(3, requires_grad=True)
    F.binary_cross_entropy_with_logits(x, tracenn.tensor([0.0, 1.0, 0.3]), reduction="sum").backward()
    assert_close(x.grad, np.float32([0.5, -0.5, 0.2]), rtol=1e-6)
    big = F.binary_cross_entropy_with_logits(tracenn.tensor([200.0, -200.0]), tracenn.tensor([0.0, 1.0]),
                                             reduction="none")
    assert_close(big, np.float32([200.0, 200.0]))


def _ctc_brute_force(logp, target, blank=0):
    """-log of the summed probability of every frame labelling that collapses to ``target``."""
    T_, C_ = logp.shape
    total = 0.0
    for path in itertools.product(range(C_), repeat=T_):
        collapsed = [c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1])]
        if collapsed == list(target):
            total += math.exp(sum(logp[t, c] for t, c in enumerate(path)))
    return -math.log(total) if total > 0 else math.inf


# one CTC geometry for every test (each shape compiles the per-frame step once): T=5, N=2, C=3, S=2
CTC_LOGITS = RNG.standard_normal((5, 2, 3)).astype(np.float32)
CTC_TARGETS = np.array([[1, 1], [2, 1]])  # a repeated label needs a blank between its copies
CTC_IN, CTC_TG = [5, 4], [2, 2]


def test_ctc_loss_matches_brute_force_enumeration():
    logp = _log_softmax(CTC_LOGITS, 2)
    got = F.ctc_loss(tracenn.tensor(logp.astype(np.float32)), tracenn.tensor(CTC_TARGETS), CTC_IN, CTC_TG,
                     reduction="none")
    want = [_ctc_brute_force(logp[:5, 0], [1, 1]), _ctc_brute_force(logp[:4, 1], [2, 1])]
    assert_close(got, np.float32(want), rtol=1e-5)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_ctc_loss_matches_torch(torch, reduction, layout):
    logits, targets, il, tl = CTC_LOGITS, CTC_TARGETS, CTC_IN, [2, 1]
    if layout == "concatenated":
        targets = np.concatenate([targets[i, :n] for i, n in enumerate(tl)])

    def run(lib):
        x = lib.tensor(logits, requires_grad=True)
        lengths = (lib.tensor(il), lib.tensor(tl)) if lib is torch else (il, tl)
        loss = lib.nn.functional.ctc_loss(x.log_softmax(-1), lib.tensor(targets), *lengths, reduction=reduction)
        loss.sum().backward()
        return loss, x.grad

    (a, ga), (b, gb) = run(tracenn), run(torch)
    assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert_close(ga, gb, rtol=1e-4, atol=1e-5)  # torch's gradient is with respect to the logits


def test_ctc_unbatched_is_one_sample_of_a_batch():
    lp = tracenn.tensor(CTC_LOGITS).log_softmax(2)
    batched = F.ctc_loss(lp, tracenn.tensor(CTC_TARGETS), CTC_IN, CTC_TG, reduction="none")
    single = F.ctc_loss(lp[:, 0], tracenn.tensor(CTC_TARGETS[0]), tracenn.tensor(5), tracenn.tensor(2),
                        reduction="none")
    assert single.shape == () and float(single) == pytest.approx(float(batched[0]), rel=1e-6)


def test_ctc_impossible_alignment_is_inf_or_zero():
    x = tracenn.tensor(CTC_LOGITS, requires_grad=True)
    short = [5, 2]  # "1 1" needs three frames (1, blank, 1): the second sample cannot align
    loss = F.ctc_loss(x.log_softmax(2), tracenn.tensor([[1, 1], [1, 1]]), short, CTC_TG, reduction="none")
    assert math.isfinite(float(loss[0])) and math.isinf(float(loss[1]))
    loss = F.ctc_loss(x.log_softmax(2), tracenn.tensor([[1, 1], [1, 1]]), short, CTC_TG, reduction="sum",
                      zero_infinity=True)
    loss.backward()
    assert math.isfinite(float(loss)) and not to_np(x.grad)[:, 1].any()


# ---- one_hot -------------------------------------------------------------------------------------------

def test_one_hot(lib):
    assert lib.nn.functional.one_hot(lib.tensor([0, 2, 1])).tolist() == [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    out = lib.nn.functional.one_hot(lib.tensor([[1], [0]]), 3)
    assert out.shape == (2, 1, 3) and out.dtype == lib.int64
    with pytest.raises(RuntimeError, match="Class values must be smaller than num_classes"):
        lib.nn.functional.one_hot(lib.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="Class values must be non-negative"):
        lib.nn.functional.one_hot(lib.tensor([-1]), 3)
    with pytest.raises(RuntimeError, match="one_hot is only applicable to index tensor"):
        lib.nn.functional.one_hot(lib.tensor([1.0]), 3)


# ---- modules -----------------------------------------------------------------------------------------

REPRS = ["L1Loss", "NLLLoss", "PoissonNLLLoss", "GaussianNLLLoss", "KLDivLoss", "MSELoss", "BCELoss",
         "BCEWithLogitsLoss", "HingeEmbeddingLoss", "MultiLabelMarginLoss", "SmoothL1Loss", "HuberLoss",
         "SoftMarginLoss", "CrossEntropyLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
         "MarginRankingLoss", "MultiMarginLoss", "TripletMarginLoss", "CTCLoss"]


@pytest.mark.parametrize("name", REPRS)
def test_module_repr_and_defaults(lib, name):
    m = getattr(lib.nn, name)()
    assert repr(m) == f"{name}()" and m.reduction == "mean"


def test_triplet_with_distance_repr_has_the_distance_submodule(lib):
    assert repr(lib.nn.TripletMarginWithDistanceLoss()) == (
        "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)")


def test_weights_are_buffers(lib):
    m = lib.nn.CrossEntropyLoss(weight=lib.tensor(W), ignore_index=3, label_smoothing=0.1)
    assert list(m.state_dict()) == ["weight"] and m.ignore_index == 3 and m.label_smoothing == 0.1
    b = lib.nn.BCEWithLogitsLoss(pos_weight=lib.ones(5))
    assert list(m.state_dict()) == ["weight"] and list(b.state_dict()) == ["pos_weight"] and b.weight is None
    assert list(lib.nn.NLLLoss().state_dict()) == []


@pytest.mark.parametrize("name,fname,args", [
    ("CrossEntropyLoss", "cross_entropy", (X, T)), ("NLLLoss", "nll_loss", (X, T_IGN)),
    ("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", (X, BIN)), ("MSELoss", "mse_loss", (X, Y)),
    ("TripletMarginWithDistanceLoss", "triplet_margin_with_distance_loss", (X, Y, XL[:, :, 0])),
    ("CTCLoss", "ctc_loss", (CTC_LOGITS, CTC_TARGETS, CTC_IN, CTC_TG))])
def test_modules_compute_their_functional(name, fname, args):
    ts = [tracenn.tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    for reduction in ("sum", "none"):
        assert_close(getattr(nn, name)(reduction=reduction)(*ts),
                     getattr(F, fname)(*ts, reduction=reduction))


def test_legacy_size_average_and_reduce(lib):
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, please use "
                                         "reduction='sum' instead."):
        m = lib.nn.MSELoss(size_average=False)
    assert m.reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert lib.nn.CrossEntropyLoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning, match="reduction='none'"):
        out = lib.nn.functional.l1_loss(lib.tensor(X), lib.tensor(Y), reduce=False)
    assert tuple(out.shape) == (N, C)


def test_kl_div_mean_warns(lib):
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        lib.nn.functional.kl_div(lib.tensor(X), lib.tensor(P.astype(np.float32)))


def test_size_mismatch_warns_then_broadcasts(lib):
    with pytest.warns(UserWarning, match="Using a target size .* that is different to the input size"):
        out = lib.nn.functional.mse_loss(lib.tensor(X), lib.tensor(Y[:1]), reduction="none")
    assert tuple(out.shape) == (N, C)


# ---- errors -----------------------------------------------------------------------------------------

def test_cross_entropy_errors_name_the_module_and_the_expectation():
    loss = nn.CrossEntropyLoss()
    logits = tracenn.zeros(64, 10)
    with pytest.raises(RuntimeError, match=r"CrossEntropyLoss: expected target of shape \(64,\) with class indices "
                                           r"in \[0, 10\) \(or class probabilities of shape \(64, 10\)\), got "
                                           r"shape \(64, 1\)"):
        loss(logits, tracenn.zeros(64, 1, dtype=tracenn.int64))
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: expected target of shape \(64,\).*got shape \(32,\)"):
        loss(logits, tracenn.zeros(32, dtype=tracenn.int64))
    with pytest.raises(IndexError, match=r"CrossEntropyLoss: Target 10 is out of bounds: expected class indices "
                                         r"in \[0, 10\) or ignore_index=-100"):
        loss(logits, tracenn.full((64,), 10))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.cross_entropy(logits, tracenn.full((64,), -1))
    with pytest.raises(RuntimeError, match="expected target dtype to be Long or Byte, but got Int.*target.long()"):
        loss(logits, tracenn.zeros(64, dtype=tracenn.int32))
    with pytest.raises(RuntimeError, match=r"weight tensor should be defined either for all 10 classes or no "
                                           r"classes but got weight tensor of shape: \[4\]"):
        nn.CrossEntropyLoss(weight=tracenn.ones(4))(logits, tracenn.zeros(64, dtype=tracenn.int64))
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point target"):
        F.cross_entropy(logits, tracenn.zeros(64, 10), ignore_index=1)
    with pytest.raises(RuntimeError, match="label_smoothing must be between 0.0 and 1.0. Got: 1.5"):
        F.cross_entropy(logits, tracenn.zeros(64, dtype=tracenn.int64), label_smoothing=1.5)
    with pytest.raises(IndexError, match="NLLLoss: Target 10 is out of bounds"):
        nn.NLLLoss()(logits, tracenn.full((64,), 7) + 3)


def test_other_errors(lib):
    Fl = lib.nn.functional
    x, t = lib.tensor(X), lib.tensor(T)
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        Fl.cross_entropy(x, t, reduction="foo")
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        Fl.mse_loss(x, x, reduction="foo")
    with pytest.raises(ValueError, match="Expected 1 or more dimensions"):
        Fl.nll_loss(lib.tensor(1.0), lib.tensor(1))
    with pytest.raises(ValueError, match="that is different to the input size .* is deprecated"):
        Fl.binary_cross_entropy(lib.tensor(PROB), lib.tensor(BIN[:1]))
    with pytest.raises(ValueError, match=r"Target size \(.*\) must be the same as input size"):
        Fl.binary_cross_entropy_with_logits(x, lib.tensor(BIN[:1]))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        Fl.multi_margin_loss(x, t, p=3)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        lib.nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0"):
        Fl.triplet_margin_loss(x, x, x, margin=0)
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater than 0"):
        lib.nn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(RuntimeError, match="anchor 2D, positive 2D, and negative 1D inputs"):
        Fl.triplet_margin_loss(x, x, x[0])
    with pytest.raises(RuntimeError, match="margin_ranking_loss : All input tensors should have same dimension"):
        Fl.margin_ranking_loss(x, x, x[0])
    with pytest.raises(RuntimeError, match=r"1D target tensor expects 2D input tensors, but found inputs with "
                                           r"sizes \[5\] and \[5\]"):
        Fl.cosine_embedding_loss(x[0], x[0], t)
    with pytest.raises(RuntimeError, match="smooth_l1_loss does not support negative values for beta"):
        Fl.smooth_l1_loss(x, x, beta=-1.0)
    with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values for delta"):
        Fl.huber_loss(x, x, delta=0.0)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        Fl.gaussian_nll_loss(x, x, lib.ones(3))
    with pytest.raises(ValueError, match="var has negative entry/entries"):
        Fl.gaussian_nll_loss(x, x, -lib.ones(N, C))
    with pytest.raises(TypeError, match="delta must be a float or int"):
        lib.nn.HuberLoss(delta="1")


def test_ctc_errors(lib):
    lp = lib.zeros(6, 2, 4).log_softmax(2)
    tg = lib.tensor([[1, 2, 2], [3, 1, 0]])
    il, tl = lib.tensor([6, 5]), lib.tensor([3, 2])
    Fl = lib.nn.functional
    with pytest.raises(RuntimeError, match="Expected input_lengths to have value at most 6, but got value 7"):
        Fl.ctc_loss(lp, tg, lib.tensor([7, 5]), tl)
    with pytest.raises(RuntimeError, match="Expected tensor to have size at least 4 at dimension 1, but got size 3"):
        Fl.ctc_loss(lp, tg, il, lib.tensor([4, 2]))
    with pytest.raises(RuntimeError, match="input_lengths must be of size batch_size"):
        Fl.ctc_loss(lp, tg, lib.tensor([6, 5, 3]), tl)
    with pytest.raises(RuntimeError, match="blank must be in label range"):
        Fl.ctc_loss(lp, tg, il, tl, blank=4)


def test_an_ignore_index_that_is_a_class_is_seen_by_the_quick_target_check():
    """The range check of class targets takes two reductions when every target is a class; an
    ignore_index that is itself a class must still drop its targets (NumPy reference)."""
    logits = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    target = np.array([0, 1, 2, 3, 2, 2])
    got = F.cross_entropy(tracenn.tensor(logits), tracenn.tensor(target), ignore_index=2)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    keep = target != 2
    want = -logp[np.arange(6), target][keep].mean()
    np.testing.assert_allclose(got.item(), want, rtol=1e-6)
    with pytest.raises(IndexError, match=r"Target 4 is out of bounds: expected class indices in \[0, 4\) "
                                         r"or ignore_index=2"):
        F.cross_entropy(tracenn.tensor(logits), tracenn.tensor(np.array([0, 1, 4, 2, 2, 2])), ignore_index=2)
    # an empty batch: no targets to check (torch returns nan for the mean)
    assert np.isnan(F.cross_entropy(tracenn.zeros(0, 4), tracenn.zeros(0, dtype=tracenn.int64)).item())
