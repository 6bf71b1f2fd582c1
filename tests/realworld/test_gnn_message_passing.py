"""A graph classifier written as torch_geometric's internals write message passing in plain torch:
GCN (self loops by cat + arange, degree by bincount(minlength), pow(-0.5) with masked_fill_ of
inf, index_add_), GAT (segment softmax: scatter_reduce amax with include_self=False, exp,
scatter_add_), GraphSAGE (scatter_reduce mean) and mean/max pooling per graph of a batch vector.
Compiled, the degree is a scatter_add_ of ones: bincount's length depends on values."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False):
    nn = torch.nn
    F = nn.functional

    class GCNConv(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.lin = nn.Linear(i, o, bias=False)
            self.bias = nn.Parameter(torch.zeros(o))

        def forward(self, x, edge_index):
            N = x.size(0)
            loop = torch.arange(0, N, dtype=torch.long, device=edge_index.device).unsqueeze(0).repeat(2, 1)
            row, col = torch.cat([edge_index, loop], dim=1)
            if compiled:
                deg = torch.zeros(N, dtype=x.dtype).scatter_add_(0, col, torch.ones(col.size(0), dtype=x.dtype))
            else:
                deg = torch.bincount(col, minlength=N).to(x.dtype)
            dinv = deg.pow(-0.5)
            dinv.masked_fill_(torch.isinf(dinv), 0)
            x = self.lin(x)
            msg = (dinv[row] * dinv[col]).view(-1, 1) * x[row]
            return torch.zeros(N, x.size(1), dtype=x.dtype).index_add_(0, col, msg) + self.bias

    class GATConv(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.lin = nn.Linear(i, o, bias=False)
            self.att_src = nn.Parameter(torch.randn(1, o) * 0.1)
            self.att_dst = nn.Parameter(torch.randn(1, o) * 0.1)

        def forward(self, x, edge_index):
            N = x.size(0)
            src, dst = edge_index
            h = self.lin(x)
            a = F.leaky_relu((h * self.att_src).sum(-1)[src] + (h * self.att_dst).sum(-1)[dst], 0.2)
            amax = torch.full((N,), float("-inf")).scatter_reduce(0, dst, a, reduce="amax", include_self=False)
            a = (a - amax[dst]).exp()
            alpha = a / (torch.zeros(N).scatter_add_(0, dst, a)[dst] + 1e-16)
            return torch.zeros_like(h).index_add_(0, dst, alpha.unsqueeze(-1) * h[src])

    class SAGEConv(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.lin_l = nn.Linear(i, o)
            self.lin_r = nn.Linear(i, o, bias=False)

        def forward(self, x, edge_index):
            src, dst = edge_index
            index = dst.view(-1, 1).expand(-1, x.size(1))
            agg = torch.zeros_like(x).scatter_reduce(0, index, x[src], reduce="mean", include_self=False)
            return self.lin_l(agg) + self.lin_r(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2, self.c3 = GCNConv(5, 16), GATConv(16, 16), SAGEConv(16, 8)
            self.head = nn.Linear(16, 3)

        def forward(self, x, edge_index, batch, num_graphs):
            x = F.relu(self.c1(x, edge_index))
            x = F.elu(self.c2(x, edge_index))
            x = self.c3(x, edge_index)
            cnt = torch.zeros(num_graphs).scatter_add_(0, batch, torch.ones_like(batch, dtype=torch.float))
            mean = torch.zeros(num_graphs, x.size(1)).index_add_(0, batch, x) / cnt.clamp(min=1).unsqueeze(-1)
            mx = torch.full((num_graphs, x.size(1)), -1e9).scatter_reduce(
                0, batch.unsqueeze(-1).expand_as(x), x, reduce="amax", include_self=False)
            return self.head(torch.cat([mean, mx], -1))

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((12, 5)).astype(np.float32))
    edge_index = torch.tensor(rng.integers(0, 11, (2, 30)))  # node 11 has no edges
    batch = torch.tensor(np.repeat(np.arange(3), 4))
    y = torch.tensor([0, 2, 1])
    model = Net()
    if init:
        init(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def train_step(x, edge_index, batch, y):
        opt.zero_grad()
        out = model(x, edge_index, batch, 3)
        loss = F.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss

    step = tracenn.compile(train_step) if compiled else train_step
    losses = [step(x, edge_index, batch, y).item() for _ in range(3)]
    with torch.no_grad():
        logits = model(x, edge_index, batch, 3)
    return {"losses": losses, "logits": logits.numpy(), "model": model}


@pytest.mark.slow
def test_learns():
    result = program(tracenn)
    assert result["losses"][-1] < result["losses"][0]


@pytest.mark.slow
def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, compiled=True))
