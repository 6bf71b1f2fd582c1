"""torch's other in-place random fills: ``cauchy_``, ``log_normal_``, ``geometric_``, made from
uniform and normal draws of ``tracenn.random`` (its generators and seeds; JAX's streams, so a seed
reproduces tracenn's numbers, not torch's)."""
from __future__ import annotations

import math as _pymath

from .. import random as _random

__all__ = ["cauchy_", "log_normal_", "geometric_"]


def _uniform(self, generator):
    from .creation import empty
    return _random.uniform_(empty(tuple(self.shape), dtype=self.dtype if self.is_floating_point() else None),
                            generator=generator)


def cauchy_(self, median=0.0, sigma=1.0, *, generator=None):
    """Fill with Cauchy samples: ``median + sigma * tan(pi * (u - 1/2))``, ``u`` uniform on [0, 1)."""
    if not self.is_floating_point():
        raise RuntimeError("Cauchy distribution is a continuous probability distribution. dtype must be a floating "
                           f"point but you specified {self.dtype}")
    if not sigma > 0.0:
        raise RuntimeError(f"cauchy_ expects sigma > 0.0, but found sigma={sigma}")
    from .math import tan
    u = _uniform(self, generator)
    return self._set_(tan((u - 0.5) * _pymath.pi) * float(sigma) + float(median), "cauchy_")


def log_normal_(self, mean=1.0, std=2.0, *, generator=None):
    """Fill with ``exp(x)``, ``x`` normal with ``mean`` and ``std``."""
    if not self.is_floating_point():
        raise NotImplementedError(f"\"log_normal_cpu\" not implemented for '{self.dtype}'")
    if not std > 0.0:
        raise RuntimeError(f"log_normal_ expects std > 0.0, but found std={std}")
    from .creation import empty
    from .math import exp
    x = _random.normal_(empty(tuple(self.shape), dtype=self.dtype), float(mean), float(std), generator=generator)
    return self._set_(exp(x), "log_normal_")


def geometric_(self, p, *, generator=None):
    """Fill with the number of Bernoulli(``p``) trials up to the first success (1, 2, ...)."""
    if not 0.0 < p < 1.0:
        raise RuntimeError(f"geometric_ expects p to be in (0, 1), but got p={p}")
    from .math import ceil, clamp, log1p
    u = _uniform(self, generator)
    k = clamp(ceil(log1p(-u) / _pymath.log1p(-p)), min=1)  # (u = 0 would give 0 trials: at least 1)
    return self._set_(k.to(self.dtype), "geometric_")
