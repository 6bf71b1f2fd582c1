"""torch.distributions' one-module-per-family import paths (``from torch.distributions.normal import
Normal``, ``torch.distributions.one_hot_categorical.OneHotCategoricalStraightThrough``): tracenn keeps
the families in fewer modules, and :func:`install` registers a module object for each of torch's
names that holds the same classes (plus the helpers code commonly imports from them)."""
from __future__ import annotations

import importlib
import sys
import types

# torch's submodule -> the names it holds: "Name" (from the package) or "module:name" (a helper)
_SUBMODULES = {
    "bernoulli": ("Bernoulli",),
    "beta": ("Beta",),
    "binomial": ("Binomial",),
    "categorical": ("Categorical",),
    "cauchy": ("Cauchy",),
    "chi2": ("Chi2",),
    "continuous_bernoulli": ("ContinuousBernoulli",),
    "dirichlet": ("Dirichlet",),
    "exponential": ("Exponential",),
    "fishersnedecor": ("FisherSnedecor",),
    "gamma": ("Gamma",),
    "generalized_pareto": ("GeneralizedPareto",),
    "geometric": ("Geometric",),
    "gumbel": ("Gumbel", "utils:euler_constant"),
    "half_cauchy": ("HalfCauchy",),
    "half_normal": ("HalfNormal",),
    "independent": ("Independent",),
    "inverse_gamma": ("InverseGamma",),
    "kumaraswamy": ("Kumaraswamy",),
    "laplace": ("Laplace",),
    "lkj_cholesky": ("LKJCholesky",),
    "log_normal": ("LogNormal",),
    "logistic_normal": ("LogisticNormal",),
    "lowrank_multivariate_normal": ("LowRankMultivariateNormal", "_matrix:_batch_capacitance_tril",
                                    "_matrix:_batch_lowrank_logdet", "_matrix:_batch_lowrank_mahalanobis"),
    "mixture_same_family": ("MixtureSameFamily",),
    "multinomial": ("Multinomial",),
    "multivariate_normal": ("MultivariateNormal", "_multivariate:_batch_mahalanobis", "_matrix:_batch_mv",
                            "_matrix:_precision_to_scale_tril"),
    "negative_binomial": ("NegativeBinomial",),
    "normal": ("Normal",),
    "one_hot_categorical": ("OneHotCategorical", "OneHotCategoricalStraightThrough"),
    "pareto": ("Pareto",),
    "poisson": ("Poisson",),
    "relaxed_bernoulli": ("LogitRelaxedBernoulli", "RelaxedBernoulli"),
    "relaxed_categorical": ("ExpRelaxedCategorical", "RelaxedOneHotCategorical"),
    "studentT": ("StudentT",),
    "transformed_distribution": ("TransformedDistribution",),
    "uniform": ("Uniform",),
    "von_mises": ("VonMises", "_circular:_log_modified_bessel_fn"),
    "weibull": ("Weibull",),
    "wishart": ("Wishart",),
}


def install(package) -> None:
    """Register ``package.<name>`` for each of torch's family submodules, in ``sys.modules`` and as
    an attribute of ``package``."""
    for name, entries in _SUBMODULES.items():
        module = types.ModuleType(f"{package.__name__}.{name}", f"torch.distributions.{name}, as tracenn's.")
        public = []
        for entry in entries:
            source, _, attr = entry.rpartition(":")
            holder = importlib.import_module(f"{package.__name__}.{source}") if source else package
            setattr(module, attr, getattr(holder, attr))
            if not attr.startswith("_") and attr != "euler_constant":
                public.append(attr)
        module.__all__ = public
        sys.modules[module.__name__] = module
        setattr(package, name, module)
