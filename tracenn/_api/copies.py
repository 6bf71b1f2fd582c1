"""torch's ``*_copy`` functions and the ``unsafe_*`` split family.

``view_copy``, ``permute_copy``, ``select_copy``... return what the view op would, as a new tensor
that does not alias its input: changing one leaves the other alone. Each is its view op followed
by a copy (recorded by autograd, so gradients flow back as through the view). Like torch's, the
copies are contiguous (``expand_copy`` materialises the broadcast) and ``view_copy`` accepts a
non-contiguous input (it reshapes; torch's ``view_copy`` does the same).

``unsafe_split``/``unsafe_chunk``/``unsafe_split_with_sizes`` are torch's splits without the
view-safety checks of autograd; tracenn's views are always safe to change in place, so they are
``split``/``chunk``/``split_with_sizes`` (views of the input, as torch's).

``detach_copy`` differs from torch 2.13 on purpose: torch's result claims ``requires_grad`` and
then raises "derivative for aten::detach_copy is not implemented" in backward; tracenn's is a
detached copy (``requires_grad=False``), what the name promises.

>>> import tracenn
>>> x = tracenn.zeros(2, 3)
>>> y = tracenn.transpose_copy(x, 0, 1)
>>> _ = y.fill_(1.0)
>>> x.sum().item(), y.shape
(0.0, tracenn.Size([3, 2]))
"""
from __future__ import annotations

from .. import dtypes as _dt
from . import complexnum, misc, shape
from ._common import tensor_arg
from .query import contiguous_format

__all__ = ["alias_copy", "as_strided_copy", "detach_copy", "diagonal_copy", "expand_copy", "narrow_copy",
           "permute_copy", "select_copy", "slice_copy", "split_copy", "split_with_sizes", "split_with_sizes_copy",
           "squeeze_copy", "t_copy", "transpose_copy", "unbind_copy", "unfold_copy", "unsqueeze_copy",
           "view_as_complex_copy", "view_as_real_copy", "view_copy", "unsafe_chunk", "unsafe_split",
           "unsafe_split_with_sizes"]


def _copy(name: str, view, doc: str = ""):
    def fn(input, *args, **kwargs):
        tensor_arg(name, "input", 1, input)
        return shape.clone(view(input, *args, **kwargs), memory_format=contiguous_format)
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = "tracenn"
    fn.__doc__ = doc or (f"``{view.__name__}(input, ...)`` as a new tensor that does not alias ``input`` "
                         "(contiguous; gradients flow back as through the view).")
    return fn


def _copies(name: str, split):
    def fn(input, *args, **kwargs):
        tensor_arg(name, "input", 1, input)
        return tuple(shape.clone(p, memory_format=contiguous_format) for p in split(input, *args, **kwargs))
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = "tracenn"
    fn.__doc__ = f"``{split.__name__}(input, ...)`` as a tuple of new tensors that do not alias ``input``."
    return fn


def _view(input, size):
    """view_copy's view: a dtype reinterprets the bits; a shape reshapes (any layout, as torch's)."""
    if isinstance(size, _dt.dtype):
        return shape.view(input, size)
    return shape.reshape(input, size)


def _slice(input, dim=0, start=None, end=None, step=1):
    if step <= 0:
        raise RuntimeError("slice step must be positive")
    d = shape._wrap_dim(dim, input.ndim)
    n = input.shape[d]
    start, end, _ = slice(start, end, step).indices(n)
    return shape._basic_slice(input, d, start, max(start, end), step)


def _expand(input, size, *, implicit=False):
    return shape.expand(input, size)


def _detach(input):
    return input.detach()


def _alias(input):
    return input


def _as_strided(input, size, stride, storage_offset=None):
    from .strided import as_strided_values
    return as_strided_values(input, size, stride, storage_offset)


view_copy = _copy("view_copy", _view)
permute_copy = _copy("permute_copy", shape.permute)
transpose_copy = _copy("transpose_copy", shape.transpose)
t_copy = _copy("t_copy", shape.t)
expand_copy = _copy("expand_copy", _expand)
squeeze_copy = _copy("squeeze_copy", shape.squeeze)
unsqueeze_copy = _copy("unsqueeze_copy", shape.unsqueeze)
select_copy = _copy("select_copy", shape.select)
slice_copy = _copy("slice_copy", _slice, "``input[..., start:end:step, ...]`` along ``dim``, as a new tensor.")
narrow_copy = _copy("narrow_copy", shape.narrow)
diagonal_copy = _copy("diagonal_copy", shape.diagonal)
unfold_copy = _copy("unfold_copy", misc.unfold)
view_as_real_copy = _copy("view_as_real_copy", complexnum.view_as_real)
view_as_complex_copy = _copy("view_as_complex_copy", complexnum.view_as_complex)
alias_copy = _copy("alias_copy", _alias, "A copy of ``input`` (torch's copy form of ``alias``; ``clone``).")
detach_copy = _copy("detach_copy", _detach, "A copy of ``input`` outside autograd (``input.detach().clone()``).")
as_strided_copy = _copy("as_strided_copy", _as_strided,
                        "The elements ``as_strided`` would view, as a new tensor (see ``tracenn.as_strided``).")
unbind_copy = _copies("unbind_copy", shape.unbind)
split_copy = _copies("split_copy", shape.split)
split_with_sizes_copy = _copies("split_with_sizes_copy", shape.split_with_sizes)


def split_with_sizes(input, split_sizes, dim=0):
    """Views of ``input`` split into pieces of ``split_sizes`` along ``dim`` (they must add up to its size)."""
    tensor_arg("split_with_sizes", "input", 1, input)
    return shape.split_with_sizes(input, split_sizes, dim)


def unsafe_split(tensor, split_size, dim=0):
    """``split`` (tracenn's views need no unsafe form: see the module docstring)."""
    tensor_arg("unsafe_split", "input", 1, tensor)
    return shape.split(tensor, split_size, dim)


def unsafe_chunk(input, chunks, dim=0):
    """``chunk`` (see the module docstring)."""
    tensor_arg("unsafe_chunk", "input", 1, input)
    return shape.chunk(input, chunks, dim)


def unsafe_split_with_sizes(input, split_sizes, dim=0):
    """``split_with_sizes`` (see the module docstring)."""
    tensor_arg("unsafe_split_with_sizes", "input", 1, input)
    return shape.split_with_sizes(input, split_sizes, dim)
