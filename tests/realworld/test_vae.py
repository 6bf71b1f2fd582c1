"""PyTorch's examples/vae: a fully connected VAE with ``reparameterize``, the BCE + KL loss summed
over the batch, Adam, a DataLoader over a TensorDataset, evaluation under no_grad and decoding
samples. The reparameterisation noise is a fixed tensor, so the runs compare."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False, noise=None):
    nn = torch.nn
    F = nn.functional

    class VAE(nn.Module):
        def __init__(self):
            super(VAE, self).__init__()
            self.fc1 = nn.Linear(64, 32)
            self.fc21 = nn.Linear(32, 4)
            self.fc22 = nn.Linear(32, 4)
            self.fc3 = nn.Linear(4, 32)
            self.fc4 = nn.Linear(32, 64)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std) if noise is None else torch.full_like(std, noise)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 64))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 64), reduction='sum')
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    torch.manual_seed(1)
    device = torch.device("cpu")
    images = torch.from_numpy(np.random.default_rng(0).random((32, 1, 8, 8), dtype=np.float32))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, torch.zeros(32, dtype=torch.long)),
                                         batch_size=8, shuffle=False)
    model = VAE().to(device)
    if init:
        init(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def train_step(data):
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        optimizer.step()
        return loss

    step = tracenn.compile(train_step) if compiled else train_step
    losses, epoch_losses = [], []
    for epoch in range(1, 4):
        model.train()
        train_loss = 0
        for batch_idx, (data, _) in enumerate(loader):
            data = data.to(device)
            loss = step(data)
            train_loss += loss.item()
            losses.append(loss.item())
        epoch_losses.append(train_loss / len(loader.dataset))
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(loader):
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 4)
                comparison = torch.cat([data[:n], recon_batch.view(8, 1, 8, 8)[:n]])
        sample = model.decode(torch.zeros(4, 4) + 0.5).cpu()
    return {"losses": losses, "epoch_losses": epoch_losses, "test_loss": [test_loss / len(loader.dataset)],
            "comparison": comparison.numpy(), "sample": sample.numpy(), "model": model}


def test_trains_with_random_noise(rw):
    result = program(tracenn)
    rw.assert_learns(result["epoch_losses"])
    assert result["comparison"].shape == (8, 1, 8, 8)
    assert ((result["sample"] > 0) & (result["sample"] < 1)).all()


def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, noise=0.3))


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, noise=0.3, compiled=True))
