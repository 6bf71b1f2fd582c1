"""Argument helpers that layer code imports from ``torch.nn.modules.utils``.

timm and many custom convolution layers do ``from torch.nn.modules.utils import _pair``; with
``import tracenn as torch`` the same line finds these. They are torch's own definitions: a factory
``_ntuple(n, name)`` and the parsers it makes (any iterable becomes a tuple, anything else is
repeated ``n`` times), plus the state_dict helper for checkpoints saved from
``DataParallel``/``DistributedDataParallel`` models (keys prefixed with ``"module."``).

>>> from tracenn.nn.modules.utils import _pair, _triple
>>> _pair(3), _pair((1, 2)), _triple([4, 5, 6])
((3, 3), (1, 2), (4, 5, 6))
"""
from __future__ import annotations

import collections.abc
from itertools import repeat
from typing import Any

__all__ = ["consume_prefix_in_state_dict_if_present"]


def _ntuple(n: int, name: str = "parse"):
    """A parser that turns an iterable into a tuple and repeats anything else ``n`` times."""
    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """Reverse ``t`` and repeat each element ``n`` times: a Conv/Pool ``padding`` in ``F.pad``'s order.

    >>> _reverse_repeat_tuple((1, 2), 2)
    (2, 2, 1, 1)
    """
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size, defaults: list[int]):
    """An adaptive pool's ``output_size`` with each ``None`` replaced by the input's size there.

    ``defaults`` is the input's shape; ``out_size`` names its last ``len(out_size)`` sizes. An int
    is returned as it is.

    >>> _list_with_default([None, 3], [1, 8, 5, 7])
    [5, 3]
    """
    if isinstance(out_size, int):
        return out_size
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    return [v if v is not None else d for v, d in zip(out_size, defaults[-len(out_size):], strict=False)]


def consume_prefix_in_state_dict_if_present(state_dict: dict[str, Any], prefix: str) -> None:
    """Strip ``prefix`` from the keys of ``state_dict`` in place, where a key has it.

    A state_dict saved from a ``DataParallel``/``DistributedDataParallel`` model has every key
    under ``"module."``; stripping it lets a plain model load it. The state_dict's ``_metadata``
    (per-module versions) is renamed the same way.

    Args:
        state_dict (OrderedDict): a state-dict to be loaded to the model.
        prefix (str): prefix.

    >>> from collections import OrderedDict
    >>> sd = OrderedDict([("module.weight", 1), ("module.bias", 2), ("step", 3)])
    >>> consume_prefix_in_state_dict_if_present(sd, "module.")
    >>> list(sd)
    ['step', 'weight', 'bias']
    """
    for key in list(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix):]] = state_dict.pop(key)

    metadata = getattr(state_dict, "_metadata", None)
    if metadata is not None:
        for key in list(metadata.keys()):
            # '' is the wrapper itself (kept); 'module' the wrapped model; 'module.xx' the rest.
            if len(key) == 0:
                continue
            if key == prefix.replace(".", "") or key.startswith(prefix):
                metadata[key[len(prefix):]] = metadata.pop(key)
