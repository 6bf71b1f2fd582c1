"""Compiled vs eager for every layer family: one row per layer configuration.

Each row builds its layer with a fixed seed and deep-copies it; one copy runs eagerly, the other
through ``tracenn.compile`` (graph checker on after every pass), on the same inputs and under the
same RNG seed. Then, per call:

- outputs: structure, dtype, shape, ``requires_grad`` and values;
- backward of ``sum_i <out_i, w_i>`` (fixed random ``w_i``): every input gradient;

and after the last call: every parameter's gradient, every parameter and buffer value (running
statistics, ``num_batches_tracked``, a weight renormalised in place by ``max_norm``).

Rows whose forward reads tensor values (a packed sequence's lengths, a data-dependent output
shape) are marked ``data_dependent``: compiling must raise
:class:`~tracenn.errors.DataDependentError` pointing at the line, and ``fallback="eager"`` must
give the eager results. Known bugs outside this file are strict xfails, so they flip when fixed.
The default run takes a representative subset; ``-m slow`` runs every row.
"""
from __future__ import annotations

import copy
import re

import numpy as np
import pytest

import tracenn
import tracenn.nn as nn
import tracenn.nn.functional as F
from helpers import to_np
from tracenn.errors import DataDependentError

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")  # torch's note


# ---- inputs ------------------------------------------------------------------------------------------

def X(*shape):
    """A float32 normal input (requires grad in the test)."""
    return lambda rng: rng.standard_normal(shape).astype(np.float32)


def U(lo, hi, *shape):
    return lambda rng: rng.uniform(lo, hi, shape).astype(np.float32)


def N(high, *shape, low=0):
    """An int64 input in [low, high)."""
    return lambda rng: rng.integers(low, high, shape).astype(np.int64)


def B(*shape, p=0.3):
    """A bool mask, True with probability ``p``."""
    return lambda rng: rng.random(shape) < p


class C:
    """A fixed argument: a Python value, or an array that becomes a tensor needing no gradient
    (targets, masks, lengths)."""

    def __init__(self, value):
        self.value = value

    def __call__(self, rng):
        return _Fixed(self.value) if isinstance(self.value, np.ndarray) else self.value


class _Fixed:
    def __init__(self, array):
        self.array = array


def _materialise(spec, rng):
    if callable(spec):
        return spec(rng)
    if isinstance(spec, tuple):
        return tuple(_materialise(s, rng) for s in spec)
    if isinstance(spec, list):
        return [_materialise(s, rng) for s in spec]
    if isinstance(spec, dict):
        return {k: _materialise(v, rng) for k, v in spec.items()}
    return spec


def _tensors(obj, grad):
    """numpy arrays -> tensors (float ones requiring grad when ``grad``), recursively."""
    if isinstance(obj, _Fixed):
        return tracenn.tensor(obj.array)
    if isinstance(obj, np.ndarray):
        t = tracenn.tensor(obj)
        return t.requires_grad_() if grad and obj.dtype.kind == "f" else t
    if isinstance(obj, tuple):
        return tuple(_tensors(x, grad) for x in obj)
    if isinstance(obj, list):
        return [_tensors(x, grad) for x in obj]
    if isinstance(obj, dict):
        return {k: _tensors(v, grad) for k, v in obj.items()}
    return obj


def _leaves(obj, out):
    if isinstance(obj, tracenn.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _leaves(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _leaves(x, out)
    return out


class Fn(nn.Module):
    """A functional call as a module (interpolate, grid_sample, pack + LSTM...), with submodules."""

    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        for k, m in mods.items():
            setattr(self, k, m)

    def forward(self, *args, **kwargs):
        return self.fn(self, *args, **kwargs)


# ---- the table ---------------------------------------------------------------------------------------

class Row:
    """One layer configuration.

    Args:
        id: the test id.
        make: () -> Module, called under ``manual_seed(0)``.
        args, kwargs: input specs (``X``, ``N``, ``B``, ``C``... or nested tuples/lists/dicts).
        train: train mode (False: ``eval()`` both copies).
        calls: how many calls (fresh inputs each; buffers and grads accumulate across them).
        tol: multiplies the float32 tolerances.
        grad: float inputs require grad and backward runs.
        data_dependent: forward reads tensor values: expect DataDependentError, then fallback.
        where: for a data-dependent row, a regex the error message must match (the place that
            read the value: the user's line or the layer); ``(regex, bug)`` when it does not yet.
        bug: a strict-xfail reason (a known bug outside this file).
        default: part of the default run (the rest run with ``-m slow``).
    """

    def __init__(self, id, make, args, kwargs=None, *, train=True, calls=1, tol=1.0, grad=True,
                 data_dependent=False, where=None, bug=None, default=False):
        self.id, self.make, self.args, self.kwargs = id, make, args, kwargs or {}
        self.train, self.calls, self.tol, self.grad = train, calls, tol, grad
        self.data_dependent, self.where, self.bug, self.default = data_dependent, where, bug, default


ROWS: list[Row] = []

# Known bugs outside this file (strict xfails: each flips when fixed). Each is a value read while
# tracing where the output shape does not depend on values.
MESSAGE_PLACE = ("a value read inside a library layer called as the root module is reported at the compiled "
                 "call's line only: the message names neither the layer nor the function that read the value")


def row(*a, **k):
    ROWS.append(Row(*a, **k))


def _random_stats(m):
    """Non-trivial running statistics (for eval-mode rows)."""
    rng = np.random.default_rng(7)
    with tracenn.no_grad():
        m.running_mean.copy_(tracenn.tensor(rng.standard_normal(m.running_mean.shape).astype(np.float32)))
        m.running_var.copy_(tracenn.tensor(rng.uniform(0.5, 2.0, m.running_var.shape).astype(np.float32)))
    return m


# Linear family
row("Linear", lambda: nn.Linear(5, 3), (X(4, 5),), default=True)
row("Linear[no_bias,3d]", lambda: nn.Linear(5, 3, bias=False), (X(2, 4, 5),))
row("Bilinear", lambda: nn.Bilinear(3, 4, 2), (X(5, 3), X(5, 4)), default=True)
row("Identity", lambda: nn.Identity(), (X(3, 2),))

# Convolutions
row("Conv1d", lambda: nn.Conv1d(3, 4, 3, stride=2, padding=1), (X(2, 3, 9),))
row("Conv1d[same,dilation]", lambda: nn.Conv1d(2, 4, 3, padding="same", dilation=2), (X(2, 2, 8),))
for mode in ("reflect", "replicate", "circular"):
    row(f"Conv1d[padding_mode={mode}]", lambda mode=mode: nn.Conv1d(2, 3, 3, padding=2, padding_mode=mode),
        (X(2, 2, 7),), default=mode == "reflect")
row("Conv2d", lambda: nn.Conv2d(3, 4, 3, padding=1), (X(2, 3, 6, 6),))
row("Conv2d[groups,dilation,stride]", lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), dilation=(1, 2), groups=2),
    (X(2, 4, 7, 7),), default=True)
row("Conv2d[padding_mode=circular]", lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular"), (X(1, 2, 5, 5),))
row("Conv2d[depthwise,no_bias]", lambda: nn.Conv2d(3, 3, 3, groups=3, bias=False), (X(2, 3, 5, 5),))
row("Conv3d", lambda: nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1), (X(1, 2, 4, 4, 4),))
row("ConvTranspose1d", lambda: nn.ConvTranspose1d(3, 2, 3, stride=2, padding=1, output_padding=1), (X(2, 3, 5),),)
row("ConvTranspose2d[groups,dilation]", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, dilation=2),
    (X(1, 4, 4, 4),), default=True)
row("ConvTranspose2d[output_size]", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), (X(1, 2, 4, 4),),
    {"output_size": C([8, 8])})
row("ConvTranspose3d", lambda: nn.ConvTranspose3d(2, 2, 2, stride=2), (X(1, 2, 2, 3, 2),))

# Pooling
row("MaxPool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1), (X(2, 3, 9),))
row("MaxPool2d[return_indices,ceil_mode]", lambda: nn.MaxPool2d(3, stride=2, ceil_mode=True, return_indices=True),
    (X(2, 3, 8, 8),), default=True)
row("MaxPool2d[dilation]", lambda: nn.MaxPool2d(2, dilation=2), (X(1, 2, 7, 7),))
row("MaxPool3d[return_indices]", lambda: nn.MaxPool3d(2, return_indices=True), (X(1, 2, 4, 4, 4),))
row("AvgPool1d", lambda: nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), (X(2, 3, 9),))
row("AvgPool2d[ceil,divisor]", lambda: nn.AvgPool2d(3, stride=2, ceil_mode=True, divisor_override=4),
    (X(2, 3, 8, 8),), default=True)
row("AvgPool3d", lambda: nn.AvgPool3d(2, padding=1), (X(1, 2, 4, 4, 4),))
row("AdaptiveAvgPool1d", lambda: nn.AdaptiveAvgPool1d(4), (X(2, 3, 10),))
row("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d((3, None)), (X(2, 3, 7, 5),))
row("AdaptiveAvgPool3d", lambda: nn.AdaptiveAvgPool3d(2), (X(1, 2, 5, 4, 3),))
row("AdaptiveMaxPool1d[return_indices]", lambda: nn.AdaptiveMaxPool1d(3, return_indices=True), (X(2, 3, 10),))
row("AdaptiveMaxPool2d[return_indices]", lambda: nn.AdaptiveMaxPool2d((2, 3), return_indices=True),
    (X(2, 3, 7, 8),), default=True)
row("AdaptiveMaxPool3d", lambda: nn.AdaptiveMaxPool3d(2), (X(1, 2, 4, 5, 4),))
row("LPPool1d", lambda: nn.LPPool1d(2, 3, stride=2), (U(0.5, 2, 2, 3, 9),))
row("LPPool2d", lambda: nn.LPPool2d(3, 2), (U(0.5, 2, 2, 3, 6, 6),), default=True)
row("MaxUnpool2d", lambda: Fn(lambda s, x: s.unpool(*s.pool(x)), pool=nn.MaxPool2d(2, return_indices=True),
                              unpool=nn.MaxUnpool2d(2)), (X(2, 3, 6, 6),), default=True)
row("MaxUnpool1d[output_size]", lambda: Fn(lambda s, x: s.unpool(*s.pool(x), output_size=[9]),
                                           pool=nn.MaxPool1d(2, return_indices=True), unpool=nn.MaxUnpool1d(2)),
    (X(2, 3, 9),))

# Padding layers
row("ZeroPad2d", lambda: nn.ZeroPad2d((1, 2, 0, 1)), (X(2, 3, 4, 4),))
row("ConstantPad1d", lambda: nn.ConstantPad1d((2, 1), 1.5), (X(2, 3, 4),))
row("ConstantPad3d", lambda: nn.ConstantPad3d(1, -1.0), (X(1, 2, 2, 3, 2),))
row("ReflectionPad1d", lambda: nn.ReflectionPad1d((2, 1)), (X(2, 3, 5),))
row("ReflectionPad2d", lambda: nn.ReflectionPad2d((1, 2, 2, 1)), (X(2, 3, 4, 4),))
row("ReflectionPad3d", lambda: nn.ReflectionPad3d(1), (X(1, 2, 3, 3, 3),))
row("ReplicationPad1d", lambda: nn.ReplicationPad1d((3, 1)), (X(2, 3, 4),))
row("ReplicationPad2d", lambda: nn.ReplicationPad2d((1, 2, 2, 1)), (X(2, 3, 4, 4),), default=True)
row("ReplicationPad3d", lambda: nn.ReplicationPad3d(1), (X(1, 2, 3, 3, 3),))
row("CircularPad1d", lambda: nn.CircularPad1d((2, 1)), (X(2, 3, 4),))
row("CircularPad2d", lambda: nn.CircularPad2d((1, 2, 2, 1)), (X(2, 3, 4, 4),), default=True)
row("CircularPad3d", lambda: nn.CircularPad3d(1), (X(1, 2, 3, 3, 3),))

# Activations: every one
ACTIVATIONS = {
    "ELU": lambda: nn.ELU(alpha=0.7), "CELU": lambda: nn.CELU(1.3), "GELU": lambda: nn.GELU(),
    "GELU[tanh]": lambda: nn.GELU(approximate="tanh"), "GLU": lambda: nn.GLU(dim=1),
    "Hardshrink": lambda: nn.Hardshrink(0.6), "Hardsigmoid": lambda: nn.Hardsigmoid(),
    "Hardswish": lambda: nn.Hardswish(), "Hardtanh": lambda: nn.Hardtanh(-0.5, 1.2),
    "LeakyReLU": lambda: nn.LeakyReLU(0.2), "LogSigmoid": lambda: nn.LogSigmoid(),
    "LogSoftmax": lambda: nn.LogSoftmax(dim=1), "Mish": lambda: nn.Mish(), "PReLU": lambda: nn.PReLU(4, 0.3),
    "ReLU": lambda: nn.ReLU(), "ReLU6": lambda: nn.ReLU6(), "SELU": lambda: nn.SELU(), "SiLU": lambda: nn.SiLU(),
    "Sigmoid": lambda: nn.Sigmoid(), "Softmax": lambda: nn.Softmax(dim=-1), "Softmax2d": lambda: nn.Softmax2d(),
    "Softmin": lambda: nn.Softmin(dim=1), "Softplus": lambda: nn.Softplus(beta=2.0, threshold=1.5),
    "Softshrink": lambda: nn.Softshrink(0.4), "Softsign": lambda: nn.Softsign(), "Tanh": lambda: nn.Tanh(),
    "Tanhshrink": lambda: nn.Tanhshrink(), "Threshold": lambda: nn.Threshold(0.1, -2.0),
    "RReLU[eval]": lambda: nn.RReLU(0.1, 0.3),
}
_DEFAULT_ACT = {"GELU", "PReLU", "Softmax"}
for _name, _make in ACTIVATIONS.items():
    row(_name, _make, (X(2, 4, 3, 2),), train=_name != "RReLU[eval]", default=_name in _DEFAULT_ACT)
row("ReLU[inplace]", lambda: nn.Sequential(nn.Linear(3, 3), nn.ReLU(inplace=True)), (X(4, 3),), default=True)
row("RReLU[train]", lambda: nn.RReLU(0.1, 0.3), (X(2, 4, 3),), calls=2, default=True)

# Normalisation
row("BatchNorm1d[train,2d]", lambda: nn.BatchNorm1d(4), (X(6, 4),), calls=3)
row("BatchNorm1d[train,3d]", lambda: nn.BatchNorm1d(3, momentum=0.3), (X(4, 3, 5),), calls=2)
row("BatchNorm1d[eval]", lambda: _random_stats(nn.BatchNorm1d(3)), (X(4, 3, 5),), train=False, default=True)
row("BatchNorm2d[train]", lambda: nn.BatchNorm2d(3), (X(2, 3, 4, 4),), calls=3, default=True)
row("BatchNorm2d[momentum=None]", lambda: nn.BatchNorm2d(3, momentum=None), (X(2, 3, 4, 4),), calls=3, default=True)
row("BatchNorm2d[eval]", lambda: _random_stats(nn.BatchNorm2d(3)), (X(2, 3, 4, 4),), train=False)
row("BatchNorm2d[no_affine]", lambda: nn.BatchNorm2d(3, affine=False), (X(2, 3, 4, 4),), calls=2)
row("BatchNorm2d[no_running_stats]", lambda: nn.BatchNorm2d(3, track_running_stats=False), (X(2, 3, 4, 4),))
row("BatchNorm2d[no_running_stats,eval]", lambda: nn.BatchNorm2d(3, track_running_stats=False), (X(2, 3, 4, 4),),
    train=False)
row("BatchNorm3d[train]", lambda: nn.BatchNorm3d(2), (X(2, 2, 3, 3, 3),), calls=2)
row("InstanceNorm1d", lambda: nn.InstanceNorm1d(3), (X(2, 3, 6),))
row("InstanceNorm2d[affine,running_stats]", lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
    (X(2, 3, 4, 4),), calls=2, default=True)
row("InstanceNorm2d[running_stats,eval]",
    lambda: _random_stats(nn.InstanceNorm2d(3, track_running_stats=True)), (X(2, 3, 4, 4),), train=False)
row("InstanceNorm3d", lambda: nn.InstanceNorm3d(2, affine=True), (X(1, 2, 3, 3, 3),))
row("LayerNorm", lambda: nn.LayerNorm((3, 4)), (X(2, 5, 3, 4),), default=True)
row("LayerNorm[no_affine]", lambda: nn.LayerNorm(4, elementwise_affine=False), (X(3, 4),))
row("LayerNorm[no_bias]", lambda: nn.LayerNorm(4, bias=False), (X(3, 4),))
row("GroupNorm", lambda: nn.GroupNorm(2, 4), (X(2, 4, 3, 3),), default=True)
row("GroupNorm[no_affine]", lambda: nn.GroupNorm(3, 6, affine=False), (X(2, 6, 5),))
row("RMSNorm", lambda: nn.RMSNorm(4), (X(3, 2, 4),), default=True)
row("RMSNorm[eps,no_affine]", lambda: nn.RMSNorm([2, 4], eps=1e-3, elementwise_affine=False), (X(3, 2, 4),))
row("LocalResponseNorm", lambda: nn.LocalResponseNorm(3), (X(2, 5, 4, 4),), default=True)

# Embeddings
row("Embedding", lambda: nn.Embedding(10, 3), (N(10, 4, 5),))
row("Embedding[padding_idx]", lambda: nn.Embedding(10, 3, padding_idx=0), (C(np.array([[0, 2, 0], [4, 3, 9]])),),
    default=True)
row("Embedding[max_norm]", lambda: nn.Embedding(10, 3, max_norm=1.0), (C(np.array([[1, 2, 1], [4, 3, 9]])),),
    default=True)
row("Embedding[scale_grad_by_freq]", lambda: nn.Embedding(10, 3, scale_grad_by_freq=True),
    (C(np.array([[1, 2, 1], [4, 1, 9]])),))
row("EmbeddingBag[mean,2d]", lambda: nn.EmbeddingBag(10, 3), (N(10, 4, 3),))
row("EmbeddingBag[max,2d]", lambda: nn.EmbeddingBag(10, 3, mode="max"), (N(10, 4, 3),))
row("EmbeddingBag[sum,per_sample_weights]", lambda: nn.EmbeddingBag(10, 3, mode="sum"), (N(10, 4, 3),),
    {"per_sample_weights": X(4, 3)})
row("EmbeddingBag[offsets]", lambda: nn.EmbeddingBag(10, 3, mode="sum"), (N(10, 7), C(np.array([0, 2, 2, 5]))),
    default=True)  # the offsets are a program input: bags found with tensor ops

# Recurrent layers
row("RNN[tanh]", lambda: nn.RNN(3, 4), (X(5, 2, 3),))
row("RNN[relu,batch_first,h0]", lambda: nn.RNN(3, 4, nonlinearity="relu", batch_first=True),
    (X(2, 5, 3), X(1, 2, 4)))
row("LSTM", lambda: nn.LSTM(3, 4), (X(5, 2, 3),), default=True)
row("LSTM[2 layers,bidirectional,batch_first,state]",
    lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), (X(2, 5, 3), (X(4, 2, 4), X(4, 2, 4))),)
row("LSTM[proj_size]", lambda: nn.LSTM(3, 4, proj_size=2), (X(5, 2, 3),))
row("LSTM[dropout,train]", lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5), (X(5, 2, 3),), calls=2)
row("LSTM[unbatched]", lambda: nn.LSTM(3, 4), (X(5, 3),))
row("GRU", lambda: nn.GRU(3, 4), (X(5, 2, 3),))
row("GRU[h0]", lambda: nn.GRU(3, 4), (X(3, 2, 3), X(1, 2, 4)), default=True)
row("GRU[2 layers,bidirectional,h0]", lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True), (X(5, 2, 3), X(4, 2, 4)))
row("RNNCell", lambda: nn.RNNCell(3, 4), (X(2, 3), X(2, 4)))
row("LSTMCell", lambda: nn.LSTMCell(3, 4), (X(2, 3), (X(2, 4), X(2, 4))), default=True)
row("GRUCell", lambda: nn.GRUCell(3, 4), (X(2, 3),))


def _packed_lstm(s, x, lengths):
    from tracenn.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = s.lstm(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0]


# The lengths are an input: the layer runs the batch padded with masks built in-graph (no host read).
row("LSTM[packed,lengths tensor]", lambda: Fn(_packed_lstm, lstm=nn.LSTM(3, 4, batch_first=True)),
    (X(2, 3, 3), C(np.array([2, 3]))), default=True)

# Attention and transformers
row("MultiheadAttention[self]", lambda: nn.MultiheadAttention(8, 2), (X(5, 2, 8), X(5, 2, 8), X(5, 2, 8)),)
row("MultiheadAttention[masks,batch_first]", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
    (X(2, 5, 8), X(2, 6, 8), X(2, 6, 8)),
    {"key_padding_mask": C(np.array([[False] * 6, [False] * 4 + [True] * 2])),
     "attn_mask": C(np.triu(np.ones((5, 6), bool), 2))})
row("MultiheadAttention[float mask,per-head weights]", lambda: nn.MultiheadAttention(8, 2),
    (X(5, 2, 8), X(5, 2, 8), X(5, 2, 8)), {"attn_mask": X(5, 5), "average_attn_weights": C(False)})
row("MultiheadAttention[is_causal,need_weights=False]", lambda: nn.MultiheadAttention(8, 2),
    (X(5, 2, 8), X(5, 2, 8), X(5, 2, 8)),
    {"attn_mask": C(np.triu(np.ones((5, 5), bool), 1)), "is_causal": C(True), "need_weights": C(False)})
row("MultiheadAttention[kdim,vdim,bias_kv,zero_attn]",
    lambda: nn.MultiheadAttention(8, 2, kdim=3, vdim=5, add_bias_kv=True, add_zero_attn=True),
    (X(4, 2, 8), X(6, 2, 3), X(6, 2, 5)))
row("MultiheadAttention[dropout,train]", lambda: nn.MultiheadAttention(8, 2, dropout=0.5),
    (X(5, 2, 8), X(5, 2, 8), X(5, 2, 8)), calls=2)
row("TransformerEncoderLayer[masks]", lambda: nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0),
    (X(5, 2, 8),), {"src_mask": C(np.triu(np.ones((5, 5), bool), 1)),
                    "src_key_padding_mask": C(np.array([[False] * 5, [False] * 3 + [True] * 2]))}, default=True)
row("TransformerEncoderLayer[norm_first,gelu,batch_first,dropout]",
    lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, activation="gelu", batch_first=True, norm_first=True),
    (X(2, 5, 8),), {"src_mask": C(np.triu(np.full((5, 5), -np.inf, np.float32), 1))})
row("TransformerEncoder[2 layers,key padding,eval]",
    lambda: nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
                                  enable_nested_tensor=False),
    (X(2, 5, 8),), {"src_key_padding_mask": C(np.array([[False] * 5, [False] * 3 + [True] * 2]))}, train=False)
row("TransformerDecoderLayer", lambda: nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0), (X(4, 2, 8), X(5, 2, 8)),
    {"tgt_mask": C(np.triu(np.full((4, 4), -np.inf, np.float32), 1))})
row("TransformerDecoder[2 layers,norm]",
    lambda: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.1), 2, norm=nn.LayerNorm(8)),
    (X(4, 2, 8), X(5, 2, 8)), {"tgt_is_causal": C(False)})
row("Transformer", lambda: nn.Transformer(8, 2, 1, 1, 16, dropout=0.0), (X(5, 2, 8), X(4, 2, 8)))

# Dropout family (train mode: same seed -> same masks as eager; eval: identity)
for _name, _make, _shape in [("Dropout", lambda: nn.Dropout(0.4), (4, 6)),
                             ("Dropout1d", lambda: nn.Dropout1d(0.5), (2, 4, 5)),
                             ("Dropout2d", lambda: nn.Dropout2d(0.5), (2, 4, 3, 3)),
                             ("Dropout3d", lambda: nn.Dropout3d(0.5), (2, 4, 2, 2, 2)),
                             ("AlphaDropout", lambda: nn.AlphaDropout(0.3), (4, 6)),
                             ("FeatureAlphaDropout", lambda: nn.FeatureAlphaDropout(0.3), (2, 4, 3, 3))]:
    row(f"{_name}[train]", _make, (X(*_shape),), calls=2, default=_name in ("Dropout", "Dropout2d", "AlphaDropout"))
row("Dropout[eval]", lambda: nn.Dropout(0.4), (X(4, 6),), train=False)
row("Dropout[inplace,train]", lambda: nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5, inplace=True)), (X(4, 3),))

# Vision and shape layers
row("PixelShuffle", lambda: nn.PixelShuffle(2), (X(2, 8, 3, 3),), default=True)
row("PixelUnshuffle", lambda: nn.PixelUnshuffle(2), (X(2, 2, 4, 6),))
row("Upsample[nearest]", lambda: nn.Upsample(scale_factor=2), (X(2, 3, 4, 4),))
row("Upsample[nearest-exact,size]", lambda: nn.Upsample(size=(5, 7), mode="nearest-exact"), (X(2, 3, 4, 4),))
row("Upsample[linear,align_corners]", lambda: nn.Upsample(scale_factor=1.5, mode="linear", align_corners=True),
    (X(2, 3, 6),))
row("Upsample[bilinear]", lambda: nn.Upsample(size=(5, 7), mode="bilinear"), (X(2, 3, 4, 4),), default=True)
row("Upsample[bicubic,align_corners]", lambda: nn.Upsample(scale_factor=2, mode="bicubic", align_corners=True),
    (X(1, 2, 3, 3),))
row("Upsample[trilinear]", lambda: nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear"), (X(1, 2, 2, 3, 3),))
row("UpsamplingNearest2d", lambda: nn.UpsamplingNearest2d(scale_factor=2), (X(1, 2, 3, 3),))
row("UpsamplingBilinear2d", lambda: nn.UpsamplingBilinear2d(size=(5, 5)), (X(1, 2, 3, 3),))
row("interpolate[area]", lambda: Fn(lambda s, x: F.interpolate(x, size=(2, 3), mode="area")), (X(2, 3, 4, 6),))
row("interpolate[bilinear,antialias]",
    lambda: Fn(lambda s, x: F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)), (X(1, 2, 8, 8),))
row("grid_sample[affine_grid]",
    lambda: Fn(lambda s, x, theta: F.grid_sample(x, F.affine_grid(theta, [2, 3, 4, 5], align_corners=False),
                                                 align_corners=False)),
    (X(2, 3, 4, 5), C(np.array([[[0.9, 0.1, 0.05], [-0.1, 1.1, 0.0]]] * 2, np.float32))), default=True)
row("Flatten", lambda: nn.Flatten(), (X(2, 3, 4),))
row("Unflatten", lambda: nn.Unflatten(1, (2, 3)), (X(4, 6, 2),))
row("Fold", lambda: nn.Fold((4, 5), 2, padding=1, stride=2), (X(2, 12, 9),), default=True)
row("Unfold", lambda: nn.Unfold((2, 3), dilation=(1, 2), padding=1, stride=2), (X(2, 3, 5, 6),), default=True)
row("CosineSimilarity", lambda: nn.CosineSimilarity(dim=1), (X(4, 5), X(4, 5)), default=True)
row("PairwiseDistance", lambda: nn.PairwiseDistance(p=3, keepdim=True), (X(4, 5), X(4, 5)), default=True)

# Losses
row("CrossEntropyLoss", lambda: nn.CrossEntropyLoss(), (X(4, 5), N(5, 4)))
row("CrossEntropyLoss[label_smoothing,weight,ignore_index]",
    lambda: nn.CrossEntropyLoss(weight=tracenn.tensor([1.0, 2.0, 0.5, 1.0, 3.0]), ignore_index=1, label_smoothing=0.1),
    (X(6, 5), C(np.array([0, 1, 4, 1, 3, 2]))), default=True)
row("CrossEntropyLoss[probabilities,none]", lambda: nn.CrossEntropyLoss(reduction="none", label_smoothing=0.2),
    (X(4, 5), U(0, 1, 4, 5)))
row("CrossEntropyLoss[4d,sum]", lambda: nn.CrossEntropyLoss(reduction="sum"), (X(2, 3, 4, 4), N(3, 2, 4, 4)))
row("NLLLoss", lambda: nn.NLLLoss(), (X(4, 5), N(5, 4)), default=True)
row("NLLLoss[weight,ignore_index,none]",
    lambda: nn.NLLLoss(weight=tracenn.tensor([1.0, 2.0, 0.5]), ignore_index=2, reduction="none"),
    (X(5, 3), C(np.array([0, 2, 1, 2, 0]))))
row("MSELoss", lambda: nn.MSELoss(), (X(4, 3), X(4, 3)), default=True)
row("L1Loss[sum]", lambda: nn.L1Loss(reduction="sum"), (X(4, 3), X(4, 3)))
row("SmoothL1Loss[beta]", lambda: nn.SmoothL1Loss(beta=0.5), (X(4, 3), X(4, 3)), default=True)
row("HuberLoss[delta,none]", lambda: nn.HuberLoss(delta=0.7, reduction="none"), (X(4, 3), X(4, 3)))
row("BCELoss[weight]", lambda: nn.BCELoss(weight=tracenn.tensor([1.0, 2.0, 0.5])), (U(0.05, 0.95, 4, 3), U(0, 1, 4, 3)))
row("BCEWithLogitsLoss[pos_weight]", lambda: nn.BCEWithLogitsLoss(pos_weight=tracenn.tensor([1.0, 3.0, 0.5])),
    (X(4, 3), U(0, 1, 4, 3)), default=True)
row("KLDivLoss[batchmean]", lambda: nn.KLDivLoss(reduction="batchmean"), (X(4, 5), U(0.05, 1, 4, 5)), default=True)
row("KLDivLoss[log_target]", lambda: nn.KLDivLoss(reduction="sum", log_target=True), (X(4, 5), X(4, 5)))
row("PoissonNLLLoss", lambda: nn.PoissonNLLLoss(full=True), (X(4, 3), U(0, 3, 4, 3)))
row("GaussianNLLLoss", lambda: nn.GaussianNLLLoss(), (X(4, 3), X(4, 3), U(0.5, 2, 4, 3)))
row("CosineEmbeddingLoss", lambda: nn.CosineEmbeddingLoss(0.1), (X(4, 5), X(4, 5), C(np.array([1, -1, 1, -1]))))
row("HingeEmbeddingLoss", lambda: nn.HingeEmbeddingLoss(), (X(4, 3), C(np.array([[1, -1, 1]] * 4, np.float32))))
row("MarginRankingLoss", lambda: nn.MarginRankingLoss(0.2), (X(5), X(5), C(np.array([1, -1, 1, 1, -1], np.float32))))
row("MultiLabelMarginLoss", lambda: nn.MultiLabelMarginLoss(), (X(2, 4), C(np.array([[3, 0, -1, 1], [1, 2, 3, -1]]))))
row("MultiLabelSoftMarginLoss", lambda: nn.MultiLabelSoftMarginLoss(),
    (X(3, 4), C(np.array([[1, 0, 1, 0]] * 3, np.float32))))
row("MultiMarginLoss", lambda: nn.MultiMarginLoss(p=2, margin=0.5), (X(4, 5), N(5, 4)))
row("SoftMarginLoss", lambda: nn.SoftMarginLoss(), (X(4, 3), C(np.array([[1, -1, 1]] * 4, np.float32))))
row("TripletMarginLoss", lambda: nn.TripletMarginLoss(margin=0.5, swap=True), (X(4, 5), X(4, 5), X(4, 5)))
row("TripletMarginWithDistanceLoss",
    lambda: nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance()), (X(4, 5), X(4, 5), X(4, 5)))
row("CTCLoss[length tuples]", lambda: nn.CTCLoss(), (
    lambda rng: np.log(rng.dirichlet(np.ones(5), (6, 2))).astype(np.float32),
    C(np.array([[1, 2, 2], [3, 4, 1]])), C((6, 5)), C((3, 2))))
row("CTCLoss[length tensors]", lambda: nn.CTCLoss(reduction="sum"), (
    lambda rng: np.log(rng.dirichlet(np.ones(5), (6, 2))).astype(np.float32),
    C(np.array([[1, 2, 2], [3, 4, 1]])), C(np.array([6, 5])), C(np.array([3, 2]))))
# (1-d concatenated targets: where each sequence's targets start is read from the lengths' values)
row("CTCLoss[concatenated targets]", lambda: nn.CTCLoss(), (
    lambda rng: np.log(rng.dirichlet(np.ones(5), (6, 2))).astype(np.float32),
    C(np.array([1, 2, 2, 3, 4])), C(np.array([6, 5])), C(np.array([3, 2]))), data_dependent=True)


# ---- running a row -----------------------------------------------------------------------------------

RTOL, ATOL = 1e-5, 1e-6


def assert_same(got, want, what, tol=1.0):
    """Compiled ``got`` against eager ``want``, recursively: structure, dtype, shape, requires_grad, values."""
    if isinstance(want, tracenn.Tensor):
        assert isinstance(got, tracenn.Tensor), f"{what}: compiled gives {type(got).__name__}, eager a Tensor"
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, eager {want.dtype}"
        assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)}, eager {tuple(want.shape)}"
        assert got.requires_grad == want.requires_grad, \
            f"{what}: requires_grad {got.requires_grad}, eager {want.requires_grad}"
        a, e = to_np(got), to_np(want)
        if a.dtype.kind in "biu":
            np.testing.assert_array_equal(a, e, err_msg=what)
        else:
            np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), rtol=RTOL * tol, atol=ATOL * tol,
                                       equal_nan=True, err_msg=what)
    elif isinstance(want, (tuple, list)):
        assert type(got) is type(want), f"{what}: compiled gives {type(got).__name__}, eager {type(want).__name__}"
        assert len(got) == len(want), f"{what}: {len(got)} items, eager {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{what}[{i}]", tol)
    else:
        assert got == want, f"{what}: {got!r}, eager {want!r}"


def _loss(out, rng):
    """sum_i <out_i, w_i> over the outputs that require grad, with fixed random weights."""
    total = None
    for o in _leaves(out, []):
        if o.requires_grad:
            w = tracenn.tensor(rng.standard_normal(tuple(o.shape)).astype(to_np(o).dtype))
            term = (o * w).sum()
            total = term if total is None else total + term
    return total


class Pair:
    """The row's layer, eager and compiled, run side by side."""

    def __init__(self, row, fallback=None):
        self.row = row
        tracenn.manual_seed(0)
        self.eager = row.make()
        self.model = copy.deepcopy(self.eager)
        if not row.train:
            self.eager.eval()
            self.model.eval()
        self.compiled = tracenn.compile(self.model, fallback=fallback, verify_passes=True)

    def call(self, i):
        """Call ``i``: the same inputs and RNG seed for both; compare outputs and input grads."""
        row = self.row
        spec = _materialise((row.args, row.kwargs), np.random.default_rng(i))
        e_args, e_kwargs = _tensors(spec, row.grad)
        c_args, c_kwargs = _tensors(spec, row.grad)
        tracenn.manual_seed(100 + i)
        want = self.eager(*e_args, **e_kwargs)
        rng_after = tracenn.get_rng_state().tolist()
        tracenn.manual_seed(100 + i)
        got = self.compiled(*c_args, **c_kwargs)
        what = f"{row.id} call {i}"
        assert_same(got, want, f"{what} output", row.tol)
        assert tracenn.get_rng_state().tolist() == rng_after, \
            f"{what}: the generator state after the compiled call differs from eager (random draws)"
        if row.grad:
            le, lc = _loss(want, np.random.default_rng(i)), _loss(got, np.random.default_rng(i))
            assert (le is None) == (lc is None)
            if le is not None:
                le.backward()
                lc.backward()
            for k, (ti, tc) in enumerate(zip(_leaves((e_args, e_kwargs), []), _leaves((c_args, c_kwargs), []))):
                if ti.grad is None:
                    assert tc.grad is None, f"{what} input {k}: compiled has a gradient, eager none"
                else:
                    assert tc.grad is not None, f"{what} input {k}: no gradient through the compiled call"
                    assert_same(tc.grad, ti.grad, f"{what} d/d(input {k})", 10 * row.tol)
        return got, want

    def run(self):
        for i in range(self.row.calls):
            self.call(i)
        self.check_state()

    def check_state(self):
        row = self.row
        pe, pc = dict(self.eager.named_parameters()), dict(self.model.named_parameters())
        assert list(pe) == list(pc)
        for n in pe:
            assert_same(pc[n].detach(), pe[n].detach(), f"{row.id}: parameter {n} after the calls")
            if pe[n].grad is None:
                assert pc[n].grad is None, f"{row.id}: {n}.grad set by the compiled call, None in eager"
            else:
                assert pc[n].grad is not None, f"{row.id}: {n}.grad not set through the compiled call"
                assert_same(pc[n].grad, pe[n].grad, f"{row.id}: {n}.grad", 10 * row.tol)
        be, bc = dict(self.eager.named_buffers()), dict(self.model.named_buffers())
        assert list(be) == list(bc)
        for n in be:
            assert_same(bc[n], be[n], f"{row.id}: buffer {n} after the calls", row.tol)


def _params(rows):
    out = []
    for r in rows:
        marks = [pytest.mark.xfail(reason=r.bug, strict=True)] if r.bug else []
        if not r.default:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(r, id=r.id, marks=marks))
    return out


@pytest.mark.parametrize("row", _params([r for r in ROWS if not r.data_dependent]))
def test_layer_compiled_matches_eager(row):
    Pair(row).run()


DATA_DEPENDENT = [r for r in ROWS if r.data_dependent]


@pytest.mark.parametrize("row", _params(DATA_DEPENDENT))
def test_data_dependent_layer_raises_then_falls_back(row):
    """Compiling raises DataDependentError saying what to do; fallback="eager" gives eager's results."""
    pair = Pair(row)
    a, k = _tensors(_materialise((row.args, row.kwargs), np.random.default_rng(0)), row.grad)
    # (Python reading a value, or an op whose output shape depends on values: both name the line)
    with pytest.raises(DataDependentError, match=r"(read a tensor's value at .*\.py:\d+|at .*\.py:\d+ .*depends on "
                       r"the values of a tensor).*fallback=\"eager\""):
        pair.compiled(*a, **k)
    pair = Pair(row, fallback="eager")
    with pytest.warns(UserWarning, match="fallback='eager'.*eagerly"):
        pair.run()


def _where_params():
    out = []
    for r in DATA_DEPENDENT:
        if r.where is None or r.bug:
            continue
        regex, bug = r.where if isinstance(r.where, tuple) else (r.where, None)
        marks = [pytest.mark.xfail(reason=bug, strict=True)] if bug else []
        if not r.default:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(r, regex, id=r.id, marks=marks))
    return out


@pytest.mark.parametrize("row,where", _where_params())
def test_data_dependent_message_names_the_place(row, where):
    a, k = _tensors(_materialise((row.args, row.kwargs), np.random.default_rng(0)), row.grad)
    with pytest.raises(DataDependentError) as e:
        Pair(row).compiled(*a, **k)
    assert re.search(where, str(e.value)), str(e.value)


def test_row_ids_are_unique():
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
