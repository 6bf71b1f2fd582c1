"""``Rprop``, as torch.optim.Rprop."""
from __future__ import annotations

from .._api.creation import full_like, zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import _functional as F
from .optimizer import (Optimizer, apply_rule, check_lr, check_not_differentiable, new_scalar_state, next_step,
                        shared_coefs, write_back_all)

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Rprop (resilient backpropagation), with torch's update rule. Each element keeps its own
    step size, grown while the gradient keeps its sign and shrunk when it flips:

    .. code-block:: text

        g = -grad if maximize else grad;   s = sign(g * prev)
        s > 0:  step_size = min(step_size * etaplus, step_size_max)
        s < 0:  step_size = max(step_size * etaminus, step_size_min);  g = 0
        p = p - sign(g) * step_size;   prev = g

    ``lr`` is only the initial step size: changing it later (a scheduler) has no effect, as in
    torch.

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): initial step size (default: 1e-2).
        etas (tuple[float, float]): ``(etaminus, etaplus)``, the factors that shrink and grow
            the step size (default: (0.5, 1.2)).
        step_sizes (tuple[float, float]): the minimal and maximal step size (default: (1e-6, 50)).
        capturable (bool): keep ``step`` on the device (default: False).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        differentiable (bool): must be False.

    State per parameter: ``step``, ``prev`` and ``step_size``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -2.0]))
    >>> opt = tracenn.optim.Rprop([w], lr=0.1)
    >>> for g in ([1.0, 1.0], [1.0, -1.0]):
    ...     w.grad = tracenn.tensor(g)
    ...     opt.step()
    >>> w   # the first element kept its sign (step 0.1 * 1.2), the second flipped (no step)
    Parameter containing:
    tensor([ 0.7800, -2.1000], requires_grad=True)
    >>> opt.state[w]["step_size"]
    tensor([0.1200, 0.0500])
    """

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, capturable=False,
                 foreach=None, maximize=False, differentiable=False):
        check_lr(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None, "maximize": False, "differentiable": False, "capturable": False}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                etaminus, etaplus = group["etas"]
                step_size_min, step_size_max = group["step_sizes"]
                options = dict(etaminus=etaminus, etaplus=etaplus, step_size_min=step_size_min,
                               step_size_max=step_size_max)
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0, p.device if group["capturable"] else None)
                        state["prev"] = zeros_like(p)
                        state["step_size"] = _filled(p.grad, group["lr"])
                    next_step(state["step"], group["capturable"])
                    items.append(((p, p.grad, state["prev"], state["step_size"]),
                                  shared_coefs(memo, p, F.rprop_coefs, **options)))
                news = apply_rule(group, F.rprop_apply, items, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss


def _filled(like: Tensor, value) -> Tensor:
    """A tensor like ``like`` filled with ``value``, a number or a 0-d/1-element tensor (a tensor
    ``lr``; in a compiled step every ``lr`` is one). A complex ``like`` gets ``value`` in both its
    real and imaginary parts (torch: they are two independent real numbers, each with a step)."""
    if isinstance(value, Tensor):
        value = value.reshape(())
        filled = zeros_like(like).add(value)
        return filled.add(value.mul(1j)) if like.is_complex() else filled
    return full_like(like, complex(value, value) if like.is_complex() else value)
