"""``SparseAdam``, as torch.optim.SparseAdam: lazy Adam for sparse gradients
(``nn.Embedding(..., sparse=True)``): only the rows a gradient holds move."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import _sparse
from .optimizer import Optimizer, as_scalar

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""Adam for sparse gradients (``nn.Embedding(..., sparse=True)``), as torch.optim.SparseAdam.

    Each step coalesces a parameter's sparse gradient and updates ``exp_avg``, ``exp_avg_sq`` and
    the parameter only in the rows it holds (a looked-up row moves even where its gradient is
    zero; rows not looked up keep their values and state), with torch's formulas. A dense
    gradient raises torch's ``RuntimeError``. State per parameter: ``step`` (a Python int, as
    torch's), ``exp_avg`` and ``exp_avg_sq``.

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-3).
        betas (tuple[float, float]): coefficients of the running averages (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        maximize (bool): maximize the objective instead of minimizing (default: False).

    >>> import tracenn
    >>> emb = tracenn.nn.Embedding(10, 3, sparse=True)
    >>> opt = tracenn.optim.SparseAdam(emb.parameters(), lr=0.1)
    >>> before = emb.weight.detach().clone()
    >>> emb(tracenn.tensor([1, 2])).sum().backward()
    >>> emb.weight.grad.layout
    tracenn.sparse_coo
    >>> opt.step()
    >>> (emb.weight - before).abs().sum(1).gt(0).nonzero().flatten().tolist()
    [1, 2]
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

    _sparse_grads = True

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                maximize = group.get("maximize", False)
                todo = []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if not p.grad.is_sparse:
                        raise RuntimeError("SparseAdam does not support dense gradients, please consider Adam instead")
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = 0
                        state["exp_avg"] = zeros_like(p)
                        state["exp_avg_sq"] = zeros_like(p)
                    state["step"] += 1
                    todo.append((p, state))
                for p, state in todo:
                    _sparse.sparse_adam_step(p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                                             lr=as_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                                             maximize=maximize)
        return loss
