"""``RAdam``, as torch.optim.RAdam."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .adam import _check_adam_args
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (rectified Adam), with torch's update rule:

    .. code-block:: text

        m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5:  p = p - lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t
        otherwise:  p = p - lr * m / (1 - beta1^t)

    with ``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))``.

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-3).
        betas (tuple[float, float]): coefficients of the running averages (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        decoupled_weight_decay (bool): decay the weights directly, as AdamW (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        capturable (bool): keep ``step`` on the device (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``exp_avg`` and ``exp_avg_sq``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.RAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()   # the first steps are plain momentum: p - lr * g
    >>> w
    Parameter containing:
    tensor([ 0.8000, -1.6000], requires_grad=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_lr(lr)
        _check_adam_args(betas, eps, weight_decay)
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False,
                        "decoupled_weight_decay": False, "capturable": False}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                options = dict(lr=as_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                               weight_decay=group["weight_decay"],
                               decoupled_weight_decay=group["decoupled_weight_decay"])
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if group["capturable"] else None)
                        state["exp_avg"] = zeros_like(p)
                        state["exp_avg_sq"] = zeros_like(p)
                    step = next_step(state["step"], group["capturable"])
                    items.append(((p, p.grad, state["exp_avg"], state["exp_avg_sq"]),
                                  shared_coefs(memo, p, F.radam_coefs, step, **options)))
                news = apply_rule(group, F.radam_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
