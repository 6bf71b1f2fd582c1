"""RNN / LSTM / GRU, their cells, and nn.utils.rnn (pad/pack): steps by hand in NumPy, parameter names,
shapes and init, packed sequences, reprs, errors, and parity with torch (outputs, states, gradients)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
from helpers import assert_close, to_np
from tracenn.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence,
                                  pad_sequence, unpack_sequence, unpad_sequence)

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

# Every test uses these sizes, so compiled kernels are shared: input 3, hidden 4, length 5, batch 2.
I, H, T, N = 3, 4, 5, 2
RNG = np.random.default_rng(0)
X = RNG.standard_normal((T, N, I)).astype(np.float32)
H0 = RNG.standard_normal((1, N, H)).astype(np.float32)
# Each eager kernel compiles once per shape, so the tests share a few layer configurations.
LSTM2 = dict(num_layers=2, bidirectional=True)
GRU2 = dict(num_layers=2, bidirectional=True, batch_first=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def params(m):
    return {k: to_np(v).astype(np.float64) for k, v in m.named_parameters()}


def near(actual, expected, rtol=1e-5, atol=1e-6):
    assert_close(actual, expected, rtol=rtol, atol=atol, check_dtype=False)


def state_from_torch(tm):
    # .copy(): tracenn.tensor(ndarray) may alias the array (a core bug, see the report).
    return {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}


# ---- single steps by hand ----------------------------------------------------------------------------

def test_rnn_cell_step_by_hand():
    cell = nn.RNNCell(I, H)
    p = params(cell)
    x, h = X[0], H0[0]
    expected = np.tanh(x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"])
    near(cell(tracenn.tensor(x), tracenn.tensor(h)), expected)
    relu = nn.RNNCell(I, H, bias=False, nonlinearity="relu")
    q = params(relu)
    near(relu(tracenn.tensor(x)), np.maximum(x @ q["weight_ih"].T, 0))  # hx defaults to zeros


def test_lstm_cell_step_by_hand_gate_order_ifgo():
    cell = nn.LSTMCell(I, H)
    p = params(cell)
    x, h, c = X[0], H0[0], H0[0][::-1].copy()
    gates = x @ p["weight_ih"].T + p["bias_ih"] + h @ p["weight_hh"].T + p["bias_hh"]
    i, f, g, o = np.split(gates, 4, axis=1)
    c2 = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    h2 = sigmoid(o) * np.tanh(c2)
    out_h, out_c = cell(tracenn.tensor(x), (tracenn.tensor(h), tracenn.tensor(c)))
    near(out_h, h2)
    near(out_c, c2)


def test_gru_cell_step_by_hand_gate_order_rzn():
    cell = nn.GRUCell(I, H)
    p = params(cell)
    x, h = X[0], H0[0]
    gi, gh = x @ p["weight_ih"].T + p["bias_ih"], h @ p["weight_hh"].T + p["bias_hh"]
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])  # b_hn inside the reset gate, as torch
    near(cell(tracenn.tensor(x), tracenn.tensor(h)), (1 - z) * n + z * h)


@pytest.mark.slow
def test_cells_take_unbatched_input():
    for cell in (nn.RNNCell(I, H), nn.GRUCell(I, H)):
        near(cell(tracenn.tensor(X[0, 0]), tracenn.tensor(H0[0, 0])),
             to_np(cell(tracenn.tensor(X[0, :1]), tracenn.tensor(H0[0, :1])))[0])
    lstm = nn.LSTMCell(I, H)
    h, c = lstm(tracenn.tensor(X[0, 0]))
    assert h.shape == (H,) and c.shape == (H,)


def test_stacked_bidirectional_gru_is_a_loop_of_cells():
    """GRU(num_layers=2, bidirectional=True, batch_first=True) by hand: each layer and direction is a
    GRUCell over time (the reverse one reading backwards); a layer's input is the previous layer's
    two directions concatenated."""
    gru = nn.GRU(I, H, **GRU2)
    sd = gru.state_dict()
    out, hn = gru(tracenn.tensor(X.transpose(1, 0, 2)))
    layer_in, finals = X, []
    for layer in range(2):
        outs = []
        for suffix in ("", "_reverse"):
            cell = nn.GRUCell(layer_in.shape[-1], H)
            cell.load_state_dict({name: sd[f"{name}_l{layer}{suffix}"] for name in cell.state_dict()})
            h, ys = None, []
            order = range(T) if not suffix else reversed(range(T))
            for t in order:
                h = cell(tracenn.tensor(layer_in[t]), h)
                ys.append(to_np(h))
            outs.append(np.stack(ys if not suffix else ys[::-1]))
            finals.append(to_np(h))
        layer_in = np.concatenate(outs, -1)
    near(out, layer_in.transpose(1, 0, 2), atol=1e-6)
    near(hn, np.stack(finals), atol=1e-6)


# ---- parameters, init, reprs ---------------------------------------------------------------------------

def test_parameter_names_shapes_and_order(lib):
    m = lib.nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=2)
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    assert names[:5] == [("weight_ih_l0", (16, 3)), ("weight_hh_l0", (16, 2)), ("bias_ih_l0", (16,)),
                         ("bias_hh_l0", (16,)), ("weight_hr_l0", (2, 4))]
    assert names[5][0] == "weight_ih_l0_reverse" and names[10] == ("weight_ih_l1", (16, 4))
    assert len(names) == 20
    gru = lib.nn.GRU(I, H, bias=False)
    assert [(n, tuple(p.shape)) for n, p in gru.named_parameters()] == [("weight_ih_l0", (12, 3)),
                                                                        ("weight_hh_l0", (12, 4))]
    assert [n for n, _ in lib.nn.LSTMCell(I, H).named_parameters()] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert len(m.all_weights) == 4 and m.all_weights[0][0] is m.weight_ih_l0


@pytest.mark.slow
def test_init_is_uniform_within_one_over_sqrt_hidden():
    m = nn.GRU(I, 64)
    bound = 1 / math.sqrt(64)
    for p in (m.weight_ih_l0, m.weight_hh_l0):
        v = to_np(p)
        assert np.abs(v).max() <= bound and np.abs(v).max() > 0.95 * bound
        assert abs(v.std() - bound / math.sqrt(3)) < 0.1 * bound
    assert np.abs(to_np(nn.GRUCell(I, 64).weight_hh)).max() <= bound


def test_reprs():
    assert repr(nn.RNN(I, H)) == "RNN(3, 4)"
    assert repr(nn.RNN(I, H, 2, nonlinearity="relu", dropout=0.5)) == "RNN(3, 4, num_layers=2, dropout=0.5)"
    assert repr(nn.LSTM(I, H, proj_size=2, bias=False, batch_first=True, bidirectional=True)) == \
        "LSTM(3, 4, proj_size=2, bias=False, batch_first=True, bidirectional=True)"
    assert repr(nn.GRU(I, H, num_layers=3)) == "GRU(3, 4, num_layers=3)"
    assert repr(nn.RNNCell(I, H, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.LSTMCell(I, H, bias=False)) == "LSTMCell(3, 4, bias=False)"
    assert repr(nn.GRUCell(I, H)) == "GRUCell(3, 4)"


def test_reprs_match_torch(torch):
    for name, args, kw in [("RNN", (3, 4, 2), dict(nonlinearity="relu", bidirectional=True)),
                           ("LSTM", (3, 4), dict(proj_size=2, dropout=0.0)), ("GRU", (3, 4), dict(batch_first=True)),
                           ("RNNCell", (3, 4), dict(bias=False)), ("GRUCell", (3, 4), {})]:
        assert repr(getattr(nn, name)(*args, **kw)) == repr(getattr(torch.nn, name)(*args, **kw))


# ---- shapes, states, dropout -----------------------------------------------------------------------------

def test_shapes_batch_first_unbatched_and_initial_state():
    gru = nn.GRU(I, H, **GRU2)
    out, hn = gru(tracenn.tensor(X.transpose(1, 0, 2)))
    assert out.shape == (N, T, 2 * H) and hn.shape == (4, N, H)
    out_given, _ = gru(tracenn.tensor(X.transpose(1, 0, 2)), tracenn.zeros(4, N, H))
    near(out_given, to_np(out))  # hx defaults to zeros
    rnn = nn.RNN(I, H, bidirectional=True)
    out1, hn1 = rnn(tracenn.tensor(X[:, 0]))  # unbatched: (T, I)
    assert out1.shape == (T, 2 * H) and hn1.shape == (2, H)
    near(out1, to_np(rnn(tracenn.tensor(X))[0])[:, 0], atol=1e-6)


def test_dropout_between_layers_only_in_training():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(I, H, dropout=0.5)
    m = nn.GRU(I, H, dropout=0.5, **GRU2)
    plain = nn.GRU(I, H, **GRU2)
    plain.load_state_dict(m.state_dict())
    x = tracenn.tensor(X.transpose(1, 0, 2))
    out_train, _ = m(x)
    assert not np.allclose(to_np(out_train), to_np(plain(x)[0]))
    m.eval()
    near(m(x)[0], to_np(plain(x)[0]))


def test_gradients_reach_every_parameter_and_the_input():
    m = nn.LSTM(I, H, **LSTM2)
    x = tracenn.tensor(X, requires_grad=True)
    out, (hn, cn) = m(x)
    (out.sum() + cn.sum()).backward()
    assert x.grad.shape == x.shape and np.abs(to_np(x.grad)).sum() > 0
    for name, p in m.named_parameters():
        assert p.grad is not None and np.abs(to_np(p.grad)).sum() > 0, name


# ---- nn.utils.rnn ------------------------------------------------------------------------------------------

def test_pad_sequence_sides_and_batch_first():
    a, b = tracenn.tensor([1, 2, 3]), tracenn.tensor([4])
    assert pad_sequence([a, b]).tolist() == [[1, 4], [2, 0], [3, 0]]
    assert pad_sequence([a, b], batch_first=True, padding_value=-1).tolist() == [[1, 2, 3], [4, -1, -1]]
    assert pad_sequence([a, b], batch_first=True, padding_side="left").tolist() == [[1, 2, 3], [0, 0, 4]]
    with pytest.raises(ValueError, match="Expected padding_side to be one of left or right, but got up."):
        pad_sequence([a, b], padding_side="up")


def test_pack_and_unpack_round_trip():
    seqs = [tracenn.tensor([1, 2]), tracenn.tensor([3, 4, 5]), tracenn.tensor([6])]
    packed = pack_sequence(seqs, enforce_sorted=False)
    assert isinstance(packed, PackedSequence)
    assert packed.data.tolist() == [3, 1, 6, 4, 2, 5] and packed.batch_sizes.tolist() == [3, 2, 1]
    assert packed.sorted_indices.tolist() == [1, 0, 2] and packed.unsorted_indices.tolist() == [1, 0, 2]
    padded, lengths = pad_packed_sequence(packed, batch_first=True, padding_value=-1, total_length=4)
    assert padded.tolist() == [[1, 2, -1, -1], [3, 4, 5, -1], [6, -1, -1, -1]] and lengths.tolist() == [2, 3, 1]
    assert [s.tolist() for s in unpack_sequence(packed)] == [[1, 2], [3, 4, 5], [6]]
    assert [s.tolist() for s in unpad_sequence(padded, lengths, batch_first=True)] == [[1, 2], [3, 4, 5], [6]]
    with pytest.raises(RuntimeError, match="`lengths` array must be sorted in decreasing order"):
        pack_padded_sequence(padded, [2, 3, 1], batch_first=True)
    with pytest.raises(ValueError, match="Expected total_length to be at least the length of the longest sequence"):
        pad_packed_sequence(packed, total_length=2)


def test_packing_is_differentiable():
    x = tracenn.tensor(X, requires_grad=True)
    packed = pack_padded_sequence(x, [5, 3])
    (packed.data * 2).sum().backward()
    expected = np.zeros_like(X)
    expected[:, 0] = 2
    expected[:3, 1] = 2
    near(x.grad, expected)


def test_rnn_on_packed_input_equals_each_sequence_alone():
    lstm = nn.LSTM(I, H, **LSTM2)
    packed = pack_padded_sequence(tracenn.tensor(X), [3, 5], enforce_sorted=False)
    out, (hn, cn) = lstm(packed)
    assert isinstance(out, PackedSequence)
    padded, lengths = pad_packed_sequence(out)
    assert lengths.tolist() == [3, 5]
    for b, n in enumerate([3, 5]):
        # Sequences in a batch never interact: the first n steps alone give sequence b's results.
        alone, (hb, cb) = lstm(tracenn.tensor(X[:n]))
        near(padded[:n, b], to_np(alone)[:, b], atol=1e-6)
        near(padded[n:, b], np.zeros((T - n, 2 * H)))
        near(hn[:, b], to_np(hb)[:, b], atol=1e-6)
        near(cn[:, b], to_np(cb)[:, b], atol=1e-6)


# ---- errors -------------------------------------------------------------------------------------------------

def test_errors(lib):
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'. Select from 'tanh' or 'relu'."):
        lib.nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
        lib.nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        lib.nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="dropout should be a number in range \\[0, 1\\]"):
        lib.nn.LSTM(3, 4, dropout=2)
    with pytest.raises(ValueError, match="hidden_size must be greater than zero"):
        lib.nn.GRU(3, 0)
    gru = lib.nn.GRU(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 2"):
        gru(lib.zeros(5, 2, 2))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 2, 4\\), got \\[1, 3, 4\\]"):
        gru(lib.zeros(5, 2, 3), lib.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="GRU: Expected input to be 2D or 3D, got 4D instead"):
        gru(lib.zeros(1, 5, 2, 3))
    with pytest.raises(RuntimeError, match="For batched 3-D input, hx should also be 3-D but got 2-D tensor"):
        gru(lib.zeros(5, 2, 3), lib.zeros(2, 4))
    with pytest.raises(RuntimeError, match="Expected hidden\\[1\\] size \\(1, 2, 4\\), got \\[1, 2, 3\\]"):
        lib.nn.LSTM(3, 4)(lib.zeros(5, 2, 3), (lib.zeros(1, 2, 4), lib.zeros(1, 2, 3)))
    with pytest.raises(ValueError, match="RNN input dtype \\((torch|tracenn).float64\\) does not match weight dtype"):
        lib.nn.RNN(3, 4)(lib.zeros(5, 2, 3, dtype=lib.float64))
    with pytest.raises(ValueError, match="LSTMCell: Expected input to be 1D or 2D, got 3D instead"):
        lib.nn.LSTMCell(3, 4)(lib.zeros(1, 2, 3))


# ---- parity with torch ----------------------------------------------------------------------------------------

def _compare(torch, tm, m, x, hx=None, packed_lengths=None, backward=True):
    m.load_state_dict(state_from_torch(tm))
    tx, nx = torch.tensor(x, requires_grad=True), tracenn.tensor(x, requires_grad=True)
    th = nh = None
    if hx is not None:
        th = tuple(torch.tensor(h) for h in hx) if isinstance(hx, tuple) else torch.tensor(hx)
        nh = tuple(tracenn.tensor(h) for h in hx) if isinstance(hx, tuple) else tracenn.tensor(hx)
    tin, nin = tx, nx
    if packed_lengths is not None:
        tin = torch.nn.utils.rnn.pack_padded_sequence(tx, packed_lengths, enforce_sorted=False)
        nin = pack_padded_sequence(nx, packed_lengths, enforce_sorted=False)
    tout, tstate = tm(tin, th) if hx is not None else tm(tin)
    out, state = m(nin, nh) if hx is not None else m(nin)
    if packed_lengths is not None:
        tout, _ = torch.nn.utils.rnn.pad_packed_sequence(tout)
        out, _ = pad_packed_sequence(out)
    assert_close(out, tout, atol=1e-5)
    tstates = tstate if isinstance(tstate, tuple) else (tstate,)
    states = state if isinstance(state, tuple) else (state,)
    for a, b in zip(states, tstates):
        assert_close(a, b, atol=1e-5)
    if not backward:
        return
    coef = np.linspace(-1, 1, int(np.prod(out.shape)), dtype=np.float32).reshape(tuple(out.shape))
    ((tout * torch.tensor(coef)).sum() + sum(s.sum() for s in tstates)).backward()
    ((out * tracenn.tensor(coef)).sum() + sum(s.sum() for s in states)).backward()
    assert_close(nx.grad, tx.grad, atol=1e-5)
    for (tn, tp), (n, p) in zip(tm.named_parameters(), m.named_parameters()):
        assert tn == n
        assert_close(p.grad, tp.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,kw", [
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("LSTM", LSTM2),
    ("GRU", GRU2),
    pytest.param("RNN", dict(num_layers=2, batch_first=True), marks=pytest.mark.slow),
    pytest.param("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2), marks=pytest.mark.slow),
    pytest.param("LSTM", dict(bias=False, batch_first=True), marks=pytest.mark.slow),
    pytest.param("GRU", dict(num_layers=2, bias=False), marks=pytest.mark.slow),
])
def test_layer_parity_with_torch(torch, name, kw):
    tm, m = getattr(torch.nn, name)(I, H, **kw), getattr(nn, name)(I, H, **kw)
    x = X.transpose(1, 0, 2).copy() if kw.get("batch_first") else X
    _compare(torch, tm, m, x)


H0_4 = RNG.standard_normal((4, N, H)).astype(np.float32)


def test_initial_state_parity_with_torch(torch):
    _compare(torch, torch.nn.LSTM(I, H, **LSTM2), nn.LSTM(I, H, **LSTM2), X, (H0_4, H0_4[::-1].copy()))


@pytest.mark.parametrize("backward", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_projection_parity_with_torch(torch, backward):
    _compare(torch, torch.nn.LSTM(I, H, proj_size=2), nn.LSTM(I, H, proj_size=2), X,
             (H0_4[:1, :, :2].copy(), H0_4[:1]), backward=backward)


def test_unbatched_parity_with_torch(torch):
    _compare(torch, torch.nn.RNN(I, H, bidirectional=True), nn.RNN(I, H, bidirectional=True), X[:, 0],
             H0_4[:2, 0].copy(), backward=False)


@pytest.mark.parametrize("name,kw", [("LSTM", LSTM2), ("GRU", GRU2)])
def test_packed_parity_with_torch(torch, name, kw):
    _compare(torch, getattr(torch.nn, name)(I, H, **kw), getattr(nn, name)(I, H, **kw), X, packed_lengths=[3, 5],
             backward=name == "LSTM")


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_parity_with_torch(torch, name):
    tm, m = getattr(torch.nn, name)(I, H), getattr(nn, name)(I, H)
    m.load_state_dict(state_from_torch(tm))
    tx, nx = torch.tensor(X[0], requires_grad=True), tracenn.tensor(X[0], requires_grad=True)
    tout, out = tm(tx), m(nx)
    touts = tout if isinstance(tout, tuple) else (tout,)
    outs = out if isinstance(out, tuple) else (out,)
    for a, b in zip(outs, touts):
        assert_close(a, b, atol=1e-6)
    sum((t * t).sum() for t in touts).backward()
    sum((t * t).sum() for t in outs).backward()
    assert_close(nx.grad, tx.grad, atol=1e-6)
    for (tn, tp), (n, p) in zip(tm.named_parameters(), m.named_parameters()):
        assert_close(p.grad, tp.grad, atol=1e-5)


def test_utils_parity_with_torch(torch):
    from torch.nn.utils import rnn as trnn
    seqs = [RNG.standard_normal((n, 2)).astype(np.float32) for n in (2, 4, 4, 1)]
    tp = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    p = pack_sequence([tracenn.tensor(s) for s in seqs], enforce_sorted=False)
    assert_close(p.data, tp.data)
    for a, b in zip(p[1:], tp[1:]):
        assert a.tolist() == b.tolist()
    for kw in [dict(), dict(batch_first=True, padding_value=-2.0, total_length=6)]:
        (a, la), (b, lb) = pad_packed_sequence(p, **kw), trnn.pad_packed_sequence(tp, **kw)
        assert_close(a, b)
        assert la.tolist() == lb.tolist()
    for kw in [dict(), dict(batch_first=True, padding_side="left", padding_value=3.0)]:
        assert_close(pad_sequence([tracenn.tensor(s) for s in seqs], **kw),
                     trnn.pad_sequence([torch.tensor(s) for s in seqs], **kw))
