"""Memory formats (``tracenn.channels_last``, ``channels_last_3d``, ``contiguous_format``,
``preserve_format``): the strides torch gives a tensor made in a format, and torch's rules for which
format a copy gets (``memory_format=`` of ``contiguous``, ``clone``, ``to``, ``empty``, ``*_like``).

XLA owns a JAX array's physical layout, so a format never changes a value: it changes what
``stride()`` and ``is_contiguous()`` report, and which ``view()`` calls alias, as in torch. A tensor
made in a format is a root (not a view) whose ``_strides`` are the format's (a root's ``_strides``
are always dense and non-overlapping); views of it derive their strides from those. Ops do not
carry a format to their results (theirs are contiguous; torch's follow their inputs).
"""
from __future__ import annotations

from ..tensor import Tensor
from .shape import _is_contiguous, contiguous_strides, strides_of

# the dims of each channels-last format, innermost first (torch's get_channels_last_strides_*)
_ORDER = {"channels_last": (1, 3, 2, 0), "channels_last_3d": (1, 4, 3, 2, 0)}


def format_name(memory_format, fn: str):
    """The name of ``memory_format`` (None when not given), or torch's TypeError for anything else."""
    if memory_format is None:
        return None
    from .query import memory_format as _format
    if not isinstance(memory_format, _format):
        raise TypeError(f"{fn}(): argument 'memory_format' must be tracenn.memory_format, not "
                        f"{type(memory_format).__name__} (e.g. memory_format=tracenn.channels_last)")
    return memory_format._name


def format_strides(shape: tuple, name: str) -> tuple:
    """torch's strides of a tensor of ``shape`` laid out in format ``name`` (not preserve_format).

    >>> format_strides((2, 3, 4, 5), "channels_last")
    (60, 1, 15, 3)
    """
    order = _ORDER.get(name)
    if order is None:
        return contiguous_strides(shape)
    if len(shape) != len(order):
        raise RuntimeError(f"required rank {len(order)} tensor to use {name} format")
    strides, acc = [0] * len(shape), 1
    for d in order:
        strides[d] = acc
        acc *= shape[d]  # (torch's: a size 0 or 1 is not raised to 1 here, unlike contiguous strides)
    return tuple(strides)


def is_contiguous_as(shape: tuple, strides: tuple, name) -> bool:
    """torch's ``is_contiguous(memory_format=name)`` (size-1 dims do not count; any other format
    than a channels-last one asks for plain contiguity)."""
    order = _ORDER.get(name)
    if order is None:
        return _is_contiguous(shape, strides)
    if len(shape) != len(order):
        return False
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def suggest_format(shape: tuple, strides: tuple) -> str:
    """torch's ``suggest_memory_format``: a channels-last format when the strides are ordered like
    one (ambiguous cases, such as N111 or a zero channel stride, count as contiguous)."""
    order = _ORDER.get({4: "channels_last", 5: "channels_last_3d"}.get(len(shape), ""))
    if order is None or strides[1] == 0:
        return "contiguous_format"
    lo = 0
    for d in order:
        if shape[d] == 0 or strides[d] < lo or (d == 0 and lo == strides[1]):
            return "contiguous_format"
        lo = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return "channels_last" if len(shape) == 4 else "channels_last_3d"


def _dense(shape: tuple, strides: tuple) -> bool:
    """torch's ``is_non_overlapping_and_dense``."""
    if len(shape) == 1:
        return shape[0] < 2 or strides[0] == 1
    need = 1
    for d in sorted(range(len(shape)), key=lambda d: (shape[d] < 2, strides[d])):
        if shape[d] < 2:
            return True
        if strides[d] != need:
            return False
        need *= shape[d]
    return True


def copy_strides(x: Tensor, name) -> tuple | None:
    """The strides a new tensor made from ``x`` in format ``name`` gets (None: contiguous).

    ``preserve_format`` (or None) is torch's rule: ``x``'s own strides when they are dense and do not
    overlap, else the format they suggest (channels last or contiguous)."""
    shape = tuple(x._value.shape)
    if name is None or name == "preserve_format":
        st = x._strides
        if st is None:
            return None
        if not _dense(shape, st):
            name = suggest_format(shape, st)
            st = None if name == "contiguous_format" else format_strides(shape, name)
        return None if st == contiguous_strides(shape) else st
    st = format_strides(shape, name)
    return None if st == contiguous_strides(shape) else st


def restride(r: Tensor, strides) -> Tensor:
    """Give ``r``, a new tensor (a root no one else holds), the strides ``strides`` (None: contiguous)."""
    if strides is not None:
        r._strides = strides
    return r


def to_keeps(x: Tensor, name) -> bool:
    """Whether ``to(memory_format=name)`` that changes nothing else returns ``x`` itself (torch's
    ``to_will_alias``: preserve_format, or the format ``x``'s strides already suggest)."""
    return name is None or name == "preserve_format" or suggest_format(tuple(x._value.shape), strides_of(x)) == name
