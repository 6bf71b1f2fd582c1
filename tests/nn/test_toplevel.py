"""torch's top-level forms of nn.functional ops (``tracenn.dropout``, ``tracenn.batch_norm``,
``tracenn.kl_div``, ...): each exists in torch, takes torch's (ATen) argument order and defaults, and
gives torch's numbers."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
from helpers import assert_close, to_np

rng = np.random.default_rng(0)
X = rng.standard_normal((2, 4, 6)).astype(np.float32)
Y = rng.standard_normal((2, 4, 6)).astype(np.float32)
W4 = rng.standard_normal(4).astype(np.float32)
B4 = rng.standard_normal(4).astype(np.float32)
LP = np.log(np.abs(X) / np.abs(X).sum(-1, keepdims=True))  # log-probabilities
PR = np.abs(Y) / np.abs(Y).sum(-1, keepdims=True)            # probabilities
SIGN = np.sign(Y).astype(np.float32)
V = rng.standard_normal((5, 3)).astype(np.float32)
T5 = np.array([1.0, -1.0, 1.0, -1.0, 1.0], np.float32)

# (name, positional args, kwargs); arrays become tensors of each library
CASES = [
    ("adaptive_avg_pool1d", (X, 3), {}),
    ("adaptive_max_pool1d", (X, 4), {}),
    ("avg_pool1d", (X, 2), {}),
    ("avg_pool1d", (X, 3, 2, 1, True, False), {}),
    ("max_pool1d", (X, 2), {}),
    ("max_pool1d", (X, 3, 2, 1, 1, True), {}),
    ("max_pool1d_with_indices", (X, 2), {}),
    ("max_pool2d", (X, 2), {}),
    ("max_pool2d", (X, (2, 3), (), 1), {}),
    ("max_pool3d", (X[None], 2), {}),
    ("batch_norm", (X, W4, B4, np.zeros(4, np.float32), np.ones(4, np.float32), False, 0.1, 1e-5, False), {}),
    ("batch_norm", (X, None, None, None, None, True, 0.1, 1e-5, False), {}),
    ("instance_norm", (X, W4, B4, None, None, True, 0.1, 1e-5, False), {}),
    ("layer_norm", (X, [6]), {}),
    ("layer_norm", (X, [4, 6], None, None, 1e-3), {}),
    ("group_norm", (X, 2, W4, B4), {}),
    ("rms_norm", (X, [6]), {}),
    ("embedding", (V, np.array([[0, 4], [2, 2]])), {}),
    ("selu", (X,), {}),
    ("celu", (X, 0.5), {}),
    ("threshold", (X, 0.1, -3.0), {}),
    ("hardshrink", (X, 0.3), {}),
    ("prelu", (X, np.float32([0.25])), {}),
    ("rrelu", (X, 0.1, 0.3), {}),  # training=False: the fixed mean slope
    ("conv_transpose1d", (X, rng.standard_normal((4, 2, 3)).astype(np.float32)), {"stride": 2}),
    ("conv_transpose2d", (X[None], rng.standard_normal((2, 3, 2, 2)).astype(np.float32)), {}),
    ("conv_transpose3d", (X[None, None], rng.standard_normal((1, 2, 2, 2, 2)).astype(np.float32)), {}),
    ("cosine_similarity", (X, Y), {}),
    ("cosine_similarity", (X, Y, 2, 1e-6), {}),
    ("pairwise_distance", (X, Y, 1.5), {}),
    ("pdist", (V,), {}),
    ("cdist", (X, Y), {}),
    ("cdist", (X, Y, 1.0), {}),
    ("pixel_shuffle", (X.reshape(2, 4, 2, 3), 2), {}),
    ("pixel_unshuffle", (X.reshape(2, 1, 4, 6), 2), {}),
    ("channel_shuffle", (X, 2), {}),
    ("native_channel_shuffle", (X, 2), {}),
    ("bilinear", (V, V, rng.standard_normal((2, 3, 3)).astype(np.float32)), {}),
    ("bilinear", (V, V, rng.standard_normal((2, 3, 3)).astype(np.float32), np.float32([1, 2])), {}),
    # losses: torch's Python binding defaults reduction to 0 (none)
    ("binary_cross_entropy_with_logits", (X, PR), {}),
    ("binary_cross_entropy_with_logits", (X, PR, None, W4[:1].repeat(6), 1), {}),
    ("cosine_embedding_loss", (V, V[::-1].copy(), T5), {}),
    ("cosine_embedding_loss", (V, V[::-1].copy(), T5, 0.2, 2), {}),
    ("hinge_embedding_loss", (X, SIGN), {}),
    ("hinge_embedding_loss", (X, SIGN, 0.5, 1), {}),
    ("kl_div", (LP, PR), {}),
    ("kl_div", (LP, PR, 1), {}),
    ("kl_div", (LP, np.log(PR), 2), {"log_target": True}),
    ("margin_ranking_loss", (V[:, 0], V[:, 1], T5), {}),
    ("margin_ranking_loss", (V[:, 0], V[:, 1], T5, 0.1, 1), {}),
    ("poisson_nll_loss", (X, np.abs(Y), True, False, 1e-8, 1), {}),
    ("poisson_nll_loss", (np.abs(X), np.abs(Y), False, True, 1e-8, 0), {}),
    ("triplet_margin_loss", (V, V[::-1].copy(), V * 0.5), {}),
    ("triplet_margin_loss", (V, V[::-1].copy(), V * 0.5, 0.5, 1.0, 1e-6, True, 1), {}),
]


def _convert(lib, a):
    if isinstance(a, np.ndarray):
        return lib.tensor(a)
    return a


def _compare(a, b):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _compare(x, y)
        return
    assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,args,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(CASES)])
def test_top_level_function_matches_torch(torch, name, args, kwargs):
    assert hasattr(torch, name), f"torch has no top-level {name}: it must not be exported"
    _compare(getattr(tracenn, name)(*[_convert(tracenn, a) for a in args], **kwargs),
             getattr(torch, name)(*[_convert(torch, a) for a in args], **kwargs))


def test_ctc_loss_matches_torch(torch):
    lp = np.log(np.random.default_rng(1).dirichlet(np.ones(4), (6, 2))).astype(np.float32)
    targets, il, tl = np.array([[1, 2], [1, 1]]), np.array([6, 6]), np.array([2, 1])
    for extra in ((), (0, 1), (0, 2, True)):
        _compare(tracenn.ctc_loss(tracenn.tensor(lp), tracenn.tensor(targets), tracenn.tensor(il),
                                  tracenn.tensor(tl), *extra),
                 torch.ctc_loss(torch.tensor(lp), torch.tensor(targets), torch.tensor(il), torch.tensor(tl), *extra))


EXPORTED = ["adaptive_avg_pool1d", "adaptive_max_pool1d", "alpha_dropout", "alpha_dropout_", "avg_pool1d",
            "batch_norm", "bilinear", "binary_cross_entropy_with_logits", "cdist", "celu", "celu_", "channel_shuffle",
            "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "cosine_embedding_loss", "cosine_similarity",
            "ctc_loss", "dropout", "dropout_", "embedding", "feature_alpha_dropout", "feature_alpha_dropout_",
            "feature_dropout", "feature_dropout_", "group_norm", "hardshrink", "hinge_embedding_loss",
            "instance_norm", "kl_div", "layer_norm", "margin_ranking_loss", "max_pool1d", "max_pool1d_with_indices",
            "max_pool2d", "max_pool3d", "native_channel_shuffle", "pairwise_distance", "pdist", "pixel_shuffle",
            "pixel_unshuffle", "poisson_nll_loss", "prelu", "relu_", "rms_norm", "rrelu", "rrelu_", "selu", "selu_",
            "threshold", "threshold_", "triplet_margin_loss"]


def test_every_export_is_a_torch_top_level_name(torch):
    assert [n for n in EXPORTED if not hasattr(torch, n)] == []
    assert [n for n in EXPORTED if not callable(getattr(tracenn, n, None))] == []


def test_exports_without_torch():
    assert [n for n in EXPORTED if not callable(getattr(tracenn, n, None))] == []
    # the functional forms that torch exports as the same object are the same object here too
    F = tracenn.nn.functional
    for n in ("bilinear", "channel_shuffle", "pixel_shuffle", "cosine_similarity", "relu_", "hardshrink"):
        assert getattr(tracenn, n) is getattr(F, n)


@pytest.mark.parametrize("name", ["dropout", "alpha_dropout", "feature_alpha_dropout", "feature_dropout"])
def test_dropouts_need_p_and_train(lib, name):
    fn = getattr(lib, name)
    with pytest.raises(TypeError):
        fn(lib.ones(2, 3))
    x = lib.ones(2, 3, 4)
    assert fn(x, 0.5, False) is x or bool((fn(x, 0.5, False) == x).all())


def test_dropouts_in_training():
    tracenn.manual_seed(0)
    y = to_np(tracenn.dropout(tracenn.ones(1000), 0.5, True))
    assert set(np.unique(y)) == {0.0, 2.0} and 0.4 < (y == 0).mean() < 0.6
    y = to_np(tracenn.feature_dropout(tracenn.ones(8, 16, 5), 0.5, True))
    assert (y.min(-1) == y.max(-1)).all() and set(np.unique(y)) == {0.0, 2.0}
    x = tracenn.ones(100)
    assert tracenn.dropout_(x, 0.5, True) is x and set(np.unique(to_np(x))) == {0.0, 2.0}
    x = tracenn.ones(4, 8, 3)
    assert tracenn.feature_dropout_(x, 0.5, True) is x
    y = to_np(tracenn.alpha_dropout(tracenn.randn(20000), 0.2, True))
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1) < 0.05


def test_kl_div_top_level_does_not_warn_and_reduction_codes():
    import warnings
    lp, pr = tracenn.tensor(LP), tracenn.tensor(PR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mean = tracenn.kl_div(lp, pr, 1)
    none = to_np(tracenn.kl_div(lp, pr))
    assert none.shape == LP.shape and np.isclose(mean.item(), none.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="3 is not a valid value for reduction"):
        tracenn.kl_div(lp, pr, 3)


def test_embedding_weight_first_and_padding_idx_gets_no_gradient(torch):
    for lib in (tracenn, torch):
        w = lib.tensor(V, requires_grad=True)
        lib.embedding(w, lib.tensor([0, 1, 1, 4]), 1).sum().backward()
        assert to_np(w.grad)[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
