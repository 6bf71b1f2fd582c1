"""``SparseAdam``, as torch.optim.SparseAdam: it steps on sparse gradients only, and tracenn has
none, so its ``step()`` refuses every gradient with torch's error for a dense one."""
from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""Adam for sparse gradients (``nn.Embedding(..., sparse=True)``), as torch.optim.SparseAdam.

    torch's SparseAdam updates only the entries a sparse gradient holds, and raises a
    ``RuntimeError`` for a dense gradient. tracenn has no sparse tensors: every gradient is
    dense, ``Embedding(sparse=True)``'s too, and a dense gradient cannot say which entries a
    sparse one would have held (a looked-up row whose gradient is zero still moves in torch).
    So this class takes torch's arguments and checks them as torch does, and its ``step()``
    raises torch's error for the first parameter that has a gradient. Use
    :class:`~tracenn.optim.Adam` (the dense update) instead.

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-3).
        betas (tuple[float, float]): coefficients of the running averages (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        maximize (bool): maximize the objective instead of minimizing (default: False).

    >>> import tracenn
    >>> emb = tracenn.nn.Embedding(10, 3, sparse=True)
    >>> opt = tracenn.optim.SparseAdam(emb.parameters())
    >>> emb(tracenn.tensor([1, 2])).sum().backward()
    >>> opt.step()
    Traceback (most recent call last):
        ...
    RuntimeError: SparseAdam does not support dense gradients, please consider Adam instead ...
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, maximize=False):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 < lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 < eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "maximize": maximize})
        complex_params = [[i, j] for i, group in enumerate(self.param_groups)
                          for j, p in enumerate(group["params"]) if p.is_complex()]
        if complex_params:
            raise ValueError(f"Complex params at indices {complex_params}: SparseAdam does not support complex "
                             "parameters")

    def step(self, closure=None):
        """Refuse the (dense) gradients, as torch's SparseAdam does; ``closure`` runs first."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead "
                                       "(tracenn has no sparse tensors: every gradient is dense, that of "
                                       "Embedding(sparse=True) too)")
        return loss
