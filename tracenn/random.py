"""The random number generator: ``manual_seed``, ``Generator``, and the random tensor functions.

A Generator is a JAX PRNG key plus a counter; each random op folds the next counter value into
the key inside its kernel, so a draw is one dispatch and a seed reproduces the whole stream.
tracenn's streams are not torch's (different algorithms): the same seed gives the same numbers
in tracenn, not the numbers torch would draw.
"""
from __future__ import annotations

import contextlib
import numbers

import jax.numpy as jnp
import numpy as np

from . import dtypes as _dt
from . import _dispatch
from ._api._common import host_values, tensor_arg
from ._api.math import _torch_name
from ._dispatch import apply
from .errors import DtypeError
from .ops import OPS
from .tensor import Tensor

_DEFAULT_SEED = 67280421310721  # torch's default seed


class Generator:
    """A seeded source of random numbers (``tracenn.Generator().manual_seed(0)``)."""

    def __init__(self, device="cpu"):
        from .device import device as _device
        self.device = _device(device)
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed: int) -> "Generator":
        seed = int(seed) & 0xFFFFFFFFFFFFFFFF  # torch keeps 64 bits: manual_seed(-1) is 2**64 - 1
        self._seed = seed
        # threefry's key for a 64-bit seed, (high word, low word): jax.random.PRNGKey's, built here
        # because PRNGKey refuses seeds of 2**63 and above (it converts to a signed int64)
        self._key = jnp.asarray(np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32))
        self._counter = 0
        return self

    def seed(self) -> int:
        """Re-seed from a non-deterministic source and return the seed."""
        s = int(np.random.SeedSequence().entropy) & 0xFFFFFFFFFFFFFFFF
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> Tensor:
        """The state as a uint8 tensor (seed and counter), restorable with ``set_state``."""
        raw = np.array([self._seed & 0xFFFFFFFFFFFFFFFF, self._counter], dtype=np.uint64)
        return Tensor._wrap(jnp.asarray(raw.view(np.uint8)))

    def set_state(self, state: Tensor) -> "Generator":
        raw = np.asarray(state._value).astype(np.uint8)
        if raw.size != 16:
            raise RuntimeError(f"set_state: expected a state tensor of 16 bytes from get_state(), got {raw.size}")
        seed, counter = raw.view(np.uint64)
        self.manual_seed(int(seed))
        self._counter = int(counter)
        return self

    def _next(self):
        """The key and counter for one draw: arrays eagerly; while compiling, the symbolic key and
        counter inputs of the compiled program (so each compiled call draws fresh numbers); in a
        tracenn.func transform, the transform's (its program's inputs, and vmap's randomness)."""
        if _dispatch.TRACE[0] is not None:
            return _dispatch.TRACE[0].rng(self)
        if _dispatch.FUNC[0] is not None:
            return _dispatch.FUNC[0].random(self)
        c = self._counter
        self._counter = c + 1
        return self._key, c


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator (``tracenn.manual_seed(0)``) and return it."""
    if not isinstance(seed, numbers.Integral):
        raise TypeError(f"manual_seed expected an int seed, got {type(seed).__name__}")
    return default_generator.manual_seed(seed)


def seed() -> int:
    return default_generator.seed()


def initial_seed() -> int:
    return default_generator.initial_seed()


def get_rng_state() -> Tensor:
    return default_generator.get_state()


def set_rng_state(state: Tensor) -> None:
    default_generator.set_state(state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type=None):
    """Fork the random number generator: on exit its state (seed and position) is what it was on
    entry, so draws inside the block do not change the numbers drawn after it.

    tracenn has one generator for all devices, so ``devices`` and ``device_type`` only choose what
    torch would fork; the one generator is always restored. ``enabled=False`` does nothing.

    >>> import tracenn
    >>> _ = tracenn.manual_seed(0)
    >>> with tracenn.random.fork_rng():
    ...     _ = tracenn.rand(3)
    >>> a = tracenn.rand(2)
    >>> _ = tracenn.manual_seed(0)
    >>> bool((tracenn.rand(2) == a).all())
    True
    """
    if device_type == "meta" or not enabled:
        yield
        return
    if devices is not None:
        list(devices)  # (torch reads an iterable of device ids; there is nothing per device to save)
    if _dispatch.TRACE[0] is not None or _dispatch.FUNC[0] is not None:
        from .errors import UnsupportedError
        raise UnsupportedError(
            f"{_caller}() inside a compiled function or a tracenn.func transform is not supported: the "
            "program draws from the generator state it is called with, which a fork inside it cannot "
            "restore; this call runs eagerly instead (or fork outside the compiled function).")
    state = default_generator.get_state()
    try:
        yield
    finally:
        default_generator.set_state(state)


def _gen(generator):
    return default_generator if generator is None else generator


def _draw(opname, shape, dtype, params, generator, device=None, requires_grad=False):
    from ._api._common import shape_arg
    shape = shape_arg(shape) if not isinstance(shape, tuple) or any(not isinstance(s, int) for s in shape) else shape
    key, c = _gen(generator)._next()
    t = apply(OPS[opname], (key, c, *params), (tuple(shape), dtype.np))
    if device is not None:
        from ._api.creation import place
        t._value = place(t._value, device)
    if requires_grad:
        t.requires_grad_()
    return t


def _float_dtype(dtype):
    d = _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)
    if not d.is_floating_point:
        raise RuntimeError(f"\"check_uniform_bounds\" not implemented for '{d.name}': use a floating dtype")
    return d


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    return _draw("uniform", size, _float_dtype(dtype), (0.0, 1.0), generator, device, requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    return _draw("normal", size, _float_dtype(dtype), (0.0, 1.0), generator, device, requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Integers in [low, high) (``randint(high, size)`` starts at 0); int64 by default."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint() missing required argument 'size'")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if high <= low:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    d = _dt.int64 if dtype is None else _dt.as_dtype(dtype)
    return _draw("randint", tuple(size), d, (int(low), int(high)), generator, device, requires_grad)


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    d = _dt.int64 if dtype is None else _dt.as_dtype(dtype)
    key, c = _gen(generator)._next()
    return apply(OPS["randperm"], (key, c), (int(n), d.np))


def _laid_out_like(input, out, memory_format):
    """``out`` (made with ``input``'s shape) with the strides ``memory_format`` gives it, as the
    other ``*_like`` functions (default preserve_format: ``input``'s own when dense)."""
    if memory_format is not None or getattr(input, "_strides", None) is not None:
        from ._api.formats import copy_strides, format_name
        out._strides = copy_strides(input, format_name(memory_format, "rand_like"))
    return out


def like_device(input, device=None):
    """Where a ``*_like`` draw (or a mask for ``input``) goes: ``device``, else ``input``'s device, as
    torch; None (the default device) when ``input`` is there, so a draw is not placed anew."""
    if device is not None:
        return device
    from . import _meta, get_default_device
    v = input._value
    if _meta.is_meta(v):
        return "meta"
    if _dispatch.abstract(v):  # traced (compile, a transform): the program places its draws
        return None
    d = input.device
    return None if d == get_default_device() else d


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None, memory_format=None):
    device = like_device(input, device)
    return _laid_out_like(input, rand(tuple(input.shape), dtype=dtype or input.dtype, device=device,
                                      requires_grad=requires_grad, generator=generator), memory_format)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None, memory_format=None):
    device = like_device(input, device)
    return _laid_out_like(input, randn(tuple(input.shape), dtype=dtype or input.dtype, device=device,
                                       requires_grad=requires_grad, generator=generator), memory_format)


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    if high is None:
        low, high = 0, low
    device = like_device(input, device)
    return _laid_out_like(input, randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device),
                          memory_format)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad=False):
    """Normal samples; ``mean``/``std`` may be tensors (broadcast) or numbers with ``size``."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        from ._api.shape import broadcast_shapes
        shape = broadcast_shapes(*[t.shape for t in (mean, std) if isinstance(t, Tensor)])
        ref = mean if isinstance(mean, Tensor) else std
        z = _draw("normal", tuple(shape), _dt.as_dtype(dtype or ref.dtype), (0.0, 1.0), generator)
        return z * std + mean
    if size is None:
        raise TypeError("normal() with number mean and std needs size=")
    if isinstance(size, int):
        size = (size,)
    return _draw("normal", tuple(size), _float_dtype(dtype), (float(mean), float(std)), generator, device,
                 requires_grad)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples with probability ``input`` (or the scalar ``p``), in input's dtype."""
    key, c = _gen(generator)._next()
    probs = input if p is None else p
    if p is not None:
        from ._api.creation import full
        probs = full(tuple(input.shape), float(p), dtype=_dt.float32)
    return apply(OPS["bernoulli"], (key, c, probs), (input._value.dtype,))


def multinomial(input, num_samples, replacement=False, *, generator=None):
    """``torch.multinomial``: ``num_samples`` category indices per row of the weights ``input``.

    Weights that are not a distribution (a negative, infinite or NaN entry, or a row summing to
    zero) raise torch's error where values can be read (eagerly: one host read of the weights);
    in a compiled program they draw arbitrary indices.

    >>> import tracenn
    >>> tracenn.multinomial(tracenn.tensor([0.0, 1.0]), 2, replacement=True)
    tensor([1, 1])
    """
    if not replacement and num_samples > input.shape[-1]:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    v = host_values(input)
    if v is not None and v.size:
        if (v < 0).any():
            raise RuntimeError("invalid multinomial distribution (encountering probability entry < 0)")
        if not np.isfinite(v).all():
            raise RuntimeError("invalid multinomial distribution (encountering probability entry = infinity or NaN)")
        if (v.sum(-1) <= 0).any():
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    key, c = _gen(generator)._next()
    from ._api.math import div
    from ._api.reduce import sum as _sum
    probs = div(input, _sum(input, -1, keepdim=True))
    return apply(OPS["multinomial"], (key, c, probs), (int(num_samples), bool(replacement)))


def _standard_gamma(input, *, generator=None):
    """``torch._standard_gamma``: one Gamma(``input``, 1) draw per element, in one dispatch.

    Differentiable in ``input`` by implicit reparameterization, as torch's
    ``_standard_gamma_grad``: ``dx/da = -(dF(x; a)/da) / f(x; a)``, ``F`` the regularized lower
    incomplete gamma function (JAX's, differentiated in ``a``: torch's public ``igamma`` has no
    such derivative) and ``f`` the density. It is attached as ``x - (F - F.detach()) / f``: the
    value is ``x``, the gradient the above."""
    if not input.is_floating_point():
        raise RuntimeError(f"_standard_gamma: expected a floating-point tensor of shapes, got {input.dtype}")
    key, c = _gen(generator)._next()
    x = apply(OPS["standard_gamma"], (key, c, input.detach()), ())
    if not input.requires_grad:
        return x
    from .autograd.grad_mode import no_grad
    cdf = apply(OPS["special"], (input, x), ("gammainc_reparam", None))
    with no_grad():
        a = input.detach()
        inv_pdf = ((1 - a) * x.log() + x + a.lgamma()).exp()
    return x - (cdf - cdf.detach()) * inv_pdf


def poisson(input, generator=None):
    """``torch.poisson``: one Poisson(``input``) count per element, in one dispatch.

    Args:
        input: the rates, a floating-point tensor with no negative (or NaN) values.
        generator: the Generator to draw from (default: the global one).

    Returns:
        The counts as floats of ``input``'s dtype and shape. Half-precision rates sample in float32.

    >>> import tracenn
    >>> tracenn.poisson(tracenn.tensor([0.0, 0.0]))
    tensor([0., 0.])
    """
    tensor_arg("poisson", "input", 1, input)
    return _poisson(input, tuple(input.shape), generator)


def _poisson(rate, shape, generator=None):
    """``poisson`` of ``rate`` broadcast to ``shape`` inside the same kernel (Poisson.sample's
    draw). Negative or NaN rates raise torch's error where values can be read (eagerly: one host
    read of the rates); in a compiled program they draw NaN."""
    if not rate.is_floating_point():
        raise NotImplementedError(f"\"poisson_cpu\" not implemented for '{_torch_name(rate._value.dtype)}': rates "
                                  "must be floating-point, e.g. rate.float()")
    v = host_values(rate)
    if v is not None:
        bad = ~(v >= 0)
        if bad.any():
            raise RuntimeError(f"invalid Poisson rate, expected rate to be non-negative, got {v[bad].flat[0]}")
    key, c = _gen(generator)._next()
    return apply(OPS["poisson"], (key, c, rate), (shape,))


def binomial(count, prob, generator=None):
    """``torch.binomial``: one Binomial(``count``, ``prob``) draw (successes in ``count`` trials of
    success probability ``prob``) per element of their broadcast shape, in one dispatch.

    Args:
        count: the numbers of trials, a floating-point tensor.
        prob: the success probabilities, a tensor of ``count``'s dtype (values outside [0, 1] act
            as clamped into it, as torch's sampler).
        generator: the Generator to draw from (default: the global one).

    Returns:
        The counts as floats of ``count``'s dtype. Half precision samples in float32 (torch's CUDA
        kernel takes half precision, its CPU kernel does not).

    >>> import tracenn
    >>> tracenn.binomial(tracenn.tensor([5.0, 3.0]), tracenn.tensor([1.0, 0.0]))
    tensor([5., 0.])
    """
    tensor_arg("binomial", "count", 1, count)
    tensor_arg("binomial", "prob", 2, prob)
    from ._api.shape import broadcast_shapes
    return _binomial(count, prob, tuple(broadcast_shapes(count.shape, prob.shape)), generator)


def _binomial(count, prob, shape, generator=None):
    """``binomial`` with both broadcast to ``shape`` inside the same kernel (Binomial.sample's draw)."""
    name = _torch_name(count._value.dtype)
    if not count.is_floating_point():
        raise ValueError(f"binomial only supports floating-point dtypes for count, got: {name}; "
                         "convert first, e.g. count.float()")
    if prob.dtype != count.dtype:
        raise DtypeError(f"Found dtype {_torch_name(prob._value.dtype)} but expected {name}: binomial's prob "
                         "must have count's dtype, e.g. prob.to(count.dtype)")
    key, c = _gen(generator)._next()
    return apply(OPS["binomial"], (key, c, count, prob), (shape,))


# ---- in-place fills used as Tensor methods ------------------------------------------------------

def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with normal samples (in place)."""
    return self._set_(_draw("normal", tuple(self.shape), self.dtype, (float(mean), float(std)), generator), "normal_")


def uniform_(self, from_=0.0, to=1.0, *, generator=None):
    """Fill with uniform samples from [from_, to) (in place)."""
    return self._set_(_draw("uniform", tuple(self.shape), self.dtype, (float(from_), float(to)), generator), "uniform_")


def bernoulli_(self, p=0.5, *, generator=None):
    key, c = _gen(generator)._next()
    probs = p if isinstance(p, Tensor) else None
    if probs is None:
        from ._api.creation import full
        probs = full(tuple(self.shape), float(p), dtype=_dt.float32)
    return self._set_(apply(OPS["bernoulli"], (key, c, probs), (self._value.dtype,)), "bernoulli_")


def random_(self, from_=0, to=None, *, generator=None):
    if to is None:
        from_, to = 0, from_ if from_ else 2 ** 24
    return self._set_(randint(from_, to, tuple(self.shape), dtype=self.dtype, generator=generator), "random_")


def exponential_(self, lambd=1.0, *, generator=None):
    u = _draw("uniform", tuple(self.shape), self.dtype, (0.0, 1.0), generator)
    from ._api.math import log1p, neg
    return self._set_(neg(log1p(neg(u))) / lambd, "exponential_")
