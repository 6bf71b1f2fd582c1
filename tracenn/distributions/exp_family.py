"""torch.distributions.exp_family: ``ExponentialFamily``, the base of the families whose density is
``exp(<t(x), theta> - F(theta) + k(x))``. Its ``entropy`` is the Bregman form
``F(theta) - <theta, grad F(theta)> - E[k(x)]``, with ``grad F`` from autograd, as torch's; KL between
two members of one family falls back to the same form (``kl.py``)."""
from __future__ import annotations

from .distribution import Distribution

__all__ = ["ExponentialFamily"]


class ExponentialFamily(Distribution):
    """A distribution with ``_natural_params`` (a tuple of tensors ``theta``), ``_log_normalizer(*theta)``
    (``F``) and ``_mean_carrier_measure`` (``E[k(x)]``)."""

    @property
    def _natural_params(self):
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError

    def entropy(self):
        import tracenn
        result = -self._mean_carrier_measure
        nparams = [p.detach().requires_grad_() for p in self._natural_params]
        lg_normal = self._log_normalizer(*nparams)
        gradients = tracenn.autograd.grad(lg_normal.sum(), nparams, create_graph=True)
        result = result + lg_normal
        for nparam, g in zip(nparams, gradients):
            result = result - (nparam * g).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
