"""PyTorch's transformer language model (examples/word_language_model's TransformerModel and the
nn.Transformer tutorial): sinusoidal PositionalEncoding in a ``register_buffer``, ``nn.TransformerEncoder``
over ``nn.TransformerEncoderLayer`` with a causal mask (the example's ``log(tril(ones))`` and
``nn.Transformer.generate_square_subsequent_mask`` with ``is_causal=True``), AdamW under a
warm-up LambdaLR, ``clip_grad_norm_``, perplexity from the evaluation loss."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tracenn

NTOKENS, BPTT = 25, 7


def program(torch, init=None, compiled=False):
    nn = torch.nn
    F = nn.functional

    class PositionalEncoding(nn.Module):
        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super(PositionalEncoding, self).__init__()
            self.dropout = nn.Dropout(p=dropout)
            pe = torch.zeros(max_len, d_model)
            position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
            div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
            pe[:, 0::2] = torch.sin(position * div_term)
            pe[:, 1::2] = torch.cos(position * div_term)
            pe = pe.unsqueeze(0).transpose(0, 1)
            self.register_buffer('pe', pe)

        def forward(self, x):
            x = x + self.pe[:x.size(0), :]
            return self.dropout(x)

    class TransformerModel(nn.Module):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super(TransformerModel, self).__init__()
            self.model_type = 'Transformer'
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout, max_len=64)
            encoder_layers = nn.TransformerEncoderLayer(ninp, nhead, nhid, dropout)
            self.transformer_encoder = nn.TransformerEncoder(encoder_layers, nlayers)
            self.encoder = nn.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn.Linear(ninp, ntoken)
            self.init_weights()

        def _generate_square_subsequent_mask(self, sz):
            return torch.log(torch.tril(torch.ones(sz, sz)))

        def init_weights(self):
            initrange = 0.1
            nn.init.uniform_(self.encoder.weight, -initrange, initrange)
            nn.init.zeros_(self.decoder.bias)
            nn.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            if has_mask:
                device = src.device
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    mask = self._generate_square_subsequent_mask(len(src)).to(device)
                    self.src_mask = mask
            else:
                self.src_mask = None
            src = self.encoder(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.transformer_encoder(src, self.src_mask)
            output = self.decoder(output)
            return F.log_softmax(output, dim=-1)

    torch.manual_seed(0)
    with warnings.catch_warnings():  # torch: enable_nested_tensor needs batch_first
        warnings.simplefilter("ignore", UserWarning)
        model = TransformerModel(NTOKENS, 16, 2, 32, 2, dropout=0.0)
    if init:
        init(model)
    rng = np.random.default_rng(0)
    data = torch.tensor(np.tile(np.arange(NTOKENS), 4)[:60].reshape(20, 3) + rng.integers(0, 2, (20, 3)))
    data = data.remainder(NTOKENS)  # a mostly-counting sequence: the next token is predictable
    criterion = nn.NLLLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / 3))

    def train_step(src, targets):
        optimizer.zero_grad()
        output = model(src)
        loss = criterion(output.view(-1, NTOKENS), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        optimizer.step()
        scheduler.step()
        return loss

    step = tracenn.compile(train_step) if compiled else train_step
    losses, lrs = [], []
    model.train()
    for epoch in range(3):
        for i in range(0, 2 * BPTT, BPTT):
            src, tgt = data[i:i + BPTT], data[i + 1:i + 1 + BPTT].reshape(-1)
            losses.append(step(src, tgt).item())
            lrs.append(scheduler.get_last_lr()[0])
    model.eval()
    mask = nn.Transformer.generate_square_subsequent_mask(BPTT)
    with torch.no_grad():
        emb = model.pos_encoder(model.encoder(data[:BPTT]) * math.sqrt(model.ninp))
        causal = model.transformer_encoder(emb, mask=mask, is_causal=True)
        masked = model.transformer_encoder(emb, mask=mask)
        ppl = math.exp(criterion(model(data[:BPTT]).view(-1, NTOKENS), data[1:BPTT + 1].reshape(-1)).item())
    return {"losses": losses, "lr": lrs, "ppl": [ppl], "causal": causal.numpy(), "masked": masked.numpy(),
            "mask": mask.numpy(), "model": model}


# The keys' part of in_proj_bias gets a gradient that is zero up to rounding (softmax ignores a
# shift of the scores), which AdamW turns into steps of up to lr in a direction set by rounding
# noise: these biases are only checked to stay within the 6 steps' bound of the other run.
LOOSE = dict(loose=tuple(f"transformer_encoder.layers.{i}.self_attn.in_proj_bias" for i in range(2)),
             loose_atol=6 * 3e-3, atol=5e-5)


@pytest.mark.slow
def test_learns_and_the_causal_masks_agree(rw):
    result = program(tracenn)
    rw.assert_learns(result["losses"])
    np.testing.assert_allclose(result["causal"], result["masked"], rtol=1e-5, atol=1e-6)
    assert np.isneginf(result["mask"][0, 1:]).all() and (result["mask"][np.tril_indices(BPTT)] == 0).all()


@pytest.mark.slow
def test_matches_pytorch(rw):
    rw.assert_runs_close(*rw.with_torch(program), **LOOSE)


@pytest.mark.slow
def test_compiled_step_matches_pytorch(rw):
    """The mask the model caches on itself (``self.src_mask``) is made while tracing the first program
    and read by the later ones."""
    rw.assert_runs_close(*rw.with_torch(program, compiled=True), **LOOSE)
