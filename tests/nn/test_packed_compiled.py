"""pack_padded_sequence with lengths that are a tensor input of tracenn.compile (the DataLoader
pattern): the recurrent layers run the private padded form with masks built in-graph, and the
compiled call equals the eager one (which packs for real) with new lengths every call and no
recompile. Also pad_packed_sequence(total_length=...), the errors that teach, and torch's numbers."""
from __future__ import annotations

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import assert_close, to_np
from tracenn.errors import DataDependentError
from tracenn.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

B, T, I, H, V = 4, 5, 3, 4, 11
RNG = np.random.default_rng(7)


def lengths_batch(sort: bool) -> list[int]:
    lens = RNG.integers(1, T + 1, size=B)
    lens[RNG.integers(B)] = T  # the collate pads to the longest sequence
    return sorted(lens.tolist(), reverse=True) if sort else lens.tolist()


def load(m: nn.Module, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for v in m.state_dict().values():
        v.data.copy_(tracenn.tensor(rng.uniform(-0.5, 0.5, size=tuple(v.shape)).astype(np.float32)))


class Encoder(nn.Module):
    """pack -> recurrent layer -> unpack; returns (padded output, lengths, h_n[, c_n])."""

    def __init__(self, kind: str, batch_first: bool, enforce_sorted: bool, total: int, **kw):
        super().__init__()
        self.rnn = getattr(nn, kind)(I, H, batch_first=batch_first, **kw)
        self.batch_first, self.enforce_sorted, self.total = batch_first, enforce_sorted, total

    def forward(self, x, lengths, hx=None):
        p = pack_padded_sequence(x, lengths.cpu(), batch_first=self.batch_first, enforce_sorted=self.enforce_sorted)
        out, state = self.rnn(p, hx)
        padded, lens = pad_packed_sequence(out, batch_first=self.batch_first, padding_value=-1.0,
                                           total_length=self.total)
        return (padded, lens) + (state if isinstance(state, tuple) else (state,))


CASES = [("LSTM", False, False, dict(num_layers=2, bidirectional=True)),
         ("LSTM", True, True, dict(proj_size=2)),
         ("GRU", True, False, dict(bidirectional=True)),
         ("RNN", False, True, dict(nonlinearity="relu"))]


@pytest.mark.parametrize("kind,batch_first,enforce_sorted,kw", CASES)
def test_compiled_equals_eager_with_new_lengths_every_call(kind, batch_first, enforce_sorted, kw):
    model = Encoder(kind, batch_first, enforce_sorted, T + 1, **kw)
    load(model, 1)
    compiled = tracenn.compile(model)
    for _ in range(3):
        lens = lengths_batch(sort=enforce_sorted)
        shape = (B, T, I) if batch_first else (T, B, I)
        x = tracenn.tensor(RNG.standard_normal(shape).astype(np.float32))
        want = model(x, tracenn.tensor(lens))
        got = compiled(x, tracenn.tensor(lens))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert tuple(g.shape) == tuple(w.shape)
            assert_close(to_np(g), to_np(w), rtol=1e-5, atol=1e-6)
        assert to_np(got[1]).tolist() == lens
    assert len(compiled._entries) == 1  # the lengths are data: one program for every batch
    assert not any(e.eager for e in compiled._entries.values())


def test_padding_past_each_length_without_torch():
    """LSTM of one layer with zero weights but a bias: every running step's output is the same known
    vector, and pad_packed_sequence puts padding_value past each length (NumPy reference)."""
    model = Encoder("LSTM", True, False, T + 2)
    for p in model.parameters():
        p.data.zero_()
    model.rnn.bias_ih_l0.data.copy_(tracenn.tensor(np.full(4 * H, 0.5, np.float32)))
    lens = [2, 5, 1, 3]
    x = tracenn.tensor(RNG.standard_normal((B, T, I)).astype(np.float32))
    padded, out_lens, h_n, c_n = tracenn.compile(model)(x, tracenn.tensor(lens))
    s = 1 / (1 + np.exp(-0.5))  # every gate's sigmoid
    c = np.zeros(H)
    running = []
    for _ in range(T + 2):
        c = s * c + s * np.tanh(0.5)
        running.append(s * np.tanh(c))
    want = np.full((B, T + 2, H), -1.0)
    for b, n in enumerate(lens):
        want[b, :n] = running[:n]
    assert_close(to_np(padded), want, rtol=1e-5, atol=1e-6, check_dtype=False)
    assert to_np(out_lens).tolist() == lens
    assert_close(to_np(h_n)[0], want[np.arange(B), np.array(lens) - 1], rtol=1e-5, atol=1e-6, check_dtype=False)


def test_initial_state_and_gradients_match_eager():
    model = Encoder("LSTM", True, False, T, bidirectional=True)
    load(model, 2)

    def step(x, lengths, h0, c0):
        padded, _, h_n, c_n = model(x, lengths, (h0, c0))
        loss = (padded * padded).sum() + h_n.sum() + (c_n * c_n).mean()
        loss.backward()
        return loss.detach()

    compiled = tracenn.compile(step)
    for _ in range(2):
        lens = tracenn.tensor(lengths_batch(sort=False))
        x = tracenn.tensor(RNG.standard_normal((B, T, I)).astype(np.float32))
        h0, c0 = (tracenn.tensor(RNG.standard_normal((2, B, H)).astype(np.float32)) for _ in range(2))
        model.zero_grad()
        want = step(x, lens, h0, c0)
        grads = {k: to_np(p.grad) for k, p in model.named_parameters()}
        model.zero_grad()
        got = compiled(x, lens, h0, c0)
        assert_close(to_np(got), to_np(want), rtol=1e-5, atol=1e-5)
        for k, p in model.named_parameters():
            assert_close(to_np(p.grad), grads[k], rtol=1e-4, atol=1e-5)
    assert len(compiled._entries) == 1


class Classifier(nn.Module):
    """The canonical text classifier: embed, pack with the DataLoader's lengths, biLSTM, h_n -> head."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, I, padding_idx=0)
        self.lstm = nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * H, 3)

    def forward(self, x, lengths):
        p = pack_padded_sequence(self.emb(x), lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(p)
        return self.head(tracenn.cat([h[-2], h[-1]], 1))


def batches(n: int):
    out = []
    for _ in range(n):
        lens = lengths_batch(sort=False)
        x = np.zeros((B, T), np.int64)
        for b, k in enumerate(lens):
            x[b, :k] = RNG.integers(1, V, size=k)
        out.append((x, np.array(lens), RNG.integers(0, 3, size=B)))
    return out


def train(model, data, compile_step: bool):
    opt = tracenn.optim.Adam(model.parameters(), lr=0.05)

    def step(x, lengths, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, lengths), y)
        loss.backward()
        opt.step()
        return loss.detach()

    run = tracenn.compile(step) if compile_step else step
    losses = [float(run(*(tracenn.tensor(a) for a in batch))) for batch in data]
    return losses, run


def test_classifier_training_compiled_equals_eager():
    data = batches(4)
    eager, compiled = Classifier(), Classifier()
    load(eager, 3)
    load(compiled, 3)
    want, _ = train(eager, data, False)
    got, run = train(compiled, data, True)
    assert_close(np.array(got), np.array(want), rtol=1e-5, atol=1e-6)
    for (k, a), b in zip(eager.named_parameters(), compiled.parameters()):
        assert_close(to_np(b), to_np(a), rtol=1e-4, atol=1e-5)
    assert len(run._entries) == 2  # the first step (Adam makes its state), then every later batch
    assert not any(e.eager for e in run._entries.values())


def test_data_and_batch_sizes_raise_inside_compile():
    for field in ("data", "batch_sizes"):
        def f(x, lengths, field=field):
            return getattr(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), field)

        with pytest.raises(DataDependentError, match=rf"PackedSequence\.{field} .*lengths that are a tensor input "
                                                     r".*test_packed_compiled\.py:\d+.*total_length=x\.size\(1\)"):
            tracenn.compile(f)(tracenn.randn(B, T, I), tracenn.tensor([2, 5, 1, 3]))


@pytest.mark.parametrize("total", [None, T - 1])
def test_pad_packed_sequence_needs_total_length_inside_compile(total):
    rnn = nn.GRU(I, H, batch_first=True)

    def f(x, lengths):
        out, _ = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        return pad_packed_sequence(out, batch_first=True, total_length=total)[0]

    with pytest.raises(DataDependentError, match=r"pad_packed_sequence with.*max\(lengths\) steps.*"
                                                 r"test_packed_compiled\.py:\d+ \(in f: `return pad_packed_sequence"
                                                 r".*total_length=x\.size\(1\)"):
        tracenn.compile(f)(tracenn.randn(B, T, I), tracenn.tensor([2, 5, 1, 3]))


def test_packed_output_returned_by_a_compiled_call_reads_as_eager():
    """Returned from the compiled call, the lengths have values: data/batch_sizes are the packed ones."""
    gru = nn.GRU(I, H, batch_first=True)

    def f(x, lengths):
        return gru(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))[0]

    x, lens = tracenn.randn(B, T, I), tracenn.tensor([2, 5, 1, 3])
    got, want = tracenn.compile(f)(x, lens), f(x, lens)
    assert to_np(got.batch_sizes).tolist() == to_np(want.batch_sizes).tolist() == [4, 3, 2, 1, 1]
    assert_close(to_np(got.data), to_np(want.data), rtol=1e-5, atol=1e-6)
    assert to_np(got.unsorted_indices).tolist() == to_np(want.unsorted_indices).tolist()
    assert_close(to_np(pad_packed_sequence(got)[0]), to_np(pad_packed_sequence(want)[0]), rtol=1e-5, atol=1e-6)


def test_eager_packing_with_tensor_lengths_is_unchanged():
    p = pack_padded_sequence(tracenn.tensor([[1, 2, 3], [4, 5, 0]]), tracenn.tensor([3, 2]), batch_first=True)
    assert type(p) is PackedSequence
    assert to_np(p.data).tolist() == [1, 4, 2, 5, 3]
    assert to_np(p.batch_sizes).tolist() == [2, 2, 1]


def test_classifier_matches_torch():
    torch = pytest.importorskip("torch")
    data = batches(3)
    model = Classifier()
    load(model, 4)
    got, _ = train(model, data, True)

    tm = torch.nn.ModuleDict(dict(emb=torch.nn.Embedding(V, I, padding_idx=0),
                                  lstm=torch.nn.LSTM(I, H, num_layers=2, batch_first=True, bidirectional=True),
                                  head=torch.nn.Linear(2 * H, 3)))
    ref = Classifier()
    load(ref, 4)
    tm.load_state_dict({k: torch.tensor(to_np(v)) for k, v in ref.state_dict().items()})
    opt = torch.optim.Adam(tm.parameters(), lr=0.05)
    want = []
    for x, lens, y in data:
        opt.zero_grad()
        p = torch.nn.utils.rnn.pack_padded_sequence(tm["emb"](torch.tensor(x)), torch.tensor(lens),
                                                    batch_first=True, enforce_sorted=False)
        _, (h, _) = tm["lstm"](p)
        loss = torch.nn.functional.cross_entropy(tm["head"](torch.cat([h[-2], h[-1]], 1)), torch.tensor(y))
        loss.backward()
        opt.step()
        want.append(loss.item())
    assert_close(np.array(got), np.array(want), rtol=1e-4, atol=1e-5)
    for (k, a), b in zip(tm.named_parameters(), model.parameters()):
        assert_close(to_np(b), a.detach().numpy(), rtol=1e-4, atol=1e-4)
