"""Sparse gradients of nn.Embedding / nn.EmbeddingBag(sparse=True) and the optimizers that step
them (SparseAdam, SGD, Adagrad): NumPy references, torch's errors, tracenn.compile, and torch
itself as an oracle when installed."""
import warnings

import numpy as np
import pytest

import tracenn
import tracenn.sparse  # noqa: F401
from tracenn import nn

N, D = 10, 3


def _emb(sparse=True, **kw):
    e = nn.Embedding(N, D, sparse=sparse, **kw)
    with tracenn.no_grad():
        e.weight.copy_(tracenn.tensor(np.arange(N * D, dtype=np.float32).reshape(N, D) / 10))
    return e


def _coef(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- the gradient ----------------------------------------------------------------------------------

def test_embedding_grad_is_sparse_with_looked_up_rows():
    e = _emb(padding_idx=2)
    idx = np.array([[0, 2, 5], [5, 7, 2]])
    c = _coef((2, 3, D))
    (e(tracenn.tensor(idx)) * tracenn.tensor(c)).sum().backward()
    g = e.weight.grad
    assert g.is_sparse and g.layout == tracenn.sparse_coo and not g.is_coalesced()
    keep = idx.reshape(-1) != 2  # padding_idx is left out, duplicates stay (torch's layout)
    np.testing.assert_array_equal(g._indices().numpy(), idx.reshape(1, -1)[:, keep])
    np.testing.assert_allclose(g._values().numpy(), c.reshape(-1, D)[keep])
    dense = np.zeros((N, D), np.float32)
    np.add.at(dense, idx.reshape(-1)[keep], c.reshape(-1, D)[keep])
    np.testing.assert_allclose(g.to_dense().numpy(), dense, rtol=1e-6)
    co = g.coalesce()
    np.testing.assert_array_equal(co.indices().numpy(), [[0, 5, 7]])
    np.testing.assert_allclose(co.values().numpy(), dense[[0, 5, 7]], rtol=1e-6)


def test_sparse_and_dense_lookups_give_the_same_numbers():
    idx = tracenn.tensor([[1, 4, 4, 9], [0, 1, 2, 3]])
    c = tracenn.tensor(_coef((2, 4, D), 1))
    grads = []
    for sparse in (True, False):
        e = _emb(sparse=sparse)
        (e(idx) * c).sum().backward()
        g = e.weight.grad
        grads.append(g.to_dense().numpy() if sparse else g.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)


def test_accumulation_concatenates_and_mixes_with_dense():
    e = _emb()
    e(tracenn.tensor([0, 3])).sum().backward()
    g = e.weight.grad
    e(tracenn.tensor([5, 3, 3])).sum().backward()
    assert e.weight.grad is g  # (in place, as torch's AccumulateGrad)
    np.testing.assert_array_equal(g._indices().numpy(), [[0, 3, 5, 3, 3]])
    assert g._nnz() == 5
    (e.weight * 2).sum().backward()  # sparse + dense: dense
    assert not e.weight.grad.is_sparse
    expect = np.full((N, D), 2.0, np.float32)
    expect[[0, 5]] += 1
    expect[3] += 3
    np.testing.assert_allclose(e.weight.grad.numpy(), expect)
    e(tracenn.tensor([1])).sum().backward()  # dense + sparse: dense
    expect[1] += 1
    np.testing.assert_allclose(e.weight.grad.numpy(), expect)


def test_all_padding_gives_an_empty_gradient():
    e = _emb(padding_idx=1)
    e(tracenn.tensor([1, 1])).sum().backward()
    g = e.weight.grad
    assert g.is_sparse and g._nnz() == 0 and tuple(g._indices().shape) == (1, 0)
    assert tuple(g._values().shape) == (0, D)


def test_scale_grad_by_freq_is_refused_in_backward():
    e = _emb(scale_grad_by_freq=True)
    out = e(tracenn.tensor([1, 1]))
    with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse gradients"):
        out.sum().backward()


def test_max_norm_renormalises_and_grad_is_sparse():
    e = _emb(max_norm=1.0)
    e(tracenn.tensor([4, 1])).sum().backward()
    assert e.weight.grad.is_sparse
    np.testing.assert_allclose(np.linalg.norm(e.weight.detach().numpy()[4]), 1.0, rtol=1e-5)  # (row 1: under 1)
    np.testing.assert_array_equal(e.weight.grad._indices().numpy(), [[4, 1]])


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_sparse_grad(mode):
    x = tracenn.tensor([0, 2, 3, 3, 5, 1])
    off = tracenn.tensor([0, 2, 4])
    c = tracenn.tensor(_coef((3, D), 2))
    psw = tracenn.tensor([1., 2, 3, 4, 5, 6]) if mode == "sum" else None
    grads = []
    for sparse in (True, False):
        b = nn.EmbeddingBag(N, D, mode=mode, sparse=sparse, padding_idx=2)
        with tracenn.no_grad():
            b.weight.copy_(tracenn.tensor(_coef((N, D), 3)))
        (b(x, off, per_sample_weights=psw) * c).sum().backward()
        grads.append(b.weight.grad)
    assert grads[0].is_sparse
    np.testing.assert_array_equal(grads[0]._indices().numpy(), [[0, 3, 3, 5, 1]])  # (padding_idx 2 left out)
    np.testing.assert_allclose(grads[0].to_dense().numpy(), grads[1].numpy(), rtol=1e-6)


def test_non_leaf_weight_and_autograd_grad_get_the_dense_gradient():
    w = nn.Parameter(tracenn.ones(N, D))
    idx = tracenn.tensor([0, 1, 1])
    tracenn.nn.functional.embedding(idx, w * 2, sparse=True).sum().backward()
    expect = np.zeros((N, D), np.float32)
    expect[0], expect[1] = 2, 4
    np.testing.assert_allclose(w.grad.numpy(), expect)
    e = _emb()
    (g,) = tracenn.autograd.grad(e(idx).sum(), e.weight)
    np.testing.assert_allclose(g.numpy(), expect / 2)


def test_tensor_hook_sees_the_sparse_gradient():
    e = _emb()
    seen = []
    e.weight.register_hook(lambda g: seen.append(g.layout))
    e(tracenn.tensor([3])).sum().backward()
    assert seen == [tracenn.sparse_coo]


def test_zero_grad_keeps_an_empty_sparse_gradient():
    e = _emb()
    opt = tracenn.optim.SGD(e.parameters(), lr=0.1)
    e(tracenn.tensor([0, 3])).sum().backward()
    opt.zero_grad(set_to_none=False)
    assert e.weight.grad.is_sparse and e.weight.grad._nnz() == 0
    e(tracenn.tensor([4])).sum().backward()
    np.testing.assert_array_equal(e.weight.grad._indices().numpy(), [[4]])
    opt.zero_grad()
    assert e.weight.grad is None


def test_clip_grad_refuses_sparse_gradients_as_torch():
    e = _emb()
    e(tracenn.tensor([0, 3])).sum().backward()
    with pytest.raises(NotImplementedError):
        tracenn.nn.utils.clip_grad_norm_(e.parameters(), 0.5)
    with pytest.raises(NotImplementedError):
        tracenn.nn.utils.clip_grad_value_(e.parameters(), 0.5)


# ---- optimizers ---------------------------------------------------------------------------------

_BATCHES = [np.array([1, 4, 4, 7]), np.array([0, 4, 9]), np.array([7, 7, 2, 5])]


def _loss(e, idx, k):
    return (e(tracenn.tensor(idx)) * tracenn.tensor(_coef((len(idx), D), 10 + k))).sum()


def _ref_grad(idx, k):
    g = np.zeros((N, D), np.float64)
    np.add.at(g, idx, _coef((len(idx), D), 10 + k))
    return g, np.unique(idx)


def _train(opt_fn, sparse=True):
    e = _emb(sparse=sparse)
    opt = opt_fn(e.parameters())
    for k, idx in enumerate(_BATCHES):
        opt.zero_grad()
        _loss(e, idx, k).backward()
        opt.step()
    return e, opt


@pytest.mark.parametrize("maximize", [False, True])
def test_sparse_adam_is_lazy_adam(maximize):
    lr, b1, b2, eps = 0.1, 0.8, 0.9, 1e-8
    e, opt = _train(lambda p: tracenn.optim.SparseAdam(p, lr=lr, betas=(b1, b2), eps=eps, maximize=maximize))
    w = np.arange(N * D, dtype=np.float64).reshape(N, D) / 10
    m, v = np.zeros_like(w), np.zeros_like(w)
    for k, idx in enumerate(_BATCHES):
        g, rows = _ref_grad(idx, k)
        g = -g if maximize else g
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        t = k + 1
        w[rows] -= lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m[rows] / (np.sqrt(v[rows]) + eps)
    np.testing.assert_allclose(e.weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)
    st = opt.state[e.weight]
    assert st["step"] == 3 and isinstance(st["step"], int)
    np.testing.assert_allclose(st["exp_avg"].numpy(), m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st["exp_avg_sq"].numpy(), v, rtol=1e-5, atol=1e-6)
    untouched = [3, 6, 8]  # never looked up: weight and state as they started
    np.testing.assert_array_equal(e.weight.detach().numpy()[untouched],
                                  (np.arange(N * D, dtype=np.float32).reshape(N, D) / 10)[untouched])


def test_sparse_adam_moves_looked_up_rows_with_zero_gradient():
    e = _emb()
    opt = tracenn.optim.SparseAdam(e.parameters(), lr=0.1)
    e(tracenn.tensor([2])).sum().backward()
    opt.step()
    opt.zero_grad()
    before = e.weight.detach().numpy().copy()
    (e(tracenn.tensor([2])) * 0).sum().backward()  # a zero gradient at row 2: exp_avg still moves it
    opt.step()
    assert not np.allclose(e.weight.detach().numpy()[2], before[2])


def test_sgd_sparse_matches_numpy_and_the_dense_momentum_update():
    e, _ = _train(lambda p: tracenn.optim.SGD(p, lr=0.2))
    w = np.arange(N * D, dtype=np.float64).reshape(N, D) / 10
    for k, idx in enumerate(_BATCHES):
        w -= 0.2 * _ref_grad(idx, k)[0]
    np.testing.assert_allclose(e.weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)
    for kw in (dict(momentum=0.9), dict(momentum=0.9, nesterov=True), dict(momentum=0.5, dampening=0.2)):
        sp, opt = _train(lambda p: tracenn.optim.SGD(p, lr=0.2, **kw))
        de, _ = _train(lambda p: tracenn.optim.SGD(p, lr=0.2, **kw), sparse=False)
        assert opt.state[sp.weight]["momentum_buffer"].is_sparse
        np.testing.assert_allclose(sp.weight.detach().numpy(), de.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("maximize", [False, True])
def test_adagrad_sparse_matches_numpy(maximize):
    lr, decay, init, eps = 0.3, 0.1, 0.2, 1e-10
    e, _ = _train(lambda p: tracenn.optim.Adagrad(p, lr=lr, lr_decay=decay, initial_accumulator_value=init,
                                                  maximize=maximize))
    w = np.arange(N * D, dtype=np.float64).reshape(N, D) / 10
    s = np.full_like(w, init)
    for k, idx in enumerate(_BATCHES):
        g, rows = _ref_grad(idx, k)
        g = -g if maximize else g
        clr = lr / (1 + k * decay)
        s[rows] += g[rows] ** 2
        w[rows] -= clr * g[rows] / (np.sqrt(s[rows]) + eps)
    np.testing.assert_allclose(e.weight.detach().numpy(), w, rtol=1e-5, atol=1e-6)


def test_optimizer_errors_as_torch():
    e = _emb()
    e(tracenn.tensor([1, 4])).sum().backward()
    with pytest.raises(RuntimeError, match="^Adam does not support sparse gradients, please consider SparseAdam"):
        tracenn.optim.Adam(e.parameters()).step()
    with pytest.raises(RuntimeError, match="^Adam does not support sparse gradients"):
        tracenn.optim.AdamW(e.parameters()).step()
    for name in ("RMSprop", "Adadelta", "Adamax", "NAdam", "RAdam", "ASGD", "Rprop", "Adafactor"):
        with pytest.raises(RuntimeError, match=f"^{name} does not support sparse gradients$"):
            getattr(tracenn.optim, name)(e.parameters()).step()
    with pytest.raises(RuntimeError, match="add\\(sparse, dense\\) is not supported"):
        tracenn.optim.SGD(e.parameters(), lr=0.1, weight_decay=0.1).step()
    with pytest.raises(RuntimeError, match="weight_decay option is not compatible with sparse gradients"):
        tracenn.optim.Adagrad(e.parameters(), weight_decay=0.1).step()
    e.weight.grad = e.weight.grad.to_dense()
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients, please consider Adam"):
        tracenn.optim.SparseAdam(e.parameters()).step()


def test_lbfgs_takes_a_sparse_gradient_as_dense():
    e = _emb()
    opt = tracenn.optim.LBFGS(e.parameters(), max_iter=2)

    def closure():
        opt.zero_grad()
        loss = (e(tracenn.tensor([1, 4])) ** 2).sum()
        loss.backward()
        return loss
    before = closure().item()
    opt.step(closure)
    assert closure().item() < before


# ---- tracenn.compile -------------------------------------------------------------------------------

def _compiled_step_model(opt_cls, **kw):
    e = _emb()
    opt = opt_cls(e.parameters(), **kw)

    def step(idx, c):
        opt.zero_grad()
        loss = (e(idx) * c).sum()
        loss.backward()
        opt.step()
        return loss
    return e, step


@pytest.mark.parametrize("opt_cls,kw", [(tracenn.optim.SparseAdam, dict(lr=0.1)), (tracenn.optim.SGD, dict(lr=0.1)),
                                        (tracenn.optim.Adagrad, dict(lr=0.1))])
def test_compiled_training_step_runs_eagerly_with_a_warning_and_equals_eager(opt_cls, kw):
    e1, step1 = _compiled_step_model(opt_cls, **kw)
    e2, step2 = _compiled_step_model(opt_cls, **kw)
    step2 = tracenn.compile(step2)
    for k, idx in enumerate(_BATCHES):
        args = (tracenn.tensor(idx), tracenn.tensor(_coef((len(idx), D), k)))
        step1(*args)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step2(*args)
        if k == 0:
            assert any("sparse=True" in str(w.message) and "eagerly" in str(w.message) for w in caught)
    np.testing.assert_array_equal(e1.weight.detach().numpy(), e2.weight.detach().numpy())


def test_compiled_forward_then_eager_backward_gives_the_sparse_gradient():
    e = _emb(padding_idx=0)
    ce = tracenn.compile(e)
    idx = tracenn.tensor([[0, 3], [3, 8]])
    with pytest.warns(UserWarning, match="sparse=True"):
        out = ce(idx)
    out.sum().backward()
    assert e.weight.grad.is_sparse
    np.testing.assert_array_equal(e.weight.grad._indices().numpy(), [[3, 3, 8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tracenn.no_grad():  # (no gradient: the lookup compiles)
            np.testing.assert_array_equal(ce(idx).numpy(), e(idx).detach().numpy())


def test_compiled_call_under_fullgraph_raises():
    e = _emb()
    ce = tracenn.compile(e, fullgraph=True)
    with pytest.raises(tracenn.errors.UnsupportedError, match="sparse=True"):
        ce(tracenn.tensor([1, 2]))


# ---- torch as the oracle ------------------------------------------------------------------------

def _oracle_run(torch, compiled, opt_name, kw):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((N, D)).astype(np.float32)
    B = rng.standard_normal((N, D)).astype(np.float32)
    L = rng.standard_normal((2, D)).astype(np.float32)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(N, D, sparse=True, padding_idx=1)
            self.bag = torch.nn.EmbeddingBag(N, D, mode="mean", sparse=True)
            self.lin = torch.nn.Linear(D, 2)
            with torch.no_grad():
                self.emb.weight.copy_(torch.tensor(W))
                self.bag.weight.copy_(torch.tensor(B))
                self.lin.weight.copy_(torch.tensor(L))
                self.lin.bias.fill_(0.1)

        def forward(self, idx, bag_idx, offs):
            return self.lin(torch.tanh(self.emb(idx).mean(1) + self.bag(bag_idx, offs)))

    net = Net()
    opt = getattr(torch.optim, opt_name)([net.emb.weight, net.bag.weight], **kw)
    opt2 = torch.optim.SGD(net.lin.parameters(), lr=0.1)

    def step(i, b, o, y):
        opt.zero_grad()
        opt2.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(i, b, o), y)
        loss.backward()
        opt.step()
        opt2.step()
        return loss

    if compiled:
        step = tracenn.compile(step)
    losses = []
    for k in range(3):
        i = torch.tensor(rng.integers(0, N, (3, 4)))
        b = torch.tensor(rng.integers(0, N, 7))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            losses.append(float(step(i, b, torch.tensor([0, 2, 5]), torch.tensor([0, 1, 1])).detach()))
    return losses, [p.detach().numpy() for p in net.parameters()]


@pytest.mark.parametrize("opt_name,kw", [("SparseAdam", dict(lr=0.05)), ("SparseAdam", dict(lr=0.05, maximize=True)),
                                         ("SGD", dict(lr=0.3)), ("SGD", dict(lr=0.3, momentum=0.9, nesterov=True)),
                                         ("Adagrad", dict(lr=0.2, lr_decay=0.01))])
def test_training_matches_torch(opt_name, kw):
    torch = pytest.importorskip("torch")
    want_losses, want = _oracle_run(torch, False, opt_name, kw)
    for compiled in (False, True):
        losses, got = _oracle_run(tracenn, compiled, opt_name, kw)
        np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_sparse_grad_layout_matches_torch():
    torch = pytest.importorskip("torch")
    idx = np.array([[4, 1, 3], [3, 1, 9]])
    c = _coef((2, 3, D), 7)
    got = []
    for lib in (torch, tracenn):
        e = lib.nn.Embedding(N, D, sparse=True, padding_idx=1)
        (e(lib.tensor(idx)) * lib.tensor(c)).sum().backward()
        g = e.weight.grad
        got.append((g._indices().numpy(), g._values().numpy(), tuple(g.shape), g.is_coalesced()))
    np.testing.assert_array_equal(got[0][0], got[1][0])
    np.testing.assert_allclose(got[0][1], got[1][1])
    assert got[0][2:] == got[1][2:]
