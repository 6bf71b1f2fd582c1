"""LowRankMultivariateNormal, LKJCholesky, Wishart and LogisticNormal, as torch.distributions'.

LowRankMultivariateNormal keeps the covariance as ``W W^T + diag(D)`` and works through the
``m x m`` capacitance matrix ``I + W^T D^-1 W`` (Woodbury and the matrix determinant lemma), as
torch's. Wishart samples by Bartlett's decomposition; LKJCholesky by torch's onion method.
"""
from __future__ import annotations

import math
import numbers
import warnings

from ..autograd.grad_mode import no_grad
from ..size import Size
from . import constraints
from ._dists import Normal, _Lazy, broadcast_all
from ._gamma import Beta, Chi2
from ._multivariate import _batch_mahalanobis
from .distribution import Distribution, _eager
from .exp_family import ExponentialFamily
from .transformed import TransformedDistribution
from .transforms import StickBreakingTransform

__all__ = ["LowRankMultivariateNormal", "LKJCholesky", "Wishart", "LogisticNormal"]

_LOG_2 = math.log(2)


def _batch_mv(bmat, bvec):
    return (bmat @ bvec.unsqueeze(-1)).squeeze(-1)


def _eye_like(m, n):
    import tracenn
    return tracenn.eye(n, dtype=m.dtype, device=m.device)


def _cholesky_solve(b, L):
    """``(L L^T)^-1 b`` for a lower Cholesky factor ``L``: two triangular solves."""
    import tracenn
    batch = tuple(tracenn.broadcast_shapes(tuple(b.shape[:-2]), tuple(L.shape[:-2])))
    L = L.expand(batch + tuple(L.shape[-2:]))
    b = b.expand(batch + tuple(b.shape[-2:]))
    y = tracenn.linalg.solve_triangular(L, b, upper=False)
    return tracenn.linalg.solve_triangular(L.mT, y, upper=True)


def _batch_capacitance_tril(W, D):
    """The Cholesky factor of ``I + W^T D^-1 W``."""
    import tracenn
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    return tracenn.linalg.cholesky(Wt_Dinv @ W + _eye_like(W, W.size(-1)))


def _batch_lowrank_logdet(W, D, capacitance_tril):
    """``log det(W W^T + D)`` by the matrix determinant lemma."""
    return 2 * capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + D.log().sum(-1)


def _batch_lowrank_mahalanobis(W, D, x, capacitance_tril):
    """``x^T (W W^T + D)^-1 x`` by the Woodbury identity."""
    Wt_Dinv_x = _batch_mv(W.mT / D.unsqueeze(-2), x)
    return (x.pow(2) / D).sum(-1) - _batch_mahalanobis(capacitance_tril, Wt_Dinv_x)


class LowRankMultivariateNormal(Distribution):
    """The multivariate normal with covariance ``cov_factor @ cov_factor.mT + diag(cov_diag)``
    (``cov_factor`` of shape ``event x rank``).

    >>> import tracenn
    >>> d = LowRankMultivariateNormal(tracenn.zeros(2), tracenn.tensor([[1.0], [0.0]]), tracenn.ones(2))
    >>> d.covariance_matrix
    tensor([[2., 0.],
            [0., 1.]])
    """
    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        import tracenn
        if loc.dim() < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = loc.shape[-1:]
        if cov_factor.dim() < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != tuple(event_shape):
            raise ValueError(f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m")
        if tuple(cov_diag.shape[-1:]) != tuple(event_shape):
            raise ValueError(f"cov_diag must be a batch of vectors with shape {event_shape}")
        try:
            loc_, self.cov_factor, cov_diag_ = tracenn.broadcast_tensors(loc.unsqueeze(-1), cov_factor,
                                                                         cov_diag.unsqueeze(-1))
        except RuntimeError as e:
            raise ValueError(f"Incompatible batch shapes: loc {loc.shape}, cov_factor {cov_factor.shape}, "
                             f"cov_diag {cov_diag.shape}") from e
        self.loc, self.cov_diag = loc_[..., 0], cov_diag_[..., 0]
        self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag = cov_factor, cov_diag
        self._capacitance_tril = _batch_capacitance_tril(cov_factor, cov_diag)
        super().__init__(self.loc.shape[:-1], event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        batch_shape = Size(batch_shape)
        loc_shape = tuple(batch_shape) + tuple(self.event_shape)
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)  # (the unbroadcasted factors and the capacitance stay shared)
        for lazy in ("variance", "scale_tril", "covariance_matrix", "precision_matrix"):
            new.__dict__.pop(lazy, None)
        new.loc, new.cov_diag = self.loc.expand(loc_shape), self.cov_diag.expand(loc_shape)
        new.cov_factor = self.cov_factor.expand(loc_shape + tuple(self.cov_factor.shape[-1:]))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _full_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @_Lazy
    def variance(self):
        return (self._unbroadcasted_cov_factor.pow(2).sum(-1) + self._unbroadcasted_cov_diag).expand(
            tuple(self._batch_shape) + tuple(self._event_shape))

    @_Lazy
    def scale_tril(self):
        import tracenn
        n = self._event_shape[0]
        cov_diag_sqrt_unsqueeze = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        Dinvsqrt_W = self._unbroadcasted_cov_factor / cov_diag_sqrt_unsqueeze
        K = Dinvsqrt_W @ Dinvsqrt_W.mT + _eye_like(Dinvsqrt_W, n)
        return (cov_diag_sqrt_unsqueeze * tracenn.linalg.cholesky(K)).expand(self._full_shape())

    @_Lazy
    def covariance_matrix(self):
        W = self._unbroadcasted_cov_factor
        return (W @ W.mT + self._unbroadcasted_cov_diag.diag_embed()).expand(self._full_shape())

    @_Lazy
    def precision_matrix(self):
        import tracenn
        Wt_Dinv = self._unbroadcasted_cov_factor.mT / self._unbroadcasted_cov_diag.unsqueeze(-2)
        L = self._capacitance_tril
        batch = tuple(tracenn.broadcast_shapes(tuple(L.shape[:-2]), tuple(Wt_Dinv.shape[:-2])))
        A = tracenn.linalg.solve_triangular(L.expand(batch + tuple(L.shape[-2:])),
                                            Wt_Dinv.expand(batch + tuple(Wt_Dinv.shape[-2:])), upper=False)
        precision = self._unbroadcasted_cov_diag.reciprocal().diag_embed() - A.mT @ A
        return precision.expand(self._full_shape())

    def rsample(self, sample_shape=Size()):
        import tracenn
        shape = tuple(self._extended_shape(sample_shape))
        W_shape = shape[:-1] + tuple(self.cov_factor.shape[-1:])
        eps_W = tracenn.randn(W_shape, dtype=self.loc.dtype, device=self.loc.device)
        eps_D = tracenn.randn(shape, dtype=self.loc.dtype, device=self.loc.device)
        return (self.loc + _batch_mv(self._unbroadcasted_cov_factor, eps_W)
                + self._unbroadcasted_cov_diag.sqrt() * eps_D)

    def _log_det(self):
        return _batch_lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                     self._capacitance_tril)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        M = _batch_lowrank_mahalanobis(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                       value - self.loc, self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + self._log_det() + M)

    def entropy(self):
        H = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return H if len(self._batch_shape) == 0 else H.expand(tuple(self._batch_shape))


class LKJCholesky(Distribution):
    """The LKJ distribution over Cholesky factors of ``dim x dim`` correlation matrices, with
    ``concentration`` eta (1 is uniform over correlation matrices)."""
    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        import tracenn
        if dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        marginal_conc = self.concentration + 0.5 * (self.dim - 2)
        offset = tracenn.arange(self.dim - 1, dtype=self.concentration.dtype, device=self.concentration.device)
        offset = tracenn.cat([offset.new_zeros((1,)), offset])
        self._beta = Beta(offset + 0.5, marginal_conc.unsqueeze(-1) - 0.5 * offset)
        super().__init__(self.concentration.size(), Size((dim, dim)), validate_args)

    def expand(self, batch_shape, _instance=None):
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.concentration = self.concentration.expand(tuple(batch_shape))
        new._beta = self._beta.expand(tuple(batch_shape) + (self.dim,))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=Size()):
        """torch's onion method: row ``i`` is ``sqrt(y_i)`` times a uniform direction in its first
        ``i`` coordinates, ``y_i ~ Beta``, and the diagonal fills each row to unit norm."""
        import jax.numpy as jnp

        import tracenn
        with no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)
            u_normal = tracenn.randn(tuple(self._extended_shape(sample_shape)), dtype=y.dtype, device=y.device).tril(-1)
            norm = u_normal.norm(dim=-1, keepdim=True)
            first_row = tracenn.arange(self.dim, device=y.device).unsqueeze(-1) == 0
            u_hypersphere = tracenn.where(first_row, 0.0, u_normal / tracenn.where(first_row, 1.0, norm))
            w = y.sqrt() * u_hypersphere
            tiny = float(jnp.finfo(w._value.dtype).tiny)
            diag_elems = (1 - (w ** 2).sum(-1)).clamp(min=tiny).sqrt()
            return w + diag_elems.diag_embed()

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = tracenn.arange(2, self.dim + 1, device=self.concentration.device)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized_log_pdf = (order * diag_elems.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        denominator = alpha.lgamma() * dm1
        numerator = tracenn.special.multigammaln(alpha - 0.5, dm1)
        normalize_term = 0.5 * dm1 * math.log(math.pi) + numerator - denominator
        return unnormalized_log_pdf - normalize_term


def _mvdigamma(x, p):
    import tracenn
    if _eager() and not bool((x > (p - 1) / 2).all()):
        raise ValueError("Wrong domain for multivariate digamma function.")
    offsets = tracenn.arange(p, dtype=x.dtype, device=x.device) / 2
    return (x.unsqueeze(-1) - offsets.expand(tuple(x.shape) + (-1,))).digamma().sum(-1)


def _precision_to_scale_tril(P):
    import tracenn
    Lf = tracenn.linalg.cholesky(P.flip((-2, -1)))
    L_inv = Lf.flip((-2, -1)).mT
    return tracenn.linalg.solve_triangular(L_inv, _eye_like(P, P.shape[-1]).expand(tuple(P.shape)), upper=False)


class Wishart(ExponentialFamily):
    """The Wishart distribution over positive definite matrices, with ``df`` degrees of freedom and one
    of ``covariance_matrix``, ``precision_matrix`` or ``scale_tril`` (of the scale matrix)."""
    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self):
        return {"covariance_matrix": constraints.positive_definite, "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky, "df": constraints.greater_than(self.event_shape[-1] - 1)}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        import tracenn
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        param = next(p for p in (covariance_matrix, precision_matrix, scale_tril) if p is not None)
        if param.dim() < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional leading batch dimensions")
        if isinstance(df, numbers.Number):
            batch_shape = Size(param.shape[:-2])
            self.df = tracenn.tensor(df, dtype=param.dtype, device=param.device)
        else:
            batch_shape = Size(tracenn.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
            self.df = df.expand(tuple(batch_shape))
        event_shape = param.shape[-2:]
        p = event_shape[-1]
        if _eager() and bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        name = "scale_tril" if scale_tril is not None else (
            "covariance_matrix" if covariance_matrix is not None else "precision_matrix")
        setattr(self, name, param.expand(tuple(batch_shape) + (-1, -1)))
        if _eager() and bool((self.df < p).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df "
                          "< ndim.", stacklevel=2)
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        self._batch_dims = [-(x + 1) for x in range(len(self._batch_shape))]
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = tracenn.linalg.cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)
        self._dist_chi2 = self._chi2(self.df, batch_shape)

    def _chi2(self, df, batch_shape):
        import tracenn
        L = self._unbroadcasted_scale_tril
        offsets = tracenn.arange(self._event_shape[-1], dtype=L.dtype, device=L.device)
        return Chi2(df=df.unsqueeze(-1) - offsets.expand(tuple(batch_shape) + (-1,)))

    def expand(self, batch_shape, _instance=None):
        batch_shape = Size(batch_shape)
        cov_shape = tuple(batch_shape) + tuple(self.event_shape)
        new = object.__new__(type(self))
        new.__dict__.update({k: v for k, v in self.__dict__.items()
                             if k in ("_unbroadcasted_scale_tril", "_validate_args")})
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(cov_shape)
        new.df = self.df.expand(tuple(batch_shape))
        new._batch_dims = [-(x + 1) for x in range(len(batch_shape))]
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(cov_shape))
        new._event_shape = self._event_shape
        new._dist_chi2 = new._chi2(new.df, batch_shape)
        ExponentialFamily.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _full_shape(self):
        return tuple(self._batch_shape) + tuple(self._event_shape)

    @_Lazy
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._full_shape())

    @_Lazy
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._full_shape())

    @_Lazy
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        return _cholesky_solve(_eye_like(L, self._event_shape[-1]), L).expand(self._full_shape())

    def _df_matrix(self, df):
        return df.view(tuple(self._batch_shape) + (1, 1))

    @property
    def mean(self):
        return self._df_matrix(self.df) * self.covariance_matrix

    @property
    def mode(self):
        factor = self.df - self.covariance_matrix.shape[-1] - 1
        return self._df_matrix(factor.masked_fill(factor <= 0, float("nan"))) * self.covariance_matrix

    @property
    def variance(self):
        V = self.covariance_matrix
        diag_V = V.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix(self.df) * (V.pow(2) + diag_V.unsqueeze(-1) * diag_V.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape=Size()):
        import tracenn
        p = self._event_shape[-1]
        chi = self._dist_chi2.rsample(sample_shape).sqrt()
        chi = chi.clamp(min=float(tracenn.finfo(chi.dtype).eps))
        normal = tracenn.randn(tuple(sample_shape) + tuple(self._batch_shape) + (p, p), dtype=chi.dtype,
                               device=chi.device)
        noise = normal.tril(-1) + chi.diag_embed(dim1=-2, dim2=-1)
        chol = self._unbroadcasted_scale_tril @ noise
        return chol @ chol.mT

    def rsample(self, sample_shape=Size(), max_try_correction=None):
        """Draws by Bartlett's decomposition. Eagerly, draws that are not numerically positive definite
        are redrawn (up to ``max_try_correction`` times, default 10) with a warning; inside
        ``tracenn.compile`` the check, which reads values, is skipped. (torch 2.13 checks the
        opposite, and warns about every draw.)"""
        import tracenn
        sample_shape = Size(sample_shape)
        sample = self._bartlett_sampling(sample_shape)
        if not _eager():
            return sample
        max_try_correction = 10 if max_try_correction is None else max_try_correction

        def singular(s):
            bad = ~self.support.check(s)
            return bad.amax(self._batch_dims) if self._batch_shape else bad
        is_singular = singular(sample)
        if bool(is_singular.any()):
            warnings.warn("Singular sample detected.", stacklevel=2)
            pad = (1,) * (len(self._batch_shape) + 2)
            for _ in range(max_try_correction):
                redraw = self._bartlett_sampling(sample_shape)
                sample = tracenn.where(is_singular.reshape(tuple(is_singular.shape) + pad), redraw, sample)
                is_singular = singular(sample)
                if not bool(is_singular.any()):
                    break
        return sample

    def log_prob(self, value):
        import tracenn
        if self._validate_args:
            self._validate_sample(value)
        nu, p = self.df, self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        return (-nu * (p * _LOG_2 / 2 + L.diagonal(dim1=-2, dim2=-1).log().sum(-1))
                - tracenn.special.multigammaln(nu / 2, p)
                + (nu - p - 1) / 2 * tracenn.linalg.slogdet(value).logabsdet
                - _cholesky_solve(value, L).diagonal(dim1=-2, dim2=-1).sum(dim=-1) / 2)

    def entropy(self):
        import tracenn
        nu, p = self.df, self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        return ((p + 1) * (p * _LOG_2 / 2 + L.diagonal(dim1=-2, dim2=-1).log().sum(-1))
                + tracenn.special.multigammaln(nu / 2, p) - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p) + nu * p / 2)

    @property
    def _natural_params(self):
        return (-self.precision_matrix / 2, (self.df - self._event_shape[-1] - 1) / 2)

    def _log_normalizer(self, x, y):
        import tracenn
        p = self._event_shape[-1]
        return ((y + (p + 1) / 2) * (-tracenn.linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p)
                + tracenn.special.multigammaln(y + (p + 1) / 2, p))


class LogisticNormal(TransformedDistribution):
    """``StickBreakingTransform`` of ``Normal(loc, scale)``: a distribution on the simplex with one more
    coordinate than ``loc``."""
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base_dist = Normal(loc, scale, validate_args=validate_args)
        if not base_dist.batch_shape:
            base_dist = base_dist.expand([1])
        super().__init__(base_dist, StickBreakingTransform(), validate_args=validate_args)

    @property
    def loc(self):
        return self.base_dist.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.base_dist.scale
