"""Optimizer updates for sparse COO gradients (``nn.Embedding(sparse=True)``), as torch's.

torch steps a sparse gradient in three optimizers, each updating only the rows the gradient
holds: ``SparseAdam`` (lazy Adam), ``SGD`` (no weight decay) and ``Adagrad`` (no weight decay);
``LBFGS`` makes it dense. Every other optimizer refuses it with torch's error (:func:`refuse`).

The updates here follow torch's ``_functional.sparse_adam``, ``_single_tensor_sgd`` and
``_single_tensor_adagrad`` operation by operation: coalesce the gradient (sort the rows, sum
duplicates), gather the state rows it names, compute their new values, and write them back
(``index_put`` of unique rows). Coalescing reads the indices, so inside a compiled call a sparse
gradient makes the call run eagerly (UnsupportedError).
"""
from __future__ import annotations

import math

from .. import _dispatch
from .._api.index import index_add, index_put, index_select
from ..errors import UnsupportedError
from ..sparse._coo import SEEN
from . import optimizer as _optimizer  # (which imports this module: write_back is read when called)


def _write_back(dst, src):
    _optimizer.write_back(dst, src)


_SPECIAL = {"Adam": "Adam does not support sparse gradients, please consider SparseAdam instead",
            "AdamW": "Adam does not support sparse gradients, please consider SparseAdam instead"}


def refuse(optimizer) -> None:
    """torch's error for an optimizer that cannot step a sparse gradient (its class does not set
    ``_sparse_grads = True``), if one of its parameters has one. Called before every ``step``; it
    looks only once a sparse tensor has been made."""
    if not SEEN[0] or getattr(optimizer, "_sparse_grads", False):
        return
    for group in optimizer.param_groups:
        for p in group["params"]:
            g = p.grad
            if g is not None and g.is_sparse:
                name = type(optimizer).__name__
                raise RuntimeError(_SPECIAL.get(name, f"{name} does not support sparse gradients"))


def _rows(grad, maximize: bool):
    """(row indices, row values) of the coalesced gradient (negated for ``maximize``)."""
    if _dispatch.TRACE[0] is not None:
        raise UnsupportedError("an optimizer step on a sparse gradient inside a compiled call (coalescing it "
                               "reads the indices); this call runs eagerly")
    g = (-grad if maximize else grad).coalesce()
    return g._sp_indices[0], g._sp_values


def sparse_adam_step(p, grad, exp_avg, exp_avg_sq, step: int, *, lr, beta1, beta2, eps, maximize) -> None:
    """One SparseAdam update of ``p`` and its state, on the rows ``grad`` holds (torch's
    ``_functional.sparse_adam``; an empty gradient changes nothing)."""
    idx, values = _rows(grad, maximize)
    if values.numel() == 0:
        return
    old_m = index_select(exp_avg, 0, idx)
    upd_m = (values - old_m) * (1 - beta1)
    _write_back(exp_avg, index_put(exp_avg, (idx,), old_m + upd_m))
    old_v = index_select(exp_avg_sq, 0, idx)
    upd_v = (values.pow(2) - old_v) * (1 - beta2)
    _write_back(exp_avg_sq, index_put(exp_avg_sq, (idx,), old_v + upd_v))
    numer = upd_m + old_m
    denom = (upd_v + old_v).sqrt() + eps
    step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step)
    _write_back(p, index_put(p, (idx,), index_select(p, 0, idx) + (numer / denom) * -step_size))


def adagrad_step(p, grad, state_sum, clr, *, eps, weight_decay, maximize) -> None:
    """One Adagrad update on the rows ``grad`` holds (torch's sparse branch of
    ``_single_tensor_adagrad``; ``clr`` is the decayed learning rate)."""
    if weight_decay != 0:
        raise RuntimeError("weight_decay option is not compatible with sparse gradients")
    idx, values = _rows(grad, maximize)
    new_sum = index_select(state_sum, 0, idx) + values.pow(2)
    _write_back(state_sum, index_put(state_sum, (idx,), new_sum))
    std = new_sum.sqrt() + eps
    _write_back(p, index_put(p, (idx,), index_select(p, 0, idx) + (values / std) * -clr))


def sgd_step(p, grad, state, *, lr, weight_decay, momentum, dampening, nesterov, maximize) -> None:
    """One SGD update with a sparse gradient (torch's ``_single_tensor_sgd``): weight decay is
    refused as torch's ``grad.add(param)`` refuses it; the momentum buffer is sparse (coalesced
    after each step here, where torch's may keep duplicate rows: the same numbers)."""
    if _dispatch.TRACE[0] is not None:
        _rows(grad, maximize)  # (raises)
    g = -grad if maximize else grad
    if weight_decay != 0:
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
    if momentum != 0:
        buf = state.get("momentum_buffer")
        if buf is None:
            buf = state["momentum_buffer"] = g.detach().clone().coalesce()
        elif buf.is_sparse:
            new = (buf * momentum + g * (1 - dampening)).coalesce()
            buf._sp_indices, buf._sp_values, buf._coalesced = new._sp_indices, new._sp_values, True
        else:  # a dense buffer (an earlier dense gradient): it stays dense
            _write_back(buf, index_add(buf * momentum, 0, g._sp_indices[0], g._sp_values * (1 - dampening)))
        if not buf.is_sparse:
            _write_back(p, p - (buf * momentum + g.to_dense() if nesterov else buf) * lr)
            return
        g = g + buf * momentum if nesterov else buf
    _write_back(p, index_add(p, 0, g._sp_indices[0], g._sp_values * -lr))
