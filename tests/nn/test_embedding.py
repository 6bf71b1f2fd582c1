"""Embedding and EmbeddingBag (and F.embedding / F.embedding_bag): lookups, padding_idx, max_norm,
scale_grad_by_freq, bags with offsets / per-sample weights, reprs, errors, and parity with torch."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np

RNG = np.random.default_rng(0)
W = RNG.standard_normal((6, 3)).astype(np.float32) * 2  # 6 rows of 3: shared by every test
IDX = np.array([[0, 2, 2], [5, 1, 2]])
BAG_INPUT = np.array([0, 2, 2, 5, 1, 3, 2, 0])
BAG_OFFSETS = np.array([0, 3, 3, 5])  # bags: [0 2 2] [] [5 1] [3 2 0]


def weighted_sum(out):
    """A loss whose gradient differs per output element."""
    coef = np.arange(out.numel(), dtype=np.float32).reshape(tuple(out.shape))
    return (out * (tracenn.tensor(coef) if isinstance(out, tracenn.Tensor) else type(out)(coef))).sum()


def row_grads(idx, out_grad, scale=None):
    """NumPy: the weight gradient of a lookup (scatter-add of the output gradient)."""
    g = np.zeros_like(W)
    for i, row in enumerate(idx.reshape(-1)):
        g[row] += out_grad.reshape(-1, W.shape[1])[i] * (1 if scale is None else scale[row])
    return g


# ---- Embedding ---------------------------------------------------------------------------------------

def test_embedding_lookup_and_gradient():
    w = tracenn.tensor(W, requires_grad=True)
    out = F.embedding(tracenn.tensor(IDX), w)
    assert_close(out, W[IDX])
    weighted_sum(out).backward()
    coef = np.arange(IDX.size * 3, dtype=np.float32).reshape(2, 3, 3)
    assert_close(w.grad, row_grads(IDX, coef))


def test_padding_idx_row_gets_no_gradient_but_keeps_its_value():
    w = tracenn.tensor(W, requires_grad=True)
    out = F.embedding(tracenn.tensor(IDX), w, padding_idx=2)
    assert_close(out, W[IDX])  # a non-zero padding row is still looked up as is
    weighted_sum(out).backward()
    expected = row_grads(IDX, np.arange(IDX.size * 3, dtype=np.float32))
    expected[2] = 0
    assert_close(w.grad, expected)


def test_scale_grad_by_freq_divides_by_count_in_batch():
    w = tracenn.tensor(W, requires_grad=True)
    out = F.embedding(tracenn.tensor(IDX), w, scale_grad_by_freq=True)
    assert_close(out, W[IDX])
    weighted_sum(out).backward()
    counts = np.bincount(IDX.reshape(-1), minlength=6).astype(np.float32)
    scale = 1 / np.maximum(counts, 1)
    assert_close(w.grad, row_grads(IDX, np.arange(IDX.size * 3, dtype=np.float32), scale), rtol=1e-6)


def test_max_norm_renormalises_looked_up_rows_in_place():
    m = nn.Embedding.from_pretrained(tracenn.tensor(W), max_norm=1.0)
    weight = m.weight
    out = m(tracenn.tensor([1, 1, 4]))
    assert m.weight is weight
    norms = np.linalg.norm(W, axis=1)
    expected = W.copy()
    for r in (1, 4):
        if norms[r] > 1.0:
            expected[r] = W[r] * (1.0 / (norms[r] + 1e-7))
    assert_close(m.weight, expected, rtol=1e-6)  # rows 1 and 4 only
    assert_close(out, expected[[1, 1, 4]], rtol=1e-6)


def test_module_init_padding_and_from_pretrained():
    m = nn.Embedding(10, 3, padding_idx=-1)
    assert m.padding_idx == 9 and m.weight[9].tolist() == [0.0, 0.0, 0.0]
    w = to_np(m.weight)[:9]
    assert abs(w.mean()) < 1.0 and 0.3 < w.std() < 2.0  # N(0, 1)
    p = nn.Embedding.from_pretrained(tracenn.tensor(W))
    assert not p.weight.requires_grad and p.num_embeddings == 6 and p.embedding_dim == 3
    assert nn.Embedding.from_pretrained(tracenn.tensor(W), freeze=False).weight.requires_grad
    assert_close(p(tracenn.tensor(IDX)), W[IDX])


def test_embedding_reprs():
    assert repr(nn.Embedding(10, 3)) == "Embedding(10, 3)"
    assert repr(nn.Embedding(10, 3, padding_idx=0, max_norm=1.5, norm_type=1.0, scale_grad_by_freq=True,
                             sparse=True)) == \
        "Embedding(10, 3, padding_idx=0, max_norm=1.5, norm_type=1.0, scale_grad_by_freq=True, sparse=True)"
    assert repr(nn.EmbeddingBag(10, 3)) == "EmbeddingBag(10, 3, mode='mean')"
    assert repr(nn.EmbeddingBag(10, 3, mode="max", padding_idx=2, max_norm=1.0)) == \
        "EmbeddingBag(10, 3, max_norm=1.0, mode='max', padding_idx=2)"


def test_reprs_match_torch(torch):
    for name, args, kw in [("Embedding", (10, 3), dict(padding_idx=-2, norm_type=3.0)),
                           ("EmbeddingBag", (10, 3), dict(mode="sum", scale_grad_by_freq=True))]:
        assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


def test_embedding_errors(lib):
    w = lib.ones(3, 2)
    with pytest.raises(RuntimeError, match="Expected tensor for argument #1 'indices' to have one of the following "
                                           "scalar types: Long, Int; but got (torch|tracenn).FloatTensor instead"):
        lib.nn.functional.embedding(lib.tensor([1.0]), w)
    with pytest.raises(IndexError, match="index out of range in self"):
        lib.nn.functional.embedding(lib.tensor([3]), w)
    with pytest.raises(IndexError, match="index out of range in self"):
        lib.nn.functional.embedding(lib.tensor([-1]), w)
    with pytest.raises(AssertionError, match="Padding_idx must be within num_embeddings"):
        lib.nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(AssertionError, match="Embeddings parameter is expected to be 2-dimensional"):
        lib.nn.Embedding.from_pretrained(lib.ones(3))
    with pytest.raises(AssertionError, match="Shape of weight does not match num_embeddings and embedding_dim"):
        lib.nn.Embedding(3, 3, _weight=lib.ones(3, 2))


# ---- EmbeddingBag ------------------------------------------------------------------------------------

def np_bags(inp, offsets, include_last_offset=False):
    bounds = list(offsets) + ([] if include_last_offset else [len(inp)])
    return [inp[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_modes_match_numpy(mode):
    out = F.embedding_bag(tracenn.tensor(BAG_INPUT), tracenn.tensor(W), tracenn.tensor(BAG_OFFSETS), mode=mode)
    reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    expected = [reduce(W[b], 0) if len(b) else np.zeros(3, np.float32) for b in np_bags(BAG_INPUT, BAG_OFFSETS)]
    assert_close(out, np.stack(expected).astype(np.float32), rtol=1e-6)


def test_embedding_bag_padding_idx_is_left_out_of_the_bag():
    out = F.embedding_bag(tracenn.tensor(BAG_INPUT), tracenn.tensor(W), tracenn.tensor(BAG_OFFSETS), mode="mean",
                          padding_idx=2)
    expected = []
    for b in np_bags(BAG_INPUT, BAG_OFFSETS):
        b = b[b != 2]
        expected.append(W[b].mean(0) if len(b) else np.zeros(3, np.float32))
    assert_close(out, np.stack(expected).astype(np.float32), rtol=1e-6)


def test_embedding_bag_2d_input_per_sample_weights_and_last_offset():
    psw = np.linspace(0.5, 2, IDX.size, dtype=np.float32).reshape(IDX.shape)
    w = tracenn.tensor(W, requires_grad=True)
    out = F.embedding_bag(tracenn.tensor(IDX), w, mode="sum", per_sample_weights=tracenn.tensor(psw))
    assert_close(out, (W[IDX] * psw[..., None]).sum(1), rtol=1e-6)
    out.sum().backward()
    assert_close(w.grad, row_grads(IDX, np.repeat(psw.reshape(-1, 1), 3, 1)), rtol=1e-6)
    with_last = F.embedding_bag(tracenn.tensor(BAG_INPUT), tracenn.tensor(W), tracenn.tensor([0, 3, 3, 5, 8]),
                                mode="sum", include_last_offset=True)
    assert_close(with_last, F.embedding_bag(tracenn.tensor(BAG_INPUT), tracenn.tensor(W),
                                            tracenn.tensor(BAG_OFFSETS), mode="sum"))


def test_embedding_bag_module_and_from_pretrained():
    m = nn.EmbeddingBag.from_pretrained(tracenn.tensor(W), mode="max")
    assert not m.weight.requires_grad
    assert_close(m(tracenn.tensor(IDX)), W[IDX].max(1))
    assert nn.EmbeddingBag(4, 2, padding_idx=1).weight[1].tolist() == [0.0, 0.0]


def test_embedding_bag_errors(lib):
    w = lib.ones(6, 3)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        lib.nn.functional.embedding_bag(lib.tensor([1, 2]), w)
    with pytest.raises(ValueError, match="if input is 2D, then offsets has to be None"):
        lib.nn.functional.embedding_bag(lib.tensor([[1, 2]]), w, lib.tensor([0]))
    with pytest.raises(ValueError, match="input has to be 1D or 2D Tensor, but got Tensor of dimension 3"):
        lib.nn.functional.embedding_bag(lib.zeros(1, 1, 1, dtype=lib.long), w)
    with pytest.raises(ValueError, match="mode has to be one of sum, mean or max"):
        lib.nn.functional.embedding_bag(lib.tensor([[1, 2]]), w, mode="min")
    with pytest.raises(NotImplementedError, match="per_sample_weights is only supported for mode='sum'"):
        lib.nn.functional.embedding_bag(lib.tensor([[1, 2]]), w, per_sample_weights=lib.ones(1, 2))
    with pytest.raises(ValueError, match="max mode does not support scaling the gradient by the frequency"):
        lib.nn.functional.embedding_bag(lib.tensor([[1, 2]]), w, mode="max", scale_grad_by_freq=True)
    with pytest.raises(RuntimeError, match="offsets\\[0\\] has to be 0"):
        lib.nn.functional.embedding_bag(lib.tensor([1, 2]), w, lib.tensor([1]))



@pytest.mark.parametrize("mode,kw", [("mean", {}), ("max", dict(padding_idx=2)), ("sum", dict(include_last_offset=True))])
def test_embedding_bag_with_offsets_compiles(mode, kw):
    """Offsets are an input of the compiled program (the text-classification tutorial's model): the bags
    are found with tensor ops, as eagerly on the host, and the gradient matches."""
    offsets = np.array([0, 3, 3, 5, 8]) if kw.get("include_last_offset") else BAG_OFFSETS
    m = nn.EmbeddingBag.from_pretrained(tracenn.tensor(W), freeze=False, mode=mode, **kw)
    eager = m(tracenn.tensor(BAG_INPUT), tracenn.tensor(offsets))
    weighted_sum(eager).backward()
    eager_grad, m.weight.grad = m.weight.grad, None
    compiled = tracenn.compile(m)(tracenn.tensor(BAG_INPUT), tracenn.tensor(offsets))
    assert_close(compiled, eager)
    weighted_sum(compiled).backward()
    assert_close(m.weight.grad, eager_grad)

# ---- parity with torch ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(padding_idx=2), dict(scale_grad_by_freq=True, padding_idx=-4),
                                dict(max_norm=1.5, norm_type=1.0),
                                pytest.param(dict(), marks=pytest.mark.slow),
                                pytest.param(dict(max_norm=1.0), marks=pytest.mark.slow)])
def test_embedding_parity_with_torch(torch, kw):
    tm = torch.nn.Embedding.from_pretrained(torch.tensor(W), freeze=False, **kw)
    m = nn.Embedding.from_pretrained(tracenn.tensor(W), freeze=False, **kw)
    tout, out = tm(torch.tensor(IDX)), m(tracenn.tensor(IDX))
    assert_close(out, tout)
    weighted_sum(tout).backward()
    weighted_sum(out).backward()
    assert_close(m.weight.grad, tm.weight.grad)
    assert_close(m.weight, tm.weight)  # max_norm rewrote the same rows


@pytest.mark.parametrize("mode,padding_idx", [("sum", None), ("mean", 2), ("max", 2),
                                              pytest.param("sum", 2, marks=pytest.mark.slow),
                                              pytest.param("mean", None, marks=pytest.mark.slow),
                                              pytest.param("max", None, marks=pytest.mark.slow)])
def test_embedding_bag_parity_with_torch(torch, mode, padding_idx):
    tm = torch.nn.EmbeddingBag.from_pretrained(torch.tensor(W), freeze=False, mode=mode, padding_idx=padding_idx,
                                               include_last_offset=True)
    m = nn.EmbeddingBag.from_pretrained(tracenn.tensor(W), freeze=False, mode=mode, padding_idx=padding_idx,
                                        include_last_offset=True)
    offsets = np.array([0, 3, 3, 5, 8])
    tout = tm(torch.tensor(BAG_INPUT), torch.tensor(offsets))
    out = m(tracenn.tensor(BAG_INPUT), tracenn.tensor(offsets))
    assert_close(out, tout, rtol=1e-6)
    weighted_sum(tout).backward()
    weighted_sum(out).backward()
    assert_close(m.weight.grad, tm.weight.grad)
