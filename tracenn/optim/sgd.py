"""``SGD``: stochastic gradient descent with optional (Nesterov) momentum, as torch.optim.SGD."""
from __future__ import annotations

from ..autograd.grad_mode import no_grad
from . import _functional as F, _sparse
from .optimizer import Optimizer, apply_rule, as_scalar, check_lr, check_not_differentiable, write_back

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (optionally with momentum), with torch's update rule:

    .. code-block:: text

        g = -grad if maximize else grad;  g = g + weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b (nesterov) or b
        p = p - lr * g

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize.
        lr (float or Tensor): learning rate (default: 1e-3).
        momentum (float): momentum factor (default: 0).
        dampening (float): dampening for momentum (default: 0).
        weight_decay (float): L2 penalty (default: 0).
        nesterov (bool): use Nesterov momentum (default: False).
        maximize (bool): maximize the objective instead of minimizing (default: False).
        foreach, fused (bool, optional): by default (and with either set) the update runs as one
            jitted program per step (per device and dtype), torch's foreach/fused idea: a few
            kernels per parameter become one dispatch, and a scheduler's new ``lr`` is an input,
            not a recompile. ``foreach=False`` keeps the per-parameter loop of eager ops (easier
            to step through in a debugger; lower peak memory). The two agree up to the last bit
            (XLA may fuse a multiply-add into one FMA). A compiled training step
            (:func:`tracenn.compile`) records the same rule either way.
        differentiable (bool): must be False.

    State per parameter: ``momentum_buffer`` (when ``momentum != 0``).

    A sparse gradient (``nn.Embedding(sparse=True)``) updates only the rows it holds, as torch's
    (its momentum buffer is sparse too); ``weight_decay`` with one raises torch's error.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, 2.0]))
    >>> opt = tracenn.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> for _ in range(2):
    ...     opt.zero_grad()
    ...     (w * w).sum().backward()
    ...     opt.step()
    >>> w
    Parameter containing:
    tensor([0.4600, 0.9200], requires_grad=True)
    >>> opt.state[w]["momentum_buffer"]
    tensor([3.4000, 6.8000])
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None):
        check_lr(lr)
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        check_not_differentiable(differentiable)
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")

    _group_fallbacks = {"nesterov": False, "maximize": False, "foreach": None,
                        "differentiable": False, "fused": False}

    _sparse_grads = True

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        state = self.state
        with no_grad():
            for group in self.param_groups:
                momentum = group["momentum"]
                lr = as_scalar(group["lr"])
                coefs = F.sgd_coefs(lr=lr, weight_decay=group["weight_decay"], momentum=momentum,
                                    dampening=group["dampening"])
                buffered = F._nonzero(momentum)
                items = []
                for p in group["params"]:
                    grad = p.grad
                    if grad is None:
                        continue
                    if grad.is_sparse:
                        _sparse.sgd_step(p, grad, state[p], lr=lr, weight_decay=group["weight_decay"],
                                         momentum=momentum, dampening=group["dampening"],
                                         nesterov=group["nesterov"], maximize=group["maximize"])
                    else:
                        items.append(((p, grad, state[p].get("momentum_buffer") if buffered else None), coefs))
                news = apply_rule(group, F.sgd_apply, items, nesterov=group["nesterov"],
                                  maximize=group["maximize"])
                for ((p, _, buf), _), (new_p, new_buf) in zip(items, news):
                    write_back(p, new_p)
                    if new_buf is not None:
                        if buf is None:
                            state[p]["momentum_buffer"] = new_buf
                        else:
                            write_back(buf, new_buf)
        return loss
