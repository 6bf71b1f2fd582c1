"""``RMSprop``, as torch.optim.RMSprop."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from . import _functional as F
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop, with torch's update rule:

    .. code-block:: text

        g = -grad if maximize else grad;  g = g + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        centered: m = lerp(m, g, 1 - alpha);  a = sqrt(v - m * m) + eps   (else a = sqrt(v) + eps)
        momentum > 0: b = momentum * b + g / a;  p = p - lr * b            (else p = p - lr * g / a)

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-2).
        alpha (float): smoothing constant (default: 0.99).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        weight_decay (float): L2 penalty (default: 0).
        momentum (float): momentum factor (default: 0).
        centered (bool): normalize by an estimate of the gradient's variance (default: False).
        capturable (bool): keep ``step`` on the device (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0) and
    ``grad_avg`` (centered).

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.9800, -1.9800], requires_grad=True)
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                    "weight_decay": weight_decay, "capturable": capturable, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable}
        super().__init__(params, defaults)

    _group_fallbacks = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                        "differentiable": False, "capturable": False}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                momentum, centered = group["momentum"], group["centered"]
                options = dict(lr=as_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                               weight_decay=group["weight_decay"], momentum=momentum, centered=centered)
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if group["capturable"] else None)
                        state["square_avg"] = zeros_like(p)
                        if F._nonzero(momentum):
                            state["momentum_buffer"] = zeros_like(p)
                        if centered:
                            state["grad_avg"] = zeros_like(p)
                    next_step(state["step"], group["capturable"])
                    c = shared_coefs(memo, p, F.rmsprop_coefs, **options)
                    items.append(((p, p.grad, state["square_avg"], state.get("grad_avg") if centered else None,
                                   state.get("momentum_buffer") if F._nonzero(momentum) else None), c))
                news = apply_rule(group, F.rmsprop_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
