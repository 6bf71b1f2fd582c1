"""``torch.quasirandom``: the Sobol low-discrepancy sequence engine.

The sequence depends only on the dimension, the direction numbers and a point counter, so it is
computed on the host in int64 NumPy (as torch computes it on the CPU) and handed out as tensors:
constants under ``tracenn.compile``. Unscrambled points equal torch's bit for bit. Scrambled points use
tracenn's random generator for the random shift and the lower-triangular scrambling matrices, so they
are a different (equally valid) Owen-scrambled sequence than torch's for the same ``seed``; the
scrambling itself (what is done with those random bits) is torch's.
"""
from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np

from . import dtypes as _dt

__all__ = ["SobolEngine"]

_MAXBIT = 30
_MAXDIM = 21201


@functools.lru_cache(maxsize=1)
def _joe_kuo_table():
    """Joe and Kuo's ``new-joe-kuo-6.21201`` primitive polynomials and initial direction numbers (the
    table torch compiles in). SciPy (a JAX dependency) ships it for ``scipy.stats.qmc.Sobol``."""
    # find scipy.stats's folder without importing scipy.stats (seconds)
    spec = importlib.util.find_spec("scipy.stats")
    path = os.path.join(spec.submodule_search_locations[0], "_sobol_direction_numbers.npz")
    try:
        table = np.load(path)
    except OSError as e:
        raise RuntimeError(f"SobolEngine needs the Joe-Kuo direction numbers that SciPy ships at {path}; "
                           "reinstall scipy to get them") from e
    return table["poly"].astype(np.int64), table["vinit"].astype(np.int64)


def _direction_numbers(dimension: int) -> np.ndarray:
    """The ``(dimension, 30)`` int64 state of torch's ``_sobol_engine_initialize_state_``: column ``j``
    of row ``d`` is direction number ``v_{d,j}`` scaled to 30 bits (``m_{d,j} << (29 - j)``)."""
    poly, vinit = _joe_kuo_table()
    poly, vinit = poly[:dimension], vinit[:dimension]
    deg = np.array([int(p).bit_length() - 1 for p in poly], dtype=np.int64)
    m = np.zeros((dimension, _MAXBIT), dtype=np.int64)
    m[0] = 1  # the first dimension is the van der Corput sequence
    rows = np.arange(1, dimension)
    cols = np.arange(_MAXBIT)
    m[1:, :vinit.shape[1]] = np.where(cols[None, :vinit.shape[1]] < deg[1:, None], vinit[1:], 0)
    # The recurrence of Bratley and Fox: m_j = m_{j-s} ^ (2^s m_{j-s}) ^ XOR_k a_k 2^k m_{j-k}, where the
    # bits a_k are the inner coefficients of the row's degree-s primitive polynomial.
    for j in range(1, _MAXBIT):
        s = deg[rows]
        todo = rows[j >= s]
        if todo.size == 0:
            continue
        s = deg[todo]
        p = poly[todo]
        new = m[todo, j - s]
        for k in range(int(s.max())):
            use = (k < s) & (((p >> np.maximum(s - 1 - k, 0)) & 1) == 1)
            prev = m[todo, np.maximum(j - k - 1, 0)]
            new = np.where(use, new ^ (prev << (k + 1)), new)
        m[todo, j] = new
    return m << np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64)


def _rightmost_zero(counts: np.ndarray) -> np.ndarray:
    """The index of the lowest 0 bit of each count (Gray-code order flips that direction number)."""
    ones = (~counts) & (counts + 1)  # the lowest 0 bit of counts, as a power of two
    return np.log2(ones.astype(np.float64)).astype(np.int64)


def _scramble(state: np.ndarray, ltm: np.ndarray) -> np.ndarray:
    """torch's ``_sobol_engine_scramble_``: multiply every direction number, as a bit vector with its
    most significant bit first, by the dimension's lower-triangular bit matrix (ones forced on the
    diagonal) over GF(2): Owen's linear matrix scramble."""
    ltm = ltm.copy()
    idx = np.arange(_MAXBIT)
    ltm[:, idx, idx] = 1
    msb_first = np.arange(_MAXBIT - 1, -1, -1, dtype=np.int64)
    bits = (state[:, :, None] >> msb_first) & 1                          # (d, j, k): bit k of v_dj
    # (d, j, p): row p . v_dj; in float64 so a BLAS product does it (the sums are at most 30, exact)
    prods = np.matmul(bits.astype(np.float64), ltm.transpose(0, 2, 1).astype(np.float64)).astype(np.int64) % 2
    return (prods << msb_first).sum(-1)


class SobolEngine:
    r"""An engine for (scrambled) Sobol sequences, low-discrepancy quasi-random points in
    :math:`[0, 1)^{dimension}`, as ``torch.quasirandom.SobolEngine``.

    It uses the direction numbers of Joe and Kuo (search criterion D(6)) up to dimension 21201, as torch.
    Points come in Gray-code order, the first point being 0 (or the random shift when scrambled).

    Args:
        dimension (int): the dimensionality of the points, in ``[1, 21201]``.
        scramble (bool, optional): ``True`` gives Owen-scrambled points (a random linear matrix scramble
            plus a random digital shift). Default: ``False``.
        seed (int, optional): the seed of the scrambling's random generator; ``None`` draws from
            tracenn's default generator. tracenn's generator is not torch's, so scrambled points differ
            from torch's for the same seed (unscrambled points are torch's exactly).

    >>> import tracenn as torch
    >>> torch.quasirandom.SobolEngine(dimension=5).draw(3)
    tensor([[0.0000, 0.0000, 0.0000, 0.0000, 0.0000],
            [0.5000, 0.5000, 0.5000, 0.5000, 0.5000],
            [0.7500, 0.2500, 0.2500, 0.2500, 0.7500]])
    """

    MAXBIT = _MAXBIT
    MAXDIM = _MAXDIM

    def __init__(self, dimension, scramble=False, seed=None):
        if dimension > self.MAXDIM or dimension < 1:
            raise ValueError(f"Supported range of dimensionality for SobolEngine is [1, {self.MAXDIM}]")
        self.seed = seed
        self.scramble = scramble
        self.dimension = dimension
        self._state = _direction_numbers(dimension)
        if scramble:
            self._shift = self._scramble()
        else:
            self._shift = np.zeros(dimension, dtype=np.int64)
        self._quasi = self._shift.copy()
        # torch divides the long shift by 2**30 in the default dtype when constructed, and casts that row
        # to the requested dtype when drawn: keep its precision.
        self._first_point_np = (self._shift.astype(_dt.get_default_dtype().np) / 2 ** self.MAXBIT).reshape(1, -1)
        self.num_generated = 0

    def _scramble(self) -> np.ndarray:
        from . import random
        g = None
        if self.seed is not None:
            g = random.Generator()
            g.manual_seed(self.seed)
        shift_bits = random.randint(2, (self.dimension, self.MAXBIT), generator=g).numpy()
        shift = shift_bits @ (np.int64(1) << np.arange(self.MAXBIT, dtype=np.int64))
        ltm = np.tril(random.randint(2, (self.dimension, self.MAXBIT, self.MAXBIT), generator=g).numpy())
        self._state = _scramble(self._state, ltm)
        return shift

    # torch keeps these as attributes: expose them as int64 tensors (copies of the host state).
    @property
    def sobolstate(self):
        """The ``(dimension, 30)`` int64 direction numbers (scrambled when ``scramble=True``)."""
        return _tensor(self._state)

    @property
    def shift(self):
        """The int64 digital shift per dimension (zeros unless scrambled)."""
        return _tensor(self._shift)

    @property
    def quasi(self):
        """The int64 current point of the sequence (before scaling by ``2**-30``)."""
        return _tensor(self._quasi)

    @property
    def _first_point(self):
        return _tensor(self._first_point_np)

    def _advance(self, n: int, start: int) -> np.ndarray:
        """The next ``n`` points as int64 rows, flipping the direction number of the lowest 0 bit of the
        counts ``start, start+1, ...``; moves the current point to the last of them."""
        if n < 0:
            raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}, {self.dimension}]")
        if n == 0:
            return np.zeros((0, self.dimension), dtype=np.int64)
        steps = self._state[:, _rightmost_zero(np.arange(start, start + n, dtype=np.int64))].T
        points = np.bitwise_xor.accumulate(steps, axis=0) ^ self._quasi
        self._quasi = points[-1].copy()
        return points

    def _check_draw_dtype(self, dtype):
        if dtype not in (_dt.float32, _dt.float64):
            raise NotImplementedError(f"\"_sobol_engine_draw\" not implemented for '{_dt.scalar_type_name(dtype)}'")

    def draw(self, n: int = 1, out=None, dtype=None):
        r"""Draw the next :attr:`n` points of the sequence, a ``(n, dimension)`` tensor. Points depend on
        those drawn before.

        Args:
            n (int, optional): how many points. Default: 1
            out (Tensor, optional): the output tensor (resized to the result).
            dtype (:class:`tracenn.dtype`, optional): float32 or float64 (torch's kernel supports only
                these). Default: ``tracenn.get_default_dtype()``.
        """
        dtype = _dt.get_default_dtype() if dtype is None else _dt.as_dtype(dtype)
        if self.num_generated == 0:
            if n == 1:
                result = self._first_point_np.astype(dtype.np)
            else:
                self._check_draw_dtype(dtype)
                rest = self._advance(n - 1, 0)
                result = np.concatenate([self._first_point_np.astype(dtype.np), self._scale(rest, dtype)])
        else:
            self._check_draw_dtype(dtype)
            result = self._scale(self._advance(n, self.num_generated - 1), dtype)
        self.num_generated += n
        result = _tensor(result)
        if out is not None:
            out.resize_as_(result).copy_(result)
            return out
        return result

    def _scale(self, points: np.ndarray, dtype) -> np.ndarray:
        # as torch: round the 30-bit integers to the dtype, then scale by 2**-30 (exact)
        return points.astype(dtype.np) * dtype.np.type(2.0 ** -self.MAXBIT)

    def draw_base2(self, m: int, out=None, dtype=None):
        r"""Draw the next ``2**m`` points. Sobol points are balanced only in runs whose total count is a
        power of two, so the count drawn so far plus ``2**m`` must be one (else ``ValueError``).

        Args:
            m (int): the base-2 exponent of the number of points.
            out (Tensor, optional): the output tensor.
            dtype (:class:`tracenn.dtype`, optional): as :meth:`draw`.
        """
        n = 2 ** m
        total_n = self.num_generated + n
        if not (total_n & (total_n - 1) == 0):
            raise ValueError("The balance properties of Sobol' points require "
                             f"n to be a power of 2. {self.num_generated} points have been "
                             f"previously generated, then: n={self.num_generated}+2**{m}={total_n}. "
                             "If you still want to do this, please use 'SobolEngine.draw()' instead.")
        return self.draw(n=n, out=out, dtype=dtype)

    def reset(self):
        r"""Return the engine to its first point (the scrambling is kept). Returns ``self``."""
        self._quasi = self._shift.copy()
        self.num_generated = 0
        return self

    def fast_forward(self, n):
        r"""Skip :attr:`n` points, as if they had been drawn. Returns ``self``.

        Args:
            n (int): the number of points to skip.
        """
        if self.num_generated == 0:
            self._advance(max(n - 1, 0), 0)
        else:
            self._advance(n, self.num_generated - 1)
        self.num_generated += n
        return self

    def __repr__(self):
        fmt_string = [f"dimension={self.dimension}"]
        if self.scramble:
            fmt_string += ["scramble=True"]
        if self.seed is not None:
            fmt_string += [f"seed={self.seed}"]
        return self.__class__.__name__ + "(" + ", ".join(fmt_string) + ")"


def _tensor(arr):
    from ._api.creation import tensor
    return tensor(arr)
