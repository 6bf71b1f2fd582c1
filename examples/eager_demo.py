"""A short eager tour of tracenn: tensors, views, autograd and a small training loop.

Run: python examples/eager_demo.py
Everything below is written exactly as it would be for PyTorch (``import tracenn as torch``).
"""
import tracenn as torch

torch.manual_seed(0)

# Tensors behave like torch's: dtypes, promotion, printing, views that alias their base.
x = torch.arange(12.).view(3, 4)
x[0].add_(100)                      # an in-place write through a view reaches the base
print("x =", x)
print("x.t().is_contiguous():", x.t().is_contiguous(), "| int / int ->", (torch.tensor([3]) / 2).dtype)

# Autograd: a dynamic tape, gradients accumulate into .grad.
w = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
loss = (w * w).sum()
loss.backward()
print("d(sum w^2)/dw =", w.grad)

# A two-layer network fitted to y = sin(x), with plain tensors and SGD with momentum.
n, hidden = 256, 64
inputs = torch.linspace(-3, 3, n).unsqueeze(1)
targets = torch.sin(inputs)
params = [
    (torch.randn(1, hidden) * 0.5).requires_grad_(),
    torch.zeros(hidden, requires_grad=True),
    (torch.randn(hidden, 1) * 0.1).requires_grad_(),
    torch.zeros(1, requires_grad=True),
]
momentum = [torch.zeros_like(p) for p in params]
lr = 0.05
for step in range(301):
    w1, b1, w2, b2 = params
    pred = torch.tanh(inputs @ w1 + b1) @ w2 + b2
    loss = ((pred - targets) ** 2).mean()
    for p in params:
        p.grad = None
    loss.backward()
    with torch.no_grad():               # optimizer updates are in-place and untracked
        for p, buf in zip(params, momentum):
            buf.mul_(0.9).add_(p.grad)
            p.sub_(lr * buf)
    if step % 100 == 0:
        print(f"step {step:3d}  mse {loss.item():.5f}")

print("final mse below 0.01:", loss.item() < 0.01)
