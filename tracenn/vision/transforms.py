"""Image transforms for the classic recipe ``Compose([ToTensor(), Normalize(mean, std)])``.

The same behaviour as torchvision's transforms of those names, on numpy arrays instead of PIL images
(PIL is not a dependency): ``ToTensor`` takes an ``H x W`` or ``H x W x C`` array and returns a
``C x H x W`` tensor, scaled to ``[0, 1]`` when the array is ``uint8``.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..tensor import Tensor

__all__ = ["Compose", "Lambda", "Normalize", "ToTensor"]


class Compose:
    """Apply transforms one after another.

    >>> import numpy as np
    >>> from tracenn.vision import transforms as T
    >>> t = T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))])
    >>> t(np.array([[0, 255]], dtype=np.uint8))
    tensor([[[-1.,  1.]]])
    >>> t
    Compose(
        ToTensor()
        Normalize(mean=(0.5,), std=(0.5,))
    )
    """

    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        lines = [self.__class__.__name__ + "("]
        lines += [f"    {t}" for t in self.transforms]
        return "\n".join(lines) + "\n)"


class ToTensor:
    """Convert an ``H x W`` or ``H x W x C`` numpy array to a ``C x H x W`` tensor.

    A ``uint8`` array is scaled to ``[0, 1]`` in the default float dtype; other dtypes keep their
    values and dtype (torchvision's rule).

    >>> import numpy as np
    >>> from tracenn.vision.transforms import ToTensor
    >>> x = ToTensor()(np.full((2, 3), 51, dtype=np.uint8))
    >>> x.shape, x.dtype, x[0, 0, 0].item()
    (tracenn.Size([1, 2, 3]), tracenn.float32, 0.20000000298023224)
    """

    def __call__(self, pic) -> Tensor:
        if isinstance(pic, Tensor) or not isinstance(pic, np.ndarray):
            raise TypeError(
                f"pic should be a numpy array (H x W or H x W x C; tracenn does not read PIL images: "
                f"pass np.asarray(image)). Got {type(pic)}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic should be 2/3 dimensional. Got {pic.ndim} dimensions.")
        if pic.ndim == 2:
            pic = pic[:, :, None]
        img = np.ascontiguousarray(pic.transpose((2, 0, 1)))
        if img.dtype == np.uint8:
            d = _dt.get_default_dtype()
            work = np.dtype(np.float32) if d is _dt.bfloat16 else d.np  # numpy has no bfloat16 division
            img = (img.astype(work) / work.type(255)).astype(d.np)
        from .._api.creation import from_numpy
        return from_numpy(img)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"


class Normalize:
    """Normalize a ``(..., C, H, W)`` float tensor per channel: ``(x - mean[c]) / std[c]``.

    Args:
        mean: the mean of each channel.
        std: the standard deviation of each channel.
        inplace: update the input tensor in place.

    >>> import tracenn
    >>> from tracenn.vision.transforms import Normalize
    >>> Normalize((1.0, 2.0), (2.0, 4.0))(tracenn.ones(2, 1, 1) * 3)
    tensor([[[1.0000]],
    <BLANKLINE>
            [[0.2500]]])
    """

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = mean
        self.std = std
        self.inplace = inplace
        self._cache: dict = {}

    def _stats(self, d, device):
        key = (d, device)
        hit = self._cache.get(key)
        if hit is None:
            from .._api.creation import as_tensor
            mean = as_tensor(self.mean, dtype=d, device=device)
            std = as_tensor(self.std, dtype=d, device=device)
            if bool((std == 0).any()):
                raise ValueError(f"std evaluated to zero after conversion to {d}, leading to division by zero.")
            if mean.ndim == 1:
                mean = mean.view(-1, 1, 1)
            if std.ndim == 1:
                std = std.view(-1, 1, 1)
            hit = self._cache[key] = (mean, std)
        return hit

    def __call__(self, tensor: Tensor) -> Tensor:
        if not isinstance(tensor, Tensor):
            raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
        if not tensor.is_floating_point():
            raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
        if tensor.ndim < 3:
            raise ValueError("Expected tensor to be a tensor image of size (..., C, H, W). Got tensor.size() = "
                             f"{tensor.size()}")
        mean, std = self._stats(tensor.dtype, tensor.device)
        if self.inplace:
            return tensor.sub_(mean).div_(std)
        return (tensor - mean) / std

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a user function as a transform.

    >>> from tracenn.vision.transforms import Lambda
    >>> Lambda(lambda x: x + 1)(1)
    2
    """

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Argument lambd should be callable, got {repr(type(lambd).__name__)}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}()"
