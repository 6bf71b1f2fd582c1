"""The "Extending PyTorch" tutorials' custom ``autograd.Function``s (MyReLU with ``ctx``, a
Legendre polynomial, LinearFunction in torch 2's ``setup_context`` style) inside a module with
``register_buffer`` (persistent and not) and ``extra_repr``; RMSprop; a checkpoint of model and
optimizer saved with ``torch.save`` to a BytesIO and loaded back; ``gradcheck`` in float64."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest

import tracenn


def program(torch, init=None, compiled=False):
    nn = torch.nn

    class MyReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0
            return grad_input

    class LegendrePolynomial3(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return 0.5 * (5 * input ** 3 - 3 * input)

        @staticmethod
        def backward(ctx, grad_output):
            input, = ctx.saved_tensors
            return grad_output * 1.5 * (5 * input ** 2 - 1)

    class LinearFunction(torch.autograd.Function):
        @staticmethod
        def forward(input, weight, bias):
            output = input.mm(weight.t())
            if bias is not None:
                output += bias.unsqueeze(0).expand_as(output)
            return output

        @staticmethod
        def setup_context(ctx, inputs, output):
            input, weight, bias = inputs
            ctx.save_for_backward(input, weight, bias)

        @staticmethod
        def backward(ctx, grad_output):
            input, weight, bias = ctx.saved_tensors
            grad_input = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                grad_input = grad_output.mm(weight)
            if ctx.needs_input_grad[1]:
                grad_weight = grad_output.t().mm(input)
            if bias is not None and ctx.needs_input_grad[2]:
                grad_bias = grad_output.sum(0)
            return grad_input, grad_weight, grad_bias

    class MyLinear(nn.Module):
        def __init__(self, input_features, output_features, bias=True):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(output_features, input_features))
            if bias:
                self.bias = nn.Parameter(torch.empty(output_features))
            else:
                self.register_parameter('bias', None)
            nn.init.uniform_(self.weight, -0.5, 0.5)
            if self.bias is not None:
                nn.init.uniform_(self.bias, -0.1, 0.1)
            self.register_buffer("calls", torch.zeros((), dtype=torch.long))
            self.register_buffer("running_mean", torch.zeros(output_features))
            self.register_buffer("scratch", torch.zeros(1), persistent=False)

        def forward(self, input):
            out = LinearFunction.apply(input, self.weight, self.bias)
            if self.training:
                self.calls += 1
                with torch.no_grad():
                    self.running_mean.mul_(0.9).add_(out.mean(0), alpha=0.1)
            return out

        def extra_repr(self):
            return 'input_features={}, output_features={}, bias={}'.format(
                self.weight.size(1), self.weight.size(0), self.bias is not None)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = MyLinear(5, 8)
            self.l2 = MyLinear(8, 3)
            self.a = nn.Parameter(torch.tensor(0.1))

        def forward(self, x):
            h = MyReLU.apply(self.l1(x))
            h = h + self.a * LegendrePolynomial3.apply(h)
            return self.l2(h)

    torch.manual_seed(0)
    model = Net()
    if init:
        init(model)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((16, 5)).astype(np.float32))
    y = torch.tensor(rng.integers(0, 3, 16))
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-2)

    def train_step(x, y):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    step = tracenn.compile(train_step) if compiled else train_step
    losses = [step(x, y).item() for _ in range(5)]

    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 5}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed = Net()
    resumed.load_state_dict(checkpoint["model"])
    resumed_optimizer = torch.optim.RMSprop(resumed.parameters(), lr=1e-2)
    resumed_optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.eval()
    with torch.no_grad():
        out = resumed(x)
    acc = out.argmax(dim=1).eq(y).sum().item() / y.size(0)
    # one more step on the original and on the resumed pair
    next_loss = step(x, y).item()
    resumed.train()
    resumed_optimizer.zero_grad()
    resumed_loss = nn.functional.cross_entropy(resumed(x), y)
    resumed_loss.backward()
    resumed_optimizer.step()
    inputs = (torch.randn(4, 5, dtype=torch.double, requires_grad=True),
              torch.randn(3, 5, dtype=torch.double, requires_grad=True), None)
    return {"losses": losses, "accuracy": [acc], "next": [next_loss, resumed_loss.item()],
            "calls": [int(model.l1.calls), int(resumed.l1.calls)], "epoch": [checkpoint["epoch"]],
            "keys": [sorted(checkpoint["model"]) == ["a", "l1.bias", "l1.calls", "l1.running_mean", "l1.weight",
                                                      "l2.bias", "l2.calls", "l2.running_mean", "l2.weight"]],
            "repr": [repr(model.l1) == "MyLinear(input_features=5, output_features=8, bias=True)"],
            "gradcheck": [torch.autograd.gradcheck(LinearFunction.apply, inputs, eps=1e-6, atol=1e-4)],
            "model": resumed}


def test_trains_and_resumes_from_the_checkpoint(rw):
    result = program(tracenn)
    rw.assert_learns(result["losses"])
    assert result["next"][0] == pytest.approx(result["next"][1], rel=1e-6)  # resumed == original
    assert result["calls"] == [6, 6] and result["keys"] == [True] and result["repr"] == [True]
    assert result["gradcheck"] == [True]


def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


def test_compiled_step_is_one_program_and_matches_pytorch(rw):
    """The custom Functions' backwards (MyReLU's ``grad[x < 0] = 0`` included) are part of the
    compiled step's program: no call runs eagerly."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rw.assert_runs_close(*rw.with_torch(program, compiled=True))
    assert not [w for w in caught if "eagerly" in str(w.message)]
