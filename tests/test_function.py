"""Custom autograd.Function: forward without recording, the user's backward in the graph."""
import pytest

import tracenn


class MulAdd(tracenn.autograd.Function):
    @staticmethod
    def forward(ctx, x, y, k):
        ctx.save_for_backward(x, y)
        ctx.k = k
        return x * y + k

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return g * y, g * x, None


class TwoOut(tracenn.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g1, g2):
        return g1 * 2 + g2 * 3


def test_function_gradients_and_grad_fn():
    x = tracenn.tensor([1.0, 2.0], requires_grad=True)
    y = tracenn.tensor([3.0, 4.0], requires_grad=True)
    out = MulAdd.apply(x, y, 10)
    assert out.tolist() == [13.0, 18.0]
    assert out.grad_fn.name() == "MulAddBackward0"
    (out * tracenn.tensor([1.0, 10.0])).sum().backward()
    assert x.grad.tolist() == [3.0, 40.0] and y.grad.tolist() == [1.0, 20.0]


def test_function_needs_input_grad_and_no_record():
    seen = {}

    class Probe(tracenn.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            seen["needs"] = ctx.needs_input_grad
            seen["grad_enabled"] = tracenn.is_grad_enabled()
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g, g

    a = tracenn.ones(2, requires_grad=True)
    Probe.apply(a, tracenn.ones(2))
    assert seen == {"needs": (True, False), "grad_enabled": False}
    assert Probe.apply(tracenn.ones(2), tracenn.ones(2)).grad_fn is None


def test_multi_output_function():
    x = tracenn.tensor([1.0], requires_grad=True)
    a, b = TwoOut.apply(x)
    (a + b).sum().backward()
    assert x.grad.tolist() == [5.0]
    x.grad = None
    a, _ = TwoOut.apply(x)  # the unused output's gradient arrives as zeros
    a.sum().backward()
    assert x.grad.tolist() == [2.0]


def test_wrong_gradient_shape_is_reported():
    class Bad(tracenn.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return tracenn.ones(3)

    x = tracenn.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"BadBackward returned an invalid gradient at index 0 - got \[3\]"):
        Bad.apply(x).backward()


def test_function_matches_torch(torch):
    class TExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            r = x.exp()
            ctx.save_for_backward(r)
            return r

        @staticmethod
        def backward(ctx, g):
            (r,) = ctx.saved_tensors
            return g * r

    class Exp(tracenn.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            r = x.exp()
            ctx.save_for_backward(r)
            return r

        @staticmethod
        def backward(ctx, g):
            (r,) = ctx.saved_tensors
            return g * r

    xt = torch.tensor([0.5, -1.0], requires_grad=True)
    x = tracenn.tensor([0.5, -1.0], requires_grad=True)
    (TExp.apply(xt) ** 2).sum().backward()
    (Exp.apply(x) ** 2).sum().backward()
    assert abs(x.grad.numpy() - xt.grad.numpy()).max() < 1e-6
