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

Each rule is two halves, as torch's fused kernels are: ``<rule>_coefs`` does the scalar math and
returns the *coefficients* the tensor ops consume (a dict; None turns a term off; ``dtype``, the
parameter's, matters where torch's opmath precision does), and
``<rule>_apply`` is the tensor half, which uses each coefficient only as an operand of a tensor op
and branches only on options and on which coefficients are None. ``<rule>`` is the two in a row.
So the fused eager step (:func:`tracenn.optim.optimizer.apply_rule`) can do the scalar math on the
host and feed the coefficients to one jitted program as inputs: a changed ``lr`` or step count is
new data for the same program, which computes the per-parameter loop's formulas.

Python ``if``s only test options (``maximize``, ``amsgrad``, ``weight_decay != 0``, ...). Each
formula keeps torch's order of operations (``addcdiv`` is ``self + value * t1 / t2``, ``addcmul`` is
``self + value * t1 * t2``) so float32 results match torch's to the last bit or two. Where torch
uses one fused op (``add(alpha=)``, ``addcmul``, ``addcdiv``), :func:`_fused` computes a bfloat16 or
float16 tensor's formula in float32 and rounds once, as torch's kernels do; separate ops would round
after each of them and drift from torch's numbers step after step.
"""
from __future__ import annotations

from .. import _dispatch
from .. import dtypes as _dt
from .._api.math import minimum, where
from ..tensor import Tensor
from .optimizer import scalar_dtype, to_f32

__all__ = ["sgd", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam", "rprop", "asgd", "adafactor"]


def _nonzero(x) -> bool:
    """An option that turns a term on: a tensor-valued one is always on (its value may change)."""
    return isinstance(x, Tensor) or x != 0


def _if_nonzero(x):
    """``x`` as a coefficient that turns its term on, or None for a zero option."""
    return x if _nonzero(x) else None


def _host_math(coefs_fn):
    """A step-dependent ``coefs_fn(step, ...)`` as eager mode computes it, also in a compiled step.

    Eagerly the count is a Python number: the coefficients are float64 host math, then operands
    cast to the parameter's dtype. Traced, the count is a float32 tensor, and float32 math is far
    off (``1 - 0.999 ** t`` by 1e-5 relative: an Adam step with lr=0.1 moved a parameter 3e-6 away
    from eager's). So the traced count is widened to float64 and the coefficients cast back to
    the parameter's dtype. Eager ``capturable`` keeps torch's float32 tensor math."""
    def coefs(step, *args, dtype=None, **options):
        if _dispatch.TRACE[0] is None or not isinstance(step, Tensor) or step.dtype.itemsize >= 8:
            return coefs_fn(step, *args, dtype=dtype, **options)
        out = coefs_fn(step.to(_dt.float64), *args, dtype=dtype, **options)
        got = out[0] if isinstance(out, tuple) else out
        if dtype is not None and dtype != _dt.float64:
            for k, v in got.items():
                if isinstance(v, Tensor) and v.dtype == _dt.float64:
                    got[k] = v.to(dtype)
        return out
    coefs.__name__, coefs.__qualname__, coefs.__doc__ = coefs_fn.__name__, coefs_fn.__qualname__, coefs_fn.__doc__
    return coefs


def _lerp_coefs(weight, dtype) -> dict:
    """Coefficients of ``torch.lerp(start, end, weight)`` on tensors of ``dtype``.

    torch switches to ``end - (end - start) * (1 - weight)`` for |weight| >= 0.5; that form is
    spelled out here (``lerp_1mw``, used by :func:`_lerp`), as the rules always have. ``1 - weight``
    is exact in the tensor's precision for weights in [0.5, 1], as torch computes it (float opmath
    for float32 and narrower).
    """
    if isinstance(weight, Tensor):  # (a compiled step's beta1 input: float64, like every option input)
        return {"lerp_w": weight if weight.dtype == dtype else weight.to(dtype), "lerp_1mw": None}
    if abs(weight) < 0.5:
        return {"lerp_w": weight, "lerp_1mw": None}
    w = to_f32(weight) if dtype.itemsize <= 4 else weight
    return {"lerp_w": None, "lerp_1mw": 1 - w}


_NARROW = (_dt.bfloat16, _dt.float16)


def _fused(formula, out: Tensor, *operands):
    """``formula(*operands)``, which torch computes as one fused op: a bfloat16/float16 result is
    computed in float32 and rounded once, as torch's CPU and CUDA kernels do (their "opmath")."""
    if out.dtype in _NARROW:
        ops = [x.float() if isinstance(x, Tensor) and x.dtype in _NARROW else x for x in operands]
        return formula(*ops).to(out.dtype)
    return formula(*operands)


def _add_mul(a: Tensor, b: Tensor, c) -> Tensor:
    """``a + b * c``: torch's ``a.add(b, alpha=c)`` (or ``addcmul(a, b, c)``), rounded once."""
    return _fused(lambda a, b, c: a.add(b.mul(c)), a, a, b, c)


def _sub_mul(a: Tensor, b: Tensor, c) -> Tensor:
    """``a - b * c``: torch's ``a.add(b, alpha=-c)``, rounded once."""
    return _fused(lambda a, b, c: a.sub(b.mul(c)), a, a, b, c)


def _addcdiv(a: Tensor, t1: Tensor, t2: Tensor, value=None) -> Tensor:
    """torch's ``a.addcdiv(t1, t2, value=value)`` (``value`` None: 1), rounded once."""
    if value is None:
        return _fused(lambda a, t1, t2: a.add(t1.div(t2)), a, a, t1, t2)
    return _fused(lambda a, t1, t2, v: a.add(t1.mul(v).div(t2)), a, a, t1, t2, value)


def _lerp(start: Tensor, end: Tensor, lerp_w, lerp_1mw) -> Tensor:
    if lerp_w is not None:
        return start.lerp(end, lerp_w)
    return _fused(lambda s, e, w: e.sub(e.sub(s).mul(w)), start, start, end, lerp_1mw)


def _decay(param: Tensor, grad: Tensor, weight_decay, maximize: bool) -> Tensor:
    """The gradient after ``maximize`` and (coupled, L2) weight decay (a coefficient or None)."""
    if maximize:
        grad = grad.neg()
    if weight_decay is not None:
        grad = _add_mul(grad, param, weight_decay)
    return grad


def _adam_decay_coefs(lr, weight_decay, decoupled_weight_decay: bool) -> dict:
    """Adam-family weight decay: ``decay`` scales the parameter (decoupled), ``weight_decay`` is
    added to the gradient (L2); at most one is set."""
    on = _nonzero(weight_decay)
    return {"decay": 1 - lr * weight_decay if on and decoupled_weight_decay else None,
            "weight_decay": weight_decay if on and not decoupled_weight_decay else None}


def _adam_decay(param: Tensor, grad: Tensor, decay, weight_decay):
    if decay is not None:
        param = param.mul(decay)
    if weight_decay is not None:
        grad = _add_mul(grad, param, weight_decay)
    return param, grad


def _ema_sq(avg: Tensor, grad: Tensor, decay, one_minus_decay) -> Tensor:
    """``avg * decay + (1 - decay) * grad * grad`` (torch: ``avg.mul_(d).addcmul_(g, g, 1 - d)``)."""
    return _fused(lambda a, g, v: a.add(g.mul(v).mul(g)), avg, avg.mul(decay), grad, one_minus_decay)


# ---- SGD --------------------------------------------------------------------------------------

def sgd_coefs(*, lr, weight_decay, momentum, dampening) -> dict:
    on = _nonzero(momentum)
    damp = on and (isinstance(dampening, Tensor) or dampening != 0)
    return {"lr": lr, "weight_decay": _if_nonzero(weight_decay), "momentum": momentum if on else None,
            "damp": 1 - dampening if damp else None}


def sgd_apply(param, grad, momentum_buffer, *, lr, weight_decay, momentum, damp, nesterov, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    buf = None
    if momentum is not None:
        if momentum_buffer is None:
            buf = grad.clone()
        elif damp is not None:
            buf = _add_mul(momentum_buffer.mul(momentum), grad, damp)
        else:
            buf = momentum_buffer.mul(momentum).add(grad)
        grad = _add_mul(grad, buf, momentum) if nesterov else buf
    return _sub_mul(param, grad, lr), buf


def sgd(param, grad, momentum_buffer, *, lr, weight_decay, momentum, dampening, nesterov, maximize):
    """SGD with momentum: returns ``(new_param, new_momentum_buffer)``.

    ``momentum_buffer`` is None before the first step with momentum (it then starts as the
    gradient, undamped, as in torch); the returned buffer is None when ``momentum`` is 0.
    """
    coefs = sgd_coefs(lr=lr, weight_decay=weight_decay, momentum=momentum, dampening=dampening)
    return sgd_apply(param, grad, momentum_buffer, nesterov=nesterov, maximize=maximize, **coefs)


# ---- Adam ---------------------------------------------------------------------------------------

@_host_math
def adam_coefs(step, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay=False, dtype) -> dict:
    coefs = _adam_decay_coefs(lr, weight_decay, decoupled_weight_decay)
    coefs.update(_lerp_coefs(1 - beta1, dtype))
    coefs.update(beta2=beta2, one_minus_beta2=1 - beta2)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    coefs.update(bias_correction2_sqrt=bias_correction2 ** 0.5, neg_step_size=-step_size, eps=eps)
    return coefs


def adam_apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, *, decay, weight_decay, lerp_w, lerp_1mw,
               beta2, one_minus_beta2, bias_correction2_sqrt, neg_step_size, eps, amsgrad, maximize):
    if maximize:
        grad = grad.neg()
    param, grad = _adam_decay(param, grad, decay, weight_decay)
    exp_avg = _lerp(exp_avg, grad, lerp_w, lerp_1mw)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2, one_minus_beta2)
    if amsgrad:
        max_exp_avg_sq = max_exp_avg_sq.maximum(exp_avg_sq)
        denom = max_exp_avg_sq.sqrt().div(bias_correction2_sqrt).add(eps)
    else:
        denom = exp_avg_sq.sqrt().div(bias_correction2_sqrt).add(eps)
    param = _addcdiv(param, exp_avg, denom, neg_step_size)
    return param, exp_avg, exp_avg_sq, max_exp_avg_sq


def adam(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, step, *, lr, beta1, beta2, eps,
         weight_decay, amsgrad, maximize, decoupled_weight_decay=False):
    """Adam (AdamW with ``decoupled_weight_decay``): returns
    ``(new_param, new_exp_avg, new_exp_avg_sq, new_max_exp_avg_sq)``.

    ``max_exp_avg_sq`` is used (and returned) only with ``amsgrad``; pass None otherwise.
    """
    coefs = adam_coefs(step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                       decoupled_weight_decay=decoupled_weight_decay, dtype=param.dtype)
    return adam_apply(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad=amsgrad, maximize=maximize,
                      **coefs)


# ---- RMSprop --------------------------------------------------------------------------------------

def rmsprop_coefs(*, lr, alpha, eps, weight_decay, momentum, centered, dtype) -> dict:
    coefs = {"weight_decay": _if_nonzero(weight_decay), "alpha": alpha, "one_minus_alpha": 1 - alpha,
             "eps": eps, "lerp_w": None, "lerp_1mw": None}
    if centered:
        coefs.update(_lerp_coefs(1 - alpha, dtype))
    if isinstance(momentum, Tensor) or momentum > 0:
        coefs.update(momentum=momentum, lr=lr, neg_lr=None)
    else:
        coefs.update(momentum=None, lr=None, neg_lr=-lr)
    return coefs


def rmsprop_apply(param, grad, square_avg, grad_avg, momentum_buffer, *, weight_decay, alpha, one_minus_alpha,
                  eps, lerp_w, lerp_1mw, momentum, lr, neg_lr, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    square_avg = _ema_sq(square_avg, grad, alpha, one_minus_alpha)
    if grad_avg is not None:
        grad_avg = _lerp(grad_avg, grad, lerp_w, lerp_1mw)
        avg = _fused(lambda a, g: a.sub(g.mul(g)), square_avg, square_avg, grad_avg).sqrt()
    else:
        avg = square_avg.sqrt()
    avg = avg.add(eps)
    if momentum is not None:
        momentum_buffer = _addcdiv(momentum_buffer.mul(momentum), grad, avg)
        param = _sub_mul(param, momentum_buffer, lr)
    else:
        param = _addcdiv(param, grad, avg, neg_lr)
    return param, square_avg, grad_avg, momentum_buffer


def rmsprop(param, grad, square_avg, grad_avg, momentum_buffer, *, lr, alpha, eps, weight_decay,
            momentum, centered, maximize):
    """RMSprop: returns ``(new_param, new_square_avg, new_grad_avg, new_momentum_buffer)``.

    ``grad_avg`` is used only when ``centered``, ``momentum_buffer`` only when ``momentum > 0``
    (pass None otherwise; None comes back).
    """
    coefs = rmsprop_coefs(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                          centered=centered, dtype=param.dtype)
    return rmsprop_apply(param, grad, square_avg, grad_avg if centered else None,
                         momentum_buffer if coefs["momentum"] is not None else None, maximize=maximize, **coefs)


# ---- Adagrad, Adadelta, Adamax ----------------------------------------------------------------------

@_host_math
def adagrad_coefs(step, *, lr, weight_decay, lr_decay, eps, dtype=None) -> dict:
    clr = lr / (1 + (step - 1) * lr_decay)
    return {"weight_decay": _if_nonzero(weight_decay), "neg_clr": -clr, "eps": eps}


def adagrad_apply(param, grad, state_sum, *, weight_decay, neg_clr, eps, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    state_sum = _fused(lambda s, g: s.add(g.mul(g)), state_sum, state_sum, grad)
    std = state_sum.sqrt().add(eps)
    return _addcdiv(param, grad, std, neg_clr), state_sum


def adagrad(param, grad, state_sum, step, *, lr, weight_decay, lr_decay, eps, maximize):
    """Adagrad: returns ``(new_param, new_state_sum)``."""
    coefs = adagrad_coefs(step, lr=lr, weight_decay=weight_decay, lr_decay=lr_decay, eps=eps)
    return adagrad_apply(param, grad, state_sum, maximize=maximize, **coefs)


def adadelta_coefs(*, lr, rho, eps, weight_decay, dtype=None) -> dict:
    return {"weight_decay": _if_nonzero(weight_decay), "rho": rho, "one_minus_rho": 1 - rho, "eps": eps,
            "lr": lr}


def adadelta_apply(param, grad, square_avg, acc_delta, *, weight_decay, rho, one_minus_rho, eps, lr, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    square_avg = _ema_sq(square_avg, grad, rho, one_minus_rho)
    std = square_avg.add(eps).sqrt()
    delta = acc_delta.add(eps).sqrt().div(std).mul(grad)
    acc_delta = _ema_sq(acc_delta, delta, rho, one_minus_rho)
    return _sub_mul(param, delta, lr), square_avg, acc_delta


def adadelta(param, grad, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """Adadelta: returns ``(new_param, new_square_avg, new_acc_delta)``."""
    coefs = adadelta_coefs(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
    return adadelta_apply(param, grad, square_avg, acc_delta, maximize=maximize, **coefs)


@_host_math
def adamax_coefs(step, *, lr, beta1, beta2, eps, weight_decay, dtype) -> dict:
    coefs = {"weight_decay": _if_nonzero(weight_decay), "beta2": beta2, "eps": eps}
    coefs.update(_lerp_coefs(1 - beta1, dtype))
    clr = lr / (1 - beta1 ** step)
    coefs["neg_clr"] = -clr
    return coefs


def adamax_apply(param, grad, exp_avg, exp_inf, *, weight_decay, beta2, eps, lerp_w, lerp_1mw, neg_clr, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    exp_avg = _lerp(exp_avg, grad, lerp_w, lerp_1mw)
    exp_inf = exp_inf.mul(beta2).maximum(grad.abs().add(eps))
    return _addcdiv(param, exp_avg, exp_inf, neg_clr), exp_avg, exp_inf


def adamax(param, grad, exp_avg, exp_inf, step, *, lr, beta1, beta2, eps, weight_decay, maximize):
    """Adamax: returns ``(new_param, new_exp_avg, new_exp_inf)``."""
    coefs = adamax_coefs(step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                         dtype=param.dtype)
    return adamax_apply(param, grad, exp_avg, exp_inf, maximize=maximize, **coefs)


# ---- NAdam, RAdam -----------------------------------------------------------------------------------

@_host_math
def nadam_coefs(step, mu_product, *, lr, beta1, beta2, eps, weight_decay, momentum_decay,
                decoupled_weight_decay, dtype) -> tuple[dict, object]:
    """NAdam's coefficients and the new ``mu_product`` (see :func:`nadam`)."""
    bias_correction2 = 1 - beta2 ** step
    coefs = _adam_decay_coefs(lr, weight_decay, decoupled_weight_decay)
    mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
    mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
    if isinstance(mu, Tensor) and mu.dtype != scalar_dtype():  # (a widened count, see _host_math:
        mu_product = mu_product * mu.to(scalar_dtype())        # the product is the state's dtype)
    elif isinstance(mu_product, Tensor) or isinstance(mu, Tensor):
        mu_product = mu_product * mu
    elif scalar_dtype().itemsize == 4:
        mu_product = to_f32(to_f32(mu_product) * to_f32(mu))
    else:
        mu_product = mu_product * mu
    coefs.update(_lerp_coefs(1 - beta1, dtype))
    coefs.update(beta2=beta2, one_minus_beta2=1 - beta2, bias_correction2=bias_correction2, eps=eps)
    wide = mu_product.to(mu.dtype) if isinstance(mu, Tensor) and mu.dtype != scalar_dtype() else mu_product
    mu_product_next = wide * mu_next
    coefs["grad_coef"] = -lr * (1.0 - mu) / (1.0 - wide)
    coefs["exp_avg_coef"] = (-lr * mu_next) / (1.0 - mu_product_next)
    return coefs, mu_product


def nadam_apply(param, grad, exp_avg, exp_avg_sq, *, decay, weight_decay, lerp_w, lerp_1mw, beta2,
                one_minus_beta2, bias_correction2, eps, grad_coef, exp_avg_coef, maximize):
    if maximize:
        grad = grad.neg()
    param, grad = _adam_decay(param, grad, decay, weight_decay)
    exp_avg = _lerp(exp_avg, grad, lerp_w, lerp_1mw)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2, one_minus_beta2)
    denom = exp_avg_sq.div(bias_correction2).sqrt().add(eps)
    param = _addcdiv(param, grad, denom, grad_coef)
    param = _addcdiv(param, exp_avg, denom, exp_avg_coef)
    return param, exp_avg, exp_avg_sq


def nadam(param, grad, exp_avg, exp_avg_sq, mu_product, step, *, lr, beta1, beta2, eps,
          weight_decay, momentum_decay, decoupled_weight_decay, maximize):
    """NAdam: returns ``(new_param, new_exp_avg, new_exp_avg_sq, new_mu_product)``.

    ``mu_product`` is the running product of the momentum coefficients, a float32 (float64 under
    a float64 default dtype) state value like ``step``; as a Python number it is rounded the way
    torch's 0-d state tensor rounds it.
    """
    coefs, mu_product = nadam_coefs(step, mu_product, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                    weight_decay=weight_decay, momentum_decay=momentum_decay,
                                    decoupled_weight_decay=decoupled_weight_decay, dtype=param.dtype)
    return nadam_apply(param, grad, exp_avg, exp_avg_sq, maximize=maximize, **coefs) + (mu_product,)


@_host_math
def radam_coefs(step, *, lr, beta1, beta2, eps, weight_decay, decoupled_weight_decay, dtype) -> dict:
    """RAdam's coefficients. ``rect`` (the rectification) is None while the variance estimate is
    intractable (``rho_t <= 5``); with a tensor ``step`` the choice is made per step by a
    ``where`` on ``rho_t``, else ``rho_t`` is None."""
    coefs = _adam_decay_coefs(lr, weight_decay, decoupled_weight_decay)
    coefs.update(_lerp_coefs(1 - beta1, dtype))
    coefs.update(beta2=beta2, one_minus_beta2=1 - beta2, lr=lr, eps=eps)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
    coefs.update(bias_correction1=bias_correction1, rho_t=None, rect=None, bias_correction2_sqrt=None)
    if isinstance(rho_t, Tensor) or rho_t > 5.0:
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
        coefs.update(rect=rect, bias_correction2_sqrt=bias_correction2 ** 0.5)
        if isinstance(rho_t, Tensor):
            coefs["rho_t"] = rho_t
    return coefs


def radam_apply(param, grad, exp_avg, exp_avg_sq, *, decay, weight_decay, lerp_w, lerp_1mw, beta2,
                one_minus_beta2, lr, eps, bias_correction1, rho_t, rect, bias_correction2_sqrt, maximize):
    if maximize:
        grad = grad.neg()
    param, grad = _adam_decay(param, grad, decay, weight_decay)
    exp_avg = _lerp(exp_avg, grad, lerp_w, lerp_1mw)
    exp_avg_sq = _ema_sq(exp_avg_sq, grad, beta2, one_minus_beta2)
    bias_corrected_exp_avg = exp_avg.div(bias_correction1)
    if rho_t is not None:
        adaptive_lr = bias_correction2_sqrt / exp_avg_sq.sqrt().add(eps)
        update = where(rho_t > 5.0, rect * adaptive_lr, 1.0)
        param = param.sub(bias_corrected_exp_avg.mul(lr).mul(update))
    elif rect is not None:
        adaptive_lr = bias_correction2_sqrt / exp_avg_sq.sqrt().add(eps)
        param = param.sub(bias_corrected_exp_avg.mul(lr).mul(adaptive_lr).mul(rect))
    else:
        param = param.sub(bias_corrected_exp_avg.mul(lr))
    return param, exp_avg, exp_avg_sq


def radam(param, grad, exp_avg, exp_avg_sq, step, *, lr, beta1, beta2, eps, weight_decay,
          decoupled_weight_decay, maximize):
    """RAdam: returns ``(new_param, new_exp_avg, new_exp_avg_sq)``.

    The rectified step applies once the variance estimate is tractable (``rho_t > 5``); before
    that the update is plain momentum. With a tensor ``step`` the choice is a ``where``.
    """
    coefs = radam_coefs(step, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, dtype=param.dtype)
    return radam_apply(param, grad, exp_avg, exp_avg_sq, maximize=maximize, **coefs)


# ---- Rprop, ASGD, Adafactor -------------------------------------------------------------------------

def rprop_coefs(*, etaminus, etaplus, step_size_min, step_size_max, dtype=None) -> dict:
    return {"etaminus": etaminus, "etaplus": etaplus, "step_size_min": step_size_min,
            "step_size_max": step_size_max}


def rprop_apply(param, grad, prev, step_size, *, etaminus, etaplus, step_size_min, step_size_max, maximize):
    if maximize:
        grad = grad.neg()
    sign = grad.mul(prev).sign()
    # torch rewrites the sign in place: > 0 -> etaplus, < 0 -> etaminus, 0 -> 1 (NaN stays NaN)
    factor = where(sign.gt(0), etaplus, where(sign.lt(0), etaminus, where(sign.eq(0), 1.0, sign)))
    step_size = step_size.mul(factor).clamp(step_size_min, step_size_max)
    grad = where(sign.lt(0), 0.0, grad)  # a sign change: no step now, and no sign to compare next time
    return param.sub(grad.sign().mul(step_size)), grad, step_size


def rprop(param, grad, prev, step_size, *, etaminus, etaplus, step_size_min, step_size_max, maximize):
    """Rprop: returns ``(new_param, new_prev, new_step_size)``. ``prev`` is the last gradient
    stepped on (zeroed where its sign flipped), ``step_size`` the per-element step."""
    coefs = rprop_coefs(etaminus=etaminus, etaplus=etaplus, step_size_min=step_size_min,
                        step_size_max=step_size_max)
    return rprop_apply(param, grad, prev, step_size, maximize=maximize, **coefs)


def asgd_coefs(eta, mu, *, lambd, weight_decay, dtype=None) -> dict:
    """ASGD's coefficients from the *current* ``eta`` and ``mu`` (its 0-d state, read before
    this step updates them). A number ``mu`` of 1 means "copy the parameter" (``mu`` None), as
    torch's default path does; a tensor ``mu`` (compiled, capturable) picks that case per step
    with a ``where`` (``mu_t``)."""
    coefs = {"weight_decay": _if_nonzero(weight_decay), "decay": 1 - lambd * eta, "neg_eta": -eta,
             "mu": None, "mu_t": None}
    if isinstance(mu, Tensor):
        coefs["mu_t"] = mu
    elif mu != 1:
        coefs["mu"] = mu
    return coefs


def asgd_apply(param, grad, ax, *, weight_decay, decay, neg_eta, mu, mu_t, maximize):
    grad = _decay(param, grad, weight_decay, maximize)
    param = _add_mul(param.mul(decay), grad, neg_eta)
    if mu_t is not None:
        ax = where(mu_t == 1, param, ax.add(param.sub(ax).mul(mu_t)))
    elif mu is not None:
        ax = ax.add(param.sub(ax).mul(mu))
    else:
        ax = param
    return param, ax


def asgd_next_eta_mu(step, *, lr, lambd, alpha, t0):
    """The ``eta`` and ``mu`` ASGD keeps for the next step, after step number ``step``."""
    eta = lr / ((1 + lambd * lr * step) ** alpha)
    if isinstance(step, Tensor):
        return eta, (step - t0).clamp(min=1.0).reciprocal()
    return eta, 1 / max(1, step - t0)


def asgd(param, grad, ax, eta, mu, *, lambd, weight_decay, maximize):
    """ASGD's update with the current ``eta`` and ``mu``: returns ``(new_param, new_ax)``; the
    next ``eta`` and ``mu`` come from :func:`asgd_next_eta_mu`."""
    coefs = asgd_coefs(eta, mu, lambd=lambd, weight_decay=weight_decay)
    return asgd_apply(param, grad, ax, maximize=maximize, **coefs)


@_host_math
def adafactor_coefs(step, *, lr, beta2_decay, eps1, eps2, weight_decay, dtype) -> dict:
    """Adafactor's step-dependent coefficients: the running averages' weight
    ``step ** beta2_decay`` and the relative step size ``rho_t = min(lr, 1 / sqrt(step))``."""
    one_minus_beta2_t = step ** beta2_decay
    inv_sqrt = step.sqrt().reciprocal() if isinstance(step, Tensor) else 1 / (step ** 0.5)
    if isinstance(lr, Tensor):
        rho_t = minimum(lr, inv_sqrt) if isinstance(inv_sqrt, Tensor) else lr.clamp(max=inv_sqrt)
    elif isinstance(inv_sqrt, Tensor):
        rho_t = inv_sqrt.clamp(max=lr)
    else:
        rho_t = min(lr, inv_sqrt)
    coefs = {"decay": 1 - lr * weight_decay if _nonzero(weight_decay) else None, "rho_t": rho_t,
             "eps1": eps1, "eps1_sq": eps1 * eps1, "eps2": eps2}
    coefs.update(_lerp_coefs(one_minus_beta2_t, dtype))
    return coefs


def adafactor_apply(param, grad, row_var, col_var, variance, *, decay, rho_t, eps1, eps1_sq, eps2, lerp_w,
                    lerp_1mw, d, maximize):
    if maximize:
        grad = grad.neg()
    # the step's scale is the parameter's RMS (at least eps2) times rho_t, measured before decay
    alpha = param.norm().div(param.numel() ** 0.5).clamp(min=eps2).mul(rho_t)
    if decay is not None:
        param = param.mul(decay)
    if grad.dim() > 1:  # factored: a row and a column mean of grad**2 over the last two dims
        row_mean = grad.norm(dim=-1, keepdim=True).square().div(grad.size(-1))
        row_var = _lerp(row_var, row_mean, lerp_w, lerp_1mw)
        col_mean = grad.norm(dim=-2, keepdim=True).square().div(grad.size(-2))
        col_var = _lerp(col_var, col_mean, lerp_w, lerp_1mw)
        var_estimate = row_var.matmul(col_var).div(row_var.mean(dim=-2, keepdim=True).clamp(min=eps1))
    else:
        variance = _lerp(variance, grad.mul(grad), lerp_w, lerp_1mw)
        var_estimate = variance
    update = var_estimate.clamp(min=eps1_sq).rsqrt().mul(grad)
    denom = update.norm().div(update.numel() ** 0.5 * d).clamp(min=1.0)  # update clipping
    return param.sub(update.mul(alpha.div(denom))), row_var, col_var, variance


def adafactor(param, grad, row_var, col_var, variance, step, *, lr, beta2_decay, eps1, eps2, d, weight_decay,
              maximize):
    """Adafactor: returns ``(new_param, new_row_var, new_col_var, new_variance)``. A parameter
    with two or more dims keeps ``row_var``/``col_var`` (pass None for ``variance``), others keep
    ``variance``; ``eps1`` None means the parameter dtype's machine epsilon, as in torch."""
    if eps1 is None:
        eps1 = _finfo_eps(param.dtype)
    coefs = adafactor_coefs(step, lr=lr, beta2_decay=beta2_decay, eps1=eps1, eps2=eps2,
                            weight_decay=weight_decay, dtype=param.dtype)
    return adafactor_apply(param, grad, row_var, col_var, variance, d=d, maximize=maximize, **coefs)


def _finfo_eps(dtype) -> float:
    from .. import finfo  # (tracenn's package imports optim: looked up on use)
    return finfo(dtype).eps
