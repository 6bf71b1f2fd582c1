"""``Adamax``, as torch.optim.Adamax."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .adam import _check_adam_args
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (Adam with the infinity norm), with torch's update rule:

    .. code-block:: text

        g = -grad if maximize else grad;  g = g + weight_decay * p
        m = lerp(m, g, 1 - beta1);   u = max(beta2 * u, |g| + eps)
        p = p - lr / (1 - beta1^t) * m / u

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 2e-3).
        betas (tuple[float, float]): coefficients of the running average of the gradient and of
            the infinity norm (default: (0.9, 0.999)).
        eps (float): added for numerical stability (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        capturable (bool): keep ``step`` on the device (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``exp_avg`` and ``exp_inf``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.Adamax([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.5000, -1.5000], requires_grad=True)
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False):
        check_lr(lr)
        _check_adam_args(betas, eps, weight_decay)
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False,
                        "capturable": False}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                options = dict(lr=as_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                               weight_decay=group["weight_decay"])
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if group["capturable"] else None)
                        state["exp_avg"] = zeros_like(p)
                        state["exp_inf"] = zeros_like(p)
                    step = next_step(state["step"], group["capturable"])
                    items.append(((p, p.grad, state["exp_avg"], state["exp_inf"]),
                                  shared_coefs(memo, p, F.adamax_coefs, step, **options)))
                news = apply_rule(group, F.adamax_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
