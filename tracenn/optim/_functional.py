"""The optimizers' update rules, as pure functions of tracenn tensors.

Each function takes one parameter, its gradient and its state, and returns the new values; it
changes nothing in place. The optimizers' ``step()`` calls them under ``no_grad`` and copies the
results back into the parameter and state tensors. Because they use only tracenn tensor ops, with
no host reads and no branching on tensor values, a tracer can record them as they are.

Scalars may be Python numbers or 0-d tensors, and the same code handles both:

* ``step`` (the count *after* this step's increment) as a Python number: the scalar math
  (bias corrections, step sizes) runs in Python doubles, exactly as torch's default
  (non-capturable) implementation does. The optimizers do this in eager mode.
* ``step`` as a 0-d tensor: the same formulas run as tensor ops (torch's ``capturable`` mode), so a
  traced step takes the count as an input and never bakes it into the graph.
* ``lr`` and the other hyper-parameters may be numbers or 0-d tensors too: a scheduler changing
  ``lr`` between steps changes an operand, never the code path.

Python ``if``s only test options (``maximize``, ``amsgrad``, ``weight_decay != 0``, ...). Each
formula keeps torch's order of operations (``addcdiv`` is ``self + value * t1 / t2``, ``addcmul`` is
``self + value * t1 * t2``) so float32 results match torch's to the last bit or two.
"""
from __future__ import annotations

from .._api.math import where
from ..tensor import Tensor
from .optimizer import scalar_dtype, to_f32

__all__ = ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam"]


def _nonzero(x) -> bool:
    """An option that turns a term on: a tensor-valued one is always on (its value may change)."""
    return isinstance(x, Tensor) or x != 0


def _lerp(start: Tensor, end: Tensor, weight) -> Tensor:
    """``torch.lerp``: torch switches to ``end - (end - start) * (1 - weight)`` for |weight| >= 0.5.

    tracenn's ``lerp`` always uses ``start + weight * (end - start)``, which differs from torch in
    the last bit for large weights; the second form is spelled out here (``1 - weight`` is exact
    in the tensor's precision for weights in [0.5, 1], as torch computes it).
    """
    if isinstance(weight, Tensor) or abs(weight) < 0.5:
        return start.lerp(end, weight)
    w = to_f32(weight) if end.dtype.itemsize <= 4 else weight  # float opmath, as torch
    return end.sub(end.sub(start).mul(1 - w))


def _decay(param: Tensor, grad: Tensor, weight_decay, maximize: bool) -> Tensor:
    """The gradient after ``maximize`` and (coupled, L2) weight decay, as every optimizer does."""
    if maximize:
        grad = grad.neg()
    if _nonzero(weight_decay):
        grad = grad.add(param.mul(weight_decay))
    return grad


def _ema_sq(avg: Tensor, grad: Tensor, decay) -> Tensor:
    """``avg * decay + (1 - decay) * grad * grad`` (torch: ``avg.mul_(d).addcmul_(g, g, 1 - d)``)."""
    return avg.mul(decay).add(grad.mul(1 - decay).mul(grad))


def sgd(param, grad, momentum_buffer, *, lr, weight_decay, momentum, dampening, nesterov, maximize):
    """SGD with momentum: returns ``(new_param, new_momentum_buffer)``.

    ``momentum_buffer`` is None before the first step with momentum (it then starts as the
    gradient, undamped, as in torch); the returned buffer is None when ``momentum`` is 0.
    """
    grad = _decay(param, grad, weight_decay, maximize)
    buf = None
    if _nonzero(momentum):
        if momentum_buffer is None:
            buf = grad.clone()
        elif isinstance(dampening, Tensor) or dampening != 0:
            buf = momentum_buffer.mul(momentum).add(grad.mul(1 - dampening))
        else:
            buf = momentum_buffer.mul(momentum).add(grad)
        grad = grad.add(buf.mul(momentum)) if nesterov else buf
    return param.sub(grad.mul(lr)), buf


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps,
         weight_decay, amsgrad, maximize, decoupled_weight_decay=False):
    """Adam (AdamW with ``decoupled_weight_decay``): returns
    ``(new_param, new_exp_avg, new_exp_avg_sq, new_max_exp_avg_sq)``.

    ``max_exp_avg_sq`` is used (and returned) only with ``amsgrad``; pass None otherwise.
    """
    if maximize:
        grad = grad.neg()
    if _nonzero(weight_decay):
        if decoupled_weight_decay:
            param = param.mul(1 - lr * weight_decay)
        else:
            grad = grad.add(param.mul(weight_decay))
    exp_avg = _lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2)

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5

    if amsgrad:
        max_exp_avg_sq = max_exp_avg_sq.maximum(exp_avg_sq)
        denom = max_exp_avg_sq.sqrt().div(bias_correction2_sqrt).add(eps)
    else:
        denom = exp_avg_sq.sqrt().div(bias_correction2_sqrt).add(eps)
    param = param.add(exp_avg.mul(-step_size).div(denom))
    return param, exp_avg, exp_avg_sq, max_exp_avg_sq


def rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay,
            momentum, centered, maximize):
    """RMSprop: returns ``(new_param, new_square_avg, new_grad_avg, new_momentum_buffer)``.

    ``grad_avg`` is used only when ``centered``, ``momentum_buffer`` only when ``momentum > 0``
    (pass None otherwise; None comes back).
    """
    grad = _decay(param, grad, weight_decay, maximize)
    square_avg = _ema_sq(square_avg, grad, alpha)
    if centered:
        grad_avg = _lerp(grad_avg, grad, 1 - alpha)
        avg = square_avg.sub(grad_avg.mul(grad_avg)).sqrt()
    else:
        avg = square_avg.sqrt()
    avg = avg.add(eps)
    if isinstance(momentum, Tensor) or momentum > 0:
        momentum_buffer = momentum_buffer.mul(momentum).add(grad.div(avg))
        param = param.sub(momentum_buffer.mul(lr))
    else:
        param = param.add(grad.mul(-lr).div(avg))
    return param, square_avg, grad_avg, momentum_buffer


def adagrad(param, grad, state_sum, step, *, lr, weight_decay, lr_decay, eps, maximize):
    """Adagrad: returns ``(new_param, new_state_sum)``."""
    grad = _decay(param, grad, weight_decay, maximize)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = state_sum.add(grad.mul(grad))
    std = state_sum.sqrt().add(eps)
    return param.add(grad.mul(-clr).div(std)), state_sum


def adadelta(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """Adadelta: returns ``(new_param, new_square_avg, new_acc_delta)``."""
    grad = _decay(param, grad, weight_decay, maximize)
    square_avg = _ema_sq(square_avg, grad, rho)
    std = square_avg.add(eps).sqrt()
    delta = acc_delta.add(eps).sqrt().div(std).mul(grad)
    acc_delta = _ema_sq(acc_delta, delta, rho)
    return param.sub(delta.mul(lr)), square_avg, acc_delta


def adamax(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """Adamax: returns ``(new_param, new_exp_avg, new_exp_inf)``."""
    grad = _decay(param, grad, weight_decay, maximize)
    exp_avg = _lerp(exp_avg, grad, 1 - beta1)
    exp_inf = exp_inf.mul(beta2).maximum(grad.abs().add(eps))
    clr = lr / (1 - beta1 ** step)
    return param.add(exp_avg.mul(-clr).div(exp_inf)), exp_avg, exp_inf


def nadam(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
          weight_decay, momentum_decay, decoupled_weight_decay, maximize):
    """NAdam: returns ``(new_param, new_exp_avg, new_exp_avg_sq, new_mu_product)``.

    ``mu_product`` is the running product of the momentum coefficients, a float32 (float64 under
    a float64 default dtype) state value like ``step``; as a Python number it is rounded the way
    torch's 0-d state tensor rounds it.
    """
    if maximize:
        grad = grad.neg()
    bias_correction2 = 1 - beta2 ** step
    if _nonzero(weight_decay):
        if decoupled_weight_decay:
            param = param.mul(1 - lr * weight_decay)
        else:
            grad = grad.add(param.mul(weight_decay))
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    if isinstance(mu_product, Tensor) or isinstance(mu, Tensor):
        mu_product = mu_product * mu
    elif scalar_dtype().itemsize == 4:
        mu_product = to_f32(to_f32(mu_product) * to_f32(mu))
    else:
        mu_product = mu_product * mu

    exp_avg = _lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2)
    denom = exp_avg_sq.div(bias_correction2).sqrt().add(eps)

    mu_product_next = mu_product * mu_next
    param = param.add(grad.mul(-lr * (1.0 - mu) / (1.0 - mu_product)).div(denom))
    param = param.add(exp_avg.mul((-lr * mu_next) / (1.0 - mu_product_next)).div(denom))
    return param, exp_avg, exp_avg_sq, mu_product


def radam(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, maximize):
    """RAdam: returns ``(new_param, new_exp_avg, new_exp_avg_sq)``.

    The rectified step applies once the variance estimate is tractable (``rho_t > 5``); before
    that the update is plain momentum. With a tensor ``step`` the choice is a ``where``.
    """
    if maximize:
        grad = grad.neg()
    if _nonzero(weight_decay):
        if decoupled_weight_decay:
            param = param.mul(1 - lr * weight_decay)
        else:
            grad = grad.add(param.mul(weight_decay))
    exp_avg = _lerp(exp_avg, grad, 1 - beta1)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2)

    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    bias_corrected_exp_avg = exp_avg.div(bias_correction1)
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2

    def rect():
        return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5

    def adaptive_lr():
        return (bias_correction2 ** 0.5) / exp_avg_sq.sqrt().add(eps)

    if isinstance(rho_t, Tensor):
        update = where(rho_t > 5.0, rect() * adaptive_lr(), 1.0)
        param = param.sub(bias_corrected_exp_avg.mul(lr).mul(update))
    elif rho_t > 5.0:
        param = param.sub(bias_corrected_exp_avg.mul(lr).mul(adaptive_lr()).mul(rect()))
    else:
        param = param.sub(bias_corrected_exp_avg.mul(lr))
    return param, exp_avg, exp_avg_sq
