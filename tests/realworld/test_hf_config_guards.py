"""Hugging Face models read options from a plain config object at every forward
(``if self.config.output_hidden_states``, ``return_dict``, ``use_cache``): a compiled call guards
the plain attributes of such option objects by value, as torch.compile guards the attributes a
forward reads, so changing ``model.config.x`` after the first call compiles anew instead of
running the program that baked in the old value."""
from __future__ import annotations

import dataclasses
import types

import numpy as np

import tracenn
from tracenn import nn


class Config:
    def __init__(self, **kw):
        self.hidden_size = 4
        self.output_hidden_states = False
        self.scale = 1.0
        self.__dict__.update(kw)


class Layer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x):
        return self.dense(x) * self.config.scale


class Encoder(nn.Module):
    """The config is shared by every module, as transformers' models share it."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.layer = nn.ModuleList([Layer(config) for _ in range(2)])

    def forward(self, x, output_hidden_states=None):
        output_hidden_states = (output_hidden_states if output_hidden_states is not None
                                else self.config.output_hidden_states)
        hidden = (x,) if output_hidden_states else None
        for layer in self.layer:
            x = layer(x)
            if output_hidden_states:
                hidden = hidden + (x,)
        return (x, hidden) if output_hidden_states else (x,)


def _x():
    return tracenn.tensor(np.arange(8, dtype=np.float32).reshape(2, 4) / 8)


def test_config_flag_changed_after_compiling_changes_the_outputs():
    model = Encoder(Config())
    cm = tracenn.compile(model)
    x = _x()
    with tracenn.no_grad():
        assert len(cm(x)) == 1
        model.config.output_hidden_states = True
        out = cm(x)
        assert len(out) == 2 and len(out[1]) == 3
        model.config.output_hidden_states = False
        assert len(cm(x)) == 1
    assert len(cm._entries) == 2  # (the first program is used again)
    assert "attribute 'config.output_hidden_states' changed: False -> True" in cm.explain()


def test_config_number_read_by_a_child_is_guarded():
    model = Encoder(Config())
    cm = tracenn.compile(model)
    x = _x()
    with tracenn.no_grad():
        first = cm(x)[0].numpy()
        model.config.scale = 2.0
        got = cm(x)[0].numpy()
        np.testing.assert_allclose(got, model(x)[0].numpy(), rtol=1e-6)
        assert not np.allclose(got, first)


def test_dataclass_and_namespace_options_and_a_nested_config():
    @dataclasses.dataclass
    class TextConfig:
        scale: float = 1.0
        hidden_size: int = 4
        output_hidden_states: bool = False

    outer = types.SimpleNamespace(text_config=TextConfig())

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = outer
            self.inner = Layer(outer.text_config)

        def forward(self, x):
            return self.inner(x) * self.config.text_config.scale

    model = Wrapper()
    cm = tracenn.compile(model)
    x = _x()
    with tracenn.no_grad():
        first = cm(x).numpy()
        outer.text_config.scale = 3.0
        np.testing.assert_allclose(cm(x).numpy(), 9 * first, rtol=1e-6)


def test_compiled_training_step_sees_the_config_of_its_model():
    model = Encoder(Config())
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        out = model(x)
        loss = sum(h.sum() for h in out[1]) if model.config.output_hidden_states else out[0].sum()
        loss.backward()
        opt.step()
        return loss

    cstep = tracenn.compile(step)
    x = _x()
    cstep(x)
    cstep(x)
    n = len(cstep._entries)
    model.config.output_hidden_states = True
    with tracenn.no_grad():
        want = sum(h.sum() for h in model(x)[1])  # (the loss this step computes, before its update)
    got = cstep(x)
    assert len(cstep._entries) == n + 1
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-6)


def test_unchanged_config_keeps_one_program_and_tracenn_objects_are_not_options():
    model = Encoder(Config())
    model.generator = tracenn.Generator()  # (tracenn's own objects are not option objects)
    cm = tracenn.compile(model)
    x = _x()
    with tracenn.no_grad():
        for _ in range(3):
            cm(x)
    assert len(cm._entries) == 1


def test_a_replaced_nested_config_is_watched():
    outer = types.SimpleNamespace(text_config=types.SimpleNamespace(scale=1.0))

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = outer
            self.dense = nn.Linear(4, 4)

        def forward(self, x):
            return self.dense(x) * self.config.text_config.scale

    model = Wrapper()
    cm = tracenn.compile(model)
    x = _x()
    with tracenn.no_grad():
        first = cm(x).numpy()
        outer.text_config = types.SimpleNamespace(scale=1.0)
        cm(x)
        outer.text_config.scale = 2.0
        np.testing.assert_allclose(cm(x).numpy(), 2 * first, rtol=1e-6)


def test_a_module_without_option_objects_keeps_the_fast_path():
    # (a module's own OrderedDicts of parameters and hooks are not option objects: treating them
    # as such watched 44 dicts at every call of this Sequential and lost the one-lookup path)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    cm = tracenn.compile(model)
    with tracenn.no_grad():
        cm(tracenn.randn(3, 4))
    assert cm._watch is None and cm._fast_entries
