"""``tracenn.nn.init``: fill parameters in place from torch's initialisation distributions.

Every function works under ``no_grad`` on the given tensor and returns it; random draws come from
tracenn's generator (or ``generator=``), so a seed reproduces tracenn's values, not torch's.
Formulas (fans, gains, bounds) are torch's.
"""
from __future__ import annotations

import math
import warnings

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor

__all__ = ["calculate_gain", "uniform_", "normal_", "constant_", "ones_", "zeros_", "xavier_uniform_",
           "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "eye_", "dirac_", "trunc_normal_",
           "orthogonal_", "sparse_"]


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    r"""The recommended gain for a nonlinearity (torch's table).

    ========================= ====================================================
    nonlinearity              gain
    ========================= ====================================================
    Linear / Identity / Conv  :math:`1`
    Sigmoid                   :math:`1`
    Tanh                      :math:`\frac{5}{3}`
    ReLU                      :math:`\sqrt{2}`
    Leaky Relu                :math:`\sqrt{\frac{2}{1 + \text{negative\_slope}^2}}`
    SELU                      :math:`\frac{3}{4}`
    ========================= ====================================================

    >>> from tracenn.nn import init
    >>> init.calculate_gain("tanh")
    1.6666666666666667
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    elif nonlinearity == "tanh":
        return 5.0 / 3
    elif nonlinearity == "relu":
        return math.sqrt(2.0)
    elif nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    elif nonlinearity == "selu":
        return 3.0 / 4
    else:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    r"""Fill ``tensor`` with values from :math:`\mathcal{U}(a, b)`.

    >>> import tracenn
    >>> w = tracenn.nn.init.uniform_(tracenn.empty(3, 5), -0.1, 0.1)
    >>> bool((w.abs() <= 0.1).all())
    True
    """
    with no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    r"""Fill ``tensor`` with values from :math:`\mathcal{N}(\text{mean}, \text{std}^2)`."""
    with no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill ``tensor`` with ``val``.

    >>> import tracenn
    >>> tracenn.nn.init.constant_(tracenn.empty(2), 0.3)
    tensor([0.3000, 0.3000])
    """
    with no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with ones."""
    with no_grad():
        return tensor.fill_(1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill ``tensor`` with zeros."""
    with no_grad():
        return tensor.zero_()


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    dimensions = tensor.dim()
    if dimensions < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    num_input_fmaps = tensor.size(1)
    num_output_fmaps = tensor.size(0)
    receptive_field_size = 1
    if tensor.dim() > 2:
        # math.prod is not always available, accumulate the product manually
        for s in tensor.shape[2:]:
            receptive_field_size *= s
    fan_in = num_input_fmaps * receptive_field_size
    fan_out = num_output_fmaps * receptive_field_size
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    r"""Glorot uniform: :math:`\mathcal{U}(-a, a)`, :math:`a = \text{gain} \sqrt{6/(\text{fan\_in} +
    \text{fan\_out})}`."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std  # Calculate uniform bounds from standard deviation
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    r"""Glorot normal: :math:`\mathcal{N}(0, \text{std}^2)`, :math:`\text{std} = \text{gain}
    \sqrt{2/(\text{fan\_in} + \text{fan\_out})}`."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    r"""He uniform: :math:`\mathcal{U}(-b, b)`, :math:`b = \text{gain} \sqrt{3/\text{fan\_mode}}`.

    Args:
        a: the negative slope of the rectifier after this layer (for ``leaky_relu``).
        mode: ``"fan_in"`` (keeps the forward variance) or ``"fan_out"`` (the backward one).
        nonlinearity: ``"relu"`` or ``"leaky_relu"`` (see :func:`calculate_gain`).

    >>> import tracenn
    >>> w = tracenn.nn.init.kaiming_uniform_(tracenn.empty(3, 5), mode="fan_in", nonlinearity="relu")
    >>> bool((w.abs() <= (6 / 5) ** 0.5).all())
    True
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std  # Calculate uniform bounds from standard deviation
    with no_grad():
        return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    r"""He normal: :math:`\mathcal{N}(0, \text{std}^2)`, :math:`\text{std} = \text{gain} /
    \sqrt{\text{fan\_mode}}`."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    with no_grad():
        return tensor.normal_(0, std, generator=generator)


# ---- structured and truncated initialisations ------------------------------------------------------

def eye_(tensor: Tensor) -> Tensor:
    r"""Fill a 2-D ``tensor`` with the identity matrix (ones on the diagonal of a rectangle too).

    >>> import tracenn
    >>> tracenn.nn.init.eye_(tracenn.empty(2, 3))
    tensor([[1., 0., 0.],
            [0., 1., 0.]])
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    from .._api.creation import eye
    with no_grad():
        return tensor.copy_(eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    r"""Fill a 3-, 4- or 5-D conv weight with the Dirac delta: the convolution is the identity on as
    many channels as fit (per group, with ``groups``).

    >>> import tracenn
    >>> w = tracenn.nn.init.dirac_(tracenn.empty(2, 2, 3))
    >>> w[:, :, 1]
    tensor([[1., 0.],
            [0., 1.]])
    """
    dimensions = tensor.ndimension()
    if dimensions not in [3, 4, 5]:
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.size()
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    import numpy as np
    out_chans_per_grp = sizes[0] // groups
    min_dim = min(out_chans_per_grp, sizes[1])
    delta = np.zeros(tuple(sizes))
    centre = tuple(s // 2 for s in sizes[2:])
    for g in range(groups):
        for d in range(min_dim):
            delta[(g * out_chans_per_grp + d, d) + centre] = 1
    with no_grad():
        return tensor.copy_(delta)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    r"""Fill ``tensor`` from :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to :math:`[a, b]`.

    Sampled by inverting the normal CDF on a uniform draw from :math:`[\Phi(a), \Phi(b)]`, in float64
    (exact in distribution, tails included); torch draws the same distribution by rejection, so the
    values differ while the distribution does not.

    >>> import tracenn
    >>> w = tracenn.nn.init.trunc_normal_(tracenn.empty(1000), std=1.0, a=-0.5, b=0.5)
    >>> bool((w.abs() <= 0.5).all())
    True
    """
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)

    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    from .. import dtypes as _dt
    from ..random import rand
    lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
    with no_grad():
        u = rand(tuple(tensor.shape), dtype=_dt.float64, generator=generator) * (hi - lo) + lo
        x = (u * 2 - 1).erfinv() * (std * math.sqrt(2.0)) + mean
        return tensor.copy_(x.clamp(min=a, max=b))


def orthogonal_(tensor: Tensor, gain: float = 1, generator=None) -> Tensor:
    r"""Fill ``tensor`` (2-D or more, trailing dims flattened) with a (semi-)orthogonal matrix times
    ``gain``: the Q of the QR decomposition of a normal draw, signs fixed so that Q is uniform.

    >>> import tracenn
    >>> w = tracenn.nn.init.orthogonal_(tracenn.empty(3, 3))
    >>> bool(((w @ w.t()) - tracenn.eye(3)).abs().max() < 1e-5)
    True
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.is_meta:  # (no values to fill, as torch)
        return tensor
    if tensor.numel() == 0:
        return tensor
    import numpy as np
    from .. import dtypes as _dt
    from ..random import randn
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    # the decomposition runs once, on the host: an init is not part of any graph
    flattened = np.asarray(randn(rows, cols, dtype=_dt.float64, generator=generator).numpy())
    if rows < cols:
        flattened = flattened.T
    q, r = np.linalg.qr(flattened)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    with no_grad():
        return tensor.copy_((q * gain).reshape(tuple(tensor.shape)))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    r"""Fill a 2-D ``tensor`` from :math:`\mathcal{N}(0, \text{std}^2)`, then zero
    :math:`\lceil \text{sparsity} \cdot \text{rows} \rceil` random rows in every column.

    >>> import tracenn
    >>> w = tracenn.nn.init.sparse_(tracenn.empty(10, 4), sparsity=0.3)
    >>> (w == 0).sum(0).tolist()
    [3, 3, 3, 3]
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.is_meta:  # (no values to fill, as torch)
        return tensor
    from ..random import rand
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with no_grad():
        tensor.normal_(0, std, generator=generator)
        # an independent random permutation of the rows per column: argsort of uniform keys
        order = rand(rows, cols, generator=generator).argsort(0)
        return tensor.mul_(order.argsort(0) >= num_zeros)


def _make_deprecate(meth):
    """torch's deprecated spelling without the trailing underscore: warns (FutureWarning, torch's
    text) and calls ``meth``."""
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.", FutureWarning,
                      stacklevel=2)
        return meth(*args, **kwargs)

    deprecated_init.__doc__ = f"{old_name}(...): deprecated in favor of :func:`tracenn.nn.init.{new_name}` (torch's)."
    deprecated_init.__name__ = deprecated_init.__qualname__ = old_name
    return deprecated_init


uniform = _make_deprecate(uniform_)
normal = _make_deprecate(normal_)
constant = _make_deprecate(constant_)
eye = _make_deprecate(eye_)
dirac = _make_deprecate(dirac_)
xavier_uniform = _make_deprecate(xavier_uniform_)
xavier_normal = _make_deprecate(xavier_normal_)
kaiming_uniform = _make_deprecate(kaiming_uniform_)
kaiming_normal = _make_deprecate(kaiming_normal_)
orthogonal = _make_deprecate(orthogonal_)
sparse = _make_deprecate(sparse_)
__all__ += ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal", "kaiming_uniform",
            "kaiming_normal", "orthogonal", "sparse"]
