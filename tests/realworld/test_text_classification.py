"""PyTorch's text classification tutorial: ``nn.EmbeddingBag`` over a flat tensor of token ids
with per-text ``offsets`` (built by a DataLoader ``collate_fn``), SGD with ``clip_grad_norm_``, a
StepLR schedule, accuracy with ``argmax(1) == label``, then predicting one text."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

VOCAB, CLASSES = 30, 4


def program(torch, init=None, compiled=False):
    nn = torch.nn

    class TextClassificationModel(nn.Module):
        def __init__(self, vocab_size, embed_dim, num_class):
            super(TextClassificationModel, self).__init__()
            self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, sparse=False)
            self.fc = nn.Linear(embed_dim, num_class)
            self.init_weights()

        def init_weights(self):
            initrange = 0.5
            self.embedding.weight.data.uniform_(-initrange, initrange)
            self.fc.weight.data.uniform_(-initrange, initrange)
            self.fc.bias.data.zero_()

        def forward(self, text, offsets):
            embedded = self.embedding(text, offsets)
            return self.fc(embedded)

    rng = np.random.default_rng(0)
    # each class's texts draw most tokens from its own quarter of the vocabulary, so there is something to learn
    train_iter = []
    for _ in range(32):
        label = int(rng.integers(1, CLASSES + 1))
        n = int(rng.integers(3, 7))
        own = rng.integers((label - 1) * 7, label * 7, n)
        train_iter.append((label, [int(t) for t in np.where(rng.random(n) < 0.8, own, rng.integers(0, VOCAB, n))]))
    text_pipeline = lambda x: x  # noqa: E731  (the tutorial's vocab(tokenizer(x)))
    label_pipeline = lambda x: int(x) - 1  # noqa: E731
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    def collate_batch(batch):
        label_list, text_list, offsets = [], [], [0]
        for _label, _text in batch:
            label_list.append(label_pipeline(_label))
            processed_text = torch.tensor(text_pipeline(_text), dtype=torch.int64)
            text_list.append(processed_text)
            offsets.append(processed_text.size(0))
        label_list = torch.tensor(label_list, dtype=torch.int64)
        offsets = torch.tensor(offsets[:-1]).cumsum(dim=0)
        text_list = torch.cat(text_list)
        return label_list.to(device), text_list.to(device), offsets.to(device)

    torch.manual_seed(0)
    model = TextClassificationModel(VOCAB, 8, CLASSES).to(device)
    if init:
        init(model)
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1.0, gamma=0.5)
    dataloader = torch.utils.data.DataLoader(train_iter, batch_size=8, shuffle=False, collate_fn=collate_batch)

    def train_step(label, text, offsets):
        optimizer.zero_grad()
        predicted_label = model(text, offsets)
        loss = criterion(predicted_label, label)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        optimizer.step()
        return loss, predicted_label

    step = tracenn.compile(train_step) if compiled else train_step
    losses, accs, lrs = [], [], []
    for epoch in range(3):
        model.train()
        total_acc, total_count = 0, 0
        for idx, (label, text, offsets) in enumerate(dataloader):
            loss, predicted_label = step(label, text, offsets)
            losses.append(loss.item())
            total_acc += (predicted_label.argmax(1) == label).sum().item()
            total_count += label.size(0)
        accs.append(total_acc / total_count)
        scheduler.step()
        lrs.append(scheduler.get_last_lr()[0])
    model.eval()
    with torch.no_grad():
        output = model(torch.tensor([1, 2, 3, 4]), torch.tensor([0]))
        pred = output.argmax(1).item() + 1
    return {"losses": losses, "accuracy": accs, "lr": lrs, "pred": [pred], "output": output.numpy(), "model": model}


def test_learns(rw):
    result = program(tracenn)
    rw.assert_learns(result["losses"])
    assert result["lr"] == [2.5, 1.25, 0.625]


def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, compiled=True))
