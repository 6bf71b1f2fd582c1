"""The window functions of ``torch.signal.windows``.

A window depends only on its length and parameters, so (as ``tracenn.hann_window`` and friends) it is
computed on the host in float64 NumPy over torch's sample grid and made a tensor of the requested dtype:
a constant under ``tracenn.compile``. torch evaluates the same formulas in the requested dtype, so float32
windows can differ from torch's in the last bit.

``sym=True`` (the default) gives a symmetric window, for filter design; ``sym=False`` a periodic one (the
symmetric window of ``M + 1`` points without its last), for spectral analysis.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]


def _checks(name, M, dtype, layout):
    import tracenn
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not None and layout is not tracenn.strided:
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    dtype = tracenn.get_default_dtype() if dtype is None else dtype
    if dtype not in (tracenn.float32, tracenn.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dtype}")
    return dtype


def _grid(M, start, step):
    """torch's ``linspace(start * step, (start + M - 1) * step, M)``: the points ``(start + n) * step``."""
    return (start + np.arange(M, dtype=np.float64)) * step


def _out(w, dtype, device, requires_grad):
    from ..._api.creation import tensor
    return tensor(np.asarray(w, dtype=np.float64), dtype=dtype, device=device, requires_grad=requires_grad)


def _span(M, sym):
    """The divisor of the sample positions: ``M - 1`` for a symmetric window, ``M`` for a periodic one."""
    return M if not sym and M > 1 else M - 1


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The exponential (Poisson) window :math:`w_n = \exp(-|n - c| / \tau)`.

    Args:
        M (int): the window length.
        center (float, optional): ``c``; default ``M / 2`` when ``sym=False``, else ``(M - 1) / 2``. Only
            for ``sym=False``.
        tau (float, optional): the decay, positive. Default: 1.0.
        sym (bool, optional): symmetric (default) or periodic. dtype, device, requires_grad: as factories.

    >>> import tracenn as torch
    >>> torch.signal.windows.exponential(3)
    tensor([0.3679, 1.0000, 0.3679])
    """
    dtype = _checks("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if center is None:
        center = _span(M, sym) / 2.0
    return _out(np.exp(-np.abs(_grid(M, -center, 1 / tau))), dtype, device, requires_grad)


def cosine(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The cosine (sine) window :math:`w_n = \sin(\pi (n + 0.5) / M)`.

    >>> import tracenn as torch
    >>> torch.signal.windows.cosine(4)
    tensor([0.3827, 0.9239, 0.9239, 0.3827])
    """
    dtype = _checks("cosine", M, dtype, layout)
    step = np.pi / (M + 1 if not sym and M > 1 else M) if M else 0.0
    return _out(np.sin(_grid(M, 0.5, step)), dtype, device, requires_grad)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Gaussian window :math:`w_n = \exp(-(n - (M - 1) / 2)^2 / (2 \sigma^2))`.

    Args:
        M (int): the window length.
        std (float, optional): :math:`\sigma`, positive. Default: 1.0.

    >>> import tracenn as torch
    >>> torch.signal.windows.gaussian(3)
    tensor([0.6065, 1.0000, 0.6065])
    """
    dtype = _checks("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    k = _grid(M, -_span(M, sym) / 2.0, 1 / (std * np.sqrt(2)))
    return _out(np.exp(-(k ** 2)), dtype, device, requires_grad)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Kaiser window :math:`w_n = I_0(\beta \sqrt{1 - (2n / (M - 1) - 1)^2}) / I_0(\beta)`.

    Args:
        M (int): the window length.
        beta (float, optional): the shape parameter, non-negative. Default: 12.0.

    >>> import tracenn as torch
    >>> torch.signal.windows.kaiser(3, beta=2.0)
    tensor([0.4387, 1.0000, 0.4387])
    """
    dtype = _checks("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M <= 1:
        return _out(np.ones(M), dtype, device, requires_grad)
    k = np.minimum(_grid(M, -(M if not sym else M - 1) / 2.0, 2.0 * beta / (M if not sym else M - 1)), beta)
    return _out(np.i0(np.sqrt(np.maximum(beta * beta - k ** 2, 0.0))) / np.i0(beta), dtype, device, requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The generic weighted sum of cosines :math:`w_n = \sum_i (-1)^i a_i \cos(2 \pi i n / (M - 1))`.

    Args:
        M (int): the window length.
        a (list or tuple of float): the coefficients :math:`a_i`.

    >>> import tracenn as torch
    >>> torch.signal.windows.general_cosine(3, a=[0.5, 0.5])
    tensor([0., 1., 0.])
    """
    dtype = _checks("general_cosine", M, dtype, layout)
    if M <= 1:
        return _out(np.ones(M), dtype, device, requires_grad)
    if not isinstance(a, Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    if not a:
        raise ValueError("Coefficients cannot be empty")
    k = _grid(M, 0.0, 2 * np.pi / (M if not sym else M - 1))
    coeffs = np.array([(-1) ** i * w for i, w in enumerate(a)], dtype=np.float64)
    return _out((coeffs[:, None] * np.cos(np.arange(len(coeffs))[:, None] * k)).sum(0), dtype, device, requires_grad)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The generalized Hamming window :math:`w_n = \alpha - (1 - \alpha) \cos(2 \pi n / (M - 1))`.

    >>> import tracenn as torch
    >>> torch.signal.windows.general_hamming(3, alpha=0.6)
    tensor([0.2000, 1.0000, 0.2000])
    """
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Hamming window, :func:`general_hamming` with ``alpha=0.54``.

    >>> import tracenn as torch
    >>> torch.signal.windows.hamming(3)
    tensor([0.0800, 1.0000, 0.0800])
    """
    return general_hamming(M, alpha=0.54, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Hann window, :func:`general_hamming` with ``alpha=0.5``.

    >>> import tracenn as torch
    >>> torch.signal.windows.hann(3)
    tensor([0., 1., 0.])
    """
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Blackman window, :func:`general_cosine` with ``a = [0.42, 0.5, 0.08]``.

    >>> import tracenn as torch
    >>> torch.signal.windows.blackman(5)[1:4]  # (the ends are 0 up to rounding)
    tensor([0.3400, 1.0000, 0.3400])
    """
    dtype = _checks("blackman", M, dtype, layout)
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The Bartlett (triangular) window :math:`w_n = 1 - |2n / (M - 1) - 1|`.

    >>> import tracenn as torch
    >>> torch.signal.windows.bartlett(5)
    tensor([0.0000, 0.5000, 1.0000, 0.5000, 0.0000])
    """
    dtype = _checks("bartlett", M, dtype, layout)
    if M <= 1:
        return _out(np.ones(M), dtype, device, requires_grad)
    k = -1 + np.arange(M, dtype=np.float64) * (2 / (M if not sym else M - 1))
    return _out(1 - np.abs(k), dtype, device, requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=None, device=None, requires_grad=False):
    r"""The minimum 4-term Blackman-Harris window of Nuttall, :func:`general_cosine` with
    ``a = [0.3635819, 0.4891775, 0.1365995, 0.0106411]``.

    >>> import tracenn as torch
    >>> torch.signal.windows.nuttall(3)
    tensor([3.6280e-04, 1.0000e+00, 3.6280e-04])
    """
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype, layout=layout,
                          device=device, requires_grad=requires_grad)
