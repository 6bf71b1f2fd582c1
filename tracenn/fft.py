"""``tracenn.fft``: torch.fft's discrete Fourier transforms, with torch's signatures, defaults,
dtypes and ``norm`` modes.

``norm``: "backward" (the default, None: no scaling forward, 1/n on the inverse), "ortho"
(1/sqrt(n) both ways) or "forward" (1/n forward, none on the inverse). Real inputs of the complex
transforms are taken as complex, integer inputs as the default float dtype (then complex); float64
gives complex128. float16 and bfloat16 are refused, as torch's CPU kernels refuse them. Gradients
are torch's (see docs/design.md, "Complex numbers").

>>> import tracenn
>>> tracenn.fft.fft(tracenn.tensor([1.0, 2.0, 3.0, 4.0]))
tensor([10.+0.j, -2.+2.j, -2.+0.j, -2.-2.j])
"""
from __future__ import annotations

import numpy as np

from . import _dispatch
from . import dtypes as _dt
from ._dispatch import apply
from .errors import DtypeError, ShapeError
from .ops import OPS
from .tensor import Tensor, _TORCH_NAMES, _wrap_dim

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn",
           "irfftn", "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftfreq", "rfftfreq",
           "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")


def _input(x, name: str, real_only: bool) -> Tensor:
    """``x`` as a tensor the transform takes: integers/bool to the default float dtype."""
    from ._api._common import float_np_dtype
    from ._api.math import _cast
    if not isinstance(x, Tensor):
        from ._api.creation import tensor
        x = tensor(x)
    d = x._value.dtype
    if d.kind == "c" and real_only:
        raise DtypeError(f"{name} expects a real input tensor, but got {_TORCH_NAMES[_dt.from_np(d)]}")
    if d.itemsize == 2 and d.kind in "fV" and _dispatch.AUTOCAST[0] is not None:
        return _cast(x, np.float32)  # (autocast runs the FFTs in float32, as torch's)
    if d.itemsize == 2 and d.kind in "fV":  # float16, bfloat16
        raise DtypeError(f"Unsupported dtype {_TORCH_NAMES[_dt.from_np(d)]} (tracenn.fft computes in "
                         "float32 or float64: convert with .float() first)")
    return _cast(x, float_np_dtype(d))


def _norm(norm) -> str:
    if norm is None:
        return "backward"
    if norm not in _NORMS:
        raise RuntimeError(f'Invalid normalization mode: "{norm}" (expected one of "backward", "ortho", '
                         '"forward" or None)')
    return norm


def _plan(x: Tensor, s, dim):
    """torch's resolution of ``s`` and ``dim``: the transformed dims (wrapped, unique) and their
    sizes (``s``; -1 keeps the input's size). ``dim=None``: the last ``len(s)`` dims, or all dims."""
    if s is not None and dim is not None and len(s) != len(dim):
        raise ShapeError("When given, dim and shape arguments must have the same length")
    if dim is None:
        n = x.ndim if s is None else len(s)
        if n > x.ndim:
            raise ShapeError(f"Got shape with {n} values but input tensor only has {x.ndim} dimensions.")
        dims = tuple(range(x.ndim - n, x.ndim))
    else:
        dims = tuple(_fft_dim(d, x.ndim) for d in dim)
    if len(set(dims)) != len(dims):
        raise ShapeError("FFT dims must be unique")
    sizes = tuple(x.shape[d] for d in dims) if s is None else tuple(
        x.shape[d] if n == -1 else n for d, n in zip(dims, s))
    for n in sizes:
        if n < 1:
            raise ShapeError(f"Invalid number of data points ({n}) specified")
    return dims, sizes


def _fft_dim(d: int, ndim: int) -> int:
    if ndim == 0:
        raise IndexError(f"Dimension specified as {d} but tensor has no dimensions")
    return _wrap_dim(d, ndim)


def _run(fn, input, s, dim, norm, out, name, *, one_d=False):
    """Transform ``fn`` of ``input`` with torch's arguments: ``s``/``dim`` (``one_d``: ``n`` and
    one ``dim``), ``norm``, ``out``; ``name`` for errors."""
    real_only = fn in ("rfft", "ihfft")
    x = _input(input, name, real_only)
    if one_d:  # (input, n, dim): one dim, n its size
        dims, sizes = _plan(x, None if s is None else (s,), (dim,))
    else:
        dims, sizes = _plan(x, s, dim)
    if fn in ("irfft", "hfft") and (s is None or (not one_d and s[-1] == -1)):
        sizes = sizes[:-1] + (2 * (x.shape[dims[-1]] - 1),)  # the default real length
        if sizes[-1] < 1:
            raise ShapeError(f"Invalid number of data points ({sizes[-1]}) specified")
    result = apply(OPS["fft"], (x,), (fn, sizes, dims, _norm(norm)))
    from ._api.math import _out
    return _out(result, out)


# ---- one-dimensional ------------------------------------------------------------------------------

def fft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The one-dimensional discrete Fourier transform of ``input`` along ``dim``.

    Args:
        input: the signal (real inputs are taken as complex).
        n: the signal length: the input is zero-padded or trimmed to it (default: its size).
        dim: the dimension transformed.
        norm: "backward" (default), "ortho" or "forward".

    >>> import tracenn
    >>> tracenn.fft.fft(tracenn.tensor([0.0, 1.0, 0.0, 0.0]))
    tensor([ 1.+0.j,  0.-1.j, -1.+0.j,  0.+1.j])
    """
    return _run("fft", input, n, dim, norm, out, "fft", one_d=True)


def ifft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The one-dimensional inverse discrete Fourier transform (the inverse of :func:`fft`).

    >>> import tracenn
    >>> tracenn.fft.ifft(tracenn.fft.fft(tracenn.tensor([1.0, 2.0, 3.0]))).real
    tensor([1., 2., 3.])
    """
    return _run("ifft", input, n, dim, norm, out, "ifft", one_d=True)


def rfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The Fourier transform of a real signal: the ``n // 2 + 1`` non-negative frequencies.

    >>> import tracenn
    >>> tracenn.fft.rfft(tracenn.tensor([1.0, 2.0, 3.0, 4.0]))
    tensor([10.+0.j, -2.+2.j, -2.+0.j])
    """
    return _run("rfft", input, n, dim, norm, out, "rfft", one_d=True)


def irfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The inverse of :func:`rfft`: a real signal of length ``n`` (default ``2 * (m - 1)`` for
    ``m`` input frequencies) from its non-negative frequencies.

    >>> import tracenn
    >>> tracenn.fft.irfft(tracenn.fft.rfft(tracenn.tensor([1.0, 2.0, 3.0, 4.0])))
    tensor([1., 2., 3., 4.])
    """
    return _run("irfft", input, n, dim, norm, out, "irfft", one_d=True)


def hfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The Fourier transform of a Hermitian-symmetric signal given by its first half: a real
    spectrum of length ``n`` (default ``2 * (m - 1)``).

    >>> import tracenn
    >>> tracenn.fft.hfft(tracenn.tensor([1.0, 2.0, 3.0]))
    tensor([ 8., -2.,  0., -2.])
    """
    return _run("hfft", input, n, dim, norm, out, "hfft", one_d=True)


def ihfft(input, n=None, dim=-1, norm=None, *, out=None) -> Tensor:
    """The inverse of :func:`hfft`: the first half of the Hermitian signal whose transform is the
    real ``input``.

    >>> import tracenn
    >>> tracenn.fft.ihfft(tracenn.tensor([8.0, -2.0, 0.0, -2.0]))
    tensor([1.-0.j, 2.-0.j, 3.-0.j])
    """
    return _run("ihfft", input, n, dim, norm, out, "ihfft", one_d=True)


# ---- n-dimensional ----------------------------------------------------------------------------------

def fftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The N-dimensional discrete Fourier transform over ``dim`` (default: the last ``len(s)``
    dims, or all of them), each padded or trimmed to the size in ``s`` (-1: unchanged).

    >>> import tracenn
    >>> tracenn.fft.fftn(tracenn.ones(2, 2))
    tensor([[4.+0.j, 0.+0.j],
            [0.+0.j, 0.+0.j]])
    """
    return _run("fft", input, s, dim, norm, out, "fftn")


def ifftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The N-dimensional inverse of :func:`fftn`.

    >>> import tracenn
    >>> tracenn.fft.ifftn(tracenn.fft.fftn(tracenn.tensor([[1.0, 2.0], [3.0, 4.0]]))).real
    tensor([[1., 2.],
            [3., 4.]])
    """
    return _run("ifft", input, s, dim, norm, out, "ifftn")


def rfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The N-dimensional transform of a real signal; the last of ``dim`` keeps the non-negative
    frequencies only.

    >>> import tracenn
    >>> tracenn.fft.rfftn(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 3])
    """
    return _run("rfft", input, s, dim, norm, out, "rfftn")


def irfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The inverse of :func:`rfftn`: a real signal of sizes ``s`` (the last one defaults to
    ``2 * (m - 1)``).

    >>> import tracenn
    >>> x = tracenn.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0, 1.0]])
    >>> tracenn.fft.irfftn(tracenn.fft.rfftn(x))
    tensor([[1., 2., 3., 4.],
            [0., 1., 0., 1.]])
    """
    return _run("irfft", input, s, dim, norm, out, "irfftn")


def hfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The N-dimensional :func:`hfft`: ``irfftn`` of the conjugate with the normalisation swapped.

    >>> import tracenn
    >>> tracenn.fft.hfftn(tracenn.ones(2, 2)).shape
    tracenn.Size([2, 2])
    """
    return _run("hfft", input, s, dim, norm, out, "hfftn")


def ihfftn(input, s=None, dim=None, norm=None, *, out=None) -> Tensor:
    """The N-dimensional inverse of :func:`hfftn` (the conjugate of ``rfftn``, normalisation swapped).

    >>> import tracenn
    >>> tracenn.fft.ihfftn(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 3])
    """
    return _run("ihfft", input, s, dim, norm, out, "ihfftn")


def fft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`fftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.fft2(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 4])
    """
    return _run("fft", input, s, dim, norm, out, "fft2")


def ifft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`ifftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.ifft2(tracenn.ones(2, 4), s=(3, 3)).shape
    tracenn.Size([3, 3])
    """
    return _run("ifft", input, s, dim, norm, out, "ifft2")


def rfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`rfftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.rfft2(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 3])
    """
    return _run("rfft", input, s, dim, norm, out, "rfft2")


def irfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`irfftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.irfft2(tracenn.fft.rfft2(tracenn.ones(2, 4)))
    tensor([[1., 1., 1., 1.],
            [1., 1., 1., 1.]])
    """
    return _run("irfft", input, s, dim, norm, out, "irfft2")


def hfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`hfftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.hfft2(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 6])
    """
    return _run("hfft", input, s, dim, norm, out, "hfft2")


def ihfft2(input, s=None, dim=(-2, -1), norm=None, *, out=None) -> Tensor:
    """:func:`ihfftn` over two dims (default the last two).

    >>> import tracenn
    >>> tracenn.fft.ihfft2(tracenn.ones(2, 4)).shape
    tracenn.Size([2, 3])
    """
    return _run("ihfft", input, s, dim, norm, out, "ihfft2")


# ---- helpers ---------------------------------------------------------------------------------------

def fftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of an ``n``-point transform with sample spacing ``d``:
    ``[0, 1, ..., (n - 1) // 2, -(n // 2), ..., -1] / (d * n)``.

    >>> import tracenn
    >>> tracenn.fft.fftfreq(5)
    tensor([ 0.0000,  0.2000,  0.4000, -0.4000, -0.2000])
    """
    k = np.concatenate([np.arange((n - 1) // 2 + 1), np.arange(-(n // 2), 0)])
    return _freq(k / (d * n), out, dtype, device, requires_grad)


def rfftfreq(n, d=1.0, *, out=None, dtype=None, layout=None, device=None, requires_grad=False) -> Tensor:
    """The sample frequencies of :func:`rfft`: ``[0, 1, ..., n // 2] / (d * n)``.

    >>> import tracenn
    >>> tracenn.fft.rfftfreq(6, 2.0)
    tensor([0.0000, 0.0833, 0.1667, 0.2500])
    """
    return _freq(np.arange(n // 2 + 1) / (d * n), out, dtype, device, requires_grad)


def _freq(values, out, dtype, device, requires_grad):
    from ._api.creation import tensor
    from ._api.math import _out
    t = tensor(values, dtype=dtype or _dt.get_default_dtype(), device=device, requires_grad=requires_grad)
    return _out(t, out)


def _shift_dims(input, dim):
    if dim is None:
        return tuple(range(input.ndim))
    return (dim,) if isinstance(dim, int) else tuple(dim)


def fftshift(input, dim=None) -> Tensor:
    """Move the zero frequency to the centre: roll each of ``dim`` (default all) by ``size // 2``.

    >>> import tracenn
    >>> tracenn.fft.fftshift(tracenn.fft.fftfreq(4))
    tensor([-0.5000, -0.2500,  0.0000,  0.2500])
    """
    from ._api.shape import roll
    dims = _shift_dims(input, dim)
    return roll(input, tuple(input.shape[d] // 2 for d in dims), dims)


def ifftshift(input, dim=None) -> Tensor:
    """The inverse of :func:`fftshift`: roll each of ``dim`` (default all) by ``-(size // 2)``.

    >>> import tracenn
    >>> tracenn.fft.ifftshift(tracenn.fft.fftshift(tracenn.arange(5)))
    tensor([0, 1, 2, 3, 4])
    """
    from ._api.shape import roll
    dims = _shift_dims(input, dim)
    return roll(input, tuple(-(input.shape[d] // 2) for d in dims), dims)
