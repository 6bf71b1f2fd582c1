"""MultivariateNormal, OneHotCategorical(StraightThrough) and Multinomial, as torch.distributions'."""
from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..size import Size
from . import constraints
from ._discrete import Binomial
from ._dists import Categorical, _Lazy, broadcast_all
from .distribution import Distribution

__all__ = ["MultivariateNormal", "OneHotCategorical", "OneHotCategoricalStraightThrough", "Multinomial"]


def _batch_mahalanobis(bL, bx):
    """``x^T (L L^T)^-1 x`` over broadcast batch dims: the squared norm of ``L^-1 x``."""
    import tracenn
    batch = tuple(tracenn.broadcast_shapes(tuple(bL.shape[:-2]), tuple(bx.shape[:-1])))
    n = bx.size(-1)
    L = bL.expand(batch + (n, n))
    x = bx.expand(batch + (n,))
    return tracenn.linalg.solve_triangular(L, x.unsqueeze(-1), upper=False).squeeze(-1).pow(2).sum(-1)


class MultivariateNormal(Distribution):
    """The normal distribution over vectors, given ``loc`` and one of ``covariance_matrix``,
    ``precision_matrix`` or ``scale_tril`` (a lower Cholesky factor of the covariance).

    >>> import tracenn
    >>> mvn = MultivariateNormal(tracenn.zeros(2), covariance_matrix=tracenn.eye(2))
    >>> mvn.log_prob(tracenn.zeros(2))
    tensor(-1.8379)
    """
    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        import tracenn
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        for name, matrix in (("scale_tril", scale_tril), ("covariance_matrix", covariance_matrix),
                             ("precision_matrix", precision_matrix)):
            if matrix is None:
                continue
            if matrix.dim() < 2:
                what = "scale_tril matrix" if name == "scale_tril" else name
                raise ValueError(f"{what} must be at least two-dimensional, with optional leading batch dimensions")
            batch_shape = tuple(tracenn.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1])))
            setattr(self, name, matrix.expand(batch_shape + (-1, -1)))
        self.loc = loc.expand(batch_shape + (-1,))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = tracenn.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = tracenn.linalg.cholesky(tracenn.linalg.inv(precision_matrix))

    def expand(self, batch_shape, _instance=None):
        new = super().expand(batch_shape, _instance)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril  # (broadcasting stays lazy)
        return new

    def _full_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @_Lazy
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._full_shape())

    @_Lazy
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._full_shape())

    @_Lazy
    def precision_matrix(self):
        import tracenn
        L = self._unbroadcasted_scale_tril
        eye = tracenn.eye(L.shape[-1], dtype=L.dtype, device=L.device).expand(tuple(L.shape))
        L_inv = tracenn.linalg.solve_triangular(L, eye, upper=False)
        return (L_inv.mT @ L_inv).expand(self._full_shape())

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(tuple(self._batch_shape + self._event_shape))

    def rsample(self, sample_shape=Size()):
        import tracenn
        shape = tuple(self._extended_shape(sample_shape))
        eps = tracenn.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        M = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) - self._half_log_det()

    def entropy(self):
        H = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return H if len(self._batch_shape) == 0 else H.expand(tuple(self._batch_shape))


class _ViaCategorical:
    """``probs``, ``logits`` and ``param_shape`` of a distribution built on a ``Categorical``
    (``self._categorical``): OneHotCategorical, Multinomial."""

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def param_shape(self):
        return self._categorical.param_shape


class OneHotCategorical(_ViaCategorical, Distribution):
    """A ``Categorical`` whose samples are one-hot vectors of its ``K`` categories."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits, validate_args=validate_args)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    @property
    def mean(self):
        return self._categorical.probs

    @property
    def mode(self):
        import tracenn.nn.functional as F
        probs = self._categorical.probs
        return F.one_hot(probs.argmax(dim=-1), probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self):
        return self._categorical.probs * (1 - self._categorical.probs)

    def sample(self, sample_shape=Size()):
        import tracenn.nn.functional as F
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return F.one_hot(indices, probs.shape[-1]).to(probs.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self):
        return self._categorical.entropy()

    def enumerate_support(self, expand=True):
        import tracenn
        n = self._event_shape[0]
        values = tracenn.eye(n, dtype=self._categorical._param.dtype, device=self._categorical._param.device)
        values = values.view((n,) + (1,) * len(self._batch_shape) + (n,))
        return values.expand((n,) + tuple(self._batch_shape) + (n,)) if expand else values


class OneHotCategoricalStraightThrough(OneHotCategorical):
    """A OneHotCategorical whose ``rsample`` passes gradients straight through to ``probs``: the
    value is the one-hot sample, the gradient that of ``probs`` (Bengio et al., 2013)."""
    has_rsample = True

    def rsample(self, sample_shape=Size()):
        samples = self.sample(sample_shape)
        probs = self._categorical.probs  # (cached: the same tensor each call)
        return samples + (probs - probs.detach())


class Multinomial(_ViaCategorical, Distribution):
    """Counts of ``total_count`` draws from a ``Categorical(probs or logits)``."""
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=Size()):
        import tracenn.nn.functional as F
        sample_shape = Size(sample_shape)
        with no_grad():
            draws = self._categorical.sample(Size((self.total_count,)) + sample_shape)
            return F.one_hot(draws, self._event_shape[0]).to(self.probs.dtype).sum(0)

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, value)
        logits = tracenn.where((value == 0) & (logits == float("-inf")), 0.0, logits)
        return (value.sum(-1) + 1).lgamma() - (value + 1).lgamma().sum(-1) + (logits * value).sum(-1)

    def entropy(self):
        import tracenn
        n = tracenn.tensor(float(self.total_count), dtype=self.probs.dtype)
        term1 = n * self._categorical.entropy() - (n + 1).lgamma()
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = self._binomial.log_prob(support).exp()
        term2 = (binomial_probs * (support + 1).lgamma()).sum([0, -1])
        return term1 + term2
