"""``tracenn.distributions``: torch.distributions — ``Normal``, ``Uniform``, ``Bernoulli``,
``Categorical``, ``Independent``, ``Exponential``, ``Laplace``, ``LogNormal``, ``HalfNormal``, ``Cauchy``,
``Gumbel``, ``Gamma``, ``Chi2``, ``Beta``, ``Dirichlet``, ``StudentT``, ``MultivariateNormal``,
``OneHotCategorical``, ``Multinomial``, ``Poisson``, ``Binomial``, ``Geometric``, ``MixtureSameFamily``,
``RelaxedBernoulli``, ``RelaxedOneHotCategorical``, ``TransformedDistribution`` with ``transforms``,
``kl_divergence`` / ``register_kl`` and ``constraints`` —
with torch's shapes, parameters, validation errors and reprs. Eager and under ``tracenn.compile``
(where validation, which reads values, is skipped); reparameterized samples (``rsample``) carry
gradients.

>>> import tracenn
>>> from tracenn.distributions import Normal
>>> Normal(tracenn.tensor([0.0, 1.0]), tracenn.tensor([1.0, 2.0])).log_prob(tracenn.tensor([0.0, 0.0]))
tensor([-0.9189, -1.7371])
"""
from . import constraints  # noqa: F401
from ._continuous import Cauchy, Exponential, Gumbel, HalfNormal, Laplace, LogNormal  # noqa: F401
from ._discrete import Binomial, Geometric, Poisson  # noqa: F401
from ._dists import Bernoulli, Categorical, Independent, Normal, Uniform  # noqa: F401
from ._gamma import Beta, Chi2, Dirichlet, Gamma, StudentT  # noqa: F401
from ._mixture import (ExpRelaxedCategorical, LogitRelaxedBernoulli, MixtureSameFamily,  # noqa: F401
                       RelaxedBernoulli, RelaxedOneHotCategorical)
from ._multivariate import Multinomial, MultivariateNormal, OneHotCategorical  # noqa: F401
from .distribution import Distribution  # noqa: F401
from .kl import kl_divergence, register_kl  # noqa: F401
from . import transforms  # noqa: F401
from .transformed import TransformedDistribution  # noqa: F401
from .transforms import (AbsTransform, AffineTransform, ComposeTransform, ExpTransform, PowerTransform,  # noqa: F401
                         SigmoidTransform, SoftmaxTransform, TanhTransform, Transform)

__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "Independent", "Exponential", "Laplace",
           "LogNormal", "HalfNormal", "Cauchy", "Gumbel", "Gamma", "Chi2", "Beta", "Dirichlet", "StudentT",
           "MultivariateNormal", "OneHotCategorical", "Multinomial", "Poisson", "Binomial", "Geometric",
           "TransformedDistribution", "MixtureSameFamily", "RelaxedBernoulli", "RelaxedOneHotCategorical",
           "LogitRelaxedBernoulli", "ExpRelaxedCategorical", "transforms", "Transform", "ComposeTransform",
           "ExpTransform", "AffineTransform", "SigmoidTransform", "TanhTransform", "SoftmaxTransform",
           "PowerTransform", "AbsTransform", "kl_divergence", "register_kl", "constraints"]
