"""``tracenn.testing``: torch.testing's ``assert_close`` (its tolerances and messages),
``make_tensor`` (random test tensors in torch's default ranges, drawn from tracenn's generator)
and the deprecated ``assert_allclose``.

>>> import tracenn
>>> tracenn.testing.assert_close(tracenn.tensor([1.0, 2.0]), tracenn.tensor([1.0, 2.0 + 1e-7]))
>>> tracenn.testing.assert_close(tracenn.tensor([1.0, 2.0]), tracenn.tensor([1.0, 2.5]))
Traceback (most recent call last):
...
AssertionError: Tensor-likes are not close!
<BLANKLINE>
Mismatched elements: 1 / 2 (50.0%)
Greatest absolute difference: 0.5 at index (1,) (up to 1e-05 allowed)
Greatest relative difference: 0.20000000298023224 at index (1,) (up to 1.3e-06 allowed)
"""
from __future__ import annotations

import collections.abc
import math
import numbers
import warnings

import numpy as np

from . import dtypes as _dt
from .tensor import Tensor

__all__ = ["assert_close", "make_tensor", "assert_allclose"]

# torch's default (rtol, atol) per dtype; exact for the others
_TOLERANCES = {"float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5), "float32": (1.3e-6, 1e-5),
               "float64": (1e-7, 1e-7), "complex64": (1.3e-6, 1e-5), "complex128": (1e-7, 1e-7)}


class _Failure(Exception):
    def __init__(self, message, exc=AssertionError):
        super().__init__(message)
        self.message, self.exc = message, exc


def _tolerances(dtypes, rtol, atol):
    if (rtol is None) != (atol is None):
        raise ValueError(f"Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                         f"{'rtol' if rtol is None else 'atol'}.")
    if rtol is not None:
        return rtol, atol
    tols = [_TOLERANCES.get(d, (0.0, 0.0)) for d in dtypes]
    return max(t[0] for t in tols), max(t[1] for t in tols)


def _np(t: Tensor) -> np.ndarray:
    a = np.asarray(t.detach()._value)
    return a.astype(np.float32) if a.dtype.name == "bfloat16" else a


def _fmt_index(flat, shape):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _compare_values(actual, expected, rtol, atol, equal_nan, exact, scalar, dtype):
    a, e = np.asarray(actual), np.asarray(expected)
    if a.dtype.kind == "b":
        a, e = a.astype(np.int64), e.astype(np.int64)
    work = np.result_type(a, e)
    a, e = a.astype(work), e.astype(work)
    if exact:
        ok = a == e
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            ok = (a == e) | (np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= atol + rtol * np.abs(e)))
        if equal_nan:
            ok |= np.isnan(a) & np.isnan(e)
    if ok.all():
        return
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(a - e)
        # (an integer comparison reports its relative difference in float32, as torch's)
        rel = diff / np.abs(e) if work.kind in "fc" else diff.astype(np.float32) / np.abs(e).astype(np.float32)
    if scalar:  # (torch compares scalars as Python numbers: differences in double precision)
        got, want = a.reshape(()).item(), e.reshape(()).item()
        if not exact:
            diff, rel = np.abs(np.float64(got) - want), np.abs(np.float64(got) - want) / np.abs(np.float64(want))
        lines = [f"Expected {want} but got {got}."]
        tail = lambda tol: "" if exact else f" (up to {tol} allowed)"  # noqa: E731
        lines.append(f"Absolute difference: {diff.reshape(()).item()}{tail(atol)}")
        lines.append(f"Relative difference: {rel.reshape(()).item()}{tail(rtol)}")
        raise _Failure(f"Scalars are not {'equal' if exact else 'close'}!\n\n" + "\n".join(lines))
    bad = ~ok
    n_bad, n = int(bad.sum()), bad.size
    # the largest differences among all elements (NaN first, as torch's max over NaN)
    flat_diff, flat_rel = diff.reshape(-1), rel.reshape(-1)
    i_abs = int(np.argmax(np.where(np.isnan(flat_diff), np.inf, flat_diff)))
    i_rel = int(np.argmax(np.where(np.isnan(flat_rel), np.inf, flat_rel)))
    tail_a = "" if exact else f" (up to {atol} allowed)"
    tail_r = "" if exact else f" (up to {rtol} allowed)"
    abs_v = flat_diff[i_abs].item()
    abs_v = int(abs_v) if exact and float(abs_v).is_integer() else abs_v
    lines = [f"Mismatched elements: {n_bad} / {n} ({100.0 * n_bad / n:.1f}%)",
             f"Greatest absolute difference: {abs_v} at index {_fmt_index(i_abs, a.shape)}{tail_a}",
             f"Greatest relative difference: {flat_rel[i_rel].item()} at index {_fmt_index(i_rel, a.shape)}{tail_r}"]
    raise _Failure(f"Tensor-likes are not {'equal' if exact else 'close'}!\n\n" + "\n".join(lines))


def _tensor_pair(actual, expected, rtol, atol, equal_nan, check_device, check_dtype):
    if actual.shape != expected.shape:
        raise _Failure(f"The values for attribute 'shape' do not match: {actual.shape} != {expected.shape}.")
    if check_device and actual.device != expected.device:
        raise _Failure(f"The values for attribute 'device' do not match: {actual.device} != {expected.device}.")
    if check_dtype and actual.dtype != expected.dtype:
        raise _Failure(f"The values for attribute 'dtype' do not match: {actual.dtype} != {expected.dtype}.")
    names = [actual.dtype.name if hasattr(actual.dtype, "name") else str(actual.dtype),
             expected.dtype.name if hasattr(expected.dtype, "name") else str(expected.dtype)]
    names = [str(n).replace("tracenn.", "") for n in names]
    rtol, atol = _tolerances(names, rtol, atol)
    exact = all(n not in _TOLERANCES for n in names) and (rtol, atol) == (0.0, 0.0)
    _compare_values(_np(actual), _np(expected), rtol, atol, equal_nan, exact, actual.ndim == 0, names[0])


def _number_pair(actual, expected, rtol, atol, equal_nan):
    floaty = any(isinstance(x, (float, complex)) for x in (actual, expected))
    rtol, atol = _tolerances(["float64" if floaty else "int64"], rtol, atol)
    exact = not floaty and (rtol, atol) == (0.0, 0.0)
    _compare_values(actual, expected, rtol, atol, equal_nan, exact, True, None)


def _compare(actual, expected, path, **kw):
    try:
        if isinstance(actual, Tensor) and isinstance(expected, Tensor):
            return _tensor_pair(actual, expected, kw["rtol"], kw["atol"], kw["equal_nan"], kw["check_device"],
                                kw["check_dtype"])
        if isinstance(actual, numbers.Number) and isinstance(expected, numbers.Number) \
                and not isinstance(actual, Tensor) and not isinstance(expected, Tensor):
            return _number_pair(actual, expected, kw["rtol"], kw["atol"], kw["equal_nan"])
    except _Failure as f:
        where = "" if not path else "\n\nThe failure occurred for item " + "".join(f"[{p!r}]" for p in path)
        raise _Failure(f.message + where, f.exc) from None
    seq = collections.abc.Sequence
    if isinstance(actual, seq) and isinstance(expected, seq) and not isinstance(actual, str) \
            and not isinstance(expected, str):
        if len(actual) != len(expected):
            raise _Failure(f"The length of the sequences mismatch: {len(actual)} != {len(expected)}")
        for i, (a, e) in enumerate(zip(actual, expected)):
            _compare(a, e, path + (i,), **kw)
        return
    if isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        ka, ke = set(actual), set(expected)
        if ka != ke:
            missing, extra = sorted(map(repr, ke - ka)), sorted(map(repr, ka - ke))
            raise _Failure("The keys of the mappings do not match:\n"
                           + (f"Missing keys in the actual mapping: {', '.join(missing)}\n" if missing else "")
                           + (f"Extra keys in the actual mapping: {', '.join(extra)}" if extra else ""))
        for k in expected:
            _compare(actual[k], expected[k], path + (k,), **kw)
        return
    raise _Failure(f"No comparison pair was able to handle inputs of type {type(actual)} and {type(expected)}.",
                   TypeError)


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None):
    """Assert ``actual`` and ``expected`` are close: tensors (same shape, dtype and device unless
    told otherwise; ``|a - e| <= atol + rtol * |e|`` elementwise, with torch's per-dtype defaults),
    numbers, or sequences and mappings of them, compared item by item. ``msg``: a string, or a
    function of the generated message, for the AssertionError."""
    try:
        _compare(actual, expected, (), rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=check_device,
                 check_dtype=check_dtype)
    except _Failure as f:
        text = f.message
        if f.exc is AssertionError and msg is not None:
            text = msg(text) if callable(msg) else msg
        raise f.exc(text) from None


_INTEGRAL = ("uint8", "int8", "int16", "int32", "int64")
_FLOATING = ("float16", "bfloat16", "float32", "float64")
_COMPLEX = ("complex64", "complex128")


def _low_high(low, high, dtype, lowest, highest, default_low, default_high):
    """torch's ``modify_low_high``: defaults, NaN/order/range checks, clamping to the dtype."""
    low = default_low if low is None else low
    high = default_high if high is None else high
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        raise ValueError(f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    if low == high and dtype.name in _FLOATING + _COMPLEX:
        warnings.warn("Passing `low==high` to `torch.testing.make_tensor` for floating or complex types is deprecated "
                      "since 2.1 and will be removed in 2.3. Use `torch.full(...)` instead.", FutureWarning,
                      stacklevel=3)
    elif low >= high:
        raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    elif high < lowest or low >= highest:
        raise ValueError(f"The value interval specified by `low` and `high` is [{low}, {high}), but {dtype} only "
                         f"supports [{lowest}, {highest})")
    low, high = min(max(low, lowest), highest), min(max(high, lowest), highest)
    if dtype.name == "bool" or dtype.name in _INTEGRAL:
        return math.ceil(low), math.ceil(high)
    return low, high


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None) -> Tensor:
    """A tensor of ``shape`` filled with values drawn uniformly from ``[low, high)``, as torch's
    ``torch.testing.make_tensor`` (same defaults, checks and errors; the values come from
    tracenn's generator, so ``tracenn.manual_seed`` makes them repeatable).

    Default ranges: bool ``[0, 2)``, uint8 ``[0, 10)``, signed integers ``[-9, 10)``, floating
    and complex ``[-9, 9)``; ``low``/``high`` outside the dtype's finite range are clamped to it.
    ``noncontiguous=True`` returns every other element of a twice-as-wide tensor (a strided view);
    ``memory_format`` clones into that format; ``exclude_zero`` replaces zeros by 1 (bool, integers)
    or the dtype's ``finfo.tiny``. torch's unsigned 16/32/64-bit, complex32 and float8 dtypes do
    not exist in tracenn.

    >>> import tracenn
    >>> from tracenn.testing import make_tensor
    >>> x = make_tensor(2, 3, dtype=tracenn.float32, device="cpu", low=-1, high=1)
    >>> x.shape, bool(((x >= -1) & (x < 1)).all())
    (tracenn.Size([2, 3]), True)
    """
    import tracenn
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(shape)
    dtype = _dt.as_dtype(dtype)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, but got "
                         f"noncontiguous={noncontiguous} and memory_format={memory_format}")
    integral = dtype.name == "bool" or dtype.name in _INTEGRAL
    if requires_grad and integral:
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got "
                         f"dtype={dtype}")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    if noncontiguous:
        shape = (*shape[:-1], 2 * shape[-1])
    if dtype.name == "bool":
        low, high = _low_high(low, high, dtype, 0, 2, 0, 2)
        result = tracenn.randint(low, high, shape, device=device, dtype=dtype)
    elif dtype.name in _INTEGRAL:
        info = tracenn.iinfo(dtype)
        low, high = _low_high(low, high, dtype, info.min, info.max + (1 if dtype.name != "int64" else 0), -9, 10)
        result = tracenn.randint(low, high, shape, device=device, dtype=dtype)
    elif dtype.name in _FLOATING + _COMPLEX:
        info = tracenn.finfo(dtype)
        low, high = _low_high(low, high, dtype, info.min, info.max, -9, 9)
        result = tracenn.empty(shape, device=device, dtype=dtype)
        target = tracenn.view_as_real(result) if dtype.name in _COMPLEX else result
        if high - low >= info.max:  # (the width overflows: draw half the range, then double)
            target.uniform_(low / 2, high / 2).mul_(2)
        else:
            target.uniform_(low, high)
    else:
        raise TypeError(f"The requested dtype '{dtype}' is not supported by torch.testing.make_tensor(). To request "
                        "support, file an issue at: https://github.com/pytorch/pytorch/issues")
    if noncontiguous:
        result = result[..., 1::2]  # (offset by one, as torch's, to catch offset bugs too)
    elif memory_format is not None:
        result = result.clone(memory_format=memory_format)
    if exclude_zero:
        result[result == 0] = 1 if integral else tracenn.finfo(dtype).tiny
    if dtype.name in _FLOATING + _COMPLEX:
        result.requires_grad = requires_grad
    return result


# torch.testing.assert_allclose's own defaults (not assert_close's)
_ALLCLOSE_TOLERANCES = {"float16": (1e-3, 1e-3), "float32": (1e-4, 1e-5), "float64": (1e-5, 1e-8)}


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg="") -> None:
    """Deprecated since torch 1.12 (FutureWarning, as torch's): ``assert_close`` with dtypes not
    checked, NaNs equal by default, numbers and lists turned into tensors, and its older default
    tolerances (float16 ``1e-3, 1e-3``; float32 ``1e-4, 1e-5``; float64 ``1e-5, 1e-8``)."""
    import tracenn
    warnings.warn("`torch.testing.assert_allclose()` is deprecated since 1.12 and will be removed in a future "
                  "release. Please use `torch.testing.assert_close()` instead. You can find detailed upgrade "
                  "instructions in https://github.com/pytorch/pytorch/issues/61844.", FutureWarning, stacklevel=2)
    if not isinstance(actual, Tensor):
        actual = tracenn.tensor(actual)
    if not isinstance(expected, Tensor):
        expected = tracenn.tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        tols = [_ALLCLOSE_TOLERANCES.get(t.dtype.name, (0.0, 0.0)) for t in (actual, expected)]
        rtol, atol = max(t[0] for t in tols), max(t[1] for t in tols)
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True, check_dtype=False,
                 check_stride=False, msg=msg or None)
