"""tracenn: PyTorch's ``torch.nn`` programming model on JAX.

``import tracenn as torch`` and write torch code: tensors, autograd, (soon) modules and optimizers,
run eagerly for debugging; ``tracenn.compile`` (see the compiler) turns the same code into one
XLA program.
"""
from __future__ import annotations

import jax as _jax

from . import _malloc

_malloc.tune()  # XLA:CPU's per-call buffers from the heap, not fresh pages (see _malloc)

# torch's int64 and float64 need JAX's 64-bit mode; float32 stays the default everywhere because
# tracenn passes dtypes explicitly. torch's default device is the CPU, so JAX's is set to it too
# (move to a GPU with .to("cuda")).
_jax.config.update("jax_enable_x64", True)
try:
    _jax.config.update("jax_default_device", _jax.devices("cpu")[0])
except RuntimeError:  # pragma: no cover - a JAX build without a CPU backend
    pass

from . import dtypes as _dtypes  # noqa: E402
from .dtypes import (  # noqa: E402,F401
    bfloat16, bool, cdouble, cfloat, complex64, complex128, double, dtype, float, float16, float32,
    float64, get_default_dtype, half, int, int8, int16, int32, int64, long, promote_types,
    set_default_dtype, short, uint8)
from .dtypes import (  # noqa: E402,F401  (torch's limited-support dtypes)
    finfo, float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, iinfo, uint16, uint32, uint64)
from .device import device  # noqa: E402
from .size import Size  # noqa: E402
from .tensor import Tensor  # noqa: E402
from ._api import methods as _methods  # noqa: E402,F401  (attaches Tensor methods)
from ._api.legacy import LEGACY_TYPES as _LEGACY_TYPES  # noqa: E402

globals().update(_LEGACY_TYPES)  # FloatTensor, LongTensor, ... (torch's legacy constructors and types)
from ._api.creation import (  # noqa: E402,F401
    arange, as_tensor, asarray, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace,
    ones, ones_like, scalar_tensor, tensor, tril_indices, triu_indices, zeros, zeros_like)
from ._api.math import (  # noqa: E402,F401
    abs, absolute, acos, acosh, add, addcdiv, addcmul, arccos, arccosh, arcsin, arcsinh, arctan,
    arctan2, arctanh, asin, asinh, atan, atan2, atanh, bitwise_and, bitwise_left_shift,
    bitwise_not, bitwise_or, bitwise_right_shift, bitwise_xor, ceil, clamp, clamp_max, clamp_min,
    clip, cos, cosh, digamma, div, divide, eq, equal, erf, erfc, erfinv, exp, exp2, expm1, fix,
    float_power, floor, floor_divide, fmax, fmin, fmod, frac, ge, greater, greater_equal, gt,
    hypot, isfinite, isinf, isnan, le, lerp, less, less_equal, lgamma, log, log10, log1p, log2,
    logaddexp, logical_and, logical_not, logical_or, logical_xor, lt, maximum, minimum, mul,
    multiply, nan_to_num, ne, neg, negative, not_equal, positive, pow, reciprocal, relu, remainder,
    round, rsqrt, rsub, sgn, sigmoid, sign, signbit, sin, sinh, sqrt, square, sub, subtract, tan,
    tanh, true_divide, trunc, where, xlogy)
from ._api.reduce import (  # noqa: E402,F401
    all, amax, amin, aminmax, any, argmax, argmin, count_nonzero, cummax, cummin, cumprod, cumsum, dist,
    log_softmax, logsumexp, max, mean, median, min, nanmean, nansum, norm, prod, softmax, softmin, std,
    std_mean, sum, var, var_mean)
from ._api.shape import (  # noqa: E402,F401
    adjoint, atleast_1d, atleast_2d, atleast_3d, broadcast_shapes, broadcast_tensors, broadcast_to, cat,
    chunk, clone, column_stack, concat, concatenate, contiguous, diagonal, dstack, flatten, flip, fliplr,
    flipud, hstack, meshgrid, movedim, moveaxis, narrow, permute, repeat_interleave, reshape, roll,
    row_stack, select, split, squeeze, stack, swapaxes, swapdims, t, tensor_split, tile, transpose,
    tril, triu, unbind, unflatten, unsqueeze, vstack)
from ._api.index import (  # noqa: E402,F401
    argsort, argwhere, bincount, gather, index_add, index_fill, index_put, index_select, kthvalue,
    masked_fill, masked_scatter, masked_select, msort, nonzero, scatter, scatter_add, scatter_reduce, sort,
    take, take_along_dim, topk, unique)
from ._api.linalg import (  # noqa: E402,F401
    addmm, addmv, baddbmm, bmm, conv1d, conv2d, conv3d, dot, einsum, ger, inner, matmul, mm, mv, outer,
    tensordot)
from .random import (  # noqa: E402,F401
    Generator, bernoulli, binomial, default_generator, get_rng_state, initial_seed, manual_seed, multinomial,
    normal, poisson, rand, rand_like, randint, randint_like, randn, randn_like, randperm, seed, set_rng_state,
    _standard_gamma)
from .autograd import (  # noqa: E402,F401
    enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad, set_grad_enabled)
from . import accelerator, autograd, cpu, cuda  # noqa: E402,F401
from .autograd import is_anomaly_check_nan_enabled, is_anomaly_enabled  # noqa: E402,F401
from .autograd import set_detect_anomaly as set_anomaly_enabled  # noqa: E402,F401  (torch's name)
from ._tensor_str import get_printoptions, printoptions, set_printoptions  # noqa: E402,F401

import builtins as _builtins  # noqa: E402
import math as _math  # noqa: E402

inf, nan, pi, e = _math.inf, _math.nan, _math.pi, _math.e

from . import hub, types, version  # noqa: E402,F401  (torch.hub, torch.types, torch.version)
from .version import __version__  # noqa: E402  (a TorchVersion: compares as a version, as torch's)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input) -> bool:
    return input.is_floating_point()


def is_complex(input) -> bool:
    return input.is_complex()


def numel(input) -> int:
    return input.numel()


def result_type(tensor1, tensor2) -> dtype:
    from ._api._common import result_np_dtype
    return _dtypes.from_np(result_np_dtype(tensor1, tensor2))


def can_cast(from_, to) -> bool:
    """torch.can_cast: casting never lowers the category (float -> int is refused)."""
    return from_._category <= to._category


def synchronize() -> None:
    """Wait until all queued work has finished (JAX dispatches asynchronously; benchmarks call this)."""
    from ._dispatch import LAST
    if LAST[0] is not None:
        LAST[0].block_until_ready()


def set_default_device(device_) -> None:
    """Place new tensors on ``device_`` by default (torch.set_default_device; ``"meta"`` too)."""
    from .device import set_default
    set_default(device_)


def get_default_device() -> device:
    from .device import get_default
    return get_default()
from . import nn  # noqa: E402,F401
# torch's top-level forms of nn.functional ops: the functional itself where torch's is the same
# object, else ATen's signature (see tracenn/nn/functional/_toplevel.py).
from .nn.functional import (  # noqa: E402,F401
    adaptive_avg_pool1d, avg_pool1d, bilinear, celu_, channel_shuffle, conv_transpose1d, conv_transpose2d,
    conv_transpose3d, cosine_similarity, hardshrink, native_channel_shuffle, pairwise_distance, pdist,
    pixel_shuffle, pixel_unshuffle, prelu, relu_, rms_norm, rrelu_, selu_, threshold_)
from .nn.functional._distance import cdist  # noqa: E402,F401
from .nn.functional._toplevel import (  # noqa: E402,F401
    adaptive_max_pool1d, alpha_dropout, alpha_dropout_, batch_norm, binary_cross_entropy_with_logits, celu,
    cosine_embedding_loss, ctc_loss, dropout, dropout_, embedding, feature_alpha_dropout, feature_alpha_dropout_,
    feature_dropout, feature_dropout_, group_norm, hinge_embedding_loss, instance_norm, kl_div, layer_norm,
    margin_ranking_loss, max_pool1d, max_pool1d_with_indices, max_pool2d, max_pool3d, poisson_nll_loss, rrelu,
    selu, threshold, triplet_margin_loss)
from . import utils, vision  # noqa: E402,F401
from .serialization import load, save  # noqa: E402,F401
from . import optim  # noqa: E402,F401
from .compiler.api import compile  # noqa: E402,F401
from . import _dynamo  # noqa: E402,F401  (torch._dynamo.config, reset, disable)
from ._api.control import cond, while_loop  # noqa: E402,F401
from . import amp  # noqa: E402,F401
from .amp import autocast, get_autocast_dtype, is_autocast_enabled  # noqa: E402,F401
cuda.amp = amp._device_namespace("cuda")  # torch.cuda.amp.GradScaler / autocast (deprecated spellings)
cpu.amp = amp._device_namespace("cpu")
from . import func  # noqa: E402,F401
from .func import vmap  # noqa: E402,F401  (torch.vmap is torch.func.vmap)
from ._api.more import (block_diag, bucketize, cartesian_prod, combinations, corrcoef, cov,  # noqa: E402,F401
                        diag_embed, diff, histc, histogram, kron, logcumsumexp, nanquantile, quantile,
                        rot90, searchsorted, trace, vander)
from ._api.misc import (allclose, detach, diag, diagflat, diagonal_scatter, dsplit,  # noqa: E402,F401
                        fill, hsplit, index_copy, is_nonzero, is_same_size, isclose, ravel, select_scatter,
                        slice_scatter, vsplit)
from ._api.misc_math import (addbmm, addr, chain_matmul, copysign, cross, cumulative_trapezoid,  # noqa: E402,F401
                             deg2rad, frexp, gcd, heaviside, i0, isin, isneginf, isposinf, isreal, lcm, ldexp,
                             logaddexp2, logit, nextafter, rad2deg, renorm, sinc, trapezoid, trapz, vdot)
from ._api.misc_reduce import gradient, mode, nanmedian, unique_consecutive, unravel_index  # noqa: E402,F401
from ._api.windows import (bartlett_window, blackman_window, hamming_window, hann_window,  # noqa: E402,F401
                           kaiser_window)
from . import linalg  # noqa: E402,F401
from ._stft import istft, stft  # noqa: E402,F401
Tensor.stft, Tensor.istft = stft, istft
conj = conj_physical = Tensor.conj  # noqa: E305
from . import backends, distributions, jit, profiler, special, testing  # noqa: E402,F401
from . import quasirandom, signal  # noqa: E402,F401
from .special import igamma, igammac, mvlgamma, polygamma  # noqa: E402,F401
from .autograd import profiler as _autograd_profiler  # noqa: E402,F401  (tracenn.autograd.profiler)
from ._precision import get_float32_matmul_precision, set_float32_matmul_precision  # noqa: E402,F401
from ._threads import (are_deterministic_algorithms_enabled, get_num_interop_threads,  # noqa: E402,F401
                       get_num_threads, is_deterministic_algorithms_warn_only_enabled, set_num_interop_threads,
                       set_num_threads, use_deterministic_algorithms)
from ._threads import get_deterministic_debug_mode, set_deterministic_debug_mode  # noqa: E402,F401
from ._accelerators import get_device_module, mps, mtia, xpu  # noqa: E402,F401
from . import distributed, multiprocessing  # noqa: E402,F401
from .errors import AcceleratorError, OutOfMemoryError  # noqa: E402,F401
from .amp import GradScaler  # noqa: E402,F401  (torch.GradScaler is torch.amp.GradScaler)
from .linalg import inverse, logdet, matrix_exp, pinverse  # noqa: E402,F401
from .linalg import det, slogdet  # noqa: E402,F401
from .linalg import geqrf, matrix_power  # noqa: E402,F401
from .linalg import torch_cholesky as cholesky, torch_svd as svd  # noqa: E402,F401
from .linalg import lu_unpack, torch_lu as lu, torch_lu_solve as lu_solve  # noqa: E402,F401
from ._linalg_extra import (cholesky_inverse, cholesky_solve, frobenius_norm, nuclear_norm, orgqr,  # noqa: E402,F401
                            ormqr, pca_lowrank, removed_eig as eig, removed_lstsq as lstsq,
                            removed_matrix_rank as matrix_rank, removed_solve as solve, removed_symeig as symeig,
                            svd_lowrank, torch_qr as qr, triangular_solve)
from ._api.complexnum import (angle, complex, imag, polar, real, view_as_complex,  # noqa: E402,F401
                               view_as_real)
from . import fft  # noqa: E402,F401

from . import sparse  # noqa: E402  (torch.sparse: sparse COO tensors, see tracenn/sparse/)
globals().update(sparse.toplevel())  # sparse_coo, sparse_coo_tensor, spmm
from ._api import namespace as _namespace  # noqa: E402
globals().update(_namespace.toplevel())  # in-place spellings, *_copy, as_strided, ... (see _api/namespace.py)
globals().update({n: getattr(amp, n) for n in amp.TOPLEVEL}, **amp.LEGACY)  # autocast's state functions
from .utils.dlpack import from_dlpack, to_dlpack  # noqa: E402,F401

from ._api.foreach import FOREACH as _FOREACH  # noqa: E402  (torch._foreach_*: EMA and optimizer code)
globals().update(_FOREACH)
from . import functional  # noqa: E402,F401  (torch.functional: last, it re-exports top-level names)
