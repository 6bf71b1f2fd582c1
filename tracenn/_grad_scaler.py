"""``GradScaler``: loss scaling for float16 training, as ``torch.amp.GradScaler``.

float16 gradients underflow to zero below ~6e-8. The scaler multiplies the loss by a large factor
before ``backward()`` (``scaler.scale(loss)``), divides the gradients by it before the optimizer
uses them (``scaler.step(optimizer)``, or ``scaler.unscale_(optimizer)`` first to clip them), and
skips the optimizer's step when a gradient came out inf or NaN, halving the factor
(``scaler.update()``); after ``growth_interval`` good steps in a row it doubles it again. bfloat16
has float32's range and needs no scaler.

Under ``tracenn.compile``, a training step with the whole AMP recipe inside (``scale``,
``backward``, ``step``, ``update``) is one program: the skipped step is a ``where`` between the old
and the new parameters and optimizer state (no host round trip to read the inf check), and the
scale and growth tracker are state of the program. A step whose optimizer has not made its state
yet runs eagerly (whether that first step happens at all depends on the inf check, and a skipped
one must leave no state behind, as in torch); the program is compiled once the state exists.
"""
from __future__ import annotations

import contextlib
import warnings
from collections import abc, defaultdict
from enum import Enum

import jax
import jax.numpy as jnp

from . import _dispatch
from . import dtypes as _dt
from .autograd.grad_mode import no_grad
from .errors import UnsupportedError
from .tensor import Tensor

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_optimizer_state() -> dict:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


class EagerCall(UnsupportedError):
    """Raised while tracing a step whose call must run eagerly (the optimizer's first step under a
    GradScaler): the runtime runs that call eagerly, without the fallback warning."""
    quiet = True


class GradScaler:
    """Scale the loss, unscale the gradients, skip steps with inf/NaN gradients (torch's AMP recipe).

    Args:
        device (str): ``"cuda"`` (default, as torch; disabled with a warning when no GPU is
            visible) or ``"cpu"``.
        init_scale (float): the first scale factor (default 2.**16).
        growth_factor (float): multiplies the scale after ``growth_interval`` steps in a row
            without inf/NaN gradients (default 2.0; must be > 1).
        backoff_factor (float): multiplies the scale after a step with inf/NaN gradients (default
            0.5; must be < 1).
        growth_interval (int): default 2000.
        enabled (bool): False makes ``scale``/``unscale_``/``update`` no-ops and ``step`` a plain
            ``optimizer.step()``.

    >>> import tracenn
    >>> w = tracenn.nn.Parameter(tracenn.tensor([1.0, 2.0]))
    >>> opt = tracenn.optim.SGD([w], lr=0.1)
    >>> scaler = tracenn.amp.GradScaler("cpu", init_scale=1024.0)
    >>> scaler.scale((w * w).sum()).backward()
    >>> w.grad                                  # scaled: 1024 * 2w
    tensor([2048., 4096.])
    >>> scaler.step(opt); scaler.update()
    >>> w.grad, w                               # unscaled before the step
    (tensor([2., 4.]), Parameter containing:
    tensor([0.8000, 1.6000], requires_grad=True))
    >>> scaler.get_scale()
    1024.0
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        self._enabled = enabled
        if device == "cuda" and enabled:
            from .cuda import is_available
            if not is_available():
                warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  Disabling.",
                              stacklevel=2)
                self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale: Tensor | None = None
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker: Tensor | None = None
            self._per_optimizer_states: dict = defaultdict(_fresh_optimizer_state)

    # ---- the recipe --------------------------------------------------------------------------

    def _check_scale_growth_tracker(self, funcname: str):
        fix = "This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration."
        if self._scale is None:
            raise AssertionError(f"Attempted {funcname} but _scale is None.  " + fix)
        if self._growth_tracker is None:
            raise AssertionError(f"Attempted {funcname} but _growth_tracker is None.  " + fix)
        return self._scale, self._growth_tracker

    def _lazy_init_scale_growth_tracker(self, dev) -> None:
        from ._api.creation import full
        if _dispatch.TRACE[0] is not None:  # made in a trace, it would not be the program's state
            raise EagerCall("GradScaler: the first scale() makes the scale tensor, so that call runs eagerly")
        self._scale = full((), self._init_scale, dtype=_dt.float32, device=dev)
        self._growth_tracker = full((), self._init_growth_tracker, dtype=_dt.int32, device=dev)

    def scale(self, outputs):
        """``outputs`` (a tensor, or an iterable of them, nested) times the current scale factor."""
        if not self._enabled:
            return outputs

        def apply(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker(val.device)
                return val * self._scale.to(val.device)
            if isinstance(val, abc.Iterable):
                it = map(apply, val)
                return type(val)(it) if isinstance(val, (list, tuple)) else it
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")

        return apply(outputs)

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale factor, in place, and record whether any
        is inf or NaN. Call it before changing the gradients (``clip_grad_norm_``); ``step`` then
        does not unscale them again."""
        if not self._enabled:
            return
        self._check_scale_growth_tracker("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if any(g.dtype == _dt.float16 for g in grads):
            raise ValueError("Attempting to unscale FP16 gradients.")
        with no_grad(), _update_phase():
            inv_scale = self._scale.double().reciprocal().float()
            if _dispatch.TRACE[0] is None:
                found_inf = _unscale_eager(grads, inv_scale)
            else:
                found_inf = _unscale_traced(grads, inv_scale)
        state["found_inf_per_device"] = {self._scale.device: found_inf}
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """Unscale ``optimizer``'s gradients (unless ``unscale_`` did) and run ``optimizer.step()``
        unless one of them is inf or NaN. Returns what ``optimizer.step`` returned, or None."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is enabled.")
        self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        if len(state["found_inf_per_device"]) == 0:
            raise AssertionError("No inf checks were recorded for this optimizer.")
        if _dispatch.TRACE[0] is None:
            found = _sum(list(state["found_inf_per_device"].values()))
            retval = None if found.item() else optimizer.step(*args, **kwargs)
        else:
            with _update_phase():
                found = _sum(list(state["found_inf_per_device"].values()))
                retval = _step_unless(found, optimizer, args, kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale=None) -> None:
        """The next scale factor: ``new_scale`` if given; else the current one times
        ``backoff_factor`` if this iteration found inf/NaN gradients, times ``growth_factor`` after
        ``growth_interval`` iterations in a row without, unchanged otherwise."""
        if not self._enabled:
            return
        scale, tracker = self._check_scale_growth_tracker("update")
        with no_grad(), _update_phase():
            if new_scale is not None:
                if isinstance(new_scale, float):
                    scale.fill_(new_scale)
                else:
                    reason = ("new_scale should be a float or a 1-element torch.cuda.FloatTensor or "
                              "torch.FloatTensor with requires_grad=False.")
                    if new_scale.device.type != self._device or new_scale.numel() != 1 \
                            or new_scale.requires_grad:
                        raise AssertionError(reason)
                    scale.copy_(new_scale.reshape(()))
            else:
                found_infs = [f.to(scale.device) for st in self._per_optimizer_states.values()
                              for f in st["found_inf_per_device"].values()]
                if len(found_infs) == 0:
                    raise AssertionError("No inf checks were recorded prior to update.")
                _update_scale_(scale, tracker, _sum(found_infs), self._growth_factor, self._backoff_factor,
                               self._growth_interval)
        self._per_optimizer_states = defaultdict(_fresh_optimizer_state)

    # ---- options and state ---------------------------------------------------------------------

    def get_scale(self) -> float:
        """The current scale factor (1.0 when disabled). Reads the device: avoid it in a hot loop."""
        if self._enabled:
            return self._init_scale if self._scale is None else float(self._scale.item())
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return self._init_growth_tracker if self._growth_tracker is None else int(self._growth_tracker.item())
        return 0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict:
        """``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval`` and
        ``_growth_tracker`` as Python numbers (empty when disabled), as torch's."""
        if self._enabled:
            return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                    "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                    "_growth_tracker": self._get_growth_tracker()}
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._init_scale = state_dict["scale"]
        if self._scale is not None:
            self._scale.fill_(state_dict["scale"])
        self._growth_factor = state_dict["growth_factor"]
        self._backoff_factor = state_dict["backoff_factor"]
        self._growth_interval = state_dict["growth_interval"]
        self._init_growth_tracker = state_dict["_growth_tracker"]
        if self._growth_tracker is not None:
            self._growth_tracker.fill_(state_dict["_growth_tracker"])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise AssertionError("A GradScaler instance may only be pickled at the beginning of an "
                                     "iteration, or at the end after scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # ---- for tracenn.compile -------------------------------------------------------------------

    def _compile_state(self) -> dict:
        """The tensors a compiled step reads and writes, by attribute name (none before the first
        ``scale``)."""
        if not self._enabled or self._scale is None:
            return {}
        return {"_scale": self._scale, "_growth_tracker": self._growth_tracker}

    def _compile_key(self) -> tuple:
        """What a compiled step bakes in: a change recompiles."""
        if not self._enabled:
            return (False,)
        return (True, self._growth_factor, self._backoff_factor, self._growth_interval,
                id(self._scale), id(self._growth_tracker))

    def _trace_done(self) -> bool:
        """After tracing a step: forget the iteration's Python state (a compiled step replays only
        the program, and no traced value may stay on the object). True if the step left an
        iteration unfinished (``step`` without ``update``), which a program cannot replay."""
        if not self._enabled:
            return False
        pending = any(st["found_inf_per_device"] for st in self._per_optimizer_states.values())
        self._per_optimizer_states = defaultdict(_fresh_optimizer_state)
        return pending


@contextlib.contextmanager
def _update_phase():
    """While tracing, record the scaler's work in the graph's update section (as optimizer.step)."""
    tracer = _dispatch.TRACE[0]
    if tracer is None:
        yield
        return
    prev, tracer.phase = tracer.phase, "update"
    try:
        yield
    finally:
        tracer.phase = prev


def _sum(ts):
    out = ts[0]
    for t in ts[1:]:
        out = out + t
    return out


def _unscale_traced(grads, inv_scale) -> Tensor:
    """Each gradient times ``inv_scale`` in place (in float32 at least, as torch's kernel), and
    1.0 if any is inf or NaN, else 0.0: ops, so a compiled step records them."""
    from ._api.math import isfinite
    bad = None
    for g in grads:
        g.copy_(g.float() * inv_scale if g.dtype == _dt.bfloat16 else g * inv_scale)
        nonfinite = isfinite(g).logical_not().any()
        bad = nonfinite if bad is None else bad.logical_or(nonfinite)
    return bad.float() if bad is not None else inv_scale.new_zeros(())


def _unscale_eager(grads, inv_scale) -> Tensor:
    """:func:`_unscale_traced` as one jitted program for all the gradients (torch's foreach
    kernel): 4 ops per parameter cost ~1.5 ms a step for a 3-layer MLP."""
    from .optim.optimizer import write_back
    if not grads:
        return inv_scale.new_zeros(())
    new, bad = _UNSCALE([g._value for g in grads], inv_scale._value)
    for g, v in zip(grads, new):
        write_back(g, Tensor._wrap(v))
    return Tensor._wrap(bad)


def _unscale_arrays(grads, inv):
    new = [(g.astype(jnp.promote_types(g.dtype, jnp.float32)) * inv).astype(g.dtype) for g in grads]
    bad = jnp.stack([jnp.logical_not(jnp.isfinite(n)).any() for n in new]).any()
    return new, bad.astype(jnp.float32)


_UNSCALE = jax.jit(_unscale_arrays)


def _update_scale_(scale, tracker, found_inf, growth_factor, backoff_factor, growth_interval) -> None:
    """torch's ``_amp_update_scale_``, as tensor ops (so a compiled step records it)."""
    from ._api.math import isfinite, where
    found = found_inf > 0
    successful = tracker + 1
    grow = successful == growth_interval
    grown = scale * growth_factor
    grown = where(grow & isfinite(grown), grown, scale)
    new_scale = where(found, scale * backoff_factor, grown)
    new_tracker = where(found | grow, tracker.new_zeros(()), successful)
    scale.copy_(new_scale)
    tracker.copy_(new_tracker)


def _step_unless(found, optimizer, args, kwargs):
    """In a trace: ``optimizer.step()`` recorded, then every parameter and state tensor it changed
    set back to its old value where ``found`` (the inf check) is nonzero."""
    from ._api.math import where
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    state = optimizer.state
    had = {id(p): set(state[p]) if p in state else None for p in params}
    tensors = list(params) + [t for p in params for t in state.get(p, {}).values() if isinstance(t, Tensor)]
    old = [(t, t._value) for t in tensors]
    retval = optimizer.step(*args, **kwargs)
    made = [p for p in params if set(state.get(p, ())) != (had[id(p)] or set())]
    if made:  # a first step: forget what it made (traced values), and run the call eagerly
        for p in made:
            if had[id(p)] is None:
                state.pop(p, None)
            else:
                for k in set(state[p]) - had[id(p)]:
                    del state[p][k]
        raise EagerCall("GradScaler: the optimizer's first step makes its state, and is skipped when a "
                        "gradient is inf/NaN (then no state is made): that call runs eagerly")
    skip = found > 0
    with no_grad():
        for t, before in old:
            if t._value is not before:
                chosen = where(skip, Tensor._wrap(before), t)
                # Written over the old value, not the step's: a parameter's in-place write is
                # ``old + (new - old)`` in a trace (it keeps old's gradient path), and over a step
                # that made inf/NaN it would stay inf/NaN even where the step is skipped.
                t._value = before
                t.copy_(chosen)
    return retval
