"""End to end: Kipf & Welling's two-layer GCN (as pygcn writes it: a normalised sparse adjacency,
``torch.spmm(adj, support)``), trained a few steps eagerly and as one compiled step; with torch
installed, against torch's numbers too."""
import numpy as np
import pytest

import tracenn
import tracenn.sparse

N, F, H, C = 12, 6, 8, 3


def graph():
    rng = np.random.default_rng(1)
    edges = {(i, (i + 1) % N) for i in range(N)} | {tuple(rng.integers(0, N, 2)) for _ in range(10)}
    edges |= {(b, a) for a, b in edges} | {(i, i) for i in range(N)}  # symmetric, self loops
    idx = np.array(sorted(edges)).T
    deg = np.bincount(idx[0], minlength=N).astype(np.float32)
    val = (1.0 / np.sqrt(deg[idx[0]] * deg[idx[1]])).astype(np.float32)  # D^-1/2 (A+I) D^-1/2
    x = rng.standard_normal((N, F)).astype(np.float32)
    y = rng.integers(0, C, N)
    w1 = (rng.standard_normal((F, H)) * 0.3).astype(np.float32)
    w2 = (rng.standard_normal((H, C)) * 0.3).astype(np.float32)
    return idx, val, x, y, w1, w2


def build(torch, spmm, idx, val, x, y, w1, w2):
    class GraphConvolution(torch.nn.Module):
        def __init__(self, w):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.tensor(w))
            self.bias = torch.nn.Parameter(torch.zeros(w.shape[1]))

        def forward(self, inp, adj):
            return spmm(adj, torch.mm(inp, self.weight)) + self.bias

    class GCN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gc1, self.gc2 = GraphConvolution(w1), GraphConvolution(w2)

        def forward(self, x, adj):
            x = torch.relu(self.gc1(x, adj))
            return torch.log_softmax(self.gc2(x, adj), dim=1)

    adj = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(val), (N, N))
    model = GCN()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    features, labels = torch.tensor(x), torch.tensor(y)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(model(features, adj), labels)
        loss.backward()
        opt.step()
        return loss

    return model, step


def run(torch, spmm, compiled=False, steps=4):
    model, step = build(torch, spmm, *graph())
    if compiled:
        step = tracenn.compile(step)
    losses = [step().item() for _ in range(steps)]
    return losses, model.gc1.weight.detach().numpy()


def test_gcn_trains_the_same_eager_and_compiled():
    eager, w_eager = run(tracenn, tracenn.sparse.spmm)
    comp, w_comp = run(tracenn, tracenn.sparse.spmm, compiled=True)
    assert eager[-1] < eager[0]
    np.testing.assert_allclose(comp, eager, rtol=1e-5)
    # (XLA sums in another order in one fused program; Adam's first steps scale tiny differences up)
    np.testing.assert_allclose(w_comp, w_eager, rtol=1e-4, atol=1e-5)


def test_gcn_matches_numpy_forward():
    idx, val, x, y, w1, w2 = graph()
    a = np.zeros((N, N), np.float32)
    np.add.at(a, tuple(idx), val)
    h = np.maximum(a @ (x @ w1), 0)
    z = a @ (h @ w2)
    z = z - z.max(1, keepdims=True)
    want = -(z - np.log(np.exp(z).sum(1, keepdims=True)))[np.arange(N), y].mean()
    eager, _ = run(tracenn, tracenn.sparse.spmm, steps=1)
    np.testing.assert_allclose(eager[0], want, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Sparse invariant checks")
def test_gcn_matches_torch():
    torch = pytest.importorskip("torch")
    want, w_want = run(torch, torch.spmm)
    got, w_got = run(tracenn, tracenn.sparse.spmm, compiled=True)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    np.testing.assert_allclose(w_got, w_want, rtol=1e-4, atol=1e-5)
