"""Poisson, Binomial, Geometric and NegativeBinomial, as torch.distributions'.

Each samples in one dispatch, eagerly and inside ``tracenn.compile`` alike: Poisson and Binomial
through the ``tracenn.poisson`` and ``tracenn.binomial`` primitives (as torch's), Geometric by
inverting its cdf (one uniform each), NegativeBinomial as a Poisson of gamma-distributed rates
(as torch's).
"""
from __future__ import annotations

import numbers

from ..autograd.grad_mode import no_grad
from ..random import _binomial, _poisson
from ..size import Size
from . import constraints
from ._dists import _BinaryParams, _Lazy, broadcast_all
from .distribution import Distribution, _eager
from .exp_family import ExponentialFamily

__all__ = ["Poisson", "Binomial", "Geometric", "NegativeBinomial"]


def _given_probs(probs, logits):
    """torch's probs-xor-logits check: True when ``probs`` is the one given."""
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")
    return probs is not None


def _clamp_by_zero(x):
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


class Poisson(ExponentialFamily):
    """The Poisson distribution with ``rate``.

    >>> import tracenn
    >>> Poisson(tracenn.tensor([1.0, 4.0])).log_prob(tracenn.tensor([0.0, 2.0]))
    tensor([-1.0000, -1.9206])
    """
    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        batch_shape = Size() if isinstance(rate, numbers.Number) else self.rate.size()
        super().__init__(batch_shape, Size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=Size()):
        """``tracenn.poisson`` of the rates, broadcast to the sample's shape in the same dispatch."""
        with no_grad():
            return _poisson(self.rate.detach(), tuple(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        rate, value = broadcast_all(self.rate, value)
        return tracenn.xlogy(value, rate) - rate - (value + 1).lgamma()

    @property
    def _natural_params(self):
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()


class Binomial(_BinaryParams, Distribution):
    """The number of successes in ``total_count`` trials with success ``probs`` (or ``sigmoid(logits)``)."""
    arg_constraints = {"total_count": constraints.nonnegative_integer, "probs": constraints.unit_interval,
                       "logits": constraints.real}
    has_enumerate_support = True

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if _given_probs(probs, logits):
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.type_as(self.probs)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.type_as(self.logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.size(), Size(), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @property
    def mean(self):
        return self.total_count * self.probs

    @property
    def mode(self):
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        """``tracenn.binomial`` of the counts and probabilities, broadcast to the sample's shape in
        the same dispatch."""
        with no_grad():
            return _binomial(self.total_count.detach(), self.probs.detach(), tuple(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        n, k = self.total_count, value
        normalize_term = n * _clamp_by_zero(self.logits) + n * (-self.logits.abs()).exp().log1p() - (n + 1).lgamma()
        return k * self.logits - (k + 1).lgamma() - (n - k + 1).lgamma() - normalize_term

    def entropy(self):
        total_count = int(self.total_count.max())
        if not self.total_count.min() == total_count:
            raise NotImplementedError("Inhomogeneous total count not supported by `entropy`.")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand=True):
        import tracenn
        total_count = int(self.total_count.max())
        if not self.total_count.min() == total_count:
            raise NotImplementedError("Inhomogeneous total count not supported by `enumerate_support`.")
        values = tracenn.arange(1 + total_count, dtype=self._param.dtype, device=self._param.device)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + tuple(self._batch_shape)) if expand else values


class Geometric(_BinaryParams, Distribution):
    """The number of failures before the first success, success ``probs`` (or ``sigmoid(logits)``)."""
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        if _given_probs(probs, logits):
            (self.probs,) = broadcast_all(probs)
            param, scalar = self.probs, isinstance(probs, numbers.Number)
        else:
            (self.logits,) = broadcast_all(logits)
            param, scalar = self.logits, isinstance(logits, numbers.Number)
        super().__init__(Size() if scalar else param.size(), Size(), validate_args=validate_args)
        if self._validate_args and probs is not None and _eager() and not bool((self.probs > 0).all()):
            value = self.probs
            raise ValueError(f"Expected parameter probs ({type(value).__name__} of shape {tuple(value.shape)}) of "
                             f"distribution {self!r} to be positive but found invalid values:\n{value[~(value > 0)]}")

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        import tracenn
        return tracenn.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=Size()):
        import jax.numpy as jnp

        import tracenn
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            probs = self.probs.detach()
            tiny = float(jnp.finfo(probs._value.dtype).tiny)
            u = tracenn.rand(shape, dtype=probs.dtype, device=probs.device).clamp(min=tiny)
            return (u.log() / (-probs).log1p()).floor()

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(value, self.probs)
        probs = tracenn.where((probs == 1) & (value == 0), 0.0, probs)  # 0 * log(0) is 0 there
        return value * (-probs).log1p() + self.probs.log()

    def entropy(self):
        import tracenn.nn.functional as F
        return F.binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs


class NegativeBinomial(_BinaryParams, Distribution):
    """The number of successes before ``total_count`` failures, success ``probs`` (or ``sigmoid(logits)``).

    >>> import tracenn
    >>> NegativeBinomial(3.0, probs=tracenn.tensor([0.5])).log_prob(tracenn.tensor([2.0]))
    tensor([-1.6740])
    """
    arg_constraints = {"total_count": constraints.greater_than_eq(0), "probs": constraints.half_open_interval(0.0, 1.0),
                       "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, total_count, probs=None, logits=None, validate_args=None):
        if _given_probs(probs, logits):
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.type_as(self.probs)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.type_as(self.logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.size(), validate_args=validate_args)

    @property
    def param_shape(self):
        return self._param.size()

    @property
    def mean(self):
        return self.total_count * self.logits.exp()

    @property
    def mode(self):
        return ((self.total_count - 1) * self.logits.exp()).floor().clamp(min=0.0)

    @property
    def variance(self):
        return self.mean / (-self.logits).sigmoid()

    @_Lazy
    def _gamma(self):
        from ._gamma import Gamma
        return Gamma(concentration=self.total_count, rate=(-self.logits).exp(), validate_args=False)

    def sample(self, sample_shape=Size()):
        import tracenn
        with no_grad():
            return tracenn.poisson(self._gamma.sample(sample_shape))

    def log_prob(self, value):
        import tracenn.nn.functional as F
        if self._validate_args:
            self._validate_sample(value)
        log_unnormalized_prob = self.total_count * F.logsigmoid(-self.logits) + value * F.logsigmoid(self.logits)
        log_normalization = -(self.total_count + value).lgamma() + (1.0 + value).lgamma() + self.total_count.lgamma()
        log_normalization = log_normalization.masked_fill(self.total_count + value == 0.0, 0.0)
        return log_unnormalized_prob - log_normalization
