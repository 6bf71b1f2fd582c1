"""Recurrent layers' argument checks, run with tracenn and with torch (``lib``): the cells' size
checks (they used to surface as matmul/broadcast errors), an empty sequence, and
pack_padded_sequence's lengths shape."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("cell, args, match", [
    ("GRUCell", lambda t: (t.ones(4, 2),), "input has inconsistent input_size: got 2 expected 3"),
    ("RNNCell", lambda t: (t.ones(4, 3), t.zeros(2, 5)), "Input batch size 4 doesn't match hidden0 batch size 2"),
    ("GRUCell", lambda t: (t.ones(3), t.zeros(4)), "hidden0 has inconsistent hidden_size: got 4, expected 5"),
    ("LSTMCell", lambda t: (t.ones(4, 3), (t.zeros(4, 4), t.zeros(4, 5))),
     "hidden0 has inconsistent hidden_size: got 4, expected 5"),
    ("LSTMCell", lambda t: (t.ones(4, 3), (t.zeros(4, 5), t.zeros(2, 5))),
     "Input batch size 4 doesn't match hidden1 batch size 2"),
    ("LSTMCell", lambda t: (t.ones(4, 3), (t.zeros(4, 5), t.zeros(4, 4))),
     "hidden1 has inconsistent hidden_size: got 4, expected 5"),
])
def test_cell_size_checks(lib, cell, args, match):
    with pytest.raises(RuntimeError, match=match):
        getattr(lib.nn, cell)(3, 5)(*args(lib))


@pytest.mark.parametrize("layer, shape, kwargs", [("LSTM", (0, 3), {}), ("GRU", (2, 0, 3), {"batch_first": True}),
                                                  ("RNN", (0, 2, 3), {})])
def test_empty_sequence_raises(lib, layer, shape, kwargs):
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
        getattr(lib.nn, layer)(3, 5, **kwargs)(lib.ones(*shape))


def test_empty_batch_runs(lib):
    out, h = lib.nn.GRU(3, 5)(lib.ones(4, 0, 3))
    assert tuple(out.shape) == (4, 0, 5) and tuple(h.shape) == (1, 0, 5)


@pytest.mark.parametrize("lengths", ["tensor", "list"])
def test_pack_padded_sequence_wants_1d_lengths(lib, lengths):
    value = lib.tensor([[3, 2]]) if lengths == "tensor" else [[3, 2]]
    with pytest.raises(RuntimeError, match="'lengths' argument should be a 1D CPU int64 tensor, but got 2D cpu"):
        lib.nn.utils.rnn.pack_padded_sequence(lib.zeros(3, 2), value)
