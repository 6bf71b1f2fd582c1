"""``AdaptiveLogSoftmaxWithLoss``: the efficient softmax approximation of Grave et al. (2016).

Structure, parameter names and initialisation are torch's: a ``head`` Linear over the shortlist plus
one logit per cluster, and a ``tail`` ModuleList of ``Sequential(Linear(in, hsz, bias=False),
Linear(hsz, osz, bias=False))`` projections, so a torch ``state_dict`` loads unchanged.

Eagerly, each cluster runs only on the rows whose target falls in it (torch's way, rows picked with
``nonzero``). Under tracing the rows are unknown, so every cluster runs on the whole batch and the
rows are picked with ``where``: the same numbers, more work.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

from ..._api import index as _index, math as _math, reduce as _reduce, shape as _shape
from ..._dispatch import apply as _apply
from ...ops import OPS as _OPS
from ...tensor import Tensor
from .. import functional as F
from ..functional._loss import _concrete
from .container import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])
_GATHER = _OPS["gather"]


def _pick(logprob: Tensor, index: Tensor) -> Tensor:
    """``logprob.gather(1, index[:, None])[:, 0]``. The targets were range-checked once in forward, so the
    gather primitive is called directly (tracenn.gather would read the indices again, which tracing
    cannot)."""
    return _apply(_GATHER, (logprob, index.unsqueeze(1)), (1,)).squeeze(1)


class AdaptiveLogSoftmaxWithLoss(Module):
    r"""Efficient softmax approximation (`Grave et al., 2016 <https://arxiv.org/abs/1609.04309>`__).

    Labels, sorted by decreasing frequency, are split by ``cutoffs`` into a shortlist (predicted by the
    ``head`` directly) and clusters; the head also predicts each cluster, and cluster ``i`` predicts
    its labels from a projection of size :math:`\lfloor \text{in\_features} / \text{div\_value}^{i} \rfloor`.

    Args:
        in_features: number of features in the input.
        n_classes: number of classes.
        cutoffs: increasing, unique integers in ``[1, n_classes - 1]``: ``[10, 100]`` puts labels 0-9 in
            the head, 10-99 in the first cluster and 100 to ``n_classes - 1`` in the second.
        div_value: the base of the cluster sizes' divisor. Default: 4.0.
        head_bias: add a bias to the head. Default: False.

    Returns:
        ``NamedTuple`` ``(output, loss)``: ``output`` the target log-probability of each example,
        ``loss`` the mean negative log-likelihood.

    Shape:
        - input: :math:`(N, \text{in\_features})` or :math:`(\text{in\_features})`.
        - target: :math:`(N)` or :math:`()`, values in :math:`[0, \text{n\_classes})`.
        - output: :math:`(N)` or :math:`()`; loss: a scalar.

    >>> import tracenn
    >>> asm = tracenn.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[4, 8], div_value=2.0)
    >>> out, loss = asm(tracenn.randn(5, 8), tracenn.tensor([0, 3, 5, 9, 7]))
    >>> total = asm.log_prob(tracenn.randn(5, 8)).exp().sum(1)
    >>> out.shape, loss.shape, bool(((total - 1).abs() < 1e-5).all())
    (tracenn.Size([5]), tracenn.Size([]), True)
    >>> asm.tail[1]
    Sequential(
      (0): Linear(in_features=8, out_features=2, bias=False)
      (1): Linear(in_features=2, out_features=2, bias=False)
    )
    """

    in_features: int
    n_classes: int
    cutoffs: list
    div_value: float
    head_bias: bool
    head: Linear
    tail: ModuleList

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int], div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if ((cutoffs != sorted(cutoffs)) or (min(cutoffs) <= 0) or (max(cutoffs) > (n_classes - 1))
                or (len(set(cutoffs)) != len(cutoffs)) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted in an increasing "
                             "order, where each value is between 1 and n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(self.in_features, self.head_size, bias=self.head_bias, **factory_kwargs)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(self.in_features // (self.div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(self.in_features, hsz, bias=False, **factory_kwargs),
                                        Linear(hsz, osz, bias=False, **factory_kwargs)))

    def reset_parameters(self) -> None:
        """Re-draw the head's and the projections' parameters (Linear's initialisation)."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        targ_dim = target_.dim()
        if targ_dim == 1:
            if input_.size(0) != target_.size(0):
                raise RuntimeError("Input and target should have the same size in the batch dimension.")
            if input_.dim() != 2:
                raise RuntimeError(f"1D target tensor expects 2D input tensors, but found inputs with size "
                                   f"{input_.size()}")
        elif targ_dim == 0:
            if input_.dim() != 1:
                raise RuntimeError(f"0D target tensor expects 1D input tensors, but found inputs with size "
                                   f"{input_.size()}")
        else:
            raise RuntimeError("0D or 1D target tensor expected, multi-target not supported")

        is_batched = targ_dim > 0
        input = input_ if is_batched else input_.unsqueeze(0)
        target = target_ if is_batched else target_.unsqueeze(0)
        values = _concrete(target)  # None under tracing
        if values is not None and values.size and (values.min() < 0 or values.max() >= self.n_classes):
            raise RuntimeError(f"Target values should be in [0, {self.n_classes - 1}], but values in range "
                               f"[{values.min()}, {values.max()}] were found. ")

        output = input.new_zeros(target.size(0))
        gather_inds = target  # shortlist rows gather their own target from the head; the others their cluster
        for i in range(1, len(self.cutoffs)):
            low_idx, high_idx = self.cutoffs[i - 1], self.cutoffs[i]
            target_mask = (target >= low_idx) & (target < high_idx)
            cluster_index = self.shortlist_size + i - 1
            if values is None:  # tracing: all rows, then pick
                relative_target = _math.where(target_mask, target - low_idx, 0)
                local = self._cluster_logprob(i - 1, input, relative_target)
                output = _math.where(target_mask, local, output)
                gather_inds = _math.where(target_mask, cluster_index, gather_inds)
                continue
            row_indices = _index.nonzero(target_mask).squeeze(1)
            if row_indices.numel() == 0:
                continue
            relative_target = _index.index_select(target, 0, row_indices) - low_idx
            local = self._cluster_logprob(i - 1, _index.index_select(input, 0, row_indices), relative_target)
            output = _index.index_put(output, (row_indices,), local)
            gather_inds = _index.index_fill(gather_inds, 0, row_indices, cluster_index)

        head_logprob = F.log_softmax(self.head(input), dim=1)
        output = output + _pick(head_logprob, gather_inds)
        loss = _reduce.mean(-output)
        if not is_batched:
            output = output.squeeze(0)
        return _ASMoutput(output, loss)

    def _cluster_logprob(self, cluster: int, input: Tensor, relative_target: Tensor) -> Tensor:
        """log p(target | cluster) of each row of ``input``."""
        return _pick(F.log_softmax(self.tail[cluster](input), dim=1), relative_target)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        """log-probabilities of all classes from the input and the head's output."""
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return _shape.cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        r"""Log-probabilities of all ``n_classes`` classes.

        Shape:
            - Input: :math:`(N, \text{in\_features})`; Output: :math:`(N, \text{n\_classes})`.
        """
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        r"""The most probable class of each example: ``log_prob(input).argmax(dim=1)``, computed from the
        head alone when every argmax falls in the shortlist.

        Shape:
            - Input: :math:`(N, \text{in\_features})`; Output: :math:`(N)`.
        """
        head_output = self.head(input)
        output = _reduce.argmax(head_output, dim=1)
        not_in_shortlist = output >= self.shortlist_size
        flags = _concrete(not_in_shortlist)
        if flags is not None and not flags.any():
            return output
        log_prob = self._get_full_log_prob(input, head_output)
        return _math.where(not_in_shortlist, _reduce.argmax(log_prob, dim=1), output)
