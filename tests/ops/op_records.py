"""The op table: one :class:`OpRecord` per public op, read by ``test_op_table.py`` (and by
``test_registry.py`` to exercise every primitive).

A record says how to call the op on a namespace ``T`` (``tracenn`` or the real ``torch`` — the
same lambda serves both, which is the point of the project), a NumPy reference, the sample inputs,
the torch dtype rule of the result, and whether it is differentiable. Adding an op adds a row here;
the tests pick it up for forward vs NumPy, gradients vs finite differences and parity with torch.

Sample inputs are plain NumPy arrays (converted to tensors of the same dtype by the tests), Python
numbers (passed as they are) and anything else (dims, index tuples) passed through unchanged.
Every new (op, shape, dtype) costs a jit compile (~50 ms), so samples are few and small, and the
forward, gradient and torch checks reuse the same ones. ``Sample(...).slow()`` moves a sample to the
``-m slow`` pass; ``.no_fd()`` marks a point where finite differences are meaningless (a tie) so its
gradient is checked against torch only.
"""
from __future__ import annotations

import itertools
import math
import operator

import ml_dtypes
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F16, BF16, F32, F64 = "float16", "bfloat16", "float32", "float64"
I32, I64, U8, BOOL = "int32", "int64", "uint8", "bool"
FLOATS = (F16, BF16, F32, F64)

_rng = np.random.default_rng(1234)


def np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == BF16 else np.dtype(name)


def arr(shape, dtype=F32, lo=-2.0, hi=2.0, *, distinct=False):
    """A random array of ``shape``/``dtype`` with values in [lo, hi] (ints: integers in range)."""
    shape = tuple(shape)
    n = math.prod(shape)
    if dtype == BOOL:
        return np.asarray(_rng.random(shape) < 0.5)
    if np_dtype(dtype).kind in "iu":
        lo_i, hi_i = math.ceil(lo), math.floor(hi)
        if distinct:
            return (_rng.permutation(n) + lo_i).reshape(shape).astype(dtype)
        return np.asarray(_rng.integers(lo_i, hi_i + 1, size=shape), dtype=dtype)  # 0-d: an array, not a scalar
    v = _rng.uniform(lo, hi, size=shape)
    if distinct:  # well separated values: no ties, even after rounding to half precision
        v = (_rng.permutation(n) * 0.25 + lo).reshape(shape)
    return np.asarray(v, dtype=np_dtype(dtype))


def I(*values):  # noqa: E743 - an int64 index tensor
    return np.array(values, np.int64)


def special(dtype=F32):
    """NaN, infinities, signed zeros and ordinary values."""
    return np.array([[np.nan, np.inf, -np.inf], [0.0, -0.0, 1.5]], dtype=np_dtype(dtype))


class Sample:
    """One call: positional ``args`` and keyword ``kwargs`` for the op, the reference and torch."""

    __slots__ = ("args", "kwargs", "is_slow", "fd")

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs, self.is_slow, self.fd = args, kwargs, False, True

    def slow(self):
        """Run this sample only in the exhaustive (``-m slow``) pass: every jit compile costs ~50 ms."""
        self.is_slow = True
        return self

    def no_fd(self):
        """A point where the op is not differentiable (a tie): check the gradient against torch only."""
        self.fd = False
        return self

    def arrays(self):
        return [a for a in self.args if isinstance(a, np.ndarray)]

    def is_grad_sample(self):
        """float64 tensors only (at least one): the samples gradients are checked on."""
        a = self.arrays()
        floats = [x for x in a if x.dtype.kind == "f" or x.dtype == np_dtype(BF16)]
        return (bool(floats) and all(x.dtype == np.float64 for x in floats)
                and all(np.isfinite(x).all() for x in floats))

    def __repr__(self):
        def d(a):
            if isinstance(a, np.ndarray):
                return f"{'bfloat16' if a.dtype == np_dtype(BF16) else a.dtype}{list(a.shape)}"
            if isinstance(a, (list, tuple)) and any(isinstance(x, np.ndarray) for x in a):
                return type(a)(d(x) for x in a)
            return repr(a)
        parts = [str(d(a)) for a in self.args] + [f"{k}={d(v)}" for k, v in self.kwargs.items()]
        return f"({', '.join(parts)})"


class OpRecord:
    """One public op.

    Args:
        name: the public name (a variant gets a suffix: ``div[floor]``).
        op: ``op(T, *args, **kwargs)`` for ``T`` in (tracenn, torch); default ``getattr(T, name)``.
        ref: NumPy reference with the op's signature (floats arrive as float64), or None.
        samples: the sample inputs.
        dtype: the result dtype rule: "promote" (torch.result_type of the positional operands),
            "float" (promote, then int/bool -> float32), "same" (first tensor's), "sum" (int/bool ->
            int64), a dtype name, a callable(sample) -> name, or a tuple of these per output.
        grad: differentiable: check gradients on the float64 samples.
        tol: multiplies the per-dtype tolerances.
        xfail: {"forward" | "grad" | "torch" | "torch_grad": reason} for known bugs in files
            this table's owner does not own (strict xfails: they fail loudly once fixed).
        upcast: give the reference float64 inputs (False: the sample's own dtypes).
    """

    def __init__(self, name, op=None, ref=None, samples=(), dtype="same", grad=True, tol=1.0,
                 xfail=None, torch_op=None, upcast=True):
        self.name = name
        self.op = op if op is not None else _by_name(name)
        self.ref = ref
        self.samples = list(samples)
        self.dtype = dtype
        self.grad = grad
        self.tol = tol
        self.xfail = xfail or {}
        self.torch_op = torch_op or self.op
        self.upcast = upcast

    @property
    def fast(self):
        """The samples of the default run."""
        return [s for s in self.samples if not s.is_slow]

    def __repr__(self):
        return f"OpRecord({self.name})"


def _by_name(name):
    def call(T, *args, **kwargs):
        return getattr(T, name)(*args, **kwargs)
    return call


def _is_tensor(x):
    return hasattr(x, "shape") and hasattr(x, "dtype")


RECORDS: list[OpRecord] = []


def rec(*args, **kwargs):
    r = OpRecord(*args, **kwargs)
    RECORDS.append(r)
    return r


# ---- references that NumPy lacks -------------------------------------------------------------------

def _vec(f):
    v = np.vectorize(f, otypes=[np.float64])
    return lambda x: v(np.asarray(x, np.float64))


_erf, _erfc, _lgamma = _vec(math.erf), _vec(math.erfc), _vec(math.lgamma)


def _erfinv(y):
    y = np.asarray(y, np.float64)
    x = np.zeros_like(y)
    for _ in range(60):  # Newton on erf(x) = y
        x = x - (_erf(x) - y) / (2 / np.sqrt(np.pi) * np.exp(-x * x))
    return x


def _digamma(x):
    x = np.asarray(x, np.float64)
    h = 1e-5  # d/dx lgamma, 4th-order central difference
    return (-_lgamma(x + 2 * h) + 8 * _lgamma(x + h) - 8 * _lgamma(x - h) + _lgamma(x - 2 * h)) / (12 * h)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _round(x, decimals=0):
    return np.round(x, decimals)


# ---- elementwise unary -------------------------------------------------------------------------

def unary_samples(lo=-2.0, hi=2.0, *, ints=True, half=False):
    """float32, float64 (gradients), int64 (promotes to float32 where the op is floating); half types
    for ``half`` ops; 0-d, empty and the rest in the slow pass."""
    s = [Sample(arr((2, 3), F32, lo, hi)), Sample(arr((2, 3), F64, lo, hi)),
         Sample(arr((), F32, lo, hi)).slow(), Sample(arr((0, 3), F32, lo, hi)).slow(),
         Sample(arr((), F64, lo, hi)).slow()]
    if ints:
        s += [Sample(arr((2, 3), I64, lo, hi)), Sample(arr((3,), I32, lo, hi)).slow()]
    s += [Sample(arr((2, 3), F16, lo, hi)), Sample(arr((2, 3), BF16, lo, hi))]
    if not half:
        s[-2].slow()
        s[-1].slow()
    return s


_UNARY_FLOAT = [  # name, reference, domain (lo, hi); int inputs compute in float32
    ("exp", np.exp, (-2, 2)), ("exp2", np.exp2, (-2, 2)), ("expm1", np.expm1, (-2, 2)),
    ("log", np.log, (0.2, 3)), ("log2", np.log2, (0.2, 3)), ("log10", np.log10, (0.2, 3)),
    ("log1p", np.log1p, (-0.8, 3)), ("sqrt", np.sqrt, (0.2, 3)),
    ("rsqrt", lambda x: 1 / np.sqrt(x), (0.2, 3)), ("reciprocal", lambda x: 1 / x, (0.3, 3)),
    ("sin", np.sin, (-3, 3)), ("cos", np.cos, (-3, 3)), ("tan", np.tan, (-1.2, 1.2)),
    ("asin", np.arcsin, (-0.9, 0.9)), ("acos", np.arccos, (-0.9, 0.9)), ("atan", np.arctan, (-3, 3)),
    ("sinh", np.sinh, (-2, 2)), ("cosh", np.cosh, (-2, 2)), ("tanh", np.tanh, (-2, 2)),
    ("asinh", np.arcsinh, (-3, 3)), ("acosh", np.arccosh, (1.2, 3)), ("atanh", np.arctanh, (-0.9, 0.9)),
    ("sigmoid", _sigmoid, (-4, 4)), ("erf", _erf, (-2, 2)), ("erfc", _erfc, (-2, 2)),
    ("erfinv", _erfinv, (-0.9, 0.9)), ("lgamma", _lgamma, (0.3, 4)), ("digamma", _digamma, (0.5, 4)),
]
_HALF = ("exp", "log", "sqrt", "rsqrt", "sin", "tanh", "sigmoid", "erf")  # also float16/bfloat16 samples
for _name, _ref, (_lo, _hi) in _UNARY_FLOAT:
    rec(_name, ref=_ref, samples=unary_samples(_lo, _hi, half=_name in _HALF), dtype="float",
        tol=3.0 if _name in ("digamma", "lgamma", "erfinv") else 1.0)
rec("sigmoid[nonfinite]", lambda T, x: T.sigmoid(x), _sigmoid, [Sample(special())], "float", grad=False)
rec("digamma[poles]", lambda T, x: T.digamma(x),  # torch: -inf at +0, +inf at -0, nan at negative integers
    lambda x: np.where(x == 0, np.copysign(np.inf, -x), np.where((x < 0) & (x == np.round(x)), np.nan, _digamma(x))),
    [Sample(np.array([0.0, -0.0, -1.0, -2.0, 1.0], F32))], "float", grad=False)

_UNARY_SAME = [  # name, reference, differentiable, extra sample options
    ("neg", np.negative, True, {}), ("abs", np.abs, True, {}),
    ("sign", np.sign, True, {}), ("sgn", np.sign, True, {}),
    ("floor", np.floor, True, {}), ("ceil", np.ceil, True, {}), ("trunc", np.trunc, True, {}),
    ("frac", lambda x: x - np.trunc(x), True, {"ints": False}),
    ("relu", lambda x: np.maximum(x, 0), True, {}),
    ("square", np.square, True, {}),
    ("round", np.round, True, {}),
]
for _name, _ref, _grad, _opts in _UNARY_SAME:
    rec(_name, ref=_ref, samples=unary_samples(-3, 3, half=_name in ("abs", "floor", "relu"), **_opts),
        dtype="same", grad=_grad)
rec("round[decimals]", lambda T, x, decimals: T.round(x, decimals=decimals),
    lambda x, decimals: np.round(x, decimals),
    [Sample(arr((2, 3), F32, -30, 30), 1), Sample(arr((2, 3), F64, -300, 300), -1),
     Sample(arr((2, 3), F64), 2)], "same")
for _name, _ref in [("isnan", np.isnan), ("isinf", np.isinf), ("isfinite", np.isfinite),
                    ("signbit", np.signbit)]:
    rec(_name, ref=_ref, samples=[Sample(special()), Sample(special(F64)), Sample(special(F16)),
                                 Sample(arr((2, 3), I64)), Sample(arr((), F32))], dtype=BOOL, grad=False)
rec("logical_not", ref=np.logical_not, dtype=BOOL, grad=False,
    samples=[Sample(arr((2, 3), BOOL)), Sample(arr((2, 3), I64, -1, 1)), Sample(arr((), F32, -1, 1)),
             Sample(special())])
rec("bitwise_not", ref=np.invert, dtype="same", grad=False,
    samples=[Sample(arr((2, 3), BOOL)), Sample(arr((2, 3), I64, -9, 9)), Sample(arr((3,), I32, -9, 9)),
             Sample(arr((3,), U8, 0, 255))])
rec("nan_to_num", lambda T, x, **k: T.nan_to_num(x, **k),
    lambda x, nan=0.0, posinf=None, neginf=None: np.nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf),
    [Sample(special()), Sample(special(F64), nan=1.5, posinf=9.0, neginf=-9.0), Sample(arr((2, 3), F64)),
     Sample(special(F16))], "same", upcast=False)  # the default posinf is the dtype's max


# ---- elementwise binary ------------------------------------------------------------------------

def binop(name, pyop=None):
    """Call ``T.name(a, b)``; a Python number on the left goes through the operator (``2 + x``)."""
    def call(T, a, b, **kwargs):
        if pyop is not None and not _is_tensor(a):
            return pyop(a, b)
        return getattr(T, name)(a, b, **kwargs)
    return call


def binary_samples(lo=-2.0, hi=2.0, lo2=None, hi2=None, *, ints=True, floats=True, bools=False,
                   scalar=2.5, iscalar=3, rscalar=2.5, half=True, nonfinite=False, full=False):
    """Broadcasting pairs, mixed dtypes (promotion), 0-d tensors and Python numbers on either side.

    ``full``: every case in the default run (the core arithmetic ops); otherwise the rarer
    combinations run in the slow pass only.
    """
    lo2 = lo if lo2 is None else lo2
    hi2 = hi if hi2 is None else hi2
    a = lambda shape, dt=F32: arr(shape, dt, lo, hi)  # noqa: E731
    b = lambda shape, dt=F32: arr(shape, dt, lo2, hi2)  # noqa: E731
    s, extra = [], []
    if floats:
        s += [Sample(a((2, 3)), b((3,))), Sample(a((2, 3), F64), b((3,), F64))]  # values, gradients
        extra += [Sample(a((), F64), b((2, 3), F64)),  # the gradient of a broadcast 0-d tensor
                  Sample(a((2, 1)), b((1, 3))), Sample(a(()), b(())), Sample(a((0, 3)), b((3,))),
                  Sample(a((2, 3)), b((2, 3), F64))]  # float32 with float64 -> float64
        if scalar is not None:
            s.append(Sample(a((2, 3), F64), scalar))  # a Python float does not widen the tensor
        if isinstance(rscalar, float):
            s.append(Sample(rscalar, b((2, 3))))
    if ints:
        s.append(Sample(a((2, 3), I64), b((3,), I64)))
        extra += [Sample(a((2, 3), I64), b((), F32)),  # a 0-d tensor lifts the category: float32
                  Sample(a((2, 3), I32), b((), I64))]  # ... but does not widen int32
        if iscalar is not None:
            extra.append(Sample(a((3,), I32), iscalar))
        if scalar is not None:
            s.append(Sample(a((3,), I64), scalar))  # int tensor with a Python float -> float32
        if isinstance(rscalar, int):
            s.append(Sample(rscalar, b((2, 3), I32)))
    if half:
        extra += [Sample(a((2, 3), F16), b((), F32)),  # a 0-d float32 tensor does not widen float16
                  Sample(a((2, 3), BF16), b((3,), BF16))]
    if bools:
        s.append(Sample(arr((2, 3), BOOL), arr((3,), BOOL)))
        extra.append(Sample(arr((2, 3), BOOL), arr((3,), I64, lo2, hi2)))
    if nonfinite:
        s.append(Sample(special(), arr((3,), F32, lo2, hi2)))
    return s + (extra if full else [x.slow() for x in extra])


def _floordiv(a, b):
    return np.floor_divide(a, b)


def _truncdiv(a, b):
    q = np.trunc(np.true_divide(a, b))
    return q.astype(np.result_type(a, b)) if np.result_type(a, b).kind in "iu" else q


def _no_bool_sub(a, b):
    return np.subtract(a, b)


rec("add", binop("add", operator.add), np.add, binary_samples(bools=True, full=True), "promote")
rec("add[alpha]", lambda T, a, b, alpha: T.add(a, b, alpha=alpha), lambda a, b, alpha: a + alpha * b,
    [Sample(arr((2, 3)), arr((3,)), 2.5), Sample(arr((2, 3), F64), arr((2, 3), F64), -2),
     Sample(arr((2, 3), I64), arr((3,), I64), 3), Sample(arr((2, 3)), 1.5, 2)], "promote")
rec("sub", binop("sub", operator.sub), np.subtract, binary_samples(), "promote")
rec("sub[alpha]", lambda T, a, b, alpha: T.sub(a, b, alpha=alpha), lambda a, b, alpha: a - alpha * b,
    [Sample(arr((2, 3), F64), arr((2, 3), F64), 0.5)], "promote")
rec("rsub", lambda T, a, b: T.rsub(a, b), lambda a, b: b - a,
    [Sample(arr((2, 3), F64), arr((3,), F64)), Sample(arr((2, 3)), 2.5)], "promote")
rec("mul", binop("mul", operator.mul), np.multiply, binary_samples(bools=True, full=True), "promote")
rec("div", binop("div", operator.truediv), np.true_divide,
    binary_samples(-3, 3, 0.5, 2, rscalar=3, full=True) + [Sample(2.5, arr((2, 3), F32, 0.5, 2))], "float")
rec("div[trunc]", lambda T, a, b: T.div(a, b, rounding_mode="trunc"), _truncdiv,
    binary_samples(-9, 9, 1, 4, rscalar=None) + [Sample(arr((2, 3), I64, -9, 9), arr((3,), I64, -4, -1))], "promote")
rec("div[floor]", lambda T, a, b: T.div(a, b, rounding_mode="floor"), _floordiv,
    binary_samples(-9, 9, 1, 4, rscalar=None) + [Sample(arr((2, 3), I64, -9, 9), arr((3,), I64, -4, -1))], "promote")
rec("floor_divide", binop("floor_divide", operator.floordiv), _floordiv,
    binary_samples(-9, 9, 1, 4, rscalar=7, half=False) + [Sample(7.5, arr((2, 3), F32, 1, 4))], "promote", grad=False)
rec("pow", binop("pow", operator.pow), np.power,  # exponent tensors are non-negative for integer bases
    binary_samples(0.5, 2, 0, 3) +
    [Sample(arr((2, 3), F64, 0.5, 2), arr((2, 3), F64, -2, 0)), Sample(arr((2, 3), F64, 0.5, 2), -1.5),
     Sample(arr((2, 3), I64, 0, 4), 2), Sample(2, arr((2, 3), I64, 0, 4)), Sample(arr((3,), F64, -2, 2), 3),
     Sample(arr((3,), F64, 0.5, 2), 0.5), Sample(2.0, arr((3,), F64))], "promote")
rec("pow[zero_base]", lambda T, a, b: T.pow(a, b), np.power,  # 0 ** 0 == 1; d/dy at x == 0 is 0
    [Sample(np.array([0.0, 0.0, 1.5], F32), np.array([2.0, 0.0, 1.0], F32)),
     Sample(np.array([0.0, 0.0, 1.5]), np.array([2.0, 3.0, 1.0]))], "promote")
rec("float_power", lambda T, a, b: T.float_power(a, b), np.float_power,
    [Sample(arr((2, 3), F32, 0.5, 2), arr((3,), F32)), Sample(arr((2, 3), I64, 1, 3), 2),
     Sample(arr((2, 3), F64, 0.5, 2), arr((3,), F64))], F64)
_neg_divisor = [Sample(arr((2, 3), I64, -9, 9), arr((2, 3), I64, -4, -1)),
                Sample(arr((2, 3), F64, -9, 9), arr((3,), F64, -4, -1))]
rec("remainder", binop("remainder", operator.mod), np.remainder,
    binary_samples(-9, 9, 1, 4, rscalar=7) + [Sample(7.5, arr((2, 3), F32, 1, 4))] + _neg_divisor, "promote")
rec("fmod", binop("fmod"), np.fmod, binary_samples(-9, 9, 1, 4, rscalar=None) + _neg_divisor, "promote")
rec("maximum", binop("maximum"), np.maximum, binary_samples(scalar=None, iscalar=None, rscalar=None, nonfinite=True),
    "promote")
rec("minimum", binop("minimum"), np.minimum, binary_samples(scalar=None, iscalar=None, rscalar=None, nonfinite=True),
    "promote")
rec("maximum[ties]", lambda T, a, b: T.maximum(a, b), np.maximum,  # torch splits the gradient of a tie
    [Sample(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0]))], "promote")
for _name, _ref in [("fmax", np.fmax), ("fmin", np.fmin)]:
    rec(_name, binop(_name), _ref, binary_samples(scalar=None, iscalar=None, rscalar=None, half=False, nonfinite=True,
                                                  ints=False) + [Sample(arr((2, 3), I64), arr((3,), I64)).slow()] +
        [Sample(special(F64), special(F64)[::-1].copy()),
         Sample(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 4.0])).no_fd()],  # a tie: all to input
        "promote")
rec("atan2", binop("atan2"), np.arctan2, binary_samples(-3, 3, scalar=None, iscalar=None, rscalar=None) +
    [Sample(np.array([0.0, 1.0]), np.array([0.0, -1.0])).no_fd()], "float")  # at the origin: gradient 0
rec("hypot", binop("hypot"), np.hypot, binary_samples(-3, 3, scalar=None, rscalar=None, ints=False), "promote")
rec("logaddexp", binop("logaddexp"), np.logaddexp,
    binary_samples(-3, 3, scalar=None, rscalar=None, ints=False, half=False) +
    [Sample(np.array([-np.inf, 0.0, np.inf]), np.array([-np.inf, -np.inf, np.inf]))], "promote")
rec("xlogy", binop("xlogy"), lambda a, b: np.where(a == 0, np.where(np.isnan(b), np.nan, 0.0), a * np.log(b)),
    [Sample(arr((2, 3), F64), arr((3,), F64, 0.2, 3)), Sample(arr((2, 3), F64), 2.5),
     Sample(np.array([0.0, 1.0, 0.0, 0.0], F32), np.array([2.0, 2.0, 0.5, np.nan], F32)),
     Sample(arr((2, 3), I64), arr((3,), I64, 1, 3)), Sample(2.0, arr((3,), F64, 0.5, 2)).slow(),
     Sample(arr((2, 3)), arr((3,), F32, 0.2, 3)).slow()], "float")
for _name, _ref, _pyop in [("eq", np.equal, operator.eq), ("ne", np.not_equal, operator.ne),
                           ("lt", np.less, operator.gt), ("le", np.less_equal, operator.ge),
                           ("gt", np.greater, operator.lt), ("ge", np.greater_equal, operator.le)]:
    # a number on the left reflects the comparison: 2 < x is x > 2
    rec(_name, (lambda n, p: lambda T, a, b: p(b, a) if not _is_tensor(a) else getattr(T, n)(a, b))(_name, _pyop),
        _ref, [Sample(arr((2, 3), I64, -1, 1), arr((3,), I64, -1, 1)),  # with ties
               Sample(special(), arr((3,), F32, -2, 2)), Sample(arr((2, 3), I64), 0.5), Sample(1, arr((2, 3), I32)),
               Sample(arr((2, 3), BOOL), arr((3,), BOOL)), Sample(arr((2, 3), I64), arr((), F32)),
               Sample(arr((2, 3), F16), arr((3,), BF16)).slow(), Sample(arr((0, 3)), arr((3,))).slow()],
        BOOL, grad=False)
for _name, _ref in [("logical_and", np.logical_and), ("logical_or", np.logical_or),
                    ("logical_xor", np.logical_xor)]:
    rec(_name, ref=_ref, dtype=BOOL, grad=False,
        samples=[Sample(arr((2, 3), BOOL), arr((3,), BOOL)), Sample(arr((2, 3), I64, -1, 1), arr((2, 3), F32, -1, 1)),
                 Sample(arr((), F32, -1, 1), arr((2, 3), BOOL)), Sample(special(), arr((2, 3), I32, -1, 1))])
for _name, _ref, _pyop in [("bitwise_and", np.bitwise_and, operator.and_), ("bitwise_or", np.bitwise_or, operator.or_),
                           ("bitwise_xor", np.bitwise_xor, operator.xor)]:
    rec(_name, binop(_name, _pyop), _ref, dtype="promote", grad=False,
        samples=[Sample(arr((2, 3), I64, -9, 9), arr((3,), I64, -9, 9)), Sample(arr((2, 3), BOOL), arr((2, 3), BOOL)),
                 Sample(arr((2, 3), I32, -9, 9), arr((2, 3), I64, -9, 9)), Sample(arr((2, 3), BOOL), arr((3,), I32, 0, 9)),
                 Sample(arr((2, 3), I64, -9, 9), 5), Sample(6, arr((3,), I32, -9, 9)), Sample(arr((3,), BOOL), True),
                 Sample(arr((3,), U8, 0, 255), arr((3,), U8, 0, 255))])
for _name, _ref, _pyop in [("bitwise_left_shift", np.left_shift, operator.lshift),
                           ("bitwise_right_shift", np.right_shift, operator.rshift)]:
    rec(_name, binop(_name, _pyop), _ref, dtype="promote", grad=False,
        samples=[Sample(arr((2, 3), I64, -99, 99), arr((3,), I64, 0, 5)), Sample(arr((2, 3), I32, 0, 99), 2),
                 Sample(3, arr((3,), I64, 0, 5))])


# ---- where, clamp, lerp and friends ---------------------------------------------------------------

def _clamp(x, min=None, max=None):
    if min is not None:
        x = np.maximum(x, min)
    if max is not None:
        x = np.minimum(x, max)
    return x


rec("where", lambda T, c, a, b: T.where(c, a, b), np.where, dtype=lambda s: _promote_of(s.args[1:]),
    samples=[Sample(arr((2, 3), BOOL), arr((2, 3)), arr((3,))), Sample(arr((3,), BOOL), arr((2, 1)), arr(())),
             Sample(arr((2, 3), BOOL), arr((2, 3)), 0.5), Sample(arr((2, 3), BOOL), -1.5, arr((2, 3), F64)),
             Sample(arr((2, 3), BOOL), arr((2, 3), I64), arr((2, 3), F32)), Sample(arr((2, 3), BOOL), arr((2, 3), I64), 2.5),
             Sample(arr((2, 3), BOOL), arr((2, 3), I32), 7), Sample(arr((2, 3), BOOL), arr((2, 3), F16), arr((), F32)),
             Sample(arr((2, 3), BOOL), arr((2, 3), F64), arr((3,), F64)), Sample(arr((0, 3), BOOL), arr((0, 3)), arr((3,)))])
rec("clamp", lambda T, x, *a, **k: T.clamp(x, *a, **k), _clamp,
    dtype=lambda s: _promote_of([s.args[0]] + [v for v in list(s.args[1:]) + list(s.kwargs.values()) if v is not None]),
    samples=[Sample(arr((2, 3)), -0.5, 0.5), Sample(arr((2, 3), F64), min=-0.5), Sample(arr((2, 3)), max=0.5).slow(),
             Sample(arr((2, 3), F64), -0.5, 0.5), Sample(arr((2, 3), I64, -5, 5), -2, 2),
             Sample(arr((2, 3), I64, -5, 5), -1.5, 2.5), Sample(special(), -1.0, 1.0),
             Sample(arr((2, 3)), arr((3,), F32, -1, 0), arr((2, 1), F32, 0, 1)).slow(),
             Sample(arr((2, 3), F64), min=arr((3,), F64, -1, 0)).slow(),
             Sample(arr((2, 3), F64), arr((2, 3), F64, -1, 0), arr((2, 3), F64, 0, 1)),
             Sample(arr((2, 3), I64, -5, 5), arr((3,), F32, -1, 0), arr((2, 1), I64, 1, 2)),
             Sample(np.array([-1.0, 0.5, 2.0]), np.array([-1.0, 0.0, 1.0]), np.array([0.0, 0.5, 2.0])).no_fd(),
             Sample(arr((), F32), -0.5, 0.5).slow(), Sample(arr((0, 3)), -0.5, 0.5).slow(),
             Sample(arr((2, 3), F16), -0.5, 0.5).slow()])
rec("lerp", lambda T, a, b, w: T.lerp(a, b, w), lambda a, b, w: a + w * (b - a), dtype="promote",
    samples=[Sample(arr((2, 3)), arr((2, 3)), 0.3), Sample(arr((2, 3)), arr((3,)), arr((2, 3), F32, 0, 1)),
             Sample(arr((2, 3), F64), arr((2, 3), F64), 0.7),
             Sample(arr((3,), F64), arr((2, 3), F64), arr((2, 1), F64, 0, 1)),
             Sample(arr((2, 3), F16), arr((2, 3), F16), 0.25)])
rec("addcmul", lambda T, x, a, b, **k: T.addcmul(x, a, b, **k), lambda x, a, b, value=1: x + value * a * b,
    [Sample(arr((2, 3)), arr((2, 3)), arr((3,))), Sample(arr((2, 3), F64), arr((2, 3), F64), arr((2, 3), F64), value=0.5)],
    "promote")
rec("addcdiv", lambda T, x, a, b, **k: T.addcdiv(x, a, b, **k), lambda x, a, b, value=1: x + value * a / b,
    [Sample(arr((2, 3)), arr((2, 3)), arr((3,), F32, 0.5, 2)),
     Sample(arr((2, 3), F64), arr((2, 3), F64), arr((2, 3), F64, 0.5, 2), value=0.5)], "promote")


# ---- reductions --------------------------------------------------------------------------------

def _axis(dim, x=None):
    """numpy's ``axis`` for a torch ``dim`` (a 0-d tensor's dim 0 means all of it)."""
    if x is not None and np.ndim(x) == 0:
        return None
    return None if dim is None or dim == () or dim == [] else tuple(dim) if isinstance(dim, (list, tuple)) else dim


X3 = arr((2, 3, 4))
X3_64 = arr((2, 3, 4), F64)


def reduce_samples(*, ints=True, bools=False, empty=True, half=True):
    """All dims, one dim, a negative dim with keepdim, a tuple of dims; float64 for gradients."""
    s = [Sample(X3), Sample(X3, dim=1), Sample(X3, dim=-1, keepdim=True), Sample(X3, dim=(0, 2)),
         Sample(X3_64, dim=1), Sample(X3_64, dim=(0, 2), keepdim=True),
         Sample(arr((), F32)).slow(), Sample(X3_64).slow(), Sample(arr((), F64), dim=0).slow()]
    if ints:
        s += [Sample(arr((3, 4), I64, -5, 5)), Sample(arr((3, 4), I32, -5, 5), dim=0).slow()]
    if bools:
        s.append(Sample(arr((3, 4), BOOL), dim=1))
    if empty:
        s.append(Sample(arr((0, 3)), dim=0).slow())
    if half:
        s += [Sample(arr((3, 4), F16), dim=1), Sample(arr((3, 4), BF16)).slow()]
    return s


def _sum_dtype(s):
    d = s.arrays()[0].dtype
    if "dtype" in s.kwargs:
        return s.kwargs["dtype"]
    return I64 if d.kind in "biu" else _name_of(d)


rec("sum", lambda T, x, **k: T.sum(x, **_torch_dtype(T, k)),
    lambda x, dim=None, keepdim=False, dtype=None: np.sum(x, axis=_axis(dim, x), keepdims=keepdim),
    reduce_samples(bools=True) + [Sample(arr((2, 3), I32), dtype=F64), Sample(arr((2, 3), F32), dim=[0, 1])],
    _sum_dtype, tol=2.0)
rec("mean", lambda T, x, **k: T.mean(x, **_torch_dtype(T, k)),
    lambda x, dim=None, keepdim=False, dtype=None: np.mean(x, axis=_axis(dim, x), keepdims=keepdim),
    [s for s in reduce_samples(ints=False) if s.arrays()[0].size] + [Sample(arr((2, 3), I64), dtype=F32)],
    _sum_dtype, tol=2.0)
rec("nansum", lambda T, x, **k: T.nansum(x, **k),
    lambda x, dim=None, keepdim=False: np.nansum(x, axis=_axis(dim, x), keepdims=keepdim),
    [Sample(special()), Sample(special(F64), dim=1), Sample(X3_64, dim=(0, 2))], "same")
rec("nanmean", lambda T, x, **k: T.nanmean(x, **k),
    lambda x, dim=None, keepdim=False: np.nanmean(x, axis=_axis(dim, x), keepdims=keepdim),
    [Sample(special()), Sample(special(F64), dim=1), Sample(X3_64, dim=(0, 2))], "same")


def _var_ref(f):
    def ref(x, dim=None, unbiased=True, keepdim=False, correction=None):
        ddof = correction if correction is not None else (1 if unbiased else 0)
        return f(x, axis=_axis(dim, x), ddof=ddof, keepdims=keepdim)
    return ref


_var_samples = [Sample(X3), Sample(X3, dim=1), Sample(X3, dim=(0, 2), keepdim=True),
                Sample(X3, dim=-1, correction=0), Sample(X3_64, dim=1), Sample(X3_64),
                Sample(X3_64, dim=(0, 1), unbiased=False), Sample(arr((3, 4), F16), dim=0),
                Sample(np.array([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]]), dim=1)]  # std of a constant: gradient 0
rec("var", lambda T, x, **k: T.var(x, **k), _var_ref(np.var), _var_samples, "float", tol=2.0)
rec("std", lambda T, x, **k: T.std(x, **k), _var_ref(np.std), _var_samples, "float", tol=2.0)
rec("prod", lambda T, x, *a, **k: T.prod(x, *a, **k),
    lambda x, dim=None, keepdim=False: np.prod(x, axis=dim, keepdims=keepdim),
    [Sample(X3), Sample(X3, 1), Sample(X3, -1, keepdim=True), Sample(X3_64, 1), Sample(X3_64),
     Sample(arr((3, 4), I64, -3, 3), 1), Sample(arr((3, 4), BOOL), 0), Sample(arr((0, 3)), 0),
     Sample(arr((), F64)), Sample(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]]), 1)],
    _sum_dtype, tol=2.0)
for _name, _f in [("amax", np.max), ("amin", np.min)]:
    rec(_name, (lambda n: lambda T, x, **k: getattr(T, n)(x, **k))(_name),
        (lambda f: lambda x, dim=(), keepdim=False: f(x, axis=_axis(dim, x), keepdims=keepdim))(_f),
        [s for s in reduce_samples(bools=False, empty=False)] +
        [Sample(arr((2, 3), I64, 0, 2), dim=1), Sample(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 0.5]]), dim=1),
         Sample(special(), dim=0)],
        "same")


def _max_dim_ref(largest):
    def ref(x, dim=None, keepdim=False):
        if dim is None:
            return np.max(x) if largest else np.min(x)
        f = np.argmax if largest else np.argmin
        idx = np.expand_dims(f(x, axis=dim), dim) if x.ndim else np.zeros((), np.int64)
        vals = np.take_along_axis(x, idx, dim) if x.ndim else x
        if not keepdim and x.ndim:
            vals, idx = np.squeeze(vals, dim), np.squeeze(idx, dim)
        return vals, idx
    return ref


_maxmin_samples = [Sample(X3), Sample(X3_64), Sample(arr((), F32)),  # max(x): the value
                   Sample(X3, 1), Sample(X3, -1, True), Sample(X3_64, 0), Sample(X3_64, -1, keepdim=True),
                   Sample(arr((3, 4), I64, -9, 9, distinct=True), 1), Sample(arr((3, 4), F16, distinct=True), 0),
                   Sample(np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 0.5]]), 1), Sample(arr((), F64), 0)]
rec("max", lambda T, x, *a, **k: T.max(x, *a, **k), _max_dim_ref(True), _maxmin_samples,
    lambda s: (_name_of(s.args[0].dtype), I64) if len(s.args) > 1 else _name_of(s.args[0].dtype))
rec("min", lambda T, x, *a, **k: T.min(x, *a, **k), _max_dim_ref(False), _maxmin_samples,
    lambda s: (_name_of(s.args[0].dtype), I64) if len(s.args) > 1 else _name_of(s.args[0].dtype))
rec("max[binary]", lambda T, a, b: T.max(a, b), np.maximum,
    [Sample(arr((2, 3)), arr((3,))), Sample(arr((2, 3), F64), arr((2, 3), F64))], "promote")
rec("max[ties]", lambda T, x: T.max(x), np.max, [Sample(np.array([[1.0, 3.0], [3.0, 0.0]]))], "same")
for _name, _f in [("argmax", np.argmax), ("argmin", np.argmin)]:
    rec(_name, (lambda n: lambda T, x, *a, **k: getattr(T, n)(x, *a, **k))(_name),
        (lambda f: lambda x, dim=None, keepdim=False: (
            f(x) if dim is None and not keepdim else
            np.reshape(f(x), (1,) * x.ndim) if dim is None else f(x, axis=dim, keepdims=keepdim)))(_f),
        [Sample(X3), Sample(X3, 1), Sample(X3, -1, True), Sample(X3, keepdim=True), Sample(arr((), F32)),
         Sample(arr((3, 4), I64, -9, 9, distinct=True), 0), Sample(np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 5.0]]), 1)],
        I64, grad=False)
for _name, _f in [("all", np.all), ("any", np.any)]:
    rec(_name, (lambda n: lambda T, x, *a, **k: getattr(T, n)(x, *a, **k))(_name),
        (lambda f: lambda x, dim=None, keepdim=False: f(x, axis=dim, keepdims=keepdim))(_f),
        [Sample(arr((3, 4), BOOL)), Sample(arr((3, 4), BOOL), 1), Sample(arr((3, 4), BOOL), -1, True),
         Sample(arr((3, 4), I64, 0, 1), 0), Sample(arr((2, 3), F32, -1, 1)), Sample(np.zeros((0, 3), bool), 0),
         Sample(np.zeros((0, 3), bool))],
        lambda s: U8 if s.args[0].dtype == np.uint8 else BOOL, grad=False)
rec("count_nonzero", lambda T, x, *a: T.count_nonzero(x, *a),
    lambda x, dim=None: np.count_nonzero(x, axis=dim),
    [Sample(arr((3, 4), I64, -1, 1)), Sample(arr((3, 4), I64, -1, 1), 1), Sample(arr((2, 3), BOOL), 0)], I64, grad=False)


def _lse(x, dim, keepdim=False):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=_axis(dim, x), keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        r = np.log(np.sum(np.exp(x - m), axis=_axis(dim, x), keepdims=True)) + m
    return r if keepdim else np.squeeze(r, axis=_axis(dim, x))


rec("logsumexp", lambda T, x, dim, **k: T.logsumexp(x, dim, **k), _lse,
    [Sample(X3, 1), Sample(X3, (0, 2), keepdim=True), Sample(X3_64, -1), Sample(X3_64, (0, 1)),
     Sample(arr((3, 4), I64), 1), Sample(arr((2, 3)) * 100, 1), Sample(arr((3, 4), F16), 0),
     Sample(arr((0, 3)), 0), Sample(np.full((2, 3), -np.inf, F32), 1)], "float")  # empty / all -inf: -inf


def _softmax_ref(log):
    def ref(x, dim, dtype=None):
        if x.ndim == 0:
            return np.zeros_like(x) if log else np.ones_like(x)
        z = x - _lse(x, dim, keepdim=True)
        return z if log else np.exp(z)
    return ref


_softmax_samples = [Sample(X3, -1), Sample(X3_64, 0), Sample(arr((2, 3)) * 50, 1), Sample(arr((3, 4), F16), 1),
                    Sample(arr((3, 4)), 1, dtype=F64), Sample(arr((0, 3)), 0),
                    Sample(X3, 1).slow(), Sample(X3_64, -1).slow(), Sample(arr((), F64), 0).slow(),
                    Sample(arr((0, 3)), 1).slow()]
rec("softmax", lambda T, x, dim, **k: T.softmax(x, dim, **_torch_dtype(T, k)), _softmax_ref(False),
    _softmax_samples, lambda s: s.kwargs.get("dtype", _name_of(s.args[0].dtype)))
rec("log_softmax", lambda T, x, dim, **k: T.log_softmax(x, dim, **_torch_dtype(T, k)), _softmax_ref(True),
    _softmax_samples, lambda s: s.kwargs.get("dtype", _name_of(s.args[0].dtype)))


def _norm_ref(x, p="fro", dim=None, keepdim=False):
    ax = _axis(dim, x)
    a = np.abs(x)
    if p in ("fro", 2):
        return np.sqrt(np.sum(a * a, axis=ax, keepdims=keepdim))
    if p == np.inf:
        return np.max(a, axis=ax, keepdims=keepdim)
    if p == -np.inf:
        return np.min(a, axis=ax, keepdims=keepdim)
    if p == 0:
        return np.sum(x != 0, axis=ax, keepdims=keepdim).astype(x.dtype)
    return np.sum(a ** p, axis=ax, keepdims=keepdim) ** (1 / p)


rec("norm", lambda T, x, *a, **k: T.norm(x, *a, **k), _norm_ref,
    [Sample(X3), Sample(X3_64, 1, (0, 2), True), Sample(X3_64, 3, -1), Sample(X3, float("inf"), 1),
     Sample(X3, 0), Sample(np.array([[0.0, 0.0], [3.0, -4.0]]), 2, 1),  # the gradient at a zero norm is 0
     Sample(X3_64).slow(), Sample(X3, 2, 1).slow(), Sample(X3_64, float("-inf"), 1).slow(),
     Sample(X3_64, 0.5, 1).slow(), Sample(arr((3, 4), F16), 2, 1).slow(),
     Sample(np.array([[0.0, 0.0], [3.0, -4.0]]), 3, 1).slow(), Sample(np.zeros((2, 2))).slow()], "same")
for _name, _f in [("cumsum", np.cumsum), ("cumprod", np.cumprod)]:
    rec(_name, (lambda n: lambda T, x, dim, **k: getattr(T, n)(x, dim, **_torch_dtype(T, k)))(_name),
        (lambda f: lambda x, dim, dtype=None: f(x, axis=dim) if x.ndim else x)(_f),
        [Sample(X3, 1), Sample(X3, -1), Sample(X3_64, 0), Sample(X3_64, 2), Sample(arr((), F64), 0),
         Sample(arr((3, 4), I32, -3, 3), 1), Sample(arr((3, 4), BOOL), 0), Sample(arr((0, 3)), 1),
         Sample(arr((3, 4), I64), 1, dtype=F64), Sample(arr((3, 4), F16, 0.5, 1.5), 1)],
        _sum_dtype, tol=2.0)
rec("cumprod[zeros]", lambda T, x, dim: T.cumprod(x, dim), lambda x, dim: np.cumprod(x, axis=dim),
    [Sample(np.array([[1.5, 0.0, 2.0, -1.0], [0.0, 0.0, 3.0, 2.0]]), 1)], "same")


def _cum_ext_ref(largest):
    def ref(x, dim):
        xm = np.moveaxis(x, dim, -1)
        vals, idx = np.empty_like(xm), np.empty(xm.shape, np.int64)
        for pos in np.ndindex(xm.shape[:-1]):
            best, bi = None, 0
            for j, v in enumerate(xm[pos]):
                if best is None or (v >= best if largest else v <= best):
                    best, bi = v, j
                vals[pos + (j,)], idx[pos + (j,)] = best, bi
        return np.moveaxis(vals, -1, dim), np.moveaxis(idx, -1, dim)
    return ref


for _name, _l in [("cummax", True), ("cummin", False)]:
    rec(_name, (lambda n: lambda T, x, dim: getattr(T, n)(x, dim))(_name), _cum_ext_ref(_l),
        [Sample(X3, 1), Sample(X3_64, -1), Sample(arr((3, 4), I64, -2, 2), 1)],
        lambda s: (_name_of(s.args[0].dtype), I64), grad=True)


def _median_ref(x, dim=None, keepdim=False):
    """The lower median; NaN (at the first NaN's index) where a slice holds one."""
    if dim is None:
        return np.nan if np.isnan(x).any() else np.sort(x.reshape(-1))[(x.size - 1) // 2]
    idx = np.argsort(x, axis=dim, kind="stable")
    k = (x.shape[dim] - 1) // 2
    i = np.take(idx, [k], axis=dim)
    if x.dtype.kind == "f":
        has_nan = np.isnan(x).any(axis=dim, keepdims=True)
        i = np.where(has_nan, np.expand_dims(np.argmax(np.isnan(x), axis=dim), dim), i)
    v = np.take_along_axis(x, i, dim)
    return (v, i) if keepdim else (np.squeeze(v, dim), np.squeeze(i, dim))


rec("median", lambda T, x, *a, **k: T.median(x, *a, **k), _median_ref,
    [Sample(arr((3, 4), distinct=True)), Sample(arr((3, 5), F64, distinct=True), 1, True),
     Sample(arr((3, 4), F64, distinct=True), 1).slow(),
     Sample(np.array([3.0, 1.0, 2.0, 2.0])),  # median(x) shares the gradient between the tied 2s
     Sample(np.array([[1.0, np.nan, 2.0], [3.0, 1.0, 2.0]], F32), 1),
     Sample(np.array([1.0, np.nan, 2.0], F32)).slow(), Sample(arr((3, 4), I64, -9, 9, distinct=True), 0).slow()],
    lambda s: (_name_of(s.args[0].dtype), I64) if len(s.args) > 1 else _name_of(s.args[0].dtype))


# ---- matrix products and convolution -----------------------------------------------------------

def _mm_samples(pairs, ints=True):
    """float64 (values and gradients) for every pair; float32 and int64 for the first."""
    (a0, b0) = pairs[0]
    s = [Sample(arr(a, F64), arr(b, F64)) for a, b in pairs] + [Sample(arr(a0), arr(b0))]
    if ints:
        s.append(Sample(arr(a0, I64, -3, 3), arr(b0, I64, -3, 3)))
    return s


rec("matmul", binop("matmul", operator.matmul), np.matmul, dtype="same", tol=2.0,
    samples=_mm_samples([((2, 3), (3, 4)), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((5, 2, 3), (3, 4)),
                         ((3,), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)), ((5, 2, 3), (3,))]) +
    [Sample(arr((2, 0)), arr((0, 3))), Sample(arr((2, 3), F16), arr((3, 4), F16)),
     Sample(arr((2, 3), BF16), arr((3, 4), BF16)).slow()])
rec("mm", ref=np.matmul, samples=_mm_samples([((2, 3), (3, 4))]), tol=2.0)
rec("bmm", ref=np.matmul, samples=_mm_samples([((5, 2, 3), (5, 3, 4))]), tol=2.0)
rec("mv", ref=np.matmul, samples=_mm_samples([((2, 3), (3,))]), tol=2.0)
rec("dot", ref=np.dot, samples=_mm_samples([((3,), (3,))]), tol=2.0)
rec("outer", ref=np.outer, samples=_mm_samples([((3,), (4,))]) + [Sample(arr((3,), I64), arr((2,)))],
    dtype="promote")
rec("einsum", lambda T, eq, *xs: T.einsum(eq, *xs), lambda eq, *xs: np.einsum(eq, *xs), tol=2.0,
    dtype=lambda s: _promote_of(s.args[1:]),
    samples=[Sample("ij,jk->ik", arr((2, 3)), arr((3, 4))), Sample("bij,bjk->bik", arr((5, 2, 3), F64), arr((5, 3, 4), F64)),
             Sample("ii->i", arr((3, 3), F64)), Sample("i,j->ij", arr((3,), F64), arr((4,), F64)),
             Sample("...ij->...ji", arr((5, 2, 3), F64)), Sample("ij->", arr((2, 3), F64)),
             Sample("ij, jk", arr((2, 3), F64), arr((3, 4), F64)), Sample("ij,j->i", arr((2, 3), I64), arr((3,), I64))])
rec("tensordot", lambda T, a, b, dims: T.tensordot(a, b, dims=dims),
    lambda a, b, dims: np.tensordot(a, b, axes=dims), tol=2.0,
    samples=[Sample(arr((2, 3, 4), F64), arr((3, 4, 5), F64), 2), Sample(arr((2, 3), F64), arr((3, 4), F64), ([1], [0])),
             Sample(arr((2, 3)), arr((4, 3)), ([1], [1]))])
rec("addmm", lambda T, x, a, b, **k: T.addmm(x, a, b, **k), lambda x, a, b, beta=1, alpha=1: beta * x + alpha * (a @ b),
    [Sample(arr((4,)), arr((2, 3)), arr((3, 4))),
     Sample(arr((2, 4), F64), arr((2, 3), F64), arr((3, 4), F64), beta=0.5, alpha=2)],
    "same", tol=2.0)
rec("baddbmm", lambda T, x, a, b, **k: T.baddbmm(x, a, b, **k), lambda x, a, b, beta=1, alpha=1: beta * x + alpha * (a @ b),
    [Sample(arr((5, 2, 4), F64), arr((5, 2, 3), F64), arr((5, 3, 4), F64), beta=0.5, alpha=2)], "same", tol=2.0)
rec("addmv", lambda T, x, a, b, **k: T.addmv(x, a, b, **k), lambda x, a, b, beta=1, alpha=1: beta * x + alpha * (a @ b),
    [Sample(arr((2,), F64), arr((2, 3), F64), arr((3,), F64), beta=0.5, alpha=2)], "same", tol=2.0)


def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d cross-correlation as torch's conv{1,2,3}d, from sliding windows and one einsum."""
    nd = w.ndim - 2
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    stride, dilation, k = tup(stride), tup(dilation), w.shape[2:]
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = [(d * (kk - 1) // 2, d * (kk - 1) - d * (kk - 1) // 2) for d, kk in zip(dilation, k)]
    else:
        pads = [(p, p) for p in tup(padding)]
    x = np.pad(x, [(0, 0), (0, 0)] + pads)
    ext = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
    win = sliding_window_view(x, ext, axis=tuple(range(2, 2 + nd)))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride) +
              tuple(slice(None, None, d) for d in dilation)]
    n, c, o, g = x.shape[0], x.shape[1], w.shape[0], groups
    win = win.reshape((n, g, c // g) + win.shape[2:])
    wg = w.reshape((g, o // g, c // g) + tuple(k))
    sp, kl = "xyz"[:nd], "uvw"[:nd]
    out = np.einsum(f"ngc{sp}{kl},goc{kl}->ngo{sp}", win, wg)
    out = out.reshape((n, o) + out.shape[3:])
    if b is not None:
        out = out + b.reshape((1, -1) + (1,) * nd)
    return out[0] if unbatched else out


def _conv_samples(nd):
    s = _conv_samples_all(nd)
    if nd != 2:  # 'valid' and unbatched once (conv2d) in the default run
        s[3].slow()
        s[4].slow()
    return s


def _conv_samples_all(nd):
    sp = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}[nd]
    k = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[nd]
    small = {1: (6,), 2: (5, 4), 3: (3, 3, 3)}[nd]
    return [
        Sample(arr((2, 4) + sp), arr((6, 4) + k), arr((6,))),
        Sample(arr((2, 4) + sp), arr((6, 2) + k), None, stride=2, padding=1, dilation=1, groups=2),
        Sample(arr((2, 4) + sp), arr((3, 4) + k), arr((3,)), padding="same", dilation=2),
        Sample(arr((2, 4) + sp), arr((3, 4) + k), padding="valid"),
        Sample(arr((4,) + sp), arr((3, 4) + k), arr((3,)), 1, 1),  # unbatched
        Sample(arr((1, 2) + small, F64), arr((4, 1) + k, F64), arr((4,), F64), stride=(2,) + (1,) * (nd - 1),
               padding=(1,) * nd, groups=2),
        Sample(arr((1, 2) + small, F64), arr((2, 2) + k, F64), None, padding="same", dilation=(1,) * (nd - 1) + (2,)),
    ]


for _nd in (1, 2, 3):
    rec(f"conv{_nd}d", (lambda n: lambda T, x, w, *a, **k: getattr(T, f"conv{n}d")(x, w, *a, **k))(_nd), conv_ref,
        _conv_samples(_nd), "same", tol=3.0)


def conv_transpose_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch's conv_transpose{1,2,3}d: every input element scatters x * w over its window, then the
    padding is cropped (the adjoint of conv_ref)."""
    nd = w.ndim - 2
    unbatched = x.ndim == nd + 1
    if unbatched:
        x = x[None]
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    stride, padding, output_padding, dilation = map(tup, (stride, padding, output_padding, dilation))
    k, sp = w.shape[2:], x.shape[2:]
    n, g = x.shape[0], groups
    cin_g, cout_g = w.shape[0] // g, w.shape[1]
    full = [(i - 1) * s + d * (kk - 1) + 1 + op for i, s, d, kk, op in zip(sp, stride, dilation, k, output_padding)]
    y = np.zeros((n, g, cout_g) + tuple(full), np.result_type(x, w))
    xg = x.reshape((n, g, cin_g) + sp)
    wg = w.reshape((g, cin_g, cout_g) + k)
    for t in itertools.product(*map(range, k)):
        contrib = np.einsum("ngc...,gco->ngo...", xg, wg[(slice(None),) * 3 + t])
        y[(slice(None),) * 3 + tuple(slice(ti * d, ti * d + (i - 1) * s + 1, s)
                                     for ti, d, i, s in zip(t, dilation, sp, stride))] += contrib
    y = y[(slice(None),) * 3 + tuple(slice(p, f - p) for p, f in zip(padding, full))]
    y = y.reshape((n, g * cout_g) + y.shape[3:])
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y[0] if unbatched else y


def _conv_t_samples(nd):
    sp = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}[nd]
    k = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}[nd]
    s = [Sample(arr((2, 4) + sp, F64), arr((4, 3) + k, F64), arr((3,), F64)),
         Sample(arr((2, 4) + sp, F64), arr((4, 2) + k, F64), None, 2, 1, 1, 2),  # stride, padding, output_padding, groups
         Sample(arr((2, 4) + sp), arr((4, 3) + k), None, stride=2, dilation=2, output_padding=1),
         Sample(arr((4,) + sp, F64), arr((4, 3) + k, F64), arr((3,), F64), padding=1)]  # unbatched
    if nd != 2:
        s[2].slow()
        s[3].slow()
    return s


for _nd in (1, 2, 3):
    rec(f"conv_transpose{_nd}d",
        (lambda n: lambda T, x, w, *a, **k: getattr(T, f"conv_transpose{n}d")(x, w, *a, **k))(_nd),
        conv_transpose_ref, _conv_t_samples(_nd), "same", tol=3.0)


# ---- max pooling -------------------------------------------------------------------------------

def _pool_windows(sp, kernel_size, stride, padding, dilation, ceil_mode):
    """Per output position (row-major): the flat indices of its window's in-bounds input elements,
    in window order, with torch's output sizes (ceil_mode's last window starts inside the input or
    the left padding)."""
    nd = len(sp)
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    k = tup(kernel_size)
    s = k if stride is None else tup(stride)
    p, d = tup(padding), tup(dilation)
    outs = []
    for n, kk, ss, pp, dd in zip(sp, k, s, p, d):
        span = n + 2 * pp - dd * (kk - 1) - 1
        o = (span + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= n + pp:
            o -= 1
        outs.append(o)
    wins = []
    for o in itertools.product(*map(range, outs)):
        idx = []
        for t in itertools.product(*map(range, k)):
            q = [oi * si - pi + ti * di for oi, si, pi, ti, di in zip(o, s, p, t, d)]
            if all(0 <= qi < n for qi, n in zip(q, sp)):
                idx.append(int(np.ravel_multi_index(q, sp)))
        wins.append(idx)
    return tuple(outs), wins


def max_pool_ref(nd):
    """torch's max_pool{nd}d: the first maximum of each window in window order; a window holding
    NaN gives NaN at its last NaN (torch's CPU kernels update on ``val > max || isnan(val)``)."""
    def ref(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        lead, sp = x.shape[:-nd], x.shape[-nd:]
        outs, wins = _pool_windows(sp, kernel_size, stride, padding, dilation, ceil_mode)
        flat = x.reshape(lead + (-1,))
        vals, where = np.zeros(lead + (len(wins),), x.dtype), np.zeros(lead + (len(wins),), np.int64)
        for j, idx in enumerate(wins):
            w = flat[..., idx]
            last_nan = w.shape[-1] - 1 - np.argmax(np.isnan(w)[..., ::-1], -1)
            pos = np.where(np.isnan(w).any(-1), last_nan, np.argmax(w, -1))
            where[..., j] = np.asarray(idx)[pos]
            vals[..., j] = np.take_along_axis(w, pos[..., None], -1)[..., 0]
        vals, where = vals.reshape(lead + outs), where.reshape(lead + outs)
        return (vals, where) if return_indices else vals
    return ref


def _max_pool_samples(nd):
    sp = {1: (9,), 2: (7, 6), 3: (5, 4, 5)}[nd]
    ties = np.round(_rng.uniform(-2, 2, (2, 3) + sp)).astype(np.float64)  # integers: ties in most windows
    s = [Sample(arr((2, 3) + sp, F64, distinct=True), 2),
         Sample(arr((2, 3) + sp, F64, distinct=True), 3, 2, 1),  # overlapping windows, -inf padding
         Sample(arr((2, 3) + sp, F64, distinct=True), 2, dilation=2, ceil_mode=True),
         Sample(ties, 2).no_fd(),  # torch routes each window's gradient to its first maximum
         Sample(ties, 3, 2, 1).no_fd(),
         Sample(arr((3,) + sp), 2, 1)]  # unbatched float32
    if nd != 2:
        for smp in s[2:]:
            smp.slow()
    return s


for _nd in (1, 2, 3):
    rec(f"max_pool{_nd}d", (lambda n: lambda T, x, *a, **k: getattr(T, f"max_pool{n}d")(x, *a, **k))(_nd),
        max_pool_ref(_nd), _max_pool_samples(_nd), "same")
rec("max_pool2d[indices]", lambda T, x, *a, **k: T.nn.functional.max_pool2d(x, *a, return_indices=True, **k),
    lambda x, *a, **k: max_pool_ref(2)(x, *a, return_indices=True, **k),
    [Sample(arr((2, 3, 7, 6), F64, distinct=True), 3, 2, 1),
     Sample(np.round(_rng.uniform(-2, 2, (2, 3, 7, 6))), 2, ceil_mode=True).no_fd(),
     Sample(np.array([[[[1.0, np.nan], [np.nan, 3.0]]]]), 2).no_fd()],
    lambda s: (_name_of(s.args[0].dtype), I64))


def _nll_ref(x, target, reduction="mean", ignore_index=-100):
    cd = 0 if x.ndim == 1 else 1
    t = np.expand_dims(np.asarray(target, np.int64), cd)
    keep = t != ignore_index
    nll = np.squeeze(np.where(keep, -np.take_along_axis(x, np.where(keep, t, 0), axis=cd), 0.0), cd)
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _cross_entropy_ref(x, target, **k):
    return _nll_ref(x - _lse(x, 0 if x.ndim == 1 else 1, keepdim=True), target, **k)


# cross entropy with class indices, no weights or smoothing: the one-kernel primitive
rec("cross_entropy", lambda T, x, t, **k: T.nn.functional.cross_entropy(x, t, **k), _cross_entropy_ref,
    [Sample(arr((4, 5), F64), I(0, 4, 2, 2)), Sample(arr((4, 5)), I(1, 0, 3, 4), reduction="sum"),
     Sample(arr((3, 4, 2), F64), np.array([[0, 3], [2, 2], [1, 0]]), reduction="none"),
     Sample(arr((4, 5), F64), I(0, -100, 2, -100)),  # ignored targets: averaged over the other two
     Sample(arr((4, 5), F64), I(0, 3, 3, 1), ignore_index=3, reduction="sum"),
     Sample(arr((5,), F64), np.array(2)),  # one sample, no batch dim
     Sample(arr((4, 5)) * 40, I(0, 4, 2, 2)).slow(), Sample(arr((4, 5), F64), I(-100, -100, -100, -100)).slow().no_fd()],  # all ignored: NaN, torch's zero gradient
    "same")


# nll_loss with class indices, no weights: the one-kernel primitive (log-probabilities need not be normalised)
rec("nll_loss", lambda T, x, t, **k: T.nn.functional.nll_loss(x, t, **k), _nll_ref,
    [Sample(arr((4, 5), F64), I(0, 4, 2, 2)), Sample(arr((4, 5)), I(1, 0, 3, 4), reduction="sum"),
     Sample(arr((3, 4, 2), F64), np.array([[0, 3], [2, 2], [1, 0]]), reduction="none"),
     Sample(arr((4, 5), F64), I(0, -100, 2, -100)), Sample(arr((5,), F64), np.array(2))],
    "same")


def _mse_ref(x, t, reduction="mean"):
    sq = (np.asarray(x) - np.asarray(t)) ** 2
    return sq.sum() if reduction == "sum" else sq.mean()


# mean squared error of same-shaped float tensors, no weight: the one-kernel primitive
rec("mse_loss", lambda T, x, t, **k: T.nn.functional.mse_loss(x, t, **k), _mse_ref,
    [Sample(arr((4, 5), F64), arr((4, 5), F64)), Sample(arr((3, 2)), arr((3, 2)), reduction="sum"),
     Sample(arr((2, 3, 4), F64), arr((2, 3, 4), F64), reduction="mean")],
    "same")


def _pointwise_loss_ref(per_element):
    def ref(x, t, reduction="mean", **k):
        loss = per_element(np.abs(np.asarray(x) - np.asarray(t)), **k)
        return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
    return ref


# smooth L1 and Huber of same-shaped float tensors: one primitive each (torch's kernels and backward)
rec("smooth_l1_loss", lambda T, x, t, **k: T.nn.functional.smooth_l1_loss(x, t, **k),
    _pointwise_loss_ref(lambda z, beta=1.0: np.where(z < beta, 0.5 * z * z / beta, z - 0.5 * beta)),
    [Sample(arr((4, 5), F64) * 2, arr((4, 5), F64)), Sample(arr((3, 2)) * 2, arr((3, 2)), reduction="sum", beta=0.5),
     Sample(arr((2, 3), F64) * 2, arr((2, 3), F64), reduction="none", beta=2.0)],
    "same")
rec("huber_loss", lambda T, x, t, **k: T.nn.functional.huber_loss(x, t, **k),
    _pointwise_loss_ref(lambda z, delta=1.0: np.where(z < delta, 0.5 * z * z, delta * (z - 0.5 * delta))),
    [Sample(arr((4, 5), F64) * 2, arr((4, 5), F64)), Sample(arr((3, 2)) * 2, arr((3, 2)), reduction="sum", delta=0.5),
     Sample(arr((2, 3), F64) * 2, arr((2, 3), F64), reduction="none", delta=2.0)],
    "same")


def _bce_ref(x, t, reduction="mean"):
    x, t = np.asarray(x), np.asarray(t)
    loss = (t - 1) * np.maximum(np.log1p(-x), -100) - t * np.maximum(np.log(x), -100)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


# binary cross entropy of probabilities, same-shaped float targets, no weight: one primitive
rec("binary_cross_entropy", lambda T, x, t, **k: T.nn.functional.binary_cross_entropy(x, t, **k), _bce_ref,
    [Sample(np.abs(arr((4, 5), F64)) / 4 + 0.05, np.abs(arr((4, 5), F64)) / 3),
     Sample(np.abs(arr((3, 2))) / 4 + 0.05, np.abs(arr((3, 2))) / 3, reduction="sum"),
     Sample(np.abs(arr((2, 3), F64)) / 4 + 0.05, np.abs(arr((2, 3), F64)) / 3, reduction="none")],
    "same")


def _bce_logits_ref(x, t, reduction="mean"):
    x, t = np.asarray(x), np.asarray(t)
    loss = (1 - t) * x - (np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x))))
    return loss.sum() if reduction == "sum" else loss.mean()


# binary cross entropy of logits, same-shaped float targets, no weights: the one-kernel primitive
rec("binary_cross_entropy_with_logits",
    lambda T, x, t, **k: T.nn.functional.binary_cross_entropy_with_logits(x, t, **k), _bce_logits_ref,
    [Sample(arr((4, 5), F64) * 4, np.abs(arr((4, 5), F64)) / 3), Sample(arr((3, 2)), np.abs(arr((3, 2))) / 3,
                                                                         reduction="sum"),
     Sample(np.array([-60.0, -1.0, 0.5, 60.0]), np.array([0.0, 1.0, 0.25, 1.0]))],  # saturated logits stay finite
    "same")


# ---- movement ----------------------------------------------------------------------------------

def _split_ref(x, size, dim=0):
    n = x.shape[dim]
    if isinstance(size, int):
        cuts = list(range(size, n, size))
    else:
        cuts = list(np.cumsum(size)[:-1])
    return tuple(np.split(x, cuts, axis=dim))


def _chunk_ref(x, chunks, dim=0):
    n = x.shape[dim]
    return _split_ref(x, max(1, -(-n // chunks)), dim)


def _narrow_ref(x, dim, start, length):
    start = start % x.shape[dim] if start < 0 else start
    return np.take(x, range(start, start + length), axis=dim)


def _squeeze_ref(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    ds = dim if isinstance(dim, tuple) else (dim,)
    ds = tuple(d for d in ds if x.ndim and x.shape[d] == 1)
    return np.squeeze(x, ds) if ds else x


def _repeat_ref(x, *sizes):
    x = x.reshape((1,) * (len(sizes) - x.ndim) + x.shape)
    return np.tile(x, sizes)


def _roll_ref(x, shifts, dims=None):
    if dims is None:
        return np.roll(x.reshape(-1), shifts).reshape(x.shape)
    return np.roll(x, shifts, dims)


def _flatten_ref(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return x.reshape(1)
    s, e = start_dim % x.ndim, end_dim % x.ndim
    return x.reshape(x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def _expand_ref(x, *sizes):
    lead = len(sizes) - x.ndim
    return np.broadcast_to(x, tuple(x.shape[i - lead] if v == -1 else v for i, v in enumerate(sizes)))


def _select_ref(x, dim, index):
    return np.take(x, index, axis=dim)


def _movedim_ref(x, src, dst):
    return np.moveaxis(x, src, dst)


def _tensor_split_ref(x, n, dim=0):
    return tuple(np.array_split(x, n, axis=dim)) if isinstance(n, int) else tuple(np.split(x, n, axis=dim))


def _unflatten_ref(x, dim, sizes):
    d = dim % x.ndim
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def _ri_ref(x, repeats, dim=None):
    return np.repeat(x, repeats, axis=dim)


Y = arr((2, 3, 4))
Y64 = arr((2, 3, 4), F64)
M = arr((3, 4))
M64 = arr((3, 4), F64)

_MOVE = [  # name, op (None: T.name(x, *args)), reference, samples, differentiable
    ("reshape", lambda T, x, *s: T.reshape(x, s[0]) if len(s) == 1 else x.reshape(*s),  # varargs: the method
     lambda x, *s: x.reshape(s[0] if len(s) == 1 and isinstance(s[0], tuple) else s),
     [Sample(Y, (4, 6)), Sample(Y64, (-1, 2)), Sample(Y, 3, -1, 2), Sample(arr((), F64), (1, 1)),
      Sample(arr((0, 3)), (3, 0)), Sample(arr((2, 3), I64), (6,))]),
    ("view", lambda T, x, *s: x.view(*s), lambda x, *s: x.reshape(s),
     [Sample(Y, 4, 6), Sample(Y64, -1, 2), Sample(arr((2, 3), BOOL), 6)]),
    ("permute", lambda T, x, *d: T.permute(x, d), lambda x, *d: np.transpose(x, d),
     [Sample(Y, 2, 0, 1), Sample(Y64, 1, -1, 0), Sample(arr((2, 3), I64), 1, 0)]),
    ("transpose", None, np.swapaxes, [Sample(Y, 0, 2), Sample(Y64, -1, 1), Sample(M, 0, 1)]),
    ("t", None, np.transpose, [Sample(M), Sample(M64), Sample(arr((3,), F64))]),
    ("movedim", None, _movedim_ref, [Sample(Y, 0, -1), Sample(Y64, (0, 1), (2, 0))]),
    ("squeeze", None, _squeeze_ref,
     [Sample(arr((2, 1, 3, 1))), Sample(arr((2, 1, 3, 1), F64), 1), Sample(arr((2, 1, 3, 1), F64), -1),
      Sample(arr((2, 1, 3, 1), F64), 0), Sample(arr((2, 1, 3, 1), F64), (1, 3)), Sample(arr((), F64), 0)]),
    ("unsqueeze", None, np.expand_dims, [Sample(M, 0), Sample(M64, -1), Sample(M64, 1), Sample(arr((), F64), 0)]),
    ("expand", lambda T, x, *s: x.expand(*s), _expand_ref,
     [Sample(arr((3, 1)), 2, 3, 4), Sample(arr((3, 1), F64), 3, -1), Sample(arr((), F64), 2, 2),
      Sample(arr((1, 4), F64), 2, 3, 4)]),
    ("broadcast_to", None, np.broadcast_to, [Sample(arr((3, 1), F64), (2, 3, 4))]),
    ("flatten", None, _flatten_ref, [Sample(Y), Sample(Y64, 1), Sample(Y64, 0, 1), Sample(arr((), F64)),
                                     Sample(arr((2, 0, 3)), 1)]),
    ("unflatten", None, _unflatten_ref, [Sample(arr((2, 12), F64), 1, (3, 4)), Sample(arr((2, 12)), -1, (2, -1))]),
    ("cat", lambda T, xs, *a, **k: T.cat(xs, *a, **k),  # a legacy empty 1-d tensor is skipped
     lambda xs, dim=0: np.concatenate([x for x in xs if x.shape != (0,)], axis=dim),
     [Sample([M, arr((2, 4))]), Sample([M64, arr((3, 2), F64), arr((3, 1), F64)], 1), Sample([M64, M64], dim=-1),
      Sample([M, arr((3, 4), F64)]), Sample([arr((3, 4), I64), M]), Sample([M, arr((0,))]),
      Sample([arr((2,), F64)])]),
    ("stack", lambda T, xs, *a: T.stack(xs, *a), lambda xs, dim=0: np.stack(xs, axis=dim),
     [Sample([M, M]), Sample([M64, M64, M64], 1), Sample([M64, M64], -1), Sample([arr((), F64), arr((), F64)]),
      Sample([M, arr((3, 4), I64)], 0)]),
    ("hstack", lambda T, xs: T.hstack(xs), np.hstack, [Sample([M64, arr((3, 2), F64)]), Sample([arr((3,)), arr((2,))])]),
    ("vstack", lambda T, xs: T.vstack(xs), np.vstack, [Sample([M64, arr((2, 4), F64)]), Sample([arr((3,)), arr((3,))])]),
    ("split", None, _split_ref,
     [Sample(arr((5, 3)), 2), Sample(arr((5, 3), F64), [1, 4]), Sample(arr((5, 3), F64), 2, 1),
      Sample(arr((5, 3), F64), 2).slow(), Sample(arr((5, 3), F64), 3, -1).slow()]),
    ("chunk", None, _chunk_ref, [Sample(arr((5, 3)), 2), Sample(arr((5, 3), F64), 3), Sample(arr((5, 3), F64), 2, 1),
                                 Sample(arr((6, 3), F64), 4)]),
    ("tensor_split", None, _tensor_split_ref, [Sample(arr((5, 3), F64), 3), Sample(arr((7, 3), F64), [1, 4])]),
    ("unbind", None, lambda x, dim=0: tuple(np.moveaxis(x, dim, 0)), [Sample(M), Sample(M64, 1)]),
    ("flip", None, np.flip, [Sample(Y, (0, 2)), Sample(Y64, [1]), Sample(Y64, (-1,)), Sample(arr((3,), I64), (0,))]),
    ("roll", None, _roll_ref, [Sample(Y, 1), Sample(Y64, 2, 1), Sample(Y64, (1, -2), (0, 2)), Sample(M64, -5, -1)]),
    ("repeat", lambda T, x, *s: x.repeat(*s), _repeat_ref,
     [Sample(M, 2, 1), Sample(M64, 2, 1, 3), Sample(arr((), F64), 3), Sample(arr((3,), I64), 2, 2)]),
    ("tile", None, lambda x, d: np.tile(x, d), [Sample(M, (2,)), Sample(M64, (2, 1, 2))]),
    ("repeat_interleave", lambda T, x, r, **k: T.repeat_interleave(x, r, **k), _ri_ref,
     [Sample(M, 2), Sample(M64, 2, dim=1), Sample(M64, I(1, 0, 2), dim=0)]),
    ("tril", None, np.tril, [Sample(M), Sample(M64), Sample(M64, 1), Sample(arr((2, 3, 4), F64), -1)]),
    ("triu", None, np.triu, [Sample(M), Sample(M64), Sample(M64, -1), Sample(arr((2, 3, 4), F64), 2)]),
    ("narrow", None, _narrow_ref, [Sample(Y, 1, 1, 2), Sample(Y64, -1, 0, 3), Sample(Y64, 0, -1, 1)]),
    ("select", None, _select_ref, [Sample(Y, 1, 2), Sample(Y64, -1, -1), Sample(Y64, 0, 1)]),
    ("diagonal", None, lambda x, offset=0, dim1=0, dim2=1: np.diagonal(x, offset, dim1, dim2),
     [Sample(M), Sample(M64, 1), Sample(Y64, 1, -1, -2), Sample(M64).slow(), Sample(M64, -2).slow(),
      Sample(Y64, 0, 2, 0).slow()]),
    ("clone", None, np.copy, [Sample(M), Sample(M64)]),
]
for _name, _op, _ref, _samples in _MOVE:
    rec(_name, _op, _ref, _samples, dtype=(lambda s: _promote_of(s.args[0])) if _name in ("cat", "stack") else "same")


# ---- indexing ----------------------------------------------------------------------------------

def _grid(index, dim):
    g = list(np.indices(index.shape, sparse=True))
    g[dim] = index
    return tuple(g)


def _gather_ref(x, dim, index):
    return x[_grid(index, dim)]


def _scatter_ref(x, dim, index, src, reduce=None):
    out = x.copy()
    src = src[tuple(slice(0, s) for s in index.shape)] if isinstance(src, np.ndarray) else src
    if reduce == "add":
        np.add.at(out, _grid(index, dim), src)
    else:
        out[_grid(index, dim)] = src
    return out


def _scatter_add_ref(x, dim, index, src):
    return _scatter_ref(x, dim, index, src, "add")


def _scatter_reduce_ref(x, dim, index, src, reduce, include_self=True):
    out = x.copy()
    src = src[tuple(slice(0, s) for s in index.shape)]
    f = {"sum": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}[reduce]
    g = _grid(index, dim)
    if not include_self:
        ident = {"sum": 0, "prod": 1, "amax": -np.inf, "amin": np.inf}[reduce]
        out[g] = ident
    f.at(out, g, src)
    return out


def _perm_index(shape, n, dim):
    """An index of ``shape`` whose entries along ``dim`` are distinct (scatter without collisions)."""
    idx = np.empty(shape, np.int64)
    for pos in np.ndindex(*[s for i, s in enumerate(shape) if i != dim]):
        sl = list(pos)
        sl.insert(dim, slice(None))
        idx[tuple(sl)] = _rng.permutation(n)[:shape[dim]]
    return idx


def _sort_ref(x, dim=-1, descending=False, stable=False):
    if x.ndim == 0:
        return x, np.zeros((), np.int64)
    idx = np.argsort(-x if descending else x, axis=dim, kind="stable")
    return np.take_along_axis(x, idx, dim), idx


def _topk_ref(x, k, dim=-1, largest=True, sorted=True):
    idx = np.argsort(-x if largest else x, axis=dim, kind="stable")
    idx = np.take(idx, range(k), axis=dim)
    return np.take_along_axis(x, idx, dim), idx


def _take_along_dim_ref(x, idx, dim=None):
    if dim is None:
        return np.take(x.reshape(-1), idx.reshape(-1))
    return np.take_along_axis(x, idx, dim)


def _index_add_ref(x, dim, index, src, alpha=1):
    out = x.copy()
    sl = [slice(None)] * x.ndim
    sl[dim] = index
    np.add.at(out, tuple(sl), alpha * src)
    return out


def _index_fill_ref(x, dim, index, value):
    out = x.copy()
    sl = [slice(None)] * x.ndim
    sl[dim] = index
    out[tuple(sl)] = value
    return out


def _kthvalue_ref(x, k, dim=-1, keepdim=False):
    idx = np.argsort(x, axis=dim, kind="stable")
    i = np.take(idx, [k - 1], axis=dim)
    v = np.take_along_axis(x, i, dim)
    return (v, i) if keepdim else (np.squeeze(v, dim), np.squeeze(i, dim))


def _getitem(T, x, idx):
    return x[idx]


def _setitem(T, x, v, idx):
    y = x.clone()
    y[idx] = v
    return y


def _setitem_ref(x, v, idx):
    y = x.copy()
    y[idx] = v
    return y


G = arr((3, 4), distinct=True)
G64 = arr((3, 4), F64, distinct=True)
_IDX = [  # name, op, reference, samples, dtype rule, differentiable
    ("getitem[basic]", _getitem, lambda x, idx: x[idx],
     [Sample(Y, (1,)), Sample(Y, (slice(None), 1)), Sample(Y64, (slice(1, None), None, Ellipsis, -1)),
      Sample(Y64, (Ellipsis, slice(None, None, 2))), Sample(Y64, (0, slice(0, 3, 2), slice(-3, -1))),
      Sample(Y64, (slice(5, 9),)), Sample(Y64, (None,)), Sample(arr((4,), I64), (slice(1, 3),))], "same", True),
    ("getitem[advanced]", _getitem, lambda x, idx: x[idx],
     [Sample(Y, (I(1, 0, 1),)), Sample(Y64, (slice(None), I(2, 0))),
      Sample(Y64, (I(0, 1), slice(None), I(-1, 3))),  # separated index tensors: their dims go first
      Sample(Y64, (I(0, 1), slice(1, 3), I(2, 0))), Sample(Y64, (Ellipsis, I(3, 0, 0))),
      Sample(Y64, (np.array([[0, 1], [1, 1]]),)), Sample(Y64, (1, [2, 0])),
      Sample(Y64, (Y64 > 0,)), Sample(Y64, (slice(None), Y64[0, :, 0] > 0)),
      Sample(M64, (I(0, 0, 2),)),  # a repeated index accumulates its gradient
      Sample(Y64, (I(1, 0, 1),)).slow(), Sample(Y64, (I(0, 1), I(2, 0))).slow(), Sample(Y64, ([1, 0],)).slow(),
      Sample(Y64, (Y64[:, :, 0] > 0,)).slow(), Sample(Y64, (I(),)).slow()], "same", True),
    ("setitem", _setitem, _setitem_ref,
     [Sample(M64, arr((4,), F64), (1,)), Sample(M64, 2.5, (slice(None), slice(1, 3))),
      Sample(M64, arr((3, 1), F64), (slice(None), I(0, 2))), Sample(M64, arr((), F64), (M64 > 0,)),
      Sample(M, arr((2,)), (I(0, 2), I(1, 3)))], "same", True),
    ("gather", None, _gather_ref,
     [Sample(G, 1, I(0, 3, 3, 1, 0, 2).reshape(3, 2)), Sample(G64, 0, I(2, 0, 1, 1, 2, 2, 0, 0).reshape(2, 4)),
      Sample(G64, -1, I(3, 3, 0, 1, 2, 2).reshape(3, 2)), Sample(G64, 1, I(0, 1).reshape(2, 1)),
      Sample(arr((3, 4), I64), 1, I(0, 3, 3).reshape(3, 1))], "same", True),
    ("take_along_dim", lambda T, x, i, *a: T.take_along_dim(x, i, *a), _take_along_dim_ref,
     [Sample(G64, I(0, 3, 3, 1, 0, 2).reshape(3, 2), 1), Sample(G64, I(0, 5, 11))], "same", True),
    ("scatter", lambda T, x, dim, index, src, **k: T.scatter(x, dim, index, src, **k), _scatter_ref,
     [Sample(G, 1, _perm_index((3, 2), 4, 1), arr((3, 2))), Sample(G64, 0, _perm_index((2, 4), 3, 0), arr((2, 4), F64)),
      Sample(G, 1, _perm_index((2, 3), 4, 1), arr((3, 4))),  # src larger than index: only its corner is read
      Sample(G64, -1, _perm_index((3, 2), 4, 1), 1.5),
      Sample(G, 1, I(0, 0, 1, 1, 2, 2).reshape(3, 2), arr((3, 2)), reduce="add"),  # torch: no derivative
      Sample(arr((3, 4), I64), 1, _perm_index((3, 2), 4, 1), arr((3, 2), I64))], "same", True),
    ("scatter_add", None, _scatter_add_ref,
     [Sample(G, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2))),
      Sample(G64, 0, I(2, 2, 0, 0, 1, 1, 1, 1).reshape(2, 4), arr((2, 4), F64)),
      Sample(G, 1, I(0, 0, 1, 1, 2, 2).reshape(2, 3), arr((3, 4))),
      Sample(arr((3, 4), I64), 1, I(0, 0, 1).reshape(3, 1), arr((3, 1), I64))], "same", True),
    ("scatter_reduce", None, _scatter_reduce_ref,
     [Sample(G64, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2), F64), "sum"),
      Sample(G, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2)), "prod"),
      Sample(G, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2)), "amax"),
      Sample(G, 0, I(1, 1, 2, 0).reshape(1, 4), arr((1, 4)), "amin", include_self=False),
      Sample(G, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2)), "sum", include_self=False),
      Sample(G64, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2), F64, 3, 4), "amax"),
      Sample(G64, 1, I(0, 0, 1, 1, 2, 3).reshape(3, 2), arr((3, 2), F64, 0.5, 2), "prod"),
      Sample(np.array([[0.0, 1.5, 2.0], [0.0, 3.0, -1.0]]), 1, I(0, 0, 1, 2).reshape(2, 2),  # zeros in a group
             np.array([[2.0, 0.5], [0.0, 0.0]]), "prod"),
      Sample(np.array([[1.0, 3.0, 2.0]]), 1, I(1, 1, 0).reshape(1, 3), np.array([[3.0, 0.5, 1.0]]),
             "amax").no_fd()], "same", True),  # a three-way tie shares the gradient
    ("index_select", None, lambda x, dim, index: np.take(x, index, axis=dim),
     [Sample(G, 0, I(2, 0, 2)), Sample(G64, 1, I(3, 1)), Sample(G64, -1, I()), Sample(arr((3, 4), I64), 0, I(1)),
      Sample(arr((4,), F64), 0, I(3, 3, 0))], "same", True),
    ("index_add", lambda T, x, dim, i, s, **k: T.index_add(x, dim, i, s, **k), _index_add_ref,
     [Sample(G, 0, I(2, 0, 2), arr((3, 4))), Sample(G64, 1, I(3, 1), arr((3, 2), F64), alpha=2.0)], "same", True),
    ("index_fill", None, _index_fill_ref, [Sample(G, 1, I(0, 2), -1.5), Sample(G64, 0, I(1,), 2.0)], "same", True),
    ("masked_fill", None, lambda x, m, v: np.where(m, v, x),
     [Sample(G, G > 0, -1.5), Sample(G64, arr((4,), BOOL), 0.25), Sample(G64, arr((3, 1), BOOL), np.array(2.0)),
      Sample(arr((3, 4), I64), arr((3, 4), BOOL), 7), Sample(arr((3, 4), I64), arr((3, 4), BOOL), 2.0)], "same", True),
    ("masked_select", None, lambda x, m: np.broadcast_arrays(x, m)[0][np.broadcast_arrays(x, m)[1]],
     [Sample(G, G > 0), Sample(G64, arr((4,), BOOL))], "same", True),
    ("take", None, lambda x, i: np.take(x.reshape(-1), i),
     [Sample(G, I(0, 11, 5)), Sample(G64, np.array([[1, 2], [-1, 0]])), Sample(arr((), F64), I(0, 0))], "same", True),
    ("sort", lambda T, x, *a, **k: T.sort(x, *a, **k), _sort_ref,
     [Sample(G), Sample(G, 0), Sample(G64, descending=True), Sample(G64, 0, True),
      Sample(arr((3, 4), I64, -9, 9, distinct=True), -1), Sample(np.array([3.0, np.nan, 1.0, 2.0])),
      Sample(arr((), F64)).slow(), Sample(arr((0, 3)), 1).slow()], lambda s: (_name_of(s.args[0].dtype), I64), True),
    ("argsort", lambda T, x, *a, **k: T.argsort(x, *a, **k), lambda *a, **k: _sort_ref(*a, **k)[1],
     [Sample(G), Sample(G, 0, True)], I64, False),
    ("topk", lambda T, x, k, *a, **kw: T.topk(x, k, *a, **kw), _topk_ref,
     [Sample(G, 2), Sample(G64, 3, 0), Sample(G64, 2, -1, False), Sample(G64, 1, 1, largest=True),
      Sample(arr((3, 4), I64, -9, 9, distinct=True), 2)], lambda s: (_name_of(s.args[0].dtype), I64), True),
    ("kthvalue", lambda T, x, k, *a, **kw: T.kthvalue(x, k, *a, **kw), _kthvalue_ref,
     [Sample(G, 2), Sample(G64, 3, 0, True)], lambda s: (_name_of(s.args[0].dtype), I64), True),
]
for _name, _op, _ref, _samples, _dtype, _grad in _IDX:
    rec(_name, _op, _ref, _samples, _dtype, grad=_grad)


def _stop_gradient(T, x):
    """The primitive traced graphs use for detach()/no_grad (eager detach() records nothing)."""
    if T.__name__ == "tracenn":
        from tracenn._dispatch import apply
        from tracenn.ops import OPS
        return apply(OPS["stop_gradient"], (x,))
    return x.detach()


rec("stop_gradient", _stop_gradient, lambda x: x, unary_samples(), "same", grad=False)


# ---- the dtype rule's helpers ------------------------------------------------------------------

def _name_of(d):
    d = np.dtype(d)
    return BF16 if d == np_dtype(BF16) else d.name


def _torch_dtype(T, kwargs):
    """Turn a ``dtype="float64"`` sample kwarg into T's dtype object."""
    if "dtype" in kwargs and isinstance(kwargs["dtype"], str):
        kwargs = dict(kwargs, dtype=getattr(T, kwargs["dtype"]))
    return kwargs


_CAT = {"b": 0, "i": 1, "u": 1, "f": 2, "V": 2}


def _category(name):
    return 0 if name == BOOL else 2 if name in FLOATS else 1


def _promote2(a, b):
    """torch.promote_types for one category level (the oracle, written independently of tracenn)."""
    if a == b:
        return a
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    if ca == 2:
        if {a, b} == {F16, BF16}:
            return F32
        order = [F16, BF16, F32, F64]
        return a if order.index(a) > order.index(b) else b
    return np.promote_types(a, b).name


def _combine(higher, lower):
    """torch's combine_categories: a lower-priority participant only lifts the category."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if _category(higher) == 2:
        return higher
    if higher == BOOL or _category(lower) == 2:
        return _promote2(higher, lower)
    return higher


def _promote_of(operands):
    """torch.result_type of tensors (arrays), 0-d tensors and Python numbers."""
    if isinstance(operands, np.ndarray):
        operands = [operands]
    dim = zero = wrapped = None
    for x in operands:
        if isinstance(x, np.ndarray):
            n = _name_of(x.dtype)
            if x.ndim:
                dim = n if dim is None else _promote2(dim, n)
            else:
                zero = n if zero is None else _promote2(zero, n)
        elif isinstance(x, (list, tuple)) and x and all(isinstance(y, np.ndarray) for y in x):
            for y in x:  # a tensor list (cat, stack)
                n = _name_of(y.dtype)
                dim = n if dim is None else _promote2(dim, n)
        elif isinstance(x, (bool, int, float)):
            n = BOOL if isinstance(x, bool) else I64 if isinstance(x, int) else F32
            wrapped = n if wrapped is None else _promote2(wrapped, n)
    return _combine(dim, _combine(zero, wrapped))


def expected_dtypes(record, sample):
    """The torch dtype name(s) of the record's result on ``sample``."""
    rule = record.dtype
    if callable(rule):
        rule = rule(sample)
    rules = rule if isinstance(rule, tuple) else (rule,)
    out = []
    for r in rules:
        if r == "promote":
            r = _promote_of([a for a in sample.args if not isinstance(a, str)])
        elif r == "float":
            r = _promote_of([a for a in sample.args if not isinstance(a, str)])
            r = r if _category(r) == 2 else F32
        elif r == "same":
            r = _name_of(sample.arrays()[0].dtype) if sample.arrays() else _promote_of(sample.args[0])
        elif r == "sum":
            r = _sum_dtype(sample)
        out.append(r)
    return tuple(out) if isinstance(rule, tuple) else out[0]


def _load_more_rows():
    """The rows kept in the op_records_<area>.py files beside this one (this file is past 1300
    lines); each has an ``add(R)`` that appends its rows."""
    import importlib.util
    import pathlib
    import sys
    for path in sorted(pathlib.Path(__file__).parent.glob("op_records_*.py")):
        name = f"{__name__}_{path.stem.removeprefix('op_records_')}"
        if name not in sys.modules:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            mod.add(sys.modules[__name__])


_load_more_rows()
