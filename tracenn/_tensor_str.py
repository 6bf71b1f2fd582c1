"""Tensor ``repr`` text, matching PyTorch 2.13's ``torch/_tensor_str.py``.

Self-contained (numpy + stdlib) so it can be used and tested without the rest
of the package.  All float formatting goes through Python's ``format`` on
float64 values, exactly as torch does after ``.item()`` / ``.tolist()``, so
the digits agree bit for bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable

import numpy as np

__all__ = ["format_tensor", "set_printoptions", "get_printoptions", "printoptions", "PRINT_OPTS"]


@dataclasses.dataclass
class _PrinterOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = _PrinterOptions()

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None):
    """Set print options (same semantics as ``torch.set_printoptions``)."""
    if profile is not None and profile in _PROFILES:
        for k, v in _PROFILES[profile].items():
            setattr(PRINT_OPTS, k, v)
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    # Like torch: sci_mode is always overwritten, so omitting it resets to auto.
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """Current options as a dict that can be passed back to ``set_printoptions``."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs):
    """Temporarily change print options."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


def _is_floating(dt: np.dtype) -> bool:
    # ml_dtypes (bfloat16, float8_*) report kind 'V', so test by exclusion.
    return dt.kind not in "biuc"


class _Formatter:
    """Decides int/sci/fixed mode and a common column width for a set of values."""

    def __init__(self, flat: np.ndarray, floating: bool):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        prec = PRINT_OPTS.precision
        if not floating:
            for v in np.unique(flat).tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return  # nothing informative: keep int_mode, width 1
        absvals = np.abs(vals)
        vmin, vmax = float(absvals.min()), float(absvals.max())
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = vmax / vmin > 1000.0 or vmax > 1.0e8 or vmin < 1.0e-4
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        uniq = np.unique(vals).tolist()
        if self.sci_mode:
            widths = (len(f"{v:.{prec}e}") for v in uniq)
        elif self.int_mode:
            # +1 for the trailing "." that marks a float
            widths = (len(f"{v:.0f}") + 1 for v in uniq)
        else:
            widths = (len(f"{v:.{prec}f}") for v in uniq)
        self.max_width = max(self.max_width, *widths)

    def width(self) -> int:
        return self.max_width

    def format(self, value) -> str:
        if self.floating:
            prec = PRINT_OPTS.precision
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{prec}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{prec}f}"
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _summarized(a: np.ndarray) -> np.ndarray:
    """The values that stay visible after summarisation (order is irrelevant)."""
    e = PRINT_OPTS.edgeitems
    if a.ndim >= 2 and not e:
        return a[(slice(0, 0),) * a.ndim]
    for axis, n in enumerate(a.shape):
        if n > 2 * e:
            # a[:e] ++ a[-e:]; torch's self[-0:] is the whole vector, hence the guard
            idx = np.r_[0:e, n - e:n] if e else np.arange(n)
            a = np.take(a, idx, axis=axis)
    return a


def _vector_str(vec: np.ndarray, indent: int, summarize: bool,
                fmt: Callable[[np.ndarray], list[str]], elem_len: int) -> str:
    per_line = max(1, (PRINT_OPTS.linewidth - indent) // elem_len)
    e = PRINT_OPTS.edgeitems
    if summarize and not e:
        data = ["..."]
    elif summarize and vec.shape[0] > 2 * e:
        data = fmt(vec[:e]) + [" ..."] + fmt(vec[-e:])
    else:
        data = fmt(vec)
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(a: np.ndarray, indent: int, summarize: bool,
                fmt: Callable[[np.ndarray], list[str]], elem_len: int) -> str:
    if a.ndim == 0:
        return fmt(a.reshape(1))[0]
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt, elem_len)
    n, e = a.shape[0], PRINT_OPTS.edgeitems
    if summarize and n > 2 * e:
        rows = [*range(e), None, *range(n - e, n)]
    else:
        rows = range(n)
    slices = ["..." if i is None else _nested_str(a[i], indent + 1, summarize, fmt, elem_len)
              for i in rows]
    # one blank line per extra dimension between sub-blocks, as torch does
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def _body_str(a: np.ndarray, indent: int) -> str:
    summarize = a.size > PRINT_OPTS.threshold
    # Only the visible values are converted: float64/complex128 is exact for
    # every narrower type and gives the Python floats torch's .tolist() gives.
    shown = (_summarized(a) if summarize else a).ravel()
    if a.dtype.kind == "c":
        shown = shown.astype(np.complex128)
        f_re, f_im = _Formatter(shown.real, True), _Formatter(shown.imag, True)

        def one(v: complex) -> str:
            re = f_re.format(v.real)
            im = (f_im.format(v.imag) + "j").lstrip()
            # the sign of the imaginary part doubles as the separator
            return re + im if im[0] in "+-" else re + "+" + im

        def fmt(x: np.ndarray) -> list[str]:
            return [one(v) for v in x.astype(np.complex128).tolist()]

        elem_len = f_re.width() + 2 + f_im.width() + 1
    else:
        floating = _is_floating(a.dtype)
        f = _Formatter(shown.astype(np.float64) if floating else shown, floating)

        def fmt(x: np.ndarray) -> list[str]:
            return [f.format(v) for v in (x.astype(np.float64) if floating else x).tolist()]

        elem_len = f.width() + 2
    return _nested_str(a, indent, summarize, fmt, elem_len)


def _add_suffixes(text: str, suffixes: list[str], indent: int, force_newline: bool = False) -> str:
    """``text`` with ``", suffix"`` parts, wrapped at the line width as torch wraps them; with
    ``force_newline`` the first suffix starts a new line (torch's sparse tensors)."""
    parts = [text]
    # torch counts the last line as 2 chars longer than it is; kept so wraps match
    last_len = len(text) - text.rfind("\n") + 1
    for s in suffixes:
        if force_newline or last_len + len(s) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + s)
            last_len = indent + len(s)
            force_newline = False
        else:
            parts.append(", " + s)
            last_len += len(s) + 2
    parts.append(")")
    return "".join(parts)


def format_meta(shape, kind: str, *, dtype_name: str, show_dtype: bool, requires_grad: bool = False,
                grad_fn_name: str | None = None, prefix: str = "tensor(") -> str:
    """torch's repr of a meta tensor (no values): ``tensor(..., device='meta', size=(3, 2))``, the
    dtype shown by the rule for empty tensors (``kind``: the numpy dtype kind)."""
    suffixes = ["device='meta'", f"size={tuple(shape)}"]
    if show_dtype or kind in "biuc":
        suffixes.append(f"dtype={dtype_name}")
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + "...", suffixes, len(prefix))


def format_tensor(values: np.ndarray, *, dtype_name: str, show_dtype: bool,
                  device: str | None = None, requires_grad: bool = False,
                  grad_fn_name: str | None = None, prefix: str = "tensor(") -> str:
    """Return the torch-style repr of ``values``.

    ``show_dtype`` follows torch's non-empty rule (hide the default float dtype,
    its complex counterpart, int64 and bool).  For empty tensors torch shows
    every dtype except the default float one; that is derived here: a hidden
    non-floating dtype (int64/bool/complex) is shown anyway.
    """
    a = np.asarray(values)
    indent = len(prefix)
    suffixes = []
    if device is not None:
        suffixes.append(f"device='{device}'")
    if a.size == 0:
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if show_dtype or a.dtype.kind in "biuc":
            suffixes.append(f"dtype={dtype_name}")
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(a.shape)}")
        if show_dtype:
            suffixes.append(f"dtype={dtype_name}")
        body = _body_str(a, indent)
    if grad_fn_name is not None:
        suffixes.append(f"grad_fn=<{grad_fn_name}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
