"""Binds this area's Tensor methods and gathers its torch-level names for ``tracenn``'s namespace:
the in-place spellings (``_api/inplace.py``), the ``*_copy`` functions (``_api/copies.py``),
explicit strides (``_api/strided.py``), tensor questions (``_api/query.py``), more indexed ops
(``_api/index_extra.py``). (autocast's state functions and DLPack are ``amp``'s and ``utils.dlpack``'s.)"""
from __future__ import annotations

from ..tensor import Tensor
from . import copies, index_extra, inplace, query, random_fill, storage, strided
from .methods import _inplace
from .shape import strides_of


def _dim_order(self, *, ambiguity_check=False) -> tuple:
    """The dims from outermost to innermost in memory (``(0, 1)`` contiguous, ``(1, 0)`` for ``x.t()``)."""
    st = strides_of(self)
    return tuple(sorted(range(self.ndim), key=lambda d: -st[d]))


def _attach_methods() -> None:
    T = Tensor
    T.index_reduce = index_extra.index_reduce
    T.index_reduce_ = _inplace("index_reduce_", index_extra.index_reduce)
    T.put = index_extra.put
    T.put_ = _inplace("put_", index_extra.put)
    T.nonzero_static = index_extra.nonzero_static
    T.unsafe_split, T.unsafe_chunk = copies.unsafe_split, copies.unsafe_chunk
    T.unsafe_split_with_sizes = copies.unsafe_split_with_sizes
    T.narrow_copy = copies.narrow_copy
    T.as_strided, T.as_strided_, T.as_strided_scatter = strided.as_strided, strided.as_strided_, \
        strided.as_strided_scatter
    T.new_empty_strided = strided.new_empty_strided
    T.is_neg, T.resolve_neg = query._is_false, query._same
    T.apply_, T.map_, T.map2_ = query.apply_, query.map_, query.map2_
    T.layout = property(lambda self: query.strided, doc="The memory layout: always ``tracenn.strided``.")
    T.dim_order = _dim_order
    T.const_data_ptr = T.data_ptr
    T.to_dense = lambda self, dtype=None, *, masked_grad=None: self if dtype is None else self.to(dtype)
    T.is_set_to, T.chalf = query._is_set_to, query._chalf
    T.is_shared = T.is_distributed = query._is_false
    T.output_nr = property(lambda self: self._out_idx, doc="Which output of its grad_fn this tensor is.")
    T.record_stream = lambda self, stream: None  # (JAX orders its own streams)
    for _n in ("is_xla", "is_ipu", "is_mtia", "is_maia", "is_xpu", "is_mps", "is_vulkan", "is_mkldnn", "is_quantized",
               "is_nested"):
        setattr(T, _n, property(query._is_false))
    T.as_subclass = query.as_subclass
    T.resize, T.resize_as = storage.resize, storage.resize_as
    T.cauchy_, T.log_normal_, T.geometric_ = random_fill.cauchy_, random_fill.log_normal_, random_fill.geometric_


def toplevel() -> dict:
    """Attach the methods; return ``{name: object}`` for ``tracenn``'s namespace."""
    _attach_methods()
    names = inplace.attach()
    for mod in (copies, strided, query, index_extra):
        names.update({n: getattr(mod, n) for n in mod.__all__})
    from .creation import from_file, frombuffer, torch_range
    from .reduce import return_types
    names.update(frombuffer=frombuffer, from_file=from_file, range=torch_range, return_types=return_types,
                 newaxis=None)
    return names
