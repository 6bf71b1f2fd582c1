"""Gamma, Beta, Dirichlet and StudentT, as torch.distributions', with reparameterized samples.

Sampling is ``tracenn._standard_gamma`` (torch's ``_standard_gamma``): one primitive draws the
value (Marsaglia & Tsang's method, vectorized: ``tracenn/ops/random.py``), and the gradient is
implicit reparameterization, as torch's ``_standard_gamma_grad`` (``tracenn/random.py``).

Beta and Dirichlet normalize gamma draws; StudentT divides a normal draw by a chi-square one.
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from ..random import _standard_gamma
from ..size import Size
from . import constraints
from ._dists import broadcast_all
from .distribution import Distribution
from .exp_family import ExponentialFamily

__all__ = ["Gamma", "Beta", "Dirichlet", "StudentT", "Chi2"]


class Gamma(ExponentialFamily):
    """The gamma distribution with shape ``concentration`` and inverse scale ``rate``.

    >>> import tracenn
    >>> Gamma(tracenn.tensor([1.0, 2.0]), tracenn.tensor([1.0, 3.0])).log_prob(tracenn.tensor([1.0, 1.0]))
    tensor([-1.0000, -0.8028])
    """
    _mean_carrier_measure = 0
    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.size(), Size(), validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        value = _standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        return value.clamp(min=float(jnp.finfo(value._value.dtype).tiny))

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        return (tracenn.xlogy(self.concentration, self.rate) + tracenn.xlogy(self.concentration - 1, value)
                - self.rate * value - self.concentration.lgamma())

    def cdf(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        return tracenn.special.gammainc(self.concentration, self.rate * value)

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + c.lgamma() + (1.0 - c) * c.digamma()

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return (x + 1).lgamma() + (x + 1) * (-y.reciprocal()).log()


class Chi2(Gamma):
    """The chi-square distribution with ``df`` degrees of freedom: ``Gamma(df / 2, 1 / 2)``."""
    arg_constraints = {"df": constraints.positive}

    def __init__(self, df, validate_args=None):
        (df,) = broadcast_all(df)
        super().__init__(0.5 * df, 0.5, validate_args=validate_args)

    @property
    def df(self):
        return self.concentration * 2


def _dirichlet_log_prob(concentration, value):
    import tracenn
    return (tracenn.xlogy(concentration - 1.0, value).sum(-1) + concentration.sum(-1).lgamma()
            - concentration.lgamma().sum(-1))


def _dirichlet_entropy(concentration):
    k = concentration.size(-1)
    a0 = concentration.sum(-1)
    return (concentration.lgamma().sum(-1) - a0.lgamma() - (k - a0) * a0.digamma()
            - ((concentration - 1.0) * concentration.digamma()).sum(-1))


class Dirichlet(ExponentialFamily):
    """The Dirichlet distribution on the simplex, with ``concentration`` along the last dim."""
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        if concentration.dim() < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(concentration.shape[:-1], concentration.shape[-1:], validate_args=validate_args)

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, True)

    @property
    def mode(self):
        import tracenn
        import tracenn.nn.functional as F
        concentrationm1 = (self.concentration - 1).clamp(min=0.0)
        mode = concentrationm1 / concentrationm1.sum(-1, True)
        # all concentrations below 1: torch puts the mode at the vertex of the largest
        corner = F.one_hot(mode.argmax(dim=-1), concentrationm1.shape[-1]).to(mode.dtype)
        return tracenn.where((self.concentration < 1).all(dim=-1, keepdim=True), corner, mode)

    @property
    def variance(self):
        con0 = self.concentration.sum(-1, True)
        return self.concentration * (con0 - self.concentration) / (con0.pow(2) * (con0 + 1))

    def rsample(self, sample_shape=Size()):
        shape = tuple(self._extended_shape(sample_shape))
        gammas = _standard_gamma(self.concentration.expand(shape))
        tiny = float(jnp.finfo(gammas._value.dtype).tiny)
        return (gammas / gammas.sum(-1, True)).clamp(min=tiny, max=1 - float(jnp.finfo(gammas._value.dtype).eps))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return _dirichlet_log_prob(self.concentration, value)

    def entropy(self):
        return _dirichlet_entropy(self.concentration)

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return x.lgamma().sum(-1) - x.sum(-1).lgamma()


class Beta(ExponentialFamily):
    """The beta distribution on [0, 1] with ``concentration1`` (alpha) and ``concentration0`` (beta)."""
    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        import tracenn
        c1, c0 = broadcast_all(concentration1, concentration0)
        self._concentrations = tracenn.stack([c1, c0], -1)  # torch's Dirichlet([alpha, beta]) parameter
        super().__init__(c1.size(), Size(), validate_args=validate_args)

    @property
    def concentration1(self):
        return self._concentrations[..., 0]

    @property
    def concentration0(self):
        return self._concentrations[..., 1]

    @property
    def mean(self):
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self):
        return Dirichlet(self._concentrations, validate_args=False).mode[..., 0]

    @property
    def variance(self):
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def rsample(self, sample_shape=Size()):
        return Dirichlet(self._concentrations, validate_args=False).rsample(sample_shape)[..., 0]

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        return _dirichlet_log_prob(self._concentrations, tracenn.stack([value, 1.0 - value], -1))

    def entropy(self):
        return _dirichlet_entropy(self._concentrations)

    @property
    def _natural_params(self):
        return (self.concentration1, self.concentration0)

    def _log_normalizer(self, x, y):
        return x.lgamma() + y.lgamma() - (x + y).lgamma()


class StudentT(Distribution):
    """Student's t distribution with ``df`` degrees of freedom, ``loc`` and ``scale``."""
    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        super().__init__(self.df.size(), Size(), validate_args=validate_args)

    @property
    def mean(self):
        import tracenn
        return tracenn.where(self.df <= 1, float("nan"), self.loc)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        import tracenn
        df = self.df
        finite = self.scale.pow(2) * df / (df - 2)
        return tracenn.where(df > 2, finite, tracenn.where(df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape=Size()):
        import tracenn
        shape = tuple(self._extended_shape(sample_shape))
        x = tracenn.randn(shape, dtype=self.df.dtype, device=self.df.device)
        z = _standard_gamma((0.5 * self.df).expand(shape)) * 2  # chi-square(df)
        return self.loc + self.scale * x * (z / self.df).rsqrt()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (value - self.loc) / self.scale
        z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi) + (0.5 * self.df).lgamma()
             - (0.5 * (self.df + 1.0)).lgamma())
        return -0.5 * (self.df + 1.0) * (y.pow(2) / self.df).log1p() - z

    def entropy(self):
        df = self.df
        lbeta = (0.5 * df).lgamma() + math.lgamma(0.5) - (0.5 * (df + 1)).lgamma()
        return (self.scale.log() + 0.5 * (df + 1) * ((0.5 * (df + 1)).digamma() - (0.5 * df).digamma())
                + 0.5 * df.log() + lbeta)
