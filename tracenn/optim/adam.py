"""``Adam`` and ``AdamW``, as torch.optim.Adam / AdamW."""
from __future__ import annotations

from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import _functional as F
from .optimizer import (Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, new_scalar_state,
                        next_step, shared_coefs, write_back_all)

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, with torch's update rule (``t`` counts this parameter's steps):

    .. code-block:: text

        g = -grad if maximize else grad
        g = g + weight_decay * p            (or, decoupled: p = p * (1 - lr * weight_decay))
        m = lerp(m, g, 1 - beta1);   v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v)                (amsgrad; used instead of v below)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-3).
        betas (tuple[float, float]): coefficients of the running averages of the gradient and
            its square (default: (0.9, 0.999)).
        eps (float): added to the denominator for numerical stability (default: 1e-8).
        weight_decay (float): weight decay (default: 0).
        amsgrad (bool): use the AMSGrad variant (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        capturable (bool): keep ``step`` on the device and do the bias corrections as tensor ops
            (the form a traced step uses); default False does them in Python doubles, as torch.
        decoupled_weight_decay (bool): decay the weights directly, as AdamW (default: False).
        foreach, fused (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        differentiable (bool): must be False.

    State per parameter: ``step`` (a 0-d tensor), ``exp_avg``, ``exp_avg_sq`` and, with amsgrad,
    ``max_exp_avg_sq``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -1.0]))
    >>> opt = tracenn.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.9000, -0.9000], requires_grad=True)
    >>> sorted(opt.state[w]), opt.state[w]["step"]
    (['exp_avg', 'exp_avg_sq', 'step'], tensor(1.))
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False):
        check_lr(lr)
        _check_adam_args(betas, eps, weight_decay)
        if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
                or (isinstance(betas[0], Tensor) and isinstance(betas[1], Tensor))):
            raise ValueError("betas must be either both floats or both Tensors")
        for i, b in enumerate(betas):
            if isinstance(b, Tensor) and b.numel() != 1:
                raise ValueError(f"Tensor betas[{i}] must be 1-element")
        check_not_differentiable(differentiable)
        betas = tuple(b.squeeze() if isinstance(b, Tensor) and b.dim() != 0 else b for b in betas)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    _group_fallbacks = {"amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                        "differentiable": False, "decoupled_weight_decay": False, "fused": None}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                beta1, beta2 = group["betas"]
                amsgrad, capturable = group["amsgrad"], group["capturable"]
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
                        if amsgrad:
                            state["max_exp_avg_sq"] = zeros_like(p)
                    step = next_step(state["step"], capturable)
                    c = shared_coefs(memo, p, F.adam_coefs, step, **options)
                    items.append(((p, p.grad, state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")), c))
                news = apply_rule(group, F.adam_apply, items, amsgrad=amsgrad, maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay (``p = p * (1 - lr * weight_decay)`` before the
    Adam step), as torch.optim.AdamW. Arguments as :class:`Adam`, with ``weight_decay`` defaulting
    to 1e-2.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, -1.0]))
    >>> opt = tracenn.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.8500, -0.8500], requires_grad=True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True


def _check_adam_args(betas, eps, weight_decay) -> None:
    """torch's argument checks shared by the Adam family."""
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
