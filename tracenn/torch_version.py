"""``TorchVersion``: the type of ``tracenn.__version__`` (torch's ``torch.torch_version``).

A ``str`` that compares as a version: against another version string (``"0.10.0" > "0.9"`` is True,
where plain strings say False), a tuple such as ``(2, 0)`` (plain strings raise TypeError), or any
object with a ``release`` tuple (packaging's ``Version``). Something that is not a version (``"parrot"``)
falls back to plain string comparison, as torch's does.

Versions are ordered as PEP 440 orders them (release numbers, then ``.devN`` < ``aN`` < ``bN`` <
``rcN`` < the release < ``.postN``, a ``+local`` label after the plain release), without depending
on ``packaging``.

>>> from tracenn.torch_version import TorchVersion
>>> v = TorchVersion("0.10.1")
>>> v > "0.9", v >= (0, 10), v == "0.10.1.0", v < "1.0rc1"
(True, True, True, True)
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["TorchVersion", "InvalidVersion"]

_PATTERN = (  # compiled on first use (it would cost ``import tracenn`` about 2 ms)
    r"""^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>a|alpha|b|beta|c|rc|pre|preview)[-_.]?(?P<pre_n>\d*))?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d*))?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d*))?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$""")
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_INF = float("inf")


class InvalidVersion(ValueError):
    """A string that is not a PEP 440 version (packaging's ``InvalidVersion``)."""


@functools.cache
def _compiled() -> re.Pattern:
    return re.compile(_PATTERN, re.VERBOSE | re.IGNORECASE)


def _key(text: str) -> tuple:
    """A sort key for a PEP 440 version string (packaging's ``_cmpkey``)."""
    m = _compiled().match(text)
    if m is None:
        raise InvalidVersion(f"Invalid version: {text!r}")
    release = [int(p) for p in m["release"].split(".")]
    while len(release) > 1 and release[-1] == 0:  # 2.0 == 2.0.0
        release.pop()
    has_post = m["post_n1"] is not None or m["post_l"] is not None
    if m["pre_l"] is not None:
        pre = (1, _PRE_RANK[m["pre_l"].lower()], int(m["pre_n"] or 0))
    elif not has_post and m["dev_l"] is not None:
        pre = (0, 0, 0)  # 1.0.dev0 sorts before 1.0a0
    else:
        pre = (2, 0, 0)
    post = int(m["post_n1"] or m["post_n2"] or 0) if has_post else -1
    dev = int(m["dev_n"] or 0) if m["dev_l"] is not None else _INF
    local = () if m["local"] is None else tuple(
        (1, int(p), "") if p.isdigit() else (0, 0, p.lower()) for p in re.split(r"[-_.]", m["local"]))
    return int(m["epoch"] or 0), tuple(release), pre, post, dev, (m["local"] is not None, local)


class TorchVersion(str):
    """A version string that compares with versions, version strings and tuples (see the module)."""

    __slots__ = ()

    def _convert_to_version(self, inp: Any) -> tuple:
        if isinstance(inp, str):
            return _key(inp)
        release = getattr(inp, "release", None)
        if isinstance(release, tuple):  # packaging.version.Version
            return _key(str(inp))
        if isinstance(inp, Iterable):  # (1, 20) -> "1.20", (1, 20, 1) -> "1.20.1"
            return _key(".".join(str(item) for item in inp))
        raise InvalidVersion(inp)

    def _cmp_wrapper(self, cmp: Any, method: str) -> bool:
        try:
            return getattr(_key(self), method)(self._convert_to_version(cmp))
        except InvalidVersion:
            # Not a version (e.g. 'parrot'): plain string comparison.
            return getattr(super(), method)(cmp)

    def __gt__(self, other: Any) -> bool:
        return self._cmp_wrapper(other, "__gt__")

    def __lt__(self, other: Any) -> bool:
        return self._cmp_wrapper(other, "__lt__")

    def __ge__(self, other: Any) -> bool:
        return self._cmp_wrapper(other, "__ge__")

    def __le__(self, other: Any) -> bool:
        return self._cmp_wrapper(other, "__le__")

    def __eq__(self, other: Any) -> bool:
        return self._cmp_wrapper(other, "__eq__")

    __hash__ = str.__hash__
