"""Table-driven op tests: every record in ``op_records.RECORDS`` is checked for

1. eager forward vs its NumPy reference: values, shape and torch's result dtype;
2. gradients (differentiable records, float64 samples) vs central finite differences of the
   reference (of tracenn's own forward where a record has no reference);
3. forward and gradient parity with PyTorch, when it is installed (skipped cleanly otherwise).

Plus pinned promotion cases and error cases (type and message). To test a new op, add a row to
``op_records.py``; do not add a test function here.

The default run uses each record's fast samples (every jit compile behind eager dispatch costs
~50 ms); ``-m slow`` adds the rest (0-d, empty, rarer dtype pairs), float32 gradients vs torch and an
every-dtype-pair sweep of the binary ops against torch.
"""
from __future__ import annotations

import itertools
import pathlib

import numpy as np
import pytest

import tracenn
from helpers import load_by_path, to_np

_HERE = pathlib.Path(__file__).resolve().parent




R = load_by_path("_tracenn_op_records", _HERE / "op_records.py")
pytestmark = [pytest.mark.filterwarnings("ignore:The reduce argument of torch.scatter:UserWarning"),
              pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")]  # torch's own notes

# (rtol, atol) per result dtype; a record's ``tol`` multiplies both.
TOL = {"float64": (1e-9, 1e-11), "float32": (1e-5, 1e-6), "float16": (2e-3, 1e-3), "bfloat16": (1.6e-2, 1e-2),
       "complex128": (1e-9, 1e-11), "complex64": (1e-5, 1e-6)}
FD_TOL = (1e-5, 1e-6)  # gradients vs central differences in float64


# ---- conversions -------------------------------------------------------------------------------

def to_tracenn(a):
    if isinstance(a, np.ndarray):
        return tracenn.tensor(a)
    if isinstance(a, dict):
        return {k: to_tracenn(v) for k, v in a.items()}
    if isinstance(a, list):
        return [to_tracenn(x) for x in a]
    if isinstance(a, tuple):
        return tuple(to_tracenn(x) for x in a)
    return a


def to_torch(torch, a):
    if isinstance(a, np.ndarray):
        if a.dtype == R.np_dtype(R.BF16):
            return torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
        return torch.from_numpy(np.array(a))
    if isinstance(a, dict):
        return {k: to_torch(torch, v) for k, v in a.items()}
    if isinstance(a, list):
        return [to_torch(torch, x) for x in a]
    if isinstance(a, tuple):
        return tuple(to_torch(torch, x) for x in a)
    return a


_BITS = {"float16": 16, "bfloat16": 16, "float32": 32, "float64": 64}


def to_ref(a, compute=None):
    """Reference inputs: float arrays as float64, so the reference computes exactly.

    ``compute``: the float dtype torch computes in; wider inputs are first rounded to it (a float32
    0-d tensor added to a float16 tensor is cast to float16, as torch does).
    """
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f" or a.dtype == R.np_dtype(R.BF16):
            if compute in _BITS and _BITS[R._name_of(a.dtype)] > _BITS[compute]:
                a = a.astype(R.np_dtype(compute))
            return a.astype(np.float64)
        return a
    if isinstance(a, dict):
        return {k: to_ref(v, compute) for k, v in a.items()}
    if isinstance(a, list):
        return [to_ref(x, compute) for x in a]
    if isinstance(a, tuple):
        return tuple(to_ref(x, compute) for x in a)
    return a


def dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "").replace("tracenn.", "")


def is_seq(x):
    return isinstance(x, (list, tuple))


def flat_outputs(out):
    return list(out) if is_seq(out) else [out]


# ---- comparisons -------------------------------------------------------------------------------

def check_value(actual, expected, dtype, tol, what):
    """``actual`` (a tensor) against ``expected`` (array-like) at the tolerance of ``dtype``."""
    a, e = to_np(actual), to_np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
    if dtype not in TOL:  # bool and integer results are exact
        np.testing.assert_array_equal(a.astype(e.dtype) if e.dtype.kind in "biu" else a, e, err_msg=what)
        return
    rtol, atol = TOL[dtype]
    wide = np.complex128 if "complex" in dtype else np.float64
    np.testing.assert_allclose(a.astype(wide), e.astype(wide), rtol=rtol * tol, atol=atol * tol,
                               equal_nan=True, err_msg=what)


def check_outputs(actual, expected, dtypes, tol, what, *, check_dtype=True):
    """Compare an op's result (a tensor or a sequence of them) with the expectation."""
    acts, exps = flat_outputs(actual), flat_outputs(expected)
    assert is_seq(actual) == is_seq(expected), f"{what}: got {type(actual).__name__}, expected {type(expected).__name__}"
    assert len(acts) == len(exps), f"{what}: {len(acts)} outputs, expected {len(exps)}"
    names = dtypes if isinstance(dtypes, tuple) else (dtypes,) * len(acts)
    for i, (a, e, d) in enumerate(zip(acts, exps, names)):
        w = f"{what} output {i}" if len(acts) > 1 else what
        if check_dtype:
            assert dtype_name(a) == d, f"{w}: dtype {dtype_name(a)}, torch gives {d}"
        check_value(a, e, d, tol, w)


def _note(e, rec, sample, stage):
    e.add_note(f"op table: {rec.name}{sample!r} [{stage}]")


def _params(records, stage):
    out = []
    for r in records:
        marks = [pytest.mark.xfail(reason=r.xfail[stage], strict=True)] if stage in r.xfail else []
        out.append(pytest.param(r, id=r.name, marks=marks))
    return out


FORWARD = [r for r in R.RECORDS if r.ref is not None]
GRAD = [r for r in R.RECORDS if r.grad and any(s.is_grad_sample() for s in r.fast)]


# ---- 1. forward vs NumPy -----------------------------------------------------------------------

@pytest.mark.parametrize("rec", _params(FORWARD, "forward"))
def test_forward_vs_numpy(rec):
    check_forward(rec, rec.fast)


def check_forward(rec, samples):
    for s in samples:
        try:
            out = rec.op(tracenn, *to_tracenn(s.args), **to_tracenn(s.kwargs))
            dtypes = R.expected_dtypes(rec, s)
            with np.errstate(all="ignore"):  # the reference may meet NaN/inf on purpose
                if rec.upcast:
                    compute = dtypes if isinstance(dtypes, str) else None
                    ref = rec.ref(*to_ref(s.args, compute), **to_ref(s.kwargs, compute))
                else:
                    ref = rec.ref(*s.args, **s.kwargs)
            check_outputs(out, ref, dtypes, rec.tol, f"{rec.name}{s!r}")
        except Exception as e:
            _note(e, rec, s, "forward vs numpy")
            raise


# ---- 2. gradients vs finite differences ----------------------------------------------------------

def _leaves(args):
    """Paths (i,) or (i, j) of the float array arguments (top level, or inside a list)."""
    paths = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            paths.append((i,))
        elif isinstance(a, list):
            paths += [(i, j) for j, x in enumerate(a) if isinstance(x, np.ndarray) and x.dtype.kind == "f"]
    return paths


def _get(args, path):
    x = args[path[0]]
    return x if len(path) == 1 else x[path[1]]


def _with(args, path, value):
    args = list(args)
    if len(path) == 1:
        args[path[0]] = value
    else:
        inner = list(args[path[0]])
        inner[path[1]] = value
        args[path[0]] = inner
    return tuple(args)


def _cotangents(outs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(tuple(o.shape)) for o in outs]


def _float_outputs(out):
    return [i for i, o in enumerate(flat_outputs(out)) if o.dtype.is_floating_point]


def _autograd(T, rec, s, leaves, convert, seed=0):
    """Run the op on ``T`` with the float leaves requiring grad; return (grads, float output indices)."""
    args = convert(s.args)
    kwargs = convert(s.kwargs)
    ins = []
    for p in leaves:
        t = _get(args, p)
        t.requires_grad_(True)
        ins.append(t)
    out = rec.op(T, *args, **kwargs)
    idx = _float_outputs(out)
    outs = [flat_outputs(out)[i] for i in idx]
    cts = [convert(c.astype(R.np_dtype(dtype_name(o)))) for c, o in zip(_cotangents(outs, seed), outs)]
    grads = T.autograd.grad(outs, ins, cts, allow_unused=True)
    return grads, idx, outs


def _fd(fn, args, kwargs, path, idx, cts, h=1e-6):
    """d <cts, fn(args)[idx]> / d args[path] by central differences."""
    def f(a):
        out = flat_outputs(fn(*a, **kwargs))
        return sum(float(np.sum(c * np.asarray(out[i], np.float64))) for i, c in zip(idx, cts))

    x = _get(args, path)
    g = np.zeros(x.shape)
    for pos in np.ndindex(*x.shape):
        step = h * max(1.0, abs(float(x[pos])))
        xp, xm = x.copy(), x.copy()
        xp[pos] += step
        xm[pos] -= step
        g[pos] = (f(_with(args, path, xp)) - f(_with(args, path, xm))) / (2 * step)
    return g


def _tracenn_forward(rec):
    def fn(*args, **kwargs):
        with tracenn.no_grad():
            out = rec.op(tracenn, *to_tracenn(args), **to_tracenn(kwargs))
        return [to_np(o) for o in out] if is_seq(out) else to_np(out)
    return fn


@pytest.mark.parametrize("rec", _params(GRAD, "grad"))
def test_grad_vs_finite_differences(rec):
    check_grad(rec, [s for s in rec.fast if s.is_grad_sample() and s.fd])


def check_grad(rec, samples):
    fn = rec.ref or _tracenn_forward(rec)
    for s in samples:
        try:
            leaves = _leaves(s.args)
            grads, idx, outs = _autograd(tracenn, rec, s, leaves, to_tracenn)
            cts = _cotangents(outs, 0)
            for p, g in zip(leaves, grads):
                x = _get(s.args, p)
                expected = _fd(fn, s.args, s.kwargs, p, idx, cts)
                what = f"{rec.name}{s!r} d/d(arg {p})"
                if g is None:  # unused input: torch's allow_unused gives None; the gradient is zero
                    assert not expected.any(), f"{what}: no gradient, but finite differences say {expected}"
                    continue
                assert dtype_name(g) == "float64" and tuple(g.shape) == x.shape, \
                    f"{what}: gradient {dtype_name(g)}{list(g.shape)} for input float64{list(x.shape)}"
                np.testing.assert_allclose(to_np(g), expected, rtol=FD_TOL[0] * rec.tol,
                                           atol=FD_TOL[1] * rec.tol, err_msg=what)
        except Exception as e:
            _note(e, rec, s, "gradient vs finite differences")
            raise


# ---- 3. parity with PyTorch --------------------------------------------------------------------

@pytest.mark.parametrize("rec", _params(R.RECORDS, "torch"))
def test_forward_matches_torch(rec, torch):
    check_forward_torch(rec, rec.fast, torch)


def check_forward_torch(rec, samples, torch):
    for s in samples:
        try:
            out = rec.op(tracenn, *to_tracenn(s.args), **to_tracenn(s.kwargs))
            expect = rec.torch_op(torch, *to_torch(torch, s.args), **to_torch(torch, s.kwargs))
            texp = tuple(dtype_name(o) for o in flat_outputs(expect))
            oracle = R.expected_dtypes(rec, s)
            oracle = oracle if isinstance(oracle, tuple) else (oracle,) * len(texp)
            assert texp == oracle, f"the table's dtype rule says {oracle}, torch gives {texp}: fix the record"
            check_outputs(out, tuple(expect) if is_seq(expect) else expect,
                          texp if is_seq(expect) else texp[0], rec.tol, f"{rec.name}{s!r} vs torch")
        except Exception as e:
            _note(e, rec, s, "forward vs torch")
            raise


def _as_float32(s):
    def cast(a):
        if isinstance(a, np.ndarray) and a.dtype == np.float64:
            return a.astype(np.float32)
        if isinstance(a, list):
            return [cast(x) for x in a]
        return a
    return R.Sample(*[cast(a) for a in s.args], **s.kwargs)


@pytest.mark.parametrize("rec", _params(GRAD, "torch_grad"))
def test_grad_matches_torch(rec, torch):
    check_grad_torch(rec, [s for s in rec.fast if s.is_grad_sample()], torch)


def check_grad_torch(rec, samples, torch):
    for s in samples:
        try:
            leaves = _leaves(s.args)
            got, _, _ = _autograd(tracenn, rec, s, leaves, to_tracenn)
            want, _, _ = _autograd(torch, rec, s, leaves, lambda a: to_torch(torch, a))
            for p, g, w in zip(leaves, got, want):
                what = f"{rec.name}{s!r} d/d(arg {p}) vs torch"
                if w is not None and w._is_zerotensor():  # torch's lazy zeros (sign, round, ...)
                    w = torch.zeros(w.shape, dtype=w.dtype)
                if w is None or g is None:
                    assert (w is None or not to_np(w).any()) and (g is None or not to_np(g).any()), \
                        f"{what}: tracenn {g}, torch {w}"
                    continue
                assert dtype_name(g) == dtype_name(w), f"{what}: dtype {dtype_name(g)} != {dtype_name(w)}"
                check_value(g, to_np(w), dtype_name(w), 2 * rec.tol, what)
        except Exception as e:
            _note(e, rec, s, "gradient vs torch")
            raise


# ---- the slow pass: every sample, float32 gradients ------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("rec", _params(R.RECORDS, "slow"))
def test_all_samples(rec):
    """The samples left out of the default run (0-d, empty, rarer dtype pairs), and float32 gradients."""
    slow = [s for s in rec.samples if s.is_slow]
    if rec.ref is not None:
        check_forward(rec, slow)
    grad = [s for s in slow if s.is_grad_sample()] if rec.grad else []
    if any(s.fd for s in grad):  # a tie (``no_fd``) is checked against torch only, as in the fast run
        check_grad(rec, [s for s in grad if s.fd])
    try:
        import torch
    except ImportError:
        return
    check_forward_torch(rec, slow, torch)
    if rec.grad:
        check_grad_torch(rec, grad + [_as_float32(s) for s in rec.samples if s.is_grad_sample()], torch)


# ---- pinned promotion cases ------------------------------------------------------------------------

def _t(T, data, dtype):
    return T.tensor(data, dtype=getattr(T, dtype))


PROMOTION = [  # (what, expression on T, torch's dtype)
    ("int / int", lambda T: _t(T, [1, 2], "int64") / _t(T, [2, 2], "int64"), "float32"),
    ("int + 2.5", lambda T: _t(T, [1, 2], "int64") + 2.5, "float32"),
    ("2.5 * int32", lambda T: 2.5 * _t(T, [1, 2], "int32"), "float32"),
    ("int32 + 7", lambda T: _t(T, [1, 2], "int32") + 7, "int32"),
    ("float16 + float32 0-d", lambda T: _t(T, [1, 2], "float16") + _t(T, 1.0, "float32"), "float16"),
    ("bfloat16 + float16", lambda T: _t(T, [1, 2], "bfloat16") + _t(T, [1, 2], "float16"), "float32"),
    ("int32 + int64 0-d", lambda T: _t(T, [1, 2], "int32") + _t(T, 1, "int64"), "int32"),
    ("int64 + float64 0-d", lambda T: _t(T, [1, 2], "int64") + _t(T, 1.0, "float64"), "float64"),
    ("uint8 + int8", lambda T: _t(T, [1, 2], "uint8") + _t(T, [1, 2], "int8"), "int16"),
    ("bool + True", lambda T: _t(T, [True], "bool") + True, "bool"),
    ("bool + 1", lambda T: _t(T, [True], "bool") + 1, "int64"),
    ("bool * 1.5", lambda T: _t(T, [True], "bool") * 1.5, "float32"),
    ("float32 0-d + float64 0-d", lambda T: _t(T, 1.0, "float32") + _t(T, 1.0, "float64"), "float64"),
    ("int 0-d + 2.5", lambda T: _t(T, 1, "int64") + 2.5, "float32"),
    ("float64 0-d + int64 tensor", lambda T: _t(T, 1.0, "float64") + _t(T, [1], "int64"), "float64"),
    ("int ** 2.0", lambda T: _t(T, [1, 2], "int64") ** 2.0, "float32"),
    ("sqrt(int)", lambda T: T.sqrt(_t(T, [1, 4], "int64")), "float32"),
    ("sum(bool)", lambda T: T.sum(_t(T, [True, True], "bool")), "int64"),
    ("sum(int32)", lambda T: T.sum(_t(T, [1, 2], "int32")), "int64"),
    ("where(int, float)", lambda T: T.where(_t(T, [True, False], "bool"), _t(T, [1, 2], "int64"), 2.5), "float32"),
    ("clamp(int, float)", lambda T: T.clamp(_t(T, [1, 5], "int64"), 0.5, 2.5), "float32"),
    ("float16 + 1e5 overflows in float16", lambda T: _t(T, [1.0], "float16") + 1e5, "float16"),
]


@pytest.mark.parametrize("what,expr,dtype", PROMOTION, ids=[p[0] for p in PROMOTION])
def test_promotion(what, expr, dtype):
    assert dtype_name(expr(tracenn)) == dtype


@pytest.mark.parametrize("what,expr,dtype", PROMOTION, ids=[p[0] for p in PROMOTION])
def test_promotion_matches_torch(what, expr, dtype, torch):
    t, r = expr(torch), expr(tracenn)
    assert dtype_name(t) == dtype, f"the pinned dtype is wrong: torch gives {dtype_name(t)}"
    check_value(r, to_np(t), dtype, 1.0, what)


# ---- errors: torch's exception type, a message that says what to do -----------------------------

def _f(T, data):
    return T.tensor(data, dtype=T.float32)


ERRORS = [  # (what, expression on T, exception type torch raises, regex the tracenn message matches)
    ("bool - bool", lambda T: T.tensor([True]) - T.tensor([False]), RuntimeError, "logical_xor"),
    ("int ** negative int", lambda T: T.tensor([2]) ** -1, RuntimeError, "negative integer powers"),
    ("mean(int)", lambda T: T.mean(T.tensor([1, 2])), RuntimeError, "dtype"),
    ("div rounding_mode", lambda T: T.div(_f(T, [1.0]), 2, rounding_mode="round"), RuntimeError, "rounding_mode"),
    ("bitwise_and(float)", lambda T: T.bitwise_and(_f(T, [1.0]), _f(T, [1.0])), RuntimeError, "Float"),
    ("neg(bool)", lambda T: -T.tensor([True]), RuntimeError, "logical_not"),
    ("frac(int)", lambda T: T.frac(T.tensor([1, 2])), RuntimeError, "Long"),
    ("add int alpha float", lambda T: T.add(T.tensor([1]), T.tensor([1]), alpha=0.5), RuntimeError, "alpha"),
    ("clamp without bounds", lambda T: T.clamp(_f(T, [1.0])), RuntimeError, "min.*max"),
    ("clamp tensor and number", lambda T: T.clamp(_f(T, [1.0]), min=_f(T, [0.0]), max=0.5), TypeError, "both"),
    ("max() of empty", lambda T: T.max(T.zeros(0, 3)), RuntimeError, "numel"),
    ("argmax() of empty", lambda T: T.argmax(T.zeros(0, 3)), IndexError, "numel"),
    ("argmax over an empty dim", lambda T: T.argmax(T.zeros(0, 3), 0), IndexError, "dim 0 to have non-zero size"),
    ("amax over an empty dim", lambda T: T.amax(T.zeros(0, 3), (0, 1)), IndexError, "non-zero size"),
    ("max over an empty dim", lambda T: T.max(T.zeros(2, 0), -1), IndexError, "dim 1 to have non-zero size"),
    ("matmul shapes", lambda T: T.matmul(T.zeros(2, 3), T.zeros(4, 5)), RuntimeError, "2x3 and 4x5"),
    ("matmul 0-d", lambda T: T.matmul(T.zeros(()), T.zeros(3)), RuntimeError, "1D"),
    ("matmul dtypes", lambda T: T.matmul(T.zeros(2, 3), T.zeros(3, 2, dtype=T.float64)), RuntimeError, "same dtype"),
    ("bmm batch", lambda T: T.bmm(T.zeros(2, 2, 3), T.zeros(3, 3, 4)), RuntimeError, "batch"),
    ("dot sizes", lambda T: T.dot(T.zeros(2), T.zeros(3)), RuntimeError, "inconsistent"),
    ("conv channels", lambda T: T.conv2d(T.zeros(1, 3, 5, 5), T.zeros(2, 4, 3, 3)), RuntimeError, "channels"),
    ("conv kernel too big", lambda T: T.conv1d(T.zeros(1, 1, 2), T.zeros(1, 1, 3)), RuntimeError, "Kernel size"),
    ("conv same + stride", lambda T: T.conv1d(T.zeros(1, 1, 5), T.zeros(1, 1, 3), stride=2, padding="same"),
     RuntimeError, "strided"),
    ("cat shapes", lambda T: T.cat([T.zeros(2, 3), T.zeros(2, 4)]), RuntimeError, "Sizes of tensors"),
    ("stack shapes", lambda T: T.stack([T.zeros(2, 3), T.zeros(3, 2)]), RuntimeError, "equal size"),
    ("reshape numel", lambda T: T.zeros(2, 3).reshape(4, 2), RuntimeError, "invalid for input of size 6"),
    ("view non-contiguous", lambda T: T.zeros(2, 3).t().view(6), RuntimeError, "reshape"),
    ("expand", lambda T: T.zeros(2, 3).expand(4, 3), RuntimeError, "expanded size"),
    ("dim out of range", lambda T: T.zeros(2, 3).sum(2), IndexError, "range"),
    ("getitem out of range", lambda T: T.zeros(2, 3)[2], IndexError, "out of bounds"),
    ("getitem index tensor out of range", lambda T: T.zeros(2, 3)[T.tensor([0, 5])], IndexError, "out of bounds"),
    ("gather index", lambda T: T.gather(T.zeros(2, 3), 1, T.tensor([[3]])), RuntimeError, "out of bounds"),
    ("index put dtypes", lambda T: T.zeros(3).__setitem__(T.tensor([0]), T.tensor([1.0], dtype=T.float64)),
     RuntimeError, "dtype"),
    ("index_put_ dtypes", lambda T: T.zeros(3).index_put_((T.tensor([0]),), T.tensor([1.0], dtype=T.float64)),
     RuntimeError, "dtype"),
    ("var(int)", lambda T: T.var(T.tensor([1, 2])), RuntimeError, "floating point"),
    ("einsum dtypes", lambda T: T.einsum("i,i", T.zeros(2), T.zeros(2, dtype=T.float64)), RuntimeError, "dtype"),
    ("tensordot dtypes", lambda T: T.tensordot(T.zeros(2), T.zeros(2, dtype=T.float64), 1), RuntimeError, "dtype"),
    ("abs(bool)", lambda T: T.abs(T.tensor([True])), RuntimeError, "Bool"),
    ("bitwise_not(float)", lambda T: T.bitwise_not(_f(T, [1.0])), RuntimeError, "Float"),
    ("relu(bool)", lambda T: T.relu(T.tensor([True])), RuntimeError, "relu"),
    ("int - bool", lambda T: T.tensor([1]) - T.tensor([True]), RuntimeError, "bool tensor"),
    ("bool // bool", lambda T: T.tensor([True]) // T.tensor([True]), RuntimeError, "Bool"),
    ("bool ** bool tensor", lambda T: T.tensor([True]) ** T.tensor([True]), RuntimeError, "Bool"),
    ("maximum(x, number)", lambda T: T.maximum(_f(T, [1.0]), 0.5), TypeError, "must be Tensor"),
    ("atan2(x, number)", lambda T: T.atan2(_f(T, [1.0]), 0.5), TypeError, "must be Tensor"),
    ("hypot(int)", lambda T: T.hypot(T.tensor([1]), T.tensor([2])), RuntimeError, "Long"),
    ("lerp dtypes", lambda T: T.lerp(_f(T, [1.0]), T.tensor([2.0], dtype=T.float64), 0.5), RuntimeError, "end"),
    ("lerp(int)", lambda T: T.lerp(T.tensor([1]), T.tensor([2]), 0.5), RuntimeError, "Long"),
    ("shift(float)", lambda T: T.bitwise_left_shift(_f(T, [1.0]), 1), RuntimeError, "Float"),
    ("index_select index", lambda T: T.index_select(T.zeros(2, 3), 0, T.tensor([2])), IndexError, "out of"),
    ("topk k", lambda T: T.topk(T.zeros(3), 4), RuntimeError, "k"),
    ("masked_fill mask dtype", lambda T: T.masked_fill(T.zeros(3), T.tensor([1, 0, 1]), 1.0), RuntimeError, "bool"),
    ("split sizes", lambda T: T.split(T.zeros(5), [2, 2]), RuntimeError, "sum exactly"),
]


def _error_params(with_xfail):
    out = []
    for what, expr, exc, match, *bug in ERRORS:
        marks = [pytest.mark.xfail(reason=bug[0], strict=True)] if bug and with_xfail else []
        out.append(pytest.param(what, expr, exc, match, id=what, marks=marks))
    return out


@pytest.mark.parametrize("what,expr,exc,match", _error_params(True))
def test_error(what, expr, exc, match):
    with pytest.raises(exc, match=match):
        expr(tracenn)


@pytest.mark.parametrize("what,expr,exc,match", _error_params(False))
def test_error_matches_torch(what, expr, exc, match, torch):
    with pytest.raises(exc):
        expr(torch)


# ---- exhaustive dtype sweep (slow) ---------------------------------------------------------------

_SWEEP_DTYPES = (R.BOOL, R.U8, R.I32, R.I64, R.F16, R.BF16, R.F32, R.F64)
_SWEEP_OPS = ["add", "sub", "mul", "div", "div[floor]", "remainder", "maximum", "eq", "lt", "pow", "atan2",
              "bitwise_and", "where", "lerp", "fmod"]


@pytest.mark.slow
@pytest.mark.parametrize("name", _SWEEP_OPS)
def test_dtype_sweep_matches_torch(name, torch):
    """Every pair of dtypes, as dim tensors, 0-d tensors and Python numbers: same dtype and values."""
    rec = next(r for r in R.RECORDS if r.name == name)
    pairs = []
    for da, db in itertools.product(_SWEEP_DTYPES, repeat=2):
        for sa, sb in [((2, 3), (3,)), ((2, 3), ()), ((), (2, 3))]:
            pairs.append((R.arr(sa, da, 1, 3), R.arr(sb, db, 1, 3)))
        pairs.append((R.arr((2, 3), da, 1, 3), {R.BOOL: True, R.I64: 2, R.F32: 1.5}.get(db)))
    for a, b in pairs:
        if b is None:
            continue
        if name in ("div[floor]", "remainder", "fmod") and isinstance(b, np.ndarray) and b.dtype == bool:
            b = np.ones_like(b)  # integer division by zero: torch raises, tracenn does not check (no host sync)
        args = (R.arr((2, 3), R.BOOL), a, b) if name == "where" else (a, b, 0.5) if name == "lerp" else (a, b)
        s = R.Sample(*args)
        try:
            want = rec.torch_op(torch, *to_torch(torch, s.args))
        except Exception:  # torch refuses this combination: tracenn must refuse it too
            with pytest.raises(Exception):
                rec.op(tracenn, *to_tracenn(s.args))
            continue
        try:
            got = rec.op(tracenn, *to_tracenn(s.args))
            check_outputs(got, to_np(want), dtype_name(want), 4 * rec.tol, f"{name}{s!r} vs torch")
        except Exception as e:
            _note(e, rec, s, "dtype sweep")
            raise
