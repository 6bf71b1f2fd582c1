"""``model.train()`` / ``model.eval()`` called inside a compiled function (a compiled train step
that starts with ``model.train()``, an evaluation function that starts with ``model.eval()``): the
program runs in the mode the call sets, and after every call, not only the one that traced, the
modules' ``training`` flags are what the function left them, as eagerly and in torch.compile."""
from __future__ import annotations

import numpy as np

import tracenn
from tracenn import nn


def _model():
    m = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.5), nn.BatchNorm1d(6), nn.Linear(6, 2))
    with tracenn.no_grad():
        for k, (name, p) in enumerate(m.named_parameters()):
            p.copy_(tracenn.tensor(np.sin(np.arange(p.numel()) + k).reshape(p.shape).astype(np.float32)))
    return m


X = tracenn.tensor(np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4))


def test_eval_inside_compiled_function_sticks_after_every_call():
    model = _model()
    traces = []

    @tracenn.compile
    def evaluate(x):
        traces.append(1)
        model.eval()
        return model(x)

    ref = _model().eval()(X)
    for _ in range(3):
        model.train()
        out = evaluate(X)
        assert model.training is False
        assert all(not m.training for m in model.modules())
        np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert len(traces) == 1  # the mode at entry was the same each time: one program


def test_train_and_eval_functions_alternate():
    model = _model()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)
    y = tracenn.tensor([0, 1, 0, 1, 1, 0, 0, 1])

    @tracenn.compile
    def train_step(x, y):
        model.train()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    @tracenn.compile
    @tracenn.no_grad()
    def evaluate(x):
        model.eval()
        return model(x)

    seen = []
    for _ in range(3):
        train_step(X, y)
        seen.append(model.training)
        evaluate(X)
        seen.append(model.training)
        model(X)  # an eager call after evaluate() runs in eval mode: running stats stay as they are
    assert seen == [True, False] * 3
    assert len(train_step._entries) <= 2 and len(evaluate._entries) == 1


def test_function_that_restores_the_mode_leaves_it():
    model = _model()

    @tracenn.compile
    def predict(x):
        was = model.training
        model.eval()
        out = model(x)
        model.train(was)
        return out

    for flag in (True, True, False, False):
        model.train(flag)
        predict(X)
        assert model.training is flag and model[1].training is flag
