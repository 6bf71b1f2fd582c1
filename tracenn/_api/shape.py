"""Shape and movement: views (view, reshape, transpose, squeeze, expand, narrow, split, ...) that
alias their base as torch's do, plus cat/stack/flip/roll/repeat.

A view op runs its primitive and then registers the result as a view of the root with the step
it took (``Tensor._make_view``). torch's strides are tracked for views so ``view()`` and
``reshape()`` decide between aliasing and copying exactly where torch does.
"""
from __future__ import annotations

import builtins
import functools
import math

from .. import _dispatch, dtypes as _dt
from .._dispatch import apply
from ..errors import ShapeError
from ..ops import OPS
from ..tensor import Tensor, _wrap_dim
from ._common import check_int, result_np_dtype, shape_arg
from .math import _cast, _out

_RESHAPE, _PERMUTE, _EXPAND, _SLICE = OPS["reshape"], OPS["permute"], OPS["expand"], OPS["slice"]
_CAT = OPS["cat"]


# ---- strides ---------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1024)
def contiguous_strides(shape: tuple) -> tuple:
    """torch's strides of a contiguous tensor of ``shape`` (cached: read on every view)."""
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= builtins.max(s, 1)
    return tuple(reversed(strides))


def strides_of(x: Tensor) -> tuple:
    return x._strides if x._strides is not None else contiguous_strides(x._value.shape)


def _is_contiguous(shape, strides) -> bool:
    if math.prod(shape) == 0:
        return True
    expected = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n == 1:
            continue
        if s != expected:
            return False
        expected *= n
    return True


def is_contiguous(input, memory_format=None) -> bool:
    """torch's: are the elements laid out densely in row-major order (or, with
    ``memory_format=tracenn.channels_last``, in channels-last order; size-1 dims do not count)?"""
    if memory_format is None:
        return input._strides is None or _is_contiguous(input._value.shape, input._strides)
    from .formats import format_name, is_contiguous_as
    return is_contiguous_as(tuple(input._value.shape), strides_of(input), format_name(memory_format, "is_contiguous"))


def stride(input, dim=None):
    s = strides_of(input)
    return s if dim is None else s[_wrap_dim(dim, input.ndim)]


def _view_strides(old_shape, old_strides, new_shape):
    """torch's computeStride: strides for viewing (old_shape, old_strides) as new_shape, or None."""
    if math.prod(old_shape) == 0 or len(old_shape) == 0:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = old_strides[-1]
    tensor_numel = view_numel = 1
    for d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[d]
        if d == 0 or (old_shape[d - 1] != 1 and old_strides[d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if d > 0:
                chunk_base = old_strides[d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def _view(x: Tensor, op, key, strides) -> Tensor:
    """Run view primitive ``op`` and make the result alias ``x``'s root."""
    return _view_of(x, apply(op, (x,), key), (op.name, key), strides)


def _view_of(x: Tensor, r: Tensor, step: tuple, strides) -> Tensor:
    """Make ``r``, the result of view ``step`` (op name, static key) of ``x``, alias ``x``'s root.

    ``strides``: torch's strides of the view; None (or contiguous ones, when ``x`` is contiguous)
    records none.
    """
    if strides is not None and x._strides is None and _is_contiguous(r._value.shape, strides):
        strides = None
    return x._make_view(r._value, step, node=r._node, requires_grad=r._requires_grad, strides=strides)


# ---- view / reshape ----------------------------------------------------------------------------

def _infer_shape(shape, numel) -> tuple:
    shape = list(shape)
    neg = [i for i, s in enumerate(shape) if s == -1]
    if len(neg) > 1:
        raise RuntimeError("only one dimension can be inferred")
    known = 1
    for s in shape:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise ShapeError(f"shape '{shape}' is invalid for input of size {numel}")
        shape[neg[0]] = numel // known
    elif known != numel:
        raise ShapeError(f"shape '{shape}' is invalid for input of size {numel}")
    return tuple(shape)


@functools.lru_cache(maxsize=1024)
def _reshape_plan(old_shape: tuple, old_strides, shape: tuple):
    """(new shape, can it alias, its strides) for viewing a tensor of ``old_shape`` and torch
    strides ``old_strides`` (None: contiguous) as ``shape`` (-1 inferred).

    The strides are None for a contiguous result of a contiguous tensor (what ``_view_of``
    records). Pure shape arithmetic, so cached: view/reshape in a loop costs a dict look-up.
    """
    new = _infer_shape(shape, math.prod(old_shape))
    st = _view_strides(old_shape, old_strides if old_strides is not None else contiguous_strides(old_shape), new)
    if st is None:
        return new, False, None
    if old_strides is None and _is_contiguous(new, st):
        st = None
    return new, True, st


def view(input, *shape):
    """The same data with another shape; raises where torch cannot alias (use reshape there)."""
    if len(shape) == 1 and (isinstance(shape[0], _dt.dtype) or not isinstance(shape[0], (int, tuple, list))):
        d = _dt.as_dtype(shape[0])
        if d.itemsize != input.dtype.itemsize:
            raise RuntimeError("view(dtype) with a different element size is not supported by tracenn")
        return apply(OPS["bitcast"], (input,), (d.np,))
    new, ok, st = _reshape_plan(input._value.shape, input._strides, shape_arg(shape))
    if not ok:
        raise ShapeError(
            "view size is not compatible with input tensor's size and stride (at least one "
            "dimension spans across two contiguous subspaces). Use .reshape(...) instead.")
    key = (new,)
    return _view_of(input, apply(_RESHAPE, (input,), key), ("reshape", key), st)


def reshape(input, *shape):
    """``view`` when the data allow it, else a copy — exactly torch's rule."""
    new, ok, st = _reshape_plan(input._value.shape, input._strides, shape_arg(shape))
    key = (new,)
    r = apply(_RESHAPE, (input,), key)
    return _view_of(input, r, ("reshape", key), st) if ok else r


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dims ``start_dim..end_dim`` into one (a view where possible)."""
    shape = input._value.shape
    if len(shape) == 0:
        return reshape(input, (1,))
    s, e = _wrap_dim(start_dim, len(shape)), _wrap_dim(end_dim, len(shape))
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    return reshape(input, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(input, dim, sizes):
    shape = input._value.shape
    d = _wrap_dim(dim, len(shape))
    sizes = tuple(sizes)
    if -1 in sizes:
        sizes = _infer_shape(sizes, shape[d])
    elif math.prod(sizes) != shape[d]:
        raise RuntimeError(f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size "
                           f"of dim {dim} ({shape[d]}) in the input tensor")
    return view(input, shape[:d] + sizes + shape[d + 1:])


def squeeze(input, dim=None):
    shape = input._value.shape
    if dim is None:
        dims = {i for i, s in enumerate(shape) if s == 1}
    else:
        ds = dim if isinstance(dim, (tuple, list)) else (dim,)
        dims = {_wrap_dim(d, len(shape)) for d in ds}
        dims = {d for d in dims if len(shape) and shape[d] == 1}
    if not dims:
        return _alias_view(input)
    new = tuple(s for i, s in enumerate(shape) if i not in dims)
    st = tuple(s for i, s in enumerate(strides_of(input)) if i not in dims)
    return _view(input, _RESHAPE, (new,), st)


def _alias_view(x):
    return _view(x, OPS["alias"], (), x._strides)


def unsqueeze(input, dim):
    shape = input._value.shape
    d = _wrap_dim(dim, len(shape) + 1)
    st = list(strides_of(input))
    new_stride = 1 if d >= len(shape) else shape[d] * st[d]
    st.insert(d, new_stride)
    return _view(input, _RESHAPE, (shape[:d] + (1,) + shape[d:],), tuple(st))


# ---- transposes ----------------------------------------------------------------------------

def permute(input, *dims):
    dims = shape_arg(dims)
    n = input._value.ndim
    if len(dims) != n:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {n} is not equal to len(dims) = {len(dims)}")
    dims = tuple(_wrap_dim(d, n) for d in dims)
    if len(set(dims)) != n:
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    st = strides_of(input)
    return _view(input, _PERMUTE, (dims,), tuple(st[d] for d in dims))


def transpose(input, dim0, dim1):
    n = input._value.ndim
    if n == 0:
        return _alias_view(input)
    d0, d1 = _wrap_dim(dim0, n), _wrap_dim(dim1, n)
    dims = list(range(n))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return permute(input, dims)


swapaxes = swapdims = transpose


def t(input):
    """Transpose a matrix (0-d and 1-d tensors come back as they are)."""
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return transpose(input, 0, 1) if input.ndim == 2 else _alias_view(input)


def movedim(input, source, destination):
    n = input.ndim
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [_wrap_dim(s, n) for s in src]
    dst = [_wrap_dim(d, n) for d in dst]
    order = [i for i in range(n) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute(input, order)


moveaxis = movedim


def adjoint(input):
    return transpose(input, -2, -1)


# ---- broadcasting ----------------------------------------------------------------------------

def expand(input, *sizes):
    """Broadcast size-1 dims to ``sizes`` without copying (-1 keeps a dim)."""
    sizes = shape_arg(sizes)
    shape = input._value.shape
    if len(sizes) < len(shape):
        raise RuntimeError(
            f"expand(torch.FloatTensor{{{list(shape)}}}, size={list(sizes)}): the number of sizes "
            f"provided ({len(sizes)}) must be greater or equal to the number of dimensions in the "
            f"tensor ({len(shape)})")
    lead = len(sizes) - len(shape)
    old_st = strides_of(input)
    new, st = [], []
    for i, s in enumerate(sizes):
        if i < lead:
            if s == -1:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            new.append(s)
            st.append(0)
            continue
        cur = shape[i - lead]
        if s == -1 or s == cur:
            new.append(cur)
            st.append(old_st[i - lead])
        elif cur == 1:
            new.append(s)
            st.append(0)
        else:
            raise RuntimeError(
                f"The expanded size of the tensor ({s}) must match the existing size ({cur}) at "
                f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  Tensor sizes: {list(shape)}")
    return _view(input, _EXPAND, (tuple(new),), tuple(st))


def expand_as(input, other):
    return expand(input, other.shape)


def broadcast_to(input, size):
    return expand(input, size)


def broadcast_shapes(*shapes):
    import numpy as np
    try:
        return __import__("tracenn").Size(np.broadcast_shapes(*[tuple(s) for s in shapes]))
    except ValueError as e:
        raise RuntimeError(f"shape mismatch: {e}") from None


def broadcast_tensors(*tensors):
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return tuple(expand(t, shape) for t in tensors)


# ---- slicing views ---------------------------------------------------------------------------

def narrow(input, dim, start, length):
    """The slice ``start:start+length`` of ``dim`` as a view."""
    n = input.ndim
    d = _wrap_dim(dim, n)
    size = input._value.shape[d]
    start = check_int(int(start) if isinstance(start, Tensor) else start, "start")
    if start < 0:
        start += size
    if not 0 <= start <= size:
        raise IndexError(f"start out of range (expected to be in range of [{-size}, {size}], but got {start})")
    if start + length > size or length < 0:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return _basic_slice(input, d, start, start + length, 1)


def _basic_slice(input, d, start, stop, step):
    spec = tuple(("s", None, None, None) for _ in range(d)) + (("s", start, stop, step),)
    st = list(strides_of(input))
    st[d] *= step
    return _view(input, _SLICE, (spec,), tuple(st))


def select(input, dim, index):
    n = input.ndim
    if n == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _wrap_dim(dim, n)
    size = input._value.shape[d]
    if not -size <= index < size:
        raise IndexError(f"select(): index {index} out of range for tensor of size "
                         f"{list(input._value.shape)} at dimension {d}")
    index %= size
    spec = tuple(("s", None, None, None) for _ in range(d)) + (("i", index),)
    st = list(strides_of(input))
    del st[d]
    return _view(input, _SLICE, (spec,), tuple(st))


def split(tensor, split_size_or_sections, dim=0):
    """Views of consecutive chunks of ``split_size`` (or of the given section sizes) along ``dim``."""
    d = _wrap_dim(dim, tensor.ndim)
    size = tensor._value.shape[d]
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0 and size > 0:
            raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}")
        sections = [builtins.min(step, size - i) for i in range(0, size, step)] if size else [0]
    else:
        sections = list(split_size_or_sections)
        if builtins.sum(sections) != size:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {size} "
                               f"(input tensor's size at dimension {d}), but got split_sizes={sections}")
    out, start = [], 0
    for s in sections:
        out.append(_basic_slice(tensor, d, start, start + s, 1))
        start += s
    return tuple(out)


def split_with_sizes(input, split_sizes, dim=0):
    return split(input, list(split_sizes), dim)


def chunk(input, chunks, dim=0):
    """Split into ``chunks`` pieces of ceil(size/chunks) (the last may be smaller; fewer may come back)."""
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    size = input._value.shape[_wrap_dim(dim, input.ndim)]
    return split(input, builtins.max(1, -(-size // chunks)), dim)


def tensor_split(input, indices_or_sections, dim=0):
    d = _wrap_dim(dim, input.ndim)
    size = input._value.shape[d]
    if isinstance(indices_or_sections, int):
        n = indices_or_sections
        q, r = divmod(size, n)
        sections = [q + 1] * r + [q] * (n - r)
    else:
        cuts = [0] + [builtins.min(builtins.max(i, 0), size) for i in indices_or_sections] + [size]
        sections = [builtins.max(b - a, 0) for a, b in zip(cuts, cuts[1:])]
    out, start = [], 0
    for s in sections:
        out.append(_basic_slice(input, d, start, start + s, 1))
        start += s
    return tuple(out)


def unbind(input, dim=0):
    d = _wrap_dim(dim, input.ndim)
    return tuple(select(input, d, i) for i in range(input._value.shape[d]))


def diagonal(input, offset=0, dim1=0, dim2=1):
    n = input.ndim
    d1, d2 = _wrap_dim(dim1, n), _wrap_dim(dim2, n)
    st = list(strides_of(input))
    diag_st = st[d1] + st[d2]
    rest = [s for i, s in enumerate(st) if i not in (d1, d2)]
    return _view(input, OPS["diagonal"], (offset, d1, d2), tuple(rest + [diag_st]))


# ---- copies ----------------------------------------------------------------------------------

def contiguous(input, memory_format=None):
    """``self`` if already contiguous (in ``memory_format``, default ``tracenn.contiguous_format``),
    else a copy laid out so (which no longer aliases). The values are the same either way.

    >>> import tracenn
    >>> x = tracenn.zeros(2, 3, 4, 5).contiguous(memory_format=tracenn.channels_last)
    >>> x.stride(), x.is_contiguous(), x.contiguous().stride()
    ((60, 1, 15, 3), False, (60, 20, 5, 1))
    """
    if memory_format is None:
        return input if is_contiguous(input) else apply(OPS["copy"], (input,))
    from .formats import format_name, format_strides, is_contiguous_as, restride
    name = format_name(memory_format, "contiguous")
    shape = tuple(input._value.shape)
    if is_contiguous_as(shape, strides_of(input), name):
        return input
    if name == "preserve_format":
        raise RuntimeError("preserve memory format is unsupported by the contiguous operator")
    st = format_strides(shape, name)
    return restride(apply(OPS["copy"], (input,)), None if st == contiguous_strides(shape) else st)


def clone(input, *, memory_format=None):
    """A copy with its own memory, recorded by autograd; laid out in ``memory_format`` (default
    ``tracenn.preserve_format``: ``input``'s strides when dense, as torch's)."""
    if memory_format is None and input._strides is None:
        return apply(OPS["copy"], (input,))
    from .formats import copy_strides, format_name, restride
    st = copy_strides(input, format_name(memory_format, "clone"))
    return restride(apply(OPS["copy"], (input,)), st)


def _same_dtype(tensors, name):
    if not tensors:
        raise RuntimeError(f"{name}(): expected a non-empty list of Tensors")
    dt = result_np_dtype(*tensors) if len(tensors) > 1 else tensors[0]._value.dtype
    return [_cast(t, dt) for t in tensors]


def cat(tensors, dim=0, *, out=None):
    """Concatenate along ``dim`` (dtypes promote; legacy empty 1-D tensors are skipped, as torch)."""
    tensors = list(tensors)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError("cat(): expected a sequence of Tensors")
    keep = [t for t in tensors if t._value.shape != (0,)] or tensors[:1]
    tensors = _same_dtype(keep, "cat")
    ref = tensors[0]._value.shape
    n = len(ref)
    if n == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = _wrap_dim(dim, n)
    for i, t in enumerate(tensors):
        s = t._value.shape
        if len(s) != n or s[:d] != ref[:d] or s[d + 1:] != ref[d + 1:]:
            raise ShapeError(
                f"Sizes of tensors must match except in dimension {d}. Expected size "
                f"{[k for j, k in enumerate(ref) if j != d]} but got size "
                f"{[k for j, k in enumerate(s) if j != d]} for tensor number {i} in the list.")
    r = apply(OPS["copy"], (tensors[0],)) if len(tensors) == 1 else apply(_CAT, tuple(tensors), (d,))
    return r if out is None else _out(r, out)


concat = concatenate = cat


def stack(tensors, dim=0, *, out=None):
    """Join tensors of one shape along a new ``dim``."""
    tensors = _same_dtype(list(tensors), "stack")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise ShapeError(f"stack expects each tensor to be equal size, but got {list(shape)} at "
                             f"entry 0 and {list(t.shape)} at entry {i}")
    d = _wrap_dim(dim, len(shape) + 1)
    return _out(apply(OPS["stack"], tuple(tensors), (d,)), out)


def hstack(tensors):
    tensors = [atleast_1d(t) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([atleast_2d(t) for t in tensors], 0)


row_stack = vstack


def dstack(tensors):
    return cat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors):
    return hstack([reshape(t, (-1, 1)) if t.ndim <= 1 else t for t in tensors])


def _atleast(one, tensors):
    """torch's ``atleast_*d(*tensors)``: one tensor gives a tensor; several, or one list/tuple, a tuple."""
    if len(tensors) == 1:
        tensors = tensors[0]
        if isinstance(tensors, Tensor):
            return one(tensors)
    return tuple(one(t) for t in tensors)


def _atleast_1d(t):
    return reshape(t, (1,)) if t.ndim == 0 else t


def _atleast_2d(t):
    return reshape(t, (1,) * (2 - t.ndim) + tuple(t.shape)) if t.ndim < 2 else t


def _atleast_3d(t):
    if t.ndim == 0:
        return reshape(t, (1, 1, 1))
    if t.ndim == 1:
        return reshape(t, (1, t.shape[0], 1))
    if t.ndim == 2:
        return unsqueeze(t, 2)
    return t


def atleast_1d(*tensors):
    """Views with at least one dimension (a zero-dim tensor becomes shape ``(1,)``); one tensor in,
    one out, else a tuple."""
    return _atleast(_atleast_1d, tensors)


def atleast_2d(*tensors):
    """Views with at least two dimensions (leading 1s added); one tensor in, one out, else a tuple."""
    return _atleast(_atleast_2d, tensors)


def atleast_3d(*tensors):
    """Views with at least three dimensions (a vector ``(n,)`` becomes ``(1, n, 1)``, a matrix
    ``(m, n)`` ``(m, n, 1)``); one tensor in, one out, else a tuple."""
    return _atleast(_atleast_3d, tensors)


def flip(input, *args, dims=None):
    """torch.flip / Tensor.flip: ``dims`` a sequence, or ints (``x.flip(0, 1)``)."""
    if dims is None:
        if not args:
            raise TypeError("flip() missing 1 required positional argument: 'dims'")
        dims = args[0] if len(args) == 1 else args
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return apply(OPS["flip"], (input,), (tuple(_wrap_dim(d, input.ndim) for d in dims),))


def fliplr(input):
    return flip(input, (1,))


def flipud(input):
    return flip(input, (0,))


def roll(input, shifts, dims=None):
    if dims is None:
        return apply(OPS["roll"], (input,), (shifts if isinstance(shifts, int) else tuple(shifts), None))
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}")
    return apply(OPS["roll"], (input,), (shifts, tuple(_wrap_dim(d, input.ndim) for d in dims)))


def repeat(input, *sizes):
    """Tile the tensor ``sizes`` times per dim (``sizes`` may add leading dims)."""
    sizes = shape_arg(sizes)
    if len(sizes) < input.ndim:
        raise RuntimeError("Number of dimensions of repeat dims can not be smaller than number of "
                           "dimensions of tensor")
    x = reshape(input, (1,) * (len(sizes) - input.ndim) + tuple(input.shape))
    return apply(OPS["tile"], (x,), (sizes,))


def tile(input, dims):
    dims = tuple(dims)
    if len(dims) < input.ndim:
        dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """Each element (slice along ``dim``; of the flattened input when ``dim`` is None) repeated
    ``repeats`` times: an int, or a tensor with one count per element. ``repeat_interleave(r)``
    alone repeats each index ``i`` ``r[i]`` times.

    Tensor counts give a size that depends on their values: inside ``tracenn.compile`` pass
    ``output_size=`` (their sum) and it compiles, as torch documents for avoiding the sync.

    >>> import tracenn
    >>> tracenn.tensor([1, 2, 3]).repeat_interleave(tracenn.tensor([1, 0, 2]))
    tensor([1, 3, 3])
    >>> tracenn.repeat_interleave(tracenn.tensor([2, 1]))
    tensor([0, 0, 1])
    """
    from ._common import shape_values
    if repeats is None:  # repeat_interleave(repeats): the indices, each repeated
        from .creation import arange
        _check_repeats(input)
        return repeat_interleave(arange(input.shape[0], device=input.device), input, 0, output_size=output_size)
    if dim is None:
        input, dim = reshape(input, (-1,)), 0
    d = _wrap_dim(dim, input.ndim)
    n = input._value.shape[d]
    if isinstance(repeats, Tensor):
        _check_repeats(repeats)
        if repeats.ndim and repeats.shape[0] != n:
            raise RuntimeError(f"repeats must have the same size as input along dim, but got repeats.size(0) = "
                               f"{repeats.shape[0]} and input.size(0) = {n}")
        if output_size is not None and _dispatch.abstract(repeats._value):  # traced counts: a gather
            return _repeat_by_index(input, repeats, d, n, output_size)
        counts = shape_values(repeats, "repeat_interleave with tensor repeats (repeats.sum() elements)",
                              "pass output_size=<the sum of the repeats>, which compiles")
        reps = tuple(int(r) for r in counts.reshape(-1)) if repeats.ndim else int(counts)
    else:
        reps = check_int(repeats, "repeat_interleave(): repeats")
    if builtins.min(reps if isinstance(reps, tuple) else (reps,), default=0) < 0:
        raise RuntimeError("repeats can not be negative")
    total = builtins.sum(reps) if isinstance(reps, tuple) else reps * n
    if output_size is not None and output_size != total:
        raise RuntimeError(f"allocated size does not match required size: output_size={output_size} but the "
                           f"repeats sum to {total}")
    return apply(OPS["repeat_interleave"], (input,), (reps, d, total))


def _check_repeats(repeats: Tensor) -> None:
    if repeats.ndim > 1:
        raise RuntimeError("repeat_interleave only accept 1D vector as repeat")
    if repeats._value.dtype.kind not in "iu":
        raise RuntimeError(f"repeat_interleave: repeats must be an integer tensor, got {repeats.dtype}")


def _repeat_by_index(input, repeats, d, n, output_size):
    """``repeat_interleave`` with counts known only as a traced tensor: output position p takes
    element ``searchsorted(cumsum(repeats), p, right=True)``."""
    from .creation import arange
    from .index import index_select
    from .more import searchsorted
    from .reduce import cumsum
    counts = repeats if repeats.ndim else repeats.expand(n)
    src = searchsorted(cumsum(counts, 0), arange(output_size, device=input.device), right=True)
    return index_select(input, d, src.clamp(max=builtins.max(n - 1, 0)))


def tril(input, diagonal=0):
    return apply(OPS["tril"], (input,), (diagonal,))


def triu(input, diagonal=0):
    return apply(OPS["triu"], (input,), (diagonal,))


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = [t.numel() for t in tensors]
    if indexing == "xy" and len(shape) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, t in enumerate(tensors):
        pos = i
        if indexing == "xy" and len(tensors) >= 2 and i < 2:
            pos = 1 - i
        view_shape = [1] * len(tensors)
        view_shape[pos] = -1
        out.append(expand(reshape(t, view_shape), shape))
    return tuple(out)
