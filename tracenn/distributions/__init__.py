"""``tracenn.distributions``: torch.distributions' core — ``Normal``, ``Uniform``, ``Bernoulli``,
``Categorical``, ``Independent``, ``kl_divergence`` / ``register_kl`` and ``constraints`` —
with torch's shapes, parameters, validation errors and reprs. Eager and under ``tracenn.compile``
(where validation, which reads values, is skipped); reparameterized samples (``rsample``) carry
gradients.

>>> import tracenn
>>> from tracenn.distributions import Normal
>>> Normal(tracenn.tensor([0.0, 1.0]), tracenn.tensor([1.0, 2.0])).log_prob(tracenn.tensor([0.0, 0.0]))
tensor([-0.9189, -1.7371])
"""
from . import constraints  # noqa: F401
from ._dists import Bernoulli, Categorical, Independent, Normal, Uniform  # noqa: F401
from .distribution import Distribution  # noqa: F401
from .kl import kl_divergence, register_kl  # noqa: F401

__all__ = ["Distribution", "Normal", "Uniform", "Bernoulli", "Categorical", "Independent", "kl_divergence",
           "register_kl", "constraints"]
