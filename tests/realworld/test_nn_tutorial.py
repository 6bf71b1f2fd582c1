"""PyTorch's "What is torch.nn really?" tutorial: logistic regression from raw tensors (weights
with ``requires_grad_()``, a hand-written log_softmax and ``nll`` indexing with ``range``, the
update ``weights -= weights.grad * lr`` under no_grad and ``grad.zero_()``), then a Sequential CNN
with a ``Lambda`` layer, SGD with momentum and the tutorial's ``loss_batch``/validation loop."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False):
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    x_np = rng.random((64, 16), dtype=np.float32)
    x_train = torch.tensor(x_np)
    y_train = torch.tensor((x_np @ rng.standard_normal((16, 10))).argmax(1))  # a linear rule: learnable
    torch.manual_seed(0)
    weights = torch.tensor(rng.standard_normal((16, 10)).astype(np.float32)) / math.sqrt(16)
    weights.requires_grad_()
    bias = torch.zeros(10, requires_grad=True)

    def log_softmax(x):
        return x - x.exp().sum(-1).log().unsqueeze(-1)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    def nll(input, target):
        return -input[range(target.shape[0]), target].mean()

    def accuracy(out, yb):
        preds = torch.argmax(out, dim=1)
        return (preds == yb).float().mean()

    loss_func = nll
    bs, lr, epochs = 16, 0.5, 2
    n = x_train.shape[0]

    def train_step(xb, yb):
        nonlocal weights, bias  # module-level names in the tutorial
        pred = model(xb)
        loss = loss_func(pred, yb)
        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
        return loss

    step = tracenn.compile(train_step) if compiled else train_step
    losses = []
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            losses.append(step(x_train[start_i:end_i], y_train[start_i:end_i]).item())
    acc = accuracy(model(x_train), y_train).item()

    class Lambda(torch.nn.Module):
        def __init__(self, func):
            super().__init__()
            self.func = func

        def forward(self, x):
            return self.func(x)

    def preprocess(x):
        return x.view(-1, 1, 4, 4)

    net = torch.nn.Sequential(
        Lambda(preprocess),
        torch.nn.Conv2d(1, 4, kernel_size=3, stride=1, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        Lambda(lambda x: x.view(x.size(0), -1)),
        torch.nn.Linear(16, 10),
    )
    if init:
        init(net)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    train_dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train, y_train), batch_size=bs)

    def loss_batch(model, loss_func, xb, yb, opt=None):
        loss = loss_func(model(xb), yb)
        if opt is not None:
            loss.backward()
            opt.step()
            opt.zero_grad()
        return loss.item(), len(xb)

    cnn_losses, val_losses = [], []
    for epoch in range(2):
        net.train()
        for xb, yb in train_dl:
            cnn_losses.append(loss_batch(net, F.cross_entropy, xb, yb, opt)[0])
        net.eval()
        with torch.no_grad():
            ls, nums = zip(*[loss_batch(net, F.cross_entropy, xb, yb) for xb, yb in train_dl])
        val_losses.append(np.sum(np.multiply(ls, nums)) / np.sum(nums))
    return {"losses": losses, "accuracy": [acc], "cnn_losses": cnn_losses, "val_loss": val_losses,
            "weights": weights.detach().numpy(), "model": net}


def test_learns(rw):
    result = program(tracenn)
    rw.assert_learns(result["losses"])
    assert result["val_loss"][1] < result["val_loss"][0]


def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


def test_compiled_manual_update_matches_pytorch(rw):
    """The raw-tensor step compiles: the in-place updates under no_grad and grad.zero_() are
    written back to the closure's tensors."""
    rw.assert_runs_close(*rw.with_torch(program, compiled=True))
