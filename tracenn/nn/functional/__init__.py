"""``tracenn.nn.functional``: torch.nn.functional on tracenn tensors.

Each function is a composite of tracenn's primitives (so it gets gradients, tracing and lowering for
free), grouped by family in the private modules below, which each define ``__all__``.
"""
from ._linear import *  # noqa: F401,F403
from ._conv import *  # noqa: F401,F403
from ._pool import *  # noqa: F401,F403
from ._pool_fractional import *  # noqa: F401,F403
from ._vision import *  # noqa: F401,F403
from ._activation import *  # noqa: F401,F403
from ._loss import *  # noqa: F401,F403
from ._linear_ce import linear_cross_entropy  # noqa: F401
from ._dropout import *  # noqa: F401,F403
from ._distance import *  # noqa: F401,F403
from ._norm import *  # noqa: F401,F403
from ._sparse import *  # noqa: F401,F403
from ._attention import *  # noqa: F401,F403


def _bind_tensor_methods():
    """The Tensor methods torch defines that are activations of this package (bound here: the
    core, tracenn/_api, does not import nn)."""
    from ...tensor import Tensor
    Tensor.prelu = lambda self, weight: prelu(self, weight)  # noqa: F405
    Tensor.hardshrink = lambda self, lambd=0.5: hardshrink(self, lambd)  # noqa: F405


_bind_tensor_methods()
