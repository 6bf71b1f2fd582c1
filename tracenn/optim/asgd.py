"""``ASGD``, as torch.optim.ASGD."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import _functional as F
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, host_value,
                        new_scalar_state, next_step, scalar_dtype, set_host_value, shared_coefs, to_f32,
                        write_back_all)

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""ASGD (averaged stochastic gradient descent), with torch's update rule. ``eta`` (the step
    size) and ``mu`` (the averaging weight) are per-parameter 0-d state, updated after each step:

    .. code-block:: text

        g = -grad if maximize else grad;   g = g + weight_decay * p
        p = p * (1 - lambd * eta) - eta * g
        ax = ax + mu * (p - ax)                         (ax = p while mu is 1)
        eta = lr / (1 + lambd * lr * t) ** alpha;   mu = 1 / max(1, t - t0)

    so ``ax`` follows the parameter until step ``t0 + 1``, then averages the iterates from step
    ``t0 + 2`` on.

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-2).
        lambd (float): decay term (default: 1e-4).
        alpha (float): power for the ``eta`` update (default: 0.75).
        t0 (float): the step at which averaging starts (default: 1e6).
        weight_decay (float): L2 penalty (default: 0).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        differentiable (bool): must be False.
        capturable (bool): do the ``eta``/``mu`` math as tensor ops on the device (default: False).

    State per parameter: ``step``, ``eta``, ``mu`` (0-d tensors) and ``ax`` (the average).

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.ASGD([w], lr=0.1, lambd=0.0, t0=0)
    >>> for _ in range(3):
    ...     w.grad = tracenn.tensor([1.0, 1.0])
    ...     opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.7000, -2.3000], requires_grad=True)
    >>> opt.state[w]["ax"]   # the average of the last two iterates (steps 2 and 3)
    tensor([ 0.7500, -2.2500])
    """

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0, foreach=None,
                 maximize=False, differentiable=False, capturable=False):
        check_lr(lr)
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}
    _scalar_state = ("step", "eta", "mu")

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                lr, capturable = as_scalar(group["lr"]), group["capturable"]
                lambd, weight_decay = group["lambd"], group["weight_decay"]
                items, memo, next_memo, updates = [], {}, {}, []
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if capturable else None)
                        state["eta"] = _initial_eta(lr, p.device if capturable else None)
                        state["mu"] = new_scalar_state(1.0, p.device if capturable else None)
                        state["ax"] = zeros_like(p)
                    step = next_step(state["step"], capturable)
                    eta_t, mu_t = state["eta"], state["mu"]
                    eta, mu = (eta_t, mu_t) if capturable else (host_value(eta_t), host_value(mu_t))
                    items.append(((p, p.grad, state["ax"]),
                                  shared_coefs(memo, p, F.asgd_coefs, eta, mu, lambd=lambd,
                                               weight_decay=weight_decay)))
                    # the eta and mu of the next step (torch: computed in doubles, kept as 0-d float32)
                    key = id(step) if isinstance(step, Tensor) else step
                    if key not in next_memo:
                        next_memo[key] = tuple(map(_rounded, F.asgd_next_eta_mu(
                            step, lr=lr, lambd=lambd, alpha=group["alpha"], t0=group["t0"])))
                    updates.append((eta_t, mu_t) + next_memo[key])
                news = apply_rule(group, F.asgd_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
                # (after the rule: a tensor eta or mu in its coefficients is the state tensor itself)
                for eta_t, mu_t, new_eta, new_mu in updates:
                    set_host_value(eta_t, new_eta)
                    set_host_value(mu_t, new_mu)
        return loss


def _rounded(x):
    """``x`` as the 0-d state tensor holds it (its dtype is float32 unless the default is float64)."""
    if isinstance(x, Tensor) or scalar_dtype().itemsize != 4:
        return x
    return to_f32(x)


def _initial_eta(lr, device) -> Tensor:
    """``eta`` starts at ``lr``: a new 0-d state tensor (a tensor ``lr``, as in a compiled step,
    is copied)."""
    if isinstance(lr, Tensor):
        return lr.detach().reshape(()).to(scalar_dtype()).clone()
    return new_scalar_state(_rounded(float(lr)), device)
