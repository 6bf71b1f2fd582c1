"""Hugging Face models return a ``ModelOutput``: an OrderedDict subclass that is also a dataclass
(its ``__init__`` takes fields; ``__post_init__`` puts the non-None ones in the dict; items and
attributes mirror each other). A compiled call returns one rebuilt around its outputs: it was
rebuilt by calling ``type(out)(pairs)``, which gave a ModelOutput whose first field was a generator."""
from __future__ import annotations

import collections
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Optional

import numpy as np

import tracenn
from tracenn.utils._pytree import flatten, unflatten


class ModelOutput(OrderedDict):  # transformers.utils.generic.ModelOutput, trimmed
    def __post_init__(self):
        for field in fields(self):
            v = getattr(self, field.name)
            if v is not None:
                self[field.name] = v

    def __getitem__(self, k):
        return dict(self.items())[k] if isinstance(k, str) else self.to_tuple()[k]

    def __setattr__(self, name, value):
        if name in self.keys() and value is not None:
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __delitem__(self, *args, **kwargs):
        raise Exception(f"You cannot use ``__delitem__`` on a {self.__class__.__name__} instance.")

    def to_tuple(self):
        return tuple(self[k] for k in self.keys())


@dataclass
class SequenceClassifierOutput(ModelOutput):
    loss: Optional[tracenn.Tensor] = None
    logits: tracenn.Tensor = None
    hidden_states: Optional[tuple] = None


class Classifier(tracenn.nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = tracenn.nn.Linear(4, 3)

    def forward(self, input_ids=None, labels=None):
        logits = self.dense(input_ids)
        loss = tracenn.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=(input_ids, logits))


def _inputs():
    x = tracenn.tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4))
    return x, tracenn.tensor([0, 2])


def test_flatten_unflatten_keeps_a_model_output():
    x, y = _inputs()
    out = SequenceClassifierOutput(logits=x, hidden_states=(x, y))
    leaves, tree = flatten(out)
    assert len(leaves) == 3
    back = unflatten(tree, [y, x, y])
    assert type(back) is SequenceClassifierOutput and list(back.keys()) == ["logits", "hidden_states"]
    assert back.logits is y and back["logits"] is y and back[0] is y and back.loss is None
    assert back.hidden_states[0] is x


def test_compiled_model_returns_the_model_output_eager_returns():
    model = Classifier()
    cm = tracenn.compile(model)
    x, y = _inputs()
    got, want = cm(input_ids=x, labels=y), model(input_ids=x, labels=y)
    assert type(got) is SequenceClassifierOutput and list(got.keys()) == ["loss", "logits", "hidden_states"]
    np.testing.assert_allclose(got.loss.item(), want.loss.item(), rtol=1e-6)
    np.testing.assert_allclose(got["logits"].detach().numpy(), want.logits.detach().numpy(), rtol=1e-6)
    assert got[0] is got.loss and len(got.to_tuple()) == 3
    got.loss.backward()
    assert model.dense.weight.grad is not None
    no_labels = cm(input_ids=x)
    assert list(no_labels.keys()) == ["logits", "hidden_states"] and no_labels.loss is None


def test_compiled_training_step_reads_the_output_loss():
    model = Classifier()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        out = model(**batch)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        return out.loss

    x, y = _inputs()
    w = model.dense.weight.detach().clone()
    losses = [tracenn.compile(step)({"input_ids": x, "labels": y}).item() for _ in range(3)]
    assert losses[2] < losses[0] and not np.allclose(model.dense.weight.detach().numpy(), w.numpy())


def test_dict_subclasses_keep_their_type_and_factory():
    x, _ = _inputs()
    dd = collections.defaultdict(list, a=x)
    od = OrderedDict([("b", x), ("a", 1)])
    leaves, tree = flatten((dd, od))
    back = unflatten(tree, leaves)
    assert type(back[0]) is collections.defaultdict and back[0].default_factory is list and back[0]["a"] is x
    assert type(back[1]) is OrderedDict and list(back[1]) == ["b", "a"]


class BatchEncoding(collections.UserDict):  # transformers' tokenizer output, trimmed
    def __init__(self, data=None, n_sequences=1):
        super().__init__(data)
        self._n_sequences = n_sequences

    def __getattr__(self, item):
        try:
            return self.data[item]
        except KeyError:
            raise AttributeError(item)


def test_compiled_step_takes_a_user_dict_batch():
    model = Classifier()
    opt = tracenn.optim.SGD(model.parameters(), lr=0.1)

    def step(batch):
        out = model(input_ids=batch.input_ids, labels=batch["labels"])
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        return out.loss

    x, y = _inputs()
    cstep = tracenn.compile(step, fullgraph=True)
    losses = [cstep(BatchEncoding({"input_ids": x, "labels": y})).item() for _ in range(3)]
    assert len(cstep._entries) == 1 and losses[2] < losses[0]
    leaves, tree = flatten(BatchEncoding({"a": x, "b": 2}, n_sequences=3))
    back = unflatten(tree, leaves)
    assert type(back) is BatchEncoding and back.a is x and back["b"] == 2 and back._n_sequences == 3
