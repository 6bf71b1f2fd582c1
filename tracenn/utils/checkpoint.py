"""Activation checkpointing, as ``torch.utils.checkpoint``: trade compute for memory.

``checkpoint(fn, *args, use_reentrant=False)`` runs ``fn`` without keeping its intermediate
results for the backward pass; the backward runs ``fn`` again (with the random state it had, so
dropout draws the same masks) and backpropagates through that second run. Gradients are those of
``fn(*args)`` run normally.

Eagerly this is torch's behaviour: only the segment's inputs stay alive between forward and
backward. Inside ``tracenn.compile`` the segment is traced like any other code: the program's
forward and backward are one XLA computation, and XLA decides which intermediates to keep (the
values and gradients are the same).

Selective activation checkpointing (``context_fn=functools.partial(create_selective_checkpoint_contexts,
policy)``, torch's per-op save-or-recompute policy) is accepted and validated as torch's, and gives
torch's gradients; tracenn does not act on the per-op choice: eagerly the whole segment is
recomputed (every op as ``PREFER_RECOMPUTE``), and under ``tracenn.compile`` XLA decides what to
keep. The policy function is not called (tracenn's primitives are not aten ops).

>>> import tracenn
>>> from tracenn.utils.checkpoint import checkpoint
>>> lin = tracenn.nn.Linear(3, 3)
>>> x = tracenn.randn(2, 3, requires_grad=True)
>>> y = checkpoint(lin, x, use_reentrant=False)
>>> y.sum().backward()
>>> x.grad.shape, lin.weight.grad.shape
(tracenn.Size([2, 3]), tracenn.Size([3, 3]))
"""
from __future__ import annotations

import contextlib
import enum
import warnings

from .. import _dispatch
from ..autograd.function import Function
from ..autograd.grad_mode import GRAD, enable_grad, no_grad
from ..random import get_rng_state, set_rng_state
from ..tensor import Tensor

__all__ = ["checkpoint", "checkpoint_sequential", "CheckpointError", "CheckpointFunction", "CheckpointPolicy",
           "DefaultDeviceType", "SelectiveCheckpointContext", "check_backward_validity",
           "create_selective_checkpoint_contexts", "detach_variable", "get_device_states", "noop_context_fn",
           "set_checkpoint_debug_enabled", "set_checkpoint_early_stop", "set_device_states"]


def noop_context_fn():
    """The default ``context_fn``: no context around the forward or the recomputation."""
    return contextlib.nullcontext(), contextlib.nullcontext()


def _detached(args):
    return tuple(a.detach().requires_grad_(a.requires_grad) if isinstance(a, Tensor) else a for a in args)


class CheckpointFunction(Function):
    """One tape node for the whole segment: its forward runs ``fn`` without recording, its
    backward runs ``fn`` again with recording and backpropagates through that run (the
    gradients of parameters ``fn`` reads accumulate into their ``.grad`` there, as torch's
    reentrant checkpoint does). ``keep`` is a tensor that requires grad, passed so that the node is
    recorded even when no input requires grad (use_reentrant=False)."""

    @staticmethod
    def forward(ctx, fn, preserve_rng_state, fwd_context, recompute_context, n_args, keep, *args):
        ctx.fn, ctx.preserve, ctx.recompute_context = fn, preserve_rng_state, recompute_context
        ctx.rng_state = get_rng_state() if preserve_rng_state else None
        ctx.tensor_at = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx.others = [None if isinstance(a, Tensor) else a for a in args]
        ctx.save_for_backward(*[args[i] for i in ctx.tensor_at])
        with no_grad(), fwd_context:
            return fn(*args)

    @staticmethod
    def backward(ctx, *grads):
        from ..autograd import backward
        args = list(ctx.others)
        for i, t in zip(ctx.tensor_at, ctx.saved_tensors):
            args[i] = t
        inputs = _detached(args)
        now = get_rng_state() if ctx.preserve else None
        try:
            if ctx.preserve:
                set_rng_state(ctx.rng_state)
            with enable_grad(), ctx.recompute_context:
                outputs = ctx.fn(*inputs)
        finally:
            if ctx.preserve:
                set_rng_state(now)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        pairs = [(o, g) for o, g in zip(outputs, grads)
                 if isinstance(o, Tensor) and o.requires_grad and g is not None]
        if not pairs:
            raise RuntimeError("none of output has requires_grad=True, this checkpoint() is not necessary")
        backward([o for o, _ in pairs], [g for _, g in pairs])
        return (None,) * 6 + tuple(a.grad if isinstance(a, Tensor) else None for a in inputs)


def checkpoint(function, *args, use_reentrant: bool | None = None, context_fn=noop_context_fn,
               determinism_check: str = "default", debug: bool = False, early_stop: bool = True,
               preserve_rng_state: bool = True, **kwargs):
    """``function(*args, **kwargs)``, recomputed in the backward pass instead of keeping its
    intermediate results (see the module docstring).

    Args:
        function: what to run (a module or any callable of tensors).
        use_reentrant: pass it explicitly (torch warns otherwise, and tracenn too). With True,
            gradients flow only when an input requires grad, and ``function`` takes no keyword
            arguments; False (recommended) has neither restriction.
        context_fn: returns two context managers, entered around the forward run and around the
            recomputation (use_reentrant=False only).
        preserve_rng_state: recompute with the random state of the forward run (default True).
        determinism_check, debug, early_stop: accepted for torch compatibility.
    """
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed explicitly. "
                      "Starting in PyTorch 2.9, calling checkpoint without use_reentrant will raise an "
                      "exception. use_reentrant=False is recommended, but if you need to preserve the "
                      "current default behavior, you can pass use_reentrant=True. Refer to docs for more "
                      "details on the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    if determinism_check not in ("default", "none"):
        raise ValueError(f"determinism_check should be one of ['default', 'none'], but got {determinism_check}")
    if use_reentrant:
        if context_fn is not noop_context_fn or debug is not False:
            raise ValueError("Passing `context_fn` or `debug` is only supported when use_reentrant=False.")
        if kwargs:
            raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    elif (debug if _DEBUG[0] is None else _DEBUG[0]) and context_fn is not noop_context_fn:
        raise ValueError("debug=True is incompatible with non-default context_fn")
    if _dispatch.TRACE[0] is not None or not GRAD.enabled:  # traced, or nothing to save memory for
        return function(*args, **kwargs)
    fwd_context, recompute_context = context_fn()
    fn = function if not kwargs else (lambda *a: function(*a, **kwargs))
    keep = None
    if use_reentrant:
        if not any(isinstance(a, Tensor) and a.requires_grad for a in args):
            warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)
    else:
        keep = _keep()
    return CheckpointFunction.apply(fn, preserve_rng_state, fwd_context, recompute_context, len(args), keep, *args)


_KEEPS: list = []


def _keep() -> Tensor:
    """A 0-d tensor that requires grad (it never receives a gradient), made once."""
    if not _KEEPS:
        from .._api.creation import zeros
        _KEEPS.append(zeros((), requires_grad=True))
    return _KEEPS[0]


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None, **kwargs):
    """Run ``functions`` (an ``nn.Sequential`` or a list of modules/functions) in ``segments``
    checkpointed chunks; the last chunk runs normally, as in torch."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should be "
                      "passed explicitly. In version 2.9 we will raise an exception if use_reentrant is not "
                      "passed. use_reentrant=False is recommended, but if you need to preserve the current "
                      "default behavior, you can pass use_reentrant=True. Refer to docs for more details on "
                      "the differences between the two variants.", stacklevel=2)
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    from ..nn.modules.container import Sequential
    if isinstance(functions, Sequential):
        functions = list(functions.children())

    def run_function(start, end, functions):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x
        return forward

    segment_size = len(functions) // segments
    end = -1
    for start in range(0, segment_size * (segments - 1), segment_size):
        end = start + segment_size - 1
        input = checkpoint(run_function(start, end, functions), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)
    return run_function(end + 1, len(functions) - 1, functions)(input)


# ---- torch.utils.checkpoint's other public names ----------------------------------------------------

class CheckpointError(RuntimeError):
    """torch's error for a recomputation that does not match the forward run."""


class CheckpointPolicy(enum.Enum):
    """What selective checkpointing does with an op's output (torch's values): ``MUST_SAVE``/
    ``PREFER_SAVE`` keep it, ``MUST_RECOMPUTE``/``PREFER_RECOMPUTE`` recompute it in backward,
    ``*_CPU_OFFLOAD`` keep it on the host. tracenn recomputes every op (see the module docstring)."""
    MUST_SAVE = 0
    PREFER_SAVE = 1
    MUST_RECOMPUTE = 2
    PREFER_RECOMPUTE = 3
    MUST_CPU_OFFLOAD = 4
    PREFER_CPU_OFFLOAD = 5


class SelectiveCheckpointContext:
    """The ``ctx`` torch passes to a selective-checkpoint policy function."""

    def __init__(self, *, is_recompute, op_output=None) -> None:
        self.is_recompute = is_recompute
        self.op_output = op_output


class _SelectiveContext(contextlib.nullcontext):
    """One of the two contexts :func:`create_selective_checkpoint_contexts` returns: it carries
    the policy; entering it changes nothing in tracenn."""

    def __init__(self, policy_fn, allow_cache_entry_mutation, recompute):
        super().__init__()
        self.policy_fn, self.allow_cache_entry_mutation = policy_fn, allow_cache_entry_mutation
        self.is_recompute = recompute


def create_selective_checkpoint_contexts(policy_fn_or_list, allow_cache_entry_mutation=False):
    """torch's ``context_fn`` helper for selective checkpointing: ``(forward context, recompute
    context)`` for ``checkpoint(fn, *args, use_reentrant=False, context_fn=functools.partial(
    create_selective_checkpoint_contexts, policy))``.

    ``policy_fn_or_list``: a function ``policy_fn(ctx, op, *args, **kwargs) -> CheckpointPolicy``
    (or bool), or a list of ops to save (tracenn's op records, ``tracenn.ops.OPS[name]``: tracenn
    has no aten ops). It is validated as torch validates it; the gradients are those of plain
    checkpointing, which are those of no checkpointing (see the module docstring).

    >>> import functools, tracenn
    >>> from tracenn.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts
    >>> policy = lambda ctx, op, *args, **kwargs: CheckpointPolicy.PREFER_RECOMPUTE
    >>> x = tracenn.randn(3, requires_grad=True)
    >>> y = checkpoint(tracenn.sin, x, use_reentrant=False,
    ...                context_fn=functools.partial(create_selective_checkpoint_contexts, policy))
    >>> y.sum().backward()
    """
    if isinstance(policy_fn_or_list, list):
        from ..ops import OPS
        records = {id(r) for r in OPS.values()}
        for op in policy_fn_or_list:
            if id(op) not in records:
                raise ValueError(f"Expected op in `op_list` to be an OpOverload but got: {op} of type {type(op)}. "
                                 "tracenn's ops are its op records: tracenn.ops.OPS['matmul'] and the like.")
        ops = list(policy_fn_or_list)

        def policy_fn(ctx, op, *args, **kwargs):
            return CheckpointPolicy.MUST_SAVE if op in ops else CheckpointPolicy.PREFER_RECOMPUTE
    elif callable(policy_fn_or_list):
        policy_fn = policy_fn_or_list
    else:
        raise TypeError("policy_fn_or_list must be either a function or a list of ops.")
    return (_SelectiveContext(policy_fn, allow_cache_entry_mutation, False),
            _SelectiveContext(policy_fn, allow_cache_entry_mutation, True))


_EARLY_STOP = [True]
_DEBUG = [None]


@contextlib.contextmanager
def set_checkpoint_early_stop(enable: bool):
    """Within it, checkpoint's recomputation stops (``True``, torch's default) or not once every
    saved tensor is recomputed. tracenn recomputes the segment whole either way (same gradients);
    the flag is kept for torch compatibility."""
    prev, _EARLY_STOP[0] = _EARLY_STOP[0], enable
    try:
        yield
    finally:
        _EARLY_STOP[0] = prev


@contextlib.contextmanager
def set_checkpoint_debug_enabled(enabled: bool | None):
    """Within it, ``checkpoint``'s ``debug`` is ``enabled`` (None: each call's own argument), as
    torch's. tracenn's recomputation has no operator trace to print; ``debug`` only keeps torch's
    check that it is not combined with a custom ``context_fn``."""
    prev, _DEBUG[0] = _DEBUG[0], enabled
    try:
        yield
    finally:
        _DEBUG[0] = prev


def detach_variable(inputs):
    """The tensors of the tuple ``inputs`` detached, each keeping its ``requires_grad`` (torch's)."""
    if not isinstance(inputs, tuple):
        raise RuntimeError(f"Only tuple of tensors is supported. Got Unsupported input type: {type(inputs).__name__}")
    return _detached(inputs)


def check_backward_validity(inputs) -> None:
    """Warn, as torch's, when no tensor among ``inputs`` requires grad."""
    if not any(inp.requires_grad for inp in inputs if isinstance(inp, Tensor)):
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None", stacklevel=2)


class DefaultDeviceType:
    """The device type whose random state checkpointing saves when no tensor says (torch's):
    the current accelerator's, else ``"cpu"``."""

    _default_device_type: str | None = None

    @staticmethod
    def set_device_type(device: str = "cuda") -> None:
        DefaultDeviceType._default_device_type = device

    @staticmethod
    def get_device_type() -> str:
        if not DefaultDeviceType._default_device_type:
            from .. import accelerator
            acc = accelerator.current_accelerator(True)
            DefaultDeviceType._default_device_type = acc.type if acc is not None else "cpu"
        return DefaultDeviceType._default_device_type


def get_device_states(*args):
    """``(device ids, random states)`` of the accelerator devices the tensors in ``args`` are on
    (torch's; CPU tensors add nothing)."""
    import jax
    ids = []
    for a in jax.tree_util.tree_leaves(args, is_leaf=lambda v: isinstance(v, Tensor)):
        if isinstance(a, Tensor) and a.device.type not in ("cpu", "meta"):
            ids.append(a.get_device())
    if not ids:
        return [], []
    from .. import cuda
    return ids, [cuda.get_rng_state(i) for i in ids]


def set_device_states(devices, states, *, device_type=None) -> None:
    """Restore the random states :func:`get_device_states` returned (torch's)."""
    if device_type is None:
        device_type = DefaultDeviceType.get_device_type()
    if device_type in ("meta", "cpu") and not devices:
        return
    from .. import cuda
    for device, state in zip(devices, states):
        cuda.set_rng_state(state, device)
