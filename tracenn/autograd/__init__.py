"""Eager reverse-mode autograd: ``backward``, ``grad``, grad-mode contexts.

A dynamic tape: each op with an input that requires grad records a :class:`~.graph.Node`; backward
walks them in reverse order and runs each op's jitted vjp from the op registry. With
``create_graph=True`` it dispatches each op's gradient op on tensors instead, so the gradients
carry history and can be differentiated again, to any order.
"""
from __future__ import annotations

import warnings

import jax.numpy as jnp

from .. import _dispatch
from ..errors import BackwardError
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled,
                        no_grad, set_grad_enabled)
from .function import Function, FunctionCtx, once_differentiable
from .anomaly_mode import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from ._gradcheck import GradcheckError, gradcheck, gradgradcheck
from .graph import SEEDS, AccumulateGrad, Node
from .variable import Variable
from ._multithreading import is_multithreading_enabled, set_multithreading_enabled  # noqa: F401

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "is_inference_mode_enabled", "Node", "AccumulateGrad", "Function",
           "FunctionCtx", "once_differentiable", "Variable"]


def _as_list(x):
    if x is None:
        return None
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _ones(shape, dtype):
    """The implicit seed gradient of a scalar output, made once per shape/dtype (arrays are
    immutable; the engine knows a seed by identity: graph.SEEDS)."""
    v = SEEDS.get((shape, dtype))
    if v is None:
        v = SEEDS[(shape, dtype)] = jnp.ones(shape, dtype)
    return v


def _seed_grads(outputs, grad_outputs, as_tensors=False):
    """The gradient each output starts from: raw arrays, or with ``as_tensors`` (create_graph)
    tensors, a given ``grad_outputs`` tensor kept as it is (its history takes part)."""
    from ..tensor import Tensor
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if grad_outputs is not None else None
        if out._base is not None:
            out._sync()  # a view whose root changed since: its grad_fn comes from the root
        if not out._requires_grad:
            raise BackwardError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        if g is None:
            if out._value.size != 1:
                raise BackwardError("grad can be implicitly created only for scalar outputs")
            if out._value.dtype.kind == "c":
                raise BackwardError("grad can be implicitly created only for real scalar outputs but got "
                                    f"tracenn.{out._value.dtype.name} (take .real, .abs() or pass gradient=)")
            g = _ones(out._value.shape, out._value.dtype)
            grads.append(Tensor._wrap(g) if as_tensors else g)
        else:
            if not isinstance(g, Tensor):
                from .._api.creation import tensor
                g = tensor(g, dtype=out.dtype)
            if tuple(g.shape) != tuple(out.shape):
                raise BackwardError(f"Mismatch in shape: grad_output[{i}] has a shape of {g.shape} and "
                                    f"output[{i}] has a shape of {out.shape}.")
            grads.append(g if as_tensors else g._value if g._base is None else g._sync())
    return grads


_warned_cycle = [False]


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves they depend on.

    Args:
        tensors: output tensor(s) to differentiate.
        grad_tensors: the gradient w.r.t. each output (needed for non-scalar outputs).
        retain_graph: keep the graph's saved values for another backward (default: ``create_graph``).
        create_graph: record the gradient computation, so ``.grad`` has a ``grad_fn`` and can be
            differentiated again (higher-order gradients).
        inputs: accumulate only into these leaves.
    """
    if retain_graph is None:
        retain_graph = create_graph
    outs = _as_list(tensors)
    grads = _seed_grads(outs, _as_list(grad_tensors if grad_tensors is not None else grad_variables),
                        as_tensors=create_graph)
    if _dispatch.TRACE[0] is not None:  # inside tracenn.compile: the reverse pass becomes graph nodes
        _refuse_leaf_hooks(_dispatch.TRACE[0])
        _dispatch.TRACE[0].backward(outs, grads, inputs=_as_list(inputs), create_graph=create_graph,
                                    retain_graph=retain_graph)
        return
    if create_graph and not _warned_cycle[0]:
        _warned_cycle[0] = True  # torch warns once per process
        warnings.warn(
            "Using backward() with create_graph=True will create a reference cycle between the "
            "parameter and its gradient which can cause a memory leak. We recommend using "
            "autograd.grad when creating the graph to avoid this. If you have to use this function, "
            "make sure to reset the .grad fields of your parameters to None after use to break the "
            "cycle and avoid the leak.", UserWarning, stacklevel=2)
    from .engine import _accumulate_recorded, _edge_of, run_backward
    only = capture = None
    nonleaf = []
    if inputs is not None:
        ins = _as_list(inputs)
        if not ins:
            raise BackwardError("`inputs` argument to `backward()` cannot be empty.")
        only, capture = set(), {}
        for t in ins:
            if not t._requires_grad:
                raise BackwardError("can't retain_grad on Tensor that has requires_grad=False")
            e = _edge_of(t)
            if isinstance(e[0], AccumulateGrad):
                only.add(id(t))
            else:  # a non-leaf input gets its .grad too (torch retains it for this call)
                capture[e] = len(nonleaf)
                nonleaf.append(t)
    got = run_backward(outs, grads, retain_graph=bool(retain_graph), accumulate=True,
                       only_leaves=only, capture=capture or None, create_graph=create_graph)
    for slot, t in enumerate(nonleaf):
        if slot in got:
            if create_graph:
                _accumulate_recorded(t, got[slot])
            else:
                t._accumulate_grad(got[slot])


def _refuse_leaf_hooks(trace):
    """A traced ``backward()`` writes each leaf's ``.grad`` as a program output; a leaf's tensor
    hooks (``register_hook``, ``register_post_accumulate_grad_hook``) would not run in it, so the
    call runs eagerly instead (UnsupportedError: tracenn.compile falls back, warning once)."""
    for v, t in trace.leaves.items():
        acc = t._acc
        if acc is not None and (acc.hooks or acc.pre_hooks and any(acc.pre_hooks.values())):
            from ..errors import UnsupportedError
            kind = "post accumulate grad hooks" if acc.hooks else "tensor hooks (register_hook)"
            raise UnsupportedError(
                f"{getattr(v, 'name', 'a leaf')!r} has {kind}, which a compiled training step cannot run "
                "during its backward; this call runs eagerly instead, where they fire as in torch. "
                "Compile only the forward (tracenn.compile(model)) to keep them and a compiled model.")


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` w.r.t. ``inputs``, returned (``.grad`` is not touched).

    With ``create_graph=True`` the returned gradients have a ``grad_fn`` and can be differentiated
    again (gradient penalties, Hessian-vector products); ``retain_graph`` then defaults to True.

    >>> import tracenn
    >>> x = tracenn.tensor([1., 2.], requires_grad=True)
    >>> tracenn.autograd.grad((x * x).sum(), x)
    (tensor([2., 4.]),)
    >>> (g,) = tracenn.autograd.grad((x ** 3).sum(), x, create_graph=True)
    >>> tracenn.autograd.grad(g.sum(), x)  # d2/dx2 of x**3 = 6x
    (tensor([ 6., 12.]),)
    """
    from ..tensor import Tensor
    from .engine import _edge_of, _same, run_backward
    if retain_graph is None:
        retain_graph = create_graph
    outs = _as_list(outputs)
    ins = _as_list(inputs)
    for i, t in enumerate(ins):
        if not t._requires_grad:
            raise BackwardError(f"One of the differentiated Tensors does not require grad")
    grads = _seed_grads(outs, _as_list(grad_outputs), as_tensors=create_graph)
    if _dispatch.TRACE[0] is not None:
        got = _dispatch.TRACE[0].grad(outs, grads, ins, create_graph=create_graph, retain_graph=retain_graph)
        return _unused(got, ins, allow_unused, materialize_grads)
    capture = {}
    for slot, t in enumerate(ins):
        capture[_edge_of(t)] = slot
    got = run_backward(outs, grads, retain_graph=bool(retain_graph), accumulate=False, capture=capture,
                       create_graph=create_graph)
    wrap = _same if create_graph else Tensor._wrap
    return _unused([None if got.get(slot) is None else wrap(got[slot]) for slot in range(len(ins))],
                   ins, allow_unused, materialize_grads)


def _unused(got, ins, allow_unused, materialize_grads):
    """torch's handling of inputs that no gradient reached."""
    result = []
    for slot, (t, g) in enumerate(zip(ins, got)):
        if g is None:
            if materialize_grads:
                from .._api.creation import zeros_like
                result.append(zeros_like(t))
                continue
            if not allow_unused:
                raise BackwardError(f"The differentiated Tensor at index {slot} appears to not have been "
                                    "used in the graph. Set allow_unused=True if this is the desired "
                                    "behavior.")
            result.append(None)
        else:
            result.append(g)
    return tuple(result)


def __getattr__(name):
    # torch.autograd.functional imports tensor (which imports this package): loaded on first use.
    if name == "functional":
        import importlib
        return importlib.import_module(".functional", __name__)
    raise AttributeError(f"module 'tracenn.autograd' has no attribute {name!r}")
