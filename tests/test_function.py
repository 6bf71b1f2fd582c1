"""Custom autograd.Function: forward without recording, the user's backward in the graph."""
import numpy as np
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
    assert out.grad_fn.name() == "MulAddBackward"  # torch's name for a custom Function's node
    assert repr(out.grad_fn).startswith("<tracenn.autograd.function.MulAddBackward object at 0x")
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


def _linear_function(lib):
    """torch 2's style (the "Extending PyTorch" tutorial's LinearFunction): ``forward`` without
    ``ctx``, ``setup_context`` saves what ``backward`` needs; a default argument is bound."""
    class LinearFunction(lib.autograd.Function):
        @staticmethod
        def forward(input, weight, bias=None):
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
            grad_bias = grad_output.sum(0) if bias is not None and ctx.needs_input_grad[2] else None
            return grad_output.mm(weight), grad_output.t().mm(input), grad_bias
    return LinearFunction



def _run_linear_function(lib, with_bias):
    x = lib.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
    w = lib.tensor([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]], requires_grad=True)
    b = lib.tensor([0.1, 0.2, 0.3], requires_grad=True)
    fn = _linear_function(lib)
    out = fn.apply(x, w, b) if with_bias else fn.apply(x, w)
    (out * lib.tensor([1.0, 2.0, 3.0])).sum().backward()
    return [t.detach().numpy() for t in (out, x.grad, w.grad)] + [None if b.grad is None else b.grad.numpy()]


@pytest.mark.parametrize("with_bias", [True, False])
def test_function_with_setup_context(with_bias):
    out, gx, gw, gb = _run_linear_function(tracenn, with_bias)
    x = np.array([[1.0, 2.0], [3.0, -1.0]])
    w = np.array([[0.5, -1.0], [2.0, 0.25], [1.0, 1.0]])
    g = np.tile([1.0, 2.0, 3.0], (2, 1))
    np.testing.assert_allclose(out, x @ w.T + (np.array([0.1, 0.2, 0.3]) if with_bias else 0), rtol=1e-6)
    np.testing.assert_allclose(gx, g @ w, rtol=1e-6)
    np.testing.assert_allclose(gw, g.T @ x, rtol=1e-6)
    assert (gb is None) != with_bias
    if with_bias:
        np.testing.assert_allclose(gb, g.sum(0), rtol=1e-6)


def test_function_with_setup_context_matches_torch(torch):
    for a, e in zip(_run_linear_function(tracenn, True), _run_linear_function(torch, True)):
        np.testing.assert_allclose(a, e, rtol=1e-6)


def _compiled_mul_add_step():
    """A parameter and a compiled SGD step whose loss is ``MulAdd.apply(w, w, 0).sum()``."""
    w = tracenn.nn.Parameter(tracenn.tensor([1.0, 2.0]))
    opt = tracenn.optim.SGD([w], lr=0.1)

    def step():
        opt.zero_grad()
        loss = MulAdd.apply(w, w, 0.0).sum()
        loss.backward()
        opt.step()
        return loss
    return w, tracenn.compile(step)


def test_function_in_a_compiled_step_is_one_program_with_its_backward():
    """loss.backward() traced inside a compiled step runs the Function's own backward as graph
    nodes: one program, torch's gradients (the backward here is 2 * w * g for w * w + 0)."""
    w, compiled = _compiled_mul_add_step()
    assert compiled().item() == 5.0
    assert w.tolist() == pytest.approx([0.8, 1.6])  # w - 0.1 * 2w
    assert compiled().item() == pytest.approx(0.8 ** 2 + 1.6 ** 2)
    assert w.tolist() == pytest.approx([0.64, 1.28])
    assert "runs eagerly" not in compiled.explain()


def test_function_differentiated_after_a_compiled_call_runs_eagerly():
    """Without a traced backward (autograd differentiates the call's output later), the
    Function's backward cannot be part of the program: the call runs eagerly, gradients right."""
    cm = tracenn.compile(lambda x: MulAdd.apply(x, x, 1.0))
    x = tracenn.tensor([2.0, 3.0], requires_grad=True)
    with pytest.warns(UserWarning, match="custom autograd.Function MulAdd is differentiated inside a compiled call"):
        y = cm(x)
    y.sum().backward()
    assert x.grad.tolist() == [4.0, 6.0]


def test_function_under_no_grad_compiles():
    cm = tracenn.compile(lambda x: MulAdd.apply(x, x, 1.0))
    with tracenn.no_grad():
        assert cm(tracenn.tensor([2.0], requires_grad=True)).tolist() == [5.0]
    assert "runs eagerly" not in cm.explain()




class _ReadsValues(tracenn.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 if float(x.sum()) > 0 else g * 0  # reads a value: no program can


def test_a_custom_backward_that_reads_values_runs_the_step_eagerly():
    w = tracenn.nn.Parameter(tracenn.tensor([1.0, 2.0]))
    opt = tracenn.optim.SGD([w], lr=0.1)

    @tracenn.compile
    def step():
        opt.zero_grad()
        loss = _ReadsValues.apply(w).sum()
        loss.backward()
        opt.step()
        return loss

    with pytest.warns(UserWarning, match="backward\\(\\) of the custom autograd.Function _ReadsValues reads tensor "
                                         "values"):
        assert step().item() == 6.0
    assert w.tolist() == pytest.approx([0.8, 1.8])
