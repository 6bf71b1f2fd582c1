"""``Adafactor``, as torch.optim.Adafactor."""
from __future__ import annotations

from .._api.creation import zeros, zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from . import _functional as F
from .optimizer import Optimizer, apply_rule, as_scalar, new_scalar_state, next_step, shared_coefs, write_back_all

__all__ = ["Adafactor"]


class Adafactor(Optimizer):
    r"""Adafactor, with torch's update rule (``t`` counts this parameter's steps). A parameter
    with two or more dims keeps a row and a column average of ``g * g`` over its last two dims
    instead of a full second moment:

    .. code-block:: text

        g = -grad if maximize else grad;   beta2_t = 1 - t ** beta2_decay
        rho_t = min(lr, 1 / sqrt(t));   alpha = max(eps2, RMS(p)) * rho_t
        p = p * (1 - lr * weight_decay)
        2+ dims: R = lerp(R, mean(g * g, dim=-1), 1 - beta2_t);  C = lerp(C, mean(g * g, dim=-2), 1 - beta2_t)
                 V = R @ C / max(mean(R, dim=-2), eps1)
        else:    V = lerp(V, g * g, 1 - beta2_t)
        U = g / sqrt(max(V, eps1 * eps1));   p = p - alpha / max(1, RMS(U) / d) * U

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): the largest relative step size ``rho_t``, and the weight decay's
            scale (default: 1e-2).
        beta2_decay (float): the decay rate of beta2 (default: -0.8).
        eps (tuple[float | None, float]): ``(eps1, eps2)``: eps1 guards the denominator (None:
            the parameter dtype's machine epsilon), eps2 is the smallest parameter scale
            (default: (None, 1e-3)).
        d (float): the update clipping threshold (default: 1.0).
        weight_decay (float): decoupled weight decay (default: 0.0).
        foreach (bool, optional): the update runs as one jitted program per step unless
            ``foreach=False`` (see :class:`~tracenn.optim.SGD`).
        maximize (bool): maximize the objective instead of minimizing (default: False).

    State per parameter: ``step``, and ``row_var`` and ``col_var`` (two or more dims: the grad's
    shape with the last, resp. second-to-last, dim 1) or ``variance`` (the grad's shape).

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.ones(2, 3))
    >>> opt = tracenn.optim.Adafactor([w], lr=0.1)
    >>> w.grad = tracenn.ones(2, 3)
    >>> opt.step()   # the first step is -rho_t * RMS(w) * sign(g)
    >>> w
    Parameter containing:
    tensor([[0.9000, 0.9000, 0.9000],
            [0.9000, 0.9000, 0.9000]], requires_grad=True)
    >>> [tuple(opt.state[w][k].shape) for k in ("row_var", "col_var")]
    [(2, 1), (1, 3)]
    """

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
                 foreach=None, maximize=False):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise ValueError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = {"lr": lr, "beta2_decay": beta2_decay, "eps": eps, "d": d, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize}
        super().__init__(params, defaults)

    _group_fallbacks = {"foreach": None}
    _scalar_state = ("step",)

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                eps1, eps2 = group["eps"]
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.is_complex():
                        raise RuntimeError("Adafactor does not support complex parameters")
                    if eps1 is None:  # torch takes it from the group's first parameter, for all of them
                        eps1 = F._finfo_eps(p.dtype)
                    state = self.state[p]
                    if len(state) == 0:
                        state["step"] = new_scalar_state(0.0)
                        if p.grad.dim() > 1:
                            shape = tuple(p.grad.shape)
                            state["row_var"] = zeros(shape[:-1] + (1,), dtype=p.grad.dtype, device=p.grad.device)
                            state["col_var"] = zeros(shape[:-2] + (1,) + shape[-1:], dtype=p.grad.dtype,
                                                     device=p.grad.device)
                        else:
                            state["variance"] = zeros_like(p.grad)
                    step = next_step(state["step"], False)
                    coefs = shared_coefs(memo, p, F.adafactor_coefs, step, lr=as_scalar(group["lr"]),
                                         beta2_decay=group["beta2_decay"], eps1=eps1, eps2=eps2,
                                         weight_decay=group["weight_decay"])
                    items.append(((p, p.grad, state.get("row_var"), state.get("col_var"), state.get("variance")),
                                  coefs))
                news = apply_rule(group, F.adafactor_apply, items, d=group["d"], maximize=group["maximize"])
                for (olds, _), new in zip(items, news):
                    write_back_all((olds[0],) + olds[2:], new)
        return loss
