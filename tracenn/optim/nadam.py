"""``NAdam``, as torch.optim.NAdam."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .adam import _check_adam_args
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, host_value,
                        new_scalar_state, next_step, set_host_value, shared_coefs, write_back, write_back_all)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (Adam with Nesterov momentum), with torch's update rule:

    .. code-block:: text

        mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay));   mu_product = mu_product * mu_t
        m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
        d = sqrt(v / (1 - beta2^t)) + eps
        p = p - lr * (1 - mu_t) / (1 - mu_product) * g / d
              - lr * mu_{t+1} / (1 - mu_product * mu_{t+1}) * m / d

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 2e-3).
        betas (tuple[float, float]): coefficients of the running averages (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        momentum_decay (float): momentum decay (default: 4e-3).
        decoupled_weight_decay (bool): decay the weights directly, as AdamW (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        capturable (bool): keep ``step`` and ``mu_product`` on the device (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``mu_product`` (0-d tensors), ``exp_avg`` and ``exp_avg_sq``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.NAdam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> sorted(opt.state[w])
    ['exp_avg', 'exp_avg_sq', 'mu_product', 'step']
    """

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        check_lr(lr)
        _check_adam_args(betas, eps, weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay, "decoupled_weight_decay": decoupled_weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fallbacks = {"maximize": False, "foreach": None, "capturable": False,
                        "differentiable": False, "decoupled_weight_decay": False}
    _scalar_state = ("step", "mu_product")

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                capturable = group["capturable"]
                options = dict(lr=as_scalar(group["lr"]), beta1=beta1, beta2=beta2, eps=group["eps"],
                               weight_decay=group["weight_decay"], momentum_decay=group["momentum_decay"],
                               decoupled_weight_decay=group["decoupled_weight_decay"])
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if capturable else None)
                        state["mu_product"] = new_scalar_state(1.0, p.device if capturable else None)
                        state["exp_avg"] = zeros_like(p)
                        state["exp_avg_sq"] = zeros_like(p)
                    step = next_step(state["step"], capturable)
                    mu_t = state["mu_product"]
                    coefs, new_mu = shared_coefs(memo, p, F.nadam_coefs, step,
                                                 mu_t if capturable else host_value(mu_t), **options)
                    if capturable:
                        write_back(mu_t, new_mu)
                    else:
                        set_host_value(mu_t, new_mu)
                    items.append(((p, p.grad, state["exp_avg"], state["exp_avg_sq"]), coefs))
                news = apply_rule(group, F.nadam_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
