"""The module classes of ``tracenn.nn`` (one file per family, as torch's ``torch.nn.modules``).

Each family module defines ``__all__``; everything listed there is exported here and from
``tracenn.nn``.
"""
from .module import Module  # noqa: F401
from .lazy import LazyModuleMixin  # noqa: F401
from .container import Container, ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .linear import *  # noqa: F401,F403
from .activation import *  # noqa: F401,F403
from .conv import *  # noqa: F401,F403
from .fold import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .padding import *  # noqa: F401,F403
from .pixelshuffle import *  # noqa: F401,F403
from .upsampling import *  # noqa: F401,F403
from .flatten import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .linear_cross_entropy import LinearCrossEntropyLoss, LinearCrossEntropyOptions  # noqa: F401
from .dropout import *  # noqa: F401,F403
from .distance import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .instancenorm import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .sparse import *  # noqa: F401,F403
from .rnn import *  # noqa: F401,F403
from .transformer import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .adaptive import *  # noqa: F401,F403
from . import utils  # noqa: F401  (torch.nn.modules.utils: _pair, _ntuple, consume_prefix_in_state_dict_if_present)

from . import (activation as _a, adaptive as _ad, attention as _at, batchnorm as _b, conv as _c,  # noqa: E402
               distance as _d, dropout as _dr, flatten as _f, fold as _fo, instancenorm as _i, linear as _l,
               loss as _lo, normalization as _n, padding as _p, pixelshuffle as _ps, pooling as _po, rnn as _r,
               sparse as _s, transformer as _t, upsampling as _u)

__all__ = ["Module", "Container", "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]
for _m in (_l, _a, _c, _fo, _po, _p, _ps, _u, _f, _lo, _dr, _d, _b, _i, _n, _s, _r, _t, _at, _ad):
    __all__ += _m.__all__
__all__ += ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]
del _m
