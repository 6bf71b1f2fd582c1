"""``Adadelta``, as torch.optim.Adadelta."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta, with torch's update rule:

    .. code-block:: text

        g = -grad if maximize else grad;  g = g + weight_decay * p
        v = rho * v + (1 - rho) * g * g
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta * delta;   p = p - lr * delta

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): coefficient that scales delta (default: 1.0).
        rho (float): coefficient of the running averages (default: 0.9).
        eps (float): added for numerical stability (default: 1e-6).
        weight_decay (float): L2 penalty (default: 0).
        capturable (bool): keep ``step`` on the device (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``square_avg`` and ``acc_delta``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.Adadelta([w])
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> sorted(opt.state[w]), opt.state[w]["square_avg"]
    (['acc_delta', 'square_avg', 'step'], tensor([0.4000, 1.6000]))
    """

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *, capturable=False,
                 maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "capturable": capturable, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False,
                        "capturable": False}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                options = dict(lr=as_scalar(group["lr"]), rho=group["rho"], eps=group["eps"],
                               weight_decay=group["weight_decay"])
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if group["capturable"] else None)
                        state["square_avg"] = zeros_like(p)
                        state["acc_delta"] = zeros_like(p)
                    next_step(state["step"], group["capturable"])
                    items.append(((p, p.grad, state["square_avg"], state["acc_delta"]),
                                  shared_coefs(memo, p, F.adadelta_coefs, **options)))
                news = apply_rule(group, F.adadelta_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
