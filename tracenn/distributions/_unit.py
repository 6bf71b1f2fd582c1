"""Kumaraswamy and ContinuousBernoulli, the remaining torch.distributions families on [0, 1].

Kumaraswamy is a TransformedDistribution of a Uniform, as torch's. ContinuousBernoulli (Loaiza-Ganem
& Cunningham, 2019) is an ExponentialFamily whose normalizer, mean and variance switch to Taylor
expansions for ``probs`` within ``lims`` of 1/2, where the closed forms lose their precision
(torch's ``lims=(0.499, 0.501)``); it samples by inverting its cdf, so ``rsample`` carries gradients.
"""
from __future__ import annotations

import math
import numbers

from ..autograd.grad_mode import no_grad
from ..size import Size
from . import constraints
from ._dists import Uniform, _Lazy, broadcast_all, clamp_probs, logits_to_probs, probs_to_logits
from ._positive import _EULER, _NAN, _rebuilt, _where
from .exp_family import ExponentialFamily
from .transformed import TransformedDistribution
from .transforms import AffineTransform, PowerTransform

__all__ = ["Kumaraswamy", "ContinuousBernoulli"]


def _kumaraswamy_moment(a, b, n):
    arg1 = 1 + n / a
    return b * (arg1.lgamma() + b.lgamma() - (arg1 + b).lgamma()).exp()


class Kumaraswamy(TransformedDistribution):
    """The Kumaraswamy distribution on [0, 1]: ``(1 - U ** (1 / concentration0)) ** (1 / concentration1)``."""
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        import tracenn
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        base_dist = Uniform(tracenn.full_like(self.concentration0, 0), tracenn.full_like(self.concentration0, 1),
                            validate_args=validate_args)
        transforms = [PowerTransform(exponent=self.concentration0.reciprocal()), AffineTransform(loc=1.0, scale=-1.0),
                      PowerTransform(exponent=self.concentration1.reciprocal())]
        super().__init__(base_dist, transforms, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return _rebuilt(self, batch_shape, self.concentration1, self.concentration0)

    @property
    def mean(self):
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        # ((a - 1) / (a b - 1)) ** (1 / a), NaN where a or b is below 1. (torch 2.13 writes this with
        # the parameters swapped and returns NaN everywhere; tracenn returns the mode.)
        a, b = self.concentration1, self.concentration0
        log_mode = ((a - 1).log() - (a * b - 1).log()) / a
        return _where((b < 1) | (a < 1), _NAN, log_mode).exp()

    @property
    def variance(self):
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 2) - self.mean.pow(2)

    def entropy(self):
        t1 = 1 - self.concentration1.reciprocal()
        t0 = 1 - self.concentration0.reciprocal()
        H0 = (self.concentration0 + 1).digamma() + _EULER
        return t0 + t1 * H0 - self.concentration1.log() - self.concentration0.log()


class ContinuousBernoulli(ExponentialFamily):
    """The continuous Bernoulli distribution on [0, 1] with ``probs`` (or ``sigmoid(logits)``): density
    proportional to ``probs ** x * (1 - probs) ** (1 - x)``.

    >>> import tracenn
    >>> ContinuousBernoulli(tracenn.tensor([0.2, 0.8])).log_prob(tracenn.tensor([0.5, 0.5]))
    tensor([-0.0788, -0.0788])
    """
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        from .distribution import _eager
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, numbers.Number)
            (self.probs,) = broadcast_all(probs)
            if validate_args is not None and _eager():  # (before clamping, as torch's)
                if not bool(self.arg_constraints["probs"].check(self.probs).all()):
                    raise ValueError("The parameter probs has invalid values")
            self.probs = clamp_probs(self.probs)
        else:
            is_scalar = isinstance(logits, numbers.Number)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self._lims = lims
        super().__init__(Size() if is_scalar else self._param.size(), validate_args=validate_args)

    @_Lazy
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @_Lazy
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self):
        return self._param.size()

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        return _where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _cont_bern_log_norm(self):
        cut_probs = self._cut_probs()
        below_half = cut_probs <= 0.5
        cut_probs_below_half = _where(below_half, cut_probs, 0.0)
        cut_probs_above_half = _where(cut_probs >= 0.5, cut_probs, 1.0)
        log_norm = ((-cut_probs).log1p() - cut_probs.log()).abs().log() - _where(
            below_half, (-2.0 * cut_probs_below_half).log1p(), (2.0 * cut_probs_above_half - 1.0).log())
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return _where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut_probs = self._cut_probs()
        mus = cut_probs / (2.0 * cut_probs - 1.0) + 1.0 / ((-cut_probs).log1p() - cut_probs.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return _where(self._outside_unstable_region(), mus, taylor)

    @property
    def stddev(self):
        return self.variance.sqrt()

    @property
    def variance(self):
        cut_probs = self._cut_probs()
        variances = (cut_probs * (cut_probs - 1.0) / (1.0 - 2.0 * cut_probs).pow(2)
                     + 1.0 / ((-cut_probs).log1p() - cut_probs.log()).pow(2))
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return _where(self._outside_unstable_region(), variances, taylor)

    def sample(self, sample_shape=Size()):
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=Size()):
        import tracenn
        u = tracenn.rand(tuple(self._extended_shape(sample_shape)), dtype=self.probs.dtype, device=self.probs.device)
        return self.icdf(u)

    def log_prob(self, value):
        import tracenn.nn.functional as F
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        return -F.binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        cut_probs = self._cut_probs()
        cdfs = (cut_probs.pow(value) * (1.0 - cut_probs).pow(1.0 - value) + cut_probs - 1.0) / (2.0 * cut_probs - 1.0)
        unbounded_cdfs = _where(self._outside_unstable_region(), cdfs, value)
        return _where(value <= 0.0, 0.0, _where(value >= 1.0, 1.0, unbounded_cdfs))

    def icdf(self, value):
        cut_probs = self._cut_probs()
        inverted = (((-cut_probs + value * (2.0 * cut_probs - 1.0)).log1p() - (-cut_probs).log1p())
                    / (cut_probs.log() - (-cut_probs).log1p()))
        return _where(self._outside_unstable_region(), inverted, value)

    def entropy(self):
        log_probs0, log_probs1 = (-self.probs).log1p(), self.probs.log()
        return self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm() - log_probs0

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        import tracenn
        out_unst_reg = (x <= self._lims[0] - 0.5) | (x > self._lims[1] - 0.5)
        cut_nat_params = _where(out_unst_reg, x, (self._lims[0] - 0.5) * tracenn.ones_like(x))
        log_norm = cut_nat_params.expm1().abs().log() - cut_nat_params.abs().log()
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return _where(out_unst_reg, log_norm, taylor)
