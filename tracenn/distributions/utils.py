"""torch.distributions.utils: the helpers distribution code imports (``broadcast_all``,
``probs_to_logits``, ``logits_to_probs``, ``clamp_probs``, ``lazy_property``, ``tril_matrix_to_vec``,
``vec_to_tril_matrix``, ``euler_constant``).

The triangle <-> vector maps are gathers through index tables built in NumPy from the static
sizes, so they differentiate and compile like any gather.

>>> import tracenn
>>> vec_to_tril_matrix(tracenn.tensor([1.0, 2.0, 3.0]))
tensor([[1., 0.],
        [2., 3.]])
"""
from __future__ import annotations

import numpy as np

from ._dists import _Lazy as lazy_property
from ._dists import _sum_rightmost, broadcast_all, clamp_probs, logits_to_probs, probs_to_logits

__all__ = ["broadcast_all", "probs_to_logits", "logits_to_probs", "clamp_probs", "lazy_property",
           "tril_matrix_to_vec", "vec_to_tril_matrix", "euler_constant", "_sum_rightmost"]

euler_constant = 0.57721566490153286060


def _tril_positions(n: int, diag: int) -> np.ndarray:
    """Row-major flat positions in an ``n x n`` matrix of the entries with ``col < row + diag + 1``."""
    arange = np.arange(n)
    return np.flatnonzero(arange[None, :] < arange[:, None] + (diag + 1))


def _standard_normal(shape, dtype, device):
    import tracenn
    return tracenn.randn(tuple(shape), dtype=dtype, device=device)


def tril_matrix_to_vec(mat, diag: int = 0):
    """The entries of ``mat``'s lower triangle (below diagonal ``diag``), row by row."""
    import tracenn
    n = mat.shape[-1]
    if diag < -n or diag >= n:
        raise ValueError(f"diag ({diag}) provided is outside [{-n}, {n - 1}].")
    index = tracenn.tensor(_tril_positions(n, diag), dtype=tracenn.int64, device=mat.device)
    return mat.reshape(tuple(mat.shape[:-2]) + (-1,))[..., index]


def vec_to_tril_matrix(vec, diag: int = 0):
    """The inverse of :func:`tril_matrix_to_vec`: a square matrix, zeros above diagonal ``diag``."""
    import tracenn
    size = vec.shape[-1]
    n = (-(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * size + 4 * abs(diag) * (diag + 1)) ** 0.5) / 2
    eps = float(np.finfo(np.float32).eps) if vec.dtype != tracenn.float64 else float(np.finfo(np.float64).eps)
    if round(n) - n > eps:
        raise ValueError(f"The size of last dimension is {size} which cannot be expressed as the lower triangular "
                         "part of a square D x D matrix.")
    n = round(n)
    source = np.zeros(n * n, dtype=np.int64)  # 0 reads the zero put in front of vec
    source[_tril_positions(n, diag)] = np.arange(1, size + 1)
    padded = tracenn.cat([vec.new_zeros(tuple(vec.shape[:-1]) + (1,)), vec], -1)
    index = tracenn.tensor(source, dtype=tracenn.int64, device=vec.device)
    return padded[..., index].reshape(tuple(vec.shape[:-1]) + (n, n))
