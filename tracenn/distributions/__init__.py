"""``tracenn.distributions``: torch.distributions — every family torch 2.13 has (``Normal``, ``Gamma``,
``MultivariateNormal``, ``Weibull``, ``VonMises``, ``Wishart``, ...), ``TransformedDistribution`` with
``transforms``, ``constraints``, ``biject_to`` / ``transform_to``, ``kl_divergence`` / ``register_kl``
and ``utils`` — with torch's shapes, parameters, validation errors and reprs, and torch's submodule
import paths (``from tracenn.distributions.normal import Normal``). Eager and under ``tracenn.compile``
(where validation, which reads values, is skipped); reparameterized samples (``rsample``) carry
gradients.

>>> import tracenn
>>> from tracenn.distributions import Normal
>>> Normal(tracenn.tensor([0.0, 1.0]), tracenn.tensor([1.0, 2.0])).log_prob(tracenn.tensor([0.0, 0.0]))
tensor([-0.9189, -1.7371])
"""
import sys as _sys

from . import constraints  # noqa: F401
from ._circular import VonMises  # noqa: F401
from ._continuous import Cauchy, Exponential, Gumbel, HalfNormal, Laplace, LogNormal  # noqa: F401
from ._discrete import Binomial, Geometric, NegativeBinomial, Poisson  # noqa: F401
from ._dists import Bernoulli, Categorical, Independent, Normal, Uniform  # noqa: F401
from ._gamma import Beta, Chi2, Dirichlet, Gamma, StudentT  # noqa: F401
from ._matrix import LKJCholesky, LogisticNormal, LowRankMultivariateNormal, Wishart  # noqa: F401
from ._mixture import (ExpRelaxedCategorical, LogitRelaxedBernoulli, MixtureSameFamily,  # noqa: F401
                       RelaxedBernoulli, RelaxedOneHotCategorical)
from ._multivariate import (Multinomial, MultivariateNormal, OneHotCategorical,  # noqa: F401
                            OneHotCategoricalStraightThrough)
from ._positive import FisherSnedecor, GeneralizedPareto, HalfCauchy, InverseGamma, Pareto, Weibull  # noqa: F401
from ._unit import ContinuousBernoulli, Kumaraswamy  # noqa: F401
from .distribution import Distribution  # noqa: F401
from .exp_family import ExponentialFamily  # noqa: F401
from .kl import kl_divergence, register_kl  # noqa: F401
from . import transforms, utils  # noqa: F401
from .constraint_registry import biject_to, transform_to  # noqa: F401
from .transformed import TransformedDistribution  # noqa: F401
from .transforms import *  # noqa: F401,F403  (torch re-exports every transform here)
from . import _submodules

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Chi2", "ContinuousBernoulli", "Dirichlet",
           "Distribution", "Exponential", "ExponentialFamily", "FisherSnedecor", "Gamma", "GeneralizedPareto",
           "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent", "InverseGamma", "Kumaraswamy",
           "LKJCholesky", "Laplace", "LogNormal", "LogisticNormal", "LowRankMultivariateNormal", "MixtureSameFamily",
           "Multinomial", "MultivariateNormal", "NegativeBinomial", "Normal", "OneHotCategorical",
           "OneHotCategoricalStraightThrough", "Pareto", "RelaxedBernoulli", "RelaxedOneHotCategorical", "StudentT",
           "Poisson", "Uniform", "VonMises", "Weibull", "Wishart", "TransformedDistribution", "biject_to",
           "kl_divergence", "register_kl", "transform_to", "LogitRelaxedBernoulli", "ExpRelaxedCategorical",
           "transforms", "constraints"]
__all__.extend(transforms.__all__)

_submodules.install(_sys.modules[__name__])
