"""PyTorch's examples/word_language_model: Embedding + LSTM + Linear, truncated backpropagation
through time with the hidden state detached between batches (``repackage_hidden``),
``clip_grad_norm_`` and the example's hand-written SGD update, then evaluation and generation."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn

NTOKENS, BSZ, BPTT = 20, 4, 5


def program(torch, init=None, compiled=False, steps=6):
    nn = torch.nn

    class RNNModel(nn.Module):
        def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
            super().__init__()
            self.ntoken = ntoken
            self.drop = nn.Dropout(dropout)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
            self.decoder = nn.Linear(nhid, ntoken)
            self.init_weights()
            self.nhid = nhid
            self.nlayers = nlayers

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, input, hidden):
            emb = self.drop(self.encoder(input))
            output, hidden = self.rnn(emb, hidden)
            output = self.drop(output)
            decoded = self.decoder(output)
            decoded = decoded.view(-1, self.ntoken)
            return torch.nn.functional.log_softmax(decoded, dim=1), hidden

        def init_hidden(self, bsz):
            weight = next(self.parameters())
            return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                    weight.new_zeros(self.nlayers, bsz, self.nhid))

    def batchify(data, bsz):
        nbatch = data.size(0) // bsz
        data = data.narrow(0, 0, nbatch * bsz)
        data = data.view(bsz, -1).t().contiguous()
        return data.to(device)

    def repackage_hidden(h):
        if isinstance(h, torch.Tensor):
            return h.detach()
        return tuple(repackage_hidden(v) for v in h)

    def get_batch(source, i):
        seq_len = min(BPTT, len(source) - 1 - i)
        data = source[i:i + seq_len]
        target = source[i + 1:i + 1 + seq_len].view(-1)
        return data, target

    device = torch.device("cpu")
    torch.manual_seed(0)
    # 41 rows: every batch is BPTT long
    corpus = torch.tensor(np.random.default_rng(0).integers(0, NTOKENS, 164))
    train_data = batchify(corpus, BSZ)
    model = RNNModel(NTOKENS, 16, 16, 2).to(device)  # emsize == nhid, as the example's defaults (200, 200)
    if init is not None:
        init(model)
    criterion = nn.NLLLoss()
    lr, clip = 5.0, 0.25

    def train_step(data, targets, hidden):
        model.zero_grad()
        output, hidden = model(data, hidden)
        loss = criterion(output, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        for p in model.parameters():
            p.data.add_(p.grad, alpha=-lr)
        return loss, hidden

    step = tracenn.compile(train_step) if compiled else train_step
    model.train()
    hidden = model.init_hidden(BSZ)
    losses = []
    for epoch in range(2):
        for batch, i in enumerate(range(0, train_data.size(0) - 1, BPTT)):
            data, targets = get_batch(train_data, i)
            hidden = repackage_hidden(hidden)
            loss, hidden = step(data, targets, hidden)
            losses.append(loss.item())
    model.eval()
    total_loss = 0.
    hidden = model.init_hidden(BSZ)
    with torch.no_grad():
        for i in range(0, train_data.size(0) - 1, BPTT):
            data, targets = get_batch(train_data, i)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    # generate.py, greedy: feed each word back in through fill_
    hidden = model.init_hidden(1)
    input = torch.randint(NTOKENS, (1, 1), dtype=torch.long).fill_(3)
    words = []
    with torch.no_grad():
        for i in range(6):
            output, hidden = model(input, hidden)
            word_weights = output.squeeze().div(1.0).exp().cpu()
            word_idx = torch.argmax(word_weights)
            input.fill_(word_idx)
            words.append(word_idx.item())
    return {"losses": losses, "eval_loss": [total_loss / (len(train_data) - 1)], "words": words, "model": model}


def test_trains_and_generates():
    """Sixteen steps of this tiny model hardly move its loss (PyTorch's neither): the run is checked
    to complete with finite losses near log(NTOKENS), and to repeat exactly."""
    result = program(tracenn)
    assert len(result["losses"]) == 16 and len(result["words"]) == 6
    assert np.all(np.abs(np.array(result["losses"] + result["eval_loss"]) - np.log(NTOKENS)) < 1.0)
    assert all(0 <= w < NTOKENS for w in result["words"])
    again = program(tracenn)
    assert again["losses"] == result["losses"] and again["words"] == result["words"]


def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program))


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program, compiled=True))
