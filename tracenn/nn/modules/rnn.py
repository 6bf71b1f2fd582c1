"""Recurrent layers: ``RNN`` (tanh/relu), ``LSTM`` (with ``proj_size``), ``GRU`` and their cells.

Parameters have torch's names (``weight_ih_l0``, ``bias_hh_l1_reverse``, ``weight_hr_l0``), shapes,
gate order (LSTM: input, forget, cell, output; GRU: reset, update, new) and init
(:math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})` for every parameter), so a torch ``state_dict`` loads.

How a layer runs. The time loop is a Python loop, run eagerly (the compiler unrolls it), so the
work per step is kept small:

- the input projections of every time step (and both directions) are one matmul up front, with
  the biases folded in (GRU keeps ``b_hn`` inside the reset gate, as torch's formula needs);
- the two directions of a bidirectional layer run together, stacked on a leading axis of size
  2, with the reverse direction's inputs flipped in time — one batched matmul per step for all
  gates of both directions;
- a ``PackedSequence`` is unpacked to a padded batch (one gather) and run with a per-step mask
  that freezes the state of sequences that have ended (and, in the reverse direction, that have
  not started), then packed again (one gather). Outputs at padded positions are never read.
  Inside ``tracenn.compile``, a sequence packed with traced lengths (see ``utils/rnn.py``) is
  already padded: the masks are built from the lengths in-graph and the output stays padded.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..._api import creation as _creation, index as _index, linalg as _linalg, math as _math, shape as _shape
from ..._api._common import value_of
from ..._dispatch import apply
from ...ops import OPS
from ...tensor import Tensor
from .. import functional as F, init
from ..parameter import Parameter
from ..utils.rnn import (PackedSequence, _PaddedPackedSequence, _TracedLengths, lengths_of, packed_to_padded,
                         padded_to_packed)
from .module import Module

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


# ---- one time step, for any leading shape (cells: (N,), layers: (D, N)) ------------------------------
# ``gx``: the input projection with its bias, ``gh``: the hidden projection (with its bias where
# the cell needs it apart). Gate slices are views of one projection: one matmul serves all gates.

def _slice(x: Tensor, start: int, length: int) -> Tensor:
    return _shape.narrow(x, -1, start, length)


def _zeros_like_state(shape: tuple, like: Tensor) -> Tensor:
    """Zeros of ``like``'s dtype, placed as ``like`` is. A tensor made with ``device=`` is a committed
    JAX array and an uncommitted one is not, and kernels compile once per kind: passing
    ``device=input.device`` for a default-device input would recompile every op of the loop."""
    device = like.device if getattr(value_of(like), "committed", False) else None
    return _creation.zeros(shape, dtype=like.dtype, device=device)


_INDEX = OPS["index"]
_AT_DIM1 = ((("s", None, None, None), ("t", 0)),)


def _at_step(x: Tensor, t: int) -> Tensor:
    """``x[:, t]``, the index passed as a runtime scalar: every step shares one kernel (a static slice
    compiles one per step, which dominates a short eager run)."""
    return apply(_INDEX, (x, t), _AT_DIM1)


def _rnn_step(gx: Tensor, gh: Tensor, relu: bool) -> Tensor:
    pre = _math.add(gx, gh)
    return _math.relu(pre) if relu else _math.tanh(pre)


def _lstm_step(gx: Tensor, gh: Tensor, c: Tensor, hidden: int) -> tuple[Tensor, Tensor]:
    gates = _math.add(gx, gh)
    act = _math.sigmoid(gates)
    i, f, o = _slice(act, 0, hidden), _slice(act, hidden, hidden), _slice(act, 3 * hidden, hidden)
    g = _math.tanh(_slice(gates, 2 * hidden, hidden))
    c = _math.add(_math.mul(f, c), _math.mul(i, g))
    return _math.mul(o, _math.tanh(c)), c


def _gru_step(gx: Tensor, gh: Tensor, h: Tensor, hidden: int) -> Tensor:
    # torch: r, z = sigmoid(W_i{r,z} x + b_i + W_h{r,z} h + b_h); n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
    # h' = (1 - z) * n + z * h, computed as (h - n) * z + n.
    rz = _math.sigmoid(_slice(_math.add(gx, gh), 0, 2 * hidden))
    r, z = _slice(rz, 0, hidden), _slice(rz, hidden, hidden)
    n = _math.tanh(_math.add(_slice(gx, 2 * hidden, hidden), _math.mul(r, _slice(gh, 2 * hidden, hidden))))
    return _math.add(_math.mul(_math.sub(h, n), z), n)


class RNNBase(Module):
    r"""Base class of :class:`RNN`, :class:`LSTM` and :class:`GRU`: the parameters and checks.

    ``mode`` is ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``.

    >>> import tracenn
    >>> m = tracenn.nn.RNNBase("GRU", 3, 4, num_layers=2)
    >>> [name for name, _ in m.named_parameters()][:4]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    """

    __constants__ = ["mode", "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
                     "bidirectional", "proj_size"]

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        if not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an element "
                             "being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          stacklevel=2)
        for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                                  ("input_size", input_size, int)):
            if not isinstance(value, kind):
                raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        if input_size <= 0:
            raise ValueError("input_size must be greater than zero")
        if not isinstance(hidden_size, int):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        gate_size = {"LSTM": 4 * hidden_size, "GRU": 3 * hidden_size, "RNN_TANH": hidden_size,
                     "RNN_RELU": hidden_size}.get(mode)
        if gate_size is None:
            raise ValueError("Unrecognized RNN mode: " + mode)

        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        real_hidden_size = proj_size if proj_size > 0 else hidden_size
        for layer in range(num_layers):
            for direction in range(num_directions):
                layer_input_size = input_size if layer == 0 else real_hidden_size * num_directions
                suffix = "_reverse" if direction == 1 else ""
                params = [(f"weight_ih_l{layer}{suffix}", (gate_size, layer_input_size)),
                          (f"weight_hh_l{layer}{suffix}", (gate_size, real_hidden_size))]
                if bias:
                    params += [(f"bias_ih_l{layer}{suffix}", (gate_size,)), (f"bias_hh_l{layer}{suffix}", (gate_size,))]
                if proj_size > 0:
                    params += [(f"weight_hr_l{layer}{suffix}", (proj_size, hidden_size))]
                for name, shape in params:
                    setattr(self, name, Parameter(_creation.empty(shape, **factory_kwargs)))
                self._flat_weights_names.extend(name for name, _ in params)
                self._all_weights.append([name for name, _ in params])
        self.reset_parameters()

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, name, None) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters per layer and direction, in torch's order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def flatten_parameters(self) -> None:
        """No-op: torch packs weights for cuDNN here; XLA needs no such layout."""

    def reset_parameters(self) -> None:
        """Draw every parameter from :math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})`."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    # ---- checks (torch's messages) -------------------------------------------------------------

    def check_input(self, input: Tensor, batch_sizes: Tensor | None) -> None:
        weight_dtype = self._flat_weights[0].dtype
        if input.dtype != weight_dtype:
            raise ValueError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight_dtype}). Convert "
                             f"input: input.to({weight_dtype}), or convert model: model.to({input.dtype})")
        expected_input_dim = 2 if batch_sizes is not None and not isinstance(batch_sizes, _TracedLengths) else 3
        if input.dim() != expected_input_dim:
            raise RuntimeError(f"input must have {expected_input_dim} dimensions, got {input.dim()}")
        if self.input_size != input.size(-1):
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got "
                               f"{input.size(-1)}")

    def get_expected_hidden_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        size = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (self.num_layers * num_directions, mini_batch, size)

    def check_hidden_size(self, hx: Tensor, expected_hidden_size: tuple[int, int, int],
                          msg: str = "Expected hidden size {}, got {}") -> None:
        if tuple(hx.size()) != tuple(expected_hidden_size):
            raise RuntimeError(msg.format(expected_hidden_size, list(hx.size())))

    def check_forward_args(self, input: Tensor, hidden: Tensor, batch_sizes: Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden, self.get_expected_hidden_size(input, batch_sizes))

    def permute_hidden(self, hx: Tensor, permutation: Tensor | None):
        if permutation is None:
            return hx
        return _index.index_select(hx, 1, permutation)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ---- the computation ----------------------------------------------------------------------

    def _run(self, input: Tensor, h0: Tensor, c0: Tensor | None, batch_sizes: Tensor | None):
        """Run all layers. ``input`` is packed data (with ``batch_sizes``) or a padded batch in the
        module's layout; returns (output in the same form, h_n, c_n or None)."""
        lengths = None
        traced = isinstance(batch_sizes, _TracedLengths)  # (padded (T, N, *), lengths known only in-graph)
        if traced:
            x = input
        elif batch_sizes is not None:
            bs = np.asarray(value_of(batch_sizes)).astype(np.int64)
            x = packed_to_padded(input, bs, bs.size)
            lengths = lengths_of(bs)
        else:
            x = _shape.transpose(input, 0, 1) if self.batch_first else input
        steps = x.shape[0]
        if steps == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        D = 2 if self.bidirectional else 1
        masks = None
        if lengths is not None and np.any(lengths != steps):
            t = np.arange(steps)
            order = [t, t[::-1]][:D]  # the time index each direction reads at step s
            m = np.stack([o[:, None] < lengths[None, :] for o in order], 1)[..., None]  # (T, D, N, 1)
            masks = [_creation.tensor(m[s]) for s in range(steps)]
        elif traced:
            t = np.arange(steps)
            order = _creation.tensor(np.stack([t, t[::-1]][:D], 1)[:, :, None])  # (T, D, 1)
            masks = _shape.unbind((order < batch_sizes.lengths).unsqueeze(-1), 0)  # T x (D, N, 1)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            names = self._all_weights[layer * D:(layer + 1) * D]
            x, h, c = self._run_layer(x, names, _shape.narrow(h0, 0, layer * D, D),
                                      None if c0 is None else _shape.narrow(c0, 0, layer * D, D), masks)
            h_n.append(h)
            c_n.append(c)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        h_n = h_n[0] if len(h_n) == 1 else _shape.cat(h_n, 0)
        c_n = None if c0 is None else (c_n[0] if len(c_n) == 1 else _shape.cat(c_n, 0))
        if traced:
            output = x
        elif batch_sizes is not None:
            output = padded_to_packed(x, bs)
        else:
            output = _shape.transpose(x, 0, 1) if self.batch_first else x
        return output, h_n, c_n

    def _run_layer(self, x: Tensor, names: list[list[str]], h: Tensor, c: Tensor | None, masks):
        """One layer, both directions at once (stacked on a leading axis D). x: (T, N, I)."""
        D = len(names)
        steps, batch, features = x.shape
        hidden = self.hidden_size

        def stacked(i: int) -> Tensor:
            ts = [getattr(self, n[i]) for n in names]
            return ts[0].unsqueeze(0) if D == 1 else _shape.stack(ts, 0)

        w_ih, w_hh = stacked(0), stacked(1)  # (D, G, I), (D, G, H)
        w_hh_t = _shape.transpose(w_hh, 1, 2)
        w_hr_t = _shape.transpose(stacked(4 if self.bias else 2), 1, 2) if self.proj_size > 0 else None
        seq = x.unsqueeze(0) if D == 1 else _shape.stack([x, _shape.flip(x, [0])], 0)  # reverse reads backwards
        gx = _linalg.matmul(_shape.reshape(seq, (D, steps * batch, features)), _shape.transpose(w_ih, 1, 2))
        b_hh = None
        if self.bias:
            b_ih, b_hh = stacked(2).unsqueeze(1), stacked(3).unsqueeze(1)  # (D, 1, G)
            if self.mode == "GRU":
                gx = _math.add(gx, b_ih)  # b_hh stays with the hidden projection (b_hn is inside r * (...))
            else:
                gx = _math.add(gx, _math.add(b_ih, b_hh))
                b_hh = None
        gx = _shape.reshape(gx, (D, steps, batch, gx.shape[-1]))

        outputs = []
        for s in range(steps):
            gx_s = _at_step(gx, s)
            gh = _linalg.matmul(h, w_hh_t)
            if b_hh is not None:
                gh = _math.add(gh, b_hh)
            if self.mode == "LSTM":
                h_new, c_new = _lstm_step(gx_s, gh, c, hidden)
                if w_hr_t is not None:
                    h_new = _linalg.matmul(h_new, w_hr_t)
            elif self.mode == "GRU":
                h_new, c_new = _gru_step(gx_s, gh, h, hidden), None
            else:
                h_new, c_new = _rnn_step(gx_s, gh, self.mode == "RNN_RELU"), None
            if masks is not None:  # sequences not running at this step keep their state
                h_new = _math.where(masks[s], h_new, h)
                if c_new is not None:
                    c_new = _math.where(masks[s], c_new, c)
            h, c = h_new, c_new
            outputs.append(h)
        y = _shape.stack(outputs, 1)  # (D, T, N, H)
        if D == 1:
            y = y.squeeze(0)
        else:
            fwd, bwd = _shape.unbind(y, 0)
            y = _shape.cat([fwd, _shape.flip(bwd, [0])], -1)
        return y, h, c

    def _prepare(self, input, hx, name: str, tuple_state: bool):
        """Unpack a PackedSequence / add the batch dim of an unbatched input, as torch does; returns
        (input, hx, batch_sizes, sorted_indices, unsorted_indices, is_batched, batch_dim)."""
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is not None:
                hx = self.permute_hidden(hx, sorted_indices)
            return data, hx, batch_sizes, sorted_indices, unsorted_indices, True, None
        if input.dim() not in (2, 3):
            extra = " tensor" if name in ("RNN",) else ""
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D{extra} instead")
        is_batched = input.dim() == 3
        batch_dim = 0 if self.batch_first else 1
        if not is_batched:
            input = input.unsqueeze(batch_dim)
        if hx is not None:
            if tuple_state:
                dims = (hx[0].dim(), hx[1].dim())
                want = 3 if is_batched else 2
                if dims != (want, want):
                    kind = "batched 3-D" if is_batched else "unbatched 2-D"
                    raise RuntimeError(f"For {kind} input, hx and cx should also be {want}-D but got "
                                       f"({dims[0]}-D, {dims[1]}-D) tensors")
                if not is_batched:
                    hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
            elif not is_batched:
                if hx.dim() != 2:
                    raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
                hx = hx.unsqueeze(1)
            elif hx.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        return input, hx, None, None, None, is_batched, batch_dim

    def _zeros_state(self, input: Tensor, batch_sizes, size: int) -> Tensor:
        batch = int(batch_sizes[0]) if batch_sizes is not None else input.size(0 if self.batch_first else 1)
        num_directions = 2 if self.bidirectional else 1
        return _zeros_like_state((self.num_layers * num_directions, batch, size), input)

    def _finish(self, orig_input, output, hidden, batch_sizes, sorted_indices, unsorted_indices, is_batched,
                batch_dim):
        if isinstance(orig_input, _PaddedPackedSequence):
            return _PaddedPackedSequence.make(output, batch_sizes, sorted_indices, unsorted_indices), \
                self.permute_hidden(hidden, unsorted_indices)
        if isinstance(orig_input, PackedSequence):
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), \
                self.permute_hidden(hidden, unsorted_indices)
        if not is_batched:
            output = output.squeeze(batch_dim)
            hidden = tuple(h.squeeze(1) for h in hidden) if isinstance(hidden, tuple) else hidden.squeeze(1)
        return output, hidden


class RNN(RNNBase):
    r"""Elman RNN: :math:`h_t = \tanh(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh})` (or ReLU), stacked
    ``num_layers`` deep.

    Args:
        input_size, hidden_size: feature sizes of :math:`x` and :math:`h`.
        num_layers: stacked layers. Default: 1.
        nonlinearity: ``'tanh'`` or ``'relu'``. Default: ``'tanh'``.
        bias: use ``b_ih`` and ``b_hh``. Default: True.
        batch_first: input and output are :math:`(N, L, H)`. Default: False.
        dropout: dropout on the outputs of each layer but the last, in training. Default: 0.
        bidirectional: also run the sequence backwards; outputs concatenate both. Default: False.

    ``forward(input, hx=None)``: input :math:`(L, N, H_{in})`, unbatched :math:`(L, H_{in})`, or a
    :class:`~tracenn.nn.utils.rnn.PackedSequence`; ``hx`` :math:`(D \cdot \text{num\_layers}, N, H)`
    (zeros by default). Returns ``(output, h_n)``: output :math:`(L, N, D \cdot H)`.

    >>> import tracenn
    >>> rnn = tracenn.nn.RNN(10, 20, 2)
    >>> rnn
    RNN(10, 20, num_layers=2)
    >>> output, hn = rnn(tracenn.randn(5, 3, 10), tracenn.randn(2, 3, 20))
    >>> output.shape, hn.shape
    (tracenn.Size([5, 3, 20]), tracenn.Size([2, 3, 20]))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if self.nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif self.nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(mode, *args, **kwargs)

    def forward(self, input, hx: Tensor | None = None):
        orig_input = input
        input, hx, batch_sizes, sorted_idx, unsorted_idx, is_batched, batch_dim = self._prepare(input, hx, "RNN", False)
        if hx is None:
            hx = self._zeros_state(input, batch_sizes, self.hidden_size)
        self.check_forward_args(input, hx, batch_sizes)
        output, hidden, _ = self._run(input, hx, None, batch_sizes)
        return self._finish(orig_input, output, hidden, batch_sizes, sorted_idx, unsorted_idx, is_batched, batch_dim)


class LSTM(RNNBase):
    r"""Long short-term memory, stacked ``num_layers`` deep:

    .. math::
        i, f, g, o = \sigma, \sigma, \tanh, \sigma\,(x_t W_{ih}^T + b_{ih} + h_{t-1} W_{hh}^T + b_{hh}) \\
        c_t = f \odot c_{t-1} + i \odot g, \quad h_t = o \odot \tanh(c_t)

    with ``proj_size > 0`` also :math:`h_t = h_t W_{hr}^T`. Arguments as :class:`RNN` (no
    ``nonlinearity``), plus ``proj_size``.

    ``forward(input, (h_0, c_0)=None)`` returns ``(output, (h_n, c_n))``.

    >>> import tracenn
    >>> lstm = tracenn.nn.LSTM(10, 20, batch_first=True, proj_size=5)
    >>> lstm
    LSTM(10, 20, proj_size=5, batch_first=True)
    >>> output, (hn, cn) = lstm(tracenn.randn(3, 4, 10))
    >>> output.shape, hn.shape, cn.shape
    (tracenn.Size([3, 4, 5]), tracenn.Size([1, 3, 5]), tracenn.Size([1, 3, 20]))
    """

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)

    def get_expected_cell_size(self, input: Tensor, batch_sizes: Tensor | None) -> tuple[int, int, int]:
        if batch_sizes is not None:
            mini_batch = int(batch_sizes[0])
        else:
            mini_batch = input.size(0) if self.batch_first else input.size(1)
        num_directions = 2 if self.bidirectional else 1
        return (self.num_layers * num_directions, mini_batch, self.hidden_size)

    def check_forward_args(self, input: Tensor, hidden: tuple[Tensor, Tensor], batch_sizes: Tensor | None) -> None:
        self.check_input(input, batch_sizes)
        self.check_hidden_size(hidden[0], self.get_expected_hidden_size(input, batch_sizes),
                               "Expected hidden[0] size {}, got {}")
        self.check_hidden_size(hidden[1], self.get_expected_cell_size(input, batch_sizes),
                               "Expected hidden[1] size {}, got {}")

    def permute_hidden(self, hx: tuple[Tensor, Tensor], permutation: Tensor | None) -> tuple[Tensor, Tensor]:
        if permutation is None:
            return hx
        return _index.index_select(hx[0], 1, permutation), _index.index_select(hx[1], 1, permutation)

    def forward(self, input, hx: tuple[Tensor, Tensor] | None = None):
        orig_input = input
        input, hx, batch_sizes, sorted_idx, unsorted_idx, is_batched, batch_dim = self._prepare(input, hx, "LSTM", True)
        if hx is None:
            real_hidden_size = self.proj_size if self.proj_size > 0 else self.hidden_size
            hx = (self._zeros_state(input, batch_sizes, real_hidden_size),
                  self._zeros_state(input, batch_sizes, self.hidden_size))
        self.check_forward_args(input, hx, batch_sizes)
        output, h_n, c_n = self._run(input, hx[0], hx[1], batch_sizes)
        return self._finish(orig_input, output, (h_n, c_n), batch_sizes, sorted_idx, unsorted_idx, is_batched,
                            batch_dim)


class GRU(RNNBase):
    r"""Gated recurrent unit, stacked ``num_layers`` deep (torch's formulation):

    .. math::
        r, z = \sigma(x_t W_{i\{r,z\}}^T + b_{i\{r,z\}} + h_{t-1} W_{h\{r,z\}}^T + b_{h\{r,z\}}) \\
        n = \tanh(x_t W_{in}^T + b_{in} + r \odot (h_{t-1} W_{hn}^T + b_{hn})), \quad
        h_t = (1 - z) \odot n + z \odot h_{t-1}

    Arguments and call as :class:`RNN` (no ``nonlinearity``).

    >>> import tracenn
    >>> gru = tracenn.nn.GRU(10, 20, bidirectional=True)
    >>> gru
    GRU(10, 20, bidirectional=True)
    >>> output, hn = gru(tracenn.randn(5, 10))
    >>> output.shape, hn.shape
    (tracenn.Size([5, 40]), tracenn.Size([2, 20]))
    """

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)

    def forward(self, input, hx: Tensor | None = None):
        orig_input = input
        input, hx, batch_sizes, sorted_idx, unsorted_idx, is_batched, batch_dim = self._prepare(input, hx, "GRU", False)
        if hx is None:
            hx = self._zeros_state(input, batch_sizes, self.hidden_size)
        self.check_forward_args(input, hx, batch_sizes)
        output, hidden, _ = self._run(input, hx, None, batch_sizes)
        return self._finish(orig_input, output, hidden, batch_sizes, sorted_idx, unsorted_idx, is_batched, batch_dim)


# ---- cells -----------------------------------------------------------------------------------------

class RNNCellBase(Module):
    r"""Base class of the cells: ``weight_ih`` :math:`(k H, H_{in})`, ``weight_hh`` :math:`(k H, H)`,
    ``bias_ih``/``bias_hh`` :math:`(k H)`, all from :math:`\mathcal{U}(-1/\sqrt{H}, 1/\sqrt{H})`.

    >>> import tracenn
    >>> tracenn.nn.RNNCellBase(3, 4, True, num_chunks=2).weight_hh.shape
    tracenn.Size([8, 4])
    """

    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        self.weight_ih = Parameter(_creation.empty((num_chunks * hidden_size, input_size), **factory_kwargs))
        self.weight_hh = Parameter(_creation.empty((num_chunks * hidden_size, hidden_size), **factory_kwargs))
        if bias:
            self.bias_ih = Parameter(_creation.empty(num_chunks * hidden_size, **factory_kwargs))
            self.bias_hh = Parameter(_creation.empty(num_chunks * hidden_size, **factory_kwargs))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if "bias" in self.__dict__ and self.bias is not True:
            s += f", bias={self.bias}"
        if "nonlinearity" in self.__dict__ and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def reset_parameters(self) -> None:
        """Draw every parameter from :math:`\\mathcal{U}(-1/\\sqrt{H}, 1/\\sqrt{H})`."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def _check(self, input: Tensor, hx, name: str, what: str = "hidden") -> bool:
        if input.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and hx.dim() not in (1, 2):
            raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {hx.dim()}D instead")
        return input.dim() == 2

    def _check_sizes(self, input: Tensor, *states: Tensor) -> None:
        """torch's size checks of a step (batch dim added): the input's features, then each state's
        batch and features (``hidden0``, and ``hidden1`` for an LSTM's cell state)."""
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        for label, hx in enumerate(states):
            if input.size(0) != hx.size(0):
                raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{label} batch size "
                                   f"{hx.size(0)}")
            if hx.size(1) != self.hidden_size:
                raise RuntimeError(f"hidden{label} has inconsistent hidden_size: got {hx.size(1)}, expected "
                                   f"{self.hidden_size}")

    def _projections(self, input: Tensor, hx: Tensor) -> tuple[Tensor, Tensor]:
        return F.linear(input, self.weight_ih, self.bias_ih), F.linear(hx, self.weight_hh, self.bias_hh)


class RNNCell(RNNCellBase):
    r"""One step of an Elman RNN: :math:`h' = \tanh(x W_{ih}^T + b_{ih} + h W_{hh}^T + b_{hh})` (or ReLU).

    ``forward(input, hx=None)``: input :math:`(N, H_{in})` or :math:`(H_{in})`, hx (zeros by default);
    returns :math:`h'`.

    >>> import tracenn
    >>> cell = tracenn.nn.RNNCell(10, 20, nonlinearity="relu")
    >>> cell
    RNNCell(10, 20, nonlinearity=relu)
    >>> cell(tracenn.randn(3, 10)).shape
    tracenn.Size([3, 20])
    """

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        is_batched = self._check(input, hx, "RNNCell")
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = _zeros_like_state((input.size(0), self.hidden_size), input)
        elif not is_batched:
            hx = hx.unsqueeze(0)
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        self._check_sizes(input, hx)
        ret = _rnn_step(*self._projections(input, hx), self.nonlinearity == "relu")
        return ret if is_batched else ret.squeeze(0)


class LSTMCell(RNNCellBase):
    r"""One LSTM step (gate order input, forget, cell, output): returns ``(h', c')``.

    ``forward(input, (h, c)=None)``: input :math:`(N, H_{in})` or :math:`(H_{in})`.

    >>> import tracenn
    >>> cell = tracenn.nn.LSTMCell(10, 20)
    >>> h, c = cell(tracenn.randn(3, 10))
    >>> h.shape, c.shape
    (tracenn.Size([3, 20]), tracenn.Size([3, 20]))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        if input.dim() not in (1, 2):
            raise ValueError(f"LSTMCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None:
            for idx, value in enumerate(hx):
                if value.dim() not in (1, 2):
                    raise ValueError(f"LSTMCell: Expected hx[{idx}] to be 1D or 2D, got {value.dim()}D instead")
        is_batched = input.dim() == 2
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            zeros = _zeros_like_state((input.size(0), self.hidden_size), input)
            hx = (zeros, zeros)
        elif not is_batched:
            hx = (hx[0].unsqueeze(0), hx[1].unsqueeze(0))
        self._check_sizes(input, *hx)
        gx, gh = self._projections(input, hx[0])
        h, c = _lstm_step(gx, gh, hx[1], self.hidden_size)
        return (h, c) if is_batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    r"""One GRU step (torch's formulation, see :class:`GRU`): returns :math:`h'`.

    >>> import tracenn
    >>> cell = tracenn.nn.GRUCell(10, 20, bias=False)
    >>> cell
    GRUCell(10, 20, bias=False)
    >>> cell(tracenn.randn(10), tracenn.zeros(20)).shape
    tracenn.Size([20])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        is_batched = self._check(input, hx, "GRUCell")
        if not is_batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = _zeros_like_state((input.size(0), self.hidden_size), input)
        elif not is_batched:
            hx = hx.unsqueeze(0)
        self._check_sizes(input, hx)
        ret = _gru_step(*self._projections(input, hx), hx, self.hidden_size)
        return ret if is_batched else ret.squeeze(0)
