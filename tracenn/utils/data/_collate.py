"""``default_collate`` and ``default_convert``: turn a list of samples into a batch, as torch does.

The rules (torch 2.13's): tensors are stacked along a new first dimension; numpy arrays become
tensors and are stacked; numpy scalars become one tensor of their dtype; Python ints become an
int64 tensor (bools a bool tensor), floats a float64 tensor; strings and bytes stay a list; mappings,
namedtuples and sequences are collated field by field (a tuple of fields comes back as a *list*,
as in torch). ``collate`` is the registry-driven engine, ``default_collate_fn_map`` its table.
"""
from __future__ import annotations

import collections
import copy
import functools
import re
from collections.abc import Callable

import numpy as np

from ... import dtypes as _dt
from ..._api.creation import as_tensor, tensor
from ..._api.shape import stack
from ...tensor import Tensor

__all__ = ["collate", "default_collate", "default_collate_fn_map", "default_convert"]

np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}")


def default_convert(data):
    """Convert numpy arrays (also inside mappings and sequences) to tensors; leave the rest as is.

    What a :class:`DataLoader` applies to each sample when automatic batching is off
    (``batch_size=None``).

    >>> import numpy as np
    >>> from tracenn.utils.data import default_convert
    >>> default_convert([np.array([0, 1]), 2])
    [tensor([0, 1]), 2]
    """
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_"):
        if elem_type.__name__ == "ndarray" and np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return _numpy_to_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:
            return {key: default_convert(data[key]) for key in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]  # a list, as torch (backwards compatibility)
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def _numpy_to_tensor(x):
    # np.generic scalars and arrays keep their numpy dtype (torch.as_tensor does the same).
    return as_tensor(np.asarray(x))


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate ``batch`` (a list of samples) with per-type functions from ``collate_fn_map``.

    A sample's type is looked up exactly first, then by ``isinstance`` in the map's order; mappings,
    namedtuples and sequences recurse field by field. Extend collation by copying
    ``default_collate_fn_map`` and adding ``{MyType: fn}``, where ``fn(batch, *, collate_fn_map)``.

    >>> from tracenn.utils.data import collate, default_collate_fn_map
    >>> fmap = dict(default_collate_fn_map)
    >>> fmap[str] = lambda batch, *, collate_fn_map: "".join(batch)
    >>> collate([("a", 1), ("b", 2)], collate_fn_map=fmap)
    ['ab', tensor([1, 2])]
    """
    elem = batch[0]
    elem_type = type(elem)

    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                              for key in elem})
                return clone
            return elem_type({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map)
                              for key in elem})
        except TypeError:
            return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(e) == elem_size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))  # read twice below, so a list
        if isinstance(elem, tuple):
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = collate(samples, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(samples, collate_fn_map=collate_fn_map) for samples in transposed])
        except TypeError:
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]

    raise TypeError(default_collate_err_msg_format.format(elem_type))


def collate_tensor_fn(batch, *, collate_fn_map=None):
    return stack(list(batch), 0)


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    return collate([as_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    # One tensor of the scalars' dtype, promoted by torch's rules (int32 with float32 is float32).
    d = functools.reduce(_dt.promote_types, (_dt.from_np(np.asarray(x).dtype) for x in batch))
    return tensor(np.array(batch, dtype=d.np))


def collate_float_fn(batch, *, collate_fn_map=None):
    return tensor(list(batch), dtype=_dt.float64)


def collate_int_fn(batch, *, collate_fn_map=None):
    return tensor(list(batch))  # int64 (bool for bools)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[type | tuple[type, ...], Callable] = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """Batch a list of samples: what a :class:`DataLoader` does when ``collate_fn`` is not given.

    ======================================  =====================================================
    element type                            batch
    ======================================  =====================================================
    ``Tensor``                              ``stack(batch)`` (a new first dimension)
    numpy array                             ``stack`` of ``as_tensor`` of each
    numpy scalar                            one tensor of that dtype
    ``int`` / ``bool``                      int64 / bool tensor
    ``float``                               float64 tensor
    ``str`` / ``bytes``                     the list unchanged
    ``Mapping``                             same mapping type, each key collated
    ``namedtuple``                          same namedtuple, each field collated
    ``tuple`` / ``Sequence``                a *list* (same type for other sequences) of collated fields
    ======================================  =====================================================

    Raises:
        TypeError: an element of another type.
        RuntimeError: sequences of different lengths in one batch.

    >>> import tracenn
    >>> from tracenn.utils.data import default_collate
    >>> default_collate([(tracenn.tensor([1., 2.]), 0), (tracenn.tensor([3., 4.]), 1)])
    [tensor([[1., 2.],
            [3., 4.]]), tensor([0, 1])]
    >>> default_collate([{"x": 0.5, "name": "a"}, {"x": 1.5, "name": "b"}])
    {'x': tensor([0.5000, 1.5000], dtype=tracenn.float64), 'name': ['a', 'b']}
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)
