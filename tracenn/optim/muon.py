"""``Muon``, as torch.optim.Muon: momentum, then a Newton–Schulz orthogonalisation of each 2-d update."""
from __future__ import annotations

import math

from .. import dtypes as _dt
from .._api.creation import zeros_like
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ._functional import _fused, _lerp, _lerp_coefs, _sub_mul
from .optimizer import Optimizer, apply_rule, as_scalar, shared_coefs, write_back_all

__all__ = ["Muon", "muon"]

# torch's constants, from Keller Jordan's Muon (https://kellerjordan.github.io/posts/muon/)
EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5
_ADJUST_LR_FNS = ("original", "match_rms_adamw")


class Muon(Optimizer):
    r"""Muon, with torch's update rule, for 2-d parameters (the weights of hidden layers; give
    biases, embeddings and the like to another optimizer such as AdamW):

    .. code-block:: text

        B = lerp(B, g, 1 - momentum)                    (B = momentum * B + (1 - momentum) * g)
        U = lerp(g, B, momentum) if nesterov else B
        O = NS(U)                                       (in bfloat16; below)
        p = p * (1 - lr * weight_decay)                 (decoupled weight decay)
        p = p - adjusted_lr * O

    ``NS`` is ``ns_steps`` Newton–Schulz iterations with coefficients ``(a, b, c)`` on ``X``, the
    update in bfloat16 (transposed when it has more rows than columns), first divided by
    ``max(norm(X), eps)``: ``A = X @ X.T;  X = a * X + (b * A + c * A @ A) @ X``. As in torch,
    each step (``norm``, the division, each matrix product with its sum) computes in float32
    and rounds to bfloat16 once, so the result is torch's bit for bit up to float32 summation order.
    For an ``A x B`` parameter, ``adjusted_lr`` is ``lr * sqrt(max(1, A / B))`` (``adjust_lr_fn``
    None or ``"original"``) or ``lr * 0.2 * sqrt(max(A, B))`` (``"match_rms_adamw"``).

    Args:
        params (iterable): parameters, named parameters or param group dicts to optimize; each
            parameter must be 2-d.
        lr (float or Tensor): learning rate (default: 1e-3).
        weight_decay (float): decoupled weight decay (default: 0.1).
        momentum (float): momentum factor (default: 0.95).
        nesterov (bool): use Nesterov momentum (default: True).
        ns_coefficients (tuple of three floats): ``(a, b, c)`` of the Newton–Schulz polynomial
            (default: (3.4445, -4.775, 2.0315)).
        eps (float): the smallest norm the update is divided by (default: 1e-7).
        ns_steps (int): Newton–Schulz iterations, fewer than 100 (default: 5).
        adjust_lr_fn (str, optional): ``"original"`` or ``"match_rms_adamw"``; None means
            ``"original"`` (default: None).

    Like other optimizers, an eager ``step()`` runs one jitted program per param group, and a
    compiled training step (:func:`tracenn.compile`) records the same rule, with ``lr`` and
    ``momentum`` as inputs (a scheduler changes them without a recompile).

    State per parameter: ``momentum_buffer`` (the gradient's shape and dtype).

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.ones(2, 2))
    >>> opt = tracenn.optim.Muon([w], lr=0.1, weight_decay=0.0)
    >>> w.grad = tracenn.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> opt.step()   # NS(I) is s * I with s = 1.125 (five steps of the polynomial from 1 / sqrt(2))
    >>> w
    Parameter containing:
    tensor([[0.8875, 1.0000],
            [1.0000, 0.8875]], requires_grad=True)
    >>> opt.state[w]["momentum_buffer"]
    tensor([[0.0500, 0.0000],
            [0.0000, 0.0500]])
    """

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps=EPS, ns_steps=DEFAULT_NS_STEPS,
                 adjust_lr_fn=None):
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in _ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "nesterov": nesterov,
                    "ns_coefficients": ns_coefficients, "eps": eps, "ns_steps": ns_steps,
                    "adjust_lr_fn": adjust_lr_fn}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon only supports 2D parameters whereas we found a parameter with size: "
                                     f"{p.size()}")

    def step(self, closure=None):
        """Perform a single optimization step; ``closure`` (optional) re-evaluates the loss."""
        loss = self._run_closure(closure)
        with no_grad():
            for group in self.param_groups:
                items, memo = [], {}
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.is_complex():
                        raise RuntimeError("Muon does not support complex parameters")
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = zeros_like(p.grad)
                    items.append(((p, p.grad, state["momentum_buffer"]), p))
                if not items:
                    continue
                # torch checks these per parameter as it updates it (a later one's error leaves the
                # earlier ones updated); here they are checked before any update
                for (_, grad, _), _ in items:
                    if grad.dim() != 2:
                        raise ValueError("Param gradient must be a 2D matrix")
                _check_ns(group["ns_coefficients"], group["ns_steps"])
                items = [(tensors, shared_coefs(memo, p, muon_coefs, _lr_ratio(group["adjust_lr_fn"], p.shape),
                                                lr=as_scalar(group["lr"]), weight_decay=group["weight_decay"],
                                                momentum=group["momentum"]))
                         for tensors, p in items]
                news = apply_rule(group, muon_apply, items, nesterov=group["nesterov"],
                                  ns_coefficients=tuple(group["ns_coefficients"]), ns_steps=group["ns_steps"],
                                  eps=group["eps"])
                for ((p, _, buf), _), (new_p, new_buf) in zip(items, news):
                    write_back_all((p, buf), (new_p, new_buf))
        return loss


def _check_ns(ns_coefficients, ns_steps) -> None:
    """torch's checks (made when it orthogonalises an update: a bad option fails at ``step()``)."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(ns_coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")


def _lr_ratio(adjust_lr_fn, shape) -> float:
    """What ``adjust_lr_fn`` multiplies ``lr`` by for a parameter of ``shape`` (torch's ``_adjust_lr``)."""
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        return math.sqrt(max(1, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


def muon_coefs(lr_ratio, *, lr, weight_decay, momentum, dtype) -> dict:
    """Muon's coefficients: the weight decay factor, the adjusted learning rate and the two lerp
    weights, ``1 - momentum`` (the buffer's) and ``momentum`` (nesterov's)."""
    coefs = {"decay": 1 - lr * weight_decay if isinstance(weight_decay, Tensor) or weight_decay != 0 else None,
             "adjusted_lr": lr * lr_ratio}
    coefs.update({"buf_" + k: v for k, v in _lerp_coefs(1 - momentum, dtype).items()})
    coefs.update({"nes_" + k: v for k, v in _lerp_coefs(momentum, dtype).items()})
    return coefs


def muon_apply(param, grad, momentum_buffer, *, decay, adjusted_lr, buf_lerp_w, buf_lerp_1mw, nes_lerp_w,
               nes_lerp_1mw, nesterov, ns_coefficients, ns_steps, eps):
    """The tensor half of Muon's rule: returns ``(new_param, new_momentum_buffer)``."""
    buf = _lerp(momentum_buffer, grad, buf_lerp_w, buf_lerp_1mw)
    update = _lerp(grad, buf, nes_lerp_w, nes_lerp_1mw) if nesterov else buf
    update = zeropower_via_newtonschulz(update, ns_coefficients, ns_steps, eps)
    if decay is not None:
        param = param.mul(decay)
    return _sub_mul(param, update.to(param.dtype), adjusted_lr), buf


def zeropower_via_newtonschulz(grad: Tensor, ns_coefficients, ns_steps: int, eps: float) -> Tensor:
    """``ns_steps`` Newton–Schulz iterations towards the orthogonal factor ``U V^T`` of the 2-d
    ``grad = U S V^T``, in bfloat16 as torch's (returns bfloat16). Each of torch's bfloat16 ops
    (``norm``, ``div``, ``addmm``) computes in float32 and rounds once: :func:`_fused`."""
    _check_ns(ns_coefficients, ns_steps)
    if grad.dim() != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    a, b, c = ns_coefficients
    x = grad.to(_dt.bfloat16)
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    norm = _fused(lambda x: x.norm().clamp(min=eps), x, x)
    x = _fused(lambda x, n: x.div(n), x, x, norm)
    for _ in range(ns_steps):
        gram = _fused(lambda x: x.matmul(x.T), x, x)
        gram_update = _fused(lambda g: g.mul(b).add(g.matmul(g).mul(c)), gram, gram)
        x = _fused(lambda x, u: x.mul(a).add(u.matmul(x)), x, x, gram_update)
    return x.T if tall else x


def muon(param, grad, momentum_buffer, *, lr, weight_decay, momentum, nesterov, ns_coefficients, ns_steps, eps,
         adjust_lr_fn):
    """Muon on one 2-d parameter: returns ``(new_param, new_momentum_buffer)`` (pass zeros for a
    fresh buffer, as torch starts from)."""
    coefs = muon_coefs(_lr_ratio(adjust_lr_fn, param.shape), lr=lr, weight_decay=weight_decay, momentum=momentum,
                       dtype=param.dtype)
    return muon_apply(param, grad, momentum_buffer, nesterov=nesterov, ns_coefficients=tuple(ns_coefficients),
                      ns_steps=ns_steps, eps=eps, **coefs)
