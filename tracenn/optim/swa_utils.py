"""``tracenn.optim.swa_utils``: stochastic weight averaging and EMA models, as torch.optim.swa_utils.

:class:`AveragedModel` keeps a copy of a model whose parameters (and, with ``use_buffers``, buffers)
are a running average of the model's; :class:`SWALR` anneals each param group's learning rate to a
fixed SWA value; :func:`update_bn` recomputes BatchNorm statistics for averaged weights. The
averaging functions follow torch's CPU arithmetic (``avg + (p - avg) / (n + 1)`` for SWA, ``lerp``
for EMA), so the averages equal torch's.
"""
from __future__ import annotations

import itertools
import math
import warnings
from copy import deepcopy
from typing import Any, Callable, Iterable

from .. import _dispatch
from .. import dtypes as _dt
from .._api.creation import tensor as _tensor
from ..autograd.grad_mode import no_grad
from ..nn.modules.batchnorm import _BatchNorm
from ..nn.modules.module import Module
from ..tensor import Tensor
from .lr_scheduler import LRScheduler, _format_param

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in [0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """The in-place EMA update over lists of tensors: ``ema = decay * ema + (1 - decay) * p``
    (``lerp`` for floating tensors, as torch's ``_foreach_lerp_``).

    >>> import tracenn
    >>> ema, cur = [tracenn.zeros(2)], [tracenn.ones(2)]
    >>> tracenn.optim.swa_utils.get_ema_multi_avg_fn(0.75)(ema, cur, 1)
    >>> ema[0]
    tensor([0.2500, 0.2500])
    """
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param_list, current_param_list, _) -> None:
        if ema_param_list[0].is_floating_point() or ema_param_list[0].is_complex():
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.lerp_(p_model, 1 - decay)
        else:
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                p_ema.copy_(p_ema * decay + p_model * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """The in-place equal-weight (SWA) update over lists of tensors, ``num_averaged`` models
    averaged so far: ``avg = lerp(avg, p, 1 / (num_averaged + 1))`` (floating tensors)."""

    @no_grad()
    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        if averaged_param_list[0].is_floating_point() or averaged_param_list[0].is_complex():
            weight = 1 / (num_averaged + 1)
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.lerp_(p_model, weight)
        else:
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                diff = p_model - p_avg
                p_avg.copy_(p_avg + (diff / (num_averaged + 1) if isinstance(num_averaged, Tensor)
                                     else diff * (1.0 / (num_averaged + 1))))
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """The EMA of one tensor: returns ``decay * ema + (1 - decay) * p``."""
    _check_decay(decay)

    @no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """The equal-weight average of one tensor: returns ``avg + (p - avg) / (num_averaged + 1)``."""

    @no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    r"""A copy of ``model`` whose parameters are a running average of ``model``'s, for Stochastic
    Weight Averaging (SWA) and Exponential Moving Average (EMA) models, as torch's.

    The first :meth:`update_parameters` copies the model's parameters; each later one averages
    them in with ``avg_fn`` (one tensor at a time) or ``multi_avg_fn`` (lists of tensors of one
    dtype and device), by default the equal-weight average. ``n_averaged`` (a long buffer) counts
    the updates. Without ``use_buffers`` the copy's buffers just follow the model's (use
    :func:`update_bn` to recompute BatchNorm statistics); with it, buffers are averaged too.

    Args:
        model (Module): the model to average (deep-copied).
        device (device, optional): where the copy lives.
        avg_fn (callable, optional): ``avg_fn(averaged, current, num_averaged) -> Tensor``.
        multi_avg_fn (callable, optional): ``multi_avg_fn(averaged_list, current_list,
            num_averaged) -> None``, updating in place. At most one of the two may be given.
        use_buffers (bool): average the buffers too (default: False).

    The state dict has ``n_averaged`` and the copy's entries under ``module.``; ``avg_fn`` and
    ``multi_avg_fn`` are not saved.

    >>> import tracenn
    >>> from tracenn.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    >>> model = tracenn.nn.Linear(2, 1)
    >>> ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.5))
    >>> with tracenn.no_grad():
    ...     _ = model.bias.fill_(2.0)
    >>> ema.update_parameters(model)       # copies
    >>> with tracenn.no_grad():
    ...     _ = model.bias.fill_(4.0)
    >>> ema.update_parameters(model)       # 0.5 * 2 + 0.5 * 4
    >>> ema.module.bias, ema.n_averaged
    (Parameter containing:
    tensor([3.], requires_grad=True), tensor(2))
    >>> list(ema.state_dict())
    ['n_averaged', 'module.weight', 'module.bias']
    """

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _tensor(0, dtype=_dt.long, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        """Run the averaged copy."""
        return self.module(*args, **kwargs)

    @no_grad()
    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current parameters (and buffers, with ``use_buffers``) in."""
        if self.use_buffers:
            self_param = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            model_param = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            self_param, model_param = list(self.parameters()), list(model.parameters())
        pairs = [(p_avg, p_model.detach().to(p_avg.device)) for p_avg, p_model in zip(self_param, model_param)]
        if _dispatch.TRACE[0] is not None:
            # inside a compiled step the count is not known while tracing: average, then take the
            # model's values where none were averaged yet (the first update copies, as eagerly)
            first = self.n_averaged == 0
            self._average(pairs)
            for p_avg, p_model in pairs:
                p_avg.copy_(p_model.where(first.to(p_avg.device), p_avg))
        elif int(self.n_averaged.item()) == 0:
            for p_avg, p_model in pairs:
                p_avg.copy_(p_model)
        else:
            self._average(pairs)
        if not self.use_buffers:  # the buffers follow the source model's
            for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                b_swa.copy_(b_model.detach().to(b_swa.device))
        self.n_averaged += 1

    def _average(self, pairs) -> None:
        """Average the ``(averaged, current)`` pairs in, ``n_averaged`` models averaged so far."""
        if self.avg_fn is not None and self.multi_avg_fn is None:
            for p_avg, p_model in pairs:
                p_avg.copy_(self.avg_fn(p_avg.detach(), p_model, self.n_averaged.to(p_avg.device)))
        else:
            # (torch's CPU path: the per-tensor SWA average unless a multi_avg_fn is given)
            avg_fn = get_swa_avg_fn()
            for (device, _), group in _by_device_and_dtype(pairs).items():
                n_averaged = self.n_averaged.to(device)
                if self.multi_avg_fn is not None:
                    self.multi_avg_fn([a for a, _ in group], [m for _, m in group], n_averaged)
                else:
                    for p_avg, p_model in group:
                        p_avg.copy_(avg_fn(p_avg, p_model, n_averaged))


def _by_device_and_dtype(pairs) -> dict:
    """The ``(averaged, current)`` pairs grouped by the averaged tensor's device and dtype, in order."""
    groups: dict = {}
    for p_avg, p_model in pairs:
        groups.setdefault((p_avg.device, p_avg.dtype), []).append((p_avg, p_model))
    return groups


@no_grad()
def update_bn(loader: Iterable[Any], model: Module, device=None) -> None:
    r"""Recompute the BatchNorm ``running_mean``/``running_var`` of ``model`` with one pass over
    ``loader`` (the cumulative average over its batches, as torch's), e.g. for an
    :class:`AveragedModel`'s weights.

    Args:
        loader (iterable): batches: tensors, or lists/tuples whose first element is the input.
        model (Module): the model to update.
        device (device, optional): where each batch is moved before the call.

    >>> import tracenn
    >>> model = tracenn.nn.Sequential(tracenn.nn.Linear(2, 2), tracenn.nn.BatchNorm1d(2))
    >>> loader = [(tracenn.randn(8, 2), None) for _ in range(3)]
    >>> tracenn.optim.swa_utils.update_bn(loader, model)
    >>> int(model[1].num_batches_tracked)
    3
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    for input in loader:
        if isinstance(input, (list, tuple)):
            input = input[0]
        if device is not None:
            input = input.to(device)
        model(input)
    for bn_module in momenta:
        bn_module.momentum = momenta[bn_module]
    model.train(was_training)


class SWALR(LRScheduler):
    r"""Anneal each param group's learning rate to a fixed ``swa_lr`` over ``anneal_epochs``
    epochs (cosine or linear), then keep it there, as torch.optim.swa_utils.SWALR.

    Args:
        optimizer (Optimizer): the wrapped optimizer.
        swa_lr (float or list): the SWA learning rate, for all groups or one per group.
        anneal_epochs (int): epochs of the annealing phase (default: 10).
        anneal_strategy (str): ``"cos"`` or ``"linear"`` (default: ``"cos"``).
        last_epoch (int): the index of the last epoch (default: -1).

    >>> import tracenn
    >>> opt = tracenn.optim.SGD([tracenn.nn.Parameter(tracenn.zeros(1))], lr=1.0)
    >>> sched = tracenn.optim.swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=3, anneal_strategy="linear")
    >>> lrs = []
    >>> for _ in range(4):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(round(opt.param_groups[0]["lr"], 4))
    >>> lrs
    [0.7, 0.4, 0.1, 0.1]
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ["cos", "linear"]:
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        """The next learning rates: each group's ``lr`` moved toward its ``swa_lr`` along the
        annealing curve (recovering the pre-annealing rate from the current one, as torch)."""
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=2)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha) for group, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def _set_anneal_func(self, anneal_strategy) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: every attribute but the optimizer and the annealing function."""
        return {key: value for key, value in self.__dict__.items() if key not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state made by :meth:`state_dict`."""
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
