"""VonMises, the circular normal distribution, as torch.distributions'.

``log_prob`` and ``variance`` use torch's polynomial approximations of ``log I0`` and ``log I1``
(Abramowitz & Stegun 9.8.1-9.8.4), so the numbers are torch's. Sampling is Best & Fisher's (1979)
rejection sampler in float64, as torch's, vectorized over rounds: each round draws three uniforms
per element, and an element keeps its first accepted proposal. Eagerly, rounds are drawn until
every element has one; inside ``tracenn.compile`` (where values cannot be read) a fixed
``_TRACED_ROUNDS`` rounds are drawn, which leaves an element unaccepted with probability at most
``0.35 ** 24`` (about 1e-11: each round accepts with probability above 0.65 for every concentration).
"""
from __future__ import annotations

import math

from ..autograd.grad_mode import no_grad
from ..size import Size
from . import constraints
from ._dists import _Lazy, broadcast_all
from .distribution import Distribution, _eager

__all__ = ["VonMises"]

_EAGER_ROUNDS = 8  # rounds drawn at a time eagerly (then again for the elements still unaccepted)
_TRACED_ROUNDS = 24

_I0_COEF_SMALL = [1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.0360768, 0.0045813]
_I0_COEF_LARGE = [0.39894228, 0.01328592, 0.00225319, -0.00157565, 0.00916281, -0.02057706, 0.02635537,
                  -0.01647633, 0.00392377]
_I1_COEF_SMALL = [0.5, 0.87890594, 0.51498869, 0.15084934, 0.02658733, 0.00301532, 0.00032411]
_I1_COEF_LARGE = [0.39894228, -0.03988024, -0.00362018, 0.00163801, -0.01031555, 0.02282967, -0.02895312,
                  0.01787654, -0.00420059]
_COEF_SMALL = [_I0_COEF_SMALL, _I1_COEF_SMALL]
_COEF_LARGE = [_I0_COEF_LARGE, _I1_COEF_LARGE]


def _eval_poly(y, coef):
    coef = list(coef)
    result = coef.pop()
    while coef:
        result = coef.pop() + y * result
    return result


def _log_modified_bessel_fn(x, order=0):
    """``log I_order(x)`` for ``x > 0`` and ``order`` 0 or 1, torch's approximation."""
    import tracenn
    if order not in (0, 1):
        raise ValueError(f"order must be 0 or 1, got {order}")
    y = (x / 3.75) * (x / 3.75)
    small = _eval_poly(y, _COEF_SMALL[order])
    if order == 1:
        small = x.abs() * small
    small = small.log()
    large = x - 0.5 * x.log() + _eval_poly(3.75 / x, _COEF_LARGE[order]).log()
    return tracenn.where(x < 3.75, small, large)


def _proposals(concentration, proposal_r, rounds, shape):
    """``rounds`` Best-Fisher proposals per element (float64) and whether each was accepted."""
    import tracenn
    u = tracenn.rand((rounds, 3) + tuple(shape), dtype=tracenn.float64, device=concentration.device)
    u1, u2, u3 = u[:, 0], u[:, 1], u[:, 2]
    z = (math.pi * u1).cos()
    f = (1 + proposal_r * z) / (proposal_r + z)
    c = concentration * (proposal_r - f)
    accept = (c * (2 - c) - u2 > 0) | ((c / u2).log() + 1 - c >= 0)
    return (u3 - 0.5).sign() * f.acos(), accept


def _first_accepted(values, accept):
    """Per element, the value of the first accepted round (the last round's where none was), and
    whether any was."""
    first = accept.to(values.dtype).argmax(0, keepdim=True)  # (0 where none: replaced below)
    none = ~accept.any(0, keepdim=True)
    first = first.masked_fill(none, accept.shape[0] - 1)
    return values.gather(0, first).squeeze(0), ~none.squeeze(0)


class VonMises(Distribution):
    """The von Mises distribution on the circle, with mean direction ``loc`` and ``concentration``
    (``kappa``); values are angles in radians, samples in ``[-pi, pi)``.

    >>> import tracenn
    >>> VonMises(tracenn.tensor([0.0]), tracenn.tensor([2.0])).log_prob(tracenn.tensor([0.5]))
    tensor([-0.9067])
    """
    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, concentration, validate_args=None):
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, Size(), validate_args)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        log_prob = self.concentration * (value - self.loc).cos()
        return log_prob - math.log(2 * math.pi) - _log_modified_bessel_fn(self.concentration, order=0)

    @_Lazy
    def _loc(self):
        return self.loc.double()

    @_Lazy
    def _concentration(self):
        return self.concentration.double()

    @_Lazy
    def _proposal_r(self):
        import tracenn
        kappa = self._concentration
        tau = 1 + (1 + 4 * kappa ** 2).sqrt()
        rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
        proposal_r = (1 + rho ** 2) / (2 * rho)
        return tracenn.where(kappa < 1e-5, 1 / kappa + kappa, proposal_r)  # (a Taylor form for tiny kappa)

    def sample(self, sample_shape=Size()):
        """Angles in ``[-pi, pi)``, drawn by rejection (see the module docstring)."""
        import tracenn
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            conc, proposal_r = self._concentration.expand(shape), self._proposal_r.expand(shape)
            rounds = _EAGER_ROUNDS if _eager() else _TRACED_ROUNDS
            x, done = _first_accepted(*_proposals(conc, proposal_r, rounds, shape))
            while _eager() and not bool(done.all()):
                more, more_done = _first_accepted(*_proposals(conc, proposal_r, rounds, shape))
                x = tracenn.where(done, x, more)
                done = done | more_done
            return ((x + math.pi + self._loc) % (2 * math.pi) - math.pi).to(self.loc.dtype)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @_Lazy
    def variance(self):
        return 1 - (_log_modified_bessel_fn(self.concentration, order=1)
                    - _log_modified_bessel_fn(self.concentration, order=0)).exp()
