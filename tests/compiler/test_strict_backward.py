"""A compiled step raises where eager autograd raises: a second backward through a freed graph, and
a backward that needs a tensor changed in place since it was saved (``x.add_``, or the actor-critic
pattern: ``optimizer.step()`` between two backwards through one graph). The traced backward keeps
eager's saved-tensor records and freed nodes (compiler/autodiff.py), so it raises while tracing,
with eager's error and message. Valid programs (retain_graph, accumulation, create_graph, in-place
ops on what no backward reads, ordinary training) still equal eager."""
import warnings

import numpy as np
import pytest

import tracenn
from tracenn import nn
from tracenn.errors import BackwardError, SavedTensorModifiedError

FREED = "Trying to backward through the graph a second time"
MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


@pytest.fixture(autouse=True)
def _no_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a call that falls back to eager warns: fail instead
        yield


def _lin(seed=0):
    tracenn.manual_seed(seed)
    return nn.Linear(3, 2)


def _x():
    return tracenn.tensor(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)


def _raises_both(make, error, match, calls=1):
    """``make()`` -> a step function: it raises ``error`` eagerly and compiled, on every call."""
    with pytest.raises(error, match=match) as eager:
        make()(_x())
    cf = tracenn.compile(make())
    for _ in range(calls):  # (a failed trace leaves nothing cached: the next call raises again)
        with pytest.raises(error, match=match) as compiled:
            cf(_x())
    assert str(compiled.value) == str(eager.value)
    assert any(__file__ in n for n in getattr(compiled.value, "__notes__", ()))  # the user's line


# ---- the three cases: raise as eager -----------------------------------------------------------

def _twice():
    lin = _lin()

    def step(x):
        loss = lin(x).exp().sum()
        loss.backward()
        loss.backward()  # exp's saved output was freed by the first backward
        return loss
    return step


def test_second_backward_without_retain_graph_raises_compiled_as_eagerly():
    _raises_both(_twice, BackwardError, FREED, calls=2)


def test_second_autograd_grad_without_retain_graph_raises_compiled_as_eagerly():
    def make():
        lin = _lin()

        def step(x):
            loss = lin(x).tanh().sum()
            tracenn.autograd.grad(loss, [lin.weight])
            return tracenn.autograd.grad(loss, [lin.weight])[0]
        return step
    _raises_both(make, BackwardError, FREED)


def _saved_output_changed():
    lin = _lin()

    def step(x):
        z = lin(x).exp()
        z.add_(1)  # exp saved its output
        z.sum().backward()
        return z
    return step


def _saved_input_changed():
    lin = _lin()

    def step(x):
        y = lin(x)
        w = (y * y).sum()
        y.mul_(2)  # mul saved y
        w.backward()
        return w
    return step


def test_in_place_change_of_a_saved_output_raises_compiled_as_eagerly():
    _raises_both(_saved_output_changed, SavedTensorModifiedError, MODIFIED + r".*output 0 of Exp, is at version 1")


def test_in_place_change_of_a_saved_input_raises_compiled_as_eagerly():
    _raises_both(_saved_input_changed, SavedTensorModifiedError, MODIFIED + r".*output 0 of Mul, is at version 1")


class _ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        tracenn.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8))
        self.actor = nn.Linear(8, 2)
        self.critic = nn.Linear(8, 1)

    def forward(self, x):
        h = self.body(x).relu()
        return self.actor(h), self.critic(h)


def _actor_critic():
    net = _ActorCritic()
    opt = tracenn.optim.SGD(net.parameters(), lr=0.1)

    def step(x):
        logits, value = net(x)
        actor_loss = logits.logsumexp(1).mean()
        critic_loss = (value ** 2).mean()
        opt.zero_grad()
        actor_loss.backward(retain_graph=True)
        opt.step()  # changes body.2.weight in place: the critic's backward needs the old one
        critic_loss.backward()
        return critic_loss
    return step


def test_actor_critic_step_between_backwards_raises_compiled_as_eagerly():
    _raises_both(_actor_critic, SavedTensorModifiedError,
                 MODIFIED + r".*\[8, 8\]\].* is at version 2; expected version 1")


def test_torch_raises_the_same_errors():
    torch = pytest.importorskip("torch")
    x = torch.arange(12, dtype=torch.float32).reshape(4, 3) / 10
    lin = torch.nn.Linear(3, 2)
    loss = lin(x).exp().sum()
    loss.backward()
    with pytest.raises(RuntimeError, match=FREED):
        loss.backward()
    z = lin(x).exp()
    z.add_(1)
    with pytest.raises(RuntimeError, match=MODIFIED + r".*output 0 of Exp, is at version 1"):
        z.sum().backward()
    body = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU())
    actor, critic = torch.nn.Linear(8, 2), torch.nn.Linear(8, 1)
    opt = torch.optim.SGD([*body.parameters(), *actor.parameters(), *critic.parameters()], lr=0.1)
    h = body(x)
    actor_loss, critic_loss = actor(h).logsumexp(1).mean(), (critic(h) ** 2).mean()
    opt.zero_grad()
    actor_loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED + r".*\[8, 8\]\].* is at version 2; expected version 1"):
        critic_loss.backward()


# ---- valid programs: as eager ------------------------------------------------------------------

def _equal_eager(make, n=2):
    """``make()`` -> (step, tensors to compare); the compiled step equals the eager one, call by call."""
    step_e, ts_e = make()
    step_c, ts_c = make()
    cf = tracenn.compile(step_c)
    for i in range(n):
        x = _x() + i
        out_e, out_c = step_e(x), cf(x)
        np.testing.assert_allclose(out_c.detach().numpy(), out_e.detach().numpy(), rtol=1e-5, atol=1e-6)
        for a, b in zip(ts_e, ts_c):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), rtol=1e-5, atol=1e-6)
    return cf


def test_retain_graph_twice_equals_eager():
    def make():
        lin = _lin()

        def step(x):
            lin.zero_grad()
            loss = lin(x).exp().sum()
            loss.backward(retain_graph=True)
            loss.backward(retain_graph=True)
            loss.backward()
            return loss
        return step, _grads_of(lin)
    _equal_eager(make)


class _grads_of:
    """The module's current .grad tensors, read when compared."""

    def __init__(self, m):
        self.m = m

    def __iter__(self):
        return iter([p.grad for p in self.m.parameters()])


def test_second_backward_through_nodes_that_save_nothing_equals_eager():
    def make():
        lin = _lin()

        def step(x):
            lin.zero_grad()
            loss = (lin.weight + x.sum()).sum()  # add and sum save nothing: nothing is freed
            loss.backward()
            loss.backward()
            return loss
        return step, _grads_of(lin)
    _equal_eager(make)


def test_gradient_accumulation_and_training_equal_eager():
    def make():
        lin = _lin()
        opt = tracenn.optim.SGD(lin.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            for k in range(2):  # micro-batches
                lin(x[2 * k:2 * k + 2]).exp().sum().backward()
            opt.step()
            loss = lin(x).exp().sum()  # a fresh graph after the step: versions as saved
            loss.backward()
            opt.step()
            return loss
        return step, list(lin.parameters())
    _equal_eager(make)


def test_actor_critic_with_the_step_after_both_backwards_equals_eager():
    def make():
        net = _ActorCritic()
        opt = tracenn.optim.SGD(net.parameters(), lr=0.1)

        def step(x):
            logits, value = net(x)
            opt.zero_grad()
            logits.logsumexp(1).mean().backward(retain_graph=True)
            (value ** 2).mean().backward()
            opt.step()
            return value.sum()
        return step, list(net.parameters())
    _equal_eager(make)


def test_create_graph_double_backward_equals_eager():
    def make():
        lin = _lin()

        def step(x):
            lin.zero_grad()
            x = x.requires_grad_()
            out = lin(x).tanh().sum()
            (g,) = tracenn.autograd.grad(out, x, create_graph=True)
            penalty = (g ** 2).sum()
            penalty.backward()
            return penalty
        return step, _grads_of(lin)
    _equal_eager(make)


def test_in_place_ops_that_no_backward_reads_equal_eager():
    def make():
        lin = _lin()

        def step(x):
            lin.zero_grad()
            y = lin(x)
            y.mul_(2)       # mul_'s own node holds the old y
            y.add_(1)       # add saves nothing
            z = y.sigmoid()
            y[0] = 0.0      # y is no longer read by a backward (sigmoid saved its output)
            loss = z.sum() + y.sum()
            loss.backward()
            return loss
        return step, _grads_of(lin)
    _equal_eager(make)


def test_autograd_grad_checks_only_the_nodes_it_needs():
    def make():
        lin = _lin()
        b = nn.Parameter(tracenn.ones(2))

        def step(x):
            q = b.exp()
            q.add_(1)  # exp's saved output changed: only a gradient for b would need it
            loss = (lin(x) + q).sum()
            (g,) = tracenn.autograd.grad(loss, [lin.weight])
            return g
        return step, ()
    _equal_eager(make)


# ---- what matmul saves: only what its needed gradients read, as torch --------------------------

def _one_layer_actor_critic(x_requires_grad):
    lin = _lin()
    opt = tracenn.optim.SGD(lin.parameters(), lr=0.1)

    def step(x):
        if x_requires_grad:
            x = x.requires_grad_()
        h = lin(x)
        opt.zero_grad()
        h.pow(2).sum().backward(retain_graph=True)
        opt.step()  # changes lin.weight, which the matmul saved only if x needs a gradient
        loss = h.sum() * 2
        loss.backward()
        return loss
    return step, list(lin.parameters())


def test_a_weight_that_no_gradient_reads_may_change_between_backwards():
    cf = _equal_eager(lambda: _one_layer_actor_critic(False))
    assert "vjp_matmul" in str(cf.graph)


def test_a_weight_the_input_gradient_reads_may_not_change_between_backwards():
    _raises_both(lambda: _one_layer_actor_critic(True)[0], SavedTensorModifiedError,
                 MODIFIED + r".*\[2, 3\]\] is at version 2; expected version 1")


def test_torch_saves_a_linear_weight_only_for_the_input_gradient():
    torch = pytest.importorskip("torch")
    for x_requires_grad in (False, True):
        lin = torch.nn.Linear(3, 2)
        opt = torch.optim.SGD(lin.parameters(), lr=0.1)
        x = torch.ones(4, 3, requires_grad=x_requires_grad)
        h = lin(x)
        h.pow(2).sum().backward(retain_graph=True)
        opt.step()
        if x_requires_grad:
            # (torch names the transposed view it saved, [3, 2]; tracenn the parameter, [2, 3])
            with pytest.raises(RuntimeError, match=MODIFIED + r".*\[3, 2\]\].* is at version 2; expected version 1"):
                (h.sum() * 2).backward()
        else:
            (h.sum() * 2).backward()


def test_an_inference_tensor_that_a_gradient_reads_raises_compiled_as_eagerly():
    with tracenn.inference_mode():
        x = _x()
    for make in (_lin, lambda: _step_of(_lin())):  # a compiled forward, and a step with backward inside
        with pytest.raises(BackwardError, match="Inference tensors cannot be saved for backward"):
            make()(x)
        with pytest.raises(BackwardError, match="Inference tensors cannot be saved for backward"):
            tracenn.compile(make())(x)
    with tracenn.inference_mode():  # (nothing is recorded there: it runs)
        np.testing.assert_allclose(tracenn.compile(_lin())(x).numpy(), _lin()(x).numpy(), rtol=1e-6)


def _step_of(lin):
    def step(x):
        loss = lin(x).sum()
        loss.backward()
        return loss
    return step
