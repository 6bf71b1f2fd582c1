"""The discrete Fourier transforms: one primitive, ``fft``, keyed by the transform's kind.

``fn`` is one of fft, ifft (complex to complex), rfft (real to the one-sided half spectrum),
irfft (its inverse, real result), hfft and ihfft (the Hermitian pair: irfft of the conjugate and
the conjugate of rfft, with the normalisation swapped, as numpy's and torch's). ``s`` gives the
signal size along each of ``dims`` (inputs are zero-padded or trimmed to it; for irfft/hfft the
real output's sizes), ``norm`` is "backward", "ortho" or "forward". The caller resolves defaults
and checks arguments (``tracenn/fft.py``).

Gradients: JAX's vjp of the transform (it has no hand-written rule), which eager autograd and the
compiled program conjugate into torch's convention.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from .registry import register

_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _pad_or_trim(x, sizes, dims):
    """``x`` zero-padded or trimmed to ``sizes`` along ``dims`` (jnp.fft's rfftn/irfftn apply
    ``s`` only where they transform, so the caller fits the input first)."""
    for n, d in zip(sizes, dims):
        m = x.shape[d]
        if m > n:
            x = lax.slice_in_dim(x, 0, n, axis=d)
        elif m < n:
            pad = [(0, 0)] * x.ndim
            pad[d] = (0, n - m)
            x = jnp.pad(x, pad)
    return x


@register("fft", static=("fn", "s", "dims", "norm"), saves=())
def _fft(x, *, fn, s, dims, norm):
    """The transform ``fn`` over ``dims`` (sizes ``s``) with normalisation ``norm``."""
    if fn == "fft":
        return jnp.fft.fftn(_pad_or_trim(x, s, dims), axes=dims, norm=norm)
    if fn == "ifft":
        return jnp.fft.ifftn(_pad_or_trim(x, s, dims), axes=dims, norm=norm)
    if fn in ("rfft", "ihfft"):
        out = jnp.fft.rfftn(_pad_or_trim(x, s, dims), axes=dims, norm=norm if fn == "rfft" else _SWAP[norm])
        return out if fn == "rfft" else jnp.conj(out)
    # irfft / hfft: the input holds s[-1] // 2 + 1 bins along the last dim
    half = s[:-1] + (s[-1] // 2 + 1,)
    x = _pad_or_trim(x, half, dims)
    if fn == "irfft":
        return jnp.fft.irfftn(x, s=s, axes=dims, norm=norm)
    return jnp.fft.irfftn(jnp.conj(x), s=s, axes=dims, norm=_SWAP[norm])
