"""``Adagrad``, as torch.optim.Adagrad."""
from __future__ import annotations

from .._api.creation import full_like
from ..autograd.grad_mode import no_grad
from . import _functional as F, _sparse
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad, with torch's update rule (``t`` counts this parameter's steps):

    .. code-block:: text

        g = -grad if maximize else grad;  g = g + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g;   p = p - clr * g / (sqrt(s) + eps)

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-2).
        lr_decay (float): learning rate decay (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        initial_accumulator_value (float): starting value of the sum of squares (default: 0).
        eps (float): added to the denominator for numerical stability (default: 1e-10).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach, fused (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter, made when the optimizer is created (as torch): ``step`` and ``sum``.

    A sparse gradient (``nn.Embedding(sparse=True)``) updates only the rows it holds (torch's
    sparse branch); ``weight_decay`` with one raises torch's error.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.Adagrad([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.5000, -1.5000], requires_grad=True)
    """

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_lr(lr)
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p)

    def _init_state(self, p) -> None:
        state = self.state[p]
        state["step"] = new_scalar_state(0.0)
        # torch reads the optimizer-wide default here, not the group's value.
        init_value = self.defaults["initial_accumulator_value"]
        # (a complex parameter's real and imaginary parts each start at the value, as in torch)
        state["sum"] = full_like(p, complex(init_value, init_value) if p.is_complex() else init_value)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}
    _scalar_state = ("step",)

    _sparse_grads = True

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                options = dict(lr=as_scalar(group["lr"]), weight_decay=group["weight_decay"],
                               lr_decay=group["lr_decay"], eps=group["eps"])
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:  # a group added after construction
                        self._init_state(p)
                    step = next_step(state["step"], False)
                    if p.grad.is_sparse:
                        lr = options["lr"]
                        _sparse.adagrad_step(p, p.grad, state["sum"], lr / (1 + (step - 1) * options["lr_decay"]),
                                             eps=options["eps"], weight_decay=options["weight_decay"],
                                             maximize=group["maximize"])
                        continue
                    items.append(((p, p.grad, state["sum"]), shared_coefs(memo, p, F.adagrad_coefs, step, **options)))
                news = apply_rule(group, F.adagrad_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
