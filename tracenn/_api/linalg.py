"""Matrix products (matmul, mm, bmm, einsum, ...) and convolution (conv1d/2d/3d)."""
from __future__ import annotations

from .. import _dispatch
from .._dispatch import apply
from ..errors import DtypeError, ShapeError
from ..ops import OPS
from ..tensor import Tensor


_MATMUL = OPS["matmul"]


def _dname(t):
    return t.dtype.name.capitalize().replace("Float32", "Float")


def _same_dtype(a, b, name):
    if a._value.dtype != b._value.dtype and not _dispatch.autocasting(a, b):
        names = {"float32": "float", "float64": "double", "int64": "long", "float16": "c10::Half",
                 "bfloat16": "c10::BFloat16", "int32": "int"}
        raise DtypeError(f"expected m1 and m2 to have the same dtype, but got: "
                         f"{names.get(a.dtype.name, a.dtype.name)} != {names.get(b.dtype.name, b.dtype.name)}"
                         f" (in {name}; cast one side, e.g. b.to(a.dtype))")


def matmul(input, other, *, out=None):
    """torch.matmul: dot, matrix-vector, matrix-matrix and broadcast batched products."""
    if input.is_sparse or other.is_sparse:  # a sparse COO operand: tracenn/sparse
        from ..sparse._ops import matmul as sparse_matmul
        return sparse_matmul(input, other)
    _same_dtype(input, other, "matmul")
    a, b = input.shape, other.shape
    if input.ndim == 0 or other.ndim == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are {input.ndim}D and {other.ndim}D")
    k1 = a[-1]
    k2 = b[0] if other.ndim == 1 else b[-2]
    if k1 != k2:
        if input.ndim <= 2 and other.ndim <= 2:
            raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, a if input.ndim == 2 else (1,) + tuple(a)))} "
                             f"and {'x'.join(map(str, b if other.ndim == 2 else tuple(b) + (1,)))})")
        raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                         f"[{'x'.join(map(str, a[:-1]))}, {k1}] but got: {list(b)}.")
    from .math import _out
    return _out(apply(_MATMUL, (input, other)), out)


def mm(input, mat2, *, out=None):
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(f"self must be a matrix" if input.ndim != 2 else "mat2 must be a matrix")
    return matmul(input, mat2, out=out)


def bmm(input, mat2, *, out=None):
    if input.ndim != 3 or mat2.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor" if input.ndim != 3 else "batch2 must be a 3D tensor")
    if input.shape[0] != mat2.shape[0]:
        raise ShapeError(f"batch1 and batch2 must have same number of batches, got {input.shape[0]} and {mat2.shape[0]}")
    return matmul(input, mat2, out=out)


def mv(input, vec):
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError("vector + matrix @ vector expected, got " + f"{input.ndim}, {vec.ndim}")
    return matmul(input, vec)


def dot(input, other):
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors")
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{other.shape[0]}] to have the same number of elements, but got "
                           f"{input.shape[0]} and {other.shape[0]} elements respectively")
    return matmul(input, other)


inner = dot


def outer(input, vec2):
    from .shape import reshape
    from .math import mul
    return mul(reshape(input, (-1, 1)), reshape(vec2, (1, -1)))


ger = outer


def _autocast_input(input, prod, *mats):
    """``input`` of an add-and-multiply op (addmm, baddbmm, addmv) in the product's dtype under
    autocast: torch's autocast casts it with the matrices, so the result stays low precision."""
    if isinstance(input, Tensor) and input._value.dtype != prod._value.dtype and _dispatch.autocasting(input, *mats):
        return input.to(prod.dtype)
    return input


def scaled_add(input, prod, beta, alpha):
    """``beta * input + alpha * prod``, as torch's add-and-multiply ops (addmm, baddbmm, addmv,
    addbmm, addr) compute it: with ``beta=0`` ``input`` is not read — its NaN and inf do not
    propagate (Hugging Face's GPT-2 runs ``baddbmm(torch.empty(...), q, k, beta=0)``) — though it
    still broadcasts with the product and gets a zero gradient."""
    from .math import add, mul, where
    if alpha != 1:
        prod = mul(prod, alpha)
    if beta == 0:
        return where(True, prod, input)
    return add(mul(input, beta) if beta != 1 else input, prod)


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    prod = mm(mat1, mat2)
    return scaled_add(_autocast_input(input, prod, mat1, mat2), prod, beta, alpha)


def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    prod = bmm(batch1, batch2)
    return scaled_add(_autocast_input(input, prod, batch1, batch2), prod, beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    prod = mv(mat, vec)
    return scaled_add(_autocast_input(input, prod, mat, vec), prod, beta, alpha)


def einsum(equation, *operands):
    """Einstein summation (``einsum('ij,jk->ik', a, b)``); operands must share one dtype, as in torch."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    dtypes = [t.dtype for t in operands]
    if len(set(dtypes)) > 1:  # torch does not promote here
        raise DtypeError(f"einsum(): expected all operands to have the same dtype, got "
                         f"{', '.join(str(d) for d in dtypes)}; cast them first, e.g. b.to(a.dtype)")
    return apply(OPS["einsum"], tuple(operands), (equation.replace(" ", ""),))


def tensordot(a, b, dims=2):
    import string
    if isinstance(dims, int):
        da = list(range(a.ndim - dims, a.ndim))
        db = list(range(dims))
    else:
        da, db = [list(d) if isinstance(d, (list, tuple)) else [d] for d in dims]
    letters = iter(string.ascii_letters)
    la = [next(letters) for _ in range(a.ndim)]
    lb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(da, db):
        lb[j] = la[i]
    out = [c for i, c in enumerate(la) if i not in da] + [c for j, c in enumerate(lb) if j not in db]
    return einsum(f"{''.join(la)},{''.join(lb)}->{''.join(out)}", a, b)


def _tuple(v, n, name):
    if isinstance(v, int):
        return (v,) * n
    v = tuple(v)
    if len(v) == 1:
        return v * n
    if len(v) != n:
        raise RuntimeError(f"expected {name} to be a single integer value or a list of {n} values to "
                           f"match the convolution dimensions, but got {name}={list(v)}")
    return v


def convnd(nd, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution with torch's arguments (padding int/tuple/'same'/'valid')."""
    name = f"conv{nd}d"
    unbatched = input.ndim == nd + 1
    if unbatched:
        input = input.unsqueeze(0)
    if input.ndim != nd + 2:
        raise RuntimeError(f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, "
                           f"but got input of size: {list(input.shape)}")
    stride, dilation = _tuple(stride, nd, "stride"), _tuple(dilation, nd, "dilation")
    cin, k = input.shape[1], weight.shape[2:]
    if weight.ndim != nd + 2:
        raise RuntimeError(f"weight should have {nd + 2} dimensions for {name}, got {weight.ndim}")
    if cin != weight.shape[1] * groups:
        raise ShapeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
            f"{list(input.shape)} to have {weight.shape[1] * groups} channels, but got {cin} channels instead")
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nd
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise RuntimeError("padding='same' is not supported for strided convolutions")
            total = [d * (kk - 1) for d, kk in zip(dilation, k)]
            pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            raise RuntimeError(f"Invalid padding string '{padding}', should be one of 'valid' or 'same'")
    else:
        pads = tuple((p, p) for p in _tuple(padding, nd, "padding"))
    for i in range(nd):
        eff = dilation[i] * (k[i] - 1) + 1
        if input.shape[2 + i] + sum(pads[i]) < eff:
            raise ShapeError(
                f"Calculated padded input size per channel: "
                f"({' x '.join(str(input.shape[2 + j] + sum(pads[j])) for j in range(nd))}). Kernel size: "
                f"({' x '.join(str(dilation[j] * (k[j] - 1) + 1) for j in range(nd))}). Kernel size can't be "
                f"greater than actual input size")
    autocast = _dispatch.autocasting(input, weight)  # (the op casts both to the low-precision dtype)
    if input._value.dtype != weight._value.dtype and not autocast:
        raise DtypeError(f"Input type ({input.dtype}) and weight type ({weight.dtype}) should be the same")
    out = apply(OPS["conv"], (input, weight), (stride, pads, dilation, groups))
    if bias is not None:
        if autocast and bias._value.dtype != out._value.dtype:
            bias = bias.to(out.dtype)  # (torch's autocast casts the bias too: the output stays low precision)
        out = out + bias.reshape((1, -1) + (1,) * nd)
    return out.squeeze(0) if unbatched else out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convnd(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution, input (N, C, H, W), weight (O, C/groups, kH, kW)."""
    return convnd(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return convnd(3, input, weight, bias, stride, padding, dilation, groups)


